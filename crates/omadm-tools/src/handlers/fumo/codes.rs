//! FUMO's numbers and names (OMA-TS-DM-FUMO-V1_0): the `State` values (§5.1.10), the
//! result codes (§6.2.4), the three operations with their alert types, and the target
//! and result alert of an EXEC.

use serde_json::{Map, Value as Json, json};

use super::FUMO;
use omadm_client::FetchFailure as Failure;

/// FUMO `State` values (§5.1.10).
pub mod state {
    /// Idle/Start: no pending operation.
    pub const IDLE: i64 = 10;
    /// Download Failed.
    pub const DOWNLOAD_FAILED: i64 = 20;
    /// Download Progressing.
    pub const DOWNLOAD_PROGRESSING: i64 = 30;
    /// Download Complete: the package is on the device.
    pub const DOWNLOAD_COMPLETE: i64 = 40;
    /// Ready to Update.
    pub const READY_TO_UPDATE: i64 = 50;
    /// Update Progressing.
    pub const UPDATE_PROGRESSING: i64 = 60;
    /// Update Failed / No Data: the package is gone.
    pub const UPDATE_FAILED_NO_DATA: i64 = 70;
    /// Update Failed / Have Data: the package is still here.
    pub const UPDATE_FAILED_HAVE_DATA: i64 = 80;
    /// Update Successful / Have Data.
    pub const UPDATE_SUCCESSFUL_HAVE_DATA: i64 = 90;
    /// Update Successful / No Data: the package was removed after it was applied.
    pub const UPDATE_SUCCESSFUL_NO_DATA: i64 = 100;
}

/// FUMO result codes (§6.2.4) the handler reports.
pub mod result {
    /// Successful.
    pub const SUCCESSFUL: u16 = 200;
    /// Management Client Error: the device or the user is not ready.
    pub const CLIENT_ERROR: u16 = 400;
    /// Alternate Download Authentication Failure.
    pub const DOWNLOAD_AUTH_FAILURE: u16 = 406;
    /// Alternate Download Request Time-Out.
    pub const DOWNLOAD_TIMEOUT: u16 = 407;
    /// Firmware Update Failed.
    pub const UPDATE_FAILED: u16 = 410;
    /// Malformed or Bad URL.
    pub const BAD_URL: u16 = 411;
    /// Alternate Download Server Unavailable (does not answer, or says it is unavailable).
    pub const DOWNLOAD_SERVER_UNAVAILABLE: u16 = 412;
    /// Alternate Download Server Error (it answered with an error).
    pub const DOWNLOAD_SERVER_ERROR: u16 = 500;
    /// Download fails due to the device being out of memory (or space).
    pub const DOWNLOAD_OUT_OF_MEMORY: u16 = 501;
    /// Download fails due to network issues.
    pub const DOWNLOAD_NETWORK: u16 = 503;
}

/// The three operations a server EXECs (§5.1.4–5.1.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Fetch the package at `Download/PkgURL`.
    Download,
    /// Install the package fetched before.
    Update,
    /// Both, without the server in between.
    DownloadAndUpdate,
}

impl Op {
    /// From the EXEC'd node's name.
    pub fn from_node(name: &str) -> Option<Op> {
        match name {
            "Download" => Some(Op::Download),
            "Update" => Some(Op::Update),
            "DownloadAndUpdate" => Some(Op::DownloadAndUpdate),
            _ => None,
        }
    }

    /// The node's name.
    pub fn node(self) -> &'static str {
        match self {
            Op::Download => "Download",
            Op::Update => "Update",
            Op::DownloadAndUpdate => "DownloadAndUpdate",
        }
    }

    /// The Generic Alert type reporting its completion (§6.2.2: the types FUMO registers,
    /// carried unchanged as the DM 2.0 AlertType, TS §13.1; docs/decisions.md).
    pub fn alert_type(self) -> &'static str {
        match self {
            Op::Download => "org.openmobilealliance.dm.firmwareupdate.download",
            Op::Update => "org.openmobilealliance.dm.firmwareupdate.update",
            Op::DownloadAndUpdate => "org.openmobilealliance.dm.firmwareupdate.downloadandupdate",
        }
    }
}

/// An EXEC'd ClientURI split into (MIID, operation): `urn:oma:mo:oma-fumo:1.0/<x>/<Op>`.
pub fn parse_target(client_uri: &str) -> Option<(String, Op)> {
    let rest = client_uri.strip_prefix(FUMO)?.strip_prefix('/')?;
    let (miid, node) = rest.split_once('/')?;
    if miid.is_empty() {
        return None;
    }
    Some((miid.to_owned(), Op::from_node(node.trim_end_matches('/'))?))
}

/// The Generic Alert reporting an operation's result (§6.2): the EXEC'd node as
/// SourceURI, the result code in Data, and a Mark other than informational on failure.
pub fn result_alert(op: Op, client_uri: &str, code: u16) -> Json {
    let mut data = Map::new();
    data.insert("ResultCode".into(), json!(code));
    json!({
        "AlertType": op.alert_type(),
        "SourceURI": client_uri,
        "Mark": if (200..300).contains(&code) { "informational" } else { "critical" },
        "DataType": "application/json",
        "Data": data,
    })
}

/// What a download's failure is, as a FUMO result code (§6.2.4).
pub fn download_result_code(failure: Failure) -> u16 {
    match failure {
        Failure::Setup => result::CLIENT_ERROR,
        Failure::BadUrl => result::BAD_URL,
        Failure::Auth => result::DOWNLOAD_AUTH_FAILURE,
        Failure::ServerUnavailable => result::DOWNLOAD_SERVER_UNAVAILABLE,
        Failure::ServerError => result::DOWNLOAD_SERVER_ERROR,
        Failure::NoSpace => result::DOWNLOAD_OUT_OF_MEMORY,
        Failure::Timeout => result::DOWNLOAD_TIMEOUT,
        Failure::Network => result::DOWNLOAD_NETWORK,
    }
}
