//! Command-line definitions of `omadm-testserver` (in the library for its man page).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

/// A scriptable OMA DM 2.0 server for demos and tests.
///
/// It answers each Package#1 with the next scripted session and each Package#3 with that
/// session's next Package#2 (END when the script runs out); it serves and accepts MO data
/// under /repo/, serves a SHOW page at /ui, and records everything it receives as JSON
/// lines. It prints "listening on <URL>" once ready; the DM endpoint is <URL>/dm.
#[derive(Debug, Parser)]
#[command(name = "omadm-testserver", version)]
pub struct Cli {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Script: a JSON file with "sessions" (each a list of Package#2s) and "repository".
    #[arg(long, value_name = "FILE")]
    pub script: Option<PathBuf>,
    /// Serve HTTPS with a self-signed certificate made at start.
    #[arg(long)]
    pub tls: bool,
    /// With --tls: write the CA certificate clients should trust here.
    #[arg(long, value_name = "FILE")]
    pub ca_out: Option<PathBuf>,
    /// With --tls: require client certificates from the CA, and write one (certificate and
    /// key, PEM) for a device here.
    #[arg(long, value_name = "FILE")]
    pub client_cert_out: Option<PathBuf>,
    /// Append a JSON line per received package or request here.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// Print a line per event.
    #[arg(short, long)]
    pub verbose: bool,
    /// Instead of serving: send one DM Notification (Package#0) to this UDP address and exit.
    #[arg(long, value_name = "ADDR", help_heading = "Sending a notification")]
    pub notify: Option<SocketAddr>,
    /// SERVER-ID of the notification.
    #[arg(long, value_name = "ID", help_heading = "Sending a notification")]
    pub server_id: Option<String>,
    /// NOTIFICATION-ID.
    #[arg(long, value_name = "N", help_heading = "Sending a notification")]
    pub notification_id: Option<u16>,
    /// Sign with this server-secret (base64; the account's Auth/Noti/Secret).
    #[arg(long, value_name = "B64", value_parser = base64_arg, help_heading = "Sending a notification")]
    pub secret: Option<Bytes>,
    /// auth-data for the digest (base64; the account's Auth/Noti/Data).
    #[arg(long, value_name = "B64", value_parser = base64_arg, help_heading = "Sending a notification")]
    pub auth_data: Option<Bytes>,
    /// Set REQ-MOS.
    #[arg(long, help_heading = "Sending a notification")]
    pub req_mos: bool,
    /// Send as connectionless WAP Push (WSP) rather than a bare Package#0.
    #[arg(long, help_heading = "Sending a notification")]
    pub wap: bool,
    /// Ask an omadmd device to start its session at a random moment within this many
    /// seconds (omadmd's START-WITHIN option 15; not for other clients).
    #[arg(long, value_name = "SECS", help_heading = "Sending a notification")]
    pub start_within: Option<u32>,
}

/// Bytes given as base64 on the command line.
#[derive(Debug, Clone)]
pub struct Bytes(pub Vec<u8>);

/// Parses a base64 argument (standard alphabet, padded).
fn base64_arg(s: &str) -> Result<Bytes, String> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map(Bytes)
        .map_err(|e| format!("not base64: {e}"))
}
