//! Broker loss and return, on a private RabbitMQ node (never the shared one).

use crate::helpers::{
    next_frame, open_socket, spawn_consumer, spawn_publisher_with, wait_until, Socket,
};
use shared::testing::private_broker::PrivateBroker;
use shared::testing::unique_exchange;
use std::time::Duration;

/// Frames until `want` matches, returning what came before it.
async fn frames_until(
    socket: &mut Socket,
    secs: u64,
    want: impl Fn(&serde_json::Value) -> bool,
) -> Vec<serde_json::Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let frame = next_frame(socket, left)
            .await
            .unwrap_or_else(|| panic!("timed out; frames so far: {seen:#?}"));
        if want(&frame) {
            return seen;
        }
        seen.push(frame);
    }
}

fn is_status(connected: bool) -> impl Fn(&serde_json::Value) -> bool {
    move |f| f["type"] == "status" && f["broker"]["connected"] == connected
}

#[tokio::test]
async fn readings_taken_while_the_broker_is_down_all_arrive_in_order_after_it_returns() {
    let broker = tokio::task::spawn_blocking(|| PrivateBroker::start(""))
        .await
        .expect("node starts");
    let url = broker.url();
    let exchange = unique_exchange("outage");
    let fast = [("AMQP_URL", url.as_str()), ("RECONNECT_MAX_SECS", "2")];
    let consumer = spawn_consumer(&exchange, &fast).await;
    // A publish the broker never confirms would wait a minute: an answer well within that
    // was not waiting for the broker, however busy the machine.
    let patient = [fast.as_slice(), &[("CONFIRM_TIMEOUT_SECS", "60")]].concat();
    let publisher = spawn_publisher_with(&exchange, "survivor", &patient).await;
    let mut socket = open_socket(&consumer).await;
    next_frame(&mut socket, crate::helpers::FRAME_WAIT)
        .await
        .expect("snapshot");
    let before = publisher.publish().await;
    frames_until(&mut socket, 5, |f| f["data"]["seq"] == before).await;

    let broker = stop_app(broker).await;
    // The page's socket stays open and is told the broker went away.
    frames_until(&mut socket, 10, is_status(false)).await;
    let link = publisher.link.clone();
    wait_until("the publisher notices", || !link.state().connected).await;
    let ready = reqwest::get(format!("{}/ready", publisher.address))
        .await
        .expect("sent");
    assert_eq!(ready.status(), 503);

    let mut queued = Vec::new();
    for _ in 0..5 {
        let started = std::time::Instant::now();
        let (status, answer) = publisher.publish_answer().await;
        assert_eq!(status, 202, "{answer}");
        assert_eq!(answer["status"], "queued");
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "answered without waiting for the broker"
        );
        queued.push(answer["seq"].as_u64().expect("seq"));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    let broker = start_app(broker).await;
    // Every reading taken during the outage, in order, on the same socket, and the page told
    // the broker is back. The store may show the back-fill before the live queue is bound
    // again, so readings count from before the status frame too.
    let mut arrived = Vec::new();
    let mut reconnected = false;
    while arrived.len() < queued.len() || !reconnected {
        let frame = next_frame(&mut socket, Duration::from_secs(30))
            .await
            .unwrap_or_else(|| {
                panic!("the back-fill arrives; so far {arrived:?}, reconnected: {reconnected}")
            });
        if frame["type"] == "reading" {
            arrived.push(frame["data"]["seq"].as_u64().expect("seq"));
        }
        reconnected |= is_status(true)(&frame);
    }
    assert_eq!(arrived, queued);
    let after = publisher.publish().await;
    assert_eq!(after, queued[queued.len() - 1] + 1);
    frames_until(&mut socket, 5, |f| f["data"]["seq"] == after).await;
    drop(broker);
}

#[tokio::test]
async fn services_started_before_the_broker_exists_connect_when_it_appears() {
    let port = shared::testing::private_broker::free_port();
    let url = format!("amqp://guest:guest@127.0.0.1:{port}/%2f");
    let exchange = unique_exchange("late-broker");
    let vars = [("AMQP_URL", url.as_str()), ("RECONNECT_MAX_SECS", "2")];
    // Its history goes to a temp folder: the default, ./data, is the crate's folder here.
    let data_dir = crate::helpers::fresh_data_dir();
    // Built directly: the helpers wait for a connection that cannot happen yet.
    let mut env = shared::settings::EnvSource::from_pairs([
        ("EXCHANGE_NAME", exchange.as_str()),
        ("APP_PORT", "0"),
        ("PUBLISH_INTERVAL_SECS", "0"),
        ("DATA_DIR", data_dir.as_str()),
    ]);
    for (name, value) in vars {
        env.set(name, value);
    }
    let consumer = consumer::startup::Application::build(
        consumer::configuration::Settings::from_env(&env).expect("valid"),
    )
    .await
    .expect("the consumer starts without a broker");
    let publisher = publisher::startup::Application::build(
        publisher::configuration::Settings::from_env(&env).expect("valid"),
    )
    .await
    .expect("the publisher starts without a broker");
    let consumer_url = format!("http://127.0.0.1:{}", consumer.port());
    let publisher_url = format!("http://127.0.0.1:{}", publisher.port());
    let consumer_broker = consumer.broker();
    let link = publisher.publisher();
    tokio::spawn(consumer.run_until_stopped());
    tokio::spawn(publisher.run_until_stopped());
    // Until the first attempt has failed, the state is "connecting" with no error yet.
    wait_until_secs(10, || {
        consumer_broker.borrow().last_error.is_some() && link.state().last_error.is_some()
    })
    .await;
    for url in [&consumer_url, &publisher_url] {
        assert_eq!(
            reqwest::get(format!("{url}/ready"))
                .await
                .expect("sent")
                .status(),
            503
        );
        let health: serde_json::Value = reqwest::get(format!("{url}/health"))
            .await
            .expect("sent")
            .json()
            .await
            .expect("JSON");
        assert_eq!(health["broker"]["connected"], false);
        assert!(health["broker"]["last_error"].is_string(), "{health}");
    }

    let broker = tokio::task::spawn_blocking(move || PrivateBroker::start_on(port, ""))
        .await
        .expect("node starts");
    wait_until_secs(30, || {
        consumer_broker.borrow().connected && link.state().connected
    })
    .await;
    for url in [&consumer_url, &publisher_url] {
        assert_eq!(
            reqwest::get(format!("{url}/ready"))
                .await
                .expect("sent")
                .status(),
            200
        );
    }
    drop(broker);
}

#[tokio::test]
async fn with_two_brokers_listed_the_publisher_fails_over_to_the_second() {
    let (first, second) = tokio::join!(
        tokio::task::spawn_blocking(|| PrivateBroker::start("")),
        tokio::task::spawn_blocking(|| PrivateBroker::start("")),
    );
    let (first, second) = (first.expect("first node"), second.expect("second node"));
    let exchange = unique_exchange("failover");
    let urls = format!("{},{}", first.url(), second.url());
    let publisher = spawn_publisher_with(
        &exchange,
        "roamer",
        &[("AMQP_URL", &urls), ("RECONNECT_MAX_SECS", "2")],
    )
    .await;
    let link = publisher.link.clone();
    let first_url = link.state().url.expect("connected somewhere");
    assert!(
        first_url.contains(&first.port.to_string()),
        "the first listed node is used first"
    );
    let mut tap = shared::testing::Tap::bind_at(&second.url(), &exchange).await;

    let first = stop_app(first).await;
    let second_port = second.port.to_string();
    wait_until_secs(30, || {
        let state = link.state();
        state.connected && state.url.is_some_and(|u| u.contains(&second_port))
    })
    .await;
    let seq = publisher.publish().await;
    let message = tap
        .next(Duration::from_secs(5))
        .await
        .expect("a message on the second node");
    let reading = shared::reading::Reading::from_json(&message.body).expect("reading");
    assert_eq!(reading.seq, seq);
    tap.cleanup().await;
    drop(first);
    drop(second);
}

/// Polls `check` for up to `secs` seconds.
async fn wait_until_secs(secs: u64, check: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {secs} s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `rabbitmqctl stop_app` off the async workers.
async fn stop_app(broker: PrivateBroker) -> PrivateBroker {
    tokio::task::spawn_blocking(move || {
        broker.stop_app();
        broker
    })
    .await
    .expect("stop_app")
}

/// `rabbitmqctl start_app` off the async workers.
async fn start_app(broker: PrivateBroker) -> PrivateBroker {
    tokio::task::spawn_blocking(move || {
        broker.start_app();
        broker
    })
    .await
    .expect("start_app")
}

#[tokio::test]
async fn a_silent_half_open_connection_is_noticed_by_heartbeats_and_both_reconnect() {
    // Both services reach the shared broker through a proxy that can make their connections
    // go silent without a FIN or RST, as a dropped NAT entry would: only heartbeats can tell.
    let target = url::Url::parse(&shared::testing::amqp_url()).expect("AMQP_URL");
    let proxy = shared::testing::proxy::SilenceableProxy::start(&format!(
        "{}:{}",
        target.host_str().unwrap_or("127.0.0.1"),
        target.port().unwrap_or(5672)
    ))
    .await;
    let mut via_proxy = target.clone();
    via_proxy.set_port(Some(proxy.port)).expect("a port");
    let exchange = unique_exchange("half-open");
    let vars = [
        ("AMQP_URL", via_proxy.as_str()),
        ("AMQP_HEARTBEAT_SECS", "1"),
        ("RECONNECT_MAX_SECS", "2"),
    ];
    let consumer = spawn_consumer(&exchange, &vars).await;
    let publisher = spawn_publisher_with(&exchange, "half-open", &vars).await;
    let mut socket = open_socket(&consumer).await;
    let before = publisher.publish().await;
    frames_until(&mut socket, 5, |f| f["data"]["seq"] == before).await;

    proxy.silence_open_connections();
    // The page keeps its socket and hears that the broker went away, then came back.
    frames_until(&mut socket, 20, is_status(false)).await;
    let link = publisher.link.clone();
    wait_until_secs(20, || !link.state().connected).await;
    let health: serde_json::Value = reqwest::get(format!("{}/health", publisher.address))
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    assert!(
        health["broker"]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("heartbeat")),
        "{health}"
    );
    frames_until(&mut socket, 20, is_status(true)).await;
    wait_until_secs(20, || link.state().connected).await;

    let after = publisher.publish().await;
    frames_until(&mut socket, 10, |f| f["data"]["seq"] == after).await;
}
