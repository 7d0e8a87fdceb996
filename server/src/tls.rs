//! TLS to Redis (`rediss://`, SPEC §12) for the collector's own connection, which speaks RESP
//! on a raw stream: the same trust as redis-rs's connections — the CA of `REDIS_CA_FILE`, else
//! the system's roots — with rustls (ring; no OpenSSL).

use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

/// The client side of the handshake: whom to trust.
pub fn client_config(ca: Option<&[u8]>) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(pem) => {
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert =
                    cert.map_err(|e| anyhow::anyhow!("REDIS_CA_FILE: not a PEM certificate: {e}"))?;
                roots.add(cert).map_err(|e| {
                    anyhow::anyhow!("REDIS_CA_FILE: a certificate rustls cannot use: {e}")
                })?;
            }
            anyhow::ensure!(!roots.is_empty(), "REDIS_CA_FILE holds no PEM certificate");
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                // A system root rustls cannot read is one root less, not a reason to stop.
                let _ = roots.add(cert);
            }
            anyhow::ensure!(
                !roots.is_empty(),
                "no system root certificates to verify Redis's TLS certificate; set REDIS_CA_FILE"
            );
        }
    }
    Ok(Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}
