//! `Manager`'s alerts and notifications: a Generic Alert queued for a server, a DM
//! Notification handed over by another transport.

use super::*;

pub(super) async fn queue_alert(
    m: &Manager,
    server_id: &str,
    alert_json: &str,
    header: Header<'_>,
    conn: &Connection,
    emitter: SignalEmitter<'_>,
) -> Result<(), Error> {
    authorize(conn, &header, Action::QueueAlert).await?;
    m.account(server_id)?;
    let alert: Alert = serde_json::from_str(alert_json)
        .map_err(|e| Error::InvalidArgument(format!("not a Generic Alert: {e}")))?;
    if alert.alert_type.is_empty() || (alert.data.is_some() && alert.data_type.is_none()) {
        return Err(Error::InvalidArgument(
            "an alert needs an AlertType, and a DataType when it has Data".into(),
        ));
    }
    let alert_type = alert.alert_type.clone();
    let alert = serde_json::to_value(&alert).map_err(|e| Error::Failed(e.to_string()))?;
    m.shared.prepared.store.apply(&[TreeOp::Enqueue(Outgoing {
        id: 0,
        server_id: server_id.to_owned(),
        item: OutItem::Alert { alert, to: None },
    })])?;
    signal_failed(Manager::alert_queued(&emitter, server_id, &alert_type).await);
    m.shared.scheduler.request(Some(server_id), Request::CLIENT);
    Ok(())
}

pub(super) async fn inject_notification(
    m: &Manager,
    package: Vec<u8>,
    header: Header<'_>,
    conn: &Connection,
    emitter: SignalEmitter<'_>,
) -> Result<String, Error> {
    authorize(conn, &header, Action::InjectNotification).await?;
    let prepared = &m.shared.prepared;
    let a = prepared
        .gate
        .admit(&prepared.store, &package, m.shared.notify_policy)
        .map_err(|e| Error::InvalidArgument(format!("notification dropped: {e}")))?;
    tracing::info!(server = %a.server_id, notification_id = ?a.notification_id, "notification injected over D-Bus");
    let request = Request::notified(a.notification_id, a.req_mos);
    let name = crate::session::trigger_name(request.trigger);
    signal_failed(Manager::notification_accepted(&emitter, &a.server_id, &name, "dbus").await);
    m.shared.scheduler.request_within(
        &a.server_id,
        request,
        a.start_within(m.shared.notify_policy.start_within_secs),
    );
    Ok(a.server_id)
}
