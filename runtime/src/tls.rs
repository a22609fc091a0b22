//! TLS with rustls (the `ring` provider), on both sides: a server's certificate from PEM
//! files or a whole [`rustls::ServerConfig`]; `wss://` and `https://` clients that trust the
//! webpki roots by default, or the roots / [`rustls::ClientConfig`] they are given.

/// The TLS library, for building a [`rustls::ServerConfig`] or [`rustls::ClientConfig`] by
/// hand ([`crate::server::ServerBuilder::tls`], [`crate::client::ClientBuilder::tls_config`]).
pub use rustls;

use std::io;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// A TLS setting that could not be used: a PEM file that is missing or holds no
/// certificate, a key that does not match, and the like.
#[derive(Debug, thiserror::Error)]
#[error("TLS: {0}")]
pub struct TlsError(String);

impl TlsError {
    fn new(what: impl Into<String>) -> Self {
        TlsError(what.into())
    }
}

/// The crypto provider every config made here uses.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    static PROVIDER: OnceLock<Arc<rustls::crypto::CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// Read every certificate of a PEM file (a chain: the server's own first).
pub(crate) fn certificates_pem(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = std::fs::read(path)
        .map_err(|e| TlsError::new(format!("cannot read {}: {e}", path.display())))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::new(format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(TlsError::new(format!(
            "{}: no certificate (expected a PEM `BEGIN CERTIFICATE` block)",
            path.display()
        )));
    }
    Ok(certs)
}

/// A server config from a certificate chain and a private key in PEM files.
pub(crate) fn server_config_pem(cert: &Path, key: &Path) -> Result<ServerConfig, TlsError> {
    let certs = certificates_pem(cert)?;
    let key_bytes = std::fs::read(key)
        .map_err(|e| TlsError::new(format!("cannot read {}: {e}", key.display())))?;
    let key_der = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|e| {
        TlsError::new(format!(
            "{}: no private key ({e}; expected a PEM `PRIVATE KEY` block)",
            key.display()
        ))
    })?;
    ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::new(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| {
            TlsError::new(format!(
                "{} and {} do not make a usable certificate: {e}",
                cert.display(),
                key.display()
            ))
        })
}

/// Make sure a server config offers HTTP/1.1 by ALPN (the only protocol served).
pub(crate) fn with_alpn(config: ServerConfig) -> ServerConfig {
    let mut config = config;
    if config.alpn_protocols.is_empty() {
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
    }
    config
}

/// Roots a client trusts: the webpki roots (Mozilla's list), or the ones given.
pub(crate) fn client_config(roots: Option<RootCertStore>) -> Arc<ClientConfig> {
    static DEFAULT: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    let build = |roots: RootCertStore| {
        let mut config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports the default protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    };
    match roots {
        Some(roots) => build(roots),
        None => DEFAULT
            .get_or_init(|| {
                let mut roots = RootCertStore::empty();
                roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
                build(roots)
            })
            .clone(),
    }
}

/// A root store holding the certificates of a PEM file.
pub(crate) fn roots_pem(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates_pem(path)? {
        roots
            .add(cert)
            .map_err(|e| TlsError::new(format!("{}: {e}", path.display())))?;
    }
    Ok(roots)
}

/// The rustls error inside an I/O error (possibly wrapped in another I/O error), if the
/// failure was TLS's.
pub(crate) fn tls_failure(e: &io::Error) -> Option<&rustls::Error> {
    let inner = e.get_ref()?;
    if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    tls_failure(inner.downcast_ref::<io::Error>()?)
}

/// Say what a TLS failure means for the person reading it.
pub(crate) fn explain(e: &rustls::Error) -> String {
    match e {
        rustls::Error::InvalidCertificate(_) => format!(
            "{e}: the server's certificate does not verify against the client's roots \
             (a private CA needs ClientBuilder::tls_root_pem)"
        ),
        other => other.to_string(),
    }
}
