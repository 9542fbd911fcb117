//! Helpers: a scratch system root for a daemon, and a running daemon whose log lines the
//! test can wait for.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Path of the daemon binary cargo built for these tests.
pub const OMADMD: &str = env!("CARGO_BIN_EXE_omadmd");
/// Path of a binary of another package of the workspace (the test server,
/// `crates/omadm-testserver`; the tools and handlers, `crates/omadm-tools`), built beside
/// this test's own binaries by `cargo test --workspace` (scripts/test.sh), whose
/// integration tests make cargo build them.
pub fn tool(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/it-<hash> → target/<profile>/<name>
    let bin = exe.parent().and_then(Path::parent).unwrap().join(name);
    assert!(
        bin.exists(),
        "{} is not built: run the tests with `cargo test --workspace` (scripts/test.sh), \
         or `cargo build --workspace --bins` first",
        bin.display()
    );
    bin
}

/// Path of the test server binary.
pub fn testserver() -> PathBuf {
    tool("omadm-testserver")
}

/// A private `dbus-daemon` (system-style, everything allowed); killed when dropped.
pub struct PrivateBus {
    child: Child,
    /// Its address.
    pub address: String,
}

impl PrivateBus {
    pub fn start() -> PrivateBus {
        PrivateBus::start_with(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo/private-bus.conf"),
        )
    }

    pub fn start_with(conf: &Path) -> PrivateBus {
        let mut child = Command::new("dbus-daemon")
            .arg("--nofork")
            .arg("--print-address=1")
            .arg(format!("--config-file={}", conf.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon (scripts/setup.sh installs it)");
        let mut address = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut address)
            .unwrap();
        PrivateBus {
            child,
            address: address.trim().to_owned(),
        }
    }
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs omadmctl against a bus: (exit code, stdout, stderr).
pub fn omadmctl(bus: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(tool("omadmctl"))
        .args(args)
        .env("DBUS_SYSTEM_BUS_ADDRESS", bus)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A running omadm-testserver; killed when dropped.
pub struct TestServer {
    child: Child,
    /// Its base URL (`http://127.0.0.1:PORT`).
    pub base: String,
    /// Its JSON-lines record.
    pub record: PathBuf,
    /// With `--tls`: the CA certificate to trust.
    pub ca: PathBuf,
    /// With client certificates required: the device's certificate and key (PEM).
    pub client: PathBuf,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// Starts a server playing `script` (JSON), over HTTPS when `tls`.
    pub fn start(script: &serde_json::Value, tls: bool) -> TestServer {
        TestServer::start_with(script, tls, false)
    }

    /// Like `start`; with `client_certs`, HTTPS requiring client certificates.
    pub fn start_with(script: &serde_json::Value, tls: bool, client_certs: bool) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let script_path = dir.path().join("script.json");
        std::fs::write(&script_path, script.to_string()).unwrap();
        let record = dir.path().join("record.jsonl");
        let ca = dir.path().join("ca.pem");
        let mut cmd = Command::new(testserver());
        cmd.arg("--script")
            .arg(&script_path)
            .arg("--record")
            .arg(&record);
        let client = dir.path().join("client.pem");
        if tls {
            cmd.arg("--tls").arg("--ca-out").arg(&ca);
        }
        if client_certs {
            cmd.arg("--client-cert-out").arg(&client);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let base = first
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("testserver said {first:?}"))
            .to_owned();
        TestServer {
            child,
            base,
            record,
            ca,
            client,
            _dir: dir,
        }
    }

    /// Every recorded event.
    pub fn events(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(&self.record).unwrap_or_default();
        // The server may be writing a line as it is read: only whole lines count.
        let whole = text.rfind('\n').map_or("", |end| &text[..=end]);
        whole
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Recorded events of one kind.
    pub fn of_kind(&self, kind: &str) -> Vec<serde_json::Value> {
        self.events()
            .into_iter()
            .filter(|e| e["kind"] == kind)
            .collect()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A scratch root: `--config-root` points every default path below it.
pub struct Root {
    pub dir: tempfile::TempDir,
}

impl Root {
    pub fn new() -> Root {
        let root = Root {
            dir: tempfile::tempdir().unwrap(),
        };
        // Many daemons run at once: each listens for notifications on a free port.
        root.write(
            "usr/lib/omadmd/config.d/00-test.toml",
            // Tests send notifications in quick succession; the spacing of
            // notification-triggered sessions has tests of its own.
            "[notifications]\nlisten = \"127.0.0.1:0\"\nmin-interval-secs = 0\n[dbus]\nenabled = false\n",
        );
        root
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Installs a handler package's definition (`data/handlers/NAME.toml`), made root's:
    /// the tests run the handlers as root, not as the package's user.
    pub fn with_shipped_handler(&self, name: &str) {
        let shipped = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("data/handlers/{name}.toml")),
        )
        .unwrap();
        let as_root: String = shipped
            .lines()
            .map(|l| {
                if l.starts_with("user = ") {
                    "user = \"root\""
                } else {
                    l
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        self.write(&format!("etc/omadmd/handlers/{name}.toml"), &as_root);
    }

    pub fn database(&self) -> PathBuf {
        self.path("var/lib/omadmd/tree.db")
    }

    /// The repository's demo bootstrap, installed where the daemon looks by default, for a
    /// server at `base` (a closed port when the test needs no server).
    pub fn with_bootstrap_for(self, base: &str) -> Root {
        let demo = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples/demo/bootstrap.d/10-demo-server.json");
        let text = std::fs::read_to_string(demo)
            .unwrap()
            .replace("{base}", base);
        self.write("etc/omadmd/bootstrap.d/10-demo-server.json", &text);
        self
    }

    /// The demo bootstrap for a server nobody runs.
    pub fn with_demo_bootstrap(self) -> Root {
        self.with_bootstrap_for("http://127.0.0.1:9")
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(OMADMD);
        c.arg("--config-root").arg(self.dir.path()).args(args);
        c.env_remove("RUST_LOG")
            .env_remove("STATE_DIRECTORY")
            .env_remove("NOTIFY_SOCKET");
        c
    }

    /// Runs a one-shot command to completion.
    pub fn run(&self, args: &[&str]) -> (ExitStatus, String, String) {
        let out = self.command(args).output().unwrap();
        (
            out.status,
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Starts the daemon serving D-Bus on `bus`.
    pub fn start_on_bus(&self, bus: &str) -> Daemon {
        self.write(
            "etc/omadmd/config.d/90-bus.toml",
            "[dbus]\nenabled = true\n",
        );
        self.spawn(self.command(&[]).env("DBUS_SYSTEM_BUS_ADDRESS", bus))
    }

    pub fn start(&self, args: &[&str]) -> Daemon {
        self.spawn(&mut self.command(args))
    }

    fn spawn(&self, cmd: &mut Command) -> Daemon {
        let cmd = std::mem::replace(cmd, Command::new("true"));
        Daemon::spawn_cmd(cmd)
    }
}

/// A daemon process; killed when dropped.
pub struct Daemon {
    child: Child,
    lines: Receiver<String>,
    /// Every line seen so far.
    pub log: Vec<String>,
}

impl Daemon {
    /// Runs a prepared command as a daemon whose log the test can follow.
    pub fn spawn_cmd(mut cmd: Command) -> Daemon {
        let mut child = cmd
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Daemon {
            child,
            lines,
            log: Vec::new(),
        }
    }

    /// The log so far, every line that has arrived included.
    pub fn log_so_far(&mut self) -> String {
        while let Ok(line) = self.lines.try_recv() {
            self.log.push(line);
        }
        self.log.join("\n")
    }

    /// Waits until a log line contains `needle`; panics with the log after `secs`.
    pub fn wait_for(&mut self, needle: &str, secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => panic!(
                    "no {needle:?} within {secs}s; log:\n{}",
                    self.log.join("\n")
                ),
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "daemon exited before {needle:?}; log:\n{}",
                    self.log.join("\n")
                ),
            }
        }
    }

    /// Waits for the notification listener and returns the address it listens on.
    pub fn notification_address(&mut self) -> String {
        let line = self.wait_for("listening for notifications", 30);
        line.split("address=")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_owned()
    }

    /// Sends SIGTERM and waits for the exit; returns the status and the rest of the log.
    pub fn terminate(mut self) -> (ExitStatus, Vec<String>) {
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM).unwrap();
        let status = self.wait_exit(10);
        (status, std::mem::take(&mut self.log))
    }

    /// Kills the daemon with SIGKILL, as a crash would.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// The process ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the process to exit by itself, collecting its remaining log.
    pub fn wait_exit(&mut self, secs: u64) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            while let Ok(line) = self.lines.try_recv() {
                self.log.push(line);
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                // Drain what the reader thread still holds.
                while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
                    self.log.push(line);
                }
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "daemon did not exit; log:\n{}",
                self.log.join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A child process killed when dropped, so a failed test leaves no agent behind holding
/// the harness's pipes.
pub struct Reaped(pub Child);

impl std::ops::Deref for Reaped {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Reaped {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A long-running `omadmctl` on the bus (as `uid` when given), with its stdout lines.
pub fn ctl_lines(
    bus: &str,
    uid: Option<u32>,
    args: &[&str],
) -> (Reaped, std::sync::mpsc::Receiver<String>) {
    ctl_lines_with(bus, uid, args, &[], std::process::Stdio::null())
}

/// [`ctl_lines`] with more environment and a given stdin.
pub fn ctl_lines_with(
    bus: &str,
    uid: Option<u32>,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: std::process::Stdio,
) -> (Reaped, std::sync::mpsc::Receiver<String>) {
    use std::io::BufRead as _;
    use std::os::unix::process::CommandExt as _;
    let mut cmd = std::process::Command::new(tool("omadmctl"));
    cmd.args(args)
        .env("DBUS_SYSTEM_BUS_ADDRESS", bus)
        .envs(env.iter().copied())
        .stdin(stdin)
        .stdout(std::process::Stdio::piped());
    if let Some(uid) = uid {
        cmd.uid(uid).gid(uid);
    }
    let mut child = cmd.spawn().unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (Reaped(child), rx)
}

/// An `omadmctl agent` on the bus (as `uid` when given), with its stdout lines; it has
/// registered when this returns.
pub fn ctl_agent(
    bus: &str,
    uid: Option<u32>,
    args: &[&str],
) -> (Reaped, std::sync::mpsc::Receiver<String>) {
    let mut all = vec!["agent"];
    all.extend_from_slice(args);
    let (child, rx) = ctl_lines(bus, uid, &all);
    let first = rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
    assert!(first.contains("registered"), "{first}");
    (child, rx)
}

/// A bootstrap document provisioning one DM account: server `id` at `{base}/dm`, named
/// "The `id`", with rights on DevInfo.
pub fn dmacc(id: &str, base: &str) -> serde_json::Value {
    serde_json::json!([{
        "ClientURI": "urn:oma:mo:oma-dm-dmacc:1.2//",
        "MOData": { id: {
            "SrvID": id,
            "SrvURI": format!("{base}/dm"),
            "Name": format!("The {id}"),
            "Perm": { "devinfo": { "MOID": "urn:oma:mo:oma-dm-devinfo:1.2" } }
        }}
    }])
}

/// Waits until `done`, checking every 100 ms; panics naming `what` after `secs`.
pub fn wait_until(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {secs}s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The value of a leaf, read through `omadmctl tree get`.
pub fn leaf(bus: &str, uri: &str) -> Option<serde_json::Value> {
    let (code, out, _) = omadmctl(bus, &["tree", "get", uri]);
    if code != 0 {
        return None;
    }
    let doc: serde_json::Value = serde_json::from_str(&out).ok()?;
    doc[0]["MOData"].as_object()?.values().next().cloned()
}
