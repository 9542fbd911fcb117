//! HTTP authentication of an account's requests (docs/decisions.md, "HTTP
//! authentication"): its credentials, and which challenge of a 401 to answer.

use reqwest::header::HeaderValue;

/// HTTP credentials of an account (docs/decisions.md, "HTTP authentication").
#[derive(Clone)]
pub struct Credentials {
    /// User name.
    pub user: String,
    /// Password.
    pub password: String,
    /// Only URLs of this origin (the account's SrvURI) ever get them.
    pub origin: url::Origin,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, ***)", self.user)
    }
}

/// How the server asked to be answered, remembered for the rest of the session.
#[derive(Debug, Clone)]
pub enum Challenge {
    /// HTTP Basic (RFC 7617).
    Basic,
    /// HTTP Digest (RFC 7616), with the server's parameters.
    Digest(Box<digest_auth::WwwAuthenticateHeader>),
}

/// The challenge to answer among a 401's `WWW-Authenticate` values: Digest preferred, then
/// Basic; `None` when there is none we can answer.
///
/// Only values that are visible ASCII are looked at (`HeaderValue::to_str`). This guard
/// is load-bearing: `digest_auth` 0.3.1 counts characters but slices by bytes, and panics on
/// a non-ASCII challenge such as `Digest\xc3\xa9=`; such a value is skipped here, and the
/// server gets no credentials (a clean authentication failure).
pub fn challenge<'a>(values: impl IntoIterator<Item = &'a HeaderValue>) -> Option<Challenge> {
    let challenges: Vec<&str> = values.into_iter().filter_map(|v| v.to_str().ok()).collect();
    let digest = challenges
        .iter()
        .find(|c| c.trim_start().to_ascii_lowercase().starts_with("digest"))
        .and_then(|c| digest_auth::parse(c).ok());
    let basic = challenges
        .iter()
        .any(|c| c.trim_start().to_ascii_lowercase().starts_with("basic"));
    match (digest, basic) {
        (Some(d), _) => Some(Challenge::Digest(Box::new(d))),
        (None, true) => Some(Challenge::Basic),
        (None, false) => None,
    }
}
