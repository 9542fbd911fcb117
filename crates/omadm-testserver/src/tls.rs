//! The test server's TLS: a CA made at start, a server certificate for `localhost` and
//! `127.0.0.1`, a device certificate it issued, and the rustls set-up that requires it.

/// Certificates made at start (PEM).
#[derive(Debug, Clone)]
pub struct Certificates {
    /// The CA that issued both others.
    pub ca: String,
    /// The server's certificate, for `localhost` and `127.0.0.1`.
    pub server_cert: String,
    /// Its key.
    pub server_key: String,
    /// A client certificate and key (one PEM) for devices, when client certificates are required.
    pub client: String,
}

/// A CA, a server certificate for `localhost`/`127.0.0.1` and a client certificate it issued.
pub fn make_certificates() -> Result<Certificates, rcgen::Error> {
    use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyPair};
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "omadm-testserver CA");
    let ca = ca_params.self_signed(&ca_key)?;
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate()?;
    let params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?;
    let cert = params.signed_by(&key, &issuer)?;
    let client_key = KeyPair::generate()?;
    let mut client_params = CertificateParams::new(Vec::<String>::new())?;
    client_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "omadmd device");
    client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client = client_params.signed_by(&client_key, &issuer)?;
    Ok(Certificates {
        ca: ca.pem(),
        server_cert: cert.pem(),
        server_key: key.serialize_pem(),
        client: format!("{}{}", client.pem(), client_key.serialize_pem()),
    })
}

/// A rustls server configuration that requires client certificates issued by `ca`.
pub(crate) fn mutual_tls(certs: &Certificates) -> anyhow::Result<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(certs.ca.as_bytes())?)?;
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider.clone())
            .build()?;
    let chain = vec![CertificateDer::from_pem_slice(
        certs.server_cert.as_bytes(),
    )?];
    let key = PrivateKeyDer::from_pem_slice(certs.server_key.as_bytes())?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
