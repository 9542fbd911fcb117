//! The runtime under faults a fleet meets: slow and hung servers beside healthy ones,
//! servers asking for back-pressure with `Retry-After`, sessions that would never end.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{Root, TestServer};

/// Adds a bootstrap for a second server, `id` at `base`, beside the demo one.
fn add_server(root: &Root, id: &str, base: &str) {
    let boot = json!([{
        "ClientURI": "urn:oma:mo:oma-dm-dmacc:1.2//",
        "MOData": { id: {
            "SrvID": id,
            "SrvURI": format!("{base}/dm"),
            "Name": id,
            "Perm": { "devinfo": { "MOID": "urn:oma:mo:oma-dm-devinfo:1.2" } }
        }}
    }]);
    root.write(
        &format!("etc/omadmd/bootstrap.d/20-{id}.json"),
        &boot.to_string(),
    );
}

/// A server that holds its session (sends its answer a byte a second, or not at all) does
/// not hold up another server: the healthy server's session runs beside it and ends within
/// seconds, and the slow one is cut off by `http.request-timeout-secs` however it trickles.
#[test]
fn a_slow_or_hung_server_delays_no_other_server() {
    let faults = [
        ("drip", json!({"drip_ms": 1000, "CMD": [["END"]]})),
        ("hung", json!({"delay_ms": 120_000, "CMD": [["END"]]})),
    ];
    for (what, fault) in faults {
        let slow = TestServer::start(&json!({"sessions": [{"packages": [fault]}]}), false);
        let healthy = TestServer::start(&json!({"sessions": []}), false);
        // The demo account (SrvID demo-server, account "demo") is the slow one: the owed
        // sessions are asked for in that order, so one at a time it would go first.
        let root = Root::new().with_bootstrap_for(&slow.base);
        add_server(&root, "zz-healthy", &healthy.base);
        root.write(
            "etc/omadmd/omadmd.toml",
            "[http]\nrequest-timeout-secs = 8\nread-timeout-secs = 60\n",
        );
        let mut d = root.start(&[]);
        d.wait_for("ready", 30);
        let started = Instant::now();
        let ended = d.wait_for("session ended", 20);
        assert!(ended.contains("zz-healthy"), "{what}: {ended}");
        let healthy_took = started.elapsed();
        assert_eq!(healthy.of_kind("package1").len(), 1, "{what}");
        assert!(
            slow.of_kind("package2").is_empty() || what == "drip",
            "{what}: the slow server had not answered yet"
        );
        // The slow one ends at its deadline, not after the whole trickle (17 s) or the
        // hang (120 s).
        let aborted = d.wait_for("session aborted", 20);
        assert!(aborted.contains("sending Package#1"), "{what}: {aborted}");
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{what}: the request deadline cut it off"
        );
        let (status, log) = d.terminate();
        assert!(status.success(), "{what}: {}", log.join("\n"));
        eprintln!("{what}: the healthy session ended after {healthy_took:?}");
    }
}

/// A 503 or 429 with `Retry-After` (seconds or an HTTP date) holds the next attempt back at
/// least that long, where the backoff alone would retry after a second.
#[test]
fn retry_after_holds_the_next_attempt_back() {
    for status in [503, 429] {
        // Seconds for the one, an HTTP date for the other (made now, when it is used).
        let retry_after = match status {
            503 => "5".to_owned(),
            _ => httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(6)),
        };
        let script = json!({"sessions": [
            {"packages": [{"http_status": status, "retry_after": retry_after}]},
            {"packages": [{"CMD": [["END"]]}]}
        ]});
        let server = TestServer::start(&script, false);
        let root = Root::new().with_bootstrap_for(&server.base);
        root.write(
            "etc/omadmd/omadmd.toml",
            "[sessions]\nretry-base-secs = 1\n",
        );
        let mut d = root.start(&[]);
        let refused = d.wait_for("session aborted", 30);
        let at = Instant::now();
        assert!(refused.contains("Retry-After"), "{refused}");
        let kept = d.wait_for("will retry", 10);
        d.wait_for("session ended", 30);
        let waited = at.elapsed();
        assert!(
            waited >= Duration::from_secs(4),
            "{status}: retried after {waited:?} ({kept})"
        );
        assert_eq!(server.of_kind("package1").len(), 2, "{status}");
        let (ok, _) = d.terminate();
        assert!(ok.success());
    }
}

/// A Data Repository that answers 503 with `Retry-After` is not asked again before then:
/// the second HGET of the session fails at once, without a request.
#[test]
fn a_busy_repository_is_not_asked_again_before_it_said() {
    let script = json!({
        "sessions": [{"packages": [
            {"CMD": [["HGET", "{base}/repo/busy", "urn:x:thing:1.0/t1/"]]},
            {"CMD": [["HGET", "{base}/repo/busy", "urn:x:thing:1.0/t1/"]]},
            {"CMD": [["END"]]}
        ]}],
        "repository": {"/repo/busy": {"http_status": 503, "retry_after": "600"}}
    });
    let server = TestServer::start(&script, false);
    let root = Root::new().with_bootstrap_for(&server.base);
    let mut d = root.start(&[]);
    d.wait_for("session ended", 30);
    let (status, _) = d.terminate();
    assert!(status.success());
    assert_eq!(
        server.of_kind("repo-get").len(),
        1,
        "{:?}",
        server.of_kind("repo-get")
    );
    let p3 = server.of_kind("package3");
    let codes = |i: usize| p3[i]["body"]["Status"][0]["sc"].as_u64();
    assert_eq!(codes(0), codes(1), "both HGETs fail alike: {p3:?}");
    assert_ne!(codes(0), Some(200));
}

/// A session that would run for ever (a server that keeps sending packages, each slowly)
/// ends at `sessions.max-duration-secs`, recorded as such, and the daemon keeps serving.
#[test]
fn a_session_ends_at_its_deadline() {
    let package =
        json!({"delay_ms": 900, "CMD": [["GET", "urn:oma:mo:oma-dm-devinfo:1.2//DevID"]]});
    let script = json!({"sessions": [{"packages": vec![package; 100]}]});
    let server = TestServer::start(&script, false);
    let root = Root::new().with_bootstrap_for(&server.base);
    root.write(
        "etc/omadmd/omadmd.toml",
        "[sessions]\nmax-duration-secs = 3\nmax-packages = 1000\n",
    );
    let mut d = root.start(&[]);
    let line = d.wait_for("session aborted", 30);
    assert!(line.contains("max-duration-secs"), "{line}");
    let (status, _) = d.terminate();
    assert!(status.success());
    let (_, history, _) = root.run(&["history", "--json"]);
    let h: serde_json::Value = serde_json::from_str(&history).unwrap();
    assert_eq!(h[0]["outcome"], "aborted");
    assert!(
        server.of_kind("package1").len() == 1 && server.of_kind("package3").len() < 6,
        "{}",
        server.of_kind("package3").len()
    );
}
