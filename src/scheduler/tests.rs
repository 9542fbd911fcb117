//! Tests of the scheduler: coalescing, backoff and its jitter, held notifications and
//! campaigns, the queue per server (backoff, one session each, an administrator's skip),
//! Retry-After, and the poll spread.

use super::*;

const CLIENT: Request = Request::CLIENT;

fn noti(id: u16, mos: bool) -> Request {
    Request {
        trigger: Trigger::ServerInitiated {
            notification_id: Some(id),
        },
        req_mos: mos,
        alerts_elsewhere: false,
    }
}

#[test]
fn coalescing_keeps_what_must_be_answered() {
    let boot = Request {
        trigger: Trigger::BootstrapComplete,
        req_mos: false,
        alerts_elsewhere: false,
    };
    assert_eq!(coalesce(CLIENT, noti(1, false)), noti(1, false));
    assert_eq!(coalesce(noti(1, true), CLIENT), noti(1, true));
    // Only when every request wants just alerts delivered elsewhere is the SrvURI
    // session left out.
    let elsewhere = Request {
        alerts_elsewhere: true,
        ..CLIENT
    };
    assert!(coalesce(elsewhere, elsewhere).alerts_elsewhere);
    assert!(!coalesce(elsewhere, CLIENT).alerts_elsewhere);
    assert!(!coalesce(noti(2, false), elsewhere).alerts_elsewhere);
    assert_eq!(
        coalesce(noti(1, true), noti(2, false)),
        noti(2, true),
        "the latest ID, and MOS if either asked"
    );
    assert_eq!(coalesce(CLIENT, boot), boot);
    assert_eq!(coalesce(boot, CLIENT), boot);
    assert_eq!(coalesce(boot, noti(3, false)), noti(3, false));
}

#[test]
fn backoff_grows_caps_and_jitters_down() {
    let (base, cap) = (Duration::from_secs(30), Duration::from_secs(3600));
    assert_eq!(backoff(1, base, cap, 0), Duration::from_secs(30));
    assert_eq!(backoff(2, base, cap, 0), Duration::from_secs(60));
    assert_eq!(backoff(5, base, cap, 0), Duration::from_secs(480));
    assert_eq!(backoff(30, base, cap, 0), cap);
    for seed in [1u64, 999, u64::MAX, 123_456_789] {
        let d = backoff(3, base, cap, seed);
        assert!(
            d <= Duration::from_secs(120) && d >= Duration::from_secs(90),
            "{d:?}"
        );
    }
}

/// A notification's session put off to spread a campaign waits for its moment, which
/// a second notification can only bring forward; any other request for the server
/// (a poll, a queued alert) lets it run under the usual rules, answering the
/// notification.
#[test]
fn a_held_notification_waits_for_its_moment_or_the_next_session() {
    let now = Instant::now();
    let at = now + Duration::from_secs(40);
    let mut q = Queue::default();
    q.push_held("a", noti(1, false), at);
    assert_eq!(q.pop_ready(now), None);
    assert_eq!(q.next_due(), Some(at));
    let (_, _, why) = &q.outlook(now)[0];
    assert!(why.contains("spread a campaign"), "{why}");
    q.push_held("a", noti(2, false), now + Duration::from_secs(90));
    assert_eq!(q.next_due(), Some(at), "a later moment does not put it off");
    q.push_held("a", noti(3, false), now + Duration::from_secs(10));
    assert_eq!(q.next_due(), Some(now + Duration::from_secs(10)));
    assert_eq!(
        q.pop_ready(now + Duration::from_secs(10)),
        Some(("a".into(), noti(3, false)))
    );
    q.finished("a");
    q.succeeded("a");

    // A poll arrives while it is held: the session runs now and answers it.
    q.push_held("a", noti(4, true), at);
    q.push("a", CLIENT);
    assert_eq!(q.pop_ready(now), Some(("a".into(), noti(4, true))));
    q.finished("a");

    // A request already pending and due keeps its time.
    q.push("b", CLIENT);
    q.push_held("b", noti(5, false), at);
    assert_eq!(q.pop_ready(now), Some(("b".into(), noti(5, false))));
    q.finished("b");

    // One waiting out its backoff runs at the sooner of its time and the moment.
    let (base, cap) = (Duration::from_secs(30), Duration::from_secs(3600));
    let backoff = q.failed("b", CLIENT, now, base, cap);
    q.push_held("b", noti(6, false), now + Duration::from_secs(3000));
    assert_eq!(q.next_due(), Some(now + backoff));
    q.push_held("c", noti(7, false), now + Duration::from_secs(3000));
    q.finished("c");
    let d = q.failed("c", CLIENT, now, base, cap);
    q.push_held("c", noti(8, false), now + Duration::from_secs(5));
    assert_eq!(
        q.next_due(),
        Some(now + Duration::from_secs(5).min(d).min(backoff))
    );

    // A failure while a held notification waits does not release it early.
    let mut q = Queue::default();
    q.push("d", CLIENT);
    q.pop_ready(now);
    q.push_held("d", noti(9, false), at);
    q.finished("d");
    q.failed("d", CLIENT, now, base, cap);
    assert_eq!(q.pop_ready(now), None, "still held");
    assert_eq!(q.next_due(), Some(at));
}

#[test]
fn a_campaign_spreads_uniformly_within_the_bound() {
    let within = Duration::from_secs(100);
    let mut buckets = [0u32; 10];
    for seed in 0..10_000u64 {
        let d = start_spread(within, seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        assert!(d <= within);
        buckets[(d.as_secs() / 10).min(9) as usize] += 1;
    }
    assert!(
        buckets.iter().all(|b| (800..1200).contains(b)),
        "{buckets:?}"
    );
    assert_eq!(start_spread(Duration::ZERO, 12345), Duration::ZERO);
}

/// `sessions.jitter = false` (to measure what jitter buys): backoffs are exact.
#[test]
fn without_jitter_backoffs_are_exact() {
    let now = Instant::now();
    let (base, cap) = (Duration::from_secs(30), Duration::from_secs(3600));
    let mut q = Queue::new(false);
    q.push("a", CLIENT);
    q.pop_ready(now);
    q.finished("a");
    assert_eq!(q.failed("a", CLIENT, now, base, cap), base);
    assert_eq!(q.failed("a", CLIENT, now, base, cap), base * 2);
    let mut q = Queue::new(true);
    let cut = (0..20)
        .filter(|i| q.failed(&format!("s{i}"), CLIENT, now, base, cap) < base)
        .count();
    assert!(
        cut > 0,
        "with jitter, first backoffs are cut short by up to a quarter"
    );
}

#[test]
fn the_queue_merges_per_server_and_waits_out_backoff() {
    let mut q = Queue::default();
    let now = Instant::now();
    q.push("a", CLIENT);
    q.push("b", CLIENT);
    q.push("a", noti(7, false));
    let (s, r) = q.pop_ready(now).unwrap();
    assert_eq!((s.as_str(), r), ("a", noti(7, false)));
    // "a" fails: it waits out its backoff while "b" runs.
    q.finished("a");
    let d = q.failed(
        "a",
        CLIENT,
        now,
        Duration::from_secs(30),
        Duration::from_secs(3600),
    );
    assert!(d > Duration::ZERO);
    assert_eq!(q.pop_ready(now).unwrap().0, "b");
    assert_eq!(q.pop_ready(now), None);
    assert_eq!(q.next_due(), Some(now + d));
    assert_eq!(q.pop_ready(now + d).unwrap(), ("a".into(), CLIENT));
    q.finished("a");
    // A second failure waits longer; a success resets.
    let d2 = q.failed(
        "a",
        CLIENT,
        now,
        Duration::from_secs(30),
        Duration::from_secs(3600),
    );
    assert!(d2 > d / 2 * 3 / 2, "{d2:?} after {d:?}");
    q.succeeded("a");
    assert!(q.pop_ready(now).is_some());
    assert!(q.is_empty());
}

#[test]
fn one_session_per_server_and_others_run_beside_it() {
    let mut q = Queue::default();
    let now = Instant::now();
    q.push("a", CLIENT);
    q.push("b", CLIENT);
    assert_eq!(q.pop_ready(now).unwrap().0, "a");
    // "a" runs: a new request for it waits (merged), "b" may start.
    q.push("a", noti(3, false));
    assert_eq!(q.pop_ready(now).unwrap().0, "b");
    assert_eq!(q.pop_ready(now), None);
    assert_eq!(q.next_due(), None, "nothing may run until a session ends");
    assert!(q.is_running());
    q.finished("a");
    assert_eq!(q.pop_ready(now).unwrap(), ("a".into(), noti(3, false)));
    q.finished("a");
    q.finished("b");
    assert!(!q.is_running());
}

#[test]
fn an_administrator_skips_the_backoff_but_not_retry_after() {
    let (base, cap) = (Duration::from_secs(30), Duration::from_secs(3600));
    let now = Instant::now();
    let mut q = Queue::default();
    q.push("a", CLIENT);
    q.pop_ready(now).unwrap();
    q.finished("a");
    let delay = q.failed("a", CLIENT, now, base, cap);
    assert!(q.pop_ready(now).is_none(), "held back by the backoff");
    let seen = q.outlook(now);
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (seen[0].1 - now, seen[0].2.as_str()),
        (delay, "retry 1 after failed attempts (backoff)")
    );
    q.forgive("a", now);
    assert_eq!(q.outlook(now)[0].2, "due now");
    assert_eq!(q.pop_ready(now).map(|(s, _)| s).as_deref(), Some("a"));
    assert!(q.outlook(now).is_empty(), "nothing waits while it runs");
    q.push("a", CLIENT);
    assert_eq!(q.outlook(now)[0].2, "after the session running now");
    q.pending.clear();
    q.finished("a");
    // The server's own word stands.
    q.defer("a", now, Duration::from_secs(120), cap);
    q.failed("a", CLIENT, now, base, cap);
    q.forgive("a", now);
    let seen = q.outlook(now);
    assert_eq!(
        (seen[0].1 - now, seen[0].2.as_str()),
        (
            Duration::from_secs(120),
            "the server asked to wait (Retry-After)"
        )
    );
    assert!(q.pop_ready(now).is_none());
    assert!(q.pop_ready(now + Duration::from_secs(120)).is_some());
}

#[test]
fn retry_after_holds_back_the_client_not_the_server() {
    let (base, cap) = (Duration::from_secs(30), Duration::from_secs(3600));
    let mut q = Queue::default();
    let now = Instant::now();
    q.defer("a", now, Duration::from_secs(120), cap);
    q.push("a", CLIENT);
    assert_eq!(q.pop_ready(now), None);
    assert_eq!(q.next_due(), Some(now + Duration::from_secs(120)));
    // Queued work that fails waits at least as long as the server asked.
    let d = q.failed("a", CLIENT, now, base, cap);
    assert!(d >= Duration::from_secs(120), "{d:?}");
    assert_eq!(q.pop_ready(now + Duration::from_secs(119)), None);
    // The server's own notification is answered at once.
    q.push("a", noti(1, false));
    assert_eq!(q.pop_ready(now).unwrap().1, noti(1, false));
    // Retry-After is capped.
    q.finished("a");
    q.defer("b", now, Duration::from_secs(1_000_000), cap);
    assert_eq!(q.not_before("b"), Some(now + cap));
}

#[test]
fn retry_after_is_obeyed_and_spread_up_to_a_quarter_more() {
    let wait = Duration::from_secs(120);
    let mut seen = (Duration::MAX, Duration::ZERO);
    for seed in [0u64, 1, 29_999, 30_000, 30_001, u64::MAX, 987_654_321] {
        let j = retry_after_spread(wait, seed);
        assert!(j >= wait && j <= Duration::from_secs(150), "{j:?}");
        seen = (seen.0.min(j), seen.1.max(j));
    }
    assert_eq!(seen, (wait, Duration::from_secs(150)));
    assert_eq!(retry_after_spread(Duration::ZERO, 9), Duration::ZERO);
}

#[test]
fn polls_spread_a_quarter_either_side() {
    let d = Duration::from_secs(600);
    let mut seen = (Duration::MAX, Duration::ZERO);
    for seed in [0u64, 1, 7, 150_000, 299_999, 300_000, u64::MAX, 123_456_789] {
        let j = poll_jitter(d, seed);
        assert!(
            j >= Duration::from_secs(450) && j <= Duration::from_secs(750),
            "{j:?}"
        );
        seen = (seen.0.min(j), seen.1.max(j));
    }
    assert_eq!(seen.0, Duration::from_secs(450));
    assert!(seen.1 > Duration::from_secs(700), "{seen:?}");
    assert_eq!(poll_jitter(Duration::ZERO, 5), Duration::ZERO);
}
