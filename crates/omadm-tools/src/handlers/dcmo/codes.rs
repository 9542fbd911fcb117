//! DCMO's result codes and its one alert type (OMA-TS-DCMO-V1_0 §9.5, §9.6), and the
//! Generic Alert that reports an operation's outcome (§9.4) as DM 2.0 carries it: the
//! operation node's address as `SourceURI`, the code in `Data`, as the FUMO handler sends
//! its results (docs/dcmo.md).

use serde_json::{Value as Json, json};

/// The DCMO MOID (§7.2).
pub const DCMO: &str = "urn:oma:mo:oma-dcmo:1.0";

/// The alert type of an operation's outcome (§9.6).
pub const OPERATION_COMPLETE: &str = "urn:oma:at:dcmo:1.0:OperationComplete";

/// Result codes (§9.5).
pub mod result {
    /// Operation Succeeds.
    pub const SUCCEEDS: u16 = 1200;
    /// Device Capability is enabled and attached.
    pub const ENABLED_ATTACHED: u16 = 1201;
    /// Device Capability is enabled and detached.
    pub const ENABLED_DETACHED: u16 = 1202;
    /// Device Capability is disabled and User is not allowed to re-enable it.
    pub const DISABLED_USER_DENIED: u16 = 1203;
    /// Device Capability is disabled and User is allowed to re-enable it.
    pub const DISABLED_USER_ALLOWED: u16 = 1204;
    /// Client Error, based on User or Device behaviour.
    pub const CLIENT_ERROR: u16 = 1400;
    /// User cancelled.
    pub const USER_CANCELLED: u16 = 1401;
    /// Operation Failed.
    pub const FAILED: u16 = 1402;
}

/// The two primitives (§5.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `Operations/Enable`.
    Enable,
    /// `Operations/Disable`.
    Disable,
}

impl Op {
    /// The node's name under `Operations`.
    pub fn node(self) -> &'static str {
        match self {
            Op::Enable => "Enable",
            Op::Disable => "Disable",
        }
    }

    /// The operation an EXEC target names: `<MIID>` and the primitive, from
    /// `urn:oma:mo:oma-dcmo:1.0/<MIID>/Operations/<Enable|Disable>` (§9.1: EXEC is allowed
    /// only on the primitives).
    pub fn parse_target(uri: &str) -> Option<(&str, Op)> {
        let rest = uri.strip_prefix(DCMO)?.strip_prefix('/')?;
        let (miid, node) = rest.split_once("/Operations/")?;
        if miid.is_empty() || miid.contains('/') {
            return None;
        }
        let op = match node {
            "Enable" => Op::Enable,
            "Disable" => Op::Disable,
            _ => return None,
        };
        Some((miid, op))
    }

    /// The code of a primitive that succeeded (§9.5): an Enable says whether the
    /// capability is attached (`attached` none: not removable, plain success); a Disable
    /// whether the user may switch it back on.
    pub fn success_code(self, attached: Option<bool>, deny_user_enable: bool) -> u16 {
        match (self, attached, deny_user_enable) {
            (Op::Enable, None, _) => result::SUCCEEDS,
            (Op::Enable, Some(true), _) => result::ENABLED_ATTACHED,
            (Op::Enable, Some(false), _) => result::ENABLED_DETACHED,
            (Op::Disable, _, true) => result::DISABLED_USER_DENIED,
            (Op::Disable, _, false) => result::DISABLED_USER_ALLOWED,
        }
    }
}

/// The Generic Alert reporting `code` for the primitive at `source` (its full address).
pub fn result_alert(source: &str, code: u16) -> Json {
    json!({
        "AlertType": OPERATION_COMPLETE,
        "SourceURI": source,
        "Mark": if (1200..1300).contains(&code) { "informational" } else { "critical" },
        "DataType": "application/json",
        "Data": {"ResultCode": code},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_targets_are_the_primitives_only() {
        let cases = [
            (
                "urn:oma:mo:oma-dcmo:1.0/USB/Operations/Enable",
                Some(("USB", Op::Enable)),
            ),
            (
                "urn:oma:mo:oma-dcmo:1.0/Camera/Operations/Disable",
                Some(("Camera", Op::Disable)),
            ),
            ("urn:oma:mo:oma-dcmo:1.0/USB/Operations/Ext", None),
            ("urn:oma:mo:oma-dcmo:1.0/USB/Enabled", None),
            ("urn:oma:mo:oma-dcmo:1.0//Operations/Enable", None),
            ("urn:oma:mo:oma-dcmo:1.0/a/b/Operations/Enable", None),
            ("urn:oma:mo:oma-fumo:1.0/USB/Operations/Enable", None),
            ("urn:oma:mo:oma-dcmo:1.0/USB/Operations/Enable/x", None),
        ];
        for (uri, want) in cases {
            assert_eq!(Op::parse_target(uri), want, "{uri}");
        }
    }

    /// §9.5's codes for a primitive that succeeded.
    #[test]
    fn success_codes_say_attached_and_whether_the_user_may_re_enable() {
        let cases = [
            (Op::Enable, None, false, 1200),
            (Op::Enable, Some(true), true, 1201),
            (Op::Enable, Some(false), false, 1202),
            (Op::Disable, Some(true), true, 1203),
            (Op::Disable, None, false, 1204),
        ];
        for (op, attached, deny, code) in cases {
            assert_eq!(
                op.success_code(attached, deny),
                code,
                "{op:?} {attached:?} {deny}"
            );
        }
    }

    #[test]
    fn the_alert_carries_the_type_the_node_and_the_code() {
        let a = result_alert("urn:oma:mo:oma-dcmo:1.0/USB/Operations/Disable", 1204);
        assert_eq!(a["AlertType"], OPERATION_COMPLETE);
        assert_eq!(
            a["SourceURI"],
            "urn:oma:mo:oma-dcmo:1.0/USB/Operations/Disable"
        );
        assert_eq!(a["Data"]["ResultCode"], 1204);
        assert_eq!(a["Mark"], "informational");
        assert_eq!(result_alert("x", result::FAILED)["Mark"], "critical");
    }
}
