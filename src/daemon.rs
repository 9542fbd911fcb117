//! Wiring: opens the store, loads MO definitions, brings the standard MOs and factory
//! bootstrap up to date, tells systemd it is ready, and serves until told to stop.

use std::future::Future;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use std::time::Duration;

use anyhow::{Context, bail};

use crate::config::Settings;
use crate::engine::{Engine, Limits as EngineLimits, Trigger};
use crate::host::Host;
use crate::mo::Registry;
use crate::mo::bootstrap::{self, BootstrapLimits, Outcome};
use crate::mo::standard::{self, DevInfoValues};
use crate::ports::DaemonPorts;
use crate::protocol::uri::ServerUriValues;
use crate::session::{self, SessionOptions};
use crate::transport::{HttpClient, HttpSettings};
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
    let crashed = prepared.store.interrupt_running()?;
    if crashed > 0 {
        tracing::warn!(
            sessions = crashed,
            "sessions left running by an earlier stop marked interrupted"
        );
    }
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
    tokio::pin!(shutdown);
    tokio::select! {
        () = &mut shutdown => {}
        result = startup_sessions(&prepared, &settings) => {
            if let Err(e) = result {
                tracing::error!(error = %format!("{e:#}"), "start-up sessions failed");
            }
            shutdown.await;
        }
    }
    notify_systemd(&[sd_notify::NotifyState::Stopping]);
    let interrupted = prepared.store.interrupt_running()?;
    if interrupted > 0 {
        tracing::warn!(sessions = interrupted, "session interrupted by the stop");
    }
    tracing::info!("stopping");
    Ok(())
}

/// The sessions due at start: every session owed after a bootstrap, then one with every
/// server that has queued alerts (or with every server, when `sessions.at-start` is on).
async fn startup_sessions(p: &Prepared, settings: &Settings) -> anyhow::Result<()> {
    let mut done = std::collections::HashSet::new();
    for owed in p.store.owed_sessions()? {
        session_with(p, settings, &owed.server_id, Trigger::BootstrapComplete).await?;
        done.insert(owed.server_id);
    }
    for account in session::accounts(&p.store)? {
        let queued = p
            .store
            .outbox(&account.server_id)?
            .iter()
            .any(|o| o.kind == crate::tree::OutgoingKind::Alert);
        if !done.contains(&account.server_id) && (settings.sessions.at_start || queued) {
            session_with(p, settings, &account.server_id, Trigger::ClientInitiated).await?;
            done.insert(account.server_id);
        }
    }
    Ok(())
}

/// The DevID the daemon presents (DevInfo's, as stored).
fn dev_id(store: &SqliteStore) -> anyhow::Result<String> {
    let key = crate::tree::InstanceKey::new(crate::mo::DEVINFO, standard::DEVINFO_MIID);
    store
        .node(&key, "DevID")?
        .and_then(|n| n.value)
        .map(|v| v.to_text())
        .context("DevInfo has no DevID")
}

/// Runs one session with a server, with a fresh HTTP client (cookies live for one session).
pub async fn session_with(
    p: &Prepared,
    settings: &Settings,
    server_id: &str,
    trigger: Trigger,
) -> anyhow::Result<session::Report> {
    let account = session::account(&p.store, server_id)?
        .with_context(|| format!("no DM account for server {server_id}"))?;
    let dev_id = dev_id(&p.store)?;
    let http_settings = HttpSettings {
        connect_timeout: Duration::from_secs(settings.http.connect_timeout_secs),
        read_timeout: Duration::from_secs(settings.http.read_timeout_secs),
        extra_ca_pem: match &settings.http.ca_file {
            Some(f) => Some(
                std::fs::read(f).with_context(|| format!("cannot read CA file {}", f.display()))?,
            ),
            None => None,
        },
        client_identity_pem: None,
        max_body: settings.limits.max_package_bytes,
    };
    let http = HttpClient::new(&http_settings, &dev_id)?;
    let ports = DaemonPorts { http: http.clone() };
    let limits = EngineLimits {
        max_value_bytes: settings.limits.max_node_value_bytes,
        max_document_bytes: settings.limits.max_package_bytes,
        max_nodes: settings.limits.max_nodes_per_document,
    };
    let engine = Engine::new(&p.store, &p.registry, &ports, limits);
    let values = ServerUriValues {
        dev_id: Some(dev_id),
        ..Default::default()
    };
    let options = SessionOptions {
        max_package_bytes: settings.limits.max_package_bytes,
        max_commands: settings.limits.max_commands_per_package,
        max_packages: settings.sessions.max_packages,
        allow_http_show: settings.sessions.allow_http_show,
    };
    standard::refresh_sessioninfo(&p.store, &p.registry, &p.host)?;
    Ok(session::run(
        &p.store, &engine, &http, &account, trigger, false, &values, options,
    )
    .await?)
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
