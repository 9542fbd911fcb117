//! `omadm-testserver`: a scriptable DM 2.0 server, Data Repository and Web Server Component
//! for demos, tests and integrators' own conformance runs (no public DM 2.0 server exists).
//!
//! It plays scripted sessions: each Package#1 starts the next session of the script, each
//! Package#3 gets the session's next Package#2 (END when the script runs out). It records
//! every package and repository request as JSON lines, serves and accepts MO data under
//! `/repo/`, and serves a page for SHOW under `/ui`. See docs/testserver.md.
//!
//! It depends on the wire formats (`omadm-proto`) and on nothing of the client's.

use std::collections::HashMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value as Json, json};

pub mod cli;
mod repo;
mod script;
mod tls;

pub use script::{AuthSpec, Outage, Resource, Script, ScriptPackage, ScriptSession};
use tls::mutual_tls;
pub use tls::{Certificates, make_certificates};

use omadm_proto::packages::{self, P1_TYPE, P2_TYPE};

/// Where the server listens and writes.
#[derive(Debug, Clone)]
pub struct Options {
    /// Address to bind.
    pub listen: SocketAddr,
    /// Serve HTTPS with a certificate made at start.
    pub tls: bool,
    /// Where to write the CA certificate clients should trust (with `tls`).
    pub ca_out: Option<PathBuf>,
    /// Require client certificates from the CA, and write one for a device here (with `tls`).
    pub client_cert_out: Option<PathBuf>,
    /// JSON-lines record of everything received.
    pub record: Option<PathBuf>,
    /// Print a line per event on stdout.
    pub verbose: bool,
}

struct Live {
    nonce: String,
    script: Script,
    base: String,
    next_session: usize,
    /// The script's next session to play.
    next_scripted: usize,
    /// In a fleet script, per DevID: the script's session its next session plays.
    fleet_next: HashMap<String, usize>,
    /// When the server started (outage windows count from it).
    started: std::time::Instant,
    /// Per session: the script's session it plays (none: it only gets END).
    plays: HashMap<usize, usize>,
    /// Per running session: the index of the next package to send.
    cursors: HashMap<usize, usize>,
    repo: HashMap<String, Resource>,
    record: Option<std::fs::File>,
    verbose: bool,
}

type Shared = Arc<Mutex<Live>>;

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, Live> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

impl Live {
    fn log(&mut self, event: Json, human: String) {
        if let Some(f) = &mut self.record {
            // One write per line: a reader never sees half an event.
            let _ = f.write_all(format!("{event}\n").as_bytes());
            let _ = f.flush();
        }
        if self.verbose {
            println!("testserver: {human}");
        }
    }
}

fn header_map(h: &HeaderMap) -> Json {
    let pick = [
        "content-type",
        "accept",
        "omadm-devid",
        "cookie",
        "authorization",
    ];
    Json::Object(
        pick.iter()
            .filter_map(|k| {
                h.get(*k)
                    .and_then(|v| v.to_str().ok())
                    .map(|v| ((*k).to_owned(), json!(v)))
            })
            .collect(),
    )
}

/// The `OMADM-DevID` a request carries.
fn dev_id(h: &HeaderMap) -> Option<&str> {
    h.get("omadm-devid").and_then(|v| v.to_str().ok())
}

fn session_of(h: &HeaderMap) -> Option<usize> {
    h.get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| {
            c.trim()
                .strip_prefix("omadm-session=")
                .and_then(|n| n.parse().ok())
        })
}

fn body_json(b: &[u8]) -> Json {
    serde_json::from_slice(b).unwrap_or_else(|_| json!(String::from_utf8_lossy(b)))
}

/// Replaces `{base}` in every string of `v`.
fn with_base(v: &Json, base: &str) -> Json {
    match v {
        Json::String(s) => json!(s.replace("{base}", base)),
        Json::Array(a) => Json::Array(a.iter().map(|x| with_base(x, base)).collect()),
        Json::Object(o) => Json::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), with_base(x, base)))
                .collect(),
        ),
        other => other.clone(),
    }
}

const REALM: &str = "omadm-testserver";

/// Checks the request's credentials against the script's; `Some(401 response)` when they
/// are missing or wrong.
fn challenge(
    st: &Shared,
    method: &str,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<Response> {
    let mut live = lock(st);
    let spec = live.script.auth.clone()?;
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let ok = match spec.scheme.as_str() {
        "basic" => {
            use base64::Engine as _;
            let want = base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", spec.user, spec.password));
            given
                .strip_prefix("Basic ")
                .is_some_and(|g| g.trim() == want)
        }
        _ => match digest_auth::AuthorizationHeader::parse(
            given.strip_prefix("Digest ").unwrap_or(&given),
        ) {
            Ok(h) if h.username == spec.user && h.nonce == live.nonce => {
                let mut expected = h.clone();
                let ctx = digest_auth::AuthContext::new_with_method(
                    spec.user.as_str(),
                    spec.password.as_str(),
                    h.uri.as_str(),
                    Some(body),
                    digest_auth::HttpMethod(method.to_owned().into()),
                );
                expected.digest(&ctx);
                expected.response == h.response
                    && uri.path_and_query().is_some_and(|pq| pq.as_str() == h.uri)
            }
            _ => false,
        },
    };
    if ok {
        return None;
    }
    let challenge = match spec.scheme.as_str() {
        "basic" => format!("Basic realm=\"{REALM}\""),
        _ => format!(
            "Digest realm=\"{REALM}\", qop=\"auth\", algorithm=MD5, nonce=\"{}\", opaque=\"0\"",
            live.nonce
        ),
    };
    live.log(
        json!({"kind": "auth-challenge", "path": uri.path(), "had_credentials": !given.is_empty()}),
        format!(
            "{method} {} unauthorized{}: asked for {} credentials",
            uri.path(),
            if given.is_empty() {
                ""
            } else {
                " (wrong credentials)"
            },
            spec.scheme
        ),
    );
    let challenge = spec.challenge.clone().unwrap_or(challenge);
    let mut resp = StatusCode::UNAUTHORIZED.into_response();
    if let Ok(v) = HeaderValue::from_bytes(challenge.as_bytes()) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    Some(resp)
}

async fn dm(State(st): State<Shared>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(r) = outage(&st, &uri, &headers) {
        return r;
    }
    if let Some(r) = challenge(&st, "POST", &uri, &headers, &body) {
        return r;
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let (session, package, recorded_status) = {
        let mut live = lock(&st);
        if ct.starts_with(P1_TYPE) {
            let n = live.next_session;
            live.next_session += 1;
            live.cursors.insert(n, 0);
            if live
                .script
                .played_at
                .as_deref()
                .is_none_or(|p| p == uri.path())
            {
                let next = if live.script.fleet {
                    let devid = dev_id(&headers).unwrap_or_default().to_owned();
                    let next = live.fleet_next.entry(devid).or_insert(0);
                    *next += 1;
                    *next - 1
                } else {
                    live.next_scripted += 1;
                    live.next_scripted - 1
                };
                live.plays.insert(n, next);
            }
            let p1 = body_json(&body);
            let alert = alerts_shown(&p1["Alert"]);
            let devid = dev_id(&headers).unwrap_or("?").to_owned();
            live.log(
                json!({"kind": "package1", "session": n, "path": uri.path(), "headers": header_map(&headers), "body": p1}),
                format!("session {n}: Package#1 to {} from {devid}: {alert}", uri.path()),
            );
            (n, 0, None)
        } else {
            let n = session_of(&headers).unwrap_or(live.next_session.saturating_sub(1));
            let decoded = packages::decode_package3_http(&ct, &body);
            let (p3, parts) = match &decoded {
                Ok((p3, parts)) => (
                    json!({"Status": p3.status.iter().map(|s| json!({"sc": s.sc, "URI": s.uri})).collect::<Vec<_>>(), "Alert": p3.alerts}),
                    parts.iter().map(|p| json!({"name": p.index, "content_type": p.content_type, "body": body_json(&p.body)})).collect::<Vec<_>>(),
                ),
                Err(e) => (json!({"error": e.to_string(), "raw": String::from_utf8_lossy(&body)}), Vec::new()),
            };
            let codes: Vec<u16> = decoded
                .as_ref()
                .map(|(p, _)| p.status.iter().map(|s| s.sc).collect())
                .unwrap_or_default();
            live.log(
                json!({"kind": "package3", "session": n, "path": uri.path(), "headers": header_map(&headers), "body": p3, "parts": parts}),
                format!("session {n}: Package#3 statuses {codes:?}{}", parts_shown(&decoded)),
            );
            let idx = live.cursors.get(&n).copied().unwrap_or(0);
            (n, idx, Some(codes))
        }
    };
    // The script's next package for this session.
    let (pkg, base) = {
        let mut live = lock(&st);
        live.cursors.insert(session, package + 1);
        let pkg = live
            .plays
            .get(&session)
            .and_then(|i| live.script.sessions.get(*i))
            .and_then(|s| s.packages.get(package))
            .cloned();
        (pkg, live.base.clone())
    };
    let pkg = pkg.unwrap_or_else(|| ScriptPackage {
        cmd: Some(json!([["END"]])),
        ..Default::default()
    });
    if let (Some(want), Some(got)) = (&pkg.expect, &recorded_status) {
        let ok = want == got;
        lock(&st).log(
            json!({"kind": "expect", "session": session, "package": package, "want": want, "got": got, "ok": ok}),
            format!("session {session}: expected {want:?}, got {got:?}: {}", if ok { "ok" } else { "MISMATCH" }),
        );
    }
    if let Some(to) = &pkg.redirect {
        // The client re-sends the same package to the new place; answer it there.
        lock(&st).cursors.insert(session, package);
        let to = to.replace("{base}", &base);
        lock(&st).log(
            json!({"kind": "redirect", "session": session, "to": to}),
            format!("session {session}: redirected to {to}"),
        );
        let mut resp = StatusCode::TEMPORARY_REDIRECT.into_response();
        if let Ok(v) = HeaderValue::from_str(&to) {
            resp.headers_mut().insert(header::LOCATION, v);
        }
        if let Ok(v) = HeaderValue::from_str(&format!("omadm-session={session}; Path=/")) {
            resp.headers_mut().insert(header::SET_COOKIE, v);
        }
        return resp;
    }
    if let Some(ms) = pkg.delay_ms {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let status = pkg
        .http_status
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    let body = match (&pkg.raw, &pkg.cmd) {
        (Some(raw), _) => raw.clone().into_bytes(),
        (None, Some(cmd)) => json!({"CMD": with_base(cmd, &base)})
            .to_string()
            .into_bytes(),
        (None, None) => json!({"CMD": [["END"]]}).to_string().into_bytes(),
    };
    let ends = pkg
        .cmd
        .as_ref()
        .is_some_and(|c| c.to_string().contains("\"END\""));
    {
        let mut live = lock(&st);
        let shown = String::from_utf8_lossy(&body).into_owned();
        live.log(json!({"kind": "package2", "session": session, "http_status": status.as_u16(), "body": body_json(&body)}), format!("session {session}: Package#2 {shown}{}", if ends { " (the session ends)" } else { "" }));
        if ends {
            // Nothing more comes in this session: a server that runs for a fleet's
            // millions of sessions keeps only the running ones.
            live.cursors.remove(&session);
            live.plays.remove(&session);
        }
    }
    let mut resp = match pkg.drip_ms {
        Some(ms) => (status, axum::body::Body::from_stream(drip(body, ms))).into_response(),
        None => (status, body).into_response(),
    };
    let h = resp.headers_mut();
    if let Some(v) = pkg
        .retry_after
        .as_deref()
        .and_then(|a| HeaderValue::from_str(a).ok())
    {
        h.insert(header::RETRY_AFTER, v);
    }
    let ct = pkg.content_type.as_deref().unwrap_or(P2_TYPE);
    if let Ok(v) = HeaderValue::from_str(ct) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Some(a) = pkg
        .omadm_accept
        .as_deref()
        .and_then(|a| HeaderValue::from_str(a).ok())
    {
        h.insert("omadm-accept", a);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("omadm-session={session}; Path=/")) {
        h.insert(header::SET_COOKIE, v);
    }
    resp
}

/// The answer to a DM request while an outage window is open, recorded.
fn outage(st: &Shared, uri: &Uri, headers: &HeaderMap) -> Option<Response> {
    let mut live = lock(st);
    let secs = live.started.elapsed().as_secs_f64();
    let window = live.script.outages.iter().find(|o| o.covers(secs))?.clone();
    let devid = dev_id(headers).unwrap_or("?").to_owned();
    live.log(
        json!({"kind": "outage", "path": uri.path(), "devid": devid, "http_status": window.http_status}),
        format!("{} from {devid}: down, answered {}", uri.path(), window.http_status),
    );
    let status =
        StatusCode::from_u16(window.http_status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let mut resp = status.into_response();
    if let Some(v) = window
        .retry_after
        .as_deref()
        .and_then(|r| HeaderValue::from_str(r).ok())
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    Some(resp)
}

/// A body sent one byte at a time, `ms` apart.
fn drip(
    body: Vec<u8>,
    ms: u64,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    futures_util::stream::unfold((body, 0usize), move |(body, i)| async move {
        let byte = *body.get(i)?;
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        Some((Ok(Bytes::copy_from_slice(&[byte])), (body, i + 1)))
    })
}

/// A Package#1's alerts for the log: each one's type, and for a Generic Alert where it
/// comes from and its result code, so that a person reading `-v` sees the outcome.
fn alerts_shown(alerts: &Json) -> String {
    let shown: Vec<String> = alerts
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            let mut s = a["AlertType"].as_str().unwrap_or("?").to_owned();
            if let Some(source) = a["SourceURI"].as_str() {
                s.push_str(&format!(" from {source}"));
            }
            if let Some(code) = a["Data"]["ResultCode"].as_i64() {
                s.push_str(&format!(" result {code}"));
            }
            s
        })
        .collect();
    if shown.is_empty() {
        "no alert".to_owned()
    } else {
        shown.join("; ")
    }
}

/// Up to this many bytes, a GET result is shown whole in the log; larger ones by size.
const SHOWN_WHOLE: usize = 600;

/// A Package#3's GET results for the log: small ones whole, large ones by type and size.
fn parts_shown<E>(d: &Result<(packages::Package3, Vec<packages::Part>), E>) -> String {
    let Ok((_, parts)) = d else {
        return String::new();
    };
    parts
        .iter()
        .map(|p| {
            let ct = &p.content_type;
            if p.body.len() <= SHOWN_WHOLE {
                format!(
                    "\n  GET result ({ct}): {}",
                    String::from_utf8_lossy(&p.body)
                )
            } else {
                format!("\n  GET result ({ct}): {} bytes", p.body.len())
            }
        })
        .collect()
}

/// The largest request body the server reads.
pub const MAX_BODY: usize = 64 << 20;

/// The router of a server playing `script`, whose base URL is `base`.
pub fn router(
    script: Script,
    base: String,
    record: Option<std::fs::File>,
    verbose: bool,
) -> Router {
    let live = Live {
        nonce: hex::encode(random_u64().to_be_bytes()),
        repo: script.repository.clone(),
        script,
        base,
        next_session: 0,
        next_scripted: 0,
        fleet_next: HashMap::new(),
        started: std::time::Instant::now(),
        plays: HashMap::new(),
        cursors: HashMap::new(),
        record,
        verbose,
    };
    let shared = Arc::new(Mutex::new(live));
    Router::new()
        .route("/dm", post(dm))
        .route("/dm/{*rest}", post(dm))
        .route(
            "/repo/{*path}",
            get(repo::repo_get)
                .put(repo::repo_put)
                .post(repo::repo_post),
        )
        .route("/ui", get(repo::ui).post(repo::ui_submit))
        // Packages and repository bodies as large as a client may send (axum's default is
        // 2 MB; a GET of a large MO is more).
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            answered,
        ))
        .with_state(shared)
}

/// Records when each request was answered, as the server saw it (`"kind": "answered"`,
/// Unix seconds): what a load generator's own per-second counts are checked against.
async fn answered(
    State(st): State<Shared>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = req.uri().path().to_owned();
    let resp = next.run(req).await;
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let mut live = lock(&st);
    if let Some(f) = &mut live.record {
        let line = json!({"kind": "answered", "path": path, "status": resp.status().as_u16(), "unix": unix});
        let _ = f.write_all(format!("{line}\n").as_bytes());
    }
    resp
}

/// A random number for nonces: the standard library's per-process random hash keys.
fn random_u64() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

mod serve;
pub use serve::serve;

#[cfg(test)]
mod tests;
