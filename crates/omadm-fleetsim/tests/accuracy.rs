//! The report tells what the server went through even when the simulator runs short of
//! CPU: a fleet started all at once on this machine's cores counts each answer in the
//! second the server sent it (checked against the server's own record of its answer
//! times), and says it was CPU-bound. Sessions the end of the run cuts are counted as cut.
//! And scripts/fleet-figures.py refuses a steady window that holds the start-up burst.

mod common;

use std::process::Command;

use common::{run, server};
use serde_json::{Value, json};

/// As many devices as a debug build on two cores starts in about ten seconds (about 45 a
/// second in a release build, a few times fewer here), all at once, polling every 5 s:
/// answers wait for their device while the rest start.
const DEVICES: usize = 400;

#[test]
fn a_cpu_bound_fleet_counts_answers_in_the_second_the_server_sent_them() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("record.jsonl");
    let base = server(json!({"fleet": true}), &record);
    let (report, summary) = run(
        dir.path(),
        &base,
        &record,
        json!({
            "devices": DEVICES,
            "duration_secs": 30,
            "start_spread_secs": 0,
            "account": {"srv_uri": "{server}/dm"},
            "sessions": {"poll_interval_secs": 5, "retry_base_secs": 2, "retry_max_secs": 16}
        }),
    );
    eprintln!("{summary}");
    assert_eq!(report["failed_devices"], 0, "{summary}");
    let pace = &report["pace"];
    assert_eq!(
        pace["cpu_bound"], true,
        "the run must be short of CPU for this test to mean anything\n{summary}"
    );
    assert!(summary.contains("THE FLEET WAS SHORT OF CPU"), "{summary}");
    assert_eq!(
        pace["untimed_answers"], 0,
        "every answer timed by the kernel"
    );
    let c = &report["against_server"];
    let (server_peak, ours_then) = (
        c["server_peak"][0].as_f64().unwrap(),
        c["server_peak"][1].as_f64().unwrap(),
    );
    let seconds = |v: &Value| -> Vec<u64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| {
                s.as_u64()
                    .unwrap_or_else(|| s["requests"].as_u64().unwrap())
            })
            .collect()
    };
    let (fleet, server) = (seconds(&report["seconds"]), seconds(&c["server_seconds"]));
    eprintln!("fleet:  {fleet:?}\nserver: {server:?}");
    assert!(c["seconds_compared"].as_u64().unwrap() >= 5, "{c}");
    assert!(
        c["worst_difference"].as_f64().unwrap() <= 0.10,
        "a second differs by more than 10% from the server's count\n{summary}"
    );
    assert!(
        (ours_then - server_peak).abs() <= 0.10 * server_peak,
        "the server's busiest second: {server_peak} answers, counted {ours_then}"
    );
    // Every answer the server gave in the run is one the fleet counted, or one the stop
    // cut before a device read it.
    let counted: u64 = fleet.iter().sum();
    let answered = c["server_answers"].as_u64().unwrap();
    assert!(
        counted <= answered && answered - counted <= report["sessions_cut"].as_u64().unwrap(),
        "{counted} counted, {answered} answered\n{summary}"
    );
}

/// A server that takes 20 s to answer, a run of 4 s: every device's first session is
/// still waiting at the end, and the report counts each as cut.
#[test]
fn sessions_running_at_the_end_are_counted_as_cut() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("record.jsonl");
    let base = server(
        json!({"fleet": true, "sessions": [{"packages": [{"CMD": [["END"]], "delay_ms": 20000}]}]}),
        &record,
    );
    let (report, summary) = run(
        dir.path(),
        &base,
        &record,
        json!({"devices": 5, "duration_secs": 4, "account": {"srv_uri": "{server}/dm"}}),
    );
    let t = &report["totals"];
    assert_eq!(
        (
            &t["sessions_started"],
            &t["sessions_ended"],
            &t["sessions_aborted"]
        ),
        (&json!(5), &json!(0), &json!(0)),
        "{summary}"
    );
    assert_eq!(report["sessions_cut"], 5, "{summary}");
    assert!(summary.contains("5 cut by the end of the run"), "{summary}");
}

/// scripts/fleet-figures.py on a report: its output and exit status.
fn figures(report: &Value) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.json");
    std::fs::write(&file, report.to_string()).unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/fleet-figures.py"
    );
    let out = Command::new("python3")
        .arg(script)
        .arg(&file)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// A report of `len` seconds: 10 requests a second, 60 in the start-up burst (the first 5
/// seconds), busy answers at `busy`.
fn report(len: usize, all_ready: Option<f64>, busy: std::ops::Range<usize>) -> Value {
    let seconds: Vec<Value> = (0..len)
        .map(|i| {
            let requests = if i < 5 { 60 } else { 10 };
            json!({"requests": requests, "busy": u32::from(busy.contains(&i)), "sessions_started": 1})
        })
        .collect();
    let zero = json!({"count": 0, "min": 0.0, "p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0});
    json!({
        "devices": 10, "time_scale": 60.0, "poll_interval_secs": 10, "all_ready_secs": all_ready,
        "seconds": seconds, "totals": {"in_flight": 3},
        "alerts": {"queued": 0, "acknowledged": 0, "waiting": 0, "lost": null, "duplicated": null,
                   "latency_secs": zero},
        "notifications": {"answered_secs": zero}, "per_session": {},
        "memory": {"per_device_kib": 100.0}, "recovery": null,
        "pace": {"cpu_bound": false}
    })
}

#[test]
fn fleet_figures_start_the_steady_window_after_every_device_is_ready() {
    // Ready at 4.5 s, a poll of 10: steady from 15 s, not from the burst.
    let (code, out) = figures(&report(60, Some(4.5), 40..45));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("steady, from 15 s"), "{out}");
    assert!(out.contains("10 requests per modelled minute"), "{out}");
    // Ready at 32 s: one poll later is past the first busy answer at 40 s.
    let (code, out) = figures(&report(60, Some(32.0), 40..45));
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("the steady window is empty"), "{out}");
    // Never all ready.
    let (code, out) = figures(&report(60, None, 40..45));
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("not every device got ready"), "{out}");
}
