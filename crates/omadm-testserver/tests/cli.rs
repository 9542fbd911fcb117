//! The `omadm-testserver` binary as a user runs it: it says where it listens, refuses a
//! bad script with its path, sends a notification a DM client can decode, plays a fleet
//! script per device, and goes down for an outage window.

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

/// The server binary playing `script`, and its base address (host:port).
fn serve(dir: &std::path::Path, script: &str) -> (std::process::Child, String) {
    let path = dir.join("script.json");
    std::fs::write(&path, script).unwrap();
    let mut child = Command::new(BIN)
        .arg("--script")
        .arg(&path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let addr = first
        .trim()
        .strip_prefix("listening on http://")
        .unwrap()
        .to_owned();
    (child, addr)
}

/// A Package#1 from `devid` to `/dm`, over plain HTTP/1.1: the status line's code, the
/// response as text.
fn package1(addr: &str, devid: &str) -> (u16, String) {
    use std::io::{Read as _, Write as _};
    let body = r#"{"Alert":[{"AlertType":"urn:oma:at:dm:2.0:ClientInitiatedMgmt"}]}"#;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST /dm HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {}\r\nOMADM-DevID: {devid}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        omadm_proto::packages::P1_TYPE,
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap();
    (code, text)
}

#[test]
fn a_fleet_script_plays_from_the_start_for_every_device() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) = serve(
        dir.path(),
        r#"{"fleet": true, "sessions": [{"packages": [{"CMD": [["GET", "urn:x:first:1.0//"]]}]},
                                         {"packages": [{"CMD": [["GET", "urn:x:second:1.0//"]]}]}]}"#,
    );
    let seen: Vec<String> = ["dev-1", "dev-2", "dev-1", "dev-2", "dev-1"]
        .iter()
        .map(|d| package1(&addr, d).1)
        .collect();
    child.kill().unwrap();
    child.wait().unwrap();
    let played: Vec<&str> = seen
        .iter()
        .map(|t| {
            if t.contains("urn:x:first") {
                "first"
            } else if t.contains("urn:x:second") {
                "second"
            } else if t.contains("END") {
                "END"
            } else {
                "?"
            }
        })
        .collect();
    assert_eq!(played, ["first", "first", "second", "second", "END"]);
}

#[test]
fn an_outage_answers_every_dm_request_with_its_status_and_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) = serve(
        dir.path(),
        r#"{"fleet": true,
            "outages": [{"after_secs": 0, "for_secs": 1.5, "retry_after": "7"}],
            "sessions": [{"packages": [{"CMD": [["GET", "urn:x:first:1.0//"]]}]}]}"#,
    );
    let (down, text) = package1(&addr, "dev-1");
    std::thread::sleep(std::time::Duration::from_millis(1600));
    let (up, after) = package1(&addr, "dev-1");
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(down, 503, "{text}");
    assert!(
        text.to_ascii_lowercase().contains("retry-after: 7"),
        "{text}"
    );
    // The refused Package#1 took no session of the script.
    assert_eq!(up, 200, "{after}");
    assert!(after.contains("urn:x:first"), "{after}");
}
