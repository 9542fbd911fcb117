//! Command-line definitions of `omadm-packagekit` (in the library for its man page).

use clap::Parser;

/// The omadmd SCOMO handler: the installed software, through PackageKit.
///
/// It keeps one SCOMO instance (urn:oma:mo:oma-scomo:1.0, MIID SCOMO) in omadmd's tree whose
/// Inventory/Deployed lists the installed packages as PackageKit reports them (ID, Name,
/// Version, Description, State, Status), written whole in one transaction when it changed:
/// at start, when omadmd returns, and after another program's PackageKit transaction.
/// It owns org.omadm.PackageKit1 and registers under it. A server removes a package by
/// EXECing its Operations/Remove (202, then the OperationComplete alert with 1200 or 1408);
/// installing through Download/<x> is not carried out yet (EXECs answer 501).
#[derive(Debug, Parser)]
#[command(name = "omadm-packagekit", version, after_long_help = PACKAGEKIT_AFTER)]
pub struct Cli {
    /// More log lines (-v debug, -vv trace).
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

const PACKAGEKIT_AFTER: &str = "\
Examples:
  omadmctl tree get 'urn:oma:mo:oma-scomo:1.0/SCOMO/Inventory/Deployed/bash/Version'

Environment:
  DBUS_SYSTEM_BUS_ADDRESS   where omadmd and PackageKit are (default: the system bus)

Exit status:
  0 stopped by a signal; 1 it could not start (no bus, the name is taken)

See also: omadmd(8), omadm-fwupd(8), pkcon(1).";
