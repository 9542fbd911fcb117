//! FUMO through the real fwupd: fwupd runs on the private bus with its test devices
//! (`TestDevices=true`, the fake webcam and the cabinets of Debian's fwupd-tests),
//! omadm-fwupd keeps the FUMO instances and carries out the EXECs, and the test server
//! drives an update from its Package#2 to the Generic Alert with the result code.

use std::path::Path;
use std::process::Command;

use serde_json::json;

use crate::common::{Daemon, PrivateBus, Root, TestServer, leaf, omadmctl, wait_until};

/// fwupd's fake webcam (its test plugin): 1.2.2 until `fakedevice124.cab` makes it 1.2.4.
const WEBCAM: &str = "08d460be0f1f9f128413f816022a6439e0078018";
const CAB: &str = "/usr/share/installed-tests/fwupd/fakedevice124.cab";
const FWUPD: &str = "/usr/libexec/fwupd/fwupd";
const FUMO_DDF: &str = include_str!("../../data/ddf/fumo/oma-fumo-1.0.ddf.xml");

/// fwupd on `bus` with its test devices, its state in `dir`.
fn fwupd(bus: &str, dir: &Path, extra_config: &str) -> Daemon {
    assert!(
        Path::new(FWUPD).exists() && Path::new(CAB).exists(),
        "fwupd and fwupd-tests are not installed (scripts/setup.sh installs them)"
    );
    let etc = dir.join("etc");
    std::fs::create_dir_all(etc.join("fwupd")).unwrap();
    // The test cabinets are signed by fwupd's test key, which this private instance does
    // not trust: accept unsigned payloads here, as fwupd's own installed tests do.
    std::fs::write(
        etc.join("fwupd/fwupd.conf"),
        format!("[fwupd]\nTestDevices=true\nOnlyTrusted=false\n{extra_config}"),
    )
    .unwrap();
    let mut cmd = Command::new(FWUPD);
    cmd.arg("--verbose")
        .env("DBUS_SYSTEM_BUS_ADDRESS", bus)
        .env("FWUPD_SYSCONFDIR", &etc)
        .env("FWUPD_LOCALSTATEDIR", dir.join("var"))
        .env("FWUPD_RUNDIR", dir.join("run"));
    let mut p = Daemon::spawn_cmd(cmd);
    p.wait_for("ready for requests", 60);
    p
}

/// omadm-fwupd on `bus`, its packages kept in `state`.
fn handler(bus: &str, state: &Path) -> Daemon {
    let mut cmd = Command::new(crate::common::tool("omadm-fwupd"));
    cmd.arg("--state-dir")
        .arg(state)
        .arg("-v")
        .env("DBUS_SYSTEM_BUS_ADDRESS", bus)
        .env_remove("JOURNAL_STREAM");
    Daemon::spawn_cmd(cmd)
}

/// The FUMO alerts the server received: (AlertType, SourceURI, ResultCode).
fn fumo_alerts(server: &TestServer) -> Vec<(String, String, i64)> {
    server
        .of_kind("package1")
        .iter()
        .flat_map(|p| p["body"]["Alert"].as_array().cloned().unwrap_or_default())
        .filter(|a| {
            a["AlertType"]
                .as_str()
                .is_some_and(|t| t.starts_with("org.openmobilealliance.dm.firmwareupdate."))
        })
        .map(|a| {
            (
                a["AlertType"].as_str().unwrap_or_default().to_owned(),
                a["SourceURI"].as_str().unwrap_or_default().to_owned(),
                a["Data"]["ResultCode"].as_i64().unwrap_or(-1),
            )
        })
        .collect()
}

fn node(path: &str) -> String {
    format!("urn:oma:mo:oma-fumo:1.0/{WEBCAM}/{path}")
}

/// Everything a FUMO test runs: the test server with `script`, a private bus, fwupd with
/// its test devices, the daemon (with the FUMO DDF) past its BootstrapComplete session,
/// and omadm-fwupd registered with it.
struct World {
    server: TestServer,
    bus: PrivateBus,
    daemon: Daemon,
    handler: Daemon,
    fwupd: Option<Daemon>,
    root: Root,
    scratch: tempfile::TempDir,
}

fn world(script: &serde_json::Value) -> World {
    world_with(script, "")
}

/// A world whose fwupd has `fwupd_config` added to its configuration.
fn world_with(script: &serde_json::Value, fwupd_config: &str) -> World {
    let server = TestServer::start(script, false);
    let bus = PrivateBus::start();
    let scratch = tempfile::tempdir().unwrap();
    let fwupd = fwupd(&bus.address, &scratch.path().join("fwupd"), fwupd_config);
    let root = Root::new().with_bootstrap_for(&server.base);
    root.write("etc/omadmd/ddf/oma-fumo-1.0.ddf.xml", FUMO_DDF);
    root.with_shipped_handler("omadm-fwupd");
    let mut daemon = root.start_on_bus(&bus.address);
    daemon.wait_for("session ended", 30);
    let mut handler = handler(&bus.address, &scratch.path().join("packages"));
    handler.wait_for("registered with omadmd as the FUMO handler", 30);
    World {
        server,
        bus,
        daemon,
        handler,
        fwupd: Some(fwupd),
        root,
        scratch,
    }
}

/// Starts a session and waits for `count` FUMO alerts at the server; all of them, sorted.
fn session_and_alerts(w: &mut World, count: usize) -> Vec<(String, String, i64)> {
    let (code, out, err) = omadmctl(&w.bus.address, &["session", "start", "--wait"]);
    assert_eq!(code, 0, "{out}{err}");
    wait_until("the result alerts", 60, || {
        fumo_alerts(&w.server).len() >= count
    });
    assert!(
        w.server.of_kind("expect").iter().all(|e| e["ok"] == true),
        "{:#?}\n{}",
        w.server.of_kind("expect"),
        w.handler.log_so_far()
    );
    let mut alerts = fumo_alerts(&w.server);
    alerts.sort();
    alerts
}

#[test]
fn a_server_updates_firmware_through_fwupd() {
    let end = json!({"packages": [{"CMD": [["END"]]}]});
    let script = json!({
        "sessions": [
            end,                                                                    // BootstrapComplete
            {"packages": [
                {"CMD": [
                    ["HGET", "{base}/repo/pkgurl", node("DownloadAndUpdate/PkgURL")],
                    ["EXEC", node("DownloadAndUpdate"), "{base}/dm/fumo"],
                    // One operation per component at a time: refused (400 in its alert).
                    ["EXEC", node("Download"), "{base}/dm/fumo"]
                ]},
                // With a ServerURI every EXEC's result comes as an alert (TS §5.3.5).
                {"expect": [200, 202, 202], "CMD": [["END"]]}
            ]},
            end.clone(), end.clone(), end.clone(), end
        ],
        "repository": {
            "/repo/pkgurl": {"content_type": "text/plain", "body": "{base}/repo/fakedevice124.cab"},
            "/repo/fakedevice124.cab": {"content_type": "application/vnd.ms-cab-compressed", "file": CAB}
        }
    });
    let mut w = world(&script);
    let bus = w.bus.address.clone();

    // The webcam is a FUMO instance with what it runs now; the CPU (not updatable) is not.
    assert_eq!(leaf(&bus, &node("PkgVersion")), Some(json!("1.2.2")));
    assert_eq!(leaf(&bus, &node("State")), Some(json!(10)));
    let (_, list, _) = omadmctl(&bus, &["tree", "list", "--json"]);
    let fumo_instances: Vec<serde_json::Value> =
        serde_json::from_str::<Vec<serde_json::Value>>(&list)
            .unwrap()
            .into_iter()
            .filter(|i| i["moid"] == "urn:oma:mo:oma-fumo:1.0")
            .collect();
    assert_eq!(fumo_instances.len(), 1, "{list}");

    // The server sets the package URL and EXECs DownloadAndUpdate: 202, and the update runs.
    let alerts = session_and_alerts(&mut w, 2);
    assert_eq!(
        alerts,
        [
            (
                "org.openmobilealliance.dm.firmwareupdate.download".to_owned(),
                node("Download"),
                400
            ),
            (
                "org.openmobilealliance.dm.firmwareupdate.downloadandupdate".to_owned(),
                node("DownloadAndUpdate"),
                200
            )
        ]
    );
    // fwupd installed it: the instance says so, and the package was fetched from the
    // server's repository under the daemon's HTTP rules.
    assert_eq!(leaf(&bus, &node("PkgVersion")), Some(json!("1.2.4")));
    assert_eq!(leaf(&bus, &node("State")), Some(json!(100)));
    assert!(
        w.server
            .of_kind("repo-get")
            .iter()
            .any(|r| r["path"] == "/repo/fakedevice124.cab"),
        "{:#?}",
        w.server.of_kind("repo-get")
    );
    w.daemon.terminate();
}

#[test]
fn a_failed_download_is_reported_and_an_update_needs_a_package() {
    let end = json!({"packages": [{"CMD": [["END"]]}]});
    let script = json!({
        "sessions": [
            end,
            {"packages": [
                {"CMD": [
                    // Nothing was downloaded: an Update is not allowed, said at once without
                    // a ServerURI, in its alert with one.
                    ["EXEC", node("Update")],
                    ["EXEC", node("Update"), "{base}/dm/fumo"],
                    ["HGET", "{base}/repo/pkgurl", node("Download/PkgURL")],
                    ["EXEC", node("Download"), "{base}/dm/fumo"],
                    // Not an operation: the DDF gives State no Exec.
                    ["EXEC", node("State"), "{base}/dm/fumo"]
                ]},
                {"expect": [405, 202, 200, 202, 405], "CMD": [["END"]]}
            ]},
            end.clone(), end.clone(), end.clone(), end
        ],
        "repository": {
            "/repo/pkgurl": {"content_type": "text/plain", "body": "{base}/repo/missing.cab"}
        }
    });
    let mut w = world(&script);
    let bus = w.bus.address.clone();
    // 411: nothing at that URL (the repository answered 404); 400: no package to update.
    let alerts = session_and_alerts(&mut w, 2);
    assert_eq!(
        alerts,
        [
            (
                "org.openmobilealliance.dm.firmwareupdate.download".to_owned(),
                node("Download"),
                411
            ),
            (
                "org.openmobilealliance.dm.firmwareupdate.update".to_owned(),
                node("Update"),
                400
            )
        ]
    );
    assert_eq!(leaf(&bus, &node("State")), Some(json!(20)));
    // fwupd restarts and reports the same webcam: the handler checks, and writes nothing,
    // so the instance's cache validator stays (servers' cached copies stay good).
    let cv = || {
        let (_, list, _) = omadmctl(&bus, &["tree", "list", "--json"]);
        serde_json::from_str::<Vec<serde_json::Value>>(&list)
            .unwrap()
            .into_iter()
            .find(|i| i["moid"] == "urn:oma:mo:oma-fumo:1.0")
            .map(|i| i["cv"].clone())
    };
    let before = cv();
    w.handler.log_so_far();
    w.fwupd = None;
    w.fwupd = Some(fwupd(&bus, &w.scratch.path().join("fwupd"), ""));
    w.handler.wait_for("FUMO instances unchanged", 30);
    assert_eq!(cv(), before);
    assert_eq!(leaf(&bus, &node("PkgVersion")), Some(json!("1.2.2")));
    w.daemon.terminate();
}

/// A cabinet with the webcam's firmware whose metadata names another device (a GUID
/// nothing here has), built with fwupdtool.
fn cab_for_another_device(dir: &Path) -> std::path::PathBuf {
    let installed = Path::new(CAB).parent().unwrap();
    std::fs::copy(
        installed.join("fakedevice124.bin"),
        dir.join("fakedevice124.bin"),
    )
    .unwrap();
    let metainfo = std::fs::read_to_string(installed.join("fakedevice124.metainfo.xml"))
        .unwrap()
        .replace(
            "b585990a-003e-5270-89d5-3705a17f9a43",
            "6e8b2a2e-9d0a-5c6f-9d0e-0e5a1a0b0c0d",
        );
    std::fs::write(dir.join("firmware.metainfo.xml"), metainfo).unwrap();
    let cab = dir.join("other.cab");
    let out = Command::new("fwupdtool")
        .arg("build-cabinet")
        .arg(&cab)
        .arg(dir.join("fakedevice124.bin"))
        .arg(dir.join("firmware.metainfo.xml"))
        .output()
        .unwrap();
    assert!(cab.exists(), "fwupdtool build-cabinet: {out:?}");
    cab
}

#[test]
fn corrupted_and_mismatched_packages_are_refused_by_fwupd() {
    let scratch = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(CAB).unwrap();
    let corrupt = scratch.path().join("corrupt.cab");
    std::fs::write(&corrupt, &bytes[..bytes.len() / 2]).unwrap();
    let other = cab_for_another_device(scratch.path());
    let end = json!({"packages": [{"CMD": [["END"]]}]});
    let update_from = |entry: &str| {
        json!({"packages": [
            {"CMD": [
                ["HGET", format!("{{base}}/repo/{entry}"), node("DownloadAndUpdate/PkgURL")],
                ["EXEC", node("DownloadAndUpdate"), "{base}/dm/fumo"]
            ]},
            {"expect": [200, 202], "CMD": [["END"]]}
        ]})
    };
    let script = json!({
        "played_at": "/dm",
        "sessions": [end, update_from("corrupt-url"), update_from("other-url")],
        "repository": {
            "/repo/corrupt-url": {"content_type": "text/plain", "body": "{base}/repo/corrupt.cab"},
            "/repo/other-url": {"content_type": "text/plain", "body": "{base}/repo/other.cab"},
            "/repo/corrupt.cab": {"content_type": "application/vnd.ms-cab-compressed", "file": corrupt},
            "/repo/other.cab": {"content_type": "application/vnd.ms-cab-compressed", "file": other}
        }
    });
    let mut w = world(&script);
    let bus = w.bus.address.clone();
    let kind = "org.openmobilealliance.dm.firmwareupdate.downloadandupdate".to_owned();
    // A truncated cabinet: 402 (corrupted package); the package stays (State 80).
    let alerts = session_and_alerts(&mut w, 1);
    assert_eq!(
        alerts,
        [(kind.clone(), node("DownloadAndUpdate"), 402)],
        "{}",
        w.handler.log_so_far()
    );
    assert_eq!(leaf(&bus, &node("State")), Some(json!(80)));
    // A cabinet for another device: 403 (device mismatch).
    let alerts = session_and_alerts(&mut w, 2);
    assert_eq!(
        alerts[1],
        (kind, node("DownloadAndUpdate"), 403),
        "{}",
        w.handler.log_so_far()
    );
    // The webcam runs what it ran.
    assert_eq!(leaf(&bus, &node("PkgVersion")), Some(json!("1.2.2")));
    w.daemon.terminate();
}

/// The webcam's version as fwupd reports it.
fn fwupd_version(bus: &str) -> Option<String> {
    let out = Command::new("fwupdmgr")
        .args(["get-devices", "--json"])
        .env("DBUS_SYSTEM_BUS_ADDRESS", bus)
        .output()
        .ok()?;
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    doc["Devices"]
        .as_array()?
        .iter()
        .find(|d| d["DeviceId"] == WEBCAM)?["Version"]
        .as_str()
        .map(str::to_owned)
}

/// fwupd's daemon status (`FwupdStatus`: 5 writing to a device, 6 verifying it).
fn fwupd_status(bus: &str) -> Option<u32> {
    let out = Command::new("dbus-send")
        .args([
            "--system",
            "--print-reply",
            "--dest=org.freedesktop.fwupd",
            "/",
            "org.freedesktop.DBus.Properties.Get",
            "string:org.freedesktop.fwupd",
            "string:Status",
        ])
        .env("DBUS_SYSTEM_BUS_ADDRESS", bus)
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .split_once("uint32 ")?
        .1
        .trim()
        .parse()
        .ok()
}

#[test]
fn an_update_in_progress_is_reported_after_both_restart() {
    let end = json!({"packages": [{"CMD": [["END"]]}]});
    let script = json!({
        "sessions": [
            end,
            {"packages": [
                {"CMD": [
                    ["HGET", "{base}/repo/pkgurl", node("DownloadAndUpdate/PkgURL")],
                    ["EXEC", node("DownloadAndUpdate"), "{base}/dm/fumo"]
                ]},
                {"expect": [200, 202], "CMD": [["END"]]}
            ]},
            end.clone(), end.clone(), end.clone(), end
        ],
        "repository": {
            "/repo/pkgurl": {"content_type": "text/plain", "body": "{base}/repo/fakedevice124.cab"},
            "/repo/fakedevice124.cab": {"content_type": "application/vnd.ms-cab-compressed", "file": CAB}
        }
    });
    // fwupd's test device writes slowly enough to stop everything in the middle.
    let mut w = world_with(&script, "[test]\nWriteDelay=40\n");
    let bus = w.bus.address.clone();
    let (code, out, err) = omadmctl(&bus, &["session", "start", "--wait"]);
    assert_eq!(code, 0, "{out}{err}");
    w.handler.wait_for("package fetched", 30);
    wait_until("State 60", 10, || {
        leaf(&bus, &node("State")) == Some(json!(60))
    });
    // State 60 comes just before the handler calls fwupd: wait until fwupd is writing,
    // so that killing the handler cannot stop the update from ever starting.
    wait_until("fwupd writing the device", 30, || {
        matches!(fwupd_status(&bus), Some(5 | 6)) || fwupd_version(&bus).as_deref() == Some("1.2.4")
    });
    // The handler and the daemon die while fwupd writes; fwupd finishes on its own.
    let World {
        server,
        bus: private_bus,
        daemon,
        handler: old_handler,
        fwupd: _fwupd,
        root,
        scratch,
    } = w;
    drop(old_handler);
    daemon.kill9();
    assert!(fumo_alerts(&server).is_empty());
    wait_until("fwupd's update", 60, || {
        fwupd_version(&bus).as_deref() == Some("1.2.4")
    });
    // Both come back: the handler finds the EXEC still pending, fwupd's history says the
    // update succeeded, and the server gets the result it was owed.
    let mut daemon = root.start_on_bus(&bus);
    daemon.wait_for("ready", 30);
    let mut handler = handler(&bus, &scratch.path().join("packages"));
    handler.wait_for("reporting an operation from before the restart", 30);
    wait_until("the result alert", 60, || !fumo_alerts(&server).is_empty());
    assert_eq!(
        fumo_alerts(&server),
        [(
            "org.openmobilealliance.dm.firmwareupdate.downloadandupdate".to_owned(),
            node("DownloadAndUpdate"),
            200
        )]
    );
    assert_eq!(leaf(&bus, &node("State")), Some(json!(100)));
    assert_eq!(leaf(&bus, &node("PkgVersion")), Some(json!("1.2.4")));
    daemon.terminate();
    drop(private_bus);
}
