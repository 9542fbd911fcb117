//! The D-Bus interfaces where they live: served on one end of an in-process peer-to-peer
//! connection (a socket pair, no bus daemon), called through the client proxies on the
//! other, for their argument checks, error mapping and what they show. Policy, polkit and
//! activation are the integration tests' (tests/it), on a real bus.

use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::mo::Registry;
use crate::mo::bootstrap::{BootstrapLimits, apply_document};
use crate::tree::{OpenMode, SqliteStore};
use omadm_client::{AgentManagerProxy, ManagerProxy, TreeProxy};

struct Peer {
    _dir: tempfile::TempDir,
    _server: zbus::Connection,
    client: zbus::Connection,
}

async fn peer() -> Peer {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("tree.db"), OpenMode::ReadWrite).unwrap();
    let registry = Registry::builtin();
    let doc = json!([{"ClientURI": "urn:oma:mo:oma-dm-dmacc:1.2//", "MOData": {"acc": {
        "SrvID": "dms1", "SrvURI": "https://dms.example/dm?token=T0K3N", "Name": "DMS \u{1b}[31mOne",
        "Perm": {"p": {"MOID": "*"}},
        "Auth": {"Noti": {"Type": 0, "Data": "ZGF0YQ==", "Secret": "c2VjcmV0"}},
        "Ext": {"HttpAuth": {"UserName": "device-7", "Secret": "hunter2"}}}}}]);
    let limits = BootstrapLimits {
        max_file_bytes: 1 << 20,
        max_value_bytes: 4096,
        max_nodes: 1000,
    };
    apply_document(&store, &registry, "t", doc.to_string().as_bytes(), limits).unwrap();
    // A SrvURI with a password, as an account provisioned before bootstrap refused them
    // has (issue 27): reads never show it.
    use crate::tree::Tree as _;
    store
        .apply(&[crate::tree::TreeOp::SetValue {
            key: crate::tree::InstanceKey::new(crate::mo::DMACC, "acc"),
            path: "SrvURI".into(),
            value: crate::tree::Value::Chr("https://user:pw@dms.example/dm?token=T0K3N".into()),
        }])
        .unwrap();
    let prepared = Arc::new(Prepared {
        store,
        registry: crate::state::Current::new(registry),
        handlers: crate::state::Current::new(Default::default()),
        host: crate::host::Host::default(),
        gate: crate::notify::Gate::new(std::time::Duration::ZERO),
        bootstrap_refused: Default::default(),
    });
    let (handle, _requests) = crate::scheduler::channel();
    let shared = Shared {
        prepared,
        scheduler: handle,
        notify_policy: crate::notify::Policy {
            max_age_secs: 600,
            remember_secs: 86_400,
            start_within_secs: 0,
        },
        status: Arc::new(std::sync::Mutex::new(("idle".into(), String::new()))),
        peers: peers::Peers::default(),
        allow_http_show: false,
        configure: super::Configurer::channel().0,
        bootstrap_limits: limits,
        exec_result_max: std::time::Duration::from_secs(3600),
        reloads: tokio::sync::mpsc::unbounded_channel().0,
        fetches: tokio::sync::mpsc::unbounded_channel().0,
        outlook: Default::default(),
        running: Default::default(),
    };
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    let guid = zbus::Guid::generate();
    let server = zbus::connection::Builder::unix_stream(a)
        .server(guid)
        .p2p()
        .serve_at(PATH, Manager::new(shared.clone()))
        .serve_at(PATH, Tree::new(shared.clone()))
        .serve_at(PATH, AgentManager::new(shared))
        .build();
    let client = zbus::connection::Builder::unix_stream(b).p2p().build();
    let (server, client) = tokio::join!(server, client);
    Peer {
        _dir: dir,
        _server: server.unwrap(),
        client: client.unwrap(),
    }
}

/// The D-Bus error name a call failed with.
fn name_of(e: &zbus::Error) -> String {
    crate::dbus::error_name(e).unwrap_or_else(|| format!("not a D-Bus error: {e}"))
}

#[tokio::test]
async fn tree_reads_check_their_argument_and_show_only_what_a_local_user_may_see() {
    let p = peer().await;
    let tree = TreeProxy::new(&p.client).await.unwrap();
    let cases = [
        (
            "not a client uri",
            "org.omadm.Client1.Error.InvalidArgument",
        ),
        ("urn:x:none:1.0/nope/", "org.omadm.Client1.Error.NotFound"),
        // Key material and credentials' neighbours: not there for a local reader.
        (
            "urn:oma:mo:oma-dm-dmacc:1.2/acc/Auth/Noti/Secret",
            "org.omadm.Client1.Error.AccessDenied",
        ),
        (
            "urn:oma:mo:oma-dm-dmacc:1.2/acc/Ext/HttpAuth/UserName",
            "org.omadm.Client1.Error.AccessDenied",
        ),
    ];
    for (uri, want) in cases {
        let e = tree.get(uri).await.unwrap_err();
        assert_eq!(name_of(&e), want, "{uri}");
    }
    let acc = tree.get("urn:oma:mo:oma-dm-dmacc:1.2/acc/").await.unwrap();
    assert!(acc.contains("\"SrvID\":\"dms1\""), "{acc}");
    assert!(acc.contains("https://dms.example/dm"), "{acc}");
    for hidden in [
        "T0K3N", "pw@", "device-7", "hunter2", "c2VjcmV0", "ZGF0YQ", "Perm",
    ] {
        assert!(!acc.contains(hidden), "{hidden} in {acc}");
    }
    let instances = tree.list_instances().await.unwrap();
    assert!(
        instances
            .iter()
            .any(|(moid, miid, _)| moid.ends_with("dmacc:1.2") && miid == "acc")
    );
}

#[tokio::test]
async fn manager_reads_map_errors_and_redact_what_servers_set() {
    let p = peer().await;
    let m = ManagerProxy::new(&p.client).await.unwrap();
    let e = m.account_state("nobody").await.unwrap_err();
    assert_eq!(name_of(&e), "org.omadm.Client1.Error.NotFound");
    let e = m.exec_result("no-such-token", 200, "").await.unwrap_err();
    assert_eq!(name_of(&e), "org.omadm.Client1.Error.NotFound");
    let accounts = m.accounts().await.unwrap();
    assert_eq!(
        accounts,
        [crate::dbus::AccountRow {
            server_id: "dms1".into(),
            name: "DMS [31mOne".into(),
            url: "https://dms.example/dm".into()
        }],
        "URL redacted, control characters gone from the name"
    );
    let state = m.account_state("dms1").await.unwrap();
    assert_eq!(state.url, "https://dms.example/dm");
    assert_eq!(state.owed.as_deref(), Some("BootstrapComplete"));
    assert!(m.history(10).await.unwrap().is_empty());
    assert_eq!(m.state().await.unwrap(), "idle");
}

#[tokio::test]
async fn the_agent_manager_says_what_agents_need_to_know() {
    let p = peer().await;
    let a = AgentManagerProxy::new(&p.client).await.unwrap();
    assert_eq!(a.agent_count().await.unwrap(), 0);
    assert!(!a.allow_http_show().await.unwrap());
}
