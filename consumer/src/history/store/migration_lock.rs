//! An exclusive lock, across processes, around a SQLite file's migrations. sqlx locks
//! PostgreSQL's migrations itself but takes no lock on SQLite, so a consumer and the command
//! line (`consumer token ...`) starting at once on one fresh file both tried to create its
//! tables ("table store_meta already exists").
//!
//! The lock is `flock` on a file of its own beside the database (`<file>.lock`), never on the
//! database: SQLite keeps POSIX locks on its files, which closing any other handle on them
//! would release. The lock file stays (removing it would race with a process waiting on it).

use super::StoreError;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a process waits for another's migrations: they take milliseconds, so this long
/// means the other process hangs.
const WAIT: Duration = Duration::from_secs(60);
/// How often the lock is tried while another process holds it.
const RETRY_EVERY: Duration = Duration::from_millis(20);

/// Held while migrations run; released when dropped (or when the process ends).
pub(super) struct MigrationLock {
    _file: File,
}

/// The lock file beside `database`.
pub(super) fn lock_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

impl MigrationLock {
    /// Waits (without blocking the runtime) until no other process migrates `database`.
    pub(super) async fn acquire(database: &Path) -> Result<Self, StoreError> {
        let path = lock_path(database);
        let failed = |problem: String| {
            StoreError::Migration(format!("lock file {}: {problem}", path.display()))
        };
        let mut options = OpenOptions::new();
        options.create(true).truncate(false).write(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(&path).map_err(|e| failed(e.to_string()))?;
        let started = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Self { _file: file }),
                Err(TryLockError::WouldBlock) if started.elapsed() < WAIT => {
                    tokio::time::sleep(RETRY_EVERY).await;
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(failed(format!(
                        "another process has held it for {} s",
                        WAIT.as_secs()
                    )))
                }
                Err(TryLockError::Error(e)) => return Err(failed(e.to_string())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_holder_waits_for_the_first() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("history.sqlite");
        let first = MigrationLock::acquire(&db).await.expect("locked");
        // Another open file description, as another process would have.
        let other = File::options()
            .write(true)
            .open(lock_path(&db))
            .expect("opened");
        assert!(matches!(other.try_lock(), Err(TryLockError::WouldBlock)));
        drop(first);
        other.try_lock().expect("free once the first is dropped");
    }
}
