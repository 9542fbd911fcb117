//! Command-line definitions of `omadm-packagekit` (in the library for its man page).

use std::path::PathBuf;

use clap::Parser;

/// The omadmd SCOMO handler: the installed software, through PackageKit.
///
/// It keeps one SCOMO instance (urn:oma:mo:oma-scomo:1.0, MIID SCOMO) in omadmd's tree whose
/// Inventory/Deployed lists the installed packages as PackageKit reports them (ID, Name,
/// Version, Description, State, Status), written whole in one transaction when it changed:
/// at start, when omadmd returns, and after another program's PackageKit transaction.
/// It owns org.omadm.PackageKit1 and registers under it, again whenever omadmd restarts. A
/// server installs a package by adding Download/<x> with a PkgURL (a .deb or .rpm, which
/// omadmd fetches under its HTTP rules, installed with PackageKit's InstallFiles) or a Name (a
/// package of the device's repositories, InstallPackages) and EXECing its
/// Operations/DownloadInstall; it removes one by EXECing Inventory/Deployed/<x>/Operations/
/// Remove. Each EXEC is answered 202 and its outcome reported as the
/// urn:oma:at:scomo:1.0:OperationComplete alert with a SCOMO result code (1200 success).
#[derive(Debug, Parser)]
#[command(name = "omadm-packagekit", version, after_long_help = PACKAGEKIT_AFTER)]
pub struct Cli {
    /// Where downloaded packages wait for their install.
    #[arg(
        long,
        value_name = "DIR",
        env = "STATE_DIRECTORY",
        default_value = "/var/lib/omadm-packagekit"
    )]
    pub state_dir: PathBuf,
    /// The largest package fetched, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 30)]
    pub max_download_bytes: u64,
    /// More log lines (-v debug, -vv trace).
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

const PACKAGEKIT_AFTER: &str = "\
Examples:
  omadmctl tree get 'urn:oma:mo:oma-scomo:1.0/SCOMO/Inventory/Deployed/bash/Version'

Files:
  /usr/lib/systemd/system/omadm-packagekit.service   its unit
  /usr/share/omadmd/ddf/oma-scomo-1.0.ddf.xml        the SCOMO definition it writes by
  /usr/share/polkit-1/rules.d/50-omadm-packagekit.rules  what PackageKit lets it do
  /var/lib/omadm-packagekit/                         packages being installed

Environment:
  DBUS_SYSTEM_BUS_ADDRESS   where omadmd and PackageKit are (default: the system bus)
  STATE_DIRECTORY           the package directory (systemd sets it)

Exit status:
  0 stopped by a signal; 1 it could not start (no bus, the name is taken)

See also: omadmd(8), omadm-fwupd(8), pkcon(1).";
