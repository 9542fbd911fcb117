//! Who sits at the device: logind says which session an agent's process belongs to, so a
//! SHOW goes to the person in front of the screen (linux-integration.md §3.4), and never
//! to another user's agent ([`rank`]).

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

/// Where each agent sits; `None` when logind is not on the bus.
async fn places(conn: &zbus::Connection, agents: &[Agent]) -> Option<Vec<Place>> {
    let login = LoginProxy::builder(conn)
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .ok()?;
    let mut out = Vec::with_capacity(agents.len());
    for agent in agents {
        out.push(place(conn, &login, agent.pid).await?);
    }
    Some(out)
}

/// The agents a SHOW may go to, in the order to ask them, and those passed over.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Choice {
    /// Ask these, in order.
    pub ask: Vec<Agent>,
    /// Never ask these: they are not the person at the device.
    pub passed_over: Vec<Agent>,
}

/// Which agents a SHOW goes to (docs/security.md, "SHOW"). A page meant for the person at
/// the device never goes to another user's agent:
/// - root's agents and the daemon's own user's always may;
/// - with logind: agents of the active session on seat0 (the person in front), and agents
///   polkit let in from another active local session, unless someone else's agent sits in
///   front;
/// - without logind, where nobody can say who is in front: only agents polkit let in.
///
/// Order: the front seat first, then other active local sessions, then the rest; the most
/// recent first within each (`agents` comes most recent first).
pub fn rank(agents: Vec<Agent>, places: Option<Vec<Place>>, own_uid: u32) -> Choice {
    let privileged = |a: &Agent| a.uid == 0 || a.uid == own_uid;
    let mut choice = Choice::default();
    let Some(places) = places else {
        // No logind: nobody can say who is in front; polkit's word is all there is.
        for agent in agents {
            if privileged(&agent) || agent.vetted {
                choice.ask.push(agent);
            } else {
                choice.passed_over.push(agent);
            }
        }
        return choice;
    };
    let front: Vec<u32> = agents
        .iter()
        .zip(&places)
        .filter(|(a, p)| **p == Place::FrontSeat && !privileged(a))
        .map(|(a, _)| a.uid)
        .collect();
    let mut ranked: Vec<(Place, Agent)> = Vec::new();
    for (agent, place) in agents.into_iter().zip(places) {
        let eligible = privileged(&agent)
            || match place {
                Place::FrontSeat => true,
                Place::ActiveLocal => agent.vetted && front.iter().all(|&u| u == agent.uid),
                Place::Elsewhere => false,
            };
        if eligible {
            ranked.push((place, agent));
        } else {
            choice.passed_over.push(agent);
        }
    }
    // A stable sort keeps the most recent first within a place.
    ranked.sort_by_key(|(p, _)| *p);
    choice.ask = ranked.into_iter().map(|(_, a)| a).collect();
    choice
}

/// The agents a SHOW may go to now, asking logind where each sits.
pub async fn choose(conn: &zbus::Connection, agents: Vec<Agent>) -> Choice {
    let places = places(conn, &agents).await;
    rank(agents, places, nix::unistd::Uid::effective().as_raw())
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

    fn agent(name: &str, uid: u32, vetted: bool) -> Agent {
        Agent {
            peer: super::super::peers::Peer {
                bus_name: name.into(),
                path: "/a".into(),
            },
            uid,
            pid: 1,
            vetted,
        }
    }

    fn names(agents: &[Agent]) -> Vec<&str> {
        agents.iter().map(|a| a.peer.bus_name.as_str()).collect()
    }

    #[test]
    fn a_show_never_reaches_another_users_agent() {
        use Place::*;
        const OWN: u32 = 990;
        // (agents most recent first with their places or None without logind; asked;
        // passed over)
        type Row = (
            Vec<(Agent, Place)>,
            bool,
            Vec<&'static str>,
            Vec<&'static str>,
        );
        let rows: Vec<Row> = vec![
            // Without logind and polkit: root's and the daemon user's agents only.
            (
                vec![
                    (agent("alice", 1000, false), Elsewhere),
                    (agent("root", 0, false), Elsewhere),
                    (agent("own", OWN, false), Elsewhere),
                ],
                false,
                vec!["root", "own"],
                vec!["alice"],
            ),
            // Without logind, polkit vouched for alice at registration.
            (
                vec![(agent("alice", 1000, true), Elsewhere)],
                false,
                vec!["alice"],
                vec![],
            ),
            // The person in front gets it; bob on another seat does not, vetted or not,
            // while someone else sits in front; an inactive session never does.
            (
                vec![
                    (agent("bob", 1001, true), ActiveLocal),
                    (agent("carol", 1002, true), Elsewhere),
                    (agent("alice", 1000, false), FrontSeat),
                    (agent("root", 0, false), Elsewhere),
                ],
                true,
                vec!["alice", "root"],
                vec!["bob", "carol"],
            ),
            // Nobody's agent in front: another active local session, if polkit let it in.
            (
                vec![
                    (agent("bob", 1001, true), ActiveLocal),
                    (agent("dave", 1003, false), ActiveLocal),
                ],
                true,
                vec!["bob"],
                vec!["dave"],
            ),
            // The same user in front and on another seat.
            (
                vec![
                    (agent("alice-2", 1000, true), ActiveLocal),
                    (agent("alice", 1000, false), FrontSeat),
                ],
                true,
                vec!["alice", "alice-2"],
                vec![],
            ),
        ];
        for (agents, logind, ask, passed) in rows {
            let places = logind.then(|| agents.iter().map(|(_, p)| *p).collect());
            let choice = rank(agents.into_iter().map(|(a, _)| a).collect(), places, OWN);
            assert_eq!(
                (names(&choice.ask), names(&choice.passed_over)),
                (ask.clone(), passed.clone())
            );
        }
    }
}
