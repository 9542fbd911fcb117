//! The DCMO handler: the capability instances kept true to the machine (§9.2), and each
//! EXEC on a primitive answered 202, carried out, and reported with the TS's alert type
//! and result code (§9.1, §9.4). USB and Camera go through usbguard; a machine without
//! usbguard on its bus has neither instance.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use serde_json::json;

use super::capability::{Capability, Seen, instance_data};
use super::codes::{DCMO, Op, result, result_alert};
use super::usbguard::Usbguard;
use super::usbguard_rules::Wanted;
use crate::handlers::{HandlerError, Link, item};
use omadm_proto::dmmo::DataNode;

/// The well-known bus name omadm-dcmo owns and registers under.
pub const BUS_NAME: &str = "org.omadm.Dcmo1";
/// Where its ExecHandler object lives.
pub const OBJECT_PATH: &str = "/org/omadm/Dcmo1";

/// The handler: the daemon, usbguard, and what runs and was written.
#[derive(Debug)]
pub struct Dcmo {
    link: Link,
    usbguard: Usbguard,
    /// Capabilities with an operation running: one at a time each.
    running: Mutex<HashSet<Capability>>,
    /// What each instance says now, as last written: an unchanged state costs no write.
    shown: Mutex<HashMap<Capability, Seen>>,
    /// usbguard's policy is read, changed and written back by one operation at a time:
    /// USB and Camera share its rules.
    policy: tokio::sync::Mutex<()>,
    /// One sync at a time: two, each reading the machine then writing, could end with
    /// the older reading written last.
    syncing: tokio::sync::Mutex<()>,
}

impl Dcmo {
    /// A handler over the daemon link and usbguard.
    pub fn new(link: Link, usbguard: Usbguard) -> Dcmo {
        Dcmo {
            link,
            usbguard,
            running: Mutex::new(HashSet::new()),
            shown: Mutex::new(HashMap::new()),
            policy: tokio::sync::Mutex::new(()),
            syncing: tokio::sync::Mutex::new(()),
        }
    }

    fn uri(cap: Capability, path: &str) -> String {
        format!("{DCMO}/{}/{path}", cap.property())
    }

    /// Forgets what was written (omadmd restarted: its tree may be another).
    pub fn forget_written(&self) {
        self.shown.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// What the machine says of each capability it has.
    async fn seen(&self) -> Result<Vec<(Capability, Seen)>, HandlerError> {
        let usbguard = self.usbguard.read().await?;
        Ok(vec![
            (
                Capability::Usb,
                Seen {
                    enabled: usbguard.usb_enabled,
                    attached: None,
                },
            ),
            (
                Capability::Camera,
                Seen {
                    enabled: usbguard.camera_enabled,
                    attached: Some(usbguard.camera_attached),
                },
            ),
        ])
    }

    /// Brings the instances in step with the machine: missing ones created (§9.2: the
    /// client creates the nodes of a capability it supports), `Enabled` and `Attached`
    /// written where they changed. One transaction, none when nothing changed.
    pub async fn sync(&self) -> Result<(), HandlerError> {
        let _one_at_a_time = self.syncing.lock().await;
        {
            // What the rules say holds for the devices present too (a camera allowed by
            // hand, or at boot by a machine rule, while the camera is disabled).
            let _policy = self.policy.lock().await;
            self.usbguard.enforce().await?;
        }
        let seen = self.seen().await?;
        let present: Vec<String> = self
            .link
            .tree()
            .list_instances()
            .await?
            .into_iter()
            .filter(|(moid, _, _)| moid == DCMO)
            .map(|(_, miid, _)| miid)
            .collect();
        let mut shown = self.shown.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut put = Vec::new();
        for (cap, now) in &seen {
            if !present.iter().any(|m| m == cap.property()) {
                put.push(item(
                    &format!("{DCMO}/{}/", cap.property()),
                    cap.property(),
                    instance_data(*cap, *now),
                ));
            } else if shown.get(cap) != Some(now) {
                put.push(item(
                    &Self::uri(*cap, "Enabled"),
                    "Enabled",
                    DataNode::Leaf(json!(now.enabled)),
                ));
                if let Some(attached) = now.attached {
                    put.push(item(
                        &Self::uri(*cap, "Attached"),
                        "Attached",
                        DataNode::Leaf(json!(attached)),
                    ));
                }
            } else {
                continue;
            }
            shown.insert(*cap, *now);
        }
        if put.is_empty() {
            return Ok(());
        }
        self.link.update(&put, &[]).await?;
        *self.shown.lock().unwrap_or_else(|p| p.into_inner()) = shown;
        tracing::info!(
            written = put.len(),
            "DCMO instances in step with the machine"
        );
        Ok(())
    }

    /// Whether an EXEC may start: the capability and primitive, or the DM status that
    /// refuses it (§9.1: EXEC only on the primitives of a capability the machine has).
    pub fn accept(&self, client_uri: &str) -> Result<(Capability, Op), u16> {
        let (miid, op) = Op::parse_target(client_uri).ok_or(omadm_proto::sc::NOT_ALLOWED)?;
        let cap = Capability::from_miid(miid)
            .filter(|c| matches!(c, Capability::Usb | Capability::Camera))
            .ok_or(omadm_proto::sc::NOT_FOUND)?;
        if !self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(cap)
        {
            tracing::info!(node = %client_uri, "refused: another operation on this capability runs");
            return Err(omadm_proto::sc::SERVICE_UNAVAILABLE);
        }
        Ok((cap, op))
    }

    /// Runs an accepted primitive, reports its result code, and frees the capability.
    pub async fn run(self: Arc<Self>, token: String, client_uri: String, cap: Capability, op: Op) {
        let code = match self.operate(cap, op).await {
            Ok(code) => code,
            Err(e) => {
                tracing::error!(error = %e, node = %client_uri, "DCMO operation failed");
                result::FAILED
            }
        };
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&cap);
        let alert = result_alert(&client_uri, code).to_string();
        let status = if (1200..1300).contains(&code) {
            200
        } else {
            500
        };
        match self
            .link
            .manager()
            .exec_result(&token, status, &alert)
            .await
        {
            Ok(()) => tracing::info!(node = %client_uri, result = code, "DCMO result reported"),
            Err(e) => tracing::error!(error = %e, node = %client_uri, result = code,
                "cannot report the DCMO result"),
        }
    }

    /// The primitive itself: the machine switched, the instance brought up to date, and
    /// the result code (§9.5).
    async fn operate(&self, cap: Capability, op: Op) -> Result<u16, HandlerError> {
        let on = op == Op::Enable;
        {
            let _one_at_a_time = self.policy.lock().await;
            let mut want: Wanted = self.usbguard.ours().await?.state();
            match cap {
                Capability::Usb => want.usb = Some(on),
                _ => want.camera = on,
            }
            self.usbguard.apply(want).await?;
        }
        self.sync().await?;
        let attached = self
            .seen()
            .await?
            .into_iter()
            .find(|(c, _)| *c == cap)
            .and_then(|(_, s)| s.attached);
        tracing::info!(
            capability = cap.property(),
            enabled = on,
            "DCMO capability switched"
        );
        // DenyUserEnable is not enforced yet, so it stays false (read-only in the
        // definition): a Disable says the user may switch the capability back on (1204).
        Ok(op.success_code(attached, false))
    }
}

/// The ExecHandler object omadmd calls.
#[derive(Debug)]
pub struct ExecObject(pub Arc<Dcmo>);

#[zbus::interface(name = "org.omadm.Client1.ExecHandler")]
impl ExecObject {
    /// An EXEC on a DCMO node: 202 and the primitive runs, or why it cannot.
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
        match self.0.accept(&client_uri) {
            Ok((cap, op)) => {
                tracing::info!(node = %client_uri, server = %server_id, "DCMO operation accepted");
                tokio::spawn(self.0.clone().run(token, client_uri, cap, op));
                (u32::from(omadm_proto::sc::ACCEPTED), String::new())
            }
            Err(status) => (u32::from(status), String::new()),
        }
    }
}
