//! The management tree: MO instances and their nodes (TS §6.3), and the `TreeStore` trait
//! that keeps the rest of the daemon free of SQL.
//!
//! An MO instance is keyed by (MOID, MIID). Its nodes are addressed by their path from the
//! instance root: `""` is the root itself, `"Auth/Noti/Secret"` a leaf three levels down.
//! Node names never contain `/` (see [`is_node_name`]), so paths can be compared and
//! range-scanned as plain strings.

mod migrations;
pub use migrations::BEFORE_SOURCES;
mod path;
mod sqlite;
pub use path::{child_path, is_node_name, parent_path, split_path};
mod value;

mod journal;

pub use journal::{
    OutItem, Outgoing, OwedReason, OwedSession, PendingExec, Queued, SessionRecord, Subscription,
    Usage,
};
pub use sqlite::{EXIT_IO_ERROR, OpenMode, SqliteStore, is_io_error};
pub use value::{Format, Value, ValueError};

use std::fmt;

/// Errors of the tree store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file could not be opened or used.
    #[error("database {path}: {source}")]
    Open {
        /// The file.
        path: String,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// The file exists but is not an omadmd database (or is damaged); it was left untouched.
    #[error("database {path} is not usable: {reason}; the file was left untouched")]
    Foreign {
        /// The file.
        path: String,
        /// Why it was refused.
        reason: String,
    },
    /// An I/O error around the database file (creating it, setting its mode).
    #[error("database {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A query failed.
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
    /// The addressed instance does not exist.
    #[error("no MO instance {moid}/{miid}")]
    NoInstance {
        /// MOID.
        moid: String,
        /// MIID.
        miid: String,
    },
    /// The addressed node does not exist.
    #[error("no node {path:?} in {moid}/{miid}")]
    NoNode {
        /// MOID.
        moid: String,
        /// MIID.
        miid: String,
        /// Path from the instance root.
        path: String,
    },
    /// A write would have broken the tree's shape (a node without its parent, a leaf with
    /// children, a bad name).
    #[error("invalid tree write: {0}")]
    Invalid(String),
    /// The caller of [`Tree::apply_streamed`] gave up on the write for a reason of its own
    /// (data that did not fit, a quota); nothing was written.
    #[error("the write was given up by its caller; nothing was written")]
    Cancelled,
    /// A value stored in the database does not match its recorded format.
    #[error("corrupt value at {path:?}: {reason}")]
    Corrupt {
        /// Path of the node.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// Access types of a node (TS §6.3.1.1, DDF `AccessType`), as a bitmask.
///
/// DM 2.0 maps commands onto them: GET/HPUT/HPOST need `Get`, HGET needs `Add` to create and
/// `Replace` to overwrite, DELETE needs `Delete`, EXEC needs `Exec`. DM 1.x's `Copy` is read
/// from DDFs and ignored, since DM 2.0 has no copy command.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AccessType(u8);

impl AccessType {
    /// `Add`.
    pub const ADD: AccessType = AccessType(1);
    /// `Delete`.
    pub const DELETE: AccessType = AccessType(2);
    /// `Exec`.
    pub const EXEC: AccessType = AccessType(4);
    /// `Get`.
    pub const GET: AccessType = AccessType(8);
    /// `Replace`.
    pub const REPLACE: AccessType = AccessType(16);
    /// No access: a node never exposed to servers.
    pub const NONE: AccessType = AccessType(0);
    /// Every access type.
    pub const ALL: AccessType = AccessType(31);

    const NAMES: [(AccessType, &'static str); 5] = [
        (Self::ADD, "Add"),
        (Self::DELETE, "Delete"),
        (Self::EXEC, "Exec"),
        (Self::GET, "Get"),
        (Self::REPLACE, "Replace"),
    ];

    /// The raw bitmask, as stored.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// From a stored bitmask; unknown bits are dropped.
    pub const fn from_bits(bits: u8) -> Self {
        AccessType(bits & Self::ALL.0)
    }

    /// True when every right in `other` is also in `self`.
    pub fn contains(self, other: AccessType) -> bool {
        self.0 & other.0 == other.0
    }

    /// The DDF element name of one right, if `name` is one we know.
    pub fn from_name(name: &str) -> Option<AccessType> {
        Self::NAMES
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(a, _)| *a)
    }
}

impl std::ops::BitOr for AccessType {
    type Output = AccessType;
    fn bitor(self, rhs: AccessType) -> AccessType {
        AccessType(self.0 | rhs.0)
    }
}

impl fmt::Debug for AccessType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for AccessType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Self::NAMES
            .iter()
            .filter(|(a, _)| self.contains(*a))
            .map(|(_, n)| *n)
            .collect();
        if names.is_empty() {
            f.write_str("-")
        } else {
            f.write_str(&names.join(","))
        }
    }
}

/// Scope of a node (TS §6.3.1.2): permanent nodes cannot be created or deleted by servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Scope {
    /// Created by HGET, removed by DELETE.
    #[default]
    Dynamic,
    /// Part of the device; DELETE gives 405.
    Permanent,
}

/// One node as stored: its place, its properties and (for leaves) its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Path from the instance root (`""` for the root).
    pub path: String,
    /// Properties from the MO definition (or defaults for MOs without one).
    pub props: NodeProps,
    /// The value of a leaf; `None` for interior nodes.
    pub value: Option<Value>,
}

impl Node {
    /// The node's own name (last path segment); the root's name is its MIID.
    pub fn name<'a>(&'a self, miid: &'a str) -> &'a str {
        match self.path.rsplit_once('/') {
            Some((_, name)) => name,
            None if self.path.is_empty() => miid,
            None => &self.path,
        }
    }

    /// True for interior nodes.
    pub fn is_interior(&self) -> bool {
        self.props.format == Format::Node
    }
}

/// The properties a node carries in the tree (TS §6.3.1).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeProps {
    /// Format (`node` for interior nodes).
    pub format: Format,
    /// MIME type of a leaf's value, when the definition names one.
    pub mime: Option<String>,
    /// Permanent or dynamic.
    pub scope: Scope,
    /// Access types the definition allows.
    pub access: AccessType,
    /// A secret never leaves the daemon, whatever the access type says (DMAcc keys).
    pub secret: bool,
}

impl NodeProps {
    /// Interior node properties with the given access and scope.
    pub fn interior(access: AccessType, scope: Scope) -> Self {
        NodeProps {
            format: Format::Node,
            mime: None,
            scope,
            access,
            secret: false,
        }
    }

    /// Leaf properties for a format with the given access and scope.
    pub fn leaf(format: Format, access: AccessType, scope: Scope) -> Self {
        NodeProps {
            format,
            mime: None,
            scope,
            access,
            secret: false,
        }
    }
}

/// An MO instance's identity and bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceInfo {
    /// MO identifier, e.g. `urn:oma:mo:oma-dm-devinfo:1.2`.
    pub moid: String,
    /// Instance identifier, unique per MOID.
    pub miid: String,
    /// DDF URL to report in MOS and dmmo+json, when known.
    pub ddf_url: Option<String>,
    /// Who created the instance (`serverid:<SrvID>`, `appid:<id>`, or `local`); the creator
    /// holds full rights by default (TS §10).
    pub creator: String,
    /// Cache validator (TS §11): changes on every change in the instance and never repeats,
    /// even across delete and re-create.
    pub cv: String,
}

/// Identifies an instance in write operations.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceKey {
    /// MOID.
    pub moid: String,
    /// MIID.
    pub miid: String,
}

impl InstanceKey {
    /// Builds a key.
    pub fn new(moid: impl Into<String>, miid: impl Into<String>) -> Self {
        InstanceKey {
            moid: moid.into(),
            miid: miid.into(),
        }
    }
}

impl fmt::Display for InstanceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.moid, self.miid)
    }
}

/// One step of an atomic write. A batch of these is applied in one transaction: all of it
/// lands, or none of it.
#[derive(Debug, Clone)]
pub enum TreeOp {
    /// Creates an instance, or replaces an existing one whole (HGET to an instance root,
    /// factory bootstrap). `nodes` must start with the root (`path == ""`) and list parents
    /// before children.
    PutInstance {
        /// Which instance.
        key: InstanceKey,
        /// DDF URL to record.
        ddf_url: Option<String>,
        /// Creator to record when the instance is new; an existing instance keeps its creator.
        creator: String,
        /// The whole tree of the instance.
        nodes: Vec<Node>,
    },
    /// Replaces the subtree at `nodes[0].path` (which must exist or whose parent must exist)
    /// with `nodes`, parents before children.
    PutSubtree {
        /// Which instance.
        key: InstanceKey,
        /// The new subtree, its top first.
        nodes: Vec<Node>,
    },
    /// Sets one leaf's value.
    SetValue {
        /// Which instance.
        key: InstanceKey,
        /// Path of the leaf.
        path: String,
        /// The new value.
        value: Value,
    },
    /// Deletes a node and everything below it (deleting `""` deletes the instance).
    DeleteSubtree {
        /// Which instance.
        key: InstanceKey,
        /// Path of the top node.
        path: String,
    },
    /// Bookkeeping that lands with the tree change: a bootstrap source (a file name) was
    /// applied with this content digest.
    RecordBootstrap {
        /// Where the bootstrap came from (file name).
        source: String,
        /// SHA-256 of its content, hex.
        sha256: String,
    },
    /// Bookkeeping that lands with a bootstrap: which source provisioned a server's
    /// account (replacing what was recorded).
    SetAccountSource {
        /// The server's SrvID.
        server_id: String,
        /// The bootstrap source (a file name, or what `AddAccount` was given).
        source: String,
    },
    /// Forgets everything the journal holds for a server whose account is removed: its
    /// outbox, subscriptions, DEFAULT registrations, owed sessions, seen NOTIFICATION-IDs,
    /// pending EXECs and the source of its account. Its session history stays.
    ForgetServer {
        /// The server's SrvID.
        server_id: String,
    },
    /// Queues something for a server (a Generic Alert, a subscription delivery) until the
    /// server has taken it.
    Enqueue(Outgoing),
    /// Registers (or replaces) a subscription.
    Subscribe(Subscription),
    /// Removes a server's subscription to a ClientURI.
    Unsubscribe {
        /// The server.
        server_id: String,
        /// The ClientURI of the SUB.
        client_uri: String,
    },
    /// Records where configuration for a MOID comes from (DEFAULT, TS §5.3.10); a later
    /// DEFAULT for the same MOID replaces it.
    SetDefault {
        /// The MOID.
        moid: String,
        /// The server that said so.
        server_id: String,
        /// The ServerURI (unsubstituted).
        server_uri: String,
    },
    /// Records an EXEC a handler accepted and will answer later.
    AddPendingExec(PendingExec),
    /// Forgets a pending EXEC (answered, or its handler failed).
    RemovePendingExec {
        /// Its token.
        token: String,
    },
    /// Clears a session owed to a server (it took place).
    ClearOwed {
        /// The server's SrvID.
        server_id: String,
        /// Why it was owed.
        reason: OwedReason,
    },
    /// Bookkeeping that lands with the tree change: a session is owed to a server.
    OweSession {
        /// The server's SrvID.
        server_id: String,
        /// Why the session is owed.
        reason: OwedReason,
    },
}

/// A replacement written node by node ([`Tree::apply_streamed`]): the instance (when
/// `path` is empty, created if new) or the subtree at `path` (whose parent must exist) is
/// replaced by the nodes that follow, its top first and parents before children.
#[derive(Debug, Clone, PartialEq)]
pub struct Put {
    /// Which instance.
    pub key: InstanceKey,
    /// The top of what is replaced (`""`: the whole instance).
    pub path: String,
    /// DDF URL to record, for an instance.
    pub ddf_url: Option<String>,
    /// Creator to record when the instance is new.
    pub creator: String,
    /// The parent of `path`, made with these properties when it is missing (an interior
    /// node, decided inside the write: the DACMO's `<MOID>` nodes).
    pub parent: Option<NodeProps>,
}

/// Where [`Tree::apply_streamed`] takes its nodes.
pub trait NodeSink {
    /// Starts a replacement: from here on, what it replaces is gone.
    fn begin(&mut self, put: &Put) -> Result<(), StoreError>;
    /// The next node of the replacement begun last.
    fn node(&mut self, node: Node) -> Result<(), StoreError>;
}

/// How many sessions the history keeps; older ones are dropped as new ones start, so a
/// flood of notifications or years of polling cannot grow the database without bound.
pub const HISTORY_KEEP: u32 = 1000;

/// The management tree: MO instances and their nodes. Each method is atomic; `apply` runs a
/// batch in one transaction (its journal entries with it). Reads and writes scale with the
/// subtree touched, not the tree.
pub trait Tree: fmt::Debug + Send + Sync {
    /// Every instance, optionally only those of one MOID, ordered by MOID then MIID.
    fn instances(&self, moid: Option<&str>) -> Result<Vec<InstanceInfo>, StoreError>;
    /// One instance.
    fn instance(&self, moid: &str, miid: &str) -> Result<Option<InstanceInfo>, StoreError>;
    /// One node.
    fn node(&self, key: &InstanceKey, path: &str) -> Result<Option<Node>, StoreError>;
    /// The direct children of a node, ordered by name.
    fn children(&self, key: &InstanceKey, path: &str) -> Result<Vec<Node>, StoreError>;
    /// A node and everything below it, parents before children (`max_depth` levels below
    /// the node at most, `None` for all).
    fn subtree(
        &self,
        key: &InstanceKey,
        path: &str,
        max_depth: Option<u32>,
    ) -> Result<Vec<Node>, StoreError>;
    /// The nodes `subtree` gives, one at a time and depth first (a node's whole subtree
    /// before its next sibling, siblings by name), without holding them all: what a GET of
    /// a large MO streams from. Stops early when `visit` returns false.
    fn visit_subtree(
        &self,
        key: &InstanceKey,
        path: &str,
        max_depth: Option<u32>,
        visit: &mut dyn FnMut(Node) -> bool,
    ) -> Result<(), StoreError>;
    /// Applies a batch of writes in one transaction.
    fn apply(&self, ops: &[TreeOp]) -> Result<(), StoreError>;
    /// [`apply`](Tree::apply) for replacements too large to hold as nodes (an HGET of a
    /// large MO): in one transaction, `fill` begins each replacement and gives the sink its
    /// nodes as they are built, then `then` is applied. An error anywhere rolls all of it
    /// back, `fill`'s own included ([`StoreError::Cancelled`] when it gave up for a reason
    /// of its own).
    fn apply_streamed(
        &self,
        fill: &mut dyn FnMut(&mut dyn NodeSink) -> Result<(), StoreError>,
        then: &[TreeOp],
    ) -> Result<(), StoreError>;
    /// A number, read from memory, that changes after every committed [`TreeStore::apply`]
    /// of this store object: caches of tree data compare it to know when to read again.
    fn generation(&self) -> u64;
    /// What the instances made by `creator` (`serverid:<SrvID>`) hold: their number and
    /// the bytes of their values (as [`Value::size`] counts them), for per-server quotas.
    fn usage(&self, creator: &str) -> Result<Usage, StoreError>;
    /// The bytes of one instance's values, counted as [`TreeStore::usage`] counts them.
    fn instance_bytes(&self, key: &InstanceKey) -> Result<u64, StoreError>;
}

/// The daemon's journal beside the tree: bootstrap records, owed sessions, the outbox,
/// subscriptions, DEFAULT sources, pending EXECs, seen NOTIFICATION-IDs and the session
/// history. Written through [`Tree::apply`] batches where a change belongs with a tree
/// change, and by its own methods otherwise.
pub trait Journal: fmt::Debug + Send + Sync {
    /// The digest recorded for a bootstrap source, if it was applied.
    fn bootstrap_digest(&self, source: &str) -> Result<Option<String>, StoreError>;
    /// The bootstrap source that last provisioned a server's account, if one is recorded
    /// (accounts provisioned before schema v8, or by a server, have none).
    fn account_source(&self, server_id: &str) -> Result<Option<String>, StoreError>;
    /// Sessions owed to servers, oldest first.
    fn owed_sessions(&self) -> Result<Vec<OwedSession>, StoreError>;
    /// What waits for a server, oldest first.
    fn outbox(&self, server_id: &str) -> Result<Vec<Outgoing>, StoreError>;
    /// The alerts queued for a server and the EXEC results still to come, for its quota.
    fn queued(&self, server_id: &str) -> Result<Queued, StoreError>;
    /// Removes outbox entries a server has taken.
    fn remove_outgoing(&self, ids: &[i64]) -> Result<(), StoreError>;
    /// Every subscription.
    fn subscriptions(&self) -> Result<Vec<Subscription>, StoreError>;
    /// A pending EXEC by token.
    fn pending_exec(&self, token: &str) -> Result<Option<PendingExec>, StoreError>;
    /// The pending EXECs a handler accepted, or every pending EXEC for `None`.
    fn pending_execs(&self, handler: Option<&str>) -> Result<Vec<PendingExec>, StoreError>;
    /// Records the start of a session; returns its id. Only the newest [`HISTORY_KEEP`]
    /// sessions are kept.
    fn session_started(&self, server_id: &str, trigger: &str) -> Result<i64, StoreError>;
    /// Records how a session finished.
    fn session_finished(
        &self,
        id: i64,
        outcome: &str,
        detail: Option<&str>,
        packages: i64,
        commands: i64,
    ) -> Result<(), StoreError>;
    /// Records a NOTIFICATION-ID from a server; false when it was already seen within
    /// `window_secs` (a duplicate, TS §5.2.1.2). Older records are forgotten, since the
    /// 16-bit IDs wrap around.
    fn note_notification(
        &self,
        server_id: &str,
        id: u16,
        window_secs: i64,
    ) -> Result<bool, StoreError>;
    /// Whether a NOTIFICATION-ID from a server was recorded within `window_secs` (a read:
    /// it never waits for a write).
    fn notification_seen(
        &self,
        server_id: &str,
        id: u16,
        window_secs: i64,
    ) -> Result<bool, StoreError>;
    /// Marks every session still recorded as running as interrupted (at shutdown, and at
    /// start for those a crash left); returns how many.
    fn interrupt_running(&self) -> Result<usize, StoreError>;
    /// The most recent sessions (at most [`HISTORY_KEEP`]), newest first.
    fn sessions(&self, limit: u32) -> Result<Vec<SessionRecord>, StoreError>;
    /// How many subscriptions and DEFAULT registrations a server holds.
    fn registrations(&self, server_id: &str) -> Result<u64, StoreError>;
    /// The most recent session with one server.
    fn last_session(&self, server_id: &str) -> Result<Option<SessionRecord>, StoreError>;
    /// Where configuration for a MOID comes from: (server id, ServerURI).
    fn default_source(&self, moid: &str) -> Result<Option<(String, String)>, StoreError>;
}

/// A whole store: the tree and its journal.
pub trait TreeStore: Tree + Journal {}

impl<T: Tree + Journal> TreeStore for T {}
