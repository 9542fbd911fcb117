//! Authorization through a real polkitd on the private bus. polkitd reads its actions and
//! rules from fixed system directories, so it runs in a mount namespace where those are
//! bind-mounted from the test's own: the shipped policy file and a rule written here. That
//! needs root (as CI runs); elsewhere the tests say they were skipped.

use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{PrivateBus, Reaped, Root, TestServer, tool};

const POLKITD: &str = "/usr/lib/polkit-1/polkitd";
pub const NOBODY: u32 = 65534;

/// polkitd on a bus, with our actions and the given rules; killed when dropped.
pub struct Polkitd(Child);

impl Polkitd {
    pub fn start(bus: &str, dir: &Path, rules: &str) -> Polkitd {
        let actions = dir.join("actions");
        let rules_dir = dir.join("rules.d");
        for d in [dir, &actions, &rules_dir] {
            std::fs::create_dir_all(d).unwrap();
            // polkitd may read them as its own user.
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("dbus/org.omadm.Client1.policy"),
            actions.join("org.omadm.Client1.policy"),
        )
        .unwrap();
        std::fs::write(rules_dir.join("50-test.rules"), rules).unwrap();
        let script = format!(
            "mount --bind {} /usr/share/polkit-1/actions && mount --bind {} /etc/polkit-1/rules.d && exec {POLKITD} --no-debug",
            actions.display(),
            rules_dir.display()
        );
        let child = Command::new("unshare")
            .args(["-m", "sh", "-c", &script])
            .env("DBUS_SYSTEM_BUS_ADDRESS", bus)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let p = Polkitd(child);
        // It is up when it answers for an action of ours.
        let deadline = Instant::now() + Duration::from_secs(20);
        while !Command::new("pkcheck")
            .args([
                "--action-id",
                "org.omadm.Client1.start-session",
                "--process",
            ])
            .arg(std::process::id().to_string())
            .env("DBUS_SYSTEM_BUS_ADDRESS", bus)
            .output()
            .unwrap()
            .status
            .success()
        {
            assert!(Instant::now() < deadline, "polkitd did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
        p
    }
}

impl Drop for Polkitd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn as_nobody(bus: &str, args: &[&str]) -> Output {
    Command::new(tool("omadmctl"))
        .args(args)
        .env("DBUS_SYSTEM_BUS_ADDRESS", bus)
        .uid(NOBODY)
        .gid(NOBODY)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn can_run() -> bool {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipped: polkitd in a mount namespace needs root");
        return false;
    }
    assert!(
        Path::new(POLKITD).exists(),
        "{POLKITD} is missing (scripts/setup.sh installs polkitd)"
    );
    true
}

#[test]
fn polkit_decides_for_other_users_action_by_action() {
    if !can_run() {
        return;
    }
    let end = json!({"packages": [{"CMD": [["END"]]}]});
    let server = TestServer::start(&json!({"sessions": [end.clone(), end]}), false);
    let bus = PrivateBus::start();
    let dir = tempfile::tempdir().unwrap();
    // The administrator lets `nobody` start sessions, and nothing else.
    let _polkit = Polkitd::start(
        &bus.address,
        dir.path(),
        r#"polkit.addRule(function(action, subject) {
    if (action.id == "org.omadm.Client1.start-session" && subject.user == "nobody")
        return polkit.Result.YES;
});"#,
    );
    let root = Root::new().with_bootstrap_for(&server.base);
    let mut d = root.start_on_bus(&bus.address);
    d.wait_for("session ended", 30);

    let start = as_nobody(&bus.address, &["session", "start", "--wait"]);
    assert!(start.status.success(), "{}", stderr(&start));
    assert_eq!(server.of_kind("package1").len(), 2, "the session ran");

    // Alerts need an administrator's password (auth_admin): refused, and why.
    let alert = as_nobody(
        &bus.address,
        &[
            "alert",
            "send",
            "--server",
            "demo-server",
            "--type",
            "urn:x:t",
        ],
    );
    assert_eq!(alert.status.code(), Some(4), "{}", stderr(&alert));
    assert!(
        stderr(&alert).contains("needs authentication as an administrator")
            && stderr(&alert).contains("org.omadm.Client1.queue-alert"),
        "{}",
        stderr(&alert)
    );
    // So does fetching configuration from a DEFAULT: it makes the device contact a server.
    let configure = as_nobody(&bus.address, &["tree", "configure", "urn:x:vpn:1.0"]);
    assert_eq!(configure.status.code(), Some(4), "{}", stderr(&configure));
    assert!(
        stderr(&configure).contains("org.omadm.Client1.request-configuration"),
        "{}",
        stderr(&configure)
    );
    // Accounts and reloads have actions of their own.
    for (args, action) in [
        (
            &["account", "remove", "demo-server"][..],
            "org.omadm.Client1.manage-accounts",
        ),
        (&["reload"][..], "org.omadm.Client1.reload"),
    ] {
        let refused = as_nobody(&bus.address, args);
        assert_eq!(refused.status.code(), Some(4), "{}", stderr(&refused));
        assert!(
            stderr(&refused).contains(&format!(
                "needs authentication as an administrator ({action})"
            )),
            "{}",
            stderr(&refused)
        );
    }
    // An agent needs an active local session, which `nobody` here has not.
    let agent = as_nobody(&bus.address, &["agent"]);
    assert_eq!(agent.status.code(), Some(4), "{}", stderr(&agent));
    assert!(
        stderr(&agent).contains("polkit does not allow uid 65534 registering a SHOW agent"),
        "{}",
        stderr(&agent)
    );
    let refusals = d.wait_for("action=\"org.omadm.Client1.register-agent\"", 10);
    assert!(refusals.contains("D-Bus caller refused"), "{refusals}");
    d.terminate();
}

#[test]
fn without_polkit_only_root_may_change_things_and_agents_may_register() {
    if !can_run() {
        return;
    }
    let bus = PrivateBus::start();
    let root = Root::new().with_demo_bootstrap();
    let mut d = root.start_on_bus(&bus.address);
    d.wait_for("ready", 30);
    let start = as_nobody(&bus.address, &["session", "start"]);
    assert_eq!(start.status.code(), Some(4));
    assert!(
        stderr(&start).contains("starting a session needs root: polkit is not running"),
        "{}",
        stderr(&start)
    );
    // A terminal agent registers and is told it is in place.
    let agent = Reaped(
        Command::new(tool("omadmctl"))
            .arg("agent")
            .env("DBUS_SYSTEM_BUS_ADDRESS", &bus.address)
            .uid(NOBODY)
            .gid(NOBODY)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let line = d.wait_for("SHOW agent registered", 10);
    assert!(line.contains("uid=65534"), "{line}");
    drop(agent);
    d.terminate();
}
