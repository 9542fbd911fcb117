//! A small fleet through a server outage, as CI runs it: 200 devices polling every 20 s
//! (with jitter), a fifth of them queueing an alert while the server is down for 20 s and
//! answers 503 with `Retry-After: 10`. The fleet must come back gently (the request rate in
//! 5-second bins after the outage under twice the steady rate before it), lose no
//! acknowledged alert, receive none twice, and every device must be back in contact
//! within one poll interval plus the retry cap after the outage.

use std::io::{BufRead as _, BufReader};
use std::process::Command;

use serde_json::{Value, json};

const DEVICES: usize = 200;
const POLL: f64 = 20.0;
const OUTAGE_AT: f64 = 45.0;
const OUTAGE_FOR: f64 = 20.0;
const RETRY_MAX: f64 = 16.0;
const DURATION: f64 = 110.0;

/// The test server's library on a loopback port of its own, on a thread of its own, with
/// a record file; its base URL.
fn server(script: Value, record: &std::path::Path) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let script: omadm_testserver::Script = serde_json::from_value(script).unwrap();
    let opts = omadm_testserver::Options {
        listen: format!("127.0.0.1:{port}").parse().unwrap(),
        tls: false,
        ca_out: None,
        client_cert_out: None,
        record: Some(record.to_owned()),
        verbose: false,
    };
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(omadm_testserver::serve(script, opts))
    });
    // Until it answers.
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    format!("http://127.0.0.1:{port}")
}

/// Requests per 5-second bin, from the report's per-second series.
fn bins(report: &Value) -> Vec<u64> {
    let seconds: Vec<u64> = report["seconds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["requests"].as_u64().unwrap())
        .collect();
    seconds.chunks(5).map(|c| c.iter().sum()).collect()
}

#[test]
fn a_fleet_comes_back_gently_after_an_outage_and_loses_no_alert() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("record.jsonl");
    // The server's clock starts before the fleet's: the outage window is read back from
    // the report (the seconds with busy answers), not assumed.
    let base = server(
        json!({
            "fleet": true,
            "outages": [{"after_secs": OUTAGE_AT, "for_secs": OUTAGE_FOR, "retry_after": "10"}]
        }),
        &record,
    );
    let scenario = dir.path().join("scenario.json");
    std::fs::write(
        &scenario,
        json!({
            "devices": DEVICES,
            "duration_secs": DURATION,
            // Started over one poll interval: the fleet is in its steady state at once.
            "start_spread_secs": POLL,
            "account": {"srv_uri": "{server}/dm"},
            "sessions": {"poll_interval_secs": POLL as u64, "retry_base_secs": 2, "retry_max_secs": RETRY_MAX as u64},
            "alerts": [{"at_secs": OUTAGE_AT + 5.0, "share": 0.2, "over_secs": 5}]
        })
        .to_string(),
    )
    .unwrap();
    let json_out = dir.path().join("report.json");
    let out = Command::new(env!("CARGO_BIN_EXE_omadm-fleetsim"))
        .arg("--scenario")
        .arg(&scenario)
        .args(["--server", &base])
        .arg("--scratch")
        .arg(dir.path())
        .arg("--json")
        .arg(&json_out)
        .arg("--server-record")
        .arg(&record)
        .args(["--log", "error"])
        .output()
        .unwrap();
    let summary = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{summary}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&std::fs::read(&json_out).unwrap()).unwrap();

    assert_eq!(report["failed_devices"], 0, "{summary}");
    assert_eq!(report["devices_never_in_contact"], 0, "{summary}");
    // The outage as the devices saw it.
    let busy: Vec<usize> = report["seconds"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .filter(|(_, s)| s["busy"].as_u64().unwrap() > 0)
        .map(|(i, _)| i)
        .collect();
    let (first_busy, last_busy) = (
        *busy.first().expect("no outage seen"),
        *busy.last().unwrap(),
    );
    assert!(
        (last_busy - first_busy) as f64 <= OUTAGE_FOR + 1.0,
        "503s from {first_busy} to {last_busy} s\n{summary}"
    );
    // Steady: the whole bins between the fleet's start and the outage; after: the bins
    // from its end for one poll interval plus the retry cap.
    let b = bins(&report);
    let steady_bins = (POLL as usize).div_ceil(5)..first_busy / 5;
    let steady = b[steady_bins.clone()].iter().sum::<u64>() as f64 / steady_bins.len() as f64;
    let after = &b[last_busy.div_ceil(5)..((last_busy as f64 + POLL + RETRY_MAX) / 5.0) as usize];
    let peak = *after.iter().max().unwrap() as f64;
    // The figures, for whoever reads the test's output (cargo test -- --nocapture).
    eprintln!(
        "requests per 5 s: {b:?}; steady {steady:.1}, peak after the outage {peak}\n{summary}"
    );
    assert!(steady > 0.0, "{b:?}");
    assert!(
        peak < 2.0 * steady,
        "peak {peak} per 5 s after the outage, steady {steady:.1}: {b:?}\n{summary}"
    );
    // Alerts: every one acknowledged, none lost, none twice.
    let alerts = &report["alerts"];
    assert_eq!(alerts["queued"], (DEVICES / 5) as u64, "{summary}");
    assert_eq!(alerts["acknowledged"], alerts["queued"], "{summary}");
    assert_eq!(alerts["lost"], 0, "{summary}");
    assert_eq!(alerts["duplicated"], 0, "{summary}");
    // Back in contact: after the last refusal, every device within a poll interval (with
    // its jitter, a quarter more) plus the retry cap.
    let recovery = &report["recovery"];
    let back = recovery["back_secs"]["max"].as_f64().unwrap();
    assert_eq!(recovery["not_back"], 0, "{summary}");
    assert!(
        back <= POLL * 1.25 + RETRY_MAX,
        "a device took {back:.1} s to be back in contact\n{summary}"
    );
    // The refusals the devices counted are the server's own: its record has them.
    let f = std::fs::File::open(&record).unwrap();
    let outage_lines = BufReader::new(f)
        .lines()
        .map_while(Result::ok)
        .filter(|l| l.contains("\"kind\":\"outage\""))
        .count();
    assert!(outage_lines > 0, "the server recorded no refused request");
}
