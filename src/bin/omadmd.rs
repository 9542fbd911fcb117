//! `omadmd`: the OMA DM 2.0 client daemon, and its offline diagnostic modes.

use std::process::ExitCode;

use clap::Parser;
use omadmd::cli::{Cli, Command};
use omadmd::logging::{self, Target};
use omadmd::{config, daemon, diag};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("omadmd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = config::load(&cli.sources())?;
    let target = match cli.command {
        None | Some(Command::Run) => Target::Auto,
        Some(_) => Target::Stderr,
    };
    let (_, why_not_journal) =
        logging::init(target, logging::filter(cli.verbose, &settings.log.level));
    if let Some(why) = why_not_journal {
        tracing::warn!(reason = %why, "logging to stderr: the journal cannot be used");
    }
    match cli.command {
        None | Some(Command::Run) => {
            // One thread: the daemon's work is I/O-bound and SQLite calls are short; a
            // current-thread runtime keeps the footprint small.
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let shutdown = daemon::termination()?;
                daemon::run(settings, shutdown).await
            })
        }
        Some(Command::CheckConfig) => {
            print!("{}", settings.to_toml());
            Ok(())
        }
        Some(Command::History { limit, json }) => {
            print!("{}", diag::history(&settings, limit, json)?);
            Ok(())
        }
        Some(Command::DumpTree { json }) => {
            let out = diag::dump_tree(&settings, json)?;
            print!("{out}");
            Ok(())
        }
    }
}
