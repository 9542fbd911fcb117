//! DM Notifications end to end: omadm-testserver sends Package#0 over UDP, omadmd checks it
//! and opens a ServerInitiatedMgmt session; bad, replayed and flooding notifications are
//! dropped while the daemon keeps serving.

use std::process::Command;

use serde_json::json;

use crate::common::{Root, TestServer, testserver};

/// The demo account's notification credentials (examples/demo/bootstrap.d).
const SECRET: &str = "ZGVtby1ub3RpZmljYXRpb24tc2VjcmV0";
const DATA: &str = "ZGVtby1hdXRoLWRhdGE=";

fn send(to: &str, id: u16, secret: &str, extra: &[&str]) {
    let out = Command::new(testserver())
        .args([
            "--notify",
            to,
            "--server-id",
            "demo-server",
            "--notification-id",
            &id.to_string(),
            "--secret",
            secret,
            "--auth-data",
            DATA,
        ])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_notification_starts_its_session_even_in_a_flood() {
    let end = json!({"packages": [{"CMD": [["END"]]}]});
    let server = TestServer::start(&json!({"sessions": [end, end, end, end]}), false);
    let root = Root::new().with_bootstrap_for(&server.base);
    let mut d = root.start(&[]);
    let addr = d.notification_address();
    d.wait_for("session ended", 30); // the owed BootstrapComplete session

    // A flood of garbage and wrongly signed notifications from another loopback address.
    let flood = std::net::UdpSocket::bind("127.0.0.2:0").unwrap();
    for i in 0..300u32 {
        let junk: Vec<u8> = if i % 2 == 0 {
            vec![0x20, 0x80, 0x10, 0x01, b'x']
        } else {
            i.to_be_bytes().to_vec()
        };
        flood.send_to(&junk, &addr).unwrap();
    }
    // Drop logging is rate-limited per second: let the flood's second pass.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    send(&addr, 7, "d3Jvbmc=", &[]); // a wrong secret
    send(&addr, 42, SECRET, &["--req-mos", "--wap"]);
    d.wait_for("notification accepted", 30);
    d.wait_for("session ended", 30);
    // A replay of the same notification: dropped, no session.
    send(&addr, 42, SECRET, &["--req-mos"]);
    d.wait_for("duplicate NOTIFICATION-ID 42", 30);
    let (status, log) = d.terminate();
    assert!(status.success());
    assert!(
        log.iter().any(|l| l.contains("digest check failed")),
        "{log:#?}"
    );

    let p1s = server.of_kind("package1");
    assert_eq!(
        p1s.len(),
        2,
        "bootstrap session, then one for the notification: {p1s:#?}"
    );
    let alert = &p1s[1]["body"]["Alert"][0];
    assert_eq!(alert["AlertType"], "urn:oma:at:dm:2.0:ServerInitiatedMgmt");
    assert_eq!(alert["Data"]["NOTIFICATION-ID"], 42);
    assert!(p1s[1]["body"]["MOS"].is_array(), "REQ-MOS asked for MOS");
    let (_, history, _) = root.run(&["history", "--json"]);
    let h: serde_json::Value = serde_json::from_str(&history).unwrap();
    assert_eq!(h[0]["trigger"], "notification:42");
}

#[test]
fn a_port_already_taken_leaves_the_daemon_running_without_notifications() {
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let root = Root::new();
    root.write(
        "etc/omadmd/config.d/50-port.toml",
        &format!(
            "[notifications]\nlisten = \"{}\"\n",
            taken.local_addr().unwrap()
        ),
    );
    let mut d = root.start(&[]);
    let line = d.wait_for("cannot listen for notifications", 30);
    assert!(line.contains("running without them"), "{line}");
    d.wait_for("ready", 10);
    assert!(d.terminate().0.success());
}

/// A campaign's spread: with `notifications.start-within-secs` the session of a
/// notification waits for a random moment within the bound; a notification carrying the
/// server's own START-WITHIN (option 15) sets the bound, and can bring the moment forward.
#[test]
fn a_notification_session_starts_within_the_bound_the_server_sets() {
    let end = json!({"packages": [{"CMD": [["END"]]}]});
    let server = TestServer::start(&json!({"sessions": [end, end, end]}), false);
    let root = Root::new().with_bootstrap_for(&server.base);
    root.write(
        "etc/omadmd/config.d/50-spread.toml",
        "[notifications]\nstart-within-secs = 3600\nmin-interval-secs = 0\n",
    );
    let mut d = root.start(&[]);
    let addr = d.notification_address();
    d.wait_for("session ended", 30); // the owed BootstrapComplete session

    send(&addr, 1, SECRET, &[]);
    let line = d.wait_for("put off to spread the campaign", 30);
    assert!(line.contains("within_secs=3600"), "{line}");
    let delay_ms: u64 = line
        .split("delay_ms=")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no delay in {line}"));
    assert!(delay_ms <= 3_600_000, "{line}");

    // The server wants it sooner: within 1 s.
    send(&addr, 2, SECRET, &["--start-within", "1"]);
    let line = d.wait_for("within_secs=1", 30);
    assert!(line.contains("put off"), "{line}");
    d.wait_for("session ended", 30);
    let (status, _) = d.terminate();
    assert!(status.success());
    let p1s = server.of_kind("package1");
    let last = &p1s.last().unwrap()["body"]["Alert"][0];
    assert_eq!(last["AlertType"], "urn:oma:at:dm:2.0:ServerInitiatedMgmt");
    assert_eq!(last["Data"]["NOTIFICATION-ID"], 2, "{p1s:#?}");
}
