//! Serving a script: the listener, plain or TLS (with the certificates made for the run),
//! and the line that tells a caller where the server is.

use std::io::Write as _;
use std::sync::Arc;

use crate::{Options, Script, make_certificates, mutual_tls, router};

/// Binds, prints `listening on <base URL>` on stdout, and serves until the process ends.
pub async fn serve(script: Script, opts: Options) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let listener = std::net::TcpListener::bind(opts.listen)
        .with_context(|| format!("cannot bind {}", opts.listen))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let scheme = if opts.tls { "https" } else { "http" };
    let host = if addr.ip().is_loopback() && addr.is_ipv4() {
        "127.0.0.1".to_owned()
    } else {
        addr.ip().to_string()
    };
    let base = format!("{scheme}://{host}:{}", addr.port());
    let record = match &opts.record {
        Some(p) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("cannot open {}", p.display()))?,
        ),
        None => None,
    };
    let app = router(script, base.clone(), record, opts.verbose);
    if opts.tls {
        let certs = make_certificates().context("cannot make a certificate")?;
        if let Some(p) = &opts.ca_out {
            std::fs::write(p, &certs.ca)
                .with_context(|| format!("cannot write {}", p.display()))?;
        }
        let config = match &opts.client_cert_out {
            Some(p) => {
                std::fs::write(p, &certs.client)
                    .with_context(|| format!("cannot write {}", p.display()))?;
                axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(mutual_tls(&certs)?))
            }
            None => {
                axum_server::tls_rustls::RustlsConfig::from_pem(
                    certs.server_cert.into_bytes(),
                    certs.server_key.into_bytes(),
                )
                .await?
            }
        };
        println!("listening on {base}");
        std::io::stdout().flush()?;
        axum_server::from_tcp_rustls(listener, config)?
            .serve(app.into_make_service())
            .await?;
    } else {
        println!("listening on {base}");
        std::io::stdout().flush()?;
        axum::serve(tokio::net::TcpListener::from_std(listener)?, app).await?;
    }
    Ok(())
}
