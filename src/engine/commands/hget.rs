//! HGET (TS §5.3.1): fetch MO data from the repository and store it, after the rights, the delegation rules and the server's quota. A document is stored as it is decoded, each node typed, checked and written in one transaction that a refusal rolls back: a 100,000-leaf MO is never held as nodes (issue 12).

use super::*;
use crate::mo::Builder;
use crate::protocol::dmmo::{DataNode, StreamError};
use crate::tree::{NodeSink, Put};

/// Where an HGET stores data, and what is there now.
struct Target {
    key: InstanceKey,
    path: String,
    /// The node there now, if any.
    existing: Option<Node>,
    /// What the values being replaced hold, in bytes.
    old_bytes: i128,
    /// The permanent nodes being replaced: each must come back (TS §6.3.1.2).
    permanent: HashSet<String>,
    /// For a DACMO entry, the properties of its `<MOID>` node, made in the same
    /// transaction when missing (the first entry for an instance of that MOID).
    parent: Option<NodeProps>,
}

impl Target {
    fn new(key: InstanceKey, path: String) -> Target {
        Target {
            key,
            path,
            existing: None,
            old_bytes: 0,
            permanent: HashSet::new(),
            parent: None,
        }
    }
}

/// What one replacement stores.
enum Data<'b> {
    /// A `dmmo+json` document of one item, decoded as it is stored.
    Document(&'b [u8]),
    /// An item decoded already (an HGET without a ClientURI).
    Decoded(&'b DataNode),
    /// A raw body, as the new leaf's value.
    Leaf(Value),
}

/// Why a streamed HGET stopped: the status for the server, or the store's own failure
/// (kept whole, so that an I/O error still ends the daemon).
enum Stop {
    Fail(Fail),
    Store(StoreError),
}

impl From<MoError> for Stop {
    fn from(e: MoError) -> Stop {
        tracing::info!(error = %e, "fetched data does not fit the MO");
        Stop::Fail(match e {
            MoError::TooLarge { .. } => Fail(sc::DEVICE_FULL),
            _ => Fail(sc::UNSUPPORTED_MEDIA_TYPE),
        })
    }
}

impl From<Fail> for Stop {
    fn from(f: Fail) -> Stop {
        Stop::Fail(f)
    }
}

fn value_size(node: &Node) -> i128 {
    node.value.as_ref().map_or(0, |v| v.size() as i128)
}

/// The server's quota as replacements add up: what the instances it created (its own
/// account included) would hold, and what each instance it did not create would hold.
struct Quota {
    creator: String,
    own: Option<(i128, i128)>,
    foreign: Vec<(InstanceKey, i128)>,
}

impl<P: Ports> Ctx<'_, '_, P> {
    // ---- HGET (TS §5.3.1) ----

    pub(super) async fn hget(&self, server_uri: &str, client_uri: Option<&str>) -> Res {
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
                if e.0.downcast_ref::<crate::engine::BodyTooLarge>().is_some() {
                    Fail(sc::DEVICE_FULL)
                } else {
                    Fail(sc::SERVER_URI_ERROR)
                }
            })?;
        if fetched.body.len() > self.engine.limits.max_document_bytes {
            return Err(Fail(sc::DEVICE_FULL));
        }
        let ct = media_type(&fetched.content_type);
        let uris = match target {
            Some(t) if ct == DMMO => {
                self.store_puts(vec![(t, Data::Document(&fetched.body))])?;
                Vec::new()
            }
            Some(t) => {
                let value = self.raw_value(&t, &ct, &fetched.body)?;
                if t.existing.is_some() {
                    self.set_value(t, value)?;
                } else {
                    self.store_puts(vec![(t, Data::Leaf(value))])?;
                }
                Vec::new()
            }
            None if ct == DMMO => {
                let items = self.decode_mo(&fetched.body)?;
                let targets = self.hget_anywhere(&items)?;
                let uris = targets
                    .iter()
                    .map(|t| uri::concrete(&t.key.moid, &t.key.miid, &t.path))
                    .collect();
                let puts = targets
                    .into_iter()
                    .zip(&items)
                    .map(|(t, item)| (t, Data::Decoded(&item.data)))
                    .collect();
                self.store_puts(puts)?;
                uris
            }
            None => return Err(Fail(sc::UNSUPPORTED_MEDIA_TYPE)),
        };
        Ok(Reply {
            status: Status {
                sc: sc::OK,
                uri: uris,
            },
            ..Reply::code(sc::OK)
        })
    }

    /// Stores each replacement in one transaction, node by node as its data is decoded or
    /// walked: the rights were checked when the targets were chosen; the delegation rule
    /// is checked on each node, the permanent nodes and the quota once a replacement is
    /// whole. Any refusal rolls back the whole command.
    fn store_puts(&self, puts: Vec<(Target, Data<'_>)>) -> Result<(), Fail> {
        let changed: Changed = puts
            .iter()
            .map(|(t, _)| (t.key.clone(), t.path.clone()))
            .collect();
        let then = self.deliveries(&changed)?;
        let mut owners = Vec::with_capacity(puts.len());
        for (t, _) in &puts {
            owners.push(self.store().instance(&t.key.moid, &t.key.miid)?);
        }
        let mut quota = Quota {
            creator: format!("serverid:{}", self.acl.server_id()),
            own: None,
            foreign: Vec::new(),
        };
        let mut refusal = None;
        let mut puts = puts;
        let written = self.store().apply_streamed(
            &mut |sink| {
                let mut all = || -> Result<(), Stop> {
                    for ((t, data), owner) in puts.iter_mut().zip(&owners) {
                        let new_bytes = self.put_one(sink, t, data)?;
                        let owner = owner.as_ref().map(|i| i.creator.as_str());
                        quota.change(self, &t.key, owner, new_bytes, t.old_bytes)?;
                    }
                    Ok(quota.check(self)?)
                };
                match all() {
                    Ok(()) => Ok(()),
                    Err(Stop::Store(e)) => Err(e),
                    Err(Stop::Fail(f)) => {
                        refusal = Some(f);
                        Err(StoreError::Cancelled)
                    }
                }
            },
            &then,
        );
        match written {
            Ok(()) => Ok(()),
            Err(StoreError::Cancelled) => Err(refusal.unwrap_or(Fail(sc::INTERNAL_ERROR))),
            Err(StoreError::Invalid(why)) => {
                // A name given twice in one object, met as the data is stored.
                tracing::info!(server = %self.acl.server_id(), why = %why, "fetched MO data refused by the store");
                Err(Fail(sc::UNSUPPORTED_MEDIA_TYPE))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Streams one replacement into `sink`; gives the bytes its values hold.
    fn put_one(
        &self,
        sink: &mut dyn NodeSink,
        t: &mut Target,
        data: &Data<'_>,
    ) -> Result<i128, Stop> {
        let moid = t.key.moid.as_str();
        let def = self.def(moid).and_then(|r| def_at(r, &t.path));
        let max = self.engine.limits.max_value_bytes;
        sink.begin(&Put {
            key: t.key.clone(),
            path: t.path.clone(),
            ddf_url: self
                .engine
                .registry
                .get(moid)
                .and_then(|r| r.ddf_url.clone()),
            creator: format!("serverid:{}", self.acl.server_id()),
            parent: t.parent.clone(),
        })
        .map_err(Stop::Store)?;
        let mut bytes = 0i128;
        let permanent = &mut t.permanent;
        let mut emit = |node: Node| -> Result<(), Stop> {
            if !permanent.is_empty() {
                permanent.remove(&node.path);
            }
            bytes += value_size(&node);
            self.check_grant(moid, &node.path, node.value.as_ref())?;
            sink.node(&node).map_err(Stop::Store)
        };
        match data {
            Data::Document(body) => {
                let limits = dmmo::Limits {
                    max_bytes: self.engine.limits.max_document_bytes,
                    max_nodes: self.engine.limits.max_nodes,
                };
                let mut builder = Builder::new(moid, def, &t.path, max, &mut emit);
                dmmo::decode_into(body, limits, &mut builder).map_err(|e| match e {
                    StreamError::Decode(e) => {
                        tracing::info!(error = %e, "fetched MO data is malformed");
                        Stop::Fail(Fail(sc::UNSUPPORTED_MEDIA_TYPE))
                    }
                    StreamError::Sink(stop) => stop,
                })?;
            }
            Data::Decoded(node) => {
                node.feed("", &mut Builder::new(moid, def, &t.path, max, &mut emit))?;
            }
            Data::Leaf(value) => emit(mo::leaf_node(moid, def, &t.path, value.clone(), max)?)?,
        }
        // Permanent nodes cannot be removed by a replacement (TS §6.3.1.2).
        if let Some(p) = t.permanent.iter().next() {
            tracing::info!(server = %self.acl.server_id(), node = %p, "HGET refused: it would remove a permanent node");
            return Err(Stop::Fail(Fail(sc::FORBIDDEN)));
        }
        Ok(bytes)
    }

    /// An existing leaf's new value from a raw body: one write, after the quota.
    fn set_value(&self, t: Target, value: Value) -> Result<(), Fail> {
        let max = self.engine.limits.max_value_bytes;
        if value.size() > max {
            return Err(Fail(sc::DEVICE_FULL));
        }
        self.check_grant(&t.key.moid, &t.path, Some(&value))?;
        let owner = self.store().instance(&t.key.moid, &t.key.miid)?;
        let mut quota = Quota {
            creator: format!("serverid:{}", self.acl.server_id()),
            own: None,
            foreign: Vec::new(),
        };
        let owner = owner.as_ref().map(|i| i.creator.as_str());
        quota.change(self, &t.key, owner, value.size() as i128, t.old_bytes)?;
        quota.check(self)?;
        let changed = vec![(t.key.clone(), t.path.clone())];
        let ops = vec![TreeOp::SetValue {
            key: t.key,
            path: t.path,
            value,
        }];
        self.commit(ops, &changed)
    }

    /// DACMO (TS §12.3): "the client MUST reject" a delegation to a Management Authority
    /// that was not provisioned with that MOID at bootstrap. Every MAID a write puts in the
    /// DACMO must be `*` or a server whose `Perm` lists the MOID the grant is for.
    fn check_grant(&self, moid: &str, path: &str, value: Option<&Value>) -> Result<(), Fail> {
        if moid != mo::DACMO || path.rsplit('/').next() != Some("MAID") {
            return Ok(());
        }
        let Some(maid) = value.map(Value::to_text) else {
            return Ok(());
        };
        if maid == "*" {
            return Ok(());
        }
        let granted = path.split('/').next().unwrap_or_default();
        // TS §12.3 writes `serverid:<id>`; Figure 17 bare IDs (§14 #4). An `appid:`
        // authority was never provisioned by bootstrap, so it is refused too.
        let provisioned = match maid.strip_prefix("appid:") {
            Some(_) => false,
            None => {
                let id = maid.strip_prefix("serverid:").unwrap_or(&maid);
                mo::account::load(self.store(), id)?.is_some_and(|a| {
                    a.moids
                        .iter()
                        .any(|m| m == "*" || m == canonical_moid(granted))
                })
            }
        };
        if !provisioned {
            tracing::warn!(server = %self.acl.server_id(), maid = %maid, moid = %granted,
                "delegation refused: that authority was not provisioned with the MOID");
            return Err(Fail(sc::FORBIDDEN));
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
                if !node.props.access.contains(AccessType::REPLACE) {
                    return Err(Fail(sc::FORBIDDEN));
                }
                // Replacing needs Write on every node replaced. The old subtree is
                // visited, not loaded: replacing a large MO holds none of it.
                let mut t = Target::new(loc.key, loc.path);
                let mut denied = Ok(());
                self.store()
                    .visit_subtree(&t.key, &t.path, None, &mut |old| {
                        denied = self.require(&t.key, &old.path, Rights::WRITE);
                        t.old_bytes += value_size(&old);
                        if old.props.scope == Scope::Permanent {
                            t.permanent.insert(old.path);
                        }
                        denied.is_ok()
                    })?;
                denied?;
                t.existing = existing;
                Ok(t)
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
                        Ok(Target::new(
                            InstanceKey::new(moid, miid.clone()),
                            String::new(),
                        ))
                    }
                    Some(Segment::Name(name)) => {
                        if moid == mo::DACMO
                            && let Some(t) = self.dacmo_entry(&parent, &name)?
                        {
                            return Ok(t);
                        }
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
                        Ok(Target::new(ploc.key, path))
                    }
                    Some(_) => Err(Fail(sc::NOT_FOUND)),
                }
            }
            Err(f) => Err(f),
        }
    }

    /// A new DACMO `<MOID>/<MIID>` entry (TS §12.3): the first grant for an instance. Its
    /// `<MOID>` node holds only Read for servers, so the right to add the entry is the
    /// one on the entry itself (Delegate on that instance, which must exist), and its
    /// `<MOID>` node is made with it when missing. `None` for any other new node.
    fn dacmo_entry(&self, parent: &ClientUri, name: &str) -> Result<Option<Target>, Fail> {
        let [Segment::Name(moid)] = parent.path.as_slice() else {
            return Ok(None);
        };
        let mut root = parent.clone();
        root.path.clear();
        let dacmo = self.single(&root)?;
        let path = format!("{moid}/{name}");
        self.require(&dacmo.key, &path, Rights::WRITE)?;
        if self
            .def(mo::DACMO)
            .and_then(|r| def_at(r, &path))
            .is_some_and(|d| !d.access.contains(AccessType::ADD))
        {
            return Err(Fail(sc::FORBIDDEN));
        }
        // Whether the `<MOID>` node is there is decided inside the write: another
        // server's first entry for the MOID may land while this one is fetched.
        let access = self
            .def(mo::DACMO)
            .and_then(|r| def_at(r, moid))
            .map_or(AccessType::ALL, |d| d.access);
        let mut t = Target::new(dacmo.key, path);
        t.parent = Some(NodeProps::interior(access, Scope::Dynamic));
        Ok(Some(t))
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

    /// A raw leaf body (TS App. I.2: text/plain into a leaf) as the value of the leaf at
    /// `t`, only in a media type that fits a leaf: an HTML error page is not a value.
    fn raw_value(&self, t: &Target, ct: &str, body: &[u8]) -> Result<Value, Fail> {
        let def = self.def(&t.key.moid).and_then(|r| def_at(r, &t.path));
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
        if format == Format::Bin {
            return Ok(Value::Bin(body.to_vec()));
        }
        let text = std::str::from_utf8(body).map_err(|_| Fail(sc::UNSUPPORTED_MEDIA_TYPE))?;
        Value::from_text(format, text).map_err(|e| {
            tracing::info!(path = %t.path, error = %e, "fetched data does not fit the leaf");
            Fail(sc::UNSUPPORTED_MEDIA_TYPE)
        })
    }

    /// HGET without a ClientURI: the client chooses where each item goes (the URIs it
    /// reports are the targets'), one target per item.
    fn hget_anywhere(&self, items: &[MoItem]) -> Result<Vec<Target>, Fail> {
        let mut targets: Vec<Target> = Vec::with_capacity(items.len());
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
                Target::new(InstanceKey::new(moid, miid), String::new())
            } else {
                self.hget_target(&u)?
            };
            if !taken.insert(target.key.clone()) && target.path.is_empty() {
                return Err(Fail(sc::UNSUPPORTED_MEDIA_TYPE));
            }
            targets.push(target);
        }
        Ok(targets)
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
}

impl Quota {
    /// A replacement in the instance `key` (made by `owner`, `None` when new) puts
    /// `new` bytes where `old` were. An instance of someone else's (a local one without a
    /// DDF, one delegated to this server) may not grow past the same byte bound.
    fn change<P: Ports>(
        &mut self,
        cx: &Ctx<'_, '_, P>,
        key: &InstanceKey,
        owner: Option<&str>,
        new: i128,
        old: i128,
    ) -> Result<(), Fail> {
        let (instances, bytes) = match self.own {
            Some(u) => u,
            None => {
                // Its queued alerts count against the same bytes (issue 27).
                let u = cx.store().usage(&self.creator)?;
                let queued = cx.store().queued(cx.acl.server_id())?.bytes;
                (
                    i128::from(u.instances),
                    i128::from(u.bytes) + i128::from(queued),
                )
            }
        };
        match owner {
            None => self.own = Some((instances + 1, bytes + new)),
            Some(o) if o == self.creator => self.own = Some((instances, bytes + new - old)),
            Some(_) => {
                let i = match self.foreign.iter().position(|(k, _)| k == key) {
                    Some(i) => i,
                    None => {
                        let t = i128::from(cx.store().instance_bytes(key)?);
                        self.foreign.push((key.clone(), t));
                        self.foreign.len() - 1
                    }
                };
                let total = &mut self.foreign[i].1;
                *total += new - old;
                if *total > i128::from(cx.engine.limits.max_server_bytes) {
                    return Err(Self::over(cx, "an instance it did not create", 1, *total));
                }
            }
        }
        Ok(())
    }

    /// The server's own instances, after every change: within `limits.max-server-*`.
    fn check<P: Ports>(&self, cx: &Ctx<'_, '_, P>) -> Result<(), Fail> {
        let limits = &cx.engine.limits;
        match self.own {
            Some((instances, bytes))
                if instances > i128::from(limits.max_server_instances)
                    || bytes > i128::from(limits.max_server_bytes) =>
            {
                Err(Self::over(cx, "its instances", instances, bytes))
            }
            _ => Ok(()),
        }
    }

    /// 506 Device Full (TS App. C), logged.
    fn over<P: Ports>(cx: &Ctx<'_, '_, P>, what: &str, instances: i128, bytes: i128) -> Fail {
        let limits = &cx.engine.limits;
        tracing::warn!(server = %cx.acl.server_id(), what, instances = %instances, bytes = %bytes,
            max_instances = limits.max_server_instances, max_bytes = limits.max_server_bytes,
            "HGET refused: the server's quota would be exceeded");
        Fail(sc::DEVICE_FULL)
    }
}
