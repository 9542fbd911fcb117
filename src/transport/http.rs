//! The HTTP client: reqwest with rustls (TLS 1.2 and 1.3 only, a deliberate deviation from
//! the TS's TLS 1.1, see docs/decisions.md), the system roots plus an optional extra CA,
//! an optional client certificate, generous configurable timeouts, cookies kept for the
//! life of one client (one session), and redirects followed only within the same scheme.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue};

use crate::engine::{Fetched, Method, PortError, Sent};
use crate::protocol::packages::P2_TYPE;
use crate::protocol::uri::redact;
use crate::session::{HttpReply, Transport, TransportError};
use crate::transport::backpressure::{Deferrals, asked_wait};
use crate::transport::error::HttpError;
use crate::transport::resolver::{GuardedResolver, Unreachable, allowed_addrs};
use crate::transport::target::TargetPolicy;

mod auth;
pub use auth::{Challenge, Credentials, challenge};

/// The `OMADM-DevID` header (TS §5.2.2).
pub const DEVID_HEADER: &str = "OMADM-DevID";
/// The `OMADM-Accept` header (TS §5.5).
pub const ACCEPT_HEADER: &str = "OMADM-Accept";

/// How the client connects.
#[derive(Debug, Clone, Hash)]
pub struct HttpSettings {
    /// Time to set up a connection (TCP and TLS).
    pub connect_timeout: Duration,
    /// Longest wait for data on an open connection. The TS sets no timeout between
    /// packages (§5.1.1), so this is generous.
    pub read_timeout: Duration,
    /// Longest time for one exchange in all, the whole response included: a read timeout
    /// alone restarts with every byte, so a server sending a byte a second could hold a
    /// session for ever.
    pub request_timeout: Duration,
    /// The longest `Retry-After` obeyed (`sessions.retry-max-secs`).
    pub retry_after_cap: Duration,
    /// Extra trusted CA certificates (PEM), added to the system roots.
    pub extra_ca_pem: Option<Vec<u8>>,
    /// Client certificate and key (PEM) for mutual TLS.
    pub client_identity_pem: Option<Vec<u8>>,
    /// Largest response body read.
    pub max_body: usize,
    /// Where the server's URLs may lead (checked on the connected address).
    pub targets: TargetPolicy,
    /// HTTP credentials go over plain http too (`http.allow-insecure-auth`).
    pub allow_insecure_auth: bool,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(120),
            request_timeout: Duration::from_secs(300),
            retry_after_cap: Duration::from_secs(3600),
            extra_ca_pem: None,
            client_identity_pem: None,
            max_body: 4 << 20,
            targets: TargetPolicy::default(),
            allow_insecure_auth: false,
        }
    }
}

/// Checks an extra CA file (`http.ca-file`) as sessions will use it: readable, and
/// holding at least one PEM certificate.
pub fn check_ca_file(path: &std::path::Path) -> Result<(), String> {
    let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    match reqwest::Certificate::from_pem_bundle(&pem) {
        Ok(certs) if !certs.is_empty() => Ok(()),
        Ok(_) => Err(format!("{} holds no PEM certificate", path.display())),
        Err(e) => Err(format!("{}: not PEM certificates: {e}", path.display())),
    }
}

/// The cookies of one session: a jar that is emptied when the next session starts, so a
/// client (its TLS set-up and connection pool) can serve many sessions while cookies live
/// exactly as long as one.
#[derive(Debug, Default)]
struct SessionJar(std::sync::RwLock<std::sync::Arc<reqwest::cookie::Jar>>);

impl SessionJar {
    fn jar(&self) -> std::sync::Arc<reqwest::cookie::Jar> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn clear(&self) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = std::sync::Arc::default();
    }
}

impl reqwest::cookie::CookieStore for SessionJar {
    fn set_cookies(&self, headers: &mut dyn Iterator<Item = &HeaderValue>, url: &url::Url) {
        self.jar().set_cookies(headers, url);
    }

    fn cookies(&self, url: &url::Url) -> Option<HeaderValue> {
        self.jar().cookies(url)
    }
}

/// An HTTP client for one server. Build it once and call [`HttpClient::session`] for each
/// session: cookies and the learned authentication scheme live exactly as long as one.
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    dev_id: String,
    max_body: usize,
    targets: Arc<TargetPolicy>,
    allow_insecure_auth: bool,
    credentials: Option<Credentials>,
    scheme: std::sync::Arc<std::sync::Mutex<Option<Challenge>>>,
    jar: std::sync::Arc<SessionJar>,
    /// Origins that answered 503 or 429 with `Retry-After`, kept across sessions.
    deferrals: Deferrals,
    /// How long a request may take as a whole (`http.request-timeout-secs`).
    request_timeout: Duration,
}

/// The slowest a package download may be and still finish: its whole-request time limit
/// grows with the bound on its size at this rate. Stalls are caught sooner, by the read
/// timeout between two reads.
const MIN_DOWNLOAD_BYTES_PER_SEC: u64 = 64 << 10;

/// How long a download of at most `max` bytes may take as a whole: the configured
/// request timeout, or longer for a package that could not arrive within it at
/// [`MIN_DOWNLOAD_BYTES_PER_SEC`].
fn download_timeout(request_timeout: Duration, max: u64) -> Duration {
    request_timeout.max(Duration::from_secs(max / MIN_DOWNLOAD_BYTES_PER_SEC))
}

/// A redirect is followed only to the same scheme, at most five times: a session never
/// moves from https to http, nor from http to https behind the server's back. Each hop's
/// target is checked against the server's [`TargetPolicy`] like the first URL.
fn redirect_policy(targets: Arc<TargetPolicy>) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        let first = attempt.previous().first().map(|u| u.scheme().to_owned());
        if attempt.previous().len() >= 5 {
            attempt.error("more than 5 redirects")
        } else if super::target::strip_userinfo(attempt.url().as_str()).is_some() {
            attempt.error("redirect to a URL with user information refused")
        } else if let Err(refused) = targets.check_url(attempt.url()) {
            tracing::warn!(url = %redact(attempt.url().as_str()), reason = %refused, "redirect refused");
            attempt.error(refused)
        } else if first
            .as_deref()
            .is_some_and(|s| s != attempt.url().scheme())
        {
            let msg = format!(
                "redirect from {} to {} refused",
                first.unwrap_or_default(),
                attempt.url().scheme()
            );
            attempt.error(msg)
        } else {
            attempt.follow()
        }
    })
}

impl HttpClient {
    /// A client sending `dev_id` in `OMADM-DevID`.
    pub fn new(settings: &HttpSettings, dev_id: &str) -> Result<HttpClient, TransportError> {
        let err = |what: &str, e: reqwest::Error| {
            TransportError::from(HttpError::Setup(format!("{what}: {e}")))
        };
        let jar = std::sync::Arc::new(SessionJar::default());
        let targets = Arc::new(settings.targets.clone());
        let mut b = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .read_timeout(settings.read_timeout)
            .timeout(settings.request_timeout)
            .redirect(redirect_policy(targets.clone()))
            .dns_resolver(Arc::new(GuardedResolver(targets.clone())))
            // A proxy would resolve and connect in our place, out of reach of the checks
            // on the connected address.
            .no_proxy()
            .cookie_provider(jar.clone())
            // An idle connection is not kept long: sessions are minutes or hours apart, and
            // an idle daemon should hold little (PRODUCT.md §5).
            .pool_idle_timeout(std::time::Duration::from_secs(30))
            .tls_version_min(reqwest::tls::Version::TLS_1_2)
            .user_agent(concat!("omadmd/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = &settings.extra_ca_pem {
            let certs =
                reqwest::Certificate::from_pem_bundle(pem).map_err(|e| err("CA certificate", e))?;
            b = b.tls_certs_merge(certs);
        }
        if let Some(pem) = &settings.client_identity_pem {
            b = b.identity(
                reqwest::Identity::from_pem(pem).map_err(|e| err("client certificate", e))?,
            );
        }
        HeaderValue::from_str(dev_id)
            .map_err(|_| HttpError::Setup("DevID is not a valid header value".into()))?;
        Ok(HttpClient {
            client: b.build().map_err(|e| err("HTTP client", e))?,
            dev_id: dev_id.to_owned(),
            max_body: settings.max_body,
            targets,
            allow_insecure_auth: settings.allow_insecure_auth,
            credentials: None,
            scheme: std::sync::Arc::default(),
            jar,
            deferrals: Deferrals::new(settings.retry_after_cap),
            request_timeout: settings.request_timeout,
        })
    }

    /// The client for a new session with the same server: no cookies and no learned
    /// authentication scheme from an earlier one; the connection pool and TLS set-up are
    /// kept. One session at a time uses a client's cookies.
    pub fn session(&self) -> HttpClient {
        self.jar.clear();
        HttpClient {
            scheme: std::sync::Arc::default(),
            ..self.clone()
        }
    }

    /// The same client answering HTTP Basic or Digest challenges with `credentials`.
    pub fn with_credentials(mut self, credentials: Option<Credentials>) -> HttpClient {
        self.credentials = credentials;
        self
    }

    /// The credentials, when `url` belongs to their origin and is https (plain http only
    /// with `http.allow-insecure-auth`: a password over http is a password given away).
    fn credentials_for(&self, url: &str) -> Option<&Credentials> {
        let c = self.credentials.as_ref()?;
        let u = url::Url::parse(url).ok()?;
        (u.origin() == c.origin && (u.scheme() == "https" || self.allow_insecure_auth)).then_some(c)
    }

    /// The Authorization header for a request, from the scheme the server asked for.
    fn authorization(&self, method: &str, url: &str, body: Option<&[u8]>) -> Option<HeaderValue> {
        let c = self.credentials_for(url)?;
        let mut scheme = self.scheme.lock().unwrap_or_else(|p| p.into_inner());
        let value = match scheme.as_mut()? {
            Challenge::Basic => {
                use base64::Engine as _;
                let token = base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{}", c.user, c.password));
                format!("Basic {token}")
            }
            Challenge::Digest(prompt) => {
                let parsed = url::Url::parse(url).ok()?;
                let uri = match parsed.query() {
                    Some(q) => format!("{}?{q}", parsed.path()),
                    None => parsed.path().to_owned(),
                };
                let ctx = digest_auth::AuthContext::new_with_method(
                    c.user.as_str(),
                    c.password.as_str(),
                    uri,
                    body,
                    digest_auth::HttpMethod(method.to_owned().into()),
                );
                prompt.respond(&ctx).ok()?.to_header_string()
            }
        };
        HeaderValue::from_str(&value).ok()
    }

    /// Learns the scheme from a 401's challenges (Digest preferred); false when there is
    /// nothing to answer with.
    fn learn(&self, resp: &reqwest::Response) -> bool {
        if self.credentials_for(resp.url().as_str()).is_none() {
            return false;
        }
        let learned = challenge(resp.headers().get_all(reqwest::header::WWW_AUTHENTICATE));
        let ok = learned.is_some();
        *self.scheme.lock().unwrap_or_else(|p| p.into_inner()) = learned;
        ok
    }

    /// Sends a request; on a 401 with a challenge we can answer, answers it once.
    async fn send_authed(
        &self,
        method: reqwest::Method,
        url: &str,
        headers: HeaderMap,
        body: Option<Vec<u8>>,
        whole: Option<Duration>,
    ) -> Result<reqwest::Response, HttpError> {
        // No URL carries user information past here (a bootstrap file cannot put it in a
        // SrvURI; a server's HGET, HPUT, SUB, EXEC or CONT URL loses it).
        let stripped = super::target::strip_userinfo(url);
        if stripped.is_some() {
            tracing::warn!(url = %redact(url), "user information removed from a URL: credentials come only from the account's Ext/HttpAuth");
        }
        let url = stripped.as_deref().unwrap_or(url);
        if let Ok(u) = url::Url::parse(url)
            && let Err(refused) = self.targets.check_url(&u)
        {
            tracing::warn!(url = %redact(url), reason = %refused, "server URL refused");
            return Err(refused.into());
        }
        // Shared, not copied, between the first request and an answer to a challenge: a
        // large package is held once.
        let body = body.map(bytes::Bytes::from);
        let build = |auth: Option<HeaderValue>| {
            let mut req = self
                .client
                .request(method.clone(), url)
                .headers(headers.clone());
            if let Some(a) = auth {
                req = req.header(reqwest::header::AUTHORIZATION, a);
            }
            if let Some(b) = &body {
                req = req.body(b.clone());
            }
            if let Some(t) = whole {
                req = req.timeout(t);
            }
            req
        };
        // reqwest puts the whole URL in its errors; what leaves the daemon (history, D-Bus,
        // logs) shows it redacted.
        let failed = |e: reqwest::Error| HttpError::request(url, e);
        // One event per request a server answered, a challenge included: what
        // omadm-fleetsim counts as the server's load (and `-v -v` shows). The bytes are
        // the bodies': what the server sends is as its Content-Length says.
        // The connection's two ends, so that the answer can be timed by when it reached the
        // host (omadm-fleetsim asks the kernel), not by when this task got to it.
        let answered = |resp: &reqwest::Response| {
            let ends = resp
                .extensions()
                .get::<hyper_util::client::legacy::connect::HttpInfo>();
            tracing::debug!(method = %method, status = resp.status().as_u16(), sent_bytes = body.as_ref().map_or(0, |b| b.len()), received_bytes = resp.content_length().unwrap_or(0), local_addr = ends.map(|e| tracing::field::display(e.local_addr())), remote_addr = ends.map(|e| tracing::field::display(e.remote_addr())), "HTTP request answered");
        };
        let first = build(self.authorization(method.as_str(), url, body.as_deref()))
            .send()
            .await
            .map_err(failed)?;
        answered(&first);
        let resp = if first.status() != reqwest::StatusCode::UNAUTHORIZED || !self.learn(&first) {
            first
        } else {
            let again = build(self.authorization(method.as_str(), url, body.as_deref()))
                .send()
                .await
                .map_err(failed)?;
            answered(&again);
            again
        };
        if let Some(wait) = asked_wait(resp.status().as_u16(), resp.headers()) {
            tracing::info!(url = %redact(resp.url().as_str()), status = resp.status().as_u16(), retry_after_secs = wait.as_secs(), "server asks to come back later");
            self.deferrals.defer(resp.url(), wait);
        }
        Ok(resp)
    }

    /// Refuses a Data Repository request to an origin that asked, with `Retry-After`, not
    /// to be contacted yet.
    fn check_deferred(&self, url: &str) -> Result<(), HttpError> {
        match url::Url::parse(url)
            .ok()
            .and_then(|u| self.deferrals.remaining(&u))
        {
            Some(left) => Err(HttpError::Deferred(left.as_secs().max(1))),
            None => Ok(()),
        }
    }

    /// Headers for a request to the Data Repository (HGET, HPUT, HPOST): no device
    /// identity, which goes only to the DM server's session URL (reference §2.1).
    fn headers(&self, content_type: Option<&str>, accept: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(ct) = content_type.and_then(|c| HeaderValue::from_str(c).ok()) {
            h.insert(CONTENT_TYPE, ct);
        }
        if let Ok(a) = HeaderValue::from_str(accept) {
            h.insert(ACCEPT, a);
        }
        h
    }

    /// Reads a body, refusing one larger than the limit.
    async fn body(&self, mut resp: reqwest::Response) -> Result<Vec<u8>, HttpError> {
        if resp
            .content_length()
            .is_some_and(|l| l > self.max_body as u64)
        {
            return Err(HttpError::TooLarge(self.max_body));
        }
        let mut out = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(HttpError::body)? {
            if out.len() + chunk.len() > self.max_body {
                return Err(HttpError::TooLarge(self.max_body));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }
}

fn media_type(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
}

fn omadm_accept(resp: &reqwest::Response) -> Vec<String> {
    resp.headers()
        .get_all(ACCEPT_HEADER)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

impl Transport for HttpClient {
    async fn post(
        &self,
        url: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<HttpReply, TransportError> {
        let mut headers = self.headers(Some(content_type), P2_TYPE);
        if let Ok(d) = HeaderValue::from_str(&self.dev_id) {
            headers.insert(DEVID_HEADER, d);
        }
        let resp = self
            .send_authed(reqwest::Method::POST, url, headers, Some(body), None)
            .await
            .map_err(TransportError::from)?;
        let status = resp.status().as_u16();
        let content_type = media_type(&resp);
        let omadm_accept = omadm_accept(&resp);
        let retry_after = asked_wait(status, resp.headers());
        let body = self.body(resp).await.map_err(TransportError::from)?;
        Ok(HttpReply {
            status,
            content_type,
            omadm_accept,
            retry_after,
            body,
        })
    }
}

impl HttpClient {
    /// Whether a URL a server named may be used later (a SUB delivery, an EXEC result, a
    /// CONT): refused when it is, or resolves only to, an address the policy refuses. A
    /// name that does not resolve now is not refused: it is checked again when used.
    pub async fn check_target(&self, url: &str) -> Result<(), PortError> {
        let u = url::Url::parse(url).map_err(|e| PortError(Box::new(e)))?;
        self.targets.check_url(&u).map_err(|r| {
            tracing::warn!(url = %redact(url), reason = %r, "server URL refused");
            PortError::from(HttpError::Refused(r))
        })?;
        match u.host() {
            Some(url::Host::Domain(host)) => match allowed_addrs(&self.targets, host).await {
                Err(Unreachable::Refused(r)) => Err(HttpError::Refused(r).into()),
                _ => Ok(()),
            },
            _ => Ok(()),
        }
    }

    /// HTTP GET of MO data (HGET's half of [`crate::engine::Ports`]).
    pub async fn fetch(&self, url: &str, accept: &[&str]) -> Result<Fetched, PortError> {
        self.check_deferred(url)?;
        let resp = self
            .send_authed(
                reqwest::Method::GET,
                url,
                self.headers(None, &accept.join(", ")),
                None,
                None,
            )
            .await
            .map_err(PortError::from)?;
        if !resp.status().is_success() {
            return Err(HttpError::Status(resp.status().as_u16()).into());
        }
        let content_type = media_type(&resp).unwrap_or_else(|| "application/octet-stream".into());
        let body = self.body(resp).await.map_err(PortError::from)?;
        Ok(Fetched { content_type, body })
    }

    /// HTTP GET of a package (firmware, software) into `to`, chunk by chunk, so that a
    /// large one is never held in memory; at most `max` bytes (a longer body stops the
    /// download with [`HttpError::TooLarge`]). The same rules as every request: the
    /// target policy, redirects, TLS, `Retry-After`. Returns the bytes written.
    pub async fn download(
        &self,
        url: &str,
        to: &mut (impl std::io::Write + Send),
        max: u64,
    ) -> Result<u64, PortError> {
        self.check_deferred(url)?;
        let mut resp = self
            .send_authed(
                reqwest::Method::GET,
                url,
                self.headers(None, "*/*"),
                None,
                Some(download_timeout(self.request_timeout, max)),
            )
            .await
            .map_err(PortError::from)?;
        if !resp.status().is_success() {
            return Err(HttpError::Status(resp.status().as_u16()).into());
        }
        let too_large = || {
            PortError::from(HttpError::TooLarge(
                usize::try_from(max).unwrap_or(usize::MAX),
            ))
        };
        if resp.content_length().is_some_and(|l| l > max) {
            return Err(too_large());
        }
        let mut written = 0u64;
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| PortError::from(HttpError::body(e)))?
        {
            written += chunk.len() as u64;
            if written > max {
                return Err(too_large());
            }
            to.write_all(&chunk).map_err(|e| PortError(Box::new(e)))?;
        }
        to.flush().map_err(|e| PortError(Box::new(e)))?;
        Ok(written)
    }

    /// HTTP PUT or POST of MO data (HPUT, HPOST, subscription deliveries).
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<Sent, PortError> {
        self.check_deferred(url)?;
        let m = match method {
            Method::Put => reqwest::Method::PUT,
            Method::Post => reqwest::Method::POST,
        };
        let resp = self
            .send_authed(
                m,
                url,
                self.headers(Some(content_type), "*/*"),
                Some(body),
                None,
            )
            .await
            .map_err(PortError::from)?;
        let status = resp.status().as_u16();
        match status {
            200..=299 => Ok(Sent::Ok),
            415 => Ok(Sent::Unsupported {
                accept: omadm_accept(&resp),
            }),
            _ => Err(HttpError::Status(status).into()),
        }
    }
}

#[cfg(test)]
mod tests;
