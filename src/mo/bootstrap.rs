//! Factory bootstrap (TS §8): `application/dmmo+json` files applied like an HGET without a
//! ClientURI. Each file is one transaction; a file is applied again only when its content
//! changes; an applied file that provisions a DM account owes that server a session with
//! the `BootstrapComplete` alert. A server's account is re-bootstrapped only by the source
//! that provisioned it, or on purpose (`replace`): docs/bootstrap.md.

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
    /// The server already has an account that another source provisioned (or a server
    /// made), and the document was not given as a re-bootstrap.
    #[error(
        "item {item}: server {server_id:?} already has a DM account{}; a re-bootstrap must say so: change the file that provisioned it, or run `omadmctl account add --replace FILE`",
        provisioner(.by.as_deref())
    )]
    AccountExists {
        /// Item index.
        item: usize,
        /// The SrvID.
        server_id: String,
        /// The source that provisioned the account, when recorded.
        by: Option<String>,
    },
    /// A SrvURI carrying user information (`user:password@host`): reqwest would send it
    /// as Basic credentials on every request, over plain http too.
    #[error(
        "item {item}: SrvURI carries user information (user:password@…); put the credentials in the account's Ext/HttpAuth, which omadmd sends only over https (docs/bootstrap.md)"
    )]
    UserInfo {
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
    each_file(dir, |path| apply_file(store, reg, path, limits))
}

/// What [`apply_dir`] would do, without doing it: each file planned against the store as
/// it is (`omadmd check-config`).
pub fn check_dir(
    store: &dyn TreeStore,
    reg: &Registry,
    dir: &Path,
    limits: BootstrapLimits,
) -> Report {
    each_file(dir, |path| {
        let (source, bytes) = read_file(path, limits)?;
        Ok(plan_document(store, reg, &source, &bytes, limits)?.1)
    })
}

/// Runs `f` on each bootstrap file of `dir`, in name order, and reports.
fn each_file(dir: &Path, mut f: impl FnMut(&Path) -> Result<Outcome, BootstrapError>) -> Report {
    let mut report = Report::default();
    for path in files(dir) {
        match f(&path) {
            Ok(outcome) => report.done.push((path, outcome)),
            Err(e) => report.failed.push((path, e)),
        }
    }
    report
}

/// The bootstrap files of a directory, in name order: `*.json`, hidden files left out.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
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
    files
}

/// Applies one file, unless a file of that name was already applied with the same content.
pub fn apply_file(
    store: &dyn TreeStore,
    reg: &Registry,
    path: &Path,
    limits: BootstrapLimits,
) -> Result<Outcome, BootstrapError> {
    let (source, bytes) = read_file(path, limits)?;
    apply_document(store, reg, &source, &bytes, limits)
}

/// A bootstrap file's name (its source in the records) and content, within the limit.
fn read_file(path: &Path, limits: BootstrapLimits) -> Result<(String, Vec<u8>), BootstrapError> {
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
    let bytes = std::fs::read(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::PermissionDenied {
            // The packaged daemon runs as omadmd, without capabilities (docs/bootstrap.md).
            std::io::Error::new(
                e.kind(),
                format!("{e}; the daemon's user needs to read it: give it the omadmd group and mode 0640, or apply it with `omadmctl account add`"),
            )
        } else {
            e
        }
    })?;
    let source = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    Ok((source, bytes))
}

/// Applies one bootstrap document named `source`.
pub fn apply_document(
    store: &dyn TreeStore,
    reg: &Registry,
    source: &str,
    bytes: &[u8],
    limits: BootstrapLimits,
) -> Result<Outcome, BootstrapError> {
    apply(store, reg, source, bytes, limits, Replace::OwnOnly)
}

/// Whose accounts a bootstrap document may replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replace {
    /// Only those its own source provisioned (a file that changed re-bootstraps).
    OwnOnly,
    /// Any (a re-bootstrap the administrator asked for).
    Any,
}

/// Applies one bootstrap document named `source`, replacing accounts as `replace` allows.
pub fn apply(
    store: &dyn TreeStore,
    reg: &Registry,
    source: &str,
    bytes: &[u8],
    limits: BootstrapLimits,
    replace: Replace,
) -> Result<Outcome, BootstrapError> {
    let (ops, outcome) = plan(store, reg, source, bytes, limits, replace)?;
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
    plan(store, reg, source, bytes, limits, Replace::OwnOnly)
}

/// [`plan_document`], replacing accounts as `replace` allows.
pub fn plan(
    store: &dyn TreeStore,
    reg: &Registry,
    source: &str,
    bytes: &[u8],
    limits: BootstrapLimits,
    replace: Replace,
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
        if let Some(server_id) = &server {
            may_replace(store, source, i, server_id, replace)?;
            // Writing over another server's account instance replaces that account.
            if key.moid == DMACC
                && let Some(other) = store
                    .node(&key, "SrvID")?
                    .and_then(|n| n.value)
                    .map(|v| v.to_text())
                    .filter(|other| other != server_id)
            {
                may_replace(store, source, i, &other, replace)?;
            }
        }
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
        ops.push(TreeOp::SetAccountSource {
            server_id: server_id.clone(),
            source: source.to_owned(),
        });
    }
    ops.push(TreeOp::RecordBootstrap {
        source: source.to_owned(),
        sha256: digest,
    });
    Ok((ops, Outcome::Applied { instances, servers }))
}

/// Whether a URL carries user information (`user@`, `user:password@`, even `:@`).
pub fn has_userinfo(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| !u.username().is_empty() || u.password().is_some())
        // A spelling the parser keeps to itself (an empty user and password) still tells.
        || url
            .split_once("://")
            .is_some_and(|(_, rest)| rest.split(['/', '?', '#']).next().is_some_and(|a| a.contains('@')))
}

/// Who made an account, for [`BootstrapError::AccountExists`].
fn provisioner(by: Option<&str>) -> String {
    match by {
        Some(crate::tree::BEFORE_SOURCES) => {
            " (provisioned before omadmd recorded which file did)".to_owned()
        }
        Some(by) => format!(" (provisioned by {by})"),
        None => " (made by a server in a session, not by a bootstrap file)".to_owned(),
    }
}

/// Whether a document from `source` may provision `server_id`: always when the server
/// has no account yet; else when `source` provisioned it (the same file, changed), when
/// the account is from before sources were recorded and `source` was applied then (it may
/// be the file that made it), or when a re-bootstrap was asked for. An account with no
/// source is a server's or an admin's own, which no file takes over unasked.
fn may_replace(
    store: &dyn TreeStore,
    source: &str,
    item: usize,
    server_id: &str,
    replace: Replace,
) -> Result<(), BootstrapError> {
    if replace == Replace::Any || super::account::find(store, server_id)?.is_none() {
        return Ok(());
    }
    match store.account_source(server_id)? {
        Some(by) if by == source => Ok(()),
        Some(by)
            if by == crate::tree::BEFORE_SOURCES && store.bootstrap_digest(source)?.is_some() =>
        {
            Ok(())
        }
        by => Err(BootstrapError::AccountExists {
            item,
            server_id: server_id.to_owned(),
            by,
        }),
    }
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
        if let DataNode::Interior(c) = &item.data
            && c.iter().any(|(n, v)| {
                n == "SrvURI"
                    && matches!(v, DataNode::Leaf(serde_json::Value::String(u)) if has_userinfo(u))
            })
        {
            return Err(BootstrapError::UserInfo { item: i });
        }
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
        // An instance that held another server's account starts afresh: it must not keep
        // that server as its creator (and its rights, TS §10).
        if store
            .instance(&key.moid, &key.miid)?
            .is_some_and(|i| i.creator != format!("serverid:{srv_id}"))
        {
            ops.push(TreeOp::DeleteSubtree {
                key: key.clone(),
                path: String::new(),
            });
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
mod tests;
