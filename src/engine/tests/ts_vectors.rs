//! The TS's own exchanges as vectors: App. I (retrieving and modifying MO data) and App. F (GET results in a multipart Package#3).

use super::*;

#[tokio::test]
async fn ts_app_i_1_retrieving_mo_data() {
    let w = World::new();
    // dms1 may read DevInfo (local) and the DCMO it created.
    w.serve("https://dms1.example/dcmo_camera", dmmo::MEDIA_TYPE, br#"[{"ClientURI":"urn:oma:mo:oma-dcmo:1.0//","MOData":{"camera":{"Property":"Camera","Enabled":"true"}}}]"#);
    assert_eq!(
        w.codes(
            "dms1",
            json!([["HGET", "https://dms1.example/dcmo_camera"]])
        )
        .await,
        [200]
    );
    let out = w
        .run(
            "dms1",
            json!([
                ["GET", "oma:mo:oma-dm-devinfo:1.0//"],
                ["GET", "urn:oma:mo:oma-dm-devinfo:1.2//"],
                ["GET", "urn:oma:mo:oma-dm-devinfo:1.2//DevID"]
            ]),
        )
        .await;
    // The 1.0 MOID of the TS example is not ours: 404; the 1.2 one answers.
    assert_eq!(
        out.package3.status.iter().map(|s| s.sc).collect::<Vec<_>>(),
        [404, 200, 200]
    );
    assert_eq!(
        out.parts.iter().map(|p| p.index).collect::<Vec<_>>(),
        [1, 2]
    );
    let items = dmmo::decode(&out.parts[0].body, dmmo::Limits::default()).unwrap();
    assert_eq!(
        items[0].client_uri,
        "urn:oma:mo:oma-dm-devinfo:1.2/DevInfo/"
    );
    assert!(items[0].cv.is_some() && items[0].ddf.is_some());
    let j: Json = serde_json::from_slice(&out.parts[0].body).unwrap();
    assert_eq!(j[0]["MOData"]["DevInfo"]["DevID"], DEV_ID);
    assert_eq!(
        (
            out.parts[1].content_type.as_str(),
            out.parts[1].body.as_slice()
        ),
        ("text/plain", DEV_ID.as_bytes())
    );

    // HPOST of the camera state, then END: the raw leaf goes to the repository.
    let out = w
        .run(
            "dms1",
            json!([
                [
                    "HPOST",
                    "http://www.dr.com/camera_state?DevID=[DevID]",
                    "urn:oma:mo:oma-dcmo:1.0/(x)/Enabled?nv=(x)/Property:Camera"
                ],
                ["END"]
            ]),
        )
        .await;
    assert!(out.end);
    assert_eq!(out.package3.status[0].sc, 200);
    let sends = w.ports.sends.borrow();
    assert_eq!(sends[0].0, Method::Post);
    assert_eq!(
        sends[0].1,
        "http://www.dr.com/camera_state?DevID=IMEI%3A493005100592800"
    );
    assert_eq!(
        (sends[0].2.as_str(), sends[0].3.as_slice()),
        ("text/plain", b"true".as_slice())
    );
}

#[tokio::test]
async fn ts_app_i_2_modifying_mo_data() {
    let w = World::new();
    // The TS's names are AuthNoti/AuthSecret and ServerID (§14 #3); ours are §12.2's.
    w.serve(
        "http://www.dms.com/new_secret?DevID=IMEI:493005100592800",
        "text/plain",
        b"AB123CES121XX90TPOWQESEFSE33",
    );
    let out = w
        .run(
            "dms1",
            json!([[
                "HGET",
                "http://www.dms.com/new_secret?DevID=IMEI:493005100592800",
                "urn:oma:mo:oma-dm-dmacc:2.0/(x)/Auth/Noti/Secret?nv=(x)/SrvID:dms1"
            ]]),
        )
        .await;
    assert_eq!(out.package3.status, [Status::code(200)]);
    assert_eq!(
        w.value(DMACC, "dms1", "Auth/Noti/Secret"),
        Some(Value::Bin(b"AB123CES121XX90TPOWQESEFSE33".to_vec()))
    );

    w.serve("http://www.dms.com/dcmo_usb", dmmo::MEDIA_TYPE, br#"[{"DDF":"http://www.vendor.com/DDF/dcmo1.0.ddf","ClientURI":"urn:oma:mo:oma-dcmo:1.0//","MOData":{"usb":{"Property":"USB","Group":"I/O","Description":"USB Control","Enabled":"true"}}}]"#);
    let out = w
        .run("dms1", json!([["HGET", "http://www.dms.com/dcmo_usb"]]))
        .await;
    assert_eq!(
        out.package3.status,
        [Status {
            sc: 200,
            uri: vec!["urn:oma:mo:oma-dcmo:1.0/usb/".into()]
        }]
    );
    let inst = w
        .store
        .instance("urn:oma:mo:oma-dcmo:1.0", "usb")
        .unwrap()
        .unwrap();
    assert_eq!(inst.creator, "serverid:dms1");
    // The same again: a new instance beside the first, reported where it went.
    let out = w
        .run("dms1", json!([["HGET", "http://www.dms.com/dcmo_usb"]]))
        .await;
    assert_eq!(
        out.package3.status[0].uri,
        ["urn:oma:mo:oma-dcmo:1.0/usb-2/"]
    );
    assert_eq!(w.ports.fetches.borrow()[1].1, ["application/dmmo+json"]);
}

#[tokio::test]
async fn ts_app_f_get_results_in_a_multipart_package3() {
    // App. F's Package#2: GET DevID, GET DevID, GET the SessionInfo root, HPUT, GET of an
    // unknown MOID, HGET. The GETs that found data ride as parts named by their position.
    let w = World::new();
    let reg = &w.reg;
    crate::mo::standard::refresh_sessioninfo(&w.store, reg, &crate::host::Host::new(w._dir.path()))
        .unwrap();
    w.serve(
        "https://r/new",
        dmmo::MEDIA_TYPE,
        br#"[{"ClientURI":"urn:test:mo:dev:1.0//","MOData":{"n":{"Name":"x"}}}]"#,
    );
    let out = w
        .run(
            "dms1",
            json!([
                ["GET", "urn:oma:mo:oma-dm-devinfo:1.2//DevID"],
                ["GET", "urn:oma:mo:oma-dm-devinfo:1.2//DevID"],
                ["GET", "urn:oma:mo:oma-sessioninfomo:1.0//"],
                ["HPUT", "https://r/put", "urn:oma:mo:oma-dm-devinfo:1.2//"],
                ["GET", "urn:oma:mo:unknown:1.0//"],
                ["HGET", "https://r/new"]
            ]),
        )
        .await;
    let codes: Vec<u16> = out.package3.status.iter().map(|s| s.sc).collect();
    assert_eq!(codes, [200, 200, 200, 200, 404, 200]);
    let (ct, body) =
        crate::protocol::packages::encode_package3_http(&out.package3, &out.parts).unwrap();
    let (p3, parts) = crate::protocol::packages::decode_package3_http(&ct, &body).unwrap();
    assert_eq!(p3, out.package3);
    assert_eq!(parts.iter().map(|p| p.index).collect::<Vec<_>>(), [0, 1, 2]);
    assert_eq!(
        (parts[0].content_type.as_str(), parts[0].body.as_slice()),
        ("text/plain", DEV_ID.as_bytes())
    );
    let si: Json = serde_json::from_slice(&parts[2].body).unwrap();
    assert_eq!(
        si[0]["ClientURI"],
        "urn:oma:mo:oma-sessioninfomo:1.0/SessionInfoMO/"
    );
    assert_eq!(
        si[0]["MOData"]["SessionInfoMO"],
        json!({"CBT": 0, "ROAMING": 0})
    );
}
