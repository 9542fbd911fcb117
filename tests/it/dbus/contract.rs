//! `omadm-client`'s proxies against the daemon: every method and property of Manager, Tree
//! and AgentManager called through them, each answered by the daemon (a value, or one of
//! the API's own errors), never refused for its name or arguments, nor with a reply the
//! proxy cannot read. With `live_introspection_matches_the_published_contract`, the
//! proxies, the daemon and `dbus/org.omadm.Client1.xml` say the same.

use std::collections::BTreeSet;

use omadm_client::{AgentManagerProxy, ManagerProxy, TreeProxy};

use crate::common::{PrivateBus, Root};

/// What a call through a proxy gave: "ok", or the D-Bus error's name; a failure that is no
/// D-Bus error (the reply did not fit the proxy's types) panics with what it was.
fn answered<T>(member: &str, r: zbus::Result<T>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => omadm_client::error_name(&e)
            .unwrap_or_else(|| panic!("{member}: not a D-Bus error, the proxy's types: {e}")),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_proxy_member_is_answered_by_the_daemon() {
    let bus = PrivateBus::start();
    let root = Root::new().with_demo_bootstrap();
    let mut d = root.start_on_bus(&bus.address);
    d.wait_for("ready", 30);
    let conn = zbus::connection::Builder::address(bus.address.as_str())
        .build()
        .await
        .unwrap();
    let m = ManagerProxy::new(&conn).await.unwrap();
    let t = TreeProxy::new(&conn).await.unwrap();
    let a = AgentManagerProxy::new(&conn).await.unwrap();
    let path = zbus::ObjectPath::try_from("/test/contract").unwrap();
    let devid = "urn:oma:mo:oma-dm-devinfo:1.2//DevID";
    let calls = [
        ("Manager.Accounts", answered("", m.accounts().await)),
        (
            "Manager.AccountState",
            answered("", m.account_state("demo-server").await),
        ),
        ("Manager.History", answered("", m.history(5).await)),
        (
            "Manager.StartSession",
            answered("", m.start_session("nobody").await),
        ),
        (
            "Manager.CancelSession",
            answered("", m.cancel_session("nobody").await),
        ),
        (
            "Manager.AddAccount",
            answered("", m.add_account("x.json", b"[]", true, false).await),
        ),
        (
            "Manager.RemoveAccount",
            answered("", m.remove_account("nobody").await),
        ),
        ("Manager.Reload", answered("", m.reload().await)),
        (
            "Manager.QueueAlert",
            answered("", m.queue_alert("nobody", "{}").await),
        ),
        (
            "Manager.InjectNotification",
            answered("", m.inject_notification(b"").await),
        ),
        (
            "Manager.RegisterExecHandler",
            answered("", m.register_exec_handler("nothing", &path).await),
        ),
        (
            "Manager.UnregisterExecHandler",
            answered("", m.unregister_exec_handler("nothing").await),
        ),
        (
            "Manager.RegisterExecHandlerAs",
            answered(
                "",
                m.register_exec_handler_as("nothing", &path, "org.example.X")
                    .await,
            ),
        ),
        (
            "Manager.PendingExecs",
            answered("", m.pending_execs().await),
        ),
        (
            "Manager.HandlerUpdate",
            answered("", m.handler_update("", &[]).await),
        ),
        (
            "Manager.ExecResult",
            answered("", m.exec_result("0", 200, "").await),
        ),
        (
            "Manager.FetchPackage",
            answered("", m.fetch_package("0", "https://x/", 1).await),
        ),
        ("Manager.Version", answered("", m.version().await)),
        ("Manager.State", answered("", m.state().await)),
        (
            "Manager.ActiveServer",
            answered("", m.active_server().await),
        ),
        (
            "Manager.BootstrapRefused",
            answered("", m.bootstrap_refused().await),
        ),
        ("Tree.ListInstances", answered("", t.list_instances().await)),
        ("Tree.Get", answered("", t.get(devid).await)),
        (
            "Tree.RequestConfiguration",
            answered("", t.request_configuration("urn:x:none:1.0").await),
        ),
        (
            "AgentManager.RegisterAgent",
            answered("", a.register_agent(&path).await),
        ),
        (
            "AgentManager.AgentCount",
            answered("", a.agent_count().await),
        ),
        (
            "AgentManager.AllowHttpShow",
            answered("", a.allow_http_show().await),
        ),
        (
            "AgentManager.UnregisterAgent",
            answered("", a.unregister_agent().await),
        ),
    ];
    for (member, got) in &calls {
        assert!(
            got == "ok" || got.starts_with("org.omadm.Client1.Error."),
            "{member}: {got}"
        );
    }
    // Reads answer with values the proxy reads.
    for member in [
        "Manager.Accounts",
        "Manager.AccountState",
        "Manager.History",
        "Manager.Reload",
        "Manager.PendingExecs",
        "Manager.Version",
        "Tree.ListInstances",
        "Tree.Get",
        "AgentManager.RegisterAgent",
        "AgentManager.AgentCount",
    ] {
        let got = &calls.iter().find(|(m, _)| *m == member).unwrap().1;
        assert_eq!(got, "ok", "{member}");
    }
    // Every method and property of the published contract was called.
    let published = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dbus/org.omadm.Client1.xml"),
    )
    .unwrap();
    let members: BTreeSet<String> = super::api(&published)
        .iter()
        .filter(|l| !l.contains(" signal "))
        .map(|l| {
            let mut w = l.split(' ');
            let iface = w.next().unwrap().trim_start_matches("org.omadm.Client1.");
            let _kind = w.next();
            format!("{iface}.{}", w.next().unwrap())
        })
        .collect();
    let called: BTreeSet<String> = calls.iter().map(|(m, _)| (*m).to_owned()).collect();
    assert_eq!(
        called, members,
        "members the test does not call, or calls that are not in the contract"
    );
    d.terminate();
}
