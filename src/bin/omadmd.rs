//! `omadmd`: the OMA DM 2.0 client daemon, and its offline diagnostic modes.

use std::process::ExitCode;

use clap::Parser;
use omadm_console::logging::{self, Target};
use omadmd::args::{Cli, Command};
use omadmd::{config, daemon, diag};

/// Exit status for a failure systemd should not retry (`RestartPreventExitStatus=` in the
/// unit): a bad configuration, or a database that is refused or cannot be written, stays
/// so until an administrator acts. (EX_CONFIG from sysexits.h.)
const EXIT_NEEDS_ADMIN: u8 = 78;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Before any thread starts (one allocator arena for all of them).
    omadmd::memory::tune_allocator();
    let daemon_mode = matches!(cli.command, None | Some(Command::Run));
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let msg = report(&e);
            // The daemon's log (journal or stderr) has it once; offline modes and failures
            // before logging is set up print it as a command does.
            if daemon_mode && tracing::dispatcher::has_been_set() {
                tracing::error!("{msg}");
            } else {
                eprintln!("omadmd: {msg}");
            }
            ExitCode::from(exit_status(&e))
        }
    }
}

/// The error and its causes, each said once (a cause's text is often already in its
/// parent's message).
fn report(e: &anyhow::Error) -> String {
    let mut msg = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !msg.contains(&text) {
            if !msg.is_empty() {
                msg.push_str(": ");
            }
            msg.push_str(&text);
        }
    }
    msg
}

fn exit_status(e: &anyhow::Error) -> u8 {
    let needs_admin = e.chain().any(|c| {
        c.is::<config::ConfigError>()
            || matches!(
                c.downcast_ref::<omadmd::tree::StoreError>(),
                Some(
                    omadmd::tree::StoreError::Foreign { .. } | omadmd::tree::StoreError::Io { .. }
                )
            )
    });
    if needs_admin { EXIT_NEEDS_ADMIN } else { 1 }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let sources = cli.sources();
    let settings = config::load(&sources)?;
    let target = match cli.command {
        None | Some(Command::Run) => Target::Auto,
        Some(_) => Target::Stderr,
    };
    let (_, why_not_journal) = logging::init(
        target,
        logging::filter(cli.verbose, &settings.log.level),
        "omadmd",
    );
    if let Some(why) = why_not_journal {
        tracing::warn!(reason = %why, "logging to stderr: the journal cannot be used");
    }
    match cli.command {
        None | Some(Command::Run) => {
            // Two workers: the D-Bus face and the notification listener keep answering on
            // one while a session's commit waits for its fsync on the other (writes leave
            // the worker they ran on, see tree::sqlite::blocking). The work is I/O-bound;
            // more threads would only cost memory.
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("omadmd-worker")
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let shutdown = daemon::termination()?;
                let hangups = daemon::hangups()?;
                daemon::run(sources, settings, shutdown, hangups).await
            })
        }
        Some(Command::CheckConfig { json }) => {
            let (checks, refused) = diag::check_bootstrap(&settings)?;
            if json {
                let doc = serde_json::json!({
                    "files": settings.files,
                    "settings": settings,
                    "bootstrap": checks,
                });
                omadm_console::outln!("{doc}");
            } else {
                omadm_console::out!("{}", settings.to_toml());
                omadm_console::out!("{}", diag::bootstrap_lines(&checks));
            }
            match refused {
                Some(e) => Err(e.into()),
                None => Ok(()),
            }
        }
        Some(Command::History { limit, json }) => {
            omadm_console::out!("{}", diag::history(&settings, limit, json)?);
            Ok(())
        }
        Some(Command::DumpTree { json }) => {
            let out = diag::dump_tree(&settings, json)?;
            omadm_console::out!("{out}");
            Ok(())
        }
    }
}
