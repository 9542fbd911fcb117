//! The daemon's implementation of the engine's [`Ports`]: the Data Repository over HTTP(S).
//! SHOW and EXEC reach local agents and handlers over D-Bus; until one registers, SHOW
//! answers "no Web Browser Component" (501) and EXEC "not executable here" (405), never a
//! silent success.

use crate::engine::{ExecRequest, Executed, Fetched, Method, PortError, Ports, Sent, Shown};
use crate::transport::HttpClient;

/// Ports backed by one session's HTTP client.
#[derive(Debug)]
pub struct DaemonPorts {
    /// The session's client (its cookies, TLS settings).
    pub http: HttpClient,
}

impl Ports for DaemonPorts {
    async fn fetch(&self, url: &str, accept: &[&str]) -> Result<Fetched, PortError> {
        self.http.fetch(url, accept).await
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

    async fn show(&self, url: &str, server_id: &str) -> Shown {
        tracing::info!(server = %server_id, url = %url, "SHOW: no agent is registered");
        Shown::NoAgent
    }

    async fn exec(&self, request: &ExecRequest) -> Executed {
        tracing::info!(server = %request.server_id, node = %request.client_uri, "EXEC: no handler is registered");
        Executed::NoHandler
    }
}
