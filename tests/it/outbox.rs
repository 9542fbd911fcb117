//! The bound on what a server may leave queued on the device (issue 27): EXEC results count
//! against the server's quota in number and bytes, go to a few distinct ServerURIs at
//! most, and those waiting for one ServerURI go in one session.

use serde_json::json;
use zbus::interface;

use crate::common::{Daemon, PrivateBus, TestServer};
use crate::exec::{daemon_for, session_now};

/// A handler that carries out every EXEC at once, successfully.
struct Handler;

#[interface(name = "org.omadm.Client1.ExecHandler")]
impl Handler {
    fn exec(&self, _token: String, _client_uri: String, _server_id: String) -> (u32, String) {
        (200, String::new())
    }
}

/// Registers [`Handler`] for the test MO, makes the instance the EXECs name, runs the
/// session the server's EXECs come in, and waits for the `reports` sessions that deliver
/// the results.
async fn exec_session(bus: &PrivateBus, daemon: &mut Daemon, reports: usize) -> zbus::Connection {
    let conn = zbus::connection::Builder::address(bus.address.as_str())
        .serve_at("/test/handler", Handler)
        .build()
        .await
        .unwrap();
    let manager = omadm_client::ManagerProxy::new(&conn).await.unwrap();
    manager
        .register_exec_handler(
            "urn:test:mo:dev:1.0",
            &zbus::ObjectPath::try_from("/test/handler").unwrap(),
        )
        .await
        .unwrap();
    let doc = json!([{"ClientURI": "urn:test:mo:dev:1.0/local/", "MOData": {"local": {"Name": "n", "Reboot": null}}}]);
    manager.handler_update(&doc.to_string(), &[]).await.unwrap();
    session_now(bus).await;
    for _ in 0..=reports {
        daemon.wait_for("session ended", 30);
    }
    conn
}

/// A session whose Package#2 EXECs the test node once per ServerURI path in `paths`,
/// expecting `expect`.
fn execs(paths: &[&str], expect: &[u16]) -> serde_json::Value {
    let cmds: Vec<_> = paths
        .iter()
        .map(|p| {
            json!([
                "EXEC",
                "urn:test:mo:dev:1.0/local/Reboot",
                format!("{{base}}{p}")
            ])
        })
        .collect();
    json!({"packages": [{"CMD": cmds}, {"expect": expect, "CMD": [["END"]]}]})
}

/// Package#1s the server received, by path, with how many alerts past the session's own
/// each carried.
fn results(server: &TestServer) -> Vec<(String, usize)> {
    server
        .of_kind("package1")
        .iter()
        .filter(|p| p["path"] != "/dm")
        .map(|p| {
            let alerts = p["body"]["Alert"].as_array().map_or(0, Vec::len);
            (
                p["path"].as_str().unwrap_or_default().to_owned(),
                alerts - 1,
            )
        })
        .collect()
}

fn expectations_held(server: &TestServer) {
    let expect = server.of_kind("expect");
    assert!(
        !expect.is_empty() && expect.iter().all(|e| e["ok"] == true),
        "{expect:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exec_results_over_the_servers_alert_quota_are_refused_with_506() {
    let end = json!({"packages": [{"CMD": [["END"]]}]});
    let (server, bus, _root, mut daemon) = daemon_for(
        json!([
            end,
            execs(
                &["/dm/r/a", "/dm/r/a", "/dm/r/b", "/dm/r/c"],
                &[202, 202, 202, 506]
            ),
            end,
            end,
            end
        ]),
        "[limits]\nmax-server-alerts = 3\n",
    );
    let _handler = exec_session(&bus, &mut daemon, 2).await;
    let (_, log) = daemon.terminate();
    expectations_held(&server);
    // The two results for /r/a went in one session; nothing was queued for /r/c.
    assert_eq!(
        results(&server),
        [("/dm/r/a".to_owned(), 2), ("/dm/r/b".to_owned(), 1)],
        "{log:#?}"
    );
    assert!(
        log.iter()
            .any(|l| l.contains("its result would not fit in the server's queue")),
        "{log:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exec_results_go_to_at_most_four_server_uris() {
    let end = json!({"packages": [{"CMD": [["END"]]}]});
    let (server, bus, _root, mut daemon) = daemon_for(
        json!([
            end,
            execs(
                &[
                    "/dm/r/a", "/dm/r/b", "/dm/r/c", "/dm/r/d", "/dm/r/e", "/dm/r/a"
                ],
                &[202, 202, 202, 202, 503, 202]
            ),
            end,
            end,
            end,
            end,
            end
        ]),
        "",
    );
    let _handler = exec_session(&bus, &mut daemon, 4).await;
    let (_, log) = daemon.terminate();
    expectations_held(&server);
    let mut got = results(&server);
    got.sort();
    let want: Vec<_> = [
        ("/dm/r/a", 2),
        ("/dm/r/b", 1),
        ("/dm/r/c", 1),
        ("/dm/r/d", 1),
    ]
    .map(|(p, n)| (p.to_owned(), n))
    .into();
    assert_eq!(got, want, "{log:#?}");
    assert!(
        log.iter()
            .any(|l| l.contains("as many ServerURIs as allowed")),
        "{log:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queued_results_count_against_the_servers_bytes() {
    let end = json!({"packages": [{"CMD": [["END"]]}]});
    let long = format!("/dm/r/{}", "x".repeat(500));
    let (server, bus, _root, mut daemon) = daemon_for(
        json!([end, execs(&[&long, &long], &[202, 506]), end, end]),
        "[limits]\nmax-server-bytes = 1024\n",
    );
    let _handler = exec_session(&bus, &mut daemon, 1).await;
    let (_, log) = daemon.terminate();
    expectations_held(&server);
    assert_eq!(results(&server), [(long, 1)], "{log:#?}");
}
