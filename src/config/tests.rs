//! Tests of configuration loading: layer precedence, masking, flags, and errors that name
//! the file and key.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use super::*;

fn write(root: &Path, rel: &str, text: &str) -> PathBuf {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    p
}

fn sources(root: &Path) -> Sources {
    Sources {
        root: Some(root.to_owned()),
        ..Sources::default()
    }
}

#[test]
fn defaults_without_any_file() {
    let dir = tempfile::tempdir().unwrap();
    let s = load(&sources(dir.path())).unwrap();
    assert!(s.files.is_empty());
    assert_eq!(s.paths.state_dir, dir.path().join("var/lib/omadmd"));
    assert_eq!(s.database(), dir.path().join("var/lib/omadmd/tree.db"));
    assert_eq!(
        s.paths.bootstrap_dir,
        dir.path().join("etc/omadmd/bootstrap.d")
    );
    assert_eq!(
        s.paths.ddf_dirs,
        [
            dir.path().join("usr/share/omadmd/ddf"),
            dir.path().join("etc/omadmd/ddf")
        ]
    );
    assert_eq!(s.limits, Limits::default());
    assert_eq!(
        (s.limits.max_server_bytes, s.limits.max_server_instances),
        (64 << 20, 1000)
    );
    assert_eq!(
        (
            s.notifications.min_interval_secs,
            s.notifications.rate_total
        ),
        (60, 1000)
    );
    assert!(!s.http.allow_private_targets && !s.http.allow_insecure_auth);
    assert!(s.http.allow_targets.is_empty());
    // Spread polls and retries; a notification's session at once.
    assert!(s.sessions.jitter);
    assert_eq!(s.notifications.start_within_secs, 0);
    assert_eq!(s.log.level, "info");
    // systemd's $STATE_DIRECTORY is the default when no file sets one.
    let mut src = sources(dir.path());
    src.state_directory_env = Some("/var/lib/private/omadmd".into());
    assert_eq!(
        load(&src).unwrap().paths.state_dir,
        Path::new("/var/lib/private/omadmd")
    );
}

#[test]
fn layers_apply_in_order_and_same_names_override() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    write(
        r,
        "etc/omadmd/omadmd.toml",
        "[limits]\nmax-node-value-bytes = 100\nmax-package-bytes = 2000\nmax-nodes-per-document = 10\n[log]\nlevel = \"warn\"\n",
    );
    // Same name in three layers: /etc wins over /run wins over /usr/lib.
    write(
        r,
        "usr/lib/omadmd/config.d/50-vendor.toml",
        "[limits]\nmax-node-value-bytes = 200\n[devinfo]\nman = \"Vendor\"\n",
    );
    write(
        r,
        "run/omadmd/config.d/50-vendor.toml",
        "[limits]\nmax-node-value-bytes = 300\n",
    );
    write(
        r,
        "etc/omadmd/config.d/50-vendor.toml",
        "[limits]\nmax-node-value-bytes = 400\n",
    );
    // Different names apply in name order across layers: 60 after 50, 10 before both.
    write(
        r,
        "usr/lib/omadmd/config.d/60-later.toml",
        "[limits]\nmax-package-bytes = 3000\n",
    );
    write(
        r,
        "run/omadmd/config.d/10-early.toml",
        "[limits]\nmax-package-bytes = 9999\nmax-nodes-per-document = 20\n",
    );
    let s = load(&sources(r)).unwrap();
    assert_eq!(s.limits.max_node_value_bytes, 400);
    assert_eq!(s.limits.max_package_bytes, 3000);
    assert_eq!(s.limits.max_nodes_per_document, 20);
    assert_eq!(s.log.level, "warn");
    assert_eq!(
        s.devinfo.man, None,
        "the /usr/lib file was replaced whole by /etc's"
    );
    let names: Vec<String> = s
        .files
        .iter()
        .map(|f| f.strip_prefix(r).unwrap().display().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "etc/omadmd/omadmd.toml",
            "run/omadmd/config.d/10-early.toml",
            "etc/omadmd/config.d/50-vendor.toml",
            "usr/lib/omadmd/config.d/60-later.toml"
        ]
    );
}

#[test]
fn dev_null_links_and_empty_files_mask() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    write(
        r,
        "usr/lib/omadmd/config.d/50-a.toml",
        "[limits]\nmax-node-value-bytes = 200\n",
    );
    write(
        r,
        "usr/lib/omadmd/config.d/51-b.toml",
        "[limits]\nmax-package-bytes = 5000\n",
    );
    std::fs::create_dir_all(r.join("etc/omadmd/config.d")).unwrap();
    symlink("/dev/null", r.join("etc/omadmd/config.d/50-a.toml")).unwrap();
    write(r, "run/omadmd/config.d/51-b.toml", "");
    let s = load(&sources(r)).unwrap();
    assert_eq!(s.limits, Limits::default());
    assert!(s.files.is_empty());
}

#[test]
fn flags_win_over_files() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    write(
        r,
        "etc/omadmd/omadmd.toml",
        "[paths]\nstate-dir = \"/srv/a\"\nbootstrap-dir = \"/srv/b\"\n",
    );
    let mut src = sources(r);
    src.flags.paths.state_dir = Some("/tmp/x".into());
    src.state_directory_env = Some("/var/lib/env".into());
    let s = load(&src).unwrap();
    assert_eq!(s.paths.state_dir, Path::new("/tmp/x"));
    assert_eq!(s.paths.bootstrap_dir, Path::new("/srv/b"));
}

#[test]
fn explicit_main_file_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let mut src = sources(dir.path());
    src.main = Some(dir.path().join("nope.toml"));
    let err = load(&src).unwrap_err().to_string();
    assert!(
        err.contains("nope.toml") && err.contains("No such file"),
        "{err}"
    );
}

#[test]
fn errors_name_the_file_and_the_key() {
    let cases = [
        ("[limits]\nmax-node-value-byte = 5\n", "max-node-value-byte"),
        (
            "[limits]\nmax-node-value-bytes = \"big\"\n",
            "max-node-value-bytes",
        ),
        (
            "[limits]\nmax-node-value-bytes = 0\n",
            "limits.max-node-value-bytes: 0 is outside",
        ),
        (
            "[limits]\nmax-package-bytes = 10\n",
            "limits.max-package-bytes",
        ),
        (
            "[paths]\nstate-dir = \"relative/dir\"\n",
            "paths.state-dir: relative/dir is not an absolute path",
        ),
        (
            "[paths]\nddf-dirs = [\"/ok\", \"rel\"]\n",
            "paths.ddf-dirs: rel",
        ),
        ("[log]\nlevel = \"[[[\"\n", "log.level"),
        (
            "[devinfo]\ndev-id = \" \"\n",
            "devinfo.dev-id: must not be empty",
        ),
        ("[devinfo]\ncolour = \"red\"\n", "colour"),
        (
            "[http]\nallow-targets = [\"10.0.0.0/8\", \"http://x\"]\n",
            "http.allow-targets: \"http://x\" is neither",
        ),
        (
            "[notifications]\nrate-total = 0\n",
            "notifications.rate-total: must be at least 1",
        ),
        (
            "[limits]\nmax-server-instances = 0\n",
            "limits.max-server-instances: 0 is outside",
        ),
        (
            "[notifications]\nstart-within-secs = 86401\n",
            "notifications.start-within-secs: 86401 is outside 0..=86400",
        ),
        ("[sessions]\njitter = \"no\"\n", "jitter"),
        ("[nonsense]\n", "nonsense"),
        ("this is not toml", "this is not toml"),
        // The syslog spelling parses as a tracing filter that silences everything.
        (
            "[log]\nlevel = \"warning\"\n",
            "log.level: \"warning\" is not a log level: use one of off, error, warn",
        ),
        ("[log]\nlevel = \"info,omadmd=loud\"\n", "log.level"),
        (
            "[sessions]\nretry-base-secs = 100\nretry-max-secs = 50\n",
            "sessions.retry-base-secs: 100 is larger than sessions.retry-max-secs (50)",
        ),
        (
            "[sessions]\nretry-base-secs = 7200\n",
            "sessions.retry-base-secs: 7200 is larger than sessions.retry-max-secs (3600)",
        ),
        (
            "[http]\nca-file = \"/nonexistent/omadmd-ca.pem\"\n",
            "http.ca-file: /nonexistent/omadmd-ca.pem: No such file",
        ),
        (
            "[http]\nca-file = \"/etc/hostname\"\n",
            "http.ca-file: /etc/hostname holds no PEM certificate",
        ),
    ];
    for (text, want) in cases {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "etc/omadmd/config.d/20-bad.toml", text);
        let err = load(&sources(dir.path())).unwrap_err().to_string();
        assert!(
            err.starts_with(&file.display().to_string()),
            "{text:?} → {err}"
        );
        assert!(err.contains(want), "{text:?} → {err}");
    }
    // Levels and filters that name levels pass.
    for ok in [
        "warn",
        "INFO",
        "off",
        "info,omadmd::session=debug",
        "omadmd=trace",
    ] {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "etc/omadmd/omadmd.toml",
            &format!("[log]\nlevel = {ok:?}\n"),
        );
        assert!(load(&sources(dir.path())).is_ok(), "{ok}");
    }
    let mut src = sources(tempfile::tempdir().unwrap().path());
    src.flags.paths.state_dir = Some("rel".into());
    let err = load(&src).unwrap_err().to_string();
    assert!(err.starts_with("command line: paths.state-dir"), "{err}");
}

#[test]
fn merged_output_reads_back_as_the_same_settings() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    write(
        r,
        "etc/omadmd/omadmd.toml",
        "[devinfo]\nman = \"ACME\"\nmod = \"X1\"\n[limits]\nmax-package-bytes = 2048\n",
    );
    let s = load(&sources(r)).unwrap();
    let text = s.to_toml();
    assert!(
        text.contains(&format!(
            "#   {}",
            r.join("etc/omadmd/omadmd.toml").display()
        )),
        "{text}"
    );
    // The printed configuration is itself a valid main file giving the same settings.
    let printed = write(r, "printed.toml", &text);
    let mut src = sources(tempfile::tempdir().unwrap().path());
    src.main = Some(printed.clone());
    let mut again = load(&src).unwrap();
    // Fixed below the root it was loaded from, and not printed.
    again.paths.handler_dirs = s.paths.handler_dirs.clone();
    assert_eq!(again.paths, s.paths);
    assert_eq!(again.limits, s.limits);
    assert_eq!(again.devinfo, s.devinfo);
    assert_eq!(again.log, s.log);
}
