//! Who may do what: the access-control matrix with DACMO paths and delegation, what MOS lists, the attacks of a provisioned server on the accounts, and delegation only to authorities provisioned with the MOID.

use super::*;

/// Writes DACMO grants for the `left` instance.
fn grant(w: &World, sets: &[(&str, &[(&str, u8)])]) {
    let mut data = serde_json::Map::new();
    for (i, (path, grants)) in sets.iter().enumerate() {
        let perms: serde_json::Map<String, Json> = grants
            .iter()
            .enumerate()
            .map(|(j, (maid, ar))| (format!("g{j}"), json!({"MAID": maid, "AR": ar})))
            .collect();
        data.insert(format!("s{i}"), json!({"Path": path, "Permissions": perms}));
    }
    let doc = json!([{"ClientURI": "urn:oma:mo:oma-dm-dacmo:1.0//", "MOData": {"DacMO": {FIG5: {"left": data}}}}]);
    apply_document(
        &w.store,
        &w.reg,
        "dacmo",
        doc.to_string().as_bytes(),
        BootstrapLimits {
            max_file_bytes: 1 << 20,
            max_value_bytes: 4096,
            max_nodes: 1000,
        },
    )
    .unwrap();
}

#[tokio::test]
async fn access_control_matrix_with_dacmo_paths_and_delegation() {
    let w = World::new();
    // Without DACMO entries the creator (dms1) holds every right, dms2 none.
    assert_eq!(
        w.codes("dms1", json!([["GET", "urn:oma:mo:moid:1.0/left/ID"]]))
            .await,
        [200]
    );
    assert_eq!(
        w.codes("dms2", json!([["GET", "urn:oma:mo:moid:1.0/left/ID"]]))
            .await,
        [403]
    );
    // DACMO: dms1 everything; dms2 read everywhere, write under /Data; everyone read /ID.
    grant(
        &w,
        &[
            ("/", &[("serverid:dms1", 15), ("serverid:dms2", 1)]),
            ("/Data", &[("dms2", 3), ("serverid:dms1", 15)]),
            ("/ID", &[("*", 1)]),
        ],
    );
    let matrix: Vec<(&str, Json, u16)> = vec![
        ("dms2", json!(["GET", "urn:oma:mo:moid:1.0/left/"]), 200),
        (
            "dms2",
            json!(["DELETE", "urn:oma:mo:moid:1.0/left/Data/1"]),
            200,
        ),
        (
            "dms2",
            json!(["DELETE", "urn:oma:mo:moid:1.0/left/Setting"]),
            403,
        ),
        // The /ID set is the most specific for ID: only Read there, even for dms1.
        (
            "dms1",
            json!(["DELETE", "urn:oma:mo:moid:1.0/left/ID"]),
            403,
        ),
        ("dms1", json!(["GET", "urn:oma:mo:moid:1.0/left/ID"]), 200),
        // dms3 is not provisioned with the MOID at all.
        ("dms3", json!(["GET", "urn:oma:mo:moid:1.0/left/ID"]), 403),
        // A subtree containing a node the server may not write: the whole command is refused.
        ("dms1", json!(["DELETE", "urn:oma:mo:moid:1.0/left/"]), 403),
        // nv cannot probe what a server may not read.
        (
            "dms3",
            json!(["GET", "urn:oma:mo:moid:1.0/(x)/?nv=(x)/ID:GPS"]),
            404,
        ),
    ];
    for (server, c, want) in matrix {
        assert_eq!(
            w.codes(server, json!([c.clone()])).await,
            [want],
            "{server} {c}"
        );
    }
    // Delegation: changing the instance's DACMO entries needs Delegate (8).
    w.serve("https://r/grant", "text/plain", b"15");
    // ':' is not unreserved, so a server reaches these nodes with x-names or wildcards.
    let ar_uri =
        "urn:oma:mo:oma-dm-dacmo:1.0/DacMO/(m)/left/s0/Permissions/g1/AR?nv=(m)/left/s0/Path:/";
    assert_eq!(
        w.codes("dms2", json!([["HGET", "https://r/grant", ar_uri]]))
            .await,
        [403]
    );
    assert_eq!(
        w.codes("dms1", json!([["HGET", "https://r/grant", ar_uri]]))
            .await,
        [200]
    );
    assert_eq!(
        w.codes(
            "dms2",
            json!([["DELETE", "urn:oma:mo:moid:1.0/left/Setting"]])
        )
        .await,
        [200],
        "dms2 now holds every right at /"
    );
    // Rights change within a package: a read after a command that changed the DACMO sees
    // the new rights, not those the earlier reads used.
    w.serve("https://r/none", "text/plain", b"0");
    let own_ar =
        "urn:oma:mo:oma-dm-dacmo:1.0/DacMO/(m)/left/s0/Permissions/g0/AR?nv=(m)/left/s0/Path:/";
    assert_eq!(
        w.codes(
            "dms1",
            json!([
                ["GET", "urn:oma:mo:moid:1.0/left/"],
                ["HGET", "https://r/none", own_ar],
                ["GET", "urn:oma:mo:moid:1.0/left/"]
            ])
        )
        .await,
        [200, 200, 403],
        "dms1 gave up its own rights at / in the middle of the package"
    );
}

#[tokio::test]
async fn mos_lists_only_what_the_server_may_see() {
    let w = World::new();
    let (p1, _) = w
        .engine()
        .package1(
            "dms3",
            Trigger::ServerInitiated {
                notification_id: Some(7),
            },
            true,
            "u",
            "u",
        )
        .unwrap();
    let mos = p1.mos.unwrap();
    assert_eq!(mos.len(), 1);
    assert_eq!(
        (mos[0].moid.as_deref(), mos[0].miid.as_slice()),
        (Some(DEVINFO), ["DevInfo".to_owned()].as_slice())
    );
    assert_eq!(p1.alerts[0].data.as_ref().unwrap()["NOTIFICATION-ID"], 7);
    let (p1, _) = w
        .engine()
        .package1("dms2", Trigger::BootstrapComplete, true, "u", "u")
        .unwrap();
    let mos = p1.mos.unwrap();
    let fig5 = mos
        .iter()
        .find(|m| m.moid.as_deref() == Some(FIG5))
        .unwrap();
    assert!(
        fig5.miid.is_empty(),
        "dms2 may not read dms1's instances: {mos:?}"
    );
    assert!(mos.iter().any(|m| m.moid.as_deref() == Some(TESTMO)));
    assert!(!mos.iter().any(|m| m.moid.as_deref() == Some(DMACC)));
    let (p1, _) = w
        .engine()
        .package1("dms1", Trigger::ClientInitiated, true, "u", "u")
        .unwrap();
    let mos = p1.mos.unwrap();
    let acc = mos
        .iter()
        .find(|m| m.moid.as_deref() == Some(DMACC))
        .unwrap();
    assert_eq!(acc.miid, ["dms1"], "only its own account: {mos:?}");
    assert!(
        w.engine()
            .package1("dms1", Trigger::ClientInitiated, false, "u", "u")
            .unwrap()
            .0
            .mos
            .is_none()
    );
}

/// The attacks of a provisioned server on the accounts (docs/security.md): each is refused
/// with its status and changes nothing.
#[tokio::test]
async fn a_server_cannot_create_take_over_or_read_accounts() {
    let w = World::new();
    let evil = |miid: &str, srv: &str| {
        json!([{"ClientURI": "urn:oma:mo:oma-dm-dmacc:1.2//", "MOData": {miid: {
            "SrvID": srv, "SrvURI": "https://evil.example/dm", "Name": "evil",
            "Perm": {"all": {"MOID": "*"}}}}}])
        .to_string()
    };
    w.serve(
        "https://r/escalate",
        dmmo::MEDIA_TYPE,
        evil("aaa", "dms3").as_bytes(),
    );
    w.serve(
        "https://r/hijack",
        dmmo::MEDIA_TYPE,
        evil("aab", "dms2").as_bytes(),
    );
    let one = |srv: &str| {
        json!({"SrvID": srv, "SrvURI": "https://evil.example/dm", "Name": "evil",
            "Perm": {"all": {"MOID": "*"}}})
        .to_string()
    };
    w.serve(
        "https://r/one-dms2",
        dmmo::MEDIA_TYPE,
        format!(
            r#"[{{"ClientURI":"urn:oma:mo:oma-dm-dmacc:1.2/zzz","MOData":{{"zzz":{}}}}}]"#,
            one("dms2")
        )
        .as_bytes(),
    );
    w.serve("https://r/id", "text/plain", b"dms2");
    w.serve("https://r/uri", "text/plain", b"https://127.0.0.1/dm");
    let dacmo = r#"[{"ClientURI":"urn:oma:mo:oma-dm-dacmo:1.0//","MOData":{"x":{"urn:oma:mo:moid:1.0":{"left":{"s":{"Path":"/","Permissions":{"g":{"MAID":"serverid:dms1","AR":15}}}}}}}}]"#;
    w.serve("https://r/dacmo", dmmo::MEDIA_TYPE, dacmo.as_bytes());
    w.serve(
        "https://r/dacmo-one",
        dmmo::MEDIA_TYPE,
        dacmo.replace("//", "/x").as_bytes(),
    );
    w.serve("https://r/moid", "text/plain", b"*");
    w.serve("https://r/name", "text/plain", b"Renamed");
    let before = w.snapshot();
    let cases = [
        // dms3 holds only DevInfo: no DMAcc at all, and no new instance with '*'.
        ("dms3", json!(["HGET", "https://r/escalate"]), 403),
        // dms1 holds '*' (DMAcc included): it still creates no account, under any name.
        ("dms1", json!(["HGET", "https://r/escalate"]), 403),
        ("dms1", json!(["HGET", "https://r/hijack"]), 403),
        (
            "dms1",
            json!([
                "HGET",
                "https://r/one-dms2",
                "urn:oma:mo:oma-dm-dmacc:1.2/zzz/"
            ]),
            403,
        ),
        // Nor rewrites what makes an account its own, nor another server's account.
        (
            "dms1",
            json!([
                "HGET",
                "https://r/id",
                "urn:oma:mo:oma-dm-dmacc:1.2/dms1/SrvID"
            ]),
            403,
        ),
        (
            "dms1",
            json!([
                "HGET",
                "https://r/moid",
                "urn:oma:mo:oma-dm-dmacc:1.2/dms1/Perm/p0/MOID"
            ]),
            403,
        ),
        (
            "dms1",
            json!([
                "HGET",
                "https://r/name",
                "urn:oma:mo:oma-dm-dmacc:1.2/dms2/Name"
            ]),
            403,
        ),
        (
            "dms1",
            json!([
                "HGET",
                "https://r/escalate",
                "urn:oma:mo:oma-dm-dmacc:1.2/dms1/"
            ]),
            403,
        ),
        (
            "dms1",
            json!(["DELETE", "urn:oma:mo:oma-dm-dmacc:1.2/dms2/"]),
            403,
        ),
        (
            "dms1",
            json!(["DELETE", "urn:oma:mo:oma-dm-dmacc:1.2/dms1/"]),
            403,
        ),
        // Nor reads another's account, or any secret.
        (
            "dms1",
            json!(["GET", "urn:oma:mo:oma-dm-dmacc:1.2/dms2/SrvURI"]),
            403,
        ),
        (
            "dms1",
            json!(["GET", "urn:oma:mo:oma-dm-dmacc:1.2/dms1/Auth/Noti/Secret"]),
            403,
        ),
        (
            "dms1",
            json!([
                "HPUT",
                "https://r/x",
                "urn:oma:mo:oma-dm-dmacc:1.2/dms1/Auth/Noti/Secret"
            ]),
            403,
        ),
        (
            "dms1",
            json!([
                "HPOST",
                "https://r/x",
                "urn:oma:mo:oma-dm-dmacc:1.2/dms1/Auth/Noti/Secret"
            ]),
            403,
        ),
        // nv cannot probe a secret either.
        (
            "dms1",
            json!([
                "GET",
                "urn:oma:mo:oma-dm-dmacc:1.2/(x)/SrvID?nv=(x)/Auth/Noti/Secret:c2VjcmV0"
            ]),
            404,
        ),
    ];
    for (server, c, want) in cases {
        let got = w.codes(server, json!([c.clone()])).await;
        assert_eq!(got, [want], "{server} {c}");
        assert_eq!(w.snapshot(), before, "{server} {c} changed the tree");
    }
    assert!(
        w.ports.sends.borrow().is_empty(),
        "no secret was sent anywhere"
    );
    // What TS App. I.2 does stays allowed: a server replaces leaves of its own account.
    assert_eq!(
        w.codes(
            "dms1",
            json!([[
                "HGET",
                "https://r/name",
                "urn:oma:mo:oma-dm-dmacc:1.2/dms1/Name"
            ]])
        )
        .await,
        [200]
    );
    assert_eq!(
        w.value(DMACC, "dms1", "Name"),
        Some(Value::Chr("Renamed".into()))
    );
}

/// TS §12.3: "the client MUST reject" a delegation to an authority that was not
/// provisioned with that MOID at bootstrap.
#[tokio::test]
async fn delegation_only_to_authorities_provisioned_with_the_moid() {
    let w = World::new();
    grant(&w, &[("/", &[("serverid:dms1", 15)])]);
    let maid_uri =
        "urn:oma:mo:oma-dm-dacmo:1.0/DacMO/(m)/left/s0/Permissions/g0/MAID?nv=(m)/left/s0/Path:/";
    let before = w.snapshot();
    // dms3 holds only DevInfo; "nobody" has no account; no app was ever provisioned.
    for maid in [
        "serverid:dms3",
        "dms3",
        "serverid:nobody",
        "appid:com.example",
    ] {
        w.serve("https://r/maid", "text/plain", maid.as_bytes());
        assert_eq!(
            w.codes("dms1", json!([["HGET", "https://r/maid", maid_uri]]))
                .await,
            [403],
            "{maid}"
        );
        assert_eq!(w.snapshot(), before, "{maid} was stored");
    }
    // A whole permission set in MO data is checked the same way.
    w.serve(
        "https://r/set",
        dmmo::MEDIA_TYPE,
        br#"[{"ClientURI":"urn:oma:mo:oma-dm-dacmo:1.0/DacMO/x","MOData":{"x":{"Path":"/","Permissions":{"a":{"MAID":"serverid:dms1","AR":15},"b":{"MAID":"serverid:dms3","AR":15}}}}}]"#,
    );
    let set_uri = "urn:oma:mo:oma-dm-dacmo:1.0/DacMO/(m)/left/s1?nv=(m)/left/s0/Path:/";
    assert_eq!(
        w.codes("dms1", json!([["HGET", "https://r/set", set_uri]]))
            .await,
        [403]
    );
    assert_eq!(w.snapshot(), before);
    // To everyone, or to a server provisioned with the MOID: stored.
    for maid in ["*", "serverid:dms2"] {
        w.serve("https://r/maid", "text/plain", maid.as_bytes());
        assert_eq!(
            w.codes("dms1", json!([["HGET", "https://r/maid", maid_uri]]))
                .await,
            [200],
            "{maid}"
        );
    }
}
