//! The architecture's rules, checked (docs/ARCHITECTURE.md): what the reusable crates may
//! depend on.

use std::process::Command;

/// `omadm-proto` is the wire formats with no I/O: none of the daemon's runtime, storage,
/// bus, HTTP or logging crates may be in its dependency tree, so anyone can build a DM 2.0
/// server or client on it.
#[test]
fn the_protocol_crate_depends_on_no_io() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "--locked",
            "-p",
            "omadm-proto",
            "-e",
            "normal,build",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    let crates: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        crates.contains(&"omadm-proto") && crates.contains(&"serde_json"),
        "{tree}"
    );
    for banned in [
        "tokio",
        "rusqlite",
        "zbus",
        "reqwest",
        "tracing",
        "hyper",
        "axum",
        "mio",
        "libsqlite3-sys",
        "omadmd",
    ] {
        assert!(
            !crates.contains(&banned),
            "{banned} is in omadm-proto's tree:\n{tree}"
        );
    }
}
