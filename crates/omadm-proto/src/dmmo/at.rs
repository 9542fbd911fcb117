//! What the decoder keeps of where it is: a node's JSON path, written out only for a
//! message, and object keys borrowed from the document.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, Visitor};

/// Where a node is in the document, for messages: its JSON path, made only when one is
/// needed (a path string per node would cost as much as the rest of the decoding).
#[derive(Clone, Copy)]
pub(super) enum At<'a> {
    /// The top node, named `name`, below the item's `MOData` at `base`.
    Top(&'a str, &'a str),
    /// A child named `name` of the node at the first.
    Child(&'a At<'a>, &'a str),
}

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            At::Top(base, name) => write!(f, "{base}.{name}"),
            At::Child(parent, name) => write!(f, "{parent}.{name}"),
        }
    }
}

/// An object's key, borrowed from the document when it holds no escape.
pub(super) struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = std::borrow::Cow<'de, str>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = std::borrow::Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a name")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.to_owned().into())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(v.into())
    }
}
