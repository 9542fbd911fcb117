//! HPUT and HPOST (TS §5.3.2–3): send MO data to the repository, in a format both sides take (TS §5.5).

use super::*;

fn accepts(list: &[String], ours: &str) -> bool {
    list.iter().any(|a| {
        let a = media_type(a);
        a == ours
            || a == "*/*"
            || a.strip_suffix("/*")
                .is_some_and(|major| ours.starts_with(&format!("{major}/")))
    })
}

/// A repository PUT/POST that failed: 419 (TS App. C), with a log line.
fn send_failed(url: &url::Url, e: &crate::engine::PortError) -> Fail {
    tracing::info!(url = %uri::redact(url.as_str()), error = %e, "repository send failed");
    Fail(sc::SERVER_URI_ERROR)
}

impl<P: Ports> Ctx<'_, '_, P> {
    // ---- HPUT / HPOST (TS §5.3.2–3) ----

    pub(super) async fn hsend(
        &self,
        method: Method,
        server_uri: &str,
        client_uris: &[String],
    ) -> Res {
        let url = self.server_url(server_uri)?;
        let mut sel: Vec<(Location, Vec<Node>)> = Vec::new();
        let (mut found, mut all_cached) = (false, true);
        for c in client_uris {
            let u = self.parse(c)?;
            let locs = match self.resolve(&u) {
                Ok(l) => l,
                Err(Fail(sc::NOT_FOUND)) => continue,
                Err(f) => return Err(f),
            };
            found = true;
            let cached = self.cv_matches(&u, &locs)?;
            all_cached &= cached;
            for loc in locs {
                let nodes = self.read_subtree(&loc, u.level)?;
                if !cached {
                    sel.push((loc, nodes));
                }
            }
        }
        if sel.is_empty() {
            return Err(Fail(if found && all_cached {
                sc::NOT_MODIFIED
            } else {
                sc::NOT_FOUND
            }));
        }
        // Our formats, in preference order: a single leaf raw, else MO data.
        let raw = match sel.as_slice() {
            [(_, nodes)] if nodes.len() == 1 && !nodes[0].is_interior() => {
                Self::raw_leaf(&nodes[0])
            }
            _ => None,
        };
        let dmmo_body = || -> Result<Vec<u8>, Fail> { Ok(dmmo::encode(&self.items(&sel)?)) };
        let mut offers: Vec<(String, Vec<u8>)> = Vec::new();
        if let Some(r) = raw {
            offers.push(r);
        }
        offers.push((DMMO.to_owned(), dmmo_body()?));
        let server_accept = &self.session.server_accept;
        let pick = |list: &[String], offers: &[(String, Vec<u8>)], skip: Option<&str>| {
            offers
                .iter()
                .find(|(ct, _)| (list.is_empty() || accepts(list, ct)) && Some(ct.as_str()) != skip)
                .cloned()
        };
        let (ct, body) = pick(server_accept, &offers, None).ok_or(Fail(sc::NOT_ACCEPTABLE))?;
        match self
            .engine
            .ports
            .send(method, url.as_str(), &ct, body)
            .await
        {
            Ok(Sent::Ok) => Ok(Reply::code(sc::OK)),
            Ok(Sent::Unsupported { accept }) => {
                // TS §5.5: retry once with a format the repository lists, if we have one.
                let (ct2, body2) =
                    pick(&accept, &offers, Some(&ct)).ok_or(Fail(sc::NOT_ACCEPTABLE))?;
                match self
                    .engine
                    .ports
                    .send(method, url.as_str(), &ct2, body2)
                    .await
                {
                    Ok(Sent::Ok) => Ok(Reply::code(sc::OK)),
                    Ok(Sent::Unsupported { .. }) => Err(Fail(sc::NOT_ACCEPTABLE)),
                    Err(e) => Err(send_failed(&url, &e)),
                }
            }
            Err(e) => Err(send_failed(&url, &e)),
        }
    }
}
