//! TLS to a `tcp://` engine as the docker CLI sets it up, and its failures told apart: which
//! file is wrong, or which side does not trust the other.

use std::path::PathBuf;
use std::sync::Arc;

use super::{Tls, TlsProblem};

pub(super) fn tls_help(problem: TlsProblem, tls: Option<&Tls>) -> String {
    let place = |tls: &Tls| format!("`{}` ({})", tls.dir.display(), tls.dir_from);
    match (problem, tls) {
        (TlsProblem::EngineNotTrusted, Some(tls)) => match &tls.ca {
            Some(ca) => format!(
                "the engine's certificate is not signed by `{}` or not issued for this host: put \
                 the CA that signed it as `ca.pem` in {}, or point DOCKER_CERT_PATH at the \
                 directory that holds the engine's CA and your client certificate",
                ca.display(),
                place(tls)
            ),
            None => format!(
                "there is no `ca.pem` in {}, so only the system's CAs were trusted: put the CA \
                 that signed the engine's certificate there",
                place(tls)
            ),
        },
        (TlsProblem::ClientCertificate, Some(tls)) => match &tls.client {
            None => format!(
                "the engine requires a client certificate and there is none: put `cert.pem` and \
                 `key.pem`, signed by the CA the engine trusts (`dockerd --tlscacert`), in {}",
                place(tls)
            ),
            Some((cert, _)) => format!(
                "the engine did not accept the client certificate `{}`: it must be signed by the \
                 CA the engine trusts (`dockerd --tlscacert`) and still be valid",
                cert.display()
            ),
        },
        (TlsProblem::NotTls, _) => {
            "that port answers without TLS: unset DOCKER_TLS_VERIFY and DOCKER_TLS, or use the \
             engine's TLS port (2376 by convention)"
                .into()
        }
        (TlsProblem::WantsTls, _) => {
            "that port wants TLS: set `DOCKER_TLS_VERIFY=1` and point `DOCKER_CERT_PATH` at the \
             directory with `ca.pem`, `cert.pem` and `key.pem`"
                .into()
        }
        _ => "check the certificates with `docker --tlsverify info` using the same \
              DOCKER_HOST and DOCKER_CERT_PATH"
            .into(),
    }
}

/// The client side of TLS as the docker CLI sets it up: the CA file (else the system's roots),
/// the client certificate when there is one, and no verification for `--tls` /
/// `SkipTLSVerify`. On error: the file and what is wrong with it.
pub(super) fn tls_config(
    tls: &Tls,
) -> std::result::Result<rustls::ClientConfig, (PathBuf, String)> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| (tls.dir.clone(), e.to_string()))?;
    let builder = if !tls.verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
    } else {
        let mut roots = rustls::RootCertStore::empty();
        match &tls.ca {
            Some(ca) => {
                let certs: Vec<CertificateDer> = CertificateDer::pem_file_iter(ca)
                    .and_then(|certs| certs.collect())
                    .map_err(|e| (ca.clone(), e.to_string()))?;
                let (added, _) = roots.add_parsable_certificates(certs);
                if added == 0 {
                    return Err((ca.clone(), "it holds no certificate".into()));
                }
            }
            None => {
                roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            }
        }
        builder.with_root_certificates(roots)
    };
    match &tls.client {
        Some((cert, key)) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
                .and_then(|certs| certs.collect())
                .map_err(|e| (cert.clone(), e.to_string()))?;
            let key =
                PrivateKeyDer::from_pem_file(key).map_err(|e| (key.clone(), e.to_string()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| (cert.clone(), e.to_string()))
        }
        None => Ok(builder.with_no_client_auth()),
    }
}

/// `DOCKER_TLS` without `DOCKER_TLS_VERIFY`, or a context's `SkipTLSVerify`: encrypted, the
/// engine unchecked, as the user asked.
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
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
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Which TLS failure the error chain shows, if any.
pub(super) fn classify_tls(
    error: &bollard::errors::Error,
    text: &str,
    spoke_tls: bool,
) -> Option<TlsProblem> {
    if let bollard::errors::Error::DockerResponseServerError { message, .. } = error
        && message.contains("HTTP request to an HTTPS server")
    {
        return Some(TlsProblem::WantsTls);
    }
    if !spoke_tls {
        return None;
    }
    let has = |needles: &[&str]| needles.iter().any(|n| text.contains(n));
    if has(&[
        "UnknownIssuer",
        "NotValidForName",
        "invalid peer certificate",
    ]) {
        Some(TlsProblem::EngineNotTrusted)
    } else if has(&[
        "CertificateRequired",
        "BadCertificate",
        "UnknownCA",
        "CertificateUnknown",
        "DecryptError",
    ]) {
        Some(TlsProblem::ClientCertificate)
    } else if has(&["InvalidContentType", "corrupt message", "CorruptMessage"]) {
        Some(TlsProblem::NotTls)
    } else if has(&["received fatal alert", "peer sent", "HandshakeFailure"]) {
        Some(TlsProblem::Other)
    } else {
        None
    }
}

/// The failure in words, then the TLS library's own (the last cause of the chain).
pub(super) fn tls_reason(problem: TlsProblem, tls: Option<&Tls>, cause: &str) -> String {
    let words = match problem {
        TlsProblem::EngineNotTrusted => "its certificate is not signed by a trusted CA",
        TlsProblem::ClientCertificate if tls.is_some_and(|t| t.client.is_none()) => {
            "it requires a client certificate, and none was sent"
        }
        TlsProblem::ClientCertificate => "it did not accept the client certificate",
        TlsProblem::NotTls => "that port does not speak TLS",
        TlsProblem::WantsTls => "that port speaks TLS only",
        TlsProblem::Other => "the TLS handshake failed",
    };
    format!("{words} ({cause})")
}

/// The engine's answer, or the last error of the chain: hyper's wrappers say little, the TLS
/// library says what failed.
pub(super) fn tls_cause(error: &bollard::errors::Error) -> String {
    if let bollard::errors::Error::DockerResponseServerError { message, .. } = error {
        return message.trim().to_string();
    }
    let mut last: &(dyn std::error::Error + 'static) = error;
    while let Some(source) = last.source() {
        last = source;
    }
    last.to_string().trim().to_string()
}
