//! The handlers' shipped DDFs, read by the daemon's own DDF code, against what the handlers
//! write (FUMO instances, SCOMO's inventory) and what servers EXEC: a handler whose data
//! its DDF refused would have every `HandlerUpdate` refused.

use omadm_proto::dmmo::DataNode;
use omadm_tools::handlers::fumo::{FUMO, instance_data};
use omadm_tools::handlers::fwupd::Device;
use omadm_tools::handlers::packagekit::PackageInfo as Package;
use omadm_tools::handlers::scomo::{SCOMO, deployed_data};
use serde_json::json;

fn pkg(name: &str) -> Package {
    Package::parse(&format!("{name};1.0;amd64;installed"), "s").unwrap()
}

/// The DDF shipped with the handler parses, and defines what the handler writes and
/// what servers EXEC.
#[test]
fn the_shipped_definition_holds_what_the_handler_writes() {
    let def =
        omadmd::mo::ddf::parse(include_str!("../../data/ddf/fumo/oma-fumo-1.0.ddf.xml")).unwrap();
    assert_eq!(def.moid, FUMO);
    let device = Device {
        id: "08d4".into(),
        name: "Webcam".into(),
        version: "1.2.2".into(),
        ..Device::default()
    };
    let nodes =
        omadmd::mo::build_nodes(FUMO, Some(&def.root), "", &instance_data(&device), 1024).unwrap();
    let paths: Vec<&str> = nodes.iter().map(|n| n.path.as_str()).collect();
    for p in [
        "PkgVersion",
        "Download/PkgURL",
        "Update",
        "DownloadAndUpdate/PkgURL",
        "State",
        "Ext/Vendor",
    ] {
        assert!(paths.contains(&p), "{p} in {paths:?}");
    }
    for op in ["Download", "Update", "DownloadAndUpdate"] {
        let exec = nodes.iter().find(|n| n.path == op).unwrap();
        assert!(
            exec.props.access.contains(omadmd::tree::AccessType::EXEC),
            "{op}"
        );
    }
}

/// The shipped DDF takes the inventory the handler writes.
#[test]
fn the_shipped_definition_holds_the_inventory() {
    let def =
        omadmd::mo::ddf::parse(include_str!("../../data/ddf/scomo/oma-scomo-1.0.ddf.xml")).unwrap();
    assert_eq!(def.moid, SCOMO);
    let deployed = omadmd::mo::def_at(&def.root, "Inventory/Deployed").unwrap();
    let nodes = omadmd::mo::build_nodes(
        SCOMO,
        Some(deployed),
        "Inventory/Deployed",
        &deployed_data(&[pkg("bash"), pkg("g++")]),
        1024,
    )
    .unwrap();
    let paths: Vec<&str> = nodes.iter().map(|n| n.path.as_str()).collect();
    for p in [
        "Inventory/Deployed/bash/Version",
        "Inventory/Deployed/g__/ID",
        "Inventory/Deployed/g__/State",
        "Inventory/Deployed/bash/Operations/Remove",
    ] {
        assert!(paths.contains(&p), "{p} in {paths:?}");
    }
}

/// A server adds a Download entry with its own leaves; the device's Status (10) and
/// the DownloadInstall operation come from the definition.
#[test]
fn a_download_entry_gets_its_status_and_operation() {
    let def =
        omadmd::mo::ddf::parse(include_str!("../../data/ddf/scomo/oma-scomo-1.0.ddf.xml")).unwrap();
    let entry = omadmd::mo::def_at(&def.root, "Download/p1").unwrap();
    let data = DataNode::Interior(vec![
        ("PkgID".into(), DataNode::Leaf(json!("hello-1.0"))),
        (
            "PkgURL".into(),
            DataNode::Leaf(json!("https://repo.example.com/hello.deb")),
        ),
    ]);
    let nodes = omadmd::mo::build_nodes(SCOMO, Some(entry), "Download/p1", &data, 1024).unwrap();
    let get = |p: &str| nodes.iter().find(|n| n.path == p);
    assert_eq!(
        get("Download/p1/Status").and_then(|n| n.value.clone()),
        Some(omadmd::tree::Value::Int(10))
    );
    let op = get("Download/p1/Operations/DownloadInstall").expect("the operation");
    assert!(op.props.access.contains(omadmd::tree::AccessType::EXEC));
    // The operations not carried out are not offered.
    assert!(get("Download/p1/Operations/DownloadInstallInactive").is_none());
}

/// DCMO: the definition written from the TS's node table (OMA publishes none) takes each
/// capability's instance as the handler writes it; the primitives are EXEC targets, and
/// `Enabled` and `Attached` are the handler's.
#[test]
fn the_dcmo_definition_holds_each_capability() {
    use omadm_tools::handlers::dcmo::capability::{Capability, Seen, instance_data};
    use omadm_tools::handlers::dcmo::codes::DCMO;
    use omadmd::tree::AccessType;
    let def =
        omadmd::mo::ddf::parse(include_str!("../../data/ddf/dcmo/oma-dcmo-1.0.ddf.xml")).unwrap();
    assert_eq!(def.moid, DCMO);
    for cap in Capability::ALL {
        let seen = Seen {
            enabled: true,
            attached: cap.removable().then_some(false),
        };
        let nodes =
            omadmd::mo::build_nodes(DCMO, Some(&def.root), "", &instance_data(cap, seen), 1024)
                .unwrap();
        let get = |p: &str| nodes.iter().find(|n| n.path == p);
        for op in ["Operations/Enable", "Operations/Disable"] {
            let n = get(op).unwrap_or_else(|| panic!("{cap:?}: {op}"));
            assert!(n.props.access.contains(AccessType::EXEC), "{op}");
        }
        // Not writable until the handler enforces them (docs/dcmo.md).
        for leaf in ["DCMOConfig/DenyUserEnable", "DCMOConfig/NotifyUser"] {
            assert!(
                !get(leaf)
                    .unwrap()
                    .props
                    .access
                    .contains(AccessType::REPLACE)
            );
        }
        assert!(
            !get("Enabled")
                .unwrap()
                .props
                .access
                .contains(AccessType::REPLACE)
        );
        assert_eq!(get("Attached").is_some(), cap.removable(), "{cap:?}");
        assert!(get("Property").is_some() && get("Group").is_some());
    }
}
