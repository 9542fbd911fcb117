//! SCOMO (`urn:oma:mo:oma-scomo:1.0`, OMA-TS-DM-SCOMO-V1_0) kept by PackageKit: one SCOMO
//! instance whose `Inventory/Deployed` lists the installed packages as PackageKit reports
//! them (ID, Name, Version, Description, State, Status), in one transaction (a
//! 3,000-package inventory is one write, not 3,000): whole at start and when omadmd
//! returns, and only the components that changed after PackageKit says packages changed.
//! It carries out the
//! operations a server EXECs: `Download/<x>/Operations/DownloadInstall` (a package file
//! fetched from `PkgURL` and installed with `InstallFiles`, or a package of the
//! distribution by `Name` with `InstallPackages`) and
//! `Inventory/Deployed/<x>/Operations/Remove` (`RemovePackages`), each answered 202 and
//! reported as the `OperationComplete` alert with a SCOMO result code.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Mutex;

use serde_json::json;

use super::packagekit::{self, PackageInfo as Package, PackageKitProxy, TransactionError};
use super::{HandlerError, Link, item};
use omadm_client::FetchFailure as Failure;
use omadm_proto::dmmo::DataNode;

/// The SCOMO MOID.
pub const SCOMO: &str = "urn:oma:mo:oma-scomo:1.0";
/// The one instance's MIID.
pub const MIID: &str = "SCOMO";
/// The well-known bus name omadm-packagekit owns and registers under.
pub const BUS_NAME: &str = "org.omadm.PackageKit1";
/// Where its ExecHandler object lives.
pub const OBJECT_PATH: &str = "/org/omadm/PackageKit1";

/// `Inventory/Deployed/<x>/State`: Active.
pub const STATE_ACTIVE: i64 = 20;
/// `…/Status`: Idle.
pub const STATUS_IDLE: i64 = 10;

mod codes;
mod install;
mod inventory;
pub use codes::{
    OPERATION_COMPLETE, Operation, STATUS_REMOVE_FAILED, STATUS_REMOVE_PROGRESSING,
    download_result_code, download_status, install_result_code, operation_complete, parse_target,
    result,
};
pub use install::{archive_intact, package_kind};
pub use inventory::{deployed_data, inventory_changes, inventory_item, node_names};

/// Where the packages the daemon fetches for the handler wait for their install, and the
/// largest it takes.
#[derive(Debug, Clone)]
pub struct Downloads {
    /// The state directory.
    pub dir: PathBuf,
    /// The largest package fetched, in bytes.
    pub max_bytes: u64,
}

/// What an install attempt left for a restart to find: the package it was installing.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Installing {
    name: String,
    version: String,
}

/// An operation's outcome: the result code, the component it concerns (a
/// `Inventory/Deployed/<x>` when one is installed, else the node operated on) and its ID.
struct Outcome {
    code: u16,
    target: String,
    id: String,
}

/// The SCOMO handler.
#[derive(Debug)]
pub struct Scomo {
    link: Link,
    packagekit: PackageKitProxy<'static>,
    downloads: Downloads,
    /// The inventory last written, to write only a changed one.
    written: Mutex<Option<Vec<Package>>>,
    /// The transactions the handler itself started (its reads).
    own: Mutex<HashSet<String>>,
    /// The operations running, by the ClientURI of their component: one at a time each.
    running: Mutex<HashSet<String>>,
}

impl Scomo {
    /// Over the daemon link and PackageKit, fetching packages as `downloads` says.
    pub fn new(link: Link, packagekit: PackageKitProxy<'static>, downloads: Downloads) -> Scomo {
        Scomo {
            link,
            packagekit,
            downloads,
            written: Mutex::new(None),
            own: Mutex::new(HashSet::new()),
            running: Mutex::new(HashSet::new()),
        }
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hears the path of a transaction the handler starts.
    fn started(&self) -> impl FnOnce(&str) + '_ {
        |path| {
            self.own
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(path.to_owned());
        }
    }

    async fn text(&self, client_uri: &str) -> String {
        self.link
            .read_leaf(client_uri)
            .await
            .ok()
            .flatten()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    async fn set_status(&self, node: &str, value: i64) {
        if let Err(e) = self
            .link
            .put_leaf(&format!("{node}/Status"), "Status", json!(value))
            .await
        {
            tracing::warn!(error = %e, node, "cannot set the Status");
        }
    }

    /// Whether an EXEC of `client_uri` starts now: the operation (the caller answers 202
    /// and runs it), or the DM status refusing it (TS App. C) and, for a SCOMO operation
    /// the device does not carry out, the OperationComplete alert saying so (1411) that the
    /// daemon sends to the EXEC's ServerURI.
    pub fn accept(&self, client_uri: &str) -> Result<Operation, (u16, Option<serde_json::Value>)> {
        let op = parse_target(client_uri).ok_or((omadm_proto::sc::NOT_ALLOWED, None))?;
        let component = match &op {
            Operation::Remove(x) => format!("{SCOMO}/{MIID}/Inventory/Deployed/{x}"),
            Operation::DownloadInstall(x) => format!("{SCOMO}/{MIID}/Download/{x}"),
            Operation::NotImplemented(x) => {
                let alert = operation_complete(
                    client_uri,
                    &format!("{SCOMO}/{MIID}/Download/{x}"),
                    result::NOT_IMPLEMENTED,
                    x,
                );
                return Err((omadm_proto::sc::NOT_IMPLEMENTED, Some(alert)));
            }
        };
        if !self.running().insert(component) {
            tracing::info!(node = %client_uri, "refused: another operation on this component runs");
            return Err((omadm_proto::sc::SERVICE_UNAVAILABLE, None));
        }
        Ok(op)
    }

    /// Runs an accepted operation to its end and reports it with `token`.
    pub async fn run(&self, token: String, client_uri: String, op: Operation) {
        let (component, outcome) = match op {
            Operation::Remove(x) => {
                let node = format!("{SCOMO}/{MIID}/Inventory/Deployed/{x}");
                let outcome = self.remove(&node).await;
                (node, outcome)
            }
            Operation::DownloadInstall(x) => {
                let node = format!("{SCOMO}/{MIID}/Download/{x}");
                let outcome = self.download_install(&node, &x, &token).await;
                (node, outcome)
            }
            Operation::NotImplemented(_) => return,
        };
        self.running().remove(&component);
        self.report(&token, &client_uri, &outcome).await;
    }

    async fn report(&self, token: &str, client_uri: &str, outcome: &Outcome) {
        let alert =
            operation_complete(client_uri, &outcome.target, outcome.code, &outcome.id).to_string();
        let status = if outcome.code == result::OK { 200 } else { 500 };
        match self.link.manager().exec_result(token, status, &alert).await {
            Ok(()) => {
                tracing::info!(node = %client_uri, result = outcome.code, "SCOMO result reported")
            }
            Err(e) => tracing::error!(error = %e, node = %client_uri, result = outcome.code,
                "cannot report the SCOMO result; it is reported when the daemon is back"),
        }
    }
}

/// The ExecHandler object omadmd calls: `Download/<x>/Operations/DownloadInstall` and
/// `Inventory/Deployed/<x>/Operations/Remove` are carried out (202, then the
/// OperationComplete alert); the other SCOMO operations are not (501, Not Implemented).
#[derive(Debug)]
pub struct ExecObject(pub std::sync::Arc<Scomo>);

#[zbus::interface(name = "org.omadm.Client1.ExecHandler")]
impl ExecObject {
    /// An EXEC on a SCOMO node.
    async fn exec(
        &self,
        token: String,
        client_uri: String,
        server_id: String,
        #[zbus(header)] header: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> (u32, String) {
        // Only omadmd asks for EXECs.
        if !omadm_client::agent::from_daemon(conn, &header).await {
            return (u32::from(omadm_proto::sc::FORBIDDEN), String::new());
        }
        let op = match self.0.accept(&client_uri) {
            Ok(op) => op,
            Err((status, alert)) => {
                tracing::info!(node = %client_uri, status, "SCOMO operation refused");
                return (
                    u32::from(status),
                    alert.map(|a| a.to_string()).unwrap_or_default(),
                );
            }
        };
        tracing::info!(node = %client_uri, server = %server_id, "SCOMO operation accepted");
        let scomo = self.0.clone();
        tokio::spawn(async move { scomo.run(token, client_uri, op).await });
        (u32::from(omadm_proto::sc::ACCEPTED), String::new())
    }
}

#[cfg(test)]
mod tests;
