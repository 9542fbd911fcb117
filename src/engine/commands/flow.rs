//! SHOW, CONT and END (TS §5.3.7–9): the commands that steer the session and the user's browser.

use super::*;

impl<P: Ports> Ctx<'_, '_, P> {
    // ---- SHOW (TS §5.3.7) ----

    pub(super) async fn show(&self, server_uri: &str) -> Res {
        let url = self.server_url(server_uri)?;
        if url.scheme() != "https" && !self.session.allow_http_show {
            tracing::info!(url = %uri::redact(url.as_str()), "SHOW refused: not https");
            return Err(Fail(sc::BAD_REQUEST));
        }
        // The client does not wait for the user (TS §5.3.7); the agent only launches.
        Ok(Reply::code(
            match self
                .engine
                .ports
                .show(url.as_str(), self.acl.server_id())
                .await
            {
                Shown::Launched => sc::OK,
                Shown::Declined => sc::USER_REJECTED,
                Shown::NoAgent => sc::NOT_IMPLEMENTED,
                Shown::Failed(why) => {
                    tracing::warn!(why = %why, "SHOW failed");
                    sc::INTERNAL_ERROR
                }
            },
        ))
    }

    // ---- CONT (TS §5.3.8) ----

    pub(super) async fn cont(&self, server_uri: &str) -> Res {
        let url = self.server_url(server_uri)?;
        self.reachable(&url).await?;
        // Never move a session from https to http.
        if url.scheme() == "http" && self.session.target.starts_with("https:") {
            tracing::warn!(url = %uri::redact(url.as_str()), "CONT to http refused in an https session");
            return Err(Fail(sc::BAD_REQUEST));
        }
        Ok(Reply {
            cont: Some(url.into()),
            ..Reply::code(sc::OK)
        })
    }
}
