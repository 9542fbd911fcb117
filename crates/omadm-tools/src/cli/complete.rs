//! Dynamic shell completion for `omadmctl`: the shell runs `omadmctl` with `COMPLETE` set
//! (the scripts in `packaging/completions` do), and arguments that name a server, a
//! session or an MO are completed with what the running daemon has. Each lookup is a
//! read anyone may make, bounded by a short timeout; without a daemon there is nothing to
//! offer, and completion stays quiet.

use clap_complete::engine::CompletionCandidate;

/// How long a completion may wait for the daemon: a shell must not hang on a tab.
const PATIENCE: std::time::Duration = std::time::Duration::from_millis(1500);

/// Whether a value may be offered to a shell as is: servers choose instance names, and a
/// completion script inserts candidates unquoted, so anything a shell would read as
/// syntax (`$`, `;`, backquotes, spaces, globs) is left out.
fn shell_safe(value: &str) -> bool {
    !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._:@%+=,-/".contains(c))
}

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
            Ok(Ok(found)) => found
                .into_iter()
                .filter(|c| shell_safe(&c.get_value().to_string_lossy()))
                .collect(),
            _ => Vec::new(),
        }
    })
}

/// The DM accounts' server IDs, each with its display name.
pub fn servers() -> Vec<CompletionCandidate> {
    ask(|conn| async move {
        let manager = omadm_client::ManagerProxy::new(&conn).await?;
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
        let manager = omadm_client::ManagerProxy::new(&conn).await?;
        Ok(manager
            // The daemon answers with as many as it keeps.
            .history(u32::MAX)
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
        let tree = omadm_client::TreeProxy::new(&conn).await?;
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
        let tree = omadm_client::TreeProxy::new(&conn).await?;
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

#[cfg(test)]
mod tests {
    #[test]
    fn only_shell_safe_values_are_offered() {
        for (value, ok) in [
            ("demo-server", true),
            ("urn:oma:mo:oma-dm-devinfo:1.2/DevInfo/", true),
            ("a$(reboot)", false),
            ("a;b", false),
            ("`id`", false),
            ("a b", false),
            ("*", false),
            ("", false),
        ] {
            assert_eq!(super::shell_safe(value), ok, "{value}");
        }
    }
}
