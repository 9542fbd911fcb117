//! The UDP listener for DM Notifications (TS App. E.1: connectionless WAP Push on port
//! 2948): takes the socket from systemd (`LISTEN_FDS`) or binds it, checks every datagram,
//! rate-limits per source, and asks the scheduler for a ServerInitiatedMgmt session for each
//! valid notification.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::Instant;

use super::{Accepted, Gate, Policy};
use crate::heartbeat::{BEAT, Heartbeat};
use crate::tree::TreeStore;

/// Dropped datagrams logged one by one per second; more are counted.
pub const LOG_PER_SEC: u32 = 20;

/// Largest datagram read; a Package#0 with every option fits many times over.
const MAX_DATAGRAM: usize = 8192;

/// How many datagrams a second are looked at.
#[derive(Debug, Clone, Copy)]
pub struct Rates {
    /// From one source address.
    pub per_source_per_sec: u32,
    /// From all sources together.
    pub total_per_sec: u32,
}

/// A token bucket holding up to two seconds' worth.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn full(rate: f64, now: Instant) -> Bucket {
        Bucket {
            tokens: rate * 2.0,
            last: now,
        }
    }

    /// Refills for the time since the last call and takes a token if there is one.
    fn take(&mut self, rate: f64, now: Instant) -> bool {
        self.tokens =
            (self.tokens + now.duration_since(self.last).as_secs_f64() * rate).min(rate * 2.0);
        self.last = now;
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }
}

/// Where notifications come from.
#[derive(Debug)]
pub struct Listener {
    socket: UdpSocket,
    /// How it got its socket, for the start-up log.
    pub origin: &'static str,
}

impl Listener {
    /// The socket systemd passed (`LISTEN_FDS`, the `omadmd.socket` unit), else one bound to
    /// `listen`. Must run inside the runtime.
    pub fn open(listen: SocketAddr) -> std::io::Result<Listener> {
        let mut fds = listenfd::ListenFd::from_env();
        let (std_socket, origin) = match fds.take_udp_socket(0)? {
            Some(s) => (s, "systemd"),
            None => (std::net::UdpSocket::bind(listen)?, "bound"),
        };
        std_socket.set_nonblocking(true)?;
        Ok(Listener {
            socket: UdpSocket::from_std(std_socket)?,
            origin,
        })
    }

    /// The local address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Receives and checks datagrams forever, calling `accepted` for each valid
    /// notification. Floods are cut by token buckets before any work is done on their
    /// datagrams: one per source, so one noisy peer cannot delay another's notification,
    /// and one for all sources in front of them, so spoofed source addresses cannot buy
    /// unlimited digest work. Up to [`LOG_PER_SEC`] dropped datagrams a second are logged
    /// one by one; the rest as a count.
    /// It beats `alive` each time round, and at least every [`BEAT`] when idle.
    pub async fn run(
        &self,
        store: &dyn TreeStore,
        gate: &Gate,
        policy: Policy,
        rates: Rates,
        alive: &Heartbeat,
        mut accepted: impl FnMut(Accepted),
    ) {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut buckets: HashMap<IpAddr, Bucket> = HashMap::new();
        let total_rate = f64::from(rates.total_per_sec.max(1));
        let mut total = Bucket::full(total_rate, Instant::now());
        let (mut logged, mut suppressed, mut limited, mut period) =
            (0u32, 0u64, 0u64, Instant::now());
        let rate = f64::from(rates.per_source_per_sec.max(1));
        loop {
            alive.beat();
            let received = tokio::time::timeout(BEAT, self.socket.recv_from(&mut buf)).await;
            let Ok(received) = received else {
                continue;
            };
            let (len, from) = match received {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "notification socket error");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let now = Instant::now();
            if now.duration_since(period) >= Duration::from_secs(1) {
                if suppressed > 0 || limited > 0 {
                    tracing::warn!(
                        dropped = suppressed,
                        rate_limited = limited,
                        "more notifications dropped than logged in the last second"
                    );
                }
                (logged, suppressed, limited, period) = (0, 0, 0, now);
            }
            if buckets.len() > 10_000 {
                buckets.clear();
            }
            let source = buckets
                .entry(from.ip())
                .or_insert_with(|| Bucket::full(rate, now));
            // The source's own bucket first: one noisy peer spends its own tokens, not the
            // shared ones another sender's notification needs.
            if !source.take(rate, now) || !total.take(total_rate, now) {
                limited += 1;
            } else {
                match gate.admit(store, &buf[..len], policy) {
                    Ok(a) => {
                        tracing::info!(server = %a.server_id, notification_id = ?a.notification_id, req_mos = a.req_mos, from = %from, "notification accepted");
                        accepted(a);
                    }
                    Err(why) if logged < LOG_PER_SEC => {
                        logged += 1;
                        tracing::info!(from = %from, reason = %why, "notification dropped");
                    }
                    Err(_) => suppressed += 1,
                }
            }
        }
    }
}
