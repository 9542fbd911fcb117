//! One method per DM command (TS §5.3), each returning the command's status (and, for GET,
//! its part), one file per command family; this file holds what they share. Checks come
//! before effects: a command that fails changes nothing.

mod delete_exec;
mod flow;
mod get;
mod hget;
mod hget_store;
mod hsend;
mod subscribe;

use std::collections::HashSet;

use super::acl::{Acl, Rights};
use super::resolve::{self, Location, ResolveError};
use super::{Engine, ExecRequest, Executed, Method, Ports, Sent, Session, Shown, sc};
use crate::mo::ddf::DefNode;
use crate::mo::{self, MoError, canonical_moid, def_at};
use crate::protocol::dmmo::{self, MoItem};
use crate::protocol::packages::{Command, Part, Status};
use crate::protocol::uri::{self, ClientUri, InstanceSel, Segment};
use crate::tree::{
    AccessType, Format, InstanceKey, Node, NodeProps, OutItem, Outgoing, Scope, StoreError,
    Subscription, TreeOp, Value, child_path,
};

/// A command's answer.
#[derive(Debug)]
pub(super) struct Reply {
    pub status: Status,
    pub part: Option<Part>,
    pub cont: Option<String>,
    pub end: bool,
}

impl Reply {
    fn code(sc: u16) -> Reply {
        Reply {
            status: Status::code(sc),
            part: None,
            cont: None,
            end: false,
        }
    }
}

/// A failed command: its status code.
#[derive(Debug)]
struct Fail(u16);

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Fail {
        tracing::error!(error = %e, "tree store failed during a command");
        Fail(sc::INTERNAL_ERROR)
    }
}

type Res = Result<Reply, Fail>;

/// The nodes a command changed: (instance, path of the top of the change).
type Changed = Vec<(InstanceKey, String)>;

/// Alert type for an EXEC result when the handler gives none (reference §4.4: the alert
/// type is the MO's business; this one carries `{"ResultCode": status}`).
pub const EXEC_RESULT_ALERT: &str = "urn:omadmd:at:exec:1.0:Result";

/// Media types we can produce and consume for MO data besides a leaf's own.
const DMMO: &str = dmmo::MEDIA_TYPE;

pub(super) struct Ctx<'c, 'a, P> {
    pub engine: &'c Engine<'a, P>,
    pub acl: &'c Acl<'a>,
    pub session: &'c Session,
}

fn media_type(ct: &str) -> String {
    ct.split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

impl<P: Ports> Ctx<'_, '_, P> {
    pub async fn execute(&self, cmd: &Command, index: usize) -> Reply {
        let result = match cmd {
            Command::Hget {
                server_uri,
                client_uri,
            } => self.hget(server_uri, client_uri.as_deref()).await,
            Command::Hput {
                server_uri,
                client_uris,
            } => self.hsend(Method::Put, server_uri, client_uris).await,
            Command::Hpost {
                server_uri,
                client_uris,
            } => self.hsend(Method::Post, server_uri, client_uris).await,
            Command::Delete { client_uri } => self.delete(client_uri),
            Command::Exec {
                client_uri,
                server_uri,
            } => self.exec(client_uri, server_uri.as_deref()).await,
            Command::Get { client_uri } => self.get(client_uri, index),
            Command::Show { server_uri } => self.show(server_uri).await,
            Command::Cont { server_uri } => self.cont(server_uri).await,
            Command::End => Ok(Reply {
                end: true,
                ..Reply::code(sc::OK)
            }),
            Command::Default { server_uri, moid } => self.default(server_uri, moid).await,
            Command::Sub {
                server_uri,
                client_uri,
            } => self.sub(server_uri, client_uri).await,
            Command::Unsub { client_uri } => self.unsub(client_uri),
            Command::Unknown { name } => {
                tracing::info!(command = %name, "unknown command");
                Err(Fail(sc::NOT_IMPLEMENTED))
            }
            Command::Malformed { name, why } => {
                tracing::info!(command = %name, why = %why, "malformed command");
                Err(Fail(sc::BAD_REQUEST))
            }
        };
        result.unwrap_or_else(|Fail(code)| Reply::code(code))
    }

    fn store(&self) -> &dyn crate::tree::TreeStore {
        self.engine.store
    }

    fn def(&self, moid: &str) -> Option<&DefNode> {
        self.engine.registry.get(moid).map(|r| &r.def.root)
    }

    fn parse(&self, s: &str) -> Result<ClientUri, Fail> {
        ClientUri::parse(s).map_err(|e| {
            tracing::info!(error = %e, "bad ClientURI");
            Fail(sc::BAD_REQUEST)
        })
    }

    /// Substitutes a ServerURI and checks it is an http(s) URL.
    fn server_url(&self, server_uri: &str) -> Result<url::Url, Fail> {
        let s = uri::substitute(server_uri, &self.session.uri_values);
        match url::Url::parse(&s) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => Ok(u),
            _ => {
                tracing::info!(server_uri = %uri::redact(&s), "ServerURI is not an http(s) URL");
                Err(Fail(sc::BAD_REQUEST))
            }
        }
    }

    /// True when the server may read `node`: it has the Get access type, is not a secret
    /// (TS §12.2 gives `Auth/Noti/Secret` Get, but no server reads key material), and the
    /// server holds Read on it.
    /// Refuses (403, logged) a URL the server named for later use that leads where a
    /// server's URLs may not (docs/security.md): checked now, and again when it is used.
    async fn reachable(&self, url: &url::Url) -> Result<(), Fail> {
        self.engine
            .ports
            .check_target(url.as_str())
            .await
            .map_err(|e| {
                tracing::warn!(server = %self.acl.server_id(), error = %e, "a URL the server named was refused");
                Fail(sc::FORBIDDEN)
            })
    }

    fn readable(&self, key: &InstanceKey, node: &Node) -> bool {
        node.props.access.contains(AccessType::GET)
            && !node.props.secret
            && self
                .acl
                .rights(key, &node.path)
                .is_ok_and(|r| r.has(Rights::READ))
    }

    fn resolve(&self, u: &ClientUri) -> Result<Vec<Location>, Fail> {
        resolve::resolve(self.store(), u, &|k, n| self.readable(k, n)).map_err(|e| match e {
            ResolveError::NotFound => Fail(sc::NOT_FOUND),
            ResolveError::Ambiguous(why) => {
                tracing::info!(why = %why, "ambiguous ClientURI");
                Fail(sc::BAD_REQUEST)
            }
            ResolveError::Store(e) => e.into(),
        })
    }

    fn single(&self, u: &ClientUri) -> Result<Location, Fail> {
        if u.has_wildcard() {
            return Err(Fail(sc::BAD_REQUEST));
        }
        let mut locs = self.resolve(u)?;
        locs.pop().ok_or(Fail(sc::NOT_FOUND))
    }

    fn require(&self, key: &InstanceKey, path: &str, r: Rights) -> Result<(), Fail> {
        if self.acl.rights(key, path)?.has(r) {
            Ok(())
        } else {
            Err(Fail(sc::FORBIDDEN))
        }
    }

    /// The top of a read: it must have the Get access type and not be a secret (403), and
    /// the server must have the right to read it.
    fn check_top(&self, loc: &Location, top: &Node) -> Result<(), Fail> {
        if !top.props.access.contains(AccessType::GET) {
            return Err(Fail(sc::FORBIDDEN));
        }
        if top.props.secret {
            tracing::warn!(server = %self.acl.server_id(), node = %loc.uri(), "a server asked to read a secret; refused");
            return Err(Fail(sc::FORBIDDEN));
        }
        self.require(&loc.key, &top.path, Rights::READ)
    }

    /// The nodes a read returns, after checking the server may read every one (nodes
    /// without the Get access type and secrets are left out; an unreadable or secret top
    /// is 403).
    fn read_subtree(&self, loc: &Location, level: Option<u32>) -> Result<Vec<Node>, Fail> {
        let nodes = self.store().subtree(&loc.key, &loc.path, level)?;
        self.check_top(loc, nodes.first().ok_or(Fail(sc::NOT_FOUND))?)?;
        let mut hidden: Vec<&str> = Vec::new();
        for n in &nodes {
            if hidden.iter().any(|h| n.path.starts_with(&format!("{h}/"))) {
                continue;
            }
            if !n.props.access.contains(AccessType::GET) || n.props.secret {
                hidden.push(&n.path);
                continue;
            }
            self.require(&loc.key, &n.path, Rights::READ)?;
        }
        Ok(nodes)
    }

    fn cv_matches(&self, u: &ClientUri, locs: &[Location]) -> Result<bool, Fail> {
        let Some(cv) = &u.cv else { return Ok(false) };
        for l in locs {
            let current = self
                .store()
                .instance(&l.key.moid, &l.key.miid)?
                .map(|i| i.cv);
            if current.as_ref() != Some(cv) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// MO data items for locations (TS §7.2.1.4): `CV` and `DDF` on instance roots.
    fn items(&self, locs: &[(Location, Vec<Node>)]) -> Result<Vec<MoItem>, Fail> {
        let mut items = Vec::new();
        for (loc, nodes) in locs {
            items.extend(mo::item(self.store(), &loc.key, &loc.path, nodes)?);
        }
        Ok(items)
    }

    /// A single leaf's raw body and media type.
    fn raw_leaf(node: &Node) -> Option<(String, Vec<u8>)> {
        let v = node.value.as_ref()?;
        let body = match v {
            Value::Bin(b) => b.clone(),
            other => other.to_text().into_bytes(),
        };
        let default = if v.format() == Format::Bin {
            "application/octet-stream"
        } else {
            "text/plain"
        };
        Some((
            node.props.mime.clone().unwrap_or_else(|| default.into()),
            body,
        ))
    }

    /// Applies a command's writes in one transaction, with a delivery queued for every
    /// subscription the changes touch (TS §5.3.11; the data is read when it is sent).
    fn commit(&self, mut ops: Vec<TreeOp>, changed: &[(InstanceKey, String)]) -> Result<(), Fail> {
        ops.extend(self.deliveries(changed)?);
        self.store().apply(&ops).map_err(|e| match e {
            StoreError::Invalid(why) => {
                tracing::warn!(why = %why, "write refused by the store");
                Fail(sc::BAD_REQUEST)
            }
            e => e.into(),
        })
    }

    /// The SUB deliveries (TS §5.3.11) a change at `changed` owes, to land with it.
    fn deliveries(&self, changed: &[(InstanceKey, String)]) -> Result<Vec<TreeOp>, Fail> {
        Ok(deliveries(self.store(), changed)?)
    }
}

/// The SUB deliveries (TS §5.3.11) a change at `changed` owes, to land with it, whoever
/// made the change (a server's command, or a local handler's write).
pub(super) fn deliveries(
    store: &dyn crate::tree::TreeStore,
    changed: &[(InstanceKey, String)],
) -> Result<Vec<TreeOp>, StoreError> {
    let mut ops = Vec::new();
    for sub in store.subscriptions()? {
        let Ok(su) = ClientUri::parse(&sub.client_uri) else {
            continue;
        };
        if changed.iter().any(|(k, p)| covers(&su, k, p)) {
            ops.push(TreeOp::Enqueue(Outgoing {
                id: 0,
                server_id: sub.server_id.clone(),
                item: OutItem::Delivery {
                    client_uri: sub.client_uri,
                    to: sub.server_uri,
                },
            }));
        }
    }
    Ok(ops)
}

/// True when a change at (`key`, `path`) may touch what `sub` addresses: the same MOID and
/// instance (x-names and wildcards match anything), and one path a prefix of the other.
fn covers(sub: &ClientUri, key: &InstanceKey, path: &str) -> bool {
    if canonical_moid(&sub.moid) != key.moid {
        return false;
    }
    if let InstanceSel::Miid(m) = &sub.instance
        && *m != key.miid
    {
        return false;
    }
    let changed: Vec<&str> = if path.is_empty() {
        Vec::new()
    } else {
        path.split('/').collect()
    };
    sub.path.iter().zip(&changed).all(|(s, c)| match s {
        Segment::Name(n) => n == c,
        Segment::XName(_) | Segment::All => true,
    })
}
