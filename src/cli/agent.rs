//! Command-line definitions of `omadm-agent` (in the library for its man page).

use clap::Parser;

/// The omadmd desktop agent: shows the pages device-management servers ask you to see.
///
/// It runs in a desktop session (the omadm-agent.service user unit or the XDG autostart
/// entry start it), registers with omadmd(8) on the system bus, and on each SHOW request
/// shows a desktop notification naming the server and opens the page through the
/// OpenURI portal, or xdg-open when there is no portal. It registers again whenever omadmd
/// restarts. See also: omadmctl-agent(1), a terminal agent.
#[derive(Debug, Parser)]
#[command(name = "omadm-agent", version)]
pub struct Cli {
    /// Do not show desktop notifications.
    #[arg(long)]
    pub no_notify: bool,
}
