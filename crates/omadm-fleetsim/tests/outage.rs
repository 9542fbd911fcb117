//! A small fleet through a server outage, as CI runs it: 200 devices polling every 20 s
//! (with jitter), a fifth of them queueing an alert while the server is down for 20 s and
//! answers 503 with `Retry-After: 10`. The fleet must come back gently (the request rate in
//! 5-second bins after the outage under twice the steady rate before it), lose no
//! acknowledged alert, receive none twice, and every device must be back in contact
//! within one poll interval plus the retry cap after the outage. And a notification
//! campaign to the same 200 devices, spread by START-WITHIN.

mod common;

use std::io::{BufRead as _, BufReader};

use common::{run, server};
use serde_json::{Value, json};

const DEVICES: usize = 200;
const POLL: f64 = 20.0;
const OUTAGE_AT: f64 = 45.0;
const OUTAGE_FOR: f64 = 20.0;
const RETRY_MAX: f64 = 16.0;
const DURATION: f64 = 110.0;

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
    let (report, summary) = run(
        dir.path(),
        &base,
        &record,
        json!({
            "devices": DEVICES,
            "duration_secs": DURATION,
            // Started over one poll interval: the fleet is in its steady state at once.
            "start_spread_secs": POLL,
            "account": {"srv_uri": "{server}/dm"},
            "sessions": {"poll_interval_secs": POLL as u64, "retry_base_secs": 2, "retry_max_secs": RETRY_MAX as u64},
            "alerts": [{"at_secs": OUTAGE_AT + 5.0, "share": 0.2, "over_secs": 5}]
        }),
    );

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

/// A campaign: 200 devices notified at once, each notification carrying START-WITHIN 10 s.
/// The sessions must spread over those 10 s (no second above twice the mean rate, where
/// all at once would be 200 in one second), and every notification must be answered
/// within the bound.
#[test]
fn a_campaign_with_start_within_spreads_its_sessions() {
    const CAMPAIGN_AT: f64 = 12.0;
    const WITHIN: f64 = 10.0;
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("record.jsonl");
    let base = server(json!({"fleet": true}), &record);
    let (report, summary) = run(
        dir.path(),
        &base,
        &record,
        json!({
            "devices": DEVICES,
            "duration_secs": CAMPAIGN_AT + WITHIN + 6.0,
            "start_spread_secs": 8,
            "account": {"srv_uri": "{server}/dm"},
            "notifications": [{"at_secs": CAMPAIGN_AT, "start_within_secs": WITHIN as u32}]
        }),
    );
    eprintln!("{summary}");
    assert_eq!(
        report["notifications"]["accepted"], DEVICES as u64,
        "{summary}"
    );
    let answered = &report["notifications"]["answered_secs"];
    assert_eq!(answered["count"], DEVICES as u64, "{summary}");
    // Within the bound, plus the time a session takes on a busy 2-core machine.
    assert!(
        answered["max"].as_f64().unwrap() <= WITHIN + 2.0,
        "{summary}"
    );
    // Spread: the campaign's sessions over its seconds, none above twice the mean.
    let per_second: Vec<u64> = report["seconds"].as_array().unwrap()[CAMPAIGN_AT as usize..]
        .iter()
        .map(|s| s["sessions_started"].as_u64().unwrap())
        .collect();
    let mean = DEVICES as f64 / WITHIN;
    let peak = *per_second.iter().max().unwrap() as f64;
    assert!(peak < 2.0 * mean, "{per_second:?}\n{summary}");
    assert!(
        per_second.iter().filter(|n| **n > 0).count() >= WITHIN as usize - 1,
        "the sessions spread over the bound: {per_second:?}"
    );
    assert_eq!(
        report["per_session"]["notification"]["sessions"], DEVICES as u64,
        "{summary}"
    );
}
