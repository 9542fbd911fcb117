//! Benchmark: the tree store against raw SQLite doing the same work on the same file, and
//! start-up (database open, migration check, standard MOs, bootstrap) on a 100,000-node
//! tree. `cargo bench --bench store` prints a table; `cargo test` runs it once, small, as a
//! smoke test.

mod common;

use std::time::{Duration, Instant};

use omadmd::config::{Settings, Sources};
use omadmd::host::Host;
use omadmd::tree::Tree as _;
use omadmd::tree::{
    AccessType, Format, InstanceKey, Node, NodeProps, OpenMode, Scope, SqliteStore, TreeOp, Value,
};

fn nodes(groups: usize, per: usize) -> Vec<Node> {
    let mut v = vec![Node {
        path: String::new(),
        props: NodeProps::interior(AccessType::ALL, Scope::Dynamic),
        value: None,
    }];
    for g in 0..groups {
        v.push(Node {
            path: format!("g{g:05}"),
            props: NodeProps::interior(AccessType::ALL, Scope::Dynamic),
            value: None,
        });
        for i in 0..per {
            v.push(Node {
                path: format!("g{g:05}/n{i:03}"),
                props: NodeProps::leaf(Format::Chr, AccessType::ALL, Scope::Dynamic),
                value: Some(Value::Chr(format!("value {g} {i}"))),
            });
        }
    }
    v
}

fn time(n: usize, mut f: impl FnMut(usize)) -> Duration {
    let start = Instant::now();
    for i in 0..n {
        f(i);
    }
    start.elapsed()
}

fn per_op(d: Duration, n: usize) -> String {
    format!("{:>9.2} µs", d.as_secs_f64() * 1e6 / n as f64)
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (groups, per, reads, writes) = if full {
        (1000, 99, 100_000, 2_000)
    } else {
        (10, 9, 100, 10)
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let settings: Settings = omadmd::config::load(&Sources {
        root: Some(root.to_owned()),
        ..Sources::default()
    })
    .expect("config");
    std::fs::create_dir_all(&settings.paths.state_dir).expect("state dir");
    let db = settings.database();
    let key = InstanceKey::new("urn:x:bench:1.0", "big");
    {
        let store = SqliteStore::open(&db, OpenMode::ReadWrite).expect("open");
        store
            .apply(&[TreeOp::PutInstance {
                key: key.clone(),
                ddf_url: None,
                creator: "local".into(),
                nodes: nodes(groups, per),
            }])
            .expect("fill");
    }
    let total = 1 + groups * (per + 1);
    let paths: Vec<String> = (0..reads)
        .map(|i| format!("g{:05}/n{:03}", (i * 7919) % groups, (i * 31) % per))
        .collect();

    // Start-up: what the daemon does before READY, on a tree of `total` nodes.
    let rss_before = common::rss_kib("self");
    let start = Instant::now();
    let prepared = omadmd::daemon::prepare(&settings, Host::default()).expect("prepare");
    let startup = start.elapsed();
    let rss_after = common::rss_kib("self");
    let store = prepared.store;

    // Point reads of leaves.
    let ours_read = time(reads, |i| {
        store.node(&key, &paths[i]).expect("read").expect("node");
    });
    let raw = rusqlite::Connection::open(&db).expect("raw open");
    raw.pragma_update(None, "synchronous", "FULL")
        .expect("pragma");
    let raw_read = time(reads, |i| {
        let mut stmt = raw
            .prepare_cached(
                "SELECT path, format, mime, permanent, access, secret, value FROM node WHERE instance_id =
                 (SELECT id FROM instance WHERE moid = ?1 AND miid = ?2) AND path = ?3",
            )
            .expect("prepare");
        let v: rusqlite::types::Value = stmt
            .query_row(rusqlite::params![key.moid, key.miid, paths[i]], |r| {
                r.get(6)
            })
            .expect("row");
        std::hint::black_box(v);
    });

    // Single-leaf writes, each its own durable transaction.
    let ours_write = time(writes, |i| {
        store
            .apply(&[TreeOp::SetValue {
                key: key.clone(),
                path: paths[i].clone(),
                value: Value::Chr(format!("w{i}")),
            }])
            .expect("write");
    });
    let raw_write = time(writes, |i| {
        raw.execute_batch("BEGIN IMMEDIATE").expect("begin");
        raw.prepare_cached("UPDATE meta SET value = value + 1 WHERE key = 'change_seq'")
            .expect("p")
            .execute([])
            .expect("seq");
        raw.prepare_cached(
            "UPDATE node SET value = ?1 WHERE instance_id = (SELECT id FROM instance WHERE moid = ?2 AND miid = ?3) AND path = ?4",
        )
        .expect("prepare")
        .execute(rusqlite::params![format!("r{i}"), key.moid, key.miid, paths[i]])
        .expect("update");
        raw.prepare_cached("UPDATE instance SET cv = cv + 1 WHERE moid = ?1 AND miid = ?2")
            .expect("p")
            .execute(rusqlite::params![key.moid, key.miid])
            .expect("cv");
        raw.execute_batch("COMMIT").expect("commit");
    });

    println!("omadmd tree store vs raw SQLite, same file, {total} nodes");
    println!(
        "{:<28} {:>12} {:>12} {:>7}",
        "operation", "omadmd", "raw SQLite", "ratio"
    );
    for (name, ours, raw, n) in [
        ("point read of a leaf", ours_read, raw_read, reads),
        ("durable single-leaf write", ours_write, raw_write, writes),
    ] {
        println!(
            "{name:<28} {} {} {:>6.2}x",
            per_op(ours, n),
            per_op(raw, n),
            ours.as_secs_f64() / raw.as_secs_f64()
        );
    }
    println!(
        "start-up to READY on {total} nodes: {:.1} ms; resident memory +{} KiB ({} KiB total)",
        startup.as_secs_f64() * 1e3,
        rss_after.saturating_sub(rss_before),
        rss_after
    );
}
