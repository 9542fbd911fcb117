//! Command-line definitions of `omadm-fwupd` (in the library for its man page).

use std::path::PathBuf;

use clap::Parser;

/// The omadmd FUMO handler: firmware updates through fwupd.
///
/// It keeps one FUMO instance (urn:oma:mo:oma-fumo:1.0) per updatable fwupd device in
/// omadmd's tree, named by fwupd's device ID, with the installed firmware's name and
/// version, in step with fwupd's device signals. A server updates a component by setting
/// Download/PkgURL or DownloadAndUpdate/PkgURL and EXECing Download, Update or
/// DownloadAndUpdate: the handler answers 202, has omadmd fetch the cabinet under its HTTP
/// rules (https, the configured CAs, where URLs may lead), installs it with fwupd, drives
/// State through the FUMO values, and reports the result code in a Generic Alert. It
/// owns org.omadm.Fwupd1 and registers under it, again whenever omadmd restarts, so an
/// update that finishes after a reboot is reported after it.
#[derive(Debug, Parser)]
#[command(name = "omadm-fwupd", version, after_long_help = FWUPD_AFTER)]
pub struct Cli {
    /// Where downloaded packages wait for their update.
    #[arg(
        long,
        value_name = "DIR",
        env = "STATE_DIRECTORY",
        default_value = "/var/lib/omadm-fwupd"
    )]
    pub state_dir: PathBuf,
    /// The largest firmware package fetched, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 30)]
    pub max_download_bytes: u64,
    /// More log lines (-v debug, -vv trace).
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

const FWUPD_AFTER: &str = "\
Examples:
  systemctl enable --now omadm-fwupd   run it beside omadmd
  omadmctl tree list                   the FUMO instances it keeps

Files:
  /usr/lib/systemd/system/omadm-fwupd.service   its unit
  /usr/share/omadmd/ddf/oma-fumo-1.0.ddf.xml    the FUMO definition it writes by
  /var/lib/omadm-fwupd/                         downloaded packages

Environment:
  DBUS_SYSTEM_BUS_ADDRESS   where omadmd and fwupd are (default: the system bus)
  STATE_DIRECTORY           the package directory (systemd sets it)

Exit status:
  0 stopped by a signal; 1 it could not start (no bus, the name is taken)

See also: omadmd(8), fwupdmgr(1), omadmctl-tree(1).";
