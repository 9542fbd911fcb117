//! What the fleet did, as the devices' own log events tell it ([`crate::counting`] feeds
//! them in): per second of the run, the HTTP requests servers answered (by status, each in
//! the second it arrived), the sessions started, ended and aborted, and the `Retry-After`s
//! obeyed; per device, when it was ready, when it was last in contact and which of its
//! queued alerts a server took; and how far behind the devices ran.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::arrival::Kernel;

/// The name of the span each device runs in; its field `n` is the device's number.
pub const DEVICE_SPAN: &str = "device";

/// One second of the run, fleet-wide.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Second {
    /// HTTP requests a server answered (DM packages and repository requests), counted in
    /// the second the answer arrived.
    pub requests: u32,
    /// ... with a 2xx status.
    pub ok: u32,
    /// ... with 503 or 429 (the server is busy or down).
    pub busy: u32,
    /// ... with any other status.
    pub other: u32,
    /// Sessions started.
    pub sessions_started: u32,
    /// Sessions that ended normally (the server sent END).
    pub sessions_ended: u32,
    /// Sessions aborted (no answer, a refusal, a bad package).
    pub sessions_aborted: u32,
    /// Answers that asked the device to wait (`Retry-After`).
    pub retry_after: u32,
    /// Request bodies sent, bytes.
    pub bytes_sent: u64,
    /// Answer bodies received, bytes (as their Content-Length said).
    pub bytes_received: u64,
    /// The most sessions in flight at once during the second (summed, the most in any
    /// second).
    pub in_flight: u32,
    /// Answers that waited more than [`LATE_ANSWER`] for their device to get to them.
    pub late: u32,
    /// The longest an answer arriving in the second waited, in milliseconds (summed, the
    /// longest in any second).
    pub waited_ms_max: u32,
    /// Answers the kernel could not time, counted in the second a device got to them.
    pub untimed: u32,
}

impl DeviceLog {
    /// The same story told `secs` later (a part of the fleet that started earlier).
    pub fn shifted(mut self, secs: f64) -> DeviceLog {
        for (_, at) in &mut self.queued {
            *at += secs;
        }
        for (_, q, t) in &mut self.taken {
            *q += secs;
            *t += secs;
        }
        for c in self.contacts.iter_mut().chain(&mut self.notified) {
            *c += secs;
        }
        self.scheduled_secs += secs;
        if let Some(r) = &mut self.ready_secs {
            *r += secs;
        }
        self
    }
}

impl std::ops::AddAssign for Second {
    fn add_assign(&mut self, s: Second) {
        self.bytes_sent += s.bytes_sent;
        self.bytes_received += s.bytes_received;
        self.in_flight = self.in_flight.max(s.in_flight);
        self.requests += s.requests;
        self.ok += s.ok;
        self.busy += s.busy;
        self.other += s.other;
        self.sessions_started += s.sessions_started;
        self.sessions_ended += s.sessions_ended;
        self.sessions_aborted += s.sessions_aborted;
        self.retry_after += s.retry_after;
        self.late += s.late;
        self.waited_ms_max = self.waited_ms_max.max(s.waited_ms_max);
        self.untimed += s.untimed;
    }
}

/// One device's story (times in seconds from the start of the run).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DeviceLog {
    /// When its alerts were queued (seconds), the oldest first, not yet taken by a server.
    pub queued: VecDeque<(u64, f64)>,
    /// Alerts a server took: (alert number, queued at, taken at).
    pub taken: Vec<(u64, f64, f64)>,
    /// When its sessions ended normally.
    pub contacts: Vec<f64>,
    /// Sessions aborted.
    pub aborted: u32,
    /// Its number in the fleet.
    pub n: usize,
    /// When notifications were sent to it that no session has answered yet.
    pub notified: Vec<f64>,
    /// Notified to the end of the session that answered, in seconds.
    pub answered: Vec<f64>,
    /// When it was due to start, in seconds.
    #[serde(default)]
    pub scheduled_secs: f64,
    /// When its daemon was ready, in seconds (none: never).
    #[serde(default)]
    pub ready_secs: Option<f64>,
    /// The session running now: its kind and what it has cost so far.
    #[serde(skip)]
    pub running: Option<(String, Cost)>,
}

/// What sessions of one kind cost a server.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Cost {
    /// Sessions (ended normally) counted.
    pub sessions: u64,
    /// HTTP requests the server answered in them.
    pub requests: u64,
    /// Request bodies, bytes.
    pub bytes_sent: u64,
    /// Answer bodies, bytes.
    pub bytes_received: u64,
}

#[derive(Debug, Default)]
struct Inner {
    seconds: Vec<Second>,
    devices: Vec<DeviceLog>,
    /// Sessions running now, fleet-wide.
    in_flight: u32,
    /// Per kind of session (its trigger: `bootstrap`, `client`, `notification`), what the
    /// sessions that ended normally cost.
    costs: std::collections::BTreeMap<String, Cost>,
}

/// An answer a device got to more than this long after it arrived was late: its device
/// was waiting for the CPU.
pub const LATE_ANSWER: Duration = Duration::from_millis(100);

/// Where the run's clock starts: the moment scenario time 0 is (after the devices'
/// files are written, before the first starts).
#[derive(Debug, Clone, Copy)]
struct Clock {
    start: Instant,
    unix: f64,
}

/// The counts, shared by the layer (which writes them) and the run (which reads them).
#[derive(Debug)]
pub struct Recorder {
    clock: OnceLock<Clock>,
    inner: Mutex<Inner>,
}

/// The fields of a device's event the recorder reads (filled by [`crate::counting`]).
#[derive(Debug, Default)]
pub struct Fields {
    /// The event's message.
    pub message: String,
    /// An answer's HTTP status.
    pub status: Option<u64>,
    /// Alerts a session delivered.
    pub alerts_delivered: u64,
    /// A request's body, bytes.
    pub sent_bytes: u64,
    /// An answer's body, bytes.
    pub received_bytes: u64,
    /// What started a session (`client`, `notification:42`, ...).
    pub trigger: String,
    /// The connection an answer came over: this end, and the server's.
    pub local_addr: String,
    /// The server's end.
    pub remote_addr: String,
}

impl Recorder {
    /// A recorder for `devices` devices; its clock starts at [`Recorder::begin`].
    pub fn new(devices: usize) -> Arc<Recorder> {
        Arc::new(Recorder {
            clock: OnceLock::new(),
            inner: Mutex::new(Inner {
                seconds: Vec::new(),
                devices: (0..devices)
                    .map(|n| DeviceLog {
                        n,
                        ..DeviceLog::default()
                    })
                    .collect(),
                ..Inner::default()
            }),
        })
    }

    /// Starts the clock (once: later calls return the first start), at the moment the
    /// scenario's time 0 is; returns it.
    pub fn begin(&self) -> Instant {
        self.clock
            .get_or_init(|| Clock {
                start: Instant::now(),
                unix: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0.0, |d| d.as_secs_f64()),
            })
            .start
    }

    /// When the clock started, in seconds since the Unix epoch (0 before it has).
    pub fn started_unix(&self) -> f64 {
        self.clock.get().map_or(0.0, |c| c.unix)
    }

    /// Seconds since the start (0 before it).
    pub fn now(&self) -> f64 {
        self.clock
            .get()
            .map_or(0.0, |c| c.start.elapsed().as_secs_f64())
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.inner.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn second(inner: &mut Inner, at: f64) -> &mut Second {
        let i = at as usize;
        if inner.seconds.len() <= i {
            inner.seconds.resize(i + 1, Second::default());
        }
        &mut inner.seconds[i]
    }

    /// Notes that alert `number` was queued on `device` now.
    pub fn queued(&self, device: usize, number: u64) {
        let at = self.now();
        self.with(|i| {
            if let Some(d) = i.devices.get_mut(device) {
                d.queued.push_back((number, at));
            }
        });
    }

    /// Notes that `device` was sent a notification now.
    pub fn notified(&self, device: usize) {
        let at = self.now();
        self.with(|i| {
            if let Some(d) = i.devices.get_mut(device) {
                d.notified.push(at);
            }
        });
    }

    /// Notes that `device`, due to start at `scheduled` (seconds), is ready now.
    pub fn ready(&self, device: usize, scheduled: f64) {
        let at = self.now();
        self.with(|i| {
            if let Some(d) = i.devices.get_mut(device) {
                d.scheduled_secs = scheduled;
                d.ready_secs = Some(at);
            }
        });
    }

    /// The per-second counts so far, through the current second.
    pub fn seconds(&self) -> Vec<Second> {
        self.with(|i| i.seconds.clone())
    }

    /// Every device's story so far.
    pub fn devices(&self) -> Vec<DeviceLog> {
        self.with(|i| i.devices.clone())
    }

    /// What sessions cost, per kind, so far.
    pub fn costs(&self) -> std::collections::BTreeMap<String, Cost> {
        self.with(|i| i.costs.clone())
    }

    /// Counts one of a device's events (`device`: its number, when it came from one).
    pub fn event(&self, device: Option<usize>, e: &Fields) {
        let answered = e.message == "HTTP request answered";
        // Asked before the lock: the kernel's answer takes a system call.
        let waited = if answered { waited(e) } else { None };
        let noticed = self.now();
        // An answer counts in the second it arrived; the rest when it was logged.
        let at = waited.map_or(noticed, |w| (noticed - w.as_secs_f64()).max(0.0));
        self.with(|inner| {
            match e.message.as_str() {
                "session starts" => inner.in_flight += 1,
                "session ended" | "session aborted" => {
                    inner.in_flight = inner.in_flight.saturating_sub(1)
                }
                _ => {}
            }
            let in_flight = inner.in_flight;
            let now = Self::second(inner, noticed);
            now.in_flight = now.in_flight.max(in_flight);
            let s = Self::second(inner, at);
            match e.message.as_str() {
                "HTTP request answered" => {
                    s.requests += 1;
                    s.bytes_sent += e.sent_bytes;
                    s.bytes_received += e.received_bytes;
                    match e.status {
                        Some(200..=299) => s.ok += 1,
                        Some(503 | 429) => s.busy += 1,
                        _ => s.other += 1,
                    }
                    match waited {
                        Some(w) => {
                            s.late += u32::from(w > LATE_ANSWER);
                            let ms = u32::try_from(w.as_millis()).unwrap_or(u32::MAX);
                            s.waited_ms_max = s.waited_ms_max.max(ms);
                        }
                        None => s.untimed += 1,
                    }
                }
                "session starts" => s.sessions_started += 1,
                "session ended" => s.sessions_ended += 1,
                "session aborted" => s.sessions_aborted += 1,
                "server asks to come back later" => s.retry_after += 1,
                _ => return,
            }
            let Some(d) = device.and_then(|n| inner.devices.get_mut(n)) else {
                return;
            };
            if let Some((kind, c)) = d.event(e, at) {
                let total = inner.costs.entry(kind).or_default();
                total.sessions += 1;
                total.requests += c.requests;
                total.bytes_sent += c.bytes_sent;
                total.bytes_received += c.bytes_received;
            }
        });
    }
}

impl DeviceLog {
    /// Tells one of the device's events, at `at` (seconds); returns the session that has
    /// just ended normally (its kind and cost), for the fleet's costs.
    fn event(&mut self, e: &Fields, at: f64) -> Option<(String, Cost)> {
        let mut finished = None;
        match e.message.as_str() {
            "session starts" => {
                // "notification:42" is a notification like any other.
                let kind = e.trigger.split(':').next().unwrap_or_default().to_owned();
                self.running = Some((kind, Cost::default()));
            }
            "HTTP request answered" => {
                if let Some((_, c)) = &mut self.running {
                    c.requests += 1;
                    c.bytes_sent += e.sent_bytes;
                    c.bytes_received += e.received_bytes;
                }
            }
            "session ended" => {
                self.contacts.push(at);
                // One session answers every notification that came before it started (the
                // scheduler merges them); the oldest waited longest.
                if self
                    .running
                    .as_ref()
                    .is_some_and(|(k, _)| k == "notification")
                    && let Some(first) = self.notified.first()
                {
                    self.answered.push(at - first);
                    self.notified.clear();
                }
                finished = self.running.take();
            }
            "session aborted" => {
                self.aborted += 1;
                self.running = None;
            }
            _ => {}
        }
        // Alerts go out in the order they were queued (the outbox is read in order).
        for _ in 0..e.alerts_delivered {
            if let Some((number, queued)) = self.queued.pop_front() {
                self.taken.push((number, queued, at));
            }
        }
        finished
    }
}

thread_local! {
    /// Each fleet thread's own question line to the kernel (none when it cannot be opened:
    /// then answers are counted when a device gets to them).
    static KERNEL: RefCell<Option<Option<Kernel>>> = const { RefCell::new(None) };
}

/// How long the answer an event tells of had been waiting for its device, by the
/// kernel's record of its connection (none when the event names no connection or the
/// kernel cannot say).
fn waited(e: &Fields) -> Option<Duration> {
    let local: SocketAddr = e.local_addr.parse().ok()?;
    let remote: SocketAddr = e.remote_addr.parse().ok()?;
    KERNEL.with(|k| {
        let mut k = k.borrow_mut();
        let kernel = k.get_or_insert_with(|| Kernel::open().ok()).as_mut()?;
        kernel.since_last_data(local, remote).ok()
    })
}
