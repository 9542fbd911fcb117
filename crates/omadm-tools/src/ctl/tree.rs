//! `omadmctl tree`: the instances, MO data at a ClientURI, a local configuration request.

use omadm_client::TreeProxy;
use serde_json::json;

use crate::cli::ctl::TreeCmd;

/// One `omadmctl tree` command.
pub(crate) async fn run(conn: &zbus::Connection, cmd: TreeCmd, json: bool) -> zbus::Result<u8> {
    let tree = TreeProxy::new(conn).await?;
    match cmd {
        TreeCmd::List => {
            let list = tree.list_instances().await?;
            if json {
                let l: Vec<_> = list
                    .iter()
                    .map(|(m, i, cv)| json!({"moid": m, "miid": i, "cv": cv}))
                    .collect();
                omadm_console::outln!("{}", json!(l));
            } else {
                for (moid, miid, _) in list {
                    omadm_console::outln!("{moid}/{miid}/");
                }
            }
        }
        TreeCmd::Get { client_uri } => {
            let data = tree.get(&client_uri).await?;
            let pretty = serde_json::from_str::<serde_json::Value>(&data)
                .ok()
                .and_then(|v| serde_json::to_string_pretty(&v).ok())
                .unwrap_or(data);
            omadm_console::outln!("{pretty}");
        }
        TreeCmd::Configure { moid } => {
            let (outcome, server, from, uris) = tree.request_configuration(&moid).await?;
            if json {
                let source =
                    (outcome == "fetched").then(|| json!({"server_id": server, "url": from}));
                omadm_console::outln!(
                    "{}",
                    json!({"moid": moid, "outcome": outcome, "source": source, "client_uris": uris})
                );
            } else if outcome == "fetched" {
                omadm_console::outln!(
                    "{moid}: fetched from {from} (the DEFAULT of server {server}), stored at:"
                );
                for u in uris {
                    omadm_console::outln!("  {u}");
                }
            } else {
                omadm_console::outln!("{moid}: present already, nothing fetched:");
                for u in uris {
                    omadm_console::outln!("  {u}");
                }
            }
        }
    }
    Ok(0)
}
