//! `org.omadm.Client1.Manager`: the interface, its properties and signals; its methods'
//! work by concern in `sessions`, `accounts`, `alerts` and `handlers`. Reads are open;
//! everything that changes something is authorized.

mod accounts;
mod alerts;
mod handlers;
mod sessions;

pub(super) use handlers::{fail_orphaned_execs, finish_exec};

use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zbus::{Connection, interface};

use super::peers::{Peer, handler_target};
use super::{AccountChange, AccountRow, AccountState, HistoryRow, ReloadReport};
use super::{Action, Error, Shared, authorize};
use crate::engine::Trigger;
use crate::protocol::packages::Alert;
use crate::protocol::uri::redact;
use crate::scheduler::Request;
use crate::tree::{Journal as _, Tree as _};
use crate::tree::{OutItem, Outgoing, PendingExec, TreeOp};

/// The Manager interface.
#[derive(Debug)]
pub struct Manager {
    shared: Shared,
}

impl Manager {
    /// Over the daemon's state.
    pub fn new(shared: Shared) -> Manager {
        Manager { shared }
    }

    /// Makes `sender`'s object at `path` the handler of `target`, saying whom it displaced.
    fn set_handler(&self, target: &str, sender: &str, path: &zbus::ObjectPath<'_>) {
        let displaced = self.shared.peers.set_handler(
            target,
            Peer {
                bus_name: sender.to_owned(),
                path: path.to_string(),
            },
        );
        if let Some(old) = displaced {
            tracing::warn!(target, handler = %sender, displaced = %old.bus_name, displaced_path = %old.path,
                "EXEC handler registration displaced another handler of the same target");
        }
    }

    fn account(&self, server_id: &str) -> Result<crate::mo::account::Account, Error> {
        crate::mo::account::load(&self.shared.prepared.store, server_id)?
            .ok_or_else(|| Error::NotFound(format!("no DM account for server {server_id:?}")))
    }
}

#[interface(name = "org.omadm.Client1.Manager")]
impl Manager {
    /// Asks for a client-initiated session with one server, or with every server when
    /// `server_id` is empty. Returns at once; follow it with SessionStarted and
    /// SessionFinished. Requests that arrive while one is pending are merged.
    async fn start_session(
        &self,
        server_id: &str,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(), Error> {
        sessions::start_session(self, server_id, header, conn).await
    }

    /// Ends the session running with a server: the connection is dropped (the server sees
    /// it end), commands already applied stay, and the history says `cancelled`. Queued
    /// work is retried after the backoff. `NotFound` when no session runs with it.
    async fn cancel_session(
        &self,
        server_id: &str,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(), Error> {
        sessions::cancel_session(self, server_id, header, conn).await
    }

    /// The DM accounts: (server id, display name, server URL).
    fn accounts(&self) -> Result<Vec<AccountRow>, Error> {
        accounts::accounts(self)
    }

    /// One account and where it stands: what is queued for its server, whether a session
    /// is owed, and how the last session went.
    fn account_state(&self, server_id: &str) -> Result<AccountState, Error> {
        accounts::account_state(self, server_id)
    }

    /// Provisions accounts from a bootstrap document (docs/bootstrap.md's format), applied
    /// as a factory bootstrap in one transaction; each account it provisions is owed a
    /// session with BootstrapComplete, asked for at once. `name` names the document
    /// (recorded as `added:<name>`): the same name with other content re-bootstraps what
    /// it provisioned before. A server that has an account from elsewhere is refused
    /// unless `replace`. With `dry_run` nothing is written: the answer says what would be.
    async fn add_account(
        &self,
        name: &str,
        document: Vec<u8>,
        dry_run: bool,
        replace: bool,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<AccountChange, Error> {
        accounts::add_account(self, name, document, dry_run, replace, header, conn).await
    }

    /// Removes a server's account and what only it owned, in one transaction: the DMAcc
    /// instance(s) with its SrvID, the MO instances the server created, its queued alerts,
    /// subscriptions, DEFAULT registrations, owed sessions and pending EXECs. Its session
    /// history stays. Returns the instances deleted (`MOID/MIID`).
    async fn remove_account(
        &self,
        server_id: &str,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<Vec<String>, Error> {
        accounts::remove_account(self, server_id, header, conn).await
    }

    /// Reads the configuration, the DDF directories and `bootstrap.d` again (as SIGHUP and
    /// `systemctl reload` do): definitions of MOs installed since are loaded, new or
    /// changed bootstrap files are applied, and the answer says what changed
    /// and which changed settings need a restart. `InvalidArgument` with the file, line and
    /// key when the configuration is not usable; the daemon then runs on unchanged.
    async fn reload(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<ReloadReport, Error> {
        accounts::reload(self, header, conn).await
    }

    /// The bootstrap files refused at the last start or reload: (file name, why). A
    /// refused file changed nothing; fix it and reload.
    #[zbus(property)]
    fn bootstrap_refused(&self) -> Vec<(String, String)> {
        self.shared
            .prepared
            .bootstrap_refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The most recent sessions, newest first.
    fn history(&self, limit: u32) -> Result<Vec<HistoryRow>, Error> {
        sessions::history(self, limit)
    }

    /// Queues a Generic Alert (JSON, TS §7.2.1.5) for a server and asks for a session to
    /// deliver it; it stays queued until the server has taken it.
    async fn queue_alert(
        &self,
        server_id: &str,
        alert_json: &str,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<(), Error> {
        alerts::queue_alert(self, server_id, alert_json, header, conn, emitter).await
    }

    /// Hands over a DM Notification received by another transport (an SMS bridge, a vendor
    /// push service): a bare Package#0 or a WAP Push. It is checked like one from UDP;
    /// returns the server it woke.
    async fn inject_notification(
        &self,
        package: Vec<u8>,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<String, Error> {
        alerts::inject_notification(self, package, header, conn, emitter).await
    }

    /// Registers the caller's object at `path` as the EXEC handler of `target`: a MOID, or
    /// `MOID//path` for one subtree of every instance of that MO. EXECs on nodes there call
    /// its `org.omadm.Client1.ExecHandler.Exec(token, client_uri, server_id) -> (status,
    /// alert_json)`; the deepest registration holding a node handles it. It answers the
    /// final status at once, or 202 and later `ExecResult(token, …)`. A later registration
    /// for the same target replaces this one.
    async fn register_exec_handler(
        &self,
        target: &str,
        path: zbus::ObjectPath<'_>,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(), Error> {
        handlers::register_exec_handler(self, target, path, header, conn).await
    }

    /// Unregisters the caller as the EXEC handler of `target`.
    async fn unregister_exec_handler(
        &self,
        target: &str,
        #[zbus(header)] header: Header<'_>,
    ) -> Result<(), Error> {
        handlers::unregister_exec_handler(self, target, header).await
    }

    /// Registers the caller as the EXEC handler of `target` under the well-known bus name
    /// `name`, which it must own now. EXECs it accepts with 202 are then answered for by
    /// `name`: they wait across restarts of the handler and of the daemon (a firmware
    /// update that needs a reboot) instead of failing when the handler leaves the bus.
    async fn register_exec_handler_as(
        &self,
        target: &str,
        path: zbus::ObjectPath<'_>,
        name: &str,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(), Error> {
        handlers::register_exec_handler_as(self, target, path, name, header, conn).await
    }

    /// The EXECs the caller accepted with 202 and has not answered: (token, ClientURI,
    /// server). A handler registered under a well-known name sees those of that name, so
    /// that after a restart it can finish what it started.
    async fn pending_execs(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<Vec<(String, String, String)>, Error> {
        handlers::pending_execs(self, header, conn).await
    }

    /// An EXEC handler keeps the MO it handles current: `document` (`application/dmmo+json`,
    /// may be empty) puts each item at its ClientURI (an instance root creates the
    /// instance), after every ClientURI in `delete` is deleted. Only nodes of the MOs the
    /// caller handles, each checked against the MO's DDF, all in one transaction; cache
    /// validators move and subscribers are owed deliveries as for a server's change.
    async fn handler_update(
        &self,
        document: &str,
        delete: Vec<String>,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(), Error> {
        handlers::handler_update(self, document, delete, header, conn).await
    }

    /// A handler reports the result of an EXEC it accepted with 202: it becomes the
    /// asynchronous Generic Alert (its own `alert_json`, or a `ResultCode` one), queued
    /// durably for the EXEC's ServerURI, and a session is asked for to deliver it.
    async fn exec_result(
        &self,
        token: &str,
        status: u32,
        alert_json: &str,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<(), Error> {
        handlers::exec_result(self, token, status, alert_json, header, conn, emitter).await
    }

    /// An EXEC handler has the daemon fetch the package `url` for the EXEC `token` it
    /// accepted and has not answered: under the daemon's HTTP rules for that EXEC's server
    /// (https, its CAs, where a URL may lead, the account's credentials for its own origin),
    /// at most `max_bytes` and `limits.max-download-bytes`. Returns a read-only descriptor
    /// of the package and its size; why it failed as `BadUrl`, `DownloadAuth`,
    /// `ServerUnavailable`, `ServerError`, `TooLarge`, `Timeout` or `Network`. The handler
    /// itself needs no network.
    async fn fetch_package(
        &self,
        token: &str,
        url: &str,
        max_bytes: u64,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(zbus::OwnedFd, u64), Error> {
        handlers::fetch_package(self, token, url, max_bytes, header, conn).await
    }

    /// The daemon's version.
    #[zbus(property)]
    fn version(&self) -> String {
        env!("CARGO_PKG_VERSION").to_owned()
    }

    /// `idle`, or `session` while a session runs.
    #[zbus(property)]
    fn state(&self) -> String {
        self.shared.status().0
    }

    /// The servers with a running session, comma-separated, or empty.
    #[zbus(property)]
    fn active_server(&self) -> String {
        self.shared.status().1
    }

    /// A session started.
    #[zbus(signal)]
    pub async fn session_started(
        emitter: &SignalEmitter<'_>,
        server_id: &str,
        trigger: &str,
    ) -> zbus::Result<()>;

    /// A running session's progress, before each package's commands run: the server,
    /// Package#2s and commands received so far, and what the package asks (`5 GET, 1 HGET`).
    #[zbus(signal)]
    pub async fn session_progress(
        emitter: &SignalEmitter<'_>,
        server_id: &str,
        packages: u32,
        commands: u32,
        current: &str,
    ) -> zbus::Result<()>;

    /// A Generic Alert was queued for a server through this API (QueueAlert, ExecResult):
    /// the server and the alert's type.
    #[zbus(signal)]
    pub async fn alert_queued(
        emitter: &SignalEmitter<'_>,
        server_id: &str,
        alert_type: &str,
    ) -> zbus::Result<()>;

    /// A server took queued alerts in a session: how many.
    #[zbus(signal)]
    pub async fn alerts_delivered(
        emitter: &SignalEmitter<'_>,
        server_id: &str,
        count: u32,
    ) -> zbus::Result<()>;

    /// A DM Notification was accepted and asks for a session: the server, the trigger
    /// the session will have (`notification:<id>`), and how it came (`udp`, `dbus`).
    #[zbus(signal)]
    pub async fn notification_accepted(
        emitter: &SignalEmitter<'_>,
        server_id: &str,
        trigger: &str,
        via: &str,
    ) -> zbus::Result<()>;

    /// A session finished: its history id, server, outcome (`ended`, `aborted`), and why.
    #[zbus(signal)]
    pub async fn session_finished(
        emitter: &SignalEmitter<'_>,
        id: i64,
        server_id: &str,
        outcome: &str,
        detail: &str,
    ) -> zbus::Result<()>;
}

/// A signal that could not be sent is logged: what it tells has happened regardless.
pub(super) fn signal_failed(sent: zbus::Result<()>) {
    if let Err(e) = sent {
        tracing::warn!(error = %e, "cannot send a D-Bus signal");
    }
}
