//! SCOMO's inventory from the real PackageKit: packagekitd (apt backend) runs on the
//! private bus, with the real polkitd beside it, and reads this machine's packages;
//! omadm-packagekit keeps `Inventory/Deployed` in step, including after another program
//! installs and removes a package built here.

use std::path::Path;
use std::process::Command;

use serde_json::json;

use crate::common::{Daemon, PrivateBus, Root, TestServer, wait_until};

const PACKAGEKITD: &str = "/usr/libexec/packagekitd";
const POLKITD: &str = "/usr/lib/polkit-1/polkitd";
const SCOMO_DDF: &str = include_str!("../../data/ddf/scomo/oma-scomo-1.0.ddf.xml");
const DEPLOYED: &str = "urn:oma:mo:oma-scomo:1.0/SCOMO/Inventory/Deployed";

fn can_run() -> bool {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipped: packagekitd installs packages and needs root (and a mount namespace)");
        return false;
    }
    assert!(
        Path::new(PACKAGEKITD).exists() && Path::new(POLKITD).exists(),
        "packagekit and polkitd are not installed (scripts/setup.sh installs them)"
    );
    true
}

fn owned(bus: &str, name: &str) -> bool {
    Command::new("busctl")
        .args([&format!("--address={bus}"), "list", "--acquired"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(name))
}

/// packagekitd ignores `DBUS_SYSTEM_BUS_ADDRESS` (it clears its environment), so it runs in
/// a mount namespace where the private bus is at the system bus's path.
fn packagekitd(bus: &str) -> Daemon {
    let socket = bus
        .strip_prefix("unix:path=")
        .and_then(|s| s.split(',').next())
        .unwrap_or_else(|| panic!("not a path bus address: {bus}"));
    let script = format!(
        "mount -t tmpfs tmpfs /run/dbus && touch /run/dbus/system_bus_socket && \
         mount --bind {socket} /run/dbus/system_bus_socket && exec {PACKAGEKITD} --verbose"
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "sh", "-c", &script]);
    let d = Daemon::spawn_cmd(cmd);
    wait_until("packagekitd on the bus", 30, || {
        owned(bus, "org.freedesktop.PackageKit")
    });
    d
}

fn polkitd(bus: &str) -> Daemon {
    let mut cmd = Command::new(POLKITD);
    cmd.arg("--no-debug").env("DBUS_SYSTEM_BUS_ADDRESS", bus);
    let d = Daemon::spawn_cmd(cmd);
    wait_until("polkitd on the bus", 30, || {
        owned(bus, "org.freedesktop.PolicyKit1")
    });
    d
}

/// The names listed under Inventory/Deployed, and one package's version.
fn deployed(bus: &str) -> serde_json::Map<String, serde_json::Value> {
    let (code, out, err) = crate::common::omadmctl(bus, &["tree", "get", DEPLOYED]);
    assert_eq!(code, 0, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    doc[0]["MOData"]["Deployed"]
        .as_object()
        .cloned()
        .unwrap_or_default()
}

/// A tiny package built here, installed and removed through PackageKit by "another
/// program" (pkcon).
fn build_deb(dir: &Path) -> std::path::PathBuf {
    let root = dir.join("pkg");
    std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
    std::fs::create_dir_all(root.join("usr/share/doc/omadm-scomo-test")).unwrap();
    std::fs::write(
        root.join("DEBIAN/control"),
        "Package: omadm-scomo-test\nVersion: 1.2.3\nArchitecture: all\n\
         Maintainer: omadmd tests <omadmd@lists.example.org>\n\
         Description: a package omadmd's SCOMO test installs and removes\n",
    )
    .unwrap();
    std::fs::write(root.join("usr/share/doc/omadm-scomo-test/README"), "test\n").unwrap();
    let deb = dir.join("omadm-scomo-test_1.2.3_all.deb");
    let out = Command::new("dpkg-deb")
        .args(["--root-owner-group", "--build"])
        .arg(&root)
        .arg(&deb)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    deb
}

fn pkcon(bus: &str, args: &[&str]) {
    let out = Command::new("pkcon")
        .args(["--noninteractive"])
        .args(args)
        .env("DBUS_SYSTEM_BUS_ADDRESS", bus)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pkcon {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_inventory_is_what_packagekit_says_is_installed() {
    if !can_run() {
        return;
    }
    // Left over from an interrupted run.
    let _ = Command::new("dpkg")
        .args(["--purge", "omadm-scomo-test"])
        .output();
    // The server: nothing in the BootstrapComplete session; then it removes the package
    // another program installed, through SCOMO, and hears the outcome.
    let end = json!({"packages": [{"CMD": [["END"]]}]});
    let remove = format!("{DEPLOYED}/omadm-scomo-test/Operations/Remove");
    let server = TestServer::start(
        &json!({"sessions": [
            end,
            {"packages": [{"CMD": [["EXEC", remove, "{base}/dm/scomo"]]}, {"expect": [202], "CMD": [["END"]]}]},
            end.clone(), end.clone(), end
        ]}),
        false,
    );
    let bus = PrivateBus::start();
    let _polkitd = polkitd(&bus.address);
    let _packagekitd = packagekitd(&bus.address);
    let root = Root::new().with_bootstrap_for(&server.base);
    root.write("etc/omadmd/ddf/oma-scomo-1.0.ddf.xml", SCOMO_DDF);
    let mut daemon = root.start_on_bus(&bus.address);
    daemon.wait_for("session ended", 30);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_omadm-packagekit"));
    cmd.env("DBUS_SYSTEM_BUS_ADDRESS", &bus.address)
        .env_remove("JOURNAL_STREAM");
    let mut handler = Daemon::spawn_cmd(cmd);
    handler.wait_for("registered with omadmd as the SCOMO handler", 120);

    // Every installed package, one node each, with what dpkg says of it.
    let list = deployed(&bus.address);
    let dpkg = Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}", "dpkg"])
        .output()
        .unwrap();
    assert_eq!(
        list["dpkg"]["Version"],
        String::from_utf8_lossy(&dpkg.stdout).as_ref(),
        "{:?}",
        list.get("dpkg")
    );
    assert_eq!(list["dpkg"]["ID"], "dpkg");
    assert_eq!(list["dpkg"]["State"], 20);
    assert!(list.len() > 100, "{} packages", list.len());
    assert!(!list.contains_key("omadm-scomo-test"));

    // Another program installs a package through PackageKit: the inventory follows.
    let scratch = tempfile::tempdir().unwrap();
    let deb = build_deb(scratch.path());
    pkcon(&bus.address, &["install-local", deb.to_str().unwrap()]);
    wait_until("the new package in the inventory", 60, || {
        deployed(&bus.address).contains_key("omadm-scomo-test")
    });
    assert_eq!(
        deployed(&bus.address)["omadm-scomo-test"]["Version"],
        "1.2.3"
    );
    // The server removes it: 202, the package goes (dpkg agrees), and the
    // OperationComplete alert says 1200 for that component.
    let (code, out, err) = crate::common::omadmctl(&bus.address, &["session", "start", "--wait"]);
    assert_eq!(code, 0, "{out}{err}");
    let alerts = || {
        server
            .of_kind("package1")
            .iter()
            .flat_map(|p| p["body"]["Alert"].as_array().cloned().unwrap_or_default())
            .filter(|a| a["AlertType"] == "urn:oma:at:scomo:1.0:OperationComplete")
            .collect::<Vec<_>>()
    };
    wait_until("the removal's result alert", 120, || !alerts().is_empty());
    let alert = &alerts()[0];
    assert_eq!(alert["SourceURI"], remove.as_str());
    assert_eq!(alert["TargetURI"], format!("{DEPLOYED}/omadm-scomo-test"));
    assert_eq!(alert["Data"]["ResultCode"], 1200, "{alert}");
    assert_eq!(alert["Data"]["Identifier"], "omadm-scomo-test");
    assert!(!deployed(&bus.address).contains_key("omadm-scomo-test"));
    let status = Command::new("dpkg-query")
        .args(["-W", "-f", "${Status}", "omadm-scomo-test"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&status.stdout).contains("install ok installed"),
        "still installed"
    );
    assert!(
        server.of_kind("expect").iter().all(|e| e["ok"] == true),
        "{:#?}\n{}",
        server.of_kind("expect"),
        handler.log_so_far()
    );
    daemon.terminate();
}
