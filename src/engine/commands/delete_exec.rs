//! DELETE and EXEC (TS §5.3.4–5, §5.4.1): remove a subtree; carry out a node through its handler, at once or later as a Generic Alert.

use super::*;

/// The members of a queued EXEC result besides its URIs (status, alert type, data), as
/// stored for the daemon's own `ResultCode` alert: 155 bytes, rounded up.
const RESULT_ROW_BYTES: usize = 160;

impl<P: Ports> Ctx<'_, '_, P> {
    // ---- DELETE (TS §5.3.4) ----

    pub(super) fn delete(&self, client_uri: &str) -> Res {
        let loc = self.single(&self.parse(client_uri)?)?;
        let nodes = self.store().subtree(&loc.key, &loc.path, None)?;
        let top = nodes.first().ok_or(Fail(sc::NOT_FOUND))?;
        if !top.props.access.contains(AccessType::DELETE)
            || nodes.iter().any(|n| n.props.scope == Scope::Permanent)
        {
            return Err(Fail(sc::NOT_ALLOWED));
        }
        for n in &nodes {
            self.require(&loc.key, &n.path, Rights::WRITE)?;
        }
        let mut ops = vec![TreeOp::DeleteSubtree {
            key: loc.key.clone(),
            path: loc.path.clone(),
        }];
        if loc.path.is_empty() {
            // The instance's DACMO entries go with it.
            ops.extend(mo::standard::forget_grants(
                self.store(),
                std::slice::from_ref(&loc.key),
            )?);
        }
        self.commit(ops, &[(loc.key, loc.path)])?;
        Ok(Reply::code(sc::OK))
    }

    // ---- EXEC (TS §5.3.5, §5.4.1) ----

    /// Every EXEC may queue its result as a Generic Alert (at once with a ServerURI, later
    /// when a handler accepts it), and each queued alert is disk and, for a ServerURI, a
    /// session of its own (issue 27). Before anything runs: over
    /// `limits.max-server-alerts`, or over `limits.max-server-bytes` with the server's
    /// instances counted in, 506; a ServerURI beyond `limits.max-server-result-urls`
    /// distinct ones, 503. Logged either way; nothing is queued.
    fn check_queue(&self, client_uri: &str, report_to: Option<&str>) -> Result<(), Fail> {
        let limits = &self.engine.limits;
        let server = self.acl.server_id();
        let queued = self.store().queued(server)?;
        // What the result will take once queued: its row holds the ClientURI twice (the
        // node, and the alert's SourceURI), the ServerURI and the alert's few members. A
        // handler's own alert may be larger; the count above bounds those.
        let bytes = u128::from(queued.bytes)
            + u128::from(self.store().usage(&format!("serverid:{server}"))?.bytes)
            + (2 * client_uri.len() + report_to.map_or(0, str::len) + RESULT_ROW_BYTES) as u128;
        if queued.alerts >= limits.max_server_alerts || bytes > u128::from(limits.max_server_bytes)
        {
            tracing::warn!(server = %server, node = %client_uri, queued = queued.alerts, bytes = %bytes,
                max_alerts = limits.max_server_alerts, max_bytes = limits.max_server_bytes,
                "EXEC refused: its result would not fit in the server's queue");
            return Err(Fail(sc::DEVICE_FULL));
        }
        if let Some(to) = report_to {
            let known = queued.targets.iter().any(|t| t == to);
            if !known && queued.targets.len() as u64 >= limits.max_server_result_urls {
                tracing::warn!(server = %server, node = %client_uri, urls = queued.targets.len(),
                    max = limits.max_server_result_urls,
                    "EXEC refused: results already wait for as many ServerURIs as allowed");
                return Err(Fail(sc::SERVICE_UNAVAILABLE));
            }
        }
        Ok(())
    }

    pub(super) async fn exec(&self, client_uri: &str, server_uri: Option<&str>) -> Res {
        let loc = self.single(&self.parse(client_uri)?)?;
        let node = self
            .store()
            .node(&loc.key, &loc.path)?
            .ok_or(Fail(sc::NOT_FOUND))?;
        if !node.props.access.contains(AccessType::EXEC) {
            return Err(Fail(sc::NOT_ALLOWED));
        }
        self.require(&loc.key, &loc.path, Rights::EXECUTE)?;
        let report_to = server_uri.map(|s| self.server_url(s)).transpose()?;
        if let Some(u) = &report_to {
            self.reachable(u).await?;
        }
        let report_to = report_to.map(String::from);
        self.check_queue(&loc.uri(), report_to.as_deref())?;
        let request = ExecRequest {
            server_id: self.acl.server_id().to_owned(),
            client_uri: loc.uri(),
            location: loc,
            report_to: report_to.clone(),
        };
        match self.engine.ports.exec(&request).await {
            Executed::Done { status, alert } => {
                let status = if sc::is_valid(status) {
                    status
                } else {
                    sc::INTERNAL_ERROR
                };
                let Some(to) = report_to else {
                    return Ok(Reply::code(status));
                };
                // With a ServerURI the result MUST come asynchronously (TS §5.3.5).
                let alert = alert.unwrap_or_else(|| {
                    crate::engine::exec_result_alert(&request.client_uri, status)
                });
                let alert = serde_json::to_value(&alert).map_err(|_| Fail(sc::INTERNAL_ERROR))?;
                self.commit(
                    vec![TreeOp::Enqueue(Outgoing {
                        id: 0,
                        server_id: request.server_id.clone(),
                        item: OutItem::ExecResult {
                            client_uri: request.client_uri.clone(),
                            status,
                            alert,
                            to: Some(to),
                        },
                    })],
                    &[],
                )?;
                Ok(Reply::code(sc::ACCEPTED))
            }
            Executed::Accepted => Ok(Reply::code(sc::ACCEPTED)),
            Executed::NoHandler => Err(Fail(sc::NOT_ALLOWED)),
            Executed::Failed(why) => {
                tracing::warn!(node = %request.client_uri, why = %why, "EXEC failed");
                Err(Fail(sc::INTERNAL_ERROR))
            }
        }
    }
}
