//! Fuzzes the HTTP authentication challenge parser (`WWW-Authenticate` of a 401): any bytes
//! a server sends as header values must never panic it, nor answering what it accepts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use omadmd::transport::http::{Challenge, challenge};
use reqwest::header::HeaderValue;

fuzz_target!(|data: &[u8]| {
    // Several header values, split at NUL bytes.
    let values: Vec<HeaderValue> = data
        .split(|&b| b == 0)
        .filter_map(|v| HeaderValue::from_bytes(v).ok())
        .collect();
    if let Some(Challenge::Digest(mut prompt)) = challenge(&values) {
        let ctx = digest_auth::AuthContext::new_post("user", "pass", "/dm?x=1", Some(b"body"));
        let _ = prompt.respond(&ctx);
    }
});
