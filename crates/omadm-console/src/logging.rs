//! Logging setup: `tracing` to the systemd journal (with structured fields) when stderr is
//! connected to it (`JOURNAL_STREAM`, as systemd sets for services) and its socket works;
//! else to stderr: without timestamps under systemd, which adds its own, and without
//! colours unless stderr is a terminal. Run by hand in a terminal, the daemon logs there.
//! Verbosity comes from `-v` flags, then `RUST_LOG`, then the config.

use std::io::IsTerminal;
use std::path::Path;

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The journal when stderr goes to it, else stderr: the daemon.
    Auto,
    /// Always stderr: command-line tools and offline modes.
    Stderr,
}

const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// The filter for `verbose` `-v` flags over `RUST_LOG`, over the configured default level:
/// a level, or levels per target (`info,omadmd::session=debug`). tracing's `Targets`, not
/// its `EnvFilter`: the same syntax but for span and field filters, without a regular
/// expression engine in every program (docs/performance.md: the idle daemon's memory is
/// mostly its code's pages).
pub fn filter(verbose: u8, default_level: &str) -> Targets {
    let parse = |s: &str| s.parse::<Targets>().ok();
    let level = |l| Targets::new().with_default(l);
    match verbose {
        0 => std::env::var("RUST_LOG")
            .ok()
            .and_then(|v| parse(&v))
            .or_else(|| parse(default_level))
            .unwrap_or_else(|| level(tracing::Level::INFO)),
        1 => level(tracing::Level::DEBUG),
        _ => level(tracing::Level::TRACE),
    }
}

/// True when `journal_stream` (`JOURNAL_STREAM`: "device:inode") names the file stderr is
/// (`stderr_id`): systemd connected the service's stderr to the journal.
pub fn stderr_is_journal(journal_stream: Option<&str>, stderr_id: Option<(u64, u64)>) -> bool {
    let (Some(stream), Some((dev, ino))) = (journal_stream, stderr_id) else {
        return false;
    };
    stream
        .split_once(':')
        .and_then(|(d, i)| Some((d.parse::<u64>().ok()?, i.parse::<u64>().ok()?)))
        == Some((dev, ino))
}

fn stderr_id() -> Option<(u64, u64)> {
    let st = nix::sys::stat::fstat(std::io::stderr()).ok()?;
    // st_dev and st_ino are u64 on Linux's 64-bit targets, narrower elsewhere.
    #[allow(clippy::useless_conversion)]
    Some((u64::from(st.st_dev), u64::from(st.st_ino)))
}

/// Installs the global subscriber; journal entries carry `identifier` as their
/// `SYSLOG_IDENTIFIER` (the program's own name, so `journalctl -t omadm-fwupd` shows the
/// handler's lines and `-t omadmd` the daemon's alone). Returns where log lines go and,
/// when the journal was wanted but could not be used, why (for a start-up line).
pub fn init(target: Target, filter: Targets, identifier: &str) -> (&'static str, Option<String>) {
    let registry = tracing_subscriber::registry().with(filter);
    let journal_stream = std::env::var("JOURNAL_STREAM").ok();
    let to_journal =
        target == Target::Auto && stderr_is_journal(journal_stream.as_deref(), stderr_id());
    let mut why_not = None;
    if to_journal {
        if !Path::new(JOURNAL_SOCKET).exists() {
            why_not = Some(format!("{JOURNAL_SOCKET} does not exist"));
        } else {
            match tracing_journald::layer() {
                Ok(journald) => {
                    let journald = journald.with_syslog_identifier(identifier.to_owned());
                    let done = registry.with(journald).try_init().is_ok();
                    return (if done { "journal" } else { "unchanged" }, None);
                }
                // An error, not a panic: fall back to stderr, which systemd also keeps.
                Err(e) => why_not = Some(format!("the journal socket refused us: {e}")),
            }
        }
    }
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    let result = if to_journal {
        registry.with(stderr.without_time()).try_init()
    } else {
        registry.with(stderr).try_init()
    };
    (
        if result.is_ok() {
            "stderr"
        } else {
            "unchanged"
        },
        why_not,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_journal_is_used_only_when_stderr_is_it() {
        let rows = [
            (Some("8:1234"), Some((8, 1234)), true),
            (Some("8:1234"), Some((8, 1235)), false),
            (Some("8:1234"), None, false),
            (None, Some((8, 1234)), false),
            (Some("garbage"), Some((8, 1234)), false),
            (Some("8:"), Some((8, 0)), false),
            (Some("18446744073709551615:1"), Some((u64::MAX, 1)), true),
        ];
        for (stream, id, want) in rows {
            assert_eq!(stderr_is_journal(stream, id), want, "{stream:?} {id:?}");
        }
    }
}
