//! Engine tests: every command's success and failure statuses, the access-control matrix,
//! MOS, and the TS's App. I exchanges, on a real SQLite store with real bootstrapped
//! accounts; the ports are a recorder (real HTTP comes with the session driver).

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::future::{Future, ready};

use serde_json::{Value as Json, json};

use super::*;
use crate::mo::bootstrap::{BootstrapLimits, apply_document};
use crate::mo::standard::{DevInfoValues, ensure_devinfo};
use crate::mo::{DEVINFO, DMACC};
use crate::protocol::dmmo;
use crate::protocol::packages::{P2Limits, decode_package2};
use crate::tree::{
    AccessType, Format, InstanceKey, Node, NodeProps, OpenMode, Scope, SqliteStore, TreeOp, Value,
};
use crate::tree::{Journal as _, Tree as _};

const FIG5: &str = "urn:oma:mo:moid:1.0";
const TESTMO: &str = "urn:test:mo:dev:1.0";
const DEV_ID: &str = "IMEI:493005100592800";

/// One HPUT/HPOST as the repository saw it: method, URL, media type, body.
type SentRecord = (Method, String, String, Vec<u8>);

/// The Ports of the tests: answers from tables, and a record of every call.
#[derive(Default)]
struct Recorder {
    repo: RefCell<HashMap<String, (String, Vec<u8>)>>,
    fetches: RefCell<Vec<(String, Vec<String>)>>,
    sends: RefCell<Vec<SentRecord>>,
    send_replies: RefCell<VecDeque<Result<Sent, PortError>>>,
    shows: RefCell<Vec<(String, String)>>,
    show_reply: RefCell<Option<Shown>>,
    execs: RefCell<Vec<ExecRequest>>,
    exec_reply: RefCell<Option<Executed>>,
}

impl Ports for Recorder {
    fn fetch(
        &self,
        url: &str,
        accept: &[&str],
    ) -> impl Future<Output = Result<Fetched, PortError>> {
        self.fetches.borrow_mut().push((
            url.to_owned(),
            accept.iter().map(|s| s.to_string()).collect(),
        ));
        let r = self.repo.borrow().get(url).cloned();
        ready(
            r.map(|(content_type, body)| Fetched { content_type, body })
                .ok_or_else(|| PortError("HTTP 404".into())),
        )
    }

    fn send(
        &self,
        method: Method,
        url: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> impl Future<Output = Result<Sent, PortError>> {
        self.sends
            .borrow_mut()
            .push((method, url.to_owned(), content_type.to_owned(), body));
        ready(
            self.send_replies
                .borrow_mut()
                .pop_front()
                .unwrap_or(Ok(Sent::Ok)),
        )
    }

    fn check_target(&self, url: &str) -> impl Future<Output = Result<(), PortError>> {
        // The daemon's policy for address literals; names are the resolver's business.
        let policy = crate::transport::target::TargetPolicy::new("https://r/", false, vec![]);
        ready(match url::Url::parse(url) {
            Ok(u) => policy.check_url(&u).map_err(|e| PortError(Box::new(e))),
            Err(e) => Err(PortError(Box::new(e))),
        })
    }

    fn show(&self, url: &str, server_id: &str) -> impl Future<Output = Shown> {
        self.shows
            .borrow_mut()
            .push((url.to_owned(), server_id.to_owned()));
        ready(self.show_reply.borrow().clone().unwrap_or(Shown::Launched))
    }

    fn exec(&self, request: &ExecRequest) -> impl Future<Output = Executed> {
        self.execs.borrow_mut().push(request.clone());
        ready(
            self.exec_reply
                .borrow()
                .clone()
                .unwrap_or(Executed::NoHandler),
        )
    }
}

const TEST_DDF: &str = r#"<MgmtTree><VerDTD>1.2</VerDTD>
  <Node><NodeName/><DFProperties><AccessType><Add/><Delete/><Get/><Replace/></AccessType><DFFormat><node/></DFFormat>
    <Occurrence><ZeroOrMore/></Occurrence><DFType><DDFName>urn:test:mo:dev:1.0</DDFName></DFType></DFProperties>
    <Node><NodeName>Name</NodeName><DFProperties><AccessType><Add/><Get/><Replace/><Delete/></AccessType><DFFormat><chr/></DFFormat></DFProperties></Node>
    <Node><NodeName>Fixed</NodeName><DFProperties><AccessType><Get/></AccessType><DFFormat><chr/></DFFormat><Scope><Permanent/></Scope><DefaultValue>f</DefaultValue></DFProperties></Node>
    <Node><NodeName>Serial</NodeName><DFProperties><AccessType><Get/></AccessType><DFFormat><chr/></DFFormat><Scope><Permanent/></Scope><Occurrence><ZeroOrOne/></Occurrence></DFProperties></Node>
    <Node><NodeName>Reboot</NodeName><DFProperties><AccessType><Exec/><Get/></AccessType><DFFormat><null/></DFFormat><Occurrence><ZeroOrOne/></Occurrence></DFProperties></Node>
    <Node><NodeName>Blob</NodeName><DFProperties><AccessType><Add/><Get/><Replace/></AccessType><DFFormat><bin/></DFFormat><Occurrence><ZeroOrOne/></Occurrence>
      <DFType><MIME>application/octet-stream</MIME></DFType></DFProperties></Node>
  </Node></MgmtTree>"#;

const LIMITS: Limits = Limits {
    max_value_bytes: 4096,
    max_document_bytes: 1 << 16,
    max_nodes: 1000,
    max_server_bytes: 1 << 20,
    max_server_instances: 100,
    max_server_registrations: 100,
    max_server_alerts: 100,
    max_server_result_urls: 4,
};

struct World {
    _dir: tempfile::TempDir,
    store: SqliteStore,
    reg: Registry,
    ports: Recorder,
}

fn node(path: &str, v: Option<&str>) -> Node {
    match v {
        None => Node {
            path: path.into(),
            props: NodeProps::interior(AccessType::ALL, Scope::Dynamic),
            value: None,
        },
        Some(s) => Node {
            path: path.into(),
            props: NodeProps::leaf(
                Format::Chr,
                AccessType::GET | AccessType::REPLACE | AccessType::ADD | AccessType::DELETE,
                Scope::Dynamic,
            ),
            value: Some(Value::Chr(s.into())),
        },
    }
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("ddf")).unwrap();
        std::fs::write(dir.path().join("ddf/test.xml"), TEST_DDF).unwrap();
        let mut reg = Registry::builtin();
        assert!(reg.load_dir(&dir.path().join("ddf")).is_empty());
        let store = SqliteStore::open(&dir.path().join("tree.db"), OpenMode::ReadWrite).unwrap();
        let limits = BootstrapLimits {
            max_file_bytes: 1 << 20,
            max_value_bytes: 4096,
            max_nodes: 1000,
        };
        for (srv, perms) in [
            ("dms1", vec!["*"]),
            ("dms2", vec![DEVINFO, TESTMO, FIG5]),
            ("dms3", vec![DEVINFO]),
        ] {
            let perm: serde_json::Map<String, Json> = perms
                .iter()
                .enumerate()
                .map(|(i, m)| (format!("p{i}"), json!({ "MOID": m })))
                .collect();
            let doc = json!([{"ClientURI": "urn:oma:mo:oma-dm-dmacc:1.2//", "MOData": {srv: {
                "SrvID": srv, "SrvURI": format!("https://{srv}.example/dm"), "Name": srv, "Perm": perm,
                "Auth": {"Noti": {"Type": 0, "Data": "AA==", "Secret": "c2VjcmV0"}}}}}]);
            apply_document(&store, &reg, srv, doc.to_string().as_bytes(), limits).unwrap();
        }
        let values = DevInfoValues {
            dev_id: DEV_ID.into(),
            man: "Vendor".into(),
            model: "DM_Client".into(),
            dmv: "2.0".into(),
            lang: "en".into(),
            dev_type: "smartphone".into(),
            oem: "".into(),
            fwv: "android4.0.4".into(),
            swv: "Vendor1.2".into(),
            hwv: "".into(),
        };
        ensure_devinfo(&store, &reg, &values).unwrap();
        for (miid, id, setting, d) in [
            (
                "left",
                "GPS",
                "0xA2",
                [("12.1", "12.1, 65.2"), ("12.2", "117.1, 21.2")],
            ),
            (
                "right",
                "Temperature",
                "0x12",
                [("12.1", "12"), ("12.2", "19")],
            ),
        ] {
            let nodes = vec![
                node("", None),
                node("Data", None),
                node("Data/1", None),
                node("Data/1/Date", Some(d[0].0)),
                node("Data/1/Value", Some(d[0].1)),
                node("Data/2", None),
                node("Data/2/Date", Some(d[1].0)),
                node("Data/2/Value", Some(d[1].1)),
                node("ID", Some(id)),
                node("Setting", Some(setting)),
            ];
            store
                .apply(&[TreeOp::PutInstance {
                    key: InstanceKey::new(FIG5, miid),
                    ddf_url: None,
                    creator: "serverid:dms1".into(),
                    nodes,
                }])
                .unwrap();
        }
        World {
            _dir: dir,
            store,
            reg,
            ports: Recorder::default(),
        }
    }

    fn session(server: &str) -> Session {
        Session {
            server_id: server.into(),
            uri_values: crate::protocol::uri::ServerUriValues {
                dev_id: Some(DEV_ID.into()),
                ..Default::default()
            },
            server_accept: Vec::new(),
            target: format!("https://{server}.example/dm"),
            allow_http_show: false,
        }
    }

    fn engine(&self) -> Engine<'_, Recorder> {
        Engine::new(&self.store, &self.reg, &self.ports, LIMITS)
    }

    async fn run_in(&self, session: &mut Session, cmds: Json) -> Outcome {
        self.run_with(LIMITS, session, cmds).await
    }

    async fn run_with(&self, limits: Limits, session: &mut Session, cmds: Json) -> Outcome {
        let body = json!({ "CMD": cmds }).to_string();
        let cmds = decode_package2(
            body.as_bytes(),
            P2Limits {
                max_bytes: 1 << 20,
                max_commands: 100,
            },
        )
        .unwrap();
        Engine::new(&self.store, &self.reg, &self.ports, limits)
            .run(session, &cmds)
            .await
    }

    async fn run(&self, server: &str, cmds: Json) -> Outcome {
        self.run_in(&mut World::session(server), cmds).await
    }

    async fn codes(&self, server: &str, cmds: Json) -> Vec<u16> {
        self.run(server, cmds)
            .await
            .package3
            .status
            .iter()
            .map(|s| s.sc)
            .collect()
    }

    fn serve(&self, url: &str, ct: &str, body: &[u8]) {
        self.ports
            .repo
            .borrow_mut()
            .insert(url.into(), (ct.into(), body.to_vec()));
    }

    fn value(&self, moid: &str, miid: &str, path: &str) -> Option<Value> {
        self.store
            .node(&InstanceKey::new(moid, miid), path)
            .unwrap()
            .and_then(|n| n.value)
    }

    fn snapshot(&self) -> Vec<(String, Vec<Node>)> {
        self.store
            .instances(None)
            .unwrap()
            .into_iter()
            .map(|i| {
                (
                    format!("{}/{}", i.moid, i.miid),
                    self.store
                        .subtree(&InstanceKey::new(i.moid, i.miid), "", None)
                        .unwrap(),
                )
            })
            .collect()
    }
}

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
