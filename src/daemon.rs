//! Wiring: opens the store, loads MO definitions, brings the standard MOs and factory
//! bootstrap up to date, tells systemd it is ready, and serves until told to stop.

use std::collections::HashMap;
use std::future::Future;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::config::Settings;
use crate::dbus;
use crate::engine::{Engine, Limits as EngineLimits, Session, Trigger};
use crate::host::Host;
use crate::mo::Registry;
use crate::mo::bootstrap::{self, BootstrapLimits, Outcome};
use crate::mo::standard::{self, DevInfoValues};
use crate::notify::Policy as NotifyPolicy;
use crate::notify::listener::Listener;
use crate::ports::DaemonPorts;
use crate::protocol::uri::ServerUriValues;
use crate::scheduler::{self, Request};
use crate::session::{self, SessionOptions};
use crate::transport::target::{Allowed, TargetPolicy};
use crate::transport::{Credentials, HttpClient, HttpSettings};
use crate::tree::{Journal as _, Tree as _};
use crate::tree::{OpenMode, SqliteStore};

/// Everything start-up prepared: the daemon's long-lived state.
#[derive(Debug)]
pub struct Prepared {
    /// The tree store.
    pub store: SqliteStore,
    /// MO definitions.
    pub registry: Registry,
    /// The machine.
    pub host: Host,
    /// The accounts in memory and the spacing of notification-triggered sessions, shared
    /// by the UDP listener and D-Bus.
    pub gate: crate::notify::Gate,
    /// One HTTP client per server, kept between its sessions (its TLS set-up and idle
    /// connections), with the fingerprint of the settings it was built with.
    http_clients: std::sync::Mutex<HashMap<String, (u64, HttpClient)>>,
}

impl Prepared {
    /// The HTTP client for a server's next session: the kept one when its settings are
    /// unchanged, else a new one.
    fn http_client(
        &self,
        server_id: &str,
        settings: &HttpSettings,
        dev_id: &str,
    ) -> anyhow::Result<HttpClient> {
        use std::hash::{Hash as _, Hasher as _};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (settings, dev_id).hash(&mut h);
        let fingerprint = h.finish();
        let mut clients = self.http_clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((f, c)) = clients.get(server_id)
            && *f == fingerprint
        {
            return Ok(c.session());
        }
        let client = HttpClient::new(settings, dev_id)?;
        clients.insert(server_id.to_owned(), (fingerprint, client.clone()));
        Ok(client)
    }
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
    if settings.http.allow_insecure_auth {
        tracing::warn!(
            "http.allow-insecure-auth is set: HTTP passwords may go over plain http, readable by anyone on the path"
        );
    }
    Ok(Prepared {
        store,
        registry,
        host,
        gate: crate::notify::Gate::new(Duration::from_secs(
            settings.notifications.min_interval_secs,
        )),
        http_clients: std::sync::Mutex::default(),
    })
}

/// Runs the daemon until `shutdown` completes.
pub async fn run(settings: Settings, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    // First, while no other thread runs: systemd's socket, if it passed one.
    let listener = match settings.notifications.listen {
        None => None,
        Some(addr) => match Listener::open(addr) {
            Ok(l) => Some(l),
            Err(e) => {
                // Sessions still work without notifications: run, and say why they don't.
                tracing::error!(address = %addr, error = %e, "cannot listen for notifications; running without them");
                None
            }
        },
    };
    let prepared = Arc::new(prepare(&settings, Host::default())?);
    let crashed = prepared.store.interrupt_running()?;
    if crashed > 0 {
        tracing::warn!(
            sessions = crashed,
            "sessions left running by an earlier stop marked interrupted"
        );
    }
    let (handle, requests) = scheduler::channel();
    let policy = NotifyPolicy {
        max_age_secs: settings.notifications.max_age_secs,
        remember_secs: i64::try_from(settings.notifications.remember_secs).unwrap_or(i64::MAX),
    };
    let status = Arc::new(std::sync::Mutex::new(("idle".to_owned(), String::new())));
    let peers = dbus::peers::Peers::default();
    // READY comes after the bus name is owned: serve first.
    let bus = if settings.dbus.enabled {
        let shared = dbus::Shared {
            prepared: prepared.clone(),
            scheduler: handle.clone(),
            notify_policy: policy,
            status: status.clone(),
            peers: peers.clone(),
            allow_http_show: settings.sessions.allow_http_show,
        };
        let conn = dbus::serve(None, shared).await.with_context(|| {
            format!(
                "cannot serve {} on the system bus (is another omadmd running? is the bus up?)",
                dbus::BUS_NAME
            )
        })?;
        tracing::info!(name = dbus::BUS_NAME, "D-Bus name owned");
        Some(conn)
    } else {
        None
    };
    let events = Events { bus, status, peers };
    // READY: the database is migrated and the bus name is owned.
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
    initial_requests(&prepared, &settings, &handle)?;
    if let Some(l) = &listener {
        tracing::info!(address = %l.local_addr()?, socket = l.origin, "listening for notifications");
    }
    let notifications = async {
        match &listener {
            Some(l) => {
                l.run(
                    &prepared.store,
                    &prepared.gate,
                    policy,
                    crate::notify::listener::Rates {
                        per_source_per_sec: settings.notifications.rate_per_source,
                        total_per_sec: settings.notifications.rate_total,
                    },
                    |a| {
                        let trigger = Trigger::ServerInitiated {
                            notification_id: a.notification_id,
                        };
                        handle.request(
                            Some(&a.server_id),
                            Request {
                                trigger,
                                req_mos: a.req_mos,
                            },
                        );
                    },
                )
                .await
            }
            None => std::future::pending().await,
        }
    };
    tokio::pin!(shutdown);
    tokio::select! {
        () = &mut shutdown => {}
        () = notifications => {}
                result = schedule(&prepared, &settings, &handle, requests, &events) => {
            if let Err(e) = result {
                tracing::error!(error = %format!("{e:#}"), "the scheduler stopped");
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

/// Sessions due at start: every session owed after a bootstrap, one with every server that
/// has queued work, and one with every server when `sessions.at-start` is on.
fn initial_requests(
    p: &Prepared,
    settings: &Settings,
    handle: &scheduler::Handle,
) -> anyhow::Result<()> {
    let client = Request {
        trigger: Trigger::ClientInitiated,
        req_mos: false,
    };
    for owed in p.store.owed_sessions()? {
        handle.request(
            Some(&owed.server_id),
            Request {
                trigger: Trigger::BootstrapComplete,
                req_mos: false,
            },
        );
    }
    for account in crate::mo::account::all(&p.store)? {
        if settings.sessions.at_start || !p.store.outbox(&account.server_id)?.is_empty() {
            handle.request(Some(&account.server_id), client);
        }
    }
    Ok(())
}

/// The scheduler loop: takes requests, runs sessions one at a time, delivers queued
/// subscription data after each session, retries failures with backoff, polls.
async fn schedule(
    p: &Prepared,
    settings: &Settings,
    handle: &scheduler::Handle,
    mut requests: tokio::sync::mpsc::UnboundedReceiver<(Option<String>, Request)>,
    events: &Events,
) -> anyhow::Result<()> {
    let mut queue = scheduler::Queue::default();
    let poll = (settings.sessions.poll_interval_secs > 0)
        .then(|| Duration::from_secs(settings.sessions.poll_interval_secs));
    let mut next_poll = poll.map(|d| tokio::time::Instant::now() + d);
    loop {
        let due = queue.next_due();
        tokio::select! {
            Some((server, req)) = requests.recv() => {
                match server {
                    Some(s) => queue.push(&s, req),
                    None => for a in crate::mo::account::all(&p.store)? { queue.push(&a.server_id, req) },
                }
            }
            () = sleep_until(due), if due.is_some() => {
                let Some((server, req)) = queue.pop_ready(tokio::time::Instant::now()) else { continue };
                let mut ok = run_logged(p, settings, &server, req, None, events).await;
                // Alerts bound for another URL (an async EXEC's ServerURI, TS §5.3.5) go in
                // a session opened there.
                if ok {
                    for url in alert_targets(p, &server)? {
                        let client = Request { trigger: Trigger::ClientInitiated, req_mos: false };
                        ok &= run_logged(p, settings, &server, client, Some(&url), events).await;
                    }
                }
                let delivered = ok && deliver(p, settings, &server, events).await.unwrap_or_else(|e| {
                    tracing::error!(server = %server, error = %format!("{e:#}"), "delivery failed");
                    false
                });
                let owed = p.store.owed_sessions()?.iter().any(|o| o.server_id == server);
                if ok && delivered && !owed {
                    queue.succeeded(&server);
                } else if owed || !p.store.outbox(&server)?.is_empty() {
                    // Work is still waiting for this server: try again later.
                    let again = if owed { Request { trigger: Trigger::BootstrapComplete, req_mos: false } } else { Request { trigger: Trigger::ClientInitiated, req_mos: req.req_mos } };
                    let delay = queue.failed(
                        &server,
                        again,
                        tokio::time::Instant::now(),
                        Duration::from_secs(settings.sessions.retry_base_secs),
                        Duration::from_secs(settings.sessions.retry_max_secs),
                    );
                    tracing::info!(server = %server, retry_in_secs = delay.as_secs(), "queued work kept; will retry");
                }
            }
            () = sleep_until(next_poll), if next_poll.is_some() => {
                handle.request(None, Request { trigger: Trigger::ClientInitiated, req_mos: false });
                next_poll = poll.map(|d| tokio::time::Instant::now() + d);
            }
        }
    }
}

/// Runs a session, telling D-Bus peers, and logs a failure to run it; true when it ended
/// normally.
async fn run_logged(
    p: &Prepared,
    settings: &Settings,
    server: &str,
    req: Request,
    url: Option<&str>,
    events: &Events,
) -> bool {
    events.started(server, req.trigger).await;
    let result = session_with(p, settings, server, req, url, events).await;
    let ok = match &result {
        Ok(report) => report.finish == session::Finish::Ended,
        Err(e) => {
            tracing::error!(server = %server, error = %format!("{e:#}"), "session could not run");
            false
        }
    };
    events.finished(server, result.as_ref().ok()).await;
    ok
}

/// Tells D-Bus peers about sessions: the SessionStarted and SessionFinished signals and
/// the State and ActiveServer properties.
#[derive(Debug)]
struct Events {
    bus: Option<zbus::Connection>,
    status: Arc<std::sync::Mutex<(String, String)>>,
    peers: dbus::peers::Peers,
}

impl Events {
    fn set(&self, state: &str, server: &str) {
        *self.status.lock().unwrap_or_else(|p| p.into_inner()) =
            (state.to_owned(), server.to_owned());
    }

    async fn manager(&self) -> Option<zbus::object_server::InterfaceRef<dbus::Manager>> {
        let conn = self.bus.as_ref()?;
        conn.object_server()
            .interface::<_, dbus::Manager>(dbus::PATH)
            .await
            .ok()
    }

    async fn properties_changed(&self, iface: &zbus::object_server::InterfaceRef<dbus::Manager>) {
        let emitter = iface.signal_emitter();
        let m = iface.get().await;
        if let Err(e) = m
            .state_changed(emitter)
            .await
            .and(m.active_server_changed(emitter).await)
        {
            tracing::warn!(error = %e, "cannot signal property changes");
        }
    }

    async fn started(&self, server: &str, trigger: Trigger) {
        self.set("session", server);
        if let Some(iface) = self.manager().await {
            let name = session::trigger_name(trigger);
            if let Err(e) =
                dbus::Manager::session_started(iface.signal_emitter(), server, &name).await
            {
                tracing::warn!(error = %e, "cannot signal SessionStarted");
            }
            self.properties_changed(&iface).await;
        }
    }

    async fn finished(&self, server: &str, report: Option<&session::Report>) {
        self.set("idle", "");
        if let Some(iface) = self.manager().await {
            let (id, outcome, detail) = match report.map(|r| (r.id, &r.finish)) {
                Some((id, session::Finish::Ended)) => (id, "ended", String::new()),
                Some((id, session::Finish::Aborted(why))) => (id, "aborted", why.clone()),
                None => (0, "failed", "the session could not run".to_owned()),
            };
            if let Err(e) = dbus::Manager::session_finished(
                iface.signal_emitter(),
                id,
                server,
                outcome,
                &detail,
            )
            .await
            {
                tracing::warn!(error = %e, "cannot signal SessionFinished");
            }
            self.properties_changed(&iface).await;
        }
    }
}

/// The URLs other than the account's SrvURI that queued alerts must be delivered to.
fn alert_targets(p: &Prepared, server: &str) -> anyhow::Result<Vec<String>> {
    let srv_uri = crate::mo::account::load(&p.store, server)?
        .map(|a| a.srv_uri)
        .unwrap_or_default();
    let mut urls: Vec<String> = p
        .store
        .outbox(server)?
        .into_iter()
        .filter(|o| o.kind == crate::tree::OutgoingKind::Alert)
        .filter_map(|o| o.target)
        .filter(|t| *t != srv_uri)
        .collect();
    urls.sort();
    urls.dedup();
    Ok(urls)
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Sends the server's queued subscription deliveries (TS §5.3.11): each is an HPUT of the
/// subscribed ClientURI to the subscription's ServerURI, made with the server's current
/// rights and data. Several queued changes of one subscription go out once. Returns whether
/// nothing remains queued.
async fn deliver(
    p: &Prepared,
    settings: &Settings,
    server_id: &str,
    events: &Events,
) -> anyhow::Result<bool> {
    use crate::protocol::packages::Command;
    let queued: Vec<_> = p
        .store
        .outbox(server_id)?
        .into_iter()
        .filter(|o| o.kind == crate::tree::OutgoingKind::Delivery)
        .collect();
    if queued.is_empty() {
        return Ok(true);
    }
    let account = crate::mo::account::load(&p.store, server_id)?
        .with_context(|| format!("no DM account for server {server_id}"))?;
    let (engine_parts, values) = engine_for(p, settings, &account, events)?;
    let engine = Engine::new(&p.store, &p.registry, &engine_parts.0, engine_parts.1);
    let mut groups: std::collections::BTreeMap<(String, String), Vec<i64>> =
        std::collections::BTreeMap::new();
    for o in &queued {
        let uri = String::from_utf8_lossy(&o.payload).into_owned();
        groups
            .entry((o.target.clone().unwrap_or_default(), uri))
            .or_default()
            .push(o.id);
    }
    let mut all = true;
    for ((target, uri), ids) in groups {
        let mut s = Session {
            server_id: server_id.to_owned(),
            uri_values: values.clone(),
            server_accept: Vec::new(),
            target: String::new(),
            allow_http_show: false,
        };
        let out = engine
            .run(
                &mut s,
                &[Command::Hput {
                    server_uri: target.clone(),
                    client_uris: vec![uri.clone()],
                }],
            )
            .await;
        let code = out.package3.status.first().map_or(500, |st| st.sc);
        match code {
            // Delivered; or nothing left to deliver (the subtree is gone, or the server may
            // no longer read it).
            200 | 404 | 403 => {
                tracing::info!(server = %server_id, subscription = %uri, to = %crate::protocol::uri::redact(&target), status = code, "subscription delivery done");
                p.store.remove_outgoing(&ids)?;
            }
            _ => {
                tracing::warn!(server = %server_id, subscription = %uri, to = %crate::protocol::uri::redact(&target), status = code, "subscription delivery failed; kept");
                all = false;
            }
        }
    }
    Ok(all)
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

type EnginePorts<'a> = (DaemonPorts<'a>, EngineLimits);

/// What an engine needs from the settings: ports with a fresh HTTP client (cookies live for
/// one session) and limits; and the ServerURI substitution values.
fn engine_for<'a>(
    p: &'a Prepared,
    settings: &Settings,
    account: &crate::mo::account::Account,
    events: &'a Events,
) -> anyhow::Result<(EnginePorts<'a>, ServerUriValues)> {
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
        client_identity_pem: account.client_identity_pem.clone(),
        max_body: settings.limits.max_package_bytes,
        targets: TargetPolicy::new(
            &account.srv_uri,
            settings.http.allow_private_targets,
            settings
                .http
                .allow_targets
                .iter()
                .filter_map(|t| Allowed::parse(t).ok())
                .collect(),
        ),
        allow_insecure_auth: settings.http.allow_insecure_auth,
    };
    let origin = url::Url::parse(&account.srv_uri)
        .with_context(|| format!("SrvURI of {} is not a URL", account.server_id))?
        .origin();
    let credentials = account
        .http_auth
        .clone()
        .map(|(user, password)| Credentials {
            user,
            password,
            origin,
        });
    let http = p
        .http_client(&account.server_id, &http_settings, &dev_id)?
        .with_credentials(credentials);
    let limits = EngineLimits {
        max_value_bytes: settings.limits.max_node_value_bytes,
        max_document_bytes: settings.limits.max_package_bytes,
        max_nodes: settings.limits.max_nodes_per_document,
        max_server_bytes: settings.limits.max_server_bytes,
        max_server_instances: settings.limits.max_server_instances,
        max_server_registrations: settings.limits.max_server_registrations,
    };
    let local = events.bus.as_ref().map(|c| (c, &events.peers));
    Ok((
        (
            DaemonPorts {
                http,
                store: &p.store,
                local,
                exec_timeout: Duration::from_secs(settings.sessions.exec_timeout_secs),
                show_timeout: Duration::from_secs(settings.sessions.show_timeout_secs),
            },
            limits,
        ),
        ServerUriValues {
            dev_id: Some(dev_id),
            ..Default::default()
        },
    ))
}

/// Runs one session with a server.
async fn session_with(
    p: &Prepared,
    settings: &Settings,
    server_id: &str,
    req: Request,
    url: Option<&str>,
    events: &Events,
) -> anyhow::Result<session::Report> {
    let account = crate::mo::account::load(&p.store, server_id)?
        .with_context(|| format!("no DM account for server {server_id}"))?;
    let ((ports, limits), values) = engine_for(p, settings, &account, events)?;
    let engine = Engine::new(&p.store, &p.registry, &ports, limits);
    let options = SessionOptions {
        max_package_bytes: settings.limits.max_package_bytes,
        max_commands: settings.limits.max_commands_per_package,
        max_packages: settings.sessions.max_packages,
        allow_http_show: settings.sessions.allow_http_show,
    };
    standard::refresh_sessioninfo(&p.store, &p.registry, &p.host)?;
    Ok(session::run(
        &p.store,
        &engine,
        &ports.http,
        &account,
        req.trigger,
        req.req_mos,
        &values,
        options,
        url,
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
