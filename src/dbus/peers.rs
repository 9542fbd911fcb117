//! Local peers the daemon calls: EXEC handlers by MOID. A peer is known by its unique bus
//! name; one whose name vanished is forgotten when a call to it fails.

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

/// The registered EXEC handlers, shared by the D-Bus interface and the daemon's ports.
#[derive(Debug, Clone, Default)]
pub struct Peers(Arc<Mutex<BTreeMap<String, Peer>>>);

impl Peers {
    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Peer>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers (or replaces) the handler of a MOID.
    pub fn set_handler(&self, moid: &str, peer: Peer) {
        self.map().insert(moid.to_owned(), peer);
    }

    /// Removes a MOID's handler if `bus_name` owns it; true when it did.
    pub fn remove_handler(&self, moid: &str, bus_name: &str) -> bool {
        let mut m = self.map();
        if m.get(moid).is_some_and(|p| p.bus_name == bus_name) {
            m.remove(moid);
            return true;
        }
        false
    }

    /// The handler of a MOID.
    pub fn handler(&self, moid: &str) -> Option<Peer> {
        self.map().get(moid).cloned()
    }

    /// Forgets everything a vanished bus name had registered.
    pub fn forget(&self, bus_name: &str) {
        self.map().retain(|_, p| p.bus_name != bus_name);
    }
}
