//! The capabilities omadm-dcmo manages, each one DCMO instance named by its Property
//! (OMA-TS-DCMO-V1_0 §7.2, §8 Table 1), and the MO data of an instance in a given state.

use serde_json::{Value as Json, json};

use omadm_proto::dmmo::DataNode;

/// A capability, and the part of the machine that switches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Capability {
    /// New USB devices, through usbguard (Group `I/O`).
    Usb,
    /// USB video class cameras, through usbguard (Group `Hardware`).
    Camera,
    /// Bluetooth radios, through rfkill (Group `Connectivity`).
    Bluetooth,
    /// Wi-Fi radios, through rfkill (Group `Connectivity`, Property `WLAN`).
    Wlan,
}

impl Capability {
    /// Every capability, in the order the tree lists them.
    pub const ALL: [Capability; 4] = [
        Capability::Usb,
        Capability::Camera,
        Capability::Bluetooth,
        Capability::Wlan,
    ];

    /// Its Property (§8 Table 1), also its instance's MIID.
    pub fn property(self) -> &'static str {
        match self {
            Capability::Usb => "USB",
            Capability::Camera => "Camera",
            Capability::Bluetooth => "Bluetooth",
            Capability::Wlan => "WLAN",
        }
    }

    /// Its Group (§8 Table 1).
    pub fn group(self) -> &'static str {
        match self {
            Capability::Usb => "I/O",
            Capability::Camera => "Hardware",
            Capability::Bluetooth | Capability::Wlan => "Connectivity",
        }
    }

    /// What it is, for a person reading the tree.
    pub fn description(self) -> &'static str {
        match self {
            Capability::Usb => {
                "USB devices plugged in (disabled: only keyboards, mice and hubs are allowed)"
            }
            Capability::Camera => "USB video class cameras",
            Capability::Bluetooth => "Bluetooth radios",
            Capability::Wlan => "Wi-Fi radios",
        }
    }

    /// The capability an instance's MIID names.
    pub fn from_miid(miid: &str) -> Option<Capability> {
        Capability::ALL.into_iter().find(|c| c.property() == miid)
    }

    /// Whether it can be plugged in and out, and so has `Attached` (§7.2: only a
    /// removable capability has the node). The USB ports are built in.
    pub fn removable(self) -> bool {
        self != Capability::Usb
    }
}

/// An instance's state, as the machine has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    /// `Enabled`.
    pub enabled: bool,
    /// `Attached` (none for a capability that is not removable).
    pub attached: Option<bool>,
}

/// The MO data of a new instance of `cap` in state `seen` (§7.2): the nodes the TS
/// requires, and `DCMOConfig` with the user-facing settings off until a server sets them.
pub fn instance_data(cap: Capability, seen: Seen) -> DataNode {
    let leaf = |v: Json| DataNode::Leaf(v);
    let node = crate::handlers::interior;
    let mut nodes = vec![
        ("Property", leaf(json!(cap.property()))),
        ("Group", leaf(json!(cap.group()))),
        ("Description", leaf(json!(cap.description()))),
    ];
    if let Some(attached) = seen.attached {
        nodes.push(("Attached", leaf(json!(attached))));
    }
    nodes.extend([
        ("Enabled", leaf(json!(seen.enabled))),
        (
            "DCMOConfig",
            node(vec![
                ("DenyUserEnable", leaf(json!(false))),
                ("NotifyUser", leaf(json!(false))),
            ]),
        ),
        (
            "Operations",
            node(vec![
                ("Enable", leaf(Json::Null)),
                ("Disable", leaf(Json::Null)),
            ]),
        ),
    ]);
    node(nodes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_are_named_as_the_ts_names_them() {
        let names: Vec<(&str, &str)> = Capability::ALL
            .iter()
            .map(|c| (c.property(), c.group()))
            .collect();
        assert_eq!(
            names,
            [
                ("USB", "I/O"),
                ("Camera", "Hardware"),
                ("Bluetooth", "Connectivity"),
                ("WLAN", "Connectivity")
            ]
        );
        for c in Capability::ALL {
            assert_eq!(Capability::from_miid(c.property()), Some(c));
        }
        assert_eq!(Capability::from_miid("usb"), None, "names are exact");
    }

    /// §7.2: Attached only where the capability is removable; the operations and the
    /// configuration are there from the start.
    #[test]
    fn an_instance_has_the_nodes_the_ts_requires() {
        let usb = instance_data(
            Capability::Usb,
            Seen {
                enabled: true,
                attached: None,
            },
        );
        let DataNode::Interior(children) = &usb else {
            panic!("{usb:?}")
        };
        let names: Vec<&str> = children.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "Property",
                "Group",
                "Description",
                "Enabled",
                "DCMOConfig",
                "Operations"
            ]
        );
        let camera = instance_data(
            Capability::Camera,
            Seen {
                enabled: false,
                attached: Some(false),
            },
        );
        let DataNode::Interior(children) = &camera else {
            panic!()
        };
        assert!(
            children
                .iter()
                .any(|(k, v)| k == "Attached" && *v == DataNode::Leaf(json!(false)))
        );
        assert!(
            children
                .iter()
                .any(|(k, v)| k == "Enabled" && *v == DataNode::Leaf(json!(false)))
        );
    }
}
