//! DM Notifications (Package#0, TS §5.2.1, App. E): unwrapping connectionless WAP Push,
//! checking a notification against the server's account (digest, replay, age), and the
//! UDP listener that hands valid ones to the scheduler.

pub mod listener;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::mo::account::Directory;
use crate::protocol::package0::{self, Notification};
use crate::tree::{StoreError, TreeStore};

/// WSP PDU type of a Push (WAP-230 §8.2.1).
const WSP_PUSH: u8 = 0x06;
/// Content type `application/vnd.syncml.dm.notification` as a WSP short integer
/// (well-known value 0x58, TS App. E.1).
const CT_DM_NOTIFICATION: u8 = 0x58 | 0x80;
/// The X-WAP-Application-Id header field (0x2F) as a short integer.
const HDR_APPLICATION_ID: u8 = 0x2F | 0x80;
/// Application ID 0x07 (`x-wap-application:syncml.dm`) as a short integer.
const APP_SYNCML_DM: u8 = 0x07 | 0x80;

/// Why a datagram was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Dropped {
    /// Not a Package#0 (nor a WAP Push carrying one).
    #[error("malformed: {0}")]
    Malformed(String),
    /// A WAP Push for another application or content type.
    #[error("WAP Push for another application: {0}")]
    NotForUs(String),
    /// No SERVER-ID, or none of our accounts has it.
    #[error("no account for server {0:?}")]
    UnknownServer(Option<String>),
    /// The digest is missing where credentials exist, present where none exist, or wrong.
    #[error("digest check failed: {0}")]
    Digest(&'static str),
    /// TIMESTAMP older (or later) than the configured window.
    #[error("timestamp {0} outside the accepted window")]
    Stale(u64),
    /// A NOTIFICATION-ID already acted on.
    #[error("duplicate NOTIFICATION-ID {0}")]
    Duplicate(u16),
    /// The server's last notification-triggered session was less than
    /// `notifications.min-interval-secs` ago.
    #[error(
        "server {server:?} had a notification-triggered session too recently (next in {wait_secs} s)"
    )]
    TooSoon {
        /// The server.
        server: String,
        /// Seconds until one is admitted again.
        wait_secs: u64,
    },
    /// The store failed.
    #[error("store: {0}")]
    Store(String),
}

impl From<StoreError> for Dropped {
    fn from(e: StoreError) -> Self {
        Dropped::Store(e.to_string())
    }
}

/// A notification that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The server's SrvID.
    pub server_id: String,
    /// Its NOTIFICATION-ID, for the ServerInitiatedMgmt alert.
    pub notification_id: Option<u16>,
    /// REQ-MOS was set.
    pub req_mos: bool,
}

/// How strict the checks are.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Largest accepted difference between TIMESTAMP and now, in seconds.
    pub max_age_secs: u64,
    /// How long a NOTIFICATION-ID is remembered for duplicate detection.
    pub remember_secs: i64,
}

/// The Package#0 inside a datagram: the datagram itself, or the body of a connectionless
/// WAP Push (WSP) whose content type is `application/vnd.syncml.dm.notification` and
/// whose application ID, if given, is 0x07 (TS App. E.1).
pub fn unwrap(datagram: &[u8]) -> Result<&[u8], Dropped> {
    // A bare Package#0 has VER=2 in the high nibble and reserved bits zero, so its second
    // byte is 0x00 or 0x80; a WSP push has the PDU type 0x06 there.
    if datagram.get(1) != Some(&WSP_PUSH) {
        return Ok(datagram);
    }
    let bad = |what: &str| Dropped::Malformed(format!("WAP Push: {what}"));
    // TID, PDU type, HeadersLen (uintvar), then Content-Type and headers, then the body.
    let mut at = 2;
    let mut headers_len: usize = 0;
    loop {
        let b = *datagram
            .get(at)
            .ok_or_else(|| bad("truncated header length"))?;
        at += 1;
        headers_len = headers_len
            .checked_mul(128)
            .ok_or_else(|| bad("header length overflows"))?
            | usize::from(b & 0x7F);
        if b & 0x80 == 0 {
            break;
        }
        if at > 7 {
            return Err(bad("header length too long"));
        }
    }
    let headers = datagram
        .get(at..at + headers_len)
        .ok_or_else(|| bad("headers past the end"))?;
    let body = &datagram[at + headers_len..];
    let (&ct, rest) = headers
        .split_first()
        .ok_or_else(|| bad("no content type"))?;
    let text_ct = b"application/vnd.syncml.dm.notification\0";
    let rest = if ct == CT_DM_NOTIFICATION {
        rest
    } else if headers.starts_with(text_ct) {
        &headers[text_ct.len()..]
    } else {
        return Err(Dropped::NotForUs(format!("content type {ct:#04x}")));
    };
    // X-WAP-Application-Id, if present, must be the DM application.
    if let Some(i) = rest.iter().position(|&b| b == HDR_APPLICATION_ID)
        && rest.get(i + 1) != Some(&APP_SYNCML_DM)
    {
        return Err(Dropped::NotForUs(format!(
            "application id {:?}",
            rest.get(i + 1)
        )));
    }
    Ok(body)
}

/// Wraps a Package#0 in a connectionless WAP Push (for test servers and bridges).
pub fn wrap(package0: &[u8], tid: u8) -> Vec<u8> {
    let headers = [CT_DM_NOTIFICATION, HDR_APPLICATION_ID, APP_SYNCML_DM];
    let mut out = vec![tid, WSP_PUSH, headers.len() as u8];
    out.extend_from_slice(&headers);
    out.extend_from_slice(package0);
    out
}

/// A notification to make up, for testing a device or a bridge (`omadmctl notify
/// --server`, `omadm-testserver --notify`).
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
    /// Wrap it in a connectionless WAP Push.
    pub wap: bool,
}

/// Encodes a [`Compose`], timestamped now and signed when it has a secret (TS §5.2.1.2).
pub fn compose(c: &Compose) -> Result<Vec<u8>, crate::protocol::DecodeError> {
    let n = Notification {
        server_id: Some(c.server_id.clone()),
        notification_id: c.notification_id,
        timestamp: Some(now_secs()),
        req_mos: c.req_mos,
        ..Default::default()
    };
    let bytes = match &c.secret {
        Some(secret) => package0::encode_signed(&n, secret, &c.auth_data)?,
        None => package0::encode(&n)?,
    };
    Ok(if c.wap { wrap(&bytes, 1) } else { bytes })
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Checks a datagram (reference §7.2): a Package#0 for one of our servers, with a correct
/// SHA256-DIGEST when the account has notification credentials (and none when it has not:
/// TS §5.2.1.2 says to ignore it) and a TIMESTAMP inside the window. Its NOTIFICATION-ID
/// is not looked at ([`check`] and [`Gate::admit`] do that).
///
/// The account is found in `accounts`, from memory: a datagram costs no database read.
pub fn verify(
    store: &dyn TreeStore,
    accounts: &Directory,
    datagram: &[u8],
    policy: Policy,
) -> Result<Accepted, Dropped> {
    let bytes = unwrap(datagram)?;
    let n: Notification = package0::decode(bytes).map_err(|e| Dropped::Malformed(e.to_string()))?;
    let server_id = n.server_id.clone().ok_or(Dropped::UnknownServer(None))?;
    let account = accounts
        .get(store, &server_id)?
        .ok_or_else(|| Dropped::UnknownServer(Some(server_id.clone())))?;
    match (&account.noti, n.digest.is_some()) {
        (Some(noti), true) => {
            if !package0::verify(bytes, &n, &noti.secret, &noti.data) {
                return Err(Dropped::Digest("the digest does not match"));
            }
        }
        // TS §5.2.1.2: a digest without provisioned credentials MUST be ignored.
        (None, true) => {
            return Err(Dropped::Digest(
                "a digest, but no credentials for the server",
            ));
        }
        // The TS is silent; an unsigned notification for an account that has credentials
        // could come from anyone (reference §7.2 step 4): ignored.
        (Some(_), false) => {
            return Err(Dropped::Digest("no digest, but the server has credentials"));
        }
        (None, false) => {}
    }
    if let Some(ts) = n.timestamp {
        let now = now_secs();
        if ts.abs_diff(now) > policy.max_age_secs {
            return Err(Dropped::Stale(ts));
        }
    }
    Ok(Accepted {
        server_id,
        notification_id: n.notification_id,
        req_mos: n.req_mos,
    })
}

/// Checks a datagram as [`verify`] does, then remembers its NOTIFICATION-ID, refusing one
/// seen before (across restarts).
pub fn check(
    store: &dyn TreeStore,
    accounts: &Directory,
    datagram: &[u8],
    policy: Policy,
) -> Result<Accepted, Dropped> {
    let a = verify(store, accounts, datagram, policy)?;
    if let Some(id) = a.notification_id
        && !store.note_notification(&a.server_id, id, policy.remember_secs)?
    {
        return Err(Dropped::Duplicate(id));
    }
    Ok(a)
}

/// What stands between a notification and a session: the account directory, and the
/// per-server spacing of notification-triggered sessions (reference §10.1). A signed
/// notification without TIMESTAMP and NOTIFICATION-ID can be replayed by anyone who saw it
/// once; whatever the packet, a server gets at most one notification-triggered session
/// per `min_interval`.
#[derive(Debug)]
pub struct Gate {
    /// The accounts, kept in memory.
    pub accounts: Directory,
    min_interval: Duration,
    last: Mutex<HashMap<String, Instant>>,
}

impl Gate {
    /// A gate spacing sessions by `min_interval` (zero: no spacing).
    pub fn new(min_interval: Duration) -> Gate {
        Gate {
            accounts: Directory::default(),
            min_interval,
            last: Mutex::default(),
        }
    }

    /// Checks a notification from any transport ([`check`]: a replay is reported as a
    /// duplicate) and admits it when its server's last notification-triggered session is
    /// at least the interval ago.
    pub fn admit(
        &self,
        store: &dyn TreeStore,
        datagram: &[u8],
        policy: Policy,
    ) -> Result<Accepted, Dropped> {
        let a = check(store, &self.accounts, datagram, policy)?;
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = last.get(&a.server_id)
            && now.duration_since(*t) < self.min_interval
        {
            let wait = self.min_interval - now.duration_since(*t);
            return Err(Dropped::TooSoon {
                server: a.server_id,
                wait_secs: wait.as_secs().max(1),
            });
        }
        last.insert(a.server_id.clone(), now);
        Ok(a)
    }
}

#[cfg(test)]
mod tests;
