//! The part of fwupd's D-Bus API (`org.freedesktop.fwupd` on the system bus) the FUMO
//! handler uses: the devices, installing a cabinet from a file descriptor, the results
//! of an update that finished across a reboot, and the device signals.

use std::collections::HashMap;

use zbus::proxy;
use zbus::{OwnedVariant as OwnedValue, Variant as Value};

/// fwupd's device flag "updatable" (`FWUPD_DEVICE_FLAG_UPDATABLE`).
pub const FLAG_UPDATABLE: u64 = 1 << 1;
/// fwupd's device flag "needs-reboot" (`FWUPD_DEVICE_FLAG_NEEDS_REBOOT`): the update is
/// staged and finishes at the next boot.
pub const FLAG_NEEDS_REBOOT: u64 = 1 << 8;

/// `FwupdUpdateState`: what fwupd's history says of a device's last update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateState {
    /// Unknown, or no update recorded.
    Unknown,
    /// Staged; finishes later (at a reboot).
    Pending,
    /// Done.
    Success,
    /// Failed.
    Failed,
    /// Needs a reboot to finish.
    NeedsReboot,
    /// Failed for a reason that may pass (power, battery).
    FailedTransient,
}

impl UpdateState {
    /// From fwupd's number.
    pub fn from_u32(n: u32) -> UpdateState {
        match n {
            1 => UpdateState::Pending,
            2 => UpdateState::Success,
            3 => UpdateState::Failed,
            4 => UpdateState::NeedsReboot,
            5 => UpdateState::FailedTransient,
            _ => UpdateState::Unknown,
        }
    }
}

/// A device as fwupd describes it (the keys of its `a{sv}` the handler reads).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Device {
    /// `DeviceId`: fwupd's stable ID (40 hex digits).
    pub id: String,
    /// `Name`.
    pub name: String,
    /// `Version`.
    pub version: String,
    /// `Vendor`.
    pub vendor: String,
    /// `Plugin`.
    pub plugin: String,
    /// `Flags`.
    pub flags: u64,
    /// `UpdateState` (in `GetResults`).
    pub update_state: Option<UpdateState>,
    /// `UpdateError` (in `GetResults`).
    pub update_error: Option<String>,
}

impl Device {
    /// Reads the keys the handler needs; absent ones stay empty.
    pub fn from_dict(d: &HashMap<String, OwnedValue>) -> Device {
        let text = |k: &str| {
            d.get(k)
                .and_then(|v| <&str>::try_from(&**v).ok().map(str::to_owned))
                .unwrap_or_default()
        };
        Device {
            id: text("DeviceId"),
            name: text("Name"),
            version: text("Version"),
            vendor: text("Vendor"),
            plugin: text("Plugin"),
            flags: d
                .get("Flags")
                .and_then(|v| u64::try_from(&**v).ok())
                .unwrap_or(0),
            update_state: d
                .get("UpdateState")
                .and_then(|v| u32::try_from(&**v).ok())
                .map(UpdateState::from_u32),
            update_error: d
                .get("UpdateError")
                .and_then(|v| <&str>::try_from(&**v).ok().map(str::to_owned)),
        }
    }

    /// True when fwupd can update it.
    pub fn updatable(&self) -> bool {
        self.flags & FLAG_UPDATABLE != 0
    }
}

/// `org.freedesktop.fwupd`.
#[proxy(
    interface = "org.freedesktop.fwupd",
    default_service = "org.freedesktop.fwupd",
    default_path = "/"
)]
pub trait Fwupd {
    /// Every device.
    fn get_devices(&self) -> zbus::Result<Vec<HashMap<String, OwnedValue>>>;
    /// Installs the cabinet behind `handle` on device `id`.
    #[zbus(allow_interactive_auth)]
    fn install(
        &self,
        id: &str,
        handle: zbus::Fd<'_>,
        options: HashMap<&str, Value<'_>>,
    ) -> zbus::Result<()>;
    /// The result of the device's last update (from fwupd's history).
    fn get_results(&self, id: &str) -> zbus::Result<HashMap<String, OwnedValue>>;
    /// A device appeared.
    #[zbus(signal)]
    fn device_added(&self, device: HashMap<String, OwnedValue>) -> zbus::Result<()>;
    /// A device went.
    #[zbus(signal)]
    fn device_removed(&self, device: HashMap<String, OwnedValue>) -> zbus::Result<()>;
    /// A device changed (a new version after an update).
    #[zbus(signal)]
    fn device_changed(&self, device: HashMap<String, OwnedValue>) -> zbus::Result<()>;
}

/// The FUMO result code (OMA-TS-DM-FUMO-V1_0 §6.4, the Generic Alert's ResultCode) for a
/// failed `Install`, from fwupd's D-Bus error name.
pub fn install_result_code(error_name: &str) -> u16 {
    match error_name.rsplit('.').next().unwrap_or(error_name) {
        // The cabinet is not what it should be.
        "InvalidFile" | "InvalidData" | "Read" => 402,
        // Its signature does not verify.
        "SignatureInvalid" => 404,
        // It is for another device, or for none here.
        "NotFound" | "NotSupported" => 403,
        // The device already has it, or something newer.
        "VersionSame" | "VersionNewer" | "NothingToDo" => 405,
        // The device or the user is not ready: power, battery, another update, a button.
        "AcPowerRequired" | "BatteryLevelTooLow" | "NeedsUserAction" | "Busy"
        | "AlreadyPending" => 400,
        // Out of memory or space while writing.
        "Write" => 502,
        _ => 410,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn fwupd_errors_become_fumo_result_codes() {
        for (name, code) in [
            ("org.freedesktop.fwupd.InvalidFile", 402),
            ("org.freedesktop.fwupd.SignatureInvalid", 404),
            ("org.freedesktop.fwupd.NotFound", 403),
            ("org.freedesktop.fwupd.VersionSame", 405),
            ("org.freedesktop.fwupd.VersionNewer", 405),
            ("org.freedesktop.fwupd.AcPowerRequired", 400),
            ("org.freedesktop.fwupd.Write", 502),
            ("org.freedesktop.fwupd.Internal", 410),
            ("org.freedesktop.DBus.Error.NoReply", 410),
        ] {
            assert_eq!(super::install_result_code(name), code, "{name}");
        }
    }
}
