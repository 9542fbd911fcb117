//! The scheduling loop: requests from notifications, D-Bus, timers and retries become
//! sessions, side by side for different servers and one at a time per server, with backoff
//! for queued work and a server's `Retry-After` obeyed.

use std::time::Duration;

use super::sessions::Runner;
use crate::config::Settings;
use crate::engine::Trigger;
use crate::heartbeat::{BEAT, Heartbeat};
use crate::scheduler::{self, Request};
use crate::state::Prepared;
use crate::tree::Journal as _;

/// Sessions due at start: every session owed after a bootstrap, one with every server that
/// has queued work, and one with every server when `sessions.at-start` is on.
pub(super) fn initial_requests(
    p: &Prepared,
    settings: &Settings,
    handle: &scheduler::Handle,
) -> anyhow::Result<()> {
    let client = Request {
        trigger: Trigger::ClientInitiated,
        req_mos: false,
        alerts_elsewhere: false,
    };
    for owed in p.store.owed_sessions()? {
        handle.request(
            Some(&owed.server_id),
            Request {
                trigger: Trigger::BootstrapComplete,
                req_mos: false,
                alerts_elsewhere: false,
            },
        );
    }
    for account in crate::mo::account::all(&p.store)? {
        if settings.sessions.at_start || !p.store.outbox(&account.server_id)?.is_empty() {
            handle.request(Some(&account.server_id), client);
        }
    }
    Ok(())
}

/// What one round with a server came to.
#[derive(Debug)]
pub(super) struct Outcome {
    /// Everything for the server went: the session ended normally, and nothing is queued
    /// or owed.
    done: bool,
    /// Work is still waiting for the server: the request to retry it with.
    again: Option<Request>,
    /// How long the server asked the client to wait (`Retry-After`).
    retry_after: Option<Duration>,
}

/// One round with a server: its session; sessions opened where queued alerts must go
/// instead of the SrvURI (an async EXEC's ServerURI, TS §5.3.5); its subscription
/// deliveries. A store error is logged and counts as a failure, retried with backoff.
async fn round(r: &Runner<'_>, server: &str, req: Request) -> Outcome {
    let p = r.p;
    // Asked for only to deliver alerts elsewhere, with nothing waiting for the SrvURI: no
    // session there (it would be an empty one, a server's cost for nothing).
    let skip_srv_uri =
        req.alerts_elsewhere && waits_for_srv_uri(p, server).is_ok_and(|waits| !waits);
    let ran = if skip_srv_uri {
        tracing::debug!(server = %server, "only alerts for other URLs are queued: no session with the SrvURI");
        super::sessions::Ran {
            ok: true,
            retry_after: None,
        }
    } else {
        r.run_logged(server, req, None).await
    };
    let mut ok = ran.ok;
    if ok {
        match alert_targets(p, server) {
            Ok(urls) => {
                for url in urls {
                    let client = Request {
                        trigger: Trigger::ClientInitiated,
                        req_mos: false,
                        alerts_elsewhere: false,
                    };
                    ok &= r.run_logged(server, client, Some(&url)).await.ok;
                }
            }
            Err(e) => {
                tracing::error!(server = %server, error = %format!("{e:#}"), "cannot read queued alerts");
                ok = false;
            }
        }
    }
    let delivered = ok
        && r.deliver(server).await.unwrap_or_else(|e| {
            tracing::error!(server = %server, error = %format!("{e:#}"), "delivery failed");
            false
        });
    // What is still waiting; when that cannot be read, retry as if work were.
    let waiting = p.store.owed_sessions().and_then(|owed| {
        let owed = owed.iter().any(|o| o.server_id == server);
        Ok((owed, owed || !p.store.outbox(server)?.is_empty()))
    });
    let (done, again) = match waiting {
        Ok((owed, queued)) => {
            let done = ok && delivered && !owed;
            let trigger = if owed {
                Trigger::BootstrapComplete
            } else {
                Trigger::ClientInitiated
            };
            (done, (!done && queued).then_some(trigger))
        }
        Err(e) => {
            tracing::error!(server = %server, error = %e, "cannot read the server's queued work; will retry");
            (false, Some(Trigger::ClientInitiated))
        }
    };
    // A session may have freed much (a large GET or HGET): give it back, so the idle
    // daemon is as small as before it.
    p.store.release_memory();
    crate::memory::give_back();
    Outcome {
        done,
        again: again.map(|trigger| Request {
            trigger,
            req_mos: req.req_mos,
            alerts_elsewhere: req.alerts_elsewhere,
        }),
        retry_after: ran.retry_after,
    }
}

/// The scheduler loop: takes requests, runs sessions (side by side for different servers,
/// one at a time per server), delivers queued subscription data after each session,
/// retries failures with backoff and after a server's `Retry-After`, polls with jitter.
/// Nothing in it ends it: a failure is logged and retried.
pub(super) async fn schedule(
    r: &Runner<'_>,
    handle: &scheduler::Handle,
    mut requests: tokio::sync::mpsc::UnboundedReceiver<scheduler::Ask>,
    alive: &Heartbeat,
    outlook: &scheduler::Outlook,
) {
    use futures_util::StreamExt as _;
    let (p, settings) = (r.p, r.settings);
    let (base, cap) = (
        Duration::from_secs(settings.sessions.retry_base_secs),
        Duration::from_secs(settings.sessions.retry_max_secs),
    );
    let jitter = settings.sessions.jitter;
    // Without jitter (only to measure what it buys) every spread is zero.
    let seed = || if jitter { scheduler::jitter_seed() } else { 0 };
    let mut queue = scheduler::Queue::new(jitter);
    let mut running = futures_util::stream::FuturesUnordered::new();
    let poll = (settings.sessions.poll_interval_secs > 0)
        .then(|| Duration::from_secs(settings.sessions.poll_interval_secs));
    let next = |d| {
        tokio::time::Instant::now()
            + if jitter {
                scheduler::poll_jitter(d, seed())
            } else {
                d
            }
    };
    let mut next_poll = poll.map(next);
    loop {
        alive.beat();
        // Start whatever may run now.
        while let Some((server, req)) = queue.pop_ready(tokio::time::Instant::now()) {
            running.push(async move {
                let outcome = round(r, &server, req).await;
                (server, outcome)
            });
        }
        let due = queue.next_due();
        outlook.set(outlook_of(&queue, next_poll, poll));
        tokio::select! {
            Some(scheduler::Ask { server, req, explicit, start_within }) = requests.recv() => match server {
                Some(s) if !start_within.is_zero() => {
                    // Random even without jitter: the bound was asked for by the server or
                    // the operator, and without the randomness there is no spread at all.
                    let delay = scheduler::start_spread(start_within, scheduler::jitter_seed());
                    tracing::info!(server = %s, delay_ms = delay.as_millis() as u64, within_secs = start_within.as_secs(), "a notification's session put off to spread the campaign");
                    queue.push_held(&s, req, tokio::time::Instant::now() + delay);
                }
                Some(s) => {
                    if explicit {
                        queue.forgive(&s, tokio::time::Instant::now());
                    }
                    queue.push(&s, req)
                }
                None => match crate::mo::account::all(&p.store) {
                    Ok(accounts) => for a in accounts {
                        if explicit {
                            queue.forgive(&a.server_id, tokio::time::Instant::now());
                        }
                        queue.push(&a.server_id, req)
                    },
                    Err(e) => {
                        tracing::error!(error = %format!("{e:#}"), "cannot read the accounts; asking again in 5 s");
                        let h = handle.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(Duration::from_secs(5)).await;
                            h.request(None, req);
                        });
                    }
                },
            },
            Some((server, outcome)) = running.next(), if !running.is_empty() => {
                queue.finished(&server);
                let now = tokio::time::Instant::now();
                if let Some(asked) = outcome.retry_after {
                    let wait = scheduler::retry_after_spread(asked, seed());
                    queue.defer(&server, now, wait, cap);
                    tracing::info!(server = %server, retry_after_secs = asked.as_secs(), waiting_secs = wait.min(cap).as_secs(), "the server asked to wait");
                }
                if outcome.done {
                    queue.succeeded(&server);
                } else if let Some(again) = outcome.again {
                    let delay = queue.failed(&server, again, now, base, cap);
                    tracing::info!(server = %server, retry_in_secs = delay.as_secs(), "queued work kept; will retry");
                }
            }
            () = sleep_until(due), if due.is_some() => {}
            // Round at least every beat, so the watchdog sees the loop alive when idle.
            () = tokio::time::sleep(BEAT) => {}
            () = sleep_until(next_poll), if next_poll.is_some() => {
                handle.request(None, Request::CLIENT);
                next_poll = poll.map(next);
            }
        }
    }
}

/// What the queue and the poll timer say of the next sessions, in wall-clock time.
fn outlook_of(
    queue: &scheduler::Queue,
    next_poll: Option<tokio::time::Instant>,
    poll: Option<Duration>,
) -> scheduler::OutlookData {
    let now = tokio::time::Instant::now();
    let epoch = omadm_console::now_secs();
    let wall = |at: tokio::time::Instant| {
        epoch + i64::try_from(at.saturating_duration_since(now).as_secs()).unwrap_or(i64::MAX / 2)
    };
    scheduler::OutlookData {
        waiting: queue
            .outlook(now)
            .into_iter()
            .map(|(s, at, why)| (s, (wall(at), why)))
            .collect(),
        poll: next_poll.zip(poll).map(|(at, every)| {
            (
                wall(at),
                format!("the next poll (every {} s, spread)", every.as_secs()),
            )
        }),
    }
}

/// Whether anything waits for a session with the account's SrvURI: a session owed after a
/// bootstrap, or a queued alert that goes there.
fn waits_for_srv_uri(p: &Prepared, server: &str) -> anyhow::Result<bool> {
    if p.store
        .owed_sessions()?
        .iter()
        .any(|o| o.server_id == server)
    {
        return Ok(true);
    }
    let srv_uri = crate::mo::account::load(&p.store, server)?
        .map(|a| a.srv_uri)
        .unwrap_or_default();
    Ok(p.store.outbox(server)?.into_iter().any(|o| {
        o.item
            .alert()
            .is_some_and(|(_, to)| to.is_none_or(|t| t == srv_uri))
    }))
}

/// The URLs other than the account's SrvURI that queued alerts must be delivered to.
fn alert_targets(p: &Prepared, server: &str) -> anyhow::Result<Vec<String>> {
    let srv_uri = crate::mo::account::load(&p.store, server)?
        .map(|a| a.srv_uri)
        .unwrap_or_default();
    let mut urls: Vec<String> = p
        .store
        .outbox(server)?
        .into_iter()
        .filter_map(|o| o.item.alert().and_then(|(_, to)| to.map(str::to_owned)))
        .filter(|t| *t != srv_uri)
        .collect();
    urls.sort();
    urls.dedup();
    Ok(urls)
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
