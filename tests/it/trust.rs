//! The trust model end to end (docs/security.md, "Threat model"): the real daemon against
//! provisioned servers that try to take the device over. Each attack fails with its status
//! or log line, changes nothing, and the daemon keeps serving.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;

use crate::common::{Daemon, Root, TestServer};

const DMACC: &str = "urn:oma:mo:oma-dm-dmacc:1.2";

/// A bootstrap file for one account at `base`.
pub(crate) fn account(
    root: &Root,
    file: &str,
    miid: &str,
    srv_id: &str,
    base: &str,
    moids: &[&str],
) {
    let perm: serde_json::Map<String, serde_json::Value> = moids
        .iter()
        .enumerate()
        .map(|(i, m)| (format!("p{i}"), json!({"MOID": m})))
        .collect();
    let doc = json!([{"ClientURI": format!("{DMACC}//"), "MOData": {miid: {
        "SrvID": srv_id, "SrvURI": format!("{base}/dm"), "Name": srv_id, "Perm": perm,
        "Auth": {"Noti": {"Type": 0, "Data": "ZGF0YQ==", "Secret": "c2VjcmV0LW9mLQ=="}},
        "Ext": {"HttpAuth": {"UserName": format!("{srv_id}-user"), "Secret": format!("{srv_id}-password")}}}}}]);
    root.write(&format!("etc/omadmd/bootstrap.d/{file}"), &doc.to_string());
}

fn expectations_met(server: &TestServer) {
    let expects = server.of_kind("expect");
    assert!(!expects.is_empty(), "the script ran to its checks");
    assert!(
        expects.iter().all(|e| e["ok"] == true),
        "{:#?}",
        server.events()
    );
}

fn run_until(root: &Root, sessions: usize) -> Vec<String> {
    let mut d: Daemon = root.start(&[]);
    d.wait_for("ready", 30);
    for _ in 0..sessions {
        d.wait_for("session ended", 30);
    }
    let (status, log) = d.terminate();
    assert!(status.success(), "{}", log.join("\n"));
    log
}

fn dmacc_instances(root: &Root) -> Vec<String> {
    let (_, tree, _) = root.run(&["dump-tree", "--json"]);
    let items: serde_json::Value = serde_json::from_str(&tree).unwrap();
    items
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["ClientURI"].as_str())
        .filter(|u| u.starts_with(DMACC))
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_provisioned_server_cannot_create_hijack_or_read_accounts() {
    // B: an honest server. A: provisioned for DMAcc only, and hostile.
    let b = TestServer::start(
        &json!({"sessions": [{"packages": [{"CMD": [["END"]]}]}]}),
        false,
    );
    let evil = |miid: &str, srv_id: &str| {
        json!({"content_type": "application/dmmo+json", "body": [{"ClientURI": format!("{DMACC}//"),
            "MOData": {miid: {"SrvID": srv_id, "SrvURI": "http://127.0.0.1:9/dm", "Name": "evil",
                "Perm": {"all": {"MOID": "*"}}}}}]})
    };
    let a = TestServer::start(
        &json!({
            "sessions": [{"packages": [
                {"CMD": [
                    // A second account for itself with every MOID, under a MIID that sorts
                    // before its own; then one carrying B's SrvID.
                    ["HGET", "{base}/repo/escalate"],
                    ["HGET", "{base}/repo/hijack"],
                    // Rewrite its own SrvID to B's, or its Perm.
                    ["HGET", "{base}/repo/id", format!("{DMACC}/zz-a/SrvID")],
                    ["HGET", "{base}/repo/moid", format!("{DMACC}/zz-a/Perm/p0/MOID")],
                    // Read B's account, its password, its own secrets.
                    ["GET", format!("{DMACC}/b/SrvURI")],
                    ["GET", format!("{DMACC}/b/Ext/HttpAuth/Secret")],
                    ["GET", format!("{DMACC}/zz-a/Auth/Noti/Secret")],
                    ["HPUT", "{base}/repo/leak", format!("{DMACC}/zz-a/Ext/HttpAuth/Secret")]
                ]},
                {"expect": [403, 403, 403, 403, 403, 403, 403, 403], "CMD": [
                    ["GET", format!("{DMACC}/zz-a/")]
                ]},
                {"expect": [200], "CMD": [["END"]]}
            ]}],
            "repository": {
                "/repo/escalate": evil("aaa", "server-a"),
                "/repo/hijack": evil("aab", "server-b"),
                "/repo/id": {"content_type": "text/plain", "body": "server-b"},
                "/repo/moid": {"content_type": "text/plain", "body": "*"}
            }
        }),
        false,
    );
    let root = Root::new();
    account(&root, "10-a.json", "zz-a", "server-a", &a.base, &[DMACC]);
    account(&root, "20-b.json", "b", "server-b", &b.base, &["*"]);
    let log = run_until(&root, 2).join("\n");
    expectations_met(&a);
    assert!(a.of_kind("repo-put").is_empty(), "nothing was sent out");
    // Its own account reads back without any secret.
    let own = a.of_kind("package3")[1]["parts"][0]["body"].to_string();
    assert!(
        own.contains("server-a") && !own.contains("c2VjcmV0") && !own.contains("password"),
        "{own}"
    );
    assert!(
        log.contains("a server asked to read a secret; refused"),
        "{log}"
    );
    // Nothing changed: two accounts, each its server's.
    assert_eq!(
        dmacc_instances(&root),
        [format!("{DMACC}/b/"), format!("{DMACC}/zz-a/")]
    );
    assert_eq!(b.of_kind("package1").len(), 1, "B's session went to B");
    assert_eq!(a.of_kind("package1").len(), 1);
}

/// A plain HTTP service on a loopback address, holding something worth stealing; counts the
/// connections it gets.
fn secret_service(addr: &str) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind(addr).unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let seen = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            seen.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let body = br#"[{"ClientURI":"urn:x:stolen:1.0//","MOData":{"s":{"v":"TOPSECRET"}}}]"#;
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: application/dmmo+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(body);
        }
    });
    (format!("{}:{port}", addr.rsplit_once(':').unwrap().0), hits)
}

#[test]
fn server_urls_cannot_reach_the_device_network_unless_allowed() {
    // The DM server is 127.0.0.1 (its SrvURI host, always reachable); the service to
    // protect listens on 127.0.0.2, and on 127.0.0.1 behind the name "localhost".
    let (other, other_hits) = secret_service("127.0.0.2:0");
    let (local, local_hits) = secret_service("127.0.0.1:0");
    let local_port = local.rsplit_once(':').unwrap().1;
    let script = json!({
        "sessions": [{"packages": [
            {"CMD": [
                ["HGET", format!("http://{other}/secret")],
                ["HGET", "{base}/repo/redirect"],
                ["HGET", format!("http://localhost:{local_port}/secret")],
                ["SUB", format!("http://{other}/hook"), "urn:oma:mo:oma-dm-devinfo:1.2//"],
                ["HPUT", format!("http://{other}/leak"), "urn:oma:mo:oma-dm-devinfo:1.2//"]
            ]},
            {"expect": [419, 419, 419, 403, 419], "CMD": [["END"]]}
        ]}, {"packages": [
            {"CMD": [["HGET", format!("http://{other}/secret")]]},
            {"expect": [200], "CMD": [["END"]]}
        ]}],
        "repository": {"/repo/redirect": {"redirect": format!("http://{other}/secret")}}
    });
    let server = TestServer::start(&script, false);
    let root = Root::new().with_bootstrap_for(&server.base);
    let log = run_until(&root, 1).join("\n");
    assert_eq!(server.of_kind("expect").len(), 1);
    expectations_met(&server);
    assert_eq!(
        other_hits.load(Ordering::SeqCst),
        0,
        "127.0.0.2 was never reached"
    );
    assert_eq!(
        local_hits.load(Ordering::SeqCst),
        0,
        "localhost was never reached"
    );
    assert_eq!(
        server.of_kind("repo-get").len(),
        1,
        "the redirect itself came from the server"
    );
    assert!(log.contains("server URL refused"), "{log}");
    assert!(log.contains("redirect refused"), "{log}");
    let (_, tree, _) = root.run(&["dump-tree"]);
    assert!(!tree.contains("TOPSECRET"), "{tree}");

    // An integrator's repository elsewhere on the network: allowed by name of address.
    root.write(
        "etc/omadmd/config.d/60-allow.toml",
        "[sessions]\nat-start = true\n[http]\nallow-targets = [\"127.0.0.2\"]\n",
    );
    run_until(&root, 1);
    expectations_met(&server);
    assert_eq!(other_hits.load(Ordering::SeqCst), 1);
    let (_, tree, _) = root.run(&["dump-tree"]);
    assert!(tree.contains("TOPSECRET"), "{tree}");
}

#[test]
fn a_replayed_notification_without_id_forces_at_most_one_session_per_interval_a_fresh_id_does_not_wait()
 {
    let end = json!({"packages": [{"CMD": [["END"]]}]});
    let server = TestServer::start(&json!({"sessions": [end, end, end]}), false);
    let root = Root::new().with_bootstrap_for(&server.base);
    root.write(
        "etc/omadmd/config.d/60-spacing.toml",
        "[notifications]\nmin-interval-secs = 60\n",
    );
    let mut d = root.start(&[]);
    let addr = d.notification_address();
    d.wait_for("session ended", 30); // the owed BootstrapComplete session
    // Signed, but with neither TIMESTAMP nor NOTIFICATION-ID: whoever saw it can resend it.
    let packet = omadmd::protocol::package0::encode_signed(
        &omadmd::protocol::package0::Notification {
            server_id: Some("demo-server".into()),
            ..Default::default()
        },
        b"demo-notification-secret",
        b"demo-auth-data",
    )
    .unwrap();
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.send_to(&packet, &addr).unwrap();
    d.wait_for("notification accepted", 30);
    d.wait_for("session ended", 30);
    for _ in 0..5 {
        sock.send_to(&packet, &addr).unwrap();
    }
    let line = d.wait_for("notification dropped", 30);
    assert!(line.contains("too recently"), "{line}");
    std::thread::sleep(std::time::Duration::from_millis(500));
    // The server needs the device again within the minute: a fresh, signed notification
    // with a new NOTIFICATION-ID is no replay, and starts a session at once.
    let fresh = omadmd::protocol::package0::encode_signed(
        &omadmd::protocol::package0::Notification {
            server_id: Some("demo-server".into()),
            notification_id: Some(4711),
            timestamp: Some(omadm_console::now_secs().unsigned_abs()),
            ..Default::default()
        },
        b"demo-notification-secret",
        b"demo-auth-data",
    )
    .unwrap();
    sock.send_to(&fresh, &addr).unwrap();
    d.wait_for("notification accepted", 30);
    d.wait_for("session ended", 30);
    sock.send_to(&fresh, &addr).unwrap();
    let line = d.wait_for("notification dropped", 30);
    assert!(line.contains("4711"), "its replay is a duplicate: {line}");
    let (status, log) = d.terminate();
    assert!(status.success());
    assert_eq!(
        log.iter()
            .filter(|l| l.contains("notification accepted"))
            .count(),
        2,
        "{log:#?}"
    );
    assert_eq!(
        server.of_kind("package1").len(),
        3,
        "bootstrap, then one session for the replayed packet, not six, and one for the fresh one"
    );
}

#[test]
fn a_server_over_its_quota_gets_506_and_the_daemon_keeps_serving() {
    let mo = |miid: &str| {
        json!({"content_type": "application/dmmo+json", "body": [{"ClientURI": "urn:x:filler:1.0//",
            "MOData": {miid: {"data": "x".repeat(600)}}}]})
    };
    let server = TestServer::start(
        &json!({
            "sessions": [{"packages": [
                {"CMD": [["HGET", "{base}/repo/one"], ["HGET", "{base}/repo/two"], ["HGET", "{base}/repo/three"]]},
                {"expect": [200, 200, 506], "CMD": [
                    ["DELETE", "urn:x:filler:1.0/one/"], ["HGET", "{base}/repo/three"]
                ]},
                {"expect": [200, 200], "CMD": [["END"]]}
            ]}],
            "repository": {"/repo/one": mo("one"), "/repo/two": mo("two"), "/repo/three": mo("three")}
        }),
        false,
    );
    let root = Root::new().with_bootstrap_for(&server.base);
    root.write(
        "etc/omadmd/config.d/60-quota.toml",
        "[limits]\nmax-server-instances = 5\nmax-server-bytes = 1500\n",
    );
    let log = run_until(&root, 1).join("\n");
    expectations_met(&server);
    assert!(
        log.contains("the server's quota would be exceeded"),
        "{log}"
    );
}

#[test]
fn url_tokens_and_credentials_never_leave_the_daemon() {
    // The server's SrvURI carries a token; it moves the session to a URL with another
    // token, where nothing answers.
    let script = json!({"sessions": [{"packages": [
        {"CMD": [["CONT", "http://user:CONTPASS@127.0.0.1:9/dm?token=CONTTOKEN"]]}
    ]}]});
    let server = TestServer::start(&script, false);
    let root = Root::new();
    let doc = json!([{"ClientURI": format!("{DMACC}//"), "MOData": {"acc": {
        "SrvID": "demo-server", "SrvURI": format!("{}/dm?token=SRVTOKEN", server.base),
        "Name": "demo", "Perm": {"p": {"MOID": "*"}},
        "Ext": {"HttpAuth": {"UserName": "LOCALUSER", "Secret": "PASSWORD"}}}}}]);
    root.write("etc/omadmd/bootstrap.d/10-acc.json", &doc.to_string());
    let bus = crate::common::PrivateBus::start();
    let monitor_out = root.path("monitor.txt");
    let monitor = crate::common::Reaped(
        std::process::Command::new("dbus-monitor")
            .args([
                "--address",
                &bus.address,
                "type='signal',interface='org.omadm.Client1.Manager'",
            ])
            .stdout(std::fs::File::create(&monitor_out).unwrap())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut d = root.start_on_bus(&bus.address);
    d.wait_for("session aborted", 30);
    let (_, history, _) = crate::common::omadmctl(&bus.address, &["--json", "history"]);
    let (_, accounts, _) = crate::common::omadmctl(&bus.address, &["--json", "accounts"]);
    let (_, tree, _) =
        crate::common::omadmctl(&bus.address, &["tree", "get", &format!("{DMACC}/acc/")]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    drop(monitor);
    let (status, log) = d.terminate();
    assert!(status.success());
    let signals = std::fs::read_to_string(&monitor_out).unwrap();
    assert!(signals.contains("SessionFinished"), "{signals}");
    assert!(
        history.contains("127.0.0.1:9/dm"),
        "the history still says where: {history}"
    );
    assert!(accounts.contains("/dm"), "{accounts}");
    let (_, offline_history, _) = root.run(&["history", "--json"]);
    for (what, text) in [
        ("log", log.join("\n")),
        ("history", history),
        ("offline history", offline_history),
        ("accounts", accounts),
        ("signals", signals),
        ("tree", tree.clone()),
    ] {
        for secret in ["SRVTOKEN", "CONTTOKEN", "CONTPASS", "PASSWORD"] {
            assert!(!text.contains(secret), "{secret} in the {what}: {text}");
        }
    }
    // A local user sees which server an account is for, not its credentials' neighbours.
    assert!(
        tree.contains("demo-server") && !tree.contains("LOCALUSER"),
        "{tree}"
    );
}

#[test]
fn another_users_agent_never_receives_a_show() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipped: running an agent as another user needs root");
        return;
    }
    let show = |uiid: u32| json!({"packages": [{"CMD": [["SHOW", format!("https://ui.example/consent?uiid={uiid}")]]}, {"CMD": [["END"]]}]});
    let end = json!({"packages": [{"CMD": [["END"]]}]});
    let server = TestServer::start(&json!({"sessions": [end, show(1), show(2)]}), false);
    let bus = crate::common::PrivateBus::start();
    let root = Root::new().with_bootstrap_for(&server.base);
    let mut d = root.start_on_bus(&bus.address);
    d.wait_for("session ended", 30);
    let last_status = || {
        server.of_kind("package3").last().unwrap()["body"]["Status"][0]["sc"]
            .as_u64()
            .unwrap()
    };
    // Without polkit any local user may register an agent, here `nobody`; but nobody
    // can say it sits in front of the device (no logind): it is not asked.
    let (_nobody, nobody_lines) = crate::common::ctl_agent(&bus.address, Some(65534), &[]);
    assert_eq!(
        crate::common::omadmctl(&bus.address, &["session", "start", "--wait"]).0,
        0
    );
    assert_eq!(last_status(), 501, "no agent of the person at the device");
    d.wait_for(
        "SHOW not offered to an agent that is not the person at the device",
        10,
    );
    // root's agent is.
    let (_root_agent, root_lines) = crate::common::ctl_agent(&bus.address, None, &[]);
    assert_eq!(
        crate::common::omadmctl(&bus.address, &["session", "start", "--wait"]).0,
        0
    );
    assert_eq!(last_status(), 200);
    let seen = root_lines
        .recv_timeout(std::time::Duration::from_secs(10))
        .unwrap();
    assert!(seen.contains("uiid=2"), "{seen}");
    assert!(
        nobody_lines
            .try_iter()
            .all(|l| !l.contains("asks you to open")),
        "the URL never reached nobody's agent"
    );
    d.terminate();
}

#[test]
fn user_information_in_a_url_never_becomes_credentials() {
    // A repository on another port of the server's host: the HGET and HPUT URLs the server
    // names carry user information, which must not reach it as Basic credentials.
    let repo = TestServer::start(
        &json!({"sessions": [], "repository": {"/repo/x": {"content_type": "application/dmmo+json",
            "body": "[{\"ClientURI\": \"urn:oma:mo:ext-test:1.0/x/\", \"MOData\": {\"x\": {}}}]"}}}),
        false,
    );
    let with_user = repo.base.replacen("http://", "http://alice:secret@", 1);
    let script = json!({"sessions": [
        {"packages": [
            {"CMD": [
                ["HGET", format!("{with_user}/repo/x")],
                ["HPUT", format!("{with_user}/repo/leak"), "urn:oma:mo:oma-dm-devinfo:1.2//"]
            ]},
            {"CMD": [["END"]]}
        ]}
    ]});
    let server = TestServer::start(&script, false);
    let root = Root::new().with_bootstrap_for(&server.base);
    let log = run_until(&root, 1).join("\n");
    let requests: Vec<serde_json::Value> = repo
        .events()
        .into_iter()
        .filter(|e| e["kind"].as_str().is_some_and(|k| k.starts_with("repo-")))
        .collect();
    assert!(
        requests.iter().any(|r| r["kind"] == "repo-put"),
        "{requests:#?}"
    );
    for r in &requests {
        let headers = r["headers"].as_object().unwrap();
        assert!(
            !headers
                .keys()
                .any(|k| k.eq_ignore_ascii_case("authorization")),
            "{r:#}"
        );
    }
    assert!(log.contains("user information removed from a URL"), "{log}");
    assert!(
        !log.contains("secret"),
        "the password is never logged: {log}"
    );

    // A bootstrap file whose SrvURI carries a password is refused, by check-config too.
    let doc = std::fs::read_to_string(root.path("etc/omadmd/bootstrap.d/10-demo-server.json"))
        .unwrap()
        .replace("demo-server", "other-server")
        .replace("\"demo\"", "\"other\"")
        .replace(
            &server.base,
            &server.base.replacen("http://", "http://device-0042:pw@", 1),
        );
    root.write("etc/omadmd/bootstrap.d/20-userinfo.json", &doc);
    let (code, out, err) = root.run(&["check-config"]);
    assert_eq!(code.code(), Some(78), "{out}{err}");
    assert!(
        err.contains("20-userinfo.json")
            && err.contains("user information")
            && err.contains("Ext/HttpAuth"),
        "{err}"
    );
    let (_, tree, _) = root.run(&["dump-tree"]);
    assert!(!tree.contains("other-server"), "{tree}");
}
