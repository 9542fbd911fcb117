//! Who sits at the device: logind says which session an agent's process belongs to, so a
//! SHOW goes to the person in front of the screen (linux-integration.md §3.4). Without
//! logind on the bus the most recently registered agent is asked first.

use zbus::OwnedObjectPath;
use zbus::proxy::CacheProperties;

use super::peers::Agent;

#[zbus::proxy(
    interface = "org.freedesktop.login1.Manager",
    default_service = "org.freedesktop.login1",
    default_path = "/org/freedesktop/login1"
)]
trait Login {
    #[zbus(name = "GetSessionByPID")]
    fn get_session_by_pid(&self, pid: u32) -> zbus::Result<OwnedObjectPath>;
}

#[zbus::proxy(
    interface = "org.freedesktop.login1.Session",
    default_service = "org.freedesktop.login1"
)]
trait Session {
    #[zbus(property)]
    fn active(&self) -> zbus::Result<bool>;
    #[zbus(property)]
    fn remote(&self) -> zbus::Result<bool>;
    #[zbus(property)]
    fn seat(&self) -> zbus::Result<(String, OwnedObjectPath)>;
}

/// Where an agent's process sits, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Place {
    /// The active session on `seat0`: the person in front of the main screen.
    FrontSeat,
    /// Another active local session.
    ActiveLocal,
    /// An inactive, remote or unknown session, or none.
    Elsewhere,
}

/// The place of a session from its logind properties.
pub fn place_of(active: bool, remote: bool, seat: &str) -> Place {
    match (active && !remote, seat) {
        (true, "seat0") => Place::FrontSeat,
        (true, _) => Place::ActiveLocal,
        (false, _) => Place::Elsewhere,
    }
}

/// logind's answer for one process: `None` when logind is not on the bus.
async fn place(conn: &zbus::Connection, login: &LoginProxy<'_>, pid: u32) -> Option<Place> {
    let path = match login.get_session_by_pid(pid).await {
        Ok(p) => p,
        Err(e) if super::no_owner(&e) => return None,
        Err(e) => {
            // NoSessionForPID, or a process that has gone: not at the device.
            tracing::debug!(pid, error = %e, "no logind session for an agent");
            return Some(Place::Elsewhere);
        }
    };
    let session = async {
        let s = SessionProxy::builder(conn)
            .path(path)
            .cache_properties(CacheProperties::No)
            .build()
            .await?;
        Ok::<_, zbus::Error>(place_of(
            s.active().await?,
            s.remote().await?,
            &s.seat().await?.0,
        ))
    };
    Some(session.await.unwrap_or(Place::Elsewhere))
}

/// The agents in the order to ask them: the front seat's first, then other active local
/// sessions, then the rest; the most recent first within each. `agents` comes most recent
/// first.
pub async fn order(conn: &zbus::Connection, agents: Vec<Agent>) -> Vec<Agent> {
    let Ok(login) = LoginProxy::builder(conn)
        .cache_properties(CacheProperties::No)
        .build()
        .await
    else {
        return agents;
    };
    let mut places = Vec::with_capacity(agents.len());
    for agent in &agents {
        match place(conn, &login, agent.pid).await {
            Some(p) => places.push(p),
            // No logind: keep the order of registration.
            None => return agents,
        }
    }
    let mut ranked: Vec<(Place, Agent)> = places.into_iter().zip(agents).collect();
    // A stable sort keeps the most recent first within a place.
    ranked.sort_by_key(|(p, _)| *p);
    ranked.into_iter().map(|(_, a)| a).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_rank_by_where_they_are() {
        let rows = [
            (true, false, "seat0", Place::FrontSeat),
            (true, false, "seat1", Place::ActiveLocal),
            (true, false, "", Place::ActiveLocal),
            (true, true, "seat0", Place::Elsewhere),
            (false, false, "seat0", Place::Elsewhere),
            (false, true, "", Place::Elsewhere),
        ];
        for (active, remote, seat, want) in rows {
            assert_eq!(
                place_of(active, remote, seat),
                want,
                "{active} {remote} {seat}"
            );
        }
        assert!(Place::FrontSeat < Place::ActiveLocal && Place::ActiveLocal < Place::Elsewhere);
    }
}
