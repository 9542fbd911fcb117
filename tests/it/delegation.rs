//! Delegation through the DACMO (TS §12.3, issue 27): the client keeps the DACMO instance
//! itself, so a server holding Delegate on an instance it made can write the instance's
//! first grants, and another server then holds the rights granted, no more.

use serde_json::json;

use crate::common::{PrivateBus, Root, TestServer, omadmctl};
use crate::trust::account;

const MOID: &str = "urn:test:mo:dev:1.0";
/// The DACMO entry of the instance `box`: its `<MOID>` node written with `%3A`.
const ENTRY: &str = "urn:oma:mo:oma-dm-dacmo:1.0/DacMO/urn%3Atest%3Amo%3Adev%3A1.0/box";
const DEVINFO: &str = "urn:oma:mo:oma-dm-devinfo:1.2";
const DEVINFO_ENTRY: &str =
    "urn:oma:mo:oma-dm-dacmo:1.0/DacMO/urn%3Aoma%3Amo%3Aoma-dm-devinfo%3A1.2/DevInfo";

fn end() -> serde_json::Value {
    json!({"packages": [{"CMD": [["END"]]}]})
}

/// A session of one package of `cmds`, whose statuses must be `expect`.
fn session(cmds: serde_json::Value, expect: &[u16]) -> serde_json::Value {
    json!({"packages": [{"CMD": cmds}, {"expect": expect, "CMD": [["END"]]}]})
}

fn expectations_met(server: &TestServer, count: usize) {
    let expects = server.of_kind("expect");
    assert_eq!(expects.len(), count, "{:#?}", server.events());
    assert!(
        expects.iter().all(|e| e["ok"] == true),
        "{:#?}",
        server.events()
    );
}

/// `omadmctl session start --server <id> --wait`, which must end well.
async fn session_with(bus: &PrivateBus, server: &'static str) {
    let addr = bus.address.clone();
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        omadmctl(&addr, &["session", "start", "--server", server, "--wait"])
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{out}{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_creator_delegates_read_to_another_server_through_the_clients_dacmo() {
    let name = format!("{MOID}/box/Name");
    let grant = json!({"content_type": "application/dmmo+json", "body": [{"ClientURI": ENTRY,
        "MOData": {"box": {"s": {"Path": "/", "Permissions": {
            "a": {"MAID": "serverid:server-a", "AR": 15},
            "b": {"MAID": "serverid:server-b", "AR": 1}}}}}}]});
    let mut grant2 = grant.clone();
    grant2["body"][0]["ClientURI"] = json!(format!("{ENTRY}-2"));
    grant2["body"][0]["MOData"] = json!({"box-2": grant["body"][0]["MOData"]["box"]});
    // A makes the instance; it may not make a DACMO of its own. Later it delegates Read.
    let a = TestServer::start(
        &json!({
            "sessions": [
                session(json!([["HGET", "{base}/repo/dev"], ["HGET", "{base}/repo/dacmo"]]), &[200, 403]),
                // The first grant makes the <MOID> node; the second instance's finds it; an
                // instance that does not exist gets none.
                // A deleted instance takes its entry along: made again under the same name,
                // it starts with no grants. The client's own instances are no server's to
                // delegate, or one could shut the others out.
                session(json!([
                    ["HGET", "{base}/repo/grant", ENTRY],
                    ["HGET", "{base}/repo/dev"],
                    ["HGET", "{base}/repo/grant2", format!("{ENTRY}-2")],
                    ["HGET", "{base}/repo/grant", format!("{ENTRY}-9")],
                    ["DELETE", format!("{MOID}/box-2/")],
                    ["HGET", "{base}/repo/dev"],
                    ["HGET", "{base}/repo/devinfo", DEVINFO_ENTRY]
                ]), &[200, 200, 200, 403, 200, 200, 403])
            ],
            "repository": {
                "/repo/dev": {"content_type": "application/dmmo+json", "body": [{"ClientURI": format!("{MOID}//"),
                    "MOData": {"box": {"Name": "made by A", "Reboot": null}}}]},
                "/repo/dacmo": {"content_type": "application/dmmo+json", "body": [{"ClientURI": "urn:oma:mo:oma-dm-dacmo:1.0//",
                    "MOData": {"Mine": {}}}]},
                "/repo/grant": grant,
                "/repo/grant2": grant2,
                "/repo/devinfo": {"content_type": "application/dmmo+json", "body": [{"ClientURI": DEVINFO_ENTRY,
                    "MOData": {"DevInfo": {"s": {"Path": "/", "Permissions": {
                        "a": {"MAID": "serverid:server-a", "AR": 15}}}}}}]}
            }
        }),
        false,
    );
    // B holds nothing on A's instance, and cannot grant itself anything; after A's grant
    // it reads, and still does not write.
    let b = TestServer::start(
        &json!({
            "sessions": [
                end(),
                session(json!([["GET", name], ["HGET", "{base}/repo/grant", ENTRY]]), &[403, 403]),
                session(json!([
                    ["GET", name],
                    ["HGET", "{base}/repo/name", name],
                    ["GET", format!("{MOID}/box-2/Name")],
                    ["GET", "urn:oma:mo:oma-dm-devinfo:1.2/DevInfo/DevID"]
                ]), &[200, 403, 403, 200])
            ],
            "repository": {
                "/repo/grant": grant,
                "/repo/name": {"content_type": "text/plain", "body": "taken by B"}
            }
        }),
        false,
    );
    let bus = PrivateBus::start();
    let root = Root::new();
    account(
        &root,
        "10-a.json",
        "a",
        "server-a",
        &a.base,
        &[MOID, DEVINFO],
    );
    account(
        &root,
        "20-b.json",
        "b",
        "server-b",
        &b.base,
        &[MOID, DEVINFO],
    );
    root.write("etc/omadmd/ddf/dev.xml", crate::exec::DDF);
    let mut d = root.start_on_bus(&bus.address);
    d.wait_for("session ended", 30);
    d.wait_for("session ended", 30);
    session_with(&bus, "server-b").await;
    session_with(&bus, "server-a").await;
    session_with(&bus, "server-b").await;
    expectations_met(&a, 2);
    expectations_met(&b, 2);
    // The grant is in the client's DACMO, where B reads its own rights; box-2's went with it.
    let got = b.of_kind("package3");
    let read = got.last().unwrap()["parts"][0]["body"].to_string();
    assert!(read.contains("made by A"), "{read}");
    let addr = bus.address.clone();
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        omadmctl(
            &addr,
            &[
                "--json",
                "tree",
                "get",
                "urn:oma:mo:oma-dm-dacmo:1.0/DacMO/",
            ],
        )
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("urn:test:mo:dev:1.0")
            && !out.contains("box-2")
            && out.contains("serverid:server-b"),
        "{out}"
    );
    let (_, log) = d.terminate();
    assert!(
        !log.iter().any(|l| l.contains("ERROR")),
        "{}",
        log.join("\n")
    );
}
