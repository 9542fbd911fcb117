//! What the crate's examples run against, as doctests: a private `dbus-daemon` with the
//! workspace's own `omadmd` on it under a scratch root, and optionally an
//! `omadm-testserver` playing a script. Not part of the API (the `testbed` feature, on only
//! for the crate's own tests); it runs the binaries `cargo test --workspace` builds.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A DDF for the examples' EXEC handler: `urn:example:mo:reboot:1.0` with an EXEC node
/// `Reboot`.
const EXAMPLE_DDF: &str = r#"<MgmtTree><VerDTD>1.2</VerDTD>
  <Node><NodeName/><DFProperties><AccessType><Get/><Replace/><Add/><Delete/></AccessType><DFFormat><node/></DFFormat>
    <Occurrence><ZeroOrMore/></Occurrence><DFType><DDFName>urn:example:mo:reboot:1.0</DDFName></DFType></DFProperties>
    <Node><NodeName>Reboot</NodeName><DFProperties><AccessType><Exec/><Get/></AccessType><DFFormat><null/></DFFormat></DFProperties></Node>
  </Node></MgmtTree>"#;

/// A private bus, omadmd on it, and the test server it manages with; all stopped and the
/// scratch root removed when dropped.
#[derive(Debug)]
pub struct Testbed {
    bus: Child,
    daemon: Option<Child>,
    server: Option<Child>,
    root: PathBuf,
    /// The private bus's address.
    pub address: String,
    /// The test server's record (JSON lines), when one runs.
    pub record: PathBuf,
}

/// The workspace this crate is built in.
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A binary of the workspace, as `cargo test --workspace` builds it.
fn binary(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"));
    let bin = target.join("debug").join(name);
    assert!(
        bin.exists(),
        "{} is not built: run `cargo test --workspace` (scripts/test.sh)",
        bin.display()
    );
    bin
}

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    if let Some(dir) = p.parent() {
        std::fs::create_dir_all(dir).expect("the scratch root");
    }
    std::fs::write(p, text).expect("the scratch root");
}

impl Testbed {
    /// Starts the bus and the daemon, and with `script` (the test server's JSON script) a
    /// test server whose account the daemon has; returns once the daemon owns its name.
    pub async fn start(script: Option<&str>) -> Testbed {
        static COUNT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let root = std::env::temp_dir().join(format!("omadm-client-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let record = root.join("record.jsonl");
        let mut bus = Command::new("dbus-daemon")
            .arg("--nofork")
            .arg("--print-address=1")
            .arg(format!(
                "--config-file={}",
                workspace().join("examples/demo/private-bus.conf").display()
            ))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon (scripts/setup.sh installs it)");
        let address = first_line(&mut bus);
        let mut bed = Testbed {
            bus,
            daemon: None,
            server: None,
            root: root.clone(),
            address,
            record: record.clone(),
        };
        let base = match script {
            Some(script) => {
                write(&root, "script.json", script);
                let mut server = Command::new(binary("omadm-testserver"))
                    .arg("--script")
                    .arg(root.join("script.json"))
                    .arg("--record")
                    .arg(&record)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("omadm-testserver");
                let said = first_line(&mut server);
                bed.server = Some(server);
                said.strip_prefix("listening on ")
                    .expect("the test server's address")
                    .to_owned()
            }
            // Nobody listens there: sessions fail, which the examples do not need.
            None => "http://127.0.0.1:9".to_owned(),
        };
        let bootstrap = std::fs::read_to_string(
            workspace().join("examples/demo/bootstrap.d/10-demo-server.json"),
        )
        .expect("the demo bootstrap")
        .replace("{base}", &base);
        write(&root, "etc/omadmd/bootstrap.d/10-demo.json", &bootstrap);
        write(
            &root,
            "usr/lib/omadmd/config.d/00-testbed.toml",
            "[notifications]\nlisten = \"127.0.0.1:0\"\n[sessions]\nretry-base-secs = 3600\n",
        );
        write(&root, "etc/omadmd/ddf/example.xml", EXAMPLE_DDF);
        let me = Command::new("id")
            .arg("-un")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .expect("id -un");
        write(
            &root,
            "etc/omadmd/handlers/example.toml",
            &format!("user = \"{me}\"\nmoids = [\"urn:example:mo:reboot:1.0\"]\n"),
        );
        write(
            &root,
            "etc/omadmd/bootstrap.d/20-example.json",
            r#"[{"ClientURI": "urn:example:mo:reboot:1.0/box/", "MOData": {"box": {"Reboot": null}}}]"#,
        );
        let daemon = Command::new(binary("omadmd"))
            .arg("--config-root")
            .arg(&root)
            .env("DBUS_SYSTEM_BUS_ADDRESS", &bed.address)
            .env_remove("JOURNAL_STREAM")
            .env_remove("NOTIFY_SOCKET")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("omadmd");
        bed.daemon = Some(daemon);
        bed.wait_for_daemon().await;
        bed
    }

    /// A connection to the private bus, as `zbus::Connection::system()` is to the system
    /// bus.
    pub async fn connection(&self) -> zbus::Result<zbus::Connection> {
        zbus::connection::Builder::address(self.address.as_str())
            .build()
            .await
    }

    async fn wait_for_daemon(&self) {
        let conn = self.connection().await.expect("the private bus");
        let dbus = zbus::fdo::DBusProxy::new(&conn).await.expect("the bus");
        let deadline = Instant::now() + Duration::from_secs(30);
        let name = zbus::names::BusName::try_from(crate::BUS_NAME).expect("the name");
        while !dbus.name_has_owner(name.clone()).await.unwrap_or(false) {
            assert!(Instant::now() < deadline, "omadmd did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the test server's record holds `text`; false after `secs`.
    pub fn server_saw(&self, text: &str, secs: u64) -> bool {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if std::fs::read_to_string(&self.record).is_ok_and(|r| r.contains(text)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

fn first_line(child: &mut Child) -> String {
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        let _ = BufReader::new(out).read_line(&mut line);
    }
    line.trim().to_owned()
}

impl Drop for Testbed {
    fn drop(&mut self) {
        for child in [
            self.daemon.as_mut(),
            self.server.as_mut(),
            Some(&mut self.bus),
        ]
        .into_iter()
        .flatten()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
