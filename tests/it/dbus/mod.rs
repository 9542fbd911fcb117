//! The D-Bus API end to end: the real omadmd on a private dbus-daemon, driven by the real
//! omadmctl; the live introspection against the checked-in contract; errors and refusals.

use std::os::unix::process::CommandExt as _;
use std::process::Command;

use serde_json::json;

use crate::common::{
    Daemon, PrivateBus, Root, TestServer, ctl_agent, ctl_lines, dmacc, omadmctl, tool,
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
        let out = Command::new(tool("omadmctl"))
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
        let out = Command::new(tool("omadmctl"))
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

mod accounts;
mod contract;
mod output;
mod sessions;
mod show;
