//! Client proxies of the omadmd D-Bus API, shared by `omadmctl` and the tests. Methods that
//! need authorization allow interactive authentication: with a polkit agent running (say
//! `pkttyagent`), the administrator is asked for a password instead of being refused.

use zbus::proxy;

use super::manager::{AccountState, HistoryRow};

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
    fn accounts(&self) -> zbus::Result<Vec<(String, String, String)>>;
    /// Where one account stands.
    fn account_state(&self, server_id: &str) -> zbus::Result<AccountState>;
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
    /// Reports a result accepted earlier with 202.
    fn exec_result(&self, token: &str, status: u32, alert_json: &str) -> zbus::Result<()>;
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
}

/// Errors an agent answers `Show` with.
#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.omadm.Client1.Agent.Error")]
pub enum AgentError {
    /// A D-Bus failure.
    #[zbus(error)]
    ZBus(zbus::Error),
    /// The user declined to open the page (the server gets 507).
    Declined(String),
}
