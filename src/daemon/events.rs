//! The D-Bus event glue: what the scheduling loop and the notification listener tell bus
//! peers about sessions, delivered alerts and accepted notifications.

use std::sync::Arc;

use crate::dbus;
use crate::engine::Trigger;
use crate::session;

/// Tells D-Bus peers about sessions: the SessionStarted and SessionFinished signals and
/// the State and ActiveServer properties.
#[derive(Debug)]
pub(super) struct Events {
    pub(super) bus: Option<zbus::Connection>,
    pub(super) status: Arc<std::sync::Mutex<(String, String)>>,
    pub(super) peers: dbus::peers::Peers,
    /// The servers a session runs with now, several at once.
    pub(super) active: std::sync::Mutex<std::collections::BTreeSet<String>>,
}

impl Events {
    /// Marks a session with `server` as running or not, and sets State ("session" while any
    /// runs) and ActiveServer (the servers with a session, comma-separated).
    fn set(&self, server: &str, running: bool) {
        let mut active = self.active.lock().unwrap_or_else(|p| p.into_inner());
        if running {
            active.insert(server.to_owned());
        } else {
            active.remove(server);
        }
        let state = if active.is_empty() { "idle" } else { "session" };
        let servers = active.iter().cloned().collect::<Vec<_>>().join(",");
        *self.status.lock().unwrap_or_else(|p| p.into_inner()) = (state.to_owned(), servers);
    }

    async fn manager(&self) -> Option<zbus::object_server::InterfaceRef<dbus::Manager>> {
        let conn = self.bus.as_ref()?;
        conn.object_server()
            .interface::<_, dbus::Manager>(dbus::PATH)
            .await
            .ok()
    }

    async fn properties_changed(&self, iface: &zbus::object_server::InterfaceRef<dbus::Manager>) {
        let emitter = iface.signal_emitter();
        let m = iface.get().await;
        if let Err(e) = m
            .state_changed(emitter)
            .await
            .and(m.active_server_changed(emitter).await)
        {
            tracing::warn!(error = %e, "cannot signal property changes");
        }
    }

    /// A notification from the UDP listener was accepted.
    pub(super) async fn notification_accepted(&self, server: &str, trigger: Trigger) {
        if let Some(iface) = self.manager().await {
            let name = session::trigger_name(trigger);
            if let Err(e) =
                dbus::Manager::notification_accepted(iface.signal_emitter(), server, &name, "udp")
                    .await
            {
                tracing::warn!(error = %e, "cannot signal NotificationAccepted");
            }
        }
    }

    /// A session's progress: packages and commands so far, what it runs now.
    pub(super) async fn progress(&self, server: &str, p: &session::Progress) {
        if let Some(iface) = self.manager().await
            && let Err(e) = dbus::Manager::session_progress(
                iface.signal_emitter(),
                server,
                p.packages,
                p.commands,
                &p.current,
            )
            .await
        {
            tracing::warn!(error = %e, "cannot signal SessionProgress");
        }
    }

    pub(super) async fn started(&self, server: &str, trigger: Trigger) {
        self.set(server, true);
        if let Some(iface) = self.manager().await {
            let name = session::trigger_name(trigger);
            if let Err(e) =
                dbus::Manager::session_started(iface.signal_emitter(), server, &name).await
            {
                tracing::warn!(error = %e, "cannot signal SessionStarted");
            }
            self.properties_changed(&iface).await;
        }
    }

    pub(super) async fn finished(&self, server: &str, report: Option<&session::Report>) {
        self.set(server, false);
        if let Some(iface) = self.manager().await {
            let (id, outcome, detail) = match report.map(|r| (r.id, &r.finish)) {
                Some((id, session::Finish::Ended)) => (id, "ended", String::new()),
                Some((id, session::Finish::Aborted(why))) => (id, "aborted", why.clone()),
                Some((id, session::Finish::Cancelled)) => {
                    (id, "cancelled", "cancelled by an administrator".to_owned())
                }
                None => (0, "failed", "the session could not run".to_owned()),
            };
            if let Some(n) = report.map(|r| r.alerts_delivered).filter(|n| *n > 0)
                && let Err(e) =
                    dbus::Manager::alerts_delivered(iface.signal_emitter(), server, n).await
            {
                tracing::warn!(error = %e, "cannot signal AlertsDelivered");
            }
            if let Err(e) = dbus::Manager::session_finished(
                iface.signal_emitter(),
                id,
                server,
                outcome,
                &detail,
            )
            .await
            {
                tracing::warn!(error = %e, "cannot signal SessionFinished");
            }
            self.properties_changed(&iface).await;
        }
    }
}
