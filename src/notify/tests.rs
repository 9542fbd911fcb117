//! Tests of notification checks: digests, replays across restarts, staleness, unknown
//! servers, and WAP Push framing.

use serde_json::json;

use super::*;
use crate::mo::Registry;
use crate::mo::bootstrap::{BootstrapLimits, apply_document};
use crate::protocol::package0::{Notification, encode, encode_signed};
use crate::protocol::wap::wrap;
use crate::tree::{Journal as _, OpenMode, SqliteStore};

const POLICY: Policy = Policy {
    max_age_secs: 600,
    remember_secs: 86_400,
    start_within_secs: 0,
};
const SECRET: &[u8] = b"server-secret";
const DATA: &[u8] = b"auth-data";

fn store(dir: &std::path::Path) -> SqliteStore {
    let s = SqliteStore::open(&dir.join("t.db"), OpenMode::ReadWrite).unwrap();
    use base64::Engine as _;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let doc = json!([
        {"ClientURI": "urn:oma:mo:oma-dm-dmacc:1.2//", "MOData": {"signed": {"SrvID": "dms1", "SrvURI": "https://a/dm", "Name": "A", "Perm": {"p": {"MOID": "*"}},
            "Auth": {"Noti": {"Type": 0, "Data": b64(DATA), "Secret": b64(SECRET)}}}}},
        {"ClientURI": "urn:oma:mo:oma-dm-dmacc:1.2//", "MOData": {"open": {"SrvID": "dms2", "SrvURI": "https://b/dm", "Name": "B", "Perm": {"p": {"MOID": "*"}}}}}
    ]);
    apply_document(
        &s,
        &Registry::builtin(),
        "b",
        doc.to_string().as_bytes(),
        BootstrapLimits {
            max_file_bytes: 1 << 20,
            max_value_bytes: 1024,
            max_nodes: 100,
        },
    )
    .unwrap();
    s
}

fn note(server: &str, id: u16) -> Notification {
    Notification {
        server_id: Some(server.into()),
        notification_id: Some(id),
        timestamp: Some(now_secs()),
        req_mos: true,
        ..Default::default()
    }
}

#[test]
fn a_signed_notification_passes_once_even_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = encode_signed(&note("dms1", 41), SECRET, DATA).unwrap();
    {
        let s = store(dir.path());
        assert_eq!(
            check(&s, &Directory::default(), &bytes, POLICY),
            Ok(Accepted {
                server_id: "dms1".into(),
                notification_id: Some(41),
                req_mos: true,
                start_within_secs: None,
                signed: true,
            })
        );
        assert_eq!(
            check(&s, &Directory::default(), &bytes, POLICY),
            Err(Dropped::Duplicate(41))
        );
    }
    let s = SqliteStore::open(&dir.path().join("t.db"), OpenMode::ReadWrite).unwrap();
    assert_eq!(
        check(&s, &Directory::default(), &bytes, POLICY),
        Err(Dropped::Duplicate(41)),
        "remembered across a restart"
    );
    // The same ID from another server is no duplicate.
    assert!(
        check(
            &s,
            &Directory::default(),
            &encode(&note("dms2", 41)).unwrap(),
            POLICY
        )
        .is_ok()
    );
}

/// START-WITHIN (omadmd's option 15) comes through signed, bounds the start delay in
/// place of the configured value, a day at most; a malformed one drops the notification.
#[test]
fn start_within_from_the_server_overrides_the_configured_bound() {
    use crate::protocol::package0::option::START_WITHIN;
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let with = |id, value: Vec<u8>| {
        let mut n = note("dms1", id);
        n.unknown = vec![(START_WITHIN, value)];
        encode_signed(&n, SECRET, DATA).unwrap()
    };
    let d = Directory::default();
    let a = check(&s, &d, &with(1, 300u16.to_be_bytes().to_vec()), POLICY).unwrap();
    assert_eq!(a.start_within_secs, Some(300));
    assert_eq!(a.start_within(60), Duration::from_secs(300));
    let a = check(&s, &d, &with(2, vec![0]), POLICY).unwrap();
    assert_eq!(
        a.start_within(60),
        Duration::ZERO,
        "the server may ask for at once"
    );
    let a = check(&s, &d, &with(3, u32::MAX.to_be_bytes().to_vec()), POLICY).unwrap();
    assert_eq!(
        a.start_within(0),
        Duration::from_secs(START_WITHIN_MAX_SECS)
    );
    let plain = encode_signed(&note("dms1", 4), SECRET, DATA).unwrap();
    let a = check(&s, &d, &plain, POLICY).unwrap();
    assert_eq!(a.start_within(60), Duration::from_secs(60), "configured");
    assert!(matches!(
        check(&s, &d, &with(5, vec![0; 5]), POLICY),
        Err(Dropped::Malformed(why)) if why.contains("START-WITHIN")
    ));
    // Unsigned (dms2 has no notification credentials): anyone could have sent it, so its
    // START-WITHIN is not obeyed; the configured bound is.
    let mut n = note("dms2", 6);
    n.unknown = vec![(START_WITHIN, 86_400u32.to_be_bytes().to_vec())];
    let a = check(&s, &d, &encode(&n).unwrap(), POLICY).unwrap();
    assert_eq!(a.start_within_secs, None);
    assert_eq!(a.start_within(0), Duration::ZERO);
}

/// With a recorder, a gate accepts without writing: the ID goes to the recorder, and a
/// repeat is refused from memory before it is stored and from the store after.
#[test]
fn a_gate_with_a_recorder_refuses_repeats_before_and_after_they_are_stored() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let gate = Gate::new(Duration::ZERO);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    gate.record_with(tx);
    let bytes = encode_signed(&note("dms1", 7), SECRET, DATA).unwrap();
    assert!(gate.admit(&s, &bytes, POLICY).is_ok());
    assert_eq!(rx.try_recv().unwrap(), ("dms1".to_owned(), 7));
    assert!(
        !s.notification_seen("dms1", 7, POLICY.remember_secs)
            .unwrap(),
        "not written on the accept path"
    );
    assert_eq!(
        gate.admit(&s, &bytes, POLICY),
        Err(Dropped::Duplicate(7)),
        "refused from memory"
    );
    // The recorder stores it and says so: the store answers from then on.
    assert!(
        s.note_notification("dms1", 7, POLICY.remember_secs)
            .unwrap()
    );
    gate.recorded("dms1", 7);
    assert_eq!(gate.admit(&s, &bytes, POLICY), Err(Dropped::Duplicate(7)));
    assert!(rx.try_recv().is_err(), "a duplicate is not recorded again");
    // Without a recorder (gone), the gate stores it itself.
    drop(rx);
    let other = encode_signed(&note("dms1", 8), SECRET, DATA).unwrap();
    assert!(gate.admit(&s, &other, POLICY).is_ok());
    assert!(
        s.notification_seen("dms1", 8, POLICY.remember_secs)
            .unwrap()
    );
}

#[test]
fn every_bad_notification_is_dropped_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let good = encode_signed(&note("dms1", 1), SECRET, DATA).unwrap();
    // Every single-bit flip is dropped (malformed, unknown server, or digest).
    for i in 0..good.len() * 8 {
        let mut bad = good.clone();
        bad[i / 8] ^= 1 << (i % 8);
        assert!(
            check(&s, &Directory::default(), &bad, POLICY).is_err(),
            "bit {i} flipped and accepted"
        );
    }
    let old = Notification {
        timestamp: Some(now_secs() - 3600),
        ..note("dms1", 2)
    };
    let future = Notification {
        timestamp: Some(now_secs() + 3600),
        ..note("dms1", 3)
    };
    let cases: Vec<(Vec<u8>, Dropped)> = vec![
        (
            vec![0x20],
            Dropped::Malformed("shorter than the 2-byte header at byte 0".into()),
        ),
        (
            encode(&note("dms1", 4)).unwrap(),
            Dropped::Digest("no digest, but the server has credentials"),
        ),
        (
            encode_signed(&note("dms1", 5), b"wrong", DATA).unwrap(),
            Dropped::Digest("the digest does not match"),
        ),
        (
            encode_signed(&note("dms2", 6), SECRET, DATA).unwrap(),
            Dropped::Digest("a digest, but no credentials for the server"),
        ),
        (
            encode_signed(&note("nobody", 7), SECRET, DATA).unwrap(),
            Dropped::UnknownServer(Some("nobody".into())),
        ),
        (
            encode(&Notification {
                server_id: None,
                ..note("x", 8)
            })
            .unwrap(),
            Dropped::UnknownServer(None),
        ),
        (
            encode_signed(&old, SECRET, DATA).unwrap(),
            Dropped::Stale(old.timestamp.unwrap()),
        ),
        (
            encode_signed(&future, SECRET, DATA).unwrap(),
            Dropped::Stale(future.timestamp.unwrap()),
        ),
    ];
    for (bytes, want) in cases {
        assert_eq!(check(&s, &Directory::default(), &bytes, POLICY), Err(want));
    }
    // A dropped notification's ID is not remembered: the genuine one still passes.
    assert!(
        check(
            &s,
            &Directory::default(),
            &encode_signed(&note("dms1", 5), SECRET, DATA).unwrap(),
            POLICY
        )
        .is_ok()
    );
}

#[test]
fn wap_push_framing() {
    let p0 = encode(&note("dms2", 9)).unwrap();
    let push = wrap(&p0, 0x33);
    assert_eq!(&push[..6], &[0x33, 0x06, 0x03, 0xD8, 0xAF, 0x87]);
    assert_eq!(unwrap(&push), Ok(p0.as_slice()));
    assert_eq!(
        unwrap(&p0),
        Ok(p0.as_slice()),
        "a bare Package#0 passes as is"
    );
    // Text content type, no application id.
    let mut text = vec![0x01, 0x06, 39];
    text.extend_from_slice(b"application/vnd.syncml.dm.notification\0");
    text.extend_from_slice(&p0);
    assert_eq!(unwrap(&text), Ok(p0.as_slice()));
    for (bytes, what) in [
        (vec![0x01, 0x06, 0x02, 0xC4, 0xAF], "NotForUs"), // another content type
        (vec![0x01, 0x06, 0x03, 0xD8, 0xAF, 0x84], "NotForUs"), // another application
        (vec![0x01, 0x06, 0x09, 0xD8], "Malformed"),      // headers past the end
        (
            vec![0x01, 0x06, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
            "Malformed",
        ), // endless uintvar
        (vec![0x01, 0x06], "Malformed"),
    ] {
        let got = format!("{:?}", unwrap(&bytes));
        assert!(got.contains(what), "{bytes:02x?}: {got}");
    }
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    assert!(check(&s, &Directory::default(), &push, POLICY).is_ok());
}

/// Spacing is for what cannot be told from a replay: a signed notification with a fresh
/// NOTIFICATION-ID always passes; one without an ID, or unsigned, waits out the interval.
#[test]
fn only_notifications_that_could_be_replays_are_spaced() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let gate = Gate::new(Duration::from_secs(60));
    let signed = |n: &Notification| encode_signed(n, SECRET, DATA).unwrap();
    for id in [1, 2, 3] {
        assert!(
            gate.admit(&s, &signed(&note("dms1", id)), POLICY).is_ok(),
            "id {id}"
        );
    }
    assert_eq!(
        gate.admit(&s, &signed(&note("dms1", 2)), POLICY),
        Err(Dropped::Duplicate(2)),
        "a replayed ID is still dropped"
    );
    let mut without_id = note("dms1", 0);
    without_id.notification_id = None;
    assert!(matches!(
        gate.admit(&s, &signed(&without_id), POLICY),
        Err(Dropped::TooSoon { .. })
    ));
    // dms2 has no notification credentials: anyone could send it new IDs.
    assert!(
        gate.admit(&s, &encode(&note("dms2", 10)).unwrap(), POLICY)
            .is_ok()
    );
    assert!(matches!(
        gate.admit(&s, &encode(&note("dms2", 11)).unwrap(), POLICY),
        Err(Dropped::TooSoon { .. })
    ));
}
