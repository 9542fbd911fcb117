//! `application/dmmo+json`, the JSON serialization of MO data (TS §7.2.1.4): an array of
//! items, each with a ClientURI and `MOData` holding the addressed node by name.
//!
//! We emit the schema's form (an array) and also accept a single item object, as the TS's
//! multipart example (App. F) sends one.

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Value as Json;

use crate::DecodeError;

mod decode;

/// Media type of MO data.
pub const MEDIA_TYPE: &str = "application/dmmo+json";

/// One item of an MO data document.
#[derive(Debug, Clone, PartialEq)]
pub struct MoItem {
    /// DDF URL, when given.
    pub ddf: Option<String>,
    /// Where the data belongs (or came from).
    pub client_uri: String,
    /// Cache validator of the instance (TS §11), for instance roots.
    pub cv: Option<String>,
    /// Name of the top node (the one member of `MOData`).
    pub name: String,
    /// The top node's data.
    pub data: DataNode,
}

/// A node of MO data as JSON carries it: interior nodes are objects, leaves any other
/// JSON value (typed against the MO definition by the caller).
#[derive(Debug, Clone, PartialEq)]
pub enum DataNode {
    /// Interior node with its children in document order.
    Interior(Vec<(String, DataNode)>),
    /// Leaf with its JSON value.
    Leaf(Json),
}

impl DataNode {
    /// Number of nodes in this subtree, itself included.
    pub fn count(&self) -> usize {
        match self {
            DataNode::Leaf(_) => 1,
            DataNode::Interior(children) => {
                1 + children.iter().map(|(_, c)| c.count()).sum::<usize>()
            }
        }
    }
}

/// Limits applied while decoding.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest document accepted, in bytes.
    pub max_bytes: usize,
    /// Most nodes accepted across all items.
    pub max_nodes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 1 << 20,
            max_nodes: 100_000,
        }
    }
}

/// Decodes a document: an array of items, or a single item object.
///
/// The DCMO data of TS App. I.2, which a server offers for HGET:
///
/// ```
/// use omadm_proto::dmmo::{DataNode, Limits, decode};
///
/// let doc = br#"[{"DDF":"http://www.vendor.com/DDF/dcmo1.0.ddf",
///   "ClientURI":"urn:oma:mo:oma-dcmo:1.0//",
///   "MOData":{"usb":{"Property":"USB","Group":"I/O","Description":"USB Control",
///   "Enabled":"true"}}}]"#;
/// let items = decode(doc, Limits::default()).unwrap();
/// assert_eq!(items[0].name, "usb");
/// assert_eq!(items[0].client_uri, "urn:oma:mo:oma-dcmo:1.0//");
/// assert!(matches!(&items[0].data, DataNode::Interior(children) if children.len() == 4));
/// ```
pub fn decode(bytes: &[u8], limits: Limits) -> Result<Vec<MoItem>, DecodeError> {
    if bytes.len() > limits.max_bytes {
        return Err(DecodeError::new(
            format!(
                "document of {} bytes exceeds the limit of {}",
                bytes.len(),
                limits.max_bytes
            ),
            "$",
        ));
    }
    decode::decode(bytes, limits)
}

/// Encodes a document (always the schema's array form). The JSON is written straight
/// from the items, with no second tree of `serde_json::Value`s: a large MO costs its
/// document and little more.
pub fn encode(items: &[MoItem]) -> Vec<u8> {
    // Writing to a Vec cannot fail, and every key is a string.
    serde_json::to_vec(&Items(items)).unwrap_or_default()
}

struct Items<'a>(&'a [MoItem]);

impl Serialize for Items<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for item in self.0 {
            seq.serialize_element(&Item(item))?;
        }
        seq.end()
    }
}

struct Item<'a>(&'a MoItem);

impl Serialize for Item<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let item = self.0;
        let mut map = s.serialize_map(None)?;
        if let Some(ddf) = &item.ddf {
            map.serialize_entry("DDF", ddf)?;
        }
        map.serialize_entry("ClientURI", &item.client_uri)?;
        if let Some(cv) = &item.cv {
            map.serialize_entry("CV", cv)?;
        }
        map.serialize_entry("MOData", &Named(&item.name, &item.data))?;
        map.end()
    }
}

/// `{name: node}`.
struct Named<'a>(&'a str, &'a DataNode);

impl Serialize for Named<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(1))?;
        map.serialize_entry(self.0, &Node(self.1))?;
        map.end()
    }
}

struct Node<'a>(&'a DataNode);

impl Serialize for Node<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            DataNode::Leaf(v) => v.serialize(s),
            DataNode::Interior(children) => {
                let mut map = s.serialize_map(Some(children.len()))?;
                for (name, child) in children {
                    map.serialize_entry(name, &Node(child))?;
                }
                map.end()
            }
        }
    }
}

/// Writes a document item by item and node by node, for data too large to hold twice
/// (a GET of a large MO): the output is the same bytes [`encode`] gives for the same items.
///
/// Each item has one top node: [`Writer::leaf`] or [`Writer::open`] without a name first,
/// then named children inside every opened node, [`Writer::close`] for each, and
/// [`Writer::end_item`].
///
/// ```
/// use omadm_proto::dmmo::{Writer, decode, Limits, DataNode};
/// use serde_json::json;
///
/// let mut w = Writer::new();
/// w.begin_item(None, "urn:oma:mo:oma-dcmo:1.0/usb", None, "usb");
/// w.open(None);
/// w.leaf(Some("Property"), &json!("USB"));
/// w.leaf(Some("Enabled"), &json!(true));
/// w.close();
/// w.end_item();
/// let doc = w.finish();
/// let items = decode(&doc, Limits::default()).unwrap();
/// assert!(matches!(&items[0].data, DataNode::Interior(c) if c.len() == 2));
/// ```
#[derive(Debug)]
pub struct Writer {
    out: Vec<u8>,
    items: usize,
    /// Members written so far in each open object, innermost last.
    open: Vec<usize>,
}

impl Default for Writer {
    fn default() -> Self {
        Writer::new()
    }
}

impl Writer {
    /// An empty document.
    pub fn new() -> Writer {
        Writer {
            out: vec![b'['],
            items: 0,
            open: Vec::new(),
        }
    }

    fn string(&mut self, s: &str) {
        // Writing a string to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut self.out, s);
    }

    /// Starts an item: its members, and `MOData` up to its top node `name`.
    pub fn begin_item(
        &mut self,
        ddf: Option<&str>,
        client_uri: &str,
        cv: Option<&str>,
        name: &str,
    ) {
        if self.items > 0 {
            self.out.push(b',');
        }
        self.items += 1;
        self.out.push(b'{');
        if let Some(ddf) = ddf {
            self.out.extend_from_slice(b"\"DDF\":");
            self.string(ddf);
            self.out.push(b',');
        }
        self.out.extend_from_slice(b"\"ClientURI\":");
        self.string(client_uri);
        if let Some(cv) = cv {
            self.out.extend_from_slice(b",\"CV\":");
            self.string(cv);
        }
        self.out.extend_from_slice(b",\"MOData\":{");
        self.string(name);
        self.out.push(b':');
    }

    /// A member's name inside the innermost open node (none for an item's top node).
    fn member(&mut self, name: Option<&str>) {
        if let Some(name) = name {
            if let Some(count) = self.open.last_mut() {
                if *count > 0 {
                    self.out.push(b',');
                }
                *count += 1;
            }
            self.string(name);
            self.out.push(b':');
        }
    }

    /// A leaf with its value.
    pub fn leaf(&mut self, name: Option<&str>, value: &Json) {
        self.member(name);
        // Writing a JSON value to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut self.out, value);
    }

    /// Opens an interior node; its children follow until [`Writer::close`].
    pub fn open(&mut self, name: Option<&str>) {
        self.member(name);
        self.out.push(b'{');
        self.open.push(0);
    }

    /// Closes the innermost open node.
    pub fn close(&mut self) {
        if self.open.pop().is_some() {
            self.out.push(b'}');
        }
    }

    /// Ends the item, closing what is still open.
    pub fn end_item(&mut self) {
        while !self.open.is_empty() {
            self.close();
        }
        self.out.extend_from_slice(b"}}");
    }

    /// Whether no item was begun.
    pub fn is_empty(&self) -> bool {
        self.items == 0
    }

    /// The document.
    pub fn finish(mut self) -> Vec<u8> {
        self.out.push(b']');
        self.out.shrink_to_fit();
        self.out
    }
}

#[cfg(test)]
mod tests;
