//! SCOMO through the real PackageKit: packagekitd (apt backend) runs on the private bus,
//! with the real polkitd beside it, and reads this machine's packages; omadm-packagekit
//! keeps `Inventory/Deployed` in step, including after another program installs and removes
//! a package built here, and a server installs packages built here (and fails to install a
//! corrupted one and one that is not there) and removes them, through the TS's node names,
//! with the outcomes reported as OperationComplete alerts, also across a handler killed
//! mid-install.

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
fn build_deb(dir: &Path, version: &str) -> std::path::PathBuf {
    let root = dir.join(format!("pkg-{version}"));
    std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
    std::fs::create_dir_all(root.join("usr/share/doc/omadm-scomo-test")).unwrap();
    std::fs::write(
        root.join("DEBIAN/control"),
        format!(
            "Package: omadm-scomo-test\nVersion: {version}\nArchitecture: all\n\
         Maintainer: omadmd tests <omadmd@lists.example.org>\n\
         Description: a package omadmd's SCOMO test installs and removes\n"
        ),
    )
    .unwrap();
    std::fs::write(root.join("usr/share/doc/omadm-scomo-test/README"), "test\n").unwrap();
    let deb = dir.join(format!("omadm-scomo-test_{version}_all.deb"));
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

const DOWNLOAD: &str = "urn:oma:mo:oma-scomo:1.0/SCOMO/Download";

/// The handler, its packages kept in `state`; under `strace` when `wrap` says how.
fn start_handler(bus: &str, state: &Path, wrap: &[&str]) -> Daemon {
    let exe = crate::common::tool("omadm-packagekit");
    let mut cmd = match wrap.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    cmd.arg("--state-dir")
        .arg(state)
        .arg("-v")
        .env("DBUS_SYSTEM_BUS_ADDRESS", bus)
        .env_remove("JOURNAL_STREAM");
    Daemon::spawn_cmd(cmd)
}

/// The OperationComplete alerts the server received: (SourceURI, TargetURI, ResultCode,
/// Identifier), sorted.
fn scomo_alerts(server: &TestServer) -> Vec<(String, String, i64, String)> {
    let mut all: Vec<_> = server
        .of_kind("package1")
        .iter()
        .flat_map(|p| p["body"]["Alert"].as_array().cloned().unwrap_or_default())
        .filter(|a| a["AlertType"] == "urn:oma:at:scomo:1.0:OperationComplete")
        .map(|a| {
            (
                a["SourceURI"].as_str().unwrap_or_default().to_owned(),
                a["TargetURI"].as_str().unwrap_or_default().to_owned(),
                a["Data"]["ResultCode"].as_i64().unwrap_or_default(),
                a["Data"]["Identifier"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    all.sort();
    all
}

/// A Download entry as a server adds it: its ID, name and URL; the device adds Status and
/// Operations.
fn entry(x: &str, url: &str) -> serde_json::Value {
    let mut data = json!({"PkgID": format!("pkg-{x}"), "Name": "omadm-scomo-test", "PkgURL": url});
    if x == "p1" {
        // An operation the device does not carry out, added by the server.
        data["Operations"] = json!({"DownloadInstallInactive": {}});
    }
    // A string body, so that the server puts its address for `{base}`.
    let body = json!([{"ClientURI": format!("{DOWNLOAD}/{x}"), "MOData": {x: data}}]);
    json!({"content_type": "application/dmmo+json", "body": body.to_string()})
}

fn installed_version() -> Option<String> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f", "${Status} ${Version}", "omadm-scomo-test"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.strip_prefix("install ok installed ")
        .map(str::to_owned)
}

#[test]
fn a_server_manages_software_through_packagekit() {
    if !can_run() {
        return;
    }
    // Left over from an interrupted run.
    let _ = Command::new("dpkg")
        .args(["--purge", "omadm-scomo-test"])
        .output();
    let scratch = tempfile::tempdir().unwrap();
    let deb = build_deb(scratch.path(), "1.2.3");
    let newer = build_deb(scratch.path(), "1.2.4");
    let corrupt = scratch.path().join("corrupt.deb");
    let bytes = std::fs::read(&deb).unwrap();
    std::fs::write(&corrupt, &bytes[..bytes.len() / 3]).unwrap();
    // Whole, with its control part intact, but the payload damaged: PackageKit reads it
    // as a package, and only the whole archive shows it is not one (1407, not 1405).
    let damaged = scratch.path().join("damaged.deb");
    let mut broken = bytes.clone();
    let end = broken.len();
    for b in &mut broken[end - 40..end - 16] {
        *b ^= 0x5a;
    }
    std::fs::write(&damaged, &broken).unwrap();
    let exec = |x: &str, op: &str| {
        json!([
            "EXEC",
            format!("{DOWNLOAD}/{x}/Operations/{op}"),
            "{base}/dm/scomo"
        ])
    };
    let hget = |x: &str| {
        json!([
            "HGET",
            format!("{{base}}/repo/{x}"),
            format!("{DOWNLOAD}/{x}")
        ])
    };
    let end = json!({"packages": [{"CMD": [["END"]]}]});
    let remove = format!("{DEPLOYED}/omadm-scomo-test/Operations/Remove");
    let server = TestServer::start(
        &json!({
        // Results go to /dm/scomo, in as many sessions as it takes: the sessions below are
        // played by the test's own (to /dm) only.
        "played_at": "/dm",
        "sessions": [
            // BootstrapComplete.
            end.clone(),
            // The package another program installed: removed.
            {"packages": [{"CMD": [["EXEC", remove, "{base}/dm/scomo"]]}, {"expect": [202], "CMD": [["END"]]}]},
            // Three Download entries: a good package, a corrupted one, a URL with nothing
            // at it; each installed. DownloadInstallInactive is not carried out (its 1411
            // comes as an alert too).
            {"packages": [
                {"CMD": [hget("p1"), hget("bad"), hget("gone"), hget("damaged"),
                         exec("p1", "DownloadInstall"), exec("bad", "DownloadInstall"),
                         exec("gone", "DownloadInstall"), exec("damaged", "DownloadInstall"),
                         exec("p1", "DownloadInstallInactive")]},
                {"expect": [200, 200, 200, 200, 202, 202, 202, 202, 202], "CMD": [["END"]]}
            ]},
            // A newer version, whose install the handler does not live to report.
            {"packages": [
                {"CMD": [hget("p2"), exec("p2", "DownloadInstall")]},
                {"expect": [200, 202], "CMD": [["END"]]}
            ]},
            end
        ],
        "repository": {
            "/repo/p1": entry("p1", "{base}/repo/omadm-scomo-test_1.2.3_all.deb"),
            "/repo/bad": entry("bad", "{base}/repo/corrupt.deb"),
            "/repo/gone": entry("gone", "{base}/repo/nothing-here.deb"),
            "/repo/damaged": entry("damaged", "{base}/repo/damaged.deb"),
            "/repo/p2": entry("p2", "{base}/repo/omadm-scomo-test_1.2.4_all.deb"),
            "/repo/omadm-scomo-test_1.2.3_all.deb": {"content_type": "application/vnd.debian.binary-package", "file": deb},
            "/repo/omadm-scomo-test_1.2.4_all.deb": {"content_type": "application/vnd.debian.binary-package", "file": newer},
            "/repo/corrupt.deb": {"content_type": "application/vnd.debian.binary-package", "file": corrupt},
            "/repo/damaged.deb": {"content_type": "application/vnd.debian.binary-package", "file": damaged}
        }}),
        false,
    );
    let bus = PrivateBus::start();
    let _polkitd = polkitd(&bus.address);
    let _packagekitd = packagekitd(&bus.address);
    let root = Root::new().with_bootstrap_for(&server.base);
    root.write("etc/omadmd/ddf/oma-scomo-1.0.ddf.xml", SCOMO_DDF);
    root.with_shipped_handler("omadm-packagekit");
    let mut daemon = root.start_on_bus(&bus.address);
    daemon.wait_for("session ended", 30);
    let state = scratch.path().join("state");
    let mut handler = start_handler(&bus.address, &state, &[]);
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
    pkcon(&bus.address, &["install-local", deb.to_str().unwrap()]);
    wait_until("the new package in the inventory", 60, || {
        deployed(&bus.address).contains_key("omadm-scomo-test")
    });
    assert_eq!(
        deployed(&bus.address)["omadm-scomo-test"]["Version"],
        "1.2.3"
    );
    let session = || {
        let (code, out, err) =
            crate::common::omadmctl(&bus.address, &["session", "start", "--wait"]);
        assert_eq!(code, 0, "{out}{err}");
    };
    let component = format!("{DEPLOYED}/omadm-scomo-test");
    // The server removes it: 202, the package goes (dpkg agrees), and the
    // OperationComplete alert says 1200 for that component.
    session();
    wait_until("the removal's result alert", 120, || {
        !scomo_alerts(&server).is_empty()
    });
    assert_eq!(
        scomo_alerts(&server),
        [(
            remove.clone(),
            component.clone(),
            1200,
            "omadm-scomo-test".into()
        )]
    );
    assert!(!deployed(&bus.address).contains_key("omadm-scomo-test"));
    assert_eq!(installed_version(), None, "still installed");

    // The server installs from four Download entries: the good package is installed and
    // listed; the truncated one and the one with a damaged payload fail validation (1407);
    // the missing one fails to download (1402). Each entry keeps its Status.
    session();
    wait_until("the five results", 120, || scomo_alerts(&server).len() >= 6);
    let op = |x: &str| format!("{DOWNLOAD}/{x}/Operations/DownloadInstall");
    let alerts = scomo_alerts(&server);
    for expected in [
        (
            op("p1"),
            component.clone(),
            1200,
            "omadm-scomo-test".to_owned(),
        ),
        (
            op("bad"),
            format!("{DOWNLOAD}/bad"),
            1407,
            "pkg-bad".to_owned(),
        ),
        (
            op("gone"),
            format!("{DOWNLOAD}/gone"),
            1402,
            "pkg-gone".to_owned(),
        ),
        (
            op("damaged"),
            format!("{DOWNLOAD}/damaged"),
            1407,
            "pkg-damaged".to_owned(),
        ),
        (
            format!("{DOWNLOAD}/p1/Operations/DownloadInstallInactive"),
            format!("{DOWNLOAD}/p1"),
            1411,
            "p1".to_owned(),
        ),
    ] {
        assert!(
            alerts.contains(&expected),
            "{expected:?} in {alerts:#?}\n{}",
            handler.log_so_far()
        );
    }
    assert_eq!(installed_version().as_deref(), Some("1.2.3"));
    assert_eq!(
        deployed(&bus.address)["omadm-scomo-test"]["Version"],
        "1.2.3"
    );
    let status = |x: &str| {
        let (_, out, _) = crate::common::omadmctl(
            &bus.address,
            &["tree", "get", &format!("{DOWNLOAD}/{x}/Status")],
        );
        serde_json::from_str::<serde_json::Value>(&out).unwrap()[0]["MOData"]["Status"].clone()
    };
    // 10 Idle after the install, 70 Install Failed (no data kept), 20 Download Failed.
    assert_eq!(
        [
            status("p1"),
            status("bad"),
            status("gone"),
            status("damaged")
        ],
        [json!(10), json!(70), json!(20), json!(70)]
    );
    // Nothing is left in the handler's directory.
    assert_eq!(std::fs::read_dir(&state).unwrap().count(), 0);

    // The handler is killed the moment PackageKit has installed 1.2.4 (when it lets go of
    // the package file), before it reports. Started again, it reports what happened.
    drop(handler);
    let p2 = state.join("download-p2.deb");
    let strace = [
        "strace",
        "-f",
        "-qq",
        "-o",
        "/dev/null",
        "-P",
        p2.to_str().unwrap(),
        "-e",
        "trace=unlink,unlinkat",
        "-e",
        "inject=unlink,unlinkat:signal=SIGKILL",
    ];
    let mut doomed = start_handler(&bus.address, &state, &strace);
    doomed.wait_for("registered with omadmd as the SCOMO handler", 120);
    session();
    doomed.wait_for("installing", 120);
    doomed.wait_exit(120);
    assert_eq!(installed_version().as_deref(), Some("1.2.4"));
    assert_eq!(
        scomo_alerts(&server).len(),
        6,
        "nothing reported by the killed handler"
    );
    let mut again = start_handler(&bus.address, &state, &[]);
    again.wait_for("registered with omadmd as the SCOMO handler", 120);
    session();
    wait_until("the result from before the restart", 120, || {
        scomo_alerts(&server).len() >= 7
    });
    assert!(
        scomo_alerts(&server).contains(&(
            op("p2"),
            component.clone(),
            1200,
            "omadm-scomo-test".into()
        )),
        "{:#?}\n{}",
        scomo_alerts(&server),
        again.log_so_far()
    );
    assert_eq!(
        deployed(&bus.address)["omadm-scomo-test"]["Version"],
        "1.2.4"
    );
    assert!(
        server.of_kind("expect").iter().all(|e| e["ok"] == true),
        "{:#?}\n{}",
        server.of_kind("expect"),
        again.log_so_far()
    );
    // Every result went to /dm/scomo in a session of its own; the only sessions with the
    // SrvURI (/dm) were the BootstrapComplete one and the four the test started: a result
    // costs the server one session, not two.
    let at = |path: &str| {
        server
            .of_kind("package1")
            .iter()
            .filter(|p| p["path"] == path)
            .count()
    };
    assert_eq!(at("/dm"), 5, "{:#?}", server.of_kind("package1"));
    assert!(at("/dm/scomo") >= 2, "{:#?}", server.of_kind("package1"));
    let _ = Command::new("dpkg")
        .args(["--purge", "omadm-scomo-test"])
        .output();
    daemon.terminate();
}
