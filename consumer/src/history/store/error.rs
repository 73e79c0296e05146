//! The store's errors: a fixed `reason()` label for metrics, and a message that never holds a
//! password (database drivers may quote the connection URL).

/// Why the store could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database answered with an error, or could not be reached.
    #[error("history store ({reason}): {message}")]
    Database {
        reason: &'static str,
        /// Already masked.
        message: String,
    },
    /// The schema could not be brought up to date.
    #[error("history store migration failed: {0}")]
    Migration(String),
    /// The SQLite file's directory could not be created.
    #[error("history store directory {path}: {problem}")]
    Directory { path: String, problem: String },
    /// A query the store cannot answer as asked (for the HTTP layer's 400).
    #[error("{0}")]
    InvalidQuery(String),
}

impl StoreError {
    /// Every label [`Self::reason`] can return, so counters can start at 0.
    pub const REASONS: [&'static str; 11] = [
        "unavailable",
        "auth",
        "disk_full",
        "read_only",
        "busy",
        "conflict",
        "io",
        "database",
        "migration",
        "directory",
        "invalid_query",
    ];

    /// A short, fixed label for `hostpulse_history_write_errors_total{reason}`.
    pub fn reason(&self) -> &'static str {
        match self {
            StoreError::Database { reason, .. } => reason,
            StoreError::Migration(_) => "migration",
            StoreError::Directory { .. } => "directory",
            StoreError::InvalidQuery(_) => "invalid_query",
        }
    }

    /// True when trying again later may work (the store was down, busy or full), as opposed
    /// to a query that will never succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self.reason(),
            "unavailable" | "auth" | "disk_full" | "read_only" | "busy" | "conflict" | "io"
        )
    }

    /// Wraps a driver error, masking `secrets` and any password in a URL.
    pub(crate) fn from_sqlx(e: &sqlx::Error, sqlite: bool, secrets: &[String]) -> Self {
        StoreError::Database {
            reason: classify(e, sqlite),
            message: mask(&e.to_string(), secrets),
        }
    }
}

/// Sorts a driver error into a label.
fn classify(e: &sqlx::Error, sqlite: bool) -> &'static str {
    match e {
        sqlx::Error::Database(db) => {
            let Some(code) = db.code() else {
                return "database";
            };
            if sqlite {
                // SQLite's extended codes keep the primary code in the low byte.
                match code.parse::<i32>().map(|c| c & 0xff) {
                    Ok(13) => "disk_full",
                    Ok(8) => "read_only",
                    Ok(5 | 6) => "busy",
                    Ok(10) => "io",
                    Ok(14) => "unavailable",
                    _ => "database",
                }
            } else {
                match code.as_ref() {
                    "53100" => "disk_full",
                    "25006" => "read_only",
                    "40P01" | "40001" => "conflict",
                    "3D000" => "unavailable",
                    c if c.starts_with("28") => "auth",
                    c if c.starts_with("08") || c.starts_with("57P") || c.starts_with("53") => {
                        "unavailable"
                    }
                    _ => "database",
                }
            }
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => "unavailable",
        _ => "database",
    }
}

/// Replaces every secret, and every password in a URL or a `password=` option, with `***`
/// (the one masking of the workspace, [`shared::redact::text`]).
pub(crate) fn mask(text: &str, secrets: &[String]) -> String {
    shared::redact::text(text, secrets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_passwords_in_urls_and_known_secrets() {
        let text = "error connecting to postgres://hp:s3cret@db:5432/h (password s3cret) and amqp://guest@x/";
        let masked = mask(text, &["s3cret".into()]);
        assert!(!masked.contains("s3cret"), "{masked}");
        assert!(masked.contains("postgres://hp:***@db:5432/h"), "{masked}");
        assert!(masked.contains("amqp://guest@x/"), "{masked}");
        let masked = mask("postgres://u:p%40ss@h/db failed", &[]);
        assert_eq!(masked, "postgres://u:***@h/db failed");
    }

    #[test]
    fn every_reason_is_listed() {
        let e = StoreError::Migration("x".into());
        assert!(StoreError::REASONS.contains(&e.reason()));
        let e = StoreError::from_sqlx(&sqlx::Error::PoolTimedOut, false, &[]);
        assert_eq!(e.reason(), "unavailable");
        assert!(e.is_transient());
    }
}
