//! The writer of one batch: a transaction that looks up instances, inserts and deletes
//! nodes, bumps cache validators and writes the journal entries that travel with them.

use super::rows::{check_node, encode_value};
use super::*;

/// One write transaction: looks up instances, inserts nodes, bumps validators.
pub(super) struct Writer<'c> {
    pub(super) tx: Transaction<'c>,
    pub(super) seq: i64,
}

impl Writer<'_> {
    fn instance_id(&self, key: &InstanceKey) -> Result<Option<i64>, StoreError> {
        Ok(self
            .tx
            .prepare_cached("SELECT id FROM instance WHERE moid = ?1 AND miid = ?2")?
            .query_row(params![key.moid, key.miid], |r| r.get(0))
            .optional()?)
    }

    fn existing(&self, key: &InstanceKey) -> Result<i64, StoreError> {
        self.instance_id(key)?
            .ok_or_else(|| StoreError::NoInstance {
                moid: key.moid.clone(),
                miid: key.miid.clone(),
            })
    }

    fn touch(&self, id: i64) -> Result<(), StoreError> {
        self.tx
            .prepare_cached("UPDATE instance SET cv = ?1 WHERE id = ?2")?
            .execute(params![self.seq, id])?;
        Ok(())
    }

    fn node_format(&self, id: i64, path: &str) -> Result<Option<Format>, StoreError> {
        let f: Option<String> = self
            .tx
            .prepare_cached("SELECT format FROM node WHERE instance_id = ?1 AND path = ?2")?
            .query_row(params![id, path], |r| r.get(0))
            .optional()?;
        Ok(f.as_deref().and_then(Format::parse))
    }

    /// Inserts `nodes` (parents first) below an existing parent of the first one.
    fn insert_nodes(&self, id: i64, nodes: &[Node]) -> Result<(), StoreError> {
        let mut insert = self.tx.prepare_cached(
            "INSERT INTO node (instance_id, path, parent, format, mime, permanent, access, secret, value)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        let mut interior = std::collections::HashSet::new();
        for (i, node) in nodes.iter().enumerate() {
            check_node(node)?;
            let parent = parent_path(&node.path);
            if let Some(parent) = parent {
                let name = node.path.rsplit('/').next().unwrap_or_default();
                if !is_node_name(name) {
                    return Err(StoreError::Invalid(format!("bad node name {name:?}")));
                }
                // The first node's parent is already stored; later ones must come after
                // their parent in this batch.
                let known = if i == 0 {
                    self.node_format(id, parent)? == Some(Format::Node)
                } else {
                    interior.contains(parent)
                };
                if !known {
                    return Err(StoreError::Invalid(format!(
                        "node {:?} has no interior parent",
                        node.path
                    )));
                }
            } else if i != 0 {
                return Err(StoreError::Invalid("root listed twice".into()));
            }
            if node.is_interior() {
                interior.insert(node.path.as_str());
            }
            insert
                .execute(params![
                    id,
                    node.path,
                    parent,
                    node.props.format.as_str(),
                    node.props.mime,
                    node.props.scope == Scope::Permanent,
                    node.props.access.bits(),
                    node.props.secret,
                    encode_value(node.value.as_ref()),
                ])
                .map_err(|e| match e {
                    rusqlite::Error::SqliteFailure(f, _)
                        if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                    {
                        StoreError::Invalid(format!("node {:?} listed twice", node.path))
                    }
                    e => e.into(),
                })?;
        }
        Ok(())
    }

    /// Deletes a node and its descendants; returns how many rows went.
    fn delete_subtree(&self, id: i64, path: &str) -> Result<usize, StoreError> {
        if path.is_empty() {
            return Ok(self
                .tx
                .prepare_cached("DELETE FROM node WHERE instance_id = ?1")?
                .execute([id])?);
        }
        let (lo, hi) = descendant_range(path);
        Ok(self
            .tx
            .prepare_cached(
                "DELETE FROM node WHERE instance_id = ?1
                 AND (path = ?2 OR (path >= ?3 AND path < ?4))",
            )?
            .execute(params![id, path, lo, hi])?)
    }

    pub(super) fn apply(&self, op: &TreeOp) -> Result<(), StoreError> {
        match op {
            TreeOp::PutInstance {
                key,
                ddf_url,
                creator,
                nodes,
            } => {
                if nodes
                    .first()
                    .is_none_or(|n| !n.path.is_empty() || !n.is_interior())
                {
                    return Err(StoreError::Invalid(format!(
                        "{key}: an interior root must come first"
                    )));
                }
                if key.moid.is_empty() || !is_node_name(&key.miid) {
                    return Err(StoreError::Invalid(format!("bad instance key {key}")));
                }
                let id = match self.instance_id(key)? {
                    Some(id) => {
                        self.delete_subtree(id, "")?;
                        self.tx
                            .prepare_cached("UPDATE instance SET ddf_url = ?1 WHERE id = ?2")?
                            .execute(params![ddf_url, id])?;
                        id
                    }
                    None => {
                        self.tx
                            .prepare_cached(
                                "INSERT INTO instance (moid, miid, ddf_url, creator, cv)
                                 VALUES (?1, ?2, ?3, ?4, ?5)",
                            )?
                            .execute(params![key.moid, key.miid, ddf_url, creator, self.seq])?;
                        self.tx.last_insert_rowid()
                    }
                };
                self.insert_nodes(id, nodes)?;
                self.touch(id)
            }
            TreeOp::PutSubtree { key, nodes } => {
                let id = self.existing(key)?;
                let Some(top) = nodes.first() else {
                    return Err(StoreError::Invalid("empty subtree".into()));
                };
                if top.path.is_empty() {
                    return Err(StoreError::Invalid(
                        "use PutInstance to replace a root".into(),
                    ));
                }
                let prefix = descendant_range(&top.path).0;
                if let Some(stray) = nodes[1..].iter().find(|n| !n.path.starts_with(&prefix)) {
                    return Err(StoreError::Invalid(format!(
                        "node {:?} is not below {:?}",
                        stray.path, top.path
                    )));
                }
                self.delete_subtree(id, &top.path)?;
                self.insert_nodes(id, nodes)?;
                self.touch(id)
            }
            TreeOp::SetValue { key, path, value } => {
                let id = self.existing(key)?;
                let no_node = || StoreError::NoNode {
                    moid: key.moid.clone(),
                    miid: key.miid.clone(),
                    path: path.clone(),
                };
                let format = self.node_format(id, path)?.ok_or_else(no_node)?;
                if format != value.format() {
                    return Err(StoreError::Invalid(format!(
                        "node {path:?} is {format}, value is {}",
                        value.format()
                    )));
                }
                self.tx
                    .prepare_cached(
                        "UPDATE node SET value = ?1 WHERE instance_id = ?2 AND path = ?3",
                    )?
                    .execute(params![encode_value(Some(value)), id, path])?;
                self.touch(id)
            }
            TreeOp::DeleteSubtree { key, path } => {
                let id = self.existing(key)?;
                if path.is_empty() {
                    self.tx
                        .prepare_cached("DELETE FROM instance WHERE id = ?1")?
                        .execute([id])?;
                    return Ok(());
                }
                if self.delete_subtree(id, path)? == 0 {
                    return Err(StoreError::NoNode {
                        moid: key.moid.clone(),
                        miid: key.miid.clone(),
                        path: path.clone(),
                    });
                }
                self.touch(id)
            }
            TreeOp::RecordBootstrap { source, sha256 } => {
                self.tx
                    .prepare_cached(
                        "INSERT INTO bootstrap_applied (source, sha256, applied_at) VALUES (?1, ?2, ?3)
                         ON CONFLICT (source) DO UPDATE SET sha256 = excluded.sha256,
                                                            applied_at = excluded.applied_at",
                    )?
                    .execute(params![source, sha256, now()])?;
                Ok(())
            }
            TreeOp::Enqueue(o) => {
                let (kind, target, payload) = o.item.to_row()?;
                self.tx
                    .prepare_cached(
                        "INSERT INTO outbox (server_id, kind, target, payload, created_at)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                    )?
                    .execute(params![o.server_id, kind, target, payload, now()])?;
                Ok(())
            }
            TreeOp::Subscribe(sub) => {
                self.tx
                    .prepare_cached(
                        "INSERT INTO subscription (server_id, client_uri, server_uri, created_at)
                         VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (server_id, client_uri) DO UPDATE SET server_uri = excluded.server_uri",
                    )?
                    .execute(params![sub.server_id, sub.client_uri, sub.server_uri, now()])?;
                Ok(())
            }
            TreeOp::Unsubscribe {
                server_id,
                client_uri,
            } => {
                let n = self
                    .tx
                    .prepare_cached(
                        "DELETE FROM subscription WHERE server_id = ?1 AND client_uri = ?2",
                    )?
                    .execute(params![server_id, client_uri])?;
                if n == 0 {
                    return Err(StoreError::Invalid(format!(
                        "no subscription to {client_uri}"
                    )));
                }
                Ok(())
            }
            TreeOp::SetDefault {
                moid,
                server_id,
                server_uri,
            } => {
                self.tx
                    .prepare_cached(
                        "INSERT INTO default_source (moid, server_id, server_uri) VALUES (?1, ?2, ?3)
                         ON CONFLICT (moid) DO UPDATE SET server_id = excluded.server_id,
                                                          server_uri = excluded.server_uri",
                    )?
                    .execute(params![moid, server_id, server_uri])?;
                Ok(())
            }
            TreeOp::AddPendingExec(p) => {
                self.tx
                    .prepare_cached(
                        "INSERT INTO pending_exec (token, server_id, client_uri, report_to, handler, created_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )?
                    .execute(params![p.token, p.server_id, p.client_uri, p.report_to, p.handler, now()])?;
                Ok(())
            }
            TreeOp::RemovePendingExec { token } => {
                self.tx
                    .prepare_cached("DELETE FROM pending_exec WHERE token = ?1")?
                    .execute([token])?;
                Ok(())
            }
            TreeOp::ClearOwed { server_id, reason } => {
                self.tx
                    .prepare_cached(
                        "DELETE FROM owed_session WHERE server_id = ?1 AND reason = ?2",
                    )?
                    .execute(params![server_id, reason.as_str()])?;
                Ok(())
            }
            TreeOp::OweSession { server_id, reason } => {
                self.tx
                    .prepare_cached(
                        "INSERT OR IGNORE INTO owed_session (server_id, reason, created_at)
                         VALUES (?1, ?2, ?3)",
                    )?
                    .execute(params![server_id, reason.as_str(), now()])?;
                Ok(())
            }
        }
    }
}
