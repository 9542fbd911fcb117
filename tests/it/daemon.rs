//! The daemon binary end to end: start-up on a scratch root with the demo bootstrap,
//! restarts, the offline modes, and refusal of bad databases, configs and bootstrap files.

use crate::common::Root;

#[test]
fn starts_builds_the_tree_and_stops_on_sigterm() {
    let root = Root::new().with_demo_bootstrap();
    let mut d = root.start(&[]);
    d.wait_for("bootstrap applied", 30);
    d.wait_for("session owed to server", 10);
    d.wait_for("ready", 10);
    let (status, log) = d.terminate();
    assert!(status.success(), "{status:?}\n{}", log.join("\n"));
    assert!(log.iter().any(|l| l.contains("stopping")), "{log:?}");

    let (status, tree, err) = root.run(&["dump-tree"]);
    assert!(status.success(), "{err}");
    for want in [
        "urn:oma:mo:oma-dm-devinfo:1.2/DevInfo/  (creator local",
        "  DevID = UUID:",
        "  DmV = 2.0",
        "urn:oma:mo:oma-dm-dmacc:1.2/demo/  (creator serverid:demo-server",
        "  SrvURI = http://127.0.0.1:9/dm",
        "  Perm/  (no Get)",
        "      Secret = (secret)",
        "urn:oma:mo:oma-sessioninfomo:1.0/SessionInfoMO/",
        "  CBT = ",
        "urn:oma:mo:oma-dm-devdetail:1.0/DevDetail/  (creator local",
        "    MaxTotLen = 4096",
    ] {
        assert!(tree.contains(want), "missing {want:?} in\n{tree}");
    }
    // Neither the notification secret nor the permission MOIDs ever show.
    assert!(!tree.contains("ZGVtby1ub3RpZmljYXRpb24tc2VjcmV0"), "{tree}");
    assert!(!tree.contains("MOID"), "{tree}");

    let (status, json, err) = root.run(&["dump-tree", "--json"]);
    assert!(status.success(), "{err}");
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    let items = doc.as_array().unwrap();
    // DevInfo, DevDetail, SessionInfo, the DACMO and the account.
    assert_eq!(items.len(), 5);
    assert!(
        items
            .iter()
            .any(|i| i["ClientURI"] == "urn:oma:mo:oma-dm-dacmo:1.0/DacMO/"),
        "{json}"
    );
    let acc = items
        .iter()
        .find(|i| i["ClientURI"] == "urn:oma:mo:oma-dm-dmacc:1.2/demo/")
        .unwrap_or_else(|| panic!("no account in {json}"));
    assert_eq!(acc["MOData"]["demo"]["SrvID"], "demo-server");
    assert!(acc["MOData"]["demo"].get("Perm").is_none());
    assert!(
        acc["MOData"]["demo"]["Auth"]["Noti"]
            .get("Secret")
            .is_none()
    );
    assert!(items[0]["CV"].is_string());
}

#[test]
fn a_restart_changes_nothing_that_did_not_change() {
    let root = Root::new().with_demo_bootstrap();
    let mut d = root.start(&["-v"]);
    d.wait_for("ready", 30);
    d.terminate();
    let (_, first, _) = root.run(&["dump-tree"]);

    let mut d = root.start(&["-v"]);
    d.wait_for("bootstrap already applied", 30);
    d.wait_for("ready", 10);
    let (status, log) = d.terminate();
    assert!(status.success());
    assert!(
        !log.iter()
            .any(|l| l.contains("DevInfo updated") || l.contains("bootstrap applied")),
        "{log:#?}"
    );
    let (_, second, _) = root.run(&["dump-tree"]);
    // Same tree, same cache validators (SessionInfo may follow the network, so compare the rest).
    let stable = |t: &str| {
        t.lines()
            .take_while(|l| !l.contains("sessioninfo"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(stable(&first), stable(&second));
}

#[test]
fn a_corrupt_database_stops_start_up_and_stays_untouched() {
    let root = Root::new();
    let garbage = "this is not an SQLite database\n".repeat(100);
    let db = root.write("var/lib/omadmd/tree.db", &garbage);
    let mut d = root.start(&[]);
    let status = d.wait_exit(30);
    // 78: systemd does not restart it (RestartPreventExitStatus=78); an admin must act.
    assert_eq!(status.code(), Some(78));
    let log = d.log.join("\n");
    assert!(
        log.contains("is not usable") && log.contains("left untouched"),
        "{log}"
    );
    assert_eq!(std::fs::read_to_string(&db).unwrap(), garbage);
    assert!(!root.path("var/lib/omadmd/tree.db-wal").exists());
}

#[test]
fn a_bad_config_names_file_and_key() {
    let root = Root::new();
    let file = root.write(
        "etc/omadmd/config.d/50-site.toml",
        "[limits]\nmax-node-value-bytes = \"lots\"\n",
    );
    let (status, _, err) = root.run(&["check-config"]);
    assert!(!status.success());
    assert!(
        err.contains(&file.display().to_string()) && err.contains("max-node-value-bytes"),
        "{err}"
    );
    let mut d = root.start(&[]);
    assert_eq!(
        d.wait_exit(30).code(),
        Some(78),
        "the daemon started with a bad config, or asked to be restarted"
    );
}

#[test]
fn an_unwritable_database_stops_start_up_with_what_to_fix() {
    use std::os::unix::fs::PermissionsExt as _;
    use std::os::unix::process::CommandExt as _;
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipped: needs root to run the daemon as another user");
        return;
    }
    let root = Root::new().with_demo_bootstrap();
    // A first start creates the database; then it belongs to nobody, read-only.
    let mut d = root.start(&[]);
    d.wait_for("ready", 30);
    d.terminate();
    let state = root.path("var/lib/omadmd");
    let db = root.path("var/lib/omadmd/tree.db");
    for entry in walk(root.dir.path()) {
        std::os::unix::fs::lchown(&entry, Some(65534), Some(65534)).unwrap();
    }
    let before = std::fs::read(&db).unwrap();
    for (path, mode, what) in [
        (&db, 0o400, "the database file is not writable by uid 65534"),
        (
            &state,
            0o500,
            "the database directory is not writable by uid 65534",
        ),
    ] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
        let out = root.command(&[]).uid(65534).gid(65534).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{err}");
        assert!(
            err.contains(what) && err.contains("StateDirectory="),
            "{err}"
        );
        assert_eq!(err.matches(what).count(), 1, "said once: {err}");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(std::fs::read(&db).unwrap(), before, "left untouched");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() && !p.is_symlink() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_taken_notification_port_is_logged_and_the_daemon_serves_on() {
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let root = Root::new().with_demo_bootstrap();
    root.write(
        "etc/omadmd/config.d/60-port.toml",
        &format!("[notifications]\nlisten = \"{addr}\"\n"),
    );
    let mut d = root.start(&[]);
    let line = d.wait_for("cannot listen for notifications", 30);
    assert!(
        line.contains("running without them") && line.contains(&addr.to_string()),
        "{line}"
    );
    d.wait_for("ready", 30);
    let (status, _) = d.terminate();
    assert!(status.success());
}

#[test]
fn check_config_prints_the_merged_result() {
    let root = Root::new();
    root.write(
        "etc/omadmd/omadmd.toml",
        "[limits]\nmax-node-value-bytes = 4096\n",
    );
    root.write(
        "usr/lib/omadmd/config.d/10-vendor.toml",
        "[devinfo]\nman = \"ACME\"\n",
    );
    let (status, out, err) = root.run(&["check-config"]);
    assert!(status.success(), "{err}");
    assert!(out.contains("max-node-value-bytes = 4096"), "{out}");
    assert!(out.contains("man = \"ACME\""), "{out}");
    assert!(out.contains("10-vendor.toml"), "{out}");
    assert!(
        out.contains(&format!(
            "state-dir = \"{}\"",
            root.path("var/lib/omadmd").display()
        )),
        "{out}"
    );
}

#[test]
fn a_bad_bootstrap_file_is_named_and_the_daemon_still_serves() {
    let root = Root::new().with_demo_bootstrap();
    root.write(
        "etc/omadmd/bootstrap.d/20-broken.json",
        "[{\"ClientURI\": 42}]",
    );
    let mut d = root.start(&[]);
    let line = d.wait_for("bootstrap file refused", 30);
    assert!(
        line.contains("20-broken.json") && line.contains("ClientURI must be a string"),
        "{line}"
    );
    d.wait_for("ready", 10);
    d.terminate();
    let (_, tree, _) = root.run(&["dump-tree"]);
    assert!(tree.contains("dmacc:1.2/demo/"), "{tree}");
}

#[test]
fn a_ddf_nested_thousands_deep_is_refused_and_the_daemon_starts() {
    let root = Root::new().with_demo_bootstrap();
    let level =
        "<Node><NodeName>n</NodeName><DFProperties><AccessType><Get/></AccessType></DFProperties>";
    let deep = format!(
        "<MgmtTree><VerDTD>1.2</VerDTD><Node><NodeName/><DFProperties><AccessType><Get/></AccessType><DFType><DDFName>urn:x:deep:1.0</DDFName></DFType></DFProperties>{}{}</Node></MgmtTree>",
        level.repeat(6000),
        "</Node>".repeat(6000)
    );
    root.write("etc/omadmd/ddf/deep.xml", &deep);
    let mut d = root.start(&[]);
    let line = d.wait_for("DDF not loaded", 30);
    assert!(
        line.contains("deep.xml") && line.contains("nested deeper than 64 levels"),
        "{line}"
    );
    d.wait_for("ready", 10);
    assert!(d.terminate().0.success());
}

#[test]
fn dump_tree_without_a_database_says_so() {
    let root = Root::new();
    let (status, _, err) = root.run(&["dump-tree"]);
    assert!(!status.success());
    assert!(
        err.contains("no database") && err.contains("tree.db"),
        "{err}"
    );
    assert!(!root.database().exists());
}

#[test]
fn without_a_journal_socket_the_daemon_says_so_and_logs_to_stderr() {
    use std::os::unix::fs::MetadataExt as _;
    if std::path::Path::new("/run/systemd/journal/socket").exists() {
        eprintln!("skipped: this machine has a journal socket");
        return;
    }
    let root = Root::new().with_demo_bootstrap();
    // stderr goes to a file that JOURNAL_STREAM names, as systemd connects a service's
    // stderr to the journal.
    let log_path = root.path("stderr.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let meta = log.metadata().unwrap();
    let mut child = root
        .command(&[])
        .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()))
        .stderr(log)
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let text = loop {
        let text = std::fs::read_to_string(&log_path).unwrap();
        if text.contains(" ready") || std::time::Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(child.wait().unwrap().success());
    let first = text.lines().next().unwrap_or_default();
    assert!(
        first.contains("logging to stderr: the journal cannot be used")
            && first.contains("/run/systemd/journal/socket does not exist"),
        "{text}"
    );
    // Without timestamps: systemd adds its own.
    assert!(first.trim_start().starts_with("WARN"), "{first}");
    assert!(text.contains("ready"), "{text}");
}

/// Output into a pipe whose reader has gone (`omadmd dump-tree | head -0`) ends quietly
/// with status 0, with no panic message.
#[test]
fn a_closed_pipe_ends_output_quietly() {
    let root = Root::new().with_demo_bootstrap();
    let mut d = root.start(&[]);
    d.wait_for("ready", 30);
    let (status, _) = d.terminate();
    assert!(status.success());
    for args in [&["dump-tree"][..], &["history"], &["check-config"]] {
        let mut child = root
            .command(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away before anything is written.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

/// `omadmd check-config` says what start-up would do with each bootstrap file, and refuses
/// (78, naming the file) when one would be refused; it writes nothing.
#[test]
fn check_config_plans_the_bootstrap_files() {
    let root = Root::new().with_demo_bootstrap();
    let (status, out, err) = root.run(&["check-config"]);
    assert!(status.success(), "{err}");
    assert!(
        out.contains("10-demo-server.json: would apply (accounts: demo-server)"),
        "{out}"
    );
    assert!(!root.database().exists(), "check-config wrote a database");
    root.write("etc/omadmd/bootstrap.d/20-bad.json", "{ not json");
    let (status, out, err) = root.run(&["check-config"]);
    assert_eq!(status.code(), Some(78), "{err}");
    assert!(out.contains("20-bad.json: REFUSED"), "{out}");
    assert!(
        err.contains("20-bad.json: refused:") && err.contains("not JSON"),
        "{err}"
    );
    // Once the daemon has applied the good one, it is unchanged.
    std::fs::remove_file(root.path("etc/omadmd/bootstrap.d/20-bad.json")).unwrap();
    let mut d = root.start(&[]);
    d.wait_for("ready", 30);
    let (status, _) = d.terminate();
    assert!(status.success());
    let (status, out, err) = root.run(&["check-config"]);
    assert!(status.success(), "{err}");
    assert!(
        out.contains("10-demo-server.json: applied already, unchanged"),
        "{out}"
    );
}
