//! The command engine: runs a Package#2's commands against the tree and builds the
//! Package#3 (TS §5.3). It knows no HTTP and no D-Bus: the Data Repository, SHOW and EXEC
//! reach the outside through traits the daemon implements.

pub mod resolve;
