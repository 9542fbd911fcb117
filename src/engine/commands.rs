//! One method per DM command (TS §5.3), each returning the command's status (and, for GET,
//! its part). Checks come before effects: a command that fails changes nothing.

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
    AccessType, Format, InstanceKey, Node, Outgoing, OutgoingKind, Scope, StoreError, Subscription,
    TreeOp, Value, child_path,
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

/// Where an HGET stores data.
struct Target {
    key: InstanceKey,
    path: String,
    /// The node there now, if any.
    existing: Option<Node>,
}

fn media_type(ct: &str) -> String {
    ct.split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

fn accepts(list: &[String], ours: &str) -> bool {
    list.iter().any(|a| {
        let a = media_type(a);
        a == ours
            || a == "*/*"
            || a.strip_suffix("/*")
                .is_some_and(|major| ours.starts_with(&format!("{major}/")))
    })
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
            Command::Default { server_uri, moid } => self.default(server_uri, moid),
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

    /// The nodes a read returns, after checking the server may read every one (nodes
    /// without the Get access type and secrets are left out; an unreadable or secret top
    /// is 403).
    fn read_subtree(&self, loc: &Location, level: Option<u32>) -> Result<Vec<Node>, Fail> {
        let nodes = self.store().subtree(&loc.key, &loc.path, level)?;
        let top = nodes.first().ok_or(Fail(sc::NOT_FOUND))?;
        if !top.props.access.contains(AccessType::GET) {
            return Err(Fail(sc::FORBIDDEN));
        }
        if top.props.secret {
            tracing::warn!(server = %self.acl.server_id(), node = %loc.uri(), "a server asked to read a secret; refused");
            return Err(Fail(sc::FORBIDDEN));
        }
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
        for sub in self.store().subscriptions()? {
            let Ok(su) = ClientUri::parse(&sub.client_uri) else {
                continue;
            };
            if changed.iter().any(|(k, p)| covers(&su, k, p)) {
                ops.push(TreeOp::Enqueue(Outgoing {
                    id: 0,
                    server_id: sub.server_id.clone(),
                    kind: OutgoingKind::Delivery,
                    target: Some(sub.server_uri.clone()),
                    payload: sub.client_uri.into_bytes(),
                }));
            }
        }
        self.store().apply(&ops).map_err(|e| match e {
            StoreError::Invalid(why) => {
                tracing::warn!(why = %why, "write refused by the store");
                Fail(sc::BAD_REQUEST)
            }
            e => e.into(),
        })
    }

    // ---- HGET (TS §5.3.1) ----

    async fn hget(&self, server_uri: &str, client_uri: Option<&str>) -> Res {
        let url = self.server_url(server_uri)?;
        let target = match client_uri {
            Some(c) => Some(self.hget_target(&self.parse(c)?)?),
            None => None,
        };
        let leaf_mime = target
            .as_ref()
            .and_then(|t| t.existing.as_ref())
            .filter(|n| !n.is_interior())
            .and_then(|n| n.props.mime.clone());
        let mut accept = vec![DMMO];
        if let Some(m) = leaf_mime.as_deref() {
            accept.push(m);
        } else if target.is_some() {
            accept.push("text/plain");
        }
        let fetched = self
            .engine
            .ports
            .fetch(url.as_str(), &accept)
            .await
            .map_err(|e| {
                tracing::info!(url = %uri::redact(url.as_str()), error = %e, "HGET fetch failed");
                Fail(sc::SERVER_URI_ERROR)
            })?;
        if fetched.body.len() > self.engine.limits.max_document_bytes {
            return Err(Fail(sc::DEVICE_FULL));
        }
        let ct = media_type(&fetched.content_type);
        let (ops, changed, uris) = match target {
            Some(t) => {
                let (ops, changed) = self.hget_at(&t, &ct, &fetched.body)?;
                (ops, changed, Vec::new())
            }
            None => {
                if ct != DMMO {
                    return Err(Fail(sc::UNSUPPORTED_MEDIA_TYPE));
                }
                self.hget_anywhere(&fetched.body)?
            }
        };
        self.check_delegations(&ops)?;
        self.check_quota(&ops)?;
        self.commit(ops, &changed)?;
        Ok(Reply {
            status: Status {
                sc: sc::OK,
                uri: uris,
            },
            ..Reply::code(sc::OK)
        })
    }

    /// DACMO (TS §12.3): "the client MUST reject" a delegation to a Management Authority
    /// that was not provisioned with that MOID at bootstrap. Every MAID a write puts in the
    /// DACMO must be `*` or a server whose `Perm` lists the MOID the grant is for.
    fn check_delegations(&self, ops: &[TreeOp]) -> Result<(), Fail> {
        let mut grants: Vec<(&str, String)> = Vec::new();
        for op in ops {
            match op {
                TreeOp::PutInstance { key, nodes, .. } | TreeOp::PutSubtree { key, nodes }
                    if key.moid == mo::DACMO =>
                {
                    for n in nodes {
                        if let Some(v) = &n.value {
                            grants.push((&n.path, v.to_text()));
                        }
                    }
                }
                TreeOp::SetValue { key, path, value } if key.moid == mo::DACMO => {
                    grants.push((path, value.to_text()));
                }
                _ => {}
            }
        }
        for (path, maid) in grants {
            if path.rsplit('/').next() != Some("MAID") || maid == "*" {
                continue;
            }
            let moid = path.split('/').next().unwrap_or_default();
            // TS §12.3 writes `serverid:<id>`; Figure 17 bare IDs (§14 #4). An `appid:`
            // authority was never provisioned by bootstrap, so it is refused too.
            let provisioned = match maid.strip_prefix("appid:") {
                Some(_) => false,
                None => {
                    let id = maid.strip_prefix("serverid:").unwrap_or(&maid);
                    mo::account::load(self.store(), id)?.is_some_and(|a| {
                        a.moids
                            .iter()
                            .any(|m| m == "*" || m == canonical_moid(moid))
                    })
                }
            };
            if !provisioned {
                tracing::warn!(server = %self.acl.server_id(), maid = %maid, moid = %moid,
                    "delegation refused: that authority was not provisioned with the MOID");
                return Err(Fail(sc::FORBIDDEN));
            }
        }
        Ok(())
    }

    /// The per-server quota (`limits.max-server-bytes`, `limits.max-server-instances`): what
    /// the instances this server created (its own account included) would hold after
    /// `ops`; and what an instance it did not create would hold, which is bounded by the
    /// same byte limit. Over either: 506 Device Full (TS App. C), logged.
    fn check_quota(&self, ops: &[TreeOp]) -> Result<(), Fail> {
        let creator = format!("serverid:{}", self.acl.server_id());
        let size = |nodes: &[Node]| -> i128 {
            nodes
                .iter()
                .map(|n| n.value.as_ref().map_or(0, |v| v.size() as i128))
                .sum()
        };
        let limits = &self.engine.limits;
        let over = |what: &str, instances: i128, bytes: i128| {
            tracing::warn!(server = %self.acl.server_id(), what, instances = %instances, bytes = %bytes,
                max_instances = limits.max_server_instances, max_bytes = limits.max_server_bytes,
                "HGET refused: the server's quota would be exceeded");
            Fail(sc::DEVICE_FULL)
        };
        let mut own: Option<(i128, i128)> = None;
        let mut foreign: Vec<(InstanceKey, i128)> = Vec::new();
        for op in ops {
            let (key, path, new) = match op {
                TreeOp::PutInstance { key, nodes, .. } => (key, "", size(nodes)),
                TreeOp::PutSubtree { key, nodes } => (
                    key,
                    nodes.first().map_or("", |n| n.path.as_str()),
                    size(nodes),
                ),
                TreeOp::SetValue { key, path, value } => (key, path.as_str(), value.size() as i128),
                _ => continue,
            };
            let old = || -> Result<i128, Fail> {
                Ok(match op {
                    TreeOp::SetValue { .. } => self
                        .store()
                        .node(key, path)?
                        .and_then(|n| n.value)
                        .map_or(0, |v| v.size() as i128),
                    _ => size(&self.store().subtree(key, path, None)?),
                })
            };
            let (instances, bytes) = match own {
                Some(u) => u,
                None => {
                    let u = self.store().usage(&creator)?;
                    (i128::from(u.instances), i128::from(u.bytes))
                }
            };
            match self.store().instance(&key.moid, &key.miid)? {
                // A new instance: only a PutInstance makes one, as this server's.
                None => own = Some((instances + 1, bytes + new)),
                Some(i) if i.creator == creator => own = Some((instances, bytes + new - old()?)),
                // Someone else's instance (a local one without a DDF, one delegated to
                // this server): it may not grow past the same bound.
                Some(_) => {
                    let total = match foreign.iter_mut().find(|(k, _)| k == key) {
                        Some((_, t)) => t,
                        None => {
                            let t = i128::from(self.store().instance_bytes(key)?);
                            foreign.push((key.clone(), t));
                            &mut foreign.last_mut().ok_or(Fail(sc::INTERNAL_ERROR))?.1
                        }
                    };
                    *total += new - old()?;
                    if *total > i128::from(limits.max_server_bytes) {
                        return Err(over("an instance it did not create", 1, *total));
                    }
                }
            }
        }
        if let Some((instances, bytes)) = own
            && (instances > i128::from(limits.max_server_instances)
                || bytes > i128::from(limits.max_server_bytes))
        {
            return Err(over("its instances", instances, bytes));
        }
        Ok(())
    }

    /// Subscriptions and DEFAULT registrations are rows a server adds; each change may
    /// fan out to every subscription. At most `limits.max-server-registrations` per server;
    /// over it: 503 (the TS's only code for "not now" outside HGET), logged.
    fn check_registrations(&self, replacing: bool) -> Result<(), Fail> {
        let max = self.engine.limits.max_server_registrations;
        if !replacing && self.store().registrations(self.acl.server_id())? >= max {
            tracing::warn!(server = %self.acl.server_id(), max,
                "SUB/DEFAULT refused: the server holds as many registrations as allowed");
            return Err(Fail(sc::SERVICE_UNAVAILABLE));
        }
        Ok(())
    }

    /// Where an HGET with a ClientURI stores, checked for rights before anything is fetched.
    fn hget_target(&self, u: &ClientUri) -> Result<Target, Fail> {
        if u.has_wildcard() {
            return Err(Fail(sc::BAD_REQUEST));
        }
        let moid = canonical_moid(&u.moid).to_owned();
        match self.resolve(u) {
            Ok(mut locs) => {
                let loc = locs.pop().ok_or(Fail(sc::NOT_FOUND))?;
                let existing = self.store().node(&loc.key, &loc.path)?;
                let node = existing.as_ref().ok_or(Fail(sc::NOT_FOUND))?;
                // Replacing needs Write on every node replaced and the Replace access type.
                for n in self.store().subtree(&loc.key, &loc.path, None)? {
                    self.require(&loc.key, &n.path, Rights::WRITE)?;
                }
                if !node.props.access.contains(AccessType::REPLACE) {
                    return Err(Fail(sc::FORBIDDEN));
                }
                Ok(Target {
                    key: loc.key,
                    path: loc.path,
                    existing,
                })
            }
            Err(Fail(sc::NOT_FOUND)) => {
                // A new node: its parent must exist, its own name must be a real name.
                let mut parent = u.clone();
                match parent.path.pop() {
                    None => {
                        // A new instance, named by the server.
                        let InstanceSel::Miid(miid) = &u.instance else {
                            return Err(Fail(sc::NOT_FOUND));
                        };
                        if !self.acl.may_create(&moid) {
                            return Err(Fail(sc::FORBIDDEN));
                        }
                        if self
                            .def(&moid)
                            .is_some_and(|d| !d.access.contains(AccessType::ADD))
                        {
                            return Err(Fail(sc::FORBIDDEN));
                        }
                        Ok(Target {
                            key: InstanceKey::new(moid, miid.clone()),
                            path: String::new(),
                            existing: None,
                        })
                    }
                    Some(Segment::Name(name)) => {
                        let ploc = self.single(&parent)?;
                        let pnode = self
                            .store()
                            .node(&ploc.key, &ploc.path)?
                            .ok_or(Fail(sc::NOT_FOUND))?;
                        if !pnode.is_interior() {
                            return Err(Fail(sc::NOT_FOUND));
                        }
                        self.require(&ploc.key, &ploc.path, Rights::WRITE)?;
                        let path = child_path(&ploc.path, &name);
                        let def = self.def(&moid).map(|root| def_at(root, &path));
                        match def {
                            Some(None) => return Err(Fail(sc::UNSUPPORTED_MEDIA_TYPE)),
                            Some(Some(d)) if !d.access.contains(AccessType::ADD) => {
                                return Err(Fail(sc::FORBIDDEN));
                            }
                            _ => {}
                        }
                        Ok(Target {
                            key: ploc.key,
                            path,
                            existing: None,
                        })
                    }
                    Some(_) => Err(Fail(sc::NOT_FOUND)),
                }
            }
            Err(f) => Err(f),
        }
    }

    fn data_error(e: MoError) -> Fail {
        tracing::info!(error = %e, "fetched data does not fit the MO");
        match e {
            MoError::TooLarge { .. } => Fail(sc::DEVICE_FULL),
            _ => Fail(sc::UNSUPPORTED_MEDIA_TYPE),
        }
    }

    fn decode_mo(&self, body: &[u8]) -> Result<Vec<MoItem>, Fail> {
        let limits = dmmo::Limits {
            max_bytes: self.engine.limits.max_document_bytes,
            max_nodes: self.engine.limits.max_nodes,
        };
        dmmo::decode(body, limits).map_err(|e| {
            tracing::info!(error = %e, "fetched MO data is malformed");
            Fail(sc::UNSUPPORTED_MEDIA_TYPE)
        })
    }

    /// The writes that put `data` (or a raw leaf body) at `t`.
    fn hget_at(&self, t: &Target, ct: &str, body: &[u8]) -> Result<(Vec<TreeOp>, Changed), Fail> {
        let moid = t.key.moid.clone();
        let def_root = self.def(&moid);
        let def = def_root.and_then(|r| def_at(r, &t.path));
        let max = self.engine.limits.max_value_bytes;
        let nodes = if ct == DMMO {
            let mut items = self.decode_mo(body)?;
            if items.len() != 1 {
                return Err(Fail(sc::UNSUPPORTED_MEDIA_TYPE));
            }
            let item = items.remove(0);
            mo::build_nodes(&moid, def, &t.path, &item.data, max).map_err(Self::data_error)?
        } else {
            // A raw leaf body (TS App. I.2: text/plain into a leaf), only in a media type
            // that fits a leaf: an HTML error page is not a value.
            let declared = t
                .existing
                .as_ref()
                .and_then(|n| n.props.mime.as_deref())
                .or_else(|| def.and_then(|d| d.mime.first().map(String::as_str)));
            if !matches!(ct, "text/plain" | "application/octet-stream")
                && declared.is_none_or(|m| media_type(m) != ct)
            {
                tracing::info!(server = %self.acl.server_id(), content_type = %ct, "HGET data in a media type no leaf takes");
                return Err(Fail(sc::UNSUPPORTED_MEDIA_TYPE));
            }
            let format = match (&t.existing, def) {
                (Some(n), _) => n.props.format,
                (None, Some(d)) => d.format,
                (None, None) => Format::Chr,
            };
            if format == Format::Node {
                return Err(Fail(sc::UNSUPPORTED_MEDIA_TYPE));
            }
            let value = if format == Format::Bin {
                Value::Bin(body.to_vec())
            } else {
                let text =
                    std::str::from_utf8(body).map_err(|_| Fail(sc::UNSUPPORTED_MEDIA_TYPE))?;
                Value::from_text(format, text).map_err(|e| {
                    Self::data_error(MoError::Value {
                        path: t.path.clone(),
                        source: e,
                    })
                })?
            };
            if t.existing.is_some() {
                if value.size() > max {
                    return Err(Fail(sc::DEVICE_FULL));
                }
                let ops = vec![TreeOp::SetValue {
                    key: t.key.clone(),
                    path: t.path.clone(),
                    value,
                }];
                return Ok((ops, vec![(t.key.clone(), t.path.clone())]));
            }
            vec![mo::leaf_node(&moid, def, &t.path, value, max).map_err(Self::data_error)?]
        };
        // Permanent nodes cannot be removed by a replacement (TS §6.3.1.2).
        if let Some(existing) = &t.existing {
            let kept: HashSet<&str> = nodes.iter().map(|n| n.path.as_str()).collect();
            for old in self.store().subtree(&t.key, &existing.path, None)? {
                if old.props.scope == Scope::Permanent && !kept.contains(old.path.as_str()) {
                    return Err(Fail(sc::FORBIDDEN));
                }
            }
        }
        let op = if t.path.is_empty() {
            TreeOp::PutInstance {
                key: t.key.clone(),
                ddf_url: self
                    .engine
                    .registry
                    .get(&moid)
                    .and_then(|r| r.ddf_url.clone()),
                creator: format!("serverid:{}", self.acl.server_id()),
                nodes,
            }
        } else {
            TreeOp::PutSubtree {
                key: t.key.clone(),
                nodes,
            }
        };
        Ok((vec![op], vec![(t.key.clone(), t.path.clone())]))
    }

    /// HGET without a ClientURI: the client chooses where each item goes and reports it.
    fn hget_anywhere(&self, body: &[u8]) -> Result<(Vec<TreeOp>, Changed, Vec<String>), Fail> {
        let items = self.decode_mo(body)?;
        let (mut ops, mut changed, mut uris) = (Vec::new(), Vec::new(), Vec::new());
        let mut taken: HashSet<InstanceKey> = HashSet::new();
        for item in items {
            let u = self
                .parse(&item.client_uri)
                .map_err(|_| Fail(sc::UNSUPPORTED_MEDIA_TYPE))?;
            let target = if u.instance == InstanceSel::Only && u.path.is_empty() {
                // "MOID//": a new instance, named after the data's root (TS App. I.2).
                let moid = canonical_moid(&u.moid).to_owned();
                if !self.acl.may_create(&moid) {
                    return Err(Fail(sc::FORBIDDEN));
                }
                let miid = self.free_miid(&moid, &item.name, &taken)?;
                Target {
                    key: InstanceKey::new(moid, miid),
                    path: String::new(),
                    existing: None,
                }
            } else {
                self.hget_target(&u)?
            };
            if !taken.insert(target.key.clone()) && target.path.is_empty() {
                return Err(Fail(sc::UNSUPPORTED_MEDIA_TYPE));
            }
            let single = dmmo::encode(std::slice::from_ref(&item));
            let (o, c) = self.hget_at(&target, DMMO, &single)?;
            uris.push(uri::concrete(
                &target.key.moid,
                &target.key.miid,
                &target.path,
            ));
            ops.extend(o);
            changed.extend(c);
        }
        Ok((ops, changed, uris))
    }

    fn free_miid(
        &self,
        moid: &str,
        wanted: &str,
        taken: &HashSet<InstanceKey>,
    ) -> Result<String, Fail> {
        let base = if uri::is_real_name(wanted) {
            wanted.to_owned()
        } else {
            "i".to_owned()
        };
        for n in 1.. {
            let miid = if n == 1 {
                base.clone()
            } else {
                format!("{base}-{n}")
            };
            if self.store().instance(moid, &miid)?.is_none()
                && !taken.contains(&InstanceKey::new(moid, miid.clone()))
            {
                return Ok(miid);
            }
        }
        unreachable!("an unbounded search always finds a free name")
    }

    // ---- HPUT / HPOST (TS §5.3.2–3) ----

    async fn hsend(&self, method: Method, server_uri: &str, client_uris: &[String]) -> Res {
        let url = self.server_url(server_uri)?;
        let mut sel: Vec<(Location, Vec<Node>)> = Vec::new();
        let (mut found, mut all_cached) = (false, true);
        for c in client_uris {
            let u = self.parse(c)?;
            let locs = match self.resolve(&u) {
                Ok(l) => l,
                Err(Fail(sc::NOT_FOUND)) => continue,
                Err(f) => return Err(f),
            };
            found = true;
            let cached = self.cv_matches(&u, &locs)?;
            all_cached &= cached;
            for loc in locs {
                let nodes = self.read_subtree(&loc, u.level)?;
                if !cached {
                    sel.push((loc, nodes));
                }
            }
        }
        if sel.is_empty() {
            return Err(Fail(if found && all_cached {
                sc::NOT_MODIFIED
            } else {
                sc::NOT_FOUND
            }));
        }
        // Our formats, in preference order: a single leaf raw, else MO data.
        let raw = match sel.as_slice() {
            [(_, nodes)] if nodes.len() == 1 && !nodes[0].is_interior() => {
                Self::raw_leaf(&nodes[0])
            }
            _ => None,
        };
        let dmmo_body = || -> Result<Vec<u8>, Fail> { Ok(dmmo::encode(&self.items(&sel)?)) };
        let mut offers: Vec<(String, Vec<u8>)> = Vec::new();
        if let Some(r) = raw {
            offers.push(r);
        }
        offers.push((DMMO.to_owned(), dmmo_body()?));
        let server_accept = &self.session.server_accept;
        let pick = |list: &[String], offers: &[(String, Vec<u8>)], skip: Option<&str>| {
            offers
                .iter()
                .find(|(ct, _)| (list.is_empty() || accepts(list, ct)) && Some(ct.as_str()) != skip)
                .cloned()
        };
        let (ct, body) = pick(server_accept, &offers, None).ok_or(Fail(sc::NOT_ACCEPTABLE))?;
        match self
            .engine
            .ports
            .send(method, url.as_str(), &ct, body)
            .await
        {
            Ok(Sent::Ok) => Ok(Reply::code(sc::OK)),
            Ok(Sent::Unsupported { accept }) => {
                // TS §5.5: retry once with a format the repository lists, if we have one.
                let (ct2, body2) =
                    pick(&accept, &offers, Some(&ct)).ok_or(Fail(sc::NOT_ACCEPTABLE))?;
                match self
                    .engine
                    .ports
                    .send(method, url.as_str(), &ct2, body2)
                    .await
                {
                    Ok(Sent::Ok) => Ok(Reply::code(sc::OK)),
                    Ok(Sent::Unsupported { .. }) => Err(Fail(sc::NOT_ACCEPTABLE)),
                    Err(e) => Err(send_failed(&url, &e)),
                }
            }
            Err(e) => Err(send_failed(&url, &e)),
        }
    }

    // ---- DELETE (TS §5.3.4) ----

    fn delete(&self, client_uri: &str) -> Res {
        let loc = self.single(&self.parse(client_uri)?)?;
        let nodes = self.store().subtree(&loc.key, &loc.path, None)?;
        let top = nodes.first().ok_or(Fail(sc::NOT_FOUND))?;
        if !top.props.access.contains(AccessType::DELETE)
            || nodes.iter().any(|n| n.props.scope == Scope::Permanent)
        {
            return Err(Fail(sc::NOT_ALLOWED));
        }
        for n in &nodes {
            self.require(&loc.key, &n.path, Rights::WRITE)?;
        }
        let mut ops = vec![TreeOp::DeleteSubtree {
            key: loc.key.clone(),
            path: loc.path.clone(),
        }];
        if loc.path.is_empty() {
            // The instance's DACMO entries go with it.
            for d in self.store().instances(Some(mo::DACMO))? {
                let dk = InstanceKey::new(mo::DACMO, d.miid);
                let p = format!("{}/{}", loc.key.moid, loc.key.miid);
                if self.store().node(&dk, &p)?.is_some() {
                    ops.push(TreeOp::DeleteSubtree { key: dk, path: p });
                }
            }
        }
        self.commit(ops, &[(loc.key, loc.path)])?;
        Ok(Reply::code(sc::OK))
    }

    // ---- EXEC (TS §5.3.5, §5.4.1) ----

    async fn exec(&self, client_uri: &str, server_uri: Option<&str>) -> Res {
        let loc = self.single(&self.parse(client_uri)?)?;
        let node = self
            .store()
            .node(&loc.key, &loc.path)?
            .ok_or(Fail(sc::NOT_FOUND))?;
        if !node.props.access.contains(AccessType::EXEC) {
            return Err(Fail(sc::NOT_ALLOWED));
        }
        self.require(&loc.key, &loc.path, Rights::EXECUTE)?;
        let report_to = server_uri.map(|s| self.server_url(s)).transpose()?;
        if let Some(u) = &report_to {
            self.reachable(u).await?;
        }
        let report_to = report_to.map(String::from);
        let request = ExecRequest {
            server_id: self.acl.server_id().to_owned(),
            client_uri: loc.uri(),
            location: loc,
            report_to: report_to.clone(),
        };
        match self.engine.ports.exec(&request).await {
            Executed::Done { status, alert } => {
                let status = if sc::is_valid(status) {
                    status
                } else {
                    sc::INTERNAL_ERROR
                };
                let Some(to) = report_to else {
                    return Ok(Reply::code(status));
                };
                // With a ServerURI the result MUST come asynchronously (TS §5.3.5).
                let alert =
                    alert.unwrap_or_else(|| super::exec_result_alert(&request.client_uri, status));
                let payload = serde_json::to_vec(&alert).map_err(|_| Fail(sc::INTERNAL_ERROR))?;
                self.commit(
                    vec![TreeOp::Enqueue(Outgoing {
                        id: 0,
                        server_id: request.server_id.clone(),
                        kind: OutgoingKind::Alert,
                        target: Some(to),
                        payload,
                    })],
                    &[],
                )?;
                Ok(Reply::code(sc::ACCEPTED))
            }
            Executed::Accepted => Ok(Reply::code(sc::ACCEPTED)),
            Executed::NoHandler => Err(Fail(sc::NOT_ALLOWED)),
            Executed::Failed(why) => {
                tracing::warn!(node = %request.client_uri, why = %why, "EXEC failed");
                Err(Fail(sc::INTERNAL_ERROR))
            }
        }
    }

    // ---- GET (TS §5.3.6, App. F) ----

    fn get(&self, client_uri: &str, index: usize) -> Res {
        let u = self.parse(client_uri)?;
        let locs = self.resolve(&u)?;
        let mut sel = Vec::with_capacity(locs.len());
        for loc in locs {
            let nodes = self.read_subtree(&loc, u.level)?;
            sel.push((loc, nodes));
        }
        let locs: Vec<Location> = sel.iter().map(|(l, _)| l.clone()).collect();
        if self.cv_matches(&u, &locs)? {
            return Err(Fail(sc::NOT_MODIFIED));
        }
        let part = match sel.as_slice() {
            // One leaf: its raw value with its MIME type (TS App. F).
            [(_, nodes)] if !u.has_wildcard() && nodes.len() == 1 && !nodes[0].is_interior() => {
                if nodes[0].value == Some(Value::Null) {
                    return Err(Fail(sc::NO_CONTENT));
                }
                let (ct, body) = Self::raw_leaf(&nodes[0]).ok_or(Fail(sc::NO_CONTENT))?;
                Part {
                    index,
                    content_type: ct,
                    body,
                }
            }
            _ => {
                let items = self.items(&sel)?;
                if items.is_empty() {
                    return Err(Fail(sc::NO_CONTENT));
                }
                Part {
                    index,
                    content_type: DMMO.into(),
                    body: dmmo::encode(&items),
                }
            }
        };
        Ok(Reply {
            part: Some(part),
            ..Reply::code(sc::OK)
        })
    }

    // ---- SHOW (TS §5.3.7) ----

    async fn show(&self, server_uri: &str) -> Res {
        let url = self.server_url(server_uri)?;
        if url.scheme() != "https" && !self.session.allow_http_show {
            tracing::info!(url = %uri::redact(url.as_str()), "SHOW refused: not https");
            return Err(Fail(sc::BAD_REQUEST));
        }
        // The client does not wait for the user (TS §5.3.7); the agent only launches.
        Ok(Reply::code(
            match self
                .engine
                .ports
                .show(url.as_str(), self.acl.server_id())
                .await
            {
                Shown::Launched => sc::OK,
                Shown::Declined => sc::USER_REJECTED,
                Shown::NoAgent => sc::NOT_IMPLEMENTED,
                Shown::Failed(why) => {
                    tracing::warn!(why = %why, "SHOW failed");
                    sc::INTERNAL_ERROR
                }
            },
        ))
    }

    // ---- CONT (TS §5.3.8) ----

    async fn cont(&self, server_uri: &str) -> Res {
        let url = self.server_url(server_uri)?;
        self.reachable(&url).await?;
        // Never move a session from https to http.
        if url.scheme() == "http" && self.session.target.starts_with("https:") {
            tracing::warn!(url = %uri::redact(url.as_str()), "CONT to http refused in an https session");
            return Err(Fail(sc::BAD_REQUEST));
        }
        Ok(Reply {
            cont: Some(url.into()),
            ..Reply::code(sc::OK)
        })
    }

    // ---- DEFAULT (TS §5.3.10) ----

    fn default(&self, server_uri: &str, moid: &str) -> Res {
        if moid.is_empty() || moid.contains('/') {
            return Err(Fail(sc::BAD_REQUEST));
        }
        self.server_url(server_uri)?;
        if !self.acl.moid_permitted(moid) {
            return Err(Fail(sc::FORBIDDEN));
        }
        let mine = self
            .store()
            .default_source(canonical_moid(moid))?
            .is_some_and(|(s, _)| s == self.acl.server_id());
        self.check_registrations(mine)?;
        self.commit(
            vec![TreeOp::SetDefault {
                moid: canonical_moid(moid).to_owned(),
                server_id: self.acl.server_id().to_owned(),
                server_uri: server_uri.to_owned(),
            }],
            &[],
        )?;
        Ok(Reply::code(sc::OK))
    }

    // ---- SUB / UNSUB (TS §5.3.11–12) ----

    async fn sub(&self, server_uri: &str, client_uri: &str) -> Res {
        let url = self.server_url(server_uri)?;
        self.reachable(&url).await?;
        let u = self.parse(client_uri)?;
        for loc in self.resolve(&u)? {
            self.read_subtree(&loc, None)?;
        }
        let me = self.acl.server_id();
        let again = self
            .store()
            .subscriptions()?
            .iter()
            .any(|s| s.server_id == me && s.client_uri == client_uri);
        self.check_registrations(again)?;
        self.commit(
            vec![TreeOp::Subscribe(Subscription {
                server_id: self.acl.server_id().to_owned(),
                client_uri: client_uri.to_owned(),
                server_uri: url.into(),
            })],
            &[],
        )?;
        Ok(Reply::code(sc::OK))
    }

    fn unsub(&self, client_uri: &str) -> Res {
        let me = self.acl.server_id();
        if !self
            .store()
            .subscriptions()?
            .iter()
            .any(|s| s.server_id == me && s.client_uri == client_uri)
        {
            return Err(Fail(sc::NOT_FOUND));
        }
        self.commit(
            vec![TreeOp::Unsubscribe {
                server_id: me.to_owned(),
                client_uri: client_uri.to_owned(),
            }],
            &[],
        )?;
        Ok(Reply::code(sc::OK))
    }
}

/// A repository PUT/POST that failed: 419 (TS App. C), with a log line.
fn send_failed(url: &url::Url, e: &super::PortError) -> Fail {
    tracing::info!(url = %uri::redact(url.as_str()), error = %e, "repository send failed");
    Fail(sc::SERVER_URI_ERROR)
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
