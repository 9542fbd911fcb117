//! Fuzzes the ClientURI parser: it must never panic, no accepted URI may carry a
//! dot-segment or an empty segment, and an accepted URI's display form parses back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use omadm_proto::uri::{ClientUri, Segment};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(u) = ClientUri::parse(s) {
        for seg in &u.path {
            if let Segment::Name(n) = seg {
                assert!(
                    !n.is_empty() && n != "." && n != ".." && !n.contains('/') && !n.contains('%')
                );
            }
        }
        let again = ClientUri::parse(&u.to_string()).expect("display form parses");
        assert_eq!(
            (again.moid, again.instance, again.path),
            (u.moid, u.instance, u.path)
        );
    }
});
