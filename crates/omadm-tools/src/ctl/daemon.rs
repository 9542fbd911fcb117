//! `omadmctl status`, `reload` and `history`: the daemon as a whole.

use omadm_client::ManagerProxy;
use serde_json::json;

use super::{text_or_null, when};

/// `omadmctl reload`: what the reload read, applied and refused.
pub(crate) async fn reload(manager: &ManagerProxy<'_>, json: bool) -> zbus::Result<u8> {
    let r = manager.reload().await?;
    if json {
        omadm_console::outln!(
            "{}",
            json!({"files": r.files, "applied": r.applied, "servers": r.servers,
                "refused": r.refused.iter().map(|(f, why)| json!({"file": f, "error": why})).collect::<Vec<_>>(),
                "restart_needed": r.restart_needed,
                "mos_added": r.mos_added, "mos_removed": r.mos_removed})
        );
    } else {
        omadm_console::outln!("configuration reloaded from {} file(s)", r.files.len());
        if !r.mos_added.is_empty() {
            omadm_console::outln!("management objects now defined: {}", r.mos_added.join(", "));
        }
        if !r.mos_removed.is_empty() {
            omadm_console::outln!(
                "management objects no longer defined (their data stays): {}",
                r.mos_removed.join(", ")
            );
        }
        if r.applied.is_empty() {
            omadm_console::outln!("bootstrap: nothing new");
        } else {
            omadm_console::outln!(
                "bootstrap: applied {}; a session with BootstrapComplete follows for: {}",
                r.applied.join(", "),
                r.servers.join(", ")
            );
        }
        for (file, why) in &r.refused {
            omadm_console::outln!("bootstrap file {file} refused (nothing of it applied): {why}");
        }
        if !r.restart_needed.is_empty() {
            omadm_console::outln!(
                "changed, and taking effect after 'systemctl restart omadmd': {}",
                r.restart_needed.join(", ")
            );
        }
    }
    Ok(0)
}

/// `omadmctl status`: the version, what it does, its accounts and agents.
pub(crate) async fn status(
    conn: &zbus::Connection,
    manager: &ManagerProxy<'_>,
    json: bool,
) -> zbus::Result<u8> {
    let (version, state, active) = (
        manager.version().await?,
        manager.state().await?,
        manager.active_server().await?,
    );
    let accounts = manager.accounts().await?.len();
    let refused = manager.bootstrap_refused().await?;
    let agents = omadm_client::AgentManagerProxy::new(conn)
        .await?
        .agent_count()
        .await?;
    if json {
        omadm_console::outln!(
            "{}",
            json!({"version": version, "state": state, "active_server": text_or_null(&active), "accounts": accounts, "agents": agents,
                "bootstrap_refused": refused.iter().map(|(f, why)| json!({"file": f, "error": why})).collect::<Vec<_>>()})
        );
    } else {
        let doing = if active.is_empty() {
            state
        } else {
            format!("{state} with {active}")
        };
        omadm_console::outln!(
            "omadmd {version}: {doing}; {accounts} account(s); {agents} SHOW agent(s)"
        );
        for (file, why) in &refused {
            omadm_console::outln!("bootstrap file {file} refused (nothing of it applied): {why}");
        }
    }
    Ok(0)
}

/// `omadmctl history`: the recent sessions, newest first.
pub(crate) async fn history(
    manager: &ManagerProxy<'_>,
    limit: u32,
    json: bool,
) -> zbus::Result<u8> {
    let rows = manager.history(limit).await?;
    if json {
        let rows: Vec<_> = rows
            .iter()
            .map(|r| {
                json!({"id": r.id, "server_id": r.server_id, "trigger": r.trigger,
                    "started_at": r.started_at, "ended_at": (r.ended_at != 0).then_some(r.ended_at),
                    "outcome": r.outcome, "detail": text_or_null(&r.detail),
                    "packages": r.packages, "commands": r.commands})
            })
            .collect();
        omadm_console::outln!("{}", json!(rows));
    } else if rows.is_empty() {
        omadm_console::outln!("no sessions yet");
    } else {
        omadm_console::outln!(
            "{:<5} {:<10} {:<16} {:<20} what",
            "id",
            "started",
            "trigger",
            "server, outcome"
        );
        for r in rows {
            let detail = if r.detail.is_empty() {
                String::new()
            } else {
                format!(": {}", r.detail)
            };
            omadm_console::outln!(
                "#{:<4} {:<10} {:<16} {:<20} {} package(s), {} command(s){detail}",
                r.id,
                when(r.started_at),
                r.trigger,
                format!("{} {}", r.server_id, r.outcome),
                r.packages,
                r.commands
            );
        }
    }
    Ok(0)
}
