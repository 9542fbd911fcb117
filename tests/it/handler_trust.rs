//! A compromised EXEC handler stays in its MO (issue 27, docs/security.md): as a handler's
//! unix user whom polkit lets register (the shipped `50-omadm-fwupd.rules`, made out for
//! `nobody`), every move toward a standard MO is refused with `AccessDenied` naming the
//! MOID, and the tree is as it was. The moves run in a child process as `nobody` (this
//! test binary again, with one ignored test as its entry point).

use std::os::unix::process::CommandExt as _;
use std::process::Command;

use serde_json::json;

use crate::common::{PrivateBus, Root, TestServer, omadmctl};
use crate::polkit::{NOBODY, Polkitd, can_run};

const FUMO_DDF: &str = include_str!("../../data/ddf/fumo/oma-fumo-1.0.ddf.xml");
const DMACC: &str = "urn:oma:mo:oma-dm-dmacc:1.2";

/// What the handler's user tries, and what it may: (name, `Ok` wanted).
const MOVES: [(&str, bool); 12] = [
    ("register-dmacc", false),
    ("register-dmacc-subtree", false),
    ("register-dacmo", false),
    ("register-devinfo", false),
    ("register-devinfo-uppercase", false),
    ("register-devdetail", false),
    ("register-fumo", true),
    ("update-own-fumo", true),
    ("update-dmacc-srvuri", false),
    ("update-new-dmacc", false),
    ("update-devinfo-devid", false),
    ("delete-dmacc", false),
];

#[test]
fn a_compromised_handler_stays_in_its_mo() {
    if !can_run() {
        return;
    }
    let end = json!({"packages": [{"CMD": [["END"]]}]});
    let server = TestServer::start(&json!({"sessions": [end]}), false);
    let bus = PrivateBus::start();
    let dir = tempfile::tempdir().unwrap();
    // The shipped rule of omadm-fwupd, for `nobody`: polkit says yes to registering.
    let rule = include_str!("../../packaging/polkit/50-omadm-fwupd.rules")
        .replace("\"omadm-fwupd\"", "\"nobody\"");
    let _polkit = Polkitd::start(&bus.address, dir.path(), &rule);
    let root = Root::new().with_bootstrap_for(&server.base);
    root.write("etc/omadmd/ddf/oma-fumo-1.0.ddf.xml", FUMO_DDF);
    // Its definition: FUMO, and nothing else.
    root.write(
        "etc/omadmd/handlers/fumo.toml",
        "user = \"nobody\"\nmoids = [\"urn:oma:mo:oma-fumo:1.0\"]\n",
    );
    let mut d = root.start_on_bus(&bus.address);
    d.wait_for("session ended", 30);
    let tree = |uri: &str| omadmctl(&bus.address, &["--json", "tree", "get", uri]).1;
    let before = (
        tree(&format!("{DMACC}/demo/SrvURI")),
        tree(&format!("{DMACC}//")),
        tree("urn:oma:mo:oma-dm-devinfo:1.2//DevID"),
    );
    assert!(before.0.contains(&server.base), "{before:?}");

    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "handler_trust::handler_moves",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("DBUS_SYSTEM_BUS_ADDRESS", &bus.address)
        .uid(NOBODY)
        .gid(NOBODY)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    for (name, allowed) in MOVES {
        let tag = format!("MOVE {name}: ");
        // The harness may print its own words before the first line.
        let line = said
            .lines()
            .find_map(|l| l.find(&tag).map(|at| &l[at..]))
            .unwrap_or_else(|| {
                panic!(
                    "{name} not tried: {said}{}",
                    String::from_utf8_lossy(&out.stderr)
                )
            });
        if allowed {
            assert!(line.ends_with(": ok"), "{line}");
        } else {
            assert!(
                line.contains("org.omadm.Client1.Error.AccessDenied"),
                "{line}"
            );
        }
        if name.starts_with("register-d") {
            assert!(
                line.to_lowercase().contains("urn:oma:mo:oma-dm-"),
                "the MOID is named: {line}"
            );
        }
    }
    // Nothing changed but the handler's own MO.
    let after = (
        tree(&format!("{DMACC}/demo/SrvURI")),
        tree(&format!("{DMACC}//")),
        tree("urn:oma:mo:oma-dm-devinfo:1.2//DevID"),
    );
    assert_eq!(before, after);
    assert!(tree("urn:oma:mo:oma-fumo:1.0/cam/PkgName").contains("made by the handler"));
    let refused = d.wait_for("EXEC handler registration refused", 10);
    assert!(
        refused.contains("moid=urn:oma:mo:oma-dm-dmacc:1.2") || refused.contains("oma-dm-dmacc"),
        "{refused}"
    );
    d.terminate();
}

/// The handler's side, run as `nobody` by the test above; prints `MOVE name: outcome`.
#[tokio::test]
#[ignore = "run as another user by a_compromised_handler_stays_in_its_mo"]
async fn handler_moves() {
    let conn = zbus::Connection::system().await.unwrap();
    let manager = omadm_client::ManagerProxy::new(&conn).await.unwrap();
    let path = zbus::ObjectPath::try_from("/handler").unwrap();
    let said = |r: zbus::Result<()>| match r {
        Ok(()) => "ok".to_owned(),
        Err(e) => e.to_string(),
    };
    let update = |doc: serde_json::Value, delete: &'static [&'static str]| {
        let manager = manager.clone();
        async move { manager.handler_update(&doc.to_string(), delete).await }
    };
    for (name, _) in MOVES {
        let outcome = match name {
            "register-dmacc" => manager.register_exec_handler(DMACC, &path).await,
            "register-dmacc-subtree" => {
                manager
                    .register_exec_handler(&format!("{DMACC}//SrvURI"), &path)
                    .await
            }
            "register-dacmo" => {
                manager
                    .register_exec_handler("urn:oma:mo:oma-dm-dacmo:1.0", &path)
                    .await
            }
            "register-devinfo" => {
                manager
                    .register_exec_handler("urn:oma:mo:oma-dm-devinfo:1.2", &path)
                    .await
            }
            "register-devinfo-uppercase" => {
                manager
                    .register_exec_handler("urn:oma:mo:OMA-DM-DEVINFO:1.2", &path)
                    .await
            }
            "register-devdetail" => {
                manager
                    .register_exec_handler("urn:oma:mo:oma-dm-devdetail:1.0", &path)
                    .await
            }
            "register-fumo" => {
                manager
                    .register_exec_handler("urn:oma:mo:oma-fumo:1.0", &path)
                    .await
            }
            "update-own-fumo" => {
                update(json!([{"ClientURI": "urn:oma:mo:oma-fumo:1.0/cam/", "MOData": {"cam": {"PkgName": "made by the handler", "PkgVersion": "1", "State": 10}}}]), &[]).await
            }
            "update-dmacc-srvuri" => {
                update(json!([{"ClientURI": format!("{DMACC}/demo/SrvURI"), "MOData": {"SrvURI": "http://attacker.invalid/dm"}}]), &[]).await
            }
            "update-new-dmacc" => {
                update(json!([{"ClientURI": format!("{DMACC}/evil/"), "MOData": {"evil": {"SrvID": "evil", "SrvURI": "http://attacker.invalid/dm", "Perm": {"all": {"MOID": "*"}}}}}]), &[]).await
            }
            "update-devinfo-devid" => {
                update(json!([{"ClientURI": "urn:oma:mo:oma-dm-devinfo:1.2/DevInfo/DevID", "MOData": {"DevID": "spoofed"}}]), &[]).await
            }
            "delete-dmacc" => update(json!([]), &["urn:oma:mo:oma-dm-dmacc:1.2/demo/"]).await,
            other => panic!("no move {other}"),
        };
        println!("MOVE {name}: {}", said(outcome));
    }
}
