//! The command line of `omadmd`, kept in the library so its man pages are generated from it
//! (`packaging/man`, tests/it/generated.rs).

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
