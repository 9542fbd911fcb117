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
}

/// How a session finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    /// The server sent END.
    Ended,
    /// The session stopped early, for this reason.
    Aborted(String),
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
#[derive(Debug, Clone, Copy)]
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
    let id = store.session_started(&plan.account.server_id, &trigger_name(plan.trigger))?;
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
    let mut state = State::Initiate;
    let finish = loop {
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
                    Err(e) => State::Finished(Finish::Aborted(format!("sending Package#1: {e}"))),
                }
            }
            State::Await(reply) => {
                if !(200..300).contains(&reply.status) {
                    State::Finished(Finish::Aborted(format!(
                        "server answered HTTP {}",
                        reply.status
                    )))
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
                        Err(e) => State::Finished(Finish::Aborted(format!("bad Package#2: {e}"))),
                        Ok(cmds) => {
                            packages += 1;
                            // The server took the package that carried queued alerts.
                            if !carried.is_empty() {
                                store.remove_outgoing(&carried)?;
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
                let out = engine.run(&mut session, &cmds).await;
                if out.end {
                    State::Finished(Finish::Ended)
                } else {
                    State::Respond(out.package3, out.parts)
                }
            }
            State::Respond(p3, parts) => match encode_package3_http(&p3, &parts) {
                Ok((ct, body)) => match transport.post(&session.target, &ct, body).await {
                    Ok(reply) => State::Await(reply),
                    Err(e) => State::Finished(Finish::Aborted(format!("sending Package#3: {e}"))),
                },
                // Content types come from DDFs, checked when loaded: this is a defect.
                Err(e) => State::Finished(Finish::Aborted(format!("encoding Package#3: {e}"))),
            },
            State::Finished(f) => break f,
        };
    };
    let (outcome, detail) = match &finish {
        Finish::Ended => ("ended", None),
        Finish::Aborted(why) => ("aborted", Some(why.as_str())),
    };
    store.session_finished(
        id,
        outcome,
        detail,
        i64::from(packages),
        i64::from(commands),
    )?;
    if finish == Finish::Ended && trigger == Trigger::BootstrapComplete {
        store.apply(&[TreeOp::ClearOwed {
            server_id: account.server_id.clone(),
            reason: OwedReason::BootstrapComplete,
        }])?;
    }
    match &finish {
        Finish::Ended => tracing::info!(packages, commands, "session ended"),
        Finish::Aborted(why) => {
            tracing::warn!(packages, commands, reason = %why, "session aborted")
        }
    }
    Ok(Report {
        id,
        finish,
        packages,
        commands,
    })
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::VecDeque;
    use std::future::ready;

    use serde_json::json;

    use super::*;
    use crate::engine::{Executed, Fetched, Limits, Method, PortError, Sent, Shown};
    use crate::mo::Registry;
    use crate::mo::bootstrap::{BootstrapLimits, apply_document};
    use crate::tree::{Journal as _, Tree as _};
    use crate::tree::{OpenMode, OutItem, Outgoing, SqliteStore};

    /// A server as a script of answers; records every POST.
    #[derive(Default)]
    struct Scripted {
        answers: RefCell<VecDeque<Result<HttpReply, TransportError>>>,
        posts: RefCell<Vec<(String, String, Vec<u8>)>>,
    }

    impl Transport for Scripted {
        fn post(
            &self,
            url: &str,
            content_type: &str,
            body: Vec<u8>,
        ) -> impl Future<Output = Result<HttpReply, TransportError>> {
            self.posts
                .borrow_mut()
                .push((url.into(), content_type.into(), body));
            ready(
                self.answers
                    .borrow_mut()
                    .pop_front()
                    .unwrap_or(Err(TransportError("script ran out".into()))),
            )
        }
    }

    struct NoPorts;

    impl Ports for NoPorts {
        fn fetch(&self, _: &str, _: &[&str]) -> impl Future<Output = Result<Fetched, PortError>> {
            ready(Err(PortError("no repository".into())))
        }
        fn send(
            &self,
            _: Method,
            _: &str,
            _: &str,
            _: Vec<u8>,
        ) -> impl Future<Output = Result<Sent, PortError>> {
            ready(Err(PortError("no repository".into())))
        }
        fn check_target(&self, _: &str) -> impl Future<Output = Result<(), PortError>> {
            ready(Ok(()))
        }
        fn show(&self, _: &str, _: &str) -> impl Future<Output = Shown> {
            ready(Shown::NoAgent)
        }
        fn exec(&self, _: &crate::engine::ExecRequest) -> impl Future<Output = Executed> {
            ready(Executed::NoHandler)
        }
    }

    fn p2(cmds: serde_json::Value) -> Result<HttpReply, TransportError> {
        Ok(HttpReply {
            status: 200,
            content_type: Some(P2_TYPE.into()),
            omadm_accept: vec![],
            body: json!({ "CMD": cmds }).to_string().into_bytes(),
        })
    }

    const LIMITS: SessionOptions = SessionOptions {
        max_package_bytes: 1 << 20,
        max_commands: 100,
        max_packages: 5,
        allow_http_show: false,
    };

    struct Fixture {
        _dir: tempfile::TempDir,
        store: SqliteStore,
        reg: Registry,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("t.db"), OpenMode::ReadWrite).unwrap();
        let reg = Registry::builtin();
        let doc = json!([{"ClientURI": "urn:oma:mo:oma-dm-dmacc:1.2//", "MOData": {"acc": {
            "SrvID": "dms1", "SrvURI": "https://dms.example/dm", "Name": "DMS", "Perm": {"p": {"MOID": "*"}}}}}]);
        apply_document(
            &store,
            &reg,
            "b",
            doc.to_string().as_bytes(),
            BootstrapLimits {
                max_file_bytes: 1 << 20,
                max_value_bytes: 1024,
                max_nodes: 100,
            },
        )
        .unwrap();
        Fixture {
            _dir: dir,
            store,
            reg,
        }
    }

    async fn session(f: &Fixture, server: &Scripted, trigger: Trigger) -> Report {
        let engine = Engine::new(
            &f.store,
            &f.reg,
            &NoPorts,
            Limits {
                max_value_bytes: 1024,
                max_document_bytes: 1 << 16,
                max_nodes: 100,
                max_server_bytes: 1 << 20,
                max_server_instances: 100,
                max_server_registrations: 100,
            },
        );
        let acc = crate::mo::account::load(&f.store, "dms1").unwrap().unwrap();
        run(
            &f.store,
            &engine,
            server,
            Plan {
                account: &acc,
                trigger,
                req_mos: false,
                uri_values: &ServerUriValues::default(),
                options: LIMITS,
                url: None,
            },
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn a_multi_package_session_with_cont_and_end() {
        let f = fixture();
        assert_eq!(crate::mo::account::all(&f.store).unwrap().len(), 1);
        let server = Scripted::default();
        server.answers.borrow_mut().extend([
            p2(json!([
                ["GET", "urn:oma:mo:oma-dm-dmacc:1.2/acc/SrvID"],
                ["CONT", "https://dms.example/dm/2"]
            ])),
            p2(json!([["GET", "urn:oma:mo:nope:1.0//"]])),
            p2(json!([["END"]])),
        ]);
        let r = session(&f, &server, Trigger::BootstrapComplete).await;
        assert_eq!(
            (r.finish.clone(), r.packages, r.commands),
            (Finish::Ended, 3, 4)
        );
        let posts = server.posts.borrow();
        assert_eq!(posts.len(), 3, "P1, P3, P3; none after END");
        assert_eq!(
            (posts[0].0.as_str(), posts[0].1.as_str()),
            ("https://dms.example/dm", P1_TYPE)
        );
        let p1: serde_json::Value = serde_json::from_slice(&posts[0].2).unwrap();
        assert_eq!(
            p1["Alert"][0]["AlertType"],
            "urn:oma:at:dm:2.0:BootstrapComplete"
        );
        assert!(
            posts[1].1.starts_with("multipart/form-data"),
            "the GET result rides along"
        );
        assert_eq!(
            posts[2].0, "https://dms.example/dm/2",
            "CONT moved the session"
        );
        assert_eq!(posts[2].1, packages::P3_TYPE);
        let h = &f.store.sessions(10).unwrap()[0];
        assert_eq!(
            (
                h.outcome.as_str(),
                h.trigger.as_str(),
                h.packages,
                h.commands
            ),
            ("ended", "bootstrap", 3, 4)
        );
        assert!(
            f.store.owed_sessions().unwrap().is_empty(),
            "BootstrapComplete delivered"
        );
    }

    #[tokio::test]
    async fn faults_abort_without_retry_and_keep_queued_work() {
        let faults: Vec<(Vec<Result<HttpReply, TransportError>>, &str)> = vec![
            (
                vec![Err(TransportError("connection refused".into()))],
                "sending Package#1: connection refused",
            ),
            (
                vec![Ok(HttpReply {
                    status: 500,
                    content_type: None,
                    omadm_accept: vec![],
                    body: vec![],
                })],
                "HTTP 500",
            ),
            (
                vec![Ok(HttpReply {
                    status: 401,
                    content_type: None,
                    omadm_accept: vec![],
                    body: vec![],
                })],
                "HTTP 401",
            ),
            (
                vec![Ok(HttpReply {
                    status: 200,
                    content_type: Some("text/html".into()),
                    omadm_accept: vec![],
                    body: b"<html>".to_vec(),
                })],
                "text/html instead of a Package#2",
            ),
            (
                vec![Ok(HttpReply {
                    status: 200,
                    content_type: Some(P2_TYPE.into()),
                    omadm_accept: vec![],
                    body: b"{nope".to_vec(),
                })],
                "bad Package#2",
            ),
            (
                vec![p2(json!([])), Err(TransportError("reset".into()))],
                "sending Package#3: reset",
            ),
            (
                (0..7).map(|_| p2(json!([]))).collect(),
                "more than 5 packages",
            ),
        ];
        for (script, want) in faults {
            let f = fixture();
            let alert = crate::protocol::packages::Alert::of_type("urn:x:alert");
            f.store
                .apply(&[TreeOp::Enqueue(Outgoing {
                    id: 0,
                    server_id: "dms1".into(),
                    item: OutItem::Alert {
                        alert: serde_json::to_value(&alert).unwrap(),
                        to: None,
                    },
                })])
                .unwrap();
            let server = Scripted::default();
            let first_fails = !matches!(script.first(), Some(Ok(r)) if r.status == 200 && r.content_type.as_deref() == Some(P2_TYPE) && r.body.starts_with(b"{\"CMD"));
            server.answers.borrow_mut().extend(script);
            let r = session(&f, &server, Trigger::ClientInitiated).await;
            let Finish::Aborted(why) = &r.finish else {
                panic!("{want}: {:?}", r.finish)
            };
            assert!(why.contains(want), "{want}: {why}");
            let posts = server.posts.borrow().len();
            assert!(posts <= 7, "{want}: retried ({posts} posts)");
            let h = &f.store.sessions(1).unwrap()[0];
            assert_eq!(h.outcome, "aborted");
            assert!(h.detail.as_deref().unwrap().contains(want));
            // The queued alert stays until a server has taken the package that carried it.
            assert_eq!(
                f.store.outbox("dms1").unwrap().len(),
                usize::from(first_fails),
                "{want}"
            );
            assert_eq!(
                f.store.owed_sessions().unwrap().len(),
                1,
                "BootstrapComplete still owed"
            );
        }
    }

    #[tokio::test]
    async fn omadm_accept_is_remembered_for_later_commands() {
        let f = fixture();
        let server = Scripted::default();
        let mut first = p2(json!([[
            "HPUT",
            "https://repo/x",
            "urn:oma:mo:oma-dm-dmacc:1.2/acc/"
        ]]))
        .unwrap();
        first.omadm_accept = vec!["application/x-only".into()];
        server
            .answers
            .borrow_mut()
            .extend([Ok(first), p2(json!([["END"]]))]);
        session(&f, &server, Trigger::ClientInitiated).await;
        let p3: serde_json::Value = serde_json::from_slice(&server.posts.borrow()[1].2).unwrap();
        assert_eq!(p3["Status"][0]["sc"], 406, "no format the server accepts");
    }
}
