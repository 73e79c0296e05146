//! Logged-in browsers: a random 256-bit id in a cookie, and the session it names kept here,
//! in memory, until it expires (`SESSION_TTL`) or its user logs out. A restart logs everyone
//! out, which is the safe direction.

use crate::clock::SharedClock;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::watch;

/// The cookie that carries a session's id.
pub const COOKIE: &str = "hostpulse_session";

/// The session table.
pub struct Sessions {
    ttl: Duration,
    clock: SharedClock,
    table: Mutex<HashMap<String, Session>>,
}

struct Session {
    expires: DateTime<Utc>,
    /// Dropped when the session ends, which wakes every [`SessionEnd`] of it.
    _alive: watch::Sender<()>,
    ended: watch::Receiver<()>,
}

/// Attached to a request made with a valid session: resolves once that session has ended
/// (expired or logged out), so a WebSocket opened with it can be closed.
#[derive(Clone, Debug)]
pub struct SessionEnd(watch::Receiver<()>);

impl SessionEnd {
    /// Waits until the session has ended.
    pub async fn ended(&mut self) {
        // The sender lives in the table; `changed` fails once it is dropped with the session.
        while self.0.changed().await.is_ok() {}
    }
}

/// Waits for the end of `session`, or forever when there is none (no login configured).
pub async fn ended(session: &mut Option<SessionEnd>) {
    match session {
        Some(session) => session.ended().await,
        None => std::future::pending().await,
    }
}

impl Sessions {
    /// An empty table whose sessions last `ttl` by `clock`.
    pub fn new(ttl: Duration, clock: SharedClock) -> Self {
        Self {
            ttl,
            clock,
            table: Mutex::new(HashMap::new()),
        }
    }

    /// Starts a session and returns its id (256 random bits, hex).
    pub fn start(&self) -> String {
        let id = hex::encode(rand::random::<[u8; 32]>());
        let ttl = chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::MAX);
        let now = self.clock.now();
        let (alive, ended) = watch::channel(());
        let session = Session {
            expires: now
                .checked_add_signed(ttl)
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
            _alive: alive,
            ended,
        };
        self.lock().insert(id.clone(), session);
        id
    }

    /// The session named by `id`, if it exists and has not expired.
    pub fn check(&self, id: &str) -> Option<SessionEnd> {
        let now = self.clock.now();
        let mut table = self.lock();
        let session = table.get(id)?;
        if session.expires <= now {
            table.remove(id);
            return None;
        }
        Some(SessionEnd(session.ended.clone()))
    }

    /// Ends a session (logout); its open WebSockets are told.
    pub fn end(&self, id: &str) -> bool {
        self.lock().remove(id).is_some()
    }

    /// Ends every expired session; returns how many.
    pub fn expire(&self) -> usize {
        let now = self.clock.now();
        let mut table = self.lock();
        let before = table.len();
        table.retain(|_, session| session.expires > now);
        before - table.len()
    }

    /// How many sessions are open.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when nobody is logged in.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[tokio::test]
    async fn a_session_lasts_its_ttl_and_its_end_is_announced() {
        let clock = ManualClock::new(Utc::now());
        let sessions = Sessions::new(Duration::from_secs(60), clock.clone());
        let id = sessions.start();
        assert_eq!(id.len(), 64);
        let mut end = sessions.check(&id).expect("valid");
        assert!(sessions.check("forged").is_none());
        clock.advance(Duration::from_secs(59));
        assert_eq!(sessions.expire(), 0);
        clock.advance(Duration::from_secs(2));
        assert_eq!(sessions.expire(), 1);
        assert!(sessions.check(&id).is_none());
        tokio::time::timeout(Duration::from_secs(5), end.ended())
            .await
            .expect("the end is announced");
    }

    #[tokio::test]
    async fn logging_out_ends_the_session() {
        let sessions = Sessions::new(Duration::from_secs(60), ManualClock::new(Utc::now()));
        let id = sessions.start();
        let mut end = sessions.check(&id).expect("valid");
        assert!(sessions.end(&id));
        assert!(sessions.check(&id).is_none());
        tokio::time::timeout(Duration::from_secs(5), end.ended())
            .await
            .expect("the end is announced");
    }
}
