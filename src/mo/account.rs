//! DM accounts (DMAcc, TS §12.2): the one place that reads them. A server's account is the
//! DMAcc instance whose `SrvID` is the server's; the rights code, the session driver, the
//! D-Bus face and the notification check all find and read accounts here.
//!
//! SrvID is unique across DMAcc instances: the store refuses a write that would make it
//! otherwise (migration v7), and bootstrap replaces a server's account rather than adding a
//! second. A database written before that rule may still hold two instances with one SrvID;
//! then the one the server itself was bootstrapped with (creator `serverid:<SrvID>`) is its
//! account, never one another server created.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::DMACC;
use crate::tree::{InstanceKey, StoreError, TreeOp, TreeStore, Value};

/// Notification credentials (`Auth/Noti`, TS §12.2): the digest's server-secret and
/// auth-data.
#[derive(Clone, PartialEq, Eq)]
pub struct NotiCredentials {
    /// `Auth/Noti/Secret`.
    pub secret: Vec<u8>,
    /// `Auth/Noti/Data` (empty when absent).
    pub data: Vec<u8>,
}

impl std::fmt::Debug for NotiCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NotiCredentials(***)")
    }
}

/// The account a server has on this device.
#[derive(Clone, PartialEq, Eq)]
pub struct Account {
    /// The DMAcc instance.
    pub key: InstanceKey,
    /// SrvID.
    pub server_id: String,
    /// Where Package#1 goes.
    pub srv_uri: String,
    /// Display name.
    pub name: String,
    /// The MOIDs of `Perm/<x>/MOID`, as written (`*` for all).
    pub moids: Vec<String>,
    /// HTTP credentials (DMAcc `Ext/HttpAuth/UserName` and `Secret`), if provisioned.
    pub http_auth: Option<(String, String)>,
    /// Client certificate and key for TLS (DMAcc `Auth/Trsp/Data` and `Secret`) as one PEM.
    pub client_identity_pem: Option<Vec<u8>>,
    /// Notification credentials, if provisioned.
    pub noti: Option<NotiCredentials>,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("key", &self.key)
            .field("server_id", &self.server_id)
            .field("srv_uri", &self.srv_uri)
            .field("name", &self.name)
            .field("moids", &self.moids)
            .field(
                "http_auth",
                &self.http_auth.as_ref().map(|(u, _)| (u, "***")),
            )
            .field("client_identity", &self.client_identity_pem.is_some())
            .field("noti", &self.noti)
            .finish()
    }
}

fn raw(
    store: &dyn TreeStore,
    key: &InstanceKey,
    path: &str,
) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(store
        .node(key, path)?
        .and_then(|n| n.value)
        .map(|v| match v {
            Value::Bin(b) => b,
            other => other.to_text().into_bytes(),
        }))
}

use super::leaf_text as text;

/// PEM from what a `bin` leaf holds: PEM as is, DER wrapped with `label`.
fn as_pem(bytes: Vec<u8>, label: &str) -> Vec<u8> {
    if bytes.starts_with(b"-----BEGIN") {
        return bytes;
    }
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out.into_bytes()
}

/// A server's `Name` as it may be shown to a person (SHOW prompts, desktop notifications,
/// `omadmctl`): a server sets it, so control characters (terminal escapes) and bidi
/// overrides, which could make it pose as something else, are dropped, and it is cut to
/// 64 characters.
pub fn display_name(name: &str) -> String {
    let bidi = |c: char| matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
    name.chars()
        .filter(|&c| !c.is_control() && !bidi(c))
        .take(64)
        .collect::<String>()
        .trim()
        .to_owned()
}

/// Every DMAcc instance with its SrvID, in MIID order.
fn with_ids(store: &dyn TreeStore) -> Result<Vec<(InstanceKey, String, String)>, StoreError> {
    let mut out = Vec::new();
    for inst in store.instances(Some(DMACC))? {
        let key = InstanceKey::new(DMACC, inst.miid);
        if let Some(id) = text(store, &key, "SrvID")? {
            out.push((key, id, inst.creator));
        }
    }
    Ok(out)
}

/// Of the instances carrying one SrvID, the account: the one created for that server by
/// bootstrap when there are several (module docs).
fn pick(candidates: Vec<(InstanceKey, String)>, server_id: &str) -> Option<InstanceKey> {
    if candidates.len() > 1 {
        tracing::warn!(server = %server_id, count = candidates.len(),
            "several DM accounts carry this SrvID; using the one bootstrap made");
    }
    let own = format!("serverid:{server_id}");
    let mut first = None;
    for (key, creator) in candidates {
        if creator == own {
            return Some(key);
        }
        first.get_or_insert(key);
    }
    first
}

/// The DMAcc instance of a server, by SrvID.
pub fn find(store: &dyn TreeStore, server_id: &str) -> Result<Option<InstanceKey>, StoreError> {
    let candidates = with_ids(store)?
        .into_iter()
        .filter(|(_, id, _)| id == server_id)
        .map(|(k, _, c)| (k, c))
        .collect();
    Ok(pick(candidates, server_id))
}

/// Reads the account at `key` (whose SrvID is `server_id`); `None` without a SrvURI.
fn read(
    store: &dyn TreeStore,
    key: InstanceKey,
    server_id: &str,
) -> Result<Option<Account>, StoreError> {
    let Some(srv_uri) = text(store, &key, "SrvURI")? else {
        return Ok(None);
    };
    let client_identity_pem = match (
        raw(store, &key, "Auth/Trsp/Data")?,
        raw(store, &key, "Auth/Trsp/Secret")?,
    ) {
        (Some(cert), Some(secret)) => {
            let mut pem = as_pem(cert, "CERTIFICATE");
            pem.extend(as_pem(secret, "PRIVATE KEY"));
            Some(pem)
        }
        _ => None,
    };
    let http_auth = match (
        text(store, &key, "Ext/HttpAuth/UserName")?,
        text(store, &key, "Ext/HttpAuth/Secret")?,
    ) {
        (Some(u), Some(p)) => Some((u, p)),
        _ => None,
    };
    let noti = raw(store, &key, "Auth/Noti/Secret")?
        .map(|secret| -> Result<NotiCredentials, StoreError> {
            Ok(NotiCredentials {
                secret,
                data: raw(store, &key, "Auth/Noti/Data")?.unwrap_or_default(),
            })
        })
        .transpose()?;
    let mut moids = Vec::new();
    for group in store.children(&key, "Perm")? {
        if let Some(m) = text(store, &key, &format!("{}/MOID", group.path))? {
            moids.push(super::canonical_moid(&m).to_owned());
        }
    }
    let name = text(store, &key, "Name")
        .map(|n| n.map(|n| display_name(&n)))?
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| server_id.to_owned());
    Ok(Some(Account {
        key,
        server_id: server_id.to_owned(),
        srv_uri,
        name,
        moids,
        http_auth,
        client_identity_pem,
        noti,
    }))
}

/// Reads a server's account.
pub fn load(store: &dyn TreeStore, server_id: &str) -> Result<Option<Account>, StoreError> {
    match find(store, server_id)? {
        Some(key) => read(store, key, server_id),
        None => Ok(None),
    }
}

/// A removal: the batch that does it, and the instances it deletes.
pub type Removal = (Vec<TreeOp>, Vec<InstanceKey>);

/// What removing a server's account deletes, as one batch: every DMAcc instance carrying
/// its SrvID, every other instance the server created (`creator serverid:<id>`), and
/// what the journal holds for it ([`TreeOp::ForgetServer`]); its session history stays.
/// Also the instances deleted, for the caller to report. `None` when the server has no
/// account.
pub fn removal(store: &dyn TreeStore, server_id: &str) -> Result<Option<Removal>, StoreError> {
    let mut gone: Vec<InstanceKey> = with_ids(store)?
        .into_iter()
        .filter(|(_, id, _)| id == server_id)
        .map(|(k, _, _)| k)
        .collect();
    if gone.is_empty() {
        return Ok(None);
    }
    let own = format!("serverid:{server_id}");
    for inst in store.instances(None)? {
        let key = InstanceKey::new(inst.moid, inst.miid);
        if inst.creator == own && !gone.contains(&key) {
            gone.push(key);
        }
    }
    let mut ops: Vec<TreeOp> = gone
        .iter()
        .map(|key| TreeOp::DeleteSubtree {
            key: key.clone(),
            path: String::new(),
        })
        .collect();
    ops.extend(super::standard::forget_grants(store, &gone)?);
    ops.push(TreeOp::ForgetServer {
        server_id: server_id.to_owned(),
    });
    Ok(Some((ops, gone)))
}

/// Every account, one per SrvID, in MIID order.
pub fn all(store: &dyn TreeStore) -> Result<Vec<Account>, StoreError> {
    let mut groups: Vec<(String, Vec<(InstanceKey, String)>)> = Vec::new();
    for (key, id, creator) in with_ids(store)? {
        match groups.iter_mut().find(|(g, _)| *g == id) {
            Some((_, v)) => v.push((key, creator)),
            None => groups.push((id, vec![(key, creator)])),
        }
    }
    let mut out = Vec::new();
    for (id, candidates) in groups {
        if let Some(key) = pick(candidates, &id)
            && let Some(a) = read(store, key, &id)?
        {
            out.push(a);
        }
    }
    Ok(out)
}

/// What a local reader over D-Bus (any user of the machine) sees of a DM account
/// (docs/security.md, "What a local user sees"): which server it is for (`SrvID`, `Name`)
/// and where it is (`SrvURI`, without user information or query). Credentials and their
/// neighbours (`Auth`, `Ext`, `Push`, `Perm`) stay in the daemon.
pub fn locally_visible(path: &str) -> bool {
    matches!(path, "" | "SrvID" | "Name" | "SrvURI")
}

/// An account's nodes as a local reader may see them ([`locally_visible`]).
pub fn local_view(nodes: &mut Vec<crate::tree::Node>) {
    nodes.retain(|n| locally_visible(&n.path));
    for n in nodes.iter_mut().filter(|n| n.path == "SrvURI") {
        if let Some(v) = &n.value {
            n.value = Some(Value::Chr(crate::protocol::uri::redact(&v.to_text())));
        }
    }
}

/// The accounts kept in memory, read again only after the store changed: the notification
/// check finds the account behind a SERVER-ID without touching the database, so a flood of
/// datagrams costs no disk work (reference §10).
#[derive(Debug, Default)]
pub struct Directory {
    /// The store generation read at, and the accounts by SrvID.
    cached: Mutex<Option<(u64, Accounts)>>,
}

/// Accounts by SrvID.
pub type Accounts = Arc<HashMap<String, Account>>;

impl Directory {
    /// Every account, by SrvID, as of the store's current generation.
    pub fn current(&self, store: &dyn TreeStore) -> Result<Accounts, StoreError> {
        let generation = store.generation();
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((g, map)) = cached.as_ref()
            && *g == generation
        {
            return Ok(map.clone());
        }
        let map: Accounts = Arc::new(
            all(store)?
                .into_iter()
                .map(|a| (a.server_id.clone(), a))
                .collect(),
        );
        *cached = Some((generation, map.clone()));
        Ok(map)
    }

    /// One server's account.
    pub fn get(
        &self,
        store: &dyn TreeStore,
        server_id: &str,
    ) -> Result<Option<Account>, StoreError> {
        Ok(self.current(store)?.get(server_id).cloned())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::mo::Registry;
    use crate::mo::bootstrap::{BootstrapLimits, apply_document};
    use crate::tree::Tree as _;
    use crate::tree::{OpenMode, SqliteStore, TreeOp};

    fn store(dir: &std::path::Path) -> SqliteStore {
        let s = SqliteStore::open(&dir.join("t.db"), OpenMode::ReadWrite).unwrap();
        let doc = json!([
            {"ClientURI": "urn:oma:mo:oma-dm-dmacc:1.2//", "MOData": {"b": {"SrvID": "dms1", "SrvURI": "https://a/dm", "Name": "A",
                "Perm": {"p": {"MOID": "urn:oma:mo:oma-dm-devinfo:1.2"}, "q": {"MOID": "urn:oma:mo:oma-dm-dmacc:2.0"}},
                "Auth": {"Noti": {"Type": 0, "Data": "ZGF0YQ==", "Secret": "c2VjcmV0"}},
                "Ext": {"HttpAuth": {"UserName": "u", "Secret": "p"}}}}},
            {"ClientURI": "urn:oma:mo:oma-dm-dmacc:1.2//", "MOData": {"a": {"SrvID": "dms2", "SrvURI": "https://b/dm", "Name": "B", "Perm": {"p": {"MOID": "*"}}}}}
        ]);
        let limits = BootstrapLimits {
            max_file_bytes: 1 << 20,
            max_value_bytes: 1024,
            max_nodes: 100,
        };
        apply_document(
            &s,
            &Registry::builtin(),
            "b",
            doc.to_string().as_bytes(),
            limits,
        )
        .unwrap();
        s
    }

    #[test]
    fn reads_every_part_of_an_account() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let a = load(&s, "dms1").unwrap().unwrap();
        assert_eq!(a.key, InstanceKey::new(DMACC, "b"));
        assert_eq!((a.srv_uri.as_str(), a.name.as_str()), ("https://a/dm", "A"));
        assert_eq!(
            a.moids,
            ["urn:oma:mo:oma-dm-devinfo:1.2", DMACC],
            "the 2.0 alias is canonical"
        );
        assert_eq!(a.http_auth, Some(("u".into(), "p".into())));
        assert_eq!(
            a.noti,
            Some(NotiCredentials {
                secret: b"secret".to_vec(),
                data: b"data".to_vec()
            })
        );
        assert!(!format!("{a:?}").contains("secret") && !format!("{a:?}").contains("\"p\""));
        assert_eq!(load(&s, "nobody").unwrap(), None);
        let ids: Vec<String> = all(&s).unwrap().into_iter().map(|a| a.server_id).collect();
        assert_eq!(ids, ["dms2", "dms1"], "MIID order");
    }

    #[test]
    fn removing_an_account_takes_what_only_its_server_owned() {
        use crate::tree::{
            AccessType, Journal as _, Node, NodeProps, OutItem, Outgoing, OwedReason, Scope,
        };
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let root = || Node {
            path: String::new(),
            props: NodeProps::interior(AccessType::ALL, Scope::Dynamic),
            value: None,
        };
        let thing = |miid: &str, creator: &str| TreeOp::PutInstance {
            key: InstanceKey::new("urn:x:thing:1.0", miid),
            ddf_url: None,
            creator: creator.into(),
            nodes: vec![root()],
        };
        let alert = |server: &str| {
            TreeOp::Enqueue(Outgoing {
                id: 0,
                server_id: server.into(),
                item: OutItem::Alert {
                    alert: json!({"AlertType": "urn:x:at"}),
                    to: None,
                },
            })
        };
        s.apply(&[
            thing("mine", "serverid:dms1"),
            thing("theirs", "serverid:dms2"),
            thing("local", "local"),
            alert("dms1"),
            alert("dms2"),
        ])
        .unwrap();
        let (ops, gone) = removal(&s, "dms1").unwrap().unwrap();
        assert_eq!(
            gone,
            [
                InstanceKey::new(DMACC, "b"),
                InstanceKey::new("urn:x:thing:1.0", "mine")
            ]
        );
        s.apply(&ops).unwrap();
        assert_eq!(load(&s, "dms1").unwrap(), None);
        let left: Vec<String> = s
            .instances(None)
            .unwrap()
            .into_iter()
            .map(|i| format!("{}/{}", i.moid, i.miid))
            .collect();
        assert_eq!(
            left,
            [
                "urn:oma:mo:oma-dm-dmacc:1.2/a",
                "urn:x:thing:1.0/local",
                "urn:x:thing:1.0/theirs"
            ]
        );
        assert!(s.outbox("dms1").unwrap().is_empty());
        assert_eq!(s.outbox("dms2").unwrap().len(), 1);
        let owed: Vec<(String, OwedReason)> = s
            .owed_sessions()
            .unwrap()
            .into_iter()
            .map(|o| (o.server_id, o.reason))
            .collect();
        assert_eq!(owed, [("dms2".to_owned(), OwedReason::BootstrapComplete)]);
        assert_eq!(s.account_source("dms1").unwrap(), None);
        assert_eq!(s.account_source("dms2").unwrap().as_deref(), Some("b"));
        assert!(removal(&s, "dms1").unwrap().is_none(), "gone is gone");
    }

    #[test]
    fn display_names_cannot_carry_escapes() {
        let table = [
            ("IT Dept", "IT Dept"),
            ("\x1b]52;c;ZXZpbA==\x07IT Dept", "]52;c;ZXZpbA==IT Dept"),
            ("\u{202E}tpeD TI", "tpeD TI"),
            ("  a\nb  ", "ab"),
        ];
        for (raw, want) in table {
            assert_eq!(display_name(raw), want, "{raw:?}");
        }
        assert_eq!(display_name(&"x".repeat(100)).len(), 64);
    }

    #[test]
    fn the_directory_rereads_after_a_change_only() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let d = Directory::default();
        let first = d.current(&s).unwrap();
        assert_eq!(first["dms1"].name, "A");
        assert!(
            Arc::ptr_eq(&first, &d.current(&s).unwrap()),
            "kept in memory"
        );
        s.apply(&[TreeOp::SetValue {
            key: InstanceKey::new(DMACC, "b"),
            path: "Name".into(),
            value: Value::Chr("Renamed".into()),
        }])
        .unwrap();
        assert_eq!(d.get(&s, "dms1").unwrap().unwrap().name, "Renamed");
    }
}
