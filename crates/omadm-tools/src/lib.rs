//! omadmd's tools and handlers, each a program of its own on `omadm-client` (never on the
//! daemon's library): `omadmctl` (the administrator's), `omadm-agent` (the desktop SHOW
//! agent), and the EXEC handlers `omadm-fwupd` (FUMO through fwupd) and `omadm-packagekit`
//! (SCOMO through PackageKit). One crate, because they share their command-line
//! definitions' generation (man pages, completions), their output and start-up; each
//! binary links only what it uses.

pub mod cli;
pub mod ctl;
pub mod handlers;
pub mod launch;

/// A handler binary's `main`: logging at `verbose`, a single-threaded runtime running
/// `run`, exit 0 when it returns, 1 with the error said when it fails.
pub fn handler_main<F>(name: &str, verbose: u8, run: F) -> std::process::ExitCode
where
    F: std::future::Future<Output = anyhow::Result<()>>,
{
    omadm_console::logging::init(
        omadm_console::logging::Target::Auto,
        omadm_console::logging::filter(verbose, "info"),
        name,
    );
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{name}: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("{name}: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
