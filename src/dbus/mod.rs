//! The D-Bus face of the daemon (`org.omadm.Client1` on the system bus): thin interface
//! shells that parse, authorize the caller, call the store, scheduler or engine, and map
//! errors. Names are fixed by the product spec; `dbus/org.omadm.Client1.xml` is the
//! published contract and a test compares the live introspection with it.

mod agents;
mod handler_rules;
pub mod logind;
mod manager;
pub mod peers;
mod polkit;
mod tree;

use std::sync::Arc;

use zbus::message::Header;

use crate::tree::Journal as _;

pub use agents::AgentManager;
pub use manager::Manager;
pub use omadm_client::{
    AccountChange, AccountRow, AccountState, BUS_NAME, Error, HistoryRow, PATH, ReloadReport,
    error_name, no_owner,
};
pub use polkit::{Action, Caller, authorize, authorize_caller};
pub use tree::{Configuration, ConfigureRequest, Configurer, Tree};

use crate::scheduler;
use crate::state::Prepared;

impl From<crate::tree::StoreError> for Error {
    fn from(e: crate::tree::StoreError) -> Self {
        tracing::error!(error = %e, "store failed during a D-Bus call");
        Error::Failed(format!("the tree store failed: {e}"))
    }
}

/// What the interfaces share.
#[derive(Debug, Clone)]
pub struct Shared {
    /// The daemon's state.
    pub prepared: Arc<Prepared>,
    /// Where session requests go.
    pub scheduler: scheduler::Handle,
    /// How injected notifications are checked.
    pub notify_policy: crate::notify::Policy,
    /// (state, active server), shown as properties.
    pub status: Arc<std::sync::Mutex<(String, String)>>,
    /// Registered EXEC handlers.
    pub peers: peers::Peers,
    /// `sessions.allow-http-show`, told to agents.
    pub allow_http_show: bool,
    /// Where configuration requests go (the daemon runs them with the engine).
    pub configure: tree::Configurer,
    /// The bounds on a bootstrap document (`AddAccount`), and on a handler's update.
    pub bootstrap_limits: crate::mo::bootstrap::BootstrapLimits,
    /// How long an EXEC accepted under a well-known name waits for its result.
    pub exec_result_max: std::time::Duration,
    /// The sessions running now, with their cancel switches.
    pub running: crate::session::Running,
    /// When the next session with each server is due, and why.
    pub outlook: scheduler::Outlook,
    /// Where reload requests go (the daemon reloads and answers).
    pub reloads: tokio::sync::mpsc::UnboundedSender<ReloadRequest>,
    /// Where handlers' package fetches go (the daemon downloads and answers).
    pub fetches: tokio::sync::mpsc::UnboundedSender<FetchRequest>,
}

/// A handler's request for a package (`FetchPackage`), for an EXEC of `server_id`: the
/// answer is a read-only file of it and its size.
#[derive(Debug)]
pub struct FetchRequest {
    /// The pending EXEC's token: one fetch at a time each.
    pub token: String,
    /// The server whose EXEC names the package: its rules and credentials apply.
    pub server_id: String,
    /// Where the package is.
    pub url: String,
    /// The most the handler takes.
    pub max_bytes: u64,
    /// Where the answer goes.
    pub reply: tokio::sync::oneshot::Sender<Result<(std::fs::File, u64), Error>>,
}

/// A reload request: where the answer goes (the report, or why the configuration was
/// refused).
pub type ReloadRequest = tokio::sync::oneshot::Sender<Result<ReloadReport, String>>;

impl Shared {
    /// The current (state, active server).
    pub fn status(&self) -> (String, String) {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// The caller's unix user, from the bus (never from arguments).
pub async fn caller_uid(conn: &zbus::Connection, header: &Header<'_>) -> Result<u32, Error> {
    let sender = header
        .sender()
        .ok_or_else(|| Error::AccessDenied("no sender".into()))?;
    let dbus = zbus::fdo::DBusProxy::new(conn).await?;
    dbus.get_connection_unix_user(sender.clone().into())
        .await
        .map_err(|e| Error::AccessDenied(format!("cannot identify the caller: {e}")))
}

/// Connects to the bus, serves the interfaces, then takes the name (so no call arrives
/// before the handlers exist); refuses to replace another owner. Peers that leave the bus
/// are forgotten as they go (their agents and handlers with them).
pub async fn serve(address: Option<&str>, shared: Shared) -> zbus::Result<zbus::Connection> {
    let builder = match address {
        Some(a) => zbus::connection::Builder::address(a),
        None => zbus::connection::Builder::system(),
    };
    let conn = builder
        .serve_at(PATH, Manager::new(shared.clone()))
        .serve_at(PATH, Tree::new(shared.clone()))
        .serve_at(PATH, AgentManager::new(shared.clone()))
        .name(BUS_NAME)
        .allow_name_replacements(false)
        .replace_existing_names(false)
        .build()
        .await?;
    let dbus = zbus::fdo::DBusProxy::new(&conn).await?;
    let departures = dbus.receive_name_owner_changed().await?;
    // EXECs accepted by handlers of an earlier run that have since left the bus will never
    // be answered: fail them now (a handler still there may still answer).
    let handlers: std::collections::BTreeSet<String> = match shared
        .prepared
        .store
        .pending_execs(None)
    {
        Ok(p) => p.into_iter().map(|p| p.handler).collect(),
        Err(e) => {
            tracing::error!(error = %e, "cannot read pending EXECs; those of gone handlers stay pending");
            Default::default()
        }
    };
    // Those recorded under a well-known name wait for it (RegisterExecHandlerAs).
    for handler in handlers.into_iter().filter(|h| h.starts_with(':')) {
        let present = match zbus::names::BusName::try_from(handler.as_str()) {
            Ok(name) => dbus.name_has_owner(name).await.unwrap_or(false),
            Err(_) => false,
        };
        if !present {
            manager::fail_orphaned_execs(&shared, &handler);
        }
    }
    tokio::spawn(expire_waiting_execs(shared.clone()));
    tokio::spawn(forget_departed(departures, shared, conn.clone()));
    Ok(conn)
}

/// EXECs accepted under a well-known name wait for it across restarts, but not for ever:
/// one still unanswered `exec_result_max` after it was accepted (its handler was removed,
/// say) is reported to the server as failed (500), checked a few times per that period.
async fn expire_waiting_execs(shared: Shared) {
    let max = shared.exec_result_max;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};
    let every = (max / 4).clamp(Duration::from_secs(1), Duration::from_secs(300));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let pending = match shared.prepared.store.pending_execs(None) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "cannot read pending EXECs; their expiry waits");
                continue;
            }
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let limit = i64::try_from(max.as_secs()).unwrap_or(i64::MAX);
        for p in pending {
            if p.handler.starts_with(':') || now.saturating_sub(p.created_at) < limit {
                continue;
            }
            let status = crate::engine::sc::INTERNAL_ERROR;
            let alert = crate::engine::exec_result_alert(&p.client_uri, status);
            match manager::finish_exec(&shared, &p, status, &alert) {
                Ok(()) => {
                    tracing::warn!(server = %p.server_id, node = %p.client_uri, handler = %p.handler,
                    waited_secs = now.saturating_sub(p.created_at),
                    "EXEC result not reported in time (sessions.exec-result-max-secs); the server is told it failed (500)")
                }
                Err(e) => tracing::error!(error = ?e, "cannot report an expired EXEC"),
            }
        }
    }
}

/// Signals `AgentCount` after agents went away outside a method call.
pub async fn agent_count_changed(conn: &zbus::Connection) {
    if let Ok(iface) = conn
        .object_server()
        .interface::<_, AgentManager>(PATH)
        .await
        && let Err(e) = iface
            .get()
            .await
            .agent_count_changed(iface.signal_emitter())
            .await
    {
        tracing::warn!(error = %e, "cannot signal AgentCount");
    }
}

/// Forgets what each unique name that leaves the bus had registered (linux-integration.md
/// §3.3: agents that vanish are dropped, not just skipped when a call to them fails), and
/// fails the EXECs it had accepted and can no longer answer.
async fn forget_departed(
    mut changes: zbus::fdo::NameOwnerChangedStream,
    shared: Shared,
    conn: zbus::Connection,
) {
    use futures_util::StreamExt as _;
    while let Some(signal) = changes.next().await {
        let Ok(args) = signal.args() else { continue };
        if args.new_owner().is_some() || !args.name().starts_with(':') {
            continue;
        }
        if shared.peers.forget(args.name()) {
            tracing::info!(peer = %args.name(), "a registered peer left the bus; its agent and handlers are forgotten");
            agent_count_changed(&conn).await;
        }
        manager::fail_orphaned_execs(&shared, args.name());
    }
}

#[cfg(test)]
mod tests;
