//! Opening the database file: created owner-only, checked before anything is written
//! (application id, schema version, that it is SQLite at all), migrated, and refused with
//! what to fix when this process cannot write it.

use super::*;

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
            readers: Mutex::default(),
            path: path.to_owned(),
            generation: AtomicU64::new(0),
            exit_on_io_error: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// A new read connection to the same file (read-only, so it can never write).
    pub(super) fn open_reader(&self) -> Result<Connection, StoreError> {
        let open_err = |source| StoreError::Open {
            path: self.path.display().to_string(),
            source,
        };
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(open_err)?;
        // Readers keep a smaller page cache than the writer: there may be two of them.
        conn.pragma_update(None, "cache_size", -256)
            .map_err(open_err)?;
        Ok(conn)
    }
}
