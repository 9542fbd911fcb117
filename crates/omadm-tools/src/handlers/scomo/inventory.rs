//! SCOMO's inventory: `Inventory/Deployed` as PackageKit reports the installed packages,
//! written whole at start and then only the components that changed.

use super::*;

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

/// One component's nodes (`Inventory/Deployed/<x>`) for package `p`.
pub(super) fn component_data(p: &Package) -> DataNode {
    let leaf = |v: serde_json::Value| DataNode::Leaf(v);
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
    ])
}

/// `Inventory/Deployed` for `packages`.
pub fn deployed_data(packages: &[Package]) -> DataNode {
    DataNode::Interior(
        packages
            .iter()
            .zip(node_names(packages))
            .map(|(p, name)| (name, component_data(p)))
            .collect(),
    )
}

/// What changed from the inventory `before` (as written) to `after`, as one
/// `HandlerUpdate`: each new or changed component written whole, each gone one deleted,
/// nothing else touched (an upgrade of one package writes its ten nodes, not the
/// inventory's thirty thousand).
pub fn inventory_changes(
    before: &[Package],
    after: &[Package],
) -> (Vec<omadm_proto::dmmo::MoItem>, Vec<String>) {
    let deployed = format!("{SCOMO}/{MIID}/Inventory/Deployed");
    let was: std::collections::HashMap<String, &Package> =
        node_names(before).into_iter().zip(before).collect();
    let now: std::collections::HashMap<String, &Package> =
        node_names(after).into_iter().zip(after).collect();
    let mut put: Vec<_> = now
        .iter()
        .filter(|(name, p)| was.get(*name) != Some(*p))
        .map(|(name, p)| item(&format!("{deployed}/{name}"), name, component_data(p)))
        .collect();
    put.sort_by(|a, b| a.client_uri.cmp(&b.client_uri));
    let mut delete: Vec<String> = was
        .keys()
        .filter(|name| !now.contains_key(*name))
        .map(|name| format!("{deployed}/{name}"))
        .collect();
    delete.sort();
    (put, delete)
}

/// What the handler writes for `packages`, in one `HandlerUpdate`: `Inventory/Deployed`
/// whole, or the whole instance when it is not `present` yet.
pub fn inventory_item(present: bool, packages: &[Package]) -> omadm_proto::dmmo::MoItem {
    if present {
        item(
            &format!("{SCOMO}/{MIID}/Inventory/Deployed"),
            "Deployed",
            deployed_data(packages),
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
                        ("Deployed".into(), deployed_data(packages)),
                    ]),
                ),
            ]),
        )
    }
}

impl Scomo {
    /// Forgets what was written (omadmd restarted: its tree may be another).
    pub fn forget_written(&self) {
        *self.written.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Reads the installed packages from PackageKit and, when they changed, writes the
    /// instance (the first time) or `Inventory/Deployed` whole, in one transaction.
    /// Returns how many packages are listed.
    pub async fn sync_inventory(&self) -> Result<usize, HandlerError> {
        let mut packages = packagekit::installed(&self.packagekit, self.started())
            .await
            .map_err(|e| match e {
                TransactionError::Bus(b) => HandlerError::Bus(b),
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
        let previous = self
            .written
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let (put, delete) = match previous {
            // What was written is there: only what changed goes.
            Some(before) if present => inventory_changes(&before, &packages),
            _ => (vec![inventory_item(present, &packages)], Vec::new()),
        };
        self.link.update(&put, &delete).await?;
        tracing::info!(
            packages = count,
            written = put.len(),
            deleted = delete.len(),
            "SCOMO inventory written"
        );
        *self.written.lock().unwrap_or_else(|p| p.into_inner()) = Some(packages);
        Ok(count)
    }
}
