//! What an EXEC handler shares with every other (TS §5.3.5's asynchronous EXEC over
//! omadmd's API): its link to the daemon, which registers it under its well-known bus name,
//! reads the tree and writes the MO it handles; and packages fetched by the daemon under
//! its rules for the server whose EXEC asked ([`Link::fetch_package`]).

use std::path::Path;

use omadm_proto::dmmo::{self, DataNode, MoItem};
use serde_json::Value as Json;

use crate::error::{Error, FetchFailure};
use crate::proxies::{ManagerProxy, TreeProxy};

/// Why a handler's call failed.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// A D-Bus call failed (the daemon, fwupd).
    #[error(transparent)]
    Bus(#[from] zbus::Error),
    /// The daemon sent data that is not MO data.
    #[error("the daemon's data is not application/dmmo+json: {0}")]
    Data(String),
}

impl From<zbus::fdo::Error> for HandlerError {
    fn from(e: zbus::fdo::Error) -> Self {
        HandlerError::Bus(e.into())
    }
}

/// An item of MO data for a ClientURI.
pub fn item(client_uri: &str, name: &str, data: DataNode) -> MoItem {
    MoItem {
        ddf: None,
        client_uri: client_uri.to_owned(),
        cv: None,
        name: name.to_owned(),
        data,
    }
}

/// A handler's link to omadmd on the system bus.
#[derive(Debug, Clone)]
pub struct Link {
    manager: ManagerProxy<'static>,
    tree: TreeProxy<'static>,
}

impl Link {
    /// Proxies to the daemon over `conn`.
    pub async fn new(conn: &zbus::Connection) -> zbus::Result<Link> {
        Ok(Link {
            manager: ManagerProxy::new(conn).await?,
            tree: TreeProxy::new(conn).await?,
        })
    }

    /// The daemon's Manager.
    pub fn manager(&self) -> &ManagerProxy<'static> {
        &self.manager
    }

    /// The daemon's Tree.
    pub fn tree(&self) -> &TreeProxy<'static> {
        &self.tree
    }

    /// Registers the object at `path` as the EXEC handler of `target` under the
    /// well-known `name` the connection owns.
    pub async fn register(&self, target: &str, path: &str, name: &str) -> Result<(), HandlerError> {
        let path = zbus::ObjectPath::try_from(path)?;
        self.manager
            .register_exec_handler_as(target, &path, name)
            .await?;
        Ok(())
    }

    /// Puts items and deletes ClientURIs of the handled MO, in one transaction.
    pub async fn update(&self, put: &[MoItem], delete: &[String]) -> Result<(), HandlerError> {
        let document = if put.is_empty() {
            String::new()
        } else {
            String::from_utf8(dmmo::encode(put)).map_err(|e| HandlerError::Data(e.to_string()))?
        };
        let delete: Vec<&str> = delete.iter().map(String::as_str).collect();
        self.manager.handler_update(&document, &delete).await?;
        Ok(())
    }

    /// Puts one leaf's value.
    pub async fn put_leaf(
        &self,
        client_uri: &str,
        name: &str,
        value: Json,
    ) -> Result<(), HandlerError> {
        self.update(&[item(client_uri, name, DataNode::Leaf(value))], &[])
            .await
    }

    /// One leaf's value, or `None` when the node is not there.
    pub async fn read_leaf(&self, client_uri: &str) -> Result<Option<Json>, HandlerError> {
        let doc = match self.tree.get(client_uri).await {
            Ok(d) => d,
            Err(zbus::Error::MethodError(name, _, _)) if name.as_str().ends_with(".NotFound") => {
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        let items = dmmo::decode(
            doc.as_bytes(),
            dmmo::Limits {
                max_bytes: 1 << 20,
                max_nodes: 1,
            },
        )
        .map_err(|e| HandlerError::Data(e.to_string()))?;
        Ok(items.into_iter().next().and_then(|i| match i.data {
            DataNode::Leaf(v) => Some(v),
            DataNode::Interior(_) => None,
        }))
    }

    /// The device's DevID (DevInfo), for the `OMADM-DevID` header of its downloads.
    pub async fn dev_id(&self) -> Result<String, HandlerError> {
        Ok(self
            .read_leaf("urn:oma:mo:oma-dm-devinfo:1.2//DevID")
            .await?
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default())
    }

    /// Has the daemon fetch `url` for the pending EXEC `token` (`Manager.FetchPackage`:
    /// its HTTP rules, credentials and bounds for that EXEC's server; this process needs no
    /// network), and keeps the package at `dest`. It arrives at `dest` with the extension
    /// `.part` and is renamed when whole, so a cut copy never looks like a package. At most
    /// `max` bytes; the bytes kept.
    pub async fn fetch_package(
        &self,
        token: &str,
        url: &str,
        dest: &Path,
        max: u64,
    ) -> Result<u64, FetchFailure> {
        if url.is_empty() {
            return Err(FetchFailure::BadUrl);
        }
        let (fd, size) = match self.manager.fetch_package(token, url, max).await {
            Ok(got) => got,
            Err(e) => {
                let e = Error::from(e);
                let failure = FetchFailure::from(&e);
                tracing::warn!(error = %e, ?failure, "the daemon did not fetch the package");
                return Err(failure);
            }
        };
        let partial = dest.with_extension("part");
        let kept = std::fs::File::create(&partial).and_then(|mut out| {
            let mut package = std::fs::File::from(std::os::fd::OwnedFd::from(fd));
            let copied = std::io::copy(&mut package, &mut out)?;
            out.sync_all()?;
            Ok(copied)
        });
        match kept {
            Ok(copied) if copied == size => {
                std::fs::rename(&partial, dest).map_err(|_| FetchFailure::NoSpace)?;
                tracing::info!(url = %omadm_proto::uri::redact(url), bytes = size, "package fetched");
                Ok(size)
            }
            Ok(copied) => {
                let _ = std::fs::remove_file(&partial);
                tracing::error!(copied, size, "the fetched package was cut short");
                Err(FetchFailure::Network)
            }
            Err(e) => {
                let _ = std::fs::remove_file(&partial);
                tracing::error!(error = %e, path = %partial.display(), "cannot keep the package");
                Err(FetchFailure::NoSpace)
            }
        }
    }
}
