//! The architecture's rules, checked (docs/ARCHITECTURE.md): what the crates may depend
//! on, and which module of the daemon may use which.

use std::process::Command;

/// The crates of `crates/` and what may never be in their dependency trees (normal and
/// build; `cargo tree -p <crate>`), with one crate each must have (so a broken query
/// cannot pass):
/// - `omadm-proto` is the wire formats with no I/O: none of the daemon's runtime,
///   storage, bus, HTTP or logging crates, so anyone can build a DM 2.0 server or client
///   on it.
/// - `omadm-client` is the D-Bus client others link: no async runtime (the program picks
///   zbus's executor), no storage, no HTTP, never the daemon.
/// - `omadm-tools` (omadmctl, the agent, the handlers) and `omadm-console` reach the daemon
///   only over D-Bus: never its library, nor its storage or HTTP client (handlers have the
///   daemon fetch their packages).
const CRATE_RULES: &[(&str, &str, &[&str])] = &[
    (
        "omadm-proto",
        "serde_json",
        &[
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
        ],
    ),
    (
        "omadm-client",
        "zbus",
        &[
            "tokio",
            "mio",
            "rusqlite",
            "libsqlite3-sys",
            "reqwest",
            "hyper",
            "omadmd",
        ],
    ),
    (
        "omadm-tools",
        "omadm-client",
        &["omadmd", "rusqlite", "libsqlite3-sys", "reqwest", "hyper"],
    ),
    (
        "omadm-console",
        "tracing",
        &["omadmd", "rusqlite", "reqwest", "zbus"],
    ),
];

#[test]
fn the_crates_depend_only_on_what_they_may() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    for (krate, must, banned) in CRATE_RULES {
        let out = Command::new(&cargo)
            .args([
                "tree",
                "--offline",
                "--locked",
                "-p",
                krate,
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
            crates.contains(krate) && crates.contains(must),
            "{krate}: {tree}"
        );
        for banned in *banned {
            assert!(
                !crates.contains(banned),
                "{banned} is in {krate}'s tree:\n{tree}"
            );
        }
    }
}

/// What each module of the daemon may not use: the rule table of docs/ARCHITECTURE.md
/// ("Who may use whom"), in a form a test can hold the code to. `ours` are the daemon's
/// modules (`crate::<name>`), `crates` external crates; test code is not held to it.
const RULES: &[(&str, &[&str], &[&str])] = &[
    // (module, modules of ours it may use, crates it may not use)
    // tokio only to take a write off an async worker (`block_in_place`): the store awaits
    // nothing.
    ("tree", &[], &["reqwest", "zbus"]),
    ("host", &[], &["rusqlite", "reqwest", "zbus"]),
    ("heartbeat", &[], &["rusqlite", "reqwest", "zbus"]),
    ("memory", &[], &["rusqlite", "reqwest", "zbus", "tokio"]),
    (
        "mo",
        &["protocol", "tree", "host"],
        &["rusqlite", "reqwest", "zbus", "tokio"],
    ),
    (
        "config",
        &["mo", "transport"],
        &["rusqlite", "reqwest", "zbus"],
    ),
    (
        "engine",
        &["protocol", "tree", "mo"],
        &["rusqlite", "reqwest", "zbus"],
    ),
    (
        "session",
        &["engine", "protocol", "tree", "mo"],
        &["rusqlite", "reqwest", "zbus"],
    ),
    ("scheduler", &["engine"], &["rusqlite", "reqwest", "zbus"]),
    (
        "transport",
        &["engine", "session", "protocol"],
        &["rusqlite", "zbus"],
    ),
    (
        "ports",
        &["engine", "transport", "tree", "dbus", "mo", "protocol"],
        &["rusqlite"],
    ),
    (
        "notify",
        &["protocol", "tree", "mo", "heartbeat"],
        &["rusqlite", "reqwest", "zbus"],
    ),
    (
        "state",
        &["tree", "mo", "host", "notify"],
        &["reqwest", "zbus"],
    ),
    (
        "dbus",
        &[
            "state",
            "scheduler",
            "notify",
            "engine",
            "mo",
            "protocol",
            "tree",
            "session",
        ],
        &["rusqlite", "reqwest"],
    ),
];

/// The non-test source of a module: its file, or every file under its directory, with
/// `#[cfg(test)]` modules, `tests.rs` files and `tests/` directories left out.
fn module_source(name: &str) -> Vec<(std::path::PathBuf, String)> {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let file = src.join(format!("{name}.rs"));
    if file.exists() {
        files.push(file);
    }
    let mut dirs = vec![src.join(name)];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|f| f != "tests") {
                    dirs.push(p);
                }
            } else if p.extension().is_some_and(|x| x == "rs")
                && p.file_name().is_some_and(|f| f != "tests.rs")
            {
                files.push(p);
            }
        }
    }
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let code = text
                .split("#[cfg(test)]")
                .next()
                .unwrap_or_default()
                .to_owned();
            (p, code)
        })
        .collect()
}

#[test]
fn modules_use_only_what_the_architecture_allows() {
    let mut broken = Vec::new();
    for (module, may, crates) in RULES {
        let files = module_source(module);
        assert!(!files.is_empty(), "no source for module {module}");
        for (path, code) in files {
            for (n, line) in code.lines().enumerate() {
                let line = line.trim_start();
                if line.starts_with("//") {
                    continue;
                }
                for used in line.split("crate::").skip(1) {
                    let name: String = used
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() && name != *module && !may.contains(&name.as_str()) {
                        broken.push(format!(
                            "{}:{}: {module} uses crate::{name}",
                            path.display(),
                            n + 1
                        ));
                    }
                }
                for c in *crates {
                    if line.contains(&format!("{c}::")) && !line.contains(&format!("_{c}::")) {
                        broken.push(format!(
                            "{}:{}: {module} uses the {c} crate",
                            path.display(),
                            n + 1
                        ));
                    }
                }
            }
        }
    }
    assert!(
        broken.is_empty(),
        "the code breaks docs/ARCHITECTURE.md's rule table:\n{}",
        broken.join("\n")
    );
}
