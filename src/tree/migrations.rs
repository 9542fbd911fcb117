//! The database schema and its migrations: an append-only list, progress kept in
//! `PRAGMA user_version`, each step run in the same transaction as the version bump.
//!
//! Schema changelog (one line per version; never edit a released step, add one):
//! - v1: `instance` (MO instances keyed by MOID+MIID, creator, cache-validator serial),
//!   `node` (one row per node, keyed by instance and path from the root, value typed by
//!   format), `meta` (change serial and the database's cache-validator salt).
//! - v2: `bootstrap_applied` (which factory bootstrap files were applied, by digest) and
//!   `owed_session` (sessions owed to servers, e.g. after a bootstrap).
//! - v3: `outbox` (Generic Alerts and subscription deliveries waiting for a server),
//!   `subscription` (SUB registrations), `default_source` (DEFAULT's MOID → ServerURI).
//! - v4: `session` (one row per DM session: trigger, server, start, end, outcome, counts).
//! - v5: `seen_notification` (NOTIFICATION-IDs already acted on, per server).
//! - v6: `pending_exec` (EXECs a handler accepted and will answer later).
//! - v7: triggers keeping DMAcc `SrvID` unique across instances (TS §12.2: "unique
//!   within the client"), so no write, whoever makes it, can give two accounts one server.
//! - v8: `account_source` (which bootstrap source last provisioned each server's account:
//!   a bootstrap file changes its own accounts, another one must say it replaces them).
//! - v9: accounts that existed before v8 get the source `BEFORE_SOURCES` ("(before v8)"),
//!   so that an account with no source at all is one a server or an admin made, not a
//!   file's.

use rusqlite::Transaction;

/// `PRAGMA application_id` of an omadmd database: "OMDM".
pub const APPLICATION_ID: i32 = 0x4F4D_444D;

/// The `account_source` of accounts that existed before sources were recorded (v9): any
/// bootstrap file that was applied then may have made them.
pub const BEFORE_SOURCES: &str = "(before v8)";

/// The migration steps; step `i` takes the schema from version `i` to `i + 1`.
const STEPS: &[&str] = &[
    // v1
    "CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value ANY
     ) STRICT;
     INSERT INTO meta (key, value) VALUES ('change_seq', 0);
     INSERT INTO meta (key, value) VALUES ('cv_salt', lower(hex(randomblob(4))));
     CREATE TABLE instance (
        id      INTEGER PRIMARY KEY,
        moid    TEXT NOT NULL,
        miid    TEXT NOT NULL,
        ddf_url TEXT,
        creator TEXT NOT NULL,
        cv      INTEGER NOT NULL,
        UNIQUE (moid, miid)
     ) STRICT;
     CREATE TABLE node (
        instance_id INTEGER NOT NULL REFERENCES instance (id) ON DELETE CASCADE,
        path        TEXT NOT NULL,
        parent      TEXT,
        format      TEXT NOT NULL,
        mime        TEXT,
        permanent   INTEGER NOT NULL,
        access      INTEGER NOT NULL,
        secret      INTEGER NOT NULL,
        value       ANY,
        PRIMARY KEY (instance_id, path)
     ) STRICT, WITHOUT ROWID;
     CREATE INDEX node_children ON node (instance_id, parent);",
    // v2
    "CREATE TABLE bootstrap_applied (
        source     TEXT PRIMARY KEY,
        sha256     TEXT NOT NULL,
        applied_at INTEGER NOT NULL
     ) STRICT;
     CREATE TABLE owed_session (
        server_id  TEXT NOT NULL,
        reason     TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (server_id, reason)
     ) STRICT;",
    // v3
    "CREATE TABLE outbox (
        id         INTEGER PRIMARY KEY,
        server_id  TEXT NOT NULL,
        kind       TEXT NOT NULL,
        target     TEXT,
        payload    BLOB NOT NULL,
        created_at INTEGER NOT NULL
     ) STRICT;
     CREATE INDEX outbox_server ON outbox (server_id, id);
     CREATE TABLE subscription (
        server_id  TEXT NOT NULL,
        client_uri TEXT NOT NULL,
        server_uri TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (server_id, client_uri)
     ) STRICT;
     CREATE TABLE default_source (
        moid       TEXT PRIMARY KEY,
        server_id  TEXT NOT NULL,
        server_uri TEXT NOT NULL
     ) STRICT;",
    // v4
    "CREATE TABLE session (
        id         INTEGER PRIMARY KEY,
        server_id  TEXT NOT NULL,
        trigger    TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        ended_at   INTEGER,
        outcome    TEXT NOT NULL,
        detail     TEXT,
        packages   INTEGER NOT NULL DEFAULT 0,
        commands   INTEGER NOT NULL DEFAULT 0
     ) STRICT;
          CREATE INDEX session_started ON session (started_at);",
    // v5
    "CREATE TABLE seen_notification (
        server_id       TEXT NOT NULL,
        notification_id INTEGER NOT NULL,
        seen_at         INTEGER NOT NULL,
                PRIMARY KEY (server_id, notification_id)
     ) STRICT;",
    // v6
    "CREATE TABLE pending_exec (
        token      TEXT PRIMARY KEY,
        server_id  TEXT NOT NULL,
        client_uri TEXT NOT NULL,
        report_to  TEXT,
        handler    TEXT NOT NULL,
        created_at INTEGER NOT NULL
     ) STRICT;",
    // v7. Each check is an index lookup: DMAcc instances by MOID (the UNIQUE (moid, miid)
    // index), then their SrvID node by primary key.
    "CREATE TRIGGER dmacc_srvid_unique_insert BEFORE INSERT ON node
     WHEN NEW.path = 'SrvID'
      AND (SELECT moid FROM instance WHERE id = NEW.instance_id) = 'urn:oma:mo:oma-dm-dmacc:1.2'
      AND EXISTS (SELECT 1 FROM instance i JOIN node n ON n.instance_id = i.id AND n.path = 'SrvID'
                  WHERE i.moid = 'urn:oma:mo:oma-dm-dmacc:1.2' AND i.id <> NEW.instance_id
                    AND n.value = NEW.value)
     BEGIN SELECT RAISE(ABORT, 'SrvID is already used by another DM account'); END;
     CREATE TRIGGER dmacc_srvid_unique_update BEFORE UPDATE OF value ON node
     WHEN NEW.path = 'SrvID'
      AND (SELECT moid FROM instance WHERE id = NEW.instance_id) = 'urn:oma:mo:oma-dm-dmacc:1.2'
      AND EXISTS (SELECT 1 FROM instance i JOIN node n ON n.instance_id = i.id AND n.path = 'SrvID'
                  WHERE i.moid = 'urn:oma:mo:oma-dm-dmacc:1.2' AND i.id <> NEW.instance_id
                    AND n.value = NEW.value)
     BEGIN SELECT RAISE(ABORT, 'SrvID is already used by another DM account'); END;",
    // v8
    "CREATE TABLE account_source (
        server_id TEXT PRIMARY KEY,
        source    TEXT NOT NULL
     ) STRICT;",
    // v9 (the literal is BEFORE_SOURCES; a released step never changes). v8 made the table
    // empty, so every account then was one from before it; after v8 only a source that
    // recorded itself has a row.
    "INSERT INTO account_source (server_id, source)
     SELECT DISTINCT CAST(n.value AS TEXT), '(before v8)'
       FROM instance i JOIN node n ON n.instance_id = i.id AND n.path = 'SrvID'
      WHERE i.moid = 'urn:oma:mo:oma-dm-dmacc:1.2' AND n.value IS NOT NULL
        AND CAST(n.value AS TEXT) NOT IN (SELECT server_id FROM account_source);",
    // v10. What each instance's values hold in bytes, as `Value::size` counts them, kept by
    // the writer: a quota check reads one row per instance, not every node (issue 27).
    "ALTER TABLE instance ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;
     UPDATE instance SET bytes = (
       SELECT COALESCE(SUM(CASE WHEN n.value IS NULL THEN 0 WHEN n.format = 'bool' THEN 1
                                WHEN typeof(n.value) IN ('integer', 'real') THEN 4
                                ELSE length(CAST(n.value AS BLOB)) END), 0)
         FROM node n WHERE n.instance_id = instance.id);",
];

/// The schema version this build writes.
pub const LATEST: i32 = STEPS.len() as i32;

/// Brings the schema from `from` to `to` (`to <= LATEST`) inside `tx`.
pub fn migrate(tx: &Transaction<'_>, from: i32, to: i32) -> rusqlite::Result<()> {
    for (version, step) in STEPS
        .iter()
        .enumerate()
        .take(to as usize)
        .skip(from as usize)
    {
        tx.execute_batch(step)?;
        tracing::debug!(version = version + 1, "database schema step applied");
    }
    tx.pragma_update(None, "application_id", APPLICATION_ID)?;
    tx.pragma_update(None, "user_version", to)?;
    Ok(())
}
