//! SCOMO (`urn:oma:mo:oma-scomo:1.0`, OMA-TS-DM-SCOMO-V1_0) kept by PackageKit: one SCOMO
//! instance whose `Inventory/Deployed` lists the installed packages as PackageKit reports
//! them (ID, Name, Version, Description, State, Status), written whole in one transaction
//! (a 3,000-package inventory is one write, not 3,000) whenever it changed: at start,
//! when omadmd returns, and after PackageKit says packages changed.

use std::sync::Mutex;

use serde_json::json;

use super::packagekit::{self, PackageInfo as Package, PackageKitProxy};
use super::{HandlerError, Link, item};
use crate::protocol::dmmo::DataNode;

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

/// The node name a package is listed under: its name, with what a node name may not hold
/// (TS §6.1.1 real names: letters, digits, `-._~`) replaced by `_`, and `~2`, `~3`… after
/// a name another package already took.
pub fn node_names(packages: &[Package]) -> Vec<String> {
    let mut taken = std::collections::HashSet::new();
    packages
        .iter()
        .map(|p| {
            let base: String = p
                .name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "-._~".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            let base = if base == "." || base == ".." {
                format!("_{base}")
            } else {
                base
            };
            let mut name = base.clone();
            let mut n = 2;
            while !taken.insert(name.clone()) {
                name = format!("{base}~{n}");
                n += 1;
            }
            name
        })
        .collect()
}

/// `Inventory/Deployed` for `packages`.
pub fn deployed_data(packages: &[Package]) -> DataNode {
    let names = node_names(packages);
    DataNode::Interior(
        packages
            .iter()
            .zip(names)
            .map(|(p, name)| {
                let leaf = |v: serde_json::Value| DataNode::Leaf(v);
                (
                    name,
                    DataNode::Interior(vec![
                        ("ID".into(), leaf(json!(p.name))),
                        ("PkgIDRef".into(), leaf(json!(p.id))),
                        ("Name".into(), leaf(json!(p.name))),
                        ("Version".into(), leaf(json!(p.version))),
                        ("Description".into(), leaf(json!(p.summary))),
                        ("State".into(), leaf(json!(STATE_ACTIVE))),
                        ("Status".into(), leaf(json!(STATUS_IDLE))),
                        (
                            "Operations".into(),
                            DataNode::Interior(vec![("Remove".into(), DataNode::Interior(vec![]))]),
                        ),
                    ]),
                )
            })
            .collect(),
    )
}

/// `…/Status`: Remove Failed.
pub const STATUS_REMOVE_FAILED: i64 = 20;
/// `…/Status`: Remove Progressing.
pub const STATUS_REMOVE_PROGRESSING: i64 = 30;
/// The alert reporting an operation's outcome (DM 2.0 TS §13.1's SCOMO example).
pub const OPERATION_COMPLETE: &str = "urn:oma:at:scomo:1.0:OperationComplete";
/// SCOMO result code: Successful.
pub const RESULT_OK: u16 = 1200;
/// SCOMO result code: the Remove operation failed.
pub const RESULT_REMOVE_FAILED: u16 = 1408;

/// The component an EXEC of `Inventory/Deployed/<x>/Operations/Remove` names.
pub fn remove_target(client_uri: &str) -> Option<&str> {
    client_uri
        .strip_prefix(SCOMO)?
        .strip_prefix(&format!("/{MIID}/Inventory/Deployed/"))?
        .strip_suffix("/Operations/Remove")
        .filter(|x| !x.is_empty() && !x.contains('/'))
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
        "Mark": if code == RESULT_OK { "informational" } else { "critical" },
        "DataType": "application/json",
        "Data": {"ResultCode": code, "Identifier": id},
    })
}

/// The SCOMO handler's inventory side.
#[derive(Debug)]
pub struct Scomo {
    link: Link,
    packagekit: PackageKitProxy<'static>,
    /// The inventory last written, to write only a changed one.
    written: Mutex<Option<Vec<Package>>>,
    /// The transactions the handler itself started (its reads).
    own: Mutex<std::collections::HashSet<String>>,
}

impl Scomo {
    /// Over the daemon link and PackageKit.
    pub fn new(link: Link, packagekit: PackageKitProxy<'static>) -> Scomo {
        Scomo {
            link,
            packagekit,
            written: Mutex::new(None),
            own: Mutex::new(std::collections::HashSet::new()),
        }
    }

    /// Removes the component `x` (an EXEC of its `Operations/Remove`, accepted with 202)
    /// and reports the outcome with `token`.
    pub async fn remove(&self, token: String, client_uri: String, x: String) {
        let deployed = format!("{SCOMO}/{MIID}/Inventory/Deployed/{x}");
        let leaf = |n: &str| format!("{deployed}/{n}");
        let text = |v: Option<serde_json::Value>| {
            v.and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        };
        let id = text(self.link.read_leaf(&leaf("ID")).await.ok().flatten());
        let pkg = text(self.link.read_leaf(&leaf("PkgIDRef")).await.ok().flatten());
        let _ = self
            .link
            .put_leaf(&leaf("Status"), "Status", json!(STATUS_REMOVE_PROGRESSING))
            .await;
        let removed = packagekit::remove(
            &self.packagekit,
            |path| {
                self.own
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(path.to_owned());
            },
            &pkg,
        )
        .await;
        let code = match removed {
            Ok(()) => {
                tracing::info!(package = %pkg, "package removed");
                if let Err(e) = self.sync_inventory().await {
                    tracing::warn!(error = %e, "cannot read the inventory after the removal");
                }
                RESULT_OK
            }
            Err(e) => {
                tracing::warn!(error = %e, package = %pkg, "removal failed");
                let _ = self
                    .link
                    .put_leaf(&leaf("Status"), "Status", json!(STATUS_REMOVE_FAILED))
                    .await;
                RESULT_REMOVE_FAILED
            }
        };
        let alert = operation_complete(&client_uri, &deployed, code, &id).to_string();
        let status = if code == RESULT_OK { 200 } else { 500 };
        if let Err(e) = self
            .link
            .manager()
            .exec_result(&token, status, &alert)
            .await
        {
            tracing::error!(error = %e, "cannot report the SCOMO result");
        }
    }

    /// True when `transactions` (PackageKit's running ones) include one the handler did
    /// not start: something may be changing the packages.
    pub fn others_running(&self, transactions: &[String]) -> bool {
        let own = self.own.lock().unwrap_or_else(|p| p.into_inner());
        transactions.iter().any(|t| !own.contains(t))
    }

    /// Forgets what was written (omadmd restarted: its tree may be another).
    pub fn forget_written(&self) {
        *self.written.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Reads the installed packages from PackageKit and, when they changed, writes the
    /// instance (the first time) or `Inventory/Deployed` whole, in one transaction.
    /// Returns how many packages are listed.
    pub async fn sync_inventory(&self) -> Result<usize, HandlerError> {
        let mut packages = packagekit::installed(&self.packagekit, |path| {
            self.own
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(path.to_owned());
        })
        .await
        .map_err(|e| match e {
            packagekit::TransactionError::Bus(b) => HandlerError::Bus(b),
            other => HandlerError::Data(other.to_string()),
        })?;
        packages.sort_by(|a, b| (&a.name, &a.arch).cmp(&(&b.name, &b.arch)));
        let count = packages.len();
        if self
            .written
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            == Some(&packages)
        {
            return Ok(count);
        }
        let present = self
            .link
            .tree()
            .list_instances()
            .await?
            .iter()
            .any(|(moid, miid, _)| moid == SCOMO && miid == MIID);
        let put = if present {
            item(
                &format!("{SCOMO}/{MIID}/Inventory/Deployed"),
                "Deployed",
                deployed_data(&packages),
            )
        } else {
            item(
                &format!("{SCOMO}/{MIID}/"),
                MIID,
                DataNode::Interior(vec![
                    ("Download".into(), DataNode::Interior(vec![])),
                    (
                        "Inventory".into(),
                        DataNode::Interior(vec![
                            ("Delivered".into(), DataNode::Interior(vec![])),
                            ("Deployed".into(), deployed_data(&packages)),
                        ]),
                    ),
                ]),
            )
        };
        self.link.update(&[put], &[]).await?;
        tracing::info!(packages = count, "SCOMO inventory written");
        *self.written.lock().unwrap_or_else(|p| p.into_inner()) = Some(packages);
        Ok(count)
    }
}

/// The ExecHandler object omadmd calls: `Inventory/Deployed/<x>/Operations/Remove` is
/// carried out (202, then the OperationComplete alert); installing from `Download/<x>` is
/// not yet (501, Not Implemented).
#[derive(Debug)]
pub struct ExecObject(pub std::sync::Arc<Scomo>);

#[zbus::interface(name = "org.omadm.Client1.ExecHandler")]
impl ExecObject {
    /// An EXEC on a SCOMO node.
    async fn exec(
        &self,
        token: String,
        client_uri: String,
        _server_id: String,
        #[zbus(header)] header: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> (u32, String) {
        // Only omadmd asks for EXECs.
        if !crate::dbus::client::from_daemon(conn, &header).await {
            return (u32::from(crate::protocol::sc::FORBIDDEN), String::new());
        }
        let Some(x) = remove_target(&client_uri).map(str::to_owned) else {
            tracing::info!(node = %client_uri, "SCOMO operation not implemented yet");
            return (
                u32::from(crate::protocol::sc::NOT_IMPLEMENTED),
                String::new(),
            );
        };
        tracing::info!(node = %client_uri, "SCOMO removal accepted");
        let scomo = self.0.clone();
        tokio::spawn(async move { scomo.remove(token, client_uri, x).await });
        (u32::from(crate::protocol::sc::ACCEPTED), String::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(name: &str) -> Package {
        Package::parse(&format!("{name};1.0;amd64;installed"), "s").unwrap()
    }

    #[test]
    fn removals_name_one_component_and_report_as_the_ts_shows() {
        assert_eq!(
            remove_target(
                "urn:oma:mo:oma-scomo:1.0/SCOMO/Inventory/Deployed/bash/Operations/Remove"
            ),
            Some("bash")
        );
        for other in [
            "urn:oma:mo:oma-scomo:1.0/SCOMO/Inventory/Deployed//Operations/Remove",
            "urn:oma:mo:oma-scomo:1.0/SCOMO/Download/p1/Operations/DownloadInstall",
            "urn:oma:mo:oma-scomo:1.0/SCOMO/Inventory/Deployed/a/b/Operations/Remove",
        ] {
            assert_eq!(remove_target(other), None, "{other}");
        }
        let a = operation_complete("s", "t", RESULT_OK, "bash");
        assert_eq!(a["AlertType"], "urn:oma:at:scomo:1.0:OperationComplete");
        assert_eq!(a["Data"]["ResultCode"], 1200);
        assert_eq!(a["Data"]["Identifier"], "bash");
        assert_eq!(a["TargetURI"], "t");
        let parsed: crate::protocol::packages::Alert = serde_json::from_value(a).unwrap();
        assert_eq!(parsed.data_type.as_deref(), Some("application/json"));
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
        assert!(names.iter().all(|n| crate::protocol::uri::is_real_name(n)));
    }

    /// The shipped DDF takes the inventory the handler writes.
    #[test]
    fn the_shipped_definition_holds_the_inventory() {
        let def = crate::mo::ddf::parse(include_str!("../../data/ddf/scomo/oma-scomo-1.0.ddf.xml"))
            .unwrap();
        assert_eq!(def.moid, SCOMO);
        let deployed = crate::mo::def_at(&def.root, "Inventory/Deployed").unwrap();
        let nodes = crate::mo::build_nodes(
            SCOMO,
            Some(deployed),
            "Inventory/Deployed",
            &deployed_data(&[pkg("bash"), pkg("g++")]),
            1024,
        )
        .unwrap();
        let paths: Vec<&str> = nodes.iter().map(|n| n.path.as_str()).collect();
        for p in [
            "Inventory/Deployed/bash/Version",
            "Inventory/Deployed/g__/ID",
            "Inventory/Deployed/g__/State",
            "Inventory/Deployed/bash/Operations/Remove",
        ] {
            assert!(paths.contains(&p), "{p} in {paths:?}");
        }
    }
}
