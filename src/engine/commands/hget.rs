//! HGET (TS §5.3.1): fetch MO data from the repository and store it, after the rights, the delegation rules and the server's quota.

use super::*;

/// Where an HGET stores data.
struct Target {
    key: InstanceKey,
    path: String,
    /// The node there now, if any.
    existing: Option<Node>,
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
        // The data is in the writes now.
        drop(fetched);
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
        // Permanent nodes cannot be removed by a replacement (TS §6.3.1.2). The old
        // subtree is visited, not loaded: replacing a large MO holds it once, not twice.
        if let Some(existing) = &t.existing {
            let kept: HashSet<&str> = nodes.iter().map(|n| n.path.as_str()).collect();
            let mut removes_permanent = false;
            self.store()
                .visit_subtree(&t.key, &existing.path, None, &mut |old| {
                    removes_permanent =
                        old.props.scope == Scope::Permanent && !kept.contains(old.path.as_str());
                    !removes_permanent
                })?;
            if removes_permanent {
                return Err(Fail(sc::FORBIDDEN));
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
}
