//! ClientURI (TS §6.1.1) and ServerURI (TS §6.2): parsing and `[Name]` substitution. Pure:
//! resolving a ClientURI against the tree is the engine's job.
//!
//! ```text
//! ClientURI        = MOID "/" mo-inst path-from-moroot [ "?" query ]
//! mo-inst          = MIID / x-name / "" / "*"
//! path-from-moroot = "/" / 1*("/" node-name)
//! node-name        = real-name / x-name / "*"
//! real-name        = 1*unreserved
//! x-name           = "(" ALPHA ")"
//! ```
//!
//! One extension: a node name in the path may hold characters outside `unreserved`,
//! percent-encoded (`:` as `%3A`), for the DACMO's nodes named after MOIDs (TS §12.3);
//! `unreserved` characters, `/` and control characters are never taken escaped.

use std::fmt;

/// Why a ClientURI was refused; the engine answers 400 (TS App. C).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ClientURI {uri:?}: {why}")]
pub struct UriError {
    /// The ClientURI (shortened).
    pub uri: String,
    /// What is wrong.
    pub why: String,
}

/// How the instance is chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstanceSel {
    /// By MIID.
    Miid(String),
    /// By an x-name resolved with `nv` fields.
    XName(char),
    /// The only instance of the MOID.
    Only,
    /// Every instance.
    All,
}

/// One segment of the path from the instance root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// A real name.
    Name(String),
    /// An x-name resolved with `nv` fields.
    XName(char),
    /// Every node at this level.
    All,
}

/// One `nv` field: the leaf at `path` below the node the x-name stands for must hold
/// `value` (TS §6.1.1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeValue {
    /// The x-name.
    pub xname: char,
    /// Real names from the x-name's node down to the leaf.
    pub path: Vec<String>,
    /// The value to match (percent-decoded).
    pub value: String,
}

/// A parsed ClientURI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientUri {
    /// MOID.
    pub moid: String,
    /// Instance selector.
    pub instance: InstanceSel,
    /// Path below the instance root (empty for the root).
    pub path: Vec<Segment>,
    /// `lv`: levels of children to include.
    pub level: Option<u32>,
    /// `cv`: the server's cache validator.
    pub cv: Option<String>,
    /// `nv` fields.
    pub nv: Vec<NodeValue>,
}

/// The most bytes a ClientURI may have.
pub const MAX_CLIENT_URI: usize = 4096;

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// True for a `real-name`: `1*unreserved`, and not `.` or `..`, which RFC 3986 would
/// read as dot-segments.
pub fn is_real_name(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && s.bytes().all(is_unreserved)
}

/// A path segment's node name: a `real-name`, or a name holding other characters, each
/// written percent-encoded (RFC 3986 §2.1). The TS names DACMO nodes after MOIDs (TS §12.3:
/// "The name of this node MUST be the MOID"), which `1*unreserved` cannot spell. Only what
/// is not `unreserved` may be escaped, and never `/` or a control character, so each name
/// has one spelling (up to the case of the hex digits) and cannot leave its segment. See
/// docs/decisions.md, "Node names in the store".
fn segment_name(s: &str) -> Option<String> {
    if is_real_name(s) {
        return Some(s.to_owned());
    }
    if !s.contains('%') {
        // Not unreserved, or a dot-segment.
        return None;
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let c = u8::from_str_radix(s.get(i + 1..i + 3)?, 16).ok()?;
            if is_unreserved(c) || c == b'/' || c.is_ascii_control() {
                return None;
            }
            out.push(c);
            i += 3;
        } else if is_unreserved(b[i]) {
            out.push(b[i]);
            i += 1;
        } else {
            return None;
        }
    }
    String::from_utf8(out).ok()
}

/// A node name as a ClientURI path segment: what is not `unreserved` percent-encoded
/// (a ClientURI read with [`ClientUri::parse`] gives the name back).
pub fn segment(name: &str) -> std::borrow::Cow<'_, str> {
    if is_real_name(name) {
        return name.into();
    }
    let mut out = String::with_capacity(name.len() + 8);
    for b in name.bytes() {
        if is_unreserved(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out.into()
}

fn xname(s: &str) -> Option<char> {
    let b = s.as_bytes();
    (b.len() == 3 && b[0] == b'(' && b[2] == b')' && b[1].is_ascii_alphabetic())
        .then(|| b[1] as char)
}

/// Percent-decodes a query value; `None` on a bad escape or non-UTF-8 result.
fn percent_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

impl ClientUri {
    /// Parses a ClientURI. MOIDs written `oma:mo:…` without `urn:` (TS §14 #9) are read as
    /// `urn:oma:mo:…`.
    pub fn parse(uri: &str) -> Result<ClientUri, UriError> {
        let err = |why: &str| UriError {
            uri: uri.chars().take(120).collect(),
            why: why.to_owned(),
        };
        if uri.len() > MAX_CLIENT_URI {
            return Err(err("longer than 4096 bytes"));
        }
        let (base, query) = match uri.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (uri, None),
        };
        let (moid, rest) = base
            .split_once('/')
            .ok_or_else(|| err("no instance part"))?;
        if moid.is_empty() || !moid.bytes().all(|b| b.is_ascii_graphic() && b != b'#') {
            return Err(err("bad MOID"));
        }
        let moid = if moid.starts_with("oma:") {
            format!("urn:{moid}")
        } else {
            moid.to_owned()
        };
        let (inst, path) = rest
            .split_once('/')
            .ok_or_else(|| err("no path after the instance (the root is \"/\")"))?;
        let mut xnames = Vec::new();
        let mut note_x = |c: char| -> Result<(), UriError> {
            if xnames.contains(&c) {
                return Err(err("an x-name is used twice"));
            }
            xnames.push(c);
            Ok(())
        };
        let instance = match inst {
            "" => InstanceSel::Only,
            "*" => InstanceSel::All,
            s => match xname(s) {
                Some(c) => {
                    note_x(c)?;
                    InstanceSel::XName(c)
                }
                None if is_real_name(s) => InstanceSel::Miid(s.to_owned()),
                None => return Err(err("bad instance name")),
            },
        };
        // A single trailing "/" after a node name is tolerated; anything else empty is not.
        let path = match path.strip_suffix('/') {
            Some(p) if !p.is_empty() => p,
            Some(_) => return Err(err("empty path segment")),
            None => path,
        };
        let mut segments = Vec::new();
        if !path.is_empty() {
            for seg in path.split('/') {
                segments.push(match seg {
                    "" => return Err(err("empty path segment")),
                    "*" => Segment::All,
                    s => match xname(s) {
                        Some(c) => {
                            note_x(c)?;
                            Segment::XName(c)
                        }
                        None => match segment_name(s) {
                            Some(name) => Segment::Name(name),
                            None => return Err(err("bad node name (names are 1*unreserved, other characters percent-encoded; no escaped unreserved characters, '/' or controls; no dot-segments)")),
                        },
                    },
                });
            }
        }
        let (mut level, mut cv, mut nv) = (None, None, Vec::new());
        for field in query
            .into_iter()
            .flat_map(|q| q.split('&'))
            .filter(|f| !f.is_empty())
        {
            let (name, value) = field.split_once('=').unwrap_or((field, ""));
            match name {
                "lv" => {
                    let n: u32 = value
                        .parse()
                        .map_err(|_| err("lv must be a positive integer"))?;
                    if n == 0 || level.is_some() {
                        return Err(err("lv must be a positive integer, given once"));
                    }
                    level = Some(n);
                }
                "cv" => {
                    if cv.is_some() {
                        return Err(err("cv given twice"));
                    }
                    cv = Some(percent_decode(value).ok_or_else(|| err("bad escape in cv"))?);
                }
                "nv" => {
                    let value = percent_decode(value).ok_or_else(|| err("bad escape in nv"))?;
                    // Node names cannot hold ':', so the first one ends the path.
                    let (p, v) = value
                        .split_once(':')
                        .ok_or_else(|| err("nv needs <path>:<value>"))?;
                    let mut parts = p.split('/');
                    let x = parts
                        .next()
                        .and_then(xname)
                        .ok_or_else(|| err("nv path must start with an x-name"))?;
                    let names: Vec<String> = parts.map(str::to_owned).collect();
                    if names.is_empty() || !names.iter().all(|n| is_real_name(n)) {
                        return Err(err("nv path must name a leaf below its x-name"));
                    }
                    nv.push(NodeValue {
                        xname: x,
                        path: names,
                        value: v.to_owned(),
                    });
                }
                // Unknown fields MUST be ignored (TS §6.1.1.3).
                _ => {}
            }
        }
        if let Some(stray) = nv.iter().find(|f| !xnames.contains(&f.xname)) {
            return Err(err(&format!(
                "nv refers to ({}), which the path does not use",
                stray.xname
            )));
        }
        Ok(ClientUri {
            moid,
            instance,
            path: segments,
            level,
            cv,
            nv,
        })
    }

    /// True when the URI may address more than one node (a wildcard).
    pub fn has_wildcard(&self) -> bool {
        self.instance == InstanceSel::All || self.path.contains(&Segment::All)
    }

    /// The `nv` fields of one x-name.
    pub fn nv_for(&self, x: char) -> impl Iterator<Item = &NodeValue> {
        self.nv.iter().filter(move |f| f.xname == x)
    }
}

impl fmt::Display for ClientUri {
    /// The address without its query (the form used in `URI` lists and alerts).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/", self.moid)?;
        match &self.instance {
            InstanceSel::Miid(m) => f.write_str(m)?,
            InstanceSel::XName(c) => write!(f, "({c})")?,
            InstanceSel::Only => {}
            InstanceSel::All => f.write_str("*")?,
        }
        if self.path.is_empty() {
            return f.write_str("/");
        }
        for s in &self.path {
            match s {
                Segment::Name(n) => write!(f, "/{}", segment(n))?,
                Segment::XName(c) => write!(f, "/({c})")?,
                Segment::All => f.write_str("/*")?,
            }
        }
        Ok(())
    }
}

/// The concrete ClientURI of a node: `MOID/MIID/` for a root, `MOID/MIID/a/b` below it
/// (what is not `unreserved` in a node name percent-encoded: `:` as `%3A`).
pub fn concrete(moid: &str, miid: &str, path: &str) -> String {
    if path.is_empty() {
        format!("{moid}/{miid}/")
    } else if !path.split('/').all(is_real_name) {
        let path: Vec<_> = path.split('/').map(segment).collect();
        format!("{moid}/{miid}/{}", path.join("/"))
    } else {
        format!("{moid}/{miid}/{path}")
    }
}

/// Values for ServerURI substitution (TS §6.2); `None` becomes `-1`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerUriValues {
    /// DevInfo DevID.
    pub dev_id: Option<String>,
    /// Home MNC.
    pub mnc: Option<String>,
    /// Home MCC.
    pub mcc: Option<String>,
    /// Current MNC.
    pub cmnc: Option<String>,
    /// Current MCC.
    pub cmcc: Option<String>,
    /// Service provider name.
    pub sp_name: Option<String>,
}

/// Percent-encodes everything but `unreserved`.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if is_unreserved(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Substitutes `[DevID]`, `[MNC]`, `[MCC]`, `[CMNC]`, `[CMCC]` and `[SPName]` in a
/// ServerURI, URI-encoding each value; a value the device lacks becomes `-1` (TS §6.2).
/// Other bracketed text (an IPv6 literal host, say) is left alone.
pub fn substitute(server_uri: &str, v: &ServerUriValues) -> String {
    let names: [(&str, &Option<String>); 6] = [
        ("[DevID]", &v.dev_id),
        ("[MNC]", &v.mnc),
        ("[MCC]", &v.mcc),
        ("[CMNC]", &v.cmnc),
        ("[CMCC]", &v.cmcc),
        ("[SPName]", &v.sp_name),
    ];
    let mut out = String::with_capacity(server_uri.len());
    let mut rest = server_uri;
    'scan: while let Some(i) = rest.find('[') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        for (name, value) in names {
            if let Some(after) = rest.strip_prefix(name) {
                out.push_str(
                    &value
                        .as_deref()
                        .map_or_else(|| "-1".to_owned(), percent_encode),
                );
                rest = after;
                continue 'scan;
            }
        }
        out.push('[');
        rest = &rest[1..];
    }
    out.push_str(rest);
    out
}

/// A URL as it may be shown outside the daemon (logs, the history, D-Bus): scheme, host,
/// port and path. User information and the query, where servers put tokens and
/// credentials, are dropped; so is a fragment.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.has_host() => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        }
        // Not a URL with a host: nothing after a '?' or '#', nothing before an '@'.
        _ => {
            let head = url.split(['?', '#']).next().unwrap_or_default();
            head.rsplit('@').next().unwrap_or_default().to_owned()
        }
    }
}

#[cfg(test)]
mod tests;
