//! `omadmctl session start` and `cancel`.

use std::time::Duration;

use futures_util::StreamExt as _;
use omadm_client::ManagerProxy;
use serde_json::json;

use super::monitor::{daemon_owner, daemon_signals};
use super::text_or_null;

/// `omadmctl session start`: asks, and with `--wait` or `--timeout` follows the session
/// (progress on stderr) to its end.
pub(crate) async fn start_session(
    manager: &ManagerProxy<'_>,
    server: Option<String>,
    wait: bool,
    timeout: Option<u64>,
    json_out: bool,
) -> zbus::Result<u8> {
    let target = server.unwrap_or_default();
    let concerns = |s: &str| target.is_empty() || s == target;
    // Subscribe before asking, so nothing can slip past; one stream, so that a session's
    // progress prints before its end.
    let conn = manager.inner().connection().clone();
    let mut signals = daemon_signals(&conn).await?;
    let owner = daemon_owner(&conn).await;
    manager.start_session(&target).await?;
    let shown = if target.is_empty() {
        "every server".to_owned()
    } else {
        target.clone()
    };
    if !wait && timeout.is_none() {
        if json_out {
            omadm_console::outln!(
                "{}",
                json!({"requested": true, "server_id": text_or_null(&target)})
            );
        } else {
            omadm_console::outln!("session requested with {shown}");
        }
        return Ok(0);
    }
    let limit = timeout.unwrap_or(900);
    omadm_console::errln!("session requested with {shown}; waiting (at most {limit} s)");
    let deadline = tokio::time::sleep(Duration::from_secs(limit));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            () = &mut deadline => {
                omadm_console::errln!("omadmctl: no session finished within {limit} s; it goes on in the daemon ('omadmctl session cancel' ends it, 'omadmctl history' shows it)");
                return Ok(1);
            }
            Some(m) = signals.next() => {
                let m = m?;
                if owner.is_none() || m.header().sender().map(|s| s.to_string()) != owner {
                    continue;
                }
                use omadm_client::proxies as c;
                if let Some(s) = c::SessionStarted::from_message(m.clone()) {
                    let a = s.args()?;
                    if concerns(&a.server_id) {
                        omadm_console::errln!("session with {} started ({})", a.server_id, a.trigger);
                    }
                } else if let Some(s) = c::SessionProgress::from_message(m.clone()) {
                    let a = s.args()?;
                    if concerns(&a.server_id) {
                        omadm_console::errln!(
                            "  package {} from {}: {} ({} command(s) so far)",
                            a.packages,
                            a.server_id,
                            omadm_console::printable(&a.current),
                            a.commands
                        );
                    }
                } else if let Some(s) = c::SessionFinished::from_message(m) {
                    let args = s.args()?;
                    if !concerns(&args.server_id) {
                        continue;
                    }
                    if json_out {
                        omadm_console::outln!("{}", json!({"id": args.id, "server_id": args.server_id, "outcome": args.outcome, "detail": text_or_null(&args.detail)}));
                    } else {
                        let detail = if args.detail.is_empty() { String::new() } else { format!(": {}", omadm_console::printable(&args.detail)) };
                        omadm_console::outln!("session #{} with {} {}{detail}", args.id, args.server_id, args.outcome);
                    }
                    return Ok(if args.outcome == "ended" { 0 } else { 1 });
                }
            }
            else => return Ok(1),
        }
    }
}

/// `omadmctl session cancel`: by server, by history id, or the one session running.
pub(crate) async fn cancel_session(
    manager: &ManagerProxy<'_>,
    id: Option<i64>,
    server: Option<String>,
    json_out: bool,
) -> zbus::Result<u8> {
    let server = match (id, server) {
        (_, Some(s)) => s,
        (id, None) => {
            let running: Vec<_> = manager
                .history(1000)
                .await?
                .into_iter()
                .filter(|r| r.outcome == "running")
                .collect();
            match id {
                Some(id) => match running.iter().find(|r| r.id == id) {
                    Some(r) => r.server_id.clone(),
                    None => {
                        omadm_console::errln!(
                            "omadmctl: session #{id} is not running (omadmctl history shows how it went)"
                        );
                        return Ok(1);
                    }
                },
                None => match running.as_slice() {
                    [] => {
                        omadm_console::errln!("omadmctl: no session is running");
                        return Ok(1);
                    }
                    [one] => one.server_id.clone(),
                    many => {
                        let list: Vec<String> = many
                            .iter()
                            .map(|r| format!("#{} with {}", r.id, r.server_id))
                            .collect();
                        omadm_console::errln!(
                            "omadmctl: several sessions are running ({}); say which: an ID or --server",
                            list.join(", ")
                        );
                        return Ok(2);
                    }
                },
            }
        }
    };
    manager.cancel_session(&server).await?;
    if json_out {
        omadm_console::outln!("{}", json!({"cancelling": true, "server_id": server}));
    } else {
        omadm_console::outln!("cancelling the session with {server}");
    }
    Ok(0)
}
