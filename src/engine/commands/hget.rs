//! HGET (TS §5.3.1): fetch MO data from the repository, choose where it goes and check the rights there before anything is fetched; `hget_store` writes it. With or without a ClientURI, a document is decoded as it is stored: a 100,000-leaf MO is never held as nodes (issues 12 and 27).

use super::hget_store::{Source, Target, value_size};
use super::*;
use crate::protocol::dmmo::ItemHead;

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
                self.store_hget(vec![t], Source::Document(&fetched.body))?;
                Vec::new()
            }
            Some(t) => {
                let value = self.raw_value(&t, &ct, &fetched.body)?;
                if t.existing.is_some() {
                    self.set_value(t, value)?;
                } else {
                    self.store_hget(vec![t], Source::Leaf(value))?;
                }
                Vec::new()
            }
            None if ct == DMMO => {
                // Two passes over the body: where each item goes, from the items' heads;
                // then the data, stored as it is decoded.
                let heads = self.heads(&fetched.body)?;
                let targets = self.hget_anywhere(&heads)?;
                let uris = targets
                    .iter()
                    .map(|t| uri::concrete(&t.key.moid, &t.key.miid, &t.path))
                    .collect();
                drop(heads);
                self.store_hget(targets, Source::Items(&fetched.body))?;
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

    /// The items' heads of a document, which is checked whole (shape, limits) on the way.
    fn heads(&self, body: &[u8]) -> Result<Vec<ItemHead>, Fail> {
        dmmo::heads(body, self.document_limits()).map_err(|e| {
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
    fn hget_anywhere(&self, items: &[ItemHead]) -> Result<Vec<Target>, Fail> {
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
                // As with a ClientURI naming the instance: a MO whose definition gives its
                // root no Add (DevInfo, a handler's MO) gets no instance from a server.
                if self
                    .def(&moid)
                    .is_some_and(|d| !d.access.contains(AccessType::ADD))
                {
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
