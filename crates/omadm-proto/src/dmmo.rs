//! `application/dmmo+json`, the JSON serialization of MO data (TS §7.2.1.4): an array of
//! items, each with a ClientURI and `MOData` holding the addressed node by name.
//!
//! We emit the schema's form (an array) and also accept a single item object, as the TS's
//! multipart example (App. F) sends one.

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Value as Json;

use crate::DecodeError;

mod at;
mod decode;
mod items;

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
    /// Feeds this subtree, named `name`, to `sink` as the decoder would have: the events
    /// of [`decode_into`] for data already in memory.
    pub fn feed<S: DataSink + ?Sized>(&self, name: &str, sink: &mut S) -> Result<(), S::Error> {
        match self {
            DataNode::Leaf(v) => sink.leaf(name, v.clone()),
            DataNode::Interior(children) => {
                sink.open(name)?;
                for (n, c) in children {
                    c.feed(n, sink)?;
                }
                sink.close()
            }
        }
    }

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

/// Receives MO data node by node as it is decoded, parents before children and children
/// in document order: an interior node is `open`, its children, `close`; a leaf is one
/// call. The first node is the item's top (the one member of `MOData`). An error from the
/// sink stops the decoding and comes back as [`StreamError::Sink`].
pub trait DataSink {
    /// What the sink fails with.
    type Error;
    /// An interior node named `name` begins.
    fn open(&mut self, name: &str) -> Result<(), Self::Error>;
    /// A leaf named `name` with its JSON value.
    fn leaf(&mut self, name: &str, value: Json) -> Result<(), Self::Error>;
    /// The interior node opened last ends.
    fn close(&mut self) -> Result<(), Self::Error>;
}

/// A [`DataSink`] that also hears where each item ends, with the item's own members: for
/// [`decode_items_into`].
pub trait ItemSink: DataSink {
    /// The item whose MO data was just given to the sink is complete; `head` holds its
    /// other members.
    fn end_item(&mut self, head: ItemHead) -> Result<(), Self::Error>;
}

/// An item's members other than its data, known once the item is read whole.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemHead {
    /// DDF URL, when given.
    pub ddf: Option<String>,
    /// Where the data belongs (or came from).
    pub client_uri: String,
    /// Cache validator of the instance, when given.
    pub cv: Option<String>,
    /// Name of the top node.
    pub name: String,
}

/// Why [`decode_into`] stopped.
#[derive(Debug, PartialEq)]
pub enum StreamError<E> {
    /// The document is malformed (or over a limit).
    Decode(DecodeError),
    /// The sink refused a node.
    Sink(E),
}

/// Limits applied while decoding.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest document accepted, in bytes.
    pub max_bytes: usize,
    /// Most nodes accepted across all items.
    pub max_nodes: usize,
}

impl Limits {
    fn check_size(&self, bytes: &[u8]) -> Result<(), DecodeError> {
        if bytes.len() > self.max_bytes {
            return Err(DecodeError::new(
                format!(
                    "document of {} bytes exceeds the limit of {}",
                    bytes.len(),
                    self.max_bytes
                ),
                "$",
            ));
        }
        Ok(())
    }
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
    limits.check_size(bytes)?;
    let items = decode::run(bytes, limits, items::Items::default(), true).map_err(|e| match e {
        StreamError::Decode(e) => e,
        StreamError::Sink(never) => match never {},
    })?;
    Ok(items.items)
}

/// Decodes a document of exactly one item, giving its MO data to `sink` node by node as it
/// is read, and returns the item's other members. Nothing of the data is kept: what the
/// sink does with a node is all it costs. A document of more items stops at the second,
/// after the sink has seen the first one whole; what the sink did with it is its caller's
/// to undo. A name given twice in one object reaches the sink twice.
///
/// ```
/// use omadm_proto::dmmo::{DataSink, Limits, decode_into};
/// use serde_json::Value;
///
/// /// Counts leaves, and refuses any deeper than two levels.
/// #[derive(Default)]
/// struct Leaves { depth: usize, count: usize }
/// impl DataSink for Leaves {
///     type Error = String;
///     fn open(&mut self, _: &str) -> Result<(), String> {
///         self.depth += 1;
///         if self.depth > 2 { return Err("too deep".into()) }
///         Ok(())
///     }
///     fn leaf(&mut self, _: &str, _: Value) -> Result<(), String> { self.count += 1; Ok(()) }
///     fn close(&mut self) -> Result<(), String> { self.depth -= 1; Ok(()) }
/// }
///
/// let doc = br#"{"ClientURI":"urn:x:1.0//","MOData":{"i":{"a":1,"b":{"c":2}}}}"#;
/// let mut leaves = Leaves::default();
/// let head = decode_into(doc, Limits::default(), &mut leaves).unwrap();
/// assert_eq!((head.name.as_str(), leaves.count), ("i", 2));
/// ```
pub fn decode_into<S: DataSink>(
    bytes: &[u8],
    limits: Limits,
    sink: &mut S,
) -> Result<ItemHead, StreamError<S::Error>> {
    limits.check_size(bytes).map_err(StreamError::Decode)?;
    let one = decode::One { sink, head: None };
    match decode::run(bytes, limits, one, true) {
        Ok(decode::One {
            head: Some(head), ..
        }) => Ok(head),
        Ok(_) => Err(StreamError::Decode(DecodeError::new(
            "expected one MO item, got none",
            "$",
        ))),
        Err(StreamError::Decode(e) | StreamError::Sink(StreamError::Decode(e))) => {
            Err(StreamError::Decode(e))
        }
        Err(StreamError::Sink(StreamError::Sink(e))) => Err(StreamError::Sink(e)),
    }
}

/// The head of every item of a document, in order: the document checked whole as
/// [`decode`] checks it (its shape, names, limits), none of its data kept. With the heads a
/// caller can decide where each item goes, then read the data with
/// [`decode_items_into`]: two passes over the bytes, and never the whole MO in memory.
///
/// ```
/// use omadm_proto::dmmo::{Limits, heads};
///
/// let doc = br#"[{"ClientURI":"urn:x:1.0//","MOData":{"a":{"v":1}}},
///               {"MOData":{"b":2},"ClientURI":"urn:x:1.0/i/b"}]"#;
/// let h = heads(doc, Limits::default()).unwrap();
/// assert_eq!((h[0].name.as_str(), h[1].client_uri.as_str()), ("a", "urn:x:1.0/i/b"));
/// ```
pub fn heads(bytes: &[u8], limits: Limits) -> Result<Vec<ItemHead>, DecodeError> {
    limits.check_size(bytes)?;
    let heads =
        decode::run(bytes, limits, decode::Heads::default(), false).map_err(|e| match e {
            StreamError::Decode(e) => e,
            StreamError::Sink(never) => match never {},
        })?;
    Ok(heads.0)
}

/// Decodes every item of a document into `sink`: each item's MO data node by node, then
/// [`ItemSink::end_item`] with its head. Nothing of the data is kept. Items come in
/// document order, so a caller that read the [`heads`] first knows, at an item's first
/// node, which item it is.
pub fn decode_items_into<S: ItemSink>(
    bytes: &[u8],
    limits: Limits,
    sink: &mut S,
) -> Result<(), StreamError<S::Error>> {
    limits.check_size(bytes).map_err(StreamError::Decode)?;
    decode::run(bytes, limits, decode::Borrowed(sink), true).map(drop)
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
