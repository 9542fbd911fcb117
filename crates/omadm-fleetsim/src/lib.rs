//! `omadm-fleetsim`: a fleet of OMA DM 2.0 devices in one process. Each device is omadmd's
//! own code (its SQLite tree, bootstrap, scheduler, backoff and jitter, session driver and
//! HTTP client), started from the daemon library with a root directory of its own; the
//! scenario queues alerts and sends notifications; the devices' own log events are counted
//! into a report (docs/fleetsim.md).

pub mod arrival;
pub mod counting;
pub mod fleet;
pub mod metrics;
pub mod plot;
pub mod record;
pub mod report;
pub mod scenario;
mod summary;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use fleet::{Options, Shard};
pub use report::Report;
pub use scenario::Scenario;

/// What a run (or a part of the fleet, [`Shard`]) counted, before it is summed up into a
/// [`Report`]: the parts of one fleet run in several processes merge into the whole
/// ([`Counted::merge`]). Times are seconds from `started_unix`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Counted {
    /// When the run started, in seconds since the Unix epoch.
    pub started_unix: f64,
    /// Devices in the whole fleet.
    pub devices: usize,
    /// The run's length.
    pub duration_secs: f64,
    /// The scenario's `time_scale`.
    pub time_scale: f64,
    /// The devices' poll interval, in seconds.
    #[serde(default)]
    pub poll_interval_secs: u64,
    /// What the run did besides counting.
    pub ran: fleet::Ran,
    /// Per second.
    pub seconds: Vec<metrics::Second>,
    /// The devices this process ran.
    pub logs: Vec<metrics::DeviceLog>,
    /// Per kind of session.
    pub costs: BTreeMap<String, metrics::Cost>,
}

impl Counted {
    /// The report, with lost and duplicated alerts counted against `record` (the server's
    /// record, [`report::alerts_in_record`]) when given.
    pub fn report(&self, record: Option<&record::ServerRecord>) -> Report {
        let mut r = report::build(
            self.devices,
            self.duration_secs,
            &self.ran,
            self.seconds.clone(),
            &self.logs,
            self.costs.clone(),
            record.map(|r| &r.alerts),
        );
        r.time_scale = self.time_scale;
        r.poll_interval_secs = self.poll_interval_secs;
        r.against_server = record
            .filter(|rec| !rec.answered.is_empty())
            .map(|rec| record::against_server(&r.seconds, &rec.answered, self.started_unix));
        r
    }

    /// The parts of one fleet as one: seconds lined up on the earliest start (to the
    /// second), counts summed, devices put together.
    pub fn merge(parts: Vec<Counted>) -> anyhow::Result<Counted> {
        let first = parts
            .iter()
            .map(|p| p.started_unix)
            .min_by(f64::total_cmp)
            .ok_or_else(|| anyhow::anyhow!("nothing to merge"))?;
        let mut whole: Option<Counted> = None;
        // Every part ready, when the last was (None once one never was).
        let mut ready: Option<Option<f64>> = None;
        for p in parts {
            let off = (p.started_unix - first).round();
            let skip = off as usize;
            let w = whole.get_or_insert_with(|| Counted {
                started_unix: first,
                devices: p.devices,
                duration_secs: 0.0,
                time_scale: p.time_scale,
                poll_interval_secs: p.poll_interval_secs,
                ran: fleet::Ran::default(),
                seconds: Vec::new(),
                logs: Vec::new(),
                costs: BTreeMap::new(),
            });
            if w.devices != p.devices {
                anyhow::bail!(
                    "parts of different fleets: {} and {} devices",
                    w.devices,
                    p.devices
                );
            }
            w.duration_secs = w.duration_secs.max(p.duration_secs + off);
            if w.seconds.len() < skip + p.seconds.len() {
                w.seconds
                    .resize(skip + p.seconds.len(), metrics::Second::default());
            }
            for (i, s) in p.seconds.into_iter().enumerate() {
                let whole = &mut w.seconds[skip + i];
                // The parts ran side by side against one server: their sessions in flight
                // add up (each part's most in the second, so at most this many).
                let in_flight = whole.in_flight + s.in_flight;
                *whole += s;
                whole.in_flight = in_flight;
            }
            w.logs.extend(p.logs.into_iter().map(|l| l.shifted(off)));
            for (k, c) in p.costs {
                let t = w.costs.entry(k).or_default();
                t.sessions += c.sessions;
                t.requests += c.requests;
                t.bytes_sent += c.bytes_sent;
                t.bytes_received += c.bytes_received;
            }
            let r = &mut w.ran;
            let part_ready = p.ran.all_ready_secs.map(|b| b + off);
            ready = Some(match ready {
                None => part_ready,
                Some(so_far) => so_far.zip(part_ready).map(|(a, b)| a.max(b)),
            });
            r.failed.extend(p.ran.failed);
            r.alerts_queued += p.ran.alerts_queued;
            r.notifications_accepted += p.ran.notifications_accepted;
            for (k, v) in p.ran.notifications_dropped {
                *r.notifications_dropped.entry(k).or_default() += v;
            }
            r.not_ready += p.ran.not_ready;
            r.rss_kib.0 += p.ran.rss_kib.0;
            r.rss_kib.1 += p.ran.rss_kib.1;
        }
        let mut w = whole.ok_or_else(|| anyhow::anyhow!("nothing to merge"))?;
        w.ran.all_ready_secs = ready.flatten();
        w.logs.sort_by_key(|l| l.n);
        Ok(w)
    }
}

/// A server's record file (omadm-testserver `--record`): the alerts it accepted and when
/// it answered.
pub fn read_record(path: &std::path::Path) -> anyhow::Result<record::ServerRecord> {
    Ok(record::ServerRecord::parse(
        &std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!("cannot read the server's record {}: {e}", path.display())
        })?,
    ))
}

/// Runs `scenario` (this process's part of the fleet, `opts.shard`) against `opts.server`
/// and returns what was counted, to report ([`Counted::report`]) or to merge with the
/// other parts. Installs the counting layer (and, with `log`, the devices' own log lines on
/// stderr) as the subscriber of the run's threads.
pub fn count(scenario: &Scenario, opts: &Options, log: Option<&str>) -> anyhow::Result<Counted> {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    // Many daemons share this heap: trimming it after each session costs, and gives
    // nothing back that another device does not take again.
    omadmd::memory::keep_freed_memory();
    // Its clock starts where scenario time does, once the devices' files are written
    // (fleet::run).
    let recorder = metrics::Recorder::new(scenario.devices);
    let human = log.map(|level| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_filter(tracing_subscriber::EnvFilter::new(level))
    });
    let subscriber = tracing_subscriber::registry()
        .with(counting::Counting(recorder.clone()).with_filter(counting::filter()))
        .with(human);
    // The run's subscriber on this thread and on every thread of its runtime, not the
    // process's global one: a program (a test) may run several fleets in turn.
    let dispatch = tracing::Dispatch::new(subscriber);
    thread_local! {
        static GUARD: std::cell::RefCell<Option<tracing::dispatcher::DefaultGuard>> =
            const { std::cell::RefCell::new(None) };
    }
    let for_threads = dispatch.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_start(move || {
            let guard = tracing::dispatcher::set_default(&for_threads);
            GUARD.with(|g| *g.borrow_mut() = Some(guard));
        })
        .on_thread_stop(|| GUARD.with(|g| drop(g.borrow_mut().take())))
        .build()?;
    let ran = tracing::dispatcher::with_default(&dispatch, || {
        runtime.block_on(fleet::run(scenario, opts, &recorder))
    })?;
    // Device tasks still winding down belong to the runtime: dropped with it.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    let shard = opts.shard;
    Ok(Counted {
        started_unix: recorder.started_unix(),
        devices: scenario.devices,
        duration_secs: scenario.duration_secs,
        time_scale: scenario.time_scale,
        poll_interval_secs: scenario.sessions.poll_interval_secs,
        ran,
        seconds: recorder.seconds(),
        logs: recorder
            .devices()
            .into_iter()
            .filter(|d| shard.owns(d.n))
            .collect(),
        costs: recorder.costs(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics::{Cost, DeviceLog, Second};

    fn part(started: f64, devices: &[usize], requests: &[u32], ready: Option<f64>) -> Counted {
        Counted {
            started_unix: started,
            devices: 4,
            duration_secs: requests.len() as f64,
            time_scale: 10.0,
            poll_interval_secs: 20,
            ran: fleet::Ran {
                all_ready_secs: ready,
                alerts_queued: 1,
                rss_kib: (100, 300),
                ..Default::default()
            },
            seconds: requests
                .iter()
                .map(|r| Second {
                    requests: *r,
                    in_flight: *r,
                    ..Second::default()
                })
                .collect(),
            logs: devices
                .iter()
                .map(|n| DeviceLog {
                    n: *n,
                    contacts: vec![1.0],
                    taken: vec![(*n as u64, 0.5, 1.0)],
                    ..DeviceLog::default()
                })
                .collect(),
            costs: BTreeMap::from([(
                "client".to_owned(),
                Cost {
                    sessions: 2,
                    requests: 2,
                    bytes_sent: 100,
                    bytes_received: 40,
                },
            )]),
        }
    }

    /// Parts started 2 s apart line up on the earlier start: seconds add up where they
    /// overlap (sessions in flight too), the later part's times move 2 s on, devices come
    /// together in order.
    #[test]
    fn parts_of_a_fleet_merge_on_the_earliest_start() {
        let a = part(1000.2, &[0, 2], &[1, 1, 1], Some(2.0));
        let b = part(1002.1, &[1, 3], &[5, 5, 5], Some(1.5));
        let w = Counted::merge(vec![b, a]).unwrap();
        assert_eq!(w.started_unix, 1000.2);
        assert_eq!(
            w.seconds.iter().map(|s| s.requests).collect::<Vec<_>>(),
            [1, 1, 6, 5, 5]
        );
        assert_eq!(
            w.seconds[2].in_flight, 6,
            "parts side by side: their sessions in flight add up"
        );
        assert_eq!(w.duration_secs, 5.0);
        assert_eq!(w.logs.iter().map(|l| l.n).collect::<Vec<_>>(), [0, 1, 2, 3]);
        assert_eq!(w.logs[1].contacts, [3.0]);
        assert_eq!(w.logs[1].taken, [(1, 2.5, 3.0)]);
        assert_eq!(w.ran.all_ready_secs, Some(3.5));
        assert_eq!((w.ran.alerts_queued, w.ran.rss_kib), (2, (200, 600)));
        assert_eq!(w.costs["client"].sessions, 4);
        let r = w.report(None);
        assert_eq!(
            (r.devices, r.alerts.acknowledged, r.time_scale),
            (4, 4, 10.0)
        );
        assert_eq!(r.per_session["client"].bytes_sent, 50.0);

        let never = part(1000.0, &[0], &[1], None);
        let w = Counted::merge(vec![never, part(1000.0, &[1], &[1], Some(1.0))]).unwrap();
        assert_eq!(w.ran.all_ready_secs, None, "one part never got ready");
        let mut other = part(1000.0, &[0], &[1], None);
        other.devices = 5;
        assert!(Counted::merge(vec![other, part(1000.0, &[1], &[1], None)]).is_err());
        assert!(Counted::merge(Vec::new()).is_err());
    }

    #[test]
    fn shards_split_the_fleet_and_parse_as_k_of_n() {
        let s: Shard = "2/3".parse().unwrap();
        assert_eq!(s.devices(8).collect::<Vec<_>>(), [1, 4, 7]);
        assert!(s.owns(4) && !s.owns(5));
        for bad in ["0/3", "4/3", "1/0", "x/2", "3"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        assert_eq!(Shard::default().devices(3).count(), 3);
    }
}
