//! What the journal beside the tree holds: the outbox, subscriptions, pending EXECs, the
//! session history, owed sessions, and per-creator usage.

use super::StoreError;

/// Why a session is owed to a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OwedReason {
    /// A bootstrap for the server applied: TS §8 requires a session with the
    /// `urn:oma:at:dm:2.0:BootstrapComplete` alert.
    BootstrapComplete,
}

impl OwedReason {
    /// Storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            OwedReason::BootstrapComplete => "BootstrapComplete",
        }
    }

    pub(in crate::tree) fn parse(s: &str) -> Option<Self> {
        (s == "BootstrapComplete").then_some(OwedReason::BootstrapComplete)
    }
}

/// What waits in the outbox for a server.
#[derive(Debug, Clone, PartialEq)]
pub enum OutItem {
    /// A Generic Alert (its JSON, TS §7.2.1.5) a local service queued, sent in the next
    /// session's Package#1.
    Alert {
        /// The alert.
        alert: serde_json::Value,
        /// Where it must go, when not the SrvURI.
        to: Option<String>,
    },
    /// An asynchronous EXEC result (TS §5.3.5): the Generic Alert that reports it, sent in a
    /// Package#1 to the EXEC's ServerURI (`to`) rather than the account's SrvURI.
    ExecResult {
        /// The executed node's ClientURI.
        client_uri: String,
        /// The EXEC's final status.
        status: u16,
        /// The alert that reports it (the handler's own, or a `ResultCode` one).
        alert: serde_json::Value,
        /// The EXEC's ServerURI, when it gave one.
        to: Option<String>,
    },
    /// A subscription delivery (TS §5.3.11): the subscribed ClientURI's data, read when it is
    /// sent, to PUT to the subscription's ServerURI.
    Delivery {
        /// The subscribed ClientURI.
        client_uri: String,
        /// The subscription's ServerURI.
        to: String,
    },
}

/// How an EXEC result is stored in the outbox's `payload`.
#[derive(serde::Serialize, serde::Deserialize)]
struct ExecResultRow {
    client_uri: String,
    status: u16,
    alert: serde_json::Value,
}

impl OutItem {
    /// The Generic Alert this item sends in a Package#1, and where it must go when not the
    /// account's SrvURI; `None` for what is not an alert (a subscription delivery).
    pub fn alert(&self) -> Option<(&serde_json::Value, Option<&str>)> {
        match self {
            OutItem::Alert { alert, to } | OutItem::ExecResult { alert, to, .. } => {
                Some((alert, to.as_deref()))
            }
            OutItem::Delivery { .. } => None,
        }
    }

    /// The row's `kind`, `target` and `payload` columns.
    pub(in crate::tree) fn to_row(
        &self,
    ) -> Result<(&'static str, Option<&str>, Vec<u8>), StoreError> {
        Ok(match self {
            OutItem::Alert { alert, to } => (
                "alert",
                to.as_deref(),
                serde_json::to_vec(alert).map_err(|e| StoreError::Invalid(e.to_string()))?,
            ),
            OutItem::Delivery { client_uri, to } => (
                "delivery",
                Some(to.as_str()),
                client_uri.clone().into_bytes(),
            ),
            OutItem::ExecResult {
                client_uri,
                status,
                alert,
                to,
            } => (
                "exec-result",
                to.as_deref(),
                serde_json::to_vec(&ExecResultRow {
                    client_uri: client_uri.clone(),
                    status: *status,
                    alert: alert.clone(),
                })
                .map_err(|e| StoreError::Invalid(e.to_string()))?,
            ),
        })
    }

    /// From a row; `None` for a kind a newer build wrote, or a payload that does not read.
    pub(in crate::tree) fn from_row(
        kind: &str,
        target: Option<String>,
        payload: &[u8],
    ) -> Option<OutItem> {
        match kind {
            "alert" => Some(OutItem::Alert {
                alert: serde_json::from_slice(payload).ok()?,
                to: target,
            }),
            "delivery" => Some(OutItem::Delivery {
                client_uri: String::from_utf8(payload.to_vec()).ok()?,
                to: target?,
            }),
            "exec-result" => {
                let row: ExecResultRow = serde_json::from_slice(payload).ok()?;
                Some(OutItem::ExecResult {
                    client_uri: row.client_uri,
                    status: row.status,
                    alert: row.alert,
                    to: target,
                })
            }
            _ => None,
        }
    }
}

/// Something waiting for a server.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// Outbox row id (0 before it is stored).
    pub id: i64,
    /// The server it is for.
    pub server_id: String,
    /// What it is.
    pub item: OutItem,
}

/// A SUB registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The server.
    pub server_id: String,
    /// The ClientURI as the server gave it.
    pub client_uri: String,
    /// Where changes go.
    pub server_uri: String,
}

/// An EXEC whose result a handler will report later (TS §5.4.1, asynchronous reporting).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingExec {
    /// The token the handler answers with.
    pub token: String,
    /// The server that sent the EXEC.
    pub server_id: String,
    /// The executed node's ClientURI (the result alert's SourceURI).
    pub client_uri: String,
    /// The EXEC's ServerURI, where the result goes, if given.
    pub report_to: Option<String>,
    /// The handler's unique bus name, or the well-known name it registered under: only
    /// that handler may answer.
    pub handler: String,
    /// When it was accepted (seconds since the epoch; set by the store).
    pub created_at: i64,
}

/// One DM session as recorded in the history.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SessionRecord {
    /// Row id.
    pub id: i64,
    /// The server.
    pub server_id: String,
    /// What started it (`client`, `notification:<id>`, `bootstrap`, …).
    pub trigger: String,
    /// Start, seconds since the epoch.
    pub started_at: i64,
    /// End, if it ended.
    pub ended_at: Option<i64>,
    /// `running`, `ended`, `aborted`, `interrupted`.
    pub outcome: String,
    /// Why it aborted, when it did.
    pub detail: Option<String>,
    /// Packages received from the server.
    pub packages: i64,
    /// Commands executed.
    pub commands: i64,
}

/// What one creator's instances hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Instances.
    pub instances: u64,
    /// Bytes of node values.
    pub bytes: u64,
}

/// What waits to be reported to one server (issue 27): the Generic Alerts and EXEC results
/// queued for it, and the EXECs a handler is still working on, whose results will queue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Queued {
    /// Alerts and results, queued or to come.
    pub alerts: u64,
    /// Their stored bytes (payload and target URL; for one to come, its ClientURI and URL).
    pub bytes: u64,
    /// The distinct URLs named for them (EXEC ServerURIs), sorted.
    pub targets: Vec<String>,
}

/// A session the daemon owes a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwedSession {
    /// SrvID of the server.
    pub server_id: String,
    /// Why.
    pub reason: OwedReason,
    /// When it became owed (seconds since the epoch).
    pub since: i64,
}
