//! `Manager`'s accounts: listing them and where each stands, adding from a bootstrap
//! document, removing, and reloading the configuration and bootstrap files.

use super::*;

pub(super) fn accounts(m: &Manager) -> Result<Vec<AccountRow>, Error> {
    Ok(crate::mo::account::all(&m.shared.prepared.store)?
        .into_iter()
        .map(|a| AccountRow {
            url: redact(&a.srv_uri),
            server_id: a.server_id,
            name: a.name,
        })
        .collect())
}

pub(super) fn account_state(m: &Manager, server_id: &str) -> Result<AccountState, Error> {
    let account = m.account(server_id)?;
    let store = &m.shared.prepared.store;
    let queued = store.outbox(server_id)?.len();
    let owed = store
        .owed_sessions()?
        .into_iter()
        .find(|o| o.server_id == server_id)
        .map(|o| o.reason.as_str().to_owned());
    let last = store.last_session(server_id)?;
    let next = m.shared.outlook.next(server_id);
    Ok(AccountState {
        server_id: account.server_id,
        name: account.name,
        url: redact(&account.srv_uri),
        queued: u32::try_from(queued).unwrap_or(u32::MAX),
        owed,
        last_session: last.as_ref().map(|s| s.id),
        last_trigger: last.as_ref().map(|s| s.trigger.clone()),
        last_outcome: last.as_ref().map(|s| s.outcome.clone()),
        last_ended: last.as_ref().and_then(|s| s.ended_at),
        last_detail: last.and_then(|s| s.detail),
        next_attempt: next.as_ref().map(|(at, _)| *at),
        next_reason: next.map(|(_, why)| why),
    })
}

pub(super) async fn add_account(
    m: &Manager,
    name: &str,
    document: Vec<u8>,
    dry_run: bool,
    replace: bool,
    header: Header<'_>,
    conn: &Connection,
) -> Result<AccountChange, Error> {
    use crate::mo::bootstrap::{self, Outcome, Replace};
    authorize(conn, &header, Action::ManageAccounts).await?;
    if name.is_empty() || name.contains('/') || name.chars().any(char::is_control) {
        return Err(Error::InvalidArgument(
            "the document's name must be a file name (no '/')".into(),
        ));
    }
    let p = &m.shared.prepared;
    let source = format!("added:{name}");
    let replace = if replace {
        Replace::Any
    } else {
        Replace::OwnOnly
    };
    let limits = m.shared.bootstrap_limits;
    let refused = |e: bootstrap::BootstrapError| match e {
        bootstrap::BootstrapError::Store(e) => Error::from(e),
        e => Error::InvalidArgument(format!("{name}: {e}")),
    };
    let (ops, outcome) = bootstrap::plan(
        &p.store,
        &p.registry.get(),
        &source,
        &document,
        limits,
        replace,
    )
    .map_err(refused)?;
    let mut change = AccountChange {
        outcome: "unchanged".into(),
        ..AccountChange::default()
    };
    if let Outcome::Applied { instances, servers } = outcome {
        for s in &servers {
            if crate::mo::account::find(&p.store, s)?.is_some() {
                change.replaced.push(s.clone());
            }
        }
        change.instances = instances.iter().map(ToString::to_string).collect();
        change.servers = servers;
        change.outcome = if dry_run { "would-apply" } else { "applied" }.into();
    }
    if dry_run || ops.is_empty() {
        return Ok(change);
    }
    p.store.apply(&ops)?;
    tracing::info!(source = %source, servers = ?change.servers, replaced = ?change.replaced,
        instances = ?change.instances, "account(s) added over D-Bus");
    for s in &change.servers {
        m.shared.scheduler.request(
            Some(s),
            Request {
                trigger: Trigger::BootstrapComplete,
                req_mos: false,
                alerts_elsewhere: false,
            },
        );
    }
    Ok(change)
}

pub(super) async fn remove_account(
    m: &Manager,
    server_id: &str,
    header: Header<'_>,
    conn: &Connection,
) -> Result<Vec<String>, Error> {
    authorize(conn, &header, Action::ManageAccounts).await?;
    let store = &m.shared.prepared.store;
    let Some((ops, gone)) = crate::mo::account::removal(store, server_id)? else {
        return Err(Error::NotFound(format!(
            "no DM account for server {server_id:?}"
        )));
    };
    store.apply(&ops)?;
    let gone: Vec<String> = gone.iter().map(ToString::to_string).collect();
    tracing::info!(server = %server_id, instances = ?gone, "account removed over D-Bus");
    Ok(gone)
}

pub(super) async fn reload(
    m: &Manager,
    header: Header<'_>,
    conn: &Connection,
) -> Result<ReloadReport, Error> {
    authorize(conn, &header, Action::Reload).await?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    m.shared
        .reloads
        .send(tx)
        .map_err(|_| Error::Failed("the daemon is stopping".into()))?;
    rx.await
        .map_err(|_| Error::Failed("the daemon is stopping".into()))?
        .map_err(Error::InvalidArgument)
}
