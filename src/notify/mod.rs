//! DM Notifications (Package#0, TS §5.2.1, App. E): unwrapping connectionless WAP Push,
//! checking a notification against the server's account (digest, replay, age), and the
//! UDP listener that hands valid ones to the scheduler.

pub mod listener;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::mo::account::Directory;
use crate::protocol::package0::{self, Notification};
use crate::protocol::wap::WapError;
use crate::tree::{StoreError, TreeStore};

/// Why a datagram was dropped.
#[derive(Debug, Clone, thiserror::Error)]
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
    Store(#[source] std::sync::Arc<StoreError>),
}

impl From<StoreError> for Dropped {
    fn from(e: StoreError) -> Self {
        Dropped::Store(std::sync::Arc::new(e))
    }
}

/// Drops compare by what they say (a store failure keeps its cause, which has no equality
/// of its own).
impl PartialEq for Dropped {
    fn eq(&self, other: &Self) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
            && self.to_string() == other.to_string()
    }
}

impl Eq for Dropped {}

/// A notification that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The server's SrvID.
    pub server_id: String,
    /// Its NOTIFICATION-ID, for the ServerInitiatedMgmt alert.
    pub notification_id: Option<u16>,
    /// REQ-MOS was set.
    pub req_mos: bool,
    /// omadmd's START-WITHIN option, in seconds, when the server sent it.
    pub start_within_secs: Option<u32>,
    /// It carried a digest the account's notification credentials verified.
    pub signed: bool,
}

/// The longest a notification-triggered session is put off to spread a campaign: a day,
/// as `notifications.start-within-secs` at most. A server that wants a fleet spread wider
/// notifies it in waves.
pub const START_WITHIN_MAX_SECS: u64 = 86_400;

impl Accepted {
    /// Within how long its session starts, at a random moment: the server's START-WITHIN
    /// when it sent one, else `configured` (`notifications.start-within-secs`); a day at
    /// most.
    pub fn start_within(&self, configured: u64) -> Duration {
        let secs = self.start_within_secs.map_or(configured, u64::from);
        Duration::from_secs(secs.min(START_WITHIN_MAX_SECS))
    }
}

/// How strict the checks are.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Largest accepted difference between TIMESTAMP and now, in seconds.
    pub max_age_secs: u64,
    /// How long a NOTIFICATION-ID is remembered for duplicate detection.
    pub remember_secs: i64,
    /// Within how many seconds a notification's session starts, at a random moment, when
    /// the notification does not say (`notifications.start-within-secs`).
    pub start_within_secs: u64,
}

/// The Package#0 inside a datagram: the datagram itself, or the body of a connectionless
/// WAP Push for DM (TS App. E.1; [`crate::protocol::wap::unwrap`]).
pub fn unwrap(datagram: &[u8]) -> Result<&[u8], Dropped> {
    crate::protocol::wap::unwrap(datagram).map_err(|e| match e {
        WapError::Malformed(why) => Dropped::Malformed(format!("WAP Push: {why}")),
        WapError::NotForUs(why) => Dropped::NotForUs(why),
    })
}

pub use crate::protocol::package0::Compose;

/// Encodes a [`Compose`], timestamped now and signed when it has a secret (TS §5.2.1.2).
pub fn compose(c: &Compose) -> Result<Vec<u8>, crate::protocol::DecodeError> {
    package0::compose(c, now_secs())
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
    let start_within_secs = n
        .start_within_secs()
        .map_err(|e| Dropped::Malformed(e.to_string()))?
        // Only a signed notification may set it: from an account without notification
        // credentials anyone could send one, and hold the real server's session back for
        // a day while the gate's spacing drops the server's own notifications.
        .filter(|_| n.digest.is_some());
    Ok(Accepted {
        server_id,
        notification_id: n.notification_id,
        req_mos: n.req_mos,
        start_within_secs,
        signed: n.digest.is_some(),
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
    remember(store, &a, policy)?;
    Ok(a)
}

/// Remembers a notification's NOTIFICATION-ID; a repeat is a duplicate.
fn remember(store: &dyn TreeStore, a: &Accepted, policy: Policy) -> Result<(), Dropped> {
    match a.notification_id {
        Some(id) if !store.note_notification(&a.server_id, id, policy.remember_secs)? => {
            Err(Dropped::Duplicate(id))
        }
        _ => Ok(()),
    }
}

/// What stands between a notification and a session: the account directory, and the
/// per-server spacing of notification-triggered sessions (reference §10.1). A notification
/// without NOTIFICATION-ID can be replayed by anyone who saw it once, and an unsigned one
/// (an account without notification credentials) sent by anyone: those give a server at
/// most one notification-triggered session per `min_interval`. A signed one with a
/// NOTIFICATION-ID is told apart from a replay by its ID (remembered, a repeat dropped),
/// so it is never spaced: a server that needs the device again 30 s later gets it
/// (issue 27; docs/decisions.md, "DM Notifications").
#[derive(Debug)]
pub struct Gate {
    /// The accounts, kept in memory.
    pub accounts: Directory,
    min_interval: Duration,
    last: Mutex<HashMap<String, Instant>>,
    /// NOTIFICATION-IDs accepted and handed to the recorder, not yet known to be stored.
    unrecorded: Mutex<std::collections::HashSet<(String, u16)>>,
    /// Where accepted NOTIFICATION-IDs go to be stored (the daemon's recorder task); unset,
    /// they are stored before the notification is accepted.
    recorder: std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<(String, u16)>>,
}

impl Gate {
    /// A gate spacing sessions by `min_interval` (zero: no spacing).
    pub fn new(min_interval: Duration) -> Gate {
        Gate {
            accounts: Directory::default(),
            min_interval,
            last: Mutex::default(),
            unrecorded: Mutex::default(),
            recorder: std::sync::OnceLock::new(),
        }
    }

    /// From now on, accepted NOTIFICATION-IDs are sent to `recorder` to be stored, instead
    /// of being stored on the accept path: a notification then waits for no write (a
    /// session's commit, a slow fsync). The recorder calls [`Gate::recorded`] once one is
    /// stored; until then the gate itself remembers it, so a duplicate is still refused.
    pub fn record_with(&self, recorder: tokio::sync::mpsc::UnboundedSender<(String, u16)>) {
        let _ = self.recorder.set(recorder);
    }

    /// The recorder stored a NOTIFICATION-ID: the database answers for it now.
    pub fn recorded(&self, server_id: &str, id: u16) {
        self.unrecorded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(server_id.to_owned(), id));
    }

    /// Remembers a notification's NOTIFICATION-ID (a repeat is a duplicate): in memory and
    /// by the recorder when there is one, else in the store at once.
    fn remember(&self, store: &dyn TreeStore, a: &Accepted, policy: Policy) -> Result<(), Dropped> {
        let (Some(id), Some(recorder)) = (a.notification_id, self.recorder.get()) else {
            return remember(store, a, policy);
        };
        let key = (a.server_id.clone(), id);
        let mut unrecorded = self.unrecorded.lock().unwrap_or_else(|p| p.into_inner());
        if unrecorded.contains(&key)
            || store.notification_seen(&a.server_id, id, policy.remember_secs)?
        {
            return Err(Dropped::Duplicate(id));
        }
        if recorder.send(key.clone()).is_err() {
            // No recorder any more (shutting down): store it here.
            drop(unrecorded);
            return remember(store, a, policy);
        }
        unrecorded.insert(key);
        Ok(())
    }

    /// Checks a notification from any transport as [`check`] does; one that is unsigned or
    /// carries no NOTIFICATION-ID is admitted only when its server's last
    /// notification-triggered session is at least the interval ago. The spacing is checked
    /// before the NOTIFICATION-ID is remembered, so a notification refused as too soon may
    /// be sent again later.
    pub fn admit(
        &self,
        store: &dyn TreeStore,
        datagram: &[u8],
        policy: Policy,
    ) -> Result<Accepted, Dropped> {
        let a = verify(store, &self.accounts, datagram, policy)?;
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let spaced = !(a.signed && a.notification_id.is_some());
        if spaced
            && let Some(t) = last.get(&a.server_id)
            && now.duration_since(*t) < self.min_interval
        {
            let wait = self.min_interval - now.duration_since(*t);
            return Err(Dropped::TooSoon {
                server: a.server_id,
                wait_secs: wait.as_secs().max(1),
            });
        }
        self.remember(store, &a, policy)?;
        last.insert(a.server_id.clone(), now);
        Ok(a)
    }
}

#[cfg(test)]
mod tests;
