//! The `TreeStore` on SQLite (rusqlite, bundled): one database file, WAL, every write batch
//! one transaction, subtrees read and deleted by index range scans on the node path.

use std::fs::OpenOptions;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{
    Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params,
};

use super::migrations::{self, APPLICATION_ID, LATEST};
use super::{
    AccessType, Format, InstanceInfo, InstanceKey, Node, NodeProps, Outgoing, OutgoingKind,
    OwedReason, OwedSession, PendingExec, Scope, SessionRecord, StoreError, Subscription, TreeOp,
    TreeStore, Usage, Value, is_node_name, parent_path,
};

/// How to open the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Create the file if missing (mode 0600) and migrate it to the current schema: the
    /// daemon's mode.
    ReadWrite,
    /// Open an existing, current database without changing anything: diagnostic tools.
    ReadOnly,
}

/// The SQLite tree store. The connection sits behind a mutex so the store can be shared;
/// callers on an async runtime use it from a blocking thread.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Mutex<Connection>,
    path: PathBuf,
    /// Bumped after every committed `apply`, so caches of tree data know when to reread.
    generation: AtomicU64,
}

/// A node value's size as `Value::size` counts it: bool 1, numbers 4, text and blobs
/// their bytes (for quotas).
const VALUE_SIZE: &str = "CASE WHEN n.value IS NULL THEN 0 WHEN n.format = 'bool' THEN 1 \
     WHEN typeof(n.value) IN ('integer', 'real') THEN 4 ELSE length(CAST(n.value AS BLOB)) END";

const NODE_COLUMNS: &str = "path, format, mime, permanent, access, secret, value";

const PENDING_COLUMNS: &str = "token, server_id, client_uri, report_to, handler";

fn pending_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PendingExec> {
    Ok(PendingExec {
        token: r.get(0)?,
        server_id: r.get(1)?,
        client_uri: r.get(2)?,
        report_to: r.get(3)?,
        handler: r.get(4)?,
    })
}

const SESSION_COLUMNS: &str =
    "id, server_id, trigger, started_at, ended_at, outcome, detail, packages, commands";

fn session_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SessionRecord> {
    Ok(SessionRecord {
        id: r.get(0)?,
        server_id: r.get(1)?,
        trigger: r.get(2)?,
        started_at: r.get(3)?,
        ended_at: r.get(4)?,
        outcome: r.get(5)?,
        detail: r.get(6)?,
        packages: r.get(7)?,
        commands: r.get(8)?,
    })
}

/// Refuses, with a message that says what to fix, a database file or directory this
/// process cannot write (SQLite would open it read-only and fail at the first write).
fn writable(p: &Path, what: &str) -> std::io::Result<()> {
    nix::unistd::access(p, nix::unistd::AccessFlags::W_OK).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "the database {what} is not writable by uid {} ({e}); make the state directory \
                 the daemon's own (the unit's StateDirectory= does)",
                nix::unistd::Uid::effective()
            ),
        )
    })
}

impl SqliteStore {
    /// Opens (creating and migrating in `ReadWrite` mode) the database at `path`.
    ///
    /// A file that is not an SQLite database, belongs to another program, or has a newer
    /// schema than this build is refused before anything is written to it.
    pub fn open(path: &Path, mode: OpenMode) -> Result<SqliteStore, StoreError> {
        let shown = path.display().to_string();
        let io_err = |source| StoreError::Io {
            path: shown.clone(),
            source,
        };
        if mode == OpenMode::ReadWrite {
            // Create the file ourselves so it is owner-only from its first byte: it holds
            // the servers' credentials. SQLite gives the -wal and -shm files the same mode.
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
            {
                Ok(_) => tracing::info!(path = %shown, "created database"),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io_err(e)),
            }
            writable(path, "file").map_err(io_err)?;
            // SQLite makes the -wal and -shm files beside it.
            let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
            writable(dir.unwrap_or(Path::new(".")), "directory").map_err(io_err)?;
            let meta = std::fs::metadata(path).map_err(io_err)?;
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(path = %shown, mode = format!("{:o}", meta.permissions().mode() & 0o777),
                    "database file is readable by others; it holds credentials");
            }
        } else if !path.exists() {
            return Err(io_err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no database (omadmd creates it when it first starts)",
            )));
        }
        let flags = match mode {
            OpenMode::ReadWrite => OpenFlags::SQLITE_OPEN_READ_WRITE,
            OpenMode::ReadOnly => OpenFlags::SQLITE_OPEN_READ_ONLY,
        } | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let open_err = |source| StoreError::Open {
            path: shown.clone(),
            source,
        };
        let mut conn = Connection::open_with_flags(path, flags).map_err(open_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(open_err)?;

        // Identify the file before touching it: these reads write nothing.
        let foreign = |reason: String| StoreError::Foreign {
            path: shown.clone(),
            reason,
        };
        let probe = |conn: &Connection| -> rusqlite::Result<(i32, i32, i64)> {
            let app: i32 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
            let version: i32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
            let objects: i64 =
                conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))?;
            Ok((app, version, objects))
        };
        let (app, version, objects) = probe(&conn).map_err(|e| foreign(e.to_string()))?;
        let fresh = app == 0 && version == 0 && objects == 0;
        if !fresh && app != APPLICATION_ID {
            return Err(foreign(format!(
                "not an omadmd database (application_id {app:#x}, {objects} schema objects)"
            )));
        }
        if version > LATEST {
            return Err(foreign(format!(
                "schema version {version} is newer than this omadmd understands ({LATEST})"
            )));
        }
        if mode == OpenMode::ReadOnly && version != LATEST {
            return Err(foreign(format!(
                "schema version {version} is older than {LATEST}; start omadmd once to migrate it"
            )));
        }
        if mode == OpenMode::ReadWrite {
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))
                .map_err(open_err)?;
            // FULL: a session's answer must not be lost once reported, even on power loss.
            conn.pragma_update(None, "synchronous", "FULL")
                .map_err(open_err)?;
        }
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(open_err)?;
        // A 512 KiB page cache (SQLite's default is 2 MiB): the indexes keep reads short,
        // and an idle daemon should stay small (PRODUCT.md §5).
        conn.pragma_update(None, "cache_size", -512)
            .map_err(open_err)?;
        if mode == OpenMode::ReadWrite && version < LATEST {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Exclusive)
                .map_err(open_err)?;
            migrations::migrate(&tx, version, LATEST).map_err(open_err)?;
            tx.commit().map_err(open_err)?;
            tracing::info!(path = %shown, from = version, to = LATEST, "database schema migrated");
        }
        Ok(SqliteStore {
            conn: Mutex::new(conn),
            path: path.to_owned(),
            generation: AtomicU64::new(0),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<i32, StoreError> {
        Ok(self
            .lock()
            .pragma_query_value(None, "user_version", |r| r.get(0))?)
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written (the transaction
        // rolls back on drop), so a poisoned lock is safe to keep using.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` with commits that reach the WAL but are not fsynced (`synchronous =
    /// NORMAL`), for the session history: a log whose last rows may be lost on power loss,
    /// never on a crash of the process, and whose two writes per session would otherwise
    /// cost two fsyncs (docs/performance.md). The next durable commit syncs them too.
    fn relaxed<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let conn = self.lock();
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let result = f(&conn);
        // Back to FULL before anything else may write; a failure here is reported.
        conn.pragma_update(None, "synchronous", "FULL")?;
        Ok(result?)
    }
}

/// A write a schema trigger refused (migration v7: a second account with one SrvID) is
/// invalid input, not a database failure.
fn refused_by_schema(e: StoreError) -> StoreError {
    match e {
        StoreError::Sql(rusqlite::Error::SqliteFailure(f, msg))
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_TRIGGER =>
        {
            StoreError::Invalid(msg.unwrap_or_else(|| "refused by a schema rule".into()))
        }
        e => e,
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The bounds of the path range holding the strict descendants of `path`: every path
/// starting with `path + "/"` sorts in `[path + "/", path + "0")` ('0' follows '/'), and a
/// path in that range that does not start so would need a character between '/' and '0'
/// after `path`, and there is none.
fn descendant_range(path: &str) -> (String, String) {
    (format!("{path}/"), format!("{path}0"))
}

fn cv_string(salt: &str, seq: i64) -> String {
    format!("{salt}{seq:x}")
}

fn row_to_node(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Node, StoreError>> {
    let path: String = row.get(0)?;
    let format: String = row.get(1)?;
    let mime: Option<String> = row.get(2)?;
    let permanent: bool = row.get(3)?;
    let access: u8 = row.get(4)?;
    let secret: bool = row.get(5)?;
    let raw = row.get_ref(6)?;
    Ok(decode_node(
        path, &format, mime, permanent, access, secret, raw,
    ))
}

fn decode_node(
    path: String,
    format: &str,
    mime: Option<String>,
    permanent: bool,
    access: u8,
    secret: bool,
    raw: ValueRef<'_>,
) -> Result<Node, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        path: path.clone(),
        reason,
    };
    let format =
        Format::parse(format).ok_or_else(|| corrupt(format!("unknown format {format:?}")))?;
    let text = |raw: ValueRef<'_>| -> Result<String, StoreError> {
        match raw {
            ValueRef::Text(t) => {
                String::from_utf8(t.to_vec()).map_err(|_| corrupt("not UTF-8".into()))
            }
            _ => Err(corrupt(format!(
                "{format} value stored as {:?}",
                raw.data_type()
            ))),
        }
    };
    let value = match (format, raw) {
        (Format::Node, ValueRef::Null) => None,
        (Format::Null, ValueRef::Null) => Some(Value::Null),
        (Format::Int, ValueRef::Integer(i)) => Some(Value::Int(
            i32::try_from(i).map_err(|_| corrupt("int out of range".into()))?,
        )),
        (Format::Bool, ValueRef::Integer(i)) => Some(Value::Bool(i != 0)),
        (Format::Float, ValueRef::Real(x)) => Some(Value::Float(x as f32)),
        (Format::Bin, ValueRef::Blob(b)) => Some(Value::Bin(b.to_vec())),
        (Format::Chr, r) => Some(Value::Chr(text(r)?)),
        (Format::B64, r) => Some(Value::B64(text(r)?)),
        (Format::Xml, r) => Some(Value::Xml(text(r)?)),
        (Format::Date, r) => Some(Value::Date(text(r)?)),
        (Format::Time, r) => Some(Value::Time(text(r)?)),
        (f, r) => return Err(corrupt(format!("{f} value stored as {:?}", r.data_type()))),
    };
    Ok(Node {
        path,
        props: NodeProps {
            format,
            mime,
            scope: if permanent {
                Scope::Permanent
            } else {
                Scope::Dynamic
            },
            access: AccessType::from_bits(access),
            secret,
        },
        value,
    })
}

fn encode_value(value: Option<&Value>) -> SqlValue {
    match value {
        None | Some(Value::Null) => SqlValue::Null,
        Some(Value::Int(i)) => SqlValue::Integer(i64::from(*i)),
        Some(Value::Bool(b)) => SqlValue::Integer(i64::from(*b)),
        Some(Value::Float(x)) => SqlValue::Real(f64::from(*x)),
        Some(Value::Bin(b)) => SqlValue::Blob(b.clone()),
        Some(Value::Chr(s) | Value::B64(s) | Value::Xml(s) | Value::Date(s) | Value::Time(s)) => {
            SqlValue::Text(s.clone())
        }
    }
}

/// Checks that a node's value fits its format.
fn check_node(node: &Node) -> Result<(), StoreError> {
    let ok = match (&node.value, node.props.format) {
        (None, Format::Node) => true,
        (Some(v), f) => v.format() == f,
        (None, _) => false,
    };
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "node {:?}: {} node with value {:?}",
            node.path, node.props.format, node.value
        )))
    }
}

/// One write transaction: looks up instances, inserts nodes, bumps validators.
struct Writer<'c> {
    tx: Transaction<'c>,
    seq: i64,
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

    fn apply(&self, op: &TreeOp) -> Result<(), StoreError> {
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
                self.tx
                    .prepare_cached(
                        "INSERT INTO outbox (server_id, kind, target, payload, created_at)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                    )?
                    .execute(params![
                        o.server_id,
                        o.kind.as_str(),
                        o.target,
                        o.payload,
                        now()
                    ])?;
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

impl SqliteStore {
    fn query_nodes(
        &self,
        key: &InstanceKey,
        sql: &str,
        extra: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<Node>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(sql)?;
        let mut args: Vec<&dyn rusqlite::ToSql> = vec![&key.moid, &key.miid];
        args.extend_from_slice(extra);
        let rows = stmt.query_map(args.as_slice(), row_to_node)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row??);
        }
        Ok(out)
    }
}

impl TreeStore for SqliteStore {
    fn instances(&self, moid: Option<&str>) -> Result<Vec<InstanceInfo>, StoreError> {
        let conn = self.lock();
        let salt = salt(&conn)?;
        let mut stmt = conn.prepare_cached(
            "SELECT moid, miid, ddf_url, creator, cv FROM instance
             WHERE ?1 IS NULL OR moid = ?1 ORDER BY moid, miid",
        )?;
        let rows = stmt.query_map([moid], |r| {
            Ok(InstanceInfo {
                moid: r.get(0)?,
                miid: r.get(1)?,
                ddf_url: r.get(2)?,
                creator: r.get(3)?,
                cv: cv_string(&salt, r.get(4)?),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn instance(&self, moid: &str, miid: &str) -> Result<Option<InstanceInfo>, StoreError> {
        let conn = self.lock();
        let salt = salt(&conn)?;
        Ok(conn
            .prepare_cached(
                "SELECT ddf_url, creator, cv FROM instance WHERE moid = ?1 AND miid = ?2",
            )?
            .query_row([moid, miid], |r| {
                Ok(InstanceInfo {
                    moid: moid.to_owned(),
                    miid: miid.to_owned(),
                    ddf_url: r.get(0)?,
                    creator: r.get(1)?,
                    cv: cv_string(&salt, r.get(2)?),
                })
            })
            .optional()?)
    }

    fn node(&self, key: &InstanceKey, path: &str) -> Result<Option<Node>, StoreError> {
        Ok(self
            .query_nodes(
                key,
                &format!(
                    "SELECT {NODE_COLUMNS} FROM node WHERE instance_id =
                     (SELECT id FROM instance WHERE moid = ?1 AND miid = ?2) AND path = ?3"
                ),
                &[&path],
            )?
            .pop())
    }

    fn children(&self, key: &InstanceKey, path: &str) -> Result<Vec<Node>, StoreError> {
        self.query_nodes(
            key,
            &format!(
                "SELECT {NODE_COLUMNS} FROM node WHERE instance_id =
                 (SELECT id FROM instance WHERE moid = ?1 AND miid = ?2) AND parent = ?3
                 ORDER BY path"
            ),
            &[&path],
        )
    }

    fn subtree(
        &self,
        key: &InstanceKey,
        path: &str,
        max_depth: Option<u32>,
    ) -> Result<Vec<Node>, StoreError> {
        let mut nodes = if path.is_empty() {
            self.query_nodes(
                key,
                &format!(
                    "SELECT {NODE_COLUMNS} FROM node WHERE instance_id =
                     (SELECT id FROM instance WHERE moid = ?1 AND miid = ?2) ORDER BY path"
                ),
                &[],
            )?
        } else {
            let (lo, hi) = descendant_range(path);
            self.query_nodes(
                key,
                &format!(
                    "SELECT {NODE_COLUMNS} FROM node WHERE instance_id =
                     (SELECT id FROM instance WHERE moid = ?1 AND miid = ?2)
                     AND (path = ?3 OR (path >= ?4 AND path < ?5)) ORDER BY path"
                ),
                &[&path, &lo, &hi],
            )?
        };
        if let Some(max) = max_depth {
            let base = depth(path);
            nodes.retain(|n| depth(&n.path) - base <= max as usize);
        }
        // Sorting by path puts every parent before its children, since a string sorts
        // before every longer string it is a prefix of.
        Ok(nodes)
    }

    fn apply(&self, ops: &[TreeOp]) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let seq: i64 = tx.query_row(
            "UPDATE meta SET value = value + 1 WHERE key = 'change_seq' RETURNING value",
            [],
            |r| r.get(0),
        )?;
        let writer = Writer { tx, seq };
        for op in ops {
            writer.apply(op).map_err(refused_by_schema)?;
        }
        writer.tx.commit()?;
        self.generation.fetch_add(1, Ordering::Release);
        Ok(())
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn bootstrap_digest(&self, source: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .lock()
            .prepare_cached("SELECT sha256 FROM bootstrap_applied WHERE source = ?1")?
            .query_row([source], |r| r.get(0))
            .optional()?)
    }

    fn outbox(&self, server_id: &str) -> Result<Vec<Outgoing>, StoreError> {
        self.read_outbox(server_id)
    }

    fn remove_outgoing(&self, ids: &[i64]) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut del = tx.prepare_cached("DELETE FROM outbox WHERE id = ?1")?;
            for id in ids {
                del.execute([id])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn pending_execs(&self, handler: Option<&str>) -> Result<Vec<PendingExec>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {PENDING_COLUMNS} FROM pending_exec WHERE ?1 IS NULL OR handler = ?1 ORDER BY token"
        ))?;
        let rows = stmt.query_map([handler], pending_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn pending_exec(&self, token: &str) -> Result<Option<PendingExec>, StoreError> {
        Ok(self
            .lock()
            .prepare_cached(&format!(
                "SELECT {PENDING_COLUMNS} FROM pending_exec WHERE token = ?1"
            ))?
            .query_row([token], pending_row)
            .optional()?)
    }

    fn subscriptions(&self) -> Result<Vec<Subscription>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT server_id, client_uri, server_uri FROM subscription ORDER BY server_id, client_uri",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(Subscription {
                server_id: r.get(0)?,
                client_uri: r.get(1)?,
                server_uri: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn session_started(&self, server_id: &str, trigger: &str) -> Result<i64, StoreError> {
        self.relaxed(|conn| {
            conn.prepare_cached(
                "INSERT INTO session (server_id, trigger, started_at, outcome) VALUES (?1, ?2, ?3, 'running')",
            )?
            .execute(params![server_id, trigger, now()])?;
            let id = conn.last_insert_rowid();
            conn.prepare_cached(
                "DELETE FROM session WHERE id <= (SELECT id FROM session ORDER BY id DESC LIMIT 1 OFFSET ?1)",
            )?
            .execute([crate::tree::HISTORY_KEEP])?;
            Ok(id)
        })
    }

    fn session_finished(
        &self,
        id: i64,
        outcome: &str,
        detail: Option<&str>,
        packages: i64,
        commands: i64,
    ) -> Result<(), StoreError> {
        self.relaxed(|conn| {
            conn.prepare_cached(
                "UPDATE session SET ended_at = ?2, outcome = ?3, detail = ?4, packages = ?5, commands = ?6
                 WHERE id = ?1",
            )?
            .execute(params![id, now(), outcome, detail, packages, commands])?;
            Ok(())
        })
    }

    fn note_notification(
        &self,
        server_id: &str,
        id: u16,
        window_secs: i64,
    ) -> Result<bool, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = now();
        tx.prepare_cached("DELETE FROM seen_notification WHERE seen_at < ?1")?
            .execute([now - window_secs])?;
        let fresh = tx
            .prepare_cached(
                "INSERT OR IGNORE INTO seen_notification (server_id, notification_id, seen_at) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![server_id, id, now])?
            == 1;
        tx.commit()?;
        Ok(fresh)
    }

    fn interrupt_running(&self) -> Result<usize, StoreError> {
        Ok(self
            .lock()
            .prepare_cached(
                "UPDATE session SET outcome = 'interrupted', ended_at = ?1 WHERE outcome = 'running'",
            )?
            .execute([now()])?)
    }

    fn sessions(&self, limit: u32) -> Result<Vec<SessionRecord>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {SESSION_COLUMNS} FROM session ORDER BY id DESC LIMIT ?1"
        ))?;
        let rows = stmt.query_map([limit], session_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn usage(&self, creator: &str) -> Result<Usage, StoreError> {
        Ok(self.lock().query_row(
            &format!(
                "SELECT COUNT(*),
                        (SELECT COALESCE(SUM({VALUE_SIZE}), 0) FROM node n WHERE n.instance_id IN
                            (SELECT id FROM instance WHERE creator = ?1))
                 FROM instance WHERE creator = ?1"
            ),
            [creator],
            |r| {
                Ok(Usage {
                    instances: r.get::<_, i64>(0)?.try_into().unwrap_or(0),
                    bytes: r.get::<_, i64>(1)?.try_into().unwrap_or(0),
                })
            },
        )?)
    }

    fn instance_bytes(&self, key: &InstanceKey) -> Result<u64, StoreError> {
        let bytes: i64 = self.lock().query_row(
            &format!(
                "SELECT COALESCE(SUM({VALUE_SIZE}), 0) FROM node n
                 WHERE n.instance_id = (SELECT id FROM instance WHERE moid = ?1 AND miid = ?2)"
            ),
            [&key.moid, &key.miid],
            |r| r.get(0),
        )?;
        Ok(bytes.try_into().unwrap_or(0))
    }

    fn registrations(&self, server_id: &str) -> Result<u64, StoreError> {
        let n: i64 = self.lock().query_row(
            "SELECT (SELECT COUNT(*) FROM subscription WHERE server_id = ?1)
                  + (SELECT COUNT(*) FROM default_source WHERE server_id = ?1)",
            [server_id],
            |r| r.get(0),
        )?;
        Ok(n.try_into().unwrap_or(0))
    }

    fn last_session(&self, server_id: &str) -> Result<Option<SessionRecord>, StoreError> {
        Ok(self
            .lock()
            .prepare_cached(&format!(
                "SELECT {SESSION_COLUMNS} FROM session WHERE server_id = ?1 ORDER BY id DESC LIMIT 1"
            ))?
            .query_row([server_id], session_row)
            .optional()?)
    }

    fn default_source(&self, moid: &str) -> Result<Option<(String, String)>, StoreError> {
        Ok(self
            .lock()
            .prepare_cached("SELECT server_id, server_uri FROM default_source WHERE moid = ?1")?
            .query_row([moid], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }

    fn owed_sessions(&self) -> Result<Vec<OwedSession>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT server_id, reason, created_at FROM owed_session ORDER BY created_at, server_id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get(2)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (server_id, reason, since) = row?;
            // A reason this build does not know came from a newer one: skip, keep the row.
            if let Some(reason) = OwedReason::parse(&reason) {
                out.push(OwedSession {
                    server_id,
                    reason,
                    since,
                });
            }
        }
        Ok(out)
    }
}

impl SqliteStore {
    /// Outbox rows for one server.
    fn read_outbox(&self, server_id: &str) -> Result<Vec<Outgoing>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT id, kind, target, payload FROM outbox WHERE server_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([server_id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get(2)?,
                r.get(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, kind, target, payload) = row?;
            // A kind this build does not know came from a newer one: skip, keep the row.
            if let Some(kind) = OutgoingKind::parse(&kind) {
                out.push(Outgoing {
                    id,
                    server_id: server_id.to_owned(),
                    kind,
                    target,
                    payload,
                });
            }
        }
        Ok(out)
    }
}

fn salt(conn: &Connection) -> Result<String, StoreError> {
    Ok(conn
        .prepare_cached("SELECT value FROM meta WHERE key = 'cv_salt'")?
        .query_row([], |r| r.get(0))?)
}

fn depth(path: &str) -> usize {
    if path.is_empty() {
        0
    } else {
        path.matches('/').count() + 1
    }
}

#[cfg(test)]
mod tests;
