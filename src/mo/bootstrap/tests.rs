//! Tests of `bootstrap`.

use super::*;
use crate::mo::DEVINFO;
use crate::tree::{Journal as _, Tree as _};
use crate::tree::{OpenMode, SqliteStore, Value};
use serde_json::json;

const LIMITS: BootstrapLimits = BootstrapLimits {
    max_file_bytes: 64 * 1024,
    max_value_bytes: 256,
    max_nodes: 1000,
};

fn account(miid: &str, srv_id: &str, uri: &str) -> serde_json::Value {
    json!({"ClientURI": "urn:oma:mo:oma-dm-dmacc:1.2//", "MOData": {miid: {
        "SrvID": srv_id, "SrvURI": uri, "Name": format!("Server {srv_id}"),
        "Perm": {"1": {"MOID": "*"}},
        "Auth": {"Noti": {"Type": 0, "Data": "ZGF0YQ==", "Secret": "c2VjcmV0"}}}}})
}

fn setup() -> (tempfile::TempDir, SqliteStore, Registry) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("tree.db"), OpenMode::ReadWrite).unwrap();
    std::fs::create_dir(dir.path().join("bootstrap.d")).unwrap();
    (dir, store, Registry::builtin())
}

fn file(dir: &tempfile::TempDir, name: &str, doc: &serde_json::Value) {
    std::fs::write(dir.path().join("bootstrap.d").join(name), doc.to_string()).unwrap();
}

fn srv_uri(store: &SqliteStore, miid: &str) -> Option<String> {
    store
        .node(&InstanceKey::new(DMACC, miid), "SrvURI")
        .unwrap()
        .and_then(|n| n.value)
        .map(|v| v.to_text())
}

#[test]
fn applies_once_reapplies_on_change_and_owes_a_session() {
    let (dir, store, reg) = setup();
    let bdir = dir.path().join("bootstrap.d");
    file(
        &dir,
        "10-a.json",
        &json!([account("acc1", "dms1", "https://one/dm")]),
    );
    let report = apply_dir(&store, &reg, &bdir, LIMITS);
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(
        report.done[0].1,
        Outcome::Applied {
            instances: vec![InstanceKey::new(DMACC, "acc1")],
            servers: vec!["dms1".into()]
        }
    );
    let inst = store.instance(DMACC, "acc1").unwrap().unwrap();
    assert_eq!(inst.creator, "serverid:dms1");
    assert_eq!(
        inst.ddf_url.as_deref(),
        Some("http://www.openmobilealliance.org/tech/omna/dm_mo/dm_dmacc-v1_2.ddf")
    );
    let secret = store
        .node(&InstanceKey::new(DMACC, "acc1"), "Auth/Noti/Secret")
        .unwrap()
        .unwrap();
    assert_eq!(secret.value, Some(Value::Bin(b"secret".to_vec())));
    assert!(secret.props.secret);
    let owed = store.owed_sessions().unwrap();
    assert_eq!((owed.len(), owed[0].server_id.as_str()), (1, "dms1"));

    // Unchanged file: nothing written, the validator stays.
    let cv = inst.cv;
    let report = apply_dir(&store, &reg, &bdir, LIMITS);
    assert_eq!(report.done[0].1, Outcome::Unchanged);
    assert_eq!(store.instance(DMACC, "acc1").unwrap().unwrap().cv, cv);

    // Changed file: applied again.
    file(
        &dir,
        "10-a.json",
        &json!([account("acc1", "dms1", "https://two/dm")]),
    );
    let report = apply_dir(&store, &reg, &bdir, LIMITS);
    assert!(matches!(report.done[0].1, Outcome::Applied { .. }));
    assert_eq!(srv_uri(&store, "acc1").as_deref(), Some("https://two/dm"));
}

#[test]
fn a_bad_file_is_named_and_the_others_still_apply() {
    let (dir, store, reg) = setup();
    let bdir = dir.path().join("bootstrap.d");
    file(
        &dir,
        "10-good.json",
        &json!([account("acc1", "dms1", "https://one/dm")]),
    );
    std::fs::write(bdir.join("20-broken.json"), "{ not json").unwrap();
    // A file whose second item is bad: its first item must not land either.
    file(
        &dir,
        "30-half.json",
        &json!([account("acc3", "dms3", "https://three/dm"),
        {"ClientURI": "urn:oma:mo:oma-dm-devinfo:1.2//", "MOData": {"DevInfo": {"Colour": "red"}}}]),
    );
    file(
        &dir,
        "40-good.json",
        &json!({"ClientURI": "urn:acme:mo:thing:1.0/t1/", "MOData": {"t1": {"a": 1}}}),
    );
    std::fs::write(bdir.join("50-ignored.txt"), "not a bootstrap").unwrap();
    let report = apply_dir(&store, &reg, &bdir, LIMITS);
    let failed: Vec<String> = report
        .failed
        .iter()
        .map(|(p, e)| format!("{}: {e}", p.file_name().unwrap().to_string_lossy()))
        .collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(
        failed[0].starts_with("20-broken.json: not valid application/dmmo+json"),
        "{}",
        failed[0]
    );
    assert!(
        failed[1].starts_with("30-half.json: item 1"),
        "{}",
        failed[1]
    );
    assert!(failed[1].contains("Colour"), "{}", failed[1]);
    assert_eq!(report.done.len(), 2);
    assert!(store.instance(DMACC, "acc1").unwrap().is_some());
    assert!(store.instance(DMACC, "acc3").unwrap().is_none());
    assert!(store.instance(DEVINFO, "DevInfo").unwrap().is_none());
    assert!(
        store
            .instance("urn:acme:mo:thing:1.0", "t1")
            .unwrap()
            .is_some()
    );
    assert_eq!(
        store.bootstrap_digest("30-half.json").unwrap(),
        None,
        "a refused file is tried again next start"
    );
    let owed: Vec<String> = store
        .owed_sessions()
        .unwrap()
        .into_iter()
        .map(|o| o.server_id)
        .collect();
    assert_eq!(owed, ["dms1"]);
}

#[test]
fn refusals() {
    let (_dir, store, reg) = setup();
    let cases = [
        (
            json!([{"ClientURI": "urn:oma:mo:oma-dm-dmacc:1.2//", "MOData": {"a": {"SrvURI": "x", "Name": "n", "Perm": {"1": {"MOID": "*"}}}}}]),
            "required node SrvID is missing",
        ),
        (
            json!([{"ClientURI": "urn:oma:mo:oma-dm-dmacc:1.2//", "MOData": {"a": {"SrvID": "", "SrvURI": "x", "Name": "n", "Perm": {"1": {"MOID": "*"}}}}}]),
            "needs a SrvID",
        ),
        (
            json!([account("a", "d", &"x".repeat(300))]),
            "exceeds the limit of 256",
        ),
        (
            json!([account("a", "d", "u"), account("a", "e", "u")]),
            "provisioned twice",
        ),
        (
            json!([{"ClientURI": "urn:oma:mo:oma-dm-dmacc:1.2/a/SrvURI", "MOData": {"SrvURI": "x"}}]),
            "instance root",
        ),
        (
            json!([{"ClientURI": "urn:x:1.0//", "MOData": {"..": {}}}]),
            "not a valid node name",
        ),
    ];
    for (doc, want) in cases {
        let err = apply_document(&store, &reg, "t.json", doc.to_string().as_bytes(), LIMITS)
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{doc}\n→ {err}");
    }
    assert!(store.instances(None).unwrap().is_empty());
    let big = format!("[{}]", " ".repeat(70 * 1024));
    let err = apply_document(&store, &reg, "big.json", big.as_bytes(), LIMITS)
        .unwrap_err()
        .to_string();
    assert!(err.contains("exceeds"), "{err}");
}

fn apply_json(
    store: &SqliteStore,
    reg: &Registry,
    source: &str,
    doc: &serde_json::Value,
    replace: Replace,
) -> Result<Outcome, BootstrapError> {
    apply(
        store,
        reg,
        source,
        doc.to_string().as_bytes(),
        LIMITS,
        replace,
    )
}

fn dmacc_miids(store: &SqliteStore) -> Vec<String> {
    store
        .instances(Some(DMACC))
        .unwrap()
        .into_iter()
        .map(|i| i.miid)
        .collect()
}

#[test]
fn rebootstrapping_a_server_replaces_its_account() {
    let (_dir, store, reg) = setup();
    let own = Replace::OwnOnly;
    apply_json(
        &store,
        &reg,
        "a.json",
        &json!([account("old", "dms1", "https://old")]),
        own,
    )
    .unwrap();
    apply_json(
        &store,
        &reg,
        "b.json",
        &json!([account("other", "dms2", "https://two")]),
        own,
    )
    .unwrap();
    // The file that provisioned dms1, changed: a re-bootstrap, even under another name.
    apply_json(
        &store,
        &reg,
        "a.json",
        &json!([account("new", "dms1", "https://new")]),
        own,
    )
    .unwrap();
    assert_eq!(dmacc_miids(&store), ["new", "other"]);
    assert_eq!(srv_uri(&store, "new").as_deref(), Some("https://new"));
    assert_eq!(
        store.account_source("dms1").unwrap().as_deref(),
        Some("a.json")
    );
}

#[test]
fn another_source_may_not_take_a_servers_account_unless_told_to() {
    let (_dir, store, reg) = setup();
    let own = Replace::OwnOnly;
    apply_json(
        &store,
        &reg,
        "a.json",
        &json!([account("acme", "dms1", "https://a")]),
        own,
    )
    .unwrap();
    // A second file naming the same SrvID: refused, naming who provisioned the account,
    // and nothing of it applied (dms3 in the same file included).
    let doc = json!([
        account("x", "dms3", "https://x"),
        account("evil", "dms1", "https://evil")
    ]);
    let err = apply_json(&store, &reg, "z.json", &doc, own).unwrap_err();
    assert!(
        matches!(&err, BootstrapError::AccountExists { item: 1, server_id, by: Some(by) }
            if server_id == "dms1" && by == "a.json"),
        "{err:?}"
    );
    let said = err.to_string();
    assert!(
        said.contains("provisioned by a.json") && said.contains("--replace"),
        "{said}"
    );
    assert_eq!(dmacc_miids(&store), ["acme"]);
    assert_eq!(store.bootstrap_digest("z.json").unwrap(), None);
    // A dry run plans the same refusal.
    assert!(plan_document(&store, &reg, "z.json", doc.to_string().as_bytes(), LIMITS).is_err());
    // Told to: replaced, and the account now belongs to the new source.
    apply_json(&store, &reg, "z.json", &doc, Replace::Any).unwrap();
    assert_eq!(dmacc_miids(&store), ["evil", "x"]);
    assert_eq!(
        store.account_source("dms1").unwrap().as_deref(),
        Some("z.json")
    );
    // Which the first file may no longer change.
    let err = apply_json(
        &store,
        &reg,
        "a.json",
        &json!([account("acme", "dms1", "https://b")]),
        own,
    )
    .unwrap_err();
    assert!(
        matches!(err, BootstrapError::AccountExists { .. }),
        "{err:?}"
    );
}

#[test]
fn writing_over_another_accounts_instance_is_replacing_that_account() {
    let (_dir, store, reg) = setup();
    let own = Replace::OwnOnly;
    apply_json(
        &store,
        &reg,
        "a.json",
        &json!([account("acme", "dms1", "https://a")]),
        own,
    )
    .unwrap();
    // Another file names acme's instance with a SrvID of its own.
    let takeover = json!([{"ClientURI": "urn:oma:mo:oma-dm-dmacc:1.2/acme/", "MOData": {"acme": {
        "SrvID": "evil", "SrvURI": "https://evil", "Name": "Evil",
        "Perm": {"1": {"MOID": "*"}}}}}]);
    let err = apply_json(&store, &reg, "z.json", &takeover, own).unwrap_err();
    assert!(
        matches!(&err, BootstrapError::AccountExists { server_id, .. } if server_id == "dms1"),
        "{err:?}"
    );
    assert_eq!(srv_uri(&store, "acme").as_deref(), Some("https://a"));
    // Told to: the instance is evil's now, created afresh for it.
    apply_json(&store, &reg, "z.json", &takeover, Replace::Any).unwrap();
    let inst = store.instance(DMACC, "acme").unwrap().unwrap();
    assert_eq!(inst.creator, "serverid:evil");
}

#[test]
fn accounts_from_before_the_record_may_be_changed_by_a_file_applied_before() {
    let (_dir, store, reg) = setup();
    apply_json(
        &store,
        &reg,
        "a.json",
        &json!([account("acme", "dms1", "https://a")]),
        Replace::OwnOnly,
    )
    .unwrap();
    // As schema v9 marks the accounts of a database from before v8.
    store
        .apply(&[TreeOp::SetAccountSource {
            server_id: "dms1".into(),
            source: crate::tree::BEFORE_SOURCES.into(),
        }])
        .unwrap();
    let changed = json!([account("acme", "dms1", "https://changed")]);
    let err = apply_json(&store, &reg, "new.json", &changed, Replace::OwnOnly).unwrap_err();
    assert!(
        matches!(&err, BootstrapError::AccountExists { by: Some(by), .. } if by == crate::tree::BEFORE_SOURCES),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("provisioned before omadmd recorded which file did"),
        "{err}"
    );
    apply_json(&store, &reg, "a.json", &changed, Replace::OwnOnly).unwrap();
    assert_eq!(srv_uri(&store, "acme").as_deref(), Some("https://changed"));
    assert_eq!(
        store.account_source("dms1").unwrap().as_deref(),
        Some("a.json")
    );
}

#[test]
fn an_account_a_server_made_is_taken_over_by_no_file_unasked() {
    let (_dir, store, reg) = setup();
    apply_json(
        &store,
        &reg,
        "a.json",
        &json!([account("acme", "dms1", "https://a")]),
        Replace::OwnOnly,
    )
    .unwrap();
    // No source: what a server's ADD to DMAcc in a session leaves. Not even a file that
    // was applied before may change it (it may not be that file's account at all).
    store
        .apply(&[TreeOp::ForgetServer {
            server_id: "dms1".into(),
        }])
        .unwrap();
    assert_eq!(store.account_source("dms1").unwrap(), None);
    let changed = json!([account("acme", "dms1", "https://changed")]);
    for source in ["a.json", "new.json"] {
        let err = apply_json(&store, &reg, source, &changed, Replace::OwnOnly).unwrap_err();
        assert!(
            matches!(err, BootstrapError::AccountExists { by: None, .. }),
            "{source}: {err:?}"
        );
        assert!(err.to_string().contains("made by a server"), "{err}");
    }
    assert_eq!(srv_uri(&store, "acme").as_deref(), Some("https://a"));
    apply_json(&store, &reg, "new.json", &changed, Replace::Any).unwrap();
    assert_eq!(srv_uri(&store, "acme").as_deref(), Some("https://changed"));
}

#[test]
fn instance_uris() {
    let ok = [
        (
            "urn:oma:mo:oma-dm-dmacc:1.2//",
            ("urn:oma:mo:oma-dm-dmacc:1.2", None),
        ),
        (
            "urn:oma:mo:oma-dm-dmacc:1.2/acc1/",
            ("urn:oma:mo:oma-dm-dmacc:1.2", Some("acc1")),
        ),
        (
            "urn:oma:mo:oma-dm-dmacc:1.2/acc1",
            ("urn:oma:mo:oma-dm-dmacc:1.2", Some("acc1")),
        ),
        (
            "urn:oma:mo:oma-dm-dmacc:2.0//",
            ("urn:oma:mo:oma-dm-dmacc:1.2", None),
        ),
        (
            "oma:mo:oma-dm-devinfo:1.0//",
            ("urn:oma:mo:oma-dm-devinfo:1.0", None),
        ),
        ("urn:x:y:1.0//?lv=1", ("urn:x:y:1.0", None)),
    ];
    for (uri, (moid, miid)) in ok {
        assert_eq!(
            instance_of(uri),
            Ok((moid.to_owned(), miid.map(str::to_owned))),
            "{uri}"
        );
    }
    for bad in [
        "urn:oma:mo:x:1.0",
        "/x/",
        "urn:oma:mo:x:1.0/a/b",
        "urn:oma:mo:x:1.0//Auth",
    ] {
        assert!(instance_of(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_srv_uri_with_user_information_is_refused() {
    let (dir, store, reg) = setup();
    let bdir = dir.path().join("bootstrap.d");
    let refused = [
        "http://device-0042:pw@127.0.0.1/dm",
        "https://alice@dm.example/dm",
        "https://:secret@dm.example/dm",
        "http://:@127.0.0.1/dm",
    ];
    for (n, uri) in refused.iter().enumerate() {
        file(
            &dir,
            &format!("{n}-userinfo.json"),
            &json!([account(&format!("a{n}"), &format!("s{n}"), uri)]),
        );
    }
    // An @ in the path or query is no user information.
    file(
        &dir,
        "9-at-in-path.json",
        &json!([account("ok", "ok", "https://dm.example/dm/@device?who=a@b")]),
    );
    let report = apply_dir(&store, &reg, &bdir, LIMITS);
    assert_eq!(report.failed.len(), refused.len(), "{:?}", report.failed);
    for (path, e) in &report.failed {
        assert!(
            matches!(e, BootstrapError::UserInfo { item: 0 }),
            "{}: {e}",
            path.display()
        );
        assert!(e.to_string().contains("Ext/HttpAuth"), "{e}");
    }
    assert_eq!(report.done.len(), 1);
    assert!(
        srv_uri(&store, "a0").is_none(),
        "nothing of a refused file is applied"
    );
    for (uri, has) in [
        ("http://u:p@h/x", true),
        ("http://u@h", true),
        ("http://:@h/", true),
        ("http://h/a@b", false),
        ("http://h?x=a@b", false),
        ("http://h#a@b", false),
        ("not a url", false),
    ] {
        assert_eq!(has_userinfo(uri), has, "{uri}");
    }
}
