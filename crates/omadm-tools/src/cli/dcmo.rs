//! Command-line definitions of `omadm-dcmo` (in the library for its man page).

use clap::Parser;

/// The omadmd DCMO handler: device capabilities a server can switch.
///
/// It keeps one DCMO instance (urn:oma:mo:oma-dcmo:1.0) per capability in omadmd's tree:
/// USB (new USB devices) and Camera (USB video class devices), both through usbguard's
/// D-Bus API, named by their Property, with Enabled and Attached read back from the
/// machine. A server switches a capability by EXECing its Operations/Enable or
/// Operations/Disable: the handler answers 202, changes usbguard's policy (docs/dcmo.md
/// says to what), and reports the TS's result code in a Generic Alert of type
/// urn:oma:at:dcmo:1.0:OperationComplete. It owns org.omadm.Dcmo1 and registers under it,
/// again whenever omadmd restarts.
#[derive(Debug, Parser)]
#[command(name = "omadm-dcmo", version, after_long_help = DCMO_AFTER)]
pub struct Cli {
    /// More log lines (-v debug, -vv trace).
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

const DCMO_AFTER: &str = "\
Examples:
  omadmctl tree get urn:oma:mo:oma-dcmo:1.0/USB/Enabled   whether USB devices are allowed

Environment:
  DBUS_SYSTEM_BUS_ADDRESS   where omadmd and usbguard are (default: the system bus)

Exit status:
  0 stopped by a signal; 1 it could not start (no bus, the name is taken)

See also: omadmd(8), usbguard(1), omadmctl-tree(1).";
