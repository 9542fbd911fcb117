//! Fuzzes the DDF (MO definition) parser: a bad file in a DDF directory must be refused,
//! never panic or overflow the stack at start-up.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(xml) = std::str::from_utf8(data)
        && let Ok(def) = omadmd::mo::ddf::parse(xml)
    {
        assert!(!def.moid.is_empty());
    }
});
