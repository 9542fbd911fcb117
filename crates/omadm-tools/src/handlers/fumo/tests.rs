//! Tests of the FUMO handler: the targets and alerts of EXECs, and the result codes (the
//! shipped DDF against what it writes: the daemon's tests/it/handler_ddf.rs).

use super::*;
use omadm_client::FetchFailure as Failure;

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
    let parsed: omadm_proto::packages::Alert = serde_json::from_value(ok).unwrap();
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
