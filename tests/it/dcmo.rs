//! DCMO through the real usbguard: `usbguard-daemon` with fake USB devices (umockdev,
//! tests/data/usbguard) and `usbguard-dbus` on the private bus with polkitd deciding, in
//! a network namespace of their own (usbguard's IPC socket is abstract: one per
//! namespace, and none shared with a usbguard the machine may run). usbguard is run from
//! its Debian package unpacked by scripts/setup.sh, not installed.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use omadm_tools::handlers::dcmo::codes::{DCMO, OPERATION_COMPLETE};
use omadm_tools::handlers::dcmo::usbguard::{Read, Usbguard};
use omadm_tools::handlers::dcmo::usbguard_rules::{CAMERA_QUERY, Ours, Wanted};
use serde_json::json;

use crate::common::{
    Daemon, PrivateBus, Reaped, Root, TestServer, leaf, omadmctl, tool, wait_until,
};
use crate::polkit::Polkitd;

/// Where scripts/setup.sh unpacked usbguard.
fn usbguard_root() -> PathBuf {
    if let Some(r) = std::env::var_os("OMADM_USBGUARD_ROOT") {
        return r.into();
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache"));
    cache.join("omadmd-tests/usbguard")
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/data/usbguard/{name}.umockdev")),
    )
    .unwrap()
}

/// usbguard with fake devices, on a private bus with polkitd; everything stopped when
/// dropped.
pub struct UsbWorld {
    /// usbguard-dbus and the daemon, stopped first (fields drop in order).
    usbguard: Vec<Reaped>,
    /// The process holding usbguard's network namespace.
    netns: Reaped,
    _polkitd: Polkitd,
    /// The bus (path-based: usbguard-dbus reaches it from its namespace).
    pub bus: PrivateBus,
    /// Where usbguard was unpacked.
    root: PathBuf,
    dir: tempfile::TempDir,
}

impl UsbWorld {
    /// None when not root (namespaces and polkitd need it).
    pub fn start(machine_rules: &str) -> Option<UsbWorld> {
        if !crate::polkit::can_run() {
            return None;
        }
        let root = usbguard_root();
        let daemon = root.join("usr/sbin/usbguard-daemon");
        assert!(
            daemon.exists(),
            "{} is missing (scripts/setup.sh unpacks usbguard there)",
            daemon.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // polkitd runs as its own user and must reach the bus socket.
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        for sub in ["devices", "staging", "tb", "polkit/actions"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        let conf = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo/private-bus.conf"),
        )
        .unwrap()
        .replace("unix:tmpdir=/tmp", &format!("unix:dir={}", d.display()));
        std::fs::write(d.join("bus.conf"), conf).unwrap();
        let bus = PrivateBus::start_with(&d.join("bus.conf"));
        std::fs::copy(
            root.join("usr/share/polkit-1/actions/org.usbguard1.policy"),
            d.join("polkit/actions/org.usbguard1.policy"),
        )
        .unwrap();
        let polkitd = Polkitd::start(&bus.address, &d.join("polkit"), "");
        std::fs::write(
            d.join("daemon.conf"),
            format!(
                "RuleFile={rules}\nImplicitPolicyTarget=block\nPresentDevicePolicy=apply-policy\n\
                 PresentControllerPolicy=allow\nInsertedDevicePolicy=apply-policy\n\
                 AuthorizedDefault=none\nRestoreControllerDeviceState=false\n\
                 DeviceManagerBackend=umockdev\nIPCAllowedUsers=root\nDeviceRulesWithPort=false\n\
                 AuditBackend=FileAudit\nAuditFilePath={audit}\n",
                rules = d.join("rules.conf").display(),
                audit = d.join("audit.log").display()
            ),
        )
        .unwrap();
        std::fs::write(d.join("rules.conf"), machine_rules).unwrap();
        for f in ["daemon.conf", "rules.conf"] {
            std::fs::set_permissions(d.join(f), std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        std::fs::write(d.join("staging/controller.umockdev"), fixture("controller")).unwrap();
        std::fs::hard_link(
            d.join("staging/controller.umockdev"),
            d.join("devices/controller.umockdev"),
        )
        .unwrap();
        let netns = Reaped(
            Command::new("unshare")
                .args(["-n", "sleep", "infinity"])
                .spawn()
                .unwrap(),
        );
        // nsenter must not join before unshare has made the namespace: it would join ours.
        let ours = std::fs::read_link("/proc/self/ns/net").unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::read_link(format!("/proc/{}/ns/net", netns.id())).ok() == Some(ours.clone())
        {
            assert!(Instant::now() < deadline, "unshare -n made no namespace");
            std::thread::sleep(Duration::from_millis(10));
        }
        let mut world = UsbWorld {
            usbguard: Vec::new(),
            netns,
            _polkitd: polkitd,
            bus,
            root,
            dir,
        };
        world.start_usbguard();
        Some(world)
    }

    /// A program run in usbguard's network namespace, its stderr to `<name>.log`.
    fn inside(&self, program: &Path) -> Command {
        let d = self.dir.path();
        let mut c = Command::new("nsenter");
        c.arg("-t")
            .arg(self.netns.id().to_string())
            .arg("-n")
            .arg("--")
            .arg(program)
            .env("DBUS_SYSTEM_BUS_ADDRESS", &self.bus.address)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(d.join(format!(
                        "{}.log",
                        program.file_name().unwrap().to_string_lossy()
                    )))
                    .unwrap(),
            );
        c
    }

    /// Starts usbguard-daemon, and usbguard-dbus once the daemon answers (usbguard-dbus
    /// gives up on a daemon that was not there when it started); waits until usbguard
    /// answers on the bus.
    fn start_usbguard(&mut self) {
        let d = self.dir.path().to_owned();
        let mut daemon = self.inside(Path::new("umockdev-wrapper"));
        daemon
            .arg(self.root.join("usr/sbin/usbguard-daemon"))
            .args(["-k", "-P", "-c"])
            .arg(d.join("daemon.conf"))
            .env("TMPDIR", d.join("tb"))
            .env("USBGUARD_UMOCKDEV_DEVICEDIR", d.join("devices"));
        let daemon = Reaped(daemon.spawn().unwrap());
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self
            .inside(&self.root.join("usr/bin/usbguard"))
            .args(["get-parameter", "InsertedDevicePolicy"])
            .status()
            .unwrap()
            .success()
        {
            assert!(
                Instant::now() < deadline,
                "usbguard-daemon did not come up\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let dbus = Reaped(
            self.inside(&self.root.join("usr/sbin/usbguard-dbus"))
                .arg("--system")
                .spawn()
                .unwrap(),
        );
        self.usbguard = vec![dbus, daemon];
        // usbguard-dbus owns its name at once and reaches the daemon within a second or
        // two; until then every call fails.
        let deadline = Instant::now() + Duration::from_secs(30);
        while let Err(e) = self.block_on(async |u| u.read().await) {
            assert!(
                Instant::now() < deadline,
                "usbguard did not come up: {e}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stops usbguard and starts it again, as a reboot does: what it keeps is what its
    /// rule file holds.
    pub fn restart_usbguard(&mut self) {
        self.usbguard.clear();
        // umockdev makes a new sysfs for the new daemon: the old one must not be read.
        let tb = self.dir.path().join("tb");
        std::fs::remove_dir_all(&tb).unwrap();
        std::fs::create_dir(&tb).unwrap();
        self.start_usbguard();
    }

    /// Runs `f` with a client of usbguard on the bus.
    pub fn block_on<T>(
        &self,
        f: impl AsyncFnOnce(&Usbguard) -> zbus::Result<T>,
    ) -> zbus::Result<T> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let conn = zbus::connection::Builder::address(self.bus.address.as_str())
                    .build()
                    .await?;
                f(&Usbguard::new(&conn).await?).await
            })
    }

    /// The daemons' own words, for a failure.
    pub fn logs(&self) -> String {
        ["usbguard.log", "umockdev-wrapper.log", "usbguard-dbus.log"]
            .iter()
            .map(|f| {
                format!(
                    "--- {f}\n{}",
                    std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default()
                )
            })
            .collect()
    }

    /// Plugs device `name` (a fixture) in on `port` (`1-N`, a new one each time) and waits
    /// for usbguard's decision: whether the device is allowed, as the kernel was told.
    pub fn plug(&self, name: &str, port: &str) -> bool {
        let text = fixture(name);
        let at = text.find("/usb1/1-").unwrap() + "/usb1/".len();
        let end = at + text[at..].find('\n').unwrap();
        let text = format!("{}{port}{}", &text[..at], &text[end..]);
        let staged = self
            .dir
            .path()
            .join(format!("staging/{name}-{port}.umockdev"));
        std::fs::write(&staged, text).unwrap();
        // A hard link: the file appears whole (umockdev reads it on creation).
        std::fs::hard_link(
            &staged,
            self.dir
                .path()
                .join(format!("devices/{name}-{port}.umockdev")),
        )
        .unwrap();
        // usbguard lists a device as soon as it sees it, with the target the (fake) kernel
        // gave it; its decision is the audit record of the policy it applied.
        let device = format!("usb1/{port}'");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let audit =
                std::fs::read_to_string(self.dir.path().join("audit.log")).unwrap_or_default();
            let decided = audit
                .lines()
                .rev()
                .find(|l| l.contains(&device) && l.contains("type='Policy.Device.Update'"));
            if let Some(line) = decided {
                let allowed = line.contains("target.new='allow'");
                assert_eq!(self.authorized(port, allowed), allowed, "{line}");
                return allowed;
            }
            assert!(
                Instant::now() < deadline,
                "{name} on {port}: no decision\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Whether the (fake) kernel has the device on `port` authorized, waiting a moment
    /// for it to become `expected` (usbguard writes it after it decides).
    pub fn authorized(&self, port: &str, expected: bool) -> bool {
        let tb = self.dir.path().join("tb");
        let umockdev = std::fs::read_dir(&tb)
            .unwrap()
            .filter_map(Result::ok)
            .find(|e| e.file_name().to_string_lossy().starts_with("umockdev."))
            .expect("umockdev's sysfs");
        let file = umockdev.path().join(format!(
            "sys/devices/pci0000:00/0000:00:14.0/usb1/{port}/authorized"
        ));
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let now = std::fs::read_to_string(&file).unwrap_or_default().trim() == "1";
            if now == expected || Instant::now() > deadline {
                return now;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The rules DCMO writes for each state do what docs/dcmo.md says, in the real usbguard:
/// USB disabled blocks a disk plugged in and keeps a keyboard; Camera disabled blocks the
/// webcam present (over the machine's own rule allowing it); enabled again, a disk is
/// allowed and the webcam too. The state is read back from usbguard's rules.
#[test]
fn usbguard_follows_the_capability_states() {
    // The machine's own rules: hubs, and this webcam by its id (as a policy generated at
    // install allows the devices present then).
    let Some(mut w) =
        UsbWorld::start("allow with-interface equals { 09:00:00 }\nallow id 046d:0825\n")
    else {
        return;
    };
    assert!(
        w.plug("webcam", "1-3"),
        "the machine's rule allows the webcam\n{}",
        w.logs()
    );
    let read = w.block_on(async |u| u.read().await).unwrap();
    assert_eq!(
        read,
        Read {
            usb_enabled: false,
            camera_enabled: true,
            camera_attached: true
        },
        "never switched: USB as usbguard's implicit policy (block) has it"
    );

    let off = Wanted {
        usb: Some(false),
        camera: false,
    };
    w.block_on(async |u| u.apply(off).await).unwrap();
    assert!(
        !w.authorized("1-3", false),
        "the webcam present is blocked\n{}",
        w.logs()
    );
    assert!(
        !w.plug("storage", "1-4"),
        "USB disabled: a disk is blocked\n{}",
        std::fs::read_to_string(w.dir.path().join("audit.log")).unwrap_or_default()
    );
    assert!(
        w.plug("keyboard", "1-5"),
        "USB disabled: a keyboard still works"
    );
    let ours = w.block_on(async |u| u.ours().await).unwrap();
    assert_eq!(ours.labels, off.labels(), "our rules, in their order");
    assert_eq!(ours.state(), off);
    assert_eq!(
        w.block_on(async |u| u.read().await).unwrap(),
        Read {
            usb_enabled: false,
            camera_enabled: false,
            camera_attached: true
        }
    );
    // usbguard keeps our rules in its rule file: after a restart (a reboot) the state
    // reads back the same, and a disk plugged in is still blocked.
    let file = std::fs::read_to_string(w.dir.path().join("rules.conf")).unwrap();
    assert!(file.contains("omadm-dcmo USB disabled"), "{file}");
    w.restart_usbguard();
    let ours = w.block_on(async |u| u.ours().await).unwrap();
    assert_eq!(ours.state(), off);
    assert!(!w.plug("storage", "1-7"), "after the restart too");
    // Applying the same state again changes nothing.
    w.block_on(async |u| u.apply(off).await).unwrap();
    assert_eq!(w.block_on(async |u| u.ours().await).unwrap().ids, ours.ids);

    let on = Wanted {
        usb: Some(true),
        camera: true,
    };
    w.block_on(async |u| u.apply(on).await).unwrap();
    assert!(w.authorized("1-3", true), "the webcam is allowed again");
    assert!(w.plug("storage", "1-6"), "USB enabled: a disk is allowed");
    let ours: Ours = w.block_on(async |u| u.ours().await).unwrap();
    assert_eq!(ours.state(), on);
    assert_eq!(
        w.block_on(async |u| u.read().await).unwrap(),
        Read {
            usb_enabled: true,
            camera_enabled: true,
            camera_attached: true
        }
    );
}

/// The DCMO alerts the server received: (SourceURI, ResultCode), in order.
fn dcmo_alerts(server: &TestServer) -> Vec<(String, i64)> {
    server
        .of_kind("package1")
        .iter()
        .flat_map(|p| p["body"]["Alert"].as_array().cloned().unwrap_or_default())
        .filter(|a| a["AlertType"] == OPERATION_COMPLETE)
        .map(|a| {
            (
                a["SourceURI"].as_str().unwrap_or_default().to_owned(),
                a["Data"]["ResultCode"].as_i64().unwrap_or(-1),
            )
        })
        .collect()
}

fn dcmo(path: &str) -> String {
    format!("{DCMO}/{path}")
}

/// A server switches USB and the camera off and on through omadm-dcmo, end to end: the
/// EXECs are answered 202, usbguard's policy changes (a disk is blocked, then allowed;
/// the webcam too), the results come as DCMO alerts with the TS's codes, and the tree's
/// `Enabled` says what usbguard does.
#[test]
fn a_server_switches_usb_and_the_camera_off_and_on() {
    let Some(w) = UsbWorld::start("allow with-interface equals { 09:00:00 }\nallow id 046d:0825\n")
    else {
        return;
    };
    assert!(w.plug("webcam", "1-3"));
    let end = json!({"packages": [{"CMD": [["END"]]}]});
    let switch = |op: &str| {
        json!({"packages": [
            {"CMD": [
                ["EXEC", dcmo(&format!("USB/Operations/{op}")), "{base}/dm/dcmo"],
                ["EXEC", dcmo(&format!("Camera/Operations/{op}")), "{base}/dm/dcmo"],
                // Only the primitives take an EXEC (§9.1).
                ["EXEC", dcmo("USB/Enabled"), "{base}/dm/dcmo"]
            ]},
            {"expect": [202, 202, 405], "CMD": [["END"]]}
        ]})
    };
    let script = json!({
        // The results' sessions go to /dm/dcmo: recorded and answered END.
        "played_at": "/dm",
        "sessions": [end.clone(), switch("Disable"), switch("Enable"), end]
    });
    let server = TestServer::start(&script, false);
    let root = Root::new().with_bootstrap_for(&server.base);
    root.write(
        "etc/omadmd/ddf/oma-dcmo-1.0.ddf.xml",
        include_str!("../../data/ddf/dcmo/oma-dcmo-1.0.ddf.xml"),
    );
    // The handler's definition, as its package will ship it (with the package), made
    // root's: the test runs the handler as root.
    root.write(
        "etc/omadmd/handlers/omadm-dcmo.toml",
        "user = \"root\"\nbus-name = \"org.omadm.Dcmo1\"\nmoids = [\"urn:oma:mo:oma-dcmo:1.0\"]\n",
    );
    let bus = w.bus.address.clone();
    let mut daemon = root.start_on_bus(&bus);
    daemon.wait_for("session ended", 30);
    let mut cmd = Command::new(tool("omadm-dcmo"));
    cmd.arg("-v")
        .env("DBUS_SYSTEM_BUS_ADDRESS", &bus)
        .env_remove("JOURNAL_STREAM");
    let mut handler = Daemon::spawn_cmd(cmd);
    handler.wait_for("registered with omadmd as the DCMO handler", 30);
    wait_until("the DCMO instances", 30, || {
        leaf(&bus, &dcmo("Camera/Attached")).is_some()
    });
    assert_eq!(
        leaf(&bus, &dcmo("USB/Enabled")),
        Some(json!(false)),
        "usbguard blocks new devices by default"
    );
    assert_eq!(leaf(&bus, &dcmo("Camera/Enabled")), Some(json!(true)));
    assert_eq!(leaf(&bus, &dcmo("Camera/Attached")), Some(json!(true)));
    assert_eq!(leaf(&bus, &dcmo("USB/Property")), Some(json!("USB")));

    let session = |alerts: usize| {
        let (code, out, err) = omadmctl(&bus, &["session", "start", "--wait"]);
        assert_eq!(code, 0, "{out}{err}");
        wait_until("the DCMO results", 60, || {
            dcmo_alerts(&server).len() >= alerts
        });
        assert!(
            server.of_kind("expect").iter().all(|e| e["ok"] == true),
            "{:#?}",
            server.of_kind("expect")
        );
    };
    session(2);
    let mut got = dcmo_alerts(&server);
    got.sort();
    assert_eq!(
        got,
        [
            (dcmo("Camera/Operations/Disable"), 1204),
            (dcmo("USB/Operations/Disable"), 1204)
        ],
        "disabled, and the user may enable them (DenyUserEnable unset)"
    );
    assert!(!w.authorized("1-3", false), "the webcam is blocked");
    // Someone allows the webcam by hand while the camera is disabled: omadm-dcmo, which
    // follows usbguard's signals, blocks it again.
    w.block_on(async |u| {
        let (id, _) = u.devices.list_devices(CAMERA_QUERY).await?[0].clone();
        u.devices.apply_device_policy(id, 0, false).await
    })
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while w.authorized("1-3", false) {
        assert!(
            Instant::now() < deadline,
            "the webcam stayed allowed\n{}",
            handler.log_so_far()
        );
    }
    assert!(!w.plug("storage", "1-4"), "a disk is blocked");
    assert!(w.plug("keyboard", "1-5"), "a keyboard still works");
    wait_until("Enabled false", 10, || {
        leaf(&bus, &dcmo("USB/Enabled")) == Some(json!(false))
            && leaf(&bus, &dcmo("Camera/Enabled")) == Some(json!(false))
    });

    session(4);
    let mut got = dcmo_alerts(&server)[2..].to_vec();
    got.sort();
    assert_eq!(
        got,
        [
            (dcmo("Camera/Operations/Enable"), 1201),
            (dcmo("USB/Operations/Enable"), 1200)
        ],
        "the camera is enabled and attached; USB, not removable, plain success\n{}\n{}",
        handler.log_so_far(),
        w.logs()
    );
    assert!(w.authorized("1-3", true), "the webcam is allowed again");
    assert!(w.plug("storage", "1-6"), "a disk is allowed");
    wait_until("Enabled true", 10, || {
        leaf(&bus, &dcmo("USB/Enabled")) == Some(json!(true))
            && leaf(&bus, &dcmo("Camera/Enabled")) == Some(json!(true))
    });
    drop(handler);
}
