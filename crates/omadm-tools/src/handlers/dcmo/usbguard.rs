//! usbguard's D-Bus API (`org.usbguard1`, served by `usbguard-dbus`; each method is
//! authorized by polkit as `<interface>.<method>`), and the two things DCMO asks of it:
//! the state its rules stand for, and a policy brought to a wanted state
//! ([`usbguard_rules`](super::usbguard_rules)).
//!
//! usbguard-dbus 1.1 can crash when the daemon answers a call with an error (an invalid
//! rule, an unknown rule id or parameter): so only fixed rules are appended, only rule ids
//! just listed are removed, and only the parameters usbguard has are read.

use super::usbguard_rules::{CAMERA_QUERY, Ours, Wanted};

/// `parent_id` that appends a rule after the last one.
pub const APPEND: u32 = u32::MAX - 2;

/// `applyDevicePolicy` targets.
pub mod target {
    /// Allow the device.
    pub const ALLOW: u32 = 0;
    /// Block it.
    pub const BLOCK: u32 = 1;
}

/// `/org/usbguard1`: the daemon's parameters.
#[zbus::proxy(
    interface = "org.usbguard1",
    default_service = "org.usbguard1",
    default_path = "/org/usbguard1"
)]
pub trait Usbguard1 {
    /// A runtime parameter (`ImplicitPolicyTarget`, `InsertedDevicePolicy`).
    #[zbus(name = "getParameter")]
    fn get_parameter(&self, name: &str) -> zbus::Result<String>;
}

/// `/org/usbguard1/Policy`: the rules.
#[zbus::proxy(
    interface = "org.usbguard.Policy1",
    default_service = "org.usbguard1",
    default_path = "/org/usbguard1/Policy"
)]
pub trait Policy1 {
    /// The rules (id, text) with this label, every rule for "".
    #[zbus(name = "listRules")]
    fn list_rules(&self, label: &str) -> zbus::Result<Vec<(u32, String)>>;

    /// Adds a rule after `parent_id` ([`APPEND`]: at the end); its id.
    #[zbus(name = "appendRule")]
    fn append_rule(&self, rule: &str, parent_id: u32, temporary: bool) -> zbus::Result<u32>;

    /// Removes a rule.
    #[zbus(name = "removeRule")]
    fn remove_rule(&self, id: u32) -> zbus::Result<()>;
}

/// `/org/usbguard1/Devices`: the devices present.
#[zbus::proxy(
    interface = "org.usbguard.Devices1",
    default_service = "org.usbguard1",
    default_path = "/org/usbguard1/Devices"
)]
pub trait Devices1 {
    /// The devices (id, rule describing it, its target first) a query matches.
    #[zbus(name = "listDevices")]
    fn list_devices(&self, query: &str) -> zbus::Result<Vec<(u32, String)>>;

    /// Allows (0), blocks (1) or rejects (2) a device; `permanent` also makes a rule of it.
    #[zbus(name = "applyDevicePolicy")]
    fn apply_device_policy(&self, id: u32, target: u32, permanent: bool) -> zbus::Result<u32>;

    /// A device came, went or changed.
    #[zbus(signal, name = "DevicePresenceChanged")]
    fn device_presence_changed(
        &self,
        id: u32,
        event: u32,
        target: u32,
        device_rule: &str,
        attributes: std::collections::HashMap<String, String>,
    ) -> zbus::Result<()>;

    /// A device's target changed.
    #[zbus(signal, name = "DevicePolicyChanged")]
    fn device_policy_changed(
        &self,
        id: u32,
        target_old: u32,
        target_new: u32,
        device_rule: &str,
        rule_id: u32,
        attributes: std::collections::HashMap<String, String>,
    ) -> zbus::Result<()>;
}

/// usbguard, as DCMO uses it.
#[derive(Debug, Clone)]
pub struct Usbguard {
    daemon: Usbguard1Proxy<'static>,
    policy: Policy1Proxy<'static>,
    /// The devices, for their signals too.
    pub devices: Devices1Proxy<'static>,
}

/// What the machine's usbguard says of the two capabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Read {
    /// USB: a device plugged in now would be allowed by our rule, or (with none of ours)
    /// by usbguard's implicit policy.
    pub usb_enabled: bool,
    /// Camera: not blocked by our rule.
    pub camera_enabled: bool,
    /// A video device is present.
    pub camera_attached: bool,
}

impl Usbguard {
    /// The proxies on `conn` (the system bus).
    pub async fn new(conn: &zbus::Connection) -> zbus::Result<Usbguard> {
        Ok(Usbguard {
            daemon: Usbguard1Proxy::new(conn).await?,
            policy: Policy1Proxy::new(conn).await?,
            devices: Devices1Proxy::new(conn).await?,
        })
    }

    /// Our rules as usbguard holds them now.
    pub async fn ours(&self) -> zbus::Result<Ours> {
        Ok(Ours::of(&self.policy.list_rules("").await?))
    }

    /// The state of USB and Camera.
    pub async fn read(&self) -> zbus::Result<Read> {
        let state = self.ours().await?.state();
        let usb_enabled = match state.usb {
            Some(on) => on,
            None => self.daemon.get_parameter("ImplicitPolicyTarget").await? == "allow",
        };
        Ok(Read {
            usb_enabled,
            camera_enabled: state.camera,
            camera_attached: !self.devices.list_devices(CAMERA_QUERY).await?.is_empty(),
        })
    }

    /// Brings usbguard to `want`: our rules rewritten in their order when they are not
    /// those `want` has, and the video devices present blocked while the camera is
    /// disabled (allowed again when it was, and is no longer).
    ///
    /// The new rules go in before the old ones go: a failure in between leaves more of our
    /// rules, never none (read back, a USB disabled by either set stays disabled; the next
    /// apply tidies up). Cameras present are switched for as long as they stay plugged in,
    /// never by a rule made of the device: such a rule would outlive the capability's state
    /// (and usbguard rewrites whatever machine rule names the device to make it).
    pub async fn apply(&self, want: Wanted) -> zbus::Result<()> {
        let ours = self.ours().await?;
        let was = ours.state();
        let rewrite = ours.labels != want.labels();
        tracing::debug!(ids = ?ours.ids, labels = ?ours.labels, ?want, rewrite, "usbguard: our rules");
        if rewrite {
            for rule in want.rules() {
                self.policy.append_rule(&rule, APPEND, false).await?;
            }
            for id in &ours.ids {
                self.policy.remove_rule(*id).await?;
            }
        }
        if !want.camera {
            self.switch_cameras(false).await?;
        } else if !was.camera {
            self.switch_cameras(true).await?;
        }
        Ok(())
    }

    /// Holds the state our rules stand for on the devices present: while the camera is
    /// disabled, a video device someone allowed (or one a machine rule allowed at boot) is
    /// blocked again.
    pub async fn enforce(&self) -> zbus::Result<()> {
        if self.ours().await?.state().camera {
            return Ok(());
        }
        self.switch_cameras(false).await
    }

    /// Allows (or blocks) every video device present that is not so already, for as long
    /// as it stays plugged in.
    async fn switch_cameras(&self, allow: bool) -> zbus::Result<()> {
        let (wanted, target) = if allow {
            ("allow", target::ALLOW)
        } else {
            ("block", target::BLOCK)
        };
        for (id, rule) in self.devices.list_devices(CAMERA_QUERY).await? {
            if !rule.starts_with(wanted) {
                self.devices.apply_device_policy(id, target, false).await?;
            }
        }
        Ok(())
    }
}
