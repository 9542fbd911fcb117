//! `omadm-packagekit`: the SCOMO handler. It owns `org.omadm.PackageKit1` on the system
//! bus and keeps the SCOMO inventory in omadmd's tree as PackageKit reports the installed
//! packages and carries out the SCOMO EXECs through PackageKit (omadm_tools::handlers::scomo),
//! registering with omadmd under its name whenever omadmd appears.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use futures_util::StreamExt as _;
use omadm_tools::cli::packagekit::Cli;
use omadm_tools::handlers::packagekit::PackageKitProxy;
use omadm_tools::handlers::scomo::{BUS_NAME, Downloads, ExecObject, OBJECT_PATH, SCOMO, Scomo};
use omadm_tools::handlers::{HandlerError, Link};

/// When omadmd (re)appears: register, write the inventory, report what a restart cut
/// short.
async fn meet_daemon(link: &Link, scomo: &Scomo) -> Result<(), HandlerError> {
    link.register(SCOMO, OBJECT_PATH, BUS_NAME).await?;
    scomo.forget_written();
    scomo.sync_inventory().await?;
    scomo.recover().await?;
    tracing::info!("registered with omadmd as the SCOMO handler");
    Ok(())
}

async fn sync(scomo: &Scomo) {
    if let Err(e) = scomo.sync_inventory().await {
        tracing::warn!(error = %e, "cannot read the installed packages from PackageKit");
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    std::fs::create_dir_all(&cli.state_dir)?;
    let conn = zbus::connection::Builder::system()
        .name(BUS_NAME)
        .build()
        .await?;
    let link = Link::new(&conn).await?;
    let packagekit = PackageKitProxy::new(&conn).await?;
    let scomo = Arc::new(Scomo::new(
        link.clone(),
        packagekit.clone(),
        Downloads {
            dir: cli.state_dir.clone(),
            max_bytes: cli.max_download_bytes,
        },
    ));
    conn.object_server()
        .at(OBJECT_PATH, ExecObject(scomo.clone()))
        .await?;
    let dbus = zbus::fdo::DBusProxy::new(&conn).await?;
    let mut daemon_owner = dbus
        .receive_name_owner_changed_with_args(&[(0, omadm_client::BUS_NAME)])
        .await?;
    let mut updates = packagekit.receive_updates_changed().await?;
    let mut transactions = packagekit.receive_transaction_list_changed().await?;
    if let Err(e) = meet_daemon(&link, &scomo).await {
        tracing::warn!(error = %e, "omadmd or PackageKit is not ready yet; waiting for them");
    }
    // Another program's transaction may change the packages: read them again once no
    // transaction runs. The handler's own reads do not count (they would loop).
    let mut others_seen = false;
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            Some(change) = daemon_owner.next() => {
                if change.args().is_ok_and(|a| a.new_owner().is_some())
                    && let Err(e) = meet_daemon(&link, &scomo).await
                {
                    tracing::error!(error = %e, "cannot register with omadmd");
                }
            }
            Some(_) = updates.next() => sync(&scomo).await,
            Some(change) = transactions.next() => {
                let Ok(args) = change.args() else { continue };
                if args.transactions.is_empty() {
                    if std::mem::take(&mut others_seen) {
                        sync(&scomo).await;
                    }
                } else if scomo.others_running(&args.transactions) {
                    others_seen = true;
                }
            }
            _ = sigterm.recv() => return Ok(()),
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let verbose = cli.verbose;
    omadm_tools::handler_main("omadm-packagekit", verbose, run(cli))
}
