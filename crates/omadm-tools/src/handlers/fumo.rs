//! FUMO (`urn:oma:mo:oma-fumo:1.0`, OMA-TS-DM-FUMO-V1_0) carried out by fwupd: one FUMO
//! instance per updatable fwupd device, kept in step with fwupd's device signals, and the
//! EXECs on `Download`, `Update` and `DownloadAndUpdate` run as the TS's state machine
//! (§5.1.10 State, §6 behaviour) with the package fetched under the daemon's HTTP rules and
//! installed through fwupd's `Install`. Each EXEC is answered 202 and its outcome reported
//! with the TS's alert type and result code (§6.2) through `ExecResult`; the handler is
//! registered under its well-known bus name, so an update that finishes across a reboot
//! (or a restart of either process) is still reported, after it.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::{Value as Json, json};

use super::fwupd::{Device, FwupdProxy, UpdateState, install_result_code};
use super::{HandlerError, Link};
use omadm_proto::dmmo::DataNode;

/// The FUMO MOID.
pub const FUMO: &str = "urn:oma:mo:oma-fumo:1.0";
/// The well-known bus name omadm-fwupd owns and registers under.
pub const BUS_NAME: &str = "org.omadm.Fwupd1";
/// Where its ExecHandler object lives.
pub const OBJECT_PATH: &str = "/org/omadm/Fwupd1";

mod codes;
pub use codes::{Op, download_result_code, parse_target, result, result_alert, state};

/// The MO data of a new instance for `device` (§5.1: the nodes the DDF requires, and
/// what fwupd says of the device under `Ext`).
pub fn instance_data(device: &Device) -> DataNode {
    let leaf = |v: Json| DataNode::Leaf(v);
    let node = super::interior;
    node(vec![
        ("PkgName", leaf(json!(device.name))),
        ("PkgVersion", leaf(json!(device.version))),
        ("Download", node(vec![("PkgURL", leaf(json!("")))])),
        ("Update", node(vec![])),
        ("DownloadAndUpdate", node(vec![("PkgURL", leaf(json!("")))])),
        ("State", leaf(json!(state::IDLE))),
        (
            "Ext",
            node(vec![
                ("DeviceName", leaf(json!(device.name))),
                ("Vendor", leaf(json!(device.vendor))),
                ("Plugin", leaf(json!(device.plugin))),
            ]),
        ),
    ])
}

/// True for a name FUMO can use as the instance's MIID (fwupd's IDs are hex digits).
fn usable_miid(id: &str) -> bool {
    omadm_proto::uri::is_real_name(id)
}

/// The FUMO handler: fwupd, the daemon, and the operations running.
#[derive(Debug)]
pub struct Fumo {
    link: Link,
    fwupd: FwupdProxy<'static>,
    state_dir: PathBuf,
    max_download: u64,
    running: Mutex<HashSet<String>>,
    /// (name, version) last written per instance: fwupd sends DeviceChanged many times
    /// during an update, and an unchanged device must not move the instance's cache
    /// validator (TS §11) or cost a write.
    shown: Mutex<std::collections::HashMap<String, (String, String)>>,
}

impl Fumo {
    /// A handler over the daemon link and fwupd, with a directory for the packages the
    /// daemon fetches for it, and the largest package it takes.
    pub fn new(
        link: Link,
        fwupd: FwupdProxy<'static>,
        state_dir: PathBuf,
        max_download: u64,
    ) -> Fumo {
        Fumo {
            link,
            fwupd,
            state_dir,
            max_download,
            running: Mutex::new(HashSet::new()),
            shown: Mutex::new(std::collections::HashMap::new()),
        }
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn package_path(&self, miid: &str) -> PathBuf {
        self.state_dir.join(format!("{miid}.cab"))
    }

    fn uri(miid: &str, path: &str) -> String {
        format!("{FUMO}/{miid}/{path}")
    }

    async fn set_state(&self, miid: &str, value: i64) -> Result<(), HandlerError> {
        self.link
            .put_leaf(&Self::uri(miid, "State"), "State", json!(value))
            .await
    }

    async fn current_state(&self, miid: &str) -> Result<Option<i64>, HandlerError> {
        Ok(self
            .link
            .read_leaf(&Self::uri(miid, "State"))
            .await?
            .and_then(|v| v.as_i64()))
    }

    /// Forgets what was written (omadmd restarted: its tree may be another).
    pub fn forget_written(&self) {
        self.shown.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Makes the tree's FUMO instances the updatable devices fwupd has now: new ones
    /// created, names and versions that changed brought up to date, gone ones deleted
    /// (unless an operation on them runs). One transaction for all of it, none when
    /// nothing changed.
    pub async fn sync_devices(&self) -> Result<(), HandlerError> {
        let devices: Vec<Device> = self
            .fwupd
            .get_devices()
            .await?
            .iter()
            .map(Device::from_dict)
            .filter(|d| d.updatable() && usable_miid(&d.id))
            .collect();
        let present: Vec<String> = self
            .link
            .tree()
            .list_instances()
            .await?
            .into_iter()
            .filter(|(moid, _, _)| moid == FUMO)
            .map(|(_, miid, _)| miid)
            .collect();
        let mut put = Vec::new();
        let mut shown = self.shown.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for d in &devices {
            let now = (d.name.clone(), d.version.clone());
            if present.contains(&d.id) {
                if shown.get(&d.id) == Some(&now) {
                    continue;
                }
                put.push(super::item(
                    &Self::uri(&d.id, "PkgVersion"),
                    "PkgVersion",
                    DataNode::Leaf(json!(d.version)),
                ));
                put.push(super::item(
                    &Self::uri(&d.id, "PkgName"),
                    "PkgName",
                    DataNode::Leaf(json!(d.name)),
                ));
            } else {
                put.push(super::item(
                    &format!("{FUMO}/{}/", d.id),
                    &d.id,
                    instance_data(d),
                ));
            }
            shown.insert(d.id.clone(), now);
        }
        let running = self.running().clone();
        let gone: Vec<String> = present
            .iter()
            .filter(|m| !devices.iter().any(|d| &d.id == *m) && !running.contains(*m))
            .map(|m| format!("{FUMO}/{m}/"))
            .collect();
        if put.is_empty() && gone.is_empty() {
            tracing::debug!(devices = devices.len(), "FUMO instances unchanged");
            return Ok(());
        }
        self.link.update(&put, &gone).await?;
        shown.retain(|id, _| devices.iter().any(|d| &d.id == id));
        *self.shown.lock().unwrap_or_else(|p| p.into_inner()) = shown;
        tracing::info!(
            devices = devices.len(),
            removed = gone.len(),
            "FUMO instances in step with fwupd"
        );
        Ok(())
    }

    /// Whether an EXEC may start now: the component and operation to run (the caller
    /// answers 202 and starts it), or the DM status refusing it and, when the EXEC named a
    /// FUMO operation, the result code its alert carries (§6.1, §6.2.4: with a ServerURI the
    /// daemon sends the refusal as that alert).
    pub async fn accept(&self, client_uri: &str) -> Result<(String, Op), Refusal> {
        let Some((miid, op)) = parse_target(client_uri) else {
            return Err(Refusal {
                status: omadm_proto::sc::NOT_ALLOWED,
                result: None,
            });
        };
        let refuse = |status: u16, code: u16| Refusal {
            status,
            result: Some((op, code)),
        };
        let current = match self.current_state(&miid).await {
            Ok(Some(s)) => s,
            Ok(None) => return Err(refuse(omadm_proto::sc::NOT_FOUND, result::CLIENT_ERROR)),
            Err(e) => {
                tracing::error!(error = %e, "cannot read the FUMO state");
                return Err(refuse(
                    omadm_proto::sc::INTERNAL_ERROR,
                    result::CLIENT_ERROR,
                ));
            }
        };
        // An update needs the package a Download fetched (State 40 or 50).
        if op == Op::Update
            && !(matches!(current, state::DOWNLOAD_COMPLETE | state::READY_TO_UPDATE)
                && self.package_path(&miid).exists())
        {
            tracing::info!(node = %client_uri, state = current, "Update refused: no package was downloaded");
            return Err(refuse(omadm_proto::sc::NOT_ALLOWED, result::CLIENT_ERROR));
        }
        if !self.running().insert(miid.clone()) {
            // One operation per component at a time.
            tracing::info!(node = %client_uri, "refused: another operation on this component runs");
            return Err(refuse(
                omadm_proto::sc::SERVICE_UNAVAILABLE,
                result::CLIENT_ERROR,
            ));
        }
        Ok((miid, op))
    }

    /// Runs an accepted operation to its end and reports it; the component is free again
    /// afterwards.
    pub async fn run(self: Arc<Self>, token: String, client_uri: String) {
        let Some((miid, op)) = parse_target(&client_uri) else {
            return;
        };
        let code = match self.operate(&miid, op, &token).await {
            Ok(Some(code)) => Some(code),
            Ok(None) => None,
            Err(e) => {
                tracing::error!(error = %e, node = %client_uri, "FUMO operation failed on our side");
                let _ = self.set_state(&miid, state::UPDATE_FAILED_NO_DATA).await;
                Some(result::UPDATE_FAILED)
            }
        };
        self.running().remove(&miid);
        match code {
            Some(code) => self.report(&token, op, &client_uri, code).await,
            // Staged until the next boot: reported when the handler starts after it.
            None => {
                tracing::info!(node = %client_uri, "update finishes at the next boot; its result is reported then")
            }
        }
    }

    async fn report(&self, token: &str, op: Op, client_uri: &str, code: u16) {
        let alert = result_alert(op, client_uri, code).to_string();
        let status = if (200..300).contains(&code) { 200 } else { 500 };
        match self.link.manager().exec_result(token, status, &alert).await {
            Ok(()) => tracing::info!(node = %client_uri, result = code, "FUMO result reported"),
            Err(e) => tracing::error!(error = %e, node = %client_uri, result = code,
                "cannot report the FUMO result; it is reported when the daemon is back"),
        }
    }

    /// The operation itself: the result code, or `None` when fwupd finishes it at the
    /// next boot.
    async fn operate(&self, miid: &str, op: Op, token: &str) -> Result<Option<u16>, HandlerError> {
        if matches!(op, Op::Download | Op::DownloadAndUpdate) {
            let url_node = if op == Op::Download {
                "Download/PkgURL"
            } else {
                "DownloadAndUpdate/PkgURL"
            };
            let url = self
                .link
                .read_leaf(&Self::uri(miid, url_node))
                .await?
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            self.set_state(miid, state::DOWNLOAD_PROGRESSING).await?;
            if let Err(code) = self.download(miid, &url, token).await {
                self.set_state(miid, state::DOWNLOAD_FAILED).await?;
                return Ok(Some(code));
            }
            if op == Op::Download {
                self.set_state(miid, state::DOWNLOAD_COMPLETE).await?;
                return Ok(Some(result::SUCCESSFUL));
            }
        }
        self.set_state(miid, state::UPDATE_PROGRESSING).await?;
        self.install(miid).await
    }

    /// Has the daemon fetch the package for the EXEC `token` (`Manager.FetchPackage`).
    async fn download(&self, miid: &str, url: &str, token: &str) -> Result<(), u16> {
        self.link
            .fetch_package(token, url, &self.package_path(miid), self.max_download)
            .await
            .map(|_| ())
            .map_err(download_result_code)
    }

    async fn install(&self, miid: &str) -> Result<Option<u16>, HandlerError> {
        let path = self.package_path(miid);
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(error = %e, path = %path.display(), "the downloaded package is gone");
                self.set_state(miid, state::UPDATE_FAILED_NO_DATA).await?;
                return Ok(Some(result::UPDATE_FAILED));
            }
        };
        use std::os::fd::AsFd as _;
        let installed = self
            .fwupd
            .install(miid, zbus::Fd::from(file.as_fd()), Default::default())
            .await;
        drop(file);
        match installed {
            Ok(()) => {
                let device = self.device(miid).await;
                if device
                    .as_ref()
                    .is_some_and(|d| d.flags & super::fwupd::FLAG_NEEDS_REBOOT != 0)
                {
                    // Staged: State stays 60 until the boot that applies it.
                    return Ok(None);
                }
                let _ = std::fs::remove_file(&path);
                if let Some(d) = device {
                    self.link
                        .put_leaf(
                            &Self::uri(miid, "PkgVersion"),
                            "PkgVersion",
                            json!(d.version),
                        )
                        .await?;
                }
                self.set_state(miid, state::UPDATE_SUCCESSFUL_NO_DATA)
                    .await?;
                Ok(Some(result::SUCCESSFUL))
            }
            Err(zbus::Error::MethodError(name, message, _)) => {
                let code = install_result_code(name.as_str());
                tracing::warn!(error = %name, message = message.as_deref().unwrap_or(""), result = code, "fwupd refused the update");
                self.set_state(miid, state::UPDATE_FAILED_HAVE_DATA).await?;
                Ok(Some(code))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn device(&self, id: &str) -> Option<Device> {
        self.fwupd
            .get_devices()
            .await
            .ok()?
            .iter()
            .map(Device::from_dict)
            .find(|d| d.id == id)
    }

    /// After a restart of the handler or the daemon: finishes the EXECs that were
    /// accepted and not answered. An update fwupd has finished (across a reboot) is
    /// reported as fwupd's history says; one that is still staged waits; an operation
    /// that was cut short is reported failed (the TS forbids retrying it unasked, §6.2).
    pub async fn recover(&self) -> Result<(), HandlerError> {
        for (token, client_uri, _server) in self.link.manager().pending_execs().await? {
            let Some((miid, op)) = parse_target(&client_uri) else {
                continue;
            };
            if self.running().contains(&miid) {
                continue;
            }
            let current = self.current_state(&miid).await?.unwrap_or(state::IDLE);
            let code = match current {
                state::DOWNLOAD_COMPLETE if op == Op::Download => result::SUCCESSFUL,
                state::DOWNLOAD_PROGRESSING => {
                    self.set_state(&miid, state::DOWNLOAD_FAILED).await?;
                    result::DOWNLOAD_NETWORK
                }
                state::UPDATE_PROGRESSING => match self.update_outcome(&miid).await {
                    Some(code) => code,
                    None => continue,
                },
                state::UPDATE_SUCCESSFUL_NO_DATA | state::UPDATE_SUCCESSFUL_HAVE_DATA => {
                    result::SUCCESSFUL
                }
                _ => result::UPDATE_FAILED,
            };
            tracing::info!(node = %client_uri, state = current, result = code, "reporting an operation from before the restart");
            self.report(&token, op, &client_uri, code).await;
        }
        Ok(())
    }

    /// What fwupd's history says of an update that was in progress: the result code, or
    /// `None` while it is still staged for a reboot.
    async fn update_outcome(&self, miid: &str) -> Option<u16> {
        let results = self
            .fwupd
            .get_results(miid)
            .await
            .ok()
            .map(|r| Device::from_dict(&r));
        let (state_now, code) = match results.and_then(|d| d.update_state) {
            Some(UpdateState::Pending | UpdateState::NeedsReboot) => return None,
            Some(UpdateState::Success) => (state::UPDATE_SUCCESSFUL_NO_DATA, result::SUCCESSFUL),
            Some(UpdateState::FailedTransient) => {
                (state::UPDATE_FAILED_HAVE_DATA, result::CLIENT_ERROR)
            }
            _ => (state::UPDATE_FAILED_HAVE_DATA, result::UPDATE_FAILED),
        };
        if code == result::SUCCESSFUL {
            let _ = std::fs::remove_file(self.package_path(miid));
            if let Some(d) = self.device(miid).await {
                let _ = self
                    .link
                    .put_leaf(
                        &Self::uri(miid, "PkgVersion"),
                        "PkgVersion",
                        json!(d.version),
                    )
                    .await;
            }
        }
        let _ = self.set_state(miid, state_now).await;
        Some(code)
    }
}

/// Why an EXEC was not started: the DM status, and the operation and FUMO result code
/// for its alert when it named one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// The DM status (TS App. C).
    pub status: u16,
    /// The operation and its FUMO result code.
    pub result: Option<(Op, u16)>,
}

/// The ExecHandler object omadmd calls.
#[derive(Debug)]
pub struct ExecObject(pub Arc<Fumo>);

#[zbus::interface(name = "org.omadm.Client1.ExecHandler")]
impl ExecObject {
    /// An EXEC on a FUMO node: 202 and the operation runs, or why it cannot start.
    async fn exec(
        &self,
        token: String,
        client_uri: String,
        server_id: String,
        #[zbus(header)] header: zbus::message::Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> (u32, String) {
        // Only omadmd asks for EXECs.
        if !omadm_client::agent::from_daemon(conn, &header).await {
            return (u32::from(omadm_proto::sc::FORBIDDEN), String::new());
        }
        match self.0.accept(&client_uri).await {
            Ok(_) => {
                tracing::info!(node = %client_uri, server = %server_id, "FUMO operation accepted");
                tokio::spawn(self.0.clone().run(token, client_uri));
                (u32::from(omadm_proto::sc::ACCEPTED), String::new())
            }
            Err(Refusal { status, result }) => (
                u32::from(status),
                result
                    .map(|(op, code)| result_alert(op, &client_uri, code).to_string())
                    .unwrap_or_default(),
            ),
        }
    }
}

#[cfg(test)]
mod tests;
