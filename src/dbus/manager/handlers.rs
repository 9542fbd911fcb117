//! `Manager`'s EXEC handlers: registering, what they accepted and have not answered, the
//! writes to their MO, their results, and the packages the daemon fetches for them.

use super::*;

/// Ends a pending EXEC with its `status` and result alert: queued durably for the EXEC's
/// ServerURI in the same transaction that forgets the EXEC, and a session asked for to
/// deliver it.
pub(in crate::dbus) fn finish_exec(
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
pub(in crate::dbus) fn fail_orphaned_execs(shared: &Shared, handler: &str) {
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

pub(super) async fn register_exec_handler(
    m: &Manager,
    target: &str,
    path: zbus::ObjectPath<'_>,
    header: Header<'_>,
    conn: &Connection,
) -> Result<(), Error> {
    let uid = authorize(conn, &header, Action::RegisterHandler).await?;
    let sender = header
        .sender()
        .ok_or_else(|| Error::AccessDenied("no sender".into()))?
        .to_string();
    let target = handler_target(target).map_err(Error::InvalidArgument)?;
    crate::dbus::handler_rules::may_register(&m.shared, uid, &target, None)?;
    tracing::info!(target, handler = %sender, path = %path, "EXEC handler registered");
    m.set_handler(&target, &sender, &path);
    Ok(())
}

pub(super) async fn unregister_exec_handler(
    m: &Manager,
    target: &str,
    header: Header<'_>,
) -> Result<(), Error> {
    let sender = header
        .sender()
        .ok_or_else(|| Error::AccessDenied("no sender".into()))?
        .to_string();
    let key = handler_target(target).map_err(Error::InvalidArgument)?;
    if !m.shared.peers.remove_handler(&key, &sender) {
        return Err(Error::NotFound(format!("the caller handles no {target}")));
    }
    Ok(())
}

pub(super) async fn register_exec_handler_as(
    m: &Manager,
    target: &str,
    path: zbus::ObjectPath<'_>,
    name: &str,
    header: Header<'_>,
    conn: &Connection,
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
    crate::dbus::handler_rules::may_register(&m.shared, uid, &target, Some(name))?;
    tracing::info!(target, handler = %sender, name, path = %path, "EXEC handler registered under its bus name");
    m.shared.peers.set_durable_name(&sender, name);
    m.set_handler(&target, &sender, &path);
    Ok(())
}

pub(super) async fn pending_execs(
    m: &Manager,
    header: Header<'_>,
    conn: &Connection,
) -> Result<Vec<(String, String, String)>, Error> {
    let sender = header.sender().map(ToString::to_string).unwrap_or_default();
    let mut out = Vec::new();
    for p in m.shared.prepared.store.pending_execs(None)? {
        if answers_for(conn, &sender, &p.handler).await {
            out.push((p.token, p.client_uri, p.server_id));
        }
    }
    Ok(out)
}

pub(super) async fn handler_update(
    m: &Manager,
    document: &str,
    delete: Vec<String>,
    header: Header<'_>,
    conn: &Connection,
) -> Result<(), Error> {
    let sender = header.sender().map(ToString::to_string).unwrap_or_default();
    let moids = m.shared.peers.handled_moids(&sender);
    if moids.is_empty() {
        return Err(Error::AccessDenied(
            "only a registered EXEC handler may write the tree, and only the MOs it handles".into(),
        ));
    }
    let moids = crate::dbus::handler_rules::writable(&m.shared, conn, &header, moids).await?;
    let limits = m.shared.bootstrap_limits;
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
        &m.shared.prepared.store,
        &m.shared.prepared.registry.get(),
        &moids,
        &put,
        &delete,
        limits.max_value_bytes,
    )
    .map_err(|e| match e {
        crate::engine::local::LocalError::Store(e) => Error::from(e),
        e @ crate::engine::local::LocalError::NotYours { .. } => Error::AccessDenied(e.to_string()),
        e => Error::InvalidArgument(e.to_string()),
    })?;
    tracing::debug!(handler = %sender, put = put.len(), delete = delete.len(), "handler updated its MO");
    for server in written.deliveries_for {
        m.shared.scheduler.request(
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

pub(super) async fn exec_result(
    m: &Manager,
    token: &str,
    status: u32,
    alert_json: &str,
    header: Header<'_>,
    conn: &Connection,
    emitter: SignalEmitter<'_>,
) -> Result<(), Error> {
    let store = &m.shared.prepared.store;
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
    finish_exec(&m.shared, &pending, status, &alert)?;
    signal_failed(Manager::alert_queued(&emitter, &pending.server_id, &alert.alert_type).await);
    tracing::info!(server = %pending.server_id, node = %pending.client_uri, status, "asynchronous EXEC result queued");
    Ok(())
}

pub(super) async fn fetch_package(
    m: &Manager,
    token: &str,
    url: &str,
    max_bytes: u64,
    header: Header<'_>,
    conn: &Connection,
) -> Result<(zbus::OwnedFd, u64), Error> {
    let pending = m
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
    m.shared
        .fetches
        .send(crate::dbus::FetchRequest {
            token: pending.token,
            server_id: pending.server_id,
            url: url.to_owned(),
            max_bytes,
            reply,
        })
        .map_err(|_| stopping())?;
    let (file, size) = answer.await.map_err(|_| stopping())??;
    Ok((std::os::fd::OwnedFd::from(file).into(), size))
}
