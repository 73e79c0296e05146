//! The broker link runs on the runtime it is settled on (the publisher's HTTP thread), and
//! outlives that runtime: when it ends, the link says so, fails at once what would publish
//! on it, and connects again from wherever it is settled next (the shutdown drain does this).

use publisher::link::{Confirmed, Link, PublishChannel};
use shared::reading::Reading;
use shared::testing::{broker_settings, unique_exchange, Tap};
use std::sync::Arc;
use std::time::Duration;

/// The link's channel, once connected.
async fn connected(link: &mut Link) -> Arc<PublishChannel> {
    tokio::time::timeout(
        Duration::from_secs(15),
        link.channel.wait_for(Option::is_some),
    )
    .await
    .expect("connected within 15 s")
    .expect("the link is alive")
    .clone()
    .expect("a channel")
}

/// A reading numbered `seq`, from the fixture the consumer's tests use.
fn reading(seq: u64) -> Reading {
    let mut reading: Reading = serde_json::from_str(include_str!(
        "../../../consumer/tests/fixtures/reading.json"
    ))
    .expect("fixture");
    reading.seq = seq;
    reading
}

async fn publish(channel: &PublishChannel, exchange: &str, seq: u64) -> Confirmed {
    let reading = reading(seq);
    let properties = publisher::broker::reading_properties(&reading, seq);
    let body = serde_json::to_vec(&reading).expect("JSON");
    channel
        .publish(exchange, body, properties, false)
        .await
        .expect("confirmed")
}

#[tokio::test]
async fn a_link_whose_thread_ended_says_so_and_publishes_again_once_settled_elsewhere() {
    let exchange = unique_exchange("link-home");
    let mut tap = Tap::bind(&exchange).await;
    let mut link = Link::new(
        broker_settings(&exchange),
        "hostpulse-test-link",
        Duration::from_secs(1),
    );

    // A thread with a runtime of its own, as an HTTP worker has, runs the link until told.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let home = link.home.clone();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async move {
            assert!(home.settle_here(), "nothing ran the link before");
            let _ = stopped.await;
        });
    });
    let first = connected(&mut link).await;
    assert!(
        !link.home.settle_here(),
        "one link at a time: a second settle starts no second connection"
    );
    assert_eq!(publish(&first, &exchange, 1).await, Confirmed::Ack);

    stop.send(()).expect("the thread waits");
    thread.join().expect("the thread ends cleanly");
    assert!(!link.home.is_settled());
    let state = link.state.borrow().clone();
    assert!(!state.connected, "{state:?}");
    assert_eq!(
        state.last_error.as_deref(),
        Some("the thread the broker link ran on stopped")
    );
    assert!(
        link.channel.borrow().is_none(),
        "the old channel is withdrawn"
    );
    let reading = reading(2);
    let on_the_old_one = tokio::time::timeout(
        Duration::from_secs(5),
        first.publish(
            &exchange,
            serde_json::to_vec(&reading).expect("JSON"),
            publisher::broker::reading_properties(&reading, 2),
            false,
        ),
    )
    .await
    .expect("fails at once instead of waiting for a confirmation that cannot come");
    assert!(on_the_old_one.is_err(), "{on_the_old_one:?}");

    assert!(link.home.settle_here(), "settled again, here");
    let second = connected(&mut link).await;
    assert_eq!(publish(&second, &exchange, 3).await, Confirmed::Ack);
    let mut seen = Vec::new();
    while let Some(message) = tap.next(Duration::from_secs(2)).await {
        seen.push(Reading::from_json(&message.body).expect("a reading").seq);
    }
    assert_eq!(
        seen,
        [1, 3],
        "each confirmed reading arrived once, nothing else"
    );
    tap.cleanup().await;
}
