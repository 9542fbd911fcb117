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
//!
//! The examples below take a connection; a program makes it with
//! `zbus::Connection::system().await?`. As doctests they run against a real omadmd on a
//! private bus.
//!
//! # Who manages this machine
//!
//! A settings panel lists the servers that manage the device and how their last session
//! went. Reading needs no authorization.
//!
//! ```
//! use omadm_client::ManagerProxy;
//!
//! async fn who_manages(conn: &zbus::Connection) -> zbus::Result<Vec<String>> {
//!     let manager = ManagerProxy::new(conn).await?;
//!     let mut lines = Vec::new();
//!     for account in manager.accounts().await? {
//!         let state = manager.account_state(&account.server_id).await?;
//!         let last = state.last_outcome.unwrap_or_else(|| "no session yet".into());
//!         lines.push(format!("{} ({}): {last}", account.name, account.url));
//!     }
//!     Ok(lines)
//! }
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> zbus::Result<()> {
//! # let bed = omadm_client::testbed::Testbed::start(None).await;
//! # let conn = bed.connection().await?;
//! let lines = who_manages(&conn).await?;
//! assert!(lines[0].starts_with("omadm-testserver (demo) (http://127.0.0.1:9/dm)"), "{lines:?}");
//! # Ok(())
//! # }
//! ```
//!
//! # A SHOW agent
//!
//! A desktop app serves `org.omadm.Client1.Agent` and registers it: the daemon then asks it
//! to show the pages servers send (TS §5.3.7). It answers only the daemon, and opens only
//! URLs a browser may be given ([`agent::check_show`]).
//!
//! ```
//! use omadm_client::AgentManagerProxy;
//! use omadm_client::agent::{AgentError, check_show};
//!
//! struct Agent;
//!
//! #[zbus::interface(name = "org.omadm.Client1.Agent")]
//! impl Agent {
//!     async fn show(
//!         &self,
//!         url: String,
//!         server_name: String,
//!         #[zbus(connection)] conn: &zbus::Connection,
//!         #[zbus(header)] header: zbus::message::Header<'_>,
//!     ) -> Result<(), AgentError> {
//!         check_show(conn, &header, &url).await?;
//!         // Ask the user, then open it (xdg-open, the OpenURI portal); or decline:
//!         // Err(AgentError::Declined(...)) tells the server the user said no (507).
//!         println!("{server_name} asks you to see {url}");
//!         Ok(())
//!     }
//! }
//!
//! async fn start_agent(conn: &zbus::Connection) -> zbus::Result<()> {
//!     let path = "/org/example/ShowAgent";
//!     conn.object_server().at(path, Agent).await?;
//!     AgentManagerProxy::new(conn)
//!         .await?
//!         .register_agent(&path.try_into()?)
//!         .await
//! }
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> zbus::Result<()> {
//! # let bed = omadm_client::testbed::Testbed::start(None).await;
//! # let conn = bed.connection().await?;
//! start_agent(&conn).await?;
//! // Registered while the connection lives.
//! let agents = AgentManagerProxy::new(&conn).await?;
//! assert_eq!(agents.agent_count().await?, 1);
//! # Ok(())
//! # }
//! ```
//!
//! # An EXEC handler
//!
//! A program carries out a MO's EXECs (TS §5.3.5): it registers for the MO (an
//! administrator's handler definition in `/etc/omadmd/handlers/` lets its user), answers
//! 202 ("accepted, the result follows"), and reports the result when done; the daemon sends
//! it to the server as a Generic Alert.
//!
//! ```
//! use omadm_client::ManagerProxy;
//!
//! struct Reboot {
//!     manager: ManagerProxy<'static>,
//! }
//!
//! #[zbus::interface(name = "org.omadm.Client1.ExecHandler")]
//! impl Reboot {
//!     async fn exec(&self, token: String, client_uri: String, server_id: String) -> (u32, String) {
//!         println!("{server_id} asks for {client_uri}");
//!         let manager = self.manager.clone();
//!         tokio::spawn(async move {
//!             // ... do the work, then report its DM status (200: done).
//!             if let Err(e) = manager.exec_result(&token, 200, "").await {
//!                 eprintln!("cannot report the result: {e}");
//!             }
//!         });
//!         (202, String::new())
//!     }
//! }
//!
//! async fn start_handler(conn: &zbus::Connection) -> zbus::Result<()> {
//!     let manager = ManagerProxy::new(conn).await?;
//!     let path = "/org/example/Reboot";
//!     conn.object_server().at(path, Reboot { manager: manager.clone() }).await?;
//!     manager
//!         .register_exec_handler("urn:example:mo:reboot:1.0//Reboot", &path.try_into()?)
//!         .await
//! }
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> zbus::Result<()> {
//! # let script = r#"{"sessions": [
//! #   {"packages": [{"CMD": [["END"]]}]},
//! #   {"packages": [{"CMD": [["EXEC", "urn:example:mo:reboot:1.0/box/Reboot", "{base}/dm/results"]]},
//! #                 {"expect": [202], "CMD": [["END"]]}]},
//! #   {"packages": [{"CMD": [["END"]]}]}]}"#;
//! # let bed = omadm_client::testbed::Testbed::start(Some(script)).await;
//! # assert!(bed.server_saw("package1", 30));
//! # let conn = bed.connection().await?;
//! start_handler(&conn).await?;
//! // A server's session EXECs Reboot: the handler accepts, and its result reaches the
//! // server in a session of its own.
//! ManagerProxy::new(&conn).await?.start_session("").await?;
//! # assert!(bed.server_saw(r#""ResultCode":200"#, 30), "{}", std::fs::read_to_string(&bed.record).unwrap_or_default());
//! # Ok(())
//! # }
//! ```

pub mod agent;
mod error;
pub mod handler;
pub mod proxies;
#[cfg(feature = "testbed")]
#[doc(hidden)]
pub mod testbed;
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
