//! `org.omadm.Client1.Tree`: read access to the management tree, open to every caller
//! ("No Get" nodes and secrets never leave the daemon, and of a DM account only which
//! server it is for is shown: `mo::account::local_view`), and the one write a local
//! application may ask for, configuration from a DEFAULT (behind polkit).

use zbus::message::Header;
use zbus::{Connection, interface};

use super::{Action, Error, Shared, authorize};
use crate::engine::resolve::{self, ResolveError};
use crate::mo;
use crate::protocol::dmmo;
use crate::protocol::uri::ClientUri;
use crate::tree::Tree as _;

/// What a configuration request came to (TS §5.3.10), as the daemon answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Configuration {
    /// The tree holds instances of the MOID already: their ClientURIs. Nothing was fetched.
    Present(Vec<String>),
    /// Fetched from the ServerURI the server gave with DEFAULT (shown without its
    /// credentials) and stored: the new instances' ClientURIs.
    Fetched {
        /// The server that gave the DEFAULT.
        server_id: String,
        /// Where the data came from.
        from: String,
        /// What was stored.
        uris: Vec<String>,
    },
    /// No instance, and no server gave a DEFAULT for the MOID.
    NoDefault,
    /// The DEFAULT's HGET failed, with the status it would have had in a session.
    Failed {
        /// The server that gave the DEFAULT.
        server_id: String,
        /// Where the data was to come from.
        from: String,
        /// The status (TS App. C).
        status: u16,
    },
}

/// One configuration request: the MOID, and where the answer goes.
pub type ConfigureRequest = (
    String,
    tokio::sync::oneshot::Sender<Result<Configuration, String>>,
);

/// The way to the daemon's configuration requests.
#[derive(Debug, Clone)]
pub struct Configurer(pub tokio::sync::mpsc::UnboundedSender<ConfigureRequest>);

impl Configurer {
    /// A configurer and the requests it sends.
    pub fn channel() -> (
        Configurer,
        tokio::sync::mpsc::UnboundedReceiver<ConfigureRequest>,
    ) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (Configurer(tx), rx)
    }

    async fn ask(&self, moid: &str) -> Result<Configuration, Error> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.0
            .send((moid.to_owned(), tx))
            .map_err(|_| Error::Failed("the daemon is stopping".into()))?;
        rx.await
            .map_err(|_| Error::Failed("the daemon dropped the request".into()))?
            .map_err(Error::Failed)
    }
}

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

    /// Makes sure the tree holds configuration for `moid` (TS §5.3.10, DEFAULT's local
    /// side): when it holds no instance of it and a server gave a DEFAULT for it, the data
    /// is fetched from that ServerURI with the server's rights and stored. Returns
    /// `("present", "", "", uris)` when instances were there already, `("fetched",
    /// server_id, url, uris)` when they were fetched. NotFound when no server gave a
    /// DEFAULT; Failed, naming the server and the status, when the fetch or the store
    /// failed. Waits for the fetch (up to `http.request-timeout-secs`).
    async fn request_configuration(
        &self,
        moid: &str,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(String, String, String, Vec<String>), Error> {
        if moid.is_empty() || moid.chars().any(char::is_whitespace) {
            return Err(Error::InvalidArgument(format!("{moid:?} is not an MOID")));
        }
        authorize(conn, &header, Action::RequestConfiguration).await?;
        match self.shared.configure.ask(moid).await? {
            Configuration::Present(uris) => {
                Ok(("present".into(), String::new(), String::new(), uris))
            }
            Configuration::Fetched {
                server_id,
                from,
                uris,
            } => Ok(("fetched".into(), server_id, from, uris)),
            Configuration::NoDefault => Err(Error::NotFound(format!(
                "the tree holds no {moid} and no server gave a DEFAULT for it"
            ))),
            Configuration::Failed {
                server_id,
                from,
                status,
            } => Err(Error::Failed(format!(
                "fetching {moid} from {from} (the DEFAULT of server {server_id}) failed: {status} {}",
                crate::protocol::sc::describe(status)
            ))),
        }
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
