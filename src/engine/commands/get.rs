//! GET (TS §5.3.6, App. F): read nodes into a part of the multipart Package#3.

use super::*;

impl<P: Ports> Ctx<'_, '_, P> {
    // ---- GET (TS §5.3.6, App. F) ----

    pub(super) fn get(&self, client_uri: &str, index: usize) -> Res {
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
}
