//! TLS client settings: the system's roots plus the server certificate a model supplies.
//!
//! Private mail servers often use a self-signed certificate or a company CA. Rather than
//! teaching modelers to switch verification off, the `serverCertificate` field lets them paste
//! the PEM and keep verification on.

use std::error::Error as StdError;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::error::{EmailError, ErrorCode, Result};

/// The ring provider, named explicitly: with more than one provider in the dependency graph,
/// rustls refuses to guess.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The platform's trusted roots, loaded once. Falls back to the Mozilla set compiled into the
/// binary when the system has none (a minimal container image).
fn system_roots() -> &'static RootCertStore {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let mut store = RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        store.add_parsable_certificates(native.certs);
        if store.is_empty() {
            store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        store
    })
}

/// Parses every certificate of a PEM text; an empty or broken PEM is the modeler's mistake.
pub fn parse_pem_certificates(pem: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| {
            EmailError::invalid_input(format!(
                "/server/serverCertificate: not a PEM certificate ({e})"
            ))
        })?;
    if certs.is_empty() {
        return Err(EmailError::invalid_input(
            "/server/serverCertificate: no '-----BEGIN CERTIFICATE-----' block found",
        ));
    }
    Ok(certs)
}

/// A client configuration trusting the system roots and `server_certificate`.
pub fn client_config(
    server_certificate: Option<&str>,
    accept_invalid_certificates: bool,
) -> Result<Arc<ClientConfig>> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| EmailError::new(ErrorCode::TlsError, e.to_string()))?;
    let config = if accept_invalid_certificates {
        tracing::warn!(
            "acceptInvalidCertificates is set: the server's certificate is not verified (development only)"
        );
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider())))
            .with_no_client_auth()
    } else {
        let mut roots = system_roots().clone();
        if let Some(pem) = server_certificate {
            for cert in parse_pem_certificates(pem)? {
                roots.add(cert).map_err(|e| {
                    EmailError::invalid_input(format!(
                        "/server/serverCertificate: cannot be used as a trust anchor ({e})"
                    ))
                })?;
            }
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    Ok(Arc::new(config))
}

/// Whether a failure anywhere in `error`'s source chain is a TLS failure (bad certificate,
/// handshake refused, TLS spoken to a plaintext port).
pub fn is_tls_failure(error: &(dyn StdError + 'static)) -> bool {
    let mut current: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(e) = current {
        if e.is::<rustls::Error>() {
            return true;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && inner.is::<rustls::Error>()
        {
            return true;
        }
        current = e.source();
    }
    false
}

/// Accepts any certificate; only ever used when a model sets `acceptInvalidCertificates`.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broken_pem_is_invalid_input_naming_the_field() {
        let e = parse_pem_certificates("hello").unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidInput);
        assert!(e.message.contains("/server/serverCertificate"));
        assert!(
            client_config(
                Some("-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n"),
                false
            )
            .is_err()
        );
    }

    #[test]
    fn system_roots_are_never_empty() {
        assert!(!system_roots().is_empty());
        assert!(client_config(None, false).is_ok());
        assert!(client_config(None, true).is_ok());
    }

    #[test]
    fn tls_errors_are_found_inside_io_errors() {
        let io = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        assert!(is_tls_failure(&io));
        let plain = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert!(!is_tls_failure(&plain));
    }
}
