//! Tests of `session`.

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
        retry_after: None,
        body: json!({ "CMD": cmds }).to_string().into_bytes(),
    })
}

const LIMITS: SessionOptions = SessionOptions {
    max_duration: std::time::Duration::from_secs(600),
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
            max_server_alerts: 100,
            max_server_result_urls: 4,
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
            cancel: None,
            progress: None,
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
                retry_after: None,
                body: vec![],
            })],
            "HTTP 500",
        ),
        (
            vec![Ok(HttpReply {
                status: 401,
                content_type: None,
                omadm_accept: vec![],
                retry_after: None,
                body: vec![],
            })],
            "HTTP 401",
        ),
        (
            vec![Ok(HttpReply {
                status: 200,
                content_type: Some("text/html".into()),
                omadm_accept: vec![],
                retry_after: None,
                body: b"<html>".to_vec(),
            })],
            "text/html instead of a Package#2",
        ),
        (
            vec![Ok(HttpReply {
                status: 200,
                content_type: Some(P2_TYPE.into()),
                omadm_accept: vec![],
                retry_after: None,
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

/// What SessionProgress says of a package: its commands by name; a server's own name for
/// an unknown command is cut to the letters of a name, so no escape reaches a terminal.
#[test]
fn progress_names_the_commands_and_nothing_a_server_smuggles_in() {
    use crate::protocol::packages::Command;
    let get = || Command::Get {
        client_uri: "urn:x:1.0//a".into(),
    };
    let cmds = [
        get(),
        get(),
        Command::Unknown {
            name: "\u{1b}]52;c;ZXZpbA==\u{7}".into(),
        },
        Command::Unknown {
            name: "\u{1b}\u{7}".into(),
        },
        Command::End,
    ];
    assert_eq!(super::summary(&cmds), "2 GET, 1 52cZXZpbA, 1 ?, 1 END");
}
