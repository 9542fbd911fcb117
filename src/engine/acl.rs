//! Access rights (TS §6.5, §10.4, §12.3): which MOIDs a server may manage (its DMAcc
//! `Perm/<x>/MOID`, set at bootstrap), and what it may do on each instance: the DACMO's
//! grants when the instance has any (the most specific `Path` wins), else the creator rule.
//!
//! Our reading (docs/decisions.md, "Access rights"): without DACMO entries, the instance's
//! creator server holds every right, and instances the client created itself (`local`:
//! DevInfo, SessionInfo, factory-bootstrapped MOs) give every right to each server
//! provisioned with their MOID, as the TS asks of a client without access control; the DDF
//! access types still apply on top. DMAcc `Perm` is never writable by a server, and DACMO
//! entries for an instance are readable with Read and writable with Delegate on it.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::mo::{DACMO, DMACC};
use crate::tree::{InstanceKey, StoreError, TreeStore};

/// A DACMO `AR` bitmask (TS §12.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rights(pub u8);

impl Rights {
    /// GET, HPUT, HPOST, SUB.
    pub const READ: Rights = Rights(1);
    /// HGET, DELETE.
    pub const WRITE: Rights = Rights(2);
    /// EXEC.
    pub const EXECUTE: Rights = Rights(4);
    /// Changing the DACMO entries of the instance.
    pub const DELEGATE: Rights = Rights(8);
    /// Everything.
    pub const ALL: Rights = Rights(15);

    /// True when every right of `r` is held.
    pub fn has(self, r: Rights) -> bool {
        self.0 & r.0 == r.0
    }
}

/// One DACMO permission set of an instance.
#[derive(Debug, Clone)]
struct PermSet {
    /// Path from the instance root, without leading or trailing '/' ("" for the root).
    path: String,
    /// (MAID, AR) grants.
    grants: Vec<(String, u8)>,
}

/// The access decisions for one server, cached per instance for the life of a package.
#[derive(Debug)]
pub struct Acl<'a> {
    store: &'a dyn TreeStore,
    server_id: String,
    moids: Vec<String>,
    /// The server's own DMAcc instance: the only account it has rights on.
    own_account: Option<InstanceKey>,
    sets: RefCell<HashMap<InstanceKey, Option<Vec<PermSet>>>>,
    creators: RefCell<HashMap<InstanceKey, Option<String>>>,
}

use crate::mo::leaf_text as text;

impl<'a> Acl<'a> {
    /// Loads the MOIDs the server was provisioned with.
    pub fn for_server(store: &'a dyn TreeStore, server_id: &str) -> Result<Acl<'a>, StoreError> {
        let account = crate::mo::account::load(store, server_id)?;
        Ok(Acl {
            store,
            server_id: server_id.to_owned(),
            moids: account
                .as_ref()
                .map(|a| a.moids.clone())
                .unwrap_or_default(),
            own_account: account.map(|a| a.key),
            sets: RefCell::default(),
            creators: RefCell::default(),
        })
    }

    /// The server this is about.
    pub fn server_id(&self) -> &str {
        &self.server_id
    }

    /// True when the server was provisioned with `moid` (or `*`).
    pub fn moid_permitted(&self, moid: &str) -> bool {
        let moid = crate::mo::canonical_moid(moid);
        self.moids.iter().any(|m| m == "*" || m == moid)
    }

    fn maid_matches(&self, maid: &str) -> bool {
        // TS §12.3 writes `serverid:<id>`; its Figure 17 shows bare IDs (§14 #4).
        maid == "*" || maid.strip_prefix("serverid:").unwrap_or(maid) == self.server_id
    }

    fn dacmo_sets(&self, key: &InstanceKey) -> Result<Option<Vec<PermSet>>, StoreError> {
        if let Some(cached) = self.sets.borrow().get(key) {
            return Ok(cached.clone());
        }
        let mut sets = Vec::new();
        let base = format!("{}/{}", key.moid, key.miid);
        for dacmo in self.store.instances(Some(DACMO))? {
            let dk = InstanceKey::new(DACMO, dacmo.miid);
            for set in self.store.children(&dk, &base)? {
                let path = text(self.store, &dk, &format!("{}/Path", set.path))?
                    .unwrap_or_else(|| "/".into());
                let mut grants = Vec::new();
                for g in self
                    .store
                    .children(&dk, &format!("{}/Permissions", set.path))?
                {
                    let maid = text(self.store, &dk, &format!("{}/MAID", g.path))?;
                    let ar = text(self.store, &dk, &format!("{}/AR", g.path))?
                        .and_then(|a| a.parse::<u8>().ok());
                    if let (Some(maid), Some(ar)) = (maid, ar) {
                        grants.push((maid, ar & Rights::ALL.0));
                    }
                }
                sets.push(PermSet {
                    path: path.trim_matches('/').to_owned(),
                    grants,
                });
            }
        }
        let sets = (!sets.is_empty()).then_some(sets);
        self.sets.borrow_mut().insert(key.clone(), sets.clone());
        Ok(sets)
    }

    fn creator(&self, key: &InstanceKey) -> Result<Option<String>, StoreError> {
        if let Some(c) = self.creators.borrow().get(key) {
            return Ok(c.clone());
        }
        let c = self
            .store
            .instance(&key.moid, &key.miid)?
            .map(|i| i.creator);
        self.creators.borrow_mut().insert(key.clone(), c.clone());
        Ok(c)
    }

    /// The rights the server holds on the node at `path` of an existing instance `key`.
    pub fn rights(&self, key: &InstanceKey, path: &str) -> Result<Rights, StoreError> {
        if key.moid == DACMO {
            // DACMO/<MOID>/<MIID>/…: governed by the rights on that instance.
            let mut seg = path.splitn(3, '/');
            return Ok(match (seg.next(), seg.next()) {
                (Some(m), Some(i)) if !m.is_empty() => {
                    let target = InstanceKey::new(m, i);
                    let r = if self.store.instance(m, i)?.is_some() {
                        self.rights(&target, "")?
                    } else {
                        Rights::default()
                    };
                    let mut out = Rights::default();
                    if r.has(Rights::READ) {
                        out.0 |= Rights::READ.0;
                    }
                    if r.has(Rights::DELEGATE) {
                        out.0 |= Rights::READ.0 | Rights::WRITE.0;
                    }
                    out
                }
                // The DACMO root and its per-MOID nodes: readable, for listing.
                _ => Rights::READ,
            });
        }
        if !self.moid_permitted(&key.moid) {
            return Ok(Rights::default());
        }
        if key.moid == DMACC {
            return Ok(self.account_rights(key, path));
        }
        let rights = match self.dacmo_sets(key)? {
            Some(sets) => {
                // The most specific Path covering the node decides (TS §12.3).
                let covers =
                    |p: &str| p.is_empty() || path == p || path.starts_with(&format!("{p}/"));
                let best = sets
                    .iter()
                    .filter(|s| covers(&s.path))
                    .map(|s| s.path.len())
                    .max();
                let mut r = 0u8;
                for s in sets
                    .iter()
                    .filter(|s| Some(s.path.len()) == best && covers(&s.path))
                {
                    for (maid, ar) in &s.grants {
                        if self.maid_matches(maid) {
                            r |= ar;
                        }
                    }
                }
                Rights(r)
            }
            None => match self.creator(key)? {
                Some(c) if c == format!("serverid:{}", self.server_id) => Rights::ALL,
                // The client's own instances: every right to each server provisioned with
                // the MOID, but Delegate. The client is their creator; a server that could
                // write their DACMO entry would shut the others out (issue 27).
                Some(c) if c == "local" => Rights(Rights::ALL.0 & !Rights::DELEGATE.0),
                _ => Rights::default(),
            },
        };
        Ok(rights)
    }

    /// Rights on a DM account (TS §12.2, docs/security.md): a server has them on its own
    /// account only, whatever the DACMO or the creator say, and never writes what makes
    /// the account its own and trusted: `SrvID`, `SrvURI` (its host is where the server's
    /// URLs may always lead, and its origin where the HTTP credentials go) and the
    /// bootstrap-only `Perm` (nor, through them, the whole account: replacing or deleting
    /// it needs Write on every node).
    fn account_rights(&self, key: &InstanceKey, path: &str) -> Rights {
        if self.own_account.as_ref() != Some(key) {
            return Rights::default();
        }
        let under = |p: &str| path == p || path.starts_with(&format!("{p}/"));
        if under("SrvID") || under("SrvURI") || under("Perm") {
            Rights(Rights::ALL.0 & !Rights::WRITE.0)
        } else {
            Rights::ALL
        }
    }

    /// Rights for creating a new instance of `moid`: the MOID must be provisioned, and no
    /// server creates a DM account (only bootstrap does, TS §8, §12.2) nor a DACMO
    /// instance: a new one would hold grants on any instance, and the rights read grants
    /// from every DACMO instance. Delegation happens inside the client's own DACMO
    /// (`mo::standard::ensure_dacmo`), with Delegate on the instance concerned.
    pub fn may_create(&self, moid: &str) -> bool {
        let moid = crate::mo::canonical_moid(moid);
        moid != DMACC && moid != DACMO && self.moid_permitted(moid)
    }
}
