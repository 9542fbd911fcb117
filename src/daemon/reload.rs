//! Reloading on request (D-Bus `Manager.Reload`, SIGHUP, `systemctl reload`): the
//! configuration is read again and checked, the DDF and handler definition directories
//! read again (a handler package brings its MO's definition and its own; its postinst
//! reloads the daemon), `bootstrap.d`
//! applied again, and the answer says what changed. Settings are fixed for the life of the process (the runtime, the
//! listener and the HTTP clients are built from them), so a changed setting is named as
//! needing a restart, never half applied.

use crate::config::{self, Settings, Sources};
use crate::dbus::ReloadReport;
use crate::scheduler::{self, Request};
use crate::state::Prepared;

/// What a reload reads from and acts on.
pub(super) struct Reloader<'a> {
    pub(super) sources: &'a Sources,
    pub(super) running: &'a Settings,
    pub(super) prepared: &'a Prepared,
    pub(super) scheduler: &'a scheduler::Handle,
}

impl Reloader<'_> {
    /// Reloads; an unusable configuration is refused with the reason (file, line, key)
    /// and changes nothing, the daemon keeps the settings it runs with.
    pub(super) fn reload(&self) -> Result<ReloadReport, String> {
        let settings = match config::load(self.sources) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "reload refused: the configuration is not usable; running on with the settings it has");
                return Err(e.to_string());
            }
        };
        let restart_needed = changed_keys(self.running, &settings);
        // Definitions first: a bootstrap file may provision an MO whose DDF just arrived.
        // The directories the daemon runs with: new ones are a restart's business.
        let (mos_added, mos_removed) = self.reload_definitions();
        self.prepared
            .handlers
            .replace(super::startup::load_handlers(self.running));
        // The bootstrap directory the daemon runs with: a new one is a restart's business.
        let run = super::startup::apply_bootstrap(
            &self.prepared.store,
            &self.prepared.registry.get(),
            self.running,
        );
        *self
            .prepared
            .bootstrap_refused
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = run.refused.clone();
        let mut servers = Vec::new();
        for (_, owed) in &run.applied {
            for server in owed {
                self.scheduler.request(
                    Some(server),
                    Request {
                        trigger: crate::engine::Trigger::BootstrapComplete,
                        req_mos: false,
                        alerts_elsewhere: false,
                    },
                );
                servers.push(server.clone());
            }
        }
        let report = ReloadReport {
            files: settings
                .files
                .iter()
                .map(|f| f.display().to_string())
                .collect(),
            applied: run.applied.into_iter().map(|(f, _)| f).collect(),
            servers,
            refused: run.refused,
            restart_needed,
            mos_added,
            mos_removed,
        };
        tracing::info!(applied = ?report.applied, refused = report.refused.len(),
            restart_needed = ?report.restart_needed, mos_added = ?report.mos_added,
            mos_removed = ?report.mos_removed, "configuration reloaded");
        Ok(report)
    }

    /// Reads the DDF directories again and puts the new definitions in force; returns the
    /// MOIDs added and removed. Sessions running keep the definitions they started with.
    fn reload_definitions(&self) -> (Vec<String>, Vec<String>) {
        let new = super::startup::load_registry(self.running);
        let moids = |r: &crate::mo::Registry| -> std::collections::BTreeSet<String> {
            r.iter().map(|d| d.def.moid.clone()).collect()
        };
        let now = moids(&new);
        let old = moids(&self.prepared.registry.replace(new));
        (
            now.difference(&old).cloned().collect(),
            old.difference(&now).cloned().collect(),
        )
    }
}

/// The settings (`section.key`) whose values differ between `old` and `new`.
fn changed_keys(old: &Settings, new: &Settings) -> Vec<String> {
    fn flatten(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, serde_json::Value)>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    flatten(&key, v, out);
                }
            }
            other => out.push((prefix.to_owned(), other.clone())),
        }
    }
    let pairs = |s: &Settings| {
        let mut out = Vec::new();
        flatten("", &serde_json::to_value(s).unwrap_or_default(), &mut out);
        out
    };
    let (old, new) = (pairs(old), pairs(new));
    let mut keys: Vec<String> = new
        .iter()
        .filter(|(k, v)| old.iter().find(|(o, _)| o == k).map(|(_, ov)| ov) != Some(v))
        .map(|(k, _)| k.clone())
        .chain(
            old.iter()
                .filter(|(k, _)| !new.iter().any(|(n, _)| n == k))
                .map(|(k, _)| k.clone()),
        )
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_settings_are_named_by_section_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let old = config::load(&Sources {
            root: Some(dir.path().to_owned()),
            ..Sources::default()
        })
        .unwrap();
        let mut new = old.clone();
        assert!(changed_keys(&old, &new).is_empty());
        new.sessions.poll_interval_secs += 60;
        new.log.level = "debug".into();
        new.notifications.listen = Some("127.0.0.1:4711".parse().unwrap());
        assert_eq!(
            changed_keys(&old, &new),
            [
                "log.level",
                "notifications.listen",
                "sessions.poll-interval-secs"
            ]
        );
    }
}
