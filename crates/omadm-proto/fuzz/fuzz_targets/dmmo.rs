//! Fuzzes the `application/dmmo+json` decoder (HGET bodies, bootstrap files): it must never
//! panic, and what it accepts must survive an encode/decode round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use omadm_proto::dmmo::{Limits, decode, encode};

const LIMITS: Limits = Limits {
    max_bytes: 1 << 20,
    max_nodes: 10_000,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(items) = decode(data, LIMITS) {
        let again = decode(&encode(&items), LIMITS).expect("our own encoding decodes");
        assert_eq!(again, items);
    }
});
