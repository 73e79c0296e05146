//! API tokens kept in the history store, used whenever there is one (`HISTORY_URL` not `off`),
//! so every consumer sharing a store shares its tokens and `consumer token revoke` counts at
//! the next request (each check is read from the database; nothing is cached).
//!
//! Tokens made by an earlier version in `DATA_DIR/api-tokens.json` are imported once, before
//! the first token is checked or listed; the file is then renamed `api-tokens.json.imported`.

use super::{FileTokenStore, TokenError, TokenInfo, TokenRecord, TokenStore};
use crate::clock::SharedClock;
use crate::history::recorder::History;
use crate::history::store::Store;
use async_trait::async_trait;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How long a token check waits for a store that is still opening (at start-up) before the
/// request is answered 503.
const STORE_WAIT: Duration = Duration::from_secs(3);

/// Where the store comes from.
enum Source {
    /// Already open (the command line).
    Open(Arc<Store>),
    /// Opened by the recorder, perhaps not yet (a serving consumer).
    Opening(Arc<History>),
}

/// Tokens in the history store's `api_tokens` table.
pub struct StoreTokenStore {
    source: Source,
    legacy: FileTokenStore,
    imported: tokio::sync::OnceCell<()>,
    clock: SharedClock,
}

/// What importing the old token file did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Imported {
    /// Tokens in the file.
    pub found: usize,
    /// Of those, tokens the store did not hold yet.
    pub added: u64,
    /// Where the file was moved, once imported.
    pub renamed_to: Option<PathBuf>,
}

impl StoreTokenStore {
    /// The tokens of a serving consumer, in the store `history` opens.
    pub fn serving(history: Arc<History>, data_dir: &Path, clock: SharedClock) -> Self {
        Self::new(Source::Opening(history), data_dir, clock)
    }

    /// The tokens in an open store (the command line).
    pub fn opened(store: Arc<Store>, data_dir: &Path, clock: SharedClock) -> Self {
        Self::new(Source::Open(store), data_dir, clock)
    }

    fn new(source: Source, data_dir: &Path, clock: SharedClock) -> Self {
        Self {
            source,
            legacy: FileTokenStore::open(data_dir),
            imported: tokio::sync::OnceCell::new(),
            clock,
        }
    }

    async fn open_store(&self) -> Result<Arc<Store>, TokenError> {
        match &self.source {
            Source::Open(store) => Ok(Arc::clone(store)),
            Source::Opening(history) => history.store_within(STORE_WAIT).await.ok_or_else(|| {
                TokenError::Other("the history store is not open (yet); see /health".into())
            }),
        }
    }

    /// Moves the tokens of `DATA_DIR/api-tokens.json` into the store, if there is such a
    /// file. Safe to repeat: tokens already in the store (even revoked) are left as they are.
    pub async fn import_legacy(&self) -> Result<Imported, TokenError> {
        let store = self.open_store().await?;
        let records: Vec<TokenRecord> = self.legacy.read()?;
        if records.is_empty() {
            return Ok(Imported::default());
        }
        let added = store.add_tokens(&records).await?;
        let from = self.legacy.path();
        let to = from.with_extension("json.imported");
        std::fs::rename(from, &to).map_err(|source| TokenError::Io {
            path: from.display().to_string(),
            source,
        })?;
        Ok(Imported {
            found: records.len(),
            added,
            renamed_to: Some(to),
        })
    }

    /// The store, once the old file has been imported (tried once per process; a failure is
    /// logged and the file left where it is).
    async fn store(&self) -> Result<Arc<Store>, TokenError> {
        let store = self.open_store().await?;
        self.imported
            .get_or_init(|| async {
                match self.import_legacy().await {
                    Ok(Imported {
                        found,
                        added,
                        renamed_to: Some(to),
                    }) => tracing::info!(
                        found,
                        added,
                        renamed_to = %to.display(),
                        "API tokens imported from the old file into the history store"
                    ),
                    Ok(_) => {}
                    Err(e) => tracing::error!(
                        error = %e,
                        "cannot import the old API token file into the history store; its \
                         tokens are refused until it is (run `consumer token list` to retry)"
                    ),
                }
            })
            .await;
        Ok(store)
    }
}

#[async_trait]
impl TokenStore for StoreTokenStore {
    async fn create(&self, record: TokenRecord) -> Result<(), TokenError> {
        let added = self.store().await?.add_tokens(&[record]).await?;
        if added == 0 {
            return Err(TokenError::Other(
                "a token with this id or secret exists already; try again".into(),
            ));
        }
        Ok(())
    }

    async fn list(&self) -> Result<Vec<TokenInfo>, TokenError> {
        Ok(self.store().await?.live_tokens().await?)
    }

    async fn revoke(&self, id: &str) -> Result<bool, TokenError> {
        Ok(self
            .store()
            .await?
            .revoke_token(id, self.clock.now())
            .await?)
    }

    async fn find(&self, sha256: &str) -> Result<Option<TokenInfo>, TokenError> {
        let store = self.store().await?;
        let found = store.find_token(sha256).await?;
        if let Some(info) = &found {
            // Noted in the background: a busy store must not slow the request down.
            let (id, now) = (info.id.clone(), self.clock.now());
            tokio::spawn(async move {
                if let Err(e) = store.token_used(&id, now).await {
                    tracing::debug!(error = %e, "cannot note when an API token was used");
                }
            });
        }
        Ok(found)
    }
}
