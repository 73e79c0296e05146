//! Read-only API tokens for scripts: `Authorization: Bearer hp_…` on `GET /api/*`.
//!
//! A token is 256 random bits; only its SHA-256 is stored. A slow password hash is not needed
//! here: nobody can guess 256 random bits, so a stolen store gives nothing to brute-force, and
//! a fast hash lets every API request be checked without argon2's cost.

pub mod in_store;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// What is known about a token, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// Short public id, used to revoke it.
    pub id: String,
    /// What it is for, as given at creation.
    pub name: String,
    pub created_at: DateTime<Utc>,
    /// When it last opened the API, to the minute; kept by the history store only (noted in
    /// memory, written every [`WRITE_USES_EVERY`] and at shutdown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A stored token: its info and the SHA-256 of its secret, hex.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenRecord {
    #[serde(flatten)]
    pub info: TokenInfo,
    pub sha256: String,
}

/// A token store failed; the message names the store, never a token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token store {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("token store {path} is damaged: {problem}")]
    Damaged { path: String, problem: String },
    #[error("token store: {0}")]
    Other(String),
    /// The history store failed (its message never holds a password).
    #[error(transparent)]
    Store(#[from] crate::history::store::StoreError),
}

/// Where tokens are kept: a file under `DATA_DIR` without history, the history store with it.
/// Stores keep records; making secrets and hashing them is [`issue`]'s and [`verify`]'s job.
#[async_trait]
pub trait TokenStore: Send + Sync + 'static {
    /// Keeps a new token.
    async fn create(&self, record: TokenRecord) -> Result<(), TokenError>;
    /// Every live token, oldest first.
    async fn list(&self) -> Result<Vec<TokenInfo>, TokenError>;
    /// Revokes the token with this id; false when there is no live one.
    async fn revoke(&self, id: &str) -> Result<bool, TokenError>;
    /// The token whose secret hashes to `sha256` (hex), if it is live. Reflects a revoke
    /// made by another process at once.
    async fn find(&self, sha256: &str) -> Result<Option<TokenInfo>, TokenError>;
    /// Writes what is noted in memory only (the tokens' last uses) to the store; the file
    /// store keeps nothing of the kind.
    async fn write_uses(&self) -> Result<usize, TokenError> {
        Ok(0)
    }
}

/// How often the tokens' last uses noted in memory are written to the store.
pub const WRITE_USES_EVERY: std::time::Duration = std::time::Duration::from_secs(15);

/// Writes the tokens' last uses every [`WRITE_USES_EVERY`], in one batch each time (a task of
/// the serving consumer; the last batch is written at shutdown).
pub async fn write_uses_forever(store: Arc<dyn TokenStore>) {
    let mut ticks = tokio::time::interval(WRITE_USES_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(e) = store.write_uses().await {
            tracing::warn!(error = %e, "cannot write when API tokens were last used; kept for the next try");
        }
    }
}

/// The prefix of every token, so one is recognisable in a config file or a secret scanner.
pub const TOKEN_PREFIX: &str = "hp_";

/// Makes a token named `name`, stores its hash, and returns it with its secret (shown once).
pub async fn issue(
    store: &dyn TokenStore,
    name: &str,
    now: DateTime<Utc>,
) -> Result<(TokenInfo, String), TokenError> {
    let secret = format!("{TOKEN_PREFIX}{}", hex::encode(rand::random::<[u8; 32]>()));
    let info = TokenInfo {
        id: hex::encode(rand::random::<[u8; 6]>()),
        name: name.to_owned(),
        created_at: now,
        last_used_at: None,
    };
    store
        .create(TokenRecord {
            info: info.clone(),
            sha256: digest(&secret),
        })
        .await?;
    Ok((info, secret))
}

/// The live token with this secret, if any.
pub async fn verify(store: &dyn TokenStore, secret: &str) -> Result<Option<TokenInfo>, TokenError> {
    if !secret.starts_with(TOKEN_PREFIX) {
        return Ok(None);
    }
    store.find(&digest(secret)).await
}

/// SHA-256 of a secret, hex.
pub fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Tokens in `DATA_DIR/api-tokens.json` (mode 0600). Read again whenever the file changes,
/// so `consumer token revoke` in another process takes effect on the next request.
pub struct FileTokenStore {
    dir: PathBuf,
    path: PathBuf,
    cache: Mutex<Option<(FileStamp, Arc<Vec<TokenRecord>>)>>,
}

/// Enough of a file's metadata to see that it was replaced or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    inode: u64,
    modified: Option<std::time::SystemTime>,
    len: u64,
}

impl FileTokenStore {
    /// The store in `dir`; the folder is created with the first token.
    pub fn open(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
            path: dir.join("api-tokens.json"),
            cache: Mutex::new(None),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, source: std::io::Error) -> TokenError {
        TokenError::Io {
            path: self.path.display().to_string(),
            source,
        }
    }

    fn stamp(&self) -> Result<Option<FileStamp>, TokenError> {
        use std::os::unix::fs::MetadataExt;
        match std::fs::metadata(&self.path) {
            Ok(meta) => Ok(Some(FileStamp {
                inode: meta.ino(),
                modified: meta.modified().ok(),
                len: meta.len(),
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io(e)),
        }
    }

    /// The records, from the cache unless the file changed since it was read.
    fn records(&self) -> Result<Arc<Vec<TokenRecord>>, TokenError> {
        let Some(stamp) = self.stamp()? else {
            return Ok(Arc::new(Vec::new()));
        };
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((cached, records)) = cache.as_ref() {
            if *cached == stamp {
                return Ok(Arc::clone(records));
            }
        }
        let records = Arc::new(self.read()?);
        *cache = Some((stamp, Arc::clone(&records)));
        Ok(records)
    }

    /// Every record in the file, read now (an import into the history store uses it).
    pub fn read(&self) -> Result<Vec<TokenRecord>, TokenError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.io(e)),
        };
        serde_json::from_str(&text).map_err(|e| TokenError::Damaged {
            path: self.path.display().to_string(),
            problem: e.to_string(),
        })
    }

    /// Replaces the file as a whole (write aside, then rename), readable by its owner only.
    fn write(&self, records: &[TokenRecord]) -> Result<(), TokenError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let json =
            serde_json::to_vec_pretty(records).map_err(|e| TokenError::Other(e.to_string()))?;
        shared::private_files::create_dir(&self.dir, "DATA_DIR").map_err(|e| self.io(e))?;
        let aside = self
            .path
            .with_extension(format!("json.{}", std::process::id()));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&aside)
            .map_err(|e| self.io(e))?;
        file.write_all(&json)
            .and_then(|()| file.sync_all())
            .map_err(|e| self.io(e))?;
        std::fs::rename(&aside, &self.path).map_err(|e| self.io(e))
    }
}

#[async_trait]
impl TokenStore for FileTokenStore {
    async fn create(&self, record: TokenRecord) -> Result<(), TokenError> {
        let mut records = self.read()?;
        records.push(record);
        self.write(&records)
    }

    async fn list(&self) -> Result<Vec<TokenInfo>, TokenError> {
        Ok(self.records()?.iter().map(|r| r.info.clone()).collect())
    }

    async fn revoke(&self, id: &str) -> Result<bool, TokenError> {
        let mut records = self.read()?;
        let before = records.len();
        records.retain(|r| r.info.id != id);
        if records.len() == before {
            return Ok(false);
        }
        self.write(&records)?;
        Ok(true)
    }

    async fn find(&self, sha256: &str) -> Result<Option<TokenInfo>, TokenError> {
        Ok(self
            .records()?
            .iter()
            .find(|r| r.sha256 == sha256)
            .map(|r| r.info.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!(
            "hostpulse-tokens-{name}-{}-{}",
            std::process::id(),
            hex::encode(rand::random::<[u8; 4]>())
        ))
    }

    #[tokio::test]
    async fn issued_tokens_verify_until_revoked_by_another_handle() {
        let dir = temp_dir("revoke");
        let server = FileTokenStore::open(&dir);
        let cli = FileTokenStore::open(&dir);
        let (info, secret) = issue(&cli, "grafana", Utc::now()).await.expect("issued");
        assert!(secret.starts_with("hp_") && secret.len() == 67);
        assert_eq!(
            verify(&server, &secret).await.expect("reads"),
            Some(info.clone())
        );
        assert_eq!(verify(&server, "hp_nope").await.expect("reads"), None);
        let stored = std::fs::read_to_string(dir.join("api-tokens.json")).expect("file");
        assert!(!stored.contains(&secret[3..]), "the secret is not stored");
        assert_eq!(cli.list().await.expect("lists"), vec![info.clone()]);
        assert!(cli.revoke(&info.id).await.expect("revokes"));
        assert_eq!(verify(&server, &secret).await.expect("reads"), None);
        assert!(!cli.revoke(&info.id).await.expect("no such token"));
        let _ = std::fs::remove_dir_all(dir);
    }
}
