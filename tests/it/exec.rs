//! EXEC through a handler registered over D-Bus: the handler accepts (202), reports later,
//! and the result reaches the EXEC's ServerURI as a Generic Alert even though the daemon
//! is killed between queuing it and delivering it.

use serde_json::json;
use zbus::interface;

use crate::common::{PrivateBus, Root, TestServer, omadmctl};

pub(crate) const DDF: &str = r#"<MgmtTree><VerDTD>1.2</VerDTD>
  <Node><NodeName/><DFProperties><AccessType><Get/><Replace/><Add/><Delete/></AccessType><DFFormat><node/></DFFormat>
    <Occurrence><ZeroOrMore/></Occurrence><DFType><DDFName>urn:test:mo:dev:1.0</DDFName></DFType></DFProperties>
    <Node><NodeName>Name</NodeName><DFProperties><AccessType><Get/><Replace/></AccessType><DFFormat><chr/></DFFormat></DFProperties></Node>
    <Node><NodeName>Reboot</NodeName><DFProperties><AccessType><Exec/><Get/></AccessType><DFFormat><null/></DFFormat></DFProperties></Node>
  </Node></MgmtTree>"#;

/// The test's handlers run as root: an administrator's definition lets root handle the
/// test MO (mo::handlers), under any bus name.
pub(crate) const HANDLER_DEF: &str = "user = \"root\"\nmoids = [\"urn:test:mo:dev:1.0\"]\n";

/// The test MO for `root`: its DDF, a definition letting the test's user (root) handle it,
/// and an instance `d1` with an EXEC node `Reboot`, bootstrapped.
pub(crate) fn with_test_mo(root: &Root) {
    root.write("etc/omadmd/handlers/test.toml", HANDLER_DEF);
    root.write("etc/omadmd/ddf/dev.xml", DDF);
    root.write(
        "etc/omadmd/bootstrap.d/20-dev.json",
        &json!([{"ClientURI": "urn:test:mo:dev:1.0/d1/", "MOData": {"d1": {"Name": "box", "Reboot": null}}}]).to_string(),
    );
}

/// A handler that accepts every EXEC for later and hands the tokens to the test.
pub(crate) struct Handler {
    pub(crate) tokens: tokio::sync::mpsc::UnboundedSender<(String, String)>,
}

#[interface(name = "org.omadm.Client1.ExecHandler")]
impl Handler {
    fn exec(&self, token: String, client_uri: String, _server_id: String) -> (u32, String) {
        let _ = self.tokens.send((token, client_uri));
        (202, String::new())
    }
}

/// A [`Handler`] on `bus`, registered for the test MO's `Reboot`: its connection (it
/// serves while that lives), the Manager as it sees it, and where its tokens arrive.
pub(crate) async fn later_handler(
    bus: &str,
) -> (
    zbus::Connection,
    omadm_client::ManagerProxy<'static>,
    tokio::sync::mpsc::UnboundedReceiver<(String, String)>,
) {
    let (tx, tokens) = tokio::sync::mpsc::unbounded_channel();
    let conn = zbus::connection::Builder::address(bus)
        .serve_at("/test/handler", Handler { tokens: tx })
        .build()
        .await
        .unwrap();
    let manager = omadm_client::ManagerProxy::new(&conn).await.unwrap();
    let path = zbus::ObjectPath::try_from("/test/handler").unwrap();
    manager
        .register_exec_handler("urn:test:mo:dev:1.0//Reboot", &path)
        .await
        .unwrap();
    (conn, manager, tokens)
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
    with_test_mo(&root);
    root.write(
        "etc/omadmd/config.d/50-retry.toml",
        "[sessions]\nretry-base-secs = 3600\n",
    );
    let mut d = root.start_on_bus(&bus.address);
    d.wait_for("session ended", 30);

    // The handler registers on the bus.
    let (conn, manager, mut tokens) = later_handler(&bus.address).await;

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
    let other = omadm_client::ManagerProxy::new(&stranger).await.unwrap();
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
    with_test_mo(&root);
    let mut daemon = root.start_on_bus(&bus.address);
    daemon.wait_for("session ended", 30);
    let (tx, mut tokens) = tokio::sync::mpsc::unbounded_channel();
    let handler = zbus::connection::Builder::address(bus.address.as_str())
        .serve_at("/test/handler", Handler { tokens: tx })
        .build()
        .await
        .unwrap();
    omadm_client::ManagerProxy::new(&handler)
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

/// The ResultCode of the alert reported at the EXEC's ServerURI for the EXEC at `source`.
fn reported_result_for(server: &TestServer, source: &str) -> serde_json::Value {
    let p1s = server.of_kind("package1");
    let report = p1s
        .iter()
        .find(|p| p["path"] == "/dm/results")
        .unwrap_or_else(|| panic!("no session to the EXEC's ServerURI: {p1s:#?}"));
    let alert = &report["body"]["Alert"][1];
    assert_eq!(alert["SourceURI"], source);
    alert["Data"]["ResultCode"].clone()
}

/// The ResultCode reported for the EXEC of `d1/Reboot`.
fn reported_result(server: &TestServer) -> serde_json::Value {
    reported_result_for(server, "urn:test:mo:dev:1.0/d1/Reboot")
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
    assert_eq!(reported_result(&server), 500);
    // The result took one session, to the ServerURI; none with the SrvURI (only the
    // BootstrapComplete one and the EXEC's own went there).
    let (_, log) = daemon.terminate();
    let to_srv_uri = server
        .of_kind("package1")
        .iter()
        .filter(|p| p["path"] == "/dm")
        .count();
    assert_eq!(to_srv_uri, 2, "{log:#?}");
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

/// A test server with `sessions`, a private bus, and a daemon on it (the test MO's DDF
/// installed, `config` added) past its BootstrapComplete session.
pub(crate) fn daemon_for(
    sessions: serde_json::Value,
    config: &str,
) -> (TestServer, PrivateBus, Root, crate::common::Daemon) {
    let server = TestServer::start(&json!({ "sessions": sessions }), false);
    let bus = PrivateBus::start();
    let root = Root::new().with_bootstrap_for(&server.base);
    root.write("etc/omadmd/handlers/test.toml", HANDLER_DEF);
    root.write("etc/omadmd/ddf/dev.xml", DDF);
    root.write("etc/omadmd/config.d/50-test.toml", config);
    let mut daemon = root.start_on_bus(&bus.address);
    daemon.wait_for("session ended", 30);
    (server, bus, root, daemon)
}

/// `omadmctl session start --wait` on `bus`, which must end well.
pub(crate) async fn session_now(bus: &PrivateBus) {
    let addr = bus.address.clone();
    let (code, out, err) =
        tokio::task::spawn_blocking(move || omadmctl(&addr, &["session", "start", "--wait"]))
            .await
            .unwrap();
    assert_eq!(code, 0, "{out}{err}");
}

/// The handler a FUMO-like service would be: it owns a well-known name, registers under
/// it, and accepts EXECs for later.
async fn durable_handler(
    bus: &str,
    tokens: tokio::sync::mpsc::UnboundedSender<(String, String)>,
) -> (zbus::Connection, omadm_client::ManagerProxy<'static>) {
    let conn = zbus::connection::Builder::address(bus)
        .name("org.omadm.Test.Updater")
        .serve_at("/test/handler", Handler { tokens })
        .build()
        .await
        .unwrap();
    let manager = omadm_client::ManagerProxy::new(&conn).await.unwrap();
    manager
        .register_exec_handler_as(
            "urn:test:mo:dev:1.0",
            &zbus::ObjectPath::try_from("/test/handler").unwrap(),
            "org.omadm.Test.Updater",
        )
        .await
        .unwrap();
    (conn, manager)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_handler_keeps_its_mo_current_and_answers_after_both_restart() {
    let end = json!({"packages": [{"CMD": [["END"]]}]});
    let (server, bus, root, daemon) = daemon_for(
        json!([
            end,                                                                               // BootstrapComplete
            {"packages": [{"CMD": [["GET", "urn:test:mo:dev:1.0/local/Name"], ["EXEC", "urn:test:mo:dev:1.0/local/Reboot", "{base}/dm/results"]]},
                          {"expect": [200, 202], "CMD": [["END"]]}]},
            // The result report goes to the ServerURI alone: no session with the SrvURI
            // for it.
            end
        ]),
        "",
    );

    // The handler creates the instance it serves: checked against the DDF, and only
    // within the MO it handles.
    let (tx, mut tokens) = tokio::sync::mpsc::unbounded_channel();
    let (conn, manager) = durable_handler(&bus.address, tx).await;
    let doc = json!([{"ClientURI": "urn:test:mo:dev:1.0/local/", "MOData": {"local": {"Name": "made here", "Reboot": null}}}]);
    manager.handler_update(&doc.to_string(), &[]).await.unwrap();
    let refused = |e: zbus::Error| e.to_string();
    let bad_type =
        json!([{"ClientURI": "urn:test:mo:dev:1.0/local/Bogus", "MOData": {"Bogus": 1}}]);
    let err = refused(
        manager
            .handler_update(&bad_type.to_string(), &[])
            .await
            .unwrap_err(),
    );
    assert!(
        err.contains("InvalidArgument") && err.contains("no such node"),
        "{err}"
    );
    let devinfo = json!([{"ClientURI": "urn:oma:mo:oma-dm-devinfo:1.2/DevInfo/Man", "MOData": {"Man": "evil"}}]);
    let err = refused(
        manager
            .handler_update(&devinfo.to_string(), &[])
            .await
            .unwrap_err(),
    );
    assert!(
        err.contains("AccessDenied") && err.contains("outside the MOs"),
        "{err}"
    );
    // A peer that handles nothing writes nothing.
    let stranger = zbus::connection::Builder::address(bus.address.as_str())
        .build()
        .await
        .unwrap();
    let err = refused(
        omadm_client::ManagerProxy::new(&stranger)
            .await
            .unwrap()
            .handler_update(&doc.to_string(), &[])
            .await
            .unwrap_err(),
    );
    assert!(err.contains("AccessDenied"), "{err}");
    let addr = bus.address.clone();
    let (_, name, _) = tokio::task::spawn_blocking(move || {
        omadmctl(&addr, &["tree", "get", "urn:test:mo:dev:1.0/local/Name"])
    })
    .await
    .unwrap();
    assert!(name.contains("made here"), "{name}");

    // The server reads what the handler wrote, and EXECs: accepted for later.
    session_now(&bus).await;
    let (token, node) = tokens.recv().await.unwrap();
    assert_eq!(node, "urn:test:mo:dev:1.0/local/Reboot");
    assert!(
        server.of_kind("expect").iter().all(|e| e["ok"] == true),
        "{:#?}",
        server.of_kind("expect")
    );

    // Both go down (a reboot to finish an update): the EXEC waits for the handler's name.
    drop(manager);
    drop(conn);
    daemon.kill9();
    let mut daemon = root.start_on_bus(&bus.address);
    daemon.wait_for("ready", 30);
    let (tx, _tokens) = tokio::sync::mpsc::unbounded_channel();
    let (_conn, manager) = durable_handler(&bus.address, tx).await;
    let pending = manager.pending_execs().await.unwrap();
    assert_eq!(
        pending,
        [(token.clone(), node.clone(), "demo-server".to_owned())]
    );
    manager.exec_result(&token, 200, "").await.unwrap();
    daemon.wait_for("session ended", 30);
    assert_eq!(reported_result_for(&server, &node), 200);
    assert!(manager.pending_execs().await.unwrap().is_empty());
    let (_, log) = daemon.terminate();
    assert!(
        !log.iter().any(|l| l.contains("left before answering")),
        "{log:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_result_that_never_comes_is_reported_as_a_failure_in_the_end() {
    let end = json!({"packages": [{"CMD": [["END"]]}]});
    let (server, bus, _root, mut daemon) = daemon_for(
        json!([
            end,                                                                               // BootstrapComplete
            {"packages": [{"CMD": [["EXEC", "urn:test:mo:dev:1.0/local/Reboot", "{base}/dm/results"]]}, {"expect": [202], "CMD": [["END"]]}]},
            // The result report goes to the ServerURI alone: no session with the SrvURI
            // for it.
            end
        ]),
        "[sessions]\nexec-result-max-secs = 2\n",
    );
    let (tx, mut tokens) = tokio::sync::mpsc::unbounded_channel();
    let (conn, manager) = durable_handler(&bus.address, tx).await;
    let doc = json!([{"ClientURI": "urn:test:mo:dev:1.0/local/", "MOData": {"local": {"Name": "n", "Reboot": null}}}]);
    manager.handler_update(&doc.to_string(), &[]).await.unwrap();
    session_now(&bus).await;
    let (_, node) = tokens.recv().await.unwrap();
    // The handler goes and never comes back: the EXEC waits for its name, then no longer.
    drop(manager);
    drop(conn);
    daemon.wait_for("EXEC result not reported in time", 30);
    daemon.wait_for("session ended", 30);
    assert_eq!(reported_result_for(&server, &node), 500);
    daemon.terminate();
}

/// A handler package installed while the daemon runs brings its MO's DDF; the package's
/// postinst reloads the daemon, which then checks the handler's data against it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_ddf_installed_after_the_start_is_in_force_after_a_reload() {
    let end = json!({"packages": [{"CMD": [["END"]]}]});
    let server = TestServer::start(&json!({ "sessions": [end] }), false);
    let bus = PrivateBus::start();
    let root = Root::new().with_bootstrap_for(&server.base);
    root.write("etc/omadmd/handlers/test.toml", HANDLER_DEF);
    let mut daemon = root.start_on_bus(&bus.address);
    daemon.wait_for("session ended", 30);
    let (tx, _tokens) = tokio::sync::mpsc::unbounded_channel();
    let (_conn, manager) = durable_handler(&bus.address, tx).await;
    let doc = json!([{"ClientURI": "urn:test:mo:dev:1.0/local/", "MOData": {"local": {"Name": "n", "Reboot": null}}}]);
    let err = manager
        .handler_update(&doc.to_string(), &[])
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("no DDF for this MO is installed"), "{err}");

    root.write("etc/omadmd/ddf/dev.xml", DDF);
    let reload = |args: &'static [&'static str]| {
        let addr = bus.address.clone();
        tokio::task::spawn_blocking(move || omadmctl(&addr, args))
    };
    let (code, out, err) = reload(&["--json", "reload"]).await.unwrap();
    assert_eq!(code, 0, "{err}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["mos_added"], json!(["urn:test:mo:dev:1.0"]), "{r}");
    assert_eq!(r["mos_removed"], json!([]), "{r}");
    manager.handler_update(&doc.to_string(), &[]).await.unwrap();

    // Read once: a second reload finds nothing new; a DDF taken away is said, and its
    // data stays.
    let (_, out, _) = reload(&["--json", "reload"]).await.unwrap();
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["mos_added"], json!([]), "{r}");
    std::fs::remove_file(root.path("etc/omadmd/ddf/dev.xml")).unwrap();
    let (_, out, _) = reload(&["reload"]).await.unwrap();
    assert!(
        out.contains("no longer defined (their data stays): urn:test:mo:dev:1.0"),
        "{out}"
    );
    let (code, name, err) = reload(&["--json", "tree", "get", "urn:test:mo:dev:1.0/local/Name"])
        .await
        .unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(name.contains("\"n\""), "{name}");
    daemon.terminate();
}
