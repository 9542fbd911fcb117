//! Runs the fleet: gives each device a root directory of its own (configuration, factory
//! bootstrap, its SQLite tree), starts omadmd's daemon code for each in this process
//! (`omadmd::daemon::run_with`, the very code `omadmd` runs, without D-Bus), plays the
//! scenario's alerts and notifications on them through the same calls D-Bus callers
//! reach, and stops them all at the end.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use omadmd::daemon::Embedded;
use omadmd::scheduler::Request;
use omadmd::tree::{OutItem, Outgoing, Tree as _, TreeOp};
use tracing::Instrument as _;

use crate::metrics::{DEVICE_SPAN, Recorder};
use crate::scenario::{Scenario, substitute};

/// Where the devices live, and what to tell about.
#[derive(Debug, Clone)]
pub struct Options {
    /// The DM server's URL (`{server}` in the account's SrvURI).
    pub server: String,
    /// The directory that holds a root directory per device.
    pub scratch: PathBuf,
    /// The part of the fleet this process runs.
    pub shard: Shard,
}

/// A part of the fleet, for when one process cannot hold it all (each device keeps about
/// six file descriptors open: its SQLite connections and one HTTP connection): devices
/// `index`, `index + count`, `index + 2 count`, ... Device numbers, start times and the
/// waves' choice of devices stay those of the whole fleet, so the parts' reports merge into
/// the whole fleet's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    /// Which part, from 0.
    pub index: usize,
    /// How many parts.
    pub count: usize,
}

impl Default for Shard {
    fn default() -> Shard {
        Shard { index: 0, count: 1 }
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    /// `K/N`: the K-th of N parts, K from 1.
    fn from_str(s: &str) -> Result<Shard, String> {
        let (k, n) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?}: expected K/N, as 2/4"))?;
        let (k, n): (usize, usize) = (
            k.trim()
                .parse()
                .map_err(|_| format!("{s:?}: K is not a number"))?,
            n.trim()
                .parse()
                .map_err(|_| format!("{s:?}: N is not a number"))?,
        );
        if n == 0 || k == 0 || k > n {
            return Err(format!("{s:?}: K must be 1 to N"));
        }
        Ok(Shard {
            index: k - 1,
            count: n,
        })
    }
}

impl Shard {
    /// Whether device `d` is in this part.
    pub fn owns(self, d: usize) -> bool {
        d % self.count == self.index
    }

    /// This part's devices of a fleet of `n`.
    pub fn devices(self, n: usize) -> impl Iterator<Item = usize> {
        (self.index..n).step_by(self.count)
    }

    /// Device `d`'s place among this part's devices.
    fn slot(self, d: usize) -> usize {
        d / self.count
    }
}

/// A device once its daemon is ready.
#[derive(Debug, Clone)]
struct Ready {
    embedded: Embedded,
    policy: omadmd::notify::Policy,
}

/// What the run did, besides what the recorder counted.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Ran {
    /// Seconds until every device's daemon was ready.
    pub all_ready_secs: Option<f64>,
    /// Devices whose daemon stopped with an error, with the first few errors.
    pub failed: Vec<(usize, String)>,
    /// Alerts queued.
    pub alerts_queued: u64,
    /// Notifications the devices accepted.
    pub notifications_accepted: u64,
    /// Notifications the devices dropped (the message of each kind, counted).
    pub notifications_dropped: std::collections::BTreeMap<String, u64>,
    /// Actions that came before their device was ready (skipped).
    pub not_ready: u64,
    /// Resident memory before the devices started and when all were ready, in KiB.
    pub rss_kib: (u64, u64),
}

/// Writes device `n`'s configuration and factory bootstrap below `root`.
pub fn provision(root: &Path, scenario: &Scenario, server: &str, n: usize) -> anyhow::Result<()> {
    let a = &scenario.account;
    let etc = root.join("etc/omadmd");
    std::fs::create_dir_all(etc.join("bootstrap.d"))?;
    std::fs::create_dir_all(etc.join("config.d"))?;
    let s = scenario.sessions;
    let dev_id = substitute(&a.dev_id, n);
    let main = format!(
        "# omadm-fleetsim device {n}\n\
         [devinfo]\ndev-id = {dev_id:?}\ndev-type = \"fleetsim\"\n\
         [dbus]\nenabled = false\n\
         [notifications]\n# Notifications come in-process.\nlisten = \"\"\n\
         [sessions]\npoll-interval-secs = {}\nretry-base-secs = {}\nretry-max-secs = {}\n\
         [http]\nallow-insecure-auth = {}\n",
        s.poll_interval_secs,
        s.retry_base_secs,
        s.retry_max_secs,
        a.http_user.is_some() && server.starts_with("http:"),
    );
    std::fs::write(etc.join("omadmd.toml"), main)?;
    if let Some(extra) = &scenario.config {
        std::fs::write(etc.join("config.d/50-scenario.toml"), substitute(extra, n))?;
    }
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(substitute(s, n));
    let mut acc = serde_json::json!({
        "SrvID": substitute(&a.server_id, n),
        "SrvURI": substitute(&a.srv_uri, n).replace("{server}", server),
        "Name": "omadm-fleetsim",
        "Perm": {"all": {"MOID": "*"}},
        "Auth": {"Noti": {
            "Type": 0,
            "Data": b64(&a.notification_auth_data),
            "Secret": b64(&a.notification_secret),
        }},
    });
    if let (Some(user), Some(password)) = (&a.http_user, &a.http_password) {
        acc["Ext"] = serde_json::json!({"HttpAuth": {
            "UserName": substitute(user, n),
            "Secret": substitute(password, n),
        }});
    }
    let bootstrap = serde_json::json!([{
        "ClientURI": "urn:oma:mo:oma-dm-dmacc:1.2//",
        "MOData": {"fleet": acc},
    }]);
    let file = etc.join("bootstrap.d/10-fleet.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&bootstrap)?)?;
    // Bootstrap files hold credentials: owner-only, as on a real device.
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
    Ok(())
}

/// Resident memory of this process, in KiB.
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Runs the scenario to its end. The caller has installed a subscriber with
/// [`crate::metrics::Counting`] on `recorder`.
pub async fn run(
    scenario: &Scenario,
    opts: &Options,
    recorder: &Arc<Recorder>,
) -> anyhow::Result<Ran> {
    let n = scenario.devices;
    let shard = opts.shard;
    // Every device's files first: writing them is not what is measured.
    for d in shard.devices(n) {
        provision(
            &opts.scratch.join(format!("dev-{d}")),
            scenario,
            &opts.server,
            d,
        )
        .with_context(|| format!("cannot provision device {d} in {}", opts.scratch.display()))?;
    }
    let mut ran = Ran {
        rss_kib: (rss_kib(), 0),
        ..Ran::default()
    };
    let ready: Arc<Vec<Mutex<Option<Ready>>>> =
        Arc::new(shard.devices(n).map(|_| Mutex::new(None)).collect());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let failed = Arc::new(Mutex::new(Vec::new()));
    // Scenario time 0, and the report's: the files above took their time before it.
    let start = tokio::time::Instant::from_std(recorder.begin());
    // The daemon's futures are not `Send` (a session keeps per-session caches across its
    // awaits): each device lives on one thread, as in omadmd, and the fleet is spread over
    // one thread per core, each a current-thread runtime.
    let threads = std::thread::available_parallelism().map_or(2, |c| c.get());
    let dispatch = tracing::dispatcher::get_default(|d| d.clone());
    let mut queues = Vec::with_capacity(threads);
    let mut workers = Vec::with_capacity(threads);
    for t in 0..threads {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Job>();
        queues.push(tx);
        let dispatch = dispatch.clone();
        workers.push(
            std::thread::Builder::new()
                .name(format!("fleet-{t}"))
                .spawn(move || worker(rx, &dispatch))
                .context("cannot start a fleet thread")?,
        );
    }
    for d in shard.devices(n) {
        let due = scenario.start_spread_secs * d as f64 / n as f64;
        let job = Job {
            d,
            slot: shard.slot(d),
            root: opts.scratch.join(format!("dev-{d}")),
            due,
            at: start + Duration::from_secs_f64(due),
            ready: ready.clone(),
            failed: failed.clone(),
            stop: stop_rx.clone(),
            recorder: recorder.clone(),
        };
        // A worker that is gone has panicked and said so; its devices are missing.
        let _ = queues[shard.slot(d) % threads].send(job);
    }
    drop(queues);

    let mut notification_id = vec![0u16; n];
    for (at, d, action) in actions(scenario, shard) {
        watch_until(start + Duration::from_secs_f64(at), start, &ready, &mut ran).await;
        let Some(dev) = ready[shard.slot(d)]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        else {
            ran.not_ready += 1;
            continue;
        };
        let start_within = match action {
            Action::Alert(number) => {
                queue_alert(
                    &dev,
                    &substitute(&scenario.account.server_id, d),
                    d,
                    number,
                    recorder,
                )?;
                ran.alerts_queued += 1;
                continue;
            }
            Action::Notify { start_within } => start_within,
        };
        notification_id[d] = notification_id[d].wrapping_add(1).max(1);
        match notify(&dev, scenario, d, notification_id[d], start_within) {
            Ok(()) => {
                recorder.notified(d);
                ran.notifications_accepted += 1
            }
            Err(why) => *ran.notifications_dropped.entry(why).or_default() += 1,
        }
    }
    watch_until(
        start + Duration::from_secs_f64(scenario.duration_secs),
        start,
        &ready,
        &mut ran,
    )
    .await;
    if ran.rss_kib.1 == 0 {
        ran.rss_kib.1 = rss_kib();
    }
    let _ = stop_tx.send(true);
    let joined = tokio::task::spawn_blocking(move || {
        for w in workers {
            // A worker that panicked has told its panic on stderr.
            let _ = w.join();
        }
    });
    if tokio::time::timeout(Duration::from_secs(120), joined)
        .await
        .is_err()
    {
        tracing::error!("devices still running two minutes after the stop; leaving them");
    }
    ran.failed = std::mem::take(&mut *failed.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(ran)
}

/// Something the scenario does to a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    /// Queue a Generic Alert with this number, unique in the whole fleet.
    Alert(u64),
    /// Send a notification, with this START-WITHIN.
    Notify {
        /// Seconds, when the notification carries the option.
        start_within: Option<u32>,
    },
}

/// The scenario's actions on `shard`'s devices, in time order, as (when, device, what).
/// Alerts are numbered across the whole fleet, so the parts of one fleet run in several
/// processes never give two alerts the same number.
fn actions(scenario: &Scenario, shard: Shard) -> Vec<(f64, usize, Action)> {
    let n = scenario.devices;
    let mut all: Vec<(f64, usize, Option<Option<u32>>)> = Vec::new();
    for w in &scenario.alerts {
        all.extend(w.schedule(n).into_iter().map(|(d, at)| (at, d, None)));
    }
    for w in &scenario.notifications {
        let within = Some(w.start_within_secs);
        all.extend(w.schedule(n).into_iter().map(|(d, at)| (at, d, within)));
    }
    // Stable: every part sees the same order, so the same numbers.
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut number = 0u64;
    all.into_iter()
        .filter_map(|(at, d, what)| {
            let action = match what {
                None => {
                    number += 1;
                    Action::Alert(number)
                }
                Some(start_within) => Action::Notify { start_within },
            };
            shard.owns(d).then_some((at, d, action))
        })
        .collect()
}

/// A device for a worker thread to run.
struct Job {
    d: usize,
    /// Its place in `ready`.
    slot: usize,
    root: PathBuf,
    /// When it is due to start: seconds of scenario time, and the moment.
    due: f64,
    at: tokio::time::Instant,
    ready: Arc<Vec<Mutex<Option<Ready>>>>,
    failed: Arc<Mutex<Vec<(usize, String)>>>,
    stop: tokio::sync::watch::Receiver<bool>,
    /// Told when the device is ready, against when it was due.
    recorder: Arc<Recorder>,
}

/// A fleet thread: runs the devices it is given, each from its start time until the stop,
/// with the run's subscriber.
fn worker(mut jobs: tokio::sync::mpsc::UnboundedReceiver<Job>, dispatch: &tracing::Dispatch) {
    let _guard = tracing::dispatcher::set_default(dispatch);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot start a fleet thread's runtime");
            return;
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async {
        let mut running = Vec::new();
        while let Some(job) = jobs.recv().await {
            let span = tracing::info_span!(DEVICE_SPAN, n = job.d as u64);
            running.push(tokio::task::spawn_local(
                async move {
                    let Job {
                        d,
                        slot,
                        root,
                        due,
                        at,
                        ready,
                        failed,
                        mut stop,
                        recorder,
                    } = job;
                    tokio::time::sleep_until(at).await;
                    if *stop.borrow() {
                        return;
                    }
                    let on_ready = || recorder.ready(d, due);
                    if let Err(e) = device(&ready[slot], root, &mut stop, on_ready).await {
                        failed
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push((d, format!("{e:#}")));
                    }
                }
                .instrument(span),
            ));
        }
        for r in running {
            let _ = r.await;
        }
    });
}

/// Waits until `until`, noting (every 100 ms) when every device first was ready and the
/// memory then.
async fn watch_until(
    until: tokio::time::Instant,
    start: tokio::time::Instant,
    ready: &[Mutex<Option<Ready>>],
    ran: &mut Ran,
) {
    loop {
        let now = tokio::time::Instant::now();
        if ran.all_ready_secs.is_none() && all_ready(ready) {
            ran.all_ready_secs = Some(now.duration_since(start).as_secs_f64());
            ran.rss_kib.1 = rss_kib();
        }
        if now >= until {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100).min(until - now)).await;
    }
}

fn all_ready(ready: &[Mutex<Option<Ready>>]) -> bool {
    ready
        .iter()
        .all(|r| r.lock().unwrap_or_else(|p| p.into_inner()).is_some())
}

/// One device: omadmd's daemon on its root until the run stops.
async fn device(
    ready: &Mutex<Option<Ready>>,
    root: PathBuf,
    stop: &mut tokio::sync::watch::Receiver<bool>,
    on_ready: impl FnOnce(),
) -> anyhow::Result<()> {
    let sources = omadmd::config::Sources {
        root: Some(root),
        ..Default::default()
    };
    let settings = omadmd::config::load(&sources)?;
    let policy = omadmd::notify::Policy {
        max_age_secs: settings.notifications.max_age_secs,
        remember_secs: i64::try_from(settings.notifications.remember_secs).unwrap_or(i64::MAX),
        start_within_secs: settings.notifications.start_within_secs,
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    let shutdown = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    let daemon = omadmd::daemon::run_with(sources, settings, shutdown, None, Some(tx));
    let note = async {
        if let Ok(embedded) = rx.await {
            *ready.lock().unwrap_or_else(|p| p.into_inner()) = Some(Ready { embedded, policy });
            on_ready();
        }
    };
    let (result, ()) = tokio::join!(daemon, note);
    result
}

/// Queues a Generic Alert on a device and asks for a session, as `Manager.QueueAlert` does
/// for a local service.
fn queue_alert(
    dev: &Ready,
    server_id: &str,
    d: usize,
    number: u64,
    recorder: &Recorder,
) -> anyhow::Result<()> {
    let p = &dev.embedded.prepared;
    let alert = serde_json::json!({
        "AlertType": "urn:x-omadm-fleetsim:alert",
        "DataType": "application/json",
        "Data": {"fleet_alert": number, "device": d},
    });
    p.store.apply(&[TreeOp::Enqueue(Outgoing {
        id: 0,
        server_id: server_id.to_owned(),
        item: OutItem::Alert { alert, to: None },
    })])?;
    recorder.queued(d, number);
    dev.embedded
        .scheduler
        .request(Some(server_id), Request::CLIENT);
    Ok(())
}

/// Sends a device a signed DM Notification, in-process: checked by the device's own gate
/// (signature, age, duplicate ID, spacing) as one from UDP or `Manager.InjectNotification`
/// is, and its session asked for when accepted. Returns why it was dropped otherwise.
fn notify(
    dev: &Ready,
    scenario: &Scenario,
    d: usize,
    id: u16,
    start_within_secs: Option<u32>,
) -> Result<(), String> {
    let a = &scenario.account;
    let server_id = substitute(&a.server_id, d);
    let package = omadmd::notify::compose(&omadmd::notify::Compose {
        server_id: server_id.clone(),
        notification_id: Some(id),
        secret: Some(substitute(&a.notification_secret, d).into_bytes()),
        auth_data: substitute(&a.notification_auth_data, d).into_bytes(),
        start_within_secs,
        ..Default::default()
    })
    .map_err(|e| e.to_string())?;
    let p = &dev.embedded.prepared;
    let accepted = p
        .gate
        .admit(&p.store, &package, dev.policy)
        .map_err(|e| e.to_string())?;
    dev.embedded.scheduler.request_within(
        &accepted.server_id,
        Request::notified(accepted.notification_id, accepted.req_mos),
        accepted.start_within(dev.policy.start_within_secs),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parts of a fleet number its alerts as the whole fleet does: no number twice.
    #[test]
    fn alerts_are_numbered_across_the_whole_fleet() {
        let scenario: Scenario = serde_json::from_value(serde_json::json!({
            "devices": 10, "duration_secs": 10,
            "alerts": [{"at_secs": 1, "share": 1.0, "over_secs": 5}, {"at_secs": 2, "share": 0.5}],
            "notifications": [{"at_secs": 1.5, "start_within_secs": 3}]
        }))
        .unwrap();
        let numbers = |shard| {
            actions(&scenario, shard)
                .into_iter()
                .filter_map(|(_, _, a)| match a {
                    Action::Alert(n) => Some(n),
                    Action::Notify { .. } => None,
                })
                .collect::<Vec<_>>()
        };
        let whole = numbers(Shard::default());
        assert_eq!(whole, (1..=15).collect::<Vec<_>>());
        let mut parts: Vec<u64> = (0..3)
            .flat_map(|index| numbers(Shard { index, count: 3 }))
            .collect();
        parts.sort_unstable();
        assert_eq!(parts, whole);
        let notified = actions(&scenario, Shard { index: 1, count: 3 })
            .into_iter()
            .filter(|(_, d, a)| {
                *a == Action::Notify {
                    start_within: Some(3),
                } && Shard { index: 1, count: 3 }.owns(*d)
            })
            .count();
        assert_eq!(notified, 3, "devices 1, 4, 7");
    }
}
