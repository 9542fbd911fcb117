//! How an HTTP exchange fails: what the daemon shows of it (URLs redacted) and the cause it
//! keeps (reqwest's error, its URL taken out).

use crate::engine::PortError;
use crate::protocol::uri::redact;
use crate::session::TransportError;
use crate::transport::target::Refused;

/// Why an HTTP exchange failed. What it shows carries URLs redacted; the reqwest error it
/// keeps as its cause has its URL taken out.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The URL leads where a server's URLs may not.
    #[error("{0}")]
    Refused(#[from] Refused),
    /// The request failed (connection, TLS, redirect, timeout).
    #[error("{url}: {what}")]
    Request {
        /// The URL, redacted.
        url: String,
        /// What failed, with its causes.
        what: String,
        /// reqwest's error, without the URL.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with a status that is not a success.
    #[error("HTTP {0}")]
    Status(u16),
    /// The server asked, with `Retry-After` on a 503 or 429, not to be contacted for this
    /// many more seconds; nothing was sent.
    #[error("the server asked not to be contacted for another {0} s (Retry-After)")]
    Deferred(u64),
    /// The body was larger than the limit.
    #[error("body larger than {0} bytes")]
    TooLarge(usize),
    /// The body could not be read to its end.
    #[error("reading the body: {what}")]
    Body {
        /// What failed, with its causes.
        what: String,
        /// reqwest's error, without the URL.
        #[source]
        source: reqwest::Error,
    },
    /// The client could not be built (a bad CA file, certificate or DevID).
    #[error("{0}")]
    Setup(String),
}

impl HttpError {
    pub(super) fn request(url: &str, e: reqwest::Error) -> HttpError {
        let source = e.without_url();
        HttpError::Request {
            url: redact(url),
            what: describe(&source),
            source,
        }
    }

    pub(super) fn body(e: reqwest::Error) -> HttpError {
        let source = e.without_url();
        HttpError::Body {
            what: describe(&source),
            source,
        }
    }
}

impl From<HttpError> for PortError {
    fn from(e: HttpError) -> PortError {
        PortError(Box::new(e))
    }
}

impl From<HttpError> for TransportError {
    fn from(e: HttpError) -> TransportError {
        TransportError(Box::new(e))
    }
}

/// The error with its causes (reqwest's top line alone hides TLS and I/O reasons).
pub(super) fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}
