//! `omadm-testserver`: a scriptable OMA DM 2.0 server, Data Repository and Web Server
//! Component, for demos, tests and conformance runs. See docs/testserver.md.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use omadmd::testserver::{Options, Script, serve};

/// A scriptable OMA DM 2.0 server for demos and tests.
///
/// It answers each Package#1 with the next scripted session and each Package#3 with that
/// session's next Package#2 (END when the script runs out); it serves and accepts MO data
/// under /repo/, serves a SHOW page at /ui, and records everything it receives as JSON
/// lines. It prints "listening on <URL>" once ready; the DM endpoint is <URL>/dm.
#[derive(Debug, Parser)]
#[command(name = "omadm-testserver", version)]
struct Cli {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Script: a JSON file with "sessions" (each a list of Package#2s) and "repository".
    #[arg(long, value_name = "FILE")]
    script: Option<PathBuf>,
    /// Serve HTTPS with a self-signed certificate made at start.
    #[arg(long)]
    tls: bool,
    /// With --tls: write the CA certificate clients should trust here.
    #[arg(long, value_name = "FILE")]
    ca_out: Option<PathBuf>,
    /// With --tls: require client certificates from the CA, and write one (certificate and
    /// key, PEM) for a device here.
    #[arg(long, value_name = "FILE")]
    client_cert_out: Option<PathBuf>,
    /// Append a JSON line per received package or request here.
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
    /// Print a line per event.
    #[arg(short, long)]
    verbose: bool,
    /// Instead of serving: send one DM Notification (Package#0) to this UDP address and exit.
    #[arg(long, value_name = "ADDR", help_heading = "Sending a notification")]
    notify: Option<SocketAddr>,
    /// SERVER-ID of the notification.
    #[arg(long, value_name = "ID", help_heading = "Sending a notification")]
    server_id: Option<String>,
    /// NOTIFICATION-ID.
    #[arg(long, value_name = "N", help_heading = "Sending a notification")]
    notification_id: Option<u16>,
    /// Sign with this server-secret (base64; the account's Auth/Noti/Secret).
    #[arg(long, value_name = "B64", value_parser = omadmd::cli::base64_arg, help_heading = "Sending a notification")]
    secret: Option<omadmd::cli::Bytes>,
    /// auth-data for the digest (base64; the account's Auth/Noti/Data).
    #[arg(long, value_name = "B64", value_parser = omadmd::cli::base64_arg, help_heading = "Sending a notification")]
    auth_data: Option<omadmd::cli::Bytes>,
    /// Set REQ-MOS.
    #[arg(long, help_heading = "Sending a notification")]
    req_mos: bool,
    /// Send as connectionless WAP Push (WSP) rather than a bare Package#0.
    #[arg(long, help_heading = "Sending a notification")]
    wap: bool,
}

/// Sends one notification as the options say.
fn send_notification(cli: &Cli, to: SocketAddr) -> Result<(), String> {
    let bytes = omadmd::notify::compose(&omadmd::notify::Compose {
        server_id: cli.server_id.clone().unwrap_or_default(),
        notification_id: cli.notification_id,
        req_mos: cli.req_mos,
        secret: cli.secret.clone().map(|b| b.0),
        auth_data: cli.auth_data.clone().map(|b| b.0).unwrap_or_default(),
        wap: cli.wap,
    })
    .map_err(|e| e.to_string())?;
    let socket = std::net::UdpSocket::bind(if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" })
        .map_err(|e| e.to_string())?;
    socket.send_to(&bytes, to).map_err(|e| e.to_string())?;
    println!("sent a {}-byte notification to {to}", bytes.len());
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(to) = cli.notify {
        return match send_notification(&cli, to) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("omadm-testserver: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let script = match &cli.script {
        None => Script::default(),
        Some(p) => match std::fs::read_to_string(p)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
        {
            Ok(s) => s,
            Err(e) => {
                eprintln!("omadm-testserver: script {}: {e}", p.display());
                return ExitCode::FAILURE;
            }
        },
    };
    let opts = Options {
        listen: cli.listen,
        tls: cli.tls,
        ca_out: cli.ca_out,
        client_cert_out: cli.client_cert_out,
        record: cli.record,
        verbose: cli.verbose,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("omadm-testserver: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(script, opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("omadm-testserver: {e:#}");
            ExitCode::FAILURE
        }
    }
}
