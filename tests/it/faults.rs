//! The runtime under faults a fleet meets: slow and hung servers beside healthy ones,
//! servers asking for back-pressure with `Retry-After`, sessions that would never end.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{Daemon, OMADMD, PrivateBus, Reaped, Root, TestServer, tool};

/// strace attached to a running daemon, injecting `inject` into every thread's matching
/// calls (`fsync:error=EIO`); detached when dropped. `None`, with the reason printed, where
/// strace is missing or may not attach (not root under Yama's ptrace scope).
fn inject(d: &Daemon, syscall: &str, inject: &str) -> Option<Reaped> {
    let pid = d.pid();
    let child = Command::new("strace")
        .args(["-f", "-qq", "-o", "/dev/null", "-p", &pid.to_string()])
        .args(["-e", &format!("trace={syscall}")])
        .args(["-e", &format!("inject={syscall}:{inject}")])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(child) = child else {
        eprintln!("skipped: strace is not installed (scripts/setup.sh installs it)");
        return None;
    };
    let strace = Reaped(child);
    // Attached once every thread has a tracer.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let tasks: Vec<_> = std::fs::read_dir(format!("/proc/{pid}/task"))
            .unwrap()
            .filter_map(Result::ok)
            .collect();
        let traced = tasks.iter().all(|t| {
            std::fs::read_to_string(t.path().join("status")).is_ok_and(|s| {
                s.lines()
                    .any(|l| l.starts_with("TracerPid:") && l.trim_end() != "TracerPid:\t0")
            })
        });
        if traced {
            return Some(strace);
        }
        if Instant::now() > deadline {
            eprintln!("skipped: strace could not attach (ptrace not allowed here)");
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Detaches strace (SIGINT: it lets go of every thread and exits).
fn detach(strace: Reaped) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(strace.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    drop(strace);
}

/// An HGET that writes (one instance of a small MO) from the script's repository.
const HGET_THING: [&str; 3] = ["HGET", "{base}/repo/thing", "urn:x:thing:1.0/t1/"];

/// The repository `HGET_THING` fetches from.
fn thing_repository() -> serde_json::Value {
    json!({"/repo/thing": {"content_type": "application/dmmo+json",
        "body": [{"ClientURI": "urn:x:thing:1.0//", "MOData": {"t1": {"a": 1}}}]}})
}

/// A signed notification for the demo account, without NOTIFICATION-ID (nothing for the
/// daemon to record: the first write is the session's own).
fn notify(to: &str) {
    let bytes = omadmd::notify::compose(&omadmd::notify::Compose {
        server_id: "demo-server".into(),
        notification_id: None,
        secret: Some(b"demo-notification-secret".to_vec()),
        auth_data: b"demo-auth-data".to_vec(),
        ..Default::default()
    })
    .unwrap();
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send_to(&bytes, to)
        .unwrap();
}

/// Adds a bootstrap for a second server, `id` at `base`, beside the demo one.
fn add_server(root: &Root, id: &str, base: &str) {
    let boot = crate::common::dmacc(id, base);
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

/// An fsync that fails with EIO during a command's commit: SQLite cannot know whether the
/// commit reached the disk, so the daemon exits (74) before the server is told anything,
/// and the next start recovers a sound database and serves.
#[test]
fn an_io_error_during_a_commit_exits_before_the_server_hears_a_result() {
    let hget = json!({"CMD": [HGET_THING]});
    let script = json!({
        "sessions": [
            {"packages": [{"CMD": [["END"]]}]},
            {"packages": [hget, {"CMD": [["END"]]}]},
            {"packages": [{"CMD": [["GET", "urn:x:thing:1.0/t1/a"]]}, {"CMD": [["END"]]}]}
        ],
        "repository": thing_repository()
    });
    let server = TestServer::start(&script, false);
    let root = Root::new().with_bootstrap_for(&server.base);
    let mut d = root.start(&[]);
    let to = d.notification_address();
    d.wait_for("session ended", 30);
    let Some(strace) = inject(&d, "fsync", "error=EIO") else {
        return;
    };
    notify(&to);
    let status = d.wait_exit(30);
    drop(strace);
    assert_eq!(status.code(), Some(74), "{}", d.log.join("\n"));
    assert!(
        d.log.iter().any(|l| l.contains("I/O error during a write")),
        "{}",
        d.log.join("\n")
    );
    // The HGET's status never reached the server: its session has no Package#3.
    assert!(
        server.of_kind("package3").iter().all(|p| p["session"] != 1),
        "{:?}",
        server.of_kind("package3")
    );
    // The next start finds a sound database and serves.
    let db = rusqlite::Connection::open(root.database()).unwrap();
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    drop(db);
    let mut again = root.start(&[]);
    let to = again.notification_address();
    notify(&to);
    again.wait_for("session ended", 30);
    let (status, _) = again.terminate();
    assert!(status.success());
}

/// A full disk (every write to the database fails with ENOSPC) is not fatal, and does not
/// keep a server from the device: the session runs unrecorded, reads answer 200, the write
/// that cannot be stored fails with 500, and the daemon serves on; once there is space,
/// everything works again.
#[test]
fn a_full_disk_fails_writes_clearly_and_the_device_stays_manageable() {
    let hget = json!(HGET_THING);
    let script = json!({
        "sessions": [
            {"packages": [{"CMD": [["END"]]}]},
            {"packages": [
                {"CMD": [["GET", "urn:oma:mo:oma-dm-devinfo:1.2//DevID"], hget]},
                {"CMD": [["END"]]}
            ]},
            {"packages": [{"CMD": [hget]}, {"CMD": [["END"]]}]}
        ],
        "repository": thing_repository()
    });
    let server = TestServer::start(&script, false);
    let root = Root::new().with_bootstrap_for(&server.base);
    let mut d = root.start(&[]);
    let to = d.notification_address();
    d.wait_for("session ended", 30);
    let Some(strace) = inject(&d, "pwrite64", "error=ENOSPC") else {
        return;
    };
    notify(&to);
    d.wait_for("session ended", 30);
    assert!(
        d.log.iter().any(|l| l.contains("database or disk is full")),
        "{}",
        d.log.join("\n")
    );
    detach(strace);
    std::thread::sleep(Duration::from_millis(500));
    notify(&to);
    d.wait_for("session ended", 30);
    let (status, log) = d.terminate();
    assert!(status.success(), "{}", log.join("\n"));
    let codes = |session: u64| -> Vec<u64> {
        server
            .of_kind("package3")
            .iter()
            .filter(|p| p["session"] == session)
            .flat_map(|p| p["body"]["Status"].as_array().cloned().unwrap_or_default())
            .filter_map(|s| s["sc"].as_u64())
            .collect()
    };
    assert_eq!(codes(1), [200, 500], "while full");
    assert_eq!(codes(2), [200], "with space again");
}

/// SQLite's locks failing (EAGAIN on fcntl) while the poll timer asks for sessions: before,
/// one such error in the scheduling loop stopped it for good, and the daemon looked
/// healthy with no session ever again. Now it is logged and retried, and sessions happen
/// once the locks work.
#[test]
fn failing_locks_do_not_stop_the_scheduler() {
    let server = TestServer::start(&json!({"sessions": []}), false);
    let root = Root::new().with_bootstrap_for(&server.base);
    root.write(
        "etc/omadmd/omadmd.toml",
        "[sessions]\npoll-interval-secs = 2\n",
    );
    let mut d = root.start(&[]);
    d.wait_for("session ended", 30);
    let Some(strace) = inject(&d, "fcntl", "error=EAGAIN") else {
        return;
    };
    d.wait_for("cannot read the accounts", 60);
    detach(strace);
    d.wait_for("session ended", 30);
    let (status, log) = d.terminate();
    assert!(status.success(), "{}", log.join("\n"));
}

/// The systemd watchdog is fed while the loops go round, and no longer once one is wedged
/// (here the notification listener, stuck in `recvfrom` by strace): systemd then kills and
/// restarts the daemon (`WatchdogSec=`, `Restart=on-failure`).
#[test]
fn the_watchdog_is_fed_only_while_every_loop_runs() {
    use std::os::unix::net::UnixDatagram;
    let root = Root::new().with_demo_bootstrap();
    let socket_path = root.path("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    // WATCHDOG_PID must be the daemon's own: the shell's, which exec keeps.
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "WATCHDOG_PID=$$ exec \"$0\" \"$@\""])
        .arg(OMADMD)
        .arg("--config-root")
        .arg(root.dir.path())
        .env_remove("RUST_LOG")
        .env_remove("STATE_DIRECTORY")
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "3000000");
    let mut d = Daemon::spawn_cmd(cmd);
    let to = d.notification_address();
    d.wait_for("systemd watchdog on", 30);
    let pings = |within: Duration| {
        let until = Instant::now() + within;
        let mut n = 0;
        let mut buf = [0u8; 256];
        while Instant::now() < until {
            if let Ok(len) = socket.recv(&mut buf) {
                n += String::from_utf8_lossy(&buf[..len])
                    .lines()
                    .filter(|l| *l == "WATCHDOG=1")
                    .count();
            }
        }
        n
    };
    assert!(pings(Duration::from_secs(4)) >= 2, "fed while healthy");
    let Some(strace) = inject(&d, "recvfrom", "delay_enter=30000000") else {
        return;
    };
    // A datagram makes the listener read, and stick there.
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send_to(b"wake up", to.as_str())
        .unwrap();
    d.wait_for("no longer feeding the watchdog", 15);
    let _ = pings(Duration::from_millis(300));
    assert_eq!(pings(Duration::from_secs(4)), 0, "not fed while wedged");
    drop(strace);
    d.kill9();
}

/// While a session's commit waits on a slow disk (every fsync delayed 10 s: an SD card, a
/// busy eMMC), the daemon still answers `omadmctl status` over D-Bus and accepts
/// notifications: neither waits behind the write. (Before, every SQLite call ran on the
/// one runtime thread, and both waited for the fsync.) How fast they answer is measured
/// by `benches/stall.rs`; here only that they answer while the commit is still stuck.
#[test]
fn a_slow_disk_stalls_neither_dbus_nor_notifications() {
    let hget = json!({"CMD": [HGET_THING]});
    let script = json!({
        "sessions": [{"packages": [{"CMD": [["END"]]}]}, {"packages": [hget, {"CMD": [["END"]]}]}],
        "repository": thing_repository()
    });
    let server = TestServer::start(&script, false);
    let bus = PrivateBus::start();
    let root = Root::new().with_bootstrap_for(&server.base);
    let mut d = root.start_on_bus(&bus.address);
    let to = d.notification_address();
    d.wait_for("session ended", 30);
    let Some(strace) = inject(&d, "fsync", "delay_enter=10000000") else {
        return;
    };
    notify(&to);
    d.wait_for("session starts", 10);
    // The HGET fetched its data: its commit is now waiting on the fsync.
    let until = Instant::now() + Duration::from_secs(10);
    while server.of_kind("repo-get").is_empty() {
        assert!(Instant::now() < until, "no HGET");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let stuck_since = Instant::now();
    // D-Bus: omadmctl status answers while the commit is stuck.
    let mut status = Reaped(
        Command::new(tool("omadmctl"))
            .arg("status")
            .env("DBUS_SYSTEM_BUS_ADDRESS", &bus.address)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let answered = loop {
        if let Some(s) = status.try_wait().unwrap() {
            break s;
        }
        assert!(
            stuck_since.elapsed() < Duration::from_secs(5),
            "omadmctl status waited behind the commit"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(answered.success());
    // UDP: a notification is accepted while the commit is stuck.
    let bytes = omadmd::notify::compose(&omadmd::notify::Compose {
        server_id: "demo-server".into(),
        notification_id: Some(77),
        secret: Some(b"demo-notification-secret".to_vec()),
        auth_data: b"demo-auth-data".to_vec(),
        ..Default::default()
    })
    .unwrap();
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send_to(&bytes, to.as_str())
        .unwrap();
    d.wait_for("notification_id=Some(77)", 5);
    assert!(
        stuck_since.elapsed() < Duration::from_secs(9),
        "answered while the fsync was still delayed"
    );
    assert!(
        !d.log
            .iter()
            .any(|l| l.contains("session ended") && l.contains("id=2")),
        "the commit was still stuck"
    );
    drop(strace);
    d.kill9();
}

/// Fifty times: an alert is queued (acknowledged by `omadmctl alert send` exiting 0), the
/// daemon is killed with SIGKILL at a random moment after, and started again. The
/// database passes SQLite's integrity check every time, and once the daemon is left to
/// run, every acknowledged alert reaches the server at least once.
#[test]
fn killed_fifty_times_it_loses_no_acknowledged_alert() {
    let server = TestServer::start(&json!({"sessions": []}), false);
    let bus = PrivateBus::start();
    let root = Root::new().with_bootstrap_for(&server.base);
    // Sessions are retried at once, so kills land before, during and after them.
    root.write(
        "etc/omadmd/omadmd.toml",
        "[sessions]\nretry-base-secs = 1\nretry-max-secs = 2\n",
    );
    let mut acknowledged = Vec::new();
    for round in 0..50u32 {
        let mut d = root.start_on_bus(&bus.address);
        d.wait_for("D-Bus name owned", 30);
        let data = json!({"round": round}).to_string();
        let out = Command::new(tool("omadmctl"))
            .args(["alert", "send", "--server", "demo-server"])
            .args(["--type", "urn:x:kill-loop", "--data", &data])
            .env("DBUS_SYSTEM_BUS_ADDRESS", &bus.address)
            .output()
            .unwrap();
        if out.status.success() {
            acknowledged.push(round);
        }
        // A moment between 0 and 40 ms later: before, during or after the session that
        // carries it.
        let wait = getrandom::u32().unwrap() % 40;
        std::thread::sleep(Duration::from_millis(u64::from(wait)));
        d.kill9();
        let db = rusqlite::Connection::open(root.database()).unwrap();
        let check: String = db
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok", "round {round}");
    }
    assert!(acknowledged.len() >= 45, "{acknowledged:?}");
    // Left to run, the daemon delivers what is still queued.
    let d = root.start_on_bus(&bus.address);
    let deadline = Instant::now() + Duration::from_secs(60);
    let delivered = loop {
        let got: std::collections::BTreeSet<u64> = server
            .of_kind("package1")
            .iter()
            .flat_map(|p| p["body"]["Alert"].as_array().cloned().unwrap_or_default())
            .filter(|a| a["AlertType"] == "urn:x:kill-loop")
            .filter_map(|a| a["Data"]["round"].as_u64())
            .collect();
        if acknowledged.iter().all(|r| got.contains(&u64::from(*r))) || Instant::now() > deadline {
            break got;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let lost: Vec<u32> = acknowledged
        .iter()
        .copied()
        .filter(|r| !delivered.contains(&u64::from(*r)))
        .collect();
    assert!(
        lost.is_empty(),
        "acknowledged and never delivered: {lost:?}"
    );
    d.kill9();
}
