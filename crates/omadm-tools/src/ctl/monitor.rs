//! `omadmctl monitor`: the daemon's signals as events, lines for people or JSON lines.

use futures_util::StreamExt as _;
use serde_json::json;

use super::text_or_null;

/// The time of day (UTC) of an event, for a human line.
fn clock(now: u64) -> String {
    let t = now % 86_400;
    format!("{:02}:{:02}:{:02}Z", t / 3600, t / 60 % 60, t % 60)
}

/// One event: a JSON line (`time` in seconds since the epoch, `event`, and the event's
/// fields), or a line for people.
fn event(json_out: bool, kind: &str, fields: serde_json::Value, line: String) {
    let now = omadm_console::now_secs();
    if json_out {
        let mut v = json!({"time": now, "event": kind});
        if let (Some(v), serde_json::Value::Object(f)) = (v.as_object_mut(), fields) {
            v.extend(f);
        }
        omadm_console::outln!("{v}");
    } else {
        omadm_console::outln!(
            "{} {}",
            clock(now.max(0) as u64),
            omadm_console::printable(&line)
        );
    }
}

/// `omadmctl monitor`: the daemon's signals as they come, until interrupted.
///
/// One stream carries every signal on the daemon's object, so that events print in the
/// order the daemon sent them (a stream per signal would interleave them as they are
/// polled). Only signals from the current owner of the daemon's name are shown: any peer
/// may send a signal with that path, and an admin's monitor must not be fooled by one.
pub(crate) async fn monitor(conn: &zbus::Connection, json_out: bool) -> zbus::Result<u8> {
    let bus = zbus::fdo::DBusProxy::new(conn).await?;
    let mut owner_changes = bus
        .receive_name_owner_changed_with_args(&[(0, omadm_client::BUS_NAME)])
        .await?;
    let mut signals = daemon_signals(conn).await?;
    // Subscribed first, asked second: an owner that changes in between is seen twice,
    // never missed.
    let mut owner = daemon_owner(conn).await;
    let (kind, line) = if owner.is_some() {
        ("daemon-running", "omadmd is running; monitoring")
    } else {
        ("daemon-absent", "omadmd is not running; waiting for it")
    };
    event(json_out, kind, json!({}), line.into());
    loop {
        tokio::select! {
            // The bus says who owns the name before that owner's signals can arrive.
            biased;
            Some(s) = owner_changes.next() => {
                let a = s.args()?;
                owner = a.new_owner.as_ref().map(|o| o.to_string());
                let (kind, line) = if owner.is_some() {
                    ("daemon-running", "omadmd started")
                } else {
                    ("daemon-absent", "omadmd stopped; waiting for it")
                };
                event(json_out, kind, json!({}), line.into());
            }
            Some(m) = signals.next() => {
                let m = m?;
                let from = m.header().sender().map(|s| s.to_string());
                if from.is_none() || from != owner {
                    continue;
                }
                signal_event(json_out, m)?;
            }
            else => return Ok(0),
        }
    }
}

/// Every signal with the daemon's object path, in the order they arrive (one stream: a
/// stream per signal would interleave them as they are polled). Any peer may send such a
/// signal: compare the sender with [`daemon_owner`].
pub(crate) async fn daemon_signals(conn: &zbus::Connection) -> zbus::Result<zbus::MessageStream> {
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .path(omadm_client::PATH)
        .build()?;
    zbus::MessageStream::for_match_rule(rule, conn, None).await
}

/// The unique bus name of the daemon now, if it runs.
pub(crate) async fn daemon_owner(conn: &zbus::Connection) -> Option<String> {
    let bus = zbus::fdo::DBusProxy::new(conn).await.ok()?;
    let name: zbus::names::BusName<'_> = omadm_client::BUS_NAME.try_into().ok()?;
    bus.get_name_owner(name).await.ok().map(|o| o.to_string())
}

/// Prints one of the daemon's signals as an event; others are ignored.
fn signal_event(json_out: bool, m: zbus::Message) -> zbus::Result<()> {
    use omadm_client::proxies as c;
    if let Some(s) = c::SessionStarted::from_message(m.clone()) {
        let a = s.args()?;
        event(
            json_out,
            "session-started",
            json!({"server_id": a.server_id, "trigger": a.trigger}),
            format!("session with {} started ({})", a.server_id, a.trigger),
        );
    } else if let Some(s) = c::SessionFinished::from_message(m.clone()) {
        let a = s.args()?;
        let detail = if a.detail.is_empty() {
            String::new()
        } else {
            format!(": {}", a.detail)
        };
        event(
            json_out,
            "session-finished",
            json!({"id": a.id, "server_id": a.server_id, "outcome": a.outcome, "detail": text_or_null(&a.detail)}),
            format!(
                "session #{} with {} {}{detail}",
                a.id, a.server_id, a.outcome
            ),
        );
    } else if let Some(s) = c::SessionProgress::from_message(m.clone()) {
        let a = s.args()?;
        event(
            json_out,
            "session-progress",
            json!({"server_id": a.server_id, "packages": a.packages, "commands": a.commands, "current": a.current}),
            format!(
                "session with {}: package {}, {} ({} command(s) so far)",
                a.server_id, a.packages, a.current, a.commands
            ),
        );
    } else if let Some(s) = c::AlertQueued::from_message(m.clone()) {
        let a = s.args()?;
        event(
            json_out,
            "alert-queued",
            json!({"server_id": a.server_id, "alert_type": a.alert_type}),
            format!("alert {} queued for {}", a.alert_type, a.server_id),
        );
    } else if let Some(s) = c::AlertsDelivered::from_message(m.clone()) {
        let a = s.args()?;
        event(
            json_out,
            "alerts-delivered",
            json!({"server_id": a.server_id, "count": a.count}),
            format!("{} queued alert(s) delivered to {}", a.count, a.server_id),
        );
    } else if let Some(s) = c::NotificationAccepted::from_message(m.clone()) {
        let a = s.args()?;
        event(
            json_out,
            "notification-accepted",
            json!({"server_id": a.server_id, "trigger": a.trigger, "via": a.via}),
            format!(
                "notification from {} accepted over {} ({})",
                a.server_id, a.via, a.trigger
            ),
        );
    } else if let Some(s) = zbus::fdo::PropertiesChanged::from_message(m) {
        let a = s.args()?;
        if a.interface_name.as_str() == "org.omadm.Client1.AgentManager"
            && let Some(n) = a
                .changed_properties
                .get("AgentCount")
                .and_then(|v| u32::try_from(v).ok())
        {
            event(
                json_out,
                "agents",
                json!({"count": n}),
                format!("{n} SHOW agent(s) registered"),
            );
        }
    }
    Ok(())
}
