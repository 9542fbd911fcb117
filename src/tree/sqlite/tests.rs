//! Tests of the SQLite store: the tree operations, the path-range scheme, cache validators,
//! migrations, refusal of foreign files, and scale.

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

#[test]
fn database_file_is_owner_only_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tree.db");
    {
        let s = SqliteStore::open(&path, OpenMode::ReadWrite).unwrap();
        s.apply(&[put(key(), moroot1())]).unwrap();
        assert_eq!(s.schema_version().unwrap(), migrations::LATEST);
    }
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let s = SqliteStore::open(&path, OpenMode::ReadOnly).unwrap();
    assert_eq!(s.subtree(&key(), "", None).unwrap().len(), 10);
    assert!(
        s.apply(&[TreeOp::DeleteSubtree {
            key: key(),
            path: String::new()
        }])
        .is_err(),
        "read-only store wrote"
    );
}

fn digest(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

#[test]
fn foreign_corrupt_and_newer_files_are_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    type Maker = Box<dyn Fn(&Path)>;
    let cases: Vec<(&str, Maker)> = vec![
        (
            "text file",
            Box::new(|p: &Path| {
                std::fs::write(p, "hello, I am not a database\n".repeat(200)).unwrap()
            }),
        ),
        (
            "garbage header",
            Box::new(|p: &Path| {
                let mut b = vec![0u8; 8192];
                b[..16].copy_from_slice(b"SQLite format 3\0");
                b[16..100].fill(0xff);
                std::fs::write(p, b).unwrap();
            }),
        ),
        (
            "other program's database",
            Box::new(|p: &Path| {
                let c = Connection::open(p).unwrap();
                c.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
                    .unwrap();
            }),
        ),
        (
            "newer omadmd schema",
            Box::new(|p: &Path| {
                let c = Connection::open(p).unwrap();
                c.pragma_update(None, "application_id", APPLICATION_ID)
                    .unwrap();
                c.pragma_update(None, "user_version", LATEST + 1).unwrap();
                c.execute_batch("CREATE TABLE future (x);").unwrap();
            }),
        ),
    ];
    for (what, make) in cases {
        let path = dir.path().join(format!("{}.db", what.replace(' ', "-")));
        make(&path);
        let before = digest(&path);
        let err = SqliteStore::open(&path, OpenMode::ReadWrite).unwrap_err();
        assert!(matches!(err, StoreError::Foreign { .. }), "{what}: {err}");
        assert!(err.to_string().contains("left untouched"), "{what}: {err}");
        assert_eq!(digest(&path), before, "{what}: file changed");
        assert!(
            !path.with_extension("db-wal").exists(),
            "{what}: WAL created"
        );
        assert!(
            SqliteStore::open(&path, OpenMode::ReadOnly).is_err(),
            "{what}"
        );
    }
}

#[test]
fn read_only_mode_needs_a_current_database() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.db");
    assert!(SqliteStore::open(&missing, OpenMode::ReadOnly).is_err());
    assert!(!missing.exists(), "read-only open created a file");
    let old = dir.path().join("old.db");
    std::fs::copy(fixture_v1(), &old).unwrap();
    let err = SqliteStore::open(&old, OpenMode::ReadOnly).unwrap_err();
    assert!(err.to_string().contains("start omadmd once"), "{err}");
}

#[test]
fn migrates_from_an_empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tree.db");
    std::fs::File::create(&path).unwrap();
    let s = SqliteStore::open(&path, OpenMode::ReadWrite).unwrap();
    assert_eq!(s.schema_version().unwrap(), LATEST);
    assert!(s.instances(None).unwrap().is_empty());
    assert!(s.owed_sessions().unwrap().is_empty());
}

fn fixture_v1() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tree-v1.db")
}

/// The committed v1 database: made by the v1 schema step with the `left` instance of
/// TS §6.1.3 and a DMAcc account in it. Regenerate with
/// `cargo test --lib make_v1_fixture -- --ignored` (only if v1 itself was wrong).
#[test]
#[ignore]
fn make_v1_fixture() {
    let path = fixture_v1();
    let _ = std::fs::remove_file(&path);
    let mut c = Connection::open(&path).unwrap();
    let tx = c.transaction().unwrap();
    migrations::migrate(&tx, 0, 1).unwrap();
    tx.execute_batch(
        "UPDATE meta SET value = 7 WHERE key = 'change_seq';
         UPDATE meta SET value = 'a1b2c3d4' WHERE key = 'cv_salt';
         INSERT INTO instance (id, moid, miid, ddf_url, creator, cv)
           VALUES (1, 'urn:oma:mo:moid:1.0', 'left', NULL, 'serverid:dms1', 3),
                  (2, 'urn:oma:mo:oma-dm-dmacc:1.2', 'acc', 'http://ddf', 'serverid:dms1', 7);
         INSERT INTO node VALUES
           (1, '', NULL, 'node', NULL, 0, 31, 0, NULL),
           (1, 'Data', '', 'node', NULL, 0, 31, 0, NULL),
           (1, 'Data/1', 'Data', 'node', NULL, 0, 31, 0, NULL),
           (1, 'Data/1/Date', 'Data/1', 'chr', NULL, 0, 24, 0, '12.1'),
           (1, 'Data/1/Value', 'Data/1', 'chr', NULL, 0, 24, 0, '12.1, 65.2'),
           (1, 'ID', '', 'chr', NULL, 0, 24, 0, 'GPS'),
           (1, 'Setting', '', 'chr', NULL, 0, 24, 0, '0xA2'),
           (2, '', NULL, 'node', NULL, 0, 27, 0, NULL),
           (2, 'SrvID', '', 'chr', 'text/plain', 0, 24, 0, 'dms1'),
           (2, 'Secret', '', 'bin', NULL, 0, 16, 1, X'00FF');",
    )
    .unwrap();
    tx.commit().unwrap();
    c.execute_batch("VACUUM").unwrap();
}

#[test]
fn migrates_from_the_committed_v1_fixture_keeping_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tree.db");
    std::fs::copy(fixture_v1(), &path).unwrap();
    let s = SqliteStore::open(&path, OpenMode::ReadWrite).unwrap();
    assert_eq!(s.schema_version().unwrap(), LATEST);
    let instances = s.instances(None).unwrap();
    assert_eq!(instances.len(), 2);
    assert_eq!(instances[0].cv, "a1b2c3d43");
    assert_eq!(
        paths(&s.subtree(&key(), "", None).unwrap()),
        [
            "",
            "Data",
            "Data/1",
            "Data/1/Date",
            "Data/1/Value",
            "ID",
            "Setting"
        ]
    );
    let acc = InstanceKey::new("urn:oma:mo:oma-dm-dmacc:1.2", "acc");
    let secret = s.node(&acc, "Secret").unwrap().unwrap();
    assert_eq!(secret.value, Some(Value::Bin(vec![0, 255])));
    assert!(secret.props.secret);
    // v9 marks the account as one from before sources were recorded; nothing else has one.
    assert_eq!(
        s.account_source("dms1").unwrap().as_deref(),
        Some(crate::tree::BEFORE_SOURCES)
    );
    assert_eq!(s.account_source("acc").unwrap(), None);
    // v2's tables work, and the change serial goes on from where v1 left it.
    s.apply(&[TreeOp::RecordBootstrap {
        source: "x".into(),
        sha256: "y".into(),
    }])
    .unwrap();
    s.apply(&[TreeOp::SetValue {
        key: key(),
        path: "ID".into(),
        value: Value::Chr("z".into()),
    }])
    .unwrap();
    assert_eq!(
        s.instance(&key().moid, &key().miid).unwrap().unwrap().cv,
        "a1b2c3d49"
    );
}

#[test]
fn scale_100k_nodes_and_point_reads_use_the_index() {
    let (_d, s) = store();
    let big = InstanceKey::new("urn:x:big:1.0", "big");
    let mut nodes = vec![interior("")];
    for i in 0..1000 {
        nodes.push(interior(&format!("g{i:04}")));
        for j in 0..99 {
            nodes.push(chr(&format!("g{i:04}/n{j:02}"), &format!("{i}-{j}")));
        }
    }
    assert_eq!(nodes.len(), 100_001);
    s.apply(&[put(big.clone(), nodes), put(key(), moroot1())])
        .unwrap();
    assert_eq!(
        s.node(&big, "g0500/n42").unwrap().unwrap().value,
        Some(Value::Chr("500-42".into()))
    );
    assert_eq!(s.children(&big, "g0999").unwrap().len(), 99);
    assert_eq!(s.subtree(&big, "g0001", None).unwrap().len(), 100);
    // Visiting gives the same nodes, one at a time, and stops when asked.
    let mut seen = Vec::new();
    s.visit_subtree(&big, "g0001", None, &mut |n| {
        seen.push(n);
        true
    })
    .unwrap();
    assert_eq!(seen, s.subtree(&big, "g0001", None).unwrap());
    let mut count = 0;
    s.visit_subtree(&big, "", Some(1), &mut |_| {
        count += 1;
        count < 10
    })
    .unwrap();
    assert_eq!(count, 10);

    // Every read and delete statement is an index search, never a scan of the node table.
    let conn = s.lock();
    let statements = [
        format!(
            "SELECT {NODE_COLUMNS} FROM node WHERE instance_id = (SELECT id FROM instance WHERE moid = 'a' AND miid = 'b') AND path = 'x'"
        ),
        format!(
            "SELECT {NODE_COLUMNS} FROM node WHERE instance_id = (SELECT id FROM instance WHERE moid = 'a' AND miid = 'b') AND parent = 'x' ORDER BY path"
        ),
        format!(
            "SELECT {NODE_COLUMNS} FROM node WHERE instance_id = (SELECT id FROM instance WHERE moid = 'a' AND miid = 'b') AND (path = 'x' OR (path >= 'x/' AND path < 'x0')) ORDER BY path"
        ),
        "DELETE FROM node WHERE instance_id = 1 AND (path = 'x' OR (path >= 'x/' AND path < 'x0'))"
            .into(),
        format!(
            "SELECT {NODE_COLUMNS} FROM node WHERE instance_id = (SELECT id FROM instance WHERE moid = 'a' AND miid = 'b') AND (path = 'x' OR (path >= 'x/' AND path < 'x0')) ORDER BY replace(path, '/', char(1))"
        ),
    ];
    for sql in statements {
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap()
            .query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert!(
            plan.iter().all(|step| !step.starts_with("SCAN node")),
            "{sql}\n{plan:?}"
        );
        assert!(
            plan.iter().any(|step| step.starts_with("SEARCH node")),
            "{sql}\n{plan:?}"
        );
    }
    drop(conn);
    // Deleting one small subtree leaves the rest.
    s.apply(&[TreeOp::DeleteSubtree {
        key: big.clone(),
        path: "g0002".into(),
    }])
    .unwrap();
    assert_eq!(s.subtree(&big, "", None).unwrap().len(), 100_001 - 100);
}

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

/// A visit is depth first: a node's subtree comes before its next sibling even when the
/// sibling's name sorts between them as a path ("a.b" after "a/x", though "a.b" < "a/x").
#[test]
fn visits_are_depth_first() {
    let (_d, s) = store();
    let k = InstanceKey::new("urn:x:dfs:1.0", "d");
    let nodes = vec![
        interior(""),
        interior("a"),
        chr("a/x", "1"),
        interior("a/y"),
        chr("a/y/z", "2"),
        chr("a.b", "3"),
        chr("a-c", "4"),
        chr("b", "5"),
    ];
    s.apply(&[put(k.clone(), nodes)]).unwrap();
    let mut order = Vec::new();
    s.visit_subtree(&k, "", None, &mut |n| {
        order.push(n.path);
        true
    })
    .unwrap();
    assert_eq!(order, ["", "a", "a/x", "a/y", "a/y/z", "a-c", "a.b", "b"]);
    let mut depth1 = Vec::new();
    s.visit_subtree(&k, "a", Some(1), &mut |n| {
        depth1.push(n.path);
        true
    })
    .unwrap();
    assert_eq!(depth1, ["a", "a/x", "a/y"]);
}

/// One replacement as `apply_streamed` is given it.
type Streamed<'p> = (&'p Put, Vec<Node>);

/// `apply_streamed` puts nodes as they come: several replacements and the bookkeeping
/// after them in one transaction; any failure (the caller's own, a node out of place, a
/// node given twice) leaves the tree as it was, the replaced data included.
#[test]
fn streamed_replacements_are_one_transaction() {
    let (_d, s) = store();
    s.apply(&[put(key(), moroot1())]).unwrap();
    let other = InstanceKey::new("urn:oma:mo:moid:1.0", "right");
    let puts = |nodes: &[Streamed], sink: &mut dyn NodeSink| {
        for (p, ns) in nodes {
            sink.begin(p)?;
            for n in ns {
                sink.node(n.clone())?;
            }
        }
        Ok(())
    };
    let data = Put {
        key: key(),
        path: "Data".into(),
        ddf_url: None,
        creator: String::new(),
        parent: None,
    };
    let new = Put {
        key: other.clone(),
        path: String::new(),
        ddf_url: Some("https://ddf/x".into()),
        creator: "serverid:a".into(),
        parent: None,
    };
    let before = s.subtree(&key(), "", None).unwrap();
    let failures: Vec<(Vec<Streamed>, &str)> = vec![
        (
            vec![(
                &data,
                vec![interior("Data"), chr("Data/x", "1"), chr("Data/x", "2")],
            )],
            "listed twice",
        ),
        (
            vec![(&data, vec![interior("Data"), chr("ID2", "1")])],
            "is not below",
        ),
        (
            vec![(&data, vec![chr("Data/x", "1")])],
            "comes before the top",
        ),
        (vec![(&data, vec![])], "empty subtree"),
        (
            vec![
                (&new, vec![interior("")]),
                (&data, vec![interior("Data"), chr("Data/y/z", "1")]),
            ],
            "no interior parent",
        ),
    ];
    for (case, want) in failures {
        let err = s
            .apply_streamed(&mut |sink| puts(&case, sink), &[])
            .unwrap_err();
        assert!(err.to_string().contains(want), "{err}");
        assert_eq!(s.subtree(&key(), "", None).unwrap(), before);
        assert!(s.instance(&other.moid, &other.miid).unwrap().is_none());
    }
    // The caller gives up half-way: nothing stays.
    let err = s
        .apply_streamed(
            &mut |sink| {
                sink.begin(&data)?;
                sink.node(interior("Data"))?;
                Err(StoreError::Cancelled)
            },
            &[],
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::Cancelled));
    assert_eq!(s.subtree(&key(), "", None).unwrap(), before);

    let then = [TreeOp::OweSession {
        server_id: "a".into(),
        reason: OwedReason::BootstrapComplete,
    }];
    let good = vec![
        (&data, vec![interior("Data"), chr("Data/only", "1")]),
        (&new, vec![interior(""), chr("k", "v")]),
    ];
    s.apply_streamed(&mut |sink| puts(&good, sink), &then)
        .unwrap();
    assert_eq!(
        paths(&s.subtree(&key(), "", None).unwrap()),
        ["", "Data", "Data/only", "ID", "Setting"]
    );
    let made = s.instance(&other.moid, &other.miid).unwrap().unwrap();
    assert_eq!(
        (made.creator.as_str(), made.ddf_url.as_deref()),
        ("serverid:a", Some("https://ddf/x"))
    );
    assert_eq!(s.owed_sessions().unwrap().len(), 1);
}
