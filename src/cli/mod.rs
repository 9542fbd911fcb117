//! Command-line definitions of `omadmd` (and of `omadmctl` in [`ctl`]), kept in the library
//! so man pages and shell completions are generated from them (`packaging/man`).

pub mod agent;
pub mod complete;
pub mod ctl;
pub mod fwupd;
pub mod packagekit;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{Fragment, Sources};

/// OMA DM 2.0 client daemon.
///
/// omadmd lets a device management server manage this machine over the OMA DM 2.0
/// protocol. It keeps the management tree in SQLite, runs DM sessions with the servers of
/// its accounts over HTTPS, wakes on DM Notifications (UDP port 2948, or from systemd's
/// omadmd.socket), and serves org.omadm.Client1 on the system bus for omadmctl(1), SHOW
/// agents and EXEC handlers. systemd starts it as omadmd.service; run without a command it
/// serves in the foreground until SIGTERM or SIGINT, which finish the current command and
/// record a running session as interrupted.
#[derive(Debug, Parser)]
#[command(name = "omadmd", version, about = "OMA DM 2.0 device management client daemon", after_long_help = OMADMD_AFTER)]
pub struct Cli {
    /// Main configuration file [default: /etc/omadmd/omadmd.toml, if present].
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Prefix for every default system path (/etc, /run, /usr/lib, /var/lib); for tests and
    /// demos that run unprivileged.
    #[arg(long, global = true, value_name = "DIR")]
    pub config_root: Option<PathBuf>,
    /// State directory holding the database [default: $STATE_DIRECTORY or /var/lib/omadmd].
    #[arg(long, global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Directory of factory bootstrap files [default: /etc/omadmd/bootstrap.d].
    #[arg(long, global = true, value_name = "DIR")]
    pub bootstrap_dir: Option<PathBuf>,
    /// DDF directory; repeat for several (replaces the configured list).
    #[arg(long = "ddf-dir", global = true, value_name = "DIR")]
    pub ddf_dirs: Vec<PathBuf>,
    /// More log output (-v debug, -vv trace); RUST_LOG also works.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// What to do [default: run the daemon].
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The long help's closing paragraphs; each that starts with "Heading:" becomes a man
/// page section of that name (FILES, ENVIRONMENT, ...; see tests/it/generated.rs).
const OMADMD_AFTER: &str = "\
Examples:
  systemctl enable --now omadmd    run it as a service (the usual way)
  omadmd check-config              check the configuration and bootstrap files, change nothing
  omadmd dump-tree                 the management tree, offline (no secrets)
  omadmd history --json            the recent sessions, offline
  omadmd --config-root /tmp/demo -v   run unprivileged under a scratch root (demos, tests)

Files:
  /etc/omadmd/omadmd.toml, /etc/omadmd/config.d/*.toml, /run/omadmd/config.d/*.toml,
  /usr/lib/omadmd/config.d/*.toml   configuration (omadmd.toml(5))
  /etc/omadmd/bootstrap.d/          factory bootstrap files (DM accounts)
  /usr/share/omadmd/ddf/, /etc/omadmd/ddf/   MO definitions (DDF)
  /var/lib/omadmd/tree.db           the management tree, owner-only
  /usr/lib/systemd/system/omadmd.service, omadmd.socket   the units

Environment:
  STATE_DIRECTORY           set by systemd: where tree.db lives
  LISTEN_FDS, LISTEN_PID    set by systemd: the notification socket
  NOTIFY_SOCKET             set by systemd: READY, RELOADING, STOPPING and STATUS go there
  JOURNAL_STREAM            set by systemd: log to the journal with structured fields
  DBUS_SYSTEM_BUS_ADDRESS   another bus than the system bus (tests, demos)
  RUST_LOG                  log filter, overriding log.level
  MALLOC_ARENA_MAX, MALLOC_MMAP_THRESHOLD_   override the allocator settings omadmd
                            chooses for a small idle daemon

Signals:
  SIGTERM, SIGINT   stop cleanly (a running session is recorded as interrupted)
  SIGHUP            reload: read the configuration and bootstrap.d again (systemctl
                    reload omadmd; omadmctl reload does the same and says what changed)

Exit status: 0 after a clean stop; 78 for a bad configuration or a database that is
refused or not writable (an administrator must act; the unit does not restart it);
74 after an I/O error during a write (systemd restarts it and SQLite's recovery settles
the write); 1 for other failures to start or to keep serving (logged); 2 for bad
arguments. Killed by systemd's watchdog when a loop is wedged.

See also: omadmctl(1), omadm-agent(1), omadmd.toml(5), systemd.service(5);
/usr/share/doc/omadmd/.";

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon in the foreground (the default).
    Run,
    /// Check the configuration and the bootstrap files, print the merged configuration and
    /// what start-up would do with each bootstrap file, and exit (78 when anything would be
    /// refused). Writes nothing.
    CheckConfig {
        /// Print JSON: the files read, the merged settings and each bootstrap file's verdict.
        #[arg(long)]
        json: bool,
    },
    /// Print the management tree from the database and exit (offline; never shows "No Get"
    /// values or secrets).
    DumpTree {
        /// Print application/dmmo+json instead of a listing.
        #[arg(long)]
        json: bool,
    },
    /// Print the recent DM sessions from the database and exit (offline).
    History {
        /// How many sessions, newest first.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

impl Cli {
    /// The configuration sources these flags describe.
    pub fn sources(&self) -> Sources {
        let mut flags = Fragment::default();
        flags.paths.state_dir = self.state_dir.clone();
        flags.paths.bootstrap_dir = self.bootstrap_dir.clone();
        if !self.ddf_dirs.is_empty() {
            flags.paths.ddf_dirs = Some(self.ddf_dirs.clone());
        }
        Sources {
            root: self.config_root.clone(),
            main: self.config.clone(),
            flags,
            state_directory_env: std::env::var_os("STATE_DIRECTORY").and_then(|s| {
                s.to_str()
                    .and_then(|s| s.split(':').next())
                    .map(PathBuf::from)
            }),
        }
    }
}

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

/// Writes to standard output. When the reader has gone (`omadmctl history | head -1`), the
/// program ends quietly with status 0, as the shell's own tools do, instead of panicking
/// on the broken pipe; another write error ends it with 1 and a message. On a terminal,
/// what a server may have put in the text cannot reach the terminal as a control sequence
/// ([`terminal_safe`], as `ls` does); into a pipe or a file it goes as it is.
pub fn emit(args: std::fmt::Arguments<'_>) {
    use std::io::{IsTerminal as _, Write as _};
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let written = if out.is_terminal() {
        out.write_all(terminal_safe(&args.to_string()).as_bytes())
    } else {
        out.write_fmt(args)
    };
    if let Err(e) = written.and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("cannot write the output: {e}");
        std::process::exit(1);
    }
}

/// Writes a message to standard error, made [`terminal_safe`] when that is a terminal.
pub fn emit_err(args: std::fmt::Arguments<'_>) {
    use std::io::{IsTerminal as _, Write as _};
    let stderr = std::io::stderr();
    let mut err = stderr.lock();
    // Nowhere to say that standard error failed.
    let _ = if err.is_terminal() {
        err.write_all(terminal_safe(&args.to_string()).as_bytes())
    } else {
        err.write_fmt(args)
    };
}

/// `eprintln!` through [`emit_err`].
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::cli::emit_err(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Text for a terminal: control characters other than newline and tab (so escape
/// sequences) and bidi overrides are replaced by `?`.
pub fn terminal_safe(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| {
        (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
    };
    if text.chars().any(unsafe_char) {
        text.chars()
            .map(|c| if unsafe_char(c) { '?' } else { c })
            .collect::<String>()
            .into()
    } else {
        text.into()
    }
}

/// `print!` through [`emit`].
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::emit(format_args!($($arg)*))
    };
}

/// `println!` through [`emit`].
#[macro_export]
macro_rules! outln {
    () => {
        $crate::cli::emit(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::emit(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// A line for a terminal, with what a server may have put in it made harmless: control
/// characters (escape sequences) and bidi overrides are replaced by `?`.
pub fn printable(line: &str) -> String {
    line.chars()
        .map(|c| {
            if c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}') {
                '?'
            } else {
                c
            }
        })
        .collect()
}

/// A handler binary's `main`: logging at `verbose`, a single-threaded runtime running
/// `run`, exit 0 when it returns, 1 with the error said when it fails.
pub fn handler_main<F>(name: &str, verbose: u8, run: F) -> std::process::ExitCode
where
    F: std::future::Future<Output = anyhow::Result<()>>,
{
    crate::logging::init(
        crate::logging::Target::Auto,
        crate::logging::filter(verbose, "info"),
        name,
    );
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{name}: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("{name}: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Seconds since the epoch, now.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// When something happened, for a table: how long before `now` ("42s ago", "3h ago",
/// "5d ago"); "-" for never (0).
pub fn ago(secs: i64, now: i64) -> String {
    if secs == 0 {
        return "-".into();
    }
    match now.saturating_sub(secs) {
        d if d < 0 => "in the future".into(),
        d if d < 60 => format!("{d}s ago"),
        d if d < 3600 => format!("{}m ago", d / 60),
        d if d < 86_400 => format!("{}h ago", d / 3600),
        d => format!("{}d ago", d / 86_400),
    }
}

/// When something will happen: "now", "in 42s", "in 3m", "in 2h", "in 5d".
pub fn until(secs: i64, now: i64) -> String {
    match secs.saturating_sub(now) {
        d if d <= 0 => "now".into(),
        d if d < 60 => format!("in {d}s"),
        d if d < 3600 => format!("in {}m", d / 60),
        d if d < 86_400 => format!("in {}h", d / 3600),
        d => format!("in {}d", d / 86_400),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn printable_lines_carry_no_escapes() {
        assert_eq!(
            super::printable("1 GET, 1 \u{1b}]52;c;ZXZpbA==\u{7}X \u{202E}evil"),
            "1 GET, 1 ?]52;c;ZXZpbA==?X ?evil"
        );
        assert_eq!(super::printable("plain: fine"), "plain: fine");
        // Whole outputs keep their lines and tabs.
        assert_eq!(
            super::terminal_safe("a\tb\n\u{1b}[2Jc\r\u{2067}d\n"),
            "a\tb\n?[2Jc??d\n"
        );
        assert!(matches!(
            super::terminal_safe("plain\n"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn until_reads_like_a_person_would_say_it() {
        let now = 1_000_000;
        for (secs, want) in [
            (now - 5, "now"),
            (now, "now"),
            (now + 59, "in 59s"),
            (now + 60, "in 1m"),
            (now + 7200, "in 2h"),
            (now + 86_400 * 3, "in 3d"),
        ] {
            assert_eq!(super::until(secs, now), want, "{secs}");
        }
    }

    #[test]
    fn ago_reads_like_a_person_would_say_it() {
        let now = 1_000_000;
        for (secs, want) in [
            (0, "-"),
            (now, "0s ago"),
            (now - 59, "59s ago"),
            (now - 60, "1m ago"),
            (now - 3599, "59m ago"),
            (now - 7200, "2h ago"),
            (now - 86_400 * 3, "3d ago"),
            (now + 5, "in the future"),
        ] {
            assert_eq!(super::ago(secs, now), want, "{secs}");
        }
    }
}
