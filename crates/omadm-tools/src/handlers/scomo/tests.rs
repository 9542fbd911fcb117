//! Tests of the SCOMO handler: EXEC targets, outcomes and result codes, package kinds (the
//! shipped DDF against what it writes: the daemon's tests/it/handler_ddf.rs).

use super::install::file_stem;
use super::*;

fn pkg(name: &str) -> Package {
    Package::parse(&format!("{name};1.0;amd64;installed"), "s").unwrap()
}

#[test]
fn exec_targets_name_one_operation_on_one_component() {
    let op = |rest: &str| parse_target(&format!("urn:oma:mo:oma-scomo:1.0/SCOMO/{rest}"));
    assert_eq!(
        op("Inventory/Deployed/bash/Operations/Remove"),
        Some(Operation::Remove("bash".into()))
    );
    assert_eq!(
        op("Download/p1/Operations/DownloadInstall"),
        Some(Operation::DownloadInstall("p1".into()))
    );
    assert_eq!(
        op("Download/p1/Operations/Download"),
        Some(Operation::NotImplemented("p1".into()))
    );
    assert_eq!(
        op("Download/p1/Operations/DownloadInstallInactive"),
        Some(Operation::NotImplemented("p1".into()))
    );
    for other in [
        "Inventory/Deployed//Operations/Remove",
        "Inventory/Deployed/a/b/Operations/Remove",
        "Download//Operations/DownloadInstall",
        "Download/a/b/Operations/DownloadInstall",
        "Download/p1/Operations/Reboot",
        "Download/p1/PkgURL",
    ] {
        assert_eq!(op(other), None, "{other}");
    }
    assert_eq!(
        parse_target("urn:oma:mo:oma-scomo:1.0/Other/Download/p1/Operations/DownloadInstall"),
        None
    );
}

#[test]
fn outcomes_are_reported_as_the_ts_shows() {
    let a = operation_complete("s", "t", result::OK, "bash");
    assert_eq!(a["AlertType"], "urn:oma:at:scomo:1.0:OperationComplete");
    assert_eq!(a["Data"]["ResultCode"], 1200);
    assert_eq!(a["Data"]["Identifier"], "bash");
    assert_eq!(a["TargetURI"], "t");
    assert_eq!(a["Mark"], "informational");
    let parsed: omadm_proto::packages::Alert = serde_json::from_value(a).unwrap();
    assert_eq!(parsed.data_type.as_deref(), Some("application/json"));
    let failed = operation_complete("s", "t", result::INSTALL_FAILED, "p1");
    assert_eq!(failed["Mark"], "critical");
}

#[test]
fn failures_become_scomo_result_codes() {
    for (failure, code) in [
        (Failure::BadUrl, 1402),
        (Failure::Timeout, 1402),
        (Failure::Network, 1402),
        (Failure::Auth, 1403),
        (Failure::NoSpace, 1404),
        (Failure::ServerError, 1500),
        (Failure::ServerUnavailable, 1501),
        (Failure::Setup, 1400),
    ] {
        assert_eq!(download_result_code(failure), code, "{failure:?}");
    }
    let pk = |code| TransactionError::Failed {
        code,
        details: String::new(),
    };
    // PkErrorEnum: package-corrupt, cannot-install-repo-unsigned, no-space-on-device,
    // incompatible-architecture, package-failed-to-install, package-download-failed.
    for (code, result) in [
        (40, 1407),
        (50, 1407),
        (46, 1406),
        (45, 1413),
        (58, 1405),
        (10, 1402),
    ] {
        assert_eq!(install_result_code(&pk(code)), result, "PkErrorEnum {code}");
    }
    let bus = TransactionError::Bus(zbus::Error::Failure("gone".into()));
    assert_eq!(install_result_code(&bus), 1405);
}

#[test]
fn package_files_are_known_by_their_first_bytes() {
    assert_eq!(
        package_kind(b"!<arch>\ndebian-binary   1700000000"),
        Some("deb")
    );
    assert_eq!(package_kind(&[0xed, 0xab, 0xee, 0xdb, 3, 0]), Some("rpm"));
    assert_eq!(package_kind(b"!<arch>\nlibfoo.o/"), None);
    assert_eq!(package_kind(b"<html>"), None);
    assert_eq!(package_kind(b""), None);
}

#[test]
fn each_download_entry_has_a_file_name_of_its_own() {
    assert_eq!(file_stem("p1"), "download-p1");
    assert_eq!(file_stem("a_b-2"), "download-a_b-2");
    // Dots and the like are spelled out: no two entries share a file, none leaves
    // the directory.
    assert_eq!(file_stem(".."), "download~2e2e");
    assert_ne!(file_stem("a.b"), file_stem("a_b"));
    assert_ne!(file_stem("a.b"), file_stem("a~b"));
}

#[test]
fn only_what_changed_is_written() {
    let mut upgraded = pkg("bash");
    upgraded.version = "2.0".into();
    let (put, delete) = inventory_changes(
        &[pkg("bash"), pkg("g++"), pkg("libc6")],
        &[upgraded, pkg("g++"), pkg("zsh")],
    );
    let deployed = "urn:oma:mo:oma-scomo:1.0/SCOMO/Inventory/Deployed";
    let uris: Vec<&str> = put.iter().map(|i| i.client_uri.as_str()).collect();
    assert_eq!(
        uris,
        [format!("{deployed}/bash"), format!("{deployed}/zsh")]
    );
    assert_eq!(delete, [format!("{deployed}/libc6")]);
    // Unchanged: nothing at all.
    let same = [pkg("bash"), pkg("g++")];
    assert_eq!(inventory_changes(&same, &same), (vec![], vec![]));
}

#[test]
fn every_package_gets_a_node_name_of_its_own() {
    let names = node_names(&[
        pkg("bash"),
        pkg("g++"),
        pkg("g__"),
        pkg("g++"),
        pkg("libc6"),
    ]);
    assert_eq!(names, ["bash", "g__", "g__~2", "g__~3", "libc6"]);
    assert!(names.iter().all(|n| omadm_proto::uri::is_real_name(n)));
}
