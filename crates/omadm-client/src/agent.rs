//! What a SHOW agent needs besides the proxies: the errors it answers `Show` with, and the
//! checks every agent makes before it opens a page (the call came from omadmd; the URL is
//! one a browser may be given).

use crate::proxies::AgentManagerProxy;

/// Errors an agent answers `Show` with.
#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.omadm.Client1.Agent.Error")]
pub enum AgentError {
    /// A D-Bus failure.
    #[zbus(error)]
    ZBus(zbus::Error),
    /// The user declined to open the page (the server gets 507).
    Declined(String),
    /// The call did not come from omadmd, or the URL is not one an agent opens.
    Refused(String),
}

/// True when a call to an agent came from the owner of `org.omadm.Client1`: anyone on the
/// bus can call an agent's `Show`, and only the daemon's requests are the server's.
pub async fn from_daemon(conn: &zbus::Connection, header: &zbus::message::Header<'_>) -> bool {
    let Some(sender) = header.sender() else {
        return false;
    };
    let Ok(dbus) = zbus::fdo::DBusProxy::new(conn).await else {
        return false;
    };
    let Ok(name) = zbus::names::BusName::try_from(crate::BUS_NAME) else {
        return false;
    };
    dbus.get_name_owner(name)
        .await
        .is_ok_and(|owner| owner.as_str() == sender.as_str())
}

/// Whether an agent opens `url`: https, or plain http when the daemon allows it
/// (`sessions.allow-http-show`). Anything else (file:, javascript:, a local program's
/// scheme) is never handed to a browser.
pub fn show_url_allowed(url: &str, allow_http: bool) -> Result<(), String> {
    match url::Url::parse(url) {
        Ok(u) if u.scheme() == "https" && u.has_host() => Ok(()),
        Ok(u) if u.scheme() == "http" && u.has_host() && allow_http => Ok(()),
        Ok(u) => Err(format!("{} URLs are not opened", u.scheme())),
        Err(e) => Err(format!("not a URL: {e}")),
    }
}

/// Checks a `Show` call to an agent: from the daemon, for a URL an agent opens.
pub async fn check_show(
    conn: &zbus::Connection,
    header: &zbus::message::Header<'_>,
    url: &str,
) -> Result<(), AgentError> {
    if !from_daemon(conn, header).await {
        let who = header.sender().map(|s| s.to_string()).unwrap_or_default();
        return Err(AgentError::Refused(format!(
            "only omadmd may ask for a page to be shown ({who} asked)"
        )));
    }
    let allow_http = match AgentManagerProxy::new(conn).await {
        Ok(m) => m.allow_http_show().await.unwrap_or(false),
        Err(_) => false,
    };
    show_url_allowed(url, allow_http).map_err(AgentError::Refused)
}

#[cfg(test)]
mod tests {
    #[test]
    fn agents_open_https_and_http_only_when_allowed() {
        let table = [
            ("https://ui.example/consent?uiid=1", false, true),
            ("http://ui.example/", false, false),
            ("http://ui.example/", true, true),
            ("file:///etc/shadow", true, false),
            ("javascript:alert(1)", true, false),
            ("x-scheme-handler:run", true, false),
            ("https:", true, false),
            ("not a url", true, false),
        ];
        for (url, allow_http, ok) in table {
            assert_eq!(
                super::show_url_allowed(url, allow_http).is_ok(),
                ok,
                "{url} {allow_http}"
            );
        }
    }
}
