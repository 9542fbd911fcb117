//! HGET, GET, HPUT/HPOST and DELETE: every success and failure status, and which media types a raw leaf body may come in.

use super::*;

#[tokio::test]
async fn hget_statuses() {
    let w = World::new();
    w.serve(
        "https://r/dev",
        dmmo::MEDIA_TYPE,
        br#"[{"ClientURI":"urn:test:mo:dev:1.0//","MOData":{"d1":{"Name":"one"}}}]"#,
    );
    w.serve(
        "https://r/dev-bad",
        dmmo::MEDIA_TYPE,
        br#"[{"ClientURI":"urn:test:mo:dev:1.0//","MOData":{"d1":{"Bogus":"x"}}}]"#,
    );
    w.serve(
        "https://r/dev-big",
        dmmo::MEDIA_TYPE,
        format!(
            r#"[{{"ClientURI":"urn:test:mo:dev:1.0//","MOData":{{"d1":{{"Name":"{}"}}}}}}]"#,
            "x".repeat(5000)
        )
        .as_bytes(),
    );
    w.serve("https://r/notjson", dmmo::MEDIA_TYPE, b"{not json");
    w.serve("https://r/html", "text/html", b"<html/>");
    w.serve("https://r/name", "text/plain", b"renamed");
    w.serve(
        "https://r/sub",
        dmmo::MEDIA_TYPE,
        br#"[{"ClientURI":"x","MOData":{"Data":{"7":{"Date":"1.1","Value":"v"}}}}]"#,
    );
    w.serve("https://r/blob", "application/octet-stream", &[0, 159, 255]);
    // An instance of a MO whose definition lets only the device make them (no Add on its
    // root, as a handler's MO): valid data, which the server may not add.
    w.serve(
        "https://r/device-only",
        dmmo::MEDIA_TYPE,
        br#"[{"ClientURI":"urn:test:mo:device-only:1.0//","MOData":{"x":{"Name":"n"}}}]"#,
    );
    // Refusals met only as the data is stored, after nodes of it were written: a name
    // given twice, a value over the limit in the last leaf.
    w.serve(
        "https://r/twice",
        dmmo::MEDIA_TYPE,
        br#"{"ClientURI":"x","MOData":{"Data":{"7":{"Date":"1.1"},"7":{"Date":"1.2"}}}}"#,
    );
    w.serve(
        "https://r/late-big",
        dmmo::MEDIA_TYPE,
        format!(
            r#"{{"ClientURI":"x","MOData":{{"Data":{{"7":{{"Date":"1.1"}},"8":{{"Date":"{}"}}}}}}}}"#,
            "x".repeat(5000)
        )
        .as_bytes(),
    );
    // Creation (with a server-chosen MIID) and the data's shape: Fixed gets its default.
    assert_eq!(
        w.codes(
            "dms2",
            json!([["HGET", "https://r/dev", "urn:test:mo:dev:1.0/mine/"]])
        )
        .await,
        [200]
    );
    assert_eq!(
        w.value(TESTMO, "mine", "Fixed"),
        Some(Value::Chr("f".into()))
    );
    let before = w.snapshot();
    let cases: Vec<(&str, Json, u16)> = vec![
        ("dms2", json!(["HGET", "https://r/missing"]), 419),
        ("dms2", json!(["HGET", "https://r/dev-bad"]), 415),
        ("dms2", json!(["HGET", "https://r/notjson"]), 415),
        ("dms2", json!(["HGET", "https://r/html"]), 415),
        ("dms2", json!(["HGET", "https://r/dev-big"]), 506),
        (
            "dms2",
            json!(["HGET", "https://r/name", "urn:test:mo:dev:1.0/nope/Name"]),
            404,
        ),
        (
            "dms2",
            json!([
                "HGET",
                "https://r/name",
                "urn:test:mo:dev:1.0/mine/Nope/Name"
            ]),
            404,
        ),
        (
            "dms2",
            json!(["HGET", "https://r/name", "urn:test:mo:dev:1.0/*/Name"]),
            400,
        ),
        (
            "dms2",
            json!(["HGET", "ftp://r/name", "urn:test:mo:dev:1.0/mine/Name"]),
            400,
        ),
        (
            "dms2",
            json!(["HGET", "https://r/name", "urn:test:mo:dev:1.0/mine/a%2Fb"]),
            400,
        ),
        // No Add on the MO's root: no instance, whether the ClientURI names it or the
        // data does.
        ("dms2", json!(["HGET", "https://r/device-only"]), 403),
        (
            "dms2",
            json!([
                "HGET",
                "https://r/device-only",
                "urn:test:mo:device-only:1.0/x/"
            ]),
            403,
        ),
        // DevInfo has no Replace; Fixed neither.
        (
            "dms2",
            json!([
                "HGET",
                "https://r/name",
                "urn:oma:mo:oma-dm-devinfo:1.2//Man"
            ]),
            403,
        ),
        (
            "dms2",
            json!(["HGET", "https://r/name", "urn:test:mo:dev:1.0/mine/Fixed"]),
            403,
        ),
        // Another server's instance; an MOID not provisioned; bootstrap-only Perm.
        (
            "dms3",
            json!(["HGET", "https://r/name", "urn:test:mo:dev:1.0/mine/Name"]),
            403,
        ),
        (
            "dms3",
            json!(["HGET", "https://r/dev", "urn:test:mo:dev:1.0/other/"]),
            403,
        ),
        (
            "dms1",
            json!(["HGET", "https://r/name", "urn:test:mo:dev:1.0/mine/Name"]),
            403,
        ),
        (
            "dms1",
            json!([
                "HGET",
                "https://r/name",
                "urn:oma:mo:oma-dm-dmacc:1.2/dms1/Perm/p0/MOID"
            ]),
            403,
        ),
        (
            "dms1",
            json!(["HGET", "https://r/twice", "urn:oma:mo:moid:1.0/left/Data"]),
            415,
        ),
        (
            "dms1",
            json!([
                "HGET",
                "https://r/late-big",
                "urn:oma:mo:moid:1.0/left/Data"
            ]),
            506,
        ),
        // A raw body cannot replace an interior node.
        (
            "dms2",
            json!(["HGET", "https://r/name", "urn:test:mo:dev:1.0/mine/"]),
            415,
        ),
    ];
    for (server, c, want) in cases {
        let got = w.codes(server, json!([c.clone()])).await;
        assert_eq!(got, [want], "{server} {c}");
        assert_eq!(w.snapshot(), before, "{server} {c} changed the tree");
    }
    // Replacing a leaf with a raw body, a subtree with MO data, a bin leaf with raw bytes.
    assert_eq!(
        w.codes(
            "dms2",
            json!([
                ["HGET", "https://r/name", "urn:test:mo:dev:1.0/mine/Name"],
                ["HGET", "https://r/blob", "urn:test:mo:dev:1.0/mine/Blob"]
            ])
        )
        .await,
        [200, 200]
    );
    assert_eq!(
        w.value(TESTMO, "mine", "Name"),
        Some(Value::Chr("renamed".into()))
    );
    assert_eq!(
        w.value(TESTMO, "mine", "Blob"),
        Some(Value::Bin(vec![0, 159, 255]))
    );
    assert_eq!(
        w.codes(
            "dms1",
            json!([["HGET", "https://r/sub", "urn:oma:mo:moid:1.0/left/Data"]])
        )
        .await,
        [200]
    );
    let paths: Vec<String> = w
        .store
        .subtree(&InstanceKey::new(FIG5, "left"), "Data", None)
        .unwrap()
        .into_iter()
        .map(|n| n.path)
        .collect();
    assert_eq!(paths, ["Data", "Data/7", "Data/7/Date", "Data/7/Value"]);
    // A replacement may not remove a permanent node (TS §6.3.1.2), found only once the
    // new data was stored whole; one that brings it back may.
    w.serve(
        "https://r/serial",
        dmmo::MEDIA_TYPE,
        br#"{"ClientURI":"x","MOData":{"d":{"Name":"one","Serial":"s1"}}}"#,
    );
    let with_serial = "urn:test:mo:dev:1.0/ws/";
    let codes = w
        .codes("dms2", json!([["HGET", "https://r/serial", with_serial]]))
        .await;
    assert_eq!(codes, [200]);
    let before = w.snapshot();
    let codes = w
        .codes("dms2", json!([["HGET", "https://r/dev", with_serial]]))
        .await;
    assert_eq!(codes, [403]);
    assert_eq!(w.snapshot(), before);
    let codes = w
        .codes("dms2", json!([["HGET", "https://r/serial", with_serial]]))
        .await;
    assert_eq!(codes, [200]);
    assert_eq!(
        w.value(TESTMO, "ws", "Serial"),
        Some(Value::Chr("s1".into()))
    );
}

#[tokio::test]
async fn get_statuses() {
    let w = World::new();
    let left_cv = w.store.instance(FIG5, "left").unwrap().unwrap().cv;
    let out = w
        .run(
            "dms1",
            json!([
                ["GET", "urn:oma:mo:moid:1.0/*/Data/*/Value"],
                ["GET", format!("urn:oma:mo:moid:1.0/left/ID?cv={left_cv}")],
                ["GET", "urn:oma:mo:moid:1.0/left/?cv=stale&lv=1"],
                ["GET", "urn:oma:mo:moid:1.0/left/Nope"],
                ["GET", "urn:oma:mo:moid:1.0//"],
                ["GET", "urn:oma:mo:oma-dm-dmacc:1.2/dms1/Perm"],
                ["GET", "urn:oma:mo:oma-dm-dmacc:1.2/dms1/"],
                ["GET", "bad uri"],
            ]),
        )
        .await;
    let codes: Vec<u16> = out.package3.status.iter().map(|s| s.sc).collect();
    assert_eq!(codes, [200, 304, 200, 404, 400, 403, 200, 400]);
    let wild = dmmo::decode(&out.parts[0].body, dmmo::Limits::default()).unwrap();
    assert_eq!(wild.len(), 4);
    assert_eq!(wild[3].client_uri, "urn:oma:mo:moid:1.0/right/Data/2/Value");
    let root: Json = serde_json::from_slice(&out.parts[1].body).unwrap();
    assert_eq!(root[0]["CV"], left_cv.as_str());
    assert_eq!(
        root[0]["MOData"]["left"]["Data"],
        json!({}),
        "lv=1 leaves Data's children out"
    );
    let acc: Json = serde_json::from_slice(&out.parts[2].body).unwrap();
    let acc = &acc[0]["MOData"]["dms1"];
    assert!(acc.get("Perm").is_none(), "No Get subtree left out: {acc}");
    assert!(
        acc["Auth"]["Noti"].get("Secret").is_none() && acc["Auth"]["Noti"]["Data"] == "AA==",
        "a secret is left out of a subtree read: {acc}"
    );
    // Another server's instance, a null leaf.
    assert_eq!(
        w.codes("dms2", json!([["GET", "urn:oma:mo:moid:1.0/left/ID"]]))
            .await,
        [403]
    );
    w.store
        .apply(&[TreeOp::PutInstance {
            key: InstanceKey::new(TESTMO, "r"),
            ddf_url: None,
            creator: "serverid:dms2".into(),
            nodes: vec![
                node("", None),
                Node {
                    path: "Reboot".into(),
                    props: NodeProps::leaf(
                        Format::Null,
                        AccessType::GET | AccessType::EXEC,
                        Scope::Dynamic,
                    ),
                    value: Some(Value::Null),
                },
            ],
        }])
        .unwrap();
    assert_eq!(
        w.codes("dms2", json!([["GET", "urn:test:mo:dev:1.0/r/Reboot"]]))
            .await,
        [204]
    );
}

#[tokio::test]
async fn hput_and_hpost_statuses() {
    let mut w = World::new();
    let cv = w.store.instance(FIG5, "left").unwrap().unwrap().cv;
    assert_eq!(
        w.codes(
            "dms1",
            json!([[
                "HPUT",
                "https://r/[DevID]/x",
                "urn:oma:mo:moid:1.0/left/",
                "urn:oma:mo:moid:1.0/nope/"
            ]])
        )
        .await,
        [200]
    );
    {
        let sends = w.ports.sends.borrow();
        assert_eq!(
            (sends[0].0, sends[0].1.as_str(), sends[0].2.as_str()),
            (
                Method::Put,
                "https://r/IMEI%3A493005100592800/x",
                "application/dmmo+json"
            )
        );
        let items = dmmo::decode(&sends[0].3, dmmo::Limits::default()).unwrap();
        assert_eq!(items.len(), 1, "the missing ClientURI is skipped");
    }
    let cases: Vec<(Json, u16)> = vec![
        (
            json!([
                "HPUT",
                "https://r/x",
                format!("urn:oma:mo:moid:1.0/left/?cv={cv}")
            ]),
            304,
        ),
        (
            json!(["HPUT", "https://r/x", "urn:oma:mo:moid:1.0/nope/"]),
            404,
        ),
        (
            json!(["HPOST", "https://r/x", "urn:oma:mo:moid:1.0/left/", "bad"]),
            400,
        ),
        (
            json!(["HPOST", "https://r/x", "urn:oma:mo:oma-dm-dmacc:1.2/dms2/"]),
            403,
        ),
        (
            json!(["HPOST", "not a url", "urn:oma:mo:moid:1.0/left/"]),
            400,
        ),
    ];
    for (cmd, want) in cases {
        assert_eq!(w.codes("dms1", json!([cmd.clone()])).await, [want], "{cmd}");
    }
    let sent_before = w.ports.sends.borrow().len();
    assert_eq!(sent_before, 1, "no failed command sent anything");
    // The repository fails: 419. It wants another format: one retry with it.
    w.ports
        .send_replies
        .borrow_mut()
        .push_back(Err(PortError("connection refused".into())));
    assert_eq!(
        w.codes(
            "dms1",
            json!([["HPOST", "https://r/x", "urn:oma:mo:moid:1.0/left/ID"]])
        )
        .await,
        [419]
    );
    w.ports
        .send_replies
        .borrow_mut()
        .push_back(Ok(Sent::Unsupported {
            accept: vec!["application/dmmo+json".into()],
        }));
    assert_eq!(
        w.codes(
            "dms1",
            json!([["HPOST", "https://r/x", "urn:oma:mo:moid:1.0/left/ID"]])
        )
        .await,
        [200]
    );
    {
        let sends = w.ports.sends.borrow();
        assert_eq!(sends[2].2, "text/plain");
        assert_eq!(sends[3].2, "application/dmmo+json");
    }
    w.ports
        .send_replies
        .borrow_mut()
        .push_back(Ok(Sent::Unsupported {
            accept: vec!["application/xml".into()],
        }));
    assert_eq!(
        w.codes(
            "dms1",
            json!([["HPOST", "https://r/x", "urn:oma:mo:moid:1.0/left/ID"]])
        )
        .await,
        [406]
    );
    // OMADM-Accept naming only formats we lack: 406 without sending.
    let mut s = World::session("dms1");
    s.server_accept = vec!["application/vnd.syncml.dmtnds+xml".into()];
    let n = w.ports.sends.borrow().len();
    let out = w
        .run_in(
            &mut s,
            json!([["HPUT", "https://r/x", "urn:oma:mo:moid:1.0/left/"]]),
        )
        .await;
    assert_eq!(out.package3.status[0].sc, 406);
    assert_eq!(w.ports.sends.borrow().len(), n);
    w.ports = Recorder::default();
}

#[tokio::test]
async fn delete_statuses() {
    let w = World::new();
    let before = w.snapshot();
    for (server, uri, want) in [
        ("dms1", "urn:oma:mo:oma-dm-devinfo:1.2//DevID", 405),
        ("dms1", "urn:oma:mo:oma-dm-devinfo:1.2//", 405),
        ("dms1", "urn:oma:mo:moid:1.0/left/Nope", 404),
        ("dms1", "urn:oma:mo:moid:1.0/*/ID", 400),
        ("dms2", "urn:oma:mo:moid:1.0/left/ID", 403),
        ("dms3", "urn:oma:mo:moid:1.0/left/", 403),
    ] {
        assert_eq!(
            w.codes(server, json!([["DELETE", uri]])).await,
            [want],
            "{server} {uri}"
        );
    }
    assert_eq!(w.snapshot(), before);
    assert_eq!(
        w.codes(
            "dms1",
            json!([
                ["DELETE", "urn:oma:mo:moid:1.0/left/Data"],
                ["DELETE", "urn:oma:mo:moid:1.0/right/"]
            ])
        )
        .await,
        [200, 200]
    );
    assert!(
        w.store
            .node(&InstanceKey::new(FIG5, "left"), "Data/1/Date")
            .unwrap()
            .is_none()
    );
    assert!(w.store.instance(FIG5, "right").unwrap().is_none());
}

/// A raw leaf body must come in a media type that fits a leaf: an HTML page is no value.
#[tokio::test]
async fn a_raw_leaf_body_needs_a_leaf_media_type() {
    let w = World::new();
    let before = w.snapshot();
    for ct in ["text/html", "application/json", "image/png"] {
        w.serve("https://r/page", ct, b"<html>login</html>");
        assert_eq!(
            w.codes(
                "dms1",
                json!([["HGET", "https://r/page", "urn:oma:mo:moid:1.0/left/ID"]])
            )
            .await,
            [415],
            "{ct}"
        );
    }
    assert_eq!(w.snapshot(), before);
    for ct in [
        "text/plain",
        "text/plain; charset=utf-8",
        "application/octet-stream",
    ] {
        w.serve("https://r/page", ct, b"GPS2");
        assert_eq!(
            w.codes(
                "dms1",
                json!([["HGET", "https://r/page", "urn:oma:mo:moid:1.0/left/ID"]])
            )
            .await,
            [200],
            "{ct}"
        );
    }
}
