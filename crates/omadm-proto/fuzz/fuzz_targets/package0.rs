//! Fuzzes the Package#0 decoder: it must never panic, and whatever it accepts must
//! re-encode to a notification that decodes to the same thing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use omadm_proto::package0::{decode, encode, verify};

fuzz_target!(|data: &[u8]| {
    if let Ok(n) = decode(data) {
        let _ = verify(data, &n, b"secret", b"data");
        let mut n = n;
        n.digest_offset = None;
        if let Ok(bytes) = encode(&n) {
            let mut again = decode(&bytes).expect("our own encoding decodes");
            again.digest_offset = None;
            assert_eq!(again, n);
        }
    }
});
