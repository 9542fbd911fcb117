//! The daemon's long-lived state that start-up prepares and both the scheduling loop and
//! the D-Bus face use: it sits below both, so neither reaches into the other.

use std::sync::{Arc, RwLock};

use crate::host::Host;
use crate::mo::Registry;
use crate::tree::SqliteStore;

/// Everything start-up prepared: the daemon's long-lived state.
#[derive(Debug)]
pub struct Prepared {
    /// The tree store.
    pub store: SqliteStore,
    /// MO definitions: the shipped ones and those of the DDF directories, read again by a
    /// reload (a handler package installed since the start brings its MO's DDF).
    pub registry: Definitions,
    /// The machine.
    pub host: Host,
    /// The accounts in memory and the spacing of notification-triggered sessions, shared
    /// by the UDP listener and D-Bus.
    pub gate: crate::notify::Gate,
    /// The bootstrap files refused at the last start or reload: (file name, why), shown by
    /// `omadmctl status` (D-Bus `BootstrapRefused`).
    pub bootstrap_refused: std::sync::Mutex<Vec<(String, String)>>,
}

/// The MO definitions in force. A session, a D-Bus call or a bootstrap takes the current
/// set ([`Definitions::current`]) and works with it to its end; a reload puts a new set in
/// place for those that start after it.
#[derive(Debug)]
pub struct Definitions(RwLock<Arc<Registry>>);

impl Definitions {
    /// Definitions starting with `registry`.
    pub fn new(registry: Registry) -> Definitions {
        Definitions(RwLock::new(Arc::new(registry)))
    }

    /// The set in force now.
    pub fn current(&self) -> Arc<Registry> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Puts `registry` in force; returns the set it replaced.
    pub fn replace(&self, registry: Registry) -> Arc<Registry> {
        std::mem::replace(
            &mut *self.0.write().unwrap_or_else(|p| p.into_inner()),
            Arc::new(registry),
        )
    }
}
