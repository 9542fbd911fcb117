//! `org.omadm.Client1.AgentManager`: SHOW agents register here (linux-integration.md §3).
//! The daemon calls the chosen agent's `org.omadm.Client1.Agent.Show(url, server_name)`;
//! the URL never goes out in a broadcast signal.

use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zbus::{Connection, interface};

use super::peers::{Agent, Peer};
use super::{Action, Error, Shared, authorize_caller};

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
    /// for themselves: with polkit, from an active local session (the `register-agent`
    /// action). A SHOW goes only to agents of the person at the device: root's, the active
    /// session on seat0's (logind), and those polkit let in from another active local
    /// session while nobody else sits in front (`logind::choose`).
    async fn register_agent(
        &self,
        path: zbus::ObjectPath<'_>,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<(), Error> {
        let caller = authorize_caller(conn, &header, Action::RegisterAgent).await?;
        let uid = caller.uid;
        let sender = header
            .sender()
            .ok_or_else(|| Error::AccessDenied("no sender".into()))?;
        let pid = zbus::fdo::DBusProxy::new(conn)
            .await?
            .get_connection_unix_process_id(sender.clone().into())
            .await
            .map_err(|e| Error::AccessDenied(format!("cannot identify the caller: {e}")))?;
        tracing::info!(agent = %sender, uid, pid, path = %path, "SHOW agent registered");
        self.shared.peers.add_agent(Agent {
            peer: Peer {
                bus_name: sender.to_string(),
                path: path.to_string(),
            },
            uid,
            pid,
            vetted: caller.by_polkit,
        });
        self.agent_count_changed(&emitter).await?;
        Ok(())
    }

    /// Unregisters the caller's agent.
    async fn unregister_agent(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<(), Error> {
        let sender = header
            .sender()
            .ok_or_else(|| Error::AccessDenied("no sender".into()))?
            .to_string();
        if !self.shared.peers.remove_agent(&sender) {
            return Err(Error::NotFound("the caller has no agent registered".into()));
        }
        self.agent_count_changed(&emitter).await?;
        Ok(())
    }

    /// Whether SHOW may open plain http URLs (`sessions.allow-http-show`); agents refuse
    /// other http URLs themselves.
    #[zbus(property)]
    fn allow_http_show(&self) -> bool {
        self.shared.allow_http_show
    }

    /// How many SHOW agents are registered (0: a SHOW now would tell the server there is
    /// no browser). Changes are signalled with `PropertiesChanged`.
    #[zbus(property)]
    fn agent_count(&self) -> u32 {
        u32::try_from(self.shared.peers.agents().len()).unwrap_or(u32::MAX)
    }
}
