//! API tokens kept in the history store, used whenever there is one (`HISTORY_URL` not `off`),
//! so every consumer sharing a store shares its tokens and `consumer token revoke` counts at
//! the next request (each check is read from the database; nothing is cached).
//!
//! When a token was last used is noted in memory and written in batches
//! ([`super::write_uses_forever`], and at shutdown), so a flood of API requests does not
//! become a flood of store writes competing with the history's.
//!
//! Tokens made by an earlier version in `DATA_DIR/api-tokens.json` are imported once, before
//! the first token is checked or listed; the file is then renamed `api-tokens.json.imported`.

use super::{FileTokenStore, TokenError, TokenInfo, TokenRecord, TokenStore};
use crate::clock::SharedClock;
use crate::history::recorder::History;
use crate::history::store::Store;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
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
    /// Last uses not written yet, by token id: one entry per token, however many requests.
    uses: Mutex<HashMap<String, DateTime<Utc>>>,
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
            uses: Mutex::new(HashMap::new()),
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

    fn uses(&self) -> std::sync::MutexGuard<'_, HashMap<String, DateTime<Utc>>> {
        self.uses.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Notes that token `id` was used at `at` (written with the next batch).
    fn note_use(&self, id: &str, at: DateTime<Utc>) {
        let mut uses = self.uses();
        match uses.get_mut(id) {
            Some(last) => *last = (*last).max(at),
            None => {
                uses.insert(id.to_owned(), at);
            }
        }
    }

    /// How many tokens have a use noted and not written yet.
    pub fn uses_pending(&self) -> usize {
        self.uses().len()
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
        let mut tokens = self.store().await?.live_tokens().await?;
        // Uses not written yet show too, to the minute like the written ones.
        let uses = self.uses();
        for token in &mut tokens {
            if let Some(at) = uses.get(&token.id) {
                if token.last_used_at.is_none_or(|written| written < *at) {
                    token.last_used_at = Some(*at);
                }
            }
        }
        Ok(tokens)
    }

    async fn revoke(&self, id: &str) -> Result<bool, TokenError> {
        Ok(self
            .store()
            .await?
            .revoke_token(id, self.clock.now())
            .await?)
    }

    async fn find(&self, sha256: &str) -> Result<Option<TokenInfo>, TokenError> {
        let found = self.store().await?.find_token(sha256).await?;
        if let Some(info) = &found {
            // Noted in memory: a busy store must not slow the request down, and a flood of
            // requests must not become a flood of writes.
            self.note_use(&info.id, self.clock.now());
        }
        Ok(found)
    }

    async fn write_uses(&self) -> Result<usize, TokenError> {
        let batch: Vec<(String, DateTime<Utc>)> =
            std::mem::take(&mut *self.uses()).into_iter().collect();
        if batch.is_empty() {
            return Ok(0);
        }
        let written = match self.open_store().await {
            Ok(store) => store.tokens_used(&batch).await.map_err(TokenError::from),
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            // Kept for the next batch; a newer use noted meanwhile wins.
            for (id, at) in batch {
                self.note_use(&id, at);
            }
            return Err(e);
        }
        Ok(batch.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::history::store::HistorySettings;
    use shared::settings::EnvSource;

    #[tokio::test]
    async fn uses_are_noted_in_memory_and_written_in_one_batch() {
        let dir =
            std::env::temp_dir().join(format!("hostpulse-uses-{:016x}", rand::random::<u64>()));
        let env = EnvSource::from_pairs([("DATA_DIR", dir.display().to_string())]);
        let settings = HistorySettings::from_env(&env).expect("valid");
        let store = Arc::new(Store::open(&settings).await.expect("opens").expect("on"));
        let clock = ManualClock::new(Utc::now());
        let tokens = StoreTokenStore::opened(Arc::clone(&store), &dir, clock.clone());
        let (a, secret_a) = super::super::issue(&tokens, "a", clock.now())
            .await
            .expect("issued");
        let (_, secret_b) = super::super::issue(&tokens, "b", clock.now())
            .await
            .expect("issued");

        for _ in 0..100 {
            clock.advance(std::time::Duration::from_secs(1));
            for secret in [&secret_a, &secret_b] {
                assert!(super::super::verify(&tokens, secret)
                    .await
                    .expect("checked")
                    .is_some());
            }
        }
        assert_eq!(
            tokens.uses_pending(),
            2,
            "one entry per token, not per request"
        );
        let written = store.live_tokens().await.expect("lists");
        assert!(
            written.iter().all(|t| t.last_used_at.is_none()),
            "not written yet"
        );
        let listed = tokens.list().await.expect("lists");
        let listed_a = listed.iter().find(|t| t.id == a.id).expect("listed");
        assert_eq!(
            listed_a.last_used_at,
            Some(clock.now()),
            "shown before it is written"
        );

        assert_eq!(tokens.write_uses().await.expect("written"), 2);
        assert_eq!(tokens.uses_pending(), 0);
        let written = store.live_tokens().await.expect("lists");
        assert!(
            written
                .iter()
                .all(|t| t.last_used_at.map(|at| at.timestamp_millis())
                    == Some(clock.now().timestamp_millis())),
            "{written:?}"
        );
        assert_eq!(tokens.write_uses().await.expect("nothing"), 0);
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }
}
