//! omadmd: an OMA DM 2.0 client for Linux, as a library the thin binaries wire up.
//!
//! Dependency rule (see docs/ARCHITECTURE.md): `protocol` and `tree` depend on nothing
//! else of ours; `host` reads the machine and depends on nothing of ours; `mo` uses
//! `protocol`, `tree` and `host`; `config` uses `mo` for its types; `daemon` wires
//! everything; the binary uses `args`, `config` and `daemon`.

pub mod args;
pub mod config;
pub mod daemon;
pub mod dbus;
pub mod diag;
pub mod engine;
pub mod heartbeat;
pub mod host;
pub mod memory;
pub mod mo;
pub mod notify;
pub mod ports;
/// The DM 2.0 wire formats: the `omadm-proto` crate.
pub use omadm_proto as protocol;
pub mod scheduler;
pub mod session;
pub mod state;
pub mod transport;
pub mod tree;
