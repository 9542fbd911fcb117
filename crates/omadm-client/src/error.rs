//! The errors omadmd's D-Bus API answers with, `org.omadm.Client1.Error.*`, as one enum:
//! the daemon replies with it and a caller turns a failed call into it
//! (`Error::from(zbus_error)`) to tell failures apart by name.

/// `org.omadm.Client1.Error.*`. The first five are what any method may answer; the rest are
/// why `Manager.FetchPackage` could not fetch a package, told apart as the FUMO and SCOMO
/// result codes need ([`FetchFailure`]).
#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.omadm.Client1.Error")]
pub enum Error {
    /// A D-Bus failure, or an error of another name.
    #[zbus(error)]
    ZBus(zbus::Error),
    /// An argument is malformed (a ClientURI, an alert, a package).
    InvalidArgument(String),
    /// What was asked for does not exist.
    NotFound(String),
    /// The caller may not do this.
    AccessDenied(String),
    /// The daemon could not do it.
    Failed(String),
    /// No package URL, one the daemon's rules refuse (plain http, a link-local or private
    /// address), or nothing at it (404, 410).
    BadUrl(String),
    /// The download server wants credentials the device does not have (401, 403, 407).
    DownloadAuth(String),
    /// The download server does not answer, or says it is unavailable (503).
    ServerUnavailable(String),
    /// The download server answered with an error (5xx).
    ServerError(String),
    /// The package is larger than the caller's bound, the daemon's `limits.max-package-bytes`,
    /// or the room left on the daemon's disk.
    TooLarge(String),
    /// The download timed out.
    Timeout(String),
    /// Anything else on the way: the network, an unexpected status.
    Network(String),
}

/// The D-Bus error name of a failed call (`org.freedesktop.DBus.Error.UnknownObject`, an
/// agent's `org.omadm.Client1.Agent.Error.Declined`), by which failures are told apart;
/// `None` for failures that are not D-Bus errors (I/O, timeouts, bad replies).
pub fn error_name(error: &zbus::Error) -> Option<String> {
    use zbus::DBusError as _;
    match error {
        zbus::Error::MethodError(name, _, _) => Some(name.to_string()),
        zbus::Error::FDO(e) => Some(e.name().to_string()),
        _ => None,
    }
}

/// True when a call failed because nobody owns (or can be started for) the name it went
/// to: the peer has left, or the service is not on this bus.
pub fn no_owner(error: &zbus::Error) -> bool {
    matches!(
        error_name(error).as_deref(),
        Some(
            "org.freedesktop.DBus.Error.ServiceUnknown"
                | "org.freedesktop.DBus.Error.NameHasNoOwner"
        )
    )
}

/// Why a package could not be fetched, in the terms both the FUMO (TS FUMO §5.1.10) and the
/// SCOMO result codes tell apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchFailure {
    /// The device could not set the download up (omadmd not there, the EXEC no longer
    /// pending, the account gone): the device's fault, not the URL's.
    Setup,
    /// No URL, one the rules refuse, or nothing at it.
    BadUrl,
    /// The download server wants credentials the device does not have.
    Auth,
    /// The download server does not answer, or says it is unavailable.
    ServerUnavailable,
    /// The download server answered with an error (5xx).
    ServerError,
    /// The package is larger than allowed, or there is no room for it.
    NoSpace,
    /// The download timed out.
    Timeout,
    /// Anything else on the way.
    Network,
}

impl From<&Error> for FetchFailure {
    fn from(e: &Error) -> FetchFailure {
        match e {
            Error::BadUrl(_) => FetchFailure::BadUrl,
            Error::DownloadAuth(_) => FetchFailure::Auth,
            Error::ServerUnavailable(_) => FetchFailure::ServerUnavailable,
            Error::ServerError(_) => FetchFailure::ServerError,
            Error::TooLarge(_) => FetchFailure::NoSpace,
            Error::Timeout(_) => FetchFailure::Timeout,
            Error::Network(_) => FetchFailure::Network,
            Error::ZBus(_)
            | Error::InvalidArgument(_)
            | Error::NotFound(_)
            | Error::AccessDenied(_)
            | Error::Failed(_) => FetchFailure::Setup,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reply's error name comes back as its variant, and a fetch failure as what the
    /// result codes need; names of other services stay `ZBus`.
    #[test]
    fn error_names_round_trip() {
        let named = |name: &str| {
            Error::from(zbus::Error::MethodError(
                zbus::names::OwnedErrorName::try_from(name).unwrap(),
                Some("why".into()),
                zbus::message::Message::method_call("/", "M")
                    .build(&())
                    .unwrap(),
            ))
        };
        let table = [
            ("org.omadm.Client1.Error.AccessDenied", FetchFailure::Setup),
            ("org.omadm.Client1.Error.BadUrl", FetchFailure::BadUrl),
            ("org.omadm.Client1.Error.DownloadAuth", FetchFailure::Auth),
            (
                "org.omadm.Client1.Error.ServerUnavailable",
                FetchFailure::ServerUnavailable,
            ),
            (
                "org.omadm.Client1.Error.ServerError",
                FetchFailure::ServerError,
            ),
            ("org.omadm.Client1.Error.TooLarge", FetchFailure::NoSpace),
            ("org.omadm.Client1.Error.Timeout", FetchFailure::Timeout),
            ("org.omadm.Client1.Error.Network", FetchFailure::Network),
            ("org.example.Other", FetchFailure::Setup),
        ];
        for (name, failure) in table {
            let e = named(name);
            assert_eq!(FetchFailure::from(&e), failure, "{name}");
            if name.starts_with("org.omadm") {
                assert_eq!(zbus::DBusError::name(&e).as_str(), name);
                assert_eq!(zbus::DBusError::description(&e), Some("why"));
            } else {
                assert!(matches!(e, Error::ZBus(_)), "{name}");
            }
        }
        assert!(matches!(
            named("org.omadm.Client1.Error.NotFound"),
            Error::NotFound(w) if w == "why"
        ));
    }
}
