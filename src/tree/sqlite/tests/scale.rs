//! Scale and streaming: 100,000 nodes with point reads through the index, depth-first visits, and streamed replacements as one transaction.

use super::*;

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
