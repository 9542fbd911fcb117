//! The DM 2.0 wire formats as pure codecs: bytes in, typed data out, and back. No I/O, no
//! async, no tree access; limits come in as arguments.

pub mod dmmo;
pub mod package0;
pub mod packages;
pub mod uri;

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
