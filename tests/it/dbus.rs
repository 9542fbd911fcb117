//! The D-Bus API end to end: the real omadmd on a private dbus-daemon, driven by the real
//! omadmctl; the live introspection against the checked-in contract; errors and refusals.

use std::os::unix::process::CommandExt as _;
use std::process::Command;

use serde_json::json;

use crate::common::{
    Daemon, OMADMCTL, PrivateBus, Root, TestServer, ctl_agent, ctl_lines, dmacc, omadmctl,
};

/// The demo server's account against a test server with `sessions` sessions that each
/// just end, on a private bus, once the daemon's BootstrapComplete session ended.
fn demo_up(sessions: usize) -> (TestServer, PrivateBus, Root, Daemon) {
    let end = json!({"packages": [{"CMD": [["END"]]}]});
    let server = TestServer::start(&json!({"sessions": vec![end; sessions]}), false);
    let bus = PrivateBus::start();
    let root = Root::new().with_bootstrap_for(&server.base);
    let mut d = root.start_on_bus(&bus.address);
    d.wait_for("session ended", 30);
    (server, bus, root, d)
}

#[test]
fn omadmctl_drives_the_daemon() {
    let end = json!({"packages": [{"CMD": [["END"]]}]});
    let server = TestServer::start(&json!({"sessions": [end, end, end]}), false);
    let bus = PrivateBus::start();
    let root = Root::new().with_bootstrap_for(&server.base);
    let mut d = root.start_on_bus(&bus.address);
    d.wait_for("D-Bus name owned", 30);
    d.wait_for("session ended", 30);

    let (code, out, err) = omadmctl(&bus.address, &["status"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("omadmd 0.1.0: idle; 1 account(s)"), "{out}");
    let (_, out, _) = omadmctl(&bus.address, &["--json", "accounts"]);
    let accounts: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(accounts[0]["server_id"], "demo-server");

    // A queued alert goes out with the session the CLI starts and waits for.
    let (code, _, err) = omadmctl(
        &bus.address,
        &[
            "alert",
            "send",
            "--server",
            "demo-server",
            "--type",
            "urn:example:at:test",
            "--data",
            "{\"n\": 1}",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = omadmctl(
        &bus.address,
        &["session", "start", "--server", "demo-server", "--wait"],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("with demo-server ended"), "{out}");
    // (The session QueueAlert asked for may have started before this one subscribed.)
    assert!(
        err.contains("session requested with demo-server; waiting"),
        "{err}"
    );
    let (_, out, _) = omadmctl(&bus.address, &["accounts"]);
    assert!(out.contains("last session #"), "{out}");
    assert!(out.contains("(client)"), "{out}");
    // QueueAlert asks for a session itself: the alert went out in one of the two.
    let p1s = server.of_kind("package1");
    // The daemon keeps the server's HTTP client between sessions, never its cookies: each
    // Package#1 opens a session without the last one's cookie.
    assert!(p1s.len() >= 3, "{p1s:#?}");
    assert!(
        p1s.iter().all(|p| p["headers"]["cookie"].is_null()),
        "a Package#1 carried an earlier session's cookie: {p1s:#?}"
    );
    let with_alert: Vec<_> = p1s
        .iter()
        .filter(|p| p["body"]["Alert"].as_array().is_some_and(|a| a.len() == 2))
        .collect();
    assert_eq!(
        with_alert.len(),
        1,
        "the alert went out exactly once: {p1s:#?}"
    );
    let alerts = &with_alert[0]["body"]["Alert"];
    assert_eq!(
        alerts[0]["AlertType"],
        "urn:oma:at:dm:2.0:ClientInitiatedMgmt"
    );
    assert_eq!(
        (
            alerts[1]["AlertType"].as_str(),
            alerts[1]["Data"]["n"].as_i64()
        ),
        (Some("urn:example:at:test"), Some(1))
    );

    let (_, out, _) = omadmctl(&bus.address, &["--json", "history"]);
    let h: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        h.as_array()
            .unwrap()
            .iter()
            .any(|s| s["trigger"] == "client" && s["outcome"] == "ended"),
        "{h:#}"
    );
    // The table has a header and says when each session ran.
    let (_, out, _) = omadmctl(&bus.address, &["history"]);
    let mut lines = out.lines();
    assert!(lines.next().unwrap().contains("started"), "{out}");
    assert!(lines.all(|l| l.contains(" ago ")), "{out}");

    // Tree reads: secrets and No Get nodes never leave the daemon.
    let (_, out, _) = omadmctl(&bus.address, &["tree", "list"]);
    assert!(out.contains("urn:oma:mo:oma-dm-dmacc:1.2/demo/"), "{out}");
    let (code, out, _) = omadmctl(
        &bus.address,
        &["tree", "get", "urn:oma:mo:oma-dm-dmacc:1.2//"],
    );
    assert_eq!(code, 0);
    assert!(
        out.contains("\"SrvID\": \"demo-server\"")
            && !out.contains("Secret")
            && !out.contains("Perm"),
        "{out}"
    );
    for (args, want) in [
        (
            vec![
                "tree",
                "get",
                "urn:oma:mo:oma-dm-dmacc:1.2//Auth/Noti/Secret",
            ],
            "AccessDenied",
        ),
        (vec!["tree", "get", "urn:x:nope:1.0//"], "NotFound"),
        (vec!["tree", "get", "not a uri"], "InvalidArgument"),
        (
            vec!["alert", "send", "--server", "demo-server", "--type", ""],
            "InvalidArgument",
        ),
    ] {
        let (code, _, err) = omadmctl(&bus.address, &args);
        assert_ne!(code, 0, "{args:?}");
        // A sentence for people first, the error's name after it.
        assert!(
            err.lines()
                .next()
                .unwrap_or_default()
                .ends_with(&format!("(org.omadm.Client1.Error.{want})")),
            "{args:?}: {err}"
        );
        assert!(!err.starts_with("omadmctl: org."), "{args:?}: {err}");
    }
    // A notification handed over D-Bus, as an SMS bridge would.
    let file = root.path("noti.bin");
    let bytes = omadmd::protocol::package0::encode_signed(
        &omadmd::protocol::package0::Notification {
            server_id: Some("demo-server".into()),
            notification_id: Some(77),
            ..Default::default()
        },
        b"demo-notification-secret",
        b"demo-auth-data",
    )
    .unwrap();
    std::fs::write(&file, bytes).unwrap();
    let (code, out, err) = omadmctl(&bus.address, &["notify", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("a session with demo-server follows"), "{out}");
    let (code, _, err) = omadmctl(&bus.address, &["notify", file.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(err.contains("duplicate NOTIFICATION-ID 77"), "{err}");
    d.wait_for("trigger=notification:77", 30);

    // omadmctl makes one up for a server, signed with its secret (read from a file here).
    let secret = root.write("secret.b64", "ZGVtby1ub3RpZmljYXRpb24tc2VjcmV0\n");
    let made = |extra: &[&str]| {
        let mut args = vec!["notify", "--server", "demo-server"];
        args.extend_from_slice(extra);
        omadmctl(&bus.address, &args)
    };
    let auth = ["--auth-data", "ZGVtby1hdXRoLWRhdGE="];
    let (code, out, err) = made(
        &[
            &["--notification-id", "78", "--wap", "--secret-file"][..],
            &[secret.to_str().unwrap()],
            &auth,
        ]
        .concat(),
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("a session with demo-server follows"), "{out}");
    d.wait_for("trigger=notification:78", 30);
    // Signed with the wrong secret: the daemon drops it and says why.
    let (code, _, err) = made(
        &[
            &["--notification-id", "79", "--secret", "d3Jvbmc="][..],
            &auth,
        ]
        .concat(),
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("digest check failed"), "{err}");
    // Written to a file for another transport, then handed over from it.
    let saved = root.path("made.bin");
    let (code, out, err) = made(
        &[
            &[
                "--notification-id",
                "80",
                "--secret",
                "ZGVtby1ub3RpZmljYXRpb24tc2VjcmV0",
                "--out",
            ][..],
            &[saved.to_str().unwrap()],
            &auth,
        ]
        .concat(),
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("notification to"), "{out}");
    let (code, _, err) = omadmctl(&bus.address, &["notify", saved.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    d.wait_for("trigger=notification:80", 30);
    // Usage errors: neither a file nor a server; a secret that is not base64.
    for (args, want) in [
        (vec!["notify"], "required arguments were not provided"),
        (
            vec!["notify", "--server", "demo-server", "--secret", "%%"],
            "not base64",
        ),
        (
            vec!["notify", "f.bin", "--server", "demo-server"],
            "cannot be used with",
        ),
        // An unknown server is a bad argument, and the known ones are named.
        (
            vec!["session", "start", "--server", "nope"],
            "no server \"nope\"; the servers are: demo-server",
        ),
        (
            vec!["alert", "send", "--server", "nope", "--type", "urn:x"],
            "no server \"nope\"; the servers are: demo-server",
        ),
    ] {
        let (code, _, err) = omadmctl(&bus.address, &args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    // Writing a notification to a file needs no bus at all.
    let offline = root.path("offline.bin");
    let (code, out, err) = omadmctl(
        "unix:path=/nonexistent/omadmd-test-bus",
        &[
            &[
                "notify",
                "--server",
                "demo-server",
                "--secret",
                "ZGVtby1ub3RpZmljYXRpb24tc2VjcmV0",
                "--out",
            ][..],
            &[offline.to_str().unwrap()],
            &auth,
        ]
        .concat(),
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("notification to") && offline.exists(), "{out}");
    d.terminate();
}

#[test]
fn errors_say_what_to_do() {
    let bus = PrivateBus::start();
    // Nobody owns the name: exit 3 and a hint.
    let (code, _, err) = omadmctl(&bus.address, &["status"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("omadmd is not running"), "{err}");
    // No bus at all: exit 3, said as such.
    let dir = tempfile::tempdir().unwrap();
    let nowhere = format!("unix:path={}", dir.path().join("no-bus").display());
    let (code, _, err) = omadmctl(&nowhere, &["status"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("cannot reach the system bus"), "{err}");
    let root = Root::new();
    let mut d = root.start_on_bus(&bus.address);
    d.wait_for("ready", 30);
    // A second daemon cannot take the name over: it fails with the reason.
    let second = Root::new();
    let mut d2 = second.start_on_bus(&bus.address);
    assert!(!d2.wait_exit(30).success());
    assert!(
        d2.log.join("\n").contains("another omadmd running"),
        "{:?}",
        d2.log
    );
    // Another user may read but not change anything.
    if nix::unistd::Uid::effective().is_root() {
        let out = Command::new(OMADMCTL)
            .args(["session", "start"])
            .env("DBUS_SYSTEM_BUS_ADDRESS", &bus.address)
            .uid(65534)
            .gid(65534)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(4),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains("AccessDenied"));
        let out = Command::new(OMADMCTL)
            .arg("status")
            .env("DBUS_SYSTEM_BUS_ADDRESS", &bus.address)
            .uid(65534)
            .gid(65534)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "reads are open: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    d.terminate();
}

/// The interfaces, members and signatures of an introspection document, ours only.
fn api(xml: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse_with_options(
        xml,
        roxmltree::ParsingOptions {
            allow_dtd: true,
            ..Default::default()
        },
    )
    .unwrap();
    let mut out = Vec::new();
    for iface in doc.descendants().filter(|n| n.has_tag_name("interface")) {
        let name = iface.attribute("name").unwrap_or_default();
        if !name.starts_with("org.omadm.") {
            continue;
        }
        for m in iface.children().filter(|c| c.is_element()) {
            let args: Vec<String> = m
                .children()
                .filter(|a| a.has_tag_name("arg"))
                .map(|a| {
                    format!(
                        "{}:{}:{}",
                        a.attribute("name").unwrap_or(""),
                        a.attribute("type").unwrap_or(""),
                        a.attribute("direction").unwrap_or("")
                    )
                })
                .collect();
            out.push(format!(
                "{name} {} {} {} {}",
                m.tag_name().name(),
                m.attribute("name").unwrap_or(""),
                m.attribute("type").unwrap_or(""),
                args.join(",")
            ));
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn live_introspection_matches_the_published_contract() {
    let bus = PrivateBus::start();
    let root = Root::new();
    let mut d = root.start_on_bus(&bus.address);
    d.wait_for("ready", 30);
    let conn = zbus::connection::Builder::address(bus.address.as_str())
        .build()
        .await
        .unwrap();
    let proxy = zbus::fdo::IntrospectableProxy::builder(&conn)
        .destination("org.omadm.Client1")
        .path("/org/omadm/Client1")
        .build()
        .await
        .unwrap();
    let live = proxy.introspect().await.unwrap();
    let published = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dbus/org.omadm.Client1.xml"),
    )
    .unwrap();
    assert!(!api(&published).is_empty());
    assert_eq!(
        api(&live),
        api(&published),
        "the live API differs from dbus/org.omadm.Client1.xml"
    );
    d.terminate();
}

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
    let mut agent = Command::new(crate::common::OMADM_AGENT)
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
    let agents = omadmd::dbus::client::AgentManagerProxy::new(&conn)
        .await
        .unwrap();
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

#[test]
fn accounts_show_what_waits_for_an_unreachable_server() {
    let bus = PrivateBus::start();
    // A server nobody runs: the bootstrap session fails, so BootstrapComplete is owed.
    let root = Root::new().with_demo_bootstrap();
    let mut d = root.start_on_bus(&bus.address);
    d.wait_for("session aborted", 30);
    let (code, _, err) = omadmctl(
        &bus.address,
        &[
            "alert",
            "send",
            "--server",
            "demo-server",
            "--type",
            "urn:x:t",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = omadmctl(&bus.address, &["--json", "accounts"]);
    let a: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(a[0]["queued"], 1, "{a}");
    assert_eq!(a[0]["owed"], "BootstrapComplete", "{a}");
    assert_eq!(a[0]["last_trigger"], "bootstrap", "{a}");
    assert!(
        a[0]["last_detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{a}"
    );
    let (_, out, _) = omadmctl(&bus.address, &["accounts"]);
    assert!(
        out.contains("1 queued; owes a session (BootstrapComplete)"),
        "{out}"
    );
    d.terminate();
}

/// DEFAULT (TS §5.3.10) is usable: a server gives DEFAULTs in a session; later a local
/// application asks over D-Bus (`omadmctl tree configure`) for an MO the tree lacks, and
/// the daemon fetches it from the DEFAULT's ServerURI (`[DevID]` substituted), stores it
/// and says where it came from; asked again, it is there. A MOID with no DEFAULT, and a
/// DEFAULT whose repository fails, are errors that name the cause; the daemon serves on.
#[test]
fn a_missing_mo_is_fetched_from_its_default_on_request() {
    let vpn = "urn:x:vpn:1.0";
    let data = json!([{"ClientURI": format!("{vpn}//"), "MOData": {"office": {"Gateway": "vpn.example", "Port": 443}}}]);
    let defaults = json!({"packages": [
        {"CMD": [["DEFAULT", "{base}/repo/vpn?dev=[DevID]", vpn], ["DEFAULT", "{base}/repo/gone", "urn:x:gone:1.0"]]},
        {"CMD": [["END"]]}
    ]});
    let server = TestServer::start(
        &json!({
            "sessions": [defaults],
            "repository": {"/repo/vpn": {"content_type": "application/dmmo+json", "body": data.to_string()}}
        }),
        false,
    );
    let bus = PrivateBus::start();
    let root = Root::new().with_bootstrap_for(&server.base);
    let mut d = root.start_on_bus(&bus.address);
    d.wait_for("session ended", 30);

    let (code, out, err) = omadmctl(&bus.address, &["tree", "configure", vpn]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        // The URL as logs show it: no query, which may hold tokens.
        out.starts_with(&format!(
            "{vpn}: fetched from {}/repo/vpn (the DEFAULT of server demo-server), stored at:\n  urn:x:vpn:1.0/office/\n",
            server.base
        )),
        "{out}"
    );
    let fetches = server.of_kind("repo-get");
    assert_eq!(fetches.len(), 1, "{fetches:#?}");
    let dev_id = fetches[0]["query"]
        .as_str()
        .unwrap()
        .strip_prefix("dev=")
        .unwrap()
        .to_owned();
    assert!(
        !dev_id.is_empty() && !dev_id.contains('['),
        "DevID substituted: {dev_id}"
    );
    let (_, out, _) = omadmctl(
        &bus.address,
        &["tree", "get", "urn:x:vpn:1.0/office/Gateway"],
    );
    assert!(out.contains("vpn.example"), "{out}");

    // Present now: nothing is fetched again.
    let (code, out, _) = omadmctl(&bus.address, &["--json", "tree", "configure", vpn]);
    assert_eq!(code, 0);
    let answer: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        answer,
        json!({"moid": vpn, "outcome": "present", "source": null, "client_uris": ["urn:x:vpn:1.0/office/"]})
    );
    assert_eq!(server.of_kind("repo-get").len(), 1);

    // No DEFAULT; a DEFAULT whose repository has nothing: errors naming the cause.
    let (code, _, err) = omadmctl(&bus.address, &["tree", "configure", "urn:x:none:1.0"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no server gave a DEFAULT for it"), "{err}");
    let (code, _, err) = omadmctl(&bus.address, &["tree", "configure", "urn:x:gone:1.0"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("(the DEFAULT of server demo-server) failed: 419 ServerURI Error"),
        "{err}"
    );
    let (code, out, _) = omadmctl(&bus.address, &["status"]);
    assert_eq!(code, 0, "{out}");
}

/// `omadmctl monitor --json` prints the daemon's events as they happen, one JSON line
/// each: an alert queued and then delivered by the session it asked for, notifications
/// accepted over D-Bus and over UDP, a SHOW agent coming and going, the daemon stopping.
#[test]
fn monitor_shows_what_the_daemon_does_as_it_happens() {
    let end = json!({"packages": [{"CMD": [["END"]]}]});
    let server = TestServer::start(&json!({"sessions": [end, end, end, end, end]}), false);
    let bus = PrivateBus::start();
    let root = Root::new().with_bootstrap_for(&server.base);
    root.write(
        "etc/omadmd/config.d/50-notify.toml",
        "[notifications]\nlisten = \"127.0.0.1:0\"\nmin-interval-secs = 0\n",
    );
    let mut d = root.start_on_bus(&bus.address);
    let udp_at = d.notification_address();
    d.wait_for("session ended", 30);
    let (_monitor, lines) = ctl_lines(&bus.address, None, &["--json", "monitor"]);
    let (_human, human) = ctl_lines(&bus.address, None, &["monitor"]);
    let next = |want: &str| -> serde_json::Value {
        loop {
            let line = lines
                .recv_timeout(std::time::Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("no {want} event"));
            let v: serde_json::Value =
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert!(v["time"].as_i64().is_some_and(|t| t > 1_700_000_000), "{v}");
            assert_ne!(
                v["server_id"], "spoofed",
                "a signal from another peer shown"
            );
            if v["event"] == want {
                return v;
            }
        }
    };
    next("daemon-running");

    let (code, _, err) = omadmctl(
        &bus.address,
        &[
            "alert",
            "send",
            "--server",
            "demo-server",
            "--type",
            "urn:x:at:mon",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let queued = next("alert-queued");
    assert_eq!(
        (&queued["server_id"], &queued["alert_type"]),
        (&json!("demo-server"), &json!("urn:x:at:mon"))
    );
    assert_eq!(next("session-started")["trigger"], "client");
    assert_eq!(next("alerts-delivered")["count"], 1);
    let finished = next("session-finished");
    assert_eq!(
        (&finished["server_id"], &finished["outcome"]),
        (&json!("demo-server"), &json!("ended"))
    );

    // Over D-Bus and over UDP.
    let secret = root.write("secret.b64", "ZGVtby1ub3RpZmljYXRpb24tc2VjcmV0\n");
    let secret = secret.to_str().unwrap();
    let notify = |id: &str, out: Option<&str>| {
        let mut args = vec![
            "notify",
            "--server",
            "demo-server",
            "--notification-id",
            id,
            "--secret-file",
            secret,
            "--auth-data",
            "ZGVtby1hdXRoLWRhdGE=",
        ];
        if let Some(o) = out {
            args.extend(["--out", o]);
        }
        let (code, _, err) = omadmctl(&bus.address, &args);
        assert_eq!(code, 0, "{err}");
    };
    notify("41", None);
    let by_bus = next("notification-accepted");
    assert_eq!(
        (&by_bus["trigger"], &by_bus["via"]),
        (&json!("notification:41"), &json!("dbus"))
    );
    let file = root.path("n42.bin");
    notify("42", Some(file.to_str().unwrap()));
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.send_to(&std::fs::read(&file).unwrap(), &udp_at)
        .unwrap();
    let by_udp = next("notification-accepted");
    assert_eq!(
        (&by_udp["trigger"], &by_udp["via"]),
        (&json!("notification:42"), &json!("udp"))
    );

    // Anyone on the bus may send a signal with the daemon's path: not shown.
    let spoof = Command::new("dbus-send")
        .args([
            &format!("--bus={}", bus.address),
            "--type=signal",
            "/org/omadm/Client1",
            "org.omadm.Client1.Manager.SessionStarted",
            "string:spoofed",
            "string:client",
        ])
        .status()
        .unwrap();
    assert!(spoof.success());

    // A SHOW agent comes and goes.
    let agent = ctl_agent(&bus.address, None, &[]);
    assert_eq!(next("agents")["count"], 1);
    drop(agent);
    assert_eq!(next("agents")["count"], 0);

    d.terminate();
    next("daemon-absent");
    // The same for people: a clock and a sentence per line.
    let mut said = Vec::new();
    while let Ok(line) = human.recv_timeout(std::time::Duration::from_secs(5)) {
        let done = line.ends_with("omadmd stopped; waiting for it");
        said.push(line);
        if done {
            break;
        }
    }
    for want in [
        "omadmd is running; monitoring",
        "alert urn:x:at:mon queued for demo-server",
        "1 queued alert(s) delivered to demo-server",
        "with demo-server ended",
        "notification from demo-server accepted over udp (notification:42)",
        "1 SHOW agent(s) registered",
        "omadmd stopped; waiting for it",
    ] {
        assert!(
            said.iter()
                .any(|l| l.ends_with(want) && l.as_bytes()[8] == b'Z'),
            "{want:?} not in {said:#?}"
        );
    }
}

/// Accounts come and go without a restart: `omadmctl account add` checks a bootstrap file
/// (`--dry-run` changes nothing), applies it and the new server gets its BootstrapComplete
/// session at once; a file that names a server provisioned elsewhere is refused, saying by
/// what; `account remove` deletes the account; unknown IDs are listed, exit 2.
#[test]
fn accounts_are_added_and_removed_without_a_restart() {
    let (server, bus, root, mut d) = demo_up(3);
    let account = |id: &str| dmacc(id, &server.base).to_string();
    let second = root.write("second.json", &account("second-server"));
    let second = second.to_str().unwrap();
    let ids = || -> Vec<String> {
        let (code, out, err) = omadmctl(&bus.address, &["--json", "account", "list"]);
        assert_eq!(code, 0, "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|a| a["server_id"].as_str().unwrap().to_owned())
            .collect()
    };

    let (code, out, err) = omadmctl(
        &bus.address,
        &["--json", "account", "add", "--dry-run", second],
    );
    assert_eq!(code, 0, "{err}");
    let said: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        said,
        json!({"outcome": "would-apply", "servers": ["second-server"], "replaced": [],
            "instances": ["urn:oma:mo:oma-dm-dmacc:1.2/second-server"]})
    );
    assert_eq!(ids(), ["demo-server"], "a dry run changes nothing");

    let (code, out, err) = omadmctl(&bus.address, &["account", "add", second]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("second.json provisioned account(s) for: second-server"),
        "{out}"
    );
    d.wait_for("session ended", 30);
    let (code, out, err) = omadmctl(
        &bus.address,
        &["--json", "account", "show", "second-server"],
    );
    assert_eq!(code, 0, "{err}");
    let shown: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (&shown["name"], &shown["owed"], &shown["last_trigger"]),
        (
            &json!("The second-server"),
            &json!(null),
            &json!("bootstrap")
        ),
        "the BootstrapComplete session ran: {shown}"
    );
    let bootstrap_complete = server
        .of_kind("package1")
        .iter()
        .filter(|p| p.to_string().contains("BootstrapComplete"))
        .count();
    assert_eq!(bootstrap_complete, 2, "one for each server");
    // The same file again: nothing to do.
    let (code, out, _) = omadmctl(&bus.address, &["account", "add", second]);
    assert_eq!(code, 0);
    assert!(out.contains("nothing to do"), "{out}");

    // Another file may not take demo-server's account.
    let evil = root.write("evil.json", &account("demo-server"));
    let (code, _, err) = omadmctl(&bus.address, &["account", "add", evil.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains(
            "server \"demo-server\" already has a DM account (provisioned by 10-demo-server.json)"
        ) && err.contains("--replace"),
        "{err}"
    );

    let (code, out, err) = omadmctl(&bus.address, &["account", "remove", "second-server"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("removed the account of second-server and 1 instance(s)"),
        "{out}"
    );
    assert_eq!(ids(), ["demo-server"]);
    for args in [
        ["account", "remove", "second-server"],
        ["account", "show", "nope"],
    ] {
        let (code, _, err) = omadmctl(&bus.address, &args);
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains("demo-server"),
            "the known IDs are listed: {err}"
        );
    }
    d.terminate();
}

/// `omadmctl reload` (and SIGHUP) re-read the configuration and `bootstrap.d` without a
/// restart: a new bootstrap file is applied and its server gets its session, a refused one
/// is named (and shown by `omadmctl status` until fixed), changed settings are named as
/// needing a restart, and a configuration that does not parse is refused with its file
/// while the daemon serves on.
#[test]
fn reload_applies_new_bootstrap_files_and_says_what_needs_a_restart() {
    let (server, bus, root, mut d) = demo_up(3);
    let (_, out, _) = omadmctl(&bus.address, &["--json", "status"]);
    let status: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status["bootstrap_refused"], json!([]), "{status}");

    let second = dmacc("second-server", &server.base);
    root.write("etc/omadmd/bootstrap.d/20-second.json", &second.to_string());
    root.write("etc/omadmd/bootstrap.d/30-bad.json", "[{\"ClientURI\": ");
    root.write(
        "etc/omadmd/config.d/60-poll.toml",
        "[sessions]\npoll-interval-secs = 7200\n",
    );
    let (code, out, err) = omadmctl(&bus.address, &["--json", "reload"]);
    assert_eq!(code, 0, "{err}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["applied"], json!(["20-second.json"]), "{r}");
    assert_eq!(r["servers"], json!(["second-server"]), "{r}");
    assert_eq!(r["refused"][0]["file"], "30-bad.json", "{r}");
    assert!(
        r["refused"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("not valid application/dmmo+json")),
        "{r}"
    );
    assert_eq!(
        r["restart_needed"],
        json!(["sessions.poll-interval-secs"]),
        "{r}"
    );
    assert!(
        r["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f.as_str().unwrap().ends_with("60-poll.toml")),
        "{r}"
    );
    d.wait_for("session ended", 30);
    let (_, out, _) = omadmctl(&bus.address, &["account", "show", "second-server"]);
    assert!(
        out.contains("ended"),
        "the BootstrapComplete session ran: {out}"
    );
    let (_, out, _) = omadmctl(&bus.address, &["status"]);
    assert!(
        out.contains("bootstrap file 30-bad.json refused (nothing of it applied): not valid"),
        "{out}"
    );

    // A configuration that does not parse: refused, naming the file; nothing changes.
    let broken = root.write("etc/omadmd/config.d/70-broken.toml", "[sessions\n");
    let (code, _, err) = omadmctl(&bus.address, &["reload"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("70-broken.toml"), "{err}");
    let (code, _, _) = omadmctl(&bus.address, &["status"]);
    assert_eq!(code, 0, "the daemon serves on");

    // SIGHUP does the same; once the bad files are gone, status is clean again.
    std::fs::remove_file(broken).unwrap();
    std::fs::remove_file(root.path("etc/omadmd/bootstrap.d/30-bad.json")).unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(d.pid() as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    d.wait_for("configuration reloaded", 30);
    let (_, out, _) = omadmctl(&bus.address, &["--json", "status"]);
    let status: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status["bootstrap_refused"], json!([]), "{status}");
    d.terminate();
}

/// `account show` says when the next attempt is due and why; an administrator's
/// `session start` does not wait out the backoff (it runs at once, and fails again here:
/// nobody runs this server), after which the backoff has grown.
#[test]
fn the_next_attempt_is_shown_and_an_administrator_skips_the_backoff() {
    let bus = PrivateBus::start();
    let root = Root::new().with_demo_bootstrap();
    root.write(
        "etc/omadmd/config.d/50-retry.toml",
        "[sessions]\nretry-base-secs = 1200\nretry-max-secs = 7200\n",
    );
    let mut d = root.start_on_bus(&bus.address);
    d.wait_for("session aborted", 30);
    d.wait_for("will retry", 10);
    let show = || -> serde_json::Value {
        let (code, out, err) =
            omadmctl(&bus.address, &["--json", "account", "show", "demo-server"]);
        assert_eq!(code, 0, "{err}");
        serde_json::from_str(&out).unwrap()
    };
    let a = show();
    let now = omadmd::cli::now_secs();
    assert_eq!(
        a["next_reason"], "retry 1 after failed attempts (backoff)",
        "{a}"
    );
    // The backoff is the base shortened by up to a quarter (jitter).
    let wait = a["next_attempt"].as_i64().unwrap() - now;
    assert!((800..=1201).contains(&wait), "{a}");
    let (_, out, _) = omadmctl(&bus.address, &["account", "show", "demo-server"]);
    assert!(
        out.contains("next in 1") && out.contains("m: retry 1 after failed attempts (backoff)"),
        "{out}"
    );

    let started = std::time::Instant::now();
    let (code, _, err) = omadmctl(
        &bus.address,
        &["session", "start", "--server", "demo-server", "--wait"],
    );
    assert_eq!(code, 1, "the session ran and failed: {err}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "it did not wait out the backoff"
    );
    d.wait_for("will retry", 10);
    let a = show();
    assert_eq!(
        a["next_reason"], "retry 2 after failed attempts (backoff)",
        "{a}"
    );
    d.terminate();
}

/// An administrator follows a session as it goes (`session start --wait` shows each
/// package), bounds the wait (`--timeout`: the session goes on), and cancels a session
/// that hangs (`session cancel`: the history says so, the daemon serves on).
#[test]
fn an_administrator_follows_and_cancels_sessions() {
    let devid = "urn:oma:mo:oma-dm-devinfo:1.2//DevID";
    let end = json!({"packages": [{"CMD": [["END"]]}]});
    let gets = json!({"packages": [{"CMD": [["GET", devid], ["GET", devid]]}, {"CMD": [["END"]]}]});
    let hangs = json!({"packages": [{"delay_ms": 120_000, "CMD": [["END"]]}]});
    let server = TestServer::start(&json!({"sessions": [end, gets, hangs]}), false);
    let bus = PrivateBus::start();
    let root = Root::new().with_bootstrap_for(&server.base);
    let mut d = root.start_on_bus(&bus.address);
    d.wait_for("session ended", 30);

    let (code, out, err) = omadmctl(
        &bus.address,
        &["session", "start", "--server", "demo-server", "--wait"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("session with demo-server started (client)")
            && err.contains("package 1 from demo-server: 2 GET (2 command(s) so far)")
            && err.contains("package 2 from demo-server: 1 END (3 command(s) so far)"),
        "{err}"
    );
    assert!(out.contains("with demo-server ended"), "{out}");

    let (code, _, err) = omadmctl(
        &bus.address,
        &[
            "session",
            "start",
            "--server",
            "demo-server",
            "--timeout",
            "2",
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("no session finished within 2 s; it goes on in the daemon"),
        "{err}"
    );
    let (code, out, err) = omadmctl(&bus.address, &["--json", "session", "cancel"]);
    assert_eq!(code, 0, "{err}");
    let said: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        said,
        json!({"cancelling": true, "server_id": "demo-server"})
    );
    assert_eq!(
        documented_keys()["omadmctl session cancel"],
        ["cancelling", "server_id"]
    );
    d.wait_for("session cancelled by an administrator", 30);
    let (_, out, _) = omadmctl(&bus.address, &["--json", "history", "--limit", "1"]);
    let h: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (&h[0]["outcome"], &h[0]["detail"]),
        (&json!("cancelled"), &json!("cancelled by an administrator")),
        "{h}"
    );
    let (code, _, err) = omadmctl(&bus.address, &["session", "cancel"]);
    assert_eq!(code, 1);
    assert!(err.contains("no session is running"), "{err}");
    let (code, _, err) = omadmctl(
        &bus.address,
        &["session", "cancel", "--server", "demo-server"],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("no session runs with server \"demo-server\""),
        "{err}"
    );
    let (code, _, _) = omadmctl(&bus.address, &["status"]);
    assert_eq!(code, 0, "the daemon serves on");
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

/// The keys each command prints with `--json`, as docs/cli-json.md lists them under the
/// command's heading (`Keys:` lines).
fn documented_keys() -> std::collections::BTreeMap<String, Vec<String>> {
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/cli-json.md"),
    )
    .unwrap();
    let mut out = std::collections::BTreeMap::new();
    let mut heading = None;
    for line in doc.lines() {
        if let Some(h) = line.strip_prefix("## `") {
            heading = h.strip_suffix('`').map(str::to_owned);
        } else if let (Some(h), Some(keys)) = (&heading, line.strip_prefix("Keys: ")) {
            let keys = keys
                .trim_end_matches('.')
                .split(", ")
                .map(|k| k.trim_matches('`').to_owned())
                .collect();
            out.insert(h.clone(), keys);
        }
    }
    out
}

/// Every `--json` output has exactly the keys docs/cli-json.md lists for it, and says
/// "none" with `null`, never `""`.
#[test]
fn every_json_output_has_the_documented_keys() {
    let doc = documented_keys();
    let (server, bus, root, mut d) = demo_up(4);
    let check = |heading: &str, out: &str| {
        let v: serde_json::Value =
            serde_json::from_str(out).unwrap_or_else(|e| panic!("{heading}: {out}: {e}"));
        let object = match &v {
            serde_json::Value::Array(items) => items
                .first()
                .cloned()
                .unwrap_or_else(|| panic!("{heading}: empty: {out}")),
            other => other.clone(),
        };
        let mut keys: Vec<String> = object.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        let mut want = doc
            .get(heading)
            .unwrap_or_else(|| panic!("{heading} is not in docs/cli-json.md"))
            .clone();
        want.sort();
        assert_eq!(keys, want, "{heading}: {out}");
        assert!(
            !out.contains("\"\""),
            "{heading}: \"\" where null is meant: {out}"
        );
    };
    let json = |args: &[&str]| -> String {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let (code, out, err) = omadmctl(&bus.address, &all);
        assert_eq!(code, 0, "{args:?}: {err}");
        out
    };
    let second = root.write("second.json", &dmacc("second", &server.base).to_string());
    let second = second.to_str().unwrap();
    let notification = root.path("n.bin");
    let secret = root.write("secret.b64", "ZGVtby1ub3RpZmljYXRpb24tc2VjcmV0\n");
    let notify = [
        "notify",
        "--server",
        "demo-server",
        "--notification-id",
        "7",
        "--secret-file",
        secret.to_str().unwrap(),
        "--auth-data",
        "ZGVtby1hdXRoLWRhdGE=",
    ];
    let mut to_file = notify.to_vec();
    to_file.extend(["--out", notification.to_str().unwrap()]);
    for (heading, args) in [
        ("omadmctl status", vec!["status"]),
        (
            "omadmctl account show ID",
            vec!["account", "show", "demo-server"],
        ),
        ("omadmctl account list", vec!["account", "list"]),
        (
            "omadmctl account add FILE",
            vec!["account", "add", "--dry-run", second],
        ),
        ("omadmctl reload", vec!["reload"]),
        ("omadmctl history", vec!["history"]),
        ("omadmctl tree list", vec!["tree", "list"]),
        (
            "omadmctl tree configure MOID",
            vec!["tree", "configure", "urn:oma:mo:oma-dm-devinfo:1.2"],
        ),
        (
            "omadmctl alert send",
            vec![
                "alert",
                "send",
                "--server",
                "demo-server",
                "--type",
                "urn:x:at",
            ],
        ),
        ("omadmctl session start", vec!["session", "start"]),
        (
            "omadmctl session start --wait",
            vec!["session", "start", "--server", "demo-server", "--wait"],
        ),
        ("omadmctl notify --out FILE", to_file.clone()),
        ("omadmctl notify", notify.to_vec()),
    ] {
        check(heading, &json(&args));
    }
    json(&["account", "add", second]);
    d.wait_for("session ended", 30);
    check(
        "omadmctl account remove ID",
        &json(&["account", "remove", "second"]),
    );
    d.terminate();
    let (status, out, err) = root.run(&["history", "--json"]);
    assert!(status.success(), "{err}");
    check("omadmd history", &out);
    let (status, out, err) = root.run(&["check-config", "--json"]);
    assert!(status.success(), "{err}");
    check("omadmd check-config", &out);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["bootstrap"][0]["outcome"], "unchanged", "{v}");
    assert!(
        v["settings"]["sessions"]["poll-interval-secs"].is_u64(),
        "{v}"
    );
}

/// Shell completion asks the running daemon (the shipped scripts run `omadmctl` with
/// `COMPLETE` set): server IDs where a server is named, ClientURIs for `tree get`, and
/// subcommands as before; without a daemon it offers no IDs and fails nothing.
#[test]
fn completion_offers_what_the_daemon_has() {
    let (_server, bus, _root, d) = demo_up(1);
    let complete = |bus: &str, words: &[&str]| -> Vec<String> {
        let out = Command::new(OMADMCTL)
            .env("COMPLETE", "bash")
            .env("_CLAP_COMPLETE_INDEX", (words.len() - 1).to_string())
            .env("_CLAP_COMPLETE_COMP_TYPE", "9")
            .env("_CLAP_IFS", "\n")
            .env("DBUS_SYSTEM_BUS_ADDRESS", bus)
            .arg("--")
            .args(words)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    };
    let has = |got: &[String], want: &str| got.iter().any(|g| g == want);
    for words in [
        &["omadmctl", "account", "show", ""][..],
        &["omadmctl", "session", "start", "--server", ""],
        &["omadmctl", "alert", "send", "--server", "demo"],
    ] {
        let got = complete(&bus.address, words);
        assert!(has(&got, "demo-server"), "{words:?}: {got:?}");
    }
    let got = complete(
        &bus.address,
        &["omadmctl", "tree", "get", "urn:oma:mo:oma-dm-devi"],
    );
    assert!(has(&got, "urn:oma:mo:oma-dm-devinfo:1.2//"), "{got:?}");
    assert!(has(
        &complete(&bus.address, &["omadmctl", "ses"]),
        "session"
    ));
    d.terminate();
    // No daemon: no IDs, and no error for the shell to print.
    let got = complete(&bus.address, &["omadmctl", "account", "show", ""]);
    assert!(!has(&got, "demo-server"), "{got:?}");
}
