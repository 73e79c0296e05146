//! Ingest: the bytes of one delivery become one accepted reading, or a refusal with a reason.
//!
//! Pure: no locks, no metrics, no clock of its own (the caller passes `now`). Callers count
//! what it returns.

use super::legacy::{self, SenderHints};
use bytestring::ByteString;
use chrono::{DateTime, SubsecRound, Utc};
use shared::reading::{Reading, ReadingError};
use std::sync::Arc;
use std::time::Duration;

/// How far ahead of this consumer's clock a reading may be dated before it is placed at
/// arrival instead: NTP keeps honest clocks within milliseconds; more is a wrong clock, and
/// a reading from the future would freeze its host (every later one looks older).
pub const MAX_FUTURE_SKEW: Duration = Duration::from_secs(10);

/// An accepted reading: parsed, and as JSON text for the browsers. Shared behind an `Arc` by
/// the live view, every client and every sink; never copied per client.
#[derive(Debug)]
pub struct Accepted {
    pub reading: Reading,
    /// The message exactly as received, unless ingest had to rewrite it (the original's
    /// format converted, or a time that could not be used replaced).
    pub json: ByteString,
    /// Set when the reading's time was replaced by its arrival time.
    pub retimed: Option<Retimed>,
    /// For a reading placed at its arrival: a fingerprint of the message's bytes. Two parses
    /// of one message (by a queue that started late, or after a redelivery) are placed at two
    /// arrival times; the fingerprint, the same for both, tells they are one reading.
    pub fingerprint: Option<u64>,
}

/// Why a reading's time was replaced by its arrival time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retimed {
    /// Dated more than [`MAX_FUTURE_SKEW`] ahead of this consumer's clock.
    Future,
    /// The original's local time without a zone (or no time at all).
    NoZone,
}

impl Retimed {
    /// Every label, so counters can start at 0.
    pub const ALL: [Retimed; 2] = [Retimed::Future, Retimed::NoZone];

    /// A short, fixed label for metrics and logs.
    pub fn reason(self) -> &'static str {
        match self {
            Retimed::Future => "future",
            Retimed::NoZone => "no_zone",
        }
    }
}

/// Why a message was refused.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("message of {size} bytes is over the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    /// The host name holds control characters (or line separators): it would reach log lines
    /// and the page as fake lines or escape sequences. The name is shown escaped.
    #[error("host name {shown} contains control characters")]
    HostControlCharacters { shown: String },
    #[error(transparent)]
    Reading(#[from] ReadingError),
}

impl Refusal {
    /// A short, fixed label for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::TooLarge { .. } => "too_large",
            Refusal::HostControlCharacters { .. } => "host_control_characters",
            Refusal::Reading(e) => e.reason(),
        }
    }
}

/// What ingest checks against.
#[derive(Debug, Clone, Copy)]
pub struct IngestLimits {
    pub max_message_bytes: usize,
}

/// Checks one message body and turns it into an accepted reading. `hints` come from the
/// delivery's AMQP properties (for the original's messages, which name no host); `now` is the
/// consumer's clock at arrival.
pub fn ingest(
    body: &[u8],
    hints: &SenderHints,
    now: DateTime<Utc>,
    limits: IngestLimits,
) -> Result<Arc<Accepted>, Refusal> {
    if body.len() > limits.max_message_bytes {
        return Err(Refusal::TooLarge {
            size: body.len(),
            limit: limits.max_message_bytes,
        });
    }
    // serde_json refuses nesting deeper than 128 levels itself: no stack overflow.
    let (mut reading, mut json, mut retimed) = match Reading::from_json(body) {
        Ok(reading) => {
            // serde_json accepted it, so it is UTF-8; the check costs one pass, no panic.
            let text = std::str::from_utf8(body).map_err(|_| ReadingError::Invalid {
                field: "body",
                problem: "not UTF-8",
            })?;
            (reading, Some(ByteString::from(text.trim())), None)
        }
        Err(ReadingError::Malformed(e)) => match legacy::to_reading(body, hints, now) {
            Some(converted) => {
                converted.reading.validate()?;
                let retimed = converted.placed_at_arrival.then_some(Retimed::NoZone);
                // The page knows only v1: the converted reading is what it is shown.
                (converted.reading, None, retimed)
            }
            None => return Err(ReadingError::Malformed(e).into()),
        },
        Err(e) => return Err(e.into()),
    };
    check_host_name(&reading.host)?;
    let skew = chrono::Duration::from_std(MAX_FUTURE_SKEW).unwrap_or_default();
    if reading.collected_at > now + skew {
        // At the wire's precision, so the reading compares with others as it is shown.
        reading.collected_at = now.trunc_subsecs(3);
        retimed = Some(Retimed::Future);
        json = None;
    }
    let json = match json {
        Some(json) => json,
        None => ByteString::from(serde_json::to_string(&reading).map_err(ReadingError::from)?),
    };
    let fingerprint = retimed.map(|_| fingerprint(body));
    Ok(Arc::new(Accepted {
        reading,
        json,
        retimed,
        fingerprint,
    }))
}

/// The same for the same bytes throughout this process (`DefaultHasher::new` has fixed keys).
fn fingerprint(body: &[u8]) -> u64 {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut hasher = DefaultHasher::new();
    body.hash(&mut hasher);
    hasher.finish()
}

/// Refuses a host name with control characters (C0, DEL, C1) or Unicode line and paragraph
/// separators, whichever way the reading named its host.
fn check_host_name(host: &str) -> Result<(), Refusal> {
    if !host
        .chars()
        .any(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
    {
        return Ok(());
    }
    // Escaped by `{:?}` (`\u{1b}`, `\n`), and cut short: never the raw characters.
    let cut: String = host.chars().take(64).collect();
    Err(Refusal::HostControlCharacters {
        shown: format!("{cut:?}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const LIMITS: IngestLimits = IngestLimits {
        max_message_bytes: 4096,
    };

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0)
            .single()
            .expect("valid")
    }

    fn body(at: &str) -> Vec<u8> {
        let mut v: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/fixtures/reading.json"))
                .expect("fixture");
        v["collected_at"] = at.into();
        serde_json::to_vec(&v).expect("json")
    }

    fn accept(body: &[u8]) -> Result<Arc<Accepted>, Refusal> {
        ingest(body, &SenderHints::default(), now(), LIMITS)
    }

    #[test]
    fn a_reading_is_kept_exactly_as_received() {
        let sent = body("2026-11-23T11:59:59.000Z");
        let accepted = accept(&sent).expect("accepted");
        assert_eq!(accepted.json.as_bytes(), &sent[..]);
        assert_eq!(accepted.retimed, None);
    }

    #[test]
    fn a_reading_from_the_future_is_placed_at_arrival() {
        let slightly_ahead = accept(&body("2026-11-23T12:00:05.000Z")).expect("accepted");
        assert_eq!(slightly_ahead.retimed, None, "within the skew: kept");
        let future = accept(&body("2026-11-23T13:00:00.000Z")).expect("accepted");
        assert_eq!(future.retimed, Some(Retimed::Future));
        assert_eq!(future.reading.collected_at, now());
        let shown: serde_json::Value = serde_json::from_str(&future.json).expect("JSON");
        assert_eq!(shown["collected_at"], "2026-11-23T12:00:00.000Z");
    }

    #[test]
    fn bad_messages_are_refused_with_a_reason() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"not json".to_vec(), "malformed"),
            (b"[1,2]".to_vec(), "malformed"),
            (vec![0xff, 0xfe, 0x00], "malformed"),
            (vec![b' '; 5000], "too_large"),
            // Deeper than serde_json's recursion limit: refused, no stack overflow.
            ([b"[".repeat(2000), b"]".repeat(2000)].concat(), "malformed"),
            (
                br#"{"schema_version":2,"host":"a","seq":1,"collected_at":"2026-11-23T12:00:00Z"}"#
                    .to_vec(),
                "malformed",
            ),
        ];
        for (bad, reason) in cases {
            assert_eq!(accept(&bad).expect_err("refused").reason(), reason);
        }
        for host in [
            "web\u{1b}[31m-1",
            "web-1\nfake log line",
            "web\u{7f}",
            "a\u{2028}b",
        ] {
            let mut named: serde_json::Value =
                serde_json::from_slice(&body("2026-11-23T12:00:00Z")).expect("JSON");
            named["host"] = host.into();
            let refusal = accept(&serde_json::to_vec(&named).expect("json")).expect_err("refused");
            assert_eq!(refusal.reason(), "host_control_characters", "{host:?}");
            let text = refusal.to_string();
            assert!(
                !text.chars().any(|c| c.is_control() || c == '\u{2028}'),
                "escaped: {text:?}"
            );
        }
        let mut newer: serde_json::Value =
            serde_json::from_slice(&body("2026-11-23T12:00:00Z")).expect("JSON");
        newer["schema_version"] = 2.into();
        let newer = serde_json::to_vec(&newer).expect("json");
        assert_eq!(
            accept(&newer).expect_err("refused").reason(),
            "unsupported_version"
        );
    }
}
