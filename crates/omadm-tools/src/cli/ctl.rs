//! Command-line definitions of `omadmctl` (in the library so man pages and shell
//! completions are generated from them; see `packaging/man`).

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use clap_complete::engine::ArgValueCandidates;

use super::{Bytes, complete};

/// Control and inspect the omadmd OMA DM client.
///
/// omadmctl talks to omadmd(8) over the system bus (org.omadm.Client1). Every user may
/// read its state, accounts, history and tree; starting sessions, queuing alerts and
/// handing over notifications need root or polkit's consent (with a polkit agent running,
/// it asks for a password).
#[derive(Debug, Parser)]
#[command(name = "omadmctl", version, after_long_help = OMADMCTL_AFTER)]
pub struct Cli {
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Cmd,
}

const OMADMCTL_AFTER: &str = "\
Examples:
  omadmctl status                          is it running, and how many accounts and agents
  omadmctl account list                    each account, its last session, its next attempt
  omadmctl account add --dry-run acme.json what provisioning this file would change
  omadmctl session start --server acme-dms --wait   a session now, followed as it goes
  omadmctl session cancel                  end the session running now
  omadmctl monitor --json                  the daemon's events as JSON lines
  omadmctl tree get 'urn:oma:mo:oma-dm-devinfo:1.2//DevID'
  omadmctl reload                          re-read the configuration and bootstrap.d

Exit status: 0 success; 1 failure (with --wait: the session did not end normally);
2 bad arguments; 3 omadmd is not running or the bus cannot be reached; 4 access denied.

Environment:
  DBUS_SYSTEM_BUS_ADDRESS   talk to omadmd on another bus than the system bus

Files:
  /usr/share/polkit-1/actions/org.omadm.Client1.policy   who may change what
  /etc/polkit-1/rules.d/                    where an administrator widens or narrows it

Authorization: the polkit actions are org.omadm.Client1.start-session, .cancel-session,
.queue-alert, .inject-notification, .register-handler, .register-agent,
.request-configuration, .manage-accounts and .reload. Without polkit only root may
change anything.

See also: omadmd(8), omadm-agent(1), omadmd.toml(5), pkttyagent(1); JSON output:
/usr/share/doc/omadmd/cli-json.md.";

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// The daemon's state and version.
    Status,
    /// The DM accounts (the same as `account list`).
    Accounts,
    /// Add, remove and look at DM accounts without restarting the daemon.
    #[command(subcommand)]
    Account(AccountCmd),
    /// Recent DM sessions, newest first.
    History {
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Sessions.
    #[command(subcommand)]
    Session(SessionCmd),
    /// The management tree (read-only; secrets and "No Get" nodes never shown).
    #[command(subcommand)]
    Tree(TreeCmd),
    /// Generic Alerts.
    #[command(subcommand)]
    Alert(AlertCmd),
    /// Act as a SHOW agent in this terminal: print the pages servers ask the user to see
    /// (with --json, a JSON line each).
    Agent {
        /// Also open them in a browser (gio open, else xdg-open). A launch that fails is
        /// reported to the server as a failure, not as shown.
        #[arg(long)]
        open: bool,
        /// Ask on the terminal first (y/N); no, or no answer before the daemon gives up
        /// (sessions.show-timeout-secs), tells the server the user declined (507).
        #[arg(long, conflicts_with = "decline")]
        ask: bool,
        /// Decline every request (the server is told the user refused).
        #[arg(long)]
        decline: bool,
    },
    /// Hand the daemon a DM Notification, as another transport (an SMS bridge) would: one
    /// from a file, or one made up here for a server to test the wake-up path.
    Notify(NotifyArgs),
    /// Make the daemon read its configuration and /etc/omadmd/bootstrap.d again (as
    /// `systemctl reload omadmd` does): new and changed bootstrap files are applied, and
    /// what changed is said, with the settings that need a restart.
    Reload,
    /// Print what the daemon does as it happens, one line each (JSON lines with --json):
    /// sessions starting and finishing, alerts queued and delivered, notifications
    /// accepted, SHOW agents coming and going, the daemon itself. Runs until interrupted.
    Monitor,
}

/// `omadmctl account`.
#[derive(Debug, Subcommand)]
pub enum AccountCmd {
    /// Every account, with its last session, queue and owed session.
    List,
    /// One account and where it stands.
    Show {
        /// The server's id (SrvID).
        #[arg(add = ArgValueCandidates::new(complete::servers))]
        server: String,
    },
    /// Provision accounts from a bootstrap file (the format of /etc/omadmd/bootstrap.d,
    /// docs/bootstrap.md), applied at once as a bootstrap: each account is owed a session
    /// with BootstrapComplete, which starts right away.
    Add {
        /// The bootstrap file (application/dmmo+json).
        file: PathBuf,
        /// Check it and say what it would change; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Re-bootstrap: replace the account of a server that has one already (by default
        /// only the file name that provisioned it may change it).
        #[arg(long)]
        replace: bool,
    },
    /// Remove a server's account and what only it owned (the MO instances it created,
    /// its queued alerts, subscriptions and registrations), in one transaction. Its
    /// session history stays.
    Remove {
        /// The server's id (SrvID).
        #[arg(add = ArgValueCandidates::new(complete::servers))]
        server: String,
    },
}

/// `omadmctl notify`: a file, or `--server` and what to sign with.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["file", "server"])))]
pub struct NotifyArgs {
    /// A file holding a binary notification (a bare Package#0 or a WAP Push).
    pub file: Option<PathBuf>,
    /// Make a notification for this server (its SERVER-ID) instead.
    #[arg(long, value_name = "ID", conflicts_with = "file", add = ArgValueCandidates::new(complete::servers))]
    pub server: Option<String>,
    /// Its NOTIFICATION-ID (the server's own id for the wake-up; sessions report it).
    #[arg(long, value_name = "N", requires = "server")]
    pub notification_id: Option<u16>,
    /// Sign it with this notification secret (base64; the account's Auth/Noti/Secret).
    /// The command line is visible to other users: prefer --secret-file.
    #[arg(long, value_name = "B64", value_parser = super::base64_arg, requires = "server")]
    pub secret: Option<Bytes>,
    /// Read the base64 notification secret from this file.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "secret",
        requires = "server"
    )]
    pub secret_file: Option<PathBuf>,
    /// The account's notification auth-data (base64; Auth/Noti/Data) for the digest.
    #[arg(long, value_name = "B64", value_parser = super::base64_arg, requires = "server")]
    pub auth_data: Option<Bytes>,
    /// Ask the server to send the MO list (REQ-MOS).
    #[arg(long, requires = "server")]
    pub req_mos: bool,
    /// Wrap it in a connectionless WAP Push, as over SMS.
    #[arg(long, requires = "server")]
    pub wap: bool,
    /// Write the notification to this file instead of handing it to the daemon.
    #[arg(long, value_name = "FILE", requires = "server")]
    pub out: Option<PathBuf>,
}

/// `omadmctl session`.
#[derive(Debug, Subcommand)]
pub enum SessionCmd {
    /// Ask for a client-initiated session.
    Start {
        /// With this server only (default: every server).
        #[arg(long, add = ArgValueCandidates::new(complete::servers))]
        server: Option<String>,
        /// Wait until it finishes, showing what it does (packages, commands) as it goes,
        /// and report how it went (exit 1 unless it ended normally).
        #[arg(long)]
        wait: bool,
        /// Wait at most this long (implies --wait; default 900 with --wait). The session
        /// goes on in the daemon; `omadmctl session cancel` ends it.
        #[arg(long, value_name = "SECS")]
        timeout: Option<u64>,
    },
    /// End a running session cleanly: the server sees the connection end, the commands
    /// already applied stay, the history says "cancelled". Without an argument, the one
    /// session running.
    Cancel {
        /// The session's history id (see `omadmctl history`).
        #[arg(conflicts_with = "server", add = ArgValueCandidates::new(complete::running_sessions))]
        id: Option<i64>,
        /// The session running with this server.
        #[arg(long, add = ArgValueCandidates::new(complete::servers))]
        server: Option<String>,
    },
}

/// `omadmctl tree`.
#[derive(Debug, Subcommand)]
pub enum TreeCmd {
    /// The MO instances.
    List,
    /// The data at a ClientURI (application/dmmo+json).
    Get {
        /// e.g. urn:oma:mo:oma-dm-devinfo:1.2//DevID
        #[arg(add = ArgValueCandidates::new(complete::client_uris))]
        client_uri: String,
    },
    /// Make sure the tree holds an MO: when it has no instance, fetch it from the
    /// ServerURI a server gave for it with DEFAULT (TS §5.3.10), and say where it came from.
    Configure {
        /// The MOID, e.g. urn:oma:mo:ext-acme-vpn:1.0
        moid: String,
    },
}

/// `omadmctl alert`.
#[derive(Debug, Subcommand)]
pub enum AlertCmd {
    /// Queue a Generic Alert for a server; it is sent in the next session.
    Send {
        /// The server's id.
        #[arg(long, add = ArgValueCandidates::new(complete::servers))]
        server: String,
        /// AlertType URN.
        #[arg(long = "type")]
        alert_type: String,
        /// SourceURI.
        #[arg(long)]
        source: Option<String>,
        /// Mark (fatal, critical, minor, warning, informational, harmless, indeterminate).
        #[arg(long)]
        mark: Option<String>,
        /// Data: a JSON object (sent with DataType application/json).
        #[arg(long)]
        data: Option<String>,
    },
}
