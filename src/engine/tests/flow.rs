//! EXEC with its asynchronous results, SHOW/CONT/END/DEFAULT and unknown or malformed commands, SUB and UNSUB, and DEFAULT configuring a missing MO.

use super::*;

#[tokio::test]
async fn exec_statuses_and_async_results() {
    let w = World::new();
    w.serve(
        "https://r/dev",
        dmmo::MEDIA_TYPE,
        br#"[{"ClientURI":"urn:test:mo:dev:1.0//","MOData":{"d1":{"Name":"one","Reboot":null}}}]"#,
    );
    assert_eq!(
        w.codes(
            "dms2",
            json!([["HGET", "https://r/dev", "urn:test:mo:dev:1.0/d1/"]])
        )
        .await,
        [200]
    );
    let reboot = "urn:test:mo:dev:1.0/d1/Reboot";
    assert_eq!(
        w.codes("dms2", json!([["EXEC", reboot]])).await,
        [405],
        "no handler"
    );
    *w.ports.exec_reply.borrow_mut() = Some(Executed::Done {
        status: 200,
        alert: None,
    });
    assert_eq!(
        w.codes(
            "dms2",
            json!([
                ["EXEC", reboot],
                ["EXEC", "urn:test:mo:dev:1.0/d1/Name"],
                ["EXEC", "urn:test:mo:dev:1.0/d1/Nope"]
            ])
        )
        .await,
        [200, 405, 404]
    );
    assert_eq!(w.codes("dms3", json!([["EXEC", reboot]])).await, [403]);
    *w.ports.exec_reply.borrow_mut() = Some(Executed::Done {
        status: 1200,
        alert: None,
    });
    assert_eq!(w.codes("dms2", json!([["EXEC", reboot]])).await, [1200]);
    *w.ports.exec_reply.borrow_mut() = Some(Executed::Done {
        status: 201,
        alert: None,
    });
    assert_eq!(
        w.codes("dms2", json!([["EXEC", reboot]])).await,
        [500],
        "a status outside the TS table"
    );
    *w.ports.exec_reply.borrow_mut() = Some(Executed::Failed("timed out".into()));
    assert_eq!(w.codes("dms2", json!([["EXEC", reboot]])).await, [500]);
    *w.ports.exec_reply.borrow_mut() = Some(Executed::Accepted);
    assert_eq!(
        w.codes(
            "dms2",
            json!([["EXEC", reboot, "https://dms2.example/results/[DevID]"]])
        )
        .await,
        [202]
    );
    assert_eq!(
        w.ports.execs.borrow().last().unwrap().report_to.as_deref(),
        Some("https://dms2.example/results/IMEI%3A493005100592800")
    );
    assert!(
        w.store.outbox("dms2").unwrap().is_empty(),
        "an accepted EXEC's handler reports later"
    );
    // Done at once, but a ServerURI asks for asynchronous reporting: 202 and a queued alert.
    *w.ports.exec_reply.borrow_mut() = Some(Executed::Done {
        status: 200,
        alert: None,
    });
    assert_eq!(
        w.codes(
            "dms2",
            json!([["EXEC", reboot, "https://dms2.example/results"]])
        )
        .await,
        [202]
    );
    let q = w.store.outbox("dms2").unwrap();
    assert_eq!(q.len(), 1);
    let crate::tree::OutItem::ExecResult {
        alert,
        to,
        status,
        client_uri,
    } = q[0].item.clone()
    else {
        panic!("{q:?}")
    };
    assert_eq!((status, client_uri.as_str()), (200, reboot));
    assert_eq!(to.as_deref(), Some("https://dms2.example/results"));
    let alert: Alert = serde_json::from_value(alert).unwrap();
    assert_eq!(
        alert.source_uri.as_deref(),
        Some("urn:test:mo:dev:1.0/d1/Reboot")
    );
    assert_eq!(alert.data.unwrap()["ResultCode"], 200);
    // A session opened to that ServerURI carries it after the session alert; a session to
    // the account's SrvURI does not.
    let srv = "https://dms2.example/dm";
    let (p1, ids) = w
        .engine()
        .package1(
            "dms2",
            Trigger::ClientInitiated,
            false,
            "https://dms2.example/results",
            srv,
        )
        .unwrap();
    assert_eq!(p1.alerts.len(), 2);
    assert_eq!(
        p1.alerts[0].alert_type,
        "urn:oma:at:dm:2.0:ClientInitiatedMgmt"
    );
    assert_eq!(ids, [q[0].id]);
    let (p1, ids) = w
        .engine()
        .package1("dms2", Trigger::ClientInitiated, false, srv, srv)
        .unwrap();
    assert_eq!((p1.alerts.len(), ids.len()), (1, 0));
}

#[tokio::test]
async fn show_cont_end_default_unknown_malformed() {
    let w = World::new();
    let out = w
        .run(
            "dms1",
            json!([
                ["SHOW", "https://ui.example/consent?uiid=1234&dev=[DevID]"],
                ["SHOW", "http://ui.example/"],
                ["CONT", "https://dms1.example/next"],
                ["ADD", "x"],
                ["GET"],
                ["END"],
                ["GET", "urn:oma:mo:moid:1.0/left/ID"]
            ]),
        )
        .await;
    let codes: Vec<u16> = out.package3.status.iter().map(|s| s.sc).collect();
    assert_eq!(
        codes,
        [200, 400, 200, 501, 400, 200, 200],
        "commands after END still run"
    );
    assert!(out.end);
    assert_eq!(
        w.ports.shows.borrow()[0],
        (
            "https://ui.example/consent?uiid=1234&dev=IMEI%3A493005100592800".into(),
            "dms1".into()
        )
    );
    for (reply, want) in [
        (Shown::NoAgent, 501),
        (Shown::Declined, 507),
        (Shown::Failed("agent hung".into()), 500),
    ] {
        *w.ports.show_reply.borrow_mut() = Some(reply);
        assert_eq!(
            w.codes("dms1", json!([["SHOW", "https://ui.example/"]]))
                .await,
            [want]
        );
    }
    // CONT moves the session; never from https to http.
    let mut s = World::session("dms1");
    w.run_in(&mut s, json!([["CONT", "https://other.example/dm2"]]))
        .await;
    assert_eq!(s.target, "https://other.example/dm2");
    let out = w
        .run_in(&mut s, json!([["CONT", "http://other.example/plain"]]))
        .await;
    assert_eq!(
        (out.package3.status[0].sc, s.target.as_str()),
        (400, "https://other.example/dm2")
    );
    // DEFAULT.
    assert_eq!(
        w.codes(
            "dms1",
            json!([[
                "DEFAULT",
                "https://prov.dmserver.com/Settings/[MCC]/[MNC]/MMS",
                "urn:oma:mo:oma-mms:1.3"
            ]])
        )
        .await,
        [200]
    );
    assert_eq!(
        w.store.default_source("urn:oma:mo:oma-mms:1.3").unwrap(),
        Some((
            "dms1".into(),
            "https://prov.dmserver.com/Settings/[MCC]/[MNC]/MMS".into()
        ))
    );
    assert_eq!(
        w.codes(
            "dms3",
            json!([
                ["DEFAULT", "https://x/", "urn:oma:mo:oma-mms:1.3"],
                ["DEFAULT", "https://x/", ""],
                ["DEFAULT", "nope", "urn:x:1.0"]
            ])
        )
        .await,
        [403, 400, 400]
    );
}

#[tokio::test]
async fn sub_queues_deliveries_and_unsub_stops_them() {
    let w = World::new();
    assert_eq!(
        w.codes(
            "dms1",
            json!([
                [
                    "SUB",
                    "https://dms1.example/changes",
                    "urn:oma:mo:moid:1.0/left/Data"
                ],
                ["SUB", "https://x/", "urn:oma:mo:moid:1.0/nope/"],
                ["SUB", "https://x/", "urn:oma:mo:oma-dm-dmacc:1.2/dms1/Perm"]
            ])
        )
        .await,
        [200, 404, 403]
    );
    assert_eq!(
        w.codes(
            "dms2",
            json!([["SUB", "https://x/", "urn:oma:mo:moid:1.0/left/"]])
        )
        .await,
        [403]
    );
    // A change elsewhere queues nothing; one inside queues a delivery.
    assert_eq!(
        w.codes(
            "dms1",
            json!([["DELETE", "urn:oma:mo:moid:1.0/right/Data/1"]])
        )
        .await,
        [200]
    );
    assert!(w.store.outbox("dms1").unwrap().is_empty());
    assert_eq!(
        w.codes(
            "dms1",
            json!([["DELETE", "urn:oma:mo:moid:1.0/left/Data/1"]])
        )
        .await,
        [200]
    );
    let q = w.store.outbox("dms1").unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!(
        q[0].item,
        crate::tree::OutItem::Delivery {
            client_uri: "urn:oma:mo:moid:1.0/left/Data".into(),
            to: "https://dms1.example/changes".into()
        }
    );
    assert_eq!(
        w.codes(
            "dms1",
            json!([
                ["UNSUB", "urn:oma:mo:moid:1.0/left/Data"],
                ["UNSUB", "urn:oma:mo:moid:1.0/left/Data"]
            ])
        )
        .await,
        [200, 404]
    );
    assert_eq!(
        w.codes(
            "dms1",
            json!([["DELETE", "urn:oma:mo:moid:1.0/left/Data/2"]])
        )
        .await,
        [200]
    );
    assert_eq!(w.store.outbox("dms1").unwrap().len(), 1);
}

#[tokio::test]
async fn default_configures_a_missing_mo_without_reporting() {
    let w = World::new();
    let mms = "urn:oma:mo:oma-mms:1.3";
    let values = crate::protocol::uri::ServerUriValues {
        mcc: Some("262".into()),
        ..Default::default()
    };
    assert_eq!(
        w.engine().configure(mms, &values).await.unwrap(),
        Configured::NoDefault
    );
    assert_eq!(
        w.codes(
            "dms1",
            json!([[
                "DEFAULT",
                "https://prov.dmserver.com/Settings/[MCC]/[MNC]/MMS",
                mms
            ]])
        )
        .await,
        [200]
    );
    // The repository is down: the HGET's status, nothing stored.
    assert_eq!(
        w.engine().configure(mms, &values).await.unwrap(),
        Configured::Failed(419)
    );
    assert_eq!(
        w.ports.fetches.borrow().last().unwrap().0,
        "https://prov.dmserver.com/Settings/262/-1/MMS"
    );
    w.serve(
        "https://prov.dmserver.com/Settings/262/-1/MMS",
        dmmo::MEDIA_TYPE,
        br#"[{"ClientURI":"urn:oma:mo:oma-mms:1.3//","MOData":{"mms":{"MMSC":"http://mmsc"}}}]"#,
    );
    assert_eq!(
        w.engine().configure(mms, &values).await.unwrap(),
        Configured::Fetched(vec!["urn:oma:mo:oma-mms:1.3/mms/".into()])
    );
    assert_eq!(
        w.engine().configure(mms, &values).await.unwrap(),
        Configured::Present(vec!["urn:oma:mo:oma-mms:1.3/mms/".into()])
    );
    // The server reads it later with GET urn:oma:mo:oma-mms:1.3/*/ (TS App. I.3).
    assert_eq!(
        w.codes("dms1", json!([["GET", "urn:oma:mo:oma-mms:1.3/*/"]]))
            .await,
        [200]
    );
    assert!(
        w.store.outbox("dms1").unwrap().is_empty(),
        "nothing reported"
    );
}
