//! Engine tests: the harness (a real SQLite store with real bootstrapped accounts, and
//! ports that answer from tables and record every call; real HTTP comes with the session
//! driver), and the tests by command family in the modules below.

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
/// A MO whose instances only the device makes (its root has no Add), as a handler's.
const DEVICE_ONLY: &str = "urn:test:mo:device-only:1.0";
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

const DEVICE_ONLY_DDF: &str = r#"<MgmtTree><VerDTD>1.2</VerDTD>
  <Node><NodeName/><DFProperties><AccessType><Get/></AccessType><DFFormat><node/></DFFormat>
    <Occurrence><ZeroOrMore/></Occurrence><DFType><DDFName>urn:test:mo:device-only:1.0</DDFName></DFType></DFProperties>
    <Node><NodeName>Name</NodeName><DFProperties><AccessType><Get/></AccessType><DFFormat><chr/></DFFormat></DFProperties></Node>
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
        std::fs::write(dir.path().join("ddf/device-only.xml"), DEVICE_ONLY_DDF).unwrap();
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
            ("dms2", vec![DEVINFO, TESTMO, FIG5, DEVICE_ONLY]),
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

mod access;
mod bounds;
mod data;
mod flow;
mod ts_vectors;
