//! `omadmctl`: the administrator's client of omadmd, over D-Bus (the system bus, or
//! `$DBUS_SYSTEM_BUS_ADDRESS`). Short human output by default, `--json` for scripts.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use futures_util::StreamExt as _;
use omadm_client::{ManagerProxy, TreeProxy};
use omadm_tools::cli::ctl::{AccountCmd, AlertCmd, Cli, Cmd, NotifyArgs, SessionCmd, TreeCmd};
use serde_json::json;

/// The terminal SHOW agent.
struct TerminalAgent {
    open: bool,
    ask: bool,
    decline: bool,
    json: bool,
}

impl TerminalAgent {
    /// Says what became of a request: a line for people, or a JSON line.
    fn tell(&self, url: &str, server_name: &str, outcome: &str, detail: Option<&str>) {
        use std::io::Write as _;
        if self.json {
            omadm_console::outln!(
                "{}",
                json!({"time": omadm_console::now_secs(), "event": "show", "server_name": server_name,
                    "url": url, "outcome": outcome, "detail": detail})
            );
        } else {
            let detail = detail.map(|d| format!(" ({d})")).unwrap_or_default();
            omadm_console::outln!("  {outcome}{detail}");
        }
        let _ = std::io::stdout().flush();
    }
}

/// Asks the person at the terminal; true only for an explicit yes.
fn ask_yes(question: &str) -> bool {
    use std::io::{BufRead as _, Write as _};
    omadm_console::emit_err(format_args!("{question} [y/N] "));
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

#[zbus::interface(name = "org.omadm.Client1.Agent")]
impl TerminalAgent {
    /// A server asks the user to see a page (only omadmd may ask; see `check_show`).
    async fn show(
        &self,
        url: String,
        server_name: String,
        #[zbus(header)] header: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<(), omadm_client::agent::AgentError> {
        use omadm_client::agent::AgentError;
        if let Err(e) = omadm_client::agent::check_show(conn, &header, &url).await {
            omadm_console::errln!("omadmctl: Show refused: {e}");
            return Err(e);
        }
        if !self.json {
            omadm_console::outln!("{server_name} asks you to open: {url}");
        }
        if self.decline {
            self.tell(
                &url,
                &server_name,
                "declined",
                Some("declined in the terminal"),
            );
            return Err(AgentError::Declined("declined in the terminal".into()));
        }
        if self.ask {
            let question = format!("open this page from {server_name}?");
            let yes = tokio::task::spawn_blocking(move || ask_yes(&question))
                .await
                .unwrap_or(false);
            if !yes {
                self.tell(&url, &server_name, "declined", Some("the user said no"));
                return Err(AgentError::Declined("the user said no".into()));
            }
        }
        if !self.open {
            self.tell(&url, &server_name, "printed", None);
            return Ok(());
        }
        let target = url.clone();
        let launched = tokio::task::spawn_blocking(move || {
            omadm_tools::launch::launch(&target, omadm_tools::launch::LAUNCH_GRACE)
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r);
        match launched {
            Ok(how) => {
                self.tell(&url, &server_name, "opened", Some(how));
                Ok(())
            }
            Err(why) => {
                omadm_console::errln!("omadmctl: cannot open the page: {why}");
                self.tell(&url, &server_name, "failed", Some(&why));
                // A failure, not a decline: the daemon tries another agent, or tells the
                // server the page could not be shown.
                Err(AgentError::ZBus(zbus::Error::Failure(format!(
                    "cannot open the page: {why}"
                ))))
            }
        }
    }
}

/// Exit codes: 1 failure, 3 the daemon is not running (or no bus), 4 access denied. Told
/// apart by the D-Bus error name, or the kind of failure when there is none.
fn explain(e: &zbus::Error) -> (String, u8) {
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

fn main() -> ExitCode {
    // Run by the shell for completions (COMPLETE=bash|zsh|fish, from the scripts in
    // packaging/completions): answer and exit; otherwise nothing happens here.
    clap_complete::CompleteEnv::with_factory(<Cli as clap::CommandFactory>::command).complete();
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            omadm_console::errln!("omadmctl: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let (msg, code) = explain(&e);
            omadm_console::errln!("omadmctl: {msg}");
            ExitCode::from(code)
        }
    }
}

/// The notification `omadmctl notify` hands over: read from its file, or made up.
fn notification(args: &NotifyArgs) -> Result<Vec<u8>, String> {
    let Some(server) = &args.server else {
        let file = args.file.as_deref().unwrap_or(std::path::Path::new("-"));
        return std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()));
    };
    let secret = match (&args.secret, &args.secret_file) {
        (Some(s), _) => Some(s.0.clone()),
        (None, Some(f)) => {
            let text = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
            Some(
                omadm_tools::cli::base64_arg(&text)
                    .map_err(|e| format!("{}: {e}", f.display()))?
                    .0,
            )
        }
        (None, None) => None,
    };
    omadm_proto::package0::compose(
        &omadm_proto::package0::Compose {
            server_id: server.clone(),
            notification_id: args.notification_id,
            req_mos: args.req_mos,
            secret,
            auth_data: args.auth_data.clone().map(|b| b.0).unwrap_or_default(),
            wap: args.wap,
            start_within_secs: None,
        },
        // Timestamped now (TS §5.2.1.2): the daemon checks it against its window.
        u64::try_from(omadm_console::now_secs()).unwrap_or(0),
    )
    .map_err(|e| format!("cannot encode the notification: {e}"))
}

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

/// `omadmctl session start`: asks, and with `--wait` or `--timeout` follows the session
/// (progress on stderr) to its end.
async fn start_session(
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
async fn cancel_session(
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

/// A text that may be empty, as JSON: `null` when there is none (docs/cli-json.md: `null`
/// means "none" everywhere, never `""`).
fn text_or_null(s: &str) -> serde_json::Value {
    if s.is_empty() {
        serde_json::Value::Null
    } else {
        json!(s)
    }
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
async fn add_account(
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

fn when(secs: i64) -> String {
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

/// `omadmctl notify --out FILE`: makes the notification and writes it, without the bus.
fn write_notification(args: &NotifyArgs, out: &std::path::Path, json_out: bool) -> u8 {
    let bytes = match notification(args) {
        Ok(b) => b,
        Err(e) => {
            omadm_console::errln!("omadmctl: {e}");
            return 2;
        }
    };
    if let Err(e) = std::fs::write(out, &bytes) {
        omadm_console::errln!("omadmctl: {}: {e}", out.display());
        return 2;
    }
    if json_out {
        omadm_console::outln!(
            "{}",
            json!({"file": out.display().to_string(), "bytes": bytes.len()})
        );
    } else {
        omadm_console::outln!(
            "wrote a {}-byte notification to {}",
            bytes.len(),
            out.display()
        );
    }
    0
}

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
async fn monitor(conn: &zbus::Connection, json_out: bool) -> zbus::Result<u8> {
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
async fn daemon_signals(conn: &zbus::Connection) -> zbus::Result<zbus::MessageStream> {
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .path(omadm_client::PATH)
        .build()?;
    zbus::MessageStream::for_match_rule(rule, conn, None).await
}

/// The unique bus name of the daemon now, if it runs.
async fn daemon_owner(conn: &zbus::Connection) -> Option<String> {
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

async fn run(cli: Cli) -> zbus::Result<u8> {
    // What needs no daemon does not connect to the bus.
    if let Cmd::Notify(args) = &cli.command
        && let Some(out) = &args.out
    {
        return Ok(write_notification(args, out, cli.json));
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
    match cli.command {
        Cmd::Monitor => return monitor(&conn, cli.json).await,
        Cmd::Reload => {
            let r = manager.reload().await?;
            if cli.json {
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
                    omadm_console::outln!(
                        "management objects now defined: {}",
                        r.mos_added.join(", ")
                    );
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
                    omadm_console::outln!(
                        "bootstrap file {file} refused (nothing of it applied): {why}"
                    );
                }
                if !r.restart_needed.is_empty() {
                    omadm_console::outln!(
                        "changed, and taking effect after 'systemctl restart omadmd': {}",
                        r.restart_needed.join(", ")
                    );
                }
            }
        }
        Cmd::Status => {
            let (version, state, active) = (
                manager.version().await?,
                manager.state().await?,
                manager.active_server().await?,
            );
            let accounts = manager.accounts().await?.len();
            let refused = manager.bootstrap_refused().await?;
            let agents = omadm_client::AgentManagerProxy::new(&conn)
                .await?
                .agent_count()
                .await?;
            if cli.json {
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
                    omadm_console::outln!(
                        "bootstrap file {file} refused (nothing of it applied): {why}"
                    );
                }
            }
        }
        Cmd::Account(AccountCmd::Show { server }) => {
            let a = manager.account_state(&server).await?;
            if cli.json {
                omadm_console::outln!("{}", account_json(&a));
            } else {
                omadm_console::outln!("{:<20} {:<30} {}", a.server_id, a.name, a.url);
                omadm_console::outln!("{:<20} {}", "", account_line(&a));
            }
        }
        Cmd::Account(AccountCmd::Add {
            file,
            dry_run,
            replace,
        }) => return add_account(&manager, &file, dry_run, replace, cli.json).await,
        Cmd::Account(AccountCmd::Remove { server }) => {
            let gone = manager.remove_account(&server).await?;
            if cli.json {
                omadm_console::outln!("{}", json!({"server_id": server, "removed": gone}));
            } else {
                omadm_console::outln!(
                    "removed the account of {server} and {} instance(s): {}",
                    gone.len(),
                    gone.join(", ")
                );
            }
        }
        Cmd::Accounts | Cmd::Account(AccountCmd::List) => {
            let mut states = Vec::new();
            for id in manager.accounts().await?.into_iter().map(|a| a.server_id) {
                states.push(manager.account_state(&id).await?);
            }
            if cli.json {
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
        }
        Cmd::History { limit } => {
            let rows = manager.history(limit).await?;
            if cli.json {
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
        }
        Cmd::Session(SessionCmd::Start {
            server,
            wait,
            timeout,
        }) => return start_session(&manager, server, wait, timeout, cli.json).await,
        Cmd::Session(SessionCmd::Cancel { id, server }) => {
            return cancel_session(&manager, id, server, cli.json).await;
        }
        Cmd::Tree(cmd) => {
            let tree = TreeProxy::new(&conn).await?;
            match cmd {
                TreeCmd::List => {
                    let list = tree.list_instances().await?;
                    if cli.json {
                        let l: Vec<_> = list
                            .iter()
                            .map(|(m, i, cv)| json!({"moid": m, "miid": i, "cv": cv}))
                            .collect();
                        omadm_console::outln!("{}", json!(l));
                    } else {
                        for (moid, miid, _) in list {
                            omadm_console::outln!("{moid}/{miid}/");
                        }
                    }
                }
                TreeCmd::Get { client_uri } => {
                    let data = tree.get(&client_uri).await?;
                    let pretty = serde_json::from_str::<serde_json::Value>(&data)
                        .ok()
                        .and_then(|v| serde_json::to_string_pretty(&v).ok())
                        .unwrap_or(data);
                    omadm_console::outln!("{pretty}");
                }
                TreeCmd::Configure { moid } => {
                    let (outcome, server, from, uris) = tree.request_configuration(&moid).await?;
                    if cli.json {
                        let source = (outcome == "fetched")
                            .then(|| json!({"server_id": server, "url": from}));
                        omadm_console::outln!(
                            "{}",
                            json!({"moid": moid, "outcome": outcome, "source": source, "client_uris": uris})
                        );
                    } else if outcome == "fetched" {
                        omadm_console::outln!(
                            "{moid}: fetched from {from} (the DEFAULT of server {server}), stored at:"
                        );
                        for u in uris {
                            omadm_console::outln!("  {u}");
                        }
                    } else {
                        omadm_console::outln!("{moid}: present already, nothing fetched:");
                        for u in uris {
                            omadm_console::outln!("  {u}");
                        }
                    }
                }
            }
        }
        Cmd::Alert(AlertCmd::Send {
            server,
            alert_type,
            source,
            mark,
            data,
        }) => {
            let mut alert = json!({"AlertType": alert_type});
            if let Some(s) = source {
                alert["SourceURI"] = json!(s);
            }
            if let Some(m) = mark {
                alert["Mark"] = json!(m);
            }
            if let Some(d) = data {
                let parsed: serde_json::Value = match serde_json::from_str(&d) {
                    Ok(v @ serde_json::Value::Object(_)) => v,
                    _ => {
                        omadm_console::errln!("omadmctl: --data must be a JSON object");
                        return Ok(2);
                    }
                };
                alert["Data"] = parsed;
                alert["DataType"] = json!("application/json");
            }
            manager.queue_alert(&server, &alert.to_string()).await?;
            if cli.json {
                omadm_console::outln!(
                    "{}",
                    json!({"queued": true, "server_id": server, "alert": alert})
                );
            } else {
                omadm_console::outln!("alert queued for {server}; it goes out in the next session");
            }
        }
        Cmd::Agent { open, ask, decline } => {
            let path = zbus::ObjectPath::try_from("/org/omadm/Client1/Agent")?;
            conn.object_server()
                .at(
                    &path,
                    TerminalAgent {
                        open,
                        ask,
                        decline,
                        json: cli.json,
                    },
                )
                .await?;
            let agents = omadm_client::AgentManagerProxy::new(&conn).await?;
            agents.register_agent(&path).await?;
            if cli.json {
                omadm_console::outln!(
                    "{}",
                    json!({"time": omadm_console::now_secs(), "event": "registered"})
                );
            } else {
                omadm_console::outln!(
                    "agent registered; waiting for SHOW requests (Ctrl-C to stop)"
                );
            }
            use std::io::Write as _;
            let _ = std::io::stdout().flush();
            let _ = tokio::signal::ctrl_c().await;
            let _ = agents.unregister_agent().await;
        }
        Cmd::Notify(args) => {
            let bytes = match notification(&args) {
                Ok(b) => b,
                Err(e) => {
                    omadm_console::errln!("omadmctl: {e}");
                    return Ok(2);
                }
            };
            let server = manager.inject_notification(&bytes).await?;
            if cli.json {
                omadm_console::outln!("{}", json!({"accepted": true, "server_id": server}));
            } else {
                omadm_console::outln!("notification accepted; a session with {server} follows");
            }
        }
    }
    Ok(0)
}
