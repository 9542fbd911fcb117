//! `org.omadm.Client1.Tree`: read-only access to the management tree. Open to every
//! caller; "No Get" nodes and secrets never leave the daemon, and of a DM account only
//! which server it is for is shown (`mo::account::local_view`).

use zbus::interface;

use super::{Error, Shared};
use crate::engine::resolve::{self, ResolveError};
use crate::mo;
use crate::protocol::dmmo;
use crate::protocol::uri::ClientUri;
use crate::tree::Tree as _;

/// The Tree interface.
#[derive(Debug)]
pub struct Tree {
    shared: Shared,
}

impl Tree {
    /// Over the daemon's state.
    pub fn new(shared: Shared) -> Tree {
        Tree { shared }
    }
}

#[interface(name = "org.omadm.Client1.Tree")]
impl Tree {
    /// Every MO instance: (MOID, MIID, cache validator).
    fn list_instances(&self) -> Result<Vec<(String, String, String)>, Error> {
        let store = &self.shared.prepared.store;
        Ok(store
            .instances(None)?
            .into_iter()
            .map(|i| (i.moid, i.miid, i.cv))
            .collect())
    }

    /// The data a ClientURI addresses (wildcards allowed), as `application/dmmo+json`.
    fn get(&self, client_uri: &str) -> Result<String, Error> {
        let p = &self.shared.prepared;
        let u = ClientUri::parse(client_uri).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        let readable = |k: &crate::tree::InstanceKey, n: &crate::tree::Node| {
            mo::shows(n) && (k.moid != mo::DMACC || mo::account::locally_visible(&n.path))
        };
        let locs = resolve::resolve(&p.store, &u, &readable).map_err(|e| match e {
            ResolveError::NotFound => Error::NotFound(format!("nothing at {client_uri}")),
            ResolveError::Ambiguous(why) => Error::InvalidArgument(why),
            ResolveError::Store(e) => e.into(),
        })?;
        let mut items = Vec::new();
        for loc in locs {
            let mut nodes = p.store.subtree(&loc.key, &loc.path, u.level)?;
            mo::standard::overlay_live(&loc.key, &mut nodes, &p.host);
            if loc.key.moid == mo::DMACC {
                mo::account::local_view(&mut nodes);
            }
            items.extend(mo::item(&p.store, &loc.key, &loc.path, &nodes)?);
        }
        if items.is_empty() {
            return Err(Error::AccessDenied(format!("{client_uri} is not readable")));
        }
        String::from_utf8(dmmo::encode(&items)).map_err(|e| Error::Failed(e.to_string()))
    }
}
