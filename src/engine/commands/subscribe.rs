//! DEFAULT, SUB and UNSUB (TS §5.3.10–12): registrations a server keeps on the device, bounded per server.

use super::*;

impl<P: Ports> Ctx<'_, '_, P> {
    /// Subscriptions and DEFAULT registrations are rows a server adds; each change may
    /// fan out to every subscription. At most `limits.max-server-registrations` per server;
    /// over it: 503 (the TS's only code for "not now" outside HGET), logged.
    fn check_registrations(&self, replacing: bool) -> Result<(), Fail> {
        let max = self.engine.limits.max_server_registrations;
        if !replacing && self.store().registrations(self.acl.server_id())? >= max {
            tracing::warn!(server = %self.acl.server_id(), max,
                "SUB/DEFAULT refused: the server holds as many registrations as allowed");
            return Err(Fail(sc::SERVICE_UNAVAILABLE));
        }
        Ok(())
    }

    // ---- DEFAULT (TS §5.3.10) ----

    pub(super) async fn default(&self, server_uri: &str, moid: &str) -> Res {
        if moid.is_empty() || moid.contains('/') {
            return Err(Fail(sc::BAD_REQUEST));
        }
        // Refused now, as SUB's is, when it leads into the device's network (issue 27):
        // not stored to fail only when a local application asks for the configuration.
        let url = self.server_url(server_uri)?;
        self.reachable(&url).await?;
        if !self.acl.moid_permitted(moid) {
            return Err(Fail(sc::FORBIDDEN));
        }
        let mine = self
            .store()
            .default_source(canonical_moid(moid))?
            .is_some_and(|(s, _)| s == self.acl.server_id());
        self.check_registrations(mine)?;
        self.commit(
            vec![TreeOp::SetDefault {
                moid: canonical_moid(moid).to_owned(),
                server_id: self.acl.server_id().to_owned(),
                server_uri: server_uri.to_owned(),
            }],
            &[],
        )?;
        Ok(Reply::code(sc::OK))
    }

    // ---- SUB / UNSUB (TS §5.3.11–12) ----

    pub(super) async fn sub(&self, server_uri: &str, client_uri: &str) -> Res {
        let url = self.server_url(server_uri)?;
        self.reachable(&url).await?;
        let u = self.parse(client_uri)?;
        for loc in self.resolve(&u)? {
            self.read_subtree(&loc, None)?;
        }
        let me = self.acl.server_id();
        let again = self
            .store()
            .subscriptions()?
            .iter()
            .any(|s| s.server_id == me && s.client_uri == client_uri);
        self.check_registrations(again)?;
        self.commit(
            vec![TreeOp::Subscribe(Subscription {
                server_id: self.acl.server_id().to_owned(),
                client_uri: client_uri.to_owned(),
                server_uri: url.into(),
            })],
            &[],
        )?;
        Ok(Reply::code(sc::OK))
    }

    pub(super) fn unsub(&self, client_uri: &str) -> Res {
        let me = self.acl.server_id();
        if !self
            .store()
            .subscriptions()?
            .iter()
            .any(|s| s.server_id == me && s.client_uri == client_uri)
        {
            return Err(Fail(sc::NOT_FOUND));
        }
        self.commit(
            vec![TreeOp::Unsubscribe {
                server_id: me.to_owned(),
                client_uri: client_uri.to_owned(),
            }],
            &[],
        )?;
        Ok(Reply::code(sc::OK))
    }
}
