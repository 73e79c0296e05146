//! The password checks' pool: argon2 costs a work area of its memory setting (19 MiB with the
//! defaults) and tens of milliseconds of CPU, so only a few run at once in the whole consumer
//! (one per core, at most [`MAX_SLOTS`]), each in a work area kept for its slot. A check that
//! finds every slot taken waits up to [`SLOT_WAIT`], then is refused as [`Busy`] (429).

use super::users::{Users, Workspace};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;

/// Most checks that run at once, whatever the core count: memory stays one work area per slot.
pub const MAX_SLOTS: usize = 4;
/// How long a check waits for a free slot before it is refused.
pub const SLOT_WAIT: Duration = Duration::from_secs(3);

/// Every slot stayed taken for [`SLOT_WAIT`]: the password was not checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

/// A bounded pool of argon2 checks, shared by every server worker.
pub struct PasswordChecks {
    slots: Arc<Semaphore>,
    /// Work areas of the slots not in use; at most one per slot ever exists.
    areas: Arc<Mutex<Vec<Workspace>>>,
    wait: Duration,
}

impl PasswordChecks {
    /// A pool of `slots` checks at once (at least one); a check waits `wait` for a slot.
    pub fn new(slots: usize, wait: Duration) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(slots.max(1))),
            areas: Arc::new(Mutex::new(Vec::new())),
            wait,
        }
    }

    /// One slot per core the process may use, at most [`MAX_SLOTS`].
    pub fn per_core() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self::new(cores.min(MAX_SLOTS), SLOT_WAIT)
    }

    /// Checks `password` for `name` on a blocking thread once a slot is free. The slot and its
    /// work area are held until argon2 is done, even if the request is dropped meanwhile.
    pub async fn verify(
        &self,
        users: Arc<Users>,
        name: String,
        password: String,
    ) -> Result<bool, Busy> {
        let slot = tokio::time::timeout(self.wait, Arc::clone(&self.slots).acquire_owned())
            .await
            .map_err(|_| Busy)?
            .map_err(|_| Busy)?;
        let areas = Arc::clone(&self.areas);
        let check = tokio::task::spawn_blocking(move || {
            let mut work = areas
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop()
                .unwrap_or_default();
            let verified = users.verify_in(&name, &password, &mut work);
            areas.lock().unwrap_or_else(|p| p.into_inner()).push(work);
            drop(slot);
            verified
        });
        // A check that panicked is a refusal, never a login.
        Ok(check.await.unwrap_or(false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_pool_refuses_after_its_wait_and_a_freed_one_checks() {
        let hash = super::super::hash_password("pw").expect("hashes");
        let users = Arc::new(Users::parse(&format!("alice:{hash}")).expect("parses"));
        let checks = PasswordChecks::new(1, Duration::from_millis(50));
        let held = Arc::clone(&checks.slots)
            .acquire_owned()
            .await
            .expect("open");
        let refused = checks
            .verify(Arc::clone(&users), "alice".into(), "pw".into())
            .await;
        assert_eq!(refused, Err(Busy));
        drop(held);
        let first = checks.verify(Arc::clone(&users), "alice".into(), "pw".into());
        assert_eq!(first.await, Ok(true));
        let wrong = checks.verify(Arc::clone(&users), "alice".into(), "no".into());
        assert_eq!(wrong.await, Ok(false));
        assert_eq!(
            checks.areas.lock().expect("lock").len(),
            1,
            "one area, reused"
        );
    }
}
