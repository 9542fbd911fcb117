//! Writing an HGET's data (TS §5.3.1): the replacements of one command in one transaction, each node typed by the MO's definition, checked (delegation, permanent nodes, the server's quota) and written as the document is decoded, so no MO is ever held whole; a refusal rolls all of it back.

use std::cell::RefCell;

use super::*;
use crate::mo::Builder;
use crate::protocol::dmmo::{DataSink, ItemHead, ItemSink, StreamError};
use crate::tree::{NodeSink, Put};

/// Where an HGET stores data, and what is there now.
pub(super) struct Target {
    pub(super) key: InstanceKey,
    pub(super) path: String,
    /// The node there now, if any.
    pub(super) existing: Option<Node>,
    /// What the values being replaced hold, in bytes.
    pub(super) old_bytes: i128,
    /// The permanent nodes being replaced: each must come back (TS §6.3.1.2).
    pub(super) permanent: HashSet<String>,
    /// For a DACMO entry, the properties of its `<MOID>` node, made in the same
    /// transaction when missing (the first entry for an instance of that MOID).
    pub(super) parent: Option<NodeProps>,
}

impl Target {
    pub(super) fn new(key: InstanceKey, path: String) -> Target {
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

/// What an HGET stores.
pub(super) enum Source<'b> {
    /// A `dmmo+json` document of one item, for the one target.
    Document(&'b [u8]),
    /// A raw body, as the one target's new leaf value.
    Leaf(Value),
    /// A `dmmo+json` document whose item `i` goes to target `i` (an HGET without a
    /// ClientURI, whose targets came from the items' heads).
    Items(&'b [u8]),
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

impl Stop {
    /// A decoder's stop: malformed data is 415, a refusal is what it was.
    fn from_stream(e: StreamError<Stop>) -> Stop {
        match e {
            StreamError::Decode(e) => {
                tracing::info!(error = %e, "fetched MO data is malformed");
                Stop::Fail(Fail(sc::UNSUPPORTED_MEDIA_TYPE))
            }
            StreamError::Sink(stop) => stop,
        }
    }
}

pub(super) fn value_size(node: &Node) -> i128 {
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
    /// The decoder's bounds for a fetched document.
    pub(super) fn document_limits(&self) -> dmmo::Limits {
        dmmo::Limits {
            max_bytes: self.engine.limits.max_document_bytes,
            max_nodes: self.engine.limits.max_nodes,
        }
    }

    /// Stores `source` at `targets` in one transaction, node by node as the data is
    /// decoded: the rights were checked when the targets were chosen; the delegation rule
    /// is checked on each node, the permanent nodes and the quota once a replacement is
    /// whole. Any refusal rolls back the whole command.
    pub(super) fn store_hget(
        &self,
        mut targets: Vec<Target>,
        source: Source<'_>,
    ) -> Result<(), Fail> {
        let changed: Changed = targets
            .iter()
            .map(|t| (t.key.clone(), t.path.clone()))
            .collect();
        let then = self.deliveries(&changed)?;
        let mut owners = Vec::with_capacity(targets.len());
        for t in &targets {
            owners.push(self.store().instance(&t.key.moid, &t.key.miid)?);
        }
        let mut permanents: Vec<HashSet<String>> = targets
            .iter_mut()
            .map(|t| std::mem::take(&mut t.permanent))
            .collect();
        let mut quota = Quota {
            creator: format!("serverid:{}", self.acl.server_id()),
            own: None,
            foreign: Vec::new(),
        };
        let mut refusal = None;
        let mut source = Some(source);
        let written = self.store().apply_streamed(
            &mut |sink| {
                let emit = RefCell::new(Emit {
                    sink,
                    permanent: HashSet::new(),
                    bytes: 0,
                });
                let mut w = Writing {
                    cx: self,
                    emit: &emit,
                    targets: &targets,
                    // The closure runs once: the sets move into the writing.
                    permanents: std::mem::take(&mut permanents),
                    owners: &owners,
                    quota: &mut quota,
                    index: 0,
                    builder: None,
                };
                let mut all = || -> Result<(), Stop> {
                    match source.take() {
                        Some(Source::Document(body)) => {
                            dmmo::decode_into(body, self.document_limits(), &mut w)
                                .map_err(Stop::from_stream)?;
                            w.finish()?;
                        }
                        Some(Source::Leaf(value)) => {
                            let t = w.start(false)?;
                            let def = self.def(&t.key.moid).and_then(|r| def_at(r, &t.path));
                            let max = self.engine.limits.max_value_bytes;
                            let node = mo::leaf_node(&t.key.moid, def, &t.path, value, max)?;
                            pass(&emit, self, &t.key.moid, node)?;
                            w.finish()?;
                        }
                        Some(Source::Items(body)) => {
                            dmmo::decode_items_into(body, self.document_limits(), &mut w)
                                .map_err(Stop::from_stream)?;
                        }
                        None => return Err(Stop::Fail(Fail(sc::INTERNAL_ERROR))),
                    }
                    if w.index != w.targets.len() {
                        return Err(Stop::Fail(Fail(sc::UNSUPPORTED_MEDIA_TYPE)));
                    }
                    Ok(w.quota.check(self)?)
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

    /// Where a replacement at `t` begins.
    fn put_of(&self, t: &Target) -> Put {
        Put {
            key: t.key.clone(),
            path: t.path.clone(),
            ddf_url: self
                .engine
                .registry
                .get(&t.key.moid)
                .and_then(|r| r.ddf_url.clone()),
            creator: format!("serverid:{}", self.acl.server_id()),
            parent: t.parent.clone(),
        }
    }

    /// An existing leaf's new value from a raw body: one write, after the quota.
    pub(super) fn set_value(&self, t: Target, value: Value) -> Result<(), Fail> {
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
    pub(super) fn check_grant(
        &self,
        moid: &str,
        path: &str,
        value: Option<&Value>,
    ) -> Result<(), Fail> {
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

/// What the builders' nodes go through while one replacement is written.
struct Emit<'s> {
    sink: &'s mut dyn NodeSink,
    /// The permanent nodes replaced that have not come back yet.
    permanent: HashSet<String>,
    /// Bytes of the values written.
    bytes: i128,
}

/// One node of the replacement under way: checked for the delegation rule, counted,
/// written.
fn pass<P: Ports>(
    emit: &RefCell<Emit<'_>>,
    cx: &Ctx<'_, '_, P>,
    moid: &str,
    node: Node,
) -> Result<(), Stop> {
    let mut e = emit.borrow_mut();
    if !e.permanent.is_empty() {
        e.permanent.remove(&node.path);
    }
    e.bytes += value_size(&node);
    cx.check_grant(moid, &node.path, node.value.as_ref())?;
    e.sink.node(node).map_err(Stop::Store)
}

type EmitFn<'w> = Box<dyn FnMut(Node) -> Result<(), Stop> + 'w>;

/// Writes an HGET's replacements as the document is decoded: the data of item `index`
/// goes to `targets[index]`, begun at its first node and checked when the item ends.
struct Writing<'w, 'c, 'a, 's, P> {
    cx: &'w Ctx<'c, 'a, P>,
    emit: &'w RefCell<Emit<'s>>,
    targets: &'w [Target],
    permanents: Vec<HashSet<String>>,
    owners: &'w [Option<crate::tree::InstanceInfo>],
    quota: &'w mut Quota,
    index: usize,
    builder: Option<Builder<'w, EmitFn<'w>>>,
}

impl<'w, P: Ports> Writing<'w, '_, '_, '_, P> {
    /// Begins the replacement of the next target; with `build`, a builder for its data.
    fn start(&mut self, build: bool) -> Result<&'w Target, Stop> {
        let targets = self.targets;
        let t = targets
            .get(self.index)
            .ok_or(Stop::Fail(Fail(sc::UNSUPPORTED_MEDIA_TYPE)))?;
        {
            let mut e = self.emit.borrow_mut();
            e.sink.begin(&self.cx.put_of(t)).map_err(Stop::Store)?;
            e.permanent = std::mem::take(&mut self.permanents[self.index]);
            e.bytes = 0;
        }
        if build {
            let (cx, emit, moid) = (self.cx, self.emit, t.key.moid.as_str());
            let def = cx.def(moid).and_then(|r| def_at(r, &t.path));
            let max = cx.engine.limits.max_value_bytes;
            let f: EmitFn<'w> = Box::new(move |node| pass(emit, cx, moid, node));
            self.builder = Some(Builder::new(moid, def, &t.path, max, f));
        }
        Ok(t)
    }

    /// The builder of the item under way, begun at its first node.
    fn builder(&mut self) -> Result<&mut Builder<'w, EmitFn<'w>>, Stop> {
        if self.builder.is_none() {
            self.start(true)?;
        }
        self.builder
            .as_mut()
            .ok_or(Stop::Fail(Fail(sc::INTERNAL_ERROR)))
    }

    /// The replacement under way is whole: every permanent node came back (TS §6.3.1.2),
    /// and its bytes count against the quota.
    fn finish(&mut self) -> Result<(), Stop> {
        self.builder = None;
        let t = self
            .targets
            .get(self.index)
            .ok_or(Stop::Fail(Fail(sc::UNSUPPORTED_MEDIA_TYPE)))?;
        let (bytes, left) = {
            let e = self.emit.borrow();
            (e.bytes, e.permanent.iter().next().cloned())
        };
        if let Some(p) = left {
            tracing::info!(server = %self.cx.acl.server_id(), node = %p, "HGET refused: it would remove a permanent node");
            return Err(Stop::Fail(Fail(sc::FORBIDDEN)));
        }
        let owner = self.owners[self.index].as_ref().map(|i| i.creator.as_str());
        self.quota
            .change(self.cx, &t.key, owner, bytes, t.old_bytes)?;
        self.index += 1;
        Ok(())
    }
}

impl<P: Ports> DataSink for Writing<'_, '_, '_, '_, P> {
    type Error = Stop;

    fn open(&mut self, name: &str) -> Result<(), Stop> {
        self.builder()?.open(name)
    }

    fn leaf(&mut self, name: &str, value: serde_json::Value) -> Result<(), Stop> {
        self.builder()?.leaf(name, value)
    }

    fn close(&mut self) -> Result<(), Stop> {
        self.builder()?.close()
    }
}

impl<P: Ports> ItemSink for Writing<'_, '_, '_, '_, P> {
    fn end_item(&mut self, _: ItemHead) -> Result<(), Stop> {
        self.finish()
    }
}
