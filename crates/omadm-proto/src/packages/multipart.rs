//! The multipart Package#3 (TS App. F, RFC 7578): GET results riding beside the JSON
//! Package#3, each part named by its command's index.

use super::{P3_TYPE, Package3, decode_package3, encode_package3};
use crate::DecodeError;

/// One GET result riding in a multipart Package#3: the index of its command, the media
/// type and the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Zero-based position of the GET in the Package#2 (the part's `name`).
    pub index: usize,
    /// Media type (`application/dmmo+json`, or a leaf's own MIME type).
    pub content_type: String,
    /// The data.
    pub body: Vec<u8>,
}

/// True when `s` is a media type (RFC 6838 §4.2: `type/subtype` of restricted names,
/// then optional `; name=value` parameters of the same characters, or a quoted value of
/// visible ASCII): nothing that could end a header line or a multipart part.
pub fn is_media_type(s: &str) -> bool {
    fn restricted(name: &str) -> bool {
        let mut chars = name.chars();
        chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
            && name.len() <= 127
            && chars.all(|c| c.is_ascii_alphanumeric() || "!#$&-^_.+".contains(c))
    }
    let mut pieces = s.split(';');
    let essence = pieces.next().unwrap_or_default();
    let type_ok = essence
        .split_once('/')
        .is_some_and(|(t, sub)| restricted(t) && restricted(sub));
    type_ok
        && pieces.all(|param| {
            param
                .trim_start_matches(' ')
                .split_once('=')
                .is_some_and(|(name, value)| {
                    let quoted = value.len() >= 2
                        && value.starts_with('"')
                        && value.ends_with('"')
                        && value[1..value.len() - 1]
                            .chars()
                            .all(|c| (c.is_ascii_graphic() || c == ' ') && c != '"' && c != '\\');
                    restricted(name) && (restricted(value) || quoted)
                })
        })
}

/// A part the multipart encoder refuses: its content type would break the framing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("part {index}: content type {content_type:?} is not a media type")]
pub struct BadPart {
    /// The part's index.
    pub index: usize,
    /// Its content type.
    pub content_type: String,
}

/// A Package#3 ready to POST: its media type and body. Without parts it is plain JSON;
/// with parts, `multipart/form-data` (TS App. F, RFC 7578). A part whose content type is
/// not a media type ([`is_media_type`]: a CR, LF or quote there would end its header or
/// its part) is refused.
pub fn encode_package3_http(p: &Package3, parts: &[Part]) -> Result<(String, Vec<u8>), BadPart> {
    let json = encode_package3(p);
    if parts.is_empty() {
        return Ok((P3_TYPE.to_owned(), json));
    }
    if let Some(bad) = parts.iter().find(|p| !is_media_type(&p.content_type)) {
        return Err(BadPart {
            index: bad.index,
            content_type: bad.content_type.clone(),
        });
    }
    // A boundary that occurs in no part: a hash of the content, lengthened until unique.
    let mut h = sha2::Sha256::default();
    sha2::Digest::update(&mut h, &json);
    for part in parts {
        sha2::Digest::update(&mut h, &part.body);
    }
    let seed = hex::encode(sha2::Digest::finalize(h));
    let mut boundary = format!("omadm-{}", &seed[..24]);
    while parts.iter().any(|p| {
        contains(&p.body, boundary.as_bytes()) || p.content_type.contains(boundary.as_str())
    }) || contains(&json, boundary.as_bytes())
    {
        boundary.push_str(&seed[..8]);
    }
    let mut body = Vec::new();
    let mut add = |disposition: String, ct: &str, data: &[u8]| {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: {disposition}\r\nContent-Type: {ct}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    };
    add("form-data".into(), P3_TYPE, &json);
    for part in parts {
        add(
            format!("form-data; name=\"{}\"", part.index),
            &part.content_type,
            &part.body,
        );
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    Ok((format!("multipart/form-data; boundary={boundary}"), body))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Splits a multipart Package#3 (servers, tests) into its JSON and its parts.
///
/// The GET results of TS App. F: a DevID leaf as `text/plain` for the command at index 0:
///
/// ```
/// use omadm_proto::packages::decode_package3_http;
///
/// let body = "--simple_boundary\r\nContent-Disposition: form-data\r\n\
/// Content-Type: application/vnd.oma.dm.response+json\r\n\r\n{\"Status\": [200]}\r\n\
/// --simple_boundary\r\nContent-Disposition: form-data; name=\"0\"\r\n\
/// Content-Type: text/plain\r\n\r\nIMEI:493005100592800\r\n--simple_boundary--\r\n";
/// let (p3, parts) =
///     decode_package3_http("multipart/form-data; boundary=simple_boundary", body.as_bytes())
///         .unwrap();
/// assert_eq!(p3.status[0].sc, 200);
/// assert_eq!((parts[0].index, parts[0].body.as_slice()), (0, &b"IMEI:493005100592800"[..]));
/// ```
pub fn decode_package3_http(
    content_type: &str,
    body: &[u8],
) -> Result<(Package3, Vec<Part>), DecodeError> {
    let ct = content_type.split(';').next().unwrap_or_default().trim();
    if ct.eq_ignore_ascii_case(P3_TYPE) {
        return Ok((decode_package3(body)?, Vec::new()));
    }
    if !ct.eq_ignore_ascii_case("multipart/form-data") {
        return Err(DecodeError::new(
            format!("unexpected content type {ct}"),
            "Content-Type",
        ));
    }
    let boundary = content_type
        .split(';')
        .filter_map(|p| p.trim().strip_prefix("boundary="))
        .next()
        .map(|b| b.trim_matches('"'))
        .ok_or_else(|| DecodeError::new("no boundary", "Content-Type"))?;
    let delim = format!("--{boundary}");
    let mut chunks = Vec::new();
    let mut rest = body;
    while let Some(i) = find(rest, delim.as_bytes()) {
        chunks.push(&rest[..i]);
        rest = &rest[i + delim.len()..];
    }
    // chunks[0] is the preamble; each later chunk is "\r\nheaders\r\n\r\nbody\r\n", the
    // last delimiter being followed by "--".
    let mut json = None;
    let mut parts = Vec::new();
    for chunk in chunks.into_iter().skip(1) {
        let chunk = chunk.strip_prefix(b"\r\n").unwrap_or(chunk);
        let (head, data) = match find(chunk, b"\r\n\r\n") {
            Some(i) => (&chunk[..i], &chunk[i + 4..]),
            None => return Err(DecodeError::new("part without headers", "multipart")),
        };
        let data = data.strip_suffix(b"\r\n").unwrap_or(data);
        let head = String::from_utf8_lossy(head);
        let header = |name: &str| {
            head.lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim().to_owned())
        };
        let name = header("Content-Disposition").and_then(|d| {
            d.split(';').find_map(|p| {
                p.trim()
                    .strip_prefix("name=")
                    .map(|n| n.trim_matches('"').to_owned())
            })
        });
        let content_type = header("Content-Type").unwrap_or_else(|| "text/plain".into());
        match name {
            None if json.is_none() => json = Some(decode_package3(data)?),
            Some(n) => parts.push(Part {
                index: n.parse().map_err(|_| {
                    DecodeError::new(format!("part name {n:?} is not an index"), "multipart")
                })?,
                content_type,
                body: data.to_vec(),
            }),
            None => return Err(DecodeError::new("two unnamed parts", "multipart")),
        }
    }
    Ok((
        json.ok_or_else(|| DecodeError::new("no Package#3 part", "multipart"))?,
        parts,
    ))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
