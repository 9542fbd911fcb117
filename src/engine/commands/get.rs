//! GET (TS §5.3.6, App. F): read nodes into a part of the multipart Package#3, streamed
//! from the store into the document so that a large MO is never held twice.

use super::*;

impl<P: Ports> Ctx<'_, '_, P> {
    // ---- GET (TS §5.3.6, App. F) ----

    pub(super) fn get(&self, client_uri: &str, index: usize) -> Res {
        let u = self.parse(client_uri)?;
        let locs = self.resolve(&u)?;
        // One leaf: its raw value with its MIME type (TS App. F).
        if let [loc] = locs.as_slice()
            && !u.has_wildcard()
            && let Some(node) = self.store().node(&loc.key, &loc.path)?
            && !node.is_interior()
        {
            // A leaf is its own subtree: the one node read is all there is to check.
            self.check_top(loc, &node)?;
            if self.cv_matches(&u, &locs)? {
                return Err(Fail(sc::NOT_MODIFIED));
            }
            if node.value == Some(Value::Null) {
                return Err(Fail(sc::NO_CONTENT));
            }
            let (ct, body) = Self::raw_leaf(&node).ok_or(Fail(sc::NO_CONTENT))?;
            return Ok(Reply {
                part: Some(Part {
                    index,
                    content_type: ct,
                    body,
                }),
                ..Reply::code(sc::OK)
            });
        }
        let mut doc = dmmo::Writer::new();
        for loc in &locs {
            self.write_item(&mut doc, loc, u.level)?;
        }
        if self.cv_matches(&u, &locs)? {
            return Err(Fail(sc::NOT_MODIFIED));
        }
        if doc.is_empty() {
            return Err(Fail(sc::NO_CONTENT));
        }
        Ok(Reply {
            part: Some(Part {
                index,
                content_type: DMMO.into(),
                body: doc.finish(),
            }),
            ..Reply::code(sc::OK)
        })
    }

    /// Writes the MO data item of one location, node by node as the store reads them: the
    /// same checks as [`Ctx::read_subtree`] ([`Ctx::check_top`], read rights on every node
    /// shown) and the same data as [`mo::item`] (what [`mo::shows`] hides is
    /// left out, with its subtree).
    fn write_item(
        &self,
        doc: &mut dmmo::Writer,
        loc: &Location,
        level: Option<u32>,
    ) -> Result<(), Fail> {
        let mut failed: Option<Fail> = None;
        let mut top = true;
        // Open interior nodes, innermost last; a hidden node's path with "/" while its
        // subtree (contiguous, depth first) goes by.
        let mut open: Vec<String> = Vec::new();
        let mut hidden: Option<String> = None;
        let mut visit = |n: Node| -> bool {
            let step = (|| -> Result<(), Fail> {
                if top {
                    top = false;
                    self.check_top(loc, &n)?;
                    let inst = if loc.path.is_empty() {
                        self.store().instance(&loc.key.moid, &loc.key.miid)?
                    } else {
                        None
                    };
                    let name = if loc.path.is_empty() {
                        loc.key.miid.clone()
                    } else {
                        loc.path.rsplit('/').next().unwrap_or_default().to_owned()
                    };
                    doc.begin_item(
                        inst.as_ref().and_then(|i| i.ddf_url.as_deref()),
                        &loc.uri(),
                        inst.as_ref().map(|i| i.cv.as_str()),
                        &name,
                    );
                    match &n.value {
                        Some(v) => doc.leaf(None, &v.to_json()),
                        None => {
                            doc.open(None);
                            open.push(n.path);
                        }
                    }
                    return Ok(());
                }
                if let Some(h) = &hidden {
                    if n.path.starts_with(h.as_str()) {
                        return Ok(());
                    }
                    hidden = None;
                }
                if !mo::shows(&n) {
                    hidden = Some(format!("{}/", n.path));
                    return Ok(());
                }
                self.require(&loc.key, &n.path, Rights::READ)?;
                let parent = crate::tree::parent_path(&n.path).unwrap_or_default();
                while open.last().is_some_and(|p| p != parent) {
                    doc.close();
                    open.pop();
                }
                let name = n.path.rsplit('/').next().unwrap_or(&n.path);
                match &n.value {
                    Some(v) => doc.leaf(Some(name), &v.to_json()),
                    None => {
                        doc.open(Some(name));
                        open.push(n.path);
                    }
                }
                Ok(())
            })();
            match step {
                Ok(()) => true,
                Err(f) => {
                    failed = Some(f);
                    false
                }
            }
        };
        self.store()
            .visit_subtree(&loc.key, &loc.path, level, &mut visit)?;
        if let Some(f) = failed {
            return Err(f);
        }
        if top {
            return Err(Fail(sc::NOT_FOUND));
        }
        doc.end_item();
        Ok(())
    }
}
