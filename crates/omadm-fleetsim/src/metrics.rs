//! What the fleet did, as the devices' own log events tell it: a `tracing` layer that
//! counts, per second of the run, the HTTP requests servers answered (by status), the
//! sessions started, ended and aborted, and the `Retry-After`s obeyed; and per device, when
//! it was last in contact and which of its queued alerts a server took. The devices run
//! omadmd's code unchanged: nothing here reaches into them.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// The name of the span each device runs in; its field `n` is the device's number.
pub const DEVICE_SPAN: &str = "device";

/// One second of the run, fleet-wide.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Second {
    /// HTTP requests a server answered (DM packages and repository requests).
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

/// The counts, shared by the layer (which writes them) and the run (which reads them).
#[derive(Debug)]
pub struct Recorder {
    start: Instant,
    inner: Mutex<Inner>,
}

impl Recorder {
    /// A recorder for `devices` devices whose clock starts now.
    pub fn new(devices: usize) -> Arc<Recorder> {
        Arc::new(Recorder {
            start: Instant::now(),
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

    /// Seconds since the start.
    pub fn now(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
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

    fn event(&self, device: Option<usize>, e: &Fields) {
        let at = self.now();
        self.with(|inner| {
            match e.message.as_str() {
                "session starts" => inner.in_flight += 1,
                "session ended" | "session aborted" => {
                    inner.in_flight = inner.in_flight.saturating_sub(1)
                }
                _ => {}
            }
            let in_flight = inner.in_flight;
            let s = Self::second(inner, at);
            s.in_flight = s.in_flight.max(in_flight);
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
            match e.message.as_str() {
                "session starts" => {
                    // "notification:42" is a notification like any other.
                    let kind = e.trigger.split(':').next().unwrap_or_default().to_owned();
                    d.running = Some((kind, Cost::default()));
                }
                "HTTP request answered" => {
                    if let Some((_, c)) = &mut d.running {
                        c.requests += 1;
                        c.bytes_sent += e.sent_bytes;
                        c.bytes_received += e.received_bytes;
                    }
                }
                "session ended" => {
                    d.contacts.push(at);
                    // One session answers every notification that came before it started
                    // (the scheduler merges them); the oldest waited longest.
                    if d.running.as_ref().is_some_and(|(k, _)| k == "notification")
                        && let Some(first) = d.notified.first()
                    {
                        d.answered.push(at - first);
                        d.notified.clear();
                    }
                    if let Some((kind, c)) = d.running.take() {
                        let total = inner.costs.entry(kind).or_default();
                        total.sessions += 1;
                        total.requests += c.requests;
                        total.bytes_sent += c.bytes_sent;
                        total.bytes_received += c.bytes_received;
                    }
                }
                "session aborted" => {
                    d.aborted += 1;
                    d.running = None;
                }
                _ => {}
            }
            // Alerts go out in the order they were queued (the outbox is read in order).
            for _ in 0..e.alerts_delivered {
                if let Some((number, queued)) = d.queued.pop_front() {
                    d.taken.push((number, queued, at));
                }
            }
        });
    }
}

/// The fields of an event the recorder reads.
#[derive(Debug, Default)]
struct Fields {
    message: String,
    status: Option<u64>,
    alerts_delivered: u64,
    sent_bytes: u64,
    received_bytes: u64,
    trigger: String,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            // `trigger = %name` arrives as Display, through here.
            "trigger" => self.trigger = format!("{value:?}"),
            _ => {}
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = value.to_owned(),
            "trigger" => self.trigger = value.to_owned(),
            _ => {}
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "status" => self.status = Some(value),
            "alerts_delivered" => self.alerts_delivered = value,
            "sent_bytes" => self.sent_bytes = value,
            "received_bytes" => self.received_bytes = value,
            _ => {}
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record_u64(field, u64::try_from(value).unwrap_or(0));
    }
}

/// A device span's number, kept in the span's extensions.
#[derive(Debug, Clone, Copy)]
struct DeviceNumber(usize);

#[derive(Default)]
struct NumberVisitor(Option<usize>);

impl Visit for NumberVisitor {
    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}

    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "n" {
            self.0 = usize::try_from(value).ok();
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if field.name() == "n" {
            self.0 = usize::try_from(value).ok();
        }
    }
}

/// The layer that feeds a [`Recorder`].
#[derive(Debug, Clone)]
pub struct Counting(pub Arc<Recorder>);

impl<S> tracing_subscriber::Layer<S> for Counting
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != DEVICE_SPAN {
            return;
        }
        let mut v = NumberVisitor::default();
        attrs.record(&mut v);
        if let (Some(n), Some(span)) = (v.0, ctx.span(id)) {
            span.extensions_mut().insert(DeviceNumber(n));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let device = ctx.event_scope(event).and_then(|scope| {
            scope
                .from_root()
                .find_map(|span| span.extensions().get::<DeviceNumber>().map(|d| d.0))
        });
        self.0.event(device, &fields);
    }
}

/// The filter the layer needs: the per-request event is at debug level.
pub fn filter() -> tracing_subscriber::filter::Targets {
    tracing_subscriber::filter::Targets::new()
        .with_target("omadmd::transport::http", tracing::Level::DEBUG)
        .with_target("omadmd::session", tracing::Level::INFO)
        // The device spans: a per-layer filter decides for spans too, and without them
        // events could not be credited to their device.
        .with_target("omadm_fleetsim", tracing::Level::INFO)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt as _;

    #[test]
    fn events_in_a_device_span_count_for_the_second_and_the_device() {
        let recorder = Recorder::new(3);
        let subscriber = tracing_subscriber::registry().with(Counting(recorder.clone()));
        tracing::subscriber::with_default(subscriber, || {
            recorder.queued(2, 7);
            recorder.queued(2, 8);
            let span = tracing::info_span!("device", n = 2_u64);
            let _in = span.enter();
            let session = tracing::info_span!("session", id = 1);
            let _s = session.enter();
            tracing::info!(trigger = %"notification:9", "session starts");
            tracing::debug!(
                status = 200_u16,
                sent_bytes = 300_usize,
                received_bytes = 120_u64,
                "HTTP request answered"
            );
            tracing::debug!(
                status = 503_u16,
                sent_bytes = 40_usize,
                received_bytes = 0_u64,
                "HTTP request answered"
            );
            tracing::info!(alerts_delivered = 1_u32, "session ended");
        });
        tracing::subscriber::with_default(
            tracing_subscriber::registry().with(Counting(recorder.clone())),
            || tracing::warn!(alerts_delivered = 0_u32, "session aborted"),
        );
        let mut total = Second::default();
        for s in recorder.seconds() {
            total += s;
        }
        assert_eq!(
            (
                total.requests,
                total.ok,
                total.busy,
                total.sessions_started,
                total.sessions_ended,
                total.sessions_aborted
            ),
            (2, 1, 1, 1, 1, 1)
        );
        assert_eq!(
            (total.bytes_sent, total.bytes_received, total.in_flight),
            (340, 120, 1)
        );
        // The session's cost, under its kind.
        assert_eq!(
            recorder.costs().into_iter().collect::<Vec<_>>(),
            [(
                "notification".to_owned(),
                Cost {
                    sessions: 1,
                    requests: 2,
                    bytes_sent: 340,
                    bytes_received: 120
                }
            )]
        );
        let devices = recorder.devices();
        assert_eq!(devices[2].contacts.len(), 1);
        // The oldest queued alert went; the other waits.
        assert_eq!(
            devices[2].taken.iter().map(|t| t.0).collect::<Vec<_>>(),
            [7]
        );
        assert_eq!(devices[2].queued.len(), 1);
        // The aborted session outside any device span counts for the fleet only.
        assert!(devices.iter().all(|d| d.aborted == 0));
    }
}
