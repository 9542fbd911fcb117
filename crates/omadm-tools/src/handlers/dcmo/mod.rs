//! DCMO 1.0 (`urn:oma:mo:oma-dcmo:1.0`, OMA-TS-DCMO-V1_0) carried out on the machine: one
//! instance per capability ([`capability`]), USB and cameras switched through usbguard's
//! policy ([`usbguard_rules`]), Bluetooth and Wi-Fi through rfkill ([`rfkill`]), and each
//! EXEC on `Operations/Enable` or `Operations/Disable` reported with the TS's alert type
//! and result codes ([`codes`]). docs/dcmo.md says what each capability maps to.

pub mod capability;
pub mod codes;
pub mod handler;
pub mod rfkill;
pub mod usbguard;
pub mod usbguard_rules;
