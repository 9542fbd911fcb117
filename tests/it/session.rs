//! DM sessions end to end: the real omadmd against the real omadm-testserver on loopback,
//! over HTTP and HTTPS, with the faults a real server can show.

use serde_json::json;

use crate::common::{Root, TestServer};

/// Starts omadmd with a bootstrap for `server` and extra config, waits for the session to
/// finish, stops the daemon; returns its log.
fn one_session(root: &Root, config: &str) -> Vec<String> {
    root.write("etc/omadmd/omadmd.toml", config);
    let mut d = root.start(&[]);
    d.wait_for("ready", 30);
    d.wait_for("session ended", 30);
    let (status, log) = d.terminate();
    assert!(status.success(), "{}", log.join("\n"));
    log
}

fn finished_with(root: &Root, config: &str, needle: &str) -> Vec<String> {
    root.write("etc/omadmd/omadmd.toml", config);
    let mut d = root.start(&[]);
    let line = d.wait_for("session aborted", 30);
    assert!(line.contains(needle), "{line}");
    let (status, log) = d.terminate();
    assert!(
        status.success(),
        "the daemon must keep serving after an aborted session"
    );
    log
}

#[test]
fn a_scripted_session_over_http_exercises_commands_and_cont() {
    let script = json!({
        "sessions": [{"packages": [
            {"CMD": [["GET", "urn:oma:mo:oma-dm-devinfo:1.2//DevID"], ["CONT", "{base}/dm/second"]]},
            {"expect": [200, 200], "CMD": [["HGET", "{base}/repo/thing", "urn:x:thing:1.0/t1/"], ["HPUT", "{base}/repo/put/[DevID]", "urn:x:thing:1.0/t1/"]]},
            {"expect": [200, 200], "CMD": [["DELETE", "urn:x:thing:1.0/t1/b"], ["EXEC", "urn:x:thing:1.0/t1/a"], ["SHOW", "https://ui.example/"], ["BOGUS"]]},
            {"expect": [200, 405, 501, 501], "CMD": [["DEFAULT", "{base}/repo/mms/[MCC]", "urn:oma:mo:oma-mms:1.3"], ["SUB", "{base}/repo/sub", "urn:x:thing:1.0/t1/"], ["UNSUB", "urn:x:thing:1.0/t1/"], ["UNSUB", "urn:x:thing:1.0/t1/"]]},
            {"expect": [200, 200, 200, 404], "CMD": [["GET", "urn:x:thing:1.0/t1/"], ["END"], ["GET", "urn:x:thing:1.0/t1/a"]]}
        ]}],
        "repository": {"/repo/thing": {"content_type": "application/dmmo+json", "body": [{"ClientURI": "urn:x:thing:1.0//", "MOData": {"t1": {"a": 1, "b": "two"}}}]}}
    });
    let server = TestServer::start(&script, false);
    let root = Root::new().with_bootstrap_for(&server.base);
    one_session(&root, "");

    let p1 = &server.of_kind("package1")[0];
    assert_eq!(
        p1["body"]["Alert"][0]["AlertType"],
        "urn:oma:at:dm:2.0:BootstrapComplete"
    );
    assert!(
        p1["headers"]["omadm-devid"]
            .as_str()
            .unwrap()
            .starts_with("UUID:"),
        "{p1}"
    );
    assert_eq!(
        p1["headers"]["content-type"],
        "application/vnd.oma.dm.initiation+json"
    );
    assert_eq!(
        p1["headers"]["accept"],
        "application/vnd.oma.dm.request+json"
    );
    let p3s = server.of_kind("package3");
    assert_eq!(p3s.len(), 4, "no Package#3 after END: {p3s:#?}");
    // CONT came in the first Package#2: every later Package#3 goes to its URL (TS §5.3.8).
    assert_eq!(server.of_kind("package1")[0]["path"], "/dm");
    assert!(
        p3s.iter().all(|p| p["path"] == "/dm/second"),
        "CONT moved the session: {p3s:#?}"
    );
    assert!(
        p3s[1]["headers"]["cookie"]
            .as_str()
            .unwrap_or_default()
            .contains("omadm-session=0"),
        "cookies kept within the session"
    );
    assert_eq!(p3s[0]["parts"][0]["name"], 0);
    assert!(
        p3s[0]["parts"][0]["body"]
            .as_str()
            .unwrap()
            .starts_with("UUID:")
    );
    assert!(
        server
            .events()
            .iter()
            .filter(|e| e["kind"] == "expect")
            .all(|e| e["ok"] == true),
        "{:#?}",
        server.of_kind("expect")
    );
    // The device's identity goes to the DM server's session URL only (reference §2.1).
    for r in server
        .of_kind("repo-get")
        .iter()
        .chain(&server.of_kind("repo-put"))
    {
        assert!(r["headers"]["omadm-devid"].is_null(), "{r}");
    }
    assert!(
        server.of_kind("package3")[0]["headers"]["omadm-devid"]
            .as_str()
            .is_some_and(|d| d.starts_with("UUID:"))
    );
    let put = &server.of_kind("repo-put")[0];
    assert!(
        put["path"]
            .as_str()
            .unwrap()
            .starts_with("/repo/put/UUID%3A"),
        "{put}"
    );
    assert_eq!(put["body"][0]["MOData"]["t1"], json!({"a": 1, "b": "two"}));

    let (_, history, _) = root.run(&["history", "--json"]);
    let h: serde_json::Value = serde_json::from_str(&history).unwrap();
    assert_eq!(
        (
            h[0]["outcome"].as_str(),
            h[0]["packages"].as_i64(),
            h[0]["commands"].as_i64()
        ),
        (Some("ended"), Some(5), Some(15))
    );
    let (_, tree, _) = root.run(&["dump-tree"]);
    assert!(
        tree.contains("urn:x:thing:1.0/t1/")
            && tree.contains("  a = 1")
            && !tree.contains("b = two"),
        "{tree}"
    );
}

#[test]
fn https_with_a_trusted_ca_works_and_an_untrusted_certificate_aborts() {
    let script = json!({"sessions": [{"packages": [{"CMD": [["END"]]}]}, {"packages": [{"CMD": [["END"]]}]}]});
    let server = TestServer::start(&script, true);
    assert!(server.base.starts_with("https://"));
    // Without the CA the certificate is refused: a clear abort, nothing received.
    let root = Root::new().with_bootstrap_for(&server.base);
    finished_with(&root, "", "sending Package#1");
    assert!(server.of_kind("package1").is_empty());
    let (_, history, _) = root.run(&["history"]);
    assert!(
        history.contains("aborted") && history.to_lowercase().contains("certificate"),
        "{history}"
    );
    // With it: the session runs (the owed BootstrapComplete is still owed, so it is sent).
    one_session(
        &root,
        &format!("[http]\nca-file = \"{}\"\n", server.ca.display()),
    );
    assert_eq!(server.of_kind("package1").len(), 1);
    assert_eq!(
        server.of_kind("package1")[0]["body"]["Alert"][0]["AlertType"],
        "urn:oma:at:dm:2.0:BootstrapComplete"
    );
}

#[test]
fn server_faults_abort_the_session_and_the_daemon_keeps_serving() {
    let cases = [
        (json!({"http_status": 500}), "HTTP 500"),
        (
            json!({"content_type": "text/html", "raw": "<html>oops</html>"}),
            "text/html instead of a Package#2",
        ),
        (json!({"raw": "{\"CMD\": "}), "bad Package#2"),
        (
            json!({"delay_ms": 4000, "CMD": [["END"]]}),
            "sending Package#1",
        ),
    ];
    for (fault, want) in cases {
        let server = TestServer::start(&json!({"sessions": [{"packages": [fault]}]}), false);
        let root = Root::new().with_bootstrap_for(&server.base);
        finished_with(&root, "[http]\nread-timeout-secs = 1\n", want);
        let (_, history, _) = root.run(&["history", "--json"]);
        let h: serde_json::Value = serde_json::from_str(&history).unwrap();
        assert_eq!(h[0]["outcome"], "aborted", "{want}");
        assert_eq!(
            server.of_kind("package1").len(),
            1,
            "{want}: no retry within the session"
        );
    }
}

#[test]
fn a_server_that_is_not_there_aborts_cleanly() {
    let root = Root::new().with_demo_bootstrap();
    let log = finished_with(&root, "", "sending Package#1");
    assert!(log.iter().any(|l| l.contains("stopping")));
}

#[test]
fn subscription_changes_are_delivered_once_after_the_session() {
    let script = json!({
        "sessions": [{"packages": [
            {"CMD": [["HGET", "{base}/repo/thing", "urn:x:thing:1.0/t1/"], ["SUB", "{base}/repo/changes/[DevID]", "urn:x:thing:1.0/t1/"]]},
            {"expect": [200, 200], "CMD": [["HGET", "{base}/repo/five", "urn:x:thing:1.0/t1/a"], ["HGET", "{base}/repo/six", "urn:x:thing:1.0/t1/b"]]},
            {"expect": [200, 200], "CMD": [["END"]]}
        ]}],
        "repository": {
            "/repo/thing": {"content_type": "application/dmmo+json", "body": [{"ClientURI": "urn:x:thing:1.0//", "MOData": {"t1": {"a": 1, "b": "two"}}}]},
            "/repo/five": {"content_type": "text/plain", "body": "5"},
            "/repo/six": {"content_type": "text/plain", "body": "six"}
        }
    });
    let server = TestServer::start(&script, false);
    let root = Root::new().with_bootstrap_for(&server.base);
    root.write("etc/omadmd/omadmd.toml", "");
    let mut d = root.start(&[]);
    d.wait_for("subscription delivery done", 30);
    d.terminate();
    let puts = server.of_kind("repo-put");
    assert_eq!(
        puts.len(),
        1,
        "two changes, one delivery of the latest state: {puts:#?}"
    );
    assert!(
        puts[0]["path"]
            .as_str()
            .unwrap()
            .starts_with("/repo/changes/UUID%3A")
    );
    assert_eq!(
        puts[0]["body"][0]["MOData"]["t1"],
        json!({"a": 5, "b": "six"})
    );
}

#[test]
fn a_failed_bootstrap_session_is_retried_with_backoff() {
    let script = json!({"sessions": [{"packages": [{"http_status": 503}]}, {"packages": [{"CMD": [["END"]]}]}]});
    let server = TestServer::start(&script, false);
    let root = Root::new().with_bootstrap_for(&server.base);
    root.write(
        "etc/omadmd/omadmd.toml",
        "[sessions]\nretry-base-secs = 1\n",
    );
    let mut d = root.start(&[]);
    d.wait_for("session aborted", 30);
    d.wait_for("will retry", 10);
    d.wait_for("session ended", 30);
    d.terminate();
    let p1s = server.of_kind("package1");
    assert_eq!(p1s.len(), 2);
    assert!(
        p1s.iter()
            .all(|p| p["body"]["Alert"][0]["AlertType"] == "urn:oma:at:dm:2.0:BootstrapComplete")
    );
    let (_, history, _) = root.run(&["history"]);
    assert!(
        history.contains("aborted") && history.contains("ended"),
        "{history}"
    );
    // A header, and when each session ran.
    let mut lines = history.lines();
    let header = lines.next().unwrap();
    assert!(
        header.contains("started") && header.contains("outcome"),
        "{history}"
    );
    assert!(
        lines.all(|l| l.contains("s ago") || l.contains("m ago")),
        "{history}"
    );
}

#[test]
fn owed_work_survives_kill_dash_9() {
    let script = json!({"sessions": [{"packages": [{"http_status": 500}]}, {"packages": [{"CMD": [["END"]]}]}]});
    let server = TestServer::start(&script, false);
    let root = Root::new().with_bootstrap_for(&server.base);
    root.write(
        "etc/omadmd/omadmd.toml",
        "[sessions]\nretry-base-secs = 3600\n",
    );
    let mut d = root.start(&[]);
    d.wait_for("will retry", 30);
    d.kill9();
    // The next start owes the server its BootstrapComplete session still, and sends it.
    let mut d = root.start(&[]);
    d.wait_for("session ended", 30);
    d.terminate();
    assert_eq!(server.of_kind("package1").len(), 2);
    let (_, history, _) = root.run(&["history", "--json"]);
    let h: serde_json::Value = serde_json::from_str(&history).unwrap();
    assert_eq!(h[0]["outcome"], "ended");
    assert_eq!(h[0]["trigger"], "bootstrap");
}

/// The test server speaks plain http: credentials go over it only with this lab setting.
const INSECURE_AUTH: &str = "[http]\nallow-insecure-auth = true\n";

/// A bootstrap for `base` with HTTP credentials in the DMAcc extension.
fn with_http_auth(root: Root, base: &str, user: &str, password: &str) -> Root {
    let doc = json!([{"ClientURI": "urn:oma:mo:oma-dm-dmacc:1.2//", "MOData": {"auth": {
        "SrvID": "auth-server", "SrvURI": format!("{base}/dm"), "Name": "Auth", "Perm": {"p": {"MOID": "*"}},
        "Ext": {"HttpAuth": {"UserName": user, "Secret": password}}}}}]);
    root.write("etc/omadmd/bootstrap.d/10-auth.json", &doc.to_string());
    root
}

#[test]
fn http_basic_and_digest_challenges_are_answered() {
    for scheme in ["basic", "digest"] {
        let script = json!({
            "auth": {"scheme": scheme, "user": "dev1", "password": "s3cret"},
            "sessions": [{"packages": [
                {"CMD": [["HGET", "{base}/repo/thing?x=1", "urn:x:thing:1.0/t1/"]]},
                {"expect": [200], "CMD": [["HPOST", "{base}/repo/back", "urn:x:thing:1.0/t1/a"], ["END"]]}
            ]}],
            "repository": {"/repo/thing": {"content_type": "application/dmmo+json", "body": [{"ClientURI": "urn:x:thing:1.0//", "MOData": {"t1": {"a": 1}}}]}}
        });
        let server = TestServer::start(&script, false);
        let root = with_http_auth(Root::new(), &server.base, "dev1", "s3cret");
        let log = one_session(&root, INSECURE_AUTH);
        assert!(
            log.iter().any(|l| l.contains("allow-insecure-auth is set")),
            "{scheme}: the lab setting is announced"
        );
        let p1 = &server.of_kind("package1")[0];
        let auth = p1["headers"]["authorization"].as_str().unwrap_or_default();
        assert!(
            auth.to_ascii_lowercase().starts_with(scheme),
            "{scheme}: {auth}"
        );
        assert!(
            !server.of_kind("auth-challenge").is_empty(),
            "{scheme}: the first request was challenged"
        );
        assert_eq!(
            server.of_kind("repo-get").len(),
            1,
            "{scheme}: the repository accepted the credentials too"
        );
        assert_eq!(server.of_kind("repo-post")[0]["body"], 1, "{scheme}");
        assert!(
            server.of_kind("expect").iter().all(|e| e["ok"] == true),
            "{scheme}"
        );
        // The password is never logged nor shown.
        let (_, tree, _) = root.run(&["dump-tree"]);
        assert!(
            tree.contains("UserName = dev1") && !tree.contains("s3cret"),
            "{tree}"
        );
    }
}

#[test]
fn credentials_never_go_over_plain_http() {
    for scheme in ["basic", "digest"] {
        let script = json!({"auth": {"scheme": scheme, "user": "dev1", "password": "s3cret"}, "sessions": [{"packages": [{"CMD": [["END"]]}]}]});
        let server = TestServer::start(&script, false);
        let root = with_http_auth(Root::new(), &server.base, "dev1", "s3cret");
        let log = finished_with(&root, "", "HTTP 401");
        let challenges = server.of_kind("auth-challenge");
        assert_eq!(
            challenges.len(),
            1,
            "{scheme}: challenged once, never answered"
        );
        assert_eq!(challenges[0]["had_credentials"], false, "{scheme}");
        assert!(
            server
                .events()
                .iter()
                .all(|e| e["headers"]["authorization"].is_null()
                    && !e.to_string().contains("s3cret")),
            "{scheme}: {:#?}",
            server.events()
        );
        assert!(!log.join("\n").contains("s3cret"));
    }
}

#[test]
fn a_non_ascii_challenge_is_a_clean_authentication_failure() {
    // digest_auth 0.3.1 panics on such a challenge; the daemon must not reach it.
    let script = json!({"auth": {"scheme": "digest", "user": "dev1", "password": "pw", "challenge": "Digest\u{e9}=\u{e9}"}, "sessions": [{"packages": [{"CMD": [["END"]]}]}]});
    let server = TestServer::start(&script, false);
    let root = with_http_auth(Root::new(), &server.base, "dev1", "pw");
    finished_with(&root, INSECURE_AUTH, "HTTP 401");
    assert_eq!(
        server.of_kind("auth-challenge").len(),
        1,
        "nothing to answer it with"
    );
}

#[test]
fn wrong_credentials_abort_after_one_answer() {
    let script = json!({"auth": {"scheme": "digest", "user": "dev1", "password": "right"}, "sessions": [{"packages": [{"CMD": [["END"]]}]}]});
    let server = TestServer::start(&script, false);
    let root = with_http_auth(Root::new(), &server.base, "dev1", "wrong");
    finished_with(&root, INSECURE_AUTH, "HTTP 401");
    assert_eq!(
        server.of_kind("auth-challenge").len(),
        2,
        "asked once, answered once, refused: no more tries"
    );
    assert!(server.of_kind("package1").is_empty());
}

#[test]
fn a_client_certificate_from_the_account_opens_mutual_tls() {
    use base64::Engine as _;
    let script = json!({"sessions": [{"packages": [{"CMD": [["END"]]}]}, {"packages": [{"CMD": [["END"]]}]}]});
    let server = TestServer::start_with(&script, true, true);
    let pem = std::fs::read_to_string(&server.client).unwrap();
    let split = pem.find("-----BEGIN PRIVATE KEY-----").unwrap();
    let (cert, key) = pem.split_at(split);
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let config = format!("[http]\nca-file = \"{}\"\n", server.ca.display());
    // Without a client certificate the server refuses the handshake.
    let plain = Root::new().with_bootstrap_for(&server.base);
    finished_with(&plain, &config, "sending Package#1");
    assert!(server.of_kind("package1").is_empty());
    // With the account's Auth/Trsp (bin leaves: base64 in dmmo+json) it is let in.
    let root = Root::new();
    let doc = json!([{"ClientURI": "urn:oma:mo:oma-dm-dmacc:1.2//", "MOData": {"mtls": {
        "SrvID": "mtls", "SrvURI": format!("{}/dm", server.base), "Name": "mTLS", "Perm": {"p": {"MOID": "*"}},
        "Auth": {"Trsp": {"Data": b64(cert), "Secret": b64(key)}}}}}]);
    root.write("etc/omadmd/bootstrap.d/10-mtls.json", &doc.to_string());
    one_session(&root, &config);
    assert_eq!(server.of_kind("package1").len(), 1);
    let (_, tree, _) = root.run(&["dump-tree"]);
    assert!(
        tree.contains("Secret = (no Get)") && !tree.contains(&b64(key)),
        "{tree}"
    );
}

#[test]
fn redirects_are_followed_within_a_scheme_only() {
    let script = json!({"sessions": [{"packages": [{"redirect": "{base}/dm/moved"}]}, {"packages": [{"CMD": [["END"]]}]}]});
    let server = TestServer::start(&script, false);
    let root = Root::new().with_bootstrap_for(&server.base);
    one_session(&root, "");
    let p1s = server.of_kind("package1");
    assert_eq!(p1s.len(), 2);
    assert_eq!(
        p1s[1]["path"], "/dm/moved",
        "the Package#1 followed the 307"
    );

    let script = json!({"sessions": [{"packages": [{"redirect": "http://127.0.0.1:9/dm"}]}]});
    let server = TestServer::start(&script, true);
    let root = Root::new().with_bootstrap_for(&server.base);
    finished_with(
        &root,
        &format!("[http]\nca-file = \"{}\"\n", server.ca.display()),
        "redirect from https to http refused",
    );
}

/// A server that sends headers and part of a body, then hangs up.
fn half_answer_server() -> (String, std::thread::JoinHandle<()>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let t = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf);
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oma.dm.request+json\r\nContent-Length: 500\r\n\r\n{\"CMD\": [[\"GE");
        let _ = s.flush();
        // Dropping the stream closes the connection mid-body.
    });
    (base, t)
}

#[test]
fn a_connection_closed_mid_body_or_an_oversized_package_aborts() {
    let (base, t) = half_answer_server();
    let root = Root::new().with_bootstrap_for(&base);
    finished_with(&root, "", "sending Package#1");
    t.join().unwrap();

    let big = format!(
        "{{\"CMD\": [[\"END\"]], \"pad\": \"{}\"}}",
        "x".repeat(5000)
    );
    let server = TestServer::start(&json!({"sessions": [{"packages": [{"raw": big}]}]}), false);
    let root = Root::new().with_bootstrap_for(&server.base);
    finished_with(
        &root,
        "[limits]\nmax-package-bytes = 2048\n",
        "body larger than 2048 bytes",
    );
}

#[test]
fn a_server_reads_devdetail_and_cannot_change_it() {
    let script = json!({
        "sessions": [{"packages": [
            {"CMD": [["GET", "urn:oma:mo:oma-dm-devdetail:1.0//"], ["DELETE", "urn:oma:mo:oma-dm-devdetail:1.0//FwV"]]},
            {"expect": [200, 405], "CMD": [["END"]]}
        ]}]
    });
    let server = TestServer::start(&script, false);
    let root = Root::new().with_bootstrap_for(&server.base);
    one_session(&root, "");
    assert!(
        server.of_kind("expect").iter().all(|e| e["ok"] == true),
        "{:#?}",
        server.of_kind("expect")
    );
    let part = &server.of_kind("package3")[0]["parts"][0];
    let doc = match &part["body"] {
        serde_json::Value::String(text) => serde_json::from_str(text).unwrap(),
        decoded => decoded.clone(),
    };
    let data = &doc[0]["MOData"]["DevDetail"];
    assert_eq!(data["URI"]["MaxTotLen"], "4096", "{doc}");
    assert_eq!(data["LrgObj"], false, "{doc}");
    for leaf in ["DevTyp", "OEM", "FwV", "SwV", "HwV"] {
        assert!(data[leaf].is_string(), "{leaf} in {doc}");
    }
}

/// A repository body over `limits.max-package-bytes` is the device's limit, not the
/// repository's failure: HGET answers 506 (Device Full), as docs/decisions.md says.
#[test]
fn an_hget_body_over_the_package_limit_answers_506() {
    let big = json!([{"ClientURI": "urn:oma:mo:oma-dm-devinfo:1.2//", "MOData": {"pad": "x".repeat(5000)}}]);
    let script = json!({
        "sessions": [{"packages": [
            {"CMD": [["HGET", "{base}/repo/big"], ["HGET", "{base}/repo/none"]]},
            {"expect": [506, 419], "CMD": [["END"]]}
        ]}],
        "repository": {"/repo/big": {"content_type": "application/dmmo+json", "body": big.to_string()}}
    });
    let server = TestServer::start(&script, false);
    let root = Root::new().with_bootstrap_for(&server.base);
    one_session(&root, "[limits]\nmax-package-bytes = 2048\n");
    assert!(
        server.of_kind("expect").iter().all(|e| e["ok"] == true),
        "{:#?}",
        server.of_kind("expect")
    );
}
