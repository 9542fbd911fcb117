//! The values omadmd's D-Bus API sends: session history rows, accounts and their state, and
//! what `AddAccount` and `Reload` did. The daemon answers with these very types, so the
//! contract is written once.

/// A session history row, sent as the struct `(xssxxssxx)` (fields in this order).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, zbus::Type)]
pub struct HistoryRow {
    /// History id.
    pub id: i64,
    /// The server.
    pub server_id: String,
    /// What started it (`client`, `bootstrap`, `notification:<id>`).
    pub trigger: String,
    /// Start, seconds since the epoch.
    pub started_at: i64,
    /// End, seconds since the epoch; 0 while it runs.
    pub ended_at: i64,
    /// `running`, `ended`, `aborted`, `interrupted`.
    pub outcome: String,
    /// Why it did not end normally ("" when it did).
    pub detail: String,
    /// Packages received.
    pub packages: i64,
    /// Commands executed.
    pub commands: i64,
}

/// One account as `Accounts` lists it, sent as the struct `(sss)`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, zbus::Type)]
pub struct AccountRow {
    /// The server's id (SrvID).
    pub server_id: String,
    /// Its display name.
    pub name: String,
    /// Its DM server URL, redacted.
    pub url: String,
}

/// One account's state (`AccountState`), sent as `a{sv}` with kebab-case keys; keys of
/// absent values are left out.
#[derive(
    Debug, Default, Clone, PartialEq, zbus::SerializeDict, zbus::DeserializeDict, zbus::Type,
)]
#[zbus(signature = "a{sv}", rename_all = "kebab-case")]
pub struct AccountState {
    /// The server's id.
    pub server_id: String,
    /// Its display name.
    pub name: String,
    /// Its DM server URL.
    pub url: String,
    /// Generic Alerts and subscription deliveries waiting to be sent to it.
    pub queued: u32,
    /// Why a session with it is owed (`BootstrapComplete`), when one is.
    pub owed: Option<String>,
    /// The last session's history id.
    pub last_session: Option<i64>,
    /// What started it (`client`, `bootstrap`, `notification:<id>`).
    pub last_trigger: Option<String>,
    /// How it went (`running`, `ended`, `aborted`, `interrupted`).
    pub last_outcome: Option<String>,
    /// When it ended (seconds since the epoch).
    pub last_ended: Option<i64>,
    /// Why it did not end normally.
    pub last_detail: Option<String>,
    /// When the next session with it is due (seconds since the epoch), if one is: a
    /// request waiting, or the next poll.
    pub next_attempt: Option<i64>,
    /// Why then (`due now`, a retry's backoff, the server's `Retry-After`, the poll).
    pub next_reason: Option<String>,
}

/// What `AddAccount` did or would do, sent as `a{sv}` with kebab-case keys.
#[derive(
    Debug, Default, Clone, PartialEq, zbus::SerializeDict, zbus::DeserializeDict, zbus::Type,
)]
#[zbus(signature = "a{sv}", rename_all = "kebab-case")]
pub struct AccountChange {
    /// `applied`, `unchanged` (this content was applied before), or `would-apply` (a dry
    /// run).
    pub outcome: String,
    /// The SrvIDs of the accounts it provisions (each owed a BootstrapComplete session).
    pub servers: Vec<String>,
    /// Of those, the ones that had an account already, which it replaces.
    pub replaced: Vec<String>,
    /// The instances it writes (`MOID/MIID`).
    pub instances: Vec<String>,
}

/// What `Reload` did, sent as `a{sv}` with kebab-case keys.
#[derive(
    Debug, Default, Clone, PartialEq, zbus::SerializeDict, zbus::DeserializeDict, zbus::Type,
)]
#[zbus(signature = "a{sv}", rename_all = "kebab-case")]
pub struct ReloadReport {
    /// The configuration files read, in the order applied.
    pub files: Vec<String>,
    /// The bootstrap files applied now (new, or changed since they were applied).
    pub applied: Vec<String>,
    /// The servers those provisioned, each owed a BootstrapComplete session (asked for).
    pub servers: Vec<String>,
    /// The bootstrap files refused: (file name, why).
    pub refused: Vec<(String, String)>,
    /// The settings (`section.key`) whose new values take effect only after a restart.
    pub restart_needed: Vec<String>,
    /// The MOIDs whose definitions (DDFs) were read for the first time: a handler package
    /// installed since the last start or reload.
    pub mos_added: Vec<String>,
    /// The MOIDs whose definitions are gone from the DDF directories; their instances
    /// stay in the tree, unchanged, and no server can address them until a DDF returns.
    pub mos_removed: Vec<String>,
}
