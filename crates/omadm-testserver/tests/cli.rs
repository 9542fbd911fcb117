//! The `omadm-testserver` binary as a user runs it: it says where it listens, refuses a
//! bad script with its path, and sends a notification a DM client can decode.

#![allow(clippy::unwrap_used, missing_docs)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_omadm-testserver");

#[test]
fn it_says_where_it_listens() {
    let mut child = Command::new(BIN).stdout(Stdio::piped()).spawn().unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        first.starts_with("listening on http://127.0.0.1:"),
        "{first}"
    );
}

#[test]
fn a_bad_script_is_refused_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("bad.json");
    std::fs::write(&script, "{\"sessions\": 3}").unwrap();
    let out = Command::new(BIN)
        .arg("--script")
        .arg(&script)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.json"), "{err}");
}

#[test]
fn it_sends_a_signed_notification_over_udp() {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let out = Command::new(BIN)
        .args(["--notify", &sock.local_addr().unwrap().to_string()])
        .args([
            "--server-id",
            "dms1",
            "--notification-id",
            "9",
            "--secret",
            "c2VjcmV0",
        ])
        .args(["--auth-data", "ZGF0YQ==", "--wap"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut buf = [0u8; 512];
    let n = sock.recv(&mut buf).unwrap();
    let p0 = omadm_proto::wap::unwrap(&buf[..n]).unwrap();
    let note = omadm_proto::package0::decode(p0).unwrap();
    assert_eq!(note.server_id.as_deref(), Some("dms1"));
    assert_eq!(note.notification_id, Some(9));
    assert!(omadm_proto::package0::verify(p0, &note, b"secret", b"data"));
}
