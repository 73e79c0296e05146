//! The brake on password guessing: at most `LOGIN_MAX_ATTEMPTS` attempts from one address in
//! any [`LOGIN_WINDOW`]; beyond, 429 until the oldest attempt leaves the window.
//!
//! An attempt takes its place here *before* its password is checked, so a burst sent at once
//! is cut at the allowance however fast it comes: the rest never cost an argon2 check. A
//! right password gives its place back (people behind one address may log in as often as they
//! like), and so does an attempt the server was too busy to judge; a wrong one keeps it.
//! IPv6 clients are counted by their /64, the block one subscriber usually holds.
//!
//! Written here rather than with a rate-limiting crate: a place must be given back after the
//! check, and the window runs on the consumer's clock, so tests move time instead of waiting.

use crate::clock::SharedClock;
use chrono::{DateTime, Utc};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

/// The window attempts are counted over.
pub const LOGIN_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Addresses tracked at most. Beyond (after dropping those with nothing in the window), a new
/// address is let through uncounted and a warning logged: locking every newcomer out would
/// hand an attacker with many addresses a way to shut the login, and the password checks'
/// pool still bounds what gets through.
const MAX_ADDRESSES: usize = 100_000;

/// Who an attempt counts against: an IPv4 address, or the /64 network of an IPv6 one
/// (IPv4-mapped IPv6 addresses count as their IPv4 address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BrakeKey(IpAddr);

impl BrakeKey {
    /// The key `address` is counted under.
    pub fn of(address: IpAddr) -> Self {
        match address {
            IpAddr::V4(v4) => Self(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(IpAddr::V4(v4)),
                None => {
                    let network = u128::from(v6) & !u128::from(u64::MAX);
                    Self(IpAddr::V6(Ipv6Addr::from(network)))
                }
            },
        }
    }
}

impl std::fmt::Display for BrakeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

/// A place taken in the brake; give it back with [`LoginBrake::give_back`] when the attempt
/// must not count. Dropped, it stays counted (the safe direction).
#[derive(Debug)]
pub struct Attempt {
    key: BrakeKey,
    at: DateTime<Utc>,
    counted: bool,
}

/// Attempts per address within the window.
pub struct LoginBrake {
    allowance: usize,
    window: chrono::Duration,
    clock: SharedClock,
    table: Mutex<HashMap<BrakeKey, VecDeque<DateTime<Utc>>>>,
}

impl LoginBrake {
    /// Allows `max_attempts` attempts per [`LOGIN_WINDOW`] from one address, by `clock`.
    pub fn new(max_attempts: NonZeroU32, clock: SharedClock) -> Self {
        Self {
            allowance: usize::try_from(max_attempts.get()).unwrap_or(usize::MAX),
            window: chrono::Duration::from_std(LOGIN_WINDOW).unwrap_or(chrono::Duration::MAX),
            clock,
            table: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a place for an attempt from `address`, or says how long it must wait.
    pub fn take(&self, address: IpAddr) -> Result<Attempt, Duration> {
        let key = BrakeKey::of(address);
        let now = self.clock.now();
        let since = self.window_start(now);
        let mut table = self.lock();
        if !table.contains_key(&key) && table.len() >= MAX_ADDRESSES {
            table.retain(|_, times| times.back().is_some_and(|t| *t > since));
            if table.len() >= MAX_ADDRESSES {
                tracing::warn!(
                    "the login brake tracks {MAX_ADDRESSES} addresses already; an attempt \
                     from a new one is let through uncounted"
                );
                return Ok(Attempt {
                    key,
                    at: now,
                    counted: false,
                });
            }
        }
        let times = table.entry(key).or_default();
        while times.front().is_some_and(|t| *t <= since) {
            times.pop_front();
        }
        if times.len() >= self.allowance {
            let oldest = times.front().copied().unwrap_or(now);
            let free_at = oldest
                .checked_add_signed(self.window)
                .unwrap_or(DateTime::<Utc>::MAX_UTC);
            let wait = (free_at - now).to_std().unwrap_or_default();
            return Err(wait.max(Duration::from_secs(1)));
        }
        times.push_back(now);
        Ok(Attempt {
            key,
            at: now,
            counted: true,
        })
    }

    /// Gives `attempt`'s place back: it was right, or it was never judged.
    pub fn give_back(&self, attempt: Attempt) {
        if !attempt.counted {
            return;
        }
        let mut table = self.lock();
        if let Some(times) = table.get_mut(&attempt.key) {
            if let Some(index) = times.iter().rposition(|t| *t == attempt.at) {
                times.remove(index);
            }
            if times.is_empty() {
                table.remove(&attempt.key);
            }
        }
    }

    /// Forgets addresses with nothing left in the window (called now and then).
    pub fn tidy(&self) {
        let since = self.window_start(self.clock.now());
        self.lock()
            .retain(|_, times| times.back().is_some_and(|t| *t > since));
    }

    /// How many addresses are tracked.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when no address has attempts in the window.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Attempts at or before this time have left the window.
    fn window_start(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now.checked_sub_signed(self.window)
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<BrakeKey, VecDeque<DateTime<Utc>>>> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn brake(allowance: u32) -> (LoginBrake, std::sync::Arc<ManualClock>) {
        let clock = ManualClock::new(Utc::now());
        let allowance = NonZeroU32::new(allowance).expect("non-zero");
        (LoginBrake::new(allowance, clock.clone()), clock)
    }

    #[test]
    fn the_allowance_is_per_address_and_comes_back_with_the_window() {
        let (brake, clock) = brake(3);
        let a: IpAddr = [127, 0, 0, 2].into();
        let b: IpAddr = [127, 0, 0, 3].into();
        for _ in 0..3 {
            brake.take(a).expect("within the allowance");
            clock.advance(Duration::from_secs(60));
        }
        let wait = brake.take(a).expect_err("spent");
        assert_eq!(wait, LOGIN_WINDOW - Duration::from_secs(180));
        assert!(brake.take(b).is_ok(), "another address is not braked");
        clock.advance(wait);
        assert!(brake.take(a).is_ok(), "the oldest attempt left the window");
        assert!(brake.take(a).is_err());
    }

    #[test]
    fn a_given_back_place_is_free_again() {
        let (brake, _clock) = brake(2);
        let a: IpAddr = [10, 0, 0, 1].into();
        let first = brake.take(a).expect("first");
        brake.take(a).expect("second");
        assert!(brake.take(a).is_err());
        brake.give_back(first);
        assert!(brake.take(a).is_ok());
        assert!(brake.take(a).is_err());
    }

    #[test]
    fn ipv6_counts_by_its_64_and_mapped_ipv4_as_ipv4() {
        let (brake, _clock) = brake(2);
        let one: IpAddr = "2001:db8:1:2::1".parse().expect("v6");
        let same_64: IpAddr = "2001:db8:1:2:ffff:1:2:3".parse().expect("v6");
        let next_64: IpAddr = "2001:db8:1:3::1".parse().expect("v6");
        brake.take(one).expect("first");
        brake.take(same_64).expect("second");
        assert!(brake.take(one).is_err() && brake.take(same_64).is_err());
        assert!(brake.take(next_64).is_ok());
        assert_eq!(BrakeKey::of(one).to_string(), "2001:db8:1:2::/64");
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().expect("mapped");
        assert_eq!(BrakeKey::of(mapped), BrakeKey::of([192, 0, 2, 7].into()));
    }

    #[test]
    fn tidying_forgets_addresses_out_of_the_window() {
        let (brake, clock) = brake(2);
        brake.take([10, 0, 0, 1].into()).expect("taken");
        brake.tidy();
        assert_eq!(brake.len(), 1);
        clock.advance(LOGIN_WINDOW);
        brake.tidy();
        assert!(brake.is_empty());
    }
}
