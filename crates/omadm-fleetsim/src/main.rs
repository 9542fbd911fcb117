//! `omadm-fleetsim`: runs a scenario's fleet of omadmd devices against a DM server and
//! writes what happened (docs/fleetsim.md).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// A fleet of OMA DM 2.0 devices in one process, each omadmd's own client code, against a
/// DM server: per-second request rate, session outcomes, alert latencies, memory.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "The scenario file and the report are described in docs/fleetsim.md."
)]
struct Cli {
    /// The scenario (JSON): devices, account template, session settings, alerts,
    /// notifications, duration.
    #[arg(long, short)]
    scenario: PathBuf,
    /// The DM server's URL (put where the account's SrvURI says `{server}`).
    #[arg(long)]
    server: String,
    /// Where the devices' root directories go (a directory of its own is made in it and
    /// removed at the end); a tmpfs keeps start-up fast for large fleets.
    #[arg(long, default_value_os_t = std::env::temp_dir())]
    scratch: PathBuf,
    /// Keep the devices' directories (their trees and histories) after the run.
    #[arg(long)]
    keep: bool,
    /// Write the report as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// The server's record (omadm-testserver --record), read after the run to count lost
    /// and duplicated alerts.
    #[arg(long)]
    server_record: Option<PathBuf>,
    /// Show the devices' log lines at this level on stderr (`warn`, `info`; a `RUST_LOG`
    /// filter).
    #[arg(long)]
    log: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("omadm-fleetsim: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    omadmd::memory::tune_allocator();
    let scenario = omadm_fleetsim::Scenario::load(&cli.scenario)?;
    let dir = tempfile::Builder::new()
        .prefix("omadm-fleetsim-")
        .tempdir_in(&cli.scratch)
        .map_err(|e| {
            anyhow::anyhow!("cannot make a directory in {}: {e}", cli.scratch.display())
        })?;
    let opts = omadm_fleetsim::Options {
        server: cli.server.clone(),
        scratch: dir.path().to_owned(),
    };
    let report = omadm_fleetsim::simulate(
        &scenario,
        &opts,
        cli.log.as_deref(),
        cli.server_record.as_deref(),
    )?;
    if cli.keep {
        let kept = dir.keep();
        eprintln!("omadm-fleetsim: devices kept in {}", kept.display());
    }
    print!("{}", report.summary());
    if let Some(path) = &cli.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}
