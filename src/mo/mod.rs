//! Management Objects: their definitions (DDF), the typed conversion between MO data
//! (`application/dmmo+json`) and tree nodes, the standard MOs a DM 2.0 client hosts
//! (TS §12), and factory bootstrap (TS §8).

pub mod account;
pub mod bootstrap;
mod build;
pub mod ddf;
pub mod handlers;
pub mod standard;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use crate::protocol::dmmo::DataNode;
use crate::tree::{AccessType, Node, ValueError};
use ddf::MoDef;

pub use build::{Builder, build_nodes, def_at, leaf_node};

/// MOID of the DevInfo MO (TS §12.1; OMNA 0x0071).
pub const DEVINFO: &str = "urn:oma:mo:oma-dm-devinfo:1.2";
/// MOID of the DM Account MO (TS §12.2; OMNA 0x0070).
pub const DMACC: &str = "urn:oma:mo:oma-dm-dmacc:1.2";
/// MOID of the Delegation Access Control MO (TS §12.3; OMNA 0x0072).
pub const DACMO: &str = "urn:oma:mo:oma-dm-dacmo:1.0";
/// MOID of the Session Information MO (TS §12.4; OMNA 0x0073).
pub const SESSIONINFO: &str = "urn:oma:mo:oma-sessioninfomo:1.0";
/// MOID of the Device Details MO (OMA-TS-DM_StdObj-V1_2 §5.3).
pub const DEVDETAIL: &str = "urn:oma:mo:oma-dm-devdetail:1.0";

/// The DDFs shipped inside the binary, with the OMNA URLs reported for them.
const BUILTIN: [(&str, &str, &str); 5] = [
    (
        "oma-dm-devinfo-1.2.ddf.xml",
        include_str!("../../data/ddf/oma-dm-devinfo-1.2.ddf.xml"),
        "http://www.openmobilealliance.org/tech/omna/dm_mo/dm_devinfo-v1_2.ddf",
    ),
    (
        "oma-dm-dmacc-1.2.ddf.xml",
        include_str!("../../data/ddf/oma-dm-dmacc-1.2.ddf.xml"),
        "http://www.openmobilealliance.org/tech/omna/dm_mo/dm_dmacc-v1_2.ddf",
    ),
    (
        "oma-sessioninfomo-1.0.ddf.xml",
        include_str!("../../data/ddf/oma-sessioninfomo-1.0.ddf.xml"),
        "http://www.openmobilealliance.org/tech/omna/dm_mo/dm_sessioninfo-v1_0.ddf",
    ),
    (
        "oma-dm-devdetail-1.0.ddf.xml",
        include_str!("../../data/ddf/oma-dm-devdetail-1.0.ddf.xml"),
        "http://www.openmobilealliance.org/tech/omna/dm_mo/dm_devdetail-v1_0.ddf",
    ),
    (
        "oma-dm-dacmo-1.0.ddf.xml",
        include_str!("../../data/ddf/oma-dm-dacmo-1.0.ddf.xml"),
        "http://www.openmobilealliance.org/tech/omna/dm_mo/dm_delegation-v1_0.ddf",
    ),
];

/// Errors turning MO data into nodes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoError {
    /// The data names a node its MO does not define.
    #[error("{path}: {moid} defines no such node")]
    UnknownNode {
        /// MOID.
        moid: String,
        /// Path of the node.
        path: String,
    },
    /// A leaf's value does not fit its format.
    #[error("{path}: {source}")]
    Value {
        /// Path of the node.
        path: String,
        /// Why.
        #[source]
        source: ValueError,
    },
    /// A value is larger than the configured limit.
    #[error("{path}: value of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Path of the node.
        path: String,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A leaf where the definition has an interior node, or the reverse.
    #[error("{path}: expected {expected}")]
    Shape {
        /// Path of the node.
        path: String,
        /// What the definition wants.
        expected: &'static str,
    },
    /// A required node is missing and its definition gives no default.
    #[error("{path}: required node {name} is missing")]
    Missing {
        /// Path of the parent.
        path: String,
        /// The missing child.
        name: String,
    },
    /// More siblings of one definition than its occurrence allows.
    #[error("{path}: at most {max} {name} nodes are allowed, got {got}")]
    TooMany {
        /// Path of the parent.
        path: String,
        /// The definition's display name.
        name: String,
        /// The bound.
        max: u32,
        /// How many came.
        got: u32,
    },
    /// A name that cannot be a node name.
    #[error("{path}: {name:?} is not a valid node name")]
    BadName {
        /// Path of the parent.
        path: String,
        /// The name.
        name: String,
    },
}

/// A definition together with where it came from.
#[derive(Debug, Clone)]
pub struct Registered {
    /// The definition.
    pub def: MoDef,
    /// The DDF URL reported to servers (MOS, dmmo+json `DDF`).
    pub ddf_url: Option<String>,
    /// File the definition was read from (`builtin:NAME` for shipped ones).
    pub source: String,
}

/// The MO definitions the daemon knows: the shipped standard ones plus DDFs from the
/// configured directories (later directories override earlier ones per MOID).
#[derive(Debug, Clone, Default)]
pub struct Registry {
    defs: BTreeMap<String, Registered>,
}

/// A DDF file that could not be loaded.
#[derive(Debug)]
pub struct LoadFailure {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub error: String,
}

impl Registry {
    /// The shipped standard definitions.
    pub fn builtin() -> Registry {
        let mut reg = Registry::default();
        for (name, xml, url) in BUILTIN {
            // The shipped DDFs are tested to parse; a failure here is a build defect.
            match ddf::parse(xml) {
                Ok(def) => {
                    reg.defs.insert(
                        def.moid.clone(),
                        Registered {
                            def,
                            ddf_url: Some(url.to_owned()),
                            source: format!("builtin:{name}"),
                        },
                    );
                }
                Err(e) => tracing::error!(ddf = name, error = %e, "shipped DDF does not parse"),
            }
        }
        reg
    }

    /// Loads every `*.xml` / `*.ddf` file of `dir` (a missing directory is empty). Files
    /// that fail are reported and skipped; the others load.
    pub fn load_dir(&mut self, dir: &Path) -> Vec<LoadFailure> {
        let mut failures = Vec::new();
        let Ok(entries) = std::fs::read_dir(dir) else {
            return failures;
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "xml" || e == "ddf"))
            .collect();
        files.sort();
        for path in files {
            let loaded = std::fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|xml| ddf::parse(&xml).map_err(|e| e.to_string()));
            match loaded {
                Ok(def) => {
                    tracing::debug!(moid = %def.moid, path = %path.display(), "loaded DDF");
                    self.defs.insert(
                        def.moid.clone(),
                        Registered {
                            def,
                            ddf_url: None,
                            source: path.display().to_string(),
                        },
                    );
                }
                Err(error) => failures.push(LoadFailure { path, error }),
            }
        }
        failures
    }

    /// The definition of a MOID.
    pub fn get(&self, moid: &str) -> Option<&Registered> {
        self.defs.get(canonical_moid(moid))
    }

    /// Every known definition, by MOID.
    pub fn iter(&self) -> impl Iterator<Item = &Registered> {
        self.defs.values()
    }
}

/// A leaf's value as text (`None` when the node or its value is missing).
pub fn leaf_text(
    store: &dyn crate::tree::TreeStore,
    key: &crate::tree::InstanceKey,
    path: &str,
) -> Result<Option<String>, crate::tree::StoreError> {
    Ok(store
        .node(key, path)?
        .and_then(|n| n.value)
        .map(|v| v.to_text()))
}

/// The MOID we store an MOID under: the TS's examples use `...dmacc:2.0` for the account
/// MO whose registered MOID is `...dmacc:1.2` (§14 #3); we accept the former as an alias.
pub fn canonical_moid(moid: &str) -> &str {
    match moid {
        "urn:oma:mo:oma-dm-dmacc:2.0" => DMACC,
        other => other,
    }
}

/// Leaves that hold key material: never shown outside the daemon (D-Bus, diagnostics,
/// logs), whatever their access type says. TS §12.2 gives `Auth/Noti/Secret` the Get
/// access type, but it is the key that authenticates notifications.
fn is_secret_leaf(moid: &str, path: &str, access: AccessType) -> bool {
    !access.contains(AccessType::GET)
        || (moid == DMACC
            && matches!(
                path.rsplit('/').next().unwrap_or(path),
                "Secret" | "ClientSecretKey"
            ))
}

/// Rights given to nodes of MOs without a definition: everything but Exec, which needs a
/// handler to mean anything.
const GENERIC_ACCESS: AccessType = AccessType::from_bits(
    AccessType::ADD.bits()
        | AccessType::DELETE.bits()
        | AccessType::GET.bits()
        | AccessType::REPLACE.bits(),
);

/// True when `node`'s value may leave the daemon, to a server or a local reader: it has
/// the Get access type and is not key material (TS §12.2 gives `Auth/Noti/Secret` Get; no
/// reader gets it from us).
pub fn shows(node: &Node) -> bool {
    node.props.access.contains(AccessType::GET) && !node.props.secret
}

/// Turns stored nodes (a subtree, parents first, the first being its top) back into MO
/// data, leaving out what [`shows`] hides (an interior node without Get hides its whole
/// subtree). `None` when the top itself is hidden.
pub fn nodes_to_data(nodes: &[Node]) -> Option<DataNode> {
    let top = nodes.first()?;
    let mut kids: HashMap<&str, Vec<&Node>> = HashMap::new();
    for n in &nodes[1..] {
        if let Some(parent) = crate::tree::parent_path(&n.path) {
            kids.entry(parent).or_default().push(n);
        }
    }
    fn to_data<'a>(n: &'a Node, kids: &HashMap<&str, Vec<&'a Node>>) -> Option<DataNode> {
        if !shows(n) {
            return None;
        }
        match &n.value {
            Some(v) => Some(DataNode::Leaf(v.to_json())),
            None => Some(DataNode::Interior(
                kids.get(n.path.as_str())
                    .into_iter()
                    .flatten()
                    .filter_map(|c| {
                        let name = c.path.rsplit('/').next().unwrap_or(&c.path).to_owned();
                        to_data(c, kids).map(|d| (name, d))
                    })
                    .collect(),
            )),
        }
    }
    to_data(top, &kids)
}

/// The MO data item for one stored subtree (TS §7.2.1.4): addressed by its concrete
/// ClientURI, with `CV` and `DDF` when it is an instance root; `None` when [`shows`]
/// hides its top.
pub fn item(
    store: &dyn crate::tree::TreeStore,
    key: &crate::tree::InstanceKey,
    path: &str,
    nodes: &[Node],
) -> Result<Option<crate::protocol::dmmo::MoItem>, crate::tree::StoreError> {
    let Some(data) = nodes_to_data(nodes) else {
        return Ok(None);
    };
    let root = path.is_empty();
    let inst = if root {
        store.instance(&key.moid, &key.miid)?
    } else {
        None
    };
    Ok(Some(crate::protocol::dmmo::MoItem {
        ddf: inst.as_ref().and_then(|i| i.ddf_url.clone()),
        client_uri: crate::protocol::uri::concrete(&key.moid, &key.miid, path),
        cv: inst.map(|i| i.cv),
        name: if root {
            key.miid.clone()
        } else {
            path.rsplit('/').next().unwrap_or_default().to_owned()
        },
        data,
    }))
}

#[cfg(test)]
mod tests;
