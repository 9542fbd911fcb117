//! `Manager.FetchPackage`: the daemon fetches an EXEC's package for the handler that
//! accepted it, under its HTTP rules for the EXEC's server, and hands over a read-only
//! descriptor; anyone else, any other URL the rules refuse, and a package over the bound get
//! a D-Bus error naming why.

use std::io::{Read as _, Write as _};

use omadm_client::{Error, FetchFailure};
use serde_json::json;

use crate::common::{PrivateBus, Root, TestServer, omadmctl};
use crate::exec::{later_handler, with_test_mo};

const PACKAGE: &str = "a package of 27 bytes here.";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_the_accepting_handler_gets_a_package_and_only_under_the_servers_rules() {
    let end = json!({"packages": [{"CMD": [["END"]]}]});
    let script = json!({
        "sessions": [
            end,
            {"packages": [{"CMD": [["EXEC", "urn:test:mo:dev:1.0/d1/Reboot", "{base}/dm/results"]]}, {"expect": [202], "CMD": [["END"]]}]},
            end
        ],
        "repository": {
            "/repo/pkg": {"content_type": "application/octet-stream", "body": PACKAGE},
            "/repo/denied": {"http_status": 403}
        }
    });
    let server = TestServer::start(&script, false);
    let bus = PrivateBus::start();
    let root = Root::new().with_bootstrap_for(&server.base);
    with_test_mo(&root);
    let mut d = root.start_on_bus(&bus.address);
    d.wait_for("session ended", 30);

    let (_conn, manager, mut tokens) = later_handler(&bus.address).await;
    let addr = bus.address.clone();
    let (code, out, err) =
        tokio::task::spawn_blocking(move || omadmctl(&addr, &["session", "start", "--wait"]))
            .await
            .unwrap();
    assert_eq!(code, 0, "{out}{err}");
    let (token, _) = tokens.recv().await.unwrap();
    let base = &server.base;
    let url = format!("{base}/repo/pkg");

    // The package: its bytes from the start, through a descriptor that cannot write them.
    let (fd, size) = manager.fetch_package(&token, &url, 1 << 20).await.unwrap();
    assert_eq!(size, PACKAGE.len() as u64);
    let mut file = std::fs::File::from(std::os::fd::OwnedFd::from(fd));
    let mut got = String::new();
    file.read_to_string(&mut got).unwrap();
    assert_eq!(got, PACKAGE);
    assert!(file.write_all(b"changed").is_err(), "read-only");
    // The daemon keeps no file of it: the state directory holds what it held before.
    let names: Vec<String> = std::fs::read_dir(root.path("var/lib/omadmd"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("tree.db"))
        .collect();
    assert!(names.is_empty(), "{names:?}");

    // Why each other fetch fails, by its error's name.
    let failure = |r: zbus::Result<(zbus::OwnedFd, u64)>| {
        let e = Error::from(r.expect_err("refused"));
        (
            FetchFailure::from(&e),
            zbus::DBusError::name(&e).to_string(),
        )
    };
    let other_loopback = url.replacen("127.0.0.1", "127.0.0.2", 1);
    let table = [
        (url.clone(), 8, "TooLarge"),
        (format!("{base}/repo/missing"), 1 << 20, "BadUrl"),
        (format!("{base}/repo/denied"), 1 << 20, "DownloadAuth"),
        // Another loopback host than the server's: where a server's URL may not lead.
        (other_loopback, 1 << 20, "BadUrl"),
        ("file:///etc/passwd".to_owned(), 1 << 20, "BadUrl"),
        (String::new(), 1 << 20, "BadUrl"),
    ];
    for (url, max, name) in table {
        let (_, got) = failure(manager.fetch_package(&token, &url, max).await);
        assert_eq!(got, format!("org.omadm.Client1.Error.{name}"), "{url}");
    }
    // Nobody else fetches for the EXEC, and no EXEC means no fetch.
    let stranger = zbus::connection::Builder::address(bus.address.as_str())
        .build()
        .await
        .unwrap();
    let other = omadm_client::ManagerProxy::new(&stranger).await.unwrap();
    let (why, name) = failure(other.fetch_package(&token, &url, 1 << 20).await);
    assert_eq!(name, "org.omadm.Client1.Error.AccessDenied");
    assert_eq!(why, FetchFailure::Setup);
    let (_, name) = failure(manager.fetch_package("0000", &url, 1 << 20).await);
    assert_eq!(name, "org.omadm.Client1.Error.NotFound");
    manager.exec_result(&token, 200, "").await.unwrap();
    let (_, name) = failure(manager.fetch_package(&token, &url, 1 << 20).await);
    assert_eq!(
        name, "org.omadm.Client1.Error.NotFound",
        "answered: no more fetches"
    );

    // The daemon logged each, with the URL and the server.
    d.wait_for("package fetched for a handler", 10);
    d.wait_for("package download for a handler failed", 10);
    d.terminate();
    let fetched: Vec<_> = server
        .of_kind("repo-get")
        .into_iter()
        .filter(|e| e["path"] == "/repo/pkg")
        .collect();
    assert!(!fetched.is_empty(), "{:#?}", server.events());
}
