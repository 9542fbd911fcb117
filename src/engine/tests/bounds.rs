//! What one server may hold: the per-server quotas (506), the bound on its registrations, and URLs for later use that lead into the device network (403).

use super::*;

/// A provisioned server cannot fill the disk: its instances and their bytes are bounded,
/// and over the bound HGET answers 506 (TS App. C) and stores nothing.
#[tokio::test]
async fn per_server_quotas_refuse_with_506() {
    let w = World::new();
    // dms1 created `left` and `right` and holds its account: 3 instances, 106 bytes.
    assert_eq!(
        w.store.usage("serverid:dms1").unwrap(),
        crate::tree::Usage {
            instances: 3,
            bytes: 106
        }
    );
    let limits = Limits {
        max_server_bytes: 500,
        max_server_instances: 4,
        ..LIMITS
    };
    let dev = |name: &str| {
        format!(r#"[{{"ClientURI":"{TESTMO}/x","MOData":{{"x":{{"Name":"{name}"}}}}}}]"#)
    };
    w.serve("https://r/small", dmmo::MEDIA_TYPE, dev("n").as_bytes());
    w.serve("https://r/big", "text/plain", "b".repeat(400).as_bytes());
    w.serve("https://r/fits", "text/plain", "b".repeat(300).as_bytes());
    let run = |server: &'static str, c: Json| {
        let w = &w;
        async move {
            w.run_with(limits, &mut World::session(server), json!([c]))
                .await
                .package3
                .status[0]
                .sc
        }
    };
    assert_eq!(
        run(
            "dms1",
            json!(["HGET", "https://r/small", format!("{TESTMO}/one/")])
        )
        .await,
        200
    );
    let before = w.snapshot();
    assert_eq!(
        run(
            "dms1",
            json!(["HGET", "https://r/small", format!("{TESTMO}/two/")])
        )
        .await,
        506,
        "a fifth instance"
    );
    assert_eq!(
        run(
            "dms1",
            json!(["HGET", "https://r/big", format!("{TESTMO}/one/Name")])
        )
        .await,
        506,
        "400 more bytes"
    );
    assert_eq!(w.snapshot(), before, "nothing stored over quota");
    // A replacement counts what it frees: 300 bytes in place of 1 fit.
    assert_eq!(
        run(
            "dms1",
            json!(["HGET", "https://r/fits", format!("{TESTMO}/one/Name")])
        )
        .await,
        200
    );
    // The quota is per server: dms2 has created nothing but its account.
    assert_eq!(
        run(
            "dms2",
            json!(["HGET", "https://r/small", format!("{TESTMO}/mine/")])
        )
        .await,
        200
    );
    // Its own account counts: data piled, one HGET at a time, into the open Ext node
    // (each write small, their sum over the bound) is refused once the sum is over.
    let ext = |name: &str, data: serde_json::Value| {
        let uri = format!("{DMACC}/dms1/{name}");
        let body = json!([{"ClientURI": uri, "MOData": {name.rsplit('/').next().unwrap(): data}}]);
        w.serve(
            &format!("https://r/{name}"),
            dmmo::MEDIA_TYPE,
            body.to_string().as_bytes(),
        );
        json!(["HGET", format!("https://r/{name}"), uri])
    };
    assert_eq!(
        run("dms1", ext("Ext", json!({"e1": {}, "e2": {}}))).await,
        200
    );
    assert_eq!(
        run("dms1", ext("Ext/e1", json!({"d": "e".repeat(60)}))).await,
        200
    );
    let before = w.snapshot();
    assert_eq!(
        run("dms1", ext("Ext/e2", json!({"d": "e".repeat(60)}))).await,
        506
    );
    assert_eq!(w.snapshot(), before);
    // An instance it did not create (here a local one without a DDF, which every server
    // provisioned with '*' may write) may not grow past the byte bound through its writes.
    w.store
        .apply(&[TreeOp::PutInstance {
            key: InstanceKey::new("urn:x:open:1.0", "o"),
            ddf_url: None,
            creator: "local".into(),
            nodes: vec![node("", None), node("v", Some("small"))],
        }])
        .unwrap();
    w.serve("https://r/huge", "text/plain", "h".repeat(600).as_bytes());
    w.serve("https://r/ok", "text/plain", "h".repeat(100).as_bytes());
    let before = w.snapshot();
    assert_eq!(
        run(
            "dms1",
            json!(["HGET", "https://r/huge", "urn:x:open:1.0/o/v"])
        )
        .await,
        506
    );
    assert_eq!(w.snapshot(), before);
    assert_eq!(
        run(
            "dms1",
            json!(["HGET", "https://r/ok", "urn:x:open:1.0/o/v"])
        )
        .await,
        200
    );
}

/// SUB and DEFAULT add rows a server holds, and every change may fan out to each
/// subscription: bounded per server (503 beyond, logged).
#[tokio::test]
async fn registrations_per_server_are_bounded() {
    let w = World::new();
    let limits = Limits {
        max_server_registrations: 2,
        ..LIMITS
    };
    let run = |server: &'static str, c: Json| {
        let w = &w;
        async move {
            w.run_with(limits, &mut World::session(server), json!([c]))
                .await
                .package3
                .status[0]
                .sc
        }
    };
    let sub = |q: u8| {
        json!([
            "SUB",
            "https://r/a",
            format!("urn:oma:mo:moid:1.0/left/?z={q}")
        ])
    };
    assert_eq!(run("dms1", sub(1)).await, 200);
    assert_eq!(
        run(
            "dms1",
            json!(["DEFAULT", "https://r/d", "urn:oma:mo:mms:1.0"])
        )
        .await,
        200
    );
    assert_eq!(run("dms1", sub(2)).await, 503);
    assert_eq!(
        run(
            "dms1",
            json!(["DEFAULT", "https://r/d", "urn:oma:mo:other:1.0"])
        )
        .await,
        503
    );
    // Renewing what it holds is not one more.
    assert_eq!(run("dms1", sub(1)).await, 200);
    assert_eq!(
        run(
            "dms1",
            json!(["DEFAULT", "https://r/e", "urn:oma:mo:mms:1.0"])
        )
        .await,
        200
    );
    assert_eq!(w.store.subscriptions().unwrap().len(), 1);
    // Another server's count is its own.
    assert_eq!(
        run(
            "dms2",
            json!(["SUB", "https://r/a", "urn:oma:mo:moid:1.0/right/"])
        )
        .await,
        403,
        "refused for its rights, not for dms1's registrations"
    );
}

/// A URL a server names for later use is refused (403) when it leads to the device's own
/// network position: loopback, link-local (cloud metadata), private ranges.
#[tokio::test]
async fn urls_for_later_use_cannot_lead_into_the_device_network() {
    let w = World::new();
    w.serve(
        "https://r/dev",
        dmmo::MEDIA_TYPE,
        br#"[{"ClientURI":"urn:test:mo:dev:1.0//","MOData":{"x":{"Name":"one","Reboot":null}}}]"#,
    );
    assert_eq!(
        w.codes("dms1", json!([["HGET", "https://r/dev"]])).await,
        [200]
    );
    let before = w.snapshot();
    let cases = [
        json!([
            "SUB",
            "http://127.0.0.1:8080/hook",
            "urn:oma:mo:moid:1.0/left/"
        ]),
        json!(["SUB", "http://[::1]/hook", "urn:oma:mo:moid:1.0/left/"]),
        json!(["CONT", "http://169.254.169.254/latest/meta-data/"]),
        json!(["CONT", "http://10.0.0.1/dm"]),
        // A DEFAULT is refused when it is given, as SUB is, not when it is used.
        json!([
            "DEFAULT",
            "http://169.254.169.254/cfg",
            "urn:oma:mo:moid:1.0"
        ]),
        json!(["DEFAULT", "http://[::1]/cfg", "urn:oma:mo:moid:1.0"]),
        json!([
            "EXEC",
            "urn:test:mo:dev:1.0/x/Reboot",
            "http://[fe80::1]/result"
        ]),
    ];
    for c in cases {
        assert_eq!(w.codes("dms1", json!([c.clone()])).await, [403], "{c}");
    }
    assert_eq!(w.snapshot(), before);
    assert!(w.store.subscriptions().unwrap().is_empty());
    assert!(
        w.store
            .default_source("urn:oma:mo:moid:1.0")
            .unwrap()
            .is_none()
    );
    assert!(w.ports.execs.borrow().is_empty(), "no EXEC ran");
}
