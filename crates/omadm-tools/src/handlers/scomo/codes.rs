//! SCOMO's numbers and names (OMA-TS-DM-SCOMO-V1_0): statuses, download states, result
//! codes, the operations a server EXECs and the `OperationComplete` alert.

use super::*;

/// `Inventory/Deployed/<x>/Status`: Remove Failed.
pub const STATUS_REMOVE_FAILED: i64 = 20;
/// `Inventory/Deployed/<x>/Status`: Remove Progressing.
pub const STATUS_REMOVE_PROGRESSING: i64 = 30;

/// `Download/<x>/Status` values (the SCOMO DDF).
pub mod download_status {
    /// Idle: nothing runs (again after a successful install).
    pub const IDLE: i64 = 10;
    /// The download failed.
    pub const DOWNLOAD_FAILED: i64 = 20;
    /// Downloading.
    pub const DOWNLOAD_PROGRESSING: i64 = 30;
    /// Downloaded.
    pub const DOWNLOAD_COMPLETE: i64 = 40;
    /// Installing.
    pub const INSTALL_PROGRESSING: i64 = 50;
    /// The install failed; the package is gone (the handler keeps no failed package).
    pub const INSTALL_FAILED_NO_DATA: i64 = 70;
}

/// The alert reporting an operation's outcome (DM 2.0 TS §13.1's SCOMO example).
pub const OPERATION_COMPLETE: &str = "urn:oma:at:scomo:1.0:OperationComplete";

/// SCOMO result codes (OMA-TS-DM-SCOMO-V1_0 §8.7) the handler reports.
pub mod result {
    /// Successful.
    pub const OK: u16 = 1200;
    /// Client error: the device's own fault (its configuration, its state).
    pub const CLIENT_ERROR: u16 = 1400;
    /// The download failed.
    pub const DOWNLOAD_FAILED: u16 = 1402;
    /// The download server wanted credentials the device lacks.
    pub const DOWNLOAD_AUTH_FAILED: u16 = 1403;
    /// No room on the device for the package.
    pub const DOWNLOAD_NO_SPACE: u16 = 1404;
    /// The install failed.
    pub const INSTALL_FAILED: u16 = 1405;
    /// The install failed for want of space.
    pub const INSTALL_NO_SPACE: u16 = 1406;
    /// The package failed validation: not a package, corrupted, its signature bad.
    pub const VALIDATION_FAILED: u16 = 1407;
    /// The removal failed.
    pub const REMOVE_FAILED: u16 = 1408;
    /// The device does not carry out the operation.
    pub const NOT_IMPLEMENTED: u16 = 1411;
    /// The package is for another environment (architecture, package format).
    pub const UNSUPPORTED_ENVIRONMENT: u16 = 1413;
    /// The download server answered with an error.
    pub const DOWNLOAD_SERVER_ERROR: u16 = 1500;
    /// The download server is unavailable or does not answer.
    pub const DOWNLOAD_SERVER_UNAVAILABLE: u16 = 1501;
}

/// What an EXEC on a SCOMO node asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// `Inventory/Deployed/<x>/Operations/Remove`.
    Remove(String),
    /// `Download/<x>/Operations/DownloadInstall`.
    DownloadInstall(String),
    /// Another SCOMO operation on `Download/<x>` (`Download` alone,
    /// `DownloadInstallInactive`): a Debian or RPM package has no inactive state, and a
    /// downloaded, uninstalled package is not kept.
    NotImplemented(String),
}

/// The operation an EXEC of `client_uri` names, `None` for a node that is no operation.
pub fn parse_target(client_uri: &str) -> Option<Operation> {
    let rest = client_uri
        .strip_prefix(SCOMO)?
        .strip_prefix(&format!("/{MIID}/"))?;
    let one = |x: &str| !x.is_empty() && !x.contains('/');
    if let Some(x) = rest
        .strip_prefix("Inventory/Deployed/")
        .and_then(|r| r.strip_suffix("/Operations/Remove"))
    {
        return one(x).then(|| Operation::Remove(x.to_owned()));
    }
    let (x, op) = rest.strip_prefix("Download/")?.split_once("/Operations/")?;
    if !one(x) {
        return None;
    }
    match op {
        "DownloadInstall" => Some(Operation::DownloadInstall(x.to_owned())),
        "Download" | "DownloadInstallInactive" => Some(Operation::NotImplemented(x.to_owned())),
        _ => None,
    }
}

/// What a download's failure is, as a SCOMO result code (§8.7).
pub fn download_result_code(failure: Failure) -> u16 {
    match failure {
        Failure::Setup => result::CLIENT_ERROR,
        Failure::Auth => result::DOWNLOAD_AUTH_FAILED,
        Failure::NoSpace => result::DOWNLOAD_NO_SPACE,
        Failure::ServerError => result::DOWNLOAD_SERVER_ERROR,
        Failure::ServerUnavailable => result::DOWNLOAD_SERVER_UNAVAILABLE,
        // SCOMO has no code of its own for a bad URL or a timeout.
        Failure::BadUrl | Failure::Timeout | Failure::Network => result::DOWNLOAD_FAILED,
    }
}

/// What PackageKit's error (`PkErrorEnum`) on an install is, as a SCOMO result code.
pub fn install_result_code(error: &TransactionError) -> u16 {
    let TransactionError::Failed { code, .. } = error else {
        return result::INSTALL_FAILED;
    };
    match code {
        // oom, no-space-on-device
        1 | 46 => result::INSTALL_NO_SPACE,
        // gpg-failure, bad-gpg-signature, missing-gpg-signature, invalid-package-file,
        // package-corrupt, cannot-install-repo-unsigned
        5 | 30 | 31 | 38 | 40 | 50 => result::VALIDATION_FAILED,
        // no-network, package-download-failed, repo-not-available, no-more-mirrors-to-try:
        // the package (or what it needs) could not be fetched.
        2 | 10 | 37 | 43 => result::DOWNLOAD_FAILED,
        // not-supported (a package format the backend does not take),
        // incompatible-architecture
        3 | 45 => result::UNSUPPORTED_ENVIRONMENT,
        _ => result::INSTALL_FAILED,
    }
}

/// The OperationComplete alert (the form of DM 2.0 TS §13.1): the EXEC'd node, the
/// component, the SCOMO result code and the component's ID.
pub fn operation_complete(
    client_uri: &str,
    component: &str,
    code: u16,
    id: &str,
) -> serde_json::Value {
    json!({
        "AlertType": OPERATION_COMPLETE,
        "SourceURI": client_uri,
        "TargetURI": component,
        "Mark": if code == result::OK { "informational" } else { "critical" },
        "DataType": "application/json",
        "Data": {"ResultCode": code, "Identifier": id},
    })
}
