//! MO definitions from DM 1.3 DDF XML (TS §6.4, TND 1.3 §10.5), which DM 2.0 reuses.
//!
//! We read the elements DM 2.0 marks mandatory or optional and ignore the ones it marks
//! ignored (RTProperties and its children). The MOID is the `DDFName` in the root node's
//! `DFType` (TND 1.3 §10.5.3.8). Unknown elements are skipped, as OMA DDFs in the wild vary.

use crate::tree::{AccessType, Format, Scope};

/// Errors reading a DDF.
#[derive(Debug, thiserror::Error)]
pub enum DdfError {
    /// Not well-formed XML.
    #[error("not well-formed XML: {0}")]
    Xml(#[from] roxmltree::Error),
    /// Well-formed but not a valid DDF.
    #[error("line {line}: {what}")]
    Invalid {
        /// Line of the offending element.
        line: u32,
        /// What is wrong.
        what: String,
    },
}

/// How many instances of a node may exist (DDF `Occurrence`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Occurrence {
    /// Exactly one (the default).
    One,
    /// Zero or one.
    ZeroOrOne,
    /// Any number.
    ZeroOrMore,
    /// At least one.
    OneOrMore,
    /// Zero to N.
    ZeroOrN(u32),
    /// One to N.
    OneOrN(u32),
}

impl Occurrence {
    /// True when the node must exist.
    pub fn required(self) -> bool {
        matches!(
            self,
            Occurrence::One | Occurrence::OneOrMore | Occurrence::OneOrN(_)
        )
    }

    /// The most instances allowed, if bounded.
    pub fn max(self) -> Option<u32> {
        match self {
            Occurrence::One | Occurrence::ZeroOrOne => Some(1),
            Occurrence::ZeroOrN(n) | Occurrence::OneOrN(n) => Some(n),
            Occurrence::ZeroOrMore | Occurrence::OneOrMore => None,
        }
    }
}

/// One node of an MO definition.
#[derive(Debug, Clone, PartialEq)]
pub struct DefNode {
    /// The fixed name, or `None` for an un-named node (`<x>`) named at run time.
    pub name: Option<String>,
    /// `DFTitle`, used as the placeholder's display name.
    pub title: Option<String>,
    /// Format.
    pub format: Format,
    /// Access types.
    pub access: AccessType,
    /// Scope (Dynamic when the DDF says nothing).
    pub scope: Scope,
    /// Occurrence.
    pub occurrence: Occurrence,
    /// MIME types from `DFType` (leaves).
    pub mime: Vec<String>,
    /// The MOID from `DFType/DDFName` (interior nodes; required on the root).
    pub ddf_name: Option<String>,
    /// `DefaultValue`, or a default from `Value`.
    pub default: Option<String>,
    /// `Description`.
    pub description: Option<String>,
    /// Child definitions.
    pub children: Vec<DefNode>,
}

impl DefNode {
    /// The child definition matching a concrete name: the named one, else the un-named one.
    pub fn child(&self, name: &str) -> Option<&DefNode> {
        self.children
            .iter()
            .find(|c| c.name.as_deref() == Some(name))
            .or_else(|| self.children.iter().find(|c| c.name.is_none()))
    }

    /// The name as shown in docs and errors: the name, or `<title>` / `<x>`.
    pub fn display_name(&self) -> String {
        match (&self.name, &self.title) {
            (Some(n), _) => n.clone(),
            (None, Some(t)) if !t.contains(char::is_whitespace) => format!("<{t}>"),
            _ => "<x>".into(),
        }
    }
}

/// A parsed MO definition.
#[derive(Debug, Clone, PartialEq)]
pub struct MoDef {
    /// The MOID.
    pub moid: String,
    /// The root node (the instance root).
    pub root: DefNode,
    /// `Man`, when given.
    pub man: Option<String>,
    /// `Mod`, when given.
    pub model: Option<String>,
}

/// Parses a DDF document.
pub fn parse(xml: &str) -> Result<MoDef, DdfError> {
    // DTDs are allowed (OMA DDFs carry a DOCTYPE); roxmltree never fetches them.
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    let doc = roxmltree::Document::parse_with_options(xml, opts)?;
    let tree = doc.root_element();
    let invalid = |n: roxmltree::Node<'_, '_>, what: String| DdfError::Invalid {
        line: doc.text_pos_at(n.range().start).row,
        what,
    };
    if tree.tag_name().name() != "MgmtTree" {
        return Err(invalid(
            tree,
            format!(
                "root element is <{}>, not <MgmtTree>",
                tree.tag_name().name()
            ),
        ));
    }
    if !tree.children().any(|c| c.has_tag_name("VerDTD")) {
        return Err(invalid(tree, "<VerDTD> is required".into()));
    }
    let top: Vec<_> = tree.children().filter(|c| c.has_tag_name("Node")).collect();
    let mut roots = Vec::new();
    for n in &top {
        let path = child_text(*n, "Path");
        let def = parse_node(*n, &invalid, 1)?;
        match path {
            // A node with a Path continues a tree described elsewhere in the file
            // (TND 1.3 §10.5.1.7): attach it where the path says.
            Some(path) => {
                let segments: Vec<&str> = path
                    .trim_start_matches("./")
                    .split('/')
                    .filter(|s| !s.is_empty() && *s != ".")
                    .collect();
                let target = roots
                    .iter_mut()
                    .find_map(|r| descend(r, &segments))
                    .ok_or_else(|| {
                        invalid(
                            *n,
                            format!("<Path> {path:?} names no node described before it"),
                        )
                    })?;
                target.children.push(def);
            }
            None => roots.push(def),
        }
    }
    let root = match roots.len() {
        1 => roots.remove(0),
        0 => return Err(invalid(tree, "no <Node> in <MgmtTree>".into())),
        n => {
            return Err(invalid(
                tree,
                format!("{n} root nodes; a DDF describes one MO"),
            ));
        }
    };
    if root.format != Format::Node {
        return Err(invalid(tree, "the MO root must be an interior node".into()));
    }
    let moid = root
        .ddf_name
        .clone()
        .filter(|m| !m.is_empty())
        .ok_or_else(|| {
            invalid(
                tree,
                "the root's <DFType><DDFName> must give the MOID".into(),
            )
        })?;
    Ok(MoDef {
        moid,
        root,
        man: child_text(tree, "Man"),
        model: child_text(tree, "Mod"),
    })
}

/// Walks `segments` down from `node` (the first segment names `node` itself); un-named
/// nodes match a `<x>`-style segment or `*`.
fn descend<'a>(node: &'a mut DefNode, segments: &[&str]) -> Option<&'a mut DefNode> {
    let (first, rest) = segments.split_first()?;
    let matches = match &node.name {
        Some(n) => n == first,
        None => first.starts_with('<') || *first == "*",
    };
    if !matches {
        return None;
    }
    if rest.is_empty() {
        return Some(node);
    }
    node.children.iter_mut().find_map(|c| descend(c, rest))
}

fn child<'a, 'i>(n: roxmltree::Node<'a, 'i>, tag: &str) -> Option<roxmltree::Node<'a, 'i>> {
    n.children().find(|c| c.has_tag_name(tag))
}

fn child_text(n: roxmltree::Node<'_, '_>, tag: &str) -> Option<String> {
    child(n, tag).map(|c| c.text().unwrap_or_default().trim().to_owned())
}

/// How deep `<Node>` elements may nest in a DDF. Real MOs are a dozen levels deep; the
/// parser recurses once per level, so a file nested thousands deep would overflow the
/// stack at start-up, on every start. This is the `URI/MaxDepth` DevDetail would report.
pub const MAX_DEPTH: usize = 64;

fn parse_node<'a, 'i>(
    n: roxmltree::Node<'a, 'i>,
    invalid: &impl Fn(roxmltree::Node<'a, 'i>, String) -> DdfError,
    depth: usize,
) -> Result<DefNode, DdfError> {
    if depth > MAX_DEPTH {
        return Err(invalid(
            n,
            format!("<Node> elements nested deeper than {MAX_DEPTH} levels"),
        ));
    }
    let name_el =
        child(n, "NodeName").ok_or_else(|| invalid(n, "<Node> without <NodeName>".into()))?;
    let name = name_el.text().unwrap_or_default().trim().to_owned();
    let name = if name.is_empty() { None } else { Some(name) };
    if let Some(name) = &name
        && !crate::tree::is_node_name(name)
    {
        return Err(invalid(
            name_el,
            format!("node name {name:?} is not 1*unreserved"),
        ));
    }
    let shown = name.clone().unwrap_or_else(|| "<x>".into());
    let props = child(n, "DFProperties")
        .ok_or_else(|| invalid(n, format!("node {shown}: <DFProperties> is required")))?;

    let access_el = child(props, "AccessType")
        .ok_or_else(|| invalid(props, format!("node {shown}: <AccessType> is required")))?;
    let mut access = AccessType::NONE;
    for a in access_el.children().filter(|c| c.is_element()) {
        match AccessType::from_name(a.tag_name().name()) {
            Some(right) => access = access | right,
            None if a.has_tag_name("Copy") => {} // DM 1.x only; DM 2.0 has no copy.
            None => {
                return Err(invalid(
                    a,
                    format!(
                        "node {shown}: unknown access type <{}>",
                        a.tag_name().name()
                    ),
                ));
            }
        }
    }

    // DFFormat is mandatory in TS §6.4's table and optional in the SCR (§14 #12): a
    // missing one means `node` when the node has children, `chr` otherwise.
    let has_children = n.children().any(|c| c.has_tag_name("Node"));
    let format = match child(props, "DFFormat") {
        Some(f) => {
            let el = f
                .children()
                .find(|c| c.is_element())
                .ok_or_else(|| invalid(f, format!("node {shown}: empty <DFFormat>")))?;
            Format::parse(el.tag_name().name()).ok_or_else(|| {
                invalid(
                    el,
                    format!("node {shown}: unknown format <{}>", el.tag_name().name()),
                )
            })?
        }
        None if has_children => Format::Node,
        None => Format::Chr,
    };
    if has_children && format != Format::Node {
        return Err(invalid(
            n,
            format!("node {shown}: a {format} leaf cannot have child nodes"),
        ));
    }

    let occurrence = match child(props, "Occurrence") {
        None => Occurrence::One,
        Some(o) => {
            let el = o
                .children()
                .find(|c| c.is_element())
                .ok_or_else(|| invalid(o, format!("node {shown}: empty <Occurrence>")))?;
            let bound = || -> Result<u32, DdfError> {
                el.text().unwrap_or_default().trim().parse().map_err(|_| {
                    invalid(
                        el,
                        format!("node {shown}: <{}> needs a number", el.tag_name().name()),
                    )
                })
            };
            match el.tag_name().name() {
                "One" => Occurrence::One,
                "ZeroOrOne" => Occurrence::ZeroOrOne,
                "ZeroOrMore" => Occurrence::ZeroOrMore,
                "OneOrMore" => Occurrence::OneOrMore,
                "ZeroOrN" => Occurrence::ZeroOrN(bound()?),
                "OneOrN" => Occurrence::OneOrN(bound()?),
                other => {
                    return Err(invalid(
                        el,
                        format!("node {shown}: unknown occurrence <{other}>"),
                    ));
                }
            }
        }
    };
    let scope = match child(props, "Scope").and_then(|s| s.children().find(|c| c.is_element())) {
        Some(s) if s.has_tag_name("Permanent") => Scope::Permanent,
        Some(s) if s.has_tag_name("Dynamic") => Scope::Dynamic,
        Some(s) => {
            return Err(invalid(
                s,
                format!("node {shown}: unknown scope <{}>", s.tag_name().name()),
            ));
        }
        None => Scope::Dynamic,
    };
    let (mut mime, mut ddf_name) = (Vec::new(), None);
    if let Some(t) = child(props, "DFType") {
        for el in t.children().filter(|c| c.is_element()) {
            let text = el.text().unwrap_or_default().trim().to_owned();
            match el.tag_name().name() {
                "MIME" if !text.is_empty() => {
                    // It becomes a Content-Type header (GET results, HPUT bodies).
                    if !crate::protocol::packages::is_media_type(&text) {
                        return Err(invalid(
                            el,
                            format!("node {shown}: <MIME> {text:?} is not a media type"),
                        ));
                    }
                    mime.push(text)
                }
                "DDFName" => ddf_name = Some(text),
                _ => {}
            }
        }
    }
    let default = child_text(props, "DefaultValue").or_else(|| child_text(n, "Value"));
    let children = n
        .children()
        .filter(|c| c.has_tag_name("Node"))
        .map(|c| parse_node(c, invalid, depth + 1))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(DefNode {
        name,
        title: child_text(props, "DFTitle"),
        format,
        access,
        scope,
        occurrence,
        mime,
        ddf_name,
        default,
        description: child_text(props, "Description"),
        children,
    })
}
