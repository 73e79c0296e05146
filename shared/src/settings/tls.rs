//! Certificates for `amqps://`, read at start-up so a missing file stops it with a clear line.

use super::{EnvSource, SettingsError};
use secrecy::SecretString;

/// TLS material for `amqps://`, read at start-up so a missing file stops it with a clear line.
#[derive(Clone, Default)]
pub struct TlsFiles {
    /// PEM CA certificates the broker's certificate must chain to (`AMQP_CA_FILE`); without it,
    /// the system's roots.
    pub ca_pem: Option<String>,
    /// PEM client certificate and its PEM PKCS#8 key (`AMQP_CLIENT_CERT`, `AMQP_CLIENT_KEY`).
    pub client: Option<(Vec<u8>, SecretString)>,
}

impl std::fmt::Debug for TlsFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsFiles")
            .field("ca_pem", &self.ca_pem.is_some())
            .field("client", &self.client.is_some())
            .finish()
    }
}

impl TlsFiles {
    /// The rustls client configuration for `amqps://`: the broker's certificate checked
    /// against `AMQP_CA_FILE` (else the system's roots), our own certificate shown when one is
    /// set. Errors name the variable, never a key's text.
    pub fn client_config(&self) -> Result<rustls::ClientConfig, String> {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        use secrecy::ExposeSecret;
        let mut roots = rustls::RootCertStore::empty();
        match &self.ca_pem {
            Some(pem) => {
                for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                    let cert = cert.map_err(|e| format!("AMQP_CA_FILE: {e}"))?;
                    roots.add(cert).map_err(|e| format!("AMQP_CA_FILE: {e}"))?;
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                for cert in found.certs {
                    // One unusable system certificate does not stop the others.
                    let _ = roots.add(cert);
                }
            }
        }
        let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots);
        match &self.client {
            None => Ok(config.with_no_client_auth()),
            Some((cert, key)) => {
                let chain = CertificateDer::pem_slice_iter(cert)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("AMQP_CLIENT_CERT: {e}"))?;
                // The key's own text never goes into an error.
                let key = PrivateKeyDer::from_pem_slice(key.expose_secret().as_bytes())
                    .map_err(|_| "AMQP_CLIENT_KEY: not a PEM private key".to_owned())?;
                config
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| format!("AMQP_CLIENT_CERT: {e}"))
            }
        }
    }

    /// Reads `AMQP_CA_FILE`, `AMQP_CLIENT_CERT` and `AMQP_CLIENT_KEY`.
    pub fn from_env(env: &EnvSource) -> Result<Self, SettingsError> {
        let read = |name: &str| -> Result<Option<Vec<u8>>, SettingsError> {
            env.get(name)
                .map(|path| {
                    std::fs::read(path).map_err(|e| {
                        SettingsError::invalid(name, format!("cannot read {path}: {e}"))
                    })
                })
                .transpose()
        };
        let ca_pem = read("AMQP_CA_FILE")?
            .map(|bytes| {
                String::from_utf8(bytes)
                    .map_err(|_| SettingsError::invalid("AMQP_CA_FILE", "not a PEM file"))
            })
            .transpose()?;
        if ca_pem
            .as_deref()
            .is_some_and(|pem| !pem.contains("-----BEGIN CERTIFICATE-----"))
        {
            return Err(SettingsError::invalid(
                "AMQP_CA_FILE",
                "holds no PEM certificate",
            ));
        }
        let client = match (read("AMQP_CLIENT_CERT")?, read("AMQP_CLIENT_KEY")?) {
            (Some(cert), Some(key)) => {
                let key = String::from_utf8(key)
                    .map_err(|_| SettingsError::invalid("AMQP_CLIENT_KEY", "not a PEM file"))?;
                Some((cert, SecretString::from(key)))
            }
            (None, None) => None,
            (Some(_), None) => {
                return Err(SettingsError::invalid(
                    "AMQP_CLIENT_KEY",
                    "needed with AMQP_CLIENT_CERT",
                ))
            }
            (None, Some(_)) => {
                return Err(SettingsError::invalid(
                    "AMQP_CLIENT_CERT",
                    "needed with AMQP_CLIENT_KEY",
                ))
            }
        };
        Ok(Self { ca_pem, client })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_certificate_needs_its_key_and_a_missing_file_is_named() {
        let env = EnvSource::from_pairs([("AMQP_CLIENT_CERT", "/dev/null")]);
        let err = TlsFiles::from_env(&env).expect_err("no key");
        assert!(err.to_string().starts_with("AMQP_CLIENT_KEY:"), "{err}");
        let env = EnvSource::from_pairs([("AMQP_CA_FILE", "/nonexistent/ca.pem")]);
        let err = TlsFiles::from_env(&env).expect_err("missing file");
        assert!(err.to_string().starts_with("AMQP_CA_FILE:"), "{err}");
        let tls = TlsFiles::from_env(&EnvSource::default()).expect("nothing set is fine");
        assert!(tls.ca_pem.is_none() && tls.client.is_none());
    }
}
