//! `omadmctl`, the administrator's client of omadmd over D-Bus: a module per command
//! group, the dispatch, and what failures mean as exit codes.

mod account;
mod agent;
mod alert;
mod daemon;
mod monitor;
mod session;
mod tree;

use omadm_client::ManagerProxy;
use serde_json::json;

use crate::cli::ctl::{AccountCmd, AlertCmd, Cli, Cmd, SessionCmd};

/// Exit codes: 1 failure, 3 the daemon is not running (or no bus), 4 access denied. Told
/// apart by the D-Bus error name, or the kind of failure when there is none.
pub fn explain(e: &zbus::Error) -> (String, u8) {
    use zbus::DBusError as _;
    // The daemon's sentence first, the error's name after it for scripts and searches.
    let text = match e {
        zbus::Error::MethodError(name, detail, _) => format!(
            "{} ({})",
            detail.as_deref().unwrap_or("the call failed"),
            name.as_str()
        ),
        zbus::Error::FDO(f) => format!(
            "{} ({})",
            f.description().unwrap_or("the call failed"),
            f.name()
        ),
        other => other.to_string(),
    };
    if omadm_client::no_owner(e) {
        return ("omadmd is not running (org.omadm.Client1 is not on the bus); start it with 'systemctl start omadmd'".into(), 3);
    }
    match omadm_client::error_name(e).as_deref() {
        Some(
            "org.omadm.Client1.Error.AccessDenied" | "org.freedesktop.DBus.Error.AccessDenied",
        ) => (
            format!("{text}\nrun it as root, or have polkit grant the action (omadmctl(1))"),
            4,
        ),
        None if matches!(
            e,
            zbus::Error::Connection(..)
                | zbus::Error::InputOutput(_)
                | zbus::Error::Address(_)
                | zbus::Error::Handshake(_)
        ) =>
        {
            (format!("cannot reach the system bus: {text}"), 3)
        }
        _ => (text, 1),
    }
}

/// A text that may be empty, as JSON: `null` when there is none (docs/cli-json.md: `null`
/// means "none" everywhere, never `""`).
pub(crate) fn text_or_null(s: &str) -> serde_json::Value {
    if s.is_empty() {
        serde_json::Value::Null
    } else {
        json!(s)
    }
}

/// When, as a person says it ("3m ago").
pub(crate) fn when(secs: i64) -> String {
    omadm_console::ago(secs, omadm_console::now_secs())
}

/// Checks a `--server` against the daemon's accounts: `None` when known, else the message
/// that lists the known ones (for exit 2, a bad argument).
async fn unknown_server(manager: &ManagerProxy<'_>, server: &str) -> zbus::Result<Option<String>> {
    let known: Vec<String> = manager
        .accounts()
        .await?
        .into_iter()
        .map(|a| a.server_id)
        .collect();
    if known.iter().any(|k| k == server) {
        return Ok(None);
    }
    Ok(Some(if known.is_empty() {
        format!("no server {server:?}: omadmd has no DM accounts")
    } else {
        format!(
            "no server {server:?}; the servers are: {}",
            known.join(", ")
        )
    }))
}

/// Runs one command: its exit code, or the D-Bus failure ([`explain`] says it).
pub async fn run(cli: Cli) -> zbus::Result<u8> {
    // What needs no daemon does not connect to the bus.
    if let Cmd::Notify(args) = &cli.command
        && let Some(out) = &args.out
    {
        return Ok(alert::write_notification(args, out, cli.json));
    }
    let conn = zbus::Connection::system().await?;
    let manager = ManagerProxy::new(&conn).await?;
    for server in match &cli.command {
        Cmd::Session(
            SessionCmd::Start {
                server: Some(s), ..
            }
            | SessionCmd::Cancel {
                server: Some(s), ..
            },
        ) => vec![s.as_str()],
        Cmd::Alert(AlertCmd::Send { server, .. }) => vec![server.as_str()],
        Cmd::Account(AccountCmd::Show { server } | AccountCmd::Remove { server }) => {
            vec![server.as_str()]
        }
        _ => vec![],
    } {
        if let Some(why) = unknown_server(&manager, server).await? {
            omadm_console::errln!("omadmctl: {why}");
            return Ok(2);
        }
    }
    let json = cli.json;
    match cli.command {
        Cmd::Monitor => monitor::monitor(&conn, json).await,
        Cmd::Reload => daemon::reload(&manager, json).await,
        Cmd::Status => daemon::status(&conn, &manager, json).await,
        Cmd::History { limit } => daemon::history(&manager, limit, json).await,
        Cmd::Account(AccountCmd::Show { server }) => account::show(&manager, &server, json).await,
        Cmd::Account(AccountCmd::Add {
            file,
            dry_run,
            replace,
        }) => account::add_account(&manager, &file, dry_run, replace, json).await,
        Cmd::Account(AccountCmd::Remove { server }) => {
            account::remove(&manager, &server, json).await
        }
        Cmd::Accounts | Cmd::Account(AccountCmd::List) => account::list(&manager, json).await,
        Cmd::Session(SessionCmd::Start {
            server,
            wait,
            timeout,
        }) => session::start_session(&manager, server, wait, timeout, json).await,
        Cmd::Session(SessionCmd::Cancel { id, server }) => {
            session::cancel_session(&manager, id, server, json).await
        }
        Cmd::Tree(cmd) => tree::run(&conn, cmd, json).await,
        Cmd::Alert(AlertCmd::Send {
            server,
            alert_type,
            source,
            mark,
            data,
        }) => alert::send(&manager, server, alert_type, source, mark, data, json).await,
        Cmd::Agent { open, ask, decline } => agent::run(&conn, open, ask, decline, json).await,
        Cmd::Notify(args) => alert::inject(&manager, &args, json).await,
    }
}
