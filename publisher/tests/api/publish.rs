use crate::helpers::spawn_app;
use shared::reading::Reading;
use shared::testing::proxy::SilenceableProxy;
use shared::testing::{metric, Tap};
use std::time::Duration;

#[tokio::test]
async fn publish_sends_a_schema_v1_reading_with_sane_values() {
    let app = spawn_app("publish", &[]).await;
    let mut tap = Tap::bind(&app.exchange).await;

    let response = app.get("/publish").await;
    assert_eq!(response.status(), 200);
    let answer: serde_json::Value = response.json().await.expect("JSON answer");
    assert_eq!(answer["status"], "published");

    let message = tap
        .next(Duration::from_secs(5))
        .await
        .expect("a message arrives");
    let reading = Reading::from_json(&message.body).expect("the message is a v1 reading");
    assert_eq!(reading.schema_version, 1);
    assert_eq!(reading.host, "publish-host");
    assert_eq!(answer["seq"], reading.seq);
    assert_eq!(answer["host"], "publish-host");
    assert_eq!(answer["bytes"], message.body.len());
    // The answer shows exactly what was sent.
    let sent: serde_json::Value = serde_json::from_slice(&message.body).expect("JSON body");
    assert_eq!(answer["reading"], sent);
    assert!((0.0..=100.0).contains(&reading.cpu.usage_percent));
    assert!(reading.memory.used_bytes <= reading.memory.total_bytes);
    assert!(!reading.disks.is_empty(), "at least one disk");
    // Compact on the wire: no pretty-printing, and far below the consumer's default 1 MiB
    // limit (a reading is ~2 KB; its size grows with interfaces, mounts and sensors).
    assert_eq!(
        serde_json::to_vec(&sent).expect("re-encode").len(),
        message.body.len(),
        "the reading is sent as compact JSON"
    );
    assert!(
        message.body.len() < 64 * 1024,
        "a reading of {} bytes is far larger than a host's view should be",
        message.body.len()
    );

    let props = message.properties;
    assert_eq!(
        props.content_type().as_ref().map(|c| c.as_str()),
        Some("application/json")
    );
    assert_eq!(*props.delivery_mode(), Some(2), "persistent");
    assert_eq!(
        props.message_id().as_ref().map(|m| m.to_string()),
        Some(format!("publish-host:{}", reading.seq))
    );
    assert!(props.timestamp().is_some());
    assert_eq!(
        props.app_id().as_ref().map(|a| a.as_str()),
        Some("hostpulse-publisher")
    );
    tap.cleanup().await;
}

#[tokio::test]
async fn post_works_too_and_each_publish_gets_the_next_seq() {
    let app = spawn_app("seq", &[]).await;
    let mut tap = Tap::bind(&app.exchange).await;
    let mut seqs = Vec::new();
    for _ in 0..5 {
        let answer: serde_json::Value = app
            .http
            .post(format!("{}/publish", app.address))
            .send()
            .await
            .expect("sent")
            .json()
            .await
            .expect("JSON");
        seqs.push(answer["seq"].as_u64().expect("seq"));
    }
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    for expected in seqs {
        let message = tap.next(Duration::from_secs(5)).await.expect("message");
        assert_eq!(
            Reading::from_json(&message.body).expect("reading").seq,
            expected
        );
    }
    tap.cleanup().await;
}

#[tokio::test]
async fn the_current_reading_is_not_published() {
    let app = spawn_app("current", &[]).await;
    let mut tap = Tap::bind(&app.exchange).await;
    let response = app.get("/api/reading").await;
    assert_eq!(response.status(), 200);
    let reading: Reading = response.json().await.expect("a reading");
    assert_eq!(reading.seq, 0);
    assert_eq!(reading.host, "current-host");
    assert!(
        tap.next(Duration::from_millis(500)).await.is_none(),
        "nothing published"
    );
    tap.cleanup().await;
}

/// The interfaces a reading of this machine lists.
async fn interfaces_listed(vars: &[(&str, &str)]) -> Vec<String> {
    let address = crate::helpers::spawn_app_without_broker(vars).await;
    let reading: Reading = reqwest::get(format!("{address}/api/reading"))
        .await
        .expect("answers")
        .json()
        .await
        .expect("a reading");
    let pressure = reading.pressure.expect("this machine's kernel has PSI");
    assert!(pressure.cpu.is_some() && pressure.memory.is_some() && pressure.io.is_some());
    let networks = reading.networks.expect("the network is measured");
    networks.into_iter().map(|n| n.interface).collect()
}

#[tokio::test]
async fn network_interfaces_chooses_the_interfaces_a_reading_lists() {
    // This machine has eth0 and two ifb devices besides loopback, and docker0 while the
    // Docker Engine of the container tests runs (/proc/net/dev).
    let virtual_ones = ["veth", "docker", "br-"];
    let is_virtual = |i: &String| virtual_ones.iter().any(|v| i.starts_with(v));
    let default = interfaces_listed(&[]).await;
    assert!(default.iter().any(|i| i == "eth0"), "{default:?}");
    assert!(default.iter().all(|i| i != "lo"), "{default:?}");
    assert!(!default.iter().any(is_virtual), "{default:?}");
    let only_eth = interfaces_listed(&[("NETWORK_INTERFACES", "eth*,!veth*")]).await;
    assert!(
        !only_eth.is_empty() && only_eth.iter().all(|i| i.starts_with("eth")),
        "{only_eth:?}"
    );
    let but_eth = interfaces_listed(&[("NETWORK_INTERFACES", "!eth*")]).await;
    assert!(but_eth.iter().all(|i| !i.starts_with("eth")), "{but_eth:?}");
    for kept in default.iter().filter(|i| !i.starts_with("eth")) {
        assert!(but_eth.contains(kept), "{kept} in {but_eth:?}");
    }
    // scripts/test.sh starts the Docker Engine, whose bridge is docker0.
    assert!(
        std::fs::read_to_string("/proc/net/dev").is_ok_and(|d| d.contains("docker0:")),
        "the Docker Engine's bridge exists"
    );
    assert!(
        but_eth.iter().any(|i| i == "docker0"),
        "the setting replaces the default list: {but_eth:?}"
    );
}

#[tokio::test]
async fn a_refused_publish_never_pushes_a_waiting_reading_out_of_the_outbox() {
    // The broker goes silent (a proxy stops passing bytes), so publishes already under way
    // wait for confirmations that never come; they end up in a one-reading outbox.
    let target = url::Url::parse(&shared::testing::amqp_url()).expect("AMQP_URL");
    let proxy = SilenceableProxy::start(&format!(
        "{}:{}",
        target.host_str().unwrap_or("127.0.0.1"),
        target.port().unwrap_or(5672)
    ))
    .await;
    let mut via_proxy = target.clone();
    via_proxy.set_port(Some(proxy.port)).expect("a port");
    let app = spawn_app(
        "refuse",
        &[
            ("AMQP_URL", via_proxy.as_str()),
            ("OUTBOX_CAPACITY", "1"),
            ("CONFIRM_TIMEOUT_SECS", "3"),
            // The silence must outlast the test, not be noticed and reconnected.
            ("AMQP_HEARTBEAT_SECS", "600"),
        ],
    )
    .await;
    proxy.silence_open_connections();
    // Two requests, both publishing before either gives up on its confirmation: the first
    // to give up takes the outbox's one place, the second must be refused, not take it.
    let (a, b) = tokio::join!(app.get("/publish"), app.get("/publish"));
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [202, 503], "one queued, one refused");
    let refused = if a.status() == 503 { a } else { b };
    let body: serde_json::Value = refused.json().await.expect("JSON");
    assert_eq!(body["reason"], "outbox_full");
    let text = app.get("/metrics").await.text().await.expect("text");
    assert_eq!(metric(&text, "hostpulse_outbox_dropped_total"), Some(0.0));
    assert_eq!(metric(&text, "hostpulse_outbox_readings"), Some(1.0));
    assert_eq!(
        metric(
            &text,
            "hostpulse_publish_failures_total{reason=\"outbox_full\"}"
        ),
        Some(1.0)
    );
}
