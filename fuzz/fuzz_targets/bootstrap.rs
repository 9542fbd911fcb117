//! Fuzzes bootstrap planning (factory bootstrap files, later the admin's): any document is
//! planned or refused with an error, against a real store, never panics.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use omadmd::mo::Registry;
use omadmd::mo::bootstrap::{BootstrapLimits, plan_document};
use omadmd::tree::{OpenMode, SqliteStore};

const LIMITS: BootstrapLimits = BootstrapLimits {
    max_file_bytes: 1 << 20,
    max_value_bytes: 4096,
    max_nodes: 10_000,
};

fn world() -> &'static (tempfile::TempDir, SqliteStore, Registry) {
    static WORLD: OnceLock<(tempfile::TempDir, SqliteStore, Registry)> = OnceLock::new();
    WORLD.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let store =
            SqliteStore::open(&dir.path().join("tree.db"), OpenMode::ReadWrite).expect("store");
        (dir, store, Registry::builtin())
    })
}

fuzz_target!(|data: &[u8]| {
    let (_, store, reg) = world();
    let _ = plan_document(store, reg, "fuzz", data, LIMITS);
});
