//! Command-line definitions of `omadm-agent` (in the library for its man page).

use clap::Parser;

/// The omadmd desktop agent: shows the pages device-management servers ask you to see.
///
/// It runs in a desktop session (the omadm-agent.service user unit or the XDG autostart
/// entry start it), registers with omadmd(8) on the system bus, and on each SHOW request
/// shows a desktop notification naming the server and opens the page through the
/// OpenURI portal, else gio open, else xdg-open, without waiting for the browser; a launch
/// that fails is reported to the server as a failure. It registers again whenever omadmd
/// restarts.
#[derive(Debug, Parser)]
#[command(name = "omadm-agent", version, after_long_help = AGENT_AFTER)]
pub struct Cli {
    /// Do not show desktop notifications.
    #[arg(long)]
    pub no_notify: bool,
}

const AGENT_AFTER: &str = "\
Examples:
  systemctl --user enable --now omadm-agent   start it with the desktop session
  omadm-agent --no-notify                     run it by hand, without notifications

Files:
  /usr/lib/systemd/user/omadm-agent.service   the user unit
  /etc/xdg/autostart/omadm-agent.desktop      the autostart entry, for sessions without
                                              systemd user units

Environment:
  DBUS_SYSTEM_BUS_ADDRESS    where omadmd is (default: the system bus)
  DBUS_SESSION_BUS_ADDRESS   the desktop session: notifications and the OpenURI portal

See also: omadmd(8), omadmctl-agent(1) (a terminal agent), xdg-open(1), gio(1).";
