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

/// When omadmd (re)appears: register, and have the instances brought in step.
async fn meet_daemon(
    link: &Link,
    dcmo: &Dcmo,
    wake: &tokio::sync::Notify,
) -> Result<(), HandlerError> {
    link.register(DCMO, OBJECT_PATH, BUS_NAME).await?;
    dcmo.forget_written();
    wake.notify_one();
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
    // Syncs run in a task of their own, woken by the signals: the loop below keeps reading
    // every stream (a stream left unread while a sync waits for usbguard's answer would
    // stop the connection reading at all), and wake-ups during a sync make one more.
    let wake = Arc::new(tokio::sync::Notify::new());
    tokio::spawn(syncer(dcmo.clone(), wake.clone()));
    if let Err(e) = meet_daemon(&link, &dcmo, &wake).await {
        tracing::warn!(error = %e, "omadmd is not ready yet; waiting for it");
    }
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            Some(change) = daemon_owner.next() => {
                if change.args().is_ok_and(|a| a.new_owner().is_some())
                    && let Err(e) = meet_daemon(&link, &dcmo, &wake).await
                {
                    tracing::error!(error = %e, "cannot register with omadmd");
                }
            }
            Some(change) = usbguard_owner.next() => {
                if change.args().is_ok_and(|a| a.new_owner().is_some()) {
                    wake.notify_one();
                }
            }
            Some(_) = presence.next() => wake.notify_one(),
            Some(_) = policy.next() => wake.notify_one(),
            _ = sigterm.recv() => return Ok(()),
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

/// Brings the instances in step whenever woken. A sync that fails (usbguard-dbus owns its
/// name a moment before it can answer; omadmd may be restarting) is tried again after 1,
/// 2, 4 ... up to 30 seconds until one succeeds.
async fn syncer(dcmo: Arc<Dcmo>, wake: Arc<tokio::sync::Notify>) {
    loop {
        wake.notified().await;
        let mut wait = std::time::Duration::from_secs(1);
        while let Err(e) = dcmo.sync().await {
            tracing::warn!(error = %e, retry_secs = wait.as_secs(), "cannot bring the DCMO instances in step with usbguard");
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(std::time::Duration::from_secs(30));
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let verbose = cli.verbose;
    omadm_tools::handler_main("omadm-dcmo", verbose, run(cli))
}
