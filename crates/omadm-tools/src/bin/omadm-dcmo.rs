//! `omadm-dcmo`: the DCMO handler. It owns `org.omadm.Dcmo1` on the system bus, keeps a
//! DCMO instance per capability in omadmd's tree, and carries out the EXECs on their
//! primitives through usbguard (omadm_tools::handlers::dcmo). It registers with omadmd
//! under its name whenever omadmd appears, and follows usbguard's device signals.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use futures_util::StreamExt as _;
use omadm_tools::cli::dcmo::Cli;
use omadm_tools::handlers::dcmo::codes::DCMO;
use omadm_tools::handlers::dcmo::handler::{BUS_NAME, Dcmo, ExecObject, OBJECT_PATH};
use omadm_tools::handlers::dcmo::usbguard::Usbguard;
use omadm_tools::handlers::{HandlerError, Link};

/// When omadmd (re)appears: register, and bring the instances in step.
async fn meet_daemon(link: &Link, dcmo: &Dcmo) -> Result<(), HandlerError> {
    link.register(DCMO, OBJECT_PATH, BUS_NAME).await?;
    dcmo.forget_written();
    dcmo.sync().await?;
    tracing::info!("registered with omadmd as the DCMO handler");
    Ok(())
}

async fn run(_cli: Cli) -> anyhow::Result<()> {
    let conn = zbus::connection::Builder::system()
        .name(BUS_NAME)
        .build()
        .await?;
    let link = Link::new(&conn).await?;
    let usbguard = Usbguard::new(&conn).await?;
    let dcmo = Arc::new(Dcmo::new(link.clone(), usbguard.clone()));
    conn.object_server()
        .at(OBJECT_PATH, ExecObject(dcmo.clone()))
        .await?;
    let dbus = zbus::fdo::DBusProxy::new(&conn).await?;
    // Watch first, then look: a daemon or usbguard that starts in between is not missed.
    let mut daemon_owner = dbus
        .receive_name_owner_changed_with_args(&[(0, omadm_client::BUS_NAME)])
        .await?;
    let mut usbguard_owner = dbus
        .receive_name_owner_changed_with_args(&[(0, "org.usbguard1")])
        .await?;
    let mut presence = usbguard.devices.receive_device_presence_changed().await?;
    let mut policy = usbguard.devices.receive_device_policy_changed().await?;
    if let Err(e) = meet_daemon(&link, &dcmo).await {
        tracing::warn!(error = %e, "omadmd or usbguard is not ready yet; waiting for them");
    }
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            Some(change) = daemon_owner.next() => {
                if change.args().is_ok_and(|a| a.new_owner().is_some())
                    && let Err(e) = meet_daemon(&link, &dcmo).await
                {
                    tracing::error!(error = %e, "cannot register with omadmd");
                }
            }
            Some(change) = usbguard_owner.next() => {
                if change.args().is_ok_and(|a| a.new_owner().is_some()) {
                    sync(&dcmo).await;
                }
            }
            Some(_) = presence.next() => sync(&dcmo).await,
            Some(_) = policy.next() => sync(&dcmo).await,
            _ = sigterm.recv() => return Ok(()),
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

async fn sync(dcmo: &Dcmo) {
    if let Err(e) = dcmo.sync().await {
        tracing::warn!(error = %e, "cannot bring the DCMO instances in step with usbguard");
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let verbose = cli.verbose;
    omadm_tools::handler_main("omadm-dcmo", verbose, run(cli))
}
