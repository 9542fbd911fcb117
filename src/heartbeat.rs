//! Liveness of the daemon's long-running loops, for the systemd watchdog: each loop beats
//! as it goes round, and the watchdog is fed only while every loop has beaten recently.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How often an idle loop goes round just to beat: well inside any watchdog interval
/// worth having (the unit sets 60 s).
pub const BEAT: Duration = Duration::from_secs(1);

/// The process's own clock origin: beats are milliseconds since it.
fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

/// When a loop last went round.
#[derive(Debug)]
pub struct Heartbeat {
    last_ms: AtomicU64,
}

impl Default for Heartbeat {
    fn default() -> Self {
        let h = Heartbeat {
            last_ms: AtomicU64::new(0),
        };
        h.beat();
        h
    }
}

impl Heartbeat {
    /// The loop is alive now.
    pub fn beat(&self) {
        let now = u64::try_from(origin().elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(now, Ordering::Relaxed);
    }

    /// How long ago the loop last beat.
    pub fn age(&self) -> Duration {
        let now = u64::try_from(origin().elapsed().as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(now.saturating_sub(self.last_ms.load(Ordering::Relaxed)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_beat_resets_the_age() {
        let h = Heartbeat::default();
        std::thread::sleep(Duration::from_millis(30));
        assert!(h.age() >= Duration::from_millis(30));
        h.beat();
        assert!(h.age() < Duration::from_millis(30));
    }
}
