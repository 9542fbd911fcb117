//! `omadmctl`: the administrator's client of omadmd, over D-Bus (the system bus, or
//! `$DBUS_SYSTEM_BUS_ADDRESS`). Short human output by default, `--json` for scripts. The
//! commands are in `omadm_tools::ctl`.

use std::process::ExitCode;

use clap::Parser;
use omadm_tools::cli::ctl::Cli;
use omadm_tools::ctl::{explain, run};

fn main() -> ExitCode {
    // Run by the shell for completions (COMPLETE=bash|zsh|fish, from the scripts in
    // packaging/completions): answer and exit; otherwise nothing happens here.
    clap_complete::CompleteEnv::with_factory(<Cli as clap::CommandFactory>::command).complete();
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            omadm_console::errln!("omadmctl: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let (msg, code) = explain(&e);
            omadm_console::errln!("omadmctl: {msg}");
            ExitCode::from(code)
        }
    }
}
