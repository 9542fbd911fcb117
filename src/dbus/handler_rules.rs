//! Who may register as the EXEC handler of which MO: polkit's `register-handler` lets a
//! caller register at all; the installed handler definitions (`mo::handlers`) say for
//! which MOIDs, by the caller's unix user, and under which bus name. Checked for every
//! caller, root included, whatever polkit said: a handler is held to its own MOs
//! (docs/security.md, "A compromised handler").

use super::{Error, Shared};

/// Refuses (`AccessDenied`, naming the MOID, with a log line) a registration of the
/// caller `uid` for `target` (`MOID` or `MOID//path`, canonical) under `bus_name`.
pub(super) fn may_register(
    shared: &Shared,
    uid: u32,
    target: &str,
    bus_name: Option<&str>,
) -> Result<(), Error> {
    let moid = target.split_once("//").map_or(target, |(m, _)| m);
    let user = user_name(uid);
    shared
        .prepared
        .handlers
        .get()
        .permit(&user, moid, bus_name)
        .map_err(|why| {
            tracing::warn!(uid, user = %user, moid, bus_name, reason = %why, "EXEC handler registration refused");
            Error::AccessDenied(why)
        })
}

/// Of the MOIDs the caller registered for, those it may still write with `HandlerUpdate`
/// (a reload may have taken a definition away since); `AccessDenied` when none.
pub(super) async fn writable(
    shared: &Shared,
    conn: &zbus::Connection,
    header: &zbus::message::Header<'_>,
    moids: Vec<String>,
) -> Result<Vec<String>, Error> {
    let uid = super::caller_uid(conn, header).await?;
    let user = user_name(uid);
    let defs = shared.prepared.handlers.get();
    let (mine, refused): (Vec<String>, Vec<String>) = moids
        .into_iter()
        .partition(|m| defs.handles(&user, m).is_ok());
    if !refused.is_empty() {
        tracing::warn!(uid, user = %user, moids = ?refused, "a handler's update of MOs it may no longer handle refused");
    }
    if mine.is_empty() {
        return Err(Error::AccessDenied(format!(
            "no handler definition lets user {user} write {}",
            refused.join(", ")
        )));
    }
    Ok(mine)
}

/// The name of unix user `uid`, or the number when it has none.
fn user_name(uid: u32) -> String {
    nix::unistd::User::from_uid(uid.into())
        .ok()
        .flatten()
        .map_or_else(|| uid.to_string(), |u| u.name)
}
