//! What the benchmarks share: the test server on loopback, a scratch device root with the
//! demo account, a private D-Bus, omadmd started and its log read, child processes reaped,
//! and resident memory from /proc.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

/// A child process and its own children (strace's tracee), killed when dropped, also
/// when a benchmark fails half-way.
pub struct Reaped(pub std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let pid = self.0.id();
        let children =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        for child in children.split_whitespace() {
            let _ = Command::new("kill").args(["-KILL", child]).status();
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A private bus (the demo's configuration), its address, and the process.
pub fn private_bus() -> (Reaped, String) {
    let conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo/private-bus.conf");
    let mut child = Command::new("dbus-daemon")
        .arg("--nofork")
        .arg("--print-address=1")
        .arg(format!("--config-file={}", conf.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("dbus-daemon (scripts/setup.sh installs it)");
    let mut address = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut address)
        .expect("bus address");
    (Reaped(child), address.trim().to_owned())
}

/// `program` (omadmd, or strace in front of it, with `args` before omadmd's own) set to
/// run the daemon on the device root `root`: info logs on a piped stderr, not a systemd
/// service. The caller adds the bus address and spawns it.
pub fn omadmd(program: &str, args: &[&str], root: &Path) -> Command {
    let mut command = Command::new(program);
    command
        .args(args)
        .arg("--config-root")
        .arg(root)
        .env("RUST_LOG", "info")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("JOURNAL_STREAM")
        .stderr(Stdio::piped());
    command
}

/// The path of the omadmd binary under test.
pub const OMADMD: &str = env!("CARGO_BIN_EXE_omadmd");

/// A daemon's log lines, each with the moment it was read.
pub struct Log(pub Receiver<(Instant, String)>);

impl Log {
    /// Reads `child`'s stderr on a thread of its own.
    pub fn of(child: &mut Reaped) -> Log {
        let (tx, rx) = channel();
        let stderr = child.0.stderr.take().expect("stderr piped");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send((Instant::now(), line));
            }
        });
        Log(rx)
    }

    /// Waits (at most `timeout`) for a line holding `needle` and returns when it came;
    /// panics on a line holding any of `forbidden` first.
    pub fn wait_for(&self, needle: &str, timeout: Duration, forbidden: &[&str]) -> Instant {
        loop {
            let (at, line) = self
                .0
                .recv_timeout(timeout)
                .unwrap_or_else(|_| panic!("no {needle:?} from omadmd"));
            if let Some(f) = forbidden.iter().find(|f| line.contains(**f)) {
                panic!("{f:?} before {needle:?}: {line}");
            }
            if line.contains(needle) {
                return at;
            }
        }
    }

    /// Drops the lines read so far.
    pub fn clear(&self) {
        while self.0.try_recv().is_ok() {}
    }
}

/// Starts the test server's library on a free loopback port, on its own thread and
/// runtime as a separate process would be, playing `script`; returns its base URL.
pub fn start_testserver(script: serde_json::Value) -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let script: omadm_testserver::Script = serde_json::from_value(script).expect("script");
    let opts = omadm_testserver::Options {
        listen: format!("127.0.0.1:{port}").parse().expect("addr"),
        tls: false,
        ca_out: None,
        client_cert_out: None,
        record: None,
        verbose: false,
    };
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let _ = rt.block_on(omadm_testserver::serve(script, opts));
    });
    std::thread::sleep(Duration::from_millis(200));
    format!("http://127.0.0.1:{port}")
}

/// Writes `text` to `rel` below `root`, making its directories.
pub fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, text).expect("write");
}

/// Puts the demo account (server `demo-server` at `base`) in `root`'s bootstrap directory.
pub fn demo_account(root: &Path, base: &str) {
    let demo = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo/bootstrap.d/10-demo-server.json"),
    )
    .expect("demo bootstrap")
    .replace("{base}", base);
    write(root, "etc/omadmd/bootstrap.d/10-demo-server.json", &demo);
}

/// A `/proc/PID/status` field in KiB ("self" for this process).
fn status_kib(pid: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// `VmRSS` of a process, in KiB ("self" for this one).
pub fn rss_kib(pid: &str) -> u64 {
    status_kib(pid, "VmRSS:")
}

/// `RssAnon` of a process (its heap and stacks, what it allocated), in KiB; the rest of
/// `VmRSS` is file-backed (code, shared libraries) and shared memory.
pub fn anon_kib(pid: &str) -> u64 {
    status_kib(pid, "RssAnon:")
}

/// `VmHWM` (peak resident, since start or the last reset through `clear_refs`) of a
/// process, in KiB.
pub fn hwm_kib(pid: &str) -> u64 {
    status_kib(pid, "VmHWM:")
}
