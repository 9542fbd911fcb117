//! The report as a few lines for a person: what the fleet did, and what to make of it
//! (a fleet short of CPU, sessions cut by the stop, the server's own count).

use crate::record::COMPARED_FROM;
use crate::report::{LATE_START_SECS, Report};

impl Report {
    /// A few lines for a person.
    pub fn summary(&self) -> String {
        let t = &self.totals;
        let a = &self.alerts;
        let l = &a.latency_secs;
        let scale = if (self.time_scale - 1.0).abs() < f64::EPSILON {
            String::new()
        } else {
            format!(
                " (time scale {}: each second stands for {} s)",
                self.time_scale, self.time_scale
            )
        };
        let mut out = format!(
            "{} devices, {:.0} s{scale}{}\n\
             requests answered: {} ({} 2xx, {} busy 503/429, {} other); peak {} in one second\n\
             sessions: {} started, {} ended, {} aborted, {} cut by the end of the run; {} Retry-After obeyed\n\
             alerts: {} queued, {} acknowledged, {} waiting; latency min {:.1} s, p50 {:.1} s, p90 {:.1} s, p99 {:.1} s, max {:.1} s\n\
             notifications: {} accepted, {} dropped, {} before the device was ready\n\
             devices never in contact: {}; failed: {}; longest silence p50 {:.1} s, max {:.1} s\n\
             memory: {:.1} MiB before, {:.1} MiB with all ready, {:.0} KiB per device\n",
            self.devices,
            self.duration_secs,
            self.all_ready_secs.map_or_else(
                || "; not every device got ready".to_owned(),
                |s| format!("; all ready after {s:.1} s")
            ),
            t.requests,
            t.ok,
            t.busy,
            t.other,
            self.peak_requests(0, self.seconds.len()),
            t.sessions_started,
            t.sessions_ended,
            t.sessions_aborted,
            self.sessions_cut,
            t.retry_after,
            a.queued,
            a.acknowledged,
            a.waiting,
            l.min,
            l.p50,
            l.p90,
            l.p99,
            l.max,
            self.notifications.accepted,
            self.notifications.dropped.values().sum::<u64>(),
            self.notifications.not_ready,
            self.devices_never_in_contact,
            self.failed_devices,
            self.longest_silence_secs.p50,
            self.longest_silence_secs.max,
            self.memory.before_kib as f64 / 1024.0,
            self.memory.ready_kib as f64 / 1024.0,
            self.memory.per_device_kib,
        );
        if let Some(r) = &self.recovery {
            out.push_str(&format!(
                "after the last busy answer (at {:.0} s): devices back in contact within p50 {:.1} s, p99 {:.1} s, max {:.1} s; {} not back\n",
                r.busy_until_secs, r.back_secs.p50, r.back_secs.p99, r.back_secs.max, r.not_back
            ));
        }
        let n = &self.notifications.answered_secs;
        if n.count > 0 {
            out.push_str(&format!(
                "notifications answered by a session ended within p50 {:.1} s, p99 {:.1} s, max {:.1} s; at most {} sessions in flight\n",
                n.p50, n.p99, n.max, t.in_flight
            ));
        }
        for (kind, c) in &self.per_session {
            out.push_str(&format!(
                "{kind} sessions: {} ended; per session {:.2} requests, {:.0} bytes sent, {:.0} bytes received\n",
                c.sessions, c.requests, c.bytes_sent, c.bytes_received
            ));
        }
        if let (Some(lost), Some(dup)) = (a.lost, a.duplicated) {
            out.push_str(&format!(
                "server's record: {lost} acknowledged alerts lost, {dup} received more than once\n"
            ));
        }
        if let Some(c) = &self.against_server {
            out.push_str(&format!(
                "server's record: {} answers; its busiest second {} (the fleet counted {} then), the fleet's busiest {}; {} seconds with at least {COMPARED_FROM} answers differ by at most {:.1}%\n",
                c.server_answers,
                c.server_peak.0,
                c.server_peak.1,
                c.fleet_peak,
                c.seconds_compared,
                c.worst_difference * 100.0
            ));
        }
        out.push_str(&self.pace_lines());
        for f in &self.failures {
            out.push_str(&format!("  {f}\n"));
        }
        out
    }

    /// What the pace of the run says about its figures.
    fn pace_lines(&self) -> String {
        let p = &self.pace;
        let mut out = String::new();
        if p.untimed_answers > 0 {
            out.push_str(&format!(
                "{} answers could not be timed by their arrival (the kernel did not say): they are counted when a device got to them\n",
                p.untimed_answers
            ));
        }
        if !p.cpu_bound {
            return out;
        }
        out.push_str("THE FLEET WAS SHORT OF CPU:");
        if p.late_starts > 0 {
            out.push_str(&format!(
                " {} devices were ready more than {LATE_START_SECS:.0} s after they were due (up to {:.1} s);",
                p.late_starts, p.start_late_max_secs
            ));
        }
        if p.late_answers > 0 {
            out.push_str(&format!(
                " {} answers ({:.1}%) waited more than 0.1 s for their device (up to {:.1} s);",
                p.late_answers,
                p.late_answers as f64 * 100.0 / f64::from(self.totals.requests.max(1)),
                p.answer_wait_max_secs
            ));
        }
        out.push_str(
            " answers are counted in the second they arrived, so the counts are what the server went through, \
             but these devices sent later and more slowly than the fleet they stand for would: \
             spread the start (start_spread_secs), or run fewer devices per core (docs/fleetsim.md)\n",
        );
        out
    }
}
