//! The store on SQLite (rusqlite, bundled): one database file, WAL, every write batch one
//! transaction, subtrees read and deleted by index range scans on the node path. This file
//! holds the store and its [`Tree`] side; opening and checking the file (`open.rs`), row
//! encoding (`rows.rs`), the writer of a batch (`writer.rs`) and the [`Journal`] tables
//! (`journal.rs`) have files of their own.

mod insert;
mod journal;
mod open;
mod rows;
mod writer;

use std::fs::OpenOptions;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::types::ValueRef;
use rusqlite::{
    Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params,
};

use super::migrations::{self, APPLICATION_ID, LATEST};
use super::{
    AccessType, Format, InstanceInfo, InstanceKey, Journal, Node, NodeProps, NodeSink, OutItem,
    Outgoing, OwedReason, OwedSession, PendingExec, Put, Queued, Scope, SessionRecord, StoreError,
    Subscription, Tree, TreeOp, Usage, Value, is_node_name, parent_path, split_path,
};

use rows::{NODE_COLUMNS, VALUE_SIZE, cv_string, depth, descendant_range, row_to_node};
use writer::Writer;

/// How to open the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Create the file if missing (mode 0600) and migrate it to the current schema: the
    /// daemon's mode.
    ReadWrite,
    /// Open an existing, current database without changing anything: diagnostic tools.
    ReadOnly,
}

/// The SQLite tree store: one write connection, and read connections beside it. In WAL
/// mode readers never wait for the writer, so a D-Bus read or a notification check does
/// not wait behind a session's commit and its fsync. Writes run where they cannot stall
/// the async runtime (see [`blocking`]), one at a time on the write connection.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Mutex<Connection>,
    /// Idle read connections, opened as needed and kept up to [`IDLE_READERS`].
    readers: Mutex<Vec<Connection>>,
    path: PathBuf,
    /// Bumped after every committed `apply`, so caches of tree data know when to reread.
    generation: AtomicU64,
    /// Exit the process on an I/O error during a write (the daemon's setting; tools and
    /// tests get the error back).
    exit_on_io_error: std::sync::atomic::AtomicBool,
}

/// The exit status after an I/O error during a write (`EX_IOERR`): systemd restarts the
/// daemon (`Restart=on-failure`), and SQLite's recovery at the next open settles whether
/// the write happened.
pub const EXIT_IO_ERROR: i32 = 74;

/// Whether an error is SQLite's I/O error (`SQLITE_IOERR_*`: a failed read, write or
/// fsync), after which it cannot tell whether a commit reached the disk. A full disk
/// (`SQLITE_FULL`) is not one: that write surely did not happen.
pub fn is_io_error(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::Sql(rusqlite::Error::SqliteFailure(f, _))
            if f.code == rusqlite::ErrorCode::SystemIoFailure
    )
}

/// Read connections kept open when idle: one for the sessions, one for D-Bus and the
/// notification listener. More are opened when more readers run at once, then closed.
const IDLE_READERS: usize = 2;

/// Runs `f`, a write that may wait on a lock or an fsync, where it cannot stall the async
/// runtime: on a worker of a multi-threaded tokio runtime, tokio first hands the worker's
/// other tasks to another thread (`block_in_place`); elsewhere (a tool, a test, a
/// current-thread runtime) it just runs.
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// A read connection, back in the pool when dropped.
struct Reader<'a> {
    store: &'a SqliteStore,
    conn: Option<Connection>,
}

impl std::ops::Deref for Reader<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        // Only taken in drop.
        self.conn.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            let mut idle = self.store.readers.lock().unwrap_or_else(|p| p.into_inner());
            if idle.len() < IDLE_READERS {
                idle.push(conn);
            }
        }
    }
}

impl SqliteStore {
    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<i32, StoreError> {
        Ok(self
            .read()?
            .pragma_query_value(None, "user_version", |r| r.get(0))?)
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written (the transaction
        // rolls back on drop), so a poisoned lock is safe to keep using.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A read connection: an idle one, or a new one.
    fn read(&self) -> Result<Reader<'_>, StoreError> {
        let idle = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match idle {
            Some(c) => c,
            None => self.open_reader()?,
        };
        Ok(Reader {
            store: self,
            conn: Some(conn),
        })
    }

    /// Runs a write on the write connection, off the async runtime's workers.
    ///
    /// After an I/O error SQLite cannot know whether the commit reached the disk: the
    /// caller must not answer as if it did not (a server told 500 might find the change
    /// after a restart, when recovery replays it). With [`SqliteStore::exit_on_io_error`]
    /// the process ends here, before anyone is told anything.
    /// One write transaction: `body` with a [`Writer`], committed when it succeeds (the
    /// change sequence bumped once for all of it), rolled back when it fails.
    fn transaction(
        &self,
        body: impl FnOnce(&Writer<'_>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.write(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let seq: i64 = tx.query_row(
                "UPDATE meta SET value = value + 1 WHERE key = 'change_seq' RETURNING value",
                [],
                |r| r.get(0),
            )?;
            let writer = Writer { tx, seq };
            body(&writer).map_err(refused_by_schema)?;
            writer.tx.commit()?;
            self.generation.fetch_add(1, Ordering::Release);
            Ok(())
        })
    }

    fn write<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let result = blocking(|| f(&mut self.lock()));
        if let Err(e) = &result
            && is_io_error(e)
            && self.exit_on_io_error.load(Ordering::Relaxed)
        {
            tracing::error!(error = %e, database = %self.path.display(),
                "I/O error during a write: whether it reached the disk is unknown; exiting so that recovery at the next start settles it");
            std::process::exit(EXIT_IO_ERROR);
        }
        result
    }

    /// Frees the page caches of the write connection and the idle read connections
    /// (`PRAGMA shrink_memory`): after a large operation they hold up to a MiB between
    /// them that an idle daemon does not need; they fill again as they are used.
    pub fn release_memory(&self) {
        let shrink = |c: &Connection| {
            if let Err(e) = c.execute_batch("PRAGMA shrink_memory") {
                tracing::debug!(error = %e, "shrink_memory failed");
            }
        };
        blocking(|| shrink(&self.lock()));
        for c in self
            .readers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            shrink(c);
        }
    }

    /// From now on, an I/O error during a write ends the process with [`EXIT_IO_ERROR`]
    /// (the daemon's mode: see [`SqliteStore::write`]).
    pub fn exit_on_io_error(&self) {
        self.exit_on_io_error.store(true, Ordering::Relaxed);
    }

    /// Runs `f` with commits that reach the WAL but are not fsynced (`synchronous =
    /// NORMAL`), for the session history: a log whose last rows may be lost on power loss,
    /// never on a crash of the process, and whose two writes per session would otherwise
    /// cost two fsyncs (docs/performance.md). The next durable commit syncs them too.
    fn relaxed<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        self.write(|conn| {
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            let result = f(conn);
            // Back to FULL before anything else may write; a failure here is reported.
            conn.pragma_update(None, "synchronous", "FULL")?;
            Ok(result?)
        })
    }
}

/// A write a schema trigger refused (migration v7: a second account with one SrvID) is
/// invalid input, not a database failure.
/// The sink of [`Tree::apply_streamed`]: each replacement begun ends when the next begins.
struct Streaming<'w, 'c> {
    writer: &'w Writer<'c>,
    filling: Option<writer::Filling>,
    inserts: insert::Inserts<'w>,
    /// Nodes checked and not yet inserted: a batch's worth at most.
    pending: Vec<Node>,
}

impl Streaming<'_, '_> {
    fn flush(&mut self) -> Result<(), StoreError> {
        if let Some(f) = &self.filling
            && !self.pending.is_empty()
        {
            let bytes = self.inserts.rows(&self.writer.tx, f.id(), &self.pending)?;
            self.writer.add_bytes(f.id(), bytes)?;
            self.pending.clear();
        }
        Ok(())
    }

    /// Ends the replacement under way, its last rows inserted.
    fn finish(&mut self) -> Result<(), StoreError> {
        self.flush()?;
        match self.filling.take() {
            Some(f) => self.writer.end(f),
            None => Ok(()),
        }
    }
}

impl NodeSink for Streaming<'_, '_> {
    fn begin(&mut self, put: &Put) -> Result<(), StoreError> {
        // The rows so far go in first: this replacement may look at them.
        self.finish()?;
        self.filling = Some(self.writer.begin(put)?);
        Ok(())
    }

    fn node(&mut self, node: Node) -> Result<(), StoreError> {
        let f = self
            .filling
            .as_mut()
            .ok_or_else(|| StoreError::Invalid("a node before its replacement began".into()))?;
        self.writer.check(f, &node)?;
        self.pending.push(node);
        if self.pending.len() == insert::BATCH {
            self.flush()?;
        }
        Ok(())
    }
}

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

fn salt(conn: &Connection) -> Result<String, StoreError> {
    Ok(conn
        .prepare_cached("SELECT value FROM meta WHERE key = 'cv_salt'")?
        .query_row([], |r| r.get(0))?)
}

impl SqliteStore {
    fn query_nodes(
        &self,
        key: &InstanceKey,
        sql: &str,
        extra: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<Node>, StoreError> {
        let conn = self.read()?;
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

impl Tree for SqliteStore {
    fn instances(&self, moid: Option<&str>) -> Result<Vec<InstanceInfo>, StoreError> {
        let conn = self.read()?;
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
        let conn = self.read()?;
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

    fn visit_subtree(
        &self,
        key: &InstanceKey,
        path: &str,
        max_depth: Option<u32>,
        visit: &mut dyn FnMut(Node) -> bool,
    ) -> Result<(), StoreError> {
        // Depth first: '/' compared as the lowest character (char(1): node names hold no
        // control characters), so "a/x" sorts before the sibling "a.b". The index orders
        // by plain path; SQLite sorts the subtree in its own bounded sorter.
        let (lo, hi) = descendant_range(path);
        let (within, range): (&str, &[&dyn rusqlite::ToSql]) = if path.is_empty() {
            ("", &[])
        } else {
            (
                "AND (path = ?3 OR (path >= ?4 AND path < ?5))",
                &[&path, &lo, &hi],
            )
        };
        let sql = format!(
            "SELECT {NODE_COLUMNS} FROM node WHERE instance_id =
             (SELECT id FROM instance WHERE moid = ?1 AND miid = ?2) {within}
             ORDER BY replace(path, '/', char(1))"
        );
        let conn = self.read()?;
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut args: Vec<&dyn rusqlite::ToSql> = vec![&key.moid, &key.miid];
        args.extend_from_slice(range);
        let rows = stmt.query_map(args.as_slice(), row_to_node)?;
        let base = depth(path);
        for row in rows {
            let node = row??;
            if max_depth.is_some_and(|max| depth(&node.path) - base > max as usize) {
                continue;
            }
            if !visit(node) {
                break;
            }
        }
        Ok(())
    }

    fn apply(&self, ops: &[TreeOp]) -> Result<(), StoreError> {
        self.transaction(|writer| ops.iter().try_for_each(|op| writer.apply(op)))
    }

    fn apply_streamed(
        &self,
        fill: &mut dyn FnMut(&mut dyn NodeSink) -> Result<(), StoreError>,
        then: &[TreeOp],
    ) -> Result<(), StoreError> {
        self.transaction(|writer| {
            let mut sink = Streaming {
                writer,
                filling: None,
                inserts: insert::Inserts::default(),
                pending: Vec::with_capacity(insert::BATCH),
            };
            fill(&mut sink)?;
            sink.finish()?;
            drop(sink);
            then.iter().try_for_each(|op| writer.apply(op))
        })
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn usage(&self, creator: &str) -> Result<Usage, StoreError> {
        // The writer keeps each instance's bytes (migration v10): a row per instance.
        Ok(self.read()?.query_row(
            "SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM instance WHERE creator = ?1",
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
        let bytes: i64 = self
            .read()?
            .query_row(
                "SELECT bytes FROM instance WHERE moid = ?1 AND miid = ?2",
                [&key.moid, &key.miid],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0);
        Ok(bytes.try_into().unwrap_or(0))
    }
}

#[cfg(test)]
mod outbox_tests;
#[cfg(test)]
mod tests;
