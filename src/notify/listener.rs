//! The UDP listener for DM Notifications (TS App. E.1: connectionless WAP Push on port
//! 2948): takes the socket from systemd (`LISTEN_FDS`) or binds it, checks every datagram,
//! rate-limits per source, and asks the scheduler for a ServerInitiatedMgmt session for each
//! valid notification.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::Instant;

use super::{Accepted, Policy, check};
use crate::tree::TreeStore;

/// Dropped datagrams logged one by one per second; more are counted.
pub const LOG_PER_SEC: u32 = 20;

/// Largest datagram read; a Package#0 with every option fits many times over.
const MAX_DATAGRAM: usize = 8192;

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
    /// notification. Floods are cut per source by a token bucket before any work is done
    /// on their datagrams, so one noisy peer cannot delay another's notification. Up to
    /// [`LOG_PER_SEC`] dropped datagrams a second are logged one by one; the rest as a count.
    pub async fn run(
        &self,
        store: &dyn TreeStore,
        policy: Policy,
        per_source_per_sec: u32,
        mut accepted: impl FnMut(Accepted),
    ) {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut buckets: HashMap<IpAddr, (f64, Instant)> = HashMap::new();
        let (mut logged, mut suppressed, mut limited, mut period) =
            (0u32, 0u64, 0u64, Instant::now());
        let rate = f64::from(per_source_per_sec.max(1));
        loop {
            let (len, from) = match self.socket.recv_from(&mut buf).await {
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
            let (tokens, last) = buckets.entry(from.ip()).or_insert((rate * 2.0, now));
            *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * rate).min(rate * 2.0);
            *last = now;
            if *tokens < 1.0 {
                limited += 1;
            } else {
                *tokens -= 1.0;
                match check(store, &buf[..len], policy) {
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
