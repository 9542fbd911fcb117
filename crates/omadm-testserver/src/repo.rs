//! The Data Repository (HGET/HPUT/HPOST targets, TS §5.3.1–5.3.3) and the Web Server
//! Component a SHOW points a browser at (TS §5.3.12).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::{Value as Json, json};

use crate::{Resource, Shared, body_json, challenge, header_map, lock};

pub(crate) async fn repo_get(State(st): State<Shared>, uri: Uri, headers: HeaderMap) -> Response {
    if let Some(r) = challenge(&st, "GET", &uri, &headers, &[]) {
        return r;
    }
    let mut live = lock(&st);
    let path = uri.path().to_owned();
    let found = live.repo.get(&path).cloned();
    live.log(
        json!({"kind": "repo-get", "path": path, "query": uri.query(), "headers": header_map(&headers), "found": found.is_some()}),
        format!("repository GET {}{}", uri, if found.is_some() { "" } else { " (not found)" }),
    );
    match found {
        Some(Resource {
            http_status: Some(code),
            retry_after,
            ..
        }) => {
            let mut resp = StatusCode::from_u16(code)
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
                .into_response();
            if let Some(v) = retry_after.and_then(|a| HeaderValue::from_str(&a).ok()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            resp
        }
        Some(Resource {
            redirect: Some(to), ..
        }) => {
            let to = to.replace("{base}", &live.base);
            let mut resp = StatusCode::TEMPORARY_REDIRECT.into_response();
            if let Ok(v) = HeaderValue::from_str(&to) {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            resp
        }
        Some(r) => match r.bytes(&live.base) {
            Ok(bytes) => ([(header::CONTENT_TYPE, r.content_type.clone())], bytes).into_response(),
            Err(e) => {
                live.log(
                    json!({"kind": "repo-error", "path": path, "error": e.to_string()}),
                    format!("repository file for {path} cannot be read: {e}"),
                );
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        },
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn repo_store(
    st: Shared,
    method: &str,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = challenge(&st, &method.to_uppercase(), &uri, &headers, &body) {
        return r;
    }
    let mut live = lock(&st);
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_owned();
    live.log(
        json!({"kind": format!("repo-{method}"), "path": uri.path(), "query": uri.query(), "headers": header_map(&headers), "body": body_json(&body)}),
        format!("repository {} {} ({ct}): {}", method.to_uppercase(), uri, String::from_utf8_lossy(&body).chars().take(160).collect::<String>()),
    );
    // Stored so a later HGET of the same path returns it.
    let body = match serde_json::from_slice::<Json>(&body) {
        Ok(j) if ct.contains("json") => j,
        _ => json!(String::from_utf8_lossy(&body)),
    };
    live.repo.insert(
        uri.path().to_owned(),
        Resource {
            content_type: ct,
            body,
            redirect: None,
            http_status: None,
            retry_after: None,
            file: None,
        },
    );
    StatusCode::OK.into_response()
}

pub(crate) async fn repo_put(
    State(st): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    repo_store(st, "put", uri, headers, body).await
}

pub(crate) async fn repo_post(
    State(st): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    repo_store(st, "post", uri, headers, body).await
}

/// The consent page. It names the device the SHOW URL says it is for (`device=`, the
/// client's `[DevID]` substituted in, TS §5.5), so a test in a real browser sees what the
/// user would; the form posts back to the same URL.
const UI_PAGE_HEAD: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Device management request</title></head>
<body><h1>Your device manager asks</h1>
<p id="device">Device: "#;
const UI_PAGE_TAIL: &str = r#"</p>
<form method="post"><p>Allow the update to install tonight?</p>
<button id="allow" name="answer" value="yes">Allow</button> <button id="deny" name="answer" value="no">Not now</button></form>
</body></html>"#;

pub(crate) async fn ui(State(st): State<Shared>, uri: Uri) -> Html<String> {
    lock(&st).log(
        json!({"kind": "ui-view", "query": uri.query()}),
        format!("SHOW page viewed: {uri}"),
    );
    let device = named_device(uri.query().unwrap_or(""));
    Html(format!(
        "{UI_PAGE_HEAD}{}{UI_PAGE_TAIL}",
        html_escaped(&device)
    ))
}

/// The `device=` query parameter, decoded (the client percent-encodes what it
/// substitutes, TS §5.5).
fn named_device(query: &str) -> String {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "device")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| "(not named)".to_owned())
}

/// Text made safe to put between HTML tags.
fn html_escaped(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub(crate) async fn ui_submit(
    State(st): State<Shared>,
    uri: Uri,
    body: Bytes,
) -> Html<&'static str> {
    let answer = String::from_utf8_lossy(&body).into_owned();
    lock(&st).log(
        json!({"kind": "ui-submit", "query": uri.query(), "form": answer}),
        format!("SHOW page answered: {answer}"),
    );
    Html("<!doctype html><p>Thank you. You may close this page.</p>")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_page_names_the_device_safely() {
        for (query, shown) in [
            ("device=IMEI%3A4932", "IMEI:4932"),
            ("uiid=1&device=a+b", "a b"),
            ("device=%3Cscript%3E", "&lt;script&gt;"),
            ("device=%zz", "%zz"),
            ("uiid=1", "(not named)"),
            ("device=%E2%82%AC", "\u{20ac}"),
        ] {
            assert_eq!(
                super::html_escaped(&super::named_device(query)),
                shown,
                "{query}"
            );
        }
    }
}
