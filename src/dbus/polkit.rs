//! Who may change what: root and the daemon's own user always; anyone else when polkit
//! authorizes the action (`dbus/org.omadm.Client1.policy`). Without polkit on the bus only
//! those two may change anything; registering a SHOW agent stays open (docs/dbus-api.md).

use zbus::message::{Flags, Header};
use zbus_polkit::policykit1::{AuthorityProxy, CheckAuthorizationFlags, Subject};

use super::{Error, caller_uid};

/// What a caller asks to do; each is a polkit action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Start a session.
    StartSession,
    /// Queue a Generic Alert.
    QueueAlert,
    /// Hand over a DM Notification.
    InjectNotification,
    /// Handle EXECs for a MO.
    RegisterHandler,
    /// Receive SHOW requests.
    RegisterAgent,
    /// Have a missing MO fetched from its DEFAULT (TS §5.3.10).
    RequestConfiguration,
    /// End a running session.
    CancelSession,
    /// Add or remove a DM account.
    ManageAccounts,
    /// Re-read the configuration and the bootstrap files.
    Reload,
}

impl Action {
    /// The polkit action id.
    pub fn id(self) -> &'static str {
        match self {
            Action::StartSession => "org.omadm.Client1.start-session",
            Action::QueueAlert => "org.omadm.Client1.queue-alert",
            Action::InjectNotification => "org.omadm.Client1.inject-notification",
            Action::RegisterHandler => "org.omadm.Client1.register-handler",
            Action::RegisterAgent => "org.omadm.Client1.register-agent",
            Action::RequestConfiguration => "org.omadm.Client1.request-configuration",
            Action::CancelSession => "org.omadm.Client1.cancel-session",
            Action::ManageAccounts => "org.omadm.Client1.manage-accounts",
            Action::Reload => "org.omadm.Client1.reload",
        }
    }

    /// What it is, for messages.
    pub fn what(self) -> &'static str {
        match self {
            Action::StartSession => "starting a session",
            Action::QueueAlert => "queuing an alert",
            Action::InjectNotification => "injecting a notification",
            Action::RegisterHandler => "registering an EXEC handler",
            Action::RegisterAgent => "registering a SHOW agent",
            Action::RequestConfiguration => "asking for a management object's configuration",
            Action::CancelSession => "ending a session",
            Action::ManageAccounts => "adding or removing a DM account",
            Action::Reload => "reloading the configuration",
        }
    }

    /// Whether the action is allowed when polkit is not on the bus. Only an agent
    /// registration is: it changes nothing, and the agent is only asked to show pages.
    fn open_without_polkit(self) -> bool {
        self == Action::RegisterAgent
    }
}

/// polkit's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Yes,
    /// Not authorized; `challenge` when authentication could have changed that.
    No {
        challenge: bool,
    },
    /// polkit is not on the bus.
    Absent,
    /// polkit would not answer for this caller: only root and an action's owner may ask
    /// about other users' processes, and the installed policy does not name the daemon's
    /// user as the owner (`org.freedesktop.policykit.owner`). A misinstalled policy file.
    NotTrusted,
}

/// The error polkitd answers a `CheckAuthorization` it will not carry out for this caller.
const POLKIT_NOT_AUTHORIZED: &str = "org.freedesktop.PolicyKit1.Error.NotAuthorized";

async fn check(
    conn: &zbus::Connection,
    header: &Header<'_>,
    action: Action,
) -> Result<Verdict, Error> {
    let subject = Subject::new_for_message_header(header)
        .map_err(|e| Error::AccessDenied(format!("cannot name the caller to polkit: {e}")))?;
    // The caller may wait for a password prompt only when it said so (D-Bus's
    // ALLOW_INTERACTIVE_AUTHORIZATION flag, which `omadmctl` sets on a terminal).
    let flags = if header
        .primary()
        .flags()
        .contains(Flags::ALLOW_INTERACTIVE_AUTH)
    {
        CheckAuthorizationFlags::ALLOW_USER_INTERACTION
    } else {
        Default::default()
    };
    let authority = AuthorityProxy::new(conn).await?;
    let details = std::collections::HashMap::new();
    match authority
        .check_authorization(&subject, action.id(), &details, flags, "")
        .await
    {
        Ok(r) if r.is_authorized => Ok(Verdict::Yes),
        Ok(r) => Ok(Verdict::No {
            challenge: r.is_challenge,
        }),
        Err(e) if super::no_owner(&e) => Ok(Verdict::Absent),
        Err(e) if super::error_name(&e).as_deref() == Some(POLKIT_NOT_AUTHORIZED) => {
            tracing::error!(error = %e, action = action.id(),
                "polkit will not answer for other users' callers: the installed policy does not name this daemon's user as the action's owner (org.freedesktop.policykit.owner); only root can change anything until it does");
            Ok(Verdict::NotTrusted)
        }
        Err(e) => {
            tracing::warn!(error = %e, "polkit check failed");
            Err(Error::Failed(format!("cannot ask polkit: {e}")))
        }
    }
}

/// Authorizes the caller of a method for `action`; returns its unix user.
pub async fn authorize(
    conn: &zbus::Connection,
    header: &Header<'_>,
    action: Action,
) -> Result<u32, Error> {
    Ok(authorize_caller(conn, header, action).await?.uid)
}

/// Who a caller is and how it was let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    /// Its unix user.
    pub uid: u32,
    /// polkit said yes (rather than: root, the daemon's user, or no polkit to ask).
    pub by_polkit: bool,
}

/// Like [`authorize`], saying also whether polkit vouched for the caller.
pub async fn authorize_caller(
    conn: &zbus::Connection,
    header: &Header<'_>,
    action: Action,
) -> Result<Caller, Error> {
    let uid = caller_uid(conn, header).await?;
    let caller = |by_polkit| Caller { uid, by_polkit };
    // Root, and the daemon's own user, who owns its process and files anyway.
    if uid == 0 || uid == nix::unistd::Uid::effective().as_raw() {
        return Ok(caller(false));
    }
    let what = action.what();
    let refused = match check(conn, header, action).await? {
        Verdict::Yes => return Ok(caller(true)),
        Verdict::Absent if action.open_without_polkit() => return Ok(caller(false)),
        Verdict::Absent => format!("{what} needs root: polkit is not running (uid {uid} asked)"),
        Verdict::No { challenge: true } => format!(
            "{what} needs authentication as an administrator ({}); uid {uid} asked without it",
            action.id()
        ),
        Verdict::No { challenge: false } => {
            format!("polkit does not allow uid {uid} {what} ({})", action.id())
        }
        Verdict::NotTrusted => format!(
            "{what} needs root: polkit will not answer for uid {uid}, since the installed policy does not name the daemon's user as the owner of {}",
            action.id()
        ),
    };
    tracing::info!(uid, action = action.id(), "D-Bus caller refused");
    Err(Error::AccessDenied(refused))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_ids_are_the_ones_the_policy_file_declares() {
        let policy = include_str!("../../dbus/org.omadm.Client1.policy");
        for a in [
            Action::StartSession,
            Action::QueueAlert,
            Action::InjectNotification,
            Action::RegisterHandler,
            Action::RegisterAgent,
            Action::RequestConfiguration,
            Action::CancelSession,
            Action::ManageAccounts,
            Action::Reload,
        ] {
            assert!(
                policy.contains(&format!("<action id=\"{}\">", a.id())),
                "{} is not in the policy",
                a.id()
            );
            assert_eq!(a.open_without_polkit(), a == Action::RegisterAgent);
        }
        assert_eq!(policy.matches("<action id=").count(), 9);
        // polkitd answers the daemon, which runs as omadmd, only for actions it owns; the
        // user is the one the package creates.
        let owner =
            r#"<annotate key="org.freedesktop.policykit.owner">unix-user:omadmd</annotate>"#;
        assert_eq!(
            policy.matches(owner).count(),
            9,
            "every action names its owner"
        );
        let sysusers = include_str!("../../systemd/sysusers.d/omadmd.conf");
        assert!(sysusers.lines().any(|l| l.starts_with("u omadmd ")));
        let unit = include_str!("../../systemd/omadmd.service");
        assert!(unit.lines().any(|l| l == "User=omadmd"));
    }

    #[test]
    fn only_a_missing_polkit_counts_as_absent() {
        let missing = zbus::Error::MethodError(
            zbus::names::OwnedErrorName::try_from("org.freedesktop.DBus.Error.ServiceUnknown")
                .unwrap(),
            Some("The name is not activatable".into()),
            zbus::message::Message::method_call("/", "X")
                .build(&())
                .unwrap(),
        );
        assert!(crate::dbus::no_owner(&missing));
        assert!(!crate::dbus::no_owner(&zbus::Error::Failure(
            "timeout".into()
        )));
        // Told apart by name, never by the message text.
        let named = |name: &str, text: &str| {
            zbus::Error::MethodError(
                zbus::names::OwnedErrorName::try_from(name).unwrap(),
                Some(text.into()),
                zbus::message::Message::method_call("/", "X")
                    .build(&())
                    .unwrap(),
            )
        };
        let declined = named("org.omadm.Client1.Agent.Error.Declined", "no");
        assert_eq!(
            crate::dbus::error_name(&declined).as_deref(),
            Some("org.omadm.Client1.Agent.Error.Declined")
        );
        let lookalike = named("org.example.Error.Other", "ServiceUnknown NameHasNoOwner");
        assert!(
            !crate::dbus::no_owner(&lookalike),
            "the text does not count"
        );
        assert_eq!(
            crate::dbus::error_name(&zbus::Error::Failure("x".into())),
            None
        );
    }
}
