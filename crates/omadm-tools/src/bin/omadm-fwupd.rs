//! `omadm-fwupd`: the FUMO handler. It owns `org.omadm.Fwupd1` on the system bus, keeps a
//! FUMO instance per updatable fwupd device in omadmd's tree, and carries out the FUMO
//! EXECs through fwupd (omadm_tools::handlers::fumo). It registers with omadmd under its name
//! whenever omadmd appears, and follows fwupd's device signals.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use futures_util::StreamExt as _;
use omadm_tools::cli::fwupd::Cli;
use omadm_tools::handlers::fumo::{BUS_NAME, ExecObject, FUMO, Fumo, OBJECT_PATH};
use omadm_tools::handlers::fwupd::FwupdProxy;
use omadm_tools::handlers::{HandlerError, Link};

/// When omadmd (re)appears: register, bring the instances in step, finish what a restart
/// cut short.
async fn meet_daemon(link: &Link, fumo: &Fumo) -> Result<(), HandlerError> {
    link.register(FUMO, OBJECT_PATH, BUS_NAME).await?;
    fumo.forget_written();
    fumo.sync_devices().await?;
    fumo.recover().await?;
    tracing::info!("registered with omadmd as the FUMO handler");
    Ok(())
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    std::fs::create_dir_all(&cli.state_dir)?;
    let conn = zbus::connection::Builder::system()
        .name(BUS_NAME)
        .build()
        .await?;
    let link = Link::new(&conn).await?;
    let fwupd = FwupdProxy::new(&conn).await?;
    let fumo = Arc::new(Fumo::new(
        link.clone(),
        fwupd.clone(),
        cli.state_dir.clone(),
        cli.max_download_bytes,
    ));
    conn.object_server()
        .at(OBJECT_PATH, ExecObject(fumo.clone()))
        .await?;
    let dbus = zbus::fdo::DBusProxy::new(&conn).await?;
    // Watch first, then look: a daemon or fwupd that starts in between is not missed.
    let mut daemon_owner = dbus
        .receive_name_owner_changed_with_args(&[(0, omadm_client::BUS_NAME)])
        .await?;
    let mut fwupd_owner = dbus
        .receive_name_owner_changed_with_args(&[(0, "org.freedesktop.fwupd")])
        .await?;
    let mut added = fwupd.receive_device_added().await?;
    let mut removed = fwupd.receive_device_removed().await?;
    let mut changed = fwupd.receive_device_changed().await?;
    match meet_daemon(&link, &fumo).await {
        Ok(()) => {}
        Err(e) => tracing::warn!(error = %e, "omadmd or fwupd is not ready yet; waiting for them"),
    }
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            Some(change) = daemon_owner.next() => {
                if change.args().is_ok_and(|a| a.new_owner().is_some())
                    && let Err(e) = meet_daemon(&link, &fumo).await
                {
                    tracing::error!(error = %e, "cannot register with omadmd");
                }
            }
            Some(change) = fwupd_owner.next() => {
                if change.args().is_ok_and(|a| a.new_owner().is_some())
                    && let Err(e) = fumo.sync_devices().await
                {
                    tracing::warn!(error = %e, "cannot read fwupd's devices");
                }
            }
            Some(_) = added.next() => sync(&fumo).await,
            Some(_) = removed.next() => sync(&fumo).await,
            Some(_) = changed.next() => sync(&fumo).await,
            _ = sigterm.recv() => return Ok(()),
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

async fn sync(fumo: &Fumo) {
    if let Err(e) = fumo.sync_devices().await {
        tracing::warn!(error = %e, "cannot bring the FUMO instances in step with fwupd");
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let verbose = cli.verbose;
    omadm_tools::handler_main("omadm-fwupd", verbose, run(cli))
}
