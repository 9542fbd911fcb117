//! Decoding a `dmmo+json` document as the JSON is read, with no tree of
//! `serde_json::Value`s in between: each item's MO data goes node by node into a
//! [`DataSink`]: the one that builds [`MoItem`](super::MoItem)s for
//! [`decode`](super::decode), or the caller's own for [`decode_into`](super::decode_into),
//! which can store a 100,000-leaf MO without ever holding it. Errors name the JSON path
//! (`$[0].MOData.a.b`); a document that is not JSON at all names the line and column.

use std::cell::{Cell, RefCell};
use std::convert::Infallible;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value as Json;

use super::at::{At, Key};
use super::{DataSink, ItemHead, ItemSink, Limits, StreamError};
use crate::DecodeError;

/// What the seeds share: the sink, the node budget, and the first error, either the
/// document's (with its JSON path) or the sink's (serde's own error carries neither, so
/// it only stops the parse).
struct State<S: ItemSink> {
    sink: RefCell<S>,
    budget: Cell<usize>,
    error: RefCell<Option<DecodeError>>,
    sink_error: RefCell<Option<S::Error>>,
    /// Whether the sink sees leaf values; without, every leaf is `null` (the [`Heads`] pass).
    values: bool,
}

impl<S: ItemSink> State<S> {
    fn fail<E: de::Error>(&self, what: impl Into<String>, at: impl Into<String>) -> E {
        let mut error = self.error.borrow_mut();
        if error.is_none() && self.sink_error.borrow().is_none() {
            *error = Some(DecodeError::new(what, at));
        }
        E::custom("invalid MO data")
    }

    /// Runs one call into the sink, keeping its error for the caller.
    fn feed<E: de::Error>(
        &self,
        call: impl FnOnce(&mut S) -> Result<(), S::Error>,
    ) -> Result<(), E> {
        call(&mut self.sink.borrow_mut()).map_err(|e| {
            if self.error.borrow().is_none() {
                self.sink_error.borrow_mut().get_or_insert(e);
            }
            E::custom("refused by the sink")
        })
    }

    fn take_node(&self, at: &At<'_>) -> Result<(), ()> {
        let left = self.budget.get();
        if left == 0 {
            let _ = self.fail::<serde_json::Error>("too many nodes", at.to_string());
            return Err(());
        }
        self.budget.set(left - 1);
        Ok(())
    }
}

/// Decodes every item of `bytes` into `sink`, with the leaves' values when `values`;
/// returns the sink.
pub(super) fn run<S: ItemSink>(
    bytes: &[u8],
    limits: Limits,
    sink: S,
    values: bool,
) -> Result<S, StreamError<S::Error>> {
    let state = State {
        sink: RefCell::new(sink),
        budget: Cell::new(limits.max_nodes),
        error: RefCell::new(None),
        sink_error: RefCell::new(None),
        values,
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = Document(&state)
        .deserialize(&mut de)
        .and_then(|()| de.end());
    match parsed {
        Ok(()) => Ok(state.sink.into_inner()),
        Err(e) => {
            if let Some(s) = state.sink_error.take() {
                return Err(StreamError::Sink(s));
            }
            Err(StreamError::Decode(state.error.take().unwrap_or_else(
                || {
                    DecodeError::new(
                        format!("not JSON: {e}"),
                        format!("line {} column {}", e.line(), e.column()),
                    )
                },
            )))
        }
    }
}

/// The sink behind [`heads`](super::heads): keeps each item's head, none of its data.
#[derive(Default)]
pub(super) struct Heads(pub(super) Vec<ItemHead>);

impl DataSink for Heads {
    type Error = Infallible;
    fn open(&mut self, _: &str) -> Result<(), Infallible> {
        Ok(())
    }
    fn leaf(&mut self, _: &str, _: Json) -> Result<(), Infallible> {
        Ok(())
    }
    fn close(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

impl ItemSink for Heads {
    fn end_item(&mut self, head: ItemHead) -> Result<(), Infallible> {
        self.0.push(head);
        Ok(())
    }
}

/// The caller's sink behind [`decode_items_into`](super::decode_items_into), borrowed.
pub(super) struct Borrowed<'s, S>(pub(super) &'s mut S);

impl<S: DataSink> DataSink for Borrowed<'_, S> {
    type Error = S::Error;
    fn open(&mut self, name: &str) -> Result<(), S::Error> {
        self.0.open(name)
    }
    fn leaf(&mut self, name: &str, value: Json) -> Result<(), S::Error> {
        self.0.leaf(name, value)
    }
    fn close(&mut self) -> Result<(), S::Error> {
        self.0.close()
    }
}

impl<S: ItemSink> ItemSink for Borrowed<'_, S> {
    fn end_item(&mut self, head: ItemHead) -> Result<(), S::Error> {
        self.0.end_item(head)
    }
}

/// The sink behind [`decode_into`](super::decode_into): the caller's, for a document of
/// exactly one item, whose head it keeps.
pub(super) struct One<'s, S> {
    pub(super) sink: &'s mut S,
    pub(super) head: Option<ItemHead>,
}

impl<S: DataSink> One<'_, S> {
    fn first(&self, at: &str) -> Result<(), StreamError<S::Error>> {
        match self.head {
            None => Ok(()),
            Some(_) => Err(StreamError::Decode(DecodeError::new(
                "expected one MO item, got more",
                at,
            ))),
        }
    }
}

impl<S: DataSink> DataSink for One<'_, S> {
    type Error = StreamError<S::Error>;

    fn open(&mut self, name: &str) -> Result<(), Self::Error> {
        self.first("$[1]")?;
        self.sink.open(name).map_err(StreamError::Sink)
    }

    fn leaf(&mut self, name: &str, value: Json) -> Result<(), Self::Error> {
        self.first("$[1]")?;
        self.sink.leaf(name, value).map_err(StreamError::Sink)
    }

    fn close(&mut self) -> Result<(), Self::Error> {
        self.sink.close().map_err(StreamError::Sink)
    }
}

impl<S: DataSink> ItemSink for One<'_, S> {
    fn end_item(&mut self, head: ItemHead) -> Result<(), Self::Error> {
        self.first("$[1]")?;
        self.head = Some(head);
        Ok(())
    }
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
struct Document<'s, S: ItemSink>(&'s State<S>);

impl<'de, S: ItemSink> DeserializeSeed<'de> for Document<'_, S> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, S: ItemSink> Visitor<'de> for Document<'_, S> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of MO items")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut n = 0usize;
        while seq
            .next_element_seed(ItemSeed {
                state: self.0,
                at: format!("$[{n}]"),
            })?
            .is_some()
        {
            n += 1;
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        ItemSeed {
            state: self.0,
            at: "$[0]".into(),
        }
        .visit_map(map)
    }

    scalars!(|s: Self, kind: Kind| Err(s.0.fail(
        format!("expected an array of MO items, got {}", kind.name()),
        "$"
    )));
}

/// One item: `DDF`, `ClientURI`, `CV` and `MOData`; other members are ignored (other
/// specs may extend the item). `MOData` goes to the sink as it is read; the item ends
/// once every member is known.
struct ItemSeed<'s, S: ItemSink> {
    state: &'s State<S>,
    at: String,
}

impl<'de, S: ItemSink> DeserializeSeed<'de> for ItemSeed<'_, S> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, S: ItemSink> Visitor<'de> for ItemSeed<'_, S> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an MO item")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let (state, at) = (self.state, &self.at);
        let (mut ddf, mut cv, mut client_uri, mut name) = (None, None, None, None);
        while let Some(key) = map.next_key::<String>()? {
            let slot = match key.as_str() {
                "DDF" => &mut ddf,
                "CV" => &mut cv,
                "ClientURI" => &mut client_uri,
                "MOData" if name.is_none() => {
                    name = Some(map.next_value_seed(MoDataSeed {
                        state,
                        at: format!("{at}.MOData"),
                    })?);
                    continue;
                }
                "MOData" => return Err(state.fail("MOData given twice", at.as_str())),
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
        let name = name.ok_or_else(|| state.fail("MOData is required", at))?;
        state.feed(|s| {
            s.end_item(ItemHead {
                ddf,
                client_uri,
                cv,
                name,
            })
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(self
            .state
            .fail("expected an object, got an array", &self.at))
    }

    scalars!(|s: Self, kind: Kind| Err(s
        .state
        .fail(format!("expected an object, got {}", kind.name()), &s.at)));
}

/// `MOData`: an object holding exactly one node, the addressed one; its name is the value.
struct MoDataSeed<'s, S: ItemSink> {
    state: &'s State<S>,
    at: String,
}

impl<'de, S: ItemSink> DeserializeSeed<'de> for MoDataSeed<'_, S> {
    type Value = String;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, S: ItemSink> Visitor<'de> for MoDataSeed<'_, S> {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MOData")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<String, A::Error> {
        let (state, at) = (self.state, &self.at);
        let mut top: Option<String> = None;
        let mut count = 0usize;
        while let Some(name) = map.next_key_seed(Key)? {
            count += 1;
            if count == 1 {
                map.next_value_seed(NodeSeed {
                    state,
                    at: At::Top(at, &name),
                    name: &name,
                })?;
                top = Some(name.into_owned());
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

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<String, A::Error> {
        Err(self
            .state
            .fail("MOData must be an object, got an array", &self.at))
    }

    scalars!(|s: Self, kind: Kind| Err(s.state.fail(
        format!("MOData must be an object, got {}", kind.name()),
        &s.at
    )));
}

/// A node named `name`: an object is an interior node (its members the children, in
/// document order), any other value but an array a leaf.
struct NodeSeed<'s, 'n, S: ItemSink> {
    state: &'s State<S>,
    at: At<'n>,
    name: &'n str,
}

impl<S: ItemSink> NodeSeed<'_, '_, S> {
    fn leaf<E: de::Error>(self, v: Json) -> Result<(), E> {
        self.state
            .take_node(&self.at)
            .map_err(|()| E::custom("invalid MO data"))?;
        self.state.feed(|s| s.leaf(self.name, v))
    }
}

impl<'de, S: ItemSink> DeserializeSeed<'de> for NodeSeed<'_, '_, S> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, S: ItemSink> Visitor<'de> for NodeSeed<'_, '_, S> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MO data")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let (state, at) = (self.state, &self.at);
        state
            .take_node(at)
            .map_err(|()| de::Error::custom("invalid MO data"))?;
        state.feed(|s| s.open(self.name))?;
        while let Some(name) = map.next_key_seed(Key)? {
            map.next_value_seed(NodeSeed {
                state,
                at: At::Child(at, &name),
                name: &name,
            })?;
        }
        state.feed(|s| s.close())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(self
            .state
            .fail("arrays are not MO data", self.at.to_string()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.leaf(Json::Null)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.leaf(Json::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.leaf(Json::from(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.leaf(Json::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.leaf(serde_json::Number::from_f64(v).map_or(Json::Null, Json::Number))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        // Without values (the heads pass) no string is copied out of the document.
        let value = if self.state.values {
            Json::String(v.to_owned())
        } else {
            Json::Null
        };
        self.leaf(value)
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<(), E> {
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
