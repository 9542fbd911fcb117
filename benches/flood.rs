//! Benchmark: how long a valid DM Notification takes to be accepted while a flood of
//! invalid datagrams (10,000 a second, from another address) hits the same port, against
//! the same measurement without the flood, in the same run (PRODUCT.md §5: the flood may
//! delay a valid notification by at most 10 ms). The real `omadmd` binary; "accepted" is
//! its log line, timestamped as it arrives on the pipe, which costs both cases the same.
//! `cargo bench --bench flood`; `cargo test` runs it once, small.

mod common;

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

fn wait_for(log: &common::Log, needle: &str) -> Instant {
    log.wait_for(needle, Duration::from_secs(30), &[])
}

/// Sends valid notifications one by one and returns how long each took to be accepted.
fn latencies(
    log: &common::Log,
    to: std::net::SocketAddr,
    ids: std::ops::Range<u16>,
) -> Vec<Duration> {
    let sender = UdpSocket::bind("127.0.0.1:0").expect("udp");
    let mut out = Vec::new();
    for id in ids {
        let bytes = omadmd::notify::compose(&omadmd::notify::Compose {
            server_id: "demo-server".into(),
            notification_id: Some(id),
            secret: Some(b"demo-notification-secret".to_vec()),
            auth_data: b"demo-auth-data".to_vec(),
            ..Default::default()
        })
        .expect("notification");
        // Drain what came before, so the line waited for is this one's.
        log.clear();
        let sent = Instant::now();
        sender.send_to(&bytes, to).expect("send");
        let accepted = wait_for(log, &format!("notification_id=Some({id})"));
        out.push(accepted.saturating_duration_since(sent));
        // Under the per-source rate limit for the valid sender.
        std::thread::sleep(Duration::from_millis(100));
    }
    out
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let rounds: u16 = if full { 30 } else { 2 };
    let dir = tempfile::tempdir().expect("tempdir");
    // Sessions go to a port nobody listens on and fail at once: only acceptance is timed.
    common::demo_account(dir.path(), "http://127.0.0.1:9");
    let udp = UdpSocket::bind("127.0.0.1:0").expect("udp");
    let addr = udp.local_addr().expect("addr");
    drop(udp);
    common::write(
        dir.path(),
        "etc/omadmd/config.d/00-bench.toml",
        &format!(
            "[dbus]\nenabled = false\n[notifications]\nlisten = \"{addr}\"\nmin-interval-secs = 0\n[sessions]\nretry-base-secs = 3600\n"
        ),
    );
    let mut child = common::Reaped(
        common::omadmd(common::OMADMD, &[], dir.path())
            .spawn()
            .expect("omadmd"),
    );
    let log = common::Log::of(&mut child);
    wait_for(&log, "ready");

    let quiet = median(latencies(&log, addr, 1..1 + rounds));

    // The flood: garbage and badly signed notifications, 10,000 a second, from 127.0.0.2.
    let stop = Arc::new(AtomicBool::new(false));
    let flooder = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let sock = UdpSocket::bind("127.0.0.2:0").expect("udp on 127.0.0.2");
            let junk = [
                b"garbage that is no notification".to_vec(),
                omadmd::notify::compose(&omadmd::notify::Compose {
                    server_id: "demo-server".into(),
                    notification_id: Some(1),
                    secret: Some(b"wrong".to_vec()),
                    ..Default::default()
                })
                .expect("notification"),
            ];
            let mut sent = 0u64;
            let start = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                let _ = sock.send_to(&junk[(sent % 2) as usize], addr);
                sent += 1;
                // Pace to 10,000 a second.
                let due = start + Duration::from_micros(sent * 100);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
            (sent, start.elapsed())
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let flooded = median(latencies(&log, addr, 1000..1000 + rounds));
    stop.store(true, Ordering::Relaxed);
    let (sent, took) = flooder.join().expect("flooder");
    drop(child);

    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!("a valid notification, sent to accepted (median of {rounds}):");
    println!("  quiet                 {:>9.1} µs", us(quiet));
    println!(
        "  under the flood       {:>9.1} µs   ({:.0} invalid datagrams a second)",
        us(flooded),
        sent as f64 / took.as_secs_f64()
    );
    println!(
        "  delay from the flood  {:>9.1} µs   (target: at most 10 ms)",
        us(flooded) - us(quiet)
    );
}
