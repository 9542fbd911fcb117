//! `omadm-testserver`: a scriptable OMA DM 2.0 server, Data Repository and Web Server
//! Component, for demos, tests and conformance runs. See docs/testserver.md.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use omadm_proto::package0::{Compose, compose};
use omadm_testserver::cli::Cli;
use omadm_testserver::{Options, Script, serve};

/// Sends one notification as the options say.
fn send_notification(cli: &Cli, to: SocketAddr) -> Result<(), String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let bytes = compose(
        &Compose {
            server_id: cli.server_id.clone().unwrap_or_default(),
            notification_id: cli.notification_id,
            req_mos: cli.req_mos,
            secret: cli.secret.clone().map(|b| b.0),
            auth_data: cli.auth_data.clone().map(|b| b.0).unwrap_or_default(),
            wap: cli.wap,
            start_within_secs: cli.start_within,
        },
        now,
    )
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
