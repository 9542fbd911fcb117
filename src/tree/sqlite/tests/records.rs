//! What the store keeps beside the tree: the outbox, subscriptions and DEFAULT sources, the bounded session history and its durability, and the one-SrvID rule across accounts.

use super::*;

#[test]
fn outbox_subscriptions_and_defaults_persist() {
    use crate::tree::{OutItem, Outgoing, Subscription};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tree.db");
    {
        let s = SqliteStore::open(&path, OpenMode::ReadWrite).unwrap();
        let out = |server: &str, payload: &str| {
            TreeOp::Enqueue(Outgoing {
                id: 0,
                server_id: server.into(),
                item: OutItem::Alert {
                    alert: serde_json::json!({ "AlertType": payload }),
                    to: Some("https://x/async".into()),
                },
            })
        };
        s.apply(&[out("dms1", "a1"), out("dms2", "b1"), out("dms1", "a2")])
            .unwrap();
        s.apply(&[TreeOp::Enqueue(Outgoing {
            id: 0,
            server_id: "dms1".into(),
            item: OutItem::ExecResult {
                client_uri: "urn:x:1.0/i/Run".into(),
                status: 410,
                alert: serde_json::json!({ "AlertType": "r1" }),
                to: None,
            },
        })])
        .unwrap();
        let sub = |uri: &str, to: &str| Subscription {
            server_id: "dms1".into(),
            client_uri: uri.into(),
            server_uri: to.into(),
        };
        s.apply(&[
            TreeOp::Subscribe(sub("urn:x:1.0/i/", "https://a")),
            TreeOp::Subscribe(sub("urn:x:1.0/i/", "https://b")),
        ])
        .unwrap();
        s.apply(&[TreeOp::SetDefault {
            moid: "urn:m:1.0".into(),
            server_id: "dms1".into(),
            server_uri: "https://one".into(),
        }])
        .unwrap();
        s.apply(&[TreeOp::SetDefault {
            moid: "urn:m:1.0".into(),
            server_id: "dms2".into(),
            server_uri: "https://two".into(),
        }])
        .unwrap();
    }
    // Everything survives a reopen (a restart).
    let s = SqliteStore::open(&path, OpenMode::ReadWrite).unwrap();
    let q = s.outbox("dms1").unwrap();
    let kinds: Vec<&serde_json::Value> = q
        .iter()
        .filter_map(|o| o.item.alert().and_then(|(a, _)| a.get("AlertType")))
        .collect();
    assert_eq!(kinds, ["a1", "a2", "r1"]);
    assert!(
        matches!(&q[2].item, OutItem::ExecResult { status: 410, client_uri, to: None, .. } if client_uri == "urn:x:1.0/i/Run"),
        "{q:?}"
    );
    assert!(
        matches!(&q[0].item, OutItem::Alert { to: Some(t), .. } if t == "https://x/async"),
        "{q:?}"
    );
    // A row this build cannot read (a newer kind, or a damaged payload) is left alone.
    s.lock()
        .execute(
            "INSERT INTO outbox (server_id, kind, target, payload, created_at)
             VALUES ('dms1', 'exec-result-v9', NULL, x'00', 0), ('dms1', 'alert', NULL, x'ff', 0)",
            [],
        )
        .unwrap();
    assert_eq!(s.outbox("dms1").unwrap().len(), 3);
    s.remove_outgoing(&[q[0].id]).unwrap();
    assert_eq!(s.outbox("dms1").unwrap().len(), 2);
    assert_eq!(s.outbox("dms2").unwrap().len(), 1);
    let subs = s.subscriptions().unwrap();
    assert_eq!(
        subs.len(),
        1,
        "a second SUB of the same ClientURI replaces the first"
    );
    assert_eq!(subs[0].server_uri, "https://b");
    assert_eq!(
        s.default_source("urn:m:1.0").unwrap(),
        Some(("dms2".into(), "https://two".into()))
    );
    assert_eq!(s.default_source("urn:other:1.0").unwrap(), None);
    s.apply(&[TreeOp::Unsubscribe {
        server_id: "dms1".into(),
        client_uri: "urn:x:1.0/i/".into(),
    }])
    .unwrap();
    assert!(s.subscriptions().unwrap().is_empty());
    assert!(
        s.apply(&[TreeOp::Unsubscribe {
            server_id: "dms1".into(),
            client_uri: "urn:x:1.0/i/".into()
        }])
        .is_err()
    );
}

#[test]
fn the_history_keeps_only_the_newest_sessions() {
    let (_d, s) = store();
    let keep = crate::tree::HISTORY_KEEP as usize;
    let mut last = 0;
    for i in 0..keep + 5 {
        last = s.session_started("srv", &format!("t{i}")).unwrap();
    }
    let rows = s.sessions(u32::MAX).unwrap();
    assert_eq!(rows.len(), keep);
    assert_eq!(rows[0].id, last);
    assert_eq!(rows[0].trigger, format!("t{}", keep + 4));
    assert_eq!(
        rows.last().unwrap().trigger,
        "t5",
        "the oldest five are gone"
    );
}

#[test]
fn history_writes_leave_later_commits_durable() {
    let (_d, s) = store();
    let synchronous = |s: &SqliteStore| -> i64 {
        s.lock()
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap()
    };
    assert_eq!(synchronous(&s), 2, "FULL from the start");
    let id = s.session_started("srv", "client").unwrap();
    assert_eq!(
        synchronous(&s),
        2,
        "FULL again after the relaxed history write"
    );
    s.session_finished(id, "ended", None, 1, 2).unwrap();
    assert_eq!(synchronous(&s), 2);
    assert_eq!(s.sessions(1).unwrap()[0].outcome, "ended");
}

#[test]
fn the_last_session_is_per_server() {
    let (_d, s) = store();
    assert!(s.last_session("a").unwrap().is_none());
    let a1 = s.session_started("a", "client").unwrap();
    let b1 = s.session_started("b", "client").unwrap();
    s.session_finished(a1, "ended", None, 1, 1).unwrap();
    assert_eq!(s.last_session("a").unwrap().unwrap().id, a1);
    assert_eq!(s.last_session("b").unwrap().unwrap().outcome, "running");
    let a2 = s.session_started("a", "bootstrap").unwrap();
    assert_eq!(s.last_session("a").unwrap().unwrap().id, a2);
    assert_eq!(s.last_session("b").unwrap().unwrap().id, b1);
}

/// TS §12.2: SrvID is unique within the client. The store refuses a second account with
/// one SrvID however it is written (a new instance, a replaced subtree, a replaced value),
/// and the refused batch leaves nothing behind.
#[test]
fn srvid_is_unique_across_accounts() {
    const DMACC: &str = "urn:oma:mo:oma-dm-dmacc:1.2";
    let (_d, s) = store();
    let account = |miid: &str, id: &str| TreeOp::PutInstance {
        key: InstanceKey::new(DMACC, miid),
        ddf_url: None,
        creator: "local".into(),
        nodes: vec![interior(""), chr("SrvID", id), chr("Name", miid)],
    };
    s.apply(&[account("one", "dms1"), account("two", "dms2")])
        .unwrap();
    let generation = s.generation();
    let before: Vec<_> = s.instances(None).unwrap();
    let attempts = [
        vec![account("aaa", "dms1")],
        vec![
            account("three", "dms3"),
            TreeOp::SetValue {
                key: InstanceKey::new(DMACC, "three"),
                path: "SrvID".into(),
                value: Value::Chr("dms2".into()),
            },
        ],
        vec![TreeOp::SetValue {
            key: InstanceKey::new(DMACC, "two"),
            path: "SrvID".into(),
            value: Value::Chr("dms1".into()),
        }],
        vec![TreeOp::PutSubtree {
            key: InstanceKey::new(DMACC, "two"),
            nodes: vec![chr("SrvID", "dms1")],
        }],
    ];
    for ops in attempts {
        match s.apply(&ops) {
            Err(StoreError::Invalid(why)) => assert!(why.contains("SrvID"), "{why}"),
            other => panic!("{ops:?} gave {other:?}"),
        }
        assert_eq!(s.instances(None).unwrap(), before);
        assert_eq!(s.generation(), generation, "a refused batch is no change");
    }
    // The same SrvID in another MO is no account; re-bootstrap (delete, then put) works.
    s.apply(&[TreeOp::PutInstance {
        key: InstanceKey::new("urn:x:other:1.0", "x"),
        ddf_url: None,
        creator: "local".into(),
        nodes: vec![interior(""), chr("SrvID", "dms1")],
    }])
    .unwrap();
    s.apply(&[
        TreeOp::DeleteSubtree {
            key: InstanceKey::new(DMACC, "one"),
            path: String::new(),
        },
        account("new", "dms1"),
    ])
    .unwrap();
    assert!(s.generation() > generation);
}

/// The byte counts a quota reads (migration v10) follow every kind of write: a new
/// instance, a replaced subtree, a new value of another size, a deleted subtree, a
/// streamed replacement, a replaced instance and a deleted one; usage and instance_bytes
/// read them.
#[test]
fn byte_counts_follow_every_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tree.db");
    let s = SqliteStore::open(&path, OpenMode::ReadWrite).unwrap();
    let other = InstanceKey::new("urn:oma:mo:moid:1.0", "right");
    let bin = |p: &str, b: &[u8]| leaf(p, Value::Bin(b.to_vec()));
    let steps: Vec<Vec<TreeOp>> = vec![
        vec![put(key(), moroot1()), put(other.clone(), moroot1())],
        vec![TreeOp::PutSubtree {
            key: key(),
            nodes: vec![
                interior("Data"),
                chr("Data/x", "twelve bytes"),
                bin("Data/b", &[1, 2, 3]),
            ],
        }],
        vec![TreeOp::SetValue {
            key: key(),
            path: "ID".into(),
            value: Value::Chr("a longer identifier".into()),
        }],
        vec![TreeOp::SetValue {
            key: key(),
            path: "Setting".into(),
            value: Value::Chr(String::new()),
        }],
        vec![TreeOp::DeleteSubtree {
            key: other.clone(),
            path: "Data/2".into(),
        }],
        vec![put(
            other.clone(),
            vec![
                interior(""),
                leaf("n", Value::Int(7)),
                leaf("b", Value::Bool(true)),
            ],
        )],
    ];
    for (i, ops) in steps.iter().enumerate() {
        s.apply(ops).unwrap_or_else(|e| panic!("step {i}: {e}"));
        byte_counts_agree(&path);
    }
    // A streamed replacement of more than a batch's worth.
    let many: Vec<Node> = std::iter::once(interior("Big"))
        .chain((0..70).map(|i| chr(&format!("Big/n{i}"), "v")))
        .collect();
    s.apply_streamed(
        &mut |sink| {
            sink.begin(&Put {
                key: key(),
                path: "Big".into(),
                ddf_url: None,
                creator: String::new(),
                parent: None,
            })?;
            many.iter().cloned().try_for_each(|n| sink.node(n))
        },
        &[],
    )
    .unwrap();
    let counts = byte_counts_agree(&path);
    let left = counts.iter().find(|(m, _)| m == "left").map(|c| c.1);
    assert_eq!(s.instance_bytes(&key()).unwrap() as i64, left.unwrap());
    let total: i64 = counts.iter().map(|c| c.1).sum();
    let usage = s.usage("serverid:dms1").unwrap();
    assert_eq!((usage.instances, usage.bytes as i64), (2, total));
    s.apply(&[TreeOp::DeleteSubtree {
        key: other.clone(),
        path: String::new(),
    }])
    .unwrap();
    assert_eq!(byte_counts_agree(&path).len(), 1);
    assert_eq!(s.instance_bytes(&other).unwrap(), 0);
}
