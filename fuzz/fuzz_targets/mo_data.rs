//! Fuzzes what an HGET body goes through in the engine: dmmo+json decoding, then typing
//! the data against the shipped DDFs (DevInfo, DMAcc, DACMO, SessionInfo) and against no
//! DDF; and a raw leaf body parsed as a value of each format. Never a panic; what is
//! accepted holds only valid node names, parents first, and raw values print back.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use omadmd::mo::{Registry, build_nodes};
use omadmd::protocol::dmmo::{Limits, decode};
use omadmd::tree::{Format, Value};

fn registry() -> &'static Registry {
    static REG: OnceLock<Registry> = OnceLock::new();
    REG.get_or_init(Registry::builtin)
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    // A raw leaf body (TS App. I.2: text/plain into a leaf).
    if let Ok(text) = std::str::from_utf8(body) {
        let format = Format::ALL[usize::from(pick) % Format::ALL.len()];
        if let Ok(v) = Value::from_text(format, text) {
            let _ = (v.to_text(), v.to_json(), v.size());
        }
    }
    let Ok(items) = decode(
        body,
        Limits {
            max_bytes: 1 << 20,
            max_nodes: 10_000,
        },
    ) else {
        return;
    };
    let defs: Vec<_> = registry().iter().collect();
    for item in items {
        let def = defs.get(usize::from(pick) % (defs.len() + 1));
        let moid = def.map_or("urn:x:fuzz:1.0", |d| d.def.moid.as_str());
        if let Ok(nodes) = build_nodes(moid, def.map(|d| &d.def.root), "", &item.data, 4096) {
            assert_eq!(nodes.first().map(|n| n.path.as_str()), Some(""));
            for n in &nodes[1..] {
                let name = n.path.rsplit('/').next().unwrap_or_default();
                assert!(omadmd::tree::is_node_name(name), "{:?}", n.path);
            }
        }
    }
});
