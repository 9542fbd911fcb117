//! The OMA DM 2.0 wire formats (OMA-TS-DM_Protocol-V2_0) as pure codecs: bytes in, typed
//! data out, and back. No I/O, no async, no storage; limits come in as arguments. Enough to
//! write a DM 2.0 client or server in Rust:
//!
//! - [`package0`]: the binary DM Notification, with its SHA256-DIGEST; [`wap`]: its
//!   connectionless WAP Push framing (TS §7.1.1, App. E).
//! - [`packages`]: Package#1, #2, #3 in JSON, Generic Alerts, and the multipart Package#3
//!   carrying GET results (TS §7.2.1, App. F).
//! - [`dmmo`]: `application/dmmo+json`, MO data (TS §7.2.1.4).
//! - [`uri`]: ClientURI parsing and display, ServerURI `[DevID]` substitution (TS §6).
//! - [`sc`]: the status codes (TS App. C).
//!
//! A server sends a Package#2 (here, the commands of the TS's §7.2.1.2 example); a client
//! decodes it:
//!
//! ```
//! use omadm_proto::packages::{Command, P2Limits, decode_package2};
//!
//! let p2 = br#"{"CMD": [
//!     ["HPOST", "https://DMcontent.DMserver.operator.com/[DevID]",
//!      "urn:oma:mo:oma-dm-devinfo:1.0//", "urn:oma:mo:oma-sessioninfomo:1.0//"],
//!     ["HGET", "https://DMcontent.DMserver.operator.com/new_mo"],
//!     ["GET", "urn:oma:mo:oma-sessioninfomo:1.0//CBT"]]}"#;
//! let limits = P2Limits { max_bytes: 1 << 20, max_commands: 100 };
//! let cmds = decode_package2(p2, limits).unwrap();
//! assert_eq!(cmds.len(), 3);
//! assert!(matches!(&cmds[2], Command::Get { client_uri } if client_uri.ends_with("//CBT")));
//! ```
//!
//! A ClientURI from the TS's §6.1.3 examples, an x-name chosen by a node value:
//!
//! ```
//! use omadm_proto::uri::{ClientUri, InstanceSel};
//!
//! let u = ClientUri::parse("urn:oma:mo:moid:1.0/(x)/Data/1/Value?nv=(x)/ID:GPS").unwrap();
//! assert_eq!(u.moid, "urn:oma:mo:moid:1.0");
//! assert_eq!(u.instance, InstanceSel::XName('x'));
//! assert_eq!(u.nv_for('x').count(), 1);
//! ```
//!
//! A notification, signed with the account's secret and checked on arrival:
//!
//! ```
//! use omadm_proto::package0::{Notification, decode, encode_signed, verify};
//!
//! let n = Notification {
//!     server_id: Some("dms1".into()),
//!     notification_id: Some(7),
//!     req_mos: true,
//!     ..Default::default()
//! };
//! let bytes = encode_signed(&n, b"server-secret", b"auth-data").unwrap();
//! let got = decode(&bytes).unwrap();
//! assert_eq!(got.server_id.as_deref(), Some("dms1"));
//! assert!(verify(&bytes, &got, b"server-secret", b"auth-data"));
//! assert!(!verify(&bytes, &got, b"another-secret", b"auth-data"));
//! ```

pub mod dmmo;
pub mod package0;
pub mod packages;
pub mod uri;
pub mod wap;

/// A decode error: what was wrong and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} at {at}")]
pub struct DecodeError {
    /// What was wrong.
    pub what: String,
    /// Where: a JSON path or byte offset.
    pub at: String,
}

impl DecodeError {
    /// An error saying `what` was wrong `at` a place.
    pub fn new(what: impl Into<String>, at: impl Into<String>) -> Self {
        DecodeError {
            what: what.into(),
            at: at.into(),
        }
    }
}

/// DM status codes (TS App. C): a command's outcome, carried in Package#3. Only these, and
/// the application range 1000–1999, are valid.
///
/// ```
/// use omadm_proto::sc;
/// assert!(sc::is_valid(sc::DEVICE_FULL));
/// assert!(sc::is_valid(1204)); // application specific
/// assert!(!sc::is_valid(401)); // an HTTP status, not a DM one
/// ```
pub mod sc {
    /// OK.
    pub const OK: u16 = 200;
    /// Accepted (EXEC, asynchronous result later).
    pub const ACCEPTED: u16 = 202;
    /// No Content (GET of an empty target).
    pub const NO_CONTENT: u16 = 204;
    /// Not Modified (cache validator matched).
    pub const NOT_MODIFIED: u16 = 304;
    /// Bad Request.
    pub const BAD_REQUEST: u16 = 400;
    /// Forbidden.
    pub const FORBIDDEN: u16 = 403;
    /// Not Found.
    pub const NOT_FOUND: u16 = 404;
    /// Command Not Allowed.
    pub const NOT_ALLOWED: u16 = 405;
    /// Not Acceptable.
    pub const NOT_ACCEPTABLE: u16 = 406;
    /// Unsupported Media Type.
    pub const UNSUPPORTED_MEDIA_TYPE: u16 = 415;
    /// ServerURI Error.
    pub const SERVER_URI_ERROR: u16 = 419;
    /// Internal Error.
    pub const INTERNAL_ERROR: u16 = 500;
    /// Not Implemented.
    pub const NOT_IMPLEMENTED: u16 = 501;
    /// Service Unavailable.
    pub const SERVICE_UNAVAILABLE: u16 = 503;
    /// Device Full.
    pub const DEVICE_FULL: u16 = 506;
    /// User Rejected.
    pub const USER_REJECTED: u16 = 507;

    /// True for a code the TS table allows (App. C), including 1000–1999.
    pub fn is_valid(code: u16) -> bool {
        matches!(
            code,
            200 | 202
                | 204
                | 304
                | 400
                | 403
                | 404
                | 405
                | 406
                | 415
                | 419
                | 500
                | 501
                | 503
                | 506
                | 507
        ) || (1000..=1999).contains(&code)
    }

    /// The TS's name for a code (App. C), for people: `"ServerURI Error"` for 419;
    /// `"application specific"` for 1000–1999, `"not a DM status"` for anything else.
    ///
    /// ```
    /// use omadm_proto::sc;
    /// assert_eq!(sc::describe(sc::SERVER_URI_ERROR), "ServerURI Error");
    /// assert_eq!(sc::describe(1204), "application specific");
    /// ```
    pub fn describe(code: u16) -> &'static str {
        match code {
            OK => "OK",
            ACCEPTED => "Accepted",
            NO_CONTENT => "No Content",
            NOT_MODIFIED => "Not Modified",
            BAD_REQUEST => "Bad Request",
            FORBIDDEN => "Forbidden",
            NOT_FOUND => "Not Found",
            NOT_ALLOWED => "Command Not Allowed",
            NOT_ACCEPTABLE => "Not Acceptable",
            UNSUPPORTED_MEDIA_TYPE => "Unsupported Media Type",
            SERVER_URI_ERROR => "ServerURI Error",
            INTERNAL_ERROR => "Internal Error",
            NOT_IMPLEMENTED => "Not Implemented",
            SERVICE_UNAVAILABLE => "Service Unavailable",
            DEVICE_FULL => "Device Full",
            USER_REJECTED => "User Rejected",
            1000..=1999 => "application specific",
            _ => "not a DM status",
        }
    }
}
