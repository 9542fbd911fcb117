//! The DM 2.0 wire formats as pure codecs: bytes in, typed data out, and back. No I/O, no
//! async, no tree access; limits come in as arguments.

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
}
