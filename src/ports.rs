//! The daemon's implementation of the engine's [`Ports`]: the Data Repository over HTTP(S),
//! and EXEC through handlers registered over D-Bus. SHOW reaches local agents over D-Bus;
//! until one registers, SHOW answers "no Web Browser Component" (501), and an EXEC on a
//! MO no handler owns "not executable here" (405): never a silent success.

use std::time::Duration;

use crate::dbus::peers::Peers;
use crate::engine::{ExecRequest, Executed, Fetched, Method, PortError, Ports, Sent, Shown};
use crate::protocol::packages::Alert;
use crate::transport::HttpClient;
use crate::tree::{PendingExec, TreeOp, TreeStore};

use omadm_client::{AgentProxy, DECLINED, ExecHandlerProxy};

/// Ports for one session.
#[derive(Debug)]
pub struct DaemonPorts<'a> {
    /// The session's client (its cookies, TLS settings, credentials).
    pub http: HttpClient,
    /// Where pending EXECs are recorded.
    pub store: &'a dyn TreeStore,
    /// The bus and the registered handlers, when D-Bus is on.
    pub local: Option<(&'a zbus::Connection, &'a Peers)>,
    /// How long a handler may take to answer.
    pub exec_timeout: Duration,
    /// How long an agent may take to launch the browser.
    pub show_timeout: Duration,
}

/// True when a call failed because the peer has left the bus, or no longer serves the
/// object it registered (its registration is stale).
fn peer_gone(error: &zbus::Error) -> bool {
    crate::dbus::no_owner(error)
        || crate::dbus::error_name(error).as_deref()
            == Some("org.freedesktop.DBus.Error.UnknownObject")
}

/// A proxy of the interface `P` a registered peer serves at the path it gave: no
/// introspection and no property cache, only the call.
async fn peer_proxy<'a, P>(
    conn: &zbus::Connection,
    peer: &'a crate::dbus::peers::Peer,
) -> zbus::Result<P>
where
    P: From<zbus::Proxy<'a>> + zbus::proxy::Defaults,
{
    zbus::proxy::Builder::<P>::new(conn)
        .destination(peer.bus_name.as_str())
        .path(peer.path.as_str())
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
}

/// An EXEC token: 128 bits from the OS, so no other peer can guess one and answer in the
/// handler's place (the handler's bus name is checked too).
fn token() -> Result<String, getrandom::Error> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b)?;
    Ok(hex::encode(b))
}

impl Ports for DaemonPorts<'_> {
    async fn fetch(&self, url: &str, accept: &[&str]) -> Result<Fetched, PortError> {
        self.http.fetch(url, accept).await.map_err(|e| {
            match e.0.downcast_ref::<crate::transport::error::HttpError>() {
                Some(crate::transport::error::HttpError::TooLarge(max)) => {
                    PortError(Box::new(crate::engine::BodyTooLarge(*max)))
                }
                _ => e,
            }
        })
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<Sent, PortError> {
        self.http.send(method, url, content_type, body).await
    }

    async fn check_target(&self, url: &str) -> Result<(), PortError> {
        self.http.check_target(url).await
    }

    async fn show(&self, url: &str, server_id: &str) -> Shown {
        let agents = self.local.map(|(_, p)| p.agents()).unwrap_or_default();
        let Some((conn, peers)) = self.local.filter(|_| !agents.is_empty()) else {
            tracing::info!(server = %server_id, "SHOW: no agent is registered");
            return Shown::NoAgent;
        };
        let choice = crate::dbus::logind::choose(conn, agents).await;
        for a in &choice.passed_over {
            tracing::info!(server = %server_id, agent = %a.peer.bus_name, uid = a.uid,
                "SHOW not offered to an agent that is not the person at the device");
        }
        if choice.ask.is_empty() {
            tracing::info!(server = %server_id, "SHOW: no agent of the person at the device is registered");
            return Shown::NoAgent;
        }
        let agents = choice.ask;
        // The user sees the server's display name, never just an id.
        let name = crate::mo::account::load(self.store, server_id)
            .ok()
            .flatten()
            .map_or_else(|| server_id.to_owned(), |a| a.name);
        let mut failures = Vec::new();
        let mut all_gone = true;
        let args = (url, name.as_str());
        for agent in agents {
            let call = async {
                let agent = peer_proxy::<AgentProxy<'_>>(conn, &agent.peer).await?;
                agent.show(args.0, args.1).await
            };
            match tokio::time::timeout(self.show_timeout, call).await {
                Ok(Ok(())) => {
                    tracing::info!(server = %server_id, agent = %agent.peer.bus_name, uid = agent.uid, "SHOW handed to an agent");
                    return Shown::Launched;
                }
                Ok(Err(e)) if crate::dbus::error_name(&e).as_deref() == Some(DECLINED) => {
                    tracing::info!(server = %server_id, agent = %agent.peer.bus_name, "SHOW declined by the user");
                    return Shown::Declined;
                }
                Ok(Err(e)) => {
                    let text = e.to_string();
                    if peer_gone(&e) {
                        peers.forget(&agent.peer.bus_name);
                    } else {
                        all_gone = false;
                    }
                    tracing::warn!(agent = %agent.peer.bus_name, error = %text, "SHOW agent failed; trying the next");
                    failures.push(text);
                }
                Err(_) => {
                    all_gone = false;
                    tracing::warn!(agent = %agent.peer.bus_name, "SHOW agent did not answer in time; trying the next");
                    failures.push(format!("{} timed out", agent.peer.bus_name));
                }
            }
        }
        // Agents that had all left the bus are no agents: the server learns there is no
        // browser to show its page (501), not that one failed.
        if all_gone {
            Shown::NoAgent
        } else {
            Shown::Failed(failures.join("; "))
        }
    }

    async fn exec(&self, request: &ExecRequest) -> Executed {
        let Some((conn, peers)) = self.local else {
            return Executed::NoHandler;
        };
        let Some(handler) = peers.handler_for(&request.location.key.moid, &request.location.path)
        else {
            tracing::info!(server = %request.server_id, node = %request.client_uri, "EXEC: no handler is registered");
            return Executed::NoHandler;
        };
        let token = match token() {
            Ok(t) => t,
            Err(e) => return Executed::Failed(format!("no randomness for an EXEC token: {e}")),
        };
        // Recorded before the call, so an answer that comes back at once finds it.
        let pending = PendingExec {
            token,
            server_id: request.server_id.clone(),
            client_uri: request.client_uri.clone(),
            report_to: request.report_to.clone(),
            // A handler registered under a well-known name is answered for by that name,
            // whichever process owns it when the result is ready.
            handler: peers
                .durable_name(&handler.bus_name)
                .unwrap_or_else(|| handler.bus_name.clone()),
            created_at: 0,
        };
        if let Err(e) = self.store.apply(&[TreeOp::AddPendingExec(pending.clone())]) {
            return Executed::Failed(format!("cannot record the EXEC: {e}"));
        }
        let forget = || {
            if let Err(e) = self.store.apply(&[TreeOp::RemovePendingExec {
                token: pending.token.clone(),
            }]) {
                tracing::warn!(error = %e, "cannot forget a pending EXEC");
            }
        };
        let args = (
            pending.token.as_str(),
            request.client_uri.as_str(),
            request.server_id.as_str(),
        );
        let call = async {
            let handler = peer_proxy::<ExecHandlerProxy<'_>>(conn, &handler).await?;
            handler.exec(args.0, args.1, args.2).await
        };
        let reply = match tokio::time::timeout(self.exec_timeout, call).await {
            Err(_) => {
                forget();
                return Executed::Failed(format!(
                    "the handler {} did not answer within {:?}",
                    handler.bus_name, self.exec_timeout
                ));
            }
            Ok(Err(e)) => {
                forget();
                let text = e.to_string();
                if peer_gone(&e) {
                    tracing::warn!(handler = %handler.bus_name, "EXEC handler is gone; forgotten");
                    peers.forget(&handler.bus_name);
                }
                return Executed::Failed(format!("the handler failed: {text}"));
            }
            Ok(Ok(reply)) => reply,
        };
        match reply {
            (202, _) => {
                tracing::info!(node = %request.client_uri, token = %pending.token, "EXEC accepted; the handler reports later");
                Executed::Accepted
            }
            (status, alert_json) => {
                forget();
                let alert = (!alert_json.is_empty())
                    .then(|| serde_json::from_str::<Alert>(&alert_json).ok())
                    .flatten();
                Executed::Done {
                    status: u16::try_from(status).unwrap_or(500),
                    alert,
                }
            }
        }
    }
}
