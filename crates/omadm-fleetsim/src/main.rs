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
    after_help = "Examples:
  omadm-fleetsim -s scenario.json --server https://dm.example.net --json report.json --plot run.svg
      runs the scenario's devices against your DM server (the account's srv_uri says where
      {server} goes; http_user/http_password and [http] ca-file in the scenario's config
      for credentials and a private CA)
  omadm-fleetsim -s big.json --server URL --shard 1/4 --counted p1.json &  (... 2/4, 3/4, 4/4)
  omadm-fleetsim -s big.json --merge p1.json p2.json p3.json p4.json --plot big.svg
      a fleet larger than one process's file descriptors, in four processes

The scenario file and the report are described in docs/fleetsim.md; scripts/fleet-bench.sh
runs the benchmark of docs/performance.md."
)]
struct Cli {
    /// The scenario (JSON): devices, account template, session settings, alerts,
    /// notifications, duration.
    #[arg(long, short, value_name = "FILE")]
    scenario: PathBuf,
    /// The DM server's URL (put where the account's SrvURI says `{server}`).
    #[arg(long, value_name = "URL", required_unless_present = "merge")]
    server: Option<String>,
    /// Run only part K of N of the fleet (devices K-1, K-1+N, ...), for fleets larger than
    /// one process can hold open (each device keeps about six file descriptors); write
    /// each part's counts with --counted and report on them together with --merge.
    #[arg(long, value_name = "K/N", default_value = "1/1")]
    shard: omadm_fleetsim::Shard,
    /// Write what was counted (per second, per device) here, for --merge.
    #[arg(long, value_name = "FILE")]
    counted: Option<PathBuf>,
    /// Instead of running: report on these parts' --counted files as one fleet.
    #[arg(long, value_name = "FILE", num_args = 1.., conflicts_with_all = ["server", "counted"])]
    merge: Vec<PathBuf>,
    /// Where the devices' root directories go (a directory of its own is made in it and
    /// removed at the end); a tmpfs keeps start-up fast for large fleets.
    #[arg(long, value_name = "DIR", default_value_os_t = std::env::temp_dir())]
    scratch: PathBuf,
    /// Keep the devices' directories (their trees and histories) after the run.
    #[arg(long)]
    keep: bool,
    /// Write the report as JSON here.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Draw the run here as SVG: requests answered and turned away per second, and
    /// sessions in flight.
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,
    /// The server's record (omadm-testserver --record), read after the run to count lost
    /// and duplicated alerts.
    #[arg(long, value_name = "FILE")]
    server_record: Option<PathBuf>,
    /// Show the devices' log lines at this level on stderr (`warn`, `info`; a `RUST_LOG`
    /// filter).
    #[arg(long, value_name = "LEVEL")]
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
    open_files_up_to_the_hard_limit();
    let scenario = omadm_fleetsim::Scenario::load(&cli.scenario)?;
    let counted = match &cli.server {
        Some(server) => run_part(cli, &scenario, server)?,
        None => {
            let parts = cli
                .merge
                .iter()
                .map(|p| {
                    let text = std::fs::read(p)
                        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))?;
                    serde_json::from_slice(&text)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            omadm_fleetsim::Counted::merge(parts)?
        }
    };
    let record = match &cli.server_record {
        Some(p) => Some(omadm_fleetsim::read_record(p)?),
        None => None,
    };
    let report = counted.report(record.as_ref());
    print!("{}", report.summary());
    if let Some(path) = &cli.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    if let Some(path) = &cli.plot {
        let title = scenario.title.clone().unwrap_or_else(|| {
            format!(
                "{} devices: {}",
                scenario.devices,
                cli.scenario
                    .file_stem()
                    .unwrap_or_default()
                    .to_string_lossy()
            )
        });
        let svg = omadm_fleetsim::plot::svg(&report, &title, scenario.time_scale)
            .map_err(|e| anyhow::anyhow!(e))?;
        std::fs::write(path, svg)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}

/// Runs this process's part of the fleet.
fn run_part(
    cli: &Cli,
    scenario: &omadm_fleetsim::Scenario,
    server: &str,
) -> anyhow::Result<omadm_fleetsim::Counted> {
    let dir = tempfile::Builder::new()
        .prefix("omadm-fleetsim-")
        .tempdir_in(&cli.scratch)
        .map_err(|e| {
            anyhow::anyhow!("cannot make a directory in {}: {e}", cli.scratch.display())
        })?;
    let opts = omadm_fleetsim::Options {
        server: server.to_owned(),
        scratch: dir.path().to_owned(),
        shard: cli.shard,
    };
    let counted = omadm_fleetsim::count(scenario, &opts, cli.log.as_deref())?;
    if cli.keep {
        let kept = dir.keep();
        eprintln!("omadm-fleetsim: devices kept in {}", kept.display());
    }
    if let Some(path) = &cli.counted {
        std::fs::write(path, serde_json::to_vec(&counted)?)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    Ok(counted)
}

/// Raises this process's limit on open files to the hard limit: each device keeps about
/// six open, and the soft limit is often 1,024 (systemd's default), enough for about 150.
fn open_files_up_to_the_hard_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
        && let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
    {
        eprintln!("omadm-fleetsim: cannot raise the open-file limit from {soft} to {hard}: {e}");
    }
}
