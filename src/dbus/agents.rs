//! `org.omadm.Client1.AgentManager`: SHOW agents register here (linux-integration.md §3).
//! The daemon calls the chosen agent's `org.omadm.Client1.Agent.Show(url, server_name)`;
//! the URL never goes out in a broadcast signal.

use zbus::message::Header;
use zbus::{Connection, interface};

use super::peers::{Agent, Peer};
use super::{Error, Shared, caller_uid};

/// The AgentManager interface.
#[derive(Debug)]
pub struct AgentManager {
    shared: Shared,
}

impl AgentManager {
    /// Over the daemon's state.
    pub fn new(shared: Shared) -> AgentManager {
        AgentManager { shared }
    }
}

#[interface(name = "org.omadm.Client1.AgentManager")]
impl AgentManager {
    /// Registers the caller's object at `path` as a SHOW agent. Any local user may register
    /// for themselves (with polkit installed, only from an active local session); the
    /// most recent agent is asked first.
    async fn register_agent(
        &self,
        path: zbus::ObjectPath<'_>,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(), Error> {
        let uid = caller_uid(conn, &header).await?;
        let sender = header
            .sender()
            .ok_or_else(|| Error::AccessDenied("no sender".into()))?
            .to_string();
        tracing::info!(agent = %sender, uid, path = %path, "SHOW agent registered");
        self.shared.peers.add_agent(Agent {
            peer: Peer {
                bus_name: sender,
                path: path.to_string(),
            },
            uid,
        });
        Ok(())
    }

    /// Unregisters the caller's agent.
    async fn unregister_agent(&self, #[zbus(header)] header: Header<'_>) -> Result<(), Error> {
        let sender = header
            .sender()
            .ok_or_else(|| Error::AccessDenied("no sender".into()))?
            .to_string();
        if !self.shared.peers.remove_agent(&sender) {
            return Err(Error::NotFound("the caller has no agent registered".into()));
        }
        Ok(())
    }
}
