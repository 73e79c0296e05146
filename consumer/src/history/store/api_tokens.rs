//! API tokens in the history store (table `api_tokens`, migration 0002): the rows behind
//! [`crate::web::auth::StoreTokenStore`]. Only the SHA-256 of a secret is kept; a revoked token
//! keeps its row with `revoked_at` set, so no import can bring it back.

use super::{Pool, Store, StoreError};
use crate::web::auth::tokens::{TokenInfo, TokenRecord};
use chrono::{DateTime, Utc};

/// One `api_tokens` row as read: id, name, created, last used (unix ms).
type TokenRow = (String, String, i64, Option<i64>);

fn info((id, name, created, last_used): TokenRow) -> TokenInfo {
    TokenInfo {
        id,
        name,
        created_at: DateTime::from_timestamp_millis(created).unwrap_or_default(),
        last_used_at: last_used.and_then(DateTime::from_timestamp_millis),
    }
}

macro_rules! backend {
    ($module:ident, $Db:ty) => {
        mod $module {
            use super::*;

            type Pool = sqlx::Pool<$Db>;

            /// Inserts the records that are not there yet (by id or hash); how many were new.
            pub(super) async fn insert(
                pool: &Pool,
                records: &[TokenRecord],
            ) -> Result<u64, sqlx::Error> {
                let mut tx = pool.begin().await?;
                let mut added = 0;
                for r in records {
                    let done = sqlx::query(
                        "INSERT INTO api_tokens (id, name, sha256, created_at) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                    )
                    .bind(&r.info.id)
                    .bind(&r.info.name)
                    .bind(&r.sha256)
                    .bind(r.info.created_at.timestamp_millis())
                    .execute(&mut *tx)
                    .await?;
                    added += done.rows_affected();
                }
                tx.commit().await?;
                Ok(added)
            }

            pub(super) async fn live(pool: &Pool) -> Result<Vec<TokenRow>, sqlx::Error> {
                sqlx::query_as(
                    "SELECT id, name, created_at, last_used_at FROM api_tokens \
                     WHERE revoked_at IS NULL ORDER BY created_at, id",
                )
                .fetch_all(pool)
                .await
            }

            pub(super) async fn find(
                pool: &Pool,
                sha256: &str,
            ) -> Result<Option<TokenRow>, sqlx::Error> {
                sqlx::query_as(
                    "SELECT id, name, created_at, last_used_at FROM api_tokens \
                     WHERE sha256 = $1 AND revoked_at IS NULL",
                )
                .bind(sha256)
                .fetch_optional(pool)
                .await
            }

            pub(super) async fn revoke(
                pool: &Pool,
                id: &str,
                now: i64,
            ) -> Result<bool, sqlx::Error> {
                let done = sqlx::query(
                    "UPDATE api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
                )
                .bind(id)
                .bind(now)
                .execute(pool)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            pub(super) async fn used(
                pool: &Pool,
                uses: &[(String, DateTime<Utc>)],
            ) -> Result<(), sqlx::Error> {
                let mut tx = pool.begin().await?;
                for (id, at) in uses {
                    let now = at.timestamp_millis();
                    sqlx::query(
                        "UPDATE api_tokens SET last_used_at = $2 WHERE id = $1 \
                         AND (last_used_at IS NULL OR last_used_at < $3)",
                    )
                    .bind(id)
                    .bind(now)
                    .bind(now.saturating_sub(LAST_USED_GRANULARITY_MS))
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await
            }
        }
    };
}

backend!(sqlite, sqlx::Sqlite);
backend!(postgres, sqlx::Postgres);

/// How stale `last_used_at` may get: written at most once a minute per token, so scripts
/// polling the API do not turn every read into a write.
const LAST_USED_GRANULARITY_MS: i64 = 60_000;

impl Store {
    /// Keeps the records not kept yet (same id or same hash: skipped, never overwritten, so a
    /// revoked token stays revoked); returns how many were added.
    pub async fn add_tokens(&self, records: &[TokenRecord]) -> Result<u64, StoreError> {
        match &self.pool {
            Pool::Sqlite {
                pool, write_lock, ..
            } => {
                let _one_writer = write_lock.lock().await;
                sqlite::insert(pool, records).await
            }
            Pool::Postgres(pool) => postgres::insert(pool, records).await,
        }
        .map_err(|e| self.error(&e))
    }

    /// Every token not revoked, oldest first.
    pub async fn live_tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        let rows = match &self.pool {
            Pool::Sqlite { pool, .. } => sqlite::live(pool).await,
            Pool::Postgres(pool) => postgres::live(pool).await,
        }
        .map_err(|e| self.error(&e))?;
        Ok(rows.into_iter().map(info).collect())
    }

    /// The live token whose secret hashes to `sha256`. Read from the database each time, so
    /// a revoke by another process counts from the next request.
    pub async fn find_token(&self, sha256: &str) -> Result<Option<TokenInfo>, StoreError> {
        let row = match &self.pool {
            Pool::Sqlite { pool, .. } => sqlite::find(pool, sha256).await,
            Pool::Postgres(pool) => postgres::find(pool, sha256).await,
        }
        .map_err(|e| self.error(&e))?;
        Ok(row.map(info))
    }

    /// Revokes the live token `id`; false when there is none.
    pub async fn revoke_token(&self, id: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let now = now.timestamp_millis();
        match &self.pool {
            Pool::Sqlite {
                pool, write_lock, ..
            } => {
                let _one_writer = write_lock.lock().await;
                sqlite::revoke(pool, id, now).await
            }
            Pool::Postgres(pool) => postgres::revoke(pool, id, now).await,
        }
        .map_err(|e| self.error(&e))
    }

    /// Notes when each token was last used (to the minute), in one transaction: the batch of
    /// uses the consumer noted in memory since the last one.
    pub async fn tokens_used(&self, uses: &[(String, DateTime<Utc>)]) -> Result<(), StoreError> {
        match &self.pool {
            Pool::Sqlite {
                pool, write_lock, ..
            } => {
                let _one_writer = write_lock.lock().await;
                sqlite::used(pool, uses).await
            }
            Pool::Postgres(pool) => postgres::used(pool, uses).await,
        }
        .map_err(|e| self.error(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::super::HistorySettings;
    use super::*;
    use shared::settings::EnvSource;
    use shared::testing::postgres::PgDatabase;

    fn record(id: &str, sha256: &str) -> TokenRecord {
        TokenRecord {
            info: TokenInfo {
                id: id.into(),
                name: format!("for {id}"),
                created_at: DateTime::from_timestamp_millis(1_700_000_000_000).unwrap_or_default(),
                last_used_at: None,
            },
            sha256: sha256.into(),
        }
    }

    /// Everything a token goes through, on either database.
    async fn lifecycle(store: &Store) {
        let now = Utc::now();
        let (a, b) = (record("aaa", "hash-a"), record("bbb", "hash-b"));
        assert_eq!(
            store
                .add_tokens(&[a.clone(), b.clone()])
                .await
                .expect("adds"),
            2
        );
        assert_eq!(
            store
                .add_tokens(std::slice::from_ref(&a))
                .await
                .expect("adds"),
            0,
            "an import repeated adds nothing"
        );
        let live = store.live_tokens().await.expect("lists");
        assert_eq!(live, vec![a.info.clone(), b.info.clone()]);
        assert_eq!(
            store.find_token("hash-a").await.expect("finds"),
            Some(a.info.clone())
        );
        assert_eq!(store.find_token("hash-x").await.expect("finds"), None);

        store
            .tokens_used(&[("aaa".into(), now)])
            .await
            .expect("noted");
        let used = store
            .find_token("hash-a")
            .await
            .expect("finds")
            .expect("live");
        assert_eq!(
            used.last_used_at.map(|t| t.timestamp_millis()),
            Some(now.timestamp_millis())
        );
        let later = now + chrono::Duration::seconds(10);
        store
            .tokens_used(&[("aaa".into(), later)])
            .await
            .expect("noted");
        let same = store
            .find_token("hash-a")
            .await
            .expect("finds")
            .expect("live");
        assert_eq!(same.last_used_at, used.last_used_at, "kept to the minute");

        assert!(store.revoke_token("aaa", now).await.expect("revokes"));
        assert!(!store.revoke_token("aaa", now).await.expect("no live one"));
        assert_eq!(store.find_token("hash-a").await.expect("finds"), None);
        assert_eq!(
            store.add_tokens(&[a]).await.expect("adds"),
            0,
            "a revoked token is not brought back"
        );
        assert_eq!(store.find_token("hash-a").await.expect("finds"), None);
        assert_eq!(store.live_tokens().await.expect("lists"), vec![b.info]);
    }

    #[tokio::test]
    async fn tokens_are_kept_found_and_revoked_in_sqlite() {
        let dir =
            std::env::temp_dir().join(format!("hostpulse-tokens-{:016x}", rand::random::<u64>()));
        let env = EnvSource::from_pairs([("DATA_DIR", dir.display().to_string())]);
        let settings = HistorySettings::from_env(&env).expect("valid");
        let store = Store::open(&settings).await.expect("opens").expect("on");
        lifecycle(&store).await;
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn tokens_are_kept_found_and_revoked_in_postgres() {
        let db = PgDatabase::create().await;
        let env = EnvSource::from_pairs([("HISTORY_URL", db.url.clone())]);
        let settings = HistorySettings::from_env(&env).expect("valid");
        let store = Store::open(&settings).await.expect("opens").expect("on");
        lifecycle(&store).await;
        store.close().await;
    }
}
