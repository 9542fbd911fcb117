//! Crash safety: a child process rewriting a big subtree in a loop is killed with SIGKILL
//! at different moments; the database it leaves must hold one whole generation of the
//! subtree, never a mix, and pass SQLite's integrity check.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use omadmd::tree::Tree as _;

use omadmd::tree::{
    AccessType, InstanceKey, Node, NodeProps, OpenMode, Scope, SqliteStore, TreeOp, Value,
};

const ENV: &str = "OMADMD_CRASH_DB";

fn key() -> InstanceKey {
    InstanceKey::new("urn:x:crash:1.0", "big")
}

/// Generation `g` of the subtree: `2000 + g` leaves, each holding `g`.
fn generation(g: usize) -> Vec<Node> {
    let mut nodes = vec![Node {
        path: "data".into(),
        props: NodeProps::interior(AccessType::ALL, Scope::Dynamic),
        value: None,
    }];
    for i in 0..2000 + g {
        nodes.push(Node {
            path: format!("data/n{i:05}"),
            props: NodeProps::leaf(omadmd::tree::Format::Chr, AccessType::ALL, Scope::Dynamic),
            value: Some(Value::Chr(format!("gen-{g}"))),
        });
    }
    nodes
}

/// The child: rewrites the subtree forever, reporting each commit. Run only by the parent.
#[test]
#[ignore]
fn crash_child() {
    let Ok(path) = std::env::var(ENV) else { return };
    let store = SqliteStore::open(path.as_ref(), OpenMode::ReadWrite).unwrap();
    println!("started");
    for g in 1.. {
        store
            .apply(&[TreeOp::PutSubtree {
                key: key(),
                nodes: generation(g),
            }])
            .unwrap();
        println!("committed {g}");
    }
}

#[test]
fn killed_writers_leave_whole_generations() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tree.db");
    {
        let store = SqliteStore::open(&path, OpenMode::ReadWrite).unwrap();
        let mut nodes = vec![Node {
            path: String::new(),
            props: NodeProps::interior(AccessType::ALL, Scope::Dynamic),
            value: None,
        }];
        nodes.extend(generation(0));
        store
            .apply(&[TreeOp::PutInstance {
                key: key(),
                ddf_url: None,
                creator: "local".into(),
                nodes,
            }])
            .unwrap();
    }
    let mut mid_write_kills = 0;
    for (round, delay_ms) in [3u64, 17, 41, 90, 155, 260].into_iter().enumerate() {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crash::crash_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        while !line.contains("started") {
            line.clear();
            assert!(
                out.read_line(&mut line).unwrap() > 0,
                "child ended before starting"
            );
        }
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap();
        child.wait().unwrap();
        let last_reported = out
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| {
                l.strip_prefix("committed ")
                    .and_then(|g| g.parse::<usize>().ok())
            })
            .last();

        let store = SqliteStore::open(&path, OpenMode::ReadWrite).unwrap();
        let nodes = store.subtree(&key(), "data", None).unwrap();
        let values: std::collections::BTreeSet<String> = nodes
            .iter()
            .filter_map(|n| n.value.as_ref().map(Value::to_text))
            .collect();
        assert_eq!(
            values.len(),
            1,
            "round {round}: a mix of generations {values:?}"
        );
        let g: usize = values
            .iter()
            .next()
            .unwrap()
            .strip_prefix("gen-")
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            nodes.len(),
            1 + 2000 + g,
            "round {round}: generation {g} is incomplete"
        );
        // Every commit the child reported survived it (commits are durable).
        if let Some(reported) = last_reported {
            assert!(
                g >= reported,
                "round {round}: reported {reported}, found {g}"
            );
            mid_write_kills += usize::from(g == reported);
        }
        let check: String = rusqlite::Connection::open(&path)
            .unwrap()
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok", "round {round}");
    }
    // The child spends most of its time inside a transaction, so at least one kill lands
    // after a reported commit, in the middle of the next write.
    assert!(
        mid_write_kills > 0,
        "no kill landed mid-write; the test proved nothing"
    );
}
