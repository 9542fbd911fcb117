//! Local peers the daemon calls: EXEC handlers by MOID, and SHOW agents. A peer is known by
//! its unique bus name, and forgotten when that name leaves the bus (or a call to it finds
//! it gone).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Where a peer's object lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Unique bus name (`:1.42`).
    pub bus_name: String,
    /// Object path of its handler object.
    pub path: String,
}

/// A SHOW agent: a peer, and the unix user it runs as (from the bus).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    /// Where it is.
    pub peer: Peer,
    /// Its unix user.
    pub uid: u32,
    /// Its process, by which logind knows its session.
    pub pid: u32,
}

#[derive(Debug, Default)]
struct Inner {
    handlers: BTreeMap<String, Peer>,
    /// Agents, most recently registered last.
    agents: Vec<Agent>,
}

/// The registered EXEC handlers and SHOW agents, shared by the D-Bus interfaces and the
/// daemon's ports.
#[derive(Debug, Clone, Default)]
pub struct Peers(Arc<Mutex<Inner>>);

impl Peers {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers an agent (one per bus name; registering again moves it to the front).
    pub fn add_agent(&self, agent: Agent) {
        let mut i = self.inner();
        i.agents.retain(|a| a.peer.bus_name != agent.peer.bus_name);
        i.agents.push(agent);
    }

    /// Unregisters the agent of a bus name; true when there was one.
    pub fn remove_agent(&self, bus_name: &str) -> bool {
        let mut i = self.inner();
        let before = i.agents.len();
        i.agents.retain(|a| a.peer.bus_name != bus_name);
        i.agents.len() != before
    }

    /// The agents in the order to try them: the most recently registered first.
    pub fn agents(&self) -> Vec<Agent> {
        self.inner().agents.iter().rev().cloned().collect()
    }

    /// Registers (or replaces) the handler of a MOID.
    pub fn set_handler(&self, moid: &str, peer: Peer) {
        self.inner().handlers.insert(moid.to_owned(), peer);
    }

    /// Removes a MOID's handler if `bus_name` owns it; true when it did.
    pub fn remove_handler(&self, moid: &str, bus_name: &str) -> bool {
        let mut i = self.inner();
        if i.handlers.get(moid).is_some_and(|p| p.bus_name == bus_name) {
            i.handlers.remove(moid);
            return true;
        }
        false
    }

    /// The handler of a MOID.
    pub fn handler(&self, moid: &str) -> Option<Peer> {
        self.inner().handlers.get(moid).cloned()
    }

    /// Forgets everything a vanished bus name had registered; true when there was some.
    pub fn forget(&self, bus_name: &str) -> bool {
        let mut i = self.inner();
        let before = i.handlers.len() + i.agents.len();
        i.handlers.retain(|_, p| p.bus_name != bus_name);
        i.agents.retain(|a| a.peer.bus_name != bus_name);
        i.handlers.len() + i.agents.len() != before
    }
}
