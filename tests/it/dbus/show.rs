//! SHOW through agents on the bus: the registered agent, the desktop agent and its restart, a hanging agent, the agent of the session in front, and the terminal agent.

use super::*;

#[test]
fn show_reaches_the_registered_agent_and_never_fakes_a_yes() {
    let show = |uiid: u32| json!({"packages": [{"CMD": [["SHOW", format!("https://ui.example/consent?uiid={uiid}&dev=[DevID]")]]}, {"CMD": [["END"]]}]});
    let end = json!({"packages": [{"CMD": [["END"]]}]});
    let server = TestServer::start(
        &json!({"sessions": [end, show(1), show(2), show(3)]}),
        false,
    );
    let bus = PrivateBus::start();
    let root = Root::new().with_bootstrap_for(&server.base);
    let mut d = root.start_on_bus(&bus.address);
    d.wait_for("session ended", 30);
    let status_of_last_session = || {
        let p3s = server.of_kind("package3");
        p3s.last().unwrap()["body"]["Status"][0]["sc"]
            .as_u64()
            .unwrap()
    };

    // An agent takes it: 200, and it saw the server's name and the substituted URL.
    let (mut a, lines) = ctl_agent(&bus.address, None, &[]);
    let (_, out, _) = omadmctl(&bus.address, &["status"]);
    assert!(out.trim_end().ends_with("; 1 SHOW agent(s)"), "{out}");
    assert_eq!(omadmctl(&bus.address, &["session", "start", "--wait"]).0, 0);
    assert_eq!(status_of_last_session(), 200);
    let shown = lines
        .recv_timeout(std::time::Duration::from_secs(10))
        .unwrap();
    assert!(shown.starts_with("omadm-testserver (demo) asks you to open: https://ui.example/consent?uiid=1&dev=UUID%3A"), "{shown}");
    a.kill().unwrap();
    a.wait().unwrap();

    // A user who declines: 507.
    let (mut a, _lines) = ctl_agent(&bus.address, None, &["--decline"]);
    assert_eq!(omadmctl(&bus.address, &["session", "start", "--wait"]).0, 0);
    assert_eq!(status_of_last_session(), 507);
    a.kill().unwrap();
    a.wait().unwrap();
    // The daemon notices the agent leave the bus and forgets it at once.
    d.wait_for("a registered peer left the bus", 10);
    let (_, out, _) = omadmctl(&bus.address, &["--json", "status"]);
    let status: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status["agents"], 0, "{status}");

    // No agent left (the last one vanished): 501, never a silent yes.
    assert_eq!(omadmctl(&bus.address, &["session", "start", "--wait"]).0, 0);
    assert_eq!(status_of_last_session(), 501);
    d.terminate();
}

#[test]
fn the_desktop_agent_opens_pages_and_registers_again_after_a_restart() {
    use std::io::BufRead as _;
    let show = |uiid: u32| json!({"packages": [{"CMD": [["SHOW", format!("https://ui.example/consent?uiid={uiid}")]]}, {"CMD": [["END"]]}]});
    let end = json!({"packages": [{"CMD": [["END"]]}]});
    let server = TestServer::start(&json!({"sessions": [end, show(1), show(2)]}), false);
    let bus = PrivateBus::start();
    let root = Root::new().with_bootstrap_for(&server.base);
    // No portal on this bus: the agent falls back to xdg-open, here a stand-in that notes
    // the URL it was given and then stays, as a browser would: the agent must not wait
    // for it (the daemon gives up on an agent after show-timeout-secs, 10 s).
    let opened = root.path("opened.txt");
    let bin = root.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let fake = bin.join("xdg-open");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\necho \"$1\" >> {}\nexec sleep 30 </dev/null >/dev/null 2>&1\n",
            opened.display()
        ),
    )
    .unwrap();
    let opened_urls = |n: usize| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(&opened).unwrap_or_default();
            if text.lines().count() >= n || std::time::Instant::now() > deadline {
                return text;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();

    let mut d = root.start_on_bus(&bus.address);
    d.wait_for("session ended", 30);
    let mut agent = Command::new(crate::common::tool("omadm-agent"))
        .arg("--no-notify")
        .env("DBUS_SYSTEM_BUS_ADDRESS", &bus.address)
        .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    let out = agent.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let wait_line = |want: &str| loop {
        let l = lines
            .recv_timeout(std::time::Duration::from_secs(15))
            .unwrap_or_else(|_| panic!("no {want:?} from omadm-agent"));
        if l.contains(want) {
            return l;
        }
    };
    wait_line("registered with omadmd");
    let registered = d.wait_for("SHOW agent registered", 10);
    let unique = registered
        .split("agent=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap()
        .to_owned();
    // Anyone else on the bus asking the agent to open a page is refused.
    let spoof = Command::new("dbus-send")
        .args([
            &format!("--bus={}", bus.address),
            "--print-reply",
            &format!("--dest={unique}"),
            "/org/omadm/Client1/Agent",
            "org.omadm.Client1.Agent.Show",
            "string:https://phish.example/login",
            "string:Your bank",
        ])
        .output()
        .unwrap();
    let spoof_err = String::from_utf8_lossy(&spoof.stderr);
    assert!(!spoof.status.success(), "{spoof_err}");
    assert!(
        spoof_err.contains("org.omadm.Client1.Agent.Error.Refused")
            && spoof_err.contains("only omadmd may ask"),
        "{spoof_err}"
    );
    let started = std::time::Instant::now();
    assert_eq!(omadmctl(&bus.address, &["session", "start", "--wait"]).0, 0);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(9),
        "the agent did not wait for the browser"
    );
    wait_line("opened a page for omadm-testserver (demo) with xdg-open");
    assert_eq!(
        opened_urls(1).trim(),
        "https://ui.example/consent?uiid=1",
        "only the daemon's page was opened"
    );

    // The daemon restarts: the agent registers again by itself.
    d.terminate();
    let d = root.start_on_bus(&bus.address);
    wait_line("registered again");
    assert_eq!(omadmctl(&bus.address, &["session", "start", "--wait"]).0, 0);
    let p3s = server.of_kind("package3");
    assert_eq!(p3s.last().unwrap()["body"]["Status"][0]["sc"], 200);
    assert!(opened_urls(2).contains("uiid=2"));
    agent.kill().unwrap();
    agent.wait().unwrap();
    d.terminate();
}

/// An agent that never answers.
struct HangingAgent;

#[zbus::interface(name = "org.omadm.Client1.Agent")]
impl HangingAgent {
    async fn show(&self, _url: String, _server_name: String) {
        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hanging_agent_cannot_stall_the_session() {
    let show = json!({"packages": [{"CMD": [["SHOW", "https://ui.example/x"], ["GET", "urn:oma:mo:oma-dm-devinfo:1.2//DevID"]]}, {"CMD": [["END"]]}]});
    let end = json!({"packages": [{"CMD": [["END"]]}]});
    let server = TestServer::start(&json!({"sessions": [end, show]}), false);
    let bus = PrivateBus::start();
    let root = Root::new().with_bootstrap_for(&server.base);
    root.write(
        "etc/omadmd/config.d/60-timeout.toml",
        "[sessions]\nshow-timeout-secs = 1\n",
    );
    let mut d = root.start_on_bus(&bus.address);
    d.wait_for("session ended", 30);
    // A working agent first, then a hanging one, which is asked first (the most recent).
    let (mut good, lines) = tokio::task::spawn_blocking({
        let a = bus.address.clone();
        move || ctl_agent(&a, None, &[])
    })
    .await
    .unwrap();
    let conn = zbus::connection::Builder::address(bus.address.as_str())
        .serve_at("/hang", HangingAgent)
        .build()
        .await
        .unwrap();
    let agents = omadm_client::AgentManagerProxy::new(&conn).await.unwrap();
    let props = zbus::fdo::PropertiesProxy::builder(&conn)
        .destination("org.omadm.Client1")
        .path("/org/omadm/Client1")
        .build()
        .await
        .unwrap();
    let mut changes = props.receive_properties_changed().await.unwrap();
    agents
        .register_agent(&zbus::ObjectPath::try_from("/hang").unwrap())
        .await
        .unwrap();
    // AgentCount follows in a PropertiesChanged signal: the terminal agent and this one.
    let changed = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        use futures_util::StreamExt as _;
        loop {
            let signal = changes.next().await.unwrap();
            let args = signal.args().unwrap();
            if args.interface_name().as_str() == "org.omadm.Client1.AgentManager"
                && args
                    .changed_properties()
                    .get("AgentCount")
                    .is_some_and(|v| u32::try_from(v).ok() == Some(2))
            {
                break;
            }
        }
    })
    .await;
    assert!(changed.is_ok(), "no PropertiesChanged with AgentCount 2");

    let a = bus.address.clone();
    let (code, _, err) =
        tokio::task::spawn_blocking(move || omadmctl(&a, &["session", "start", "--wait"]))
            .await
            .unwrap();
    assert_eq!(code, 0, "{err}");
    let p3 = server.of_kind("package3").last().unwrap().clone();
    assert_eq!(
        p3["body"]["Status"][0]["sc"], 200,
        "the working agent took it after the hanging one timed out"
    );
    assert_eq!(
        p3["body"]["Status"][1]["sc"], 200,
        "and the session went on"
    );
    assert!(
        lines
            .recv_timeout(std::time::Duration::from_secs(5))
            .unwrap()
            .contains("https://ui.example/x")
    );
    good.kill().unwrap();
    good.wait().unwrap();
    d.terminate();
    drop(conn);
}

/// A stand-in for logind, which cannot run without systemd as PID 1: one process sits in
/// the active session on seat0, every other one in an inactive session.
struct StandInLogin {
    front: u32,
}

#[zbus::interface(name = "org.freedesktop.login1.Manager")]
impl StandInLogin {
    #[zbus(name = "GetSessionByPID")]
    fn get_session_by_pid(&self, pid: u32) -> zbus::OwnedObjectPath {
        let id = if pid == self.front { "c1" } else { "c2" };
        zbus::ObjectPath::try_from(format!("/org/freedesktop/login1/session/{id}"))
            .unwrap()
            .into()
    }
}

struct StandInSession {
    active: bool,
}

#[zbus::interface(name = "org.freedesktop.login1.Session")]
impl StandInSession {
    #[zbus(property)]
    fn active(&self) -> bool {
        self.active
    }
    #[zbus(property)]
    fn remote(&self) -> bool {
        false
    }
    #[zbus(property)]
    fn seat(&self) -> (String, zbus::OwnedObjectPath) {
        (
            "seat0".into(),
            zbus::ObjectPath::try_from("/org/freedesktop/login1/seat/seat0")
                .unwrap()
                .into(),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn show_goes_to_the_agent_of_the_session_in_front() {
    let show =
        json!({"packages": [{"CMD": [["SHOW", "https://ui.example/front"]]}, {"CMD": [["END"]]}]});
    let end = json!({"packages": [{"CMD": [["END"]]}]});
    let server = TestServer::start(&json!({"sessions": [end, show]}), false);
    let bus = PrivateBus::start();
    let root = Root::new().with_bootstrap_for(&server.base);
    let mut d = root.start_on_bus(&bus.address);
    d.wait_for("session ended", 30);
    let a = bus.address.clone();
    let (front, front_lines) = tokio::task::spawn_blocking(move || ctl_agent(&a, None, &[]))
        .await
        .unwrap();
    // Registered later, so without logind it would be asked first.
    let a = bus.address.clone();
    let (away, away_lines) = tokio::task::spawn_blocking(move || ctl_agent(&a, None, &[]))
        .await
        .unwrap();
    let _login = zbus::connection::Builder::address(bus.address.as_str())
        .serve_at(
            "/org/freedesktop/login1",
            StandInLogin { front: front.id() },
        )
        .serve_at(
            "/org/freedesktop/login1/session/c1",
            StandInSession { active: true },
        )
        .serve_at(
            "/org/freedesktop/login1/session/c2",
            StandInSession { active: false },
        )
        .name("org.freedesktop.login1")
        .build()
        .await
        .unwrap();

    let a = bus.address.clone();
    let (code, _, err) =
        tokio::task::spawn_blocking(move || omadmctl(&a, &["session", "start", "--wait"]))
            .await
            .unwrap();
    assert_eq!(code, 0, "{err}");
    let p3 = server.of_kind("package3").last().unwrap().clone();
    assert_eq!(p3["body"]["Status"][0]["sc"], 200);
    let shown = front_lines
        .recv_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    assert!(shown.contains("https://ui.example/front"), "{shown}");
    assert!(
        away_lines
            .recv_timeout(std::time::Duration::from_millis(300))
            .is_err(),
        "the agent of the inactive session was not asked"
    );
    drop((front, away));
    d.terminate();
}

/// `omadmctl agent` tells the truth: `--open` whose launch fails (this machine's real `gio`
/// cannot open a URL without a desktop, and no `xdg-open` is on the PATH) is a failure
/// (500), not a page shown; `--ask` answered no is a decline (507), yes prints the page
/// (200); with `--json` each request is a JSON line saying what became of it.
#[test]
fn the_terminal_agent_reports_what_became_of_a_page() {
    use crate::common::ctl_lines_with;
    use std::io::Write as _;
    let show = json!({"packages": [{"CMD": [["SHOW", "https://ui.example/consent"]]}, {"CMD": [["END"]]}]});
    let end = json!({"packages": [{"CMD": [["END"]]}]});
    let server = TestServer::start(
        &json!({"sessions": [end, show.clone(), show.clone(), show]}),
        false,
    );
    let bus = PrivateBus::start();
    let root = Root::new().with_bootstrap_for(&server.base);
    let mut d = root.start_on_bus(&bus.address);
    d.wait_for("session ended", 30);
    let status_of_last_session = || {
        server.of_kind("package3").last().unwrap()["body"]["Status"][0]["sc"]
            .as_u64()
            .unwrap()
    };
    let next_json = |lines: &std::sync::mpsc::Receiver<String>| -> serde_json::Value {
        let l = lines
            .recv_timeout(std::time::Duration::from_secs(15))
            .unwrap();
        serde_json::from_str(&l).unwrap_or_else(|e| panic!("{l}: {e}"))
    };
    // Only gio on the PATH (no xdg-open), and no desktop for it.
    let bin = root.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink("/usr/bin/gio", bin.join("gio")).unwrap();
    let path = bin.to_str().unwrap();
    let (mut a, lines) = ctl_lines_with(
        &bus.address,
        None,
        &["--json", "agent", "--open"],
        &[
            ("PATH", path),
            ("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent"),
        ],
        std::process::Stdio::null(),
    );
    assert_eq!(next_json(&lines)["event"], "registered");
    assert_eq!(omadmctl(&bus.address, &["session", "start", "--wait"]).0, 0);
    assert_eq!(
        status_of_last_session(),
        500,
        "a failed launch is no page shown"
    );
    let said = next_json(&lines);
    assert_eq!(
        (&said["event"], &said["outcome"]),
        (&json!("show"), &json!("failed")),
        "{said}"
    );
    let detail = said["detail"].as_str().unwrap();
    assert!(
        detail.contains("gio open: it failed") && detail.contains("xdg-open: cannot run it"),
        "{said}"
    );
    a.kill().unwrap();
    a.wait().unwrap();
    d.wait_for("a registered peer left the bus", 10);

    // Asked on the terminal: no is a decline, yes a page shown.
    for (answer, status, outcome) in [("n\n", 507, "declined"), ("y\n", 200, "printed")] {
        let (mut a, lines) = ctl_lines_with(
            &bus.address,
            None,
            &["--json", "agent", "--ask"],
            &[],
            std::process::Stdio::piped(),
        );
        assert_eq!(next_json(&lines)["event"], "registered");
        a.stdin
            .take()
            .unwrap()
            .write_all(answer.as_bytes())
            .unwrap();
        assert_eq!(omadmctl(&bus.address, &["session", "start", "--wait"]).0, 0);
        assert_eq!(status_of_last_session(), status, "{answer:?}");
        assert_eq!(next_json(&lines)["outcome"], outcome);
        a.kill().unwrap();
        a.wait().unwrap();
        d.wait_for("a registered peer left the bus", 10);
    }
    d.terminate();
}
