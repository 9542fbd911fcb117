//! Tests of the outbox's bounds (issue 27): what `Journal::queued` counts for a server's
//! quota, and one waiting delivery per subscription however often its data changes.

use super::*;
use crate::tree::{OutItem, Outgoing, PendingExec, TreeOp};

fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(&dir.path().join("tree.db"), OpenMode::ReadWrite).unwrap();
    (dir, s)
}

fn enqueue(server: &str, item: OutItem) -> TreeOp {
    TreeOp::Enqueue(Outgoing {
        id: 0,
        server_id: server.into(),
        item,
    })
}

fn result(to: Option<&str>) -> OutItem {
    OutItem::ExecResult {
        client_uri: "urn:x:1.0/i/Run".into(),
        status: 200,
        alert: serde_json::json!({"AlertType": "r"}),
        to: to.map(str::to_owned),
    }
}

#[test]
fn queued_counts_alerts_results_and_results_to_come_per_server() {
    let (_d, s) = store();
    assert_eq!(s.queued("dms1").unwrap(), Queued::default());
    let delivery = OutItem::Delivery {
        client_uri: "urn:x:1.0/i/".into(),
        to: "https://sub".into(),
    };
    s.apply(&[
        enqueue(
            "dms1",
            OutItem::Alert {
                alert: serde_json::json!({"AlertType": "a"}),
                to: None,
            },
        ),
        enqueue("dms1", result(Some("https://b/r"))),
        enqueue("dms1", result(Some("https://a/r"))),
        enqueue("dms1", result(Some("https://a/r"))),
        enqueue("dms1", delivery),
        enqueue("dms2", result(Some("https://elsewhere"))),
        TreeOp::AddPendingExec(PendingExec {
            token: "t1".into(),
            server_id: "dms1".into(),
            client_uri: "urn:x:1.0/i/Run".into(),
            report_to: Some("https://c/r".into()),
            handler: ":1.1".into(),
            created_at: 0,
        }),
    ])
    .unwrap();
    let q = s.queued("dms1").unwrap();
    // The alert, three results and the EXEC still running; not the delivery.
    assert_eq!(q.alerts, 5);
    assert_eq!(q.targets, ["https://a/r", "https://b/r", "https://c/r"]);
    let rows: u64 = s
        .outbox("dms1")
        .unwrap()
        .iter()
        .filter(|o| o.item.alert().is_some())
        .map(|o| {
            let (_, target, payload) = o.item.to_row().unwrap();
            (payload.len() + target.map_or(0, str::len)) as u64
        })
        .sum();
    let pending = ("urn:x:1.0/i/Run".len() + "https://c/r".len()) as u64;
    assert_eq!(q.bytes, rows + pending);
    assert_eq!(s.queued("dms2").unwrap().alerts, 1);
}

#[test]
fn a_subscription_has_one_delivery_waiting_however_often_its_data_changes() {
    let (_d, s) = store();
    let delivery = |to: &str| OutItem::Delivery {
        client_uri: "urn:x:1.0/i/".into(),
        to: to.into(),
    };
    for _ in 0..3 {
        s.apply(&[
            enqueue("dms1", delivery("https://sub")),
            enqueue("dms1", delivery("https://other")),
            enqueue("dms2", delivery("https://sub")),
        ])
        .unwrap();
    }
    assert_eq!(s.outbox("dms1").unwrap().len(), 2);
    assert_eq!(s.outbox("dms2").unwrap().len(), 1);
    // Alerts are never merged: each is a report of its own.
    s.apply(&[enqueue("dms1", result(None)), enqueue("dms1", result(None))])
        .unwrap();
    assert_eq!(s.outbox("dms1").unwrap().len(), 4);
}
