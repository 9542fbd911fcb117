//! Integration tests: the real binaries, run as a user would run them, on scratch
//! directories. One test crate with modules, so the binaries and dependencies link once.

// Test helpers panic on failure by design: a panic is a failed test.
#![allow(clippy::unwrap_used, missing_docs)]

mod architecture;
mod common;
mod crash;
mod daemon;
mod dbus;
mod dcmo;
mod delegation;
mod exec;
mod faults;
mod fetch;
mod fumo;
mod generated;
mod handler_ddf;
mod handler_trust;
mod install;
mod notify;
mod outbox;
mod polkit;
mod scomo;
mod session;
mod trust;
