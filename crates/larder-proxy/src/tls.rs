//! TLS on rustls (ring): the listener's certificate, reloaded on demand
//! (SIGHUP in the binary), and the client side for `https://` upstreams.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

use crate::config::{ListenerTls, UpstreamTls};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certificates(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{what} {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{what} {}: no PEM certificate in it",
            path.display()
        ));
    }
    Ok(certs)
}

fn private_key(path: &Path, what: &str) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| format!("{what} {}: {e}", path.display()))
}

/// The listener's TLS: the acceptor new connections use, replaced whole
/// on reload (established connections keep the configuration they
/// negotiated with).
pub(crate) struct ServerTls {
    current: RwLock<TlsAcceptor>,
    certificate: PathBuf,
    key: PathBuf,
    http2: bool,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("certificate", &self.certificate)
            .field("key", &self.key)
            .field("http2", &self.http2)
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Reads the certificate chain and key; an error names the file.
    pub(crate) fn load(config: &ListenerTls) -> Result<Arc<ServerTls>, String> {
        let acceptor = acceptor(&config.certificate, &config.key, config.http2)?;
        Ok(Arc::new(ServerTls {
            current: RwLock::new(acceptor),
            certificate: config.certificate.clone(),
            key: config.key.clone(),
            http2: config.http2,
        }))
    }

    /// What the next connection's handshake uses.
    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Reads the files again; on any error the current certificate stays.
    pub(crate) fn reload(&self) -> Result<(), String> {
        let acceptor = acceptor(&self.certificate, &self.key, self.http2)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = acceptor;
        Ok(())
    }
}

fn acceptor(certificate: &Path, key: &Path, http2: bool) -> Result<TlsAcceptor, String> {
    let chain = certificates(certificate, "[tls] certificate")?;
    let key = private_key(key, "[tls] key")?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("[tls] certificate and key do not make a pair: {e}"))?;
    config.alpn_protocols = if http2 && cfg!(feature = "http2") {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The client configuration for an `https://` upstream: the configured CA
/// file's certificates, or the system's roots, and the client certificate
/// when one is configured. HTTP/1.1 only (ALPN).
pub(crate) fn client_config(upstream: &UpstreamTls) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    match &upstream.ca {
        Some(path) => {
            for cert in certificates(path, "upstream_ca")? {
                roots
                    .add(cert)
                    .map_err(|e| format!("upstream_ca {}: {e}", path.display()))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                // One unusable system certificate does not stop the rest.
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                return Err(format!(
                    "https upstream: no system root certificates found ({}); \
                     install them (ca-certificates) or set upstream_ca = \"/path/to/ca.pem\"",
                    found
                        .errors
                        .first()
                        .map_or_else(|| "none installed".to_owned(), |e| e.to_string())
                ));
            }
        }
    }
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let mut config = match (&upstream.client_certificate, &upstream.client_key) {
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(
                certificates(cert, "upstream_client_certificate")?,
                private_key(key, "upstream_client_key")?,
            )
            .map_err(|e| format!("upstream_client_certificate and upstream_client_key: {e}"))?,
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
