//! The writer of one batch: a transaction that looks up instances, inserts and deletes
//! nodes, bumps cache validators and writes the journal entries that travel with them.

use super::insert::Inserts;
use super::rows::{check_node, encode_value};
use std::collections::HashSet;

use super::*;

/// A replacement under way ([`Writer::begin`]): where its nodes go and what came so far.
pub(super) struct Filling {
    id: i64,
    key: InstanceKey,
    top: String,
    count: usize,
    /// Interior nodes inserted so far: the parents later nodes may have.
    interior: HashSet<String>,
    /// What the paths below the top begin with.
    below: String,
    /// The interior node inserted last: most nodes are its children, found without a
    /// hash.
    last_interior: Option<String>,
}

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

    /// Moves instance `id`'s byte count (migration v10) by `delta`.
    pub(super) fn add_bytes(&self, id: i64, delta: i64) -> Result<(), StoreError> {
        if delta != 0 {
            self.tx
                .prepare_cached("UPDATE instance SET bytes = bytes + ?1 WHERE id = ?2")?
                .execute(params![delta, id])?;
        }
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

    /// Starts a replacement: makes or empties the instance, or deletes the subtree, and
    /// gives what the nodes that follow are checked against.
    pub(super) fn begin(&self, put: &Put) -> Result<Filling, StoreError> {
        let key = &put.key;
        if key.moid.is_empty() || !is_node_name(&key.miid) {
            return Err(StoreError::Invalid(format!("bad instance key {key}")));
        }
        let id = if put.path.is_empty() {
            match self.instance_id(key)? {
                Some(id) => {
                    self.delete_subtree(id, "")?;
                    self.tx
                        .prepare_cached("UPDATE instance SET ddf_url = ?1 WHERE id = ?2")?
                        .execute(params![put.ddf_url, id])?;
                    id
                }
                None => {
                    self.tx
                        .prepare_cached(
                            "INSERT INTO instance (moid, miid, ddf_url, creator, cv)
                             VALUES (?1, ?2, ?3, ?4, ?5)",
                        )?
                        .execute(params![
                            key.moid,
                            key.miid,
                            put.ddf_url,
                            put.creator,
                            self.seq
                        ])?;
                    self.tx.last_insert_rowid()
                }
            }
        } else {
            let id = self.existing(key)?;
            if let (Some(props), Some(parent)) = (&put.parent, parent_path(&put.path))
                && self.node_format(id, parent)?.is_none()
            {
                let node = Node {
                    path: parent.to_owned(),
                    props: props.clone(),
                    value: None,
                };
                check_node(&node)?;
                if !node.is_interior()
                    || !is_node_name(parent.rsplit('/').next().unwrap_or_default())
                    || !parent_path(parent).is_some_and(|gp| {
                        self.node_format(id, gp).ok().flatten() == Some(Format::Node)
                    })
                {
                    return Err(StoreError::Invalid(format!(
                        "cannot make {parent:?} for {:?}",
                        put.path
                    )));
                }
                // An interior node: no bytes to count.
                Inserts::default().rows(&self.tx, id, std::slice::from_ref(&node))?;
            }
            self.delete_subtree(id, &put.path)?;
            id
        };
        self.touch(id)?;
        Ok(Filling {
            id,
            key: key.clone(),
            top: put.path.clone(),
            count: 0,
            interior: HashSet::new(),
            below: descendant_range(&put.path).0,
            last_interior: None,
        })
    }

    /// Checks the next node of a replacement before it is inserted: the top first (an
    /// interior root for an instance), then nodes below it whose parent came before them.
    pub(super) fn check(&self, f: &mut Filling, node: &Node) -> Result<(), StoreError> {
        check_node(node)?;
        if f.count == 0 {
            if f.top.is_empty() && (!node.path.is_empty() || !node.is_interior()) {
                return Err(StoreError::Invalid(format!(
                    "{}: an interior root must come first",
                    f.key
                )));
            }
            if node.path != f.top {
                return Err(StoreError::Invalid(format!(
                    "node {:?} comes before the top {:?}",
                    node.path, f.top
                )));
            }
        } else if !f.top.is_empty() && !node.path.starts_with(&f.below) {
            return Err(StoreError::Invalid(format!(
                "node {:?} is not below {:?}",
                node.path, f.top
            )));
        }
        if let Some((parent, name)) = split_path(&node.path) {
            if !is_node_name(name) {
                return Err(StoreError::Invalid(format!("bad node name {name:?}")));
            }
            // The top's parent is already stored; later nodes must come after their
            // parent in this replacement.
            let known = if f.count == 0 {
                self.node_format(f.id, parent)? == Some(Format::Node)
            } else {
                f.last_interior.as_deref() == Some(parent) || f.interior.contains(parent)
            };
            if !known {
                return Err(StoreError::Invalid(format!(
                    "node {:?} has no interior parent",
                    node.path
                )));
            }
        } else if f.count != 0 {
            return Err(StoreError::Invalid("root listed twice".into()));
        }
        if node.is_interior() {
            f.interior.insert(node.path.clone());
            f.last_interior = Some(node.path.clone());
        }
        f.count += 1;
        Ok(())
    }
}

impl Filling {
    /// The instance the replacement's rows go to.
    pub(super) fn id(&self) -> i64 {
        self.id
    }
}

impl Writer<'_> {
    /// Ends a replacement, which must have had its top.
    pub(super) fn end(&self, f: Filling) -> Result<(), StoreError> {
        match f.count {
            0 if f.top.is_empty() => Err(StoreError::Invalid(format!(
                "{}: an interior root must come first",
                f.key
            ))),
            0 => Err(StoreError::Invalid("empty subtree".into())),
            _ => Ok(()),
        }
    }

    /// One whole replacement.
    fn put(&self, put: &Put, nodes: &[Node]) -> Result<(), StoreError> {
        let mut f = self.begin(put)?;
        for node in nodes {
            self.check(&mut f, node)?;
        }
        let bytes = Inserts::default().rows(&self.tx, f.id, nodes)?;
        self.add_bytes(f.id, bytes)?;
        self.end(f)
    }

    /// Deletes a node and its descendants, and their bytes from the instance's count;
    /// returns how many rows went.
    fn delete_subtree(&self, id: i64, path: &str) -> Result<usize, StoreError> {
        if path.is_empty() {
            self.tx
                .prepare_cached("UPDATE instance SET bytes = 0 WHERE id = ?1")?
                .execute([id])?;
            return Ok(self
                .tx
                .prepare_cached("DELETE FROM node WHERE instance_id = ?1")?
                .execute([id])?);
        }
        let (lo, hi) = descendant_range(path);
        let range = "instance_id = ?1 AND (path = ?2 OR (path >= ?3 AND path < ?4))";
        let bytes: i64 = self
            .tx
            .prepare_cached(&format!(
                "SELECT COALESCE(SUM({VALUE_SIZE}), 0) FROM node n WHERE {range}"
            ))?
            .query_row(params![id, path, lo, hi], |r| r.get(0))?;
        self.add_bytes(id, -bytes)?;
        Ok(self
            .tx
            .prepare_cached(&format!("DELETE FROM node WHERE {range}"))?
            .execute(params![id, path, lo, hi])?)
    }

    pub(super) fn apply(&self, op: &TreeOp) -> Result<(), StoreError> {
        match op {
            TreeOp::PutInstance {
                key,
                ddf_url,
                creator,
                nodes,
            } => self.put(
                &Put {
                    key: key.clone(),
                    path: String::new(),
                    ddf_url: ddf_url.clone(),
                    creator: creator.clone(),
                    parent: None,
                },
                nodes,
            ),
            TreeOp::PutSubtree { key, nodes } => {
                let Some(top) = nodes.first() else {
                    return Err(StoreError::Invalid("empty subtree".into()));
                };
                if top.path.is_empty() {
                    return Err(StoreError::Invalid(
                        "use PutInstance to replace a root".into(),
                    ));
                }
                self.put(
                    &Put {
                        key: key.clone(),
                        path: top.path.clone(),
                        ddf_url: None,
                        creator: String::new(),
                        parent: None,
                    },
                    nodes,
                )
            }
            TreeOp::SetValue { key, path, value } => {
                let id = self.existing(key)?;
                let no_node = || StoreError::NoNode {
                    moid: key.moid.clone(),
                    miid: key.miid.clone(),
                    path: path.clone(),
                };
                // The node's format, and what its value holds now (for the byte count).
                let (format, old): (String, i64) = self
                    .tx
                    .prepare_cached(&format!(
                        "SELECT format, {VALUE_SIZE} FROM node n WHERE instance_id = ?1 AND path = ?2"
                    ))?
                    .query_row(params![id, path], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?
                    .ok_or_else(no_node)?;
                if Format::parse(&format) != Some(value.format()) {
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
                self.add_bytes(id, i64::try_from(value.size()).unwrap_or(i64::MAX) - old)?;
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
                // A delivery reads the subscribed data when it is sent: one waiting per
                // subscription is enough, and the outbox stays bounded by the
                // subscriptions (issue 27).
                self.tx
                    .prepare_cached(
                        "INSERT INTO outbox (server_id, kind, target, payload, created_at)
                         SELECT ?1, ?2, ?3, ?4, ?5
                         WHERE ?2 <> 'delivery' OR NOT EXISTS (SELECT 1 FROM outbox
                             WHERE server_id = ?1 AND kind = ?2 AND target IS ?3 AND payload = ?4)",
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
            TreeOp::SetAccountSource { server_id, source } => {
                self.tx
                    .prepare_cached(
                        "INSERT INTO account_source (server_id, source) VALUES (?1, ?2)
                         ON CONFLICT (server_id) DO UPDATE SET source = excluded.source",
                    )?
                    .execute(params![server_id, source])?;
                Ok(())
            }
            TreeOp::ForgetServer { server_id } => {
                for table in [
                    "outbox",
                    "subscription",
                    "default_source",
                    "owed_session",
                    "seen_notification",
                    "pending_exec",
                    "account_source",
                ] {
                    self.tx
                        .prepare_cached(&format!("DELETE FROM {table} WHERE server_id = ?1"))?
                        .execute([server_id])?;
                }
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
