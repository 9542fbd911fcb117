//! MO data into tree nodes, typed and checked against the MO's definition as the data
//! arrives: a [`Builder`] takes the decoder's events one node at a time and hands each
//! finished node on, so a large MO can be stored without being held (issue 12).

use std::collections::HashMap;

use super::ddf::DefNode;
use super::{GENERIC_ACCESS, MoError, is_secret_leaf};
use crate::protocol::dmmo::{DataNode, DataSink};
use crate::tree::{Format, Node, NodeProps, Scope, Value, child_path, is_node_name};

/// Turns MO data into nodes to store at `path` in an instance of `moid`, typed and checked
/// against `def` (the definition of the node at `path`; `None` for MOs without a DDF).
/// Nodes come out parents first. `max_value` bounds each leaf's size.
pub fn build_nodes(
    moid: &str,
    def: Option<&DefNode>,
    path: &str,
    data: &DataNode,
    max_value: usize,
) -> Result<Vec<Node>, MoError> {
    let mut out = Vec::with_capacity(data.count());
    let mut builder = Builder::new(moid, def, path, max_value, |n| {
        out.push(n);
        Ok::<(), MoError>(())
    });
    data.feed("", &mut builder)?;
    Ok(out)
}

/// A [`DataSink`] that builds the nodes of MO data stored at one path and gives each to
/// `emit` as soon as it is complete, parents first: an interior node when it opens, a
/// leaf when it arrives, a required node's default when its parent closes. The name of
/// the data's top is not used: the node goes where `path` says. A failure of `emit` stops
/// the building and comes back as itself; the data's own faults come back as
/// [`MoError`]s through `E: From<MoError>`.
pub struct Builder<'d, F> {
    moid: &'d str,
    top: Option<(&'d str, Option<&'d DefNode>)>,
    max_value: usize,
    emit: F,
    open: Vec<Frame<'d>>,
}

impl<F> std::fmt::Debug for Builder<'_, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("moid", &self.moid)
            .field(
                "open",
                &self.open.iter().map(|f| &f.path).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// An interior node whose children are still arriving.
struct Frame<'d> {
    path: String,
    def: Option<&'d DefNode>,
    /// Children seen per definition, for its occurrence bounds.
    counts: HashMap<*const DefNode, u32>,
}

impl<'d, F> Builder<'d, F> {
    /// A builder for data stored at `path` of an instance of `moid`; `def` is the
    /// definition of the node at `path`.
    pub fn new(
        moid: &'d str,
        def: Option<&'d DefNode>,
        path: &'d str,
        max_value: usize,
        emit: F,
    ) -> Self {
        Builder {
            moid,
            top: Some((path, def)),
            max_value,
            emit,
            open: Vec::new(),
        }
    }

    /// Where the node named `name` goes, and its definition: the top first, then the
    /// children of the node opened last.
    fn place(&mut self, name: &str) -> Result<(String, Option<&'d DefNode>), MoError> {
        let Some(parent) = self.open.last_mut() else {
            let (path, def) = self.top.take().ok_or_else(|| MoError::Shape {
                path: "/".into(),
                expected: "one top node",
            })?;
            return Ok((path.to_owned(), def));
        };
        if !is_node_name(name) {
            return Err(MoError::BadName {
                path: shown(&parent.path),
                name: name.to_owned(),
            });
        }
        let path = child_path(&parent.path, name);
        let def = match parent.def {
            // An interior node whose definition lists no children is open: the
            // hierarchy "continues elsewhere" (TND 1.3 §10.5.1.5), as vendor extension
            // points (`Ext`) do. Its subtree is stored generically.
            Some(d) if d.children.is_empty() => None,
            Some(d) => {
                let c = d.child(name).ok_or_else(|| MoError::UnknownNode {
                    moid: self.moid.to_owned(),
                    path: shown(&path),
                })?;
                *parent.counts.entry(std::ptr::from_ref(c)).or_default() += 1;
                Some(c)
            }
            None => None,
        };
        Ok((path, def))
    }
}

impl<E: From<MoError>, F: FnMut(Node) -> Result<(), E>> DataSink for Builder<'_, F> {
    type Error = E;

    fn open(&mut self, name: &str) -> Result<(), E> {
        let (path, def) = self.place(name)?;
        if def.is_some_and(|d| d.format != Format::Node) {
            return Err(MoError::Shape {
                path: shown(&path),
                expected: "a leaf value",
            }
            .into());
        }
        let (access, scope) = def.map_or((GENERIC_ACCESS, Scope::Dynamic), |d| (d.access, d.scope));
        (self.emit)(Node {
            path: path.clone(),
            props: NodeProps::interior(access, scope),
            value: None,
        })?;
        self.open.push(Frame {
            path,
            def,
            counts: HashMap::new(),
        });
        Ok(())
    }

    fn leaf(&mut self, name: &str, json: serde_json::Value) -> Result<(), E> {
        let (path, def) = self.place(name)?;
        let node = match def {
            Some(d) if d.format == Format::Node => {
                return Err(MoError::Shape {
                    path: shown(&path),
                    expected: "an interior node (a JSON object)",
                }
                .into());
            }
            Some(d) => {
                let value =
                    Value::from_json_owned(d.format, json).map_err(|source| MoError::Value {
                        path: shown(&path),
                        source,
                    })?;
                leaf(self.moid, d, path, value, self.max_value)?
            }
            None => {
                let value =
                    Value::from_json_owned(infer_format(&json), json).map_err(|source| {
                        MoError::Value {
                            path: shown(&path),
                            source,
                        }
                    })?;
                generic_leaf(self.moid, path, value, self.max_value)?
            }
        };
        (self.emit)(node)
    }

    fn close(&mut self) -> Result<(), E> {
        let Some(frame) = self.open.pop() else {
            return Ok(());
        };
        if let Some(d) = frame.def {
            for node in check_children(self.moid, d, &frame.path, &frame.counts, self.max_value)? {
                (self.emit)(node)?;
            }
        }
        Ok(())
    }
}

/// A path as messages show it, from the instance root.
fn shown(path: &str) -> String {
    if path.is_empty() {
        "/".into()
    } else {
        format!("/{path}")
    }
}

fn check_size(path: &str, value: &Value, max_value: usize) -> Result<(), MoError> {
    if value.size() > max_value {
        return Err(MoError::TooLarge {
            path: shown(path),
            size: value.size(),
            limit: max_value,
        });
    }
    Ok(())
}

/// A leaf node for `value` at `path`, with the properties of its definition (or generic
/// ones for MOs without a DDF).
pub fn leaf_node(
    moid: &str,
    def: Option<&DefNode>,
    path: &str,
    value: Value,
    max_value: usize,
) -> Result<Node, MoError> {
    match def {
        Some(d) => leaf(moid, d, path.to_owned(), value, max_value),
        None => generic_leaf(moid, path.to_owned(), value, max_value),
    }
}

/// A leaf of an MO without a definition (or below an open node).
fn generic_leaf(moid: &str, path: String, value: Value, max_value: usize) -> Result<Node, MoError> {
    check_size(&path, &value, max_value)?;
    let mut props = NodeProps::leaf(value.format(), GENERIC_ACCESS, Scope::Dynamic);
    props.secret = is_secret_leaf(moid, &path, GENERIC_ACCESS);
    Ok(Node {
        path,
        props,
        value: Some(value),
    })
}

/// The definition of the node at `path` (names from the instance root), if the MO has one.
pub fn def_at<'d>(root: &'d DefNode, path: &str) -> Option<&'d DefNode> {
    if path.is_empty() {
        return Some(root);
    }
    path.split('/').try_fold(root, |d, name| d.child(name))
}

fn leaf(
    moid: &str,
    d: &DefNode,
    path: String,
    value: Value,
    max_value: usize,
) -> Result<Node, MoError> {
    check_size(&path, &value, max_value)?;
    let mut props = NodeProps::leaf(d.format, d.access, d.scope);
    props.mime = d.mime.first().cloned();
    props.secret = is_secret_leaf(moid, &path, d.access);
    Ok(Node {
        path,
        props,
        value: Some(value),
    })
}

/// Checks occurrence bounds; gives the required named nodes that are missing and can be
/// made from their definition ([`default_subtree`]).
fn check_children(
    moid: &str,
    def: &DefNode,
    path: &str,
    counts: &HashMap<*const DefNode, u32>,
    max_value: usize,
) -> Result<Vec<Node>, MoError> {
    let mut defaults = Vec::new();
    for c in &def.children {
        let got = counts.get(&std::ptr::from_ref(c)).copied().unwrap_or(0);
        if let Some(max) = c.occurrence.max()
            && got > max
        {
            return Err(MoError::TooMany {
                path: shown(path),
                name: c.display_name(),
                max,
                got,
            });
        }
        if got > 0 || !c.occurrence.required() {
            continue;
        }
        let made = match &c.name {
            Some(name) => default_subtree(moid, c, child_path(path, name), max_value)?,
            None => None,
        };
        match made {
            Some(nodes) => defaults.extend(nodes),
            None => {
                return Err(MoError::Missing {
                    path: shown(path),
                    name: c.display_name(),
                });
            }
        }
    }
    Ok(defaults)
}

/// A required node the data left out, made from its definition when it can be: a leaf
/// with a default value, or an interior node whose own required children can all be made
/// so (the status leaves and operation nodes a device keeps under an entry a server adds,
/// as SCOMO's `Download/<x>/Status` and `Operations`). `None` when it cannot.
fn default_subtree(
    moid: &str,
    def: &DefNode,
    path: String,
    max_value: usize,
) -> Result<Option<Vec<Node>>, MoError> {
    if def.format != Format::Node {
        let Some(default) = &def.default else {
            return Ok(None);
        };
        let value = Value::from_text(def.format, default).map_err(|source| MoError::Value {
            path: shown(&path),
            source,
        })?;
        return Ok(Some(vec![leaf(moid, def, path, value, max_value)?]));
    }
    let mut nodes = Vec::new();
    for c in def.children.iter().filter(|c| c.occurrence.required()) {
        let Some(name) = &c.name else {
            return Ok(None);
        };
        match default_subtree(moid, c, child_path(&path, name), max_value)? {
            Some(made) => nodes.extend(made),
            None => return Ok(None),
        }
    }
    nodes.insert(
        0,
        Node {
            path,
            props: NodeProps::interior(def.access, def.scope),
            value: None,
        },
    );
    Ok(Some(nodes))
}

/// The format of a leaf of an MO without a definition, from its JSON type.
fn infer_format(json: &serde_json::Value) -> Format {
    match json {
        serde_json::Value::Null => Format::Null,
        serde_json::Value::Bool(_) => Format::Bool,
        serde_json::Value::Number(n) if n.as_i64().is_some_and(|i| i32::try_from(i).is_ok()) => {
            Format::Int
        }
        serde_json::Value::Number(_) => Format::Float,
        _ => Format::Chr,
    }
}
