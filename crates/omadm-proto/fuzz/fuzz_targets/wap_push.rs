//! Fuzzes the connectionless WAP Push unwrapping in front of the Package#0 decoder: it must
//! never panic, and what it returns is the tail of the datagram.
#![no_main]

use libfuzzer_sys::fuzz_target;
use omadm_proto::wap::{unwrap, wrap};

fuzz_target!(|data: &[u8]| {
    if let Ok(body) = unwrap(data) {
        assert!(data.ends_with(body));
    }
    // What we wrap unwraps to itself (whenever the body is not itself a push).
    if data.get(1) != Some(&0x06) {
        assert_eq!(unwrap(&wrap(data, 1)).expect("our own push"), data);
    }
});
