//! What the benchmarks share: the test server on loopback, a scratch device root with the
//! demo account, and resident memory from /proc.

#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

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
