//! `omadmctl agent`: a SHOW agent in the terminal, which prints each page asked for and
//! opens, asks about or declines it.

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
            crate::launch::launch(&target, crate::launch::LAUNCH_GRACE)
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

/// Serves the terminal agent until Ctrl-C.
pub(crate) async fn run(
    conn: &zbus::Connection,
    open: bool,
    ask: bool,
    decline: bool,
    json: bool,
) -> zbus::Result<u8> {
    let path = zbus::ObjectPath::try_from("/org/omadm/Client1/Agent")?;
    conn.object_server()
        .at(
            &path,
            TerminalAgent {
                open,
                ask,
                decline,
                json,
            },
        )
        .await?;
    let agents = omadm_client::AgentManagerProxy::new(conn).await?;
    agents.register_agent(&path).await?;
    if json {
        omadm_console::outln!(
            "{}",
            json!({"time": omadm_console::now_secs(), "event": "registered"})
        );
    } else {
        omadm_console::outln!("agent registered; waiting for SHOW requests (Ctrl-C to stop)");
    }
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    let _ = tokio::signal::ctrl_c().await;
    let _ = agents.unregister_agent().await;
    Ok(0)
}
