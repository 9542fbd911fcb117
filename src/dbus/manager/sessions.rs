//! `Manager`'s sessions: asking for one, cancelling one, and the history.

use super::*;

pub(super) async fn start_session(
    m: &Manager,
    server_id: &str,
    header: Header<'_>,
    conn: &Connection,
) -> Result<(), Error> {
    authorize(conn, &header, Action::StartSession).await?;
    let req = Request {
        trigger: Trigger::ClientInitiated,
        req_mos: false,
        alerts_elsewhere: false,
    };
    // The administrator asks: the backoff after failures is not waited out.
    if server_id.is_empty() {
        m.shared.scheduler.request_explicit(None, req);
    } else {
        m.account(server_id)?;
        m.shared.scheduler.request_explicit(Some(server_id), req);
    }
    Ok(())
}

pub(super) async fn cancel_session(
    m: &Manager,
    server_id: &str,
    header: Header<'_>,
    conn: &Connection,
) -> Result<(), Error> {
    authorize(conn, &header, Action::CancelSession).await?;
    if m.shared.running.cancel(server_id) {
        tracing::info!(server = %server_id, "session cancel asked over D-Bus");
        Ok(())
    } else {
        Err(Error::NotFound(format!(
            "no session runs with server {server_id:?}"
        )))
    }
}

pub(super) fn history(m: &Manager, limit: u32) -> Result<Vec<HistoryRow>, Error> {
    Ok(m.shared
        .prepared
        .store
        .sessions(limit.min(crate::tree::HISTORY_KEEP))?
        .into_iter()
        .map(|s| HistoryRow {
            id: s.id,
            server_id: s.server_id,
            trigger: s.trigger,
            started_at: s.started_at,
            ended_at: s.ended_at.unwrap_or(0),
            outcome: s.outcome,
            detail: s.detail.unwrap_or_default(),
            packages: s.packages,
            commands: s.commands,
        })
        .collect())
}
