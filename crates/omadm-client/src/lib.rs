//! The typed client of omadmd's D-Bus API, `org.omadm.Client1` on the system bus: what
//! `omadmctl`, the SHOW agent and the FUMO and SCOMO handlers are built on, and what a
//! desktop app, an OEM's EXEC handler or a settings panel needs to talk to the daemon
//! without linking it (as libfwupd is to fwupd and libnm to NetworkManager).
//!
//! - [`ManagerProxy`], [`TreeProxy`], [`AgentManagerProxy`]: the daemon's interfaces.
//! - [`AgentProxy`], [`ExecHandlerProxy`]: the interfaces a SHOW agent and an EXEC handler
//!   serve, as the daemon calls them; [`agent`] and [`handler`] hold what such programs
//!   share.
//! - The values the daemon sends ([`AccountState`], [`HistoryRow`], ...) and the errors it
//!   answers with ([`Error`]). The daemon answers with these very types.
//!
//! The crate picks no async runtime: enable zbus's `tokio` feature in a tokio program (the
//! `tokio` feature of this crate does it), or its default executor otherwise.

pub mod agent;
mod error;
pub mod handler;
pub mod proxies;
mod types;

pub use error::{Error, FetchFailure, error_name, no_owner};
pub use proxies::{AgentManagerProxy, AgentProxy, ExecHandlerProxy, ManagerProxy, TreeProxy};
pub use types::{AccountChange, AccountRow, AccountState, HistoryRow, ReloadReport};

/// The daemon's bus name.
pub const BUS_NAME: &str = "org.omadm.Client1";
/// The object path of its interfaces.
pub const PATH: &str = "/org/omadm/Client1";
/// The interface a SHOW agent serves.
pub const AGENT_INTERFACE: &str = "org.omadm.Client1.Agent";
/// The interface an EXEC handler serves.
pub const EXEC_HANDLER_INTERFACE: &str = "org.omadm.Client1.ExecHandler";
/// The error an agent answers `Show` with when the user declines.
pub const DECLINED: &str = "org.omadm.Client1.Agent.Error.Declined";
