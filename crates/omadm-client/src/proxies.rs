//! Proxies of omadmd's interfaces, for the programs that call them (`Manager`, `Tree`,
//! `AgentManager` on `org.omadm.Client1`) and for the daemon, which calls the ones SHOW
//! agents and EXEC handlers implement (`Agent`, `ExecHandler`). Methods that need
//! authorization allow interactive authentication: with a polkit agent running (say
//! `pkttyagent`), the administrator is asked for a password instead of being refused.

use zbus::proxy;

use crate::{AccountChange, AccountRow, AccountState, HistoryRow, ReloadReport};

/// `org.omadm.Client1.Manager`.
#[proxy(
    interface = "org.omadm.Client1.Manager",
    default_service = "org.omadm.Client1",
    default_path = "/org/omadm/Client1"
)]
pub trait Manager {
    /// Asks for a session ("" = every server).
    #[zbus(allow_interactive_auth)]
    fn start_session(&self, server_id: &str) -> zbus::Result<()>;
    /// (server id, name, URL) per account.
    fn accounts(&self) -> zbus::Result<Vec<AccountRow>>;
    /// Where one account stands.
    fn account_state(&self, server_id: &str) -> zbus::Result<AccountState>;
    /// Ends the session running with a server.
    #[zbus(allow_interactive_auth)]
    fn cancel_session(&self, server_id: &str) -> zbus::Result<()>;
    /// Provisions accounts from a bootstrap document.
    #[zbus(allow_interactive_auth)]
    fn add_account(
        &self,
        name: &str,
        document: &[u8],
        dry_run: bool,
        replace: bool,
    ) -> zbus::Result<AccountChange>;
    /// Removes a server's account; the instances deleted.
    #[zbus(allow_interactive_auth)]
    fn remove_account(&self, server_id: &str) -> zbus::Result<Vec<String>>;
    /// Re-reads the configuration and bootstrap files.
    #[zbus(allow_interactive_auth)]
    fn reload(&self) -> zbus::Result<ReloadReport>;
    /// The bootstrap files refused at the last start or reload: (file, why).
    #[zbus(property)]
    fn bootstrap_refused(&self) -> zbus::Result<Vec<(String, String)>>;
    /// Recent sessions.
    fn history(&self, limit: u32) -> zbus::Result<Vec<HistoryRow>>;
    /// Queues a Generic Alert.
    #[zbus(allow_interactive_auth)]
    fn queue_alert(&self, server_id: &str, alert_json: &str) -> zbus::Result<()>;
    /// Hands over a notification.
    #[zbus(allow_interactive_auth)]
    fn inject_notification(&self, package: &[u8]) -> zbus::Result<String>;
    /// Registers an EXEC handler object for a MOID or MOID//subtree.
    #[zbus(allow_interactive_auth)]
    fn register_exec_handler(&self, target: &str, path: &zbus::ObjectPath<'_>) -> zbus::Result<()>;
    /// Unregisters it.
    fn unregister_exec_handler(&self, target: &str) -> zbus::Result<()>;
    /// Registers an EXEC handler under a well-known name the caller owns: its accepted
    /// EXECs wait for that name across restarts.
    #[zbus(allow_interactive_auth)]
    fn register_exec_handler_as(
        &self,
        target: &str,
        path: &zbus::ObjectPath<'_>,
        name: &str,
    ) -> zbus::Result<()>;
    /// The EXECs the caller accepted and has not answered: (token, ClientURI, server).
    fn pending_execs(&self) -> zbus::Result<Vec<(String, String, String)>>;
    /// A handler keeps its MO current: puts (a dmmo+json document) after deletes.
    fn handler_update(&self, document: &str, delete: &[&str]) -> zbus::Result<()>;
    /// Reports a result accepted earlier with 202.
    fn exec_result(&self, token: &str, status: u32, alert_json: &str) -> zbus::Result<()>;
    /// Fetches the package at `url` for the pending EXEC `token` under the daemon's rules
    /// for that EXEC's server, at most `max_bytes`: a read-only file descriptor of it and
    /// its size. Fails with one of the fetch errors of [`crate::Error`].
    fn fetch_package(
        &self,
        token: &str,
        url: &str,
        max_bytes: u64,
    ) -> zbus::Result<(zbus::OwnedFd, u64)>;
    /// Daemon version.
    #[zbus(property)]
    fn version(&self) -> zbus::Result<String>;
    /// `idle` or `session`.
    #[zbus(property)]
    fn state(&self) -> zbus::Result<String>;
    /// Server of the running session.
    #[zbus(property)]
    fn active_server(&self) -> zbus::Result<String>;
    /// A session started.
    #[zbus(signal)]
    fn session_started(&self, server_id: String, trigger: String) -> zbus::Result<()>;
    /// A running session's progress.
    #[zbus(signal)]
    fn session_progress(
        &self,
        server_id: String,
        packages: u32,
        commands: u32,
        current: String,
    ) -> zbus::Result<()>;
    /// An alert was queued through the API.
    #[zbus(signal)]
    fn alert_queued(&self, server_id: String, alert_type: String) -> zbus::Result<()>;
    /// A server took queued alerts.
    #[zbus(signal)]
    fn alerts_delivered(&self, server_id: String, count: u32) -> zbus::Result<()>;
    /// A notification was accepted.
    #[zbus(signal)]
    fn notification_accepted(
        &self,
        server_id: String,
        trigger: String,
        via: String,
    ) -> zbus::Result<()>;
    /// A session finished.
    #[zbus(signal)]
    fn session_finished(
        &self,
        id: i64,
        server_id: String,
        outcome: String,
        detail: String,
    ) -> zbus::Result<()>;
}

/// `org.omadm.Client1.Tree`.
#[proxy(
    interface = "org.omadm.Client1.Tree",
    default_service = "org.omadm.Client1",
    default_path = "/org/omadm/Client1"
)]
pub trait Tree {
    /// (MOID, MIID, CV) per instance.
    fn list_instances(&self) -> zbus::Result<Vec<(String, String, String)>>;
    /// MO data at a ClientURI.
    fn get(&self, client_uri: &str) -> zbus::Result<String>;
    /// The configuration of `moid` a local application asks for (TS §5.3.10): (outcome,
    /// server, where from, ClientURIs).
    fn request_configuration(
        &self,
        moid: &str,
    ) -> zbus::Result<(String, String, String, Vec<String>)>;
}

/// `org.omadm.Client1.AgentManager`.
#[proxy(
    interface = "org.omadm.Client1.AgentManager",
    default_service = "org.omadm.Client1",
    default_path = "/org/omadm/Client1"
)]
pub trait AgentManager {
    /// Registers the caller's agent object.
    fn register_agent(&self, path: &zbus::ObjectPath<'_>) -> zbus::Result<()>;
    /// Unregisters it.
    fn unregister_agent(&self) -> zbus::Result<()>;
    /// How many agents are registered.
    #[zbus(property)]
    fn agent_count(&self) -> zbus::Result<u32>;
    /// Whether SHOW may open plain http URLs.
    #[zbus(property)]
    fn allow_http_show(&self) -> zbus::Result<bool>;
}

/// `org.omadm.Client1.Agent`: what a SHOW agent serves at the path it registers
/// (`AgentManager.RegisterAgent`). Only the daemon calls it ([`crate::agent::check_show`]).
#[proxy(interface = "org.omadm.Client1.Agent")]
pub trait Agent {
    /// Opens `url` for the person at the device, saying `server_name` asks for it; returns
    /// once the page is on its way. `org.omadm.Client1.Agent.Error.Declined` when the user
    /// declined (the server gets 507).
    fn show(&self, url: &str, server_name: &str) -> zbus::Result<()>;
}

/// `org.omadm.Client1.ExecHandler`: what an EXEC handler serves at the path it registers
/// (`Manager.RegisterExecHandler`). Only the daemon calls it.
#[proxy(interface = "org.omadm.Client1.ExecHandler")]
pub trait ExecHandler {
    /// An EXEC of `client_uri` from `server_id`: the final DM status and, optionally, a
    /// Generic Alert (JSON) for its result; or 202 and "" when the handler reports later
    /// with `Manager.ExecResult(token, ...)`.
    fn exec(&self, token: &str, client_uri: &str, server_id: &str) -> zbus::Result<(u32, String)>;
}
