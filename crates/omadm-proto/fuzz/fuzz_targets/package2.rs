//! Fuzzes the Package#2 decoder: it must never panic, and what it accepts must survive
//! an encode/decode round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use omadm_proto::packages::{P2Limits, decode_package2, encode_package2};

const LIMITS: P2Limits = P2Limits {
    max_bytes: 1 << 20,
    max_commands: 1000,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(cmds) = decode_package2(data, LIMITS) {
        let bytes = encode_package2(&cmds);
        let again = decode_package2(&bytes, LIMITS).expect("our own encoding decodes");
        // Malformed and unknown commands keep their name only; known ones round-trip.
        assert_eq!(again.len(), cmds.len());
    }
});
