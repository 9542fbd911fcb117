//! Client proxies of the omadmd D-Bus API, shared by `omadmctl` and the tests. Methods that
//! need authorization allow interactive authentication: with a polkit agent running (say
//! `pkttyagent`), the administrator is asked for a password instead of being refused.

use zbus::proxy;

use super::manager::{AccountRow, AccountState, HistoryRow};

/// `org.omadm.Client1.Manager`.
#[proxy(
    interface = "org.omadm.Client1.Manager",
    default_service = "org.omadm.Client1",
    default_path = "/org/omadm/Client1"
)]
pub trait Manager {
    /// Asks for a session ("" = every server).
    #[zbus(allow_interactive_auth)]
    fn start_session(&self, server_id: &str) -> zbus::Result<()>;
    /// (server id, name, URL) per account.
    fn accounts(&self) -> zbus::Result<Vec<AccountRow>>;
    /// Where one account stands.
    fn account_state(&self, server_id: &str) -> zbus::Result<AccountState>;
    /// Ends the session running with a server.
    #[zbus(allow_interactive_auth)]
    fn cancel_session(&self, server_id: &str) -> zbus::Result<()>;
    /// Provisions accounts from a bootstrap document.
    #[zbus(allow_interactive_auth)]
    fn add_account(
        &self,
        name: &str,
        document: &[u8],
        dry_run: bool,
        replace: bool,
    ) -> zbus::Result<crate::dbus::AccountChange>;
    /// Removes a server's account; the instances deleted.
    #[zbus(allow_interactive_auth)]
    fn remove_account(&self, server_id: &str) -> zbus::Result<Vec<String>>;
    /// Re-reads the configuration and bootstrap files.
    #[zbus(allow_interactive_auth)]
    fn reload(&self) -> zbus::Result<crate::dbus::ReloadReport>;
    /// The bootstrap files refused at the last start or reload: (file, why).
    #[zbus(property)]
    fn bootstrap_refused(&self) -> zbus::Result<Vec<(String, String)>>;
    /// Recent sessions.
    fn history(&self, limit: u32) -> zbus::Result<Vec<HistoryRow>>;
    /// Queues a Generic Alert.
    #[zbus(allow_interactive_auth)]
    fn queue_alert(&self, server_id: &str, alert_json: &str) -> zbus::Result<()>;
    /// Hands over a notification.
    #[zbus(allow_interactive_auth)]
    fn inject_notification(&self, package: &[u8]) -> zbus::Result<String>;
    /// Registers an EXEC handler object for a MOID or MOID//subtree.
    #[zbus(allow_interactive_auth)]
    fn register_exec_handler(&self, target: &str, path: &zbus::ObjectPath<'_>) -> zbus::Result<()>;
    /// Unregisters it.
    fn unregister_exec_handler(&self, target: &str) -> zbus::Result<()>;
    /// Registers an EXEC handler under a well-known name the caller owns: its accepted
    /// EXECs wait for that name across restarts.
    #[zbus(allow_interactive_auth)]
    fn register_exec_handler_as(
        &self,
        target: &str,
        path: &zbus::ObjectPath<'_>,
        name: &str,
    ) -> zbus::Result<()>;
    /// The EXECs the caller accepted and has not answered: (token, ClientURI, server).
    fn pending_execs(&self) -> zbus::Result<Vec<(String, String, String)>>;
    /// A handler keeps its MO current: puts (a dmmo+json document) after deletes.
    fn handler_update(&self, document: &str, delete: &[&str]) -> zbus::Result<()>;
    /// Reports a result accepted earlier with 202.
    fn exec_result(&self, token: &str, status: u32, alert_json: &str) -> zbus::Result<()>;
    /// Daemon version.
    #[zbus(property)]
    fn version(&self) -> zbus::Result<String>;
    /// `idle` or `session`.
    #[zbus(property)]
    fn state(&self) -> zbus::Result<String>;
    /// Server of the running session.
    #[zbus(property)]
    fn active_server(&self) -> zbus::Result<String>;
    /// A session started.
    #[zbus(signal)]
    fn session_started(&self, server_id: String, trigger: String) -> zbus::Result<()>;
    /// A running session's progress.
    #[zbus(signal)]
    fn session_progress(
        &self,
        server_id: String,
        packages: u32,
        commands: u32,
        current: String,
    ) -> zbus::Result<()>;
    /// An alert was queued through the API.
    #[zbus(signal)]
    fn alert_queued(&self, server_id: String, alert_type: String) -> zbus::Result<()>;
    /// A server took queued alerts.
    #[zbus(signal)]
    fn alerts_delivered(&self, server_id: String, count: u32) -> zbus::Result<()>;
    /// A notification was accepted.
    #[zbus(signal)]
    fn notification_accepted(
        &self,
        server_id: String,
        trigger: String,
        via: String,
    ) -> zbus::Result<()>;
    /// A session finished.
    #[zbus(signal)]
    fn session_finished(
        &self,
        id: i64,
        server_id: String,
        outcome: String,
        detail: String,
    ) -> zbus::Result<()>;
}

/// `org.omadm.Client1.Tree`.
#[proxy(
    interface = "org.omadm.Client1.Tree",
    default_service = "org.omadm.Client1",
    default_path = "/org/omadm/Client1"
)]
pub trait Tree {
    /// (MOID, MIID, CV) per instance.
    fn list_instances(&self) -> zbus::Result<Vec<(String, String, String)>>;
    /// MO data at a ClientURI.
    fn get(&self, client_uri: &str) -> zbus::Result<String>;
    /// See the daemon's `Tree.RequestConfiguration`.
    fn request_configuration(
        &self,
        moid: &str,
    ) -> zbus::Result<(String, String, String, Vec<String>)>;
}

/// `org.omadm.Client1.AgentManager`.
#[proxy(
    interface = "org.omadm.Client1.AgentManager",
    default_service = "org.omadm.Client1",
    default_path = "/org/omadm/Client1"
)]
pub trait AgentManager {
    /// Registers the caller's agent object.
    fn register_agent(&self, path: &zbus::ObjectPath<'_>) -> zbus::Result<()>;
    /// Unregisters it.
    fn unregister_agent(&self) -> zbus::Result<()>;
    /// How many agents are registered.
    #[zbus(property)]
    fn agent_count(&self) -> zbus::Result<u32>;
    /// Whether SHOW may open plain http URLs.
    #[zbus(property)]
    fn allow_http_show(&self) -> zbus::Result<bool>;
}

/// Errors an agent answers `Show` with.
#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.omadm.Client1.Agent.Error")]
pub enum AgentError {
    /// A D-Bus failure.
    #[zbus(error)]
    ZBus(zbus::Error),
    /// The user declined to open the page (the server gets 507).
    Declined(String),
    /// The call did not come from omadmd, or the URL is not one an agent opens.
    Refused(String),
}

/// True when a call to an agent came from the owner of `org.omadm.Client1`: anyone on the
/// bus can call an agent's `Show`, and only the daemon's requests are the server's.
pub async fn from_daemon(conn: &zbus::Connection, header: &zbus::message::Header<'_>) -> bool {
    let Some(sender) = header.sender() else {
        return false;
    };
    let Ok(dbus) = zbus::fdo::DBusProxy::new(conn).await else {
        return false;
    };
    let Ok(name) = zbus::names::BusName::try_from(super::BUS_NAME) else {
        return false;
    };
    dbus.get_name_owner(name)
        .await
        .is_ok_and(|owner| owner.as_str() == sender.as_str())
}

/// Whether an agent opens `url`: https, or plain http when the daemon allows it
/// (`sessions.allow-http-show`). Anything else (file:, javascript:, a local program's
/// scheme) is never handed to a browser.
pub fn show_url_allowed(url: &str, allow_http: bool) -> Result<(), String> {
    match url::Url::parse(url) {
        Ok(u) if u.scheme() == "https" && u.has_host() => Ok(()),
        Ok(u) if u.scheme() == "http" && u.has_host() && allow_http => Ok(()),
        Ok(u) => Err(format!("{} URLs are not opened", u.scheme())),
        Err(e) => Err(format!("not a URL: {e}")),
    }
}

/// Checks a `Show` call to an agent: from the daemon, for a URL an agent opens.
pub async fn check_show(
    conn: &zbus::Connection,
    header: &zbus::message::Header<'_>,
    url: &str,
) -> Result<(), AgentError> {
    if !from_daemon(conn, header).await {
        let who = header.sender().map(|s| s.to_string()).unwrap_or_default();
        return Err(AgentError::Refused(format!(
            "only omadmd may ask for a page to be shown ({who} asked)"
        )));
    }
    let allow_http = match AgentManagerProxy::new(conn).await {
        Ok(m) => m.allow_http_show().await.unwrap_or(false),
        Err(_) => false,
    };
    show_url_allowed(url, allow_http).map_err(AgentError::Refused)
}

/// How long a launcher has to fail before it counts as launched.
pub const LAUNCH_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// Opens `url` in the user's browser with `gio open`, else `xdg-open`, without waiting for
/// the browser: the daemon only needs to know the page is on its way (TS §5.3.7), and a
/// browser may run for hours. A launcher that exits within `grace` tells whether it worked
/// (no handler, no display: a failure, and the next is tried); one still running then is
/// a browser in the foreground, counted as launched and reaped when it exits. Returns the
/// launcher that worked, or what each said. Blocks for at most `grace` per launcher.
pub fn launch(url: &str, grace: std::time::Duration) -> Result<&'static str, String> {
    let mut failures = Vec::new();
    for (name, program, args) in [
        ("gio open", "gio", &["open"][..]),
        ("xdg-open", "xdg-open", &[][..]),
    ] {
        match run_launcher(program, args, url, grace) {
            Ok(()) => return Ok(name),
            Err(why) => failures.push(format!("{name}: {why}")),
        }
    }
    Err(failures.join("; "))
}

fn run_launcher(
    program: &str,
    args: &[&str],
    url: &str,
    grace: std::time::Duration,
) -> Result<(), String> {
    let mut child = std::process::Command::new(program)
        .args(args)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run it ({e})"))?;
    let deadline = std::time::Instant::now() + grace;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("it failed ({status})")),
            Ok(None) if std::time::Instant::now() >= deadline => {
                std::thread::spawn(move || child.wait());
                return Ok(());
            }
            Ok(None) => std::thread::sleep(std::time::Duration::from_millis(50)),
            Err(e) => return Err(format!("cannot follow it ({e})")),
        }
    }
}

#[cfg(test)]
mod tests {
    /// Launchers are real processes here: `sh` scripts standing for a browser that stays
    /// in the foreground, one that fails, and one that hands over and exits.
    #[test]
    fn a_launch_is_told_by_how_the_launcher_ends() {
        use std::time::{Duration, Instant};
        let grace = Duration::from_millis(400);
        let run =
            |script: &str| super::run_launcher("sh", &["-c", script, "sh"], "https://x/", grace);
        assert_eq!(run("exit 0"), Ok(()));
        let failed = run("exit 3").unwrap_err();
        assert!(failed.contains("exit status: 3"), "{failed}");
        let started = Instant::now();
        assert_eq!(
            run("sleep 30"),
            Ok(()),
            "still running after the grace: launched"
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not waited for"
        );
        let missing = super::run_launcher("no-such-launcher-here", &[], "https://x/", grace);
        assert!(missing.unwrap_err().starts_with("cannot run it"));
    }

    #[test]
    fn agents_open_https_and_http_only_when_allowed() {
        let table = [
            ("https://ui.example/consent?uiid=1", false, true),
            ("http://ui.example/", false, false),
            ("http://ui.example/", true, true),
            ("file:///etc/shadow", true, false),
            ("javascript:alert(1)", true, false),
            ("x-scheme-handler:run", true, false),
            ("https:", true, false),
            ("not a url", true, false),
        ];
        for (url, allow_http, ok) in table {
            assert_eq!(
                super::show_url_allowed(url, allow_http).is_ok(),
                ok,
                "{url} {allow_http}"
            );
        }
    }
}
