//! Accounts over the bus: what waits for an unreachable server, a missing MO fetched from its DEFAULT on request, accounts added and removed without a restart, and reload.

use super::*;

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
