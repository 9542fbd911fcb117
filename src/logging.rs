//! Logging setup: `tracing` to the systemd journal when its socket exists, else to stderr
//! (no timestamps under systemd, which adds its own; no colours unless stderr is a
//! terminal). Verbosity comes from `-v` flags, then `RUST_LOG`, then the config.

use std::io::IsTerminal;
use std::path::Path;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The journal if its socket exists, else stderr: the daemon.
    Auto,
    /// Always stderr: command-line tools and offline modes.
    Stderr,
}

const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// The filter for `verbose` `-v` flags over the configured default level.
pub fn filter(verbose: u8, default_level: &str) -> EnvFilter {
    match verbose {
        0 => EnvFilter::try_from_default_env()
            .or_else(|_| EnvFilter::try_new(default_level))
            .unwrap_or_else(|_| EnvFilter::new("info")),
        1 => EnvFilter::new("debug"),
        _ => EnvFilter::new("trace"),
    }
}

/// Installs the global subscriber. Returns where logs go, for a start-up line.
pub fn init(target: Target, filter: EnvFilter) -> &'static str {
    let registry = tracing_subscriber::registry().with(filter);
    if target == Target::Auto && Path::new(JOURNAL_SOCKET).exists() {
        // An error (not a panic) when the socket cannot be used: fall back to stderr.
        if let Ok(journald) = tracing_journald::layer() {
            let journald = journald.with_syslog_identifier("omadmd".into());
            if registry.with(journald).try_init().is_ok() {
                return "journal";
            }
            return "unchanged";
        }
    }
    let under_systemd = std::env::var_os("JOURNAL_STREAM").is_some();
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    let result = if under_systemd {
        registry.with(stderr.without_time()).try_init()
    } else {
        registry.with(stderr).try_init()
    };
    if result.is_ok() {
        "stderr"
    } else {
        "unchanged"
    }
}
