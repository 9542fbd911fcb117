//! Wiring: opens the store, loads MO definitions, brings the standard MOs and factory
//! bootstrap up to date (`startup.rs`), tells systemd it is ready, serves D-Bus and the
//! notification socket, and runs the scheduling loop (`schedule.rs`, `sessions.rs`, with
//! `events.rs` telling bus peers) until told to stop.

mod events;
mod fetch;
mod reload;
mod schedule;
mod sessions;
mod startup;

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;

use crate::config::Settings;
use crate::dbus;
use crate::heartbeat::Heartbeat;
use crate::host::Host;
use crate::notify::Policy as NotifyPolicy;
use crate::notify::listener::Listener;
use crate::scheduler::{self, Request};
use crate::tree::{Journal as _, Tree as _};
use events::Events;
use schedule::{initial_requests, schedule};
use sessions::{HttpClients, Runner};

pub use crate::state::Prepared;
pub use sessions::engine_limits;
pub use startup::{load_registry, prepare};

/// What a program that runs the daemon inside itself (omadm-fleetsim's devices) is given
/// once it is ready: its state and its scheduler, what D-Bus callers reach through
/// `Manager` (queue a Generic Alert, inject a notification).
#[derive(Debug, Clone)]
pub struct Embedded {
    /// The store, the MO definitions, the notification gate.
    pub prepared: Arc<Prepared>,
    /// Asks for sessions.
    pub scheduler: scheduler::Handle,
}

/// Runs the daemon until `shutdown` completes; `sources` are where `settings` came from,
/// read again on a reload (each of `hangups`, or D-Bus `Reload`).
pub async fn run(
    sources: crate::config::Sources,
    settings: Settings,
    shutdown: impl Future<Output = ()>,
    hangups: tokio::signal::unix::Signal,
) -> anyhow::Result<()> {
    run_with(sources, settings, shutdown, Some(hangups), None).await
}

/// [`run`], for a daemon that may share its process: without `hangups` it reloads only
/// when asked over D-Bus, and once ready it sends its state to `embedded`.
pub async fn run_with(
    sources: crate::config::Sources,
    settings: Settings,
    shutdown: impl Future<Output = ()>,
    hangups: Option<tokio::signal::unix::Signal>,
    embedded: Option<tokio::sync::oneshot::Sender<Embedded>>,
) -> anyhow::Result<()> {
    // First, while no other thread runs: systemd's socket, if it passed one.
    let listener = match settings.notifications.listen {
        None => None,
        Some(addr) => match Listener::open(addr) {
            Ok(l) => Some(l),
            Err(e) => {
                // Sessions still work without notifications: run, and say why they don't.
                tracing::error!(address = %addr, error = %e, "cannot listen for notifications; running without them");
                None
            }
        },
    };
    let prepared = Arc::new(prepare(&settings, Host::default())?);
    // From here on an I/O error during a write ends the process before anyone is told a
    // result the disk may contradict (docs/operations.md).
    prepared.store.exit_on_io_error();
    let crashed = prepared.store.interrupt_running()?;
    if crashed > 0 {
        tracing::warn!(
            sessions = crashed,
            "sessions left running by an earlier stop marked interrupted"
        );
    }
    let (handle, requests) = scheduler::channel();
    let outlook = scheduler::Outlook::default();
    let running = crate::session::Running::default();
    let policy = NotifyPolicy {
        max_age_secs: settings.notifications.max_age_secs,
        remember_secs: i64::try_from(settings.notifications.remember_secs).unwrap_or(i64::MAX),
        start_within_secs: settings.notifications.start_within_secs,
    };
    let status = Arc::new(std::sync::Mutex::new(("idle".to_owned(), String::new())));
    let peers = dbus::peers::Peers::default();
    let (configurer, configure_requests) = dbus::Configurer::channel();
    let (reloads, reload_requests) = tokio::sync::mpsc::unbounded_channel();
    let (fetches, fetch_requests) = tokio::sync::mpsc::unbounded_channel();
    // READY comes after the bus name is owned: serve first.
    let bus = if settings.dbus.enabled {
        let shared = dbus::Shared {
            prepared: prepared.clone(),
            scheduler: handle.clone(),
            notify_policy: policy,
            status: status.clone(),
            peers: peers.clone(),
            allow_http_show: settings.sessions.allow_http_show,
            configure: configurer,
            bootstrap_limits: settings.bootstrap_limits(),
            exec_result_max: std::time::Duration::from_secs(settings.sessions.exec_result_max_secs),
            reloads,
            fetches,
            outlook: outlook.clone(),
            running: running.clone(),
        };
        let conn = dbus::serve(None, shared).await.with_context(|| {
            format!(
                "cannot serve {} on the system bus (is another omadmd running? is the bus up?)",
                dbus::BUS_NAME
            )
        })?;
        tracing::info!(name = dbus::BUS_NAME, "D-Bus name owned");
        Some(conn)
    } else {
        None
    };
    let events = Events {
        bus,
        status,
        peers,
        active: std::sync::Mutex::default(),
    };
    let runner = Runner {
        p: &prepared,
        settings: &settings,
        clients: HttpClients::default(),
        events: &events,
        running: running.clone(),
    };
    // READY: the database is migrated and the bus name is owned.
    let instances = prepared.store.instances(None)?;
    tracing::info!(
        database = %prepared.store.path().display(),
        instances = instances.len(),
        "ready"
    );
    notify_systemd(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status("serving"),
    ]);
    initial_requests(&prepared, &settings, &handle)?;
    if let Some(tx) = embedded {
        // The embedding program may have stopped waiting; nothing to do then.
        let _ = tx.send(Embedded {
            prepared: prepared.clone(),
            scheduler: handle.clone(),
        });
    }
    if let Some(l) = &listener {
        tracing::info!(address = %l.local_addr()?, socket = l.origin, "listening for notifications");
    }

    // NOTIFICATION-IDs are stored by a task of their own, so that accepting a notification
    // waits for no write.
    {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, u16)>();
        prepared.gate.record_with(tx);
        let p = prepared.clone();
        tokio::spawn(async move {
            while let Some((server, id)) = rx.recv().await {
                match p.store.note_notification(&server, id, policy.remember_secs) {
                    Ok(_) => p.gate.recorded(&server, id),
                    // Kept in memory: a duplicate is refused until the daemon restarts.
                    Err(e) => {
                        tracing::error!(server = %server, notification_id = id, error = %e, "cannot store a NOTIFICATION-ID")
                    }
                }
            }
        });
    }
    // The listener runs as a task of its own, so that it keeps answering on the other
    // worker while the scheduling loop's sessions wait on the network or the disk.
    let listening = Arc::new(Heartbeat::default());
    let scheduling = Arc::new(Heartbeat::default());
    let mut loops = vec![("scheduling loop", scheduling.clone())];
    if listener.is_some() {
        loops.push(("notification listener", listening.clone()));
    }
    if let Some(interval) = sd_notify::watchdog_enabled() {
        tracing::info!(
            interval_ms = interval.as_millis() as u64,
            "systemd watchdog on"
        );
        // A thread of its own, outside the runtime it watches: a wedged runtime cannot
        // stop it from noticing, and saying so.
        std::thread::Builder::new()
            .name("omadmd-watchdog".into())
            .spawn(move || watchdog(interval, &loops))
            .context("cannot start the watchdog thread")?;
    }
    // What the listener accepted goes through `relay_accepted`, which signals it and then
    // asks for the session, so that NotificationAccepted comes before SessionStarted.
    let (accepted, accepted_rx) =
        tokio::sync::mpsc::unbounded_channel::<(String, Request, std::time::Duration)>();
    let mut notifications = match listener {
        Some(l) => {
            let (prepared, alive) = (prepared.clone(), listening);
            let rates = crate::notify::listener::Rates {
                per_source_per_sec: settings.notifications.rate_per_source,
                total_per_sec: settings.notifications.rate_total,
            };
            tokio::spawn(async move {
                l.run(
                    &prepared.store,
                    &prepared.gate,
                    policy,
                    rates,
                    &alive,
                    |a| {
                        let within = a.start_within(policy.start_within_secs);
                        let request = Request::notified(a.notification_id, a.req_mos);
                        let _ = accepted.send((a.server_id, request, within));
                    },
                )
                .await
            })
        }
        None => tokio::spawn(std::future::pending()),
    };
    let reloader = reload::Reloader {
        sources: &sources,
        running: &settings,
        prepared: &prepared,
        scheduler: &handle,
    };
    tokio::pin!(shutdown);
    // Neither loop ever ends on its own: if one does (a defect, a panic), the daemon can no
    // longer be managed, so it exits non-zero and systemd restarts it (Restart=on-failure).
    tokio::select! {
        () = &mut shutdown => {}
        ended = &mut notifications => {
            let why = match ended {
                Err(e) if e.is_panic() => "it panicked",
                _ => "it returned",
            };
            anyhow::bail!("the notification listener stopped ({why}); exiting so that it restarts");
        }
        () = schedule(&runner, &handle, requests, &scheduling, &outlook) => {
            anyhow::bail!("the scheduling loop stopped; exiting so that it restarts");
        }
        () = relay_accepted(&events, &handle, accepted_rx) => {
            anyhow::bail!("the notification signals stopped; exiting so that it restarts");
        }
        () = reload_on_request(
            &reloader,
            reload_requests,
            hangups,
        ) => {
            anyhow::bail!("the reload requests stopped; exiting so that it restarts");
        }
        () = configure_on_request(&runner, configure_requests) => {
            anyhow::bail!("the configuration requests stopped; exiting so that it restarts");
        }
        () = fetch::fetch_on_request(&runner, fetch_requests) => {
            anyhow::bail!("the package fetches stopped; exiting so that it restarts");
        }
    }
    notifications.abort();
    notify_systemd(&[sd_notify::NotifyState::Stopping]);
    let interrupted = prepared.store.interrupt_running()?;
    if interrupted > 0 {
        tracing::warn!(sessions = interrupted, "session interrupted by the stop");
    }
    tracing::info!("stopping");
    Ok(())
}

/// Signals each notification the listener accepted (NotificationAccepted) and asks the
/// scheduler for its session; never ends.
async fn relay_accepted(
    events: &Events,
    handle: &scheduler::Handle,
    mut accepted: tokio::sync::mpsc::UnboundedReceiver<(String, Request, std::time::Duration)>,
) {
    while let Some((server, request, within)) = accepted.recv().await {
        events.notification_accepted(&server, request.trigger).await;
        handle.request_within(&server, request, within);
    }
    std::future::pending().await
}

/// Reloads on each D-Bus request (answering it) and each SIGHUP (telling systemd, which
/// shows the unit reloading meanwhile); never ends.
async fn reload_on_request(
    reloader: &reload::Reloader<'_>,
    mut requests: tokio::sync::mpsc::UnboundedReceiver<dbus::ReloadRequest>,
    mut hangups: Option<tokio::signal::unix::Signal>,
) {
    loop {
        let hangup = async {
            match &mut hangups {
                Some(h) => h.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            Some(reply) = requests.recv() => {
                // The caller may have given up; nothing to do then.
                let _ = reply.send(reloader.reload());
            }
            Some(()) = hangup => {
                tracing::info!("SIGHUP received: reloading");
                let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
                    .map(|t| i128::from(t.tv_sec()) * 1_000_000 + i128::from(t.tv_nsec()) / 1000)
                    .unwrap_or(0);
                notify_systemd(&[
                    sd_notify::NotifyState::Reloading,
                    sd_notify::NotifyState::MonotonicUsec(now),
                ]);
                let _ = reloader.reload();
                notify_systemd(&[sd_notify::NotifyState::Ready]);
            }
            else => break,
        }
    }
    std::future::pending().await
}

/// Runs local applications' configuration requests (`Tree.RequestConfiguration`) one at a
/// time, beside the sessions; never ends (without a bus there are none to run).
async fn configure_on_request(
    runner: &Runner<'_>,
    mut requests: tokio::sync::mpsc::UnboundedReceiver<dbus::ConfigureRequest>,
) {
    while let Some((moid, reply)) = requests.recv().await {
        let answer = runner.configure(&moid).await.map_err(|e| {
            tracing::error!(moid = %moid, error = %format!("{e:#}"), "configuration request failed");
            format!("{e:#}")
        });
        // The caller may have given up; nothing to do then.
        let _ = reply.send(answer);
    }
    std::future::pending().await
}

/// Feeds the systemd watchdog (`WatchdogSec=`) every half interval, but only while every
/// loop has gone round within the interval: a wedged loop leaves the daemon unmanageable
/// though alive, and systemd then restarts it.
fn watchdog(interval: std::time::Duration, loops: &[(&'static str, Arc<Heartbeat>)]) {
    let mut withheld = false;
    loop {
        std::thread::sleep(interval / 2);
        let stuck: Vec<String> = loops
            .iter()
            .filter(|(_, h)| h.age() > interval)
            .map(|(name, h)| format!("{name} ({} s)", h.age().as_secs()))
            .collect();
        if stuck.is_empty() {
            notify_systemd(&[sd_notify::NotifyState::Watchdog]);
            withheld = false;
        } else if !withheld {
            tracing::error!(stuck = %stuck.join(", "), "a loop has not run within the watchdog interval; no longer feeding the watchdog, so that systemd restarts the daemon");
            withheld = true;
        }
    }
}

/// Tells systemd about our state; a no-op when not started by systemd.
fn notify_systemd(states: &[sd_notify::NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "sd_notify failed");
    }
}

/// Installs the SIGHUP handler now (SIGHUP would end the process until then) and returns
/// its stream: each one asks for a reload.
pub fn hangups() -> std::io::Result<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
}

/// Installs SIGTERM and SIGINT handlers now (so a signal arriving at any later moment is
/// caught) and returns a future that completes on the first of them. Must be called from
/// within the runtime.
pub fn termination() -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
    })
}
