//! Local peers the daemon calls: EXEC handlers by MOID, and SHOW agents. A peer is known by
//! its unique bus name, and forgotten when that name leaves the bus (or a call to it finds
//! it gone).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// What an EXEC handler registers for: a MOID (`urn:oma:mo:ext-acme-ops:1.0`), or a
/// subtree of every instance of one (`urn:oma:mo:ext-acme-ops:1.0//Ops/Reboot`). Returns
/// its canonical form, or why it is not one.
pub fn handler_target(target: &str) -> Result<String, String> {
    let (moid, sub) = target.split_once("//").unwrap_or((target, ""));
    if moid.is_empty() || !moid.starts_with("urn:") || moid.contains('/') {
        return Err(format!("{target:?} is not a MOID (urn:…) or MOID//path"));
    }
    let sub = sub.trim_end_matches('/');
    if target.contains("//") && sub.is_empty() {
        return Err(format!("{target:?} names no subtree after //"));
    }
    if sub
        .split('/')
        .any(|seg| seg.is_empty() && !sub.is_empty() || ["*", "?", ".", ".."].contains(&seg))
    {
        return Err(format!("{target:?}: the subtree must be a plain path"));
    }
    let moid = crate::mo::canonical_moid(moid);
    Ok(if sub.is_empty() {
        moid.to_owned()
    } else {
        format!("{moid}//{sub}")
    })
}

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
    /// polkit allowed the registration (the `register-agent` action: an active local
    /// session); false when polkit was not there to ask, or for root.
    pub vetted: bool,
}

#[derive(Debug, Default)]
struct Inner {
    handlers: BTreeMap<String, Peer>,
    /// Handlers that registered under a well-known bus name they own (unique name →
    /// well-known name): their accepted EXECs wait for that name, across restarts.
    durable: BTreeMap<String, String>,
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

    /// Registers (or replaces) the handler of a target (a [`handler_target`]); returns the
    /// handler it displaced, if another peer held the target.
    pub fn set_handler(&self, target: &str, peer: Peer) -> Option<Peer> {
        self.inner()
            .handlers
            .insert(target.to_owned(), peer.clone())
            .filter(|old| old.bus_name != peer.bus_name)
    }

    /// Removes a target's handler if `bus_name` owns it; true when it did.
    pub fn remove_handler(&self, target: &str, bus_name: &str) -> bool {
        let mut i = self.inner();
        if i.handlers
            .get(target)
            .is_some_and(|p| p.bus_name == bus_name)
        {
            i.handlers.remove(target);
            return true;
        }
        false
    }

    /// The handler of a node: the one registered for the deepest subtree holding it, else
    /// the one of its MO. `path` is the node's path from its instance root.
    pub fn handler_for(&self, moid: &str, path: &str) -> Option<Peer> {
        let i = self.inner();
        let mut prefix = path.trim_matches('/');
        loop {
            if prefix.is_empty() {
                return i.handlers.get(moid).cloned();
            }
            if let Some(p) = i.handlers.get(&format!("{moid}//{prefix}")) {
                return Some(p.clone());
            }
            prefix = prefix.rsplit_once('/').map_or("", |(head, _)| head);
        }
    }

    /// Records that the handler at `bus_name` registered under the well-known `name`.
    pub fn set_durable_name(&self, bus_name: &str, name: &str) {
        self.inner()
            .durable
            .insert(bus_name.to_owned(), name.to_owned());
    }

    /// The well-known name a handler registered under, if it did.
    pub fn durable_name(&self, bus_name: &str) -> Option<String> {
        self.inner().durable.get(bus_name).cloned()
    }

    /// The MOIDs `bus_name` handles EXECs of (for a whole MO or a subtree of it): the MOs
    /// it may keep current.
    pub fn handled_moids(&self, bus_name: &str) -> Vec<String> {
        let mut moids: Vec<String> = self
            .inner()
            .handlers
            .iter()
            .filter(|(_, p)| p.bus_name == bus_name)
            .map(|(target, _)| {
                target
                    .split_once("//")
                    .map_or(target.as_str(), |(m, _)| m)
                    .to_owned()
            })
            .collect();
        moids.dedup();
        moids
    }

    /// Forgets everything a vanished bus name had registered; true when there was some.
    pub fn forget(&self, bus_name: &str) -> bool {
        let mut i = self.inner();
        i.durable.remove(bus_name);
        let before = i.handlers.len() + i.agents.len();
        i.handlers.retain(|_, p| p.bus_name != bus_name);
        i.agents.retain(|a| a.peer.bus_name != bus_name);
        i.handlers.len() + i.agents.len() != before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(n: &str) -> Peer {
        Peer {
            bus_name: n.into(),
            path: "/h".into(),
        }
    }

    #[test]
    fn targets_are_moids_or_subtrees() {
        let rows: &[(&str, Result<&str, &str>)] = &[
            (
                "urn:oma:mo:ext-acme-ops:1.0",
                Ok("urn:oma:mo:ext-acme-ops:1.0"),
            ),
            (
                "urn:oma:mo:ext-acme-ops:1.0//Ops/Reboot",
                Ok("urn:oma:mo:ext-acme-ops:1.0//Ops/Reboot"),
            ),
            (
                "urn:oma:mo:ext-acme-ops:1.0//Ops/",
                Ok("urn:oma:mo:ext-acme-ops:1.0//Ops"),
            ),
            ("urn:oma:mo:ext-acme-ops:1.0//", Err("names no subtree")),
            ("urn:oma:mo:ext-acme-ops:1.0//Ops/*", Err("plain path")),
            ("urn:oma:mo:ext-acme-ops:1.0//Ops//X", Err("plain path")),
            ("urn:oma:mo:ext-acme-ops:1.0//../X", Err("plain path")),
            ("urn:oma:mo:ext-acme-ops:1.0/m1/Ops", Err("not a MOID")),
            ("", Err("not a MOID")),
            ("Ops/Reboot", Err("not a MOID")),
        ];
        for (target, want) in rows {
            match (handler_target(target), want) {
                (Ok(got), Ok(w)) => assert_eq!(&got, w, "{target}"),
                (Err(e), Err(w)) => assert!(e.contains(w), "{target}: {e}"),
                (got, w) => panic!("{target}: {got:?}, wanted {w:?}"),
            }
        }
    }

    #[test]
    fn the_deepest_registration_handles_a_node() {
        let p = Peers::default();
        let moid = "urn:x:mo:ops:1.0";
        assert_eq!(p.set_handler(moid, peer(":1.1")), None);
        assert_eq!(p.set_handler(&format!("{moid}//Ops"), peer(":1.2")), None);
        assert_eq!(
            p.set_handler(&format!("{moid}//Ops/Reboot"), peer(":1.9")),
            None
        );
        // Registering again is no displacement; taking another's target is, and says whose.
        assert_eq!(
            p.set_handler(&format!("{moid}//Ops/Reboot"), peer(":1.9")),
            None
        );
        assert_eq!(
            p.set_handler(&format!("{moid}//Ops/Reboot"), peer(":1.3")),
            Some(peer(":1.9"))
        );
        let rows = [
            ("Ops/Reboot", ":1.3"),
            ("Ops/Reboot/Now", ":1.3"),
            ("Ops/Rebooting", ":1.2"),
            ("Ops", ":1.2"),
            ("Other/Thing", ":1.1"),
            ("", ":1.1"),
        ];
        for (path, want) in rows {
            assert_eq!(p.handler_for(moid, path).unwrap().bus_name, want, "{path}");
        }
        assert!(p.handler_for("urn:x:mo:other:1.0", "Ops").is_none());
        assert!(p.forget(":1.3"));
        assert_eq!(p.handler_for(moid, "Ops/Reboot").unwrap().bus_name, ":1.2");
        assert!(
            !p.remove_handler(&format!("{moid}//Ops"), ":1.9"),
            "only its owner removes it"
        );
        assert!(p.remove_handler(&format!("{moid}//Ops"), ":1.2"));
        assert_eq!(p.handler_for(moid, "Ops/Reboot").unwrap().bus_name, ":1.1");
    }
}
