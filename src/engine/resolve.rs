//! ClientURI resolution (TS §6.1.2): from a parsed ClientURI to the concrete nodes it
//! addresses, in two steps: the instances, then the nodes inside each.

use crate::mo::canonical_moid;
use crate::protocol::uri::{ClientUri, InstanceSel, NodeValue, Segment};
use crate::tree::{InstanceKey, Node, StoreError, TreeStore, child_path};

/// A concrete node.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Location {
    /// Its instance.
    pub key: InstanceKey,
    /// Its path from the instance root.
    pub path: String,
}

impl Location {
    /// The node's concrete ClientURI.
    pub fn uri(&self) -> String {
        crate::protocol::uri::concrete(&self.key.moid, &self.key.miid, &self.path)
    }
}

/// Why a ClientURI does not resolve. The TS names no codes (reference §15); we answer 404
/// when nothing matches and 400 when a name that must pick one node picks several
/// (docs/decisions.md).
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// Nothing matches.
    #[error("no node matches")]
    NotFound,
    /// An empty instance part or an x-name matches more than one node.
    #[error("{0}")]
    Ambiguous(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Decides whether an `nv` field may look at a leaf: a server must not learn values it
/// may not read by probing with `nv`.
pub type Readable<'a> = dyn Fn(&InstanceKey, &Node) -> bool + 'a;

/// Resolves `uri`. Without wildcards the result is exactly one location; with wildcards,
/// every match (at least one), in tree order.
pub fn resolve(
    store: &dyn TreeStore,
    uri: &ClientUri,
    readable: &Readable<'_>,
) -> Result<Vec<Location>, ResolveError> {
    let moid = canonical_moid(&uri.moid);
    let all = || -> Result<Vec<InstanceKey>, StoreError> {
        Ok(store
            .instances(Some(moid))?
            .into_iter()
            .map(|i| InstanceKey::new(i.moid, i.miid))
            .collect())
    };
    let instances: Vec<InstanceKey> = match &uri.instance {
        InstanceSel::Miid(m) => match store.instance(moid, m)? {
            Some(_) => vec![InstanceKey::new(moid, m.clone())],
            None => return Err(ResolveError::NotFound),
        },
        InstanceSel::All => all()?,
        InstanceSel::Only => match all()?.as_slice() {
            [] => return Err(ResolveError::NotFound),
            [one] => vec![one.clone()],
            many => {
                return Err(ResolveError::Ambiguous(format!(
                    "{} instances of {moid}; name one",
                    many.len()
                )));
            }
        },
        InstanceSel::XName(x) => {
            let mut hits = Vec::new();
            for key in all()? {
                if nv_holds(store, &key, "", uri.nv_for(*x), readable)? {
                    hits.push(key);
                }
            }
            if hits.len() > 1 {
                return Err(ResolveError::Ambiguous(format!(
                    "({x}) matches {} instances",
                    hits.len()
                )));
            }
            hits
        }
    };
    let mut out = Vec::new();
    for key in instances {
        let mut here = vec![String::new()];
        if store.node(&key, "")?.is_none() {
            continue;
        }
        for seg in &uri.path {
            let mut next = Vec::new();
            for path in &here {
                match seg {
                    Segment::Name(n) => {
                        let p = child_path(path, n);
                        if store.node(&key, &p)?.is_some() {
                            next.push(p);
                        }
                    }
                    Segment::All => {
                        next.extend(store.children(&key, path)?.into_iter().map(|c| c.path))
                    }
                    Segment::XName(y) => {
                        let mut hits = Vec::new();
                        for c in store.children(&key, path)? {
                            if nv_holds(store, &key, &c.path, uri.nv_for(*y), readable)? {
                                hits.push(c.path);
                            }
                        }
                        if hits.len() > 1 {
                            return Err(ResolveError::Ambiguous(format!(
                                "({y}) matches {} nodes",
                                hits.len()
                            )));
                        }
                        next.extend(hits);
                    }
                }
            }
            here = next;
        }
        out.extend(here.into_iter().map(|path| Location {
            key: key.clone(),
            path,
        }));
    }
    if out.is_empty() {
        return Err(ResolveError::NotFound);
    }
    Ok(out)
}

/// True when every `nv` field holds below `base`.
fn nv_holds<'a>(
    store: &dyn TreeStore,
    key: &InstanceKey,
    base: &str,
    fields: impl Iterator<Item = &'a NodeValue>,
    readable: &Readable<'_>,
) -> Result<bool, StoreError> {
    for f in fields {
        let path = f
            .path
            .iter()
            .fold(base.to_owned(), |p, n| child_path(&p, n));
        let ok = store
            .node(key, &path)?
            .filter(|n| readable(key, n))
            .and_then(|n| n.value)
            .is_some_and(|v| v.to_text() == f.value);
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::Tree as _;
    use crate::tree::{AccessType, NodeProps, OpenMode, Scope, SqliteStore, TreeOp, Value};

    const MOID: &str = "urn:oma:mo:moid:1.0";

    fn interior(p: &str) -> Node {
        Node {
            path: p.into(),
            props: NodeProps::interior(AccessType::ALL, Scope::Dynamic),
            value: None,
        }
    }

    fn leaf(p: &str, v: &str) -> Node {
        Node {
            path: p.into(),
            props: NodeProps::leaf(crate::tree::Format::Chr, AccessType::GET, Scope::Dynamic),
            value: Some(Value::Chr(v.into())),
        }
    }

    fn instance(id: &str, setting: &str, data: [(&str, &str); 2]) -> Vec<Node> {
        vec![
            interior(""),
            interior("Data"),
            interior("Data/1"),
            leaf("Data/1/Date", data[0].0),
            leaf("Data/1/Value", data[0].1),
            interior("Data/2"),
            leaf("Data/2/Date", data[1].0),
            leaf("Data/2/Value", data[1].1),
            leaf("ID", id),
            leaf("Setting", setting),
        ]
    }

    /// TS §6.1.3, Figure 5: instances `left` (moroot1) and `right` (moroot2).
    fn figure5() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("t.db"), OpenMode::ReadWrite).unwrap();
        for (miid, nodes) in [
            (
                "left",
                instance(
                    "GPS",
                    "0xA2",
                    [("12.1", "12.1, 65.2"), ("12.2", "117.1, 21.2")],
                ),
            ),
            (
                "right",
                instance("Temperature", "0x12", [("12.1", "12"), ("12.2", "19")]),
            ),
        ] {
            s.apply(&[TreeOp::PutInstance {
                key: InstanceKey::new(MOID, miid),
                ddf_url: None,
                creator: "local".into(),
                nodes,
            }])
            .unwrap();
        }
        (dir, s)
    }

    fn run(s: &SqliteStore, uri: &str) -> Result<Vec<String>, ResolveError> {
        let u = ClientUri::parse(uri).unwrap();
        resolve(s, &u, &|_, n| n.props.access.contains(AccessType::GET))
            .map(|l| l.iter().map(Location::uri).collect())
    }

    #[test]
    fn the_ten_examples_of_ts_6_1_3() {
        let (_d, s) = figure5();
        let m = |p: &str| format!("{MOID}/{p}");
        let ok: [(&str, Vec<String>); 8] = [
            ("urn:oma:mo:moid:1.0/left/", vec![m("left/")]),
            // The TS text says "moroot2/ID"; the path "/" is the root (§14 #11).
            (
                "urn:oma:mo:moid:1.0/(x)/?nv=(x)/ID:Temperature",
                vec![m("right/")],
            ),
            (
                "urn:oma:mo:moid:1.0/(x)/Data/1/Value?nv=(x)/ID:GPS",
                vec![m("left/Data/1/Value")],
            ),
            (
                "urn:oma:mo:moid:1.0/right/Data/(x)/Value?nv=(x)/Date:12.1",
                vec![m("right/Data/1/Value")],
            ),
            (
                "urn:oma:mo:moid:1.0/(x)/Data/(y)/Value?nv=(x)/ID:GPS&nv=(y)/Date:12.2",
                vec![m("left/Data/2/Value")],
            ),
            (
                "urn:oma:mo:moid:1.0/*/Setting",
                vec![m("left/Setting"), m("right/Setting")],
            ),
            (
                "urn:oma:mo:moid:1.0/(x)/Data/*/Value?nv=(x)/ID:GPS",
                vec![m("left/Data/1/Value"), m("left/Data/2/Value")],
            ),
            (
                "urn:oma:mo:moid:1.0/*/Data/*/Value",
                vec![
                    m("left/Data/1/Value"),
                    m("left/Data/2/Value"),
                    m("right/Data/1/Value"),
                    m("right/Data/2/Value"),
                ],
            ),
        ];
        for (uri, want) in ok {
            assert_eq!(
                run(&s, uri).unwrap_or_else(|e| panic!("{uri}: {e}")),
                want,
                "{uri}"
            );
        }
        assert!(
            matches!(
                run(&s, "urn:oma:mo:moid:1.0//"),
                Err(ResolveError::Ambiguous(_))
            ),
            "two instances"
        );
        assert!(
            matches!(
                run(
                    &s,
                    "urn:oma:mo:moid:1.0/(x)/Data/*/Value?nv=(x)/ID:GPS&nv=(x)/Setting:0xB2"
                ),
                Err(ResolveError::NotFound)
            ),
            "no instance matches both"
        );
    }

    #[test]
    fn more_cases() {
        let (_d, s) = figure5();
        for uri in [
            "urn:oma:mo:moid:1.0/nope/",
            "urn:oma:mo:moid:1.0/left/Nope",
            "urn:oma:mo:moid:1.0/left/ID/below-a-leaf",
            "urn:oma:mo:other:1.0//",
            "urn:oma:mo:other:1.0/*/",
            "urn:oma:mo:moid:1.0/*/Nope",
            "urn:oma:mo:moid:1.0/left/Data/(y)/Value?nv=(y)/Date:13.1",
            "urn:oma:mo:moid:1.0/(x)/?nv=(x)/Nope:GPS",
        ] {
            assert!(matches!(run(&s, uri), Err(ResolveError::NotFound)), "{uri}");
        }
        // (y) without nv matches every child: two is ambiguous.
        assert!(matches!(
            run(&s, "urn:oma:mo:moid:1.0/left/Data/(y)"),
            Err(ResolveError::Ambiguous(_))
        ));
        assert!(matches!(
            run(&s, "urn:oma:mo:moid:1.0/(x)/"),
            Err(ResolveError::Ambiguous(_))
        ));
        // A single instance may be addressed with an empty instance part.
        s.apply(&[TreeOp::DeleteSubtree {
            key: InstanceKey::new(MOID, "right"),
            path: String::new(),
        }])
        .unwrap();
        assert_eq!(
            run(&s, "urn:oma:mo:moid:1.0//ID").unwrap(),
            [format!("{MOID}/left/ID")]
        );
    }

    #[test]
    fn nv_cannot_probe_unreadable_leaves() {
        let (_d, s) = figure5();
        let u = ClientUri::parse("urn:oma:mo:moid:1.0/(x)/?nv=(x)/ID:GPS").unwrap();
        let nothing_readable = |_: &InstanceKey, _: &Node| false;
        assert!(matches!(
            resolve(&s, &u, &nothing_readable),
            Err(ResolveError::NotFound)
        ));
    }

    #[test]
    fn dmacc_2_0_alias_resolves() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("t.db"), OpenMode::ReadWrite).unwrap();
        s.apply(&[TreeOp::PutInstance {
            key: InstanceKey::new(crate::mo::DMACC, "acc"),
            ddf_url: None,
            creator: "local".into(),
            nodes: vec![interior(""), leaf("SrvID", "DMS_ID1")],
        }])
        .unwrap();
        assert_eq!(
            run(
                &s,
                "urn:oma:mo:oma-dm-dmacc:2.0/(x)/SrvID?nv=(x)/SrvID:DMS_ID1"
            )
            .unwrap(),
            ["urn:oma:mo:oma-dm-dmacc:1.2/acc/SrvID"]
        );
    }
}
