//! Start-up: the state directory, the database, the MO definitions, the standard MOs and
//! factory bootstrap, before the daemon serves anything.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::config::Settings;
use crate::host::Host;
use crate::mo::Registry;
use crate::mo::bootstrap::{self, Outcome};
use crate::mo::standard::{self, DevInfoValues};
use crate::state::Prepared;
use crate::tree::Journal as _;
use crate::tree::{OpenMode, SqliteStore};

/// Creates the state directory (owner-only) when it is missing.
fn ensure_state_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create state directory {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot restrict state directory {}", dir.display()))?;
    Ok(())
}

/// Loads the shipped DDFs and those of the configured directories.
pub fn load_registry(settings: &Settings) -> Registry {
    let mut registry = Registry::builtin();
    for dir in &settings.paths.ddf_dirs {
        for failure in registry.load_dir(dir) {
            tracing::error!(path = %failure.path.display(), error = %failure.error, "DDF not loaded");
        }
    }
    registry
}

/// Loads the handler definitions of the configured directories.
pub fn load_handlers(settings: &Settings) -> crate::mo::handlers::HandlerDefs {
    let (defs, failures) = crate::mo::handlers::HandlerDefs::load(&settings.paths.handler_dirs);
    for failure in failures {
        tracing::error!(path = %failure.path.display(), error = %failure.error, "handler definition not loaded");
    }
    defs
}

/// Start-up work before the daemon can serve: database, definitions, standard MOs,
/// factory bootstrap.
pub fn prepare(settings: &Settings, host: Host) -> anyhow::Result<Prepared> {
    ensure_state_dir(&settings.paths.state_dir)?;
    let store = SqliteStore::open(&settings.database(), OpenMode::ReadWrite)?;
    let registry = load_registry(settings);

    let Some(values) = DevInfoValues::from_host(&host, &settings.devinfo) else {
        bail!(
            "this machine has no usable /etc/machine-id for the DevInfo DevID; set devinfo.dev-id in the configuration"
        );
    };
    if standard::ensure_devinfo(&store, &registry, &values)? {
        tracing::info!(dev_id = %values.dev_id, "DevInfo updated");
    }
    if standard::ensure_devdetail(&store, &registry, &values)? {
        tracing::info!("DevDetail updated");
    }
    standard::refresh_sessioninfo(&store, &registry, &host)?;

    let refused = apply_bootstrap(&store, &registry, settings).refused;
    // After the bootstrap, which may provision a DACMO of its own.
    if standard::ensure_dacmo(&store, &registry)? {
        tracing::info!("DACMO made");
    }
    for owed in store.owed_sessions()? {
        tracing::info!(server = %owed.server_id, reason = owed.reason.as_str(), "session owed to server");
    }
    if settings.http.allow_insecure_auth {
        tracing::warn!(
            "http.allow-insecure-auth is set: HTTP passwords may go over plain http, readable by anyone on the path"
        );
    }
    Ok(Prepared {
        store,
        registry: crate::state::Current::new(registry),
        handlers: crate::state::Current::new(load_handlers(settings)),
        host,
        gate: crate::notify::Gate::new(Duration::from_secs(
            settings.notifications.min_interval_secs,
        )),
        bootstrap_refused: std::sync::Mutex::new(refused),
    })
}

/// What applying `bootstrap.d` did, for a reload's answer.
#[derive(Debug, Default)]
pub struct BootstrapRun {
    /// Files applied now: (file name, SrvIDs owed a BootstrapComplete session).
    pub applied: Vec<(String, Vec<String>)>,
    /// Files refused: (file name, why).
    pub refused: Vec<(String, String)>,
}

/// Applies the files of `bootstrap.d` (each once per content, each one transaction) and
/// logs what each did.
pub fn apply_bootstrap(
    store: &SqliteStore,
    registry: &Registry,
    settings: &Settings,
) -> BootstrapRun {
    let limits = settings.bootstrap_limits();
    let report = bootstrap::apply_dir(store, registry, &settings.paths.bootstrap_dir, limits);
    let name = |p: &Path| {
        p.file_name().map_or_else(
            || p.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    };
    let mut run = BootstrapRun::default();
    for (path, outcome) in &report.done {
        match outcome {
            Outcome::Applied { instances, servers } => {
                let instances: Vec<String> = instances.iter().map(ToString::to_string).collect();
                tracing::info!(file = %path.display(), instances = ?instances, servers = ?servers, "bootstrap applied");
                run.applied.push((name(path), servers.clone()));
            }
            Outcome::Unchanged => {
                tracing::debug!(file = %path.display(), "bootstrap already applied")
            }
        }
    }
    for (path, error) in &report.failed {
        tracing::error!(file = %path.display(), error = %error, "bootstrap file refused; nothing of it was applied");
        run.refused.push((name(path), error.to_string()));
    }
    run
}
