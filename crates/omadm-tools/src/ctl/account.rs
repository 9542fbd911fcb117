//! `omadmctl account`: the DM accounts, one line or JSON object each, adding and removing.

use omadm_client::ManagerProxy;
use serde_json::json;

use super::when;

/// "last session #4 ended 3m ago (client); 2 queued; owes a session (BootstrapComplete)".
fn account_line(a: &omadm_client::AccountState) -> String {
    let mut parts = vec![match (&a.last_session, &a.last_outcome) {
        (Some(id), Some(outcome)) => {
            let detail = a
                .last_detail
                .as_deref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default();
            let ended = a.last_ended.map(|t| format!(" {}", when(t)));
            format!(
                "last session #{id} {outcome}{} ({}){detail}",
                ended.unwrap_or_default(),
                a.last_trigger.as_deref().unwrap_or("?")
            )
        }
        _ => "no session yet".to_owned(),
    }];
    if a.queued > 0 {
        parts.push(format!("{} queued", a.queued));
    }
    if let Some(why) = &a.owed {
        parts.push(format!("owes a session ({why})"));
    }
    if let (Some(at), Some(why)) = (a.next_attempt, &a.next_reason) {
        parts.push(format!(
            "next {}: {why}",
            omadm_console::until(at, omadm_console::now_secs())
        ));
    }
    parts.join("; ")
}

/// One account as `account list --json` and `account show --json` print it.
fn account_json(a: &omadm_client::AccountState) -> serde_json::Value {
    json!({"server_id": a.server_id, "name": a.name, "url": a.url,
        "queued": a.queued, "owed": a.owed, "last_session": a.last_session,
        "last_trigger": a.last_trigger, "last_outcome": a.last_outcome,
        "last_ended": a.last_ended, "last_detail": a.last_detail,
        "next_attempt": a.next_attempt, "next_reason": a.next_reason})
}

/// `omadmctl account add`: the file is read here (the caller's rights, not the daemon's)
/// and handed over whole.
pub(crate) async fn add_account(
    manager: &ManagerProxy<'_>,
    file: &std::path::Path,
    dry_run: bool,
    replace: bool,
    json_out: bool,
) -> zbus::Result<u8> {
    let document = match std::fs::read(file) {
        Ok(d) => d,
        Err(e) => {
            omadm_console::errln!("omadmctl: cannot read {}: {e}", file.display());
            return Ok(2);
        }
    };
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "account.json".into());
    let c = manager
        .add_account(&name, &document, dry_run, replace)
        .await?;
    if json_out {
        omadm_console::outln!(
            "{}",
            json!({"outcome": c.outcome, "servers": c.servers, "replaced": c.replaced, "instances": c.instances})
        );
        return Ok(0);
    }
    let servers = |v: &[String]| {
        if v.is_empty() {
            "none".to_owned()
        } else {
            v.join(", ")
        }
    };
    match c.outcome.as_str() {
        "unchanged" => {
            omadm_console::outln!("{name} was added before with this content; nothing to do")
        }
        outcome => {
            let verb = if outcome == "would-apply" {
                "would provision"
            } else {
                "provisioned"
            };
            omadm_console::outln!(
                "{name} {verb} account(s) for: {}; instances: {}",
                servers(&c.servers),
                c.instances.join(", ")
            );
            if !c.replaced.is_empty() {
                omadm_console::outln!(
                    "  replacing the existing account(s) of: {}",
                    c.replaced.join(", ")
                );
            }
            if outcome == "applied" && !c.servers.is_empty() {
                omadm_console::outln!(
                    "  a session with BootstrapComplete starts now (omadmctl monitor follows it)"
                );
            }
        }
    }
    Ok(0)
}

/// `omadmctl account show`.
pub(crate) async fn show(manager: &ManagerProxy<'_>, server: &str, json: bool) -> zbus::Result<u8> {
    let a = manager.account_state(server).await?;
    if json {
        omadm_console::outln!("{}", account_json(&a));
    } else {
        omadm_console::outln!("{:<20} {:<30} {}", a.server_id, a.name, a.url);
        omadm_console::outln!("{:<20} {}", "", account_line(&a));
    }
    Ok(0)
}

/// `omadmctl account remove`.
pub(crate) async fn remove(
    manager: &ManagerProxy<'_>,
    server: &str,
    json: bool,
) -> zbus::Result<u8> {
    let gone = manager.remove_account(server).await?;
    if json {
        omadm_console::outln!("{}", json!({"server_id": server, "removed": gone}));
    } else {
        omadm_console::outln!(
            "removed the account of {server} and {} instance(s): {}",
            gone.len(),
            gone.join(", ")
        );
    }
    Ok(0)
}

/// `omadmctl account list` (and `accounts`).
pub(crate) async fn list(manager: &ManagerProxy<'_>, json: bool) -> zbus::Result<u8> {
    let mut states = Vec::new();
    for id in manager.accounts().await?.into_iter().map(|a| a.server_id) {
        states.push(manager.account_state(&id).await?);
    }
    if json {
        let list: Vec<_> = states.iter().map(account_json).collect();
        omadm_console::outln!("{}", json!(list));
    } else if states.is_empty() {
        omadm_console::outln!("no DM accounts (provision one in /etc/omadmd/bootstrap.d)");
    } else {
        for a in states {
            omadm_console::outln!("{:<20} {:<30} {}", a.server_id, a.name, a.url);
            omadm_console::outln!("{:<20} {}", "", account_line(&a));
        }
    }
    Ok(0)
}
