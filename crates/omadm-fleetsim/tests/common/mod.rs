//! What the fleet tests share: a test server on loopback recording what it answers, and a
//! run of the omadm-fleetsim binary against it.

#![allow(dead_code)]

use std::process::Command;

use serde_json::Value;

/// The test server's library on a loopback port of its own, on a thread of its own, with
/// a record file; its base URL.
pub fn server(script: Value, record: &std::path::Path) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let script: omadm_testserver::Script = serde_json::from_value(script).unwrap();
    let opts = omadm_testserver::Options {
        listen: format!("127.0.0.1:{port}").parse().unwrap(),
        tls: false,
        ca_out: None,
        client_cert_out: None,
        record: Some(record.to_owned()),
        verbose: false,
    };
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(omadm_testserver::serve(script, opts))
    });
    // Until it answers.
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    format!("http://127.0.0.1:{port}")
}

/// Runs omadm-fleetsim with `scenario` against `base`, the server recording to `record`;
/// the JSON report and the text summary.
pub fn run(
    dir: &std::path::Path,
    base: &str,
    record: &std::path::Path,
    scenario: Value,
) -> (Value, String) {
    let file = dir.join("scenario.json");
    std::fs::write(&file, scenario.to_string()).unwrap();
    let json_out = dir.join("report.json");
    let out = Command::new(env!("CARGO_BIN_EXE_omadm-fleetsim"))
        .arg("--scenario")
        .arg(&file)
        .args(["--server", base])
        .arg("--scratch")
        .arg(dir)
        .arg("--json")
        .arg(&json_out)
        .arg("--server-record")
        .arg(record)
        .args(["--log", "error"])
        .output()
        .unwrap();
    let summary = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{summary}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = serde_json::from_slice(&std::fs::read(&json_out).unwrap()).unwrap();
    (report, summary)
}
