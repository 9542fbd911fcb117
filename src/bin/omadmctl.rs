//! `omadmctl`: the administrator's command-line client of omadmd. It talks to the daemon
//! over D-Bus; the commands arrive with the daemon's D-Bus API.

use clap::Parser;

/// Control and inspect the omadmd OMA DM client.
#[derive(Debug, Parser)]
#[command(name = "omadmctl", version, about)]
struct Cli {}

fn main() {
    let _ = Cli::parse();
}
