//! The command engine: runs a Package#2's commands in order against the tree and builds
//! the Package#3 (TS §5.3). It knows no HTTP and no D-Bus: the Data Repository, SHOW and
//! EXEC reach the outside through [`Ports`], which the daemon implements and tests
//! implement with recorders.
//!
//! Every command's change to the tree is one store transaction, together with what it
//! queues (alerts, subscription deliveries). A failed command changes nothing. Errors are
//! statuses: a DM status code is data; only the caller's transport can end a session.

pub mod acl;
mod commands;
pub mod local;
pub mod resolve;

use std::future::Future;

use std::collections::BTreeSet;

use serde::Deserialize;

use crate::mo::Registry;
use crate::protocol::packages::{
    Alert, Command, MoSupported, Package1, Package3, Part, Status, alert_type,
};
use crate::protocol::uri::ServerUriValues;
use crate::tree::{InstanceKey, StoreError, TreeStore};

pub use acl::{Acl, Rights};

/// DM status codes (TS App. C): the `omadm-proto` crate's.
pub use crate::protocol::sc;

/// Data fetched from the Data Repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// Its media type (without parameters).
    pub content_type: String,
    /// The body.
    pub body: Vec<u8>,
}

/// HPUT or HPOST.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// HTTP PUT.
    Put,
    /// HTTP POST.
    Post,
}

/// How the repository took data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// Accepted.
    Ok,
    /// 415 with `OMADM-Accept`: the formats it would take (TS §5.5).
    Unsupported {
        /// Media types it lists.
        accept: Vec<String>,
    },
}

/// A repository exchange that failed (connection, TLS, HTTP status, a refused URL): 419 for
/// the command. It keeps the transport's own error as its cause.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct PortError(pub Box<dyn std::error::Error + Send + Sync>);

/// A fetched body longer than the device takes (`limits.max-package-bytes`): the cause a
/// port gives its [`PortError`] so that HGET answers 506 (Device Full), as for a document
/// over `limits.max-document-bytes`, rather than 419 (docs/decisions.md).
#[derive(Debug, thiserror::Error)]
#[error("the body is longer than the {0} bytes the device takes")]
pub struct BodyTooLarge(pub usize);

/// What became of a SHOW.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shown {
    /// An agent launched the browser: 200.
    Launched,
    /// The user declined before anything was shown: 507.
    Declined,
    /// No agent is registered: 501 (no Web Browser Component).
    NoAgent,
    /// The agents failed or timed out: 500.
    Failed(String),
}

/// An EXEC to carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecRequest {
    /// The server that asked.
    pub server_id: String,
    /// The executed node's concrete ClientURI (the alert's SourceURI).
    pub client_uri: String,
    /// The node.
    pub location: resolve::Location,
    /// Where an asynchronous result goes (the EXEC's substituted ServerURI), if given.
    pub report_to: Option<String>,
}

/// What an EXEC handler answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Executed {
    /// Finished now with this status (200 or an application code 1000–1999); an alert to
    /// send when the result must be reported asynchronously.
    Done {
        /// The status.
        status: u16,
        /// The result as a Generic Alert, if the MO defines one.
        alert: Option<Alert>,
    },
    /// Started; the handler reports the result later as a Generic Alert: 202.
    Accepted,
    /// No handler owns the node: 405 (not executable here).
    NoHandler,
    /// The handler failed or timed out: 500.
    Failed(String),
}

/// The engine's ways out of the process. Implemented by the daemon (HTTP, D-Bus) and by
/// tests (recorders and local servers).
pub trait Ports {
    /// HTTP GET of MO data for HGET (TS §5.3.1), with the media types we accept.
    fn fetch(&self, url: &str, accept: &[&str])
    -> impl Future<Output = Result<Fetched, PortError>>;
    /// HTTP PUT or POST of MO data (HPUT, HPOST).
    fn send(
        &self,
        method: Method,
        url: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> impl Future<Output = Result<Sent, PortError>>;
    /// Whether a URL a server named for later use (SUB, an EXEC result, CONT) may be
    /// reached from this device (docs/security.md); `Err` says why not.
    fn check_target(&self, url: &str) -> impl Future<Output = Result<(), PortError>>;
    /// Hands a SHOW URL to the Web Browser Component (TS §5.3.7).
    fn show(&self, url: &str, server_id: &str) -> impl Future<Output = Shown>;
    /// Carries out an EXEC (TS §5.3.5).
    fn exec(&self, request: &ExecRequest) -> impl Future<Output = Executed>;
}

/// Bounds on what the engine accepts.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest leaf value stored.
    pub max_value_bytes: usize,
    /// Largest document fetched by HGET.
    pub max_document_bytes: usize,
    /// Most nodes in one document.
    pub max_nodes: usize,
    /// Most bytes of values in the instances one server created (its quota).
    pub max_server_bytes: u64,
    /// Most instances one server may have created.
    pub max_server_instances: u64,
    /// Most subscriptions and DEFAULT registrations one server may hold.
    pub max_server_registrations: u64,
    /// Most Generic Alerts and EXEC results queued for one server, or still to come.
    pub max_server_alerts: u64,
    /// Most distinct EXEC ServerURIs one server's waiting results may go to.
    pub max_server_result_urls: u64,
}

/// The state of one DM session that commands read and change.
#[derive(Debug, Clone)]
pub struct Session {
    /// The server (its SrvID).
    pub server_id: String,
    /// Values for ServerURI substitution.
    pub uri_values: ServerUriValues,
    /// Formats the server listed in `OMADM-Accept`, if any (TS §5.5).
    pub server_accept: Vec<String>,
    /// Where the next Package#3 goes (SrvURI, then the last CONT's).
    pub target: String,
    /// Whether SHOW may open plain `http` URLs (configuration; https only by default).
    pub allow_http_show: bool,
}

/// What a Package#2 produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The Package#3: one status per command, in order.
    pub package3: Package3,
    /// GET results for the multipart Package#3.
    pub parts: Vec<Part>,
    /// The Package#2 held END: send no Package#3 (TS §5.3.9).
    pub end: bool,
}

/// The command engine over a store, the MO definitions and the ports.
#[derive(Debug)]
pub struct Engine<'a, P> {
    store: &'a dyn TreeStore,
    registry: &'a Registry,
    ports: &'a P,
    limits: Limits,
}

impl<'a, P: Ports> Engine<'a, P> {
    /// An engine.
    pub fn new(
        store: &'a dyn TreeStore,
        registry: &'a Registry,
        ports: &'a P,
        limits: Limits,
    ) -> Self {
        Engine {
            store,
            registry,
            ports,
            limits,
        }
    }

    /// Runs the commands of a Package#2 in order (TS §5.2.3) and returns the Package#3.
    pub async fn run(&self, session: &mut Session, commands: &[Command]) -> Outcome {
        let mut out = Outcome {
            package3: Package3::default(),
            parts: Vec::new(),
            end: false,
        };
        // Rights are read afresh after any command that may change the tree (an HGET may
        // have changed the DACMO or a DMAcc just before); a run of reads shares them.
        let mut rights: Option<Acl<'_>> = None;
        for (index, cmd) in commands.iter().enumerate() {
            if rights.is_none() {
                match Acl::for_server(self.store, &session.server_id) {
                    Ok(acl) => rights = Some(acl),
                    Err(e) => {
                        tracing::error!(error = %e, "cannot read access rights");
                        out.package3.status.push(Status::code(sc::INTERNAL_ERROR));
                        continue;
                    }
                }
            }
            let Some(acl) = rights.as_ref() else { continue };
            let ctx = commands::Ctx {
                engine: self,
                acl,
                session,
            };
            let reply = ctx.execute(cmd, index).await;
            if !matches!(cmd, Command::Get { .. } | Command::Show { .. }) {
                rights = None;
            }
            debug_assert!(
                sc::is_valid(reply.status.sc),
                "{} is not a TS status",
                reply.status.sc
            );
            tracing::debug!(command = cmd.name(), index, status = reply.status.sc, server = %session.server_id, "command done");
            if let Some(t) = reply.cont {
                session.target = t;
            }
            out.end |= reply.end;
            out.parts.extend(reply.part);
            out.package3.status.push(reply.status);
        }
        out
    }
}

/// What asking for an MO's configuration did (TS §5.3.10, the DEFAULT command's local
/// side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Configured {
    /// The tree already holds instances of the MOID: their ClientURIs.
    Present(Vec<String>),
    /// Fetched from the DEFAULT ServerURI and stored here.
    Fetched(Vec<String>),
    /// No server gave a DEFAULT for the MOID.
    NoDefault,
    /// The fetch or the store failed, with the status an HGET would have had.
    Failed(u16),
}

/// [`Configured::Present`] with the ClientURIs of the instances of `moid`, when the tree
/// holds any: asking for configuration then fetches nothing.
pub fn present(store: &dyn TreeStore, moid: &str) -> Result<Option<Configured>, StoreError> {
    let present = store.instances(Some(crate::mo::canonical_moid(moid)))?;
    Ok((!present.is_empty()).then(|| {
        Configured::Present(
            present
                .iter()
                .map(|i| crate::protocol::uri::concrete(&i.moid, &i.miid, ""))
                .collect(),
        )
    }))
}

impl<P: Ports> Engine<'_, P> {
    /// Makes sure configuration for `moid` exists: when the tree has no instance of it and
    /// a server gave a DEFAULT for it, runs that DEFAULT's HGET (after `[…]` substitution),
    /// storing where the client chooses and reporting nothing to any server (TS §5.3.10).
    pub async fn configure(
        &self,
        moid: &str,
        uri_values: &ServerUriValues,
    ) -> Result<Configured, StoreError> {
        let moid = crate::mo::canonical_moid(moid);
        if let Some(present) = present(self.store, moid)? {
            return Ok(present);
        }
        let Some((server_id, server_uri)) = self.store.default_source(moid)? else {
            return Ok(Configured::NoDefault);
        };
        let hget = Command::Hget {
            server_uri,
            client_uri: None,
        };
        let reply = self.on_behalf_of(&server_id, uri_values, &hget).await?;
        Ok(match reply.status.sc {
            sc::OK => Configured::Fetched(reply.status.uri),
            code => Configured::Failed(code),
        })
    }

    /// Sends one subscription delivery (TS §5.3.11): the data `client_uri` addresses now,
    /// read with the server's rights now, PUT to the subscription's ServerURI `to` as an
    /// HPUT of it would. Returns that status: 200 delivered; 403 or 404 nothing left the
    /// server may see; 419 and others, the repository failed.
    pub async fn deliver(
        &self,
        server_id: &str,
        uri_values: &ServerUriValues,
        client_uri: &str,
        to: &str,
    ) -> Result<u16, StoreError> {
        let hput = Command::Hput {
            server_uri: to.to_owned(),
            client_uris: vec![client_uri.to_owned()],
        };
        Ok(self
            .on_behalf_of(server_id, uri_values, &hput)
            .await?
            .status
            .sc)
    }

    /// Runs one command for a server outside any session (a DEFAULT's HGET, a
    /// subscription's delivery), with the server's rights now.
    async fn on_behalf_of(
        &self,
        server_id: &str,
        uri_values: &ServerUriValues,
        cmd: &Command,
    ) -> Result<commands::Reply, StoreError> {
        let acl = Acl::for_server(self.store, server_id)?;
        let session = Session {
            server_id: server_id.to_owned(),
            uri_values: uri_values.clone(),
            server_accept: Vec::new(),
            target: String::new(),
            allow_http_show: false,
        };
        let ctx = commands::Ctx {
            engine: self,
            acl: &acl,
            session: &session,
        };
        Ok(ctx.execute(cmd, 0).await)
    }
}

/// The Generic Alert reporting an EXEC's result when the handler gives none of its own
/// (reference §4.4: the alert type is the MO's business; this one carries
/// `{"ResultCode": status}`, its SourceURI the EXEC's ClientURI, TS §13.1).
pub fn exec_result_alert(client_uri: &str, status: u16) -> Alert {
    let mut data = serde_json::Map::new();
    data.insert("ResultCode".into(), serde_json::Value::from(status));
    Alert {
        alert_type: commands::EXEC_RESULT_ALERT.into(),
        source_uri: Some(client_uri.to_owned()),
        data_type: Some("application/json".into()),
        data: Some(data),
        ..Alert::default()
    }
}

/// Why a session starts: the session-type alert of its Package#1 (TS §5.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The client's own reason (timer, an administrator, queued work).
    ClientInitiated,
    /// A DM Notification, with its NOTIFICATION-ID.
    ServerInitiated {
        /// The notification's ID, if it had one.
        notification_id: Option<u16>,
    },
    /// A bootstrap for this server completed (TS §8).
    BootstrapComplete,
}

impl<P: Ports> Engine<'_, P> {
    /// Builds the Package#1 for a session with `server_id` opened to `url`: exactly one
    /// session-type alert, then the alerts queued for the server that go to `url` (those
    /// without a target of their own go to the account's `srv_uri`; an async EXEC result
    /// goes to the EXEC's ServerURI, TS §5.3.5), and `MOS` when REQ-MOS asked for it,
    /// listing only the MOIDs the server was provisioned with and the instances it may read
    /// (TS §5.2.2). Returns the outbox ids of the queued alerts it carries, to remove once
    /// the server has taken the package.
    pub fn package1(
        &self,
        server_id: &str,
        trigger: Trigger,
        req_mos: bool,
        url: &str,
        srv_uri: &str,
    ) -> Result<(Package1, Vec<i64>), StoreError> {
        let session_alert = match trigger {
            Trigger::ClientInitiated => Alert::of_type(alert_type::CLIENT_INITIATED),
            Trigger::ServerInitiated { notification_id } => {
                Alert::server_initiated(notification_id)
            }
            Trigger::BootstrapComplete => Alert::of_type(alert_type::BOOTSTRAP_COMPLETE),
        };
        let mut alerts = vec![session_alert];
        let mut carried = Vec::new();
        for o in self.store.outbox(server_id)? {
            let Some((alert, to)) = o.item.alert() else {
                continue;
            };
            if to.unwrap_or(srv_uri) != url {
                continue;
            }
            match Alert::deserialize(alert) {
                Ok(a) => {
                    alerts.push(a);
                    carried.push(o.id);
                }
                Err(e) => {
                    tracing::error!(id = o.id, error = %e, "queued alert is unreadable; left in the queue")
                }
            }
        }
        let mos = if req_mos {
            Some(self.mos(server_id)?)
        } else {
            None
        };
        Ok((Package1 { mos, alerts }, carried))
    }

    fn mos(&self, server_id: &str) -> Result<Vec<MoSupported>, StoreError> {
        let acl = Acl::for_server(self.store, server_id)?;
        let mut moids: BTreeSet<String> =
            self.registry.iter().map(|r| r.def.moid.clone()).collect();
        moids.extend(self.store.instances(None)?.into_iter().map(|i| i.moid));
        let mut out = Vec::new();
        for moid in moids.into_iter().filter(|m| acl.moid_permitted(m)) {
            let mut miids = Vec::new();
            for inst in self.store.instances(Some(&moid))? {
                let key = InstanceKey::new(moid.clone(), inst.miid.clone());
                if acl.rights(&key, "")?.has(Rights::READ) {
                    miids.push(inst.miid);
                }
            }
            out.push(MoSupported {
                ddf: self.registry.get(&moid).and_then(|r| r.ddf_url.clone()),
                moid: Some(moid),
                miid: miids,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
