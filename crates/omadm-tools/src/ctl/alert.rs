//! `omadmctl alert send` and `notify`: a Generic Alert queued for a server, a DM
//! Notification handed over (or written to a file).

use omadm_client::ManagerProxy;
use serde_json::json;

use crate::cli::ctl::NotifyArgs;

/// `omadmctl alert send`: a Generic Alert for the next session with `server`.
pub(crate) async fn send(
    manager: &ManagerProxy<'_>,
    server: String,
    alert_type: String,
    source: Option<String>,
    mark: Option<String>,
    data: Option<String>,
    json: bool,
) -> zbus::Result<u8> {
    let mut alert = json!({"AlertType": alert_type});
    if let Some(s) = source {
        alert["SourceURI"] = json!(s);
    }
    if let Some(m) = mark {
        alert["Mark"] = json!(m);
    }
    if let Some(d) = data {
        let parsed: serde_json::Value = match serde_json::from_str(&d) {
            Ok(v @ serde_json::Value::Object(_)) => v,
            _ => {
                omadm_console::errln!("omadmctl: --data must be a JSON object");
                return Ok(2);
            }
        };
        alert["Data"] = parsed;
        alert["DataType"] = json!("application/json");
    }
    manager.queue_alert(&server, &alert.to_string()).await?;
    if json {
        omadm_console::outln!(
            "{}",
            json!({"queued": true, "server_id": server, "alert": alert})
        );
    } else {
        omadm_console::outln!("alert queued for {server}; it goes out in the next session");
    }
    Ok(0)
}

/// `omadmctl notify`: hands a notification to the daemon, checked as one from UDP.
pub(crate) async fn inject(
    manager: &ManagerProxy<'_>,
    args: &NotifyArgs,
    json: bool,
) -> zbus::Result<u8> {
    let bytes = match notification(args) {
        Ok(b) => b,
        Err(e) => {
            omadm_console::errln!("omadmctl: {e}");
            return Ok(2);
        }
    };
    let server = manager.inject_notification(&bytes).await?;
    if json {
        omadm_console::outln!("{}", json!({"accepted": true, "server_id": server}));
    } else {
        omadm_console::outln!("notification accepted; a session with {server} follows");
    }
    Ok(0)
}

/// The notification `omadmctl notify` hands over: read from its file, or made up.
pub(crate) fn notification(args: &NotifyArgs) -> Result<Vec<u8>, String> {
    let Some(server) = &args.server else {
        let file = args.file.as_deref().unwrap_or(std::path::Path::new("-"));
        return std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()));
    };
    let secret = match (&args.secret, &args.secret_file) {
        (Some(s), _) => Some(s.0.clone()),
        (None, Some(f)) => {
            let text = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
            Some(
                crate::cli::base64_arg(&text)
                    .map_err(|e| format!("{}: {e}", f.display()))?
                    .0,
            )
        }
        (None, None) => None,
    };
    omadm_proto::package0::compose(
        &omadm_proto::package0::Compose {
            server_id: server.clone(),
            notification_id: args.notification_id,
            req_mos: args.req_mos,
            secret,
            auth_data: args.auth_data.clone().map(|b| b.0).unwrap_or_default(),
            wap: args.wap,
            start_within_secs: None,
        },
        // Timestamped now (TS §5.2.1.2): the daemon checks it against its window.
        u64::try_from(omadm_console::now_secs()).unwrap_or(0),
    )
    .map_err(|e| format!("cannot encode the notification: {e}"))
}

/// `omadmctl notify --out FILE`: makes the notification and writes it, without the bus.
pub(crate) fn write_notification(args: &NotifyArgs, out: &std::path::Path, json_out: bool) -> u8 {
    let bytes = match notification(args) {
        Ok(b) => b,
        Err(e) => {
            omadm_console::errln!("omadmctl: {e}");
            return 2;
        }
    };
    if let Err(e) = std::fs::write(out, &bytes) {
        omadm_console::errln!("omadmctl: {}: {e}", out.display());
        return 2;
    }
    if json_out {
        omadm_console::outln!(
            "{}",
            json!({"file": out.display().to_string(), "bytes": bytes.len()})
        );
    } else {
        omadm_console::outln!(
            "wrote a {}-byte notification to {}",
            bytes.len(),
            out.display()
        );
    }
    0
}
