//! Brute-force brake: after `LOGIN_MAX_ATTEMPTS` failed logins from one address within the
//! window, that address gets 429 until the window lets one more attempt through. Counting is
//! governor's (a keyed GCRA limiter: the burst is the allowance, one attempt comes back every
//! window / allowance); the "already spent" flag lets an attempt be refused before its
//! password costs an argon2 check.

use governor::middleware::StateInformationMiddleware;
use governor::{clock::DefaultClock, state::keyed::DefaultKeyedStateStore, Quota, RateLimiter};
use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The window failures are counted over.
pub const LOGIN_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Addresses remembered as throttled at most; beyond, expired entries are dropped first.
const MAX_THROTTLED: usize = 100_000;

type Keyed =
    RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, DefaultClock, StateInformationMiddleware>;

/// Failed logins per address.
pub struct LoginLimiter {
    limiter: Keyed,
    /// How long one spent attempt takes to come back.
    refill: Duration,
    throttled: Mutex<HashMap<IpAddr, Instant>>,
}

impl LoginLimiter {
    /// Allows `max_attempts` failures per [`LOGIN_WINDOW`] from one address.
    pub fn new(max_attempts: NonZeroU32) -> Self {
        let refill = LOGIN_WINDOW / max_attempts.get();
        let quota = Quota::with_period(refill)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(max_attempts);
        Self {
            limiter: RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>(),
            refill,
            throttled: Mutex::new(HashMap::new()),
        }
    }

    /// How long `address` must still wait, if it has used up its attempts.
    pub fn wait(&self, address: IpAddr) -> Option<Duration> {
        let mut throttled = self.lock();
        let until = *throttled.get(&address)?;
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            throttled.remove(&address);
            return None;
        }
        Some(left)
    }

    /// Counts a failed login from `address`.
    pub fn failed(&self, address: IpAddr) {
        let spent = match self.limiter.check_key(&address) {
            Ok(state) => state.remaining_burst_capacity() == 0,
            Err(_) => true,
        };
        if spent {
            let mut throttled = self.lock();
            if throttled.len() >= MAX_THROTTLED {
                let now = Instant::now();
                throttled.retain(|_, until| *until > now);
            }
            if throttled.len() < MAX_THROTTLED {
                throttled.insert(address, Instant::now() + self.refill);
            }
        }
    }

    /// Forgets addresses whose allowance is whole again (called now and then).
    pub fn tidy(&self) {
        self.limiter.retain_recent();
        let now = Instant::now();
        self.lock().retain(|_, until| *until > now);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Instant>> {
        self.throttled.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allowance_is_per_address() {
        let limiter = LoginLimiter::new(NonZeroU32::new(3).expect("non-zero"));
        let a: IpAddr = [127, 0, 0, 2].into();
        let b: IpAddr = [127, 0, 0, 3].into();
        for _ in 0..2 {
            limiter.failed(a);
            assert_eq!(limiter.wait(a), None);
        }
        limiter.failed(a);
        let wait = limiter.wait(a).expect("throttled after 3");
        assert!(wait <= Duration::from_secs(300));
        assert_eq!(limiter.wait(b), None);
    }
}
