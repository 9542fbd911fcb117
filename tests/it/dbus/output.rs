//! What omadmctl prints for programs: every JSON output has its documented keys, and completion offers what the daemon has.

use super::*;

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
        let out = Command::new(tool("omadmctl"))
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
