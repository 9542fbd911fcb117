//! Back-pressure from servers: `Retry-After` on a 503 or 429 (RFC 9110 §10.2.3, RFC 6585
//! §4), read as seconds or an HTTP date, and the per-origin "not before" times a client
//! keeps so that it does not ask a Data Repository again before it said it may.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use reqwest::header::HeaderValue;
use tokio::time::Instant;

/// Whether an HTTP status asks the client to come back later: 503 Service Unavailable and
/// 429 Too Many Requests are the two that carry `Retry-After` for that.
pub fn is_back_off(status: u16) -> bool {
    matches!(status, 429 | 503)
}

/// How long `Retry-After` asks to wait: delay-seconds, or an HTTP date counted from `now`
/// (a date in the past is no wait). `None` for a value that is neither.
pub fn retry_after(value: &HeaderValue, now: SystemTime) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        // More digits than a u64 holds is a very long wait; the caller caps it.
        return Some(Duration::from_secs(text.parse().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(text).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The wait a response asks for: its `Retry-After` when the status is 503 or 429.
pub fn asked_wait(status: u16, headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    if !is_back_off(status) {
        return None;
    }
    retry_after(
        headers.get(reqwest::header::RETRY_AFTER)?,
        SystemTime::now(),
    )
}

/// Per-origin times before which a client does not send again, shared by the sessions of
/// one server's client. Each wait is capped (`sessions.retry-max-secs`), so a server
/// cannot silence a device for longer than the operator allows.
#[derive(Debug, Clone, Default)]
pub struct Deferrals {
    until: Arc<Mutex<HashMap<String, Instant>>>,
    cap: Duration,
}

impl Deferrals {
    /// Deferrals capped at `cap`.
    pub fn new(cap: Duration) -> Deferrals {
        Deferrals {
            until: Arc::default(),
            cap,
        }
    }

    /// Records that `url`'s origin asked to wait `wait`.
    pub fn defer(&self, url: &url::Url, wait: Duration) {
        let at = Instant::now() + wait.min(self.cap);
        let mut until = self.until.lock().unwrap_or_else(|p| p.into_inner());
        until.insert(url.origin().ascii_serialization(), at);
    }

    /// How long requests to `url`'s origin must still wait, if at all.
    pub fn remaining(&self, url: &url::Url) -> Option<Duration> {
        let mut until = self.until.lock().unwrap_or_else(|p| p.into_inner());
        let origin = url.origin().ascii_serialization();
        let left = until
            .get(&origin)?
            .saturating_duration_since(Instant::now());
        if left.is_zero() {
            until.remove(&origin);
            return None;
        }
        Some(left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = httpdate::parse_http_date("Wed, 02 Dec 2026 10:00:00 GMT").unwrap();
        let h = |s: &str| HeaderValue::from_str(s).unwrap();
        let table: &[(&str, Option<u64>)] = &[
            ("120", Some(120)),
            (" 7 ", Some(7)),
            ("0", Some(0)),
            ("99999999999999999999999", Some(u64::MAX)),
            ("Wed, 02 Dec 2026 10:02:00 GMT", Some(120)),
            // A date already past asks for no wait.
            ("Wed, 02 Dec 2026 09:00:00 GMT", Some(0)),
            // RFC 850 and asctime forms are HTTP dates too (RFC 9110 §5.6.7).
            ("Wednesday, 02-Dec-26 10:00:30 GMT", Some(30)),
            ("Wed Dec  2 10:01:00 2026", Some(60)),
            ("-5", None),
            ("1.5", None),
            ("soon", None),
            ("", None),
        ];
        for (value, want) in table {
            assert_eq!(
                retry_after(&h(value), now),
                want.map(Duration::from_secs),
                "{value:?}"
            );
        }
    }

    #[test]
    fn only_503_and_429_ask_to_wait() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::RETRY_AFTER, HeaderValue::from_static("60"));
        for (status, want) in [(503, true), (429, true), (500, false), (301, false)] {
            assert_eq!(asked_wait(status, &headers).is_some(), want, "{status}");
        }
        assert_eq!(
            asked_wait(503, &reqwest::header::HeaderMap::new()),
            None,
            "no header, no wait"
        );
    }

    #[test]
    fn deferrals_are_per_origin_and_capped() {
        let d = Deferrals::new(Duration::from_secs(60));
        let repo = url::Url::parse("https://repo.example/a/b?x=1").unwrap();
        let same = url::Url::parse("https://repo.example/other").unwrap();
        let other = url::Url::parse("https://repo.example:8443/a").unwrap();
        assert_eq!(d.remaining(&repo), None);
        d.defer(&repo, Duration::from_secs(3600));
        let left = d.remaining(&same).unwrap();
        assert!(left <= Duration::from_secs(60) && left > Duration::from_secs(50));
        assert_eq!(d.remaining(&other), None, "another port is another origin");
        d.defer(&repo, Duration::ZERO);
        assert_eq!(d.remaining(&repo), None);
    }
}
