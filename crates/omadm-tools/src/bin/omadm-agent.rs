//! `omadm-agent`: the reference desktop SHOW agent. Run in a user's session, it registers
//! with omadmd on the system bus; when a server asks the user to see a page it shows a
//! desktop notification naming the server and opens the URL through the
//! `org.freedesktop.portal.OpenURI` portal, falling back to `gio open`, then `xdg-open`
//! (launched, not waited for; a launcher that fails is reported as a failure). It answers only omadmd (the owner of `org.omadm.Client1`), opens only https
//! URLs (http only when the daemon allows it), and registers again whenever the daemon
//! restarts.

use std::collections::HashMap;
use std::process::ExitCode;

use clap::Parser;
use futures_util::StreamExt as _;
use omadm_client::AgentManagerProxy;
use omadm_client::agent::{AgentError, check_show};
use omadm_tools::cli::agent::Cli;
use zbus::Variant;

const AGENT_PATH: &str = "/org/omadm/Client1/Agent";

struct DesktopAgent {
    session: Option<zbus::Connection>,
    notify: bool,
}

impl DesktopAgent {
    async fn notify(&self, server_name: &str) {
        let Some(conn) = &self.session else { return };
        let hints: HashMap<&str, Variant<'_>> = HashMap::new();
        let body = (
            "omadm-agent",
            0u32,
            "preferences-system",
            format!("{server_name} asks you to look at a page"),
            "It opens in your browser.",
            Vec::<&str>::new(),
            hints,
            10_000i32,
        );
        let sent = conn
            .call_method(
                Some("org.freedesktop.Notifications"),
                "/org/freedesktop/Notifications",
                Some("org.freedesktop.Notifications"),
                "Notify",
                &body,
            )
            .await;
        if let Err(e) = sent {
            eprintln!("omadm-agent: no desktop notification: {e}");
        }
    }

    async fn open(&self, url: &str) -> Result<&'static str, String> {
        if let Some(conn) = &self.session {
            let options: HashMap<&str, Variant<'_>> = HashMap::new();
            let portal = conn
                .call_method(
                    Some("org.freedesktop.portal.Desktop"),
                    "/org/freedesktop/portal/desktop",
                    Some("org.freedesktop.portal.OpenURI"),
                    "OpenURI",
                    &("", url, options),
                )
                .await;
            match portal {
                Ok(_) => return Ok("the OpenURI portal"),
                Err(e) => {
                    eprintln!("omadm-agent: OpenURI portal unavailable ({e}); trying gio open")
                }
            }
        }
        let url = url.to_owned();
        tokio::task::spawn_blocking(move || {
            omadm_tools::launch::launch(&url, omadm_tools::launch::LAUNCH_GRACE)
        })
        .await
        .map_err(|e| format!("the launch did not finish: {e}"))?
        .map_err(|why| format!("no launcher could open the page: {why}"))
    }
}

#[zbus::interface(name = "org.omadm.Client1.Agent")]
impl DesktopAgent {
    async fn show(
        &self,
        url: String,
        server_name: String,
        #[zbus(header)] header: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<(), AgentError> {
        if let Err(e) = check_show(conn, &header, &url).await {
            eprintln!("omadm-agent: Show refused: {e}");
            return Err(e);
        }
        if self.notify {
            self.notify(&server_name).await;
        }
        match self.open(&url).await {
            Ok(how) => {
                println!("opened a page for {server_name} with {how}: {url}");
                Ok(())
            }
            // Not a decline: the daemon tries another agent, or tells the server it failed.
            Err(why) => Err(AgentError::ZBus(zbus::Error::Failure(why))),
        }
    }
}

async fn run(cli: Cli) -> zbus::Result<()> {
    let system = zbus::Connection::system().await?;
    let session = match zbus::Connection::session().await {
        Ok(c) => Some(c),
        Err(e) => {
            eprintln!("omadm-agent: no session bus ({e}); using gio open and xdg-open only");
            None
        }
    };
    let path = zbus::ObjectPath::try_from(AGENT_PATH)?;
    system
        .object_server()
        .at(
            &path,
            DesktopAgent {
                session,
                notify: !cli.no_notify,
            },
        )
        .await?;
    let manager = AgentManagerProxy::new(&system).await?;
    let dbus = zbus::fdo::DBusProxy::new(&system).await?;
    // Watch first, then register: a daemon that starts in between is not missed.
    let mut owners = dbus
        .receive_name_owner_changed_with_args(&[(0, "org.omadm.Client1")])
        .await?;
    match manager.register_agent(&path).await {
        Ok(()) => println!("registered with omadmd"),
        // Not running: it registers when omadmd appears. Refused (polkit: this session is
        // not active and local, or a rule says no): said as such; it tries again whenever
        // omadmd restarts, as a change of rules takes effect then.
        Err(e)
            if omadm_client::error_name(&e).as_deref()
                == Some("org.omadm.Client1.Error.AccessDenied") =>
        {
            eprintln!(
                "omadm-agent: omadmd refused this agent ({e}); pages will not be shown in this session"
            )
        }
        Err(e) => eprintln!("omadm-agent: omadmd is not running yet ({e}); waiting for it"),
    }
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            change = owners.next() => {
                let Some(change) = change else { break };
                let args = change.args()?;
                if args.new_owner().is_some() {
                    match manager.register_agent(&path).await {
                        Ok(()) => println!("omadmd (re)started; registered again"),
                        Err(e) => eprintln!("omadm-agent: cannot register: {e}"),
                    }
                }
            }
        }
    }
    let _ = manager.unregister_agent().await;
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("omadm-agent: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("omadm-agent: {e}");
            ExitCode::FAILURE
        }
    }
}
