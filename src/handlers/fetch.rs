//! Fetching the package a server named in a `PkgURL` (FUMO, SCOMO) under the daemon's own
//! HTTP rules (https, its CAs, where a URL may lead, as for the server that asked), into a
//! file; and why a fetch failed, in the terms both MOs' result codes tell apart.

use std::path::Path;

use super::Link;
use crate::engine::PortError;
use crate::transport::HttpClient;
use crate::transport::error::HttpError;

/// Why a package could not be fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// omadmd's configuration or the server's account could not be read: the device's
    /// fault, not the URL's.
    Setup,
    /// No URL, one the rules refuse (SSRF, plain http), or nothing at it (404, 410).
    BadUrl,
    /// The download server wants credentials the device does not have.
    Auth,
    /// The download server does not answer, or says it is unavailable (503).
    ServerUnavailable,
    /// The download server answered with an error (5xx).
    ServerError,
    /// The package is larger than allowed, or there is no room for it.
    NoSpace,
    /// The download timed out.
    Timeout,
    /// Anything else on the way: the network, an unexpected status.
    Network,
}

/// What `error` (from [`HttpClient::download`] or writing the file) says went wrong.
pub fn classify(error: &PortError) -> Failure {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&*error.0);
    while let Some(c) = cause {
        if let Some(h) = c.downcast_ref::<HttpError>() {
            match h {
                HttpError::Refused(_) => return Failure::BadUrl,
                HttpError::Status(401 | 403 | 407) => return Failure::Auth,
                // Nothing at that URL.
                HttpError::Status(404 | 410) => return Failure::BadUrl,
                HttpError::Status(503) => return Failure::ServerUnavailable,
                HttpError::Status(500..=599) => return Failure::ServerError,
                HttpError::Status(_) => return Failure::Network,
                HttpError::TooLarge(_) => return Failure::NoSpace,
                HttpError::Setup(_) => return Failure::Setup,
                // A request or body failure: reqwest's error below says which.
                _ => {}
            }
        }
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            return if io.kind() == std::io::ErrorKind::TimedOut {
                Failure::Timeout
            } else {
                // Writing the package failed: no room for it.
                Failure::NoSpace
            };
        }
        if let Some(e) = c.downcast_ref::<reqwest::Error>() {
            if e.is_timeout() {
                return Failure::Timeout;
            }
            if e.is_connect() {
                return Failure::ServerUnavailable;
            }
            if e.is_builder() {
                return Failure::BadUrl;
            }
        }
        cause = c.source();
    }
    Failure::Network
}

/// Fetches `url` into `dest` (through `dest` with the extension `.part`, renamed when
/// complete, so that a cut download never looks like a package), with the HTTP rules
/// omadmd applies to the server `server_id`, at most `max` bytes. The bytes fetched.
pub async fn fetch(
    link: &Link,
    settings: &crate::config::Settings,
    server_id: &str,
    url: &str,
    dest: &Path,
    max: u64,
) -> Result<u64, Failure> {
    if url.is_empty() {
        return Err(Failure::BadUrl);
    }
    let srv_uri = match link.manager().account_state(server_id).await {
        Ok(a) => a.url,
        Err(e) => {
            tracing::error!(error = %e, server = server_id, "cannot read the server's account");
            return Err(Failure::Setup);
        }
    };
    let dev_id = link.dev_id().await.unwrap_or_default();
    let client = settings
        .http_settings(&srv_uri, None)
        .map_err(|e| {
            tracing::error!(error = %e, "HTTP settings");
            Failure::Setup
        })
        .and_then(|s| {
            HttpClient::new(&s, &dev_id).map_err(|e| {
                tracing::error!(error = %e, "HTTP client");
                Failure::Setup
            })
        })?;
    let partial = dest.with_extension("part");
    let mut file = std::fs::File::create(&partial).map_err(|e| {
        tracing::error!(error = %e, path = %partial.display(), "cannot store the package");
        Failure::NoSpace
    })?;
    match client.download(url, &mut file, max).await {
        Ok(bytes) => {
            drop(file);
            std::fs::rename(&partial, dest).map_err(|_| Failure::NoSpace)?;
            tracing::info!(url = %crate::protocol::uri::redact(url), bytes, "package downloaded");
            Ok(bytes)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            let failure = classify(&e);
            tracing::warn!(error = %e, ?failure, "package download failed");
            Err(failure)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_told_apart() {
        let of = |e: HttpError| classify(&PortError::from(e));
        assert_eq!(of(HttpError::Status(404)), Failure::BadUrl);
        assert_eq!(of(HttpError::Status(410)), Failure::BadUrl);
        assert_eq!(of(HttpError::Status(502)), Failure::ServerError);
        assert_eq!(of(HttpError::Status(503)), Failure::ServerUnavailable);
        assert_eq!(of(HttpError::Status(400)), Failure::Network);
        assert_eq!(of(HttpError::Status(401)), Failure::Auth);
        assert_eq!(of(HttpError::TooLarge(10)), Failure::NoSpace);
        assert_eq!(of(HttpError::Setup("CA".into())), Failure::Setup);
        // reqwest's own error, below the request's, tells a URL it cannot use.
        let relative = reqwest::Client::new()
            .get("{base}/repo/pkg.deb")
            .build()
            .unwrap_err();
        let request = HttpError::Request {
            url: "{base}/repo/pkg.deb".into(),
            what: relative.to_string(),
            source: relative,
        };
        assert_eq!(of(request), Failure::BadUrl);
        let io = |k| classify(&PortError(Box::new(std::io::Error::from(k))));
        assert_eq!(io(std::io::ErrorKind::StorageFull), Failure::NoSpace);
        assert_eq!(io(std::io::ErrorKind::TimedOut), Failure::Timeout);
    }
}
