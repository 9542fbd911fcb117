//! The daemon's long-lived state that start-up prepares and both the scheduling loop and
//! the D-Bus face use: it sits below both, so neither reaches into the other.

use crate::host::Host;
use crate::mo::Registry;
use crate::tree::SqliteStore;

/// Everything start-up prepared: the daemon's long-lived state.
#[derive(Debug)]
pub struct Prepared {
    /// The tree store.
    pub store: SqliteStore,
    /// MO definitions.
    pub registry: Registry,
    /// The machine.
    pub host: Host,
    /// The accounts in memory and the spacing of notification-triggered sessions, shared
    /// by the UDP listener and D-Bus.
    pub gate: crate::notify::Gate,
    /// The bootstrap files refused at the last start or reload: (file name, why), shown by
    /// `omadmctl status` (D-Bus `BootstrapRefused`).
    pub bootstrap_refused: std::sync::Mutex<Vec<(String, String)>>,
}
