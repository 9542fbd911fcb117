//! Tests of `dmmo`.

use super::*;
use serde_json::json;

/// The encoder writes members in the schema's order (DDF, ClientURI, CV, MOData) and
/// children in document order, byte for byte what a `serde_json::Value` would give.
#[test]
fn encode_writes_the_schema_order_byte_for_byte() {
    let item = MoItem {
        ddf: Some("https://ddf/x".into()),
        client_uri: "urn:x:1.0/i".into(),
        cv: Some("cv1".into()),
        name: "i".into(),
        data: DataNode::Interior(vec![
            ("z".into(), DataNode::Leaf(json!(1))),
            (
                "a".into(),
                DataNode::Interior(vec![("k".into(), DataNode::Leaf(json!("v")))]),
            ),
            ("e".into(), DataNode::Interior(vec![])),
        ]),
    };
    let plain = MoItem {
        ddf: None,
        cv: None,
        name: "l".into(),
        data: DataNode::Leaf(json!(null)),
        client_uri: "urn:x:1.0/i/l".into(),
    };
    let want = json!([
        {"DDF": "https://ddf/x", "ClientURI": "urn:x:1.0/i", "CV": "cv1",
         "MOData": {"i": {"z": 1, "a": {"k": "v"}, "e": {}}}},
        {"ClientURI": "urn:x:1.0/i/l", "MOData": {"l": null}}
    ]);
    assert_eq!(
        String::from_utf8(encode(&[item, plain])).unwrap(),
        want.to_string()
    );
    assert_eq!(encode(&[]), b"[]");
}

/// A name given twice in one object keeps its first place and its last value, as a
/// JSON object would; the node budget counts every node, interior ones included.
#[test]
fn repeated_names_and_the_node_budget() {
    let doc = br#"[{"ClientURI":"u","MOData":{"i":{"a":1,"b":2,"a":{"x":3}}}}]"#;
    let items = decode(doc, Limits::default()).unwrap();
    assert_eq!(
        items[0].data,
        DataNode::Interior(vec![
            (
                "a".into(),
                DataNode::Interior(vec![("x".into(), DataNode::Leaf(json!(3)))])
            ),
            ("b".into(), DataNode::Leaf(json!(2))),
        ])
    );
    let small = Limits {
        max_bytes: 1 << 20,
        max_nodes: 4,
    };
    let four = br#"[{"ClientURI":"u","MOData":{"i":{"a":1,"b":{"c":2}}}}]"#;
    assert!(decode(four, small).is_ok());
    let five = br#"[{"ClientURI":"u","MOData":{"i":{"a":1,"b":{"c":2,"d":3}}}}]"#;
    let err = decode(five, small).unwrap_err();
    assert_eq!(
        (err.what.as_str(), err.at.as_str()),
        ("too many nodes", "$[0].MOData.i.b.d")
    );
    let trailing = decode(br#"[] x"#, small).unwrap_err();
    assert!(trailing.what.starts_with("not JSON"), "{trailing}");
}

/// The streaming writer gives the bytes `encode` gives, nested and empty nodes, escapes
/// and several items included.
#[test]
fn the_writer_writes_what_encode_writes() {
    fn write(w: &mut Writer, name: Option<&str>, node: &DataNode) {
        match node {
            DataNode::Leaf(v) => w.leaf(name, v),
            DataNode::Interior(children) => {
                w.open(name);
                for (n, c) in children {
                    write(w, Some(n), c);
                }
                w.close();
            }
        }
    }
    let items = vec![
        MoItem {
            ddf: Some("https://ddf/\"x\"".into()),
            client_uri: "urn:x:1.0/i".into(),
            cv: Some("cv1".into()),
            name: "i".into(),
            data: DataNode::Interior(vec![
                ("z\n".into(), DataNode::Leaf(json!(1.5))),
                (
                    "a".into(),
                    DataNode::Interior(vec![
                        ("k".into(), DataNode::Leaf(json!("v"))),
                        ("e".into(), DataNode::Interior(vec![])),
                    ]),
                ),
                ("n".into(), DataNode::Leaf(json!(null))),
            ]),
        },
        MoItem {
            ddf: None,
            client_uri: "urn:x:1.0/j/l".into(),
            cv: None,
            name: "l".into(),
            data: DataNode::Leaf(json!(false)),
        },
    ];
    let mut w = Writer::new();
    assert!(w.is_empty());
    for item in &items {
        w.begin_item(
            item.ddf.as_deref(),
            &item.client_uri,
            item.cv.as_deref(),
            &item.name,
        );
        write(&mut w, None, &item.data);
        w.end_item();
    }
    assert!(!w.is_empty());
    assert_eq!(
        String::from_utf8(w.finish()).unwrap(),
        String::from_utf8(encode(&items)).unwrap()
    );
    assert_eq!(Writer::new().finish(), encode(&[]));
}

/// Found by the `dmmo` fuzz target: a float that came back one ulp off after encode
/// and decode (serde_json's default float parsing is not exact), so a value passed
/// through the daemon changed. Decoding now rounds exactly (`float_roundtrip`).
#[test]
fn floats_survive_a_round_trip() {
    let doc = br#"[{"ClientURI": ".2//", "MOData": {"d": {"dev": 9999999999919999999999994}}}]"#;
    let items = decode(doc, Limits::default()).unwrap();
    assert_eq!(decode(&encode(&items), Limits::default()).unwrap(), items);
    for f in [
        0.1,
        1e-300,
        9.999999999919999e24,
        f64::MAX,
        2.2250738585072014e-308,
    ] {
        let one = MoItem {
            ddf: None,
            client_uri: "x".into(),
            cv: None,
            name: "n".into(),
            data: DataNode::Leaf(json!(f)),
        };
        let back = decode(&encode(std::slice::from_ref(&one)), Limits::default()).unwrap();
        assert_eq!(back, [one], "{f:e}");
    }
}

/// TS §7.2.1.4's example, verbatim (with its `oma:mo:` ClientURI, §14 #9).
const TS_DEVINFO: &str = r#"[
  {
    "DDF": "http://www.vendor.com/DDF/devinfo1.0.ddf",
    "ClientURI": "oma:mo:oma-dm-devinfo:1.0//",
    "CV": "686897696a7c876b7e",
    "MOData": {
      "DevInfo": {
        "DevID": "IMEI:493005100592800", "Man": "Vendor", "Mod": "DM_Client",
        "DmV": "2.0", "Lang": "en", "DevType": "smartphone", "OEM": "",
        "FwV": "android4.0.4", "SwV": "Vendor1.2", "HwV": ""
      }
    }
  }
]"#;

/// TS App. I.2: the repository's answer creating a DCMO instance.
const TS_DCMO: &str = r#"[{"DDF":"http://www.vendor.com/DDF/dcmo1.0.ddf","ClientURI":"urn:oma:mo:oma-dcmo:1.0//","MOData":{"usb":{"Property":"USB","Group":"I/O","Description":"USB Control","Enabled":"true"}}}]"#;

/// TS App. F: a single item object (not an array) in a multipart part.
const TS_SESSIONINFO: &str = r#"{"DDF": "http://www.vendor.com/DDF/oma-sessioninfomo1.0.ddf",
 "ClientURI": "urn:oma:mo:oma-sessioninfomo:1.0//",
 "MOData": {"SessionInfoMO": {"CBT": 1, "ROAMING": 0}}}"#;

#[test]
fn ts_examples_decode_and_round_trip() {
    for (doc, name, count, uri) in [
        (TS_DEVINFO, "DevInfo", 11, "oma:mo:oma-dm-devinfo:1.0//"),
        (TS_DCMO, "usb", 5, "urn:oma:mo:oma-dcmo:1.0//"),
        (
            TS_SESSIONINFO,
            "SessionInfoMO",
            3,
            "urn:oma:mo:oma-sessioninfomo:1.0//",
        ),
    ] {
        let items = decode(doc.as_bytes(), Limits::default()).unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].name, name);
        assert_eq!(items[0].client_uri, uri);
        assert_eq!(items[0].data.count(), count);
        // Our encoding is the array form; decoding it again gives the same items, and
        // it equals the TS document as JSON (members keep their order).
        let again = decode(&encode(&items), Limits::default()).unwrap();
        assert_eq!(again, items);
        let ours: Json = serde_json::from_slice(&encode(&items)).unwrap();
        let theirs: Json = serde_json::from_str(doc).unwrap();
        let theirs = if theirs.is_array() {
            theirs
        } else {
            json!([theirs])
        };
        assert_eq!(ours, theirs);
    }
    let items = decode(TS_DEVINFO.as_bytes(), Limits::default()).unwrap();
    assert_eq!(items[0].cv.as_deref(), Some("686897696a7c876b7e"));
    let DataNode::Interior(children) = &items[0].data else {
        panic!("root is interior")
    };
    assert_eq!(
        children[0],
        (
            "DevID".into(),
            DataNode::Leaf(json!("IMEI:493005100592800"))
        )
    );
}

#[test]
fn malformed_documents_say_what_and_where() {
    let cases: &[(&str, &str, &str)] = &[
        ("", "not JSON", "line 1"),
        ("{", "not JSON", "line 1"),
        ("42", "expected an array", "$"),
        ("[1]", "expected an object", "$[0]"),
        (r#"[{"MOData":{"a":1}}]"#, "ClientURI is required", "$[0]"),
        (
            r#"[{"ClientURI":5,"MOData":{"a":1}}]"#,
            "ClientURI must be a string",
            "$[0].ClientURI",
        ),
        (r#"[{"ClientURI":"x"}]"#, "MOData is required", "$[0]"),
        (
            r#"[{"ClientURI":"x","MOData":[]}]"#,
            "MOData must be an object",
            "$[0].MOData",
        ),
        (
            r#"[{"ClientURI":"x","MOData":{}}]"#,
            "exactly one node",
            "$[0].MOData",
        ),
        (
            r#"[{"ClientURI":"x","MOData":{"a":1,"b":2}}]"#,
            "exactly one node",
            "$[0].MOData",
        ),
        (
            r#"[{"ClientURI":"x","MOData":{"a":{"b":[1]}}}]"#,
            "arrays are not MO data",
            "$[0].MOData.a.b",
        ),
    ];
    for (doc, what, at) in cases {
        let err = decode(doc.as_bytes(), Limits::default()).unwrap_err();
        assert!(err.what.contains(what), "{doc}: {err}");
        assert!(err.at.starts_with(at), "{doc}: {err}");
    }
}

fn data_node() -> impl proptest::strategy::Strategy<Value = DataNode> {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        any::<i64>().prop_map(Json::from),
        "[ -~é]{0,12}".prop_map(Json::String),
    ]
    .prop_map(DataNode::Leaf);
    leaf.prop_recursive(4, 64, 6, |inner| {
        proptest::collection::btree_map("[A-Za-z0-9._~-]{1,8}", inner, 0..6)
            .prop_map(|m| DataNode::Interior(m.into_iter().collect()))
    })
}

proptest::proptest! {
    #[test]
    fn encode_then_decode_is_identity(
        name in "[A-Za-z0-9._~-]{1,8}",
        data in data_node(),
        cv in proptest::option::of("[0-9a-f]{1,16}"),
        ddf in proptest::option::of("https://[a-z]{1,8}/ddf"),
    ) {
        let item = MoItem { ddf, client_uri: format!("urn:x:y:1.0/{name}/"), cv, name, data };
        let back = decode(&encode(std::slice::from_ref(&item)), Limits::default()).unwrap();
        proptest::prop_assert_eq!(back, vec![item]);
    }

    #[test]
    fn decode_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
        let _ = decode(&bytes, Limits::default());
    }
}

#[test]
fn limits_hold() {
    let small = Limits {
        max_bytes: 10,
        max_nodes: 100,
    };
    assert!(
        decode(TS_DCMO.as_bytes(), small)
            .unwrap_err()
            .what
            .contains("exceeds")
    );
    let few = Limits {
        max_bytes: 1 << 20,
        max_nodes: 4,
    };
    assert!(
        decode(TS_DCMO.as_bytes(), few)
            .unwrap_err()
            .what
            .contains("too many nodes")
    );
    let enough = Limits {
        max_bytes: 1 << 20,
        max_nodes: 5,
    };
    assert!(decode(TS_DCMO.as_bytes(), enough).is_ok());
}

/// Records the events `decode_into` gives, and refuses a leaf named `stop`.
#[derive(Default)]
struct Events(Vec<String>);

impl DataSink for Events {
    type Error = String;
    fn open(&mut self, name: &str) -> Result<(), String> {
        self.0.push(format!("open {name}"));
        Ok(())
    }
    fn leaf(&mut self, name: &str, value: Json) -> Result<(), String> {
        if name == "stop" {
            return Err(format!("refused {value}"));
        }
        self.0.push(format!("{name}={value}"));
        Ok(())
    }
    fn close(&mut self) -> Result<(), String> {
        self.0.push("close".into());
        Ok(())
    }
}

/// `decode_into` streams one item's data in document order, with no dedup (the sink sees
/// a repeated name twice); the sink's own error comes back as itself; more or fewer than
/// one item, MOData twice and the node budget are the document's errors; feeding a
/// decoded `DataNode` gives the same events as the streamed document.
#[test]
fn decode_into_streams_one_item() {
    let doc = br#"{"CV":"c","ClientURI":"u","MOData":{"i":{"a":1,"b":{"x":"y"},"a":2}}}"#;
    let mut events = Events::default();
    let head = decode_into(doc, Limits::default(), &mut events).unwrap();
    assert_eq!(
        head,
        ItemHead {
            ddf: None,
            client_uri: "u".into(),
            cv: Some("c".into()),
            name: "i".into()
        }
    );
    let want = [
        "open i", "a=1", "open b", "x=\"y\"", "close", "a=2", "close",
    ];
    assert_eq!(events.0, want);

    let tree = decode(
        br#"{"ClientURI":"u","MOData":{"i":{"a":1,"b":{"x":"y"}}}}"#,
        Limits::default(),
    )
    .unwrap();
    let mut fed = Events::default();
    tree[0].data.feed("i", &mut fed).unwrap();
    assert_eq!(
        fed.0,
        ["open i", "a=1", "open b", "x=\"y\"", "close", "close"]
    );

    let refused = br#"[{"ClientURI":"u","MOData":{"i":{"a":1,"stop":true}}}]"#;
    assert_eq!(
        decode_into(refused, Limits::default(), &mut Events::default()),
        Err(StreamError::Sink("refused true".into()))
    );
    let cases: &[(&[u8], &str)] = &[
        (
            br#"[{"ClientURI":"u","MOData":{"i":1}},{"ClientURI":"v","MOData":{"j":2}}]"#,
            "expected one MO item, got more at $[1]",
        ),
        (b"[]", "expected one MO item, got none at $"),
        (
            br#"{"ClientURI":"u","MOData":{"i":1},"MOData":{"j":2}}"#,
            "MOData given twice at $[0]",
        ),
        (br#"{"MOData":{"i":1}}"#, "ClientURI is required at $[0]"),
        (
            br#"{"ClientURI":"u","MOData":{"i":{"a":1,"b":2}}}"#,
            "too many nodes at $[0].MOData.i.b",
        ),
    ];
    let small = Limits {
        max_bytes: 1 << 20,
        max_nodes: 2,
    };
    for (doc, want) in cases {
        match decode_into(doc, small, &mut Events::default()) {
            Err(StreamError::Decode(e)) => assert_eq!(e.to_string(), *want),
            other => panic!("{}: {other:?}", String::from_utf8_lossy(doc)),
        }
    }
}

/// Records what [`decode_items_into`] gives, as (event, name) and the heads.
#[derive(Default)]
struct ItemEvents(Vec<String>);

impl DataSink for ItemEvents {
    type Error = String;
    fn open(&mut self, name: &str) -> Result<(), String> {
        self.0.push(format!("open {name}"));
        Ok(())
    }
    fn leaf(&mut self, name: &str, value: serde_json::Value) -> Result<(), String> {
        if value == json!("stop") {
            return Err(format!("stopped at {name}"));
        }
        self.0.push(format!("leaf {name}={value}"));
        Ok(())
    }
    fn close(&mut self) -> Result<(), String> {
        self.0.push("close".into());
        Ok(())
    }
}

impl ItemSink for ItemEvents {
    fn end_item(&mut self, head: ItemHead) -> Result<(), String> {
        self.0
            .push(format!("end {} {}", head.name, head.client_uri));
        Ok(())
    }
}

/// The two passes of an HGET without a ClientURI (issue 27): the heads first, as `decode`
/// would give them, then every item's data streamed in document order.
#[test]
fn heads_then_every_item_streamed() {
    let doc = br#"[{"ClientURI":"urn:x:1.0//","MOData":{"a":{"v":1,"w":{"x":"y"}}}},
                  {"MOData":{"b":2},"DDF":"https://d","ClientURI":"urn:x:1.0/i/b"}]"#;
    let whole = decode(doc, Limits::default()).unwrap();
    let first = heads(doc, Limits::default()).unwrap();
    assert_eq!(first.len(), 2);
    for (h, item) in first.iter().zip(&whole) {
        assert_eq!(
            (&h.name, &h.client_uri, &h.ddf, &h.cv),
            (&item.name, &item.client_uri, &item.ddf, &item.cv)
        );
    }
    let mut events = ItemEvents::default();
    decode_items_into(doc, Limits::default(), &mut events).unwrap();
    assert_eq!(
        events.0,
        [
            "open a",
            "leaf v=1",
            "open w",
            "leaf x=\"y\"",
            "close",
            "close",
            "end a urn:x:1.0//",
            "leaf b=2",
            "end b urn:x:1.0/i/b"
        ]
    );
    // The heads pass checks what decode checks, with the same message and place.
    let bad = br#"[{"ClientURI":"urn:x:1.0//","MOData":{"a":{"v":[1]}}}]"#;
    assert_eq!(
        heads(bad, Limits::default()).unwrap_err(),
        decode(bad, Limits::default()).unwrap_err()
    );
    let few = Limits {
        max_nodes: 3,
        ..Limits::default()
    };
    assert_eq!(heads(doc, few).unwrap_err(), decode(doc, few).unwrap_err());
    // A sink's refusal stops the stream and comes back as its own.
    let stop = br#"[{"ClientURI":"urn:x:1.0//","MOData":{"a":{"v":"stop"}}}]"#;
    assert_eq!(
        decode_items_into(stop, Limits::default(), &mut ItemEvents::default()),
        Err(StreamError::Sink("stopped at v".into()))
    );
}
