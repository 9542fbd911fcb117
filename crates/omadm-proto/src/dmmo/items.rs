//! The sink behind [`decode`](super::decode): each item's MO data built as a
//! [`DataNode`] tree, for callers that want the MO whole.

use std::collections::HashMap;
use std::convert::Infallible;
use std::hash::{BuildHasher as _, RandomState};

use serde_json::Value as Json;

use super::{DataNode, DataSink, ItemHead, ItemSink, MoItem};

/// The sink behind [`decode`](super::decode): builds each item's data as a [`DataNode`]
/// tree. A name given twice in one object keeps its first place and its last value, as a
/// JSON object would.
#[derive(Default)]
pub(super) struct Items {
    pub(super) items: Vec<MoItem>,
    open: Vec<Frame>,
    top: Option<(String, DataNode)>,
}

/// An interior node being built.
struct Frame {
    name: String,
    children: Vec<(String, DataNode)>,
    /// Names seen, by hash, to find a repeated one without a second copy of each name;
    /// keyed afresh for each object, so a server cannot aim collisions at it.
    keys: RandomState,
    seen: HashMap<u64, usize>,
}

impl Items {
    fn add(&mut self, name: String, node: DataNode) {
        let Some(f) = self.open.last_mut() else {
            self.top = Some((name, node));
            return;
        };
        let h = f.keys.hash_one(name.as_str());
        match f.seen.get(&h).copied() {
            Some(i) if f.children[i].0 == name => f.children[i].1 = node,
            Some(_) => {
                // Two names with one hash: rare enough to look the slow way.
                match f.children.iter_mut().find(|(n, _)| *n == name) {
                    Some(slot) => slot.1 = node,
                    None => f.children.push((name, node)),
                }
            }
            None => {
                f.seen.insert(h, f.children.len());
                f.children.push((name, node));
            }
        }
    }
}

impl DataSink for Items {
    type Error = Infallible;

    fn open(&mut self, name: &str) -> Result<(), Infallible> {
        self.open.push(Frame {
            name: name.to_owned(),
            children: Vec::new(),
            keys: RandomState::new(),
            seen: HashMap::new(),
        });
        Ok(())
    }

    fn leaf(&mut self, name: &str, value: Json) -> Result<(), Infallible> {
        self.add(name.to_owned(), DataNode::Leaf(value));
        Ok(())
    }

    fn close(&mut self) -> Result<(), Infallible> {
        if let Some(mut f) = self.open.pop() {
            f.children.shrink_to_fit();
            self.add(f.name, DataNode::Interior(f.children));
        }
        Ok(())
    }
}

impl ItemSink for Items {
    fn end_item(&mut self, head: ItemHead) -> Result<(), Infallible> {
        if let Some((_, data)) = self.top.take() {
            self.items.push(MoItem {
                ddf: head.ddf,
                client_uri: head.client_uri,
                cv: head.cv,
                name: head.name,
                data,
            });
        }
        Ok(())
    }
}
