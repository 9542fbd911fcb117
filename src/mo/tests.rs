//! Tests of MO definitions and of the conversion between MO data and nodes.

use serde_json::json;

use super::ddf::DefNode;
use super::ddf::{self, Occurrence};
use super::*;
use crate::protocol::dmmo::{self, Limits};
use crate::tree::Tree as _;
use crate::tree::{Format, Scope, Value};
use crate::tree::{InstanceKey, OpenMode, SqliteStore, TreeOp};

#[test]
fn shipped_ddfs_parse_with_the_ts_node_tables() {
    let reg = Registry::builtin();
    let moids: Vec<&str> = reg.iter().map(|r| r.def.moid.as_str()).collect();
    assert_eq!(moids, [DACMO, DEVDETAIL, DEVINFO, DMACC, SESSIONINFO]);

    // DevDetail (StdObj §5.3): read-only, every node the standard objects require.
    let devdetail = &reg.get(DEVDETAIL).unwrap().def.root;
    let names: Vec<String> = devdetail
        .children
        .iter()
        .map(DefNode::display_name)
        .collect();
    assert_eq!(
        names,
        ["URI", "DevTyp", "OEM", "FwV", "SwV", "HwV", "LrgObj"]
    );
    let uri = devdetail.child("URI").unwrap();
    for limit in ["MaxDepth", "MaxTotLen", "MaxSegLen"] {
        assert_eq!(uri.child(limit).unwrap().format, Format::Chr, "{limit}");
    }
    assert_eq!(devdetail.child("LrgObj").unwrap().format, Format::Bool);

    let devinfo = &reg.get(DEVINFO).unwrap().def.root;
    let names: Vec<String> = devinfo.children.iter().map(DefNode::display_name).collect();
    assert_eq!(
        names,
        [
            "Bearer", "DevID", "Man", "Mod", "DmV", "Lang", "DevType", "OEM", "FwV", "SwV", "HwV",
            "Ext"
        ]
    );
    assert!(
        devinfo
            .children
            .iter()
            .all(|c| c.access == AccessType::GET && c.scope == Scope::Permanent)
    );
    assert_eq!(devinfo.child("DevID").unwrap().format, Format::Chr);
    assert_eq!(
        devinfo.child("Ext").unwrap().occurrence,
        Occurrence::ZeroOrOne
    );

    let dmacc = &reg.get(DMACC).unwrap().def.root;
    assert_eq!(dmacc.name, None);
    assert_eq!(dmacc.occurrence, Occurrence::ZeroOrMore);
    let perm = dmacc.child("Perm").unwrap();
    assert!(
        !perm.access.contains(AccessType::GET),
        "Perm is No Get (TS §12.2)"
    );
    let group = perm.child("anything").unwrap();
    assert_eq!(group.occurrence, Occurrence::OneOrMore);
    assert_eq!(group.child("MOID").unwrap().format, Format::Chr);
    let noti = dmacc.child("Auth").unwrap().child("Noti").unwrap();
    assert_eq!(noti.child("Type").unwrap().format, Format::Int);
    assert_eq!(noti.child("Secret").unwrap().format, Format::Bin);
    let boot = dmacc.child("Auth").unwrap().child("Bootstrap").unwrap();
    for no_get in ["ClientPubKey", "ServerPubKey", "ClientSecretKey"] {
        assert!(
            !boot.child(no_get).unwrap().access.contains(AccessType::GET),
            "{no_get}"
        );
    }

    let si = &reg.get(SESSIONINFO).unwrap().def.root;
    assert_eq!(si.child("CBT").unwrap().format, Format::Int);
    assert_eq!(si.child("ROAMING").unwrap().format, Format::Int);

    let dacmo = &reg.get(DACMO).unwrap().def.root;
    let grant = dacmo
        .child("urn:oma:mo:oma-dm-devinfo:1.2")
        .unwrap()
        .child("miid1")
        .unwrap()
        .child("1")
        .unwrap();
    assert_eq!(grant.child("Path").unwrap().default.as_deref(), Some("/"));
    let g = grant.child("Permissions").unwrap().child("dms1").unwrap();
    assert_eq!(g.child("AR").unwrap().format, Format::Int);
    assert_eq!(
        reg.get("urn:oma:mo:oma-dm-dmacc:2.0").unwrap().def.moid,
        DMACC,
        "§14 #3 alias"
    );
}

const MINIMAL: &str = r#"<MgmtTree><VerDTD>1.2</VerDTD>
  <Node><NodeName/>
    <DFProperties><AccessType><Get/></AccessType><DFFormat><node/></DFFormat>
      <DFType><DDFName>urn:x:test:1.0</DDFName></DFType></DFProperties>
    NODES
  </Node></MgmtTree>"#;

fn with(nodes: &str) -> String {
    MINIMAL.replace("NODES", nodes)
}

#[test]
fn ddf_details_and_path_continuations() {
    let xml = r#"<?xml version="1.0"?>
<!DOCTYPE MgmtTree PUBLIC "-//OMA//DTD-DM-DDF 1.2//EN" "http://www.openmobilealliance.org/tech/DTD/DM_DDF-V1_2.dtd">
<MgmtTree><VerDTD>1.2</VerDTD><Man>ACME</Man><Mod>X1</Mod>
  <Node><NodeName>Vendor</NodeName>
    <RTProperties><Type><DDFName/></Type></RTProperties>
    <DFProperties><AccessType><Get/><Copy/></AccessType><DFFormat><node/></DFFormat>
      <DFType><DDFName>urn:acme:mo:vendor:1.0</DDFName></DFType></DFProperties>
  </Node>
  <Node><NodeName>ISP</NodeName><Path>Vendor</Path>
    <DFProperties><AccessType><Get/><Replace/></AccessType><DFFormat><node/></DFFormat></DFProperties>
  </Node>
  <Node><NodeName>GWName</NodeName><Path>./Vendor/ISP</Path>
    <DFProperties><AccessType><Get/><Replace/><Exec/></AccessType><DFFormat><chr/></DFFormat>
      <Occurrence><ZeroOrN>3</ZeroOrN></Occurrence><Scope><Permanent/></Scope>
      <DFType><MIME>text/plain</MIME></DFType><CaseSense><CS/></CaseSense></DFProperties>
    <Value>gw.yyy.se</Value>
  </Node>
</MgmtTree>"#;
    let def = ddf::parse(xml).unwrap();
    assert_eq!(def.moid, "urn:acme:mo:vendor:1.0");
    assert_eq!(
        (def.man.as_deref(), def.model.as_deref()),
        (Some("ACME"), Some("X1"))
    );
    assert_eq!(def.root.access, AccessType::GET, "Copy is ignored");
    let gw = def.root.child("ISP").unwrap().child("GWName").unwrap();
    assert_eq!(
        gw.access,
        AccessType::GET | AccessType::REPLACE | AccessType::EXEC
    );
    assert_eq!(gw.occurrence, Occurrence::ZeroOrN(3));
    assert_eq!(gw.scope, Scope::Permanent);
    assert_eq!(gw.mime, ["text/plain"]);
    assert_eq!(gw.default.as_deref(), Some("gw.yyy.se"));
    // Missing DFFormat (optional per the SCR): node with children, chr without.
    let lenient = with(
        "<Node><NodeName>a</NodeName><DFProperties><AccessType><Get/></AccessType></DFProperties></Node>",
    );
    assert_eq!(
        ddf::parse(&lenient)
            .unwrap()
            .root
            .child("a")
            .unwrap()
            .format,
        Format::Chr
    );
}

#[test]
fn malformed_ddfs_are_refused_with_a_line() {
    let leaf = |props: &str| {
        with(&format!(
            "<Node><NodeName>a</NodeName><DFProperties>{props}</DFProperties></Node>"
        ))
    };
    let cases = [
        ("<MgmtTree".to_owned(), "not well-formed".to_owned()),
        ("<Tree/>".to_owned(), "not <MgmtTree>".to_owned()),
        ("<MgmtTree><Node/></MgmtTree>".to_owned(), "<VerDTD> is required".to_owned()),
        ("<MgmtTree><VerDTD>1.2</VerDTD></MgmtTree>".to_owned(), "no <Node>".to_owned()),
        (MINIMAL.replace("urn:x:test:1.0", ""), "must give the MOID".to_owned()),
        (MINIMAL.replace("<node/>", "<chr/>").replace("NODES", ""), "interior".to_owned()),
        (with("<Node><DFProperties/></Node>"), "without <NodeName>".to_owned()),
        (with("<Node><NodeName>a</NodeName></Node>"), "<DFProperties> is required".to_owned()),
        (leaf("<DFFormat><chr/></DFFormat>"), "<AccessType> is required".to_owned()),
        (leaf("<AccessType><Fly/></AccessType>"), "unknown access type <Fly>".to_owned()),
        (leaf("<AccessType/><DFFormat><string/></DFFormat>"), "unknown format <string>".to_owned()),
        (leaf("<AccessType/><DFFormat/>"), "empty <DFFormat>".to_owned()),
        (leaf("<AccessType/><Occurrence><ZeroOrN>x</ZeroOrN></Occurrence>"), "needs a number".to_owned()),
        (leaf("<AccessType/><Occurrence><Many/></Occurrence>"), "unknown occurrence".to_owned()),
        (leaf("<AccessType/><Scope><Forever/></Scope>"), "unknown scope".to_owned()),
        // A MIME type becomes a Content-Type header: nothing that could end one.
        (leaf("<AccessType/><DFType><MIME>text/plain&#13;&#10;X: y</MIME></DFType>"), "is not a media type".to_owned()),
        (leaf("<AccessType/><DFType><MIME>text plain</MIME></DFType>"), "is not a media type".to_owned()),
        (with("<Node><NodeName>a/b</NodeName><DFProperties><AccessType/></DFProperties></Node>"), "not 1*unreserved".to_owned()),
        (
            with("<Node><NodeName>a</NodeName><DFProperties><AccessType/><DFFormat><int/></DFFormat></DFProperties><Node><NodeName>b</NodeName><DFProperties><AccessType/></DFProperties></Node></Node>"),
            "cannot have child nodes".to_owned(),
        ),
        (
            "<MgmtTree><VerDTD>1.2</VerDTD><Node><NodeName>x</NodeName><Path>Nowhere</Path><DFProperties><AccessType/></DFProperties></Node></MgmtTree>".to_owned(),
            "names no node".to_owned(),
        ),
    ];
    for (xml, want) in cases {
        let err = ddf::parse(xml.as_ref()).unwrap_err().to_string();
        assert!(err.contains(&want), "{xml}\n→ {err}");
    }
    let err = ddf::parse(&leaf("<AccessType><Fly/></AccessType>"))
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("line 5:"), "{err}");
}

#[test]
fn load_dir_skips_bad_files_and_loads_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("good.xml"), with("")).unwrap();
    std::fs::write(dir.path().join("bad.ddf"), "<MgmtTree>").unwrap();
    std::fs::write(dir.path().join("ignored.txt"), "not a ddf").unwrap();
    let mut reg = Registry::builtin();
    let failures = reg.load_dir(dir.path());
    assert_eq!(failures.len(), 1);
    assert!(failures[0].path.ends_with("bad.ddf"));
    assert!(reg.get("urn:x:test:1.0").is_some());
    assert!(reg.load_dir(&dir.path().join("missing")).is_empty());
}

fn dmacc_root() -> DefNode {
    Registry::builtin().get(DMACC).unwrap().def.root.clone()
}

fn account(extra: serde_json::Value) -> DataNode {
    let mut v = json!({"SrvID": "dms1", "SrvURI": "https://dms.example/dm", "Name": "DMS 1",
                       "Perm": {"p1": {"MOID": "*"}}});
    if let (Some(o), serde_json::Value::Object(e)) = (v.as_object_mut(), extra) {
        o.extend(e);
    }
    let doc = json!([{"ClientURI": "urn:oma:mo:oma-dm-dmacc:1.2//", "MOData": {"acc": v}}]);
    dmmo::decode(doc.to_string().as_bytes(), Limits::default())
        .unwrap()
        .remove(0)
        .data
}

/// An account with notification credentials, as nodes.
fn account_with_noti_nodes(root: &DefNode) -> Vec<Node> {
    let noti = json!({"Auth": {"Noti": {"Type": 0, "Data": "AAE=", "Secret": "c2VjcmV0"}}});
    build_nodes(DMACC, Some(root), "", &account(noti), 1024).unwrap()
}

#[test]
fn build_nodes_types_and_checks_against_the_definition() {
    let root = dmacc_root();
    let nodes = account_with_noti_nodes(&root);
    let get = |p: &str| nodes.iter().find(|n| n.path == p).unwrap();
    assert_eq!(nodes[0].path, "");
    assert_eq!(get("Auth/Noti/Type").value, Some(Value::Int(0)));
    assert_eq!(get("Auth/Noti/Data").value, Some(Value::Bin(vec![0, 1])));
    assert!(
        get("Auth/Noti/Secret").props.secret,
        "the notification key is a secret"
    );
    assert!(!get("Auth/Noti/Data").props.secret);
    assert!(
        get("Perm/p1/MOID").props.secret,
        "No Get leaves are secret too"
    );
    assert_eq!(get("SrvURI").props.mime.as_deref(), Some("text/plain"));

    let bad = [
        (json!({"Bogus": "x"}), "defines no such node"),
        (
            json!({"Auth": {"Noti": {"Type": "zero", "Data": "", "Secret": ""}}}),
            "expected int",
        ),
        (
            json!({"Auth": {"Noti": {"Type": 0, "Data": "AA==", "Secret": "a".repeat(2000)}}}),
            "exceeds the limit of 1024",
        ),
        (
            json!({"Auth": {"Noti": {"Type": 0, "Data": "AA=="}}}),
            "required node Secret is missing",
        ),
        (json!({"Name": {"nested": 1}}), "expected a leaf value"),
        (json!({"Perm": "all"}), "expected an interior node"),
        (json!({"Perm": {}}), "required node <PermGroup> is missing"),
        (json!({"Auth": {"Bogus": 1}}), "defines no such node"),
    ];
    for (extra, want) in bad {
        let err = build_nodes(DMACC, Some(&root), "", &account(extra.clone()), 1024)
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{extra}\n→ {err}");
    }
    let too_many = with(
        "<Node><NodeName/><DFProperties><AccessType><Get/></AccessType><DFFormat><chr/></DFFormat><Occurrence><ZeroOrN>2</ZeroOrN></Occurrence></DFProperties></Node>",
    );
    let def = ddf::parse(&too_many).unwrap();
    let data = DataNode::Interior(
        ["a", "b", "c"]
            .iter()
            .map(|n| (n.to_string(), DataNode::Leaf(json!("v"))))
            .collect(),
    );
    let err = build_nodes("urn:x:test:1.0", Some(&def.root), "", &data, 100).unwrap_err();
    assert!(
        matches!(err, MoError::TooMany { max: 2, got: 3, .. }),
        "{err}"
    );
    let bad_name = DataNode::Interior(vec![("a/b".into(), DataNode::Leaf(json!(1)))]);
    assert!(matches!(
        build_nodes("urn:x:y:1.0", None, "", &bad_name, 100),
        Err(MoError::BadName { .. })
    ));
}

#[test]
fn childless_interior_definitions_are_open_extension_points() {
    // DMAcc's Ext has no children in its DDF: vendor data below it is stored generically.
    let root = dmacc_root();
    let nodes = build_nodes(
        DMACC,
        Some(&root),
        "",
        &account(json!({"Ext": {"HttpAuth": {"UserName": "dev1", "Secret": "pw"}, "n": 3}})),
        1024,
    )
    .unwrap();
    let get = |p: &str| nodes.iter().find(|n| n.path == p).unwrap();
    assert_eq!(
        get("Ext/HttpAuth/UserName").value,
        Some(Value::Chr("dev1".into()))
    );
    assert!(
        get("Ext/HttpAuth/Secret").props.secret,
        "a DMAcc Secret leaf is secret wherever it is"
    );
    assert_eq!(get("Ext/n").props.format, Format::Int);
}

#[test]
fn required_leaves_with_a_default_are_filled() {
    let xml = with(
        "<Node><NodeName>Mode</NodeName><DFProperties><AccessType><Get/></AccessType><DefaultValue>3</DefaultValue><DFFormat><int/></DFFormat></DFProperties></Node>",
    );
    let def = ddf::parse(&xml).unwrap();
    let nodes = build_nodes(
        "urn:x:test:1.0",
        Some(&def.root),
        "",
        &DataNode::Interior(vec![]),
        100,
    )
    .unwrap();
    assert_eq!(nodes[1].path, "Mode");
    assert_eq!(nodes[1].value, Some(Value::Int(3)));
}

#[test]
fn required_interior_nodes_are_made_when_their_requirements_can_be() {
    // SCOMO's shape: a server adds an entry with its own leaves; the device's Status and
    // Operations nodes come from the definition.
    let status = "<Node><NodeName>Status</NodeName><DFProperties><AccessType><Get/></AccessType><DefaultValue>10</DefaultValue><DFFormat><int/></DFFormat></DFProperties></Node>";
    let ops = "<Node><NodeName>Operations</NodeName><DFProperties><AccessType><Get/></AccessType><DFFormat><node/></DFFormat></DFProperties>\
        <Node><NodeName>Install</NodeName><DFProperties><AccessType><Exec/><Get/></AccessType><DFFormat><node/></DFFormat></DFProperties></Node>\
        <Node><NodeName>Later</NodeName><DFProperties><AccessType><Exec/></AccessType><DFFormat><node/></DFFormat><Occurrence><ZeroOrOne/></Occurrence></DFProperties></Node></Node>";
    let def = ddf::parse(&with(&format!("{status}{ops}"))).unwrap();
    let nodes = build_nodes(
        "urn:x:test:1.0",
        Some(&def.root),
        "",
        &DataNode::Interior(vec![]),
        100,
    )
    .unwrap();
    let paths: Vec<&str> = nodes.iter().map(|n| n.path.as_str()).collect();
    assert_eq!(paths, ["", "Status", "Operations", "Operations/Install"]);
    assert_eq!(nodes[1].value, Some(Value::Int(10)));
    assert!(nodes[3].props.access.contains(AccessType::EXEC));
    assert_eq!(nodes[3].props.format, Format::Node);
    // Given, they are taken as given.
    let given = DataNode::Interior(vec![("Status".into(), DataNode::Leaf(json!(20)))]);
    let nodes = build_nodes("urn:x:test:1.0", Some(&def.root), "", &given, 100).unwrap();
    assert_eq!(nodes[1].value, Some(Value::Int(20)));
    // A required node that cannot be made (a required leaf without a default below it) is
    // still missing.
    let strict = "<Node><NodeName>Box</NodeName><DFProperties><AccessType><Get/></AccessType><DFFormat><node/></DFFormat></DFProperties>\
        <Node><NodeName>Serial</NodeName><DFProperties><AccessType><Get/></AccessType><DFFormat><chr/></DFFormat></DFProperties></Node></Node>";
    let def = ddf::parse(&with(strict)).unwrap();
    let err = build_nodes(
        "urn:x:test:1.0",
        Some(&def.root),
        "",
        &DataNode::Interior(vec![]),
        100,
    )
    .unwrap_err();
    assert!(matches!(err, MoError::Missing { .. }), "{err}");
}

#[test]
fn mos_without_a_definition_are_stored_generically() {
    let data = DataNode::Interior(vec![
        ("s".into(), DataNode::Leaf(json!("text"))),
        ("i".into(), DataNode::Leaf(json!(7))),
        ("f".into(), DataNode::Leaf(json!(2.5))),
        ("big".into(), DataNode::Leaf(json!(1u64 << 40))),
        ("b".into(), DataNode::Leaf(json!(false))),
        ("n".into(), DataNode::Leaf(json!(null))),
        ("sub".into(), DataNode::Interior(vec![])),
    ]);
    let nodes = build_nodes("urn:x:nodef:1.0", None, "", &data, 100).unwrap();
    let formats: Vec<Format> = nodes.iter().map(|n| n.props.format).collect();
    use Format::*;
    assert_eq!(formats, [Node, Chr, Int, Float, Float, Bool, Null, Node]);
    assert!(
        nodes
            .iter()
            .all(|n| !n.props.access.contains(AccessType::EXEC)
                && n.props.access.contains(AccessType::GET))
    );
}

#[test]
fn ts_examples_round_trip_through_the_store() {
    // TS §7.2.1.4 (DevInfo), App. F (SessionInfo) and App. I.2 (DCMO, no DDF here): decode,
    // type against the definition, store, read back, encode: the same MO data.
    let docs = [
        r#"[{"ClientURI":"urn:oma:mo:oma-dm-devinfo:1.2//","MOData":{"DevInfo":{"DevID":"IMEI:493005100592800","Man":"Vendor","Mod":"DM_Client","DmV":"2.0","Lang":"en","DevType":"smartphone","OEM":"","FwV":"android4.0.4","SwV":"Vendor1.2","HwV":""}}}]"#,
        r#"[{"ClientURI":"urn:oma:mo:oma-sessioninfomo:1.0//","MOData":{"SessionInfoMO":{"CBT":1,"ROAMING":0}}}]"#,
        r#"[{"DDF":"http://www.vendor.com/DDF/dcmo1.0.ddf","ClientURI":"urn:oma:mo:oma-dcmo:1.0//","MOData":{"usb":{"Property":"USB","Group":"I/O","Description":"USB Control","Enabled":"true"}}}]"#,
    ];
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("t.db"), OpenMode::ReadWrite).unwrap();
    let reg = Registry::builtin();
    for doc in docs {
        let item = dmmo::decode(doc.as_bytes(), Limits::default())
            .unwrap()
            .remove(0);
        let moid = item.client_uri.split('/').next().unwrap().to_owned();
        let def = reg.get(&moid).map(|r| &r.def.root);
        let nodes = build_nodes(&moid, def, "", &item.data, 1 << 20).unwrap();
        let key = InstanceKey::new(moid, item.name.clone());
        store
            .apply(&[TreeOp::PutInstance {
                key: key.clone(),
                ddf_url: None,
                creator: "local".into(),
                nodes,
            }])
            .unwrap();
        let back = nodes_to_data(&store.subtree(&key, "", None).unwrap()).unwrap();
        let mut want = item.clone();
        want.data = sort(want.data);
        let got = dmmo::MoItem {
            data: back,
            ..item.clone()
        };
        assert_eq!(got, want, "{doc}");
    }
}

/// Stored children come back ordered by name.
fn sort(d: DataNode) -> DataNode {
    match d {
        DataNode::Interior(mut c) => {
            c.sort_by(|a, b| a.0.cmp(&b.0));
            DataNode::Interior(c.into_iter().map(|(n, d)| (n, sort(d))).collect())
        }
        leaf => leaf,
    }
}

#[test]
fn no_get_nodes_and_secrets_never_leave() {
    let root = dmacc_root();
    let nodes = account_with_noti_nodes(&root);
    let mut sorted = nodes.clone();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let shown = serde_json::to_string(&dmmo_json(nodes_to_data(&sorted).unwrap())).unwrap();
    assert!(!shown.contains("Perm"), "{shown}");
    // TS §12.2 gives Noti/Secret Get; it is key material all the same.
    assert!(
        !shown.contains("c2VjcmV0") && !shown.contains("Secret"),
        "{shown}"
    );
    assert!(shown.contains("\"Data\":\"AAE=\""), "{shown}");
    // A hidden top gives nothing.
    let perm: Vec<Node> = sorted
        .iter()
        .filter(|n| n.path.starts_with("Perm"))
        .cloned()
        .collect();
    assert_eq!(nodes_to_data(&perm), None);
}

fn dmmo_json(d: DataNode) -> serde_json::Value {
    let item = dmmo::MoItem {
        ddf: None,
        client_uri: "x".into(),
        cv: None,
        name: "acc".into(),
        data: d,
    };
    serde_json::from_slice(&dmmo::encode(&[item])).unwrap()
}

/// A DDF nested thousands of levels deep (issue: the parser recursed once per level and
/// overflowed the stack at start-up) is refused like any bad DDF, naming the file.
#[test]
fn a_ddf_nested_too_deep_is_refused_not_a_crash() {
    let node = |inner: &str| {
        format!(
            "<Node><NodeName>n</NodeName><DFProperties><AccessType><Get/></AccessType><DFFormat><node/></DFFormat></DFProperties>{inner}</Node>"
        )
    };
    let nested = |levels: usize| {
        let mut inner = String::new();
        for _ in 0..levels {
            inner = node(&inner);
        }
        format!(
            "<MgmtTree><VerDTD>1.2</VerDTD><Node><NodeName/><DFProperties><AccessType><Get/></AccessType><DFFormat><node/></DFFormat><DFType><DDFName>urn:x:deep:1.0</DDFName></DFType></DFProperties>{inner}</Node></MgmtTree>"
        )
    };
    // The limit itself is fine; one more level is not.
    assert!(ddf::parse(&nested(ddf::MAX_DEPTH - 1)).is_ok());
    let err = ddf::parse(&nested(ddf::MAX_DEPTH)).unwrap_err().to_string();
    assert!(err.contains("nested deeper than 64 levels"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let deep = nested(6000);
    assert!(deep.len() > 500_000);
    std::fs::write(dir.path().join("deep.xml"), &deep).unwrap();
    let mut reg = Registry::builtin();
    let failures = reg.load_dir(dir.path());
    assert_eq!(failures.len(), 1);
    assert!(failures[0].path.ends_with("deep.xml"));
    assert!(
        failures[0].error.contains("nested deeper"),
        "{}",
        failures[0].error
    );
    assert!(reg.get("urn:x:deep:1.0").is_none());
}
