//! Command-line definitions of the tools (`omadmctl` in [`ctl`], the SHOW agent, the two
//! handlers), kept in the library so man pages and shell completions are generated from
//! them (`packaging/man`, `packaging/completions`).

pub mod agent;
pub mod complete;
pub mod ctl;
pub mod dcmo;
pub mod fwupd;
pub mod packagekit;

/// Bytes given as base64 on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bytes(pub Vec<u8>);

/// Parses a base64 argument (standard alphabet, padded).
pub fn base64_arg(s: &str) -> Result<Bytes, String> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map(Bytes)
        .map_err(|e| format!("not base64: {e}"))
}
