//! A broker that hangs (its node frozen with SIGSTOP) leaves no hole in the readings: the
//! publisher samples on time whatever the broker does, and what the broker could not confirm
//! goes out from the outbox once it answers again.

use crate::helpers::spawn_app;
use chrono::{DateTime, Utc};
use shared::reading::Reading;
use shared::testing::private_broker::PrivateBroker;
use shared::testing::Tap;
use std::collections::BTreeMap;
use std::time::Duration;

/// How long the node stays frozen: longer than the confirm timeout (a publish that waits for
/// its confirmation gives up within it), shorter than two heartbeat intervals (so the
/// connections live through it and nothing reconnects: the harder case, where every publish
/// looks possible and none is confirmed).
const FROZEN: Duration = Duration::from_secs(15);
/// The publisher's confirm timeout here (its default): a sampler that waited for the broker
/// would leave holes this long.
const CONFIRM_TIMEOUT_SECS: &str = "5";

// Several threads, so that the test's own blocking calls (rabbitmqctl) never hold up the
// publisher's tasks: a hole they made would be the test's, not the publisher's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_broker_leaves_no_second_without_a_reading() {
    let broker = PrivateBroker::start("");
    let app = spawn_app(
        "frozen",
        &[
            ("AMQP_URL", &broker.url()),
            ("PUBLISH_INTERVAL_SECS", "1"),
            ("CONFIRM_TIMEOUT_SECS", CONFIRM_TIMEOUT_SECS),
            ("RECONNECT_MAX_SECS", "2"),
        ],
    )
    .await;
    // The tap's own heartbeat outlasts the freeze, so its queue is there throughout.
    let mut tap = Tap::bind_at(&format!("{}?heartbeat=120", broker.url()), &app.exchange).await;
    let mut seen: BTreeMap<u64, DateTime<Utc>> = BTreeMap::new();
    // A reading sent before the freeze may come twice: once as first sent (the broker takes
    // it when it wakes), once from the outbox. Its number says which it is.
    let take = |seen: &mut BTreeMap<u64, DateTime<Utc>>, message: shared::testing::Tapped| {
        let reading = Reading::from_json(&message.body).expect("a reading");
        seen.insert(reading.seq, reading.collected_at);
    };
    // Publishing works before the freeze.
    for _ in 0..3 {
        take(
            &mut seen,
            tap.next(Duration::from_secs(10))
                .await
                .expect("a reading each second"),
        );
    }

    let frozen_at = Utc::now();
    let frozen = tokio::task::block_in_place(|| broker.freeze());
    // The freeze itself is real time: nothing to wait on while the broker hangs.
    tokio::time::sleep(FROZEN).await;
    drop(frozen);
    let thawed_at = Utc::now();

    // Everything taken meanwhile arrives once the broker answers, and readings go on (each
    // wait bounded: the outbox is retried every 250 ms; the connection, had it dropped, comes
    // back within seconds). A reading goes out directly only once the outbox is empty, so
    // when one taken after the thaw is here and no number is missing, nothing is on its way.
    let wanted_until = thawed_at + chrono::Duration::seconds(3);
    let missing = |seen: &BTreeMap<u64, DateTime<Utc>>| -> Vec<u64> {
        let (Some(first), Some(last)) = (seen.keys().next(), seen.keys().next_back()) else {
            return Vec::new();
        };
        (*first..=*last)
            .filter(|seq| !seen.contains_key(seq))
            .collect()
    };
    while seen
        .values()
        .next_back()
        .is_none_or(|last| *last < wanted_until)
        || !missing(&seen).is_empty()
    {
        let Some(message) = tap.next(Duration::from_secs(30)).await else {
            panic!(
                "no reading for 30 s after the thaw; seen {:?}, missing {:?}",
                seen.keys(),
                missing(&seen)
            );
        };
        take(&mut seen, message);
    }

    // And taken on time throughout the freeze: about a second apart, never the confirm
    // timeout's hole a sampler waiting for the broker leaves.
    let span: Vec<DateTime<Utc>> = seen
        .values()
        .copied()
        .filter(|at| {
            *at >= frozen_at - chrono::Duration::seconds(2)
                && *at <= thawed_at + chrono::Duration::seconds(2)
        })
        .collect();
    let gaps: Vec<i64> = span
        .windows(2)
        .map(|w| (w[1] - w[0]).num_milliseconds())
        .collect();
    let longest = gaps.iter().copied().max().unwrap_or(i64::MAX);
    assert!(
        longest < 2_500,
        "a hole of {longest} ms in the readings during the freeze; gaps {gaps:?}"
    );
    let frozen_secs = i64::try_from(FROZEN.as_secs()).expect("small");
    assert!(
        span.len() as i64 >= frozen_secs,
        "{} readings over a {frozen_secs} s freeze: {gaps:?}",
        span.len()
    );
    tap.cleanup().await;
}
