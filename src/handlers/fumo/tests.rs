//! Tests of the FUMO handler: the shipped DDF against what the handler writes, the
//! targets and alerts of EXECs, and the result codes.

use super::*;
use omadm_client::FetchFailure as Failure;

/// The DDF shipped with the handler parses, and defines what the handler writes and
/// what servers EXEC.
#[test]
fn the_shipped_definition_holds_what_the_handler_writes() {
    let def =
        crate::mo::ddf::parse(include_str!("../../../data/ddf/fumo/oma-fumo-1.0.ddf.xml")).unwrap();
    assert_eq!(def.moid, FUMO);
    let device = Device {
        id: "08d4".into(),
        name: "Webcam".into(),
        version: "1.2.2".into(),
        ..Device::default()
    };
    let nodes =
        crate::mo::build_nodes(FUMO, Some(&def.root), "", &instance_data(&device), 1024).unwrap();
    let paths: Vec<&str> = nodes.iter().map(|n| n.path.as_str()).collect();
    for p in [
        "PkgVersion",
        "Download/PkgURL",
        "Update",
        "DownloadAndUpdate/PkgURL",
        "State",
        "Ext/Vendor",
    ] {
        assert!(paths.contains(&p), "{p} in {paths:?}");
    }
    for op in ["Download", "Update", "DownloadAndUpdate"] {
        let exec = nodes.iter().find(|n| n.path == op).unwrap();
        assert!(
            exec.props.access.contains(crate::tree::AccessType::EXEC),
            "{op}"
        );
    }
}

#[test]
fn targets_name_an_instance_and_an_operation() {
    assert_eq!(
        parse_target("urn:oma:mo:oma-fumo:1.0/08d4/DownloadAndUpdate"),
        Some(("08d4".into(), Op::DownloadAndUpdate))
    );
    assert_eq!(
        parse_target("urn:oma:mo:oma-fumo:1.0/08d4/Update/"),
        Some(("08d4".into(), Op::Update))
    );
    for bad in [
        "urn:oma:mo:oma-fumo:1.0/08d4/State",
        "urn:oma:mo:oma-fumo:1.0//Download",
        "urn:oma:mo:oma-fumo:1.0/08d4",
        "urn:oma:mo:other:1.0/08d4/Download",
    ] {
        assert_eq!(parse_target(bad), None, "{bad}");
    }
}

#[test]
fn results_are_alerts_of_the_operations_type() {
    let ok = result_alert(
        Op::DownloadAndUpdate,
        "urn:oma:mo:oma-fumo:1.0/d/DownloadAndUpdate",
        200,
    );
    assert_eq!(
        ok["AlertType"],
        "org.openmobilealliance.dm.firmwareupdate.downloadandupdate"
    );
    assert_eq!(
        ok["SourceURI"],
        "urn:oma:mo:oma-fumo:1.0/d/DownloadAndUpdate"
    );
    assert_eq!(ok["Data"]["ResultCode"], 200);
    assert_eq!(ok["Mark"], "informational");
    let failed = result_alert(Op::Download, "x", 503);
    assert_eq!(
        failed["AlertType"],
        "org.openmobilealliance.dm.firmwareupdate.download"
    );
    assert_eq!(failed["Mark"], "critical");
    assert_eq!(
        result_alert(Op::Update, "x", 410)["AlertType"],
        "org.openmobilealliance.dm.firmwareupdate.update"
    );
    // It is a Generic Alert the daemon takes.
    let parsed: crate::protocol::packages::Alert = serde_json::from_value(ok).unwrap();
    assert_eq!(parsed.data_type.as_deref(), Some("application/json"));
}

#[test]
fn download_failures_become_result_codes() {
    for (failure, code) in [
        (Failure::BadUrl, result::BAD_URL),
        (Failure::ServerError, result::DOWNLOAD_SERVER_ERROR),
        (
            Failure::ServerUnavailable,
            result::DOWNLOAD_SERVER_UNAVAILABLE,
        ),
        (Failure::Network, result::DOWNLOAD_NETWORK),
        (Failure::Auth, result::DOWNLOAD_AUTH_FAILURE),
        (Failure::NoSpace, result::DOWNLOAD_OUT_OF_MEMORY),
        (Failure::Timeout, result::DOWNLOAD_TIMEOUT),
        (Failure::Setup, result::CLIENT_ERROR),
    ] {
        assert_eq!(download_result_code(failure), code, "{failure:?}");
    }
}
