//! Wiring: opens the store, loads MO definitions, brings the standard MOs and factory
//! bootstrap up to date, tells systemd it is ready, and serves until told to stop.

use std::future::Future;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, bail};

use crate::config::Settings;
use crate::host::Host;
use crate::mo::Registry;
use crate::mo::bootstrap::{self, BootstrapLimits, Outcome};
use crate::mo::standard::{self, DevInfoValues};
use crate::tree::{OpenMode, SqliteStore, TreeStore};

/// Everything start-up prepared: the daemon's long-lived state.
#[derive(Debug)]
pub struct Prepared {
    /// The tree store.
    pub store: SqliteStore,
    /// MO definitions.
    pub registry: Registry,
    /// The machine.
    pub host: Host,
}

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
    standard::refresh_sessioninfo(&store, &registry, &host)?;

    let limits = BootstrapLimits {
        max_file_bytes: settings.limits.max_package_bytes,
        max_value_bytes: settings.limits.max_node_value_bytes,
        max_nodes: settings.limits.max_nodes_per_document,
    };
    let report = bootstrap::apply_dir(&store, &registry, &settings.paths.bootstrap_dir, limits);
    for (path, outcome) in &report.done {
        match outcome {
            Outcome::Applied { instances, servers } => {
                let instances: Vec<String> = instances.iter().map(ToString::to_string).collect();
                tracing::info!(file = %path.display(), instances = ?instances, servers = ?servers, "bootstrap applied");
            }
            Outcome::Unchanged => {
                tracing::debug!(file = %path.display(), "bootstrap already applied")
            }
        }
    }
    for (path, error) in &report.failed {
        tracing::error!(file = %path.display(), error = %error, "bootstrap file refused; nothing of it was applied");
    }
    for owed in store.owed_sessions()? {
        tracing::info!(server = %owed.server_id, reason = owed.reason.as_str(), "session owed to server");
    }
    Ok(Prepared {
        store,
        registry,
        host,
    })
}

/// Runs the daemon until `shutdown` completes.
pub async fn run(settings: Settings, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let prepared = prepare(&settings, Host::default())?;
    let instances = prepared.store.instances(None)?;
    tracing::info!(
        database = %prepared.store.path().display(),
        instances = instances.len(),
        "ready"
    );
    notify_systemd(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status("serving"),
    ]);
    shutdown.await;
    notify_systemd(&[sd_notify::NotifyState::Stopping]);
    tracing::info!("stopping");
    Ok(())
}

/// Tells systemd about our state; a no-op when not started by systemd.
fn notify_systemd(states: &[sd_notify::NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "sd_notify failed");
    }
}

/// Installs SIGTERM and SIGINT handlers now (so a signal arriving at any later moment is
/// caught) and returns a future that completes on the first of them. Must be called from
/// within the runtime.
pub fn termination() -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
    })
}
