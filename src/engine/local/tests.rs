//! Tests of `local`: a handler's writes to its own MO.

use super::*;
use crate::mo::DEVINFO;
use crate::protocol::dmmo::DataNode;
use crate::tree::{Journal as _, OpenMode, SqliteStore, Subscription, Tree as _, Value};
use serde_json::json;

const PKG: &str = "urn:test:mo:pkg:1.0";

/// An MO shaped like SCOMO's inventory: a required State and Name, a list of items.
const PKG_DDF: &str = r#"<MgmtTree><VerDTD>1.2</VerDTD>
  <Node><NodeName/><DFProperties><AccessType><Get/></AccessType><DFFormat><node/></DFFormat>
    <Occurrence><ZeroOrMore/></Occurrence><DFType><DDFName>urn:test:mo:pkg:1.0</DDFName></DFType></DFProperties>
    <Node><NodeName>State</NodeName><DFProperties><AccessType><Get/></AccessType><DFFormat><int/></DFFormat></DFProperties></Node>
    <Node><NodeName>Name</NodeName><DFProperties><AccessType><Get/></AccessType><DFFormat><chr/></DFFormat></DFProperties></Node>
    <Node><NodeName>Items</NodeName><DFProperties><AccessType><Get/></AccessType><DFFormat><node/></DFFormat></DFProperties>
      <Node><NodeName/><DFProperties><AccessType><Get/></AccessType><DFFormat><node/></DFFormat><Occurrence><ZeroOrMore/></Occurrence></DFProperties>
        <Node><NodeName>Version</NodeName><DFProperties><AccessType><Get/></AccessType><DFFormat><chr/></DFFormat></DFProperties></Node>
      </Node>
    </Node>
  </Node></MgmtTree>"#;

struct World {
    _dir: tempfile::TempDir,
    store: SqliteStore,
    reg: Registry,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("ddf")).unwrap();
    std::fs::write(dir.path().join("ddf/pkg.xml"), PKG_DDF).unwrap();
    let mut reg = Registry::builtin();
    assert!(reg.load_dir(&dir.path().join("ddf")).is_empty());
    let store = SqliteStore::open(&dir.path().join("tree.db"), OpenMode::ReadWrite).unwrap();
    World {
        _dir: dir,
        store,
        reg,
    }
}

fn item(uri: &str, name: &str, data: serde_json::Value) -> MoItem {
    fn node(v: serde_json::Value) -> DataNode {
        match v {
            serde_json::Value::Object(m) => {
                DataNode::Interior(m.into_iter().map(|(k, v)| (k, node(v))).collect())
            }
            v => DataNode::Leaf(v),
        }
    }
    MoItem {
        ddf: None,
        client_uri: uri.into(),
        cv: None,
        name: name.into(),
        data: node(data),
    }
}

fn mine() -> Vec<String> {
    vec![PKG.to_owned()]
}

fn write(w: &World, put: &[MoItem], delete: &[&str]) -> Result<Written, LocalError> {
    let delete: Vec<String> = delete.iter().map(|s| (*s).to_owned()).collect();
    write_local(&w.store, &w.reg, &mine(), put, &delete, 1024)
}

fn value(w: &World, miid: &str, path: &str) -> Option<Value> {
    w.store
        .node(&InstanceKey::new(PKG, miid), path)
        .unwrap()
        .and_then(|n| n.value)
}

fn whole(name: &str) -> MoItem {
    item(
        &format!("{PKG}/{name}/"),
        name,
        json!({"State": 10, "Name": name, "Items": {"a": {"Version": "1"}}}),
    )
}

#[test]
fn an_instance_is_created_whole_and_kept_current_part_by_part() {
    let w = world();
    write(&w, &[whole("dev1")], &[]).unwrap();
    let inst = w.store.instance(PKG, "dev1").unwrap().unwrap();
    assert_eq!(inst.creator, LOCAL_CREATOR);
    assert_eq!(value(&w, "dev1", "State"), Some(Value::Int(10)));
    // A leaf, and a new list entry: each change moves the cache validator.
    write(
        &w,
        &[item(&format!("{PKG}/dev1/State"), "State", json!(30))],
        &[],
    )
    .unwrap();
    assert_eq!(value(&w, "dev1", "State"), Some(Value::Int(30)));
    let cv1 = w.store.instance(PKG, "dev1").unwrap().unwrap().cv;
    assert_ne!(cv1, inst.cv);
    write(
        &w,
        &[item(
            &format!("{PKG}/dev1/Items/b"),
            "b",
            json!({"Version": "2"}),
        )],
        &[],
    )
    .unwrap();
    assert_eq!(
        value(&w, "dev1", "Items/b/Version"),
        Some(Value::Chr("2".into()))
    );
    assert_ne!(w.store.instance(PKG, "dev1").unwrap().unwrap().cv, cv1);
    // An entry the MO may lack goes; the instance goes whole.
    write(&w, &[], &[&format!("{PKG}/dev1/Items/a")]).unwrap();
    assert_eq!(value(&w, "dev1", "Items/a/Version"), None);
    write(&w, &[], &[&format!("{PKG}/dev1/")]).unwrap();
    assert!(w.store.instance(PKG, "dev1").unwrap().is_none());
}

#[test]
fn refusals_name_the_cause_and_write_nothing() {
    let w = world();
    write(&w, &[whole("dev1")], &[]).unwrap();
    let before = w
        .store
        .subtree(&InstanceKey::new(PKG, "dev1"), "", None)
        .unwrap();
    let state = |v: serde_json::Value| item(&format!("{PKG}/dev1/State"), "State", v);
    let cases: Vec<(Vec<MoItem>, Vec<String>, &str)> = vec![
        // Not the handler's MO.
        (
            vec![item(
                &format!("{DEVINFO}/DevInfo/Man"),
                "Man",
                json!("evil"),
            )],
            vec![],
            "outside the MOs",
        ),
        // No single node.
        (
            vec![item(&format!("{PKG}//State"), "State", json!(1))],
            vec![],
            "MIID",
        ),
        (
            vec![item(&format!("{PKG}/*/State"), "State", json!(1))],
            vec![],
            "MIID",
        ),
        (
            vec![item(
                &format!("{PKG}/dev1/Items/*"),
                "x",
                json!({"Version": "1"}),
            )],
            vec![],
            "wildcards",
        ),
        // Not in the DDF, or not of its type.
        (
            vec![item(&format!("{PKG}/dev1/Bogus"), "Bogus", json!(1))],
            vec![],
            "no such node",
        ),
        (vec![state(json!("thirty"))], vec![], "State"),
        (
            vec![item(&format!("{PKG}/dev2/"), "dev2", json!({"State": 1}))],
            vec![],
            "Name",
        ),
        // A part of an instance that is not there.
        (
            vec![item(&format!("{PKG}/dev9/State"), "State", json!(1))],
            vec![],
            "no such instance",
        ),
        // Required nodes stay; missing ones cannot go.
        (vec![], vec![format!("{PKG}/dev1/Name")], "requires"),
        (vec![], vec![format!("{PKG}/dev1/Items/zz")], "no such node"),
        // One bad change in a batch: the good one before it is not written either.
        (
            vec![state(json!(60)), state(json!("sixty"))],
            vec![],
            "State",
        ),
    ];
    for (put, delete, says) in cases {
        let err = write_local(&w.store, &w.reg, &mine(), &put, &delete, 1024).unwrap_err();
        assert!(err.to_string().contains(says), "{put:?} {delete:?}: {err}");
        assert_eq!(
            w.store
                .subtree(&InstanceKey::new(PKG, "dev1"), "", None)
                .unwrap(),
            before,
            "{put:?}"
        );
    }
    // An MO without a DDF cannot be written: there is nothing to check its data with.
    let err = write_local(
        &w.store,
        &w.reg,
        &["urn:test:mo:no-ddf:1.0".to_owned()],
        &[item("urn:test:mo:no-ddf:1.0/i/", "i", json!({"a": 1}))],
        &[],
        1024,
    )
    .unwrap_err();
    assert!(matches!(err, LocalError::NoDefinition(_)), "{err}");
    // Leaves over the limit.
    let err = write_local(
        &w.store,
        &w.reg,
        &mine(),
        &[item(
            &format!("{PKG}/dev1/Name"),
            "Name",
            json!("x".repeat(2000)),
        )],
        &[],
        1024,
    )
    .unwrap_err();
    assert!(matches!(err, LocalError::Data { .. }), "{err}");
}

#[test]
fn a_local_change_owes_the_subscribers_a_delivery() {
    let w = world();
    write(&w, &[whole("dev1")], &[]).unwrap();
    w.store
        .apply(&[TreeOp::Subscribe(Subscription {
            server_id: "dms1".into(),
            client_uri: format!("{PKG}/dev1/State"),
            server_uri: "https://dms1/sub".into(),
        })])
        .unwrap();
    // A change elsewhere in the instance owes nothing; one at State does.
    let done = write(
        &w,
        &[item(
            &format!("{PKG}/dev1/Items/c"),
            "c",
            json!({"Version": "3"}),
        )],
        &[],
    )
    .unwrap();
    assert!(done.deliveries_for.is_empty());
    assert!(w.store.outbox("dms1").unwrap().is_empty());
    let done = write(
        &w,
        &[item(&format!("{PKG}/dev1/State"), "State", json!(40))],
        &[],
    )
    .unwrap();
    assert_eq!(done.deliveries_for, ["dms1"]);
    assert_eq!(w.store.outbox("dms1").unwrap().len(), 1);
}
