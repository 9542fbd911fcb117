//! Tests of the SQLite store: the helpers, and the tree operations, the path-range scheme,
//! cache validators and bookkeeping; the file, its records and scale in the modules below.

use std::path::Path;

use super::*;
use crate::tree::{AccessType, Format, InstanceKey, Node, NodeProps, Scope, TreeOp, Value};

fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(&dir.path().join("tree.db"), OpenMode::ReadWrite).unwrap();
    (dir, s)
}

fn interior(path: &str) -> Node {
    Node {
        path: path.into(),
        props: NodeProps::interior(AccessType::ALL, Scope::Dynamic),
        value: None,
    }
}

fn leaf(path: &str, v: Value) -> Node {
    Node {
        path: path.into(),
        props: NodeProps::leaf(
            v.format(),
            AccessType::GET | AccessType::REPLACE,
            Scope::Dynamic,
        ),
        value: Some(v),
    }
}

fn chr(path: &str, s: &str) -> Node {
    leaf(path, Value::Chr(s.into()))
}

fn key() -> InstanceKey {
    InstanceKey::new("urn:oma:mo:moid:1.0", "left")
}

/// The TS §6.1.3 example instance `left` (moroot1).
fn moroot1() -> Vec<Node> {
    vec![
        interior(""),
        interior("Data"),
        interior("Data/1"),
        chr("Data/1/Date", "12.1"),
        chr("Data/1/Value", "12.1, 65.2"),
        interior("Data/2"),
        chr("Data/2/Date", "12.2"),
        chr("Data/2/Value", "117.1, 21.2"),
        chr("ID", "GPS"),
        chr("Setting", "0xA2"),
    ]
}

fn put(key: InstanceKey, nodes: Vec<Node>) -> TreeOp {
    TreeOp::PutInstance {
        key,
        ddf_url: None,
        creator: "serverid:dms1".into(),
        nodes,
    }
}

fn paths(nodes: &[Node]) -> Vec<&str> {
    nodes.iter().map(|n| n.path.as_str()).collect()
}

#[test]
fn create_read_replace_delete() {
    let (_d, s) = store();
    s.apply(&[put(key(), moroot1())]).unwrap();
    let inst = s.instance("urn:oma:mo:moid:1.0", "left").unwrap().unwrap();
    assert_eq!(inst.creator, "serverid:dms1");
    assert_eq!(
        s.node(&key(), "ID").unwrap().unwrap().value,
        Some(Value::Chr("GPS".into()))
    );
    assert_eq!(s.node(&key(), "Nope").unwrap(), None);
    assert_eq!(
        paths(&s.children(&key(), "Data").unwrap()),
        ["Data/1", "Data/2"]
    );
    assert_eq!(
        paths(&s.children(&key(), "").unwrap()),
        ["Data", "ID", "Setting"]
    );
    assert_eq!(s.subtree(&key(), "", None).unwrap(), {
        let mut n = moroot1();
        n.sort_by(|a, b| a.path.cmp(&b.path));
        n
    });
    assert_eq!(
        paths(&s.subtree(&key(), "Data", Some(1)).unwrap()),
        ["Data", "Data/1", "Data/2"]
    );
    assert_eq!(paths(&s.subtree(&key(), "", Some(0)).unwrap()), [""]);

    s.apply(&[TreeOp::SetValue {
        key: key(),
        path: "ID".into(),
        value: Value::Chr("GNSS".into()),
    }])
    .unwrap();
    assert_eq!(
        s.node(&key(), "ID").unwrap().unwrap().value,
        Some(Value::Chr("GNSS".into()))
    );

    s.apply(&[TreeOp::PutSubtree {
        key: key(),
        nodes: vec![interior("Data/1"), chr("Data/1/Date", "13.1")],
    }])
    .unwrap();
    assert_eq!(
        paths(&s.subtree(&key(), "Data/1", None).unwrap()),
        ["Data/1", "Data/1/Date"]
    );

    s.apply(&[TreeOp::DeleteSubtree {
        key: key(),
        path: "Data".into(),
    }])
    .unwrap();
    assert_eq!(
        paths(&s.subtree(&key(), "", None).unwrap()),
        ["", "ID", "Setting"]
    );

    // Replacing the whole instance keeps its creator.
    s.apply(&[TreeOp::PutInstance {
        key: key(),
        ddf_url: Some("http://x/ddf".into()),
        creator: "serverid:other".into(),
        nodes: vec![interior(""), chr("ID", "new")],
    }])
    .unwrap();
    let inst = s.instance("urn:oma:mo:moid:1.0", "left").unwrap().unwrap();
    assert_eq!(
        (inst.creator.as_str(), inst.ddf_url.as_deref()),
        ("serverid:dms1", Some("http://x/ddf"))
    );
    assert_eq!(paths(&s.subtree(&key(), "", None).unwrap()), ["", "ID"]);

    s.apply(&[TreeOp::DeleteSubtree {
        key: key(),
        path: String::new(),
    }])
    .unwrap();
    assert_eq!(s.instance("urn:oma:mo:moid:1.0", "left").unwrap(), None);
    assert!(s.subtree(&key(), "", None).unwrap().is_empty());
}

#[test]
fn subtree_ranges_do_not_leak_into_siblings() {
    // '-' and '.' sort before '/', ':' and letters after '0': none of these siblings may be
    // taken for descendants of "a".
    let (_d, s) = store();
    let nodes = vec![
        interior(""),
        interior("a"),
        chr("a/x", "1"),
        interior("a/y"),
        chr("a/y/z", "2"),
        chr("a-b", "3"),
        chr("a.b", "4"),
        chr("a0", "5"),
        chr("a:b", "6"),
        chr("ab", "7"),
        interior("b"),
        chr("b/a", "8"),
    ];
    s.apply(&[put(key(), nodes)]).unwrap();
    assert_eq!(
        paths(&s.subtree(&key(), "a", None).unwrap()),
        ["a", "a/x", "a/y", "a/y/z"]
    );
    s.apply(&[TreeOp::DeleteSubtree {
        key: key(),
        path: "a".into(),
    }])
    .unwrap();
    assert_eq!(
        paths(&s.subtree(&key(), "", None).unwrap()),
        ["", "a-b", "a.b", "a0", "a:b", "ab", "b", "b/a"]
    );
}

#[test]
fn every_value_format_round_trips() {
    let (_d, s) = store();
    let values = [
        Value::Null,
        Value::Chr("héllo".into()),
        Value::Int(-2_147_483_648),
        Value::Bool(true),
        Value::Float(1.25),
        Value::Bin(vec![0, 159, 146, 150, 255]),
        Value::B64("aGk=".into()),
        Value::Xml("<a/>".into()),
        Value::Date("2026-11-24".into()),
        Value::Time("10:00:00Z".into()),
    ];
    let mut nodes = vec![interior("")];
    for (i, v) in values.iter().enumerate() {
        nodes.push(leaf(&format!("v{i}"), v.clone()));
    }
    let mut secret = chr("zsecret", "hunter2");
    secret.props.secret = true;
    secret.props.scope = Scope::Permanent;
    secret.props.mime = Some("text/plain".into());
    nodes.push(secret.clone());
    s.apply(&[put(key(), nodes.clone())]).unwrap();
    assert_eq!(s.subtree(&key(), "", None).unwrap(), nodes);
}

#[test]
fn bad_writes_are_refused_and_change_nothing() {
    let (_d, s) = store();
    s.apply(&[put(key(), moroot1())]).unwrap();
    let before = s.subtree(&key(), "", None).unwrap();
    let cv = s.instance(&key().moid, &key().miid).unwrap().unwrap().cv;
    let other = InstanceKey::new("urn:x:1.0", "i");
    let bad: Vec<Vec<TreeOp>> = vec![
        // A good op followed by a bad one: the good one must not land either.
        vec![
            TreeOp::SetValue {
                key: key(),
                path: "ID".into(),
                value: Value::Chr("x".into()),
            },
            put(other.clone(), vec![chr("", "root leaf")]),
        ],
        vec![put(other.clone(), vec![interior("a")])],
        vec![put(other.clone(), vec![interior(""), chr("a/b", "orphan")])],
        vec![put(
            other.clone(),
            vec![interior(""), chr("a", "1"), chr("a", "2")],
        )],
        vec![put(
            other.clone(),
            vec![interior(""), chr("a", "1"), chr("a/b", "leaf parent")],
        )],
        vec![put(other.clone(), vec![interior(""), chr("..", "x")])],
        vec![put(
            InstanceKey::new("urn:x:1.0", "a/b"),
            vec![interior("")],
        )],
        vec![put(
            other.clone(),
            vec![
                interior(""),
                Node {
                    path: "x".into(),
                    props: NodeProps::leaf(Format::Int, AccessType::GET, Scope::Dynamic),
                    value: Some(Value::Chr("1".into())),
                },
            ],
        )],
        vec![TreeOp::SetValue {
            key: key(),
            path: "ID".into(),
            value: Value::Int(1),
        }],
        vec![TreeOp::SetValue {
            key: key(),
            path: "Data".into(),
            value: Value::Chr("x".into()),
        }],
        vec![TreeOp::SetValue {
            key: key(),
            path: "Nope".into(),
            value: Value::Chr("x".into()),
        }],
        vec![TreeOp::DeleteSubtree {
            key: key(),
            path: "Nope".into(),
        }],
        vec![TreeOp::DeleteSubtree {
            key: other.clone(),
            path: String::new(),
        }],
        vec![TreeOp::PutSubtree {
            key: key(),
            nodes: vec![chr("Nope/x", "no parent")],
        }],
        vec![TreeOp::PutSubtree {
            key: key(),
            nodes: vec![interior("Data/3"), chr("ID", "outside")],
        }],
        vec![TreeOp::PutSubtree {
            key: key(),
            nodes: vec![interior("")],
        }],
    ];
    for ops in bad {
        assert!(s.apply(&ops).is_err(), "accepted {ops:?}");
        assert_eq!(s.subtree(&key(), "", None).unwrap(), before);
        assert_eq!(s.instance(&other.moid, &other.miid).unwrap(), None);
        assert_eq!(
            s.instance(&key().moid, &key().miid).unwrap().unwrap().cv,
            cv
        );
    }
}

#[test]
fn cache_validators_change_on_every_change_and_never_repeat() {
    let (_d, s) = store();
    let cv = |s: &SqliteStore| s.instance(&key().moid, &key().miid).unwrap().map(|i| i.cv);
    let mut seen = std::collections::HashSet::new();
    s.apply(&[put(key(), moroot1())]).unwrap();
    assert!(seen.insert(cv(&s).unwrap()));
    let other = InstanceKey::new("urn:x:1.0", "i");
    s.apply(&[put(other.clone(), vec![interior("")])]).unwrap();
    assert!(
        seen.contains(&cv(&s).unwrap()),
        "a change elsewhere keeps this validator"
    );
    for op in [
        TreeOp::SetValue {
            key: key(),
            path: "ID".into(),
            value: Value::Chr("x".into()),
        },
        TreeOp::DeleteSubtree {
            key: key(),
            path: "Data/1".into(),
        },
        TreeOp::PutSubtree {
            key: key(),
            nodes: vec![interior("Data/1")],
        },
        put(key(), moroot1()),
    ] {
        s.apply(&[op]).unwrap();
        assert!(seen.insert(cv(&s).unwrap()), "validator repeated");
    }
    // Delete and re-create: a new validator, not an old one.
    s.apply(&[TreeOp::DeleteSubtree {
        key: key(),
        path: String::new(),
    }])
    .unwrap();
    s.apply(&[put(key(), moroot1())]).unwrap();
    assert!(
        seen.insert(cv(&s).unwrap()),
        "validator repeated after re-create"
    );
}

#[test]
fn bookkeeping_lands_with_the_batch() {
    let (_d, s) = store();
    assert_eq!(s.bootstrap_digest("a.json").unwrap(), None);
    s.apply(&[
        TreeOp::RecordBootstrap {
            source: "a.json".into(),
            sha256: "11".into(),
        },
        TreeOp::OweSession {
            server_id: "dms1".into(),
            reason: OwedReason::BootstrapComplete,
        },
        TreeOp::OweSession {
            server_id: "dms1".into(),
            reason: OwedReason::BootstrapComplete,
        },
    ])
    .unwrap();
    assert_eq!(s.bootstrap_digest("a.json").unwrap().as_deref(), Some("11"));
    let owed = s.owed_sessions().unwrap();
    assert_eq!(owed.len(), 1);
    assert_eq!(
        (owed[0].server_id.as_str(), owed[0].reason),
        ("dms1", OwedReason::BootstrapComplete)
    );
    // A failing batch records nothing.
    assert!(
        s.apply(&[
            TreeOp::RecordBootstrap {
                source: "b.json".into(),
                sha256: "22".into()
            },
            TreeOp::DeleteSubtree {
                key: key(),
                path: String::new()
            },
        ])
        .is_err()
    );
    assert_eq!(s.bootstrap_digest("b.json").unwrap(), None);
}

/// Every instance's kept byte count (migration v10) against its nodes summed afresh, for
/// the database at `path`; returns the counts by MIID.
fn byte_counts_agree(path: &Path) -> Vec<(String, i64)> {
    let c = rusqlite::Connection::open(path).unwrap();
    let rows: Vec<(String, i64, i64)> = c
        .prepare(&format!(
            "SELECT i.miid, i.bytes,
                    (SELECT COALESCE(SUM({VALUE_SIZE}), 0) FROM node n WHERE n.instance_id = i.id)
               FROM instance i ORDER BY i.miid"
        ))
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for (miid, kept, summed) in &rows {
        assert_eq!(
            kept, summed,
            "instance {miid}: kept {kept} bytes, holds {summed}"
        );
    }
    rows.into_iter().map(|(m, kept, _)| (m, kept)).collect()
}

mod file;
mod records;
mod scale;
