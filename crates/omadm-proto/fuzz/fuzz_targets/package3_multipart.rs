//! Fuzzes the multipart Package#3 reader (servers and the test server read it): it must
//! never panic; what it accepts re-encodes, and when every part's content type is a media
//! type, decodes back to the same package and parts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use omadm_proto::packages::{decode_package3_http, encode_package3_http};

fuzz_target!(|data: &[u8]| {
    // The first line is the Content-Type header, the rest the body.
    let (ct, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (
            String::from_utf8_lossy(&data[..i]).into_owned(),
            &data[i + 1..],
        ),
        None => ("multipart/form-data; boundary=b".to_owned(), data),
    };
    if let Ok((p3, parts)) = decode_package3_http(&ct, body)
        && !parts.is_empty()
        && let Ok((ct2, body2)) = encode_package3_http(&p3, &parts)
    {
        let (p3b, partsb) = decode_package3_http(&ct2, &body2).expect("our own encoding");
        assert_eq!(p3b, p3);
        assert_eq!(partsb, parts);
    }
});
