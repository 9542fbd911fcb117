//! The `tracing` layer that feeds a [`Recorder`]: it reads the events the devices log
//! anyway (each answered HTTP request, session start and end, `Retry-After`) and credits
//! each to the device whose span it came from. The devices run omadmd's code unchanged:
//! nothing here reaches into them.

use std::sync::Arc;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::metrics::{DEVICE_SPAN, Fields, Recorder};

impl Fields {
    /// Where a text field goes (none: not one the recorder reads).
    fn text(&mut self, field: &Field) -> Option<&mut String> {
        match field.name() {
            "message" => Some(&mut self.message),
            "trigger" => Some(&mut self.trigger),
            "local_addr" => Some(&mut self.local_addr),
            "remote_addr" => Some(&mut self.remote_addr),
            _ => None,
        }
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        // `trigger = %name` and the addresses arrive as Display, through here.
        if let Some(slot) = self.text(field) {
            *slot = format!("{value:?}");
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if let Some(slot) = self.text(field) {
            value.clone_into(slot);
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
    use crate::metrics::{Cost, Second};
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

    /// The clock is scenario time: it starts at `begin`, however long after the recorder
    /// was made (the devices' files are written in between), and only once.
    #[test]
    fn the_clock_starts_at_begin_not_when_the_recorder_is_made() {
        let recorder = Recorder::new(1);
        assert_eq!((recorder.now(), recorder.started_unix()), (0.0, 0.0));
        std::thread::sleep(std::time::Duration::from_millis(400));
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let start = recorder.begin();
        assert!((recorder.started_unix() - unix).abs() < 0.05);
        assert!(recorder.now() < 0.1, "{}", recorder.now());
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(recorder.begin(), start, "begun once");
        recorder.queued(0, 1);
        let queued = recorder.devices()[0].queued[0].1;
        assert!((0.04..0.2).contains(&queued), "{queued}");
    }

    /// An answer a device gets to 1.2 s after it arrived counts in the second it arrived,
    /// late; one that names no connection counts when it was logged, untimed.
    #[test]
    fn an_answer_counts_in_the_second_it_arrived() {
        use std::io::{Read as _, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        let recorder = Recorder::new(1);
        recorder.begin();
        std::thread::sleep(std::time::Duration::from_millis(200));
        server.write_all(b"HTTP/1.1 200 OK\r\n\r\n").unwrap();
        let mut got = [0u8; 19];
        client.read_exact(&mut got).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1200));
        let subscriber = tracing_subscriber::registry().with(Counting(recorder.clone()));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("device", n = 0_u64);
            let _in = span.enter();
            tracing::debug!(
                status = 200_u16,
                sent_bytes = 10_usize,
                received_bytes = 0_u64,
                local_addr = %client.local_addr().unwrap(),
                remote_addr = %client.peer_addr().unwrap(),
                "HTTP request answered"
            );
            tracing::debug!(status = 200_u16, "HTTP request answered");
        });
        let s = recorder.seconds();
        assert_eq!(s.len(), 2, "{s:?}");
        assert_eq!((s[0].requests, s[0].late, s[0].untimed), (1, 1, 0));
        assert!(
            (1150..1500).contains(&s[0].waited_ms_max),
            "{}",
            s[0].waited_ms_max
        );
        assert_eq!((s[1].requests, s[1].late, s[1].untimed), (1, 0, 1));
    }
}
