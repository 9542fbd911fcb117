//! Offline diagnostic views of the database (`omadmd dump-tree`), like fwupdtool beside
//! fwupdmgr: they read the database directly, change nothing, and never show a value that
//! a local reader may not see ("No Get" nodes, secrets).

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::config::Settings;
use crate::host::Host;
use crate::mo;
use crate::protocol::dmmo;
use crate::tree::{AccessType, InstanceKey, Node, OpenMode, SqliteStore};
use crate::tree::{Journal as _, Tree as _};

/// The whole tree, as a listing or as `application/dmmo+json`.
pub fn dump_tree(settings: &Settings, json: bool) -> anyhow::Result<String> {
    let store = SqliteStore::open(&settings.database(), OpenMode::ReadOnly)?;
    let host = Host::default();
    let mut items = Vec::new();
    let mut text = String::new();
    for inst in store.instances(None)? {
        let key = InstanceKey::new(inst.moid.clone(), inst.miid.clone());
        let mut nodes = store.subtree(&key, "", None)?;
        mo::standard::overlay_live(&key, &mut nodes, &host);
        let uri = format!("{}/{}/", inst.moid, inst.miid);
        if json {
            items.extend(mo::item(&store, &key, "", &nodes)?);
        } else {
            let _ = writeln!(text, "{uri}  (creator {}, cv {})", inst.creator, inst.cv);
            render(&mut text, &mut nodes);
        }
    }
    if json {
        let value: serde_json::Value = serde_json::from_slice(&dmmo::encode(&items))?;
        return Ok(serde_json::to_string_pretty(&value)? + "\n");
    }
    if text.is_empty() {
        text.push_str("(the tree is empty)\n");
    }
    Ok(text)
}

/// Appends an indented listing of one instance's nodes.
fn render(out: &mut String, nodes: &mut [Node]) {
    // Comparing paths segment by segment gives depth-first order.
    nodes.sort_by(|a, b| a.path.split('/').cmp(b.path.split('/')));
    let mut hidden: Option<String> = None;
    for node in nodes.iter().filter(|n| !n.path.is_empty()) {
        if let Some(h) = &hidden {
            if node.path.starts_with(&format!("{h}/")) {
                continue;
            }
            hidden = None;
        }
        let depth = node.path.matches('/').count() + 1;
        let name = node.path.rsplit('/').next().unwrap_or(&node.path);
        let indent = "  ".repeat(depth);
        let readable = node.props.access.contains(AccessType::GET);
        let shown = match (&node.value, readable, node.props.secret) {
            (None, true, _) => format!("{name}/"),
            (None, false, _) => {
                hidden = Some(node.path.clone());
                format!("{name}/  (no Get)")
            }
            (Some(_), false, _) => format!("{name} = (no Get)"),
            (Some(_), true, true) => format!("{name} = (secret)"),
            (Some(v), true, false) => format!("{name} = {}", v.to_text()),
        };
        let _ = writeln!(out, "{indent}{shown}");
    }
}

/// The most recent sessions, as a table or JSON.
pub fn history(settings: &Settings, limit: u32, json: bool) -> anyhow::Result<String> {
    let store = SqliteStore::open(&settings.database(), OpenMode::ReadOnly)?;
    let sessions = store.sessions(limit)?;
    if json {
        return Ok(serde_json::to_string_pretty(&sessions)? + "\n");
    }
    if sessions.is_empty() {
        return Ok("(no sessions yet)\n".into());
    }
    let mut out = String::new();
    let now = omadm_console::now_secs();
    let _ = writeln!(
        out,
        "{:>4}  {:<10} {:<16} {:<16} {:<11} {:>8} {:>8}  detail",
        "id", "started", "server", "trigger", "outcome", "packages", "commands"
    );
    for s in sessions {
        let _ = writeln!(
            out,
            "{:>4}  {:<10} {:<16} {:<16} {:<11} {:>8} {:>8}  {}",
            s.id,
            omadm_console::ago(s.started_at, now),
            s.server_id,
            s.trigger,
            s.outcome,
            s.packages,
            s.commands,
            s.detail.unwrap_or_default()
        );
    }
    Ok(out)
}

/// What starting the daemon would do with one bootstrap file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BootstrapCheck {
    /// The file.
    pub file: PathBuf,
    /// `would-apply`, `unchanged` (applied already with this content) or `refused`.
    pub outcome: &'static str,
    /// The servers whose accounts it would provision.
    pub servers: Vec<String>,
    /// Why it would be refused (`None` otherwise).
    pub error: Option<String>,
}

/// What starting the daemon would do with each bootstrap file, without doing it: planned
/// against the database as it is (or an empty one, before the first start). Returns each
/// file's verdict, and the first refused file as an error.
pub fn check_bootstrap(
    settings: &Settings,
) -> anyhow::Result<(Vec<BootstrapCheck>, Option<crate::config::ConfigError>)> {
    use crate::mo::bootstrap::{self, Outcome};
    let registry = crate::daemon::load_registry(settings);
    let limits = settings.bootstrap_limits();
    // The daemon's database read-only when there is one; else a scratch one, removed after.
    let scratch = std::env::temp_dir().join(format!("omadmd-check-{}.db", std::process::id()));
    let existing = settings.database();
    let (store, scratch) = match SqliteStore::open(&existing, OpenMode::ReadOnly) {
        Ok(s) => (s, None),
        Err(_) => (
            SqliteStore::open(&scratch, OpenMode::ReadWrite)?,
            Some(scratch),
        ),
    };
    let report = bootstrap::check_dir(&store, &registry, &settings.paths.bootstrap_dir, limits);
    drop(store);
    if let Some(p) = scratch {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", p.display()));
        }
    }
    let mut checks = Vec::new();
    for (path, outcome) in report.done {
        let (outcome, servers) = match outcome {
            Outcome::Applied { servers, .. } => ("would-apply", servers),
            Outcome::Unchanged => ("unchanged", Vec::new()),
        };
        checks.push(BootstrapCheck {
            file: path,
            outcome,
            servers,
            error: None,
        });
    }
    for (path, e) in report.failed {
        checks.push(BootstrapCheck {
            file: path,
            outcome: "refused",
            servers: Vec::new(),
            error: Some(e.to_string()),
        });
    }
    checks.sort_by(|a, b| a.file.cmp(&b.file));
    // The daemon reads the files as its own user, which check-config (run as root) is
    // not: a file it cannot read is refused for that, whatever else is wrong with it.
    if let Some((user, uid, gid)) = daemon_user() {
        for check in checks.iter_mut() {
            if let Some(why) = unreadable_by(&check.file, uid, gid) {
                check.outcome = "refused";
                check.servers.clear();
                check.error = Some(format!(
                    "{user}, the daemon's user, cannot read it: {why}; give it the {user} group and mode 0640 (docs/bootstrap.md), or apply it with `omadmctl account add`"
                ));
            }
        }
    }
    let first = checks.iter().find_map(|c| {
        c.error
            .as_ref()
            .map(|message| crate::config::ConfigError::Bootstrap {
                path: c.file.clone(),
                message: message.clone(),
            })
    });
    Ok((checks, first))
}

/// The user the packaged unit runs the daemon as (`User=` in `systemd/omadmd.service`).
pub const DAEMON_USER: &str = "omadmd";

/// The daemon's user (name, uid, primary gid) when it exists and is not the caller.
fn daemon_user() -> Option<(&'static str, u32, u32)> {
    let user = nix::unistd::User::from_name(DAEMON_USER).ok()??;
    (user.uid != nix::unistd::Uid::effective())
        .then(|| (DAEMON_USER, user.uid.as_raw(), user.gid.as_raw()))
}

/// Why a process of user `uid` with group `gid` cannot read `path`, by the permission bits
/// of the file and of each directory above it; `None` when it can (or the file is gone).
/// Only the primary group counts: the unit's `PrivateUsers=yes` maps no other group into
/// the daemon's user namespace. ACLs are not read.
fn unreadable_by(path: &std::path::Path, uid: u32, gid: u32) -> Option<String> {
    use std::os::unix::fs::MetadataExt as _;
    if uid == 0 {
        return None;
    }
    let owner = |m: &std::fs::Metadata| {
        let user = nix::unistd::User::from_uid(m.uid().into())
            .ok()
            .flatten()
            .map_or_else(|| m.uid().to_string(), |u| u.name);
        let group = nix::unistd::Group::from_gid(m.gid().into())
            .ok()
            .flatten()
            .map_or_else(|| m.gid().to_string(), |g| g.name);
        format!("mode {:04o}, {user}:{group}", m.mode() & 0o7777)
    };
    let allows = |m: &std::fs::Metadata, bit: u32| {
        let shift = if m.uid() == uid {
            6
        } else if m.gid() == gid {
            3
        } else {
            0
        };
        (m.mode() >> shift) & bit != 0
    };
    let dirs: Vec<&std::path::Path> = path
        .ancestors()
        .skip(1)
        .filter(|d| !d.as_os_str().is_empty())
        .collect();
    for dir in dirs.into_iter().rev() {
        let meta = std::fs::metadata(dir).ok()?;
        if !allows(&meta, 0o1) {
            return Some(format!("cannot enter {} ({})", dir.display(), owner(&meta)));
        }
    }
    let meta = std::fs::metadata(path).ok()?;
    (!allows(&meta, 0o4)).then(|| format!("the file is {}", owner(&meta)))
}

/// The bootstrap verdicts as comment lines after the merged configuration.
pub fn bootstrap_lines(checks: &[BootstrapCheck]) -> String {
    let mut text = String::new();
    for c in checks {
        let what = match (c.outcome, &c.error) {
            (_, Some(e)) => format!("REFUSED: {e}"),
            ("unchanged", None) => "applied already, unchanged".to_owned(),
            (_, None) if c.servers.is_empty() => "would apply".to_owned(),
            (_, None) => format!("would apply (accounts: {})", c.servers.join(", ")),
        };
        let _ = writeln!(text, "# bootstrap {}: {what}", c.file.display());
    }
    text
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::unreadable_by;

    #[test]
    fn readability_follows_the_owner_the_group_and_the_directories() {
        use std::os::unix::fs::MetadataExt as _;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("10-acme.json");
        std::fs::write(&file, "[]").unwrap();
        let meta = std::fs::metadata(&file).unwrap();
        let (mut me, mut my_group) = (meta.uid(), meta.gid());
        if me == 0 {
            // Root reads everything: the file belongs to someone else for the table.
            (me, my_group) = (4000, 4000);
            std::os::unix::fs::chown(&file, Some(me), Some(my_group)).unwrap();
            std::os::unix::fs::chown(dir.path(), Some(me), Some(my_group)).unwrap();
        }
        // Another user: not the owner, and in a group other than the file's.
        let (other, other_group) = (me + 4242, my_group + 4242);
        let set = |p: &std::path::Path, mode| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
        };
        set(dir.path(), 0o755);
        let rows: [(u32, u32, u32, bool); 7] = [
            // mode, uid, gid, readable
            (0o600, me, my_group, true),
            (0o600, other, my_group, false),
            (0o640, other, my_group, true),
            (0o640, other, other_group, false),
            (0o604, other, other_group, true),
            (0o400, me, other_group, true),
            (0o060, me, my_group, false), // the owner's bits decide for the owner
        ];
        for (mode, uid, gid, readable) in rows {
            set(&file, mode);
            let why = unreadable_by(&file, uid, gid);
            assert_eq!(
                why.is_none(),
                readable,
                "{mode:o} uid {uid} gid {gid}: {why:?}"
            );
            if let Some(why) = why {
                assert!(why.contains(&format!("mode {mode:04o}")), "{why}");
            }
        }
        // A directory the user may not enter hides a readable file.
        set(&file, 0o644);
        set(dir.path(), 0o750);
        let why = unreadable_by(&file, other, other_group).unwrap();
        assert!(why.starts_with("cannot enter "), "{why}");
        assert!(unreadable_by(&file, other, my_group).is_none());
        assert!(
            unreadable_by(&file, 0, 0).is_none(),
            "root reads everything"
        );
        assert!(unreadable_by(&dir.path().join("gone"), other, my_group).is_none());
    }
}
