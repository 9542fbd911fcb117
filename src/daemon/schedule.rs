//! The scheduling loop: requests from notifications, D-Bus, timers and retries become
//! sessions, one at a time per server, with backoff for queued work.

use std::time::Duration;

use super::sessions::Runner;
use crate::config::Settings;
use crate::engine::Trigger;
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
    };
    for owed in p.store.owed_sessions()? {
        handle.request(
            Some(&owed.server_id),
            Request {
                trigger: Trigger::BootstrapComplete,
                req_mos: false,
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

/// The scheduler loop: takes requests, runs sessions one at a time, delivers queued
/// subscription data after each session, retries failures with backoff, polls.
pub(super) async fn schedule(
    r: &Runner<'_>,
    handle: &scheduler::Handle,
    mut requests: tokio::sync::mpsc::UnboundedReceiver<(Option<String>, Request)>,
) -> anyhow::Result<()> {
    let (p, settings) = (r.p, r.settings);
    let mut queue = scheduler::Queue::default();
    let poll = (settings.sessions.poll_interval_secs > 0)
        .then(|| Duration::from_secs(settings.sessions.poll_interval_secs));
    let mut next_poll = poll.map(|d| tokio::time::Instant::now() + d);
    loop {
        let due = queue.next_due();
        tokio::select! {
            Some((server, req)) = requests.recv() => {
                match server {
                    Some(s) => queue.push(&s, req),
                    None => for a in crate::mo::account::all(&p.store)? { queue.push(&a.server_id, req) },
                }
            }
            () = sleep_until(due), if due.is_some() => {
                let Some((server, req)) = queue.pop_ready(tokio::time::Instant::now()) else { continue };
                let mut ok = r.run_logged(&server, req, None).await;
                // Alerts bound for another URL (an async EXEC's ServerURI, TS §5.3.5) go in
                // a session opened there.
                if ok {
                    for url in alert_targets(p, &server)? {
                        let client = Request { trigger: Trigger::ClientInitiated, req_mos: false };
                        ok &= r.run_logged(&server, client, Some(&url)).await;
                    }
                }
                let delivered = ok && r.deliver(&server).await.unwrap_or_else(|e| {
                    tracing::error!(server = %server, error = %format!("{e:#}"), "delivery failed");
                    false
                });
                let owed = p.store.owed_sessions()?.iter().any(|o| o.server_id == server);
                if ok && delivered && !owed {
                    queue.succeeded(&server);
                } else if owed || !p.store.outbox(&server)?.is_empty() {
                    // Work is still waiting for this server: try again later.
                    let again = if owed { Request { trigger: Trigger::BootstrapComplete, req_mos: false } } else { Request { trigger: Trigger::ClientInitiated, req_mos: req.req_mos } };
                    let delay = queue.failed(
                        &server,
                        again,
                        tokio::time::Instant::now(),
                        Duration::from_secs(settings.sessions.retry_base_secs),
                        Duration::from_secs(settings.sessions.retry_max_secs),
                    );
                    tracing::info!(server = %server, retry_in_secs = delay.as_secs(), "queued work kept; will retry");
                }
            }
            () = sleep_until(next_poll), if next_poll.is_some() => {
                handle.request(None, Request { trigger: Trigger::ClientInitiated, req_mos: false });
                next_poll = poll.map(|d| tokio::time::Instant::now() + d);
            }
        }
    }
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
