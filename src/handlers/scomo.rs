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

/// The ExecHandler object omadmd calls. SCOMO's operations (installing from
/// `Download/<x>`, `Remove`) are not carried out yet: 501 (Not Implemented).
#[derive(Debug)]
pub struct ExecObject;

#[zbus::interface(name = "org.omadm.Client1.ExecHandler")]
impl ExecObject {
    /// An EXEC on a SCOMO node.
    async fn exec(
        &self,
        _token: String,
        client_uri: String,
        _server_id: String,
        #[zbus(header)] header: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> (u32, String) {
        // Only omadmd asks for EXECs.
        if !crate::dbus::client::from_daemon(conn, &header).await {
            return (u32::from(crate::protocol::sc::FORBIDDEN), String::new());
        }
        tracing::info!(node = %client_uri, "SCOMO operation not implemented yet");
        (
            u32::from(crate::protocol::sc::NOT_IMPLEMENTED),
            String::new(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(name: &str) -> Package {
        Package::parse(&format!("{name};1.0;amd64;installed"), "s").unwrap()
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
