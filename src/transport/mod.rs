//! HTTP(S) edge: carries session packages to the DM server and MO data to and from the
//! Data Repository (TS §5.2, §5.5, §5.6, §9.2). No protocol logic lives here.

pub mod backpressure;
pub mod error;
pub mod http;
mod resolver;
pub mod target;

pub use http::{Credentials, HttpClient, HttpSettings};
