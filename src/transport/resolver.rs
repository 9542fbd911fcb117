//! The resolver of a server's HTTP client: names resolve to the addresses the server's
//! [`TargetPolicy`] allows, so the address checked is the address connected to.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::transport::target::{Refused, TargetPolicy};

/// Resolves host names for one server's client and keeps only the addresses its
/// [`TargetPolicy`] allows: the address checked is the address connected to.
pub(super) struct GuardedResolver(pub(super) Arc<TargetPolicy>);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let allowed = allowed_addrs(&policy, &host).await?;
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Why a host's addresses cannot be used.
#[derive(Debug, thiserror::Error)]
pub(super) enum Unreachable {
    /// The name did not resolve.
    #[error("cannot resolve {host}: {source}")]
    Lookup {
        host: String,
        #[source]
        source: std::io::Error,
    },
    /// It resolved only to addresses the policy refuses.
    #[error(transparent)]
    Refused(#[from] Refused),
}

/// Resolves `host` and keeps the addresses `policy` allows; refused when none is left.
pub(super) async fn allowed_addrs(
    policy: &TargetPolicy,
    host: &str,
) -> Result<Vec<SocketAddr>, Unreachable> {
    let found: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
        .await
        .map_err(|source| Unreachable::Lookup {
            host: host.to_owned(),
            source,
        })?
        .collect();
    let mut refused = None;
    let allowed: Vec<SocketAddr> = found
        .into_iter()
        .filter(|a| match policy.check(host, a.ip()) {
            Ok(()) => true,
            Err(r) => {
                refused.get_or_insert(r);
                false
            }
        })
        .collect();
    match (allowed.is_empty(), refused) {
        (true, Some(r)) => {
            tracing::warn!(host = %host, reason = %r, "server URL refused");
            Err(r.into())
        }
        _ => Ok(allowed),
    }
}
