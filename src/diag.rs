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
    let now = crate::cli::now_secs();
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
            crate::cli::ago(s.started_at, now),
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
    let mut first = None;
    for (path, e) in report.failed {
        first.get_or_insert_with(|| crate::config::ConfigError::Bootstrap {
            path: path.clone(),
            message: e.to_string(),
        });
        checks.push(BootstrapCheck {
            file: path,
            outcome: "refused",
            servers: Vec::new(),
            error: Some(e.to_string()),
        });
    }
    Ok((checks, first))
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
