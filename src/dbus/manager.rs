//! `org.omadm.Client1.Manager`: sessions, accounts, history, alerts and notifications from
//! other transports. Reads are open; everything that changes something is authorized.

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

/// Ends a pending EXEC with its `status` and result alert: queued durably for the EXEC's
/// ServerURI in the same transaction that forgets the EXEC, and a session asked for to
/// deliver it.
pub(super) fn finish_exec(
    shared: &Shared,
    pending: &PendingExec,
    status: u16,
    alert: &Alert,
) -> Result<(), Error> {
    let alert = serde_json::to_value(alert).map_err(|e| Error::Failed(e.to_string()))?;
    shared.prepared.store.apply(&[
        TreeOp::Enqueue(Outgoing {
            id: 0,
            server_id: pending.server_id.clone(),
            item: OutItem::ExecResult {
                client_uri: pending.client_uri.clone(),
                status,
                alert,
                to: pending.report_to.clone(),
            },
        }),
        TreeOp::RemovePendingExec {
            token: pending.token.clone(),
        },
    ])?;
    shared.scheduler.request(
        Some(&pending.server_id),
        Request {
            trigger: Trigger::ClientInitiated,
            req_mos: false,
            alerts_elsewhere: pending.report_to.is_some(),
        },
    );
    Ok(())
}

/// Ends, with 500 ("command failed"), the EXECs a handler accepted and can no longer
/// answer because it has left the bus: the server gets an error, not silence.
pub(super) fn fail_orphaned_execs(shared: &Shared, handler: &str) {
    let pending = match shared.prepared.store.pending_execs(Some(handler)) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "cannot read pending EXECs");
            return;
        }
    };
    for p in pending {
        let status = crate::engine::sc::INTERNAL_ERROR;
        let alert = crate::engine::exec_result_alert(&p.client_uri, status);
        match finish_exec(shared, &p, status, &alert) {
            Ok(()) => {
                tracing::warn!(server = %p.server_id, node = %p.client_uri, handler, "EXEC handler left before answering; the server is told it failed (500)")
            }
            Err(e) => tracing::error!(error = ?e, "cannot report an orphaned EXEC"),
        }
    }
}

/// The unique name that owns `name` now, if any.
async fn owner_of(conn: &Connection, name: &zbus::names::WellKnownName<'_>) -> Option<String> {
    let dbus = zbus::fdo::DBusProxy::new(conn).await.ok()?;
    dbus.get_name_owner(zbus::names::BusName::WellKnown(name.clone()))
        .await
        .ok()
        .map(|o| o.to_string())
}

/// True when `sender` may answer for EXECs recorded under `handler`: it is that unique
/// name, or it owns that well-known name now.
async fn answers_for(conn: &Connection, sender: &str, handler: &str) -> bool {
    if sender == handler {
        return true;
    }
    match zbus::names::WellKnownName::try_from(handler) {
        Ok(name) => owner_of(conn, &name).await.as_deref() == Some(sender),
        Err(_) => false,
    }
}

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
        authorize(conn, &header, Action::StartSession).await?;
        let req = Request {
            trigger: Trigger::ClientInitiated,
            req_mos: false,
            alerts_elsewhere: false,
        };
        // The administrator asks: the backoff after failures is not waited out.
        if server_id.is_empty() {
            self.shared.scheduler.request_explicit(None, req);
        } else {
            self.account(server_id)?;
            self.shared.scheduler.request_explicit(Some(server_id), req);
        }
        Ok(())
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
        authorize(conn, &header, Action::CancelSession).await?;
        if self.shared.running.cancel(server_id) {
            tracing::info!(server = %server_id, "session cancel asked over D-Bus");
            Ok(())
        } else {
            Err(Error::NotFound(format!(
                "no session runs with server {server_id:?}"
            )))
        }
    }

    /// The DM accounts: (server id, display name, server URL).
    fn accounts(&self) -> Result<Vec<AccountRow>, Error> {
        Ok(crate::mo::account::all(&self.shared.prepared.store)?
            .into_iter()
            .map(|a| AccountRow {
                url: redact(&a.srv_uri),
                server_id: a.server_id,
                name: a.name,
            })
            .collect())
    }

    /// One account and where it stands: what is queued for its server, whether a session
    /// is owed, and how the last session went.
    fn account_state(&self, server_id: &str) -> Result<AccountState, Error> {
        let account = self.account(server_id)?;
        let store = &self.shared.prepared.store;
        let queued = store.outbox(server_id)?.len();
        let owed = store
            .owed_sessions()?
            .into_iter()
            .find(|o| o.server_id == server_id)
            .map(|o| o.reason.as_str().to_owned());
        let last = store.last_session(server_id)?;
        let next = self.shared.outlook.next(server_id);
        Ok(AccountState {
            server_id: account.server_id,
            name: account.name,
            url: redact(&account.srv_uri),
            queued: u32::try_from(queued).unwrap_or(u32::MAX),
            owed,
            last_session: last.as_ref().map(|s| s.id),
            last_trigger: last.as_ref().map(|s| s.trigger.clone()),
            last_outcome: last.as_ref().map(|s| s.outcome.clone()),
            last_ended: last.as_ref().and_then(|s| s.ended_at),
            last_detail: last.and_then(|s| s.detail),
            next_attempt: next.as_ref().map(|(at, _)| *at),
            next_reason: next.map(|(_, why)| why),
        })
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
        use crate::mo::bootstrap::{self, Outcome, Replace};
        authorize(conn, &header, Action::ManageAccounts).await?;
        if name.is_empty() || name.contains('/') || name.chars().any(char::is_control) {
            return Err(Error::InvalidArgument(
                "the document's name must be a file name (no '/')".into(),
            ));
        }
        let p = &self.shared.prepared;
        let source = format!("added:{name}");
        let replace = if replace {
            Replace::Any
        } else {
            Replace::OwnOnly
        };
        let limits = self.shared.bootstrap_limits;
        let refused = |e: bootstrap::BootstrapError| match e {
            bootstrap::BootstrapError::Store(e) => Error::from(e),
            e => Error::InvalidArgument(format!("{name}: {e}")),
        };
        let (ops, outcome) = bootstrap::plan(
            &p.store,
            &p.registry.get(),
            &source,
            &document,
            limits,
            replace,
        )
        .map_err(refused)?;
        let mut change = AccountChange {
            outcome: "unchanged".into(),
            ..AccountChange::default()
        };
        if let Outcome::Applied { instances, servers } = outcome {
            for s in &servers {
                if crate::mo::account::find(&p.store, s)?.is_some() {
                    change.replaced.push(s.clone());
                }
            }
            change.instances = instances.iter().map(ToString::to_string).collect();
            change.servers = servers;
            change.outcome = if dry_run { "would-apply" } else { "applied" }.into();
        }
        if dry_run || ops.is_empty() {
            return Ok(change);
        }
        p.store.apply(&ops)?;
        tracing::info!(source = %source, servers = ?change.servers, replaced = ?change.replaced,
            instances = ?change.instances, "account(s) added over D-Bus");
        for s in &change.servers {
            self.shared.scheduler.request(
                Some(s),
                Request {
                    trigger: Trigger::BootstrapComplete,
                    req_mos: false,
                    alerts_elsewhere: false,
                },
            );
        }
        Ok(change)
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
        authorize(conn, &header, Action::ManageAccounts).await?;
        let store = &self.shared.prepared.store;
        let Some((ops, gone)) = crate::mo::account::removal(store, server_id)? else {
            return Err(Error::NotFound(format!(
                "no DM account for server {server_id:?}"
            )));
        };
        store.apply(&ops)?;
        let gone: Vec<String> = gone.iter().map(ToString::to_string).collect();
        tracing::info!(server = %server_id, instances = ?gone, "account removed over D-Bus");
        Ok(gone)
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
        authorize(conn, &header, Action::Reload).await?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.shared
            .reloads
            .send(tx)
            .map_err(|_| Error::Failed("the daemon is stopping".into()))?;
        rx.await
            .map_err(|_| Error::Failed("the daemon is stopping".into()))?
            .map_err(Error::InvalidArgument)
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
        Ok(self
            .shared
            .prepared
            .store
            .sessions(limit.min(crate::tree::HISTORY_KEEP))?
            .into_iter()
            .map(|s| HistoryRow {
                id: s.id,
                server_id: s.server_id,
                trigger: s.trigger,
                started_at: s.started_at,
                ended_at: s.ended_at.unwrap_or(0),
                outcome: s.outcome,
                detail: s.detail.unwrap_or_default(),
                packages: s.packages,
                commands: s.commands,
            })
            .collect())
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
        authorize(conn, &header, Action::QueueAlert).await?;
        self.account(server_id)?;
        let alert: Alert = serde_json::from_str(alert_json)
            .map_err(|e| Error::InvalidArgument(format!("not a Generic Alert: {e}")))?;
        if alert.alert_type.is_empty() || (alert.data.is_some() && alert.data_type.is_none()) {
            return Err(Error::InvalidArgument(
                "an alert needs an AlertType, and a DataType when it has Data".into(),
            ));
        }
        let alert_type = alert.alert_type.clone();
        let alert = serde_json::to_value(&alert).map_err(|e| Error::Failed(e.to_string()))?;
        self.shared
            .prepared
            .store
            .apply(&[TreeOp::Enqueue(Outgoing {
                id: 0,
                server_id: server_id.to_owned(),
                item: OutItem::Alert { alert, to: None },
            })])?;
        signal_failed(Self::alert_queued(&emitter, server_id, &alert_type).await);
        self.shared
            .scheduler
            .request(Some(server_id), Request::CLIENT);
        Ok(())
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
        authorize(conn, &header, Action::InjectNotification).await?;
        let prepared = &self.shared.prepared;
        let a = prepared
            .gate
            .admit(&prepared.store, &package, self.shared.notify_policy)
            .map_err(|e| Error::InvalidArgument(format!("notification dropped: {e}")))?;
        tracing::info!(server = %a.server_id, notification_id = ?a.notification_id, "notification injected over D-Bus");
        let request = Request::notified(a.notification_id, a.req_mos);
        let name = crate::session::trigger_name(request.trigger);
        signal_failed(Self::notification_accepted(&emitter, &a.server_id, &name, "dbus").await);
        self.shared.scheduler.request_within(
            &a.server_id,
            request,
            a.start_within(self.shared.notify_policy.start_within_secs),
        );
        Ok(a.server_id)
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
        let uid = authorize(conn, &header, Action::RegisterHandler).await?;
        let sender = header
            .sender()
            .ok_or_else(|| Error::AccessDenied("no sender".into()))?
            .to_string();
        let target = handler_target(target).map_err(Error::InvalidArgument)?;
        super::handler_rules::may_register(&self.shared, uid, &target, None)?;
        tracing::info!(target, handler = %sender, path = %path, "EXEC handler registered");
        self.set_handler(&target, &sender, &path);
        Ok(())
    }

    /// Unregisters the caller as the EXEC handler of `target`.
    async fn unregister_exec_handler(
        &self,
        target: &str,
        #[zbus(header)] header: Header<'_>,
    ) -> Result<(), Error> {
        let sender = header
            .sender()
            .ok_or_else(|| Error::AccessDenied("no sender".into()))?
            .to_string();
        let key = handler_target(target).map_err(Error::InvalidArgument)?;
        if !self.shared.peers.remove_handler(&key, &sender) {
            return Err(Error::NotFound(format!("the caller handles no {target}")));
        }
        Ok(())
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
        let uid = authorize(conn, &header, Action::RegisterHandler).await?;
        let sender = header
            .sender()
            .ok_or_else(|| Error::AccessDenied("no sender".into()))?
            .to_string();
        let well_known = zbus::names::WellKnownName::try_from(name).map_err(|e| {
            Error::InvalidArgument(format!("{name:?} is not a well-known bus name: {e}"))
        })?;
        if owner_of(conn, &well_known).await.as_deref() != Some(sender.as_str()) {
            return Err(Error::AccessDenied(format!(
                "the caller does not own {name}; own it first, then register under it"
            )));
        }
        let target = handler_target(target).map_err(Error::InvalidArgument)?;
        super::handler_rules::may_register(&self.shared, uid, &target, Some(name))?;
        tracing::info!(target, handler = %sender, name, path = %path, "EXEC handler registered under its bus name");
        self.shared.peers.set_durable_name(&sender, name);
        self.set_handler(&target, &sender, &path);
        Ok(())
    }

    /// The EXECs the caller accepted with 202 and has not answered: (token, ClientURI,
    /// server). A handler registered under a well-known name sees those of that name, so
    /// that after a restart it can finish what it started.
    async fn pending_execs(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<Vec<(String, String, String)>, Error> {
        let sender = header.sender().map(ToString::to_string).unwrap_or_default();
        let mut out = Vec::new();
        for p in self.shared.prepared.store.pending_execs(None)? {
            if answers_for(conn, &sender, &p.handler).await {
                out.push((p.token, p.client_uri, p.server_id));
            }
        }
        Ok(out)
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
        let sender = header.sender().map(ToString::to_string).unwrap_or_default();
        let moids = self.shared.peers.handled_moids(&sender);
        if moids.is_empty() {
            return Err(Error::AccessDenied(
                "only a registered EXEC handler may write the tree, and only the MOs it handles"
                    .into(),
            ));
        }
        let moids = super::handler_rules::writable(&self.shared, conn, &header, moids).await?;
        let limits = self.shared.bootstrap_limits;
        let put = if document.trim().is_empty() {
            Vec::new()
        } else {
            crate::protocol::dmmo::decode(
                document.as_bytes(),
                crate::protocol::dmmo::Limits {
                    max_bytes: limits.max_file_bytes,
                    max_nodes: limits.max_nodes,
                },
            )
            .map_err(|e| {
                Error::InvalidArgument(format!("not an application/dmmo+json document: {e}"))
            })?
        };
        let written = crate::engine::local::write_local(
            &self.shared.prepared.store,
            &self.shared.prepared.registry.get(),
            &moids,
            &put,
            &delete,
            limits.max_value_bytes,
        )
        .map_err(|e| match e {
            crate::engine::local::LocalError::Store(e) => Error::from(e),
            e @ crate::engine::local::LocalError::NotYours { .. } => {
                Error::AccessDenied(e.to_string())
            }
            e => Error::InvalidArgument(e.to_string()),
        })?;
        tracing::debug!(handler = %sender, put = put.len(), delete = delete.len(), "handler updated its MO");
        for server in written.deliveries_for {
            self.shared.scheduler.request(
                Some(&server),
                Request {
                    trigger: Trigger::ClientInitiated,
                    req_mos: false,
                    alerts_elsewhere: false,
                },
            );
        }
        Ok(())
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
        let store = &self.shared.prepared.store;
        let pending = store
            .pending_exec(token)?
            .ok_or_else(|| Error::NotFound(format!("no pending EXEC {token:?}")))?;
        let sender = header.sender().map(ToString::to_string).unwrap_or_default();
        if !answers_for(conn, &sender, &pending.handler).await {
            return Err(Error::AccessDenied(
                "only the handler that accepted the EXEC may answer it".into(),
            ));
        }
        let status = u16::try_from(status)
            .ok()
            .filter(|s| crate::engine::sc::is_valid(*s))
            .ok_or_else(|| Error::InvalidArgument(format!("{status} is not a DM status code")))?;
        let alert = if alert_json.is_empty() {
            crate::engine::exec_result_alert(&pending.client_uri, status)
        } else {
            let mut a: Alert = serde_json::from_str(alert_json)
                .map_err(|e| Error::InvalidArgument(format!("not a Generic Alert: {e}")))?;
            a.source_uri
                .get_or_insert_with(|| pending.client_uri.clone());
            a
        };
        finish_exec(&self.shared, &pending, status, &alert)?;
        signal_failed(Self::alert_queued(&emitter, &pending.server_id, &alert.alert_type).await);
        tracing::info!(server = %pending.server_id, node = %pending.client_uri, status, "asynchronous EXEC result queued");
        Ok(())
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
        let pending = self
            .shared
            .prepared
            .store
            .pending_exec(token)?
            .ok_or_else(|| Error::NotFound(format!("no pending EXEC {token:?}")))?;
        let sender = header.sender().map(ToString::to_string).unwrap_or_default();
        if !answers_for(conn, &sender, &pending.handler).await {
            return Err(Error::AccessDenied(
                "only the handler that accepted the EXEC may fetch for it".into(),
            ));
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        let stopping = || Error::Failed("the daemon is stopping".into());
        self.shared
            .fetches
            .send(super::FetchRequest {
                server_id: pending.server_id,
                url: url.to_owned(),
                max_bytes,
                reply,
            })
            .map_err(|_| stopping())?;
        let (file, size) = answer.await.map_err(|_| stopping())??;
        Ok((std::os::fd::OwnedFd::from(file).into(), size))
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
