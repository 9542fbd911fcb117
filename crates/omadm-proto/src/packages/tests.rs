//! Tests of the JSON packages with the TS's own examples as vectors.

use serde_json::json;

use super::*;

const LIMITS: P2Limits = P2Limits {
    max_bytes: 1 << 20,
    max_commands: 1000,
};

/// TS §5.2.3's Package#2 example, verbatim.
const TS_P2: &str = r#"{
  "CMD": [
    ["HPOST", "https://DMcontent.DMserver.operator.com/[DevID]",
              "urn:oma:mo:oma-dm-devinfo:1.0//",
              "urn:oma:mo:oma-sessioninfomo:1.0//"],
    ["HGET", "https://DMcontent.DMserver.operator.com/new_mo"],
    ["GET", "urn:oma:mo:oma-sessioninfomo:1.0//CBT"]
  ]
}"#;

#[test]
fn ts_package2_example() {
    let cmds = decode_package2(TS_P2.as_bytes(), LIMITS).unwrap();
    assert_eq!(
        cmds,
        [
            Command::Hpost {
                server_uri: "https://DMcontent.DMserver.operator.com/[DevID]".into(),
                client_uris: vec![
                    "urn:oma:mo:oma-dm-devinfo:1.0//".into(),
                    "urn:oma:mo:oma-sessioninfomo:1.0//".into()
                ],
            },
            Command::Hget {
                server_uri: "https://DMcontent.DMserver.operator.com/new_mo".into(),
                client_uri: None
            },
            Command::Get {
                client_uri: "urn:oma:mo:oma-sessioninfomo:1.0//CBT".into()
            },
        ]
    );
    // Encoding gives the same JSON back.
    let again: Json = serde_json::from_slice(&encode_package2(&cmds)).unwrap();
    assert_eq!(again, serde_json::from_str::<Json>(TS_P2).unwrap());
}

#[test]
fn every_command_and_every_malformation() {
    let s = |v: &[&str]| Json::Array(v.iter().map(|x| json!(x)).collect());
    let ok = [
        (
            s(&["HGET", "u"]),
            Command::Hget {
                server_uri: "u".into(),
                client_uri: None,
            },
        ),
        (
            s(&["HGET", "u", "c"]),
            Command::Hget {
                server_uri: "u".into(),
                client_uri: Some("c".into()),
            },
        ),
        (
            s(&["HPUT", "u", "c1", "c2"]),
            Command::Hput {
                server_uri: "u".into(),
                client_uris: vec!["c1".into(), "c2".into()],
            },
        ),
        (
            s(&["HPOST", "u", "c"]),
            Command::Hpost {
                server_uri: "u".into(),
                client_uris: vec!["c".into()],
            },
        ),
        (
            s(&["DELETE", "c"]),
            Command::Delete {
                client_uri: "c".into(),
            },
        ),
        (
            s(&["EXEC", "c"]),
            Command::Exec {
                client_uri: "c".into(),
                server_uri: None,
            },
        ),
        (
            s(&["EXEC", "c", "u"]),
            Command::Exec {
                client_uri: "c".into(),
                server_uri: Some("u".into()),
            },
        ),
        (
            s(&["GET", "c"]),
            Command::Get {
                client_uri: "c".into(),
            },
        ),
        (
            s(&["SHOW", "u"]),
            Command::Show {
                server_uri: "u".into(),
            },
        ),
        (
            s(&["CONT", "u"]),
            Command::Cont {
                server_uri: "u".into(),
            },
        ),
        (s(&["END"]), Command::End),
        (
            s(&["DEFAULT", "u", "m"]),
            Command::Default {
                server_uri: "u".into(),
                moid: "m".into(),
            },
        ),
        (
            s(&["SUB", "u", "c"]),
            Command::Sub {
                server_uri: "u".into(),
                client_uri: "c".into(),
            },
        ),
        (
            s(&["UNSUB", "c"]),
            Command::Unsub {
                client_uri: "c".into(),
            },
        ),
        (s(&["ADD", "c"]), Command::Unknown { name: "ADD".into() }),
        (
            s(&["hget", "u"]),
            Command::Unknown {
                name: "hget".into(),
            },
        ),
    ];
    for (j, want) in ok {
        let cmds =
            decode_package2(json!({ "CMD": [j.clone()] }).to_string().as_bytes(), LIMITS).unwrap();
        assert_eq!(cmds, std::slice::from_ref(&want), "{j}");
        if !matches!(want, Command::Unknown { .. }) {
            assert_eq!(want.to_json(), j);
        }
    }
    let malformed = [
        s(&["HGET"]),
        s(&["HGET", "u", "c", "x"]),
        s(&["HPUT", "u"]),
        s(&["HPOST", "u"]),
        s(&["DELETE"]),
        s(&["DELETE", "a", "b"]),
        s(&["EXEC", "c", "u", "x"]),
        s(&["GET"]),
        s(&["SHOW"]),
        s(&["CONT", "a", "b"]),
        s(&["END", "x"]),
        s(&["DEFAULT", "u"]),
        s(&["SUB", "u"]),
        s(&["UNSUB"]),
        json!([]),
        json!(["GET", 5]),
        json!("GET"),
        json!({"GET": "c"}),
        json!(null),
    ];
    for j in malformed {
        let cmds =
            decode_package2(json!({ "CMD": [j.clone()] }).to_string().as_bytes(), LIMITS).unwrap();
        assert!(
            matches!(cmds[0], Command::Malformed { .. }),
            "{j}: {:?}",
            cmds[0]
        );
    }
}

#[test]
fn package2_structure_errors_end_the_session() {
    for (body, want) in [
        ("", "not JSON"),
        ("[]", "no CMD"),
        ("{\"cmd\": []}", "no CMD"),
        ("{\"CMD\": {}}", "must be an array"),
        ("{\"CMD\": \"END\"}", "must be an array"),
    ] {
        let e = decode_package2(body.as_bytes(), LIMITS).unwrap_err();
        assert!(e.what.contains(want), "{body}: {e}");
    }
    let tiny = P2Limits {
        max_bytes: 10,
        max_commands: 1,
    };
    assert!(
        decode_package2(TS_P2.as_bytes(), tiny)
            .unwrap_err()
            .what
            .contains("exceeds")
    );
    let few = P2Limits {
        max_bytes: 1 << 20,
        max_commands: 2,
    };
    assert!(
        decode_package2(TS_P2.as_bytes(), few)
            .unwrap_err()
            .what
            .contains("exceed the limit of 2")
    );
    assert!(
        decode_package2(br#"{"CMD": []}"#, LIMITS)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn ts_package1_example_and_ours() {
    // TS §5.2.2's example, verbatim.
    let ts = r#"{
  "MOS": [
    {"DDF": "http://www.vendor.com/DDF/devinfo1.0.ddf",
     "MOID": "urn:oma:mo:oma-dm-devinfo:1.0", "MIID": ["miid1"]},
    {"DDF": "http://www.vendor.com/DDF/oma-sessioninfomo1.0.ddf",
     "MOID": "urn:oma:mo:oma-sessioninfomo:1.0", "MIID": ["miid1"]}
  ],
  "Alert": [
    {"AlertType": "urn:oma:at:scomo:1.0:OperationComplete",
     "SourceURI": "urn:oma:mo:oma-scomo:1.0/SCOMO1/Download/Package1/Operations/DownloadInstall",
     "TargetURI": "urn:oma:mo:oma-scomo:1.0/SCOMO1/Inventory/Deployed/Component1",
     "Mark": "warning", "DataType": "text/xml",
     "Data": {"DM1x": "<ResultCode>1200</ResultCode> <!-- SCOMO Result Code --><Identifier>Component1ID</Identifier>"}}
  ]
}"#;
    let p = decode_package1(ts.as_bytes()).unwrap();
    assert_eq!(p.mos.as_ref().unwrap().len(), 2);
    assert_eq!(p.alerts[0].mark.as_deref(), Some("warning"));
    let again: Json = serde_json::from_slice(&encode_package1(&p)).unwrap();
    assert_eq!(again, serde_json::from_str::<Json>(ts).unwrap());
    // The client-initiated Package#1 we emit.
    let ours = Package1 {
        mos: None,
        alerts: vec![Alert::of_type(alert_type::CLIENT_INITIATED)],
    };
    assert_eq!(
        encode_package1(&ours),
        br#"{"Alert":[{"AlertType":"urn:oma:at:dm:2.0:ClientInitiatedMgmt"}]}"#
    );
    // ServerInitiatedMgmt carries the NOTIFICATION-ID.
    let si = serde_json::to_value(Alert::server_initiated(Some(1234))).unwrap();
    assert_eq!(
        si,
        json!({"AlertType": "urn:oma:at:dm:2.0:ServerInitiatedMgmt", "DataType": "application/json", "Data": {"NOTIFICATION-ID": 1234}})
    );
    // §14 #2: the schema's {"Alert": {"Alert": [...]}} reading is accepted.
    let nested = decode_package1(br#"{"Alert": {"Alert": [{"AlertType": "x"}]}}"#).unwrap();
    assert_eq!(nested.alerts, [Alert::of_type("x")]);
}

#[test]
fn ts_package3_example_and_variants() {
    // TS §5.2.4's example, verbatim.
    let ts = r#"{
  "Status": [
    {"sc": 200},
    {"sc": 200, "URI": ["urn:oma:mo:oma-mo:1.0/miid1/", "urn:oma:mo:oma-mo:1.0/miid2/"]},
    {"sc": 200}
  ],
  "Alert": [
    {"AlertType": "urn:oma:at:dcmo:1.0:OperationComplete",
     "SourceURI": "urn:oma:mo:oma-dcmo:1.0/Capability123/Operations/Enable",
     "Mark": "warning", "DataType": "int", "Data": {"DM1x": 1404}}
  ]
}"#;
    let p = decode_package3(ts.as_bytes()).unwrap();
    assert_eq!(p.status[1].uri.len(), 2);
    let again: Json = serde_json::from_slice(&encode_package3(&p)).unwrap();
    assert_eq!(again, serde_json::from_str::<Json>(ts).unwrap());
    // App. F / I variants (§14 #1).
    let v = decode_package3(br#"{"Status": [200, 404, [200, "urn:x:1.0/a/"]]}"#).unwrap();
    assert_eq!(
        v.status,
        [
            Status::code(200),
            Status::code(404),
            Status {
                sc: 200,
                uri: vec!["urn:x:1.0/a/".into()]
            }
        ]
    );
    for bad in [
        r#"{}"#,
        r#"{"Status": ["200"]}"#,
        r#"{"Status": [{"URI": []}]}"#,
        r#"{"Status": [[200, 5]]}"#,
    ] {
        assert!(decode_package3(bad.as_bytes()).is_err(), "{bad}");
    }
}

#[test]
fn multipart_package3_round_trips_and_reads_the_ts_example() {
    let p = Package3 {
        status: vec![Status::code(200), Status::code(200), Status::code(404)],
        alerts: vec![],
    };
    let parts = vec![
        Part {
            index: 0,
            content_type: "text/plain".into(),
            body: b"IMEI:493005100592800".to_vec(),
        },
        Part {
            index: 1,
            content_type: "application/dmmo+json".into(),
            body: br#"[{"ClientURI":"x","MOData":{"a":1}}]"#.to_vec(),
        },
    ];
    let (ct, body) = encode_package3_http(&p, &parts).unwrap();
    assert!(ct.starts_with("multipart/form-data; boundary="), "{ct}");
    assert_eq!(
        decode_package3_http(&ct, &body).unwrap(),
        (p.clone(), parts)
    );
    // No parts: plain JSON.
    let (ct, body) = encode_package3_http(&p, &[]).unwrap();
    assert_eq!(ct, P3_TYPE);
    assert_eq!(decode_package3_http(&ct, &body).unwrap().0, p);
    // A part containing the would-be boundary forces a longer one.
    let (ct, _) = encode_package3_http(
        &p,
        &[Part {
            index: 0,
            content_type: "text/plain".into(),
            body: b"--omadm-".to_vec(),
        }],
    )
    .unwrap();
    let (ct2, body2) = {
        let b = ct.split("boundary=").nth(1).unwrap().to_owned();
        encode_package3_http(
            &p,
            &[Part {
                index: 0,
                content_type: "text/plain".into(),
                body: b.into_bytes(),
            }],
        )
        .unwrap()
    };
    assert!(decode_package3_http(&ct2, &body2).is_ok());

    // TS App. F, with its bare-integer statuses.
    let ts = "--simple_boundary\r\nContent-Disposition: form-data\r\nContent-Type: application/vnd.oma.dm.response+json\r\n\r\n\
{\"Status\": [200, 200, 200, 200, 404, 200]}\r\n--simple_boundary\r\nContent-Disposition: form-data; name=\"0\"\r\nContent-Type: text/plain\r\n\r\n\
IMEI:493005100592800\r\n--simple_boundary\r\nContent-Disposition: form-data; name=\"2\"\r\nContent-Type: application/dmmo+json\r\n\r\n\
{\"ClientURI\": \"urn:oma:mo:oma-sessioninfomo:1.0//\", \"MOData\": {\"SessionInfoMO\": {\"CBT\": 1, \"ROAMING\": 0}}}\r\n--simple_boundary--\r\n";
    let (p3, parts) = decode_package3_http(
        "multipart/form-data; boundary=simple_boundary",
        ts.as_bytes(),
    )
    .unwrap();
    assert_eq!(p3.status.len(), 6);
    assert_eq!(parts.iter().map(|p| p.index).collect::<Vec<_>>(), [0, 2]);
    assert_eq!(parts[0].body, b"IMEI:493005100592800");
    assert!(decode_package3_http("text/html", b"").is_err());
    assert!(decode_package3_http("multipart/form-data", b"").is_err());
}

fn any_command() -> impl proptest::strategy::Strategy<Value = Command> {
    use proptest::prelude::*;
    let u = || "[ -~]{0,20}";
    prop_oneof![
        (u(), proptest::option::of(u())).prop_map(|(server_uri, client_uri)| Command::Hget {
            server_uri,
            client_uri
        }),
        (u(), proptest::collection::vec(u(), 1..3)).prop_map(|(server_uri, client_uris)| {
            Command::Hput {
                server_uri,
                client_uris,
            }
        }),
        (u(), proptest::collection::vec(u(), 1..3)).prop_map(|(server_uri, client_uris)| {
            Command::Hpost {
                server_uri,
                client_uris,
            }
        }),
        u().prop_map(|client_uri| Command::Delete { client_uri }),
        (u(), proptest::option::of(u())).prop_map(|(client_uri, server_uri)| Command::Exec {
            client_uri,
            server_uri
        }),
        u().prop_map(|client_uri| Command::Get { client_uri }),
        u().prop_map(|server_uri| Command::Show { server_uri }),
        u().prop_map(|server_uri| Command::Cont { server_uri }),
        Just(Command::End),
        (u(), u()).prop_map(|(server_uri, moid)| Command::Default { server_uri, moid }),
        (u(), u()).prop_map(|(server_uri, client_uri)| Command::Sub {
            server_uri,
            client_uri
        }),
        u().prop_map(|client_uri| Command::Unsub { client_uri }),
    ]
}

proptest::proptest! {
    #[test]
    fn package2_round_trips(cmds in proptest::collection::vec(any_command(), 0..8)) {
        proptest::prop_assert_eq!(decode_package2(&encode_package2(&cmds), LIMITS).unwrap(), cmds);
    }

    #[test]
    fn package2_decode_never_panics(s in "\\PC{0,200}") {
        let _ = decode_package2(s.as_bytes(), LIMITS);
    }

    #[test]
    fn multipart_decode_never_panics(b in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
        let _ = decode_package3_http("multipart/form-data; boundary=x", &b);
    }
}

#[test]
fn media_types_that_cannot_break_a_header() {
    let table = [
        ("text/plain", true),
        ("application/dmmo+json", true),
        ("application/vnd.oma.dm.response+json", true),
        ("text/plain; charset=utf-8", true),
        ("text/plain; charset=\"utf-8\"", true),
        ("image/svg+xml", true),
        ("", false),
        ("text", false),
        ("text/", false),
        ("/plain", false),
        ("text/plain\r\nX-Injected: 1", false),
        ("text/plain\n", false),
        ("text/pl ain", false),
        ("text/plain; charset", false),
        ("text/plain; charset=\"a\"b\"", false),
        ("text/plain; x=\"\r\n\"", false),
        ("täxt/plain", false),
        ("text/plain\0", false),
    ];
    for (ct, ok) in table {
        assert_eq!(is_media_type(ct), ok, "{ct:?}");
    }
}

/// The framing defect: a part's content type holding CR/LF or the boundary used to go out
/// unchecked, and the decoder then read a part without headers.
#[test]
fn the_multipart_encoder_refuses_a_content_type_that_breaks_framing() {
    let p = Package3 {
        status: vec![Status::code(200)],
        ..Default::default()
    };
    for ct in ["text/plain\r\n\r\nforged", "text/plain\r\n--", "a\"b"] {
        let err = encode_package3_http(
            &p,
            &[Part {
                index: 0,
                content_type: ct.into(),
                body: b"x".to_vec(),
            }],
        )
        .unwrap_err();
        assert_eq!(err.index, 0, "{ct:?}");
    }
}

fn any_part() -> impl proptest::strategy::Strategy<Value = Part> {
    use proptest::prelude::*;
    let ct = prop_oneof![
        Just("text/plain".to_owned()),
        Just("application/dmmo+json".to_owned()),
        "[a-z0-9]{1,8}/[a-z0-9.+-]{1,12}",
        "[a-z]{1,5}/[a-z]{1,5}; [a-z]{1,5}=[a-z0-9]{1,5}",
        // Anything at all: refused unless it is a media type.
        "\\PC{0,20}",
        "[ -~\r\n]{0,20}",
    ];
    (
        0usize..20,
        ct,
        proptest::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(index, content_type, body)| Part {
            index,
            content_type,
            body,
        })
}

proptest::proptest! {
    /// Encode then decode gives back the parts, content types included; what the encoder
    /// refuses is exactly what is not a media type.
    #[test]
    fn multipart_round_trips_with_content_types(parts in proptest::collection::vec(any_part(), 1..5)) {
        let p = Package3 { status: vec![Status::code(200)], ..Default::default() };
        match encode_package3_http(&p, &parts) {
            Ok((ct, body)) => {
                proptest::prop_assert!(parts.iter().all(|x| is_media_type(&x.content_type)));
                let (back, got) = decode_package3_http(&ct, &body).unwrap();
                proptest::prop_assert_eq!(back, p);
                proptest::prop_assert_eq!(got, parts);
            }
            Err(e) => {
                proptest::prop_assert!(parts.iter().any(|x| x.index == e.index && !is_media_type(&x.content_type)));
            }
        }
    }
}
