//! Local writes: an EXEC handler keeps the MO it handles current (a FUMO instance per
//! firmware device, SCOMO's inventory), checked against the MO's definition like a
//! server's data and written in one transaction with the subscription deliveries it owes
//! (TS §5.3.11), so cache validators and SUB see a local change as any other (issue 14).
//!
//! The D-Bus edge decides who may write which MO (the registered handler of it); this
//! module only checks that every change stays inside those MOs and fits their DDFs.

use super::commands::deliveries;
use crate::mo::ddf::DefNode;
use crate::mo::standard::LOCAL_CREATOR;
use crate::mo::{MoError, Registry, build_nodes, canonical_moid, def_at};
use crate::protocol::dmmo::MoItem;
use crate::protocol::uri::{ClientUri, InstanceSel, Segment};
use crate::tree::{InstanceKey, StoreError, TreeOp, TreeStore};

/// Why a local write was refused. Nothing of it was written.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// A ClientURI outside the MOs the caller may write.
    #[error("{uri}: outside the MOs this handler may write ({allowed})")]
    NotYours {
        /// The ClientURI.
        uri: String,
        /// The MOIDs it may write, comma-separated.
        allowed: String,
    },
    /// A ClientURI that names no single node (wildcards, x-names, no MIID), or that is
    /// malformed.
    #[error("{uri}: {why}")]
    BadUri {
        /// The ClientURI.
        uri: String,
        /// Why.
        why: String,
    },
    /// The MO has no definition here: a handler writes only MOs with a DDF.
    #[error("{0}: no DDF for this MO is installed, so its data cannot be checked")]
    NoDefinition(String),
    /// The data does not fit the MO's definition.
    #[error("{uri}: {source}")]
    Data {
        /// The ClientURI.
        uri: String,
        /// Why.
        #[source]
        source: MoError,
    },
    /// What the change needs is not there, or it would break the MO.
    #[error("{uri}: {why}")]
    Refused {
        /// The ClientURI.
        uri: String,
        /// Why.
        why: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a local write did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    /// The servers that are owed a subscription delivery by it (a session should follow).
    pub deliveries_for: Vec<String>,
}

/// Where one change lands.
struct Spot<'r> {
    key: InstanceKey,
    path: String,
    def: &'r DefNode,
    ddf_url: Option<String>,
}

/// A single node a ClientURI names, inside one of `allowed`, with its definition.
fn spot<'r>(registry: &'r Registry, allowed: &[String], uri: &str) -> Result<Spot<'r>, LocalError> {
    let bad = |why: &str| LocalError::BadUri {
        uri: uri.to_owned(),
        why: why.to_owned(),
    };
    let parsed = ClientUri::parse(uri).map_err(|e| bad(&e.to_string()))?;
    let moid = canonical_moid(&parsed.moid).to_owned();
    if !allowed.iter().any(|a| canonical_moid(a) == moid) {
        return Err(LocalError::NotYours {
            uri: uri.to_owned(),
            allowed: allowed.join(", "),
        });
    }
    let InstanceSel::Miid(miid) = parsed.instance else {
        return Err(bad("name the instance by its MIID (MOID/MIID/path)"));
    };
    if parsed.level.is_some() || parsed.cv.is_some() || !parsed.nv.is_empty() {
        return Err(bad(
            "a local write takes a plain ClientURI, without lv, cv or nv",
        ));
    }
    let mut names = Vec::with_capacity(parsed.path.len());
    for seg in &parsed.path {
        match seg {
            Segment::Name(n) => names.push(n.as_str()),
            _ => return Err(bad("wildcards and x-names name no single node")),
        }
    }
    let path = names.join("/");
    let registered = registry
        .get(&moid)
        .ok_or_else(|| LocalError::NoDefinition(moid.clone()))?;
    let def = def_at(&registered.def.root, &path).ok_or_else(|| LocalError::Refused {
        uri: uri.to_owned(),
        why: "the MO's definition has no such node".into(),
    })?;
    Ok(Spot {
        key: InstanceKey::new(moid, miid),
        path,
        def,
        ddf_url: registered.ddf_url.clone(),
    })
}

/// Applies a handler's changes in one transaction: every ClientURI in `delete` goes (with
/// everything below it), then every item of `put` replaces what is at its ClientURI (an
/// instance root creates the instance, owned by the client). Each change must stay in
/// `allowed` (MOIDs) and fit the MO's DDF; a deleted node must be one the MO may lack.
/// `max_value` bounds each leaf.
pub fn write_local(
    store: &dyn TreeStore,
    registry: &Registry,
    allowed: &[String],
    put: &[MoItem],
    delete: &[String],
    max_value: usize,
) -> Result<Written, LocalError> {
    let mut ops = Vec::new();
    let mut changed = Vec::new();
    for uri in delete {
        let at = spot(registry, allowed, uri)?;
        if !at.path.is_empty() && at.def.occurrence.required() {
            return Err(LocalError::Refused {
                uri: uri.clone(),
                why: "the MO requires this node".into(),
            });
        }
        if store.node(&at.key, &at.path)?.is_none() {
            return Err(LocalError::Refused {
                uri: uri.clone(),
                why: "no such node".into(),
            });
        }
        if at.path.is_empty() {
            ops.extend(crate::mo::standard::forget_grants(
                store,
                std::slice::from_ref(&at.key),
            )?);
        }
        ops.push(TreeOp::DeleteSubtree {
            key: at.key.clone(),
            path: at.path.clone(),
        });
        changed.push((at.key, at.path));
    }
    for item in put {
        let uri = &item.client_uri;
        let at = spot(registry, allowed, uri)?;
        let nodes = build_nodes(&at.key.moid, Some(at.def), &at.path, &item.data, max_value)
            .map_err(|source| LocalError::Data {
                uri: uri.clone(),
                source,
            })?;
        if at.path.is_empty() {
            ops.push(TreeOp::PutInstance {
                key: at.key.clone(),
                ddf_url: at.ddf_url.clone(),
                creator: LOCAL_CREATOR.into(),
                nodes,
            });
        } else {
            // The instance must be there, and the parent: a handler creates an instance
            // whole, then keeps its parts current.
            let exists = store.instance(&at.key.moid, &at.key.miid)?.is_some()
                || ops
                    .iter()
                    .any(|op| matches!(op, TreeOp::PutInstance { key, .. } if *key == at.key));
            if !exists {
                return Err(LocalError::Refused {
                    uri: uri.clone(),
                    why: "no such instance: put its root first".into(),
                });
            }
            ops.push(TreeOp::PutSubtree {
                key: at.key.clone(),
                nodes,
            });
        }
        changed.push((at.key, at.path));
    }
    let owed = deliveries(store, &changed)?;
    let mut deliveries_for: Vec<String> = owed
        .iter()
        .filter_map(|op| match op {
            TreeOp::Enqueue(o) => Some(o.server_id.clone()),
            _ => None,
        })
        .collect();
    deliveries_for.sort();
    deliveries_for.dedup();
    ops.extend(owed);
    store.apply(&ops).map_err(|e| match e {
        // A parent that is missing, say: the store's own check, said as the caller's fault.
        StoreError::Invalid(why) => LocalError::Refused {
            uri: put
                .first()
                .map(|i| i.client_uri.clone())
                .or_else(|| delete.first().cloned())
                .unwrap_or_default(),
            why,
        },
        e => LocalError::Store(e),
    })?;
    Ok(Written { deliveries_for })
}

#[cfg(test)]
mod tests;
