//! The scheduler: decides when sessions happen and delivers what waits outside sessions.
//!
//! Triggers (start-up, owed bootstrap sessions, a poll timer, requests from the CLI or
//! D-Bus, notifications, queued work) arrive on a channel and are coalesced per server: a
//! trigger that comes while one is pending or running is merged, never lost. Sessions with
//! different servers run side by side, one at a time per server. Work that must reach a server (Generic Alerts, subscription deliveries)
//! stays in the database until the server has taken it; when a session or a delivery fails
//! it is tried again after an exponential backoff with jitter, and a restart picks up
//! whatever is still queued.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::engine::Trigger;

/// A request for a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// The session's reason.
    pub trigger: Trigger,
    /// Whether the server asked for MOS (REQ-MOS).
    pub req_mos: bool,
    /// Wanted only to deliver alerts that go elsewhere than the account's SrvURI (an
    /// asynchronous EXEC result to its ServerURI, TS §5.3.5): those sessions are opened, and
    /// none with the SrvURI unless something there is waiting too. One server's load per
    /// EXEC result is one session, not two.
    pub alerts_elsewhere: bool,
}

impl Request {
    /// A session on the client's initiative (a poll, queued work to deliver).
    pub const CLIENT: Request = Request {
        trigger: Trigger::ClientInitiated,
        req_mos: false,
        alerts_elsewhere: false,
    };

    /// The session a notification asks for: ServerInitiatedMgmt with its NOTIFICATION-ID.
    pub fn notified(notification_id: Option<u16>, req_mos: bool) -> Request {
        Request {
            trigger: Trigger::ServerInitiated { notification_id },
            req_mos,
            alerts_elsewhere: false,
        }
    }
}

/// Merges two requests for the same server into the one session that serves both: a
/// notification wins (its NOTIFICATION-ID must be answered; the latest one counts), then an
/// owed BootstrapComplete, then a client-initiated session; REQ-MOS if either asked; a
/// session with the SrvURI unless both want only alerts delivered elsewhere.
pub fn coalesce(a: Request, b: Request) -> Request {
    fn rank(t: Trigger) -> u8 {
        match t {
            Trigger::ServerInitiated { .. } => 2,
            Trigger::BootstrapComplete => 1,
            Trigger::ClientInitiated => 0,
        }
    }
    let trigger = if rank(b.trigger) >= rank(a.trigger) {
        b.trigger
    } else {
        a.trigger
    };
    Request {
        trigger,
        req_mos: a.req_mos || b.req_mos,
        alerts_elsewhere: a.alerts_elsewhere && b.alerts_elsewhere,
    }
}

/// Exponential backoff with jitter: `base * 2^(attempt-1)`, capped, then shortened by up to
/// a quarter at random, so that many devices retrying do not hit a server in step.
pub fn backoff(attempt: u32, base: Duration, cap: Duration, jitter_seed: u64) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let d = exp.min(cap);
    // A cheap deterministic spread from the seed (the caller passes fresh randomness).
    let quarter = d.as_millis() as u64 / 4;
    let cut = if quarter == 0 {
        0
    } else {
        jitter_seed % quarter
    };
    d.saturating_sub(Duration::from_millis(cut))
}

/// A random seed for jitter, from the OS (`getrandom`); the clock's nanoseconds if the OS
/// cannot give one, which only makes the jitter less spread.
pub fn jitter_seed() -> u64 {
    getrandom::u64().unwrap_or_else(|_| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos().into())
    })
}

/// Pending session requests per server, the servers with a session running, and the
/// retry state; the pure part of the scheduler, so it can be tested without a clock or a
/// network.
#[derive(Debug, Default)]
pub struct Queue {
    pending: BTreeMap<String, Request>,
    retry: HashMap<String, (u32, Instant)>,
    /// A server's own "not before" (`Retry-After` on a 503 or 429).
    not_before: HashMap<String, Instant>,
    /// When a notification's session, put off to spread a campaign, starts.
    held: HashMap<String, Instant>,
    running: HashSet<String>,
    /// Backoffs as computed, without their random part (`sessions.jitter = false`).
    exact: bool,
}

impl Queue {
    /// An empty queue; `jitter` spreads backoffs at random, as it should but to measure
    /// what that buys.
    pub fn new(jitter: bool) -> Queue {
        Queue {
            exact: !jitter,
            ..Queue::default()
        }
    }

    /// Adds a request, merging it with one already pending for the server. It is wanted
    /// under the usual rules, so a notification's session waiting for its spread moment
    /// is no longer held back: whatever session runs first answers the notification.
    pub fn push(&mut self, server: &str, req: Request) {
        let merged = match self.pending.remove(server) {
            Some(old) => coalesce(old, req),
            None => req,
        };
        self.held.remove(server);
        self.pending.insert(server.to_owned(), merged);
    }

    /// Adds a notification's request whose session starts no earlier than `at` (a
    /// campaign spread by START-WITHIN or `notifications.start-within-secs`). A request
    /// already pending runs at its own time if that is sooner: at once when it was due,
    /// after its backoff or the server's `Retry-After` when those end before `at`.
    pub fn push_held(&mut self, server: &str, req: Request, at: Instant) {
        let before = self.held.get(server).copied();
        let own = self.pending.get(server).map(|old| match old.trigger {
            Trigger::ServerInitiated { .. } => before,
            _ => self.waits_until(server),
        });
        self.push(server, req);
        let hold = match own {
            None => Some(at),
            Some(None) => None,
            Some(Some(t)) => Some(t.min(at)),
        };
        if let Some(h) = hold {
            self.held.insert(server.to_owned(), h);
        }
    }

    /// Until when a client-initiated request for the server waits: its backoff, the
    /// server's `Retry-After`, whichever is later; `None` when nothing holds it.
    fn waits_until(&self, server: &str) -> Option<Instant> {
        let retry = self.retry.get(server).map(|(_, at)| *at);
        retry.max(self.not_before.get(server).copied())
    }

    /// When a server's pending request may run: not while a session with it runs (TS §5.2:
    /// one session at a time per server); on the client's initiative, not before its
    /// backoff nor before the time the server asked for with `Retry-After`; at once when
    /// the server itself asks (a notification: it is up, and notifications are spaced by
    /// `notifications.min-interval-secs`).
    /// `None` while a session with the server runs; `Some(None)` for at once.
    fn due(&self, server: &str, req: Request) -> Option<Option<Instant>> {
        if self.running.contains(server) {
            return None;
        }
        if let Trigger::ServerInitiated { .. } = req.trigger {
            return Some(self.held.get(server).copied());
        }
        Some(self.waits_until(server))
    }

    /// The next request that may run now; its server counts as running until
    /// [`Queue::finished`].
    pub fn pop_ready(&mut self, now: Instant) -> Option<(String, Request)> {
        let server = self
            .pending
            .iter()
            .find(|(s, r)| {
                self.due(s, **r)
                    .is_some_and(|at| at.is_none_or(|at| at <= now))
            })?
            .0
            .clone();
        let req = self.pending.remove(&server)?;
        self.held.remove(&server);
        self.running.insert(server.clone());
        Some((server, req))
    }

    /// When the earliest waiting request may run, if any waits that is not held back by a
    /// running session.
    pub fn next_due(&self) -> Option<Instant> {
        self.pending
            .iter()
            .filter_map(|(s, r)| self.due(s, *r))
            .map(|at| at.unwrap_or_else(Instant::now))
            .min()
    }

    /// A server's session (and what followed it) is over.
    pub fn finished(&mut self, server: &str) {
        self.running.remove(server);
    }

    /// The server asked not to be contacted for `delay` (`Retry-After`), at most `cap`.
    pub fn defer(&mut self, server: &str, now: Instant, delay: Duration, cap: Duration) {
        self.not_before
            .insert(server.to_owned(), now + delay.min(cap));
    }

    /// When the server may next be contacted on the client's initiative, if it asked to
    /// wait.
    pub fn not_before(&self, server: &str) -> Option<Instant> {
        self.not_before.get(server).copied()
    }

    /// Records a failure for a server with work still queued: it is tried again after the
    /// backoff, and not before the server's `Retry-After`. Returns the delay.
    pub fn failed(
        &mut self,
        server: &str,
        req: Request,
        now: Instant,
        base: Duration,
        cap: Duration,
    ) -> Duration {
        let attempt = self.retry.get(server).map_or(1, |(n, _)| n + 1);
        let asked = self
            .not_before
            .get(server)
            .map_or(Duration::ZERO, |at| at.saturating_duration_since(now));
        let seed = if self.exact { 0 } else { jitter_seed() };
        let delay = backoff(attempt, base, cap, seed);
        self.retry.insert(server.to_owned(), (attempt, now + delay));
        // A notification's session held to spread a campaign stays held: a failure is no
        // reason to come back sooner.
        let held = self.held.get(server).copied();
        self.push(server, req);
        if let Some(h) = held {
            self.held.insert(server.to_owned(), h);
        }
        delay.max(asked)
    }

    /// Forgets a server's backoff (an administrator asked for a session), keeping its
    /// count of failures for the next one and the server's own `Retry-After`.
    pub fn forgive(&mut self, server: &str, now: Instant) {
        if let Some((_, at)) = self.retry.get_mut(server) {
            *at = now;
        }
    }

    /// For each server with a request waiting: when it may run and why it waits, as
    /// (instant, reason); at `now` when nothing holds it back.
    pub fn outlook(&self, now: Instant) -> Vec<(String, Instant, String)> {
        self.pending
            .iter()
            .map(|(s, r)| {
                if self.running.contains(s) {
                    return (s.clone(), now, "after the session running now".to_owned());
                }
                let retry = self.retry.get(s).filter(|(_, at)| *at > now);
                let asked = self.not_before.get(s).filter(|at| **at > now);
                let held = self.held.get(s).filter(|at| **at > now);
                let (at, why) = match (self.due(s, *r).flatten(), retry, asked) {
                    (None, ..) => (now, "due now".to_owned()),
                    (Some(at), ..) if held == Some(&at) => (
                        at,
                        "a notification's session, started at a random moment to spread a campaign"
                            .to_owned(),
                    ),
                    (Some(at), _, Some(asked)) if at == *asked => {
                        (at, "the server asked to wait (Retry-After)".to_owned())
                    }
                    (Some(at), Some((n, _)), _) => {
                        (at, format!("retry {n} after failed attempts (backoff)"))
                    }
                    (Some(at), None, _) => (at, "due now".to_owned()),
                };
                (s.clone(), at.max(now), why)
            })
            .collect()
    }

    /// Forgets a server's failures after a success.
    pub fn succeeded(&mut self, server: &str) {
        self.retry.remove(server);
        self.not_before.remove(server);
    }

    /// Whether anything waits.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Whether a session with any server runs.
    pub fn is_running(&self) -> bool {
        !self.running.is_empty()
    }
}

/// A poll interval with jitter: uniformly within a quarter either side of `interval`, so
/// that a fleet that started together spreads out instead of polling in step, while the
/// mean stays `interval`.
pub fn poll_jitter(interval: Duration, seed: u64) -> Duration {
    let half_span = interval.as_millis() as u64 / 4;
    if half_span == 0 {
        return interval;
    }
    let offset = seed % (2 * half_span + 1);
    (interval - Duration::from_millis(half_span)) + Duration::from_millis(offset)
}

/// How long to wait when a server said `Retry-After: wait`: that, plus up to a quarter
/// more at random. Every device a busy server turned away at about the same moment hears
/// the same number; waiting exactly that long would bring them back together, in the very
/// burst the server asked to be spared. RFC 9110 §10.2.3 lets a client wait longer.
pub fn retry_after_spread(wait: Duration, seed: u64) -> Duration {
    let span = wait.as_millis() as u64 / 4;
    wait + Duration::from_millis(seed % (span + 1))
}

/// When a notification's session starts, spread over `within`: at a random moment in it,
/// uniformly, so that a fleet notified at once reaches its server at a steady rate of
/// (fleet size / `within`) instead of all together. The TS has no such knob (docs/decisions.md).
pub fn start_spread(within: Duration, seed: u64) -> Duration {
    Duration::from_millis(seed % (within.as_millis() as u64 + 1))
}

/// A request as it travels to the scheduler loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ask {
    /// The server (`None`: every server).
    pub server: Option<String>,
    /// The request.
    pub req: Request,
    /// An administrator asked (`StartSession`): the backoff after failures is not waited
    /// out. A server's own `Retry-After` still is: it said when it can take a session.
    pub explicit: bool,
    /// A notification's session, to start at a random moment within this
    /// ([`start_spread`]); zero: under the usual rules.
    pub start_within: Duration,
}

/// A handle other parts of the daemon use to ask for sessions.
#[derive(Debug, Clone)]
pub struct Handle {
    tx: mpsc::UnboundedSender<Ask>,
}

impl Handle {
    /// Asks for a session with one server (`None`: every server).
    pub fn request(&self, server: Option<&str>, req: Request) {
        self.send(server, req, false);
    }

    /// Asks for a session on an administrator's behalf: it skips the backoff wait.
    pub fn request_explicit(&self, server: Option<&str>, req: Request) {
        self.send(server, req, true);
    }

    /// Asks for a notification's session, started at a random moment within `within`
    /// ([`start_spread`]; zero: at once).
    pub fn request_within(&self, server: &str, req: Request, within: Duration) {
        let _ = self.tx.send(Ask {
            server: Some(server.to_owned()),
            req,
            explicit: false,
            start_within: within,
        });
    }

    fn send(&self, server: Option<&str>, req: Request, explicit: bool) {
        // The receiver lives as long as the daemon; a send after shutdown is moot.
        let _ = self.tx.send(Ask {
            server: server.map(str::to_owned),
            req,
            explicit,
            start_within: Duration::ZERO,
        });
    }
}

/// When the next session with each server is due and why, as the scheduler loop last saw
/// it; read by D-Bus (`AccountState`'s `next-attempt`, `next-reason`).
#[derive(Debug, Clone, Default)]
pub struct Outlook(std::sync::Arc<std::sync::Mutex<OutlookData>>);

/// What an [`Outlook`] holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutlookData {
    /// Per server with a request waiting: (when, seconds since the epoch; why).
    pub waiting: BTreeMap<String, (i64, String)>,
    /// The next poll of every server (seconds since the epoch), when polling is on.
    pub poll: Option<(i64, String)>,
}

impl Outlook {
    /// Replaces what it holds.
    pub fn set(&self, data: OutlookData) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = data;
    }

    /// When the next session with `server` is due and why, if one is.
    pub fn next(&self, server: &str) -> Option<(i64, String)> {
        let d = self.0.lock().unwrap_or_else(|p| p.into_inner());
        d.waiting.get(server).or(d.poll.as_ref()).cloned()
    }
}

/// A new channel: the handle, and the receiving end for the scheduler loop.
pub fn channel() -> (Handle, mpsc::UnboundedReceiver<Ask>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Handle { tx }, rx)
}

#[cfg(test)]
mod tests;
