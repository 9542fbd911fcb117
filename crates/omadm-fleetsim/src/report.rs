//! The run's report: the per-second series, session outcomes, alert delivery latencies,
//! devices out of contact, memory, and (given the server's record) lost and duplicated
//! alerts; as JSON for scripts and as text for a person.

use std::collections::HashMap;

use serde::Serialize;

use crate::fleet::Ran;
use crate::metrics::{Cost, DeviceLog, Second};
use crate::record::AgainstServer;

/// Everything a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Devices in the fleet.
    pub devices: usize,
    /// The run's length, in seconds.
    pub duration_secs: f64,
    /// Seconds of the modelled fleet one second of the run stands for (the scenario's
    /// `time_scale`; 1: real time). Every time here is in seconds of the run.
    pub time_scale: f64,
    /// Seconds until every device's daemon was ready (none: some never were).
    pub all_ready_secs: Option<f64>,
    /// Devices whose daemon stopped with an error: how many, and the first few errors.
    pub failed_devices: usize,
    /// Up to five of those errors.
    pub failures: Vec<String>,
    /// The devices' poll interval (the scenario's), in seconds (0: no polling).
    pub poll_interval_secs: u64,
    /// Totals over the run.
    pub totals: Second,
    /// Sessions still running when the run stopped: started, neither ended nor aborted
    /// (the stop cut them, as a stop of the daemon does).
    pub sessions_cut: u64,
    /// How far behind their schedule the devices ran, and whether the fleet was short of
    /// CPU.
    pub pace: Pace,
    /// Per second, against the server's own record of when it answered (none without a
    /// record that has the times).
    pub against_server: Option<AgainstServer>,
    /// The same, per second of the run.
    pub seconds: Vec<Second>,
    /// Alerts: queued, taken by a server, still waiting, and latencies.
    pub alerts: Alerts,
    /// Notifications accepted and dropped (by reason).
    pub notifications: Notifications,
    /// Devices that never ended a session normally.
    pub devices_never_in_contact: usize,
    /// Per device, the longest time between two sessions that ended normally (or from the
    /// last one to the end of the run), in seconds: how long the device was out of reach
    /// of its server. Across devices.
    pub longest_silence_secs: Percentiles,
    /// After the last second in which a server answered busy (503 or 429): how long each
    /// device took to end a session normally again (none when no answer was busy).
    pub recovery: Option<Recovery>,
    /// Resident memory: before the devices, with all ready, per device.
    pub memory: Memory,
    /// What a server spent on each kind of session (by trigger: `bootstrap`, `client`,
    /// `notification`), per session that ended normally.
    pub per_session: std::collections::BTreeMap<String, PerSession>,
}

/// A device ready more than this many seconds after it was due to start started late.
pub const LATE_START_SECS: f64 = 1.0;

/// How far behind their schedule the devices ran. Answers are counted in the second they
/// arrived whatever the pace; but a fleet short of CPU also sends later and more slowly
/// than real devices would, so its load is not that of the fleet it stands for.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Pace {
    /// Devices ready more than [`LATE_START_SECS`] after they were due to start.
    pub late_starts: usize,
    /// The latest of them, in seconds after it was due.
    pub start_late_max_secs: f64,
    /// Answers that waited more than 0.1 s for their device to get to them.
    pub late_answers: u64,
    /// The longest an answer waited, in seconds.
    pub answer_wait_max_secs: f64,
    /// Answers the kernel could not time (counted in the second a device got to them).
    pub untimed_answers: u64,
    /// The fleet was short of CPU: a device started late, or more than 1% of the answers
    /// were late.
    pub cpu_bound: bool,
}

impl Pace {
    fn of(totals: &Second, logs: &[DeviceLog]) -> Pace {
        let late: Vec<f64> = logs
            .iter()
            .filter_map(|d| d.ready_secs.map(|r| r - d.scheduled_secs))
            .filter(|late| *late > LATE_START_SECS)
            .collect();
        let late_answers = u64::from(totals.late);
        Pace {
            late_starts: late.len(),
            start_late_max_secs: late.iter().copied().fold(0.0, f64::max),
            late_answers,
            answer_wait_max_secs: f64::from(totals.waited_ms_max) / 1000.0,
            untimed_answers: u64::from(totals.untimed),
            cpu_bound: !late.is_empty() || late_answers * 100 > u64::from(totals.requests),
        }
    }
}

/// The cost of one session of a kind, on average.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct PerSession {
    /// Sessions of the kind that ended normally.
    pub sessions: u64,
    /// HTTP requests the server answered, per session.
    pub requests: f64,
    /// Request bodies, bytes per session.
    pub bytes_sent: f64,
    /// Answer bodies, bytes per session.
    pub bytes_received: f64,
}

impl From<Cost> for PerSession {
    fn from(c: Cost) -> PerSession {
        let n = c.sessions.max(1) as f64;
        PerSession {
            sessions: c.sessions,
            requests: c.requests as f64 / n,
            bytes_sent: c.bytes_sent as f64 / n,
            bytes_received: c.bytes_received as f64 / n,
        }
    }
}

/// Queued Generic Alerts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Alerts {
    /// Queued on devices.
    pub queued: u64,
    /// Taken by a server (acknowledged: the device removed them from its outbox).
    pub acknowledged: u64,
    /// Still queued at the end.
    pub waiting: u64,
    /// Queued to acknowledged, in seconds.
    pub latency_secs: Percentiles,
    /// From the server's record: acknowledged alerts it has no record of (none without a
    /// record).
    pub lost: Option<u64>,
    /// From the server's record: alerts it received more than once.
    pub duplicated: Option<u64>,
}

/// Notifications sent in-process.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Notifications {
    /// Accepted by the device.
    pub accepted: u64,
    /// Dropped by the device's checks, by reason.
    pub dropped: std::collections::BTreeMap<String, u64>,
    /// Sent before the device was ready (not sent).
    pub not_ready: u64,
    /// From a notification to the end of the session that answered it, in seconds.
    pub answered_secs: Percentiles,
}

/// A distribution's landmarks.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Percentiles {
    /// How many values.
    pub count: usize,
    /// Smallest.
    pub min: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Percentiles {
    /// Of `values` (any order).
    pub fn of(mut values: Vec<f64>) -> Percentiles {
        if values.is_empty() {
            return Percentiles::default();
        }
        values.sort_by(f64::total_cmp);
        let at = |p: f64| values[((values.len() - 1) as f64 * p).round() as usize];
        Percentiles {
            count: values.len(),
            min: at(0.0),
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            max: at(1.0),
        }
    }
}

/// How the fleet came back after the server was busy or down.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Recovery {
    /// The end of the last second with a busy answer, in seconds from the start.
    pub busy_until_secs: f64,
    /// Per device, from then to its first session that ended normally, in seconds.
    pub back_secs: Percentiles,
    /// Devices with no such session before the end of the run.
    pub not_back: usize,
}

/// The [`Recovery`] after the last busy second of `seconds`.
fn recovery(seconds: &[Second], logs: &[DeviceLog]) -> Option<Recovery> {
    let last = seconds.iter().rposition(|s| s.busy > 0)?;
    let until = (last + 1) as f64;
    let back: Vec<f64> = logs
        .iter()
        .filter_map(|d| d.contacts.iter().find(|c| **c >= until).map(|c| c - until))
        .collect();
    Some(Recovery {
        busy_until_secs: until,
        not_back: logs.len() - back.len(),
        back_secs: Percentiles::of(back),
    })
}

/// Resident memory.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Memory {
    /// Before any device started, in KiB.
    pub before_kib: u64,
    /// With every device ready, in KiB.
    pub ready_kib: u64,
    /// (ready - before) / devices, in KiB.
    pub per_device_kib: f64,
}

/// Puts the report together.
pub fn build(
    devices: usize,
    duration_secs: f64,
    ran: &Ran,
    seconds: Vec<Second>,
    logs: &[DeviceLog],
    costs: std::collections::BTreeMap<String, Cost>,
    record: Option<&HashMap<u64, u32>>,
) -> Report {
    // Every second of the run, the quiet ones at its end too (nothing was counted there).
    let mut seconds = seconds;
    let whole = duration_secs.ceil() as usize;
    if seconds.len() < whole {
        seconds.resize(whole, Second::default());
    }
    let mut totals = Second::default();
    for s in &seconds {
        totals += *s;
    }
    let sessions_cut = u64::from(totals.sessions_started)
        .saturating_sub(u64::from(totals.sessions_ended) + u64::from(totals.sessions_aborted));
    let taken: Vec<&(u64, f64, f64)> = logs.iter().flat_map(|d| d.taken.iter()).collect();
    let latencies = taken.iter().map(|(_, q, t)| t - q).collect();
    let (lost, duplicated) = match record {
        Some(seen) => (
            Some(taken.iter().filter(|(n, ..)| !seen.contains_key(n)).count() as u64),
            Some(seen.values().filter(|c| **c > 1).count() as u64),
        ),
        None => (None, None),
    };
    let (before, ready) = ran.rss_kib;
    let recovered = recovery(&seconds, logs);
    Report {
        recovery: recovered,
        devices,
        duration_secs,
        time_scale: 1.0,
        poll_interval_secs: 0,
        sessions_cut,
        pace: Pace::of(&totals, logs),
        against_server: None,
        all_ready_secs: ran.all_ready_secs,
        failed_devices: ran.failed.len(),
        failures: ran
            .failed
            .iter()
            .take(5)
            .map(|(d, e)| format!("device {d}: {e}"))
            .collect(),
        totals,
        seconds,
        alerts: Alerts {
            queued: ran.alerts_queued,
            acknowledged: taken.len() as u64,
            waiting: logs.iter().map(|d| d.queued.len() as u64).sum(),
            latency_secs: Percentiles::of(latencies),
            lost,
            duplicated,
        },
        notifications: Notifications {
            accepted: ran.notifications_accepted,
            dropped: ran.notifications_dropped.clone(),
            not_ready: ran.not_ready,
            answered_secs: Percentiles::of(
                logs.iter()
                    .flat_map(|d| d.answered.iter().copied())
                    .collect(),
            ),
        },
        per_session: costs.into_iter().map(|(k, c)| (k, c.into())).collect(),
        devices_never_in_contact: logs.iter().filter(|d| d.contacts.is_empty()).count(),
        longest_silence_secs: Percentiles::of(
            logs.iter()
                .filter(|d| !d.contacts.is_empty())
                .map(|d| longest_silence(&d.contacts, duration_secs))
                .collect(),
        ),
        memory: Memory {
            before_kib: before,
            ready_kib: ready,
            per_device_kib: ready.saturating_sub(before) as f64 / devices.max(1) as f64,
        },
    }
}

/// The longest gap between `contacts` (in order), or from the last to `end`.
fn longest_silence(contacts: &[f64], end: f64) -> f64 {
    contacts
        .windows(2)
        .map(|w| w[1] - w[0])
        .chain(contacts.last().map(|l| (end - l).max(0.0)))
        .fold(0.0, f64::max)
}

impl Report {
    /// The highest request rate in whole seconds `from..to` of the run.
    pub fn peak_requests(&self, from: usize, to: usize) -> u32 {
        self.seconds
            .iter()
            .take(to)
            .skip(from)
            .map(|s| s.requests)
            .max()
            .unwrap_or(0)
    }

    /// The mean request rate over whole seconds `from..to` of the run.
    pub fn mean_requests(&self, from: usize, to: usize) -> f64 {
        let window: Vec<u32> = self
            .seconds
            .iter()
            .take(to)
            .skip(from)
            .map(|s| s.requests)
            .collect();
        if window.is_empty() {
            return 0.0;
        }
        f64::from(window.iter().sum::<u32>()) / window.len() as f64
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A report of a run with these seconds and nothing else.
    pub(crate) fn report_of(seconds: Vec<Second>) -> Report {
        build(
            1,
            seconds.len() as f64,
            &Ran::default(),
            seconds,
            &[],
            Default::default(),
            None,
        )
    }

    #[test]
    fn percentiles_pick_the_nearest_rank() {
        let p = Percentiles::of((1..=100).map(f64::from).collect());
        assert_eq!(
            (p.count, p.min, p.p50, p.p90, p.p99, p.max),
            (100, 1.0, 51.0, 90.0, 99.0, 100.0)
        );
        assert_eq!(Percentiles::of(Vec::new()), Percentiles::default());
    }

    /// Started, neither ended nor aborted: cut by the stop. Devices ready late, or answers
    /// that waited, make the run CPU-bound; the summary says so.
    #[test]
    fn cut_sessions_and_a_fleet_short_of_cpu_are_reported() {
        let seconds = vec![
            Second {
                sessions_started: 5,
                sessions_ended: 2,
                requests: 100,
                late: 1,
                waited_ms_max: 300,
                ..Second::default()
            },
            Second {
                sessions_aborted: 1,
                ..Second::default()
            },
        ];
        let r = report_of(seconds.clone());
        assert_eq!(r.sessions_cut, 2);
        assert!(
            r.summary().contains("2 cut by the end of the run"),
            "{}",
            r.summary()
        );
        assert!(!r.pace.cpu_bound, "1 late answer in 100 is not CPU-bound");
        assert!(!r.summary().contains("SHORT OF CPU"));

        let mut busy = seconds.clone();
        busy[0].late = 2;
        let r = report_of(busy);
        assert!(r.pace.cpu_bound);
        assert_eq!((r.pace.late_answers, r.pace.answer_wait_max_secs), (2, 0.3));
        assert!(
            r.summary().contains("THE FLEET WAS SHORT OF CPU"),
            "{}",
            r.summary()
        );

        let device = |scheduled_secs, ready_secs| DeviceLog {
            scheduled_secs,
            ready_secs,
            ..DeviceLog::default()
        };
        let logs = [
            device(0.0, Some(0.4)),
            device(2.0, Some(4.5)),
            device(1.0, Some(2.5)),
            device(0.0, None),
        ];
        let r = build(
            4,
            2.0,
            &Ran::default(),
            seconds,
            &logs,
            Default::default(),
            None,
        );
        assert_eq!((r.pace.late_starts, r.pace.start_late_max_secs), (2, 2.5));
        assert!(r.pace.cpu_bound);
        assert!(
            r.summary()
                .contains("2 devices were ready more than 1 s after they were due (up to 2.5 s)"),
            "{}",
            r.summary()
        );
    }

    #[test]
    fn lost_and_duplicated_come_from_the_record() {
        let log = DeviceLog {
            taken: vec![(1, 0.0, 2.0), (2, 1.0, 5.0)],
            contacts: vec![2.0],
            ..DeviceLog::default()
        };
        let seen = HashMap::from([(1, 2)]);
        let r = build(
            2,
            10.0,
            &Ran::default(),
            vec![Second::default()],
            &[log, DeviceLog::default()],
            Default::default(),
            Some(&seen),
        );
        assert_eq!((r.alerts.lost, r.alerts.duplicated), (Some(1), Some(1)));
        assert_eq!(r.alerts.latency_secs.max, 4.0);
        assert_eq!(r.devices_never_in_contact, 1);
        assert_eq!(
            r.seconds.len(),
            10,
            "quiet seconds at the end are seconds of the run"
        );
        // Contact at 2 s, then silence to the end at 10 s.
        assert_eq!(r.longest_silence_secs.max, 8.0);
        assert_eq!(longest_silence(&[1.0, 5.0, 6.0], 7.0), 4.0);
        assert!(
            r.recovery.is_none(),
            "no busy answer, nothing to recover from"
        );
    }

    #[test]
    fn recovery_counts_from_the_last_busy_second() {
        let busy = Second {
            busy: 1,
            ..Second::default()
        };
        let seconds = [
            Second::default(),
            busy,
            Second::default(),
            busy,
            Second::default(),
        ];
        let device = |contacts: Vec<f64>| DeviceLog {
            contacts,
            ..DeviceLog::default()
        };
        let logs = [
            device(vec![0.5, 4.5]),
            device(vec![0.2, 7.0]),
            device(vec![0.1]),
        ];
        let r = recovery(&seconds, &logs).unwrap();
        assert_eq!(r.busy_until_secs, 4.0);
        assert_eq!(
            (r.back_secs.count, r.back_secs.max, r.not_back),
            (2, 3.0, 1)
        );
    }
}
