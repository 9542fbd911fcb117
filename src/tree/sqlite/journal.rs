//! The journal tables beside the tree: bootstrap records, owed sessions, the outbox,
//! subscriptions, DEFAULT sources, pending EXECs, seen NOTIFICATION-IDs, session history.

use super::rows::{PENDING_COLUMNS, SESSION_COLUMNS, pending_row, session_row};
use super::*;

impl Journal for SqliteStore {
    fn bootstrap_digest(&self, source: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .read()?
            .prepare_cached("SELECT sha256 FROM bootstrap_applied WHERE source = ?1")?
            .query_row([source], |r| r.get(0))
            .optional()?)
    }

    fn account_source(&self, server_id: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .read()?
            .prepare_cached("SELECT source FROM account_source WHERE server_id = ?1")?
            .query_row([server_id], |r| r.get(0))
            .optional()?)
    }

    fn outbox(&self, server_id: &str) -> Result<Vec<Outgoing>, StoreError> {
        self.read_outbox(server_id)
    }

    fn queued(&self, server_id: &str) -> Result<Queued, StoreError> {
        let conn = self.read()?;
        let (alerts, bytes): (i64, i64) = conn
            .prepare_cached(
                "SELECT (SELECT COUNT(*) FROM outbox WHERE server_id = ?1 AND kind <> 'delivery')
                      + (SELECT COUNT(*) FROM pending_exec WHERE server_id = ?1),
                        (SELECT COALESCE(SUM(length(payload) + COALESCE(length(target), 0)), 0)
                           FROM outbox WHERE server_id = ?1 AND kind <> 'delivery')
                      + (SELECT COALESCE(SUM(length(client_uri) + COALESCE(length(report_to), 0)), 0)
                           FROM pending_exec WHERE server_id = ?1)",
            )?
            .query_row([server_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let mut stmt = conn.prepare_cached(
            "SELECT target FROM outbox WHERE server_id = ?1 AND kind <> 'delivery' AND target IS NOT NULL
             UNION SELECT report_to FROM pending_exec WHERE server_id = ?1 AND report_to IS NOT NULL
             ORDER BY 1",
        )?;
        let targets = stmt
            .query_map([server_id], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(Queued {
            alerts: alerts.try_into().unwrap_or(0),
            bytes: bytes.try_into().unwrap_or(0),
            targets,
        })
    }

    fn remove_outgoing(&self, ids: &[i64]) -> Result<(), StoreError> {
        self.write(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            {
                let mut del = tx.prepare_cached("DELETE FROM outbox WHERE id = ?1")?;
                for id in ids {
                    del.execute([id])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
    }

    fn pending_execs(&self, handler: Option<&str>) -> Result<Vec<PendingExec>, StoreError> {
        let conn = self.read()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {PENDING_COLUMNS} FROM pending_exec WHERE ?1 IS NULL OR handler = ?1 ORDER BY token"
        ))?;
        let rows = stmt.query_map([handler], pending_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn pending_exec(&self, token: &str) -> Result<Option<PendingExec>, StoreError> {
        Ok(self
            .read()?
            .prepare_cached(&format!(
                "SELECT {PENDING_COLUMNS} FROM pending_exec WHERE token = ?1"
            ))?
            .query_row([token], pending_row)
            .optional()?)
    }

    fn subscriptions(&self) -> Result<Vec<Subscription>, StoreError> {
        let conn = self.read()?;
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
        self.write(|conn| {
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
        })
    }

    fn notification_seen(
        &self,
        server_id: &str,
        id: u16,
        window_secs: i64,
    ) -> Result<bool, StoreError> {
        Ok(self
            .read()?
            .prepare_cached(
                "SELECT 1 FROM seen_notification WHERE server_id = ?1 AND notification_id = ?2 AND seen_at >= ?3",
            )?
            .query_row(params![server_id, id, now() - window_secs], |_| Ok(()))
            .optional()?
            .is_some())
    }

    fn interrupt_running(&self) -> Result<usize, StoreError> {
        self.write(|conn| {
            Ok(conn
                .prepare_cached(
                    "UPDATE session SET outcome = 'interrupted', ended_at = ?1 WHERE outcome = 'running'",
                )?
                .execute([now()])?)
        })
    }

    fn sessions(&self, limit: u32) -> Result<Vec<SessionRecord>, StoreError> {
        let conn = self.read()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {SESSION_COLUMNS} FROM session ORDER BY id DESC LIMIT ?1"
        ))?;
        let rows = stmt.query_map([limit], session_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn registrations(&self, server_id: &str) -> Result<u64, StoreError> {
        let n: i64 = self.read()?.query_row(
            "SELECT (SELECT COUNT(*) FROM subscription WHERE server_id = ?1)
                  + (SELECT COUNT(*) FROM default_source WHERE server_id = ?1)",
            [server_id],
            |r| r.get(0),
        )?;
        Ok(n.try_into().unwrap_or(0))
    }

    fn last_session(&self, server_id: &str) -> Result<Option<SessionRecord>, StoreError> {
        Ok(self
            .read()?
            .prepare_cached(&format!(
                "SELECT {SESSION_COLUMNS} FROM session WHERE server_id = ?1 ORDER BY id DESC LIMIT 1"
            ))?
            .query_row([server_id], session_row)
            .optional()?)
    }

    fn default_source(&self, moid: &str) -> Result<Option<(String, String)>, StoreError> {
        Ok(self
            .read()?
            .prepare_cached("SELECT server_id, server_uri FROM default_source WHERE moid = ?1")?
            .query_row([moid], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }

    fn owed_sessions(&self) -> Result<Vec<OwedSession>, StoreError> {
        let conn = self.read()?;
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
        let conn = self.read()?;
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
            let (id, kind, target, payload): (i64, String, Option<String>, Vec<u8>) = row?;
            // A kind this build does not know came from a newer one, and a payload that does
            // not read is a defect: skip either, keep the row.
            match OutItem::from_row(&kind, target, &payload) {
                Some(item) => out.push(Outgoing {
                    id,
                    server_id: server_id.to_owned(),
                    item,
                }),
                None => {
                    tracing::warn!(id, kind = %kind, "outbox row not understood; left in place")
                }
            }
        }
        Ok(out)
    }
}
