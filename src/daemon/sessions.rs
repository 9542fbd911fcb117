//! Running sessions and subscription deliveries with a server: the engine, its ports and
//! the HTTP client (kept per server between sessions) put together for each.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;

use super::events::Events;
use crate::config::Settings;
use crate::dbus::Configuration;
use crate::engine::{Configured, Engine, Limits as EngineLimits};
use crate::mo::canonical_moid;
use crate::mo::standard;
use crate::ports::DaemonPorts;
use crate::protocol::uri::ServerUriValues;
use crate::scheduler::Request;
use crate::session::{self, SessionOptions};
use crate::state::Prepared;
use crate::transport::{Credentials, HttpClient, HttpSettings};
use crate::tree::{Journal as _, SqliteStore, Tree as _};

/// One HTTP client per server, kept between its sessions (its TLS set-up and idle
/// connections), with the fingerprint of the settings it was built with.
#[derive(Debug, Default)]
pub(super) struct HttpClients(std::sync::Mutex<HashMap<String, (u64, HttpClient)>>);

impl HttpClients {
    /// The HTTP client for a server's next session: the kept one when its settings are
    /// unchanged, else a new one.
    fn get(
        &self,
        server_id: &str,
        settings: &HttpSettings,
        dev_id: &str,
    ) -> anyhow::Result<HttpClient> {
        use std::hash::{Hash as _, Hasher as _};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (settings, dev_id).hash(&mut h);
        let fingerprint = h.finish();
        let mut clients = self.0.lock().unwrap_or_else(|p| p.into_inner());
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

/// What sessions with servers need: the daemon's state, the settings, the kept HTTP
/// clients, and the bus to tell about them.
#[derive(Debug)]
pub(super) struct Runner<'a> {
    pub p: &'a Prepared,
    pub settings: &'a Settings,
    pub clients: HttpClients,
    pub events: &'a Events,
    /// The sessions running now, with their cancel switches (shared with D-Bus).
    pub running: session::Running,
}

/// How a session went, as far as scheduling cares.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ran {
    /// It ended normally (the server sent END).
    pub ok: bool,
    /// The server asked the client to wait (`Retry-After` on a 503 or 429).
    pub retry_after: Option<Duration>,
}

impl<'a> Runner<'a> {
    /// Runs a session, telling D-Bus peers, and logs a failure to run it.
    pub(super) async fn run_logged(&self, server: &str, req: Request, url: Option<&str>) -> Ran {
        self.events.started(server, req.trigger).await;
        let switch = self.running.enter(server);
        // The session tells its progress into a channel of its own, signalled as it comes;
        // all of it before SessionFinished (the sender goes with the session).
        let (progress, mut told) = tokio::sync::mpsc::unbounded_channel();
        let (result, ()) = tokio::join!(
            self.session_with(server, req, url, &switch, progress),
            async {
                while let Some(p) = told.recv().await {
                    self.events.progress(server, &p).await;
                }
            }
        );
        self.running.leave(server);
        let ran = match &result {
            Ok(report) => Ran {
                ok: report.finish == session::Finish::Ended,
                retry_after: report.retry_after,
            },
            Err(e) => {
                tracing::error!(server = %server, error = %format!("{e:#}"), "session could not run");
                Ran {
                    ok: false,
                    retry_after: None,
                }
            }
        };
        self.events.finished(server, result.as_ref().ok()).await;
        ran
    }

    /// Sends the server's queued subscription deliveries (TS §5.3.11): each is an HPUT of the
    /// subscribed ClientURI to the subscription's ServerURI, made with the server's current
    /// rights and data. Several queued changes of one subscription go out once. Returns whether
    /// nothing remains queued.
    pub(super) async fn deliver(&self, server_id: &str) -> anyhow::Result<bool> {
        let p = self.p;
        let queued: Vec<(i64, String, String)> = p
            .store
            .outbox(server_id)?
            .into_iter()
            .filter_map(|o| match o.item {
                crate::tree::OutItem::Delivery { client_uri, to } => Some((o.id, client_uri, to)),
                _ => None,
            })
            .collect();
        if queued.is_empty() {
            return Ok(true);
        }
        let account = crate::mo::account::load(&p.store, server_id)?
            .with_context(|| format!("no DM account for server {server_id}"))?;
        let (engine_parts, values) = self.engine_for(&account)?;
        let registry = p.registry.get();
        let engine = Engine::new(&p.store, &registry, &engine_parts.0, engine_parts.1);
        let mut groups: std::collections::BTreeMap<(String, String), Vec<i64>> =
            std::collections::BTreeMap::new();
        for (id, uri, to) in queued {
            groups.entry((to, uri)).or_default().push(id);
        }
        let mut all = true;
        for ((target, uri), ids) in groups {
            let code = engine.deliver(server_id, &values, &uri, &target).await?;
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

    /// What an engine needs from the settings: ports with a fresh HTTP client (cookies live for
    /// one session) and limits; and the ServerURI substitution values.
    fn engine_for(
        &self,
        account: &crate::mo::account::Account,
    ) -> anyhow::Result<(EnginePorts<'a>, ServerUriValues)> {
        let (p, settings, events) = (self.p, self.settings, self.events);
        let (http, dev_id) = self.http_for(account, true)?;
        let limits = engine_limits(&settings.limits);
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

    /// The HTTP client for work on `account`'s behalf (its sessions, the packages its EXECs
    /// name): the daemon's TLS settings and target rules, the account's client certificate,
    /// and its credentials for its own origin only; with the DevID it presents. A session
    /// takes the client kept for the server (its cookies start empty); anything else
    /// (`kept` false) a client of its own, so it never touches a running session's cookies.
    pub(super) fn http_for(
        &self,
        account: &crate::mo::account::Account,
        kept: bool,
    ) -> anyhow::Result<(HttpClient, String)> {
        let dev_id = dev_id(&self.p.store)?;
        let http_settings = self
            .settings
            .http_settings(&account.srv_uri, account.client_identity_pem.clone())
            .map_err(anyhow::Error::msg)?;
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
        let http = if kept {
            self.clients
                .get(&account.server_id, &http_settings, &dev_id)?
        } else {
            HttpClient::new(&http_settings, &dev_id)?
        };
        Ok((http.with_credentials(credentials), dev_id))
    }

    /// Answers a local application's request for `moid`'s configuration (TS §5.3.10): the
    /// instances there are, else the DEFAULT's HGET run for the server that gave it.
    pub(super) async fn configure(&self, moid: &str) -> anyhow::Result<Configuration> {
        let p = self.p;
        if let Some(Configured::Present(uris)) = crate::engine::present(&p.store, moid)? {
            return Ok(Configuration::Present(uris));
        }
        let Some((server_id, server_uri)) = p.store.default_source(canonical_moid(moid))? else {
            return Ok(Configuration::NoDefault);
        };
        let from = crate::protocol::uri::redact(&server_uri);
        let account = crate::mo::account::load(&p.store, &server_id)?.with_context(|| {
            format!("the DEFAULT for {moid} is server {server_id}'s, which has no DM account now")
        })?;
        let ((ports, limits), values) = self.engine_for(&account)?;
        let registry = p.registry.get();
        let engine = Engine::new(&p.store, &registry, &ports, limits);
        let configured = engine.configure(moid, &values).await?;
        tracing::info!(moid = %moid, server = %server_id, from = %from, outcome = ?configured, "configuration requested");
        Ok(match configured {
            Configured::Present(uris) => Configuration::Present(uris),
            Configured::Fetched(uris) => Configuration::Fetched {
                server_id,
                from,
                uris,
            },
            Configured::NoDefault => Configuration::NoDefault,
            Configured::Failed(status) => Configuration::Failed {
                server_id,
                from,
                status,
            },
        })
    }

    /// Runs one session with a server.
    async fn session_with(
        &self,
        server_id: &str,
        req: Request,
        url: Option<&str>,
        cancel: &tokio::sync::Notify,
        progress: tokio::sync::mpsc::UnboundedSender<session::Progress>,
    ) -> anyhow::Result<session::Report> {
        let (p, settings) = (self.p, self.settings);
        let account = crate::mo::account::load(&p.store, server_id)?
            .with_context(|| format!("no DM account for server {server_id}"))?;
        let ((ports, limits), values) = self.engine_for(&account)?;
        let registry = p.registry.get();
        let engine = Engine::new(&p.store, &registry, &ports, limits);
        let options = SessionOptions {
            max_duration: Duration::from_secs(settings.sessions.max_duration_secs),
            max_package_bytes: settings.limits.max_package_bytes,
            max_commands: settings.limits.max_commands_per_package,
            max_packages: settings.sessions.max_packages,
            allow_http_show: settings.sessions.allow_http_show,
        };
        standard::refresh_sessioninfo(&p.store, &registry, &p.host)?;
        Ok(session::run(
            &p.store,
            &engine,
            &ports.http,
            session::Plan {
                account: &account,
                trigger: req.trigger,
                req_mos: req.req_mos,
                uri_values: &values,
                options,
                url,
                cancel: Some(cancel),
                progress: Some(&|p| {
                    // The receiver outlives the session; a failed send is moot.
                    let _ = progress.send(p);
                }),
            },
        )
        .await?)
    }
}

/// The engine's bounds from the configuration's `[limits]`.
pub fn engine_limits(l: &crate::config::Limits) -> EngineLimits {
    EngineLimits {
        max_value_bytes: l.max_node_value_bytes,
        max_document_bytes: l.max_package_bytes,
        max_nodes: l.max_nodes_per_document,
        max_server_bytes: l.max_server_bytes,
        max_server_instances: l.max_server_instances,
        max_server_registrations: l.max_server_registrations,
        max_server_alerts: l.max_server_alerts,
        max_server_result_urls: l.max_server_result_urls,
    }
}
