//! The four programs as built: each answers `--version` with its own name and the
//! workspace's version, and refuses an unknown option with status 2, as clap's tools do.
//! (Their behaviour against a real daemon is tested by the daemon's tests/it, which runs
//! these very binaries.)

use std::process::Command;

const PROGRAMS: [(&str, &str); 5] = [
    ("omadmctl", env!("CARGO_BIN_EXE_omadmctl")),
    ("omadm-agent", env!("CARGO_BIN_EXE_omadm-agent")),
    ("omadm-fwupd", env!("CARGO_BIN_EXE_omadm-fwupd")),
    ("omadm-dcmo", env!("CARGO_BIN_EXE_omadm-dcmo")),
    ("omadm-packagekit", env!("CARGO_BIN_EXE_omadm-packagekit")),
];

#[test]
fn each_program_names_itself_and_refuses_unknown_options() {
    for (name, exe) in PROGRAMS {
        let out = Command::new(exe).arg("--version").output().unwrap();
        assert!(out.status.success(), "{name}: {out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            format!("{name} {}", env!("CARGO_PKG_VERSION")),
        );
        let out = Command::new(exe).arg("--no-such-option").output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}: {out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("--no-such-option"),
            "{name}: {out:?}"
        );
    }
}
