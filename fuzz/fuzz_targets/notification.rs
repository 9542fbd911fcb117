//! Fuzzes the notification check as the UDP listener runs it: WAP Push unwrapping, the
//! Package#0 decoder, the account found in memory, digest verification and the age check,
//! against a real store with a signed and an unsigned account. Never a panic.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use omadmd::mo::Registry;
use omadmd::mo::account::Directory;
use omadmd::mo::bootstrap::{BootstrapLimits, apply_document};
use omadmd::notify::{Policy, verify};
use omadmd::tree::{OpenMode, SqliteStore};

const POLICY: Policy = Policy {
    max_age_secs: 600,
    remember_secs: 86_400,
    start_within_secs: 0,
};

fn world() -> &'static (tempfile::TempDir, SqliteStore, Directory) {
    static WORLD: OnceLock<(tempfile::TempDir, SqliteStore, Directory)> = OnceLock::new();
    WORLD.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("tree.db"), OpenMode::ReadWrite).expect("store");
        let doc = br#"[
          {"ClientURI": "urn:oma:mo:oma-dm-dmacc:1.2//", "MOData": {"a": {"SrvID": "dms1", "SrvURI": "https://a/dm", "Name": "A", "Perm": {"p": {"MOID": "*"}},
            "Auth": {"Noti": {"Type": 0, "Data": "ZGF0YQ==", "Secret": "c2VjcmV0"}}}}},
          {"ClientURI": "urn:oma:mo:oma-dm-dmacc:1.2//", "MOData": {"b": {"SrvID": "s", "SrvURI": "https://b/dm", "Name": "B", "Perm": {"p": {"MOID": "*"}}}}}
        ]"#;
        let limits = BootstrapLimits { max_file_bytes: 1 << 20, max_value_bytes: 1024, max_nodes: 100 };
        apply_document(&store, &Registry::builtin(), "fuzz", doc, limits).expect("accounts");
        (dir, store, Directory::default())
    })
}

fuzz_target!(|data: &[u8]| {
    let (_, store, accounts) = world();
    let _ = verify(store, accounts, data, POLICY);
});
