//! Dynamic shell completion for `omadmctl`: the shell runs `omadmctl` with `COMPLETE` set
//! (the scripts in `packaging/completions` do), and arguments that name a server, a
//! session or an MO are completed with what the running daemon has. Each lookup is a
//! read anyone may make, bounded by a short timeout; without a daemon there is nothing to
//! offer, and completion stays quiet.

use clap_complete::engine::CompletionCandidate;

/// How long a completion may wait for the daemon: a shell must not hang on a tab.
const PATIENCE: std::time::Duration = std::time::Duration::from_millis(1500);

/// Runs one read against the daemon on a throwaway runtime; empty on any failure.
fn ask<F, Fut>(read: F) -> Vec<CompletionCandidate>
where
    F: FnOnce(zbus::Connection) -> Fut,
    Fut: std::future::Future<Output = zbus::Result<Vec<CompletionCandidate>>>,
{
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return Vec::new();
    };
    rt.block_on(async {
        let work = async {
            let conn = zbus::Connection::system().await?;
            read(conn).await
        };
        match tokio::time::timeout(PATIENCE, work).await {
            Ok(Ok(found)) => found,
            _ => Vec::new(),
        }
    })
}

/// The DM accounts' server IDs, each with its display name.
pub fn servers() -> Vec<CompletionCandidate> {
    ask(|conn| async move {
        let manager = crate::dbus::client::ManagerProxy::new(&conn).await?;
        Ok(manager
            .accounts()
            .await?
            .into_iter()
            .map(|a| CompletionCandidate::new(a.server_id).help(Some(a.name.into())))
            .collect())
    })
}

/// The history IDs of the sessions running now (what `session cancel` takes).
pub fn running_sessions() -> Vec<CompletionCandidate> {
    ask(|conn| async move {
        let manager = crate::dbus::client::ManagerProxy::new(&conn).await?;
        Ok(manager
            .history(crate::tree::HISTORY_KEEP)
            .await?
            .into_iter()
            .filter(|r| r.outcome == "running")
            .map(|r| {
                CompletionCandidate::new(r.id.to_string())
                    .help(Some(format!("with {}", r.server_id).into()))
            })
            .collect())
    })
}

/// The MOIDs of the tree's instances, and the instances' ClientURIs (`MOID/MIID/`).
pub fn client_uris() -> Vec<CompletionCandidate> {
    ask(|conn| async move {
        let tree = crate::dbus::client::TreeProxy::new(&conn).await?;
        let mut out: Vec<CompletionCandidate> = Vec::new();
        let mut moids: Vec<String> = Vec::new();
        for (moid, miid, _) in tree.list_instances().await? {
            if !moids.contains(&moid) {
                moids.push(moid.clone());
            }
            out.push(CompletionCandidate::new(format!("{moid}/{miid}/")));
        }
        out.extend(
            moids
                .into_iter()
                .map(|m| CompletionCandidate::new(format!("{m}//"))),
        );
        Ok(out)
    })
}

/// The MOIDs the tree has instances of.
pub fn moids() -> Vec<CompletionCandidate> {
    ask(|conn| async move {
        let tree = crate::dbus::client::TreeProxy::new(&conn).await?;
        let mut moids: Vec<String> = tree
            .list_instances()
            .await?
            .into_iter()
            .map(|(m, _, _)| m)
            .collect();
        moids.dedup();
        Ok(moids.into_iter().map(CompletionCandidate::new).collect())
    })
}
