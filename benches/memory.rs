//! Benchmark: resident memory of the real `omadmd` binary, idle after start-up and after
//! sessions (PRODUCT.md §5: an idle daemon under 10 MiB, not growing). The baseline in the
//! same run is the daemon itself before its first session, so growth shows directly.
//! Sessions run against the in-process test server, woken by signed UDP notifications.
//! `cargo bench --bench memory`; `cargo test` runs it once, small.

mod common;

use std::time::Duration;

use serde_json::json;

fn wait_for(log: &common::Log, needle: &str) {
    log.wait_for(needle, Duration::from_secs(120), &["session aborted"]);
}

fn mib(kib: u64) -> String {
    format!("{:>6.1} MiB", kib as f64 / 1024.0)
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let sessions = if full { 50 } else { 2 };
    let dir = tempfile::tempdir().expect("tempdir");
    let get = json!({"CMD": [["GET", "urn:oma:mo:oma-dm-devinfo:1.2//DevID"], ["GET", "urn:oma:mo:oma-dm-devinfo:1.2//Man"]]});
    let one = json!({"packages": [get, {"CMD": [["END"]]}]});
    // Then one large MO: an HGET of it, and a GET of it back.
    let leaves = if full { 100_000 } else { 1_000 };
    let data: serde_json::Map<String, serde_json::Value> = (0..leaves)
        .map(|i| (format!("l{i:06}"), json!(format!("value-{i:06}"))))
        .collect();
    let document = json!([{"ClientURI": "urn:x:big:1.0//", "MOData": {"b1": data}}]).to_string();
    // Both forms of HGET (issue 27): with a ClientURI naming the new instance, and
    // without one, where the document's item says where it goes (a second instance).
    let hget = json!({"packages": [{"CMD": [["HGET", "{base}/repo/big", "urn:x:big:1.0/b1/"]]}, {"CMD": [["END"]]}]});
    let hget_anywhere =
        json!({"packages": [{"CMD": [["HGET", "{base}/repo/big"]]}, {"CMD": [["END"]]}]});
    let get_big =
        json!({"packages": [{"CMD": [["GET", "urn:x:big:1.0/b1/"]]}, {"CMD": [["END"]]}]});
    let mut script_sessions = vec![one; sessions + 1];
    script_sessions.extend([hget, get_big, hget_anywhere]);
    let base = common::start_testserver(json!({
        "sessions": script_sessions,
        "repository": {"/repo/big": {"content_type": "application/dmmo+json", "body": document}}
    }));
    common::demo_account(dir.path(), &base);
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
    let notify_addr = udp.local_addr().expect("addr");
    drop(udp);
    common::write(
        dir.path(),
        "etc/omadmd/config.d/00-bench.toml",
        // Notifications wake sessions back to back: no spacing between them.
        &format!(
            "[dbus]\nenabled = false\n[notifications]\nlisten = \"{notify_addr}\"\nmin-interval-secs = 0\n[limits]\nmax-nodes-per-document = 200000\n"
        ),
    );
    let mut child = common::Reaped(
        // The daemon's own default log level, as installed.
        common::omadmd(common::OMADMD, &[], dir.path())
            .env_remove("RUST_LOG")
            .spawn()
            .expect("omadmd"),
    );
    let pid = child.0.id();
    let log = common::Log::of(&mut child);
    let settle = Duration::from_secs(if full { 3 } else { 1 });

    // The owed BootstrapComplete session runs at start; then the daemon idles.
    wait_for(&log, "session ended");
    std::thread::sleep(settle);
    let after_first = common::rss_kib(&pid.to_string());
    let anon_first = common::anon_kib(&pid.to_string());
    let sender = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
    let session = |n: usize| {
        let bytes = omadmd::notify::compose(&omadmd::notify::Compose {
            server_id: "demo-server".into(),
            notification_id: Some(u16::try_from(n + 1).expect("id")),
            secret: Some(b"demo-notification-secret".to_vec()),
            auth_data: b"demo-auth-data".to_vec(),
            ..Default::default()
        })
        .expect("notification");
        sender.send_to(&bytes, notify_addr).expect("send");
        wait_for(&log, "session ended");
        // Under the per-source rate limit (notifications.rate-per-source, 20 a second).
        std::thread::sleep(Duration::from_millis(60));
    };
    for n in 0..sessions {
        session(n);
    }
    std::thread::sleep(settle);
    let after_all = common::rss_kib(&pid.to_string());
    let anon_all = common::anon_kib(&pid.to_string());
    // The large MO, in and out: the peak (VmHWM, reset before each) above the idle
    // daemon, and the daemon idle again after.
    let mut large = Vec::new();
    for (n, what) in [
        (sessions, "HGET with a ClientURI"),
        (sessions + 1, "GET"),
        (sessions + 2, "HGET without a ClientURI"),
    ] {
        let before = common::rss_kib(&pid.to_string());
        std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("reset VmHWM");
        session(n);
        let peak = common::hwm_kib(&pid.to_string());
        std::thread::sleep(settle);
        large.push((
            what,
            before,
            peak,
            common::rss_kib(&pid.to_string()),
            common::anon_kib(&pid.to_string()),
        ));
    }
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(pid).expect("pid")),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.0.wait();

    println!(
        "omadmd resident memory (VmRSS), idle {} s after the last session:",
        settle.as_secs()
    );
    println!(
        "  after start-up and its first session {}   (of which heap and stacks {})",
        mib(after_first),
        mib(anon_first).trim()
    );
    println!(
        "  after {sessions} more sessions            {}   (of which heap and stacks {})",
        mib(after_all),
        mib(anon_all).trim()
    );
    println!(
        "  growth                               {:>+6.1} MiB   (target: under 10 MiB, not growing)",
        (after_all as f64 - after_first as f64) / 1024.0
    );
    let doc_kib = document.len() as u64 / 1024;
    println!(
        "one MO of {leaves} leaves, a {} document:",
        mib(doc_kib).trim()
    );
    for (what, before, peak, after, anon) in large {
        println!(
            "  {what:<24} peak {} above idle ({:.1}x the document), idle after {} (heap and stacks {})",
            mib(peak.saturating_sub(before)),
            peak.saturating_sub(before) as f64 / doc_kib.max(1) as f64,
            mib(after),
            mib(anon).trim()
        );
    }
    println!("  (target: peak within about 3x the document above idle; idle after under 10 MiB)");
}
