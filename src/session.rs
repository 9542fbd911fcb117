//! The session driver (TS §5.2): one DM session with one server, as an explicit state
//! machine from Package#1 to END or abort, over a [`Transport`] that carries packages.
//!
//! ```text
//!  Initiate ──P1──▶ Await ──P2 ok──▶ Execute ──END──▶ Finished(Ended)
//!                    ▲  │                │
//!                    │  └─bad reply──▶ Finished(Aborted)
//!                    └──────P3─── Respond ◀┘
//! ```
//!
//! HTTP 4xx/5xx, a dropped or timed-out connection, a body that is not a Package#2: the
//! session aborts and is not retried (TS §5.6); the scheduler decides about a later one.

use std::future::Future;

use crate::engine::{Engine, Ports, Session, Trigger};
use crate::mo::account::Account;
use crate::protocol::packages::{
    self, Command, P1_TYPE, P2_TYPE, P2Limits, Package3, Part, encode_package1,
    encode_package3_http,
};
use crate::protocol::uri::ServerUriValues;
use crate::tree::{OwedReason, StoreError, TreeOp, TreeStore};

/// An HTTP answer to a package POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReply {
    /// HTTP status.
    pub status: u16,
    /// Media type of the body (without parameters), if any.
    pub content_type: Option<String>,
    /// Formats from `OMADM-Accept` (TS §5.5).
    pub omadm_accept: Vec<String>,
    /// How long a 503 or 429 asked the client to wait (`Retry-After`).
    pub retry_after: Option<std::time::Duration>,
    /// The body.
    pub body: Vec<u8>,
}

/// Why a package could not be carried; it keeps the transport's own error as its cause.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct TransportError(pub Box<dyn std::error::Error + Send + Sync>);

/// Carries session packages: POSTs a body with its media type to a URL (adding `Accept`
/// and `OMADM-DevID`) and returns the answer.
pub trait Transport {
    /// One POST.
    fn post(
        &self,
        url: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> impl Future<Output = Result<HttpReply, TransportError>>;
}

/// Bounds and switches of a session.
#[derive(Debug, Clone, Copy)]
pub struct SessionOptions {
    /// Largest Package#2 accepted.
    pub max_package_bytes: usize,
    /// Most commands in one Package#2.
    pub max_commands: usize,
    /// Most Package#2s in one session (a server that never ends it is cut off).
    pub max_packages: u32,
    /// Whether SHOW may open plain http URLs.
    pub allow_http_show: bool,
    /// Longest time from Package#1 to the end (`sessions.max-duration-secs`).
    pub max_duration: std::time::Duration,
}

/// How a session finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    /// The server sent END.
    Ended,
    /// The session stopped early, for this reason.
    Aborted(String),
    /// An administrator ended it (`CancelSession`); the server sees the connection end.
    Cancelled,
}

/// What a running session has done so far, for whoever follows it (`SessionProgress`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// Package#2s received.
    pub packages: u32,
    /// Commands received, those being run now included.
    pub commands: u32,
    /// What the server asked for in the package being run, e.g. "5 GET, 1 HGET".
    pub current: String,
}

/// The sessions running now, by server, each with the switch an administrator's cancel
/// throws.
#[derive(Debug, Clone, Default)]
pub struct Running(
    std::sync::Arc<
        std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<tokio::sync::Notify>>>,
    >,
);

impl Running {
    /// A session with `server` starts: its cancel switch.
    pub fn enter(&self, server: &str) -> std::sync::Arc<tokio::sync::Notify> {
        let switch = std::sync::Arc::new(tokio::sync::Notify::new());
        self.lock().insert(server.to_owned(), switch.clone());
        switch
    }

    /// The session with `server` is over.
    pub fn leave(&self, server: &str) {
        self.lock().remove(server);
    }

    /// Ends the session running with `server`; false when none runs.
    pub fn cancel(&self, server: &str) -> bool {
        match self.lock().get(server) {
            // A stored permit: a cancel just before the session waits on it still counts.
            Some(switch) => {
                switch.notify_one();
                true
            }
            None => false,
        }
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<
        '_,
        std::collections::HashMap<String, std::sync::Arc<tokio::sync::Notify>>,
    > {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl std::fmt::Debug for Plan<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field("server", &self.account.server_id)
            .field("trigger", &self.trigger)
            .field("req_mos", &self.req_mos)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// "5 GET, 1 HGET": the commands of a package by name, in order of first appearance.
fn summary(cmds: &[Command]) -> String {
    // An unknown command keeps the server's own name: only letters of a command name
    // reach the signal, so a server cannot put terminal escapes on an admin's screen.
    let shown = |name: &str| -> String {
        let clean: String = name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
            .take(16)
            .collect();
        if clean.is_empty() { "?".into() } else { clean }
    };
    let mut counts: Vec<(String, usize)> = Vec::new();
    for c in cmds {
        let name = shown(c.name());
        match counts.iter_mut().find(|(n, _)| *n == name) {
            Some((_, k)) => *k += 1,
            None => counts.push((name, 1)),
        }
    }
    counts
        .iter()
        .map(|(n, k)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a session did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Its row in the session history.
    pub id: i64,
    /// How it finished.
    pub finish: Finish,
    /// Package#2s received.
    pub packages: u32,
    /// Commands executed.
    pub commands: u32,
    /// How long the server asked the client to wait (`Retry-After` on a 503 or 429).
    pub retry_after: Option<std::time::Duration>,
    /// Queued Generic Alerts the server took (answered with a Package#2).
    pub alerts_delivered: u32,
}

/// The states of a session.
#[derive(Debug)]
enum State {
    /// Send Package#1.
    Initiate,
    /// Check the HTTP answer that should carry a Package#2.
    Await(HttpReply),
    /// Run the commands.
    Execute(Vec<Command>),
    /// Send Package#3.
    Respond(Package3, Vec<Part>),
    /// Done.
    Finished(Finish),
}

/// The name a trigger has in the history and on D-Bus.
pub fn trigger_name(t: Trigger) -> String {
    match t {
        Trigger::ClientInitiated => "client".into(),
        Trigger::ServerInitiated {
            notification_id: Some(n),
        } => format!("notification:{n}"),
        Trigger::ServerInitiated {
            notification_id: None,
        } => "notification".into(),
        Trigger::BootstrapComplete => "bootstrap".into(),
    }
}

/// What one session is to be: with whom, why, and where it starts.
#[derive(Clone, Copy)]
pub struct Plan<'a> {
    /// The server's account.
    pub account: &'a Account,
    /// Why the session happens (its Package#1 alert).
    pub trigger: Trigger,
    /// Send the MOS in Package#1 (a notification's REQ-MOS).
    pub req_mos: bool,
    /// Values for `[DevID]`-style ServerURI substitution.
    pub uri_values: &'a ServerUriValues,
    /// Bounds and switches.
    pub options: SessionOptions,
    /// Where Package#1 goes instead of the SrvURI (alerts bound for an EXEC's ServerURI).
    pub url: Option<&'a str>,
    /// Thrown to end the session early (an administrator's cancel).
    pub cancel: Option<&'a tokio::sync::Notify>,
    /// Told what the session does, before each package's commands run.
    pub progress: Option<&'a (dyn Fn(Progress) + Sync)>,
}

/// Runs one session as `plan` says, recording it in the history. Its log lines carry the
/// session's span, and only its own: the span is attached to this future, not held by the
/// task across awaits.
pub async fn run<T: Transport, P: Ports>(
    store: &dyn TreeStore,
    engine: &Engine<'_, P>,
    transport: &T,
    plan: Plan<'_>,
) -> Result<Report, StoreError> {
    use tracing::Instrument as _;
    // The history is a log: a disk too full to extend it must not keep a server from
    // managing the device (it may be coming to free space). Such a session runs unrecorded
    // (id 0).
    let id = store
        .session_started(&plan.account.server_id, &trigger_name(plan.trigger))
        .unwrap_or_else(|e| {
            tracing::warn!(server = %plan.account.server_id, error = %e, "cannot record the session in the history; it runs unrecorded");
            0
        });
    let span = tracing::info_span!("session", id, server = %plan.account.server_id);
    drive(store, engine, transport, plan, id)
        .instrument(span)
        .await
}

async fn drive<T: Transport, P: Ports>(
    store: &dyn TreeStore,
    engine: &Engine<'_, P>,
    transport: &T,
    plan: Plan<'_>,
    id: i64,
) -> Result<Report, StoreError> {
    let Plan {
        account,
        trigger,
        req_mos,
        uri_values,
        options: limits,
        url,
        cancel,
        progress,
    } = plan;
    tracing::info!(trigger = %trigger_name(trigger), url = %crate::protocol::uri::redact(url.unwrap_or(&account.srv_uri)), "session starts");
    let mut session = Session {
        server_id: account.server_id.clone(),
        uri_values: uri_values.clone(),
        server_accept: Vec::new(),
        target: url.unwrap_or(&account.srv_uri).to_owned(),
        allow_http_show: limits.allow_http_show,
    };
    let (mut packages, mut commands) = (0u32, 0u32);
    let mut carried: Vec<i64> = Vec::new();
    let mut alerts_delivered = 0u32;
    let mut retry_after = None;
    // The whole exchange runs against the session's deadline: commands already applied stay
    // (each is its own transaction); the server sees the connection end, as on any failure.
    let exchange = async {
        let mut state = State::Initiate;
        loop {
            state = match state {
                State::Initiate => {
                    let (p1, ids) = engine.package1(
                        &account.server_id,
                        trigger,
                        req_mos,
                        &session.target,
                        &account.srv_uri,
                    )?;
                    carried = ids;
                    match transport
                        .post(&session.target, P1_TYPE, encode_package1(&p1))
                        .await
                    {
                        Ok(reply) => State::Await(reply),
                        Err(e) => {
                            State::Finished(Finish::Aborted(format!("sending Package#1: {e}")))
                        }
                    }
                }
                State::Await(reply) => {
                    if !(200..300).contains(&reply.status) {
                        retry_after = reply.retry_after;
                        State::Finished(Finish::Aborted(match reply.retry_after {
                            Some(wait) => format!(
                                "server answered HTTP {} (Retry-After {} s)",
                                reply.status,
                                wait.as_secs()
                            ),
                            None => format!("server answered HTTP {}", reply.status),
                        }))
                    } else if reply
                        .content_type
                        .as_deref()
                        .map(str::to_ascii_lowercase)
                        .as_deref()
                        != Some(P2_TYPE)
                    {
                        State::Finished(Finish::Aborted(format!(
                            "server answered {} instead of a Package#2",
                            reply.content_type.as_deref().unwrap_or("no content type")
                        )))
                    } else {
                        let p2 = packages::decode_package2(
                            &reply.body,
                            P2Limits {
                                max_bytes: limits.max_package_bytes,
                                max_commands: limits.max_commands,
                            },
                        );
                        match p2 {
                            Err(e) => {
                                State::Finished(Finish::Aborted(format!("bad Package#2: {e}")))
                            }
                            Ok(cmds) => {
                                packages += 1;
                                // The server took the package that carried queued alerts.
                                // Kept when that fails: sent again, they arrive at least once.
                                if !carried.is_empty() {
                                    match store.remove_outgoing(&carried) {
                                        Ok(()) => {
                                            alerts_delivered +=
                                                u32::try_from(carried.len()).unwrap_or(u32::MAX);
                                        }
                                        Err(e) => {
                                            tracing::warn!(error = %e, "cannot remove delivered alerts from the outbox; they will be sent again");
                                        }
                                    }
                                    carried.clear();
                                }
                                if !reply.omadm_accept.is_empty() {
                                    session.server_accept = reply.omadm_accept;
                                }
                                if packages > limits.max_packages {
                                    State::Finished(Finish::Aborted(format!(
                                        "more than {} packages without END",
                                        limits.max_packages
                                    )))
                                } else {
                                    State::Execute(cmds)
                                }
                            }
                        }
                    }
                }
                State::Execute(cmds) => {
                    commands += cmds.len() as u32;
                    if let Some(tell) = progress {
                        tell(Progress {
                            packages,
                            commands,
                            current: summary(&cmds),
                        });
                    }
                    let out = engine.run(&mut session, &cmds).await;
                    if out.end {
                        State::Finished(Finish::Ended)
                    } else {
                        State::Respond(out.package3, out.parts)
                    }
                }
                State::Respond(p3, parts) => {
                    let encoded = encode_package3_http(&p3, &parts);
                    // The package holds the parts now: free them before it is sent.
                    drop(parts);
                    match encoded {
                        Ok((ct, body)) => match transport.post(&session.target, &ct, body).await {
                            Ok(reply) => State::Await(reply),
                            Err(e) => {
                                State::Finished(Finish::Aborted(format!("sending Package#3: {e}")))
                            }
                        },
                        // Content types come from DDFs, checked when loaded: a defect.
                        Err(e) => {
                            State::Finished(Finish::Aborted(format!("encoding Package#3: {e}")))
                        }
                    }
                }
                State::Finished(f) => break Ok::<_, StoreError>(f),
            };
        }
    };
    let cancelled = async {
        match cancel {
            Some(switch) => switch.notified().await,
            None => std::future::pending().await,
        }
    };
    // Dropping the exchange drops its connection: the server sees the session end.
    let finish = tokio::select! {
        timed = tokio::time::timeout(limits.max_duration, exchange) => match timed {
            Ok(finish) => finish?,
            Err(_) => Finish::Aborted(format!(
                "the session took longer than {} s (sessions.max-duration-secs)",
                limits.max_duration.as_secs()
            )),
        },
        () = cancelled => Finish::Cancelled,
    };
    let (outcome, detail) = match &finish {
        Finish::Ended => ("ended", None),
        Finish::Aborted(why) => ("aborted", Some(why.as_str())),
        Finish::Cancelled => ("cancelled", Some("cancelled by an administrator")),
    };
    if id != 0
        && let Err(e) = store.session_finished(
            id,
            outcome,
            detail,
            i64::from(packages),
            i64::from(commands),
        )
    {
        tracing::warn!(error = %e, "cannot record the session's end in the history");
    }
    if finish == Finish::Ended
        && trigger == Trigger::BootstrapComplete
        && let Err(e) = store.apply(&[TreeOp::ClearOwed {
            server_id: account.server_id.clone(),
            reason: OwedReason::BootstrapComplete,
        }])
    {
        // Still owed: the next session with the server is a BootstrapComplete again.
        tracing::warn!(error = %e, "cannot record that BootstrapComplete was delivered");
    }
    match &finish {
        Finish::Ended => tracing::info!(packages, commands, alerts_delivered, "session ended"),
        Finish::Aborted(why) => {
            tracing::warn!(packages, commands, alerts_delivered, reason = %why, "session aborted")
        }
        Finish::Cancelled => {
            tracing::warn!(packages, commands, "session cancelled by an administrator")
        }
    }
    Ok(Report {
        id,
        finish,
        packages,
        commands,
        retry_after,
        alerts_delivered,
    })
}

#[cfg(test)]
mod tests;
