//! The standard MOs the client hosts itself (TS §12): DevInfo, filled from the real machine
//! with configured overrides; DevDetail (OMA-TS-DM_StdObj §5.3), the same facts and the
//! tree's URI limits; SessionInfo, whose bearer is read again whenever it is read; and the
//! DACMO, where servers holding Delegate write grants (TS §12.3). All are single instances
//! owned by the client (`creator = local`).

use serde_json::json;

use super::{DACMO, DEVDETAIL, DEVINFO, MoError, Registry, SESSIONINFO, build_nodes};
use crate::host::{Bearer, Host};
use crate::protocol::dmmo::DataNode;
use crate::tree::{InstanceKey, Node, StoreError, TreeOp, TreeStore, Value};

/// MIID of the DevInfo instance; the root's serialized name is its MIID, and `DevInfo` is
/// the name the TS's examples use (§7.2.1.4).
pub const DEVINFO_MIID: &str = "DevInfo";
/// MIID of the DevDetail instance (the name the standard objects give its root).
pub const DEVDETAIL_MIID: &str = "DevDetail";
/// MIID of the SessionInfo instance (`SessionInfoMO` in TS App. F).
pub const SESSIONINFO_MIID: &str = "SessionInfoMO";
/// MIID of the DACMO instance (the `DFTitle` of its DDF's root, `DacMO`, as in TS Fig. 17).
pub const DACMO_MIID: &str = "DacMO";
/// Creator recorded for instances the client makes itself.
pub const LOCAL_CREATOR: &str = "local";

/// Errors maintaining the standard MOs.
#[derive(Debug, thiserror::Error)]
pub enum StandardError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The values do not fit the definition (a bad override, say).
    #[error("{moid}: {source}")]
    Data {
        /// Which MO.
        moid: &'static str,
        /// Why.
        #[source]
        source: MoError,
    },
    /// A required definition is missing from the registry.
    #[error("no definition for {0}")]
    NoDefinition(&'static str),
}

/// The DevInfo leaves (TS §12.1), every one required.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DevInfoValues {
    /// `DevID`.
    pub dev_id: String,
    /// `Man`.
    pub man: String,
    /// `Mod`.
    #[serde(rename = "mod")]
    pub model: String,
    /// `DmV`.
    pub dmv: String,
    /// `Lang`.
    pub lang: String,
    /// `DevType`.
    pub dev_type: String,
    /// `OEM`.
    pub oem: String,
    /// `FwV`.
    pub fwv: String,
    /// `SwV`.
    pub swv: String,
    /// `HwV`.
    pub hwv: String,
}

/// Optional overrides for each DevInfo leaf (config section `[devinfo]`).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DevInfoOverrides {
    /// `DevID`.
    pub dev_id: Option<String>,
    /// `Man`.
    pub man: Option<String>,
    /// `Mod`.
    #[serde(rename = "mod")]
    pub model: Option<String>,
    /// `DmV`.
    pub dmv: Option<String>,
    /// `Lang`.
    pub lang: Option<String>,
    /// `DevType`.
    pub dev_type: Option<String>,
    /// `OEM`.
    pub oem: Option<String>,
    /// `FwV`.
    pub fwv: Option<String>,
    /// `SwV`.
    pub swv: Option<String>,
    /// `HwV`.
    pub hwv: Option<String>,
}

impl DevInfoOverrides {
    /// `self` with every field `later` sets replaced.
    pub fn merged(self, later: DevInfoOverrides) -> DevInfoOverrides {
        DevInfoOverrides {
            dev_id: later.dev_id.or(self.dev_id),
            man: later.man.or(self.man),
            model: later.model.or(self.model),
            dmv: later.dmv.or(self.dmv),
            lang: later.lang.or(self.lang),
            dev_type: later.dev_type.or(self.dev_type),
            oem: later.oem.or(self.oem),
            fwv: later.fwv.or(self.fwv),
            swv: later.swv.or(self.swv),
            hwv: later.hwv.or(self.hwv),
        }
    }
}

const UNKNOWN: &str = "unknown";

impl DevInfoValues {
    /// Reads the machine (see docs/decisions.md, "DevInfo from the machine"), then applies
    /// the overrides. `None` when the machine has no usable ID and none is configured.
    pub fn from_host(host: &Host, overrides: &DevInfoOverrides) -> Option<DevInfoValues> {
        let os = host.os_release();
        let pick = |o: &Option<String>, f: &dyn Fn() -> Option<String>| {
            o.clone().or_else(f).unwrap_or_else(|| UNKNOWN.into())
        };
        let dev_id = overrides.dev_id.clone().or_else(|| host.dev_id())?;
        let env = |k: &str| std::env::var(k).ok();
        Some(DevInfoValues {
            dev_id,
            man: pick(&overrides.man, &|| {
                host.dmi("sys_vendor").or_else(|| host.dmi("board_vendor"))
            }),
            model: pick(&overrides.model, &|| {
                host.dmi("product_name").or_else(|| host.dmi("board_name"))
            }),
            dmv: overrides.dmv.clone().unwrap_or_else(|| "2.0".into()),
            lang: overrides.lang.clone().unwrap_or_else(|| host.lang(&env)),
            dev_type: overrides
                .dev_type
                .clone()
                .unwrap_or_else(|| host.dev_type()),
            oem: pick(&overrides.oem, &|| {
                host.dmi("chassis_vendor")
                    .or_else(|| host.dmi("board_vendor"))
            }),
            fwv: pick(&overrides.fwv, &|| {
                host.kernel_release().map(|k| format!("Linux {k}"))
            }),
            swv: pick(&overrides.swv, &|| {
                os.get("PRETTY_NAME")
                    .or_else(|| os.get("NAME"))
                    .cloned()
                    .map(|name| match os.get("VERSION_ID") {
                        Some(v) if !name.contains(v.as_str()) => format!("{name} {v}"),
                        _ => name,
                    })
            }),
            hwv: pick(&overrides.hwv, &|| {
                host.dmi("product_version")
                    .or_else(|| host.dmi("board_version"))
            }),
        })
    }

    fn data(&self) -> DataNode {
        let leaf = |s: &str| DataNode::Leaf(json!(s));
        DataNode::Interior(vec![
            ("DevID".into(), leaf(&self.dev_id)),
            ("Man".into(), leaf(&self.man)),
            ("Mod".into(), leaf(&self.model)),
            ("DmV".into(), leaf(&self.dmv)),
            ("Lang".into(), leaf(&self.lang)),
            ("DevType".into(), leaf(&self.dev_type)),
            ("OEM".into(), leaf(&self.oem)),
            ("FwV".into(), leaf(&self.fwv)),
            ("SwV".into(), leaf(&self.swv)),
            ("HwV".into(), leaf(&self.hwv)),
        ])
    }
}

/// Writes `nodes` as the whole instance `key` unless it already holds exactly them, so the
/// cache validator moves only on real change. Returns whether it wrote.
fn put_if_changed(
    store: &dyn TreeStore,
    key: &InstanceKey,
    ddf_url: Option<String>,
    mut nodes: Vec<Node>,
) -> Result<bool, StoreError> {
    // The store returns nodes sorted by path; compare in that order (which still lists
    // parents before children, as a write needs).
    nodes.sort_by(|a, b| a.path.cmp(&b.path));
    if store.subtree(key, "", None)? == nodes {
        return Ok(false);
    }
    store.apply(&[TreeOp::PutInstance {
        key: key.clone(),
        ddf_url,
        creator: LOCAL_CREATOR.into(),
        nodes,
    }])?;
    Ok(true)
}

fn nodes_for(
    reg: &Registry,
    moid: &'static str,
    data: &DataNode,
) -> Result<(Vec<Node>, Option<String>), StandardError> {
    let entry = reg.get(moid).ok_or(StandardError::NoDefinition(moid))?;
    let nodes = build_nodes(moid, Some(&entry.def.root), "", data, usize::MAX)
        .map_err(|source| StandardError::Data { moid, source })?;
    Ok((nodes, entry.ddf_url.clone()))
}

/// DevDetail's data (StdObj §5.3): what DevInfo says of the machine, and the limits of
/// this client's tree. Node depth and name length have no limit of their own (`0`); a
/// ClientURI may be 4096 bytes long; there is no DM 1.x large-object delivery.
fn devdetail_data(v: &DevInfoValues) -> DataNode {
    let leaf = |s: &str| DataNode::Leaf(json!(s));
    DataNode::Interior(vec![
        (
            "URI".into(),
            DataNode::Interior(vec![
                ("MaxDepth".into(), leaf("0")),
                (
                    "MaxTotLen".into(),
                    leaf(&crate::protocol::uri::MAX_CLIENT_URI.to_string()),
                ),
                ("MaxSegLen".into(), leaf("0")),
            ]),
        ),
        ("DevTyp".into(), leaf(&v.dev_type)),
        ("OEM".into(), leaf(&v.oem)),
        ("FwV".into(), leaf(&v.fwv)),
        ("SwV".into(), leaf(&v.swv)),
        ("HwV".into(), leaf(&v.hwv)),
        ("LrgObj".into(), DataNode::Leaf(json!(false))),
    ])
}

/// Makes the DevDetail instance describe the machine as `values` do. Returns whether it
/// changed.
pub fn ensure_devdetail(
    store: &dyn TreeStore,
    reg: &Registry,
    values: &DevInfoValues,
) -> Result<bool, StandardError> {
    let (nodes, url) = nodes_for(reg, DEVDETAIL, &devdetail_data(values))?;
    Ok(put_if_changed(
        store,
        &InstanceKey::new(DEVDETAIL, DEVDETAIL_MIID),
        url,
        nodes,
    )?)
}

/// Makes the DevInfo instance hold `values`. Returns whether it changed.
pub fn ensure_devinfo(
    store: &dyn TreeStore,
    reg: &Registry,
    values: &DevInfoValues,
) -> Result<bool, StandardError> {
    let (nodes, url) = nodes_for(reg, DEVINFO, &values.data())?;
    Ok(put_if_changed(
        store,
        &InstanceKey::new(DEVINFO, DEVINFO_MIID),
        url,
        nodes,
    )?)
}

/// Makes the DACMO instance, empty, unless the tree has one (a factory bootstrap may
/// provision it). Servers never create one (docs/decisions.md, "Access rights"), so
/// without it no grant could ever be written. Returns whether it made it.
pub fn ensure_dacmo(store: &dyn TreeStore, reg: &Registry) -> Result<bool, StandardError> {
    if !store.instances(Some(DACMO))?.is_empty() {
        return Ok(false);
    }
    let (nodes, url) = nodes_for(reg, DACMO, &DataNode::Interior(Vec::new()))?;
    Ok(put_if_changed(
        store,
        &InstanceKey::new(DACMO, DACMO_MIID),
        url,
        nodes,
    )?)
}

/// What removes the DACMO entries of instances being deleted, with any `<MOID>` node they
/// leave empty: grants must not outlive their instance, or a later instance of the same
/// name, which a server may choose, would inherit them (issue 27). Every path that deletes
/// an instance adds these to the same batch.
pub fn forget_grants(
    store: &dyn TreeStore,
    gone: &[InstanceKey],
) -> Result<Vec<TreeOp>, StoreError> {
    let mut ops = Vec::new();
    for d in store.instances(Some(DACMO))? {
        let dk = InstanceKey::new(DACMO, d.miid);
        let mut moids: Vec<&str> = gone.iter().map(|k| k.moid.as_str()).collect();
        moids.sort_unstable();
        moids.dedup();
        for moid in moids {
            let entries = store.children(&dk, moid)?;
            let goes = |path: &str| {
                gone.iter()
                    .any(|k| k.moid == moid && path == format!("{moid}/{}", k.miid))
            };
            let leaving: Vec<&Node> = entries.iter().filter(|n| goes(&n.path)).collect();
            if leaving.is_empty() {
                continue;
            }
            if leaving.len() == entries.len() {
                ops.push(TreeOp::DeleteSubtree {
                    key: dk.clone(),
                    path: moid.to_owned(),
                });
            } else {
                ops.extend(leaving.into_iter().map(|n| TreeOp::DeleteSubtree {
                    key: dk.clone(),
                    path: n.path.clone(),
                }));
            }
        }
    }
    Ok(ops)
}

fn sessioninfo_data(bearer: Bearer) -> DataNode {
    // ROAMING is meaningful only on a mobile bearer; we cannot ask the modem, so 2
    // (unknown) there and 0 elsewhere.
    let roaming = if bearer == Bearer::Mobile { 2 } else { 0 };
    DataNode::Interior(vec![
        ("CBT".into(), DataNode::Leaf(json!(bearer as i32))),
        ("ROAMING".into(), DataNode::Leaf(json!(roaming))),
    ])
}

/// Makes the SessionInfo instance describe the current bearer. Called at start and before
/// anything reads the instance. Returns whether it changed.
pub fn refresh_sessioninfo(
    store: &dyn TreeStore,
    reg: &Registry,
    host: &Host,
) -> Result<bool, StandardError> {
    let (nodes, url) = nodes_for(reg, SESSIONINFO, &sessioninfo_data(host.current_bearer()))?;
    Ok(put_if_changed(
        store,
        &InstanceKey::new(SESSIONINFO, SESSIONINFO_MIID),
        url,
        nodes,
    )?)
}

/// Replaces live values in nodes read from `key` without writing them back: the read-only
/// view diagnostic tools use.
pub fn overlay_live(key: &InstanceKey, nodes: &mut [Node], host: &Host) {
    if key.moid != SESSIONINFO {
        return;
    }
    let bearer = host.current_bearer();
    let DataNode::Interior(fresh) = sessioninfo_data(bearer) else {
        return;
    };
    for node in nodes.iter_mut() {
        if let Some((_, DataNode::Leaf(v))) = fresh.iter().find(|(n, _)| *n == node.path)
            && let Some(i) = v.as_i64().and_then(|i| i32::try_from(i).ok())
        {
            node.value = Some(Value::Int(i));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::Tree as _;
    use crate::tree::{OpenMode, SqliteStore};

    fn fake_host(dir: &std::path::Path) -> Host {
        let w = |p: &str, t: &str| {
            let path = dir.join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, t).unwrap();
        };
        w("etc/machine-id", "3d1219c7c4c5404aaa1f6d2a48adfda4\n");
        w("sys/class/dmi/id/sys_vendor", "ACME\n");
        w("sys/class/dmi/id/product_name", "Box 9000\n");
        w("sys/class/dmi/id/product_version", "rev B\n");
        w("sys/class/dmi/id/chassis_type", "17\n");
        w(
            "etc/os-release",
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nVERSION_ID=\"12\"\n",
        );
        w("proc/sys/kernel/osrelease", "6.1.0-26-amd64\n");
        Host::new(dir)
    }

    #[test]
    fn devinfo_from_the_machine_with_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let host = fake_host(dir.path());
        let v = DevInfoValues::from_host(&host, &DevInfoOverrides::default()).unwrap();
        assert_eq!(v.dev_id, "UUID:3d1219c7-c4c5-404a-aa1f-6d2a48adfda4");
        assert_eq!(
            (v.man.as_str(), v.model.as_str(), v.hwv.as_str()),
            ("ACME", "Box 9000", "rev B")
        );
        assert_eq!(v.dev_type, "server");
        assert_eq!(v.swv, "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(v.fwv, "Linux 6.1.0-26-amd64");
        assert_eq!(v.oem, "unknown");
        assert_eq!(v.dmv, "2.0");
        let o = DevInfoOverrides {
            dev_id: Some("IMEI:493005100592800".into()),
            model: Some("Custom".into()),
            ..Default::default()
        };
        let v = DevInfoValues::from_host(&host, &o).unwrap();
        assert_eq!(
            (v.dev_id.as_str(), v.model.as_str()),
            ("IMEI:493005100592800", "Custom")
        );
        // No machine ID and no override: no DevInfo.
        std::fs::remove_file(dir.path().join("etc/machine-id")).unwrap();
        assert_eq!(
            DevInfoValues::from_host(&host, &DevInfoOverrides::default()),
            None
        );
    }

    #[test]
    fn standard_instances_are_written_only_on_change() {
        let dir = tempfile::tempdir().unwrap();
        let host = fake_host(dir.path());
        let store = SqliteStore::open(&dir.path().join("t.db"), OpenMode::ReadWrite).unwrap();
        let reg = Registry::builtin();
        let v = DevInfoValues::from_host(&host, &DevInfoOverrides::default()).unwrap();
        assert!(ensure_devinfo(&store, &reg, &v).unwrap());
        let cv = store.instance(DEVINFO, DEVINFO_MIID).unwrap().unwrap().cv;
        assert!(!ensure_devinfo(&store, &reg, &v).unwrap());
        assert_eq!(
            store.instance(DEVINFO, DEVINFO_MIID).unwrap().unwrap().cv,
            cv
        );
        let mut v2 = v.clone();
        v2.swv = "Debian 13".into();
        assert!(ensure_devinfo(&store, &reg, &v2).unwrap());
        let key = InstanceKey::new(DEVINFO, DEVINFO_MIID);
        assert_eq!(
            store.node(&key, "SwV").unwrap().unwrap().value,
            Some(Value::Chr("Debian 13".into()))
        );
        assert_eq!(store.subtree(&key, "", None).unwrap().len(), 11);

        // DevDetail: the same facts, the tree's limits, read-only; rewritten only on change.
        assert!(ensure_devdetail(&store, &reg, &v2).unwrap());
        assert!(!ensure_devdetail(&store, &reg, &v2).unwrap());
        let dd = InstanceKey::new(DEVDETAIL, DEVDETAIL_MIID);
        let leaf = |p: &str| store.node(&dd, p).unwrap().unwrap();
        assert_eq!(leaf("SwV").value, Some(Value::Chr("Debian 13".into())));
        assert_eq!(leaf("HwV").value, Some(Value::Chr("rev B".into())));
        assert_eq!(leaf("DevTyp").value, Some(Value::Chr("server".into())));
        assert_eq!(leaf("URI/MaxTotLen").value, Some(Value::Chr("4096".into())));
        assert_eq!(leaf("URI/MaxDepth").value, Some(Value::Chr("0".into())));
        assert_eq!(leaf("LrgObj").value, Some(Value::Bool(false)));
        assert_eq!(leaf("FwV").props.access, crate::tree::AccessType::GET);
        assert_eq!(store.subtree(&dd, "", None).unwrap().len(), 11);

        // SessionInfo follows the default route: none → 0, then wired → 3.
        assert!(refresh_sessioninfo(&store, &reg, &host).unwrap());
        let si = InstanceKey::new(SESSIONINFO, SESSIONINFO_MIID);
        assert_eq!(
            store.node(&si, "CBT").unwrap().unwrap().value,
            Some(Value::Int(0))
        );
        assert!(!refresh_sessioninfo(&store, &reg, &host).unwrap());
        let w = |p: &str, t: &str| {
            let path = dir.path().join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, t).unwrap();
        };
        w(
            "proc/net/route",
            "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\neth0\t00000000\t0101A8C0\t0003\t0\t0\t0\t00000000\n",
        );
        w("sys/class/net/eth0/type", "1\n");
        std::fs::create_dir_all(dir.path().join("sys/class/net/eth0/device")).unwrap();
        let mut stored = store.subtree(&si, "", None).unwrap();
        overlay_live(&si, &mut stored, &host);
        assert_eq!(
            stored.iter().find(|n| n.path == "CBT").unwrap().value,
            Some(Value::Int(3)),
            "overlay sees the new bearer"
        );
        assert_eq!(
            store.node(&si, "CBT").unwrap().unwrap().value,
            Some(Value::Int(0)),
            "overlay does not write"
        );
        assert!(refresh_sessioninfo(&store, &reg, &host).unwrap());
        assert_eq!(
            store.node(&si, "CBT").unwrap().unwrap().value,
            Some(Value::Int(3))
        );
    }

    #[test]
    fn the_dacmo_is_made_once_and_grants_go_with_their_instances() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("t.db"), OpenMode::ReadWrite).unwrap();
        let reg = Registry::builtin();
        assert!(ensure_dacmo(&store, &reg).unwrap());
        assert!(!ensure_dacmo(&store, &reg).unwrap(), "one DACMO");
        let dk = InstanceKey::new(DACMO, DACMO_MIID);
        let entry = |path: &str| Node {
            path: path.into(),
            props: crate::tree::NodeProps::interior(
                crate::tree::AccessType::ALL,
                crate::tree::Scope::Dynamic,
            ),
            value: None,
        };
        let m = "urn:x:1.0";
        store
            .apply(&[TreeOp::PutSubtree {
                key: dk.clone(),
                nodes: vec![entry(m), entry(&format!("{m}/a")), entry(&format!("{m}/b"))],
            }])
            .unwrap();
        let key = |miid: &str| InstanceKey::new(m, miid);
        // One of two entries goes alone; the last takes its <MOID> node along.
        store
            .apply(&forget_grants(&store, &[key("a")]).unwrap())
            .unwrap();
        let left: Vec<String> = store
            .children(&dk, m)
            .unwrap()
            .into_iter()
            .map(|n| n.path)
            .collect();
        assert_eq!(left, [format!("{m}/b")]);
        assert!(forget_grants(&store, &[key("zz")]).unwrap().is_empty());
        store
            .apply(&forget_grants(&store, &[key("b")]).unwrap())
            .unwrap();
        assert!(store.node(&dk, m).unwrap().is_none());
        assert!(store.node(&dk, "").unwrap().is_some());
    }
}
