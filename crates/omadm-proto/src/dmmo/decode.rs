//! Decoding a `dmmo+json` document straight into [`MoItem`]s as the JSON is read, with no
//! tree of `serde_json::Value`s in between: a 100,000-leaf MO costs its items and little
//! more. Errors name the JSON path (`$[0].MOData.a.b`) as before; a document that is not
//! JSON at all names the line and column.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher as _, RandomState};

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value as Json;

use super::{DataNode, Limits, MoItem};
use crate::DecodeError;

/// What the seeds share: the node budget, and the first structural error with its path
/// (serde's own error carries no path, so it only stops the parse).
struct State {
    budget: Cell<usize>,
    error: RefCell<Option<DecodeError>>,
}

impl State {
    fn fail<E: de::Error>(&self, what: impl Into<String>, at: impl Into<String>) -> E {
        let mut error = self.error.borrow_mut();
        if error.is_none() {
            *error = Some(DecodeError::new(what, at));
        }
        E::custom("invalid MO data")
    }
}

pub(super) fn decode(bytes: &[u8], limits: Limits) -> Result<Vec<MoItem>, DecodeError> {
    let state = State {
        budget: Cell::new(limits.max_nodes),
        error: RefCell::new(None),
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = Document(&state)
        .deserialize(&mut de)
        .and_then(|items| de.end().map(|()| items));
    parsed.map_err(|e| {
        state.error.take().unwrap_or_else(|| {
            DecodeError::new(
                format!("not JSON: {e}"),
                format!("line {} column {}", e.line(), e.column()),
            )
        })
    })
}

/// What a JSON value is, for messages ("expected an object, got a string").
enum Kind {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

impl Kind {
    fn name(&self) -> &'static str {
        match self {
            Kind::Null => "null",
            Kind::Bool => "a boolean",
            Kind::Number => "a number",
            Kind::String => "a string",
            Kind::Array => "an array",
            Kind::Object => "an object",
        }
    }
}

/// The whole document: an array of items, or one item object.
struct Document<'s>(&'s State);

impl<'de> DeserializeSeed<'de> for Document<'_> {
    type Value = Vec<MoItem>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<MoItem>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Document<'_> {
    type Value = Vec<MoItem>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of MO items")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<MoItem>, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(ItemSeed {
            state: self.0,
            at: format!("$[{}]", items.len()),
        })? {
            items.push(item);
        }
        Ok(items)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Vec<MoItem>, A::Error> {
        let item = ItemSeed {
            state: self.0,
            at: "$[0]".into(),
        }
        .visit_map(map)?;
        Ok(vec![item])
    }

    scalars!(|s: Self, kind: Kind| Err(s.0.fail(
        format!("expected an array of MO items, got {}", kind.name()),
        "$"
    )));
}

/// Visits the JSON scalars (and, where given, arrays) with one body that receives the
/// value's kind: for a place where only an object or array is welcome.
macro_rules! scalars {
    (|$s:ident: Self, $k:ident: Kind| $body:expr) => {
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            let ($s, $k) = (self, Kind::Null);
            $body
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            let ($s, $k) = (self, Kind::Bool);
            $body
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            let ($s, $k) = (self, Kind::Number);
            $body
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            let ($s, $k) = (self, Kind::Number);
            $body
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            let ($s, $k) = (self, Kind::Number);
            $body
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            let ($s, $k) = (self, Kind::String);
            $body
        }
    };
}
use scalars;

/// One item: `DDF`, `ClientURI`, `CV` and `MOData`; other members are ignored (other
/// specs may extend the item).
struct ItemSeed<'s> {
    state: &'s State,
    at: String,
}

impl<'de> DeserializeSeed<'de> for ItemSeed<'_> {
    type Value = MoItem;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<MoItem, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ItemSeed<'_> {
    type Value = MoItem;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an MO item")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MoItem, A::Error> {
        let (state, at) = (self.state, &self.at);
        let (mut ddf, mut cv, mut client_uri, mut mo_data) = (None, None, None, None);
        while let Some(key) = map.next_key::<String>()? {
            let slot = match key.as_str() {
                "DDF" => &mut ddf,
                "CV" => &mut cv,
                "ClientURI" => &mut client_uri,
                "MOData" => {
                    mo_data = Some(map.next_value_seed(MoDataSeed {
                        state,
                        at: format!("{at}.MOData"),
                    })?);
                    continue;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            match map.next_value::<Json>()? {
                Json::String(s) => *slot = Some(s),
                other => {
                    return Err(state.fail(
                        format!("{key} must be a string, got {}", kind(&other).name()),
                        format!("{at}.{key}"),
                    ));
                }
            }
        }
        let client_uri =
            client_uri.ok_or_else(|| state.fail::<A::Error>("ClientURI is required", at))?;
        let (name, data) = mo_data.ok_or_else(|| state.fail("MOData is required", at))?;
        Ok(MoItem {
            ddf,
            client_uri,
            cv,
            name,
            data,
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<MoItem, A::Error> {
        Err(self
            .state
            .fail("expected an object, got an array", &self.at))
    }

    scalars!(|s: Self, kind: Kind| Err(s
        .state
        .fail(format!("expected an object, got {}", kind.name()), &s.at)));
}

/// `MOData`: an object holding exactly one node, the addressed one.
struct MoDataSeed<'s> {
    state: &'s State,
    at: String,
}

impl<'de> DeserializeSeed<'de> for MoDataSeed<'_> {
    type Value = (String, DataNode);
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for MoDataSeed<'_> {
    type Value = (String, DataNode);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MOData")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (state, at) = (self.state, &self.at);
        let mut top: Option<(String, DataNode)> = None;
        let mut count = 0usize;
        while let Some(name) = map.next_key::<String>()? {
            count += 1;
            if count == 1 {
                let node = map.next_value_seed(NodeSeed {
                    state,
                    at: format!("{at}.{name}"),
                })?;
                top = Some((name, node));
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        match top {
            Some(top) if count == 1 => Ok(top),
            _ => Err(state.fail(
                format!("MOData must hold exactly one node, holds {count}"),
                at.as_str(),
            )),
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(self
            .state
            .fail("MOData must be an object, got an array", &self.at))
    }

    scalars!(|s: Self, kind: Kind| Err(s.state.fail(
        format!("MOData must be an object, got {}", kind.name()),
        &s.at
    )));
}

/// A node: an object is an interior node (its members the children, in document order; a
/// name given twice keeps its first place and its last value, as a JSON object would), any
/// other value but an array a leaf.
struct NodeSeed<'s> {
    state: &'s State,
    at: String,
}

impl NodeSeed<'_> {
    fn take(&self) -> Result<(), ()> {
        let left = self.state.budget.get();
        if left == 0 {
            return Err(());
        }
        self.state.budget.set(left - 1);
        Ok(())
    }

    fn leaf<E: de::Error>(self, v: Json) -> Result<DataNode, E> {
        self.take()
            .map_err(|()| self.state.fail("too many nodes", &self.at))?;
        Ok(DataNode::Leaf(v))
    }
}

impl<'de> DeserializeSeed<'de> for NodeSeed<'_> {
    type Value = DataNode;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<DataNode, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NodeSeed<'_> {
    type Value = DataNode;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MO data")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<DataNode, A::Error> {
        let (state, at) = (self.state, &self.at);
        self.take().map_err(|()| state.fail("too many nodes", at))?;
        let mut children: Vec<(String, DataNode)> = Vec::new();
        // Names seen, by hash, to find a repeated one without a second copy of each name;
        // keyed afresh for each object, so a server cannot aim collisions at it.
        let keys = RandomState::new();
        let mut seen: HashMap<u64, usize> = HashMap::new();
        while let Some(name) = map.next_key::<String>()? {
            let child = map.next_value_seed(NodeSeed {
                state,
                at: format!("{at}.{name}"),
            })?;
            let h = keys.hash_one(name.as_str());
            match seen.get(&h).copied() {
                Some(i) if children[i].0 == name => children[i].1 = child,
                Some(_) => {
                    // Two names with one hash: rare enough to look the slow way.
                    match children.iter_mut().find(|(n, _)| *n == name) {
                        Some(slot) => slot.1 = child,
                        None => children.push((name, child)),
                    }
                }
                None => {
                    seen.insert(h, children.len());
                    children.push((name, child));
                }
            }
        }
        children.shrink_to_fit();
        Ok(DataNode::Interior(children))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<DataNode, A::Error> {
        Err(self.state.fail("arrays are not MO data", &self.at))
    }

    fn visit_unit<E: de::Error>(self) -> Result<DataNode, E> {
        self.leaf(Json::Null)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<DataNode, E> {
        self.leaf(Json::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<DataNode, E> {
        self.leaf(Json::from(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<DataNode, E> {
        self.leaf(Json::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<DataNode, E> {
        self.leaf(serde_json::Number::from_f64(v).map_or(Json::Null, Json::Number))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<DataNode, E> {
        self.leaf(Json::String(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<DataNode, E> {
        self.leaf(Json::String(v))
    }
}

fn kind(v: &Json) -> Kind {
    match v {
        Json::Null => Kind::Null,
        Json::Bool(_) => Kind::Bool,
        Json::Number(_) => Kind::Number,
        Json::String(_) => Kind::String,
        Json::Array(_) => Kind::Array,
        Json::Object(_) => Kind::Object,
    }
}
