//! EXEC through a handler registered over D-Bus: the handler accepts (202), reports later,
//! and the result reaches the EXEC's ServerURI as a Generic Alert even though the daemon
//! is killed between queuing it and delivering it.

use serde_json::json;
use zbus::interface;

use crate::common::{PrivateBus, Root, TestServer, omadmctl};

const DDF: &str = r#"<MgmtTree><VerDTD>1.2</VerDTD>
  <Node><NodeName/><DFProperties><AccessType><Get/><Replace/><Add/><Delete/></AccessType><DFFormat><node/></DFFormat>
    <Occurrence><ZeroOrMore/></Occurrence><DFType><DDFName>urn:test:mo:dev:1.0</DDFName></DFType></DFProperties>
    <Node><NodeName>Name</NodeName><DFProperties><AccessType><Get/><Replace/></AccessType><DFFormat><chr/></DFFormat></DFProperties></Node>
    <Node><NodeName>Reboot</NodeName><DFProperties><AccessType><Exec/><Get/></AccessType><DFFormat><null/></DFFormat></DFProperties></Node>
  </Node></MgmtTree>"#;

/// A handler that accepts every EXEC for later and hands the tokens to the test.
struct Handler {
    tokens: tokio::sync::mpsc::UnboundedSender<(String, String)>,
}

#[interface(name = "org.omadm.Client1.ExecHandler")]
impl Handler {
    fn exec(&self, token: String, client_uri: String, _server_id: String) -> (u32, String) {
        let _ = self.tokens.send((token, client_uri));
        (202, String::new())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_async_exec_result_survives_kill_dash_9_before_delivery() {
    let end = json!({"packages": [{"CMD": [["END"]]}]});
    let script = json!({"sessions": [
        end,                                                                                   // BootstrapComplete
        {"packages": [{"CMD": [["EXEC", "urn:test:mo:dev:1.0/d1/Reboot", "{base}/dm/results"]]}, {"expect": [202], "CMD": [["END"]]}]},
        {"packages": [{"http_status": 503}]},                                                  // the first delivery fails
        end,                                                                                   // after the restart: SrvURI
        end                                                                                    // then the results URL
    ]});
    let server = TestServer::start(&script, false);
    let bus = PrivateBus::start();
    let root = Root::new().with_bootstrap_for(&server.base);
    root.write("etc/omadmd/ddf/dev.xml", DDF);
    root.write(
        "etc/omadmd/bootstrap.d/20-dev.json",
        &json!([{"ClientURI": "urn:test:mo:dev:1.0/d1/", "MOData": {"d1": {"Name": "box", "Reboot": null}}}]).to_string(),
    );
    root.write(
        "etc/omadmd/config.d/50-retry.toml",
        "[sessions]\nretry-base-secs = 3600\n",
    );
    let mut d = root.start_on_bus(&bus.address);
    d.wait_for("session ended", 30);

    // The handler registers on the bus.
    let (tx, mut tokens) = tokio::sync::mpsc::unbounded_channel();
    let conn = zbus::connection::Builder::address(bus.address.as_str())
        .serve_at("/test/handler", Handler { tokens: tx })
        .build()
        .await
        .unwrap();
    let manager = omadmd::dbus::client::ManagerProxy::new(&conn)
        .await
        .unwrap();
    let path = zbus::ObjectPath::try_from("/test/handler").unwrap();
    manager
        .register_exec_handler("urn:test:mo:dev:1.0//Reboot", &path)
        .await
        .unwrap();

    // The server EXECs: the handler accepts for later, the server gets 202.
    let addr = bus.address.clone();
    let (code, out, err) =
        tokio::task::spawn_blocking(move || omadmctl(&addr, &["session", "start", "--wait"]))
            .await
            .unwrap();
    assert_eq!(code, 0, "{out}{err}");
    let (token, node) = tokens.recv().await.unwrap();
    assert_eq!(node, "urn:test:mo:dev:1.0/d1/Reboot");
    assert!(
        server.of_kind("expect").iter().all(|e| e["ok"] == true),
        "{:#?}",
        server.of_kind("expect")
    );

    // Only the handler that accepted may answer.
    let addr = bus.address.clone();
    let stranger = zbus::connection::Builder::address(addr.as_str())
        .build()
        .await
        .unwrap();
    let other = omadmd::dbus::client::ManagerProxy::new(&stranger)
        .await
        .unwrap();
    let refused = other.exec_result(&token, 200, "").await;
    assert!(refused.unwrap_err().to_string().contains("AccessDenied"));

    // The result: queued, its delivery fails (503), and the daemon dies before a retry.
    manager.exec_result(&token, 200, "").await.unwrap();
    d.wait_for("session aborted", 30);
    d.wait_for("will retry", 10);
    d.kill9();

    // After the restart the alert goes to the EXEC's ServerURI.
    let addr = bus.address.clone();
    let mut d = root.start_on_bus(&addr);
    d.wait_for("session ended", 30);
    d.wait_for("session ended", 30);
    d.terminate();
    let p1s = server.of_kind("package1");
    let last = p1s.last().unwrap();
    assert_eq!(last["path"], "/dm/results", "{p1s:#?}");
    let alert = &last["body"]["Alert"][1];
    assert_eq!(alert["SourceURI"], "urn:test:mo:dev:1.0/d1/Reboot");
    assert_eq!(alert["Data"]["ResultCode"], 200);
    assert!(
        p1s[p1s.len() - 2]["body"]["Alert"]
            .as_array()
            .unwrap()
            .len()
            == 1,
        "the SrvURI session carried no EXEC result"
    );
    drop(conn);
}

/// A daemon on a private bus whose handler has accepted one EXEC for later (202), with
/// the test server holding two more sessions: the SrvURI one and the result report.
struct Accepted {
    server: TestServer,
    bus: PrivateBus,
    root: Root,
    daemon: crate::common::Daemon,
    handler: zbus::Connection,
}

async fn an_accepted_exec() -> Accepted {
    let end = json!({"packages": [{"CMD": [["END"]]}]});
    let script = json!({"sessions": [
        end,                                                                                   // BootstrapComplete
        {"packages": [{"CMD": [["EXEC", "urn:test:mo:dev:1.0/d1/Reboot", "{base}/dm/results"]]}, {"expect": [202], "CMD": [["END"]]}]},
        end.clone(),                                                                           // SrvURI
        end                                                                                    // the result report
    ]});
    let server = TestServer::start(&script, false);
    let bus = PrivateBus::start();
    let root = Root::new().with_bootstrap_for(&server.base);
    root.write("etc/omadmd/ddf/dev.xml", DDF);
    root.write(
        "etc/omadmd/bootstrap.d/20-dev.json",
        &json!([{"ClientURI": "urn:test:mo:dev:1.0/d1/", "MOData": {"d1": {"Name": "box", "Reboot": null}}}]).to_string(),
    );
    let mut daemon = root.start_on_bus(&bus.address);
    daemon.wait_for("session ended", 30);
    let (tx, mut tokens) = tokio::sync::mpsc::unbounded_channel();
    let handler = zbus::connection::Builder::address(bus.address.as_str())
        .serve_at("/test/handler", Handler { tokens: tx })
        .build()
        .await
        .unwrap();
    omadmd::dbus::client::ManagerProxy::new(&handler)
        .await
        .unwrap()
        .register_exec_handler(
            "urn:test:mo:dev:1.0",
            &zbus::ObjectPath::try_from("/test/handler").unwrap(),
        )
        .await
        .unwrap();
    let addr = bus.address.clone();
    let (code, out, err) =
        tokio::task::spawn_blocking(move || omadmctl(&addr, &["session", "start", "--wait"]))
            .await
            .unwrap();
    assert_eq!(code, 0, "{out}{err}");
    tokens.recv().await.unwrap();
    Accepted {
        server,
        bus,
        root,
        daemon,
        handler,
    }
}

/// The ResultCode of the alert reported at the EXEC's ServerURI.
fn reported_result(server: &TestServer) -> serde_json::Value {
    let p1s = server.of_kind("package1");
    let report = p1s
        .iter()
        .find(|p| p["path"] == "/dm/results")
        .unwrap_or_else(|| panic!("no session to the EXEC's ServerURI: {p1s:#?}"));
    let alert = &report["body"]["Alert"][1];
    assert_eq!(alert["SourceURI"], "urn:test:mo:dev:1.0/d1/Reboot");
    alert["Data"]["ResultCode"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_handler_that_leaves_before_answering_gives_the_server_a_failure() {
    // The bus and root must outlive the daemon: bound, not left to `..`.
    let Accepted {
        server,
        bus: _bus,
        root: _root,
        mut daemon,
        handler,
    } = an_accepted_exec().await;
    // The handler accepted for later, then leaves the bus without answering.
    drop(handler);
    daemon.wait_for("EXEC handler left before answering", 30);
    daemon.wait_for("session ended", 30);
    daemon.wait_for("session ended", 30);
    assert_eq!(reported_result(&server), 500);
    daemon.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_exec_whose_handler_is_gone_after_a_restart_fails_then() {
    let Accepted {
        server,
        bus,
        root,
        daemon,
        handler,
    } = an_accepted_exec().await;
    // The daemon dies with the EXEC pending; the handler leaves while it is down.
    daemon.kill9();
    drop(handler);
    let mut d = root.start_on_bus(&bus.address);
    d.wait_for("EXEC handler left before answering", 30);
    d.wait_for("session ended", 30);
    d.wait_for("session ended", 30);
    assert_eq!(reported_result(&server), 500);
    d.terminate();
}
