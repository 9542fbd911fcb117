//! The script the server plays, as its JSON is read: the sessions and their packages,
//! outages, HTTP authentication, and what the repository holds (docs/testserver.md).

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value as Json;

/// A script: the sessions to play, and what the repository holds at start.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    /// Sessions, played in order, one per Package#1.
    #[serde(default)]
    pub sessions: Vec<ScriptSession>,
    /// Repository content: path under the server (e.g. `/repo/new_mo`) → resource.
    #[serde(default)]
    pub repository: HashMap<String, Resource>,
    /// Require HTTP authentication on `/dm` and `/repo/`.
    #[serde(default)]
    pub auth: Option<AuthSpec>,
    /// Where the sessions are played (`/dm`): a Package#1 to another path (a ServerURI an
    /// EXEC result goes to, whose session count depends on when results come) is recorded
    /// and answered END without taking a session. Unset, every Package#1 plays the next.
    #[serde(default)]
    pub played_at: Option<String>,
    /// A fleet script: every device (by its `OMADM-DevID`) plays the sessions from the
    /// first, each its own way through them. Unset, the sessions are played once, in
    /// order, by whichever device comes.
    #[serde(default)]
    pub fleet: bool,
    /// Times the server is down: every DM request (`/dm`, `/dm/...`) in a window is
    /// answered with its status and `Retry-After`, recorded (`"kind": "outage"`) and not
    /// played. The repository stays up.
    #[serde(default)]
    pub outages: Vec<Outage>,
}

/// A window, counted from the server's start, in which DM requests are refused.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outage {
    /// Seconds after the start at which it begins.
    pub after_secs: f64,
    /// How long it lasts, in seconds.
    pub for_secs: f64,
    /// The answer (503 unless given).
    #[serde(default = "service_unavailable")]
    pub http_status: u16,
    /// The `Retry-After` header to send, if any.
    #[serde(default)]
    pub retry_after: Option<String>,
}

fn service_unavailable() -> u16 {
    503
}

impl Outage {
    pub(crate) fn covers(&self, secs: f64) -> bool {
        secs >= self.after_secs && secs < self.after_secs + self.for_secs
    }
}

/// HTTP authentication the server demands.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSpec {
    /// `basic` or `digest`.
    pub scheme: String,
    /// User name.
    pub user: String,
    /// Password.
    pub password: String,
    /// Send this `WWW-Authenticate` value, as bytes, instead of the scheme's own (fault
    /// injection: a malformed or non-ASCII challenge).
    #[serde(default)]
    pub challenge: Option<String>,
}

/// One scripted session.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptSession {
    /// A name for the records.
    #[serde(default)]
    pub name: Option<String>,
    /// The Package#2s to send, in order.
    pub packages: Vec<ScriptPackage>,
}

/// One scripted answer.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptPackage {
    /// The commands (`{base}` in a string becomes the server's base URL).
    #[serde(rename = "CMD", default)]
    pub cmd: Option<Json>,
    /// Status codes the client's previous package must carry (checked and recorded).
    #[serde(default)]
    pub expect: Option<Vec<u16>>,
    /// Answer with this HTTP status instead (fault injection).
    #[serde(default)]
    pub http_status: Option<u16>,
    /// Answer with this body as given (fault injection).
    #[serde(default)]
    pub raw: Option<String>,
    /// Content type of the answer (fault injection; default the Package#2 type).
    #[serde(default)]
    pub content_type: Option<String>,
    /// Wait this long before answering (fault injection).
    #[serde(default)]
    pub delay_ms: Option<u64>,
    /// Send the body one byte at a time, this long apart (fault injection: a slow link or
    /// a server holding the client).
    #[serde(default)]
    pub drip_ms: Option<u64>,
    /// A `Retry-After` header to send with the answer (with `http_status` 503 or 429).
    #[serde(default)]
    pub retry_after: Option<String>,
    /// `OMADM-Accept` to send with the answer.
    #[serde(default)]
    pub omadm_accept: Option<String>,
    /// Answer with a 307 redirect to this URL (`{base}` allowed); the package stays next.
    #[serde(default)]
    pub redirect: Option<String>,
}

/// A repository resource.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    /// Its media type.
    #[serde(default)]
    pub content_type: String,
    /// The body: a string as is, any other JSON serialized.
    #[serde(default)]
    pub body: Json,
    /// Answer with a 307 redirect to this URL (`{base}` allowed) instead.
    #[serde(default)]
    pub redirect: Option<String>,
    /// Answer with this HTTP status and no body instead (fault injection, e.g. 503).
    #[serde(default)]
    pub http_status: Option<u16>,
    /// A `Retry-After` header to send with `http_status`.
    #[serde(default)]
    pub retry_after: Option<String>,
    /// Serve this file's bytes as the body (a firmware cabinet, a package), read when
    /// requested.
    #[serde(default)]
    pub file: Option<std::path::PathBuf>,
}

impl Resource {
    /// The body served: the file's bytes, or the body with `{base}` in a string body
    /// replaced by the server's base URL (a PkgURL pointing into this repository).
    pub(crate) fn bytes(&self, base: &str) -> std::io::Result<Vec<u8>> {
        if let Some(f) = &self.file {
            return std::fs::read(f);
        }
        Ok(match &self.body {
            Json::String(s) => s.replace("{base}", base).into_bytes(),
            other => other.to_string().into_bytes(),
        })
    }
}
