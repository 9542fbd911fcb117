//! Factory bootstrap (TS §8): `application/dmmo+json` files applied like an HGET without a
//! ClientURI. Each file is one transaction; a file is applied again only when its content
//! changes; an applied file that provisions a DM account owes that server a session with
//! the `BootstrapComplete` alert.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{DMACC, MoError, Registry, build_nodes, canonical_moid};
use crate::protocol::DecodeError;
use crate::protocol::dmmo::{self, DataNode, MoItem};
use crate::tree::{InstanceKey, OwedReason, StoreError, TreeOp, TreeStore, is_node_name};

/// Limits on bootstrap input.
#[derive(Debug, Clone, Copy)]
pub struct BootstrapLimits {
    /// Largest file accepted.
    pub max_file_bytes: usize,
    /// Largest leaf value.
    pub max_value_bytes: usize,
    /// Most nodes in one file.
    pub max_nodes: usize,
}

/// Why a bootstrap document was refused. Nothing of it was applied.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// The file could not be read.
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    /// Not valid `application/dmmo+json`.
    #[error("not valid application/dmmo+json: {0}")]
    Decode(#[from] DecodeError),
    /// An item's ClientURI is not an instance address.
    #[error("item {item}: ClientURI {uri:?}: {why}")]
    Uri {
        /// Item index.
        item: usize,
        /// The ClientURI.
        uri: String,
        /// Why.
        why: &'static str,
    },
    /// An item's data does not fit its MO.
    #[error("item {item} ({moid}): {source}")]
    Data {
        /// Item index.
        item: usize,
        /// MOID.
        moid: String,
        /// Why.
        #[source]
        source: MoError,
    },
    /// A DM account without a usable SrvID.
    #[error("item {item}: a DM account needs a SrvID")]
    NoServerId {
        /// Item index.
        item: usize,
    },
    /// Two items address the same instance.
    #[error("item {item}: instance {key} is provisioned twice")]
    Duplicate {
        /// Item index.
        item: usize,
        /// The instance.
        key: InstanceKey,
    },
    /// The store refused the write.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What one file did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Applied: these instances were written, these servers are owed a session.
    Applied {
        /// Instances written.
        instances: Vec<InstanceKey>,
        /// SrvIDs of provisioned accounts.
        servers: Vec<String>,
    },
    /// Already applied with this content.
    Unchanged,
}

/// The result of applying a directory.
#[derive(Debug, Default)]
pub struct Report {
    /// Per file that was read fine: what happened.
    pub done: Vec<(PathBuf, Outcome)>,
    /// Files refused, with why; each left the tree as it was.
    pub failed: Vec<(PathBuf, BootstrapError)>,
}

/// Applies every `*.json` file of `dir` in name order (a missing directory holds none).
pub fn apply_dir(
    store: &dyn TreeStore,
    reg: &Registry,
    dir: &Path,
    limits: BootstrapLimits,
) -> Report {
    let mut report = Report::default();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return report;
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|e| e == "json")
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    for path in files {
        match apply_file(store, reg, &path, limits) {
            Ok(outcome) => report.done.push((path, outcome)),
            Err(e) => report.failed.push((path, e)),
        }
    }
    report
}

/// Applies one file, unless a file of that name was already applied with the same content.
pub fn apply_file(
    store: &dyn TreeStore,
    reg: &Registry,
    path: &Path,
    limits: BootstrapLimits,
) -> Result<Outcome, BootstrapError> {
    let meta = std::fs::metadata(path)?;
    if meta.len() > limits.max_file_bytes as u64 {
        return Err(DecodeError::new(
            format!(
                "file of {} bytes exceeds the limit of {}",
                meta.len(),
                limits.max_file_bytes
            ),
            "$",
        )
        .into());
    }
    if meta.permissions().mode() & 0o004 != 0 {
        tracing::warn!(path = %path.display(), "bootstrap file is world-readable; it may hold credentials");
    }
    let bytes = std::fs::read(path)?;
    let source = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    apply_document(store, reg, &source, &bytes, limits)
}

/// Applies one bootstrap document named `source`.
pub fn apply_document(
    store: &dyn TreeStore,
    reg: &Registry,
    source: &str,
    bytes: &[u8],
    limits: BootstrapLimits,
) -> Result<Outcome, BootstrapError> {
    let (ops, outcome) = plan_document(store, reg, source, bytes, limits)?;
    if !ops.is_empty() {
        store.apply(&ops)?;
    }
    Ok(outcome)
}

/// What applying one bootstrap document would write, in one batch, and what it would
/// mean; no writes when the document was applied before with this content. Reads the
/// store, never writes it (fuzzed as `bootstrap`).
pub fn plan_document(
    store: &dyn TreeStore,
    reg: &Registry,
    source: &str,
    bytes: &[u8],
    limits: BootstrapLimits,
) -> Result<(Vec<TreeOp>, Outcome), BootstrapError> {
    let digest = hex::encode(Sha256::digest(bytes));
    if store.bootstrap_digest(source)?.as_deref() == Some(digest.as_str()) {
        return Ok((Vec::new(), Outcome::Unchanged));
    }
    let items = dmmo::decode(
        bytes,
        dmmo::Limits {
            max_bytes: limits.max_file_bytes,
            max_nodes: limits.max_nodes,
        },
    )?;
    let mut ops = Vec::new();
    let mut instances: Vec<InstanceKey> = Vec::new();
    let mut servers = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let (key, server) = plan_item(store, reg, i, item, limits, &mut ops)?;
        if instances.contains(&key) {
            return Err(BootstrapError::Duplicate { item: i, key });
        }
        instances.push(key);
        servers.extend(server);
    }
    for server_id in &servers {
        ops.push(TreeOp::OweSession {
            server_id: server_id.clone(),
            reason: OwedReason::BootstrapComplete,
        });
    }
    ops.push(TreeOp::RecordBootstrap {
        source: source.to_owned(),
        sha256: digest,
    });
    Ok((ops, Outcome::Applied { instances, servers }))
}

/// Splits a bootstrap item's ClientURI into MOID and optional MIID. Bootstrap data must
/// address an instance root: `MOID//` (the client picks the MIID) or `MOID/MIID/`.
fn instance_of(uri: &str) -> Result<(String, Option<String>), &'static str> {
    // TS §7.2.1.4 and App. I write `oma:mo:…` without `urn:` (§14 #9).
    let uri = uri.split('?').next().unwrap_or(uri);
    let full;
    let uri = if uri.starts_with("oma:") {
        full = format!("urn:{uri}");
        full.as_str()
    } else {
        uri
    };
    let (moid, rest) = uri
        .split_once('/')
        .ok_or("no instance part (expected MOID/MIID/)")?;
    if moid.is_empty() {
        return Err("no MOID");
    }
    let miid = match rest.split_once('/') {
        Some((miid, "")) => miid,
        None => rest,
        Some(_) => return Err("bootstrap data must address an instance root"),
    };
    Ok((
        canonical_moid(moid).to_owned(),
        (!miid.is_empty()).then(|| miid.to_owned()),
    ))
}

fn plan_item(
    store: &dyn TreeStore,
    reg: &Registry,
    i: usize,
    item: &MoItem,
    limits: BootstrapLimits,
    ops: &mut Vec<TreeOp>,
) -> Result<(InstanceKey, Option<String>), BootstrapError> {
    let uri_err = |why| BootstrapError::Uri {
        item: i,
        uri: item.client_uri.clone(),
        why,
    };
    let (moid, miid) = instance_of(&item.client_uri).map_err(uri_err)?;
    // Without a MIID the client chooses: the root's name, as TS App. I.2 shows.
    let miid = miid.unwrap_or_else(|| item.name.clone());
    if !is_node_name(&miid) {
        return Err(uri_err("the instance name is not a valid node name"));
    }
    let entry = reg.get(&moid);
    let data_err = |source| BootstrapError::Data {
        item: i,
        moid: moid.clone(),
        source,
    };
    let nodes = build_nodes(
        &moid,
        entry.map(|e| &e.def.root),
        "",
        &item.data,
        limits.max_value_bytes,
    )
    .map_err(data_err)?;
    let key = InstanceKey::new(moid.clone(), miid);
    let mut server = None;
    let mut creator = "local".to_owned();
    if moid == DMACC {
        let srv_id = match &item.data {
            DataNode::Interior(c) => {
                c.iter()
                    .find(|(n, _)| n == "SrvID")
                    .and_then(|(_, v)| match v {
                        DataNode::Leaf(serde_json::Value::String(s)) if !s.is_empty() => {
                            Some(s.clone())
                        }
                        _ => None,
                    })
            }
            DataNode::Leaf(_) => None,
        }
        .ok_or(BootstrapError::NoServerId { item: i })?;
        // Re-bootstrapping a server replaces its account wherever it lives.
        for other in store.instances(Some(DMACC))? {
            let other_key = InstanceKey::new(DMACC, other.miid.clone());
            if other_key != key
                && store
                    .node(&other_key, "SrvID")?
                    .and_then(|n| n.value)
                    .is_some_and(|v| v.to_text() == srv_id)
            {
                ops.push(TreeOp::DeleteSubtree {
                    key: other_key,
                    path: String::new(),
                });
            }
        }
        // The account belongs to its server: it holds full rights on it (TS §10).
        creator = format!("serverid:{srv_id}");
        server = Some(srv_id);
    }
    ops.push(TreeOp::PutInstance {
        key: key.clone(),
        ddf_url: item
            .ddf
            .clone()
            .or_else(|| entry.and_then(|e| e.ddf_url.clone())),
        creator,
        nodes,
    });
    Ok((key, server))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mo::DEVINFO;
    use crate::tree::{Journal as _, Tree as _};
    use crate::tree::{OpenMode, SqliteStore, Value};
    use serde_json::json;

    const LIMITS: BootstrapLimits = BootstrapLimits {
        max_file_bytes: 64 * 1024,
        max_value_bytes: 256,
        max_nodes: 1000,
    };

    fn account(miid: &str, srv_id: &str, uri: &str) -> serde_json::Value {
        json!({"ClientURI": "urn:oma:mo:oma-dm-dmacc:1.2//", "MOData": {miid: {
            "SrvID": srv_id, "SrvURI": uri, "Name": format!("Server {srv_id}"),
            "Perm": {"1": {"MOID": "*"}},
            "Auth": {"Noti": {"Type": 0, "Data": "ZGF0YQ==", "Secret": "c2VjcmV0"}}}}})
    }

    fn setup() -> (tempfile::TempDir, SqliteStore, Registry) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("tree.db"), OpenMode::ReadWrite).unwrap();
        std::fs::create_dir(dir.path().join("bootstrap.d")).unwrap();
        (dir, store, Registry::builtin())
    }

    fn file(dir: &tempfile::TempDir, name: &str, doc: &serde_json::Value) {
        std::fs::write(dir.path().join("bootstrap.d").join(name), doc.to_string()).unwrap();
    }

    fn srv_uri(store: &SqliteStore, miid: &str) -> Option<String> {
        store
            .node(&InstanceKey::new(DMACC, miid), "SrvURI")
            .unwrap()
            .and_then(|n| n.value)
            .map(|v| v.to_text())
    }

    #[test]
    fn applies_once_reapplies_on_change_and_owes_a_session() {
        let (dir, store, reg) = setup();
        let bdir = dir.path().join("bootstrap.d");
        file(
            &dir,
            "10-a.json",
            &json!([account("acc1", "dms1", "https://one/dm")]),
        );
        let report = apply_dir(&store, &reg, &bdir, LIMITS);
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        assert_eq!(
            report.done[0].1,
            Outcome::Applied {
                instances: vec![InstanceKey::new(DMACC, "acc1")],
                servers: vec!["dms1".into()]
            }
        );
        let inst = store.instance(DMACC, "acc1").unwrap().unwrap();
        assert_eq!(inst.creator, "serverid:dms1");
        assert_eq!(
            inst.ddf_url.as_deref(),
            Some("http://www.openmobilealliance.org/tech/omna/dm_mo/dm_dmacc-v1_2.ddf")
        );
        let secret = store
            .node(&InstanceKey::new(DMACC, "acc1"), "Auth/Noti/Secret")
            .unwrap()
            .unwrap();
        assert_eq!(secret.value, Some(Value::Bin(b"secret".to_vec())));
        assert!(secret.props.secret);
        let owed = store.owed_sessions().unwrap();
        assert_eq!((owed.len(), owed[0].server_id.as_str()), (1, "dms1"));

        // Unchanged file: nothing written, the validator stays.
        let cv = inst.cv;
        let report = apply_dir(&store, &reg, &bdir, LIMITS);
        assert_eq!(report.done[0].1, Outcome::Unchanged);
        assert_eq!(store.instance(DMACC, "acc1").unwrap().unwrap().cv, cv);

        // Changed file: applied again.
        file(
            &dir,
            "10-a.json",
            &json!([account("acc1", "dms1", "https://two/dm")]),
        );
        let report = apply_dir(&store, &reg, &bdir, LIMITS);
        assert!(matches!(report.done[0].1, Outcome::Applied { .. }));
        assert_eq!(srv_uri(&store, "acc1").as_deref(), Some("https://two/dm"));
    }

    #[test]
    fn a_bad_file_is_named_and_the_others_still_apply() {
        let (dir, store, reg) = setup();
        let bdir = dir.path().join("bootstrap.d");
        file(
            &dir,
            "10-good.json",
            &json!([account("acc1", "dms1", "https://one/dm")]),
        );
        std::fs::write(bdir.join("20-broken.json"), "{ not json").unwrap();
        // A file whose second item is bad: its first item must not land either.
        file(
            &dir,
            "30-half.json",
            &json!([account("acc3", "dms3", "https://three/dm"),
            {"ClientURI": "urn:oma:mo:oma-dm-devinfo:1.2//", "MOData": {"DevInfo": {"Colour": "red"}}}]),
        );
        file(
            &dir,
            "40-good.json",
            &json!({"ClientURI": "urn:acme:mo:thing:1.0/t1/", "MOData": {"t1": {"a": 1}}}),
        );
        std::fs::write(bdir.join("50-ignored.txt"), "not a bootstrap").unwrap();
        let report = apply_dir(&store, &reg, &bdir, LIMITS);
        let failed: Vec<String> = report
            .failed
            .iter()
            .map(|(p, e)| format!("{}: {e}", p.file_name().unwrap().to_string_lossy()))
            .collect();
        assert_eq!(failed.len(), 2, "{failed:?}");
        assert!(
            failed[0].starts_with("20-broken.json: not valid application/dmmo+json"),
            "{}",
            failed[0]
        );
        assert!(
            failed[1].starts_with("30-half.json: item 1"),
            "{}",
            failed[1]
        );
        assert!(failed[1].contains("Colour"), "{}", failed[1]);
        assert_eq!(report.done.len(), 2);
        assert!(store.instance(DMACC, "acc1").unwrap().is_some());
        assert!(store.instance(DMACC, "acc3").unwrap().is_none());
        assert!(store.instance(DEVINFO, "DevInfo").unwrap().is_none());
        assert!(
            store
                .instance("urn:acme:mo:thing:1.0", "t1")
                .unwrap()
                .is_some()
        );
        assert_eq!(
            store.bootstrap_digest("30-half.json").unwrap(),
            None,
            "a refused file is tried again next start"
        );
        let owed: Vec<String> = store
            .owed_sessions()
            .unwrap()
            .into_iter()
            .map(|o| o.server_id)
            .collect();
        assert_eq!(owed, ["dms1"]);
    }

    #[test]
    fn refusals() {
        let (_dir, store, reg) = setup();
        let cases = [
            (
                json!([{"ClientURI": "urn:oma:mo:oma-dm-dmacc:1.2//", "MOData": {"a": {"SrvURI": "x", "Name": "n", "Perm": {"1": {"MOID": "*"}}}}}]),
                "required node SrvID is missing",
            ),
            (
                json!([{"ClientURI": "urn:oma:mo:oma-dm-dmacc:1.2//", "MOData": {"a": {"SrvID": "", "SrvURI": "x", "Name": "n", "Perm": {"1": {"MOID": "*"}}}}}]),
                "needs a SrvID",
            ),
            (
                json!([account("a", "d", &"x".repeat(300))]),
                "exceeds the limit of 256",
            ),
            (
                json!([account("a", "d", "u"), account("a", "e", "u")]),
                "provisioned twice",
            ),
            (
                json!([{"ClientURI": "urn:oma:mo:oma-dm-dmacc:1.2/a/SrvURI", "MOData": {"SrvURI": "x"}}]),
                "instance root",
            ),
            (
                json!([{"ClientURI": "urn:x:1.0//", "MOData": {"..": {}}}]),
                "not a valid node name",
            ),
        ];
        for (doc, want) in cases {
            let err = apply_document(&store, &reg, "t.json", doc.to_string().as_bytes(), LIMITS)
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{doc}\n→ {err}");
        }
        assert!(store.instances(None).unwrap().is_empty());
        let big = format!("[{}]", " ".repeat(70 * 1024));
        let err = apply_document(&store, &reg, "big.json", big.as_bytes(), LIMITS)
            .unwrap_err()
            .to_string();
        assert!(err.contains("exceeds"), "{err}");
    }

    #[test]
    fn rebootstrapping_a_server_replaces_its_account() {
        let (_dir, store, reg) = setup();
        apply_document(
            &store,
            &reg,
            "a.json",
            json!([account("old", "dms1", "https://old")])
                .to_string()
                .as_bytes(),
            LIMITS,
        )
        .unwrap();
        apply_document(
            &store,
            &reg,
            "b.json",
            json!([account("other", "dms2", "https://two")])
                .to_string()
                .as_bytes(),
            LIMITS,
        )
        .unwrap();
        apply_document(
            &store,
            &reg,
            "c.json",
            json!([account("new", "dms1", "https://new")])
                .to_string()
                .as_bytes(),
            LIMITS,
        )
        .unwrap();
        let miids: Vec<String> = store
            .instances(Some(DMACC))
            .unwrap()
            .into_iter()
            .map(|i| i.miid)
            .collect();
        assert_eq!(miids, ["new", "other"]);
        assert_eq!(srv_uri(&store, "new").as_deref(), Some("https://new"));
    }

    #[test]
    fn instance_uris() {
        let ok = [
            (
                "urn:oma:mo:oma-dm-dmacc:1.2//",
                ("urn:oma:mo:oma-dm-dmacc:1.2", None),
            ),
            (
                "urn:oma:mo:oma-dm-dmacc:1.2/acc1/",
                ("urn:oma:mo:oma-dm-dmacc:1.2", Some("acc1")),
            ),
            (
                "urn:oma:mo:oma-dm-dmacc:1.2/acc1",
                ("urn:oma:mo:oma-dm-dmacc:1.2", Some("acc1")),
            ),
            (
                "urn:oma:mo:oma-dm-dmacc:2.0//",
                ("urn:oma:mo:oma-dm-dmacc:1.2", None),
            ),
            (
                "oma:mo:oma-dm-devinfo:1.0//",
                ("urn:oma:mo:oma-dm-devinfo:1.0", None),
            ),
            ("urn:x:y:1.0//?lv=1", ("urn:x:y:1.0", None)),
        ];
        for (uri, (moid, miid)) in ok {
            assert_eq!(
                instance_of(uri),
                Ok((moid.to_owned(), miid.map(str::to_owned))),
                "{uri}"
            );
        }
        for bad in [
            "urn:oma:mo:x:1.0",
            "/x/",
            "urn:oma:mo:x:1.0/a/b",
            "urn:oma:mo:x:1.0//Auth",
        ] {
            assert!(instance_of(bad).is_err(), "{bad}");
        }
    }
}
