//! The daemon's long-lived state that start-up prepares and both the scheduling loop and
//! the D-Bus face use: it sits below both, so neither reaches into the other.

use std::sync::{Arc, RwLock};

use crate::host::Host;
use crate::mo::Registry;
use crate::mo::handlers::HandlerDefs;
use crate::tree::SqliteStore;

/// Everything start-up prepared: the daemon's long-lived state.
#[derive(Debug)]
pub struct Prepared {
    /// The tree store.
    pub store: SqliteStore,
    /// MO definitions: the shipped ones and those of the DDF directories, read again by a
    /// reload (a handler package installed since the start brings its MO's DDF).
    pub registry: Current<Registry>,
    /// Handler definitions: who may handle which MO (`mo::handlers`), read again by a
    /// reload like the DDFs.
    pub handlers: Current<HandlerDefs>,
    /// The machine.
    pub host: Host,
    /// The accounts in memory and the spacing of notification-triggered sessions, shared
    /// by the UDP listener and D-Bus.
    pub gate: crate::notify::Gate,
    /// The bootstrap files refused at the last start or reload: (file name, why), shown by
    /// `omadmctl status` (D-Bus `BootstrapRefused`).
    pub bootstrap_refused: std::sync::Mutex<Vec<(String, String)>>,
}

/// Definitions a reload replaces (the MO definitions, the handler definitions). A session,
/// a D-Bus call or a bootstrap takes the current set ([`Current::get`]) and works with it
/// to its end; a reload puts a new set in place for those that start after it.
#[derive(Debug)]
pub struct Current<T>(RwLock<Arc<T>>);

impl<T> Current<T> {
    /// Starting with `value`.
    pub fn new(value: T) -> Current<T> {
        Current(RwLock::new(Arc::new(value)))
    }

    /// The set in force now.
    pub fn get(&self) -> Arc<T> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Puts `value` in force; returns the set it replaced.
    pub fn replace(&self, value: T) -> Arc<T> {
        std::mem::replace(
            &mut *self.0.write().unwrap_or_else(|p| p.into_inner()),
            Arc::new(value),
        )
    }
}
