//! Sessions as an administrator sees them: the monitor, the next attempt and skipping the backoff, following and cancelling.

use super::*;

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
    let now = omadm_console::now_secs();
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
