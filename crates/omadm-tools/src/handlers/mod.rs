//! Out-of-process EXEC handlers that manage real things through omadmd's public D-Bus API
//! (issue 14): what they share is the link to the daemon, which registers them under
//! their well-known bus name (again whenever the daemon restarts), reads the tree, and
//! writes the MO they handle, and has the daemon fetch their packages
//! (`omadm_client::handler`).
//! `fumo` carries out FUMO through fwupd, `scomo` SCOMO through PackageKit, `dcmo` DCMO
//! through usbguard and rfkill.

pub mod dcmo;
pub mod fumo;
pub mod fwupd;
pub mod packagekit;
pub mod scomo;

pub use omadm_client::handler::{HandlerError, Link, item};

/// An interior node of MO data with these children, in order: how a handler writes the
/// instances it keeps.
pub fn interior(children: Vec<(&str, omadm_proto::dmmo::DataNode)>) -> omadm_proto::dmmo::DataNode {
    omadm_proto::dmmo::DataNode::Interior(
        children
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    )
}
