//! Package#0, the binary DM Notification (TS §7.1.1, §5.2.1): a 2-byte header (VER, OC)
//! and OC options, each a 4-bit delta, a 12-bit length and a value; big-endian, bit 0 the
//! most significant. Decoding, encoding, and the SHA256-DIGEST check.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::DecodeError;

/// The only notification format version (TS §7.1.1: VER MUST be 0x02).
pub const VERSION: u8 = 2;
/// Option numbers (TS Table 1).
pub mod option {
    /// SERVER-ID.
    pub const SERVER_ID: u8 = 1;
    /// PREFERRED-CON-TYPE.
    pub const PREFERRED_CON_TYPE: u8 = 2;
    /// NOTIFICATION-ID.
    pub const NOTIFICATION_ID: u8 = 3;
    /// SHA256-DIGEST.
    pub const SHA256_DIGEST: u8 = 4;
    /// TIMESTAMP.
    pub const TIMESTAMP: u8 = 5;
    /// REQ-MOS.
    pub const REQ_MOS: u8 = 6;
    /// START-WITHIN: omadmd's own option, not the TS's. A Uint of 1 to 4 bytes: the
    /// device starts the session at a random moment within that many seconds, so that a
    /// campaign notifying a whole fleet at once does not bring it all at once. 15 is the
    /// highest number one option delta reaches, the farthest from numbers a later TS
    /// would take. Send it only to devices known to run omadmd (DevInfo `Mod`/`DmV`): the
    /// TS does not say what other clients do with options it does not define.
    pub const START_WITHIN: u8 = 15;
}

/// PREFERRED-CON-TYPE values (TS §5.2.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConType {
    /// 0x00: any available connection (must come last).
    AnyAvailable,
    /// 0x01: cellular.
    Cellular,
    /// 0x02: WLAN.
    Wlan,
    /// 0x03: wireline.
    Wireline,
    /// A value the TS does not define.
    Other(u8),
}

impl ConType {
    fn from_byte(b: u8) -> ConType {
        match b {
            0 => ConType::AnyAvailable,
            1 => ConType::Cellular,
            2 => ConType::Wlan,
            3 => ConType::Wireline,
            b => ConType::Other(b),
        }
    }

    fn byte(self) -> u8 {
        match self {
            ConType::AnyAvailable => 0,
            ConType::Cellular => 1,
            ConType::Wlan => 2,
            ConType::Wireline => 3,
            ConType::Other(b) => b,
        }
    }
}

/// A decoded (or to-be-encoded) DM Notification.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notification {
    /// SERVER-ID (UTF-8).
    pub server_id: Option<String>,
    /// PREFERRED-CON-TYPE, highest priority first: one byte per preference (our reading
    /// of the one Opaque option, reference §7.1).
    pub preferred_con_types: Vec<ConType>,
    /// NOTIFICATION-ID.
    pub notification_id: Option<u16>,
    /// SHA256-DIGEST.
    pub digest: Option<[u8; 32]>,
    /// TIMESTAMP: seconds since the Unix epoch.
    pub timestamp: Option<u64>,
    /// REQ-MOS present.
    pub req_mos: bool,
    /// Options with numbers the TS does not define, kept as they came.
    pub unknown: Vec<(u8, Vec<u8>)>,
    /// Where the digest value starts in the decoded bytes (for verification).
    pub digest_offset: Option<usize>,
}

impl Notification {
    /// omadmd's START-WITHIN option ([`option::START_WITHIN`]), in seconds: `None` when
    /// absent, an error when it is not a Uint of 1 to 4 bytes.
    pub fn start_within_secs(&self) -> Result<Option<u32>, DecodeError> {
        let Some((_, v)) = self
            .unknown
            .iter()
            .find(|(n, _)| *n == option::START_WITHIN)
        else {
            return Ok(None);
        };
        if !(1..=4).contains(&v.len()) {
            return Err(DecodeError::new(
                format!("START-WITHIN must be 1 to 4 bytes, is {}", v.len()),
                "options",
            ));
        }
        Ok(Some(
            v.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)),
        ))
    }
}

fn err(what: impl Into<String>, at: usize) -> DecodeError {
    DecodeError::new(what, format!("byte {at}"))
}

/// Decodes a Package#0. Malformed input (wrong version, truncated options, options out of
/// order or repeated, wrong value lengths, trailing bytes) is refused.
pub fn decode(b: &[u8]) -> Result<Notification, DecodeError> {
    if b.len() < 2 {
        return Err(err("shorter than the 2-byte header", 0));
    }
    let ver = b[0] >> 4;
    if ver != VERSION {
        return Err(err(format!("VER is {ver}, not 2"), 0));
    }
    let oc = ((b[0] & 0x0F) << 1) | (b[1] >> 7);
    let mut n = Notification::default();
    let (mut at, mut number) = (2usize, 0u8);
    for i in 0..oc {
        let head = b
            .get(at..at + 2)
            .ok_or_else(|| err(format!("option {} of {oc} is missing", i + 1), at))?;
        let delta = head[0] >> 4;
        let len = (usize::from(head[0] & 0x0F) << 8) | usize::from(head[1]);
        if i > 0 && delta == 0 {
            return Err(err("option repeated (delta 0)", at));
        }
        number = number
            .checked_add(delta)
            .ok_or_else(|| err("option number overflows", at))?;
        let start = at + 2;
        let value = b.get(start..start + len).ok_or_else(|| {
            err(
                format!("option {number} says {len} bytes, fewer remain"),
                at,
            )
        })?;
        let fixed = |want: usize, name: &str| {
            if len == want {
                Ok(())
            } else {
                Err(err(format!("{name} must be {want} bytes, is {len}"), at))
            }
        };
        match number {
            option::SERVER_ID => {
                let s =
                    std::str::from_utf8(value).map_err(|_| err("SERVER-ID is not UTF-8", start))?;
                n.server_id = Some(s.to_owned());
            }
            option::PREFERRED_CON_TYPE => {
                n.preferred_con_types = value.iter().map(|&b| ConType::from_byte(b)).collect()
            }
            option::NOTIFICATION_ID => {
                fixed(2, "NOTIFICATION-ID")?;
                n.notification_id = Some(u16::from_be_bytes([value[0], value[1]]));
            }
            option::SHA256_DIGEST => {
                fixed(32, "SHA256-DIGEST")?;
                let mut d = [0u8; 32];
                d.copy_from_slice(value);
                n.digest = Some(d);
                n.digest_offset = Some(start);
            }
            option::TIMESTAMP => {
                // POSIX time; the width is not given (reference §15): 4 or 8 bytes.
                n.timestamp = Some(match len {
                    4 => u64::from(u32::from_be_bytes([value[0], value[1], value[2], value[3]])),
                    8 => u64::from_be_bytes(value.try_into().map_err(|_| err("TIMESTAMP", start))?),
                    _ => return Err(err(format!("TIMESTAMP must be 4 or 8 bytes, is {len}"), at)),
                });
            }
            option::REQ_MOS => {
                fixed(0, "REQ-MOS")?;
                n.req_mos = true;
            }
            0 => return Err(err("option number 0", at)),
            other => n.unknown.push((other, value.to_vec())),
        }
        at = start + len;
    }
    if at != b.len() {
        return Err(err(
            format!("{} bytes after the last option", b.len() - at),
            at,
        ));
    }
    Ok(n)
}

/// Encodes a notification (options in number order; the digest as given, or zeros).
pub fn encode(n: &Notification) -> Result<Vec<u8>, DecodeError> {
    let mut opts: Vec<(u8, Vec<u8>)> = Vec::new();
    if let Some(s) = &n.server_id {
        opts.push((option::SERVER_ID, s.as_bytes().to_vec()));
    }
    if !n.preferred_con_types.is_empty() {
        opts.push((
            option::PREFERRED_CON_TYPE,
            n.preferred_con_types.iter().map(|c| c.byte()).collect(),
        ));
    }
    if let Some(id) = n.notification_id {
        opts.push((option::NOTIFICATION_ID, id.to_be_bytes().to_vec()));
    }
    if let Some(d) = n.digest {
        opts.push((option::SHA256_DIGEST, d.to_vec()));
    }
    if let Some(t) = n.timestamp {
        opts.push((option::TIMESTAMP, t.to_be_bytes().to_vec()));
    }
    if n.req_mos {
        opts.push((option::REQ_MOS, Vec::new()));
    }
    opts.extend(n.unknown.iter().cloned());
    opts.sort_by_key(|(num, _)| *num);
    if opts.len() > 31 {
        return Err(DecodeError::new("more than 31 options", "header"));
    }
    let oc = opts.len() as u8;
    let mut out = vec![(VERSION << 4) | (oc >> 1), (oc & 1) << 7];
    let mut last = 0u8;
    for (num, value) in opts {
        let delta = num - last;
        if delta > 15 || (delta == 0 && last != 0) || value.len() > 4095 {
            return Err(DecodeError::new(
                format!("option {num} cannot be encoded"),
                "options",
            ));
        }
        out.push((delta << 4) | (value.len() >> 8) as u8);
        out.push((value.len() & 0xFF) as u8);
        out.extend_from_slice(&value);
        last = num;
    }
    Ok(out)
}

/// A notification to make up, for testing a device or a bridge.
#[derive(Debug, Clone, Default)]
pub struct Compose {
    /// SERVER-ID.
    pub server_id: String,
    /// NOTIFICATION-ID.
    pub notification_id: Option<u16>,
    /// REQ-MOS.
    pub req_mos: bool,
    /// The account's notification secret (`Auth/Noti/Secret`); unsigned without one.
    pub secret: Option<Vec<u8>>,
    /// The account's notification auth-data (`Auth/Noti/Data`).
    pub auth_data: Vec<u8>,
    /// Wrap it in a connectionless WAP Push (TS App. E.1).
    pub wap: bool,
    /// omadmd's START-WITHIN option, seconds ([`option::START_WITHIN`]).
    pub start_within_secs: Option<u32>,
}

/// Encodes a [`Compose`] with TIMESTAMP `timestamp` (seconds since the epoch), signed
/// when it has a secret (TS §5.2.1.2).
///
/// ```
/// use omadm_proto::package0::{Compose, compose, decode};
/// use omadm_proto::wap::unwrap;
///
/// let c = Compose { server_id: "dms1".into(), notification_id: Some(1), wap: true,
///     secret: Some(b"s".to_vec()), ..Default::default() };
/// let datagram = compose(&c, 1_700_000_000).unwrap();
/// let n = decode(unwrap(&datagram).unwrap()).unwrap();
/// assert_eq!((n.timestamp, n.digest.is_some()), (Some(1_700_000_000), true));
/// ```
pub fn compose(c: &Compose, timestamp: u64) -> Result<Vec<u8>, DecodeError> {
    let n = Notification {
        server_id: Some(c.server_id.clone()),
        notification_id: c.notification_id,
        timestamp: Some(timestamp),
        req_mos: c.req_mos,
        unknown: c
            .start_within_secs
            .map(|s| (option::START_WITHIN, s.to_be_bytes().to_vec()))
            .into_iter()
            .collect(),
        ..Default::default()
    };
    let bytes = match &c.secret {
        Some(secret) => encode_signed(&n, secret, &c.auth_data)?,
        None => encode(&n)?,
    };
    Ok(if c.wap {
        crate::wap::wrap(&bytes, 1)
    } else {
        bytes
    })
}

/// `SHA-256(server-secret | message | auth-data)` (TS §5.2.1.2), over `message` as given.
pub fn compute_digest(secret: &[u8], message: &[u8], auth_data: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(secret);
    h.update(message);
    h.update(auth_data);
    h.finalize().into()
}

/// Encodes `n` with its SHA256-DIGEST computed from the credentials, as a server does.
pub fn encode_signed(
    n: &Notification,
    secret: &[u8],
    auth_data: &[u8],
) -> Result<Vec<u8>, DecodeError> {
    let mut zeroed = n.clone();
    zeroed.digest = Some([0; 32]);
    let mut bytes = encode(&zeroed)?;
    let digest = compute_digest(secret, &bytes, auth_data);
    let at = decode(&bytes)?
        .digest_offset
        .ok_or_else(|| DecodeError::new("no digest", "options"))?;
    bytes[at..at + 32].copy_from_slice(&digest);
    Ok(bytes)
}

/// Checks the SHA256-DIGEST of the raw notification `bytes` (decoded as `n`) in constant
/// time. False when it has no digest.
pub fn verify(bytes: &[u8], n: &Notification, secret: &[u8], auth_data: &[u8]) -> bool {
    let (Some(digest), Some(at)) = (n.digest, n.digest_offset) else {
        return false;
    };
    let mut zeroed = bytes.to_vec();
    zeroed[at..at + 32].fill(0);
    let want = compute_digest(secret, &zeroed, auth_data);
    want.ct_eq(&digest).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Notification {
        Notification {
            server_id: Some("DMS_ID1".into()),
            preferred_con_types: vec![ConType::Wlan, ConType::AnyAvailable],
            notification_id: Some(0xBEEF),
            timestamp: Some(1_795_000_000),
            req_mos: true,
            ..Default::default()
        }
    }

    #[test]
    fn start_within_is_a_signed_uint_of_one_to_four_bytes() {
        let c = Compose {
            server_id: "dms".into(),
            secret: Some(b"k".to_vec()),
            start_within_secs: Some(300),
            ..Default::default()
        };
        let bytes = compose(&c, 1_795_000_000).unwrap();
        let n = decode(&bytes).unwrap();
        // After the TS's options, covered by the digest like them.
        assert_eq!(
            n.unknown,
            vec![(option::START_WITHIN, 300u32.to_be_bytes().to_vec())]
        );
        assert_eq!(n.start_within_secs().unwrap(), Some(300));
        assert!(verify(&bytes, &n, b"k", b""));
        for (value, want) in [
            (vec![7u8], Ok(Some(7))),
            (vec![1, 0], Ok(Some(256))),
            (vec![0xFF; 4], Ok(Some(u32::MAX))),
            (vec![], Err(())),
            (vec![0; 5], Err(())),
        ] {
            let n = Notification {
                unknown: vec![(option::START_WITHIN, value)],
                ..Default::default()
            };
            assert_eq!(n.start_within_secs().map_err(|_| ()), want);
        }
        assert_eq!(sample().start_within_secs().unwrap(), None);
    }

    #[test]
    fn header_and_option_layout_bit_by_bit() {
        let n = Notification {
            server_id: Some("ab".into()),
            notification_id: Some(0x0102),
            req_mos: true,
            ..Default::default()
        };
        let b = encode(&n).unwrap();
        // VER=2, OC=3: 0010 0001 | 1000 0000.
        assert_eq!(&b[..2], &[0x21, 0x80]);
        // SERVER-ID: delta 1, length 2, "ab".
        assert_eq!(&b[2..6], &[0x10, 0x02, b'a', b'b']);
        // NOTIFICATION-ID: delta 2 (3 - 1), length 2, 0x0102.
        assert_eq!(&b[6..10], &[0x20, 0x02, 0x01, 0x02]);
        // REQ-MOS: delta 3 (6 - 3), length 0, no value.
        assert_eq!(&b[10..], &[0x30, 0x00]);
        assert_eq!(decode(&b).unwrap(), n);
        // A 300-byte option uses the length's high nibble.
        let long = Notification {
            server_id: Some("x".repeat(300)),
            ..Default::default()
        };
        let b = encode(&long).unwrap();
        assert_eq!(&b[2..4], &[0x11, 0x2C]);
        assert_eq!(decode(&b).unwrap(), long);
    }

    #[test]
    fn every_option_round_trips() {
        let mut n = sample();
        n.digest = Some([7; 32]);
        n.unknown = vec![(9, vec![1, 2, 3])];
        let b = encode(&n).unwrap();
        let mut back = decode(&b).unwrap();
        assert!(back.digest_offset.is_some());
        back.digest_offset = None;
        assert_eq!(back, n);
        // A 4-byte TIMESTAMP is read too.
        let b = [0x20, 0x80, 0x50, 0x04, 0x6A, 0xFD, 0x0C, 0x80];
        assert_eq!(decode(&b).unwrap().timestamp, Some(0x6AFD_0C80));
    }

    #[test]
    fn signed_notifications_verify_and_one_bit_breaks_them() {
        let (secret, data) = (b"server-secret".as_slice(), b"auth-data".as_slice());
        let b = encode_signed(&sample(), secret, data).unwrap();
        let n = decode(&b).unwrap();
        assert!(verify(&b, &n, secret, data));
        assert!(!verify(&b, &n, b"other-secret", data));
        assert!(!verify(&b, &n, secret, b"other-data"));
        // Flip every bit in turn: each flip either fails to decode or fails to verify.
        for i in 0..b.len() * 8 {
            let mut bad = b.clone();
            bad[i / 8] ^= 1 << (i % 8);
            if let Ok(n2) = decode(&bad) {
                assert!(
                    !verify(&bad, &n2, secret, data),
                    "bit {i} flipped and still verified"
                );
            }
        }
        // No digest: nothing verifies.
        let plain = encode(&sample()).unwrap();
        assert!(!verify(&plain, &decode(&plain).unwrap(), secret, data));
        // The digest is SHA-256(secret | message with zero digest | data).
        let mut zeroed = b.clone();
        let at = n.digest_offset.unwrap();
        zeroed[at..at + 32].fill(0);
        let mut h = Sha256::new();
        h.update([secret, &zeroed, data].concat());
        assert_eq!(n.digest.unwrap(), <[u8; 32]>::from(h.finalize()));
    }

    #[test]
    fn malformed_notifications_are_refused() {
        let good = encode(&sample()).unwrap();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![], "shorter"),
            (vec![0x20], "shorter"),
            (vec![0x10, 0x00], "VER is 1"),
            (vec![0x30, 0x00], "VER is 3"),
            (vec![0x20, 0x80], "missing"),
            (vec![0x20, 0x80, 0x10, 0x05, b'a'], "fewer remain"),
            (vec![0x20, 0x00, 0x00], "after the last option"),
            (good[..good.len() - 1].to_vec(), "missing"),
            ([good.clone(), vec![0]].concat(), "after the last option"),
            (
                vec![0x21, 0x00, 0x10, 0x01, b'a', 0x00, 0x01, b'b'],
                "repeated",
            ),
            (vec![0x20, 0x80, 0x00, 0x00], "option number 0"),
            (
                vec![0x20, 0x80, 0x30, 0x01, 0x01],
                "NOTIFICATION-ID must be 2 bytes",
            ),
            (
                vec![0x20, 0x80, 0x40, 0x01, 0x01],
                "SHA256-DIGEST must be 32 bytes",
            ),
            (
                vec![0x20, 0x80, 0x50, 0x02, 0x01, 0x02],
                "TIMESTAMP must be 4 or 8",
            ),
            (
                vec![0x20, 0x80, 0x60, 0x01, 0x00],
                "REQ-MOS must be 0 bytes",
            ),
            (vec![0x20, 0x80, 0x10, 0x01, 0xFF], "not UTF-8"),
        ];
        for (bytes, want) in cases {
            let e = decode(&bytes).unwrap_err();
            assert!(e.what.contains(want), "{bytes:02x?}: {e}");
        }
    }

    proptest::proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..128)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn encode_decode_round_trip(
            sid in proptest::option::of("\\PC{0,40}"),
            cons in proptest::collection::vec(0u8..6, 0..4),
            id in proptest::option::of(proptest::prelude::any::<u16>()),
            ts in proptest::option::of(proptest::prelude::any::<u64>()),
            req in proptest::prelude::any::<bool>(),
        ) {
            let n = Notification {
                server_id: sid,
                preferred_con_types: cons.into_iter().map(ConType::from_byte).collect(),
                notification_id: id,
                timestamp: ts,
                req_mos: req,
                ..Default::default()
            };
            proptest::prop_assert_eq!(decode(&encode(&n).unwrap()).unwrap(), n);
        }
    }
}
