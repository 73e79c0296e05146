//! HTTPS for both services: `TLS_CERT_FILE` and `TLS_KEY_FILE` (PEM), served with rustls and
//! its ring provider. A certificate renewed on disk (certbot, cert-manager) is picked up
//! without a restart: the resolver looks at the files' modification times at most every
//! [`RECHECK`], and loads them again when they changed. A renewal that cannot be read (say,
//! the key written a moment after the certificate) keeps the old pair and is tried again.

use crate::settings::{EnvSource, SettingsError};
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// How often, at most, the files are looked at for a renewal.
pub const RECHECK: Duration = Duration::from_secs(2);

/// Where the certificate and its key are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// `TLS_CERT_FILE`: the certificate chain, leaf first.
    pub cert: PathBuf,
    /// `TLS_KEY_FILE`: its private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

impl TlsFiles {
    /// Both variables, or neither (plain HTTP); one alone is an error.
    pub fn from_env(env: &EnvSource) -> Result<Option<Self>, SettingsError> {
        match (env.get("TLS_CERT_FILE"), env.get("TLS_KEY_FILE")) {
            (None, None) => Ok(None),
            (Some(cert), Some(key)) => {
                let files = Self {
                    cert: cert.into(),
                    key: key.into(),
                };
                // Read now, so a wrong path stops start-up instead of every handshake.
                load(&files, &provider())
                    .map_err(|e| SettingsError::invalid(e.variable, e.problem))?;
                Ok(Some(files))
            }
            (Some(_), None) => Err(SettingsError::invalid(
                "TLS_KEY_FILE",
                "must be set with TLS_CERT_FILE",
            )),
            (None, Some(_)) => Err(SettingsError::invalid(
                "TLS_CERT_FILE",
                "must be set with TLS_KEY_FILE",
            )),
        }
    }
}

/// A certificate or key that cannot be used; names the variable, never the key's content.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct TlsError {
    pub variable: &'static str,
    pub problem: String,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A rustls server configuration serving `files`, reloaded when they change.
pub fn server_config(files: &TlsFiles) -> Result<rustls::ServerConfig, TlsError> {
    let provider = provider();
    let resolver = ReloadingCert::new(files.clone(), Arc::clone(&provider))?;
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError {
            variable: "TLS_CERT_FILE",
            problem: e.to_string(),
        })?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    Ok(config)
}

/// Serves the pair on disk, reloading it when its files change.
#[derive(Debug)]
pub struct ReloadingCert {
    files: TlsFiles,
    recheck: Duration,
    provider: Arc<CryptoProvider>,
    state: Mutex<Loaded>,
}

#[derive(Debug)]
struct Loaded {
    key: Arc<CertifiedKey>,
    stamp: Stamp,
    checked: Instant,
}

/// The files' modification times, as last loaded.
type Stamp = (Option<SystemTime>, Option<SystemTime>);

fn stamp(files: &TlsFiles) -> Stamp {
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    (modified(&files.cert), modified(&files.key))
}

fn load(files: &TlsFiles, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let cert_error = |problem: String| TlsError {
        variable: "TLS_CERT_FILE",
        problem: format!("{}: {problem}", files.cert.display()),
    };
    let key_error = |problem: String| TlsError {
        variable: "TLS_KEY_FILE",
        problem: format!("{}: {problem}", files.key.display()),
    };
    let chain = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| cert_error(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_error(e.to_string()))?;
    if chain.is_empty() {
        return Err(cert_error("no certificate in the file".into()));
    }
    // The key's own error text is not shown: it could quote the file.
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|_| key_error("no readable PEM private key in the file".into()))?;
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|_| key_error("the key's type is not supported".into()))?;
    let certified = CertifiedKey::new(chain, signing);
    certified
        .keys_match()
        .map_err(|_| key_error("the key does not belong to the certificate".into()))?;
    Ok(certified)
}

impl ReloadingCert {
    /// Loads the pair now; fails when it cannot be used.
    pub fn new(files: TlsFiles, provider: Arc<CryptoProvider>) -> Result<Self, TlsError> {
        Self::with_recheck(files, provider, RECHECK)
    }

    /// Like [`Self::new`], looking at the files at most every `recheck`.
    pub fn with_recheck(
        files: TlsFiles,
        provider: Arc<CryptoProvider>,
        recheck: Duration,
    ) -> Result<Self, TlsError> {
        let stamp = stamp(&files);
        let key = Arc::new(load(&files, &provider)?);
        Ok(Self {
            files,
            recheck,
            provider,
            state: Mutex::new(Loaded {
                key,
                stamp,
                checked: Instant::now(),
            }),
        })
    }

    /// The pair to serve now, reloaded first if the files changed.
    pub fn current(&self) -> Arc<CertifiedKey> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.checked.elapsed() >= self.recheck {
            state.checked = Instant::now();
            let now = stamp(&self.files);
            if now != state.stamp {
                match load(&self.files, &self.provider) {
                    Ok(key) => {
                        state.key = Arc::new(key);
                        state.stamp = now;
                        tracing::info!(cert = %self.files.cert.display(), "TLS certificate reloaded");
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "renewed TLS certificate not usable yet; serving the previous one")
                    }
                }
            }
        }
        Arc::clone(&state.key)
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// A self-signed pair named `cn` in `dir` (openssl CLI; scripts/test.sh installs it).
    fn make_pair(dir: &Path, cn: &str) -> (Vec<u8>, Vec<u8>) {
        let (cert, key) = (dir.join(format!("{cn}.pem")), dir.join(format!("{cn}.key")));
        let out = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
            ])
            .args(["-nodes", "-days", "1", "-subj", &format!("/CN={cn}")])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("openssl runs (scripts/test.sh installs it)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (
            std::fs::read(cert).expect("cert"),
            std::fs::read(key).expect("key"),
        )
    }

    #[test]
    fn a_renewal_is_served_once_both_files_match_and_a_half_written_one_is_not() {
        let dir = std::env::temp_dir().join(format!("hostpulse-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let (old_cert, old_key) = make_pair(&dir, "old");
        let (new_cert, new_key) = make_pair(&dir, "new");
        let files = TlsFiles {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        };
        std::fs::write(&files.cert, &old_cert).expect("cert");
        std::fs::write(&files.key, &old_key).expect("key");
        let resolver =
            ReloadingCert::with_recheck(files.clone(), provider(), Duration::ZERO).expect("loads");
        let leaf = |r: &ReloadingCert| r.current().cert[0].as_ref().to_vec();
        let old_leaf = leaf(&resolver);

        // The certificate is renewed, its key not yet: the old pair is still served.
        std::fs::write(&files.cert, &new_cert).expect("cert");
        assert_eq!(leaf(&resolver), old_leaf);
        // Now the key too: the new certificate is served, without a new resolver.
        std::fs::write(&files.key, &new_key).expect("key");
        let new_leaf = leaf(&resolver);
        assert_ne!(new_leaf, old_leaf);
        let expected = CertificateDer::pem_slice_iter(&new_cert)
            .next()
            .expect("a certificate")
            .expect("PEM");
        assert_eq!(new_leaf, expected.as_ref());

        // A key that does not belong to the certificate is refused at start-up, by name.
        std::fs::write(&files.key, &old_key).expect("key");
        let err = ReloadingCert::new(files, provider()).expect_err("mismatch");
        assert!(err.to_string().starts_with("TLS_KEY_FILE:"), "{err}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
