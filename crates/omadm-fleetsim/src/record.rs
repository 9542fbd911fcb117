//! A server's own record of a run (omadm-testserver `--record`, or any JSON lines in its
//! shape): the alerts it accepted, for lost and duplicated ones, and when it answered, to
//! compare the fleet's per-second counts with.

use std::collections::HashMap;

use serde::Serialize;

use crate::metrics::Second;

/// What a server's record (omadm-testserver `--record`, or any file of JSON lines) tells.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerRecord {
    /// The alert numbers it received in Package#1s it accepted, with how many times each.
    pub alerts: HashMap<u64, u32>,
    /// When it answered requests, in Unix seconds (lines `{"kind": "answered", "unix": T}`).
    pub answered: Vec<f64>,
}

impl ServerRecord {
    /// Reads a record's lines. A Package#1 line with a `status` outside 2xx is one the
    /// server refused (busy, down): its alerts did not arrive. Lines it cannot read are
    /// skipped.
    pub fn parse(text: &str) -> ServerRecord {
        let mut r = ServerRecord::default();
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            match v["kind"].as_str() {
                Some("answered") => r.answered.extend(v["unix"].as_f64()),
                Some("package1") => {
                    if v["status"]
                        .as_u64()
                        .is_some_and(|s| !(200..300).contains(&s))
                    {
                        continue;
                    }
                    for a in v["body"]["Alert"].as_array().into_iter().flatten() {
                        if let Some(n) = a["Data"]["fleet_alert"].as_u64() {
                            *r.alerts.entry(n).or_default() += 1;
                        }
                    }
                }
                _ => {}
            }
        }
        r
    }
}

/// The fleet's per-second answer counts against the server's own record of its answers.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct AgainstServer {
    /// Answers in the server's record, from the fleet's start to the end of the run.
    pub server_answers: u64,
    /// The server's busiest second, and the fleet's count for that second.
    pub server_peak: (u32, u32),
    /// The fleet's busiest second.
    pub fleet_peak: u32,
    /// Seconds in which the server answered at least [`COMPARED_FROM`] requests.
    pub seconds_compared: usize,
    /// Of those, the largest difference, as a share of the server's count.
    pub worst_difference: f64,
    /// The server's count per second of the run.
    pub server_seconds: Vec<u32>,
}

/// Seconds with fewer answers than this are left out of the comparison: a handful of
/// answers either side of a second's edge would make any difference look large.
pub const COMPARED_FROM: u32 = 50;

/// Compares the fleet's `seconds` with the server's answers at `answered` (Unix seconds),
/// the fleet's clock having started at `started_unix`.
pub fn against_server(seconds: &[Second], answered: &[f64], started_unix: f64) -> AgainstServer {
    let mut server = vec![0u32; seconds.len()];
    let mut total = 0;
    for t in answered {
        let at = t - started_unix;
        if at >= 0.0
            && let Some(s) = server.get_mut(at as usize)
        {
            *s += 1;
            total += 1;
        }
    }
    let ours = |i: usize| seconds.get(i).map_or(0, |s| s.requests);
    let busiest = (0..server.len()).max_by_key(|i| server[*i]).unwrap_or(0);
    let compared: Vec<usize> = (0..server.len())
        .filter(|i| server[*i] >= COMPARED_FROM)
        .collect();
    AgainstServer {
        server_answers: total,
        server_peak: (server.get(busiest).copied().unwrap_or(0), ours(busiest)),
        fleet_peak: seconds.iter().map(|s| s.requests).max().unwrap_or(0),
        seconds_compared: compared.len(),
        worst_difference: compared
            .iter()
            .map(|i| f64::from(ours(*i).abs_diff(server[*i])) / f64::from(server[*i]))
            .fold(0.0, f64::max),
        server_seconds: server,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_shows_each_alert_with_its_count() {
        let record = [
            r#"{"kind":"package1","body":{"Alert":[{"AlertType":"x"},{"Data":{"fleet_alert":3}}]}}"#,
            r#"{"kind":"package1","body":{"Alert":[{"Data":{"fleet_alert":3}},{"Data":{"fleet_alert":4}}]}}"#,
            r#"{"kind":"package3","body":{"Alert":[{"Data":{"fleet_alert":5}}]}}"#,
            // Refused (the server was busy): these alerts did not arrive, whatever the body.
            r#"{"kind":"package1","status":503,"body":{"Alert":[{"Data":{"fleet_alert":4}}]}}"#,
            r#"{"kind":"package1","status":200,"body":{"Alert":[{"Data":{"fleet_alert":6}}]}}"#,
            r#"{"kind":"answered","unix":1000.25,"status":200}"#,
            r#"{"kind":"answered","status":200}"#,
            "not json",
        ]
        .join("\n");
        let r = ServerRecord::parse(&record);
        let seen = &r.alerts;
        assert_eq!(seen.get(&3), Some(&2));
        assert_eq!(
            seen.get(&4),
            Some(&1),
            "the refused Package#1 is not counted"
        );
        assert_eq!(seen.get(&5), None);
        assert_eq!(seen.get(&6), Some(&1));
        assert_eq!(r.answered, [1000.25]);
    }

    /// The server's answers, binned on the fleet's clock, against the fleet's counts: the
    /// quiet seconds are left out, the worst of the rest is reported.
    #[test]
    fn the_fleet_is_compared_with_the_servers_answer_times() {
        let requests = |r: &[u32]| -> Vec<Second> {
            r.iter()
                .map(|n| Second {
                    requests: *n,
                    ..Second::default()
                })
                .collect()
        };
        let start = 5000.5;
        let mut answered = vec![4999.0; 7]; // before the fleet started: not counted
        answered.extend(std::iter::repeat_n(start + 0.5, 10));
        answered.extend(std::iter::repeat_n(start + 1.2, 100));
        answered.extend(std::iter::repeat_n(start + 2.9, 200));
        answered.push(start + 9.0); // after the run
        let c = against_server(&requests(&[3, 95, 220]), &answered, start);
        assert_eq!(c.server_seconds, [10, 100, 200]);
        assert_eq!(c.server_answers, 310);
        assert_eq!((c.server_peak, c.fleet_peak), ((200, 220), 220));
        assert_eq!(
            c.seconds_compared, 2,
            "the second with 10 is too quiet to compare"
        );
        assert!(
            (c.worst_difference - 0.10).abs() < 1e-9,
            "{}",
            c.worst_difference
        );
    }
}
