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
