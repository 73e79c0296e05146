use crate::helpers::{next_frame, next_reading, open_socket, spawn_consumer, spawn_publisher};
use shared::testing::unique_exchange;

#[tokio::test]
async fn every_publish_reaches_the_browser_socket_with_its_seq() {
    let exchange = unique_exchange("pipeline");
    let consumer = spawn_consumer(&exchange, &[]).await;
    let publisher = spawn_publisher(&exchange, "pipeline-host").await;
    let mut socket = open_socket(&consumer).await;

    let first = next_frame(&mut socket, crate::helpers::FRAME_WAIT)
        .await
        .expect("a frame");
    assert_eq!(
        first["type"], "snapshot",
        "a new page first gets a snapshot"
    );
    assert_eq!(first["broker"]["connected"], true);

    for _ in 0..25 {
        let seq = publisher.publish().await;
        let data = next_reading(&mut socket).await;
        assert_eq!(data["seq"], seq);
        assert_eq!(data["host"], "pipeline-host");
        assert_eq!(data["schema_version"], 1);
    }
}

#[tokio::test]
async fn a_client_that_connects_later_first_gets_the_recent_readings() {
    let exchange = unique_exchange("snapshot");
    let consumer = spawn_consumer(&exchange, &[]).await;
    let publisher = spawn_publisher(&exchange, "snapshot-host").await;
    let mut early = open_socket(&consumer).await;
    next_frame(&mut early, crate::helpers::FRAME_WAIT)
        .await
        .expect("snapshot");
    let mut seqs = Vec::new();
    for _ in 0..3 {
        seqs.push(publisher.publish().await);
        next_reading(&mut early).await;
    }

    let mut late = open_socket(&consumer).await;
    let snapshot = next_frame(&mut late, crate::helpers::FRAME_WAIT)
        .await
        .expect("a frame");
    assert_eq!(snapshot["type"], "snapshot");
    let got: Vec<u64> = snapshot["readings"]
        .as_array()
        .expect("readings")
        .iter()
        .map(|r| r["seq"].as_u64().expect("seq"))
        .collect();
    assert_eq!(got, seqs);

    let seq = publisher.publish().await;
    assert_eq!(
        next_reading(&mut late).await["seq"],
        seq,
        "then live readings"
    );
}

#[tokio::test]
async fn api_hosts_lists_the_latest_reading_per_host() {
    let exchange = unique_exchange("hosts");
    let consumer = spawn_consumer(&exchange, &[]).await;
    let alpha = spawn_publisher(&exchange, "alpha").await;
    let beta = spawn_publisher(&exchange, "beta").await;
    alpha.publish().await;
    let alpha_seq = alpha.publish().await;
    let beta_seq = beta.publish().await;
    let live = consumer.live.clone();
    crate::helpers::wait_until("both hosts arrive", || {
        live.latest_json().contains("\"beta\"")
            && live.latest_json().contains(&format!("\"seq\":{alpha_seq}"))
    })
    .await;
    let hosts: serde_json::Value = reqwest::get(format!("{}/api/hosts", consumer.address))
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    let hosts = hosts.as_array().expect("an array");
    assert_eq!(hosts.len(), 2);
    assert_eq!(hosts[0]["host"], "alpha");
    assert_eq!(hosts[0]["seq"], alpha_seq);
    assert_eq!(hosts[1]["host"], "beta");
    assert_eq!(hosts[1]["seq"], beta_seq);
}

/// A valid v1 reading for `host`, dated `at`.
fn reading_at(host: &str, seq: u64, at: chrono::DateTime<chrono::Utc>) -> Vec<u8> {
    let mut v: serde_json::Value =
        serde_json::from_str(include_str!("../fixtures/reading.json")).expect("fixture");
    v["host"] = host.into();
    v["seq"] = seq.into();
    v["collected_at"] = at
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        .into();
    serde_json::to_vec(&v).expect("json")
}

#[tokio::test]
async fn a_reading_dated_in_the_future_does_not_freeze_its_host() {
    let exchange = unique_exchange("future");
    let consumer = spawn_consumer(&exchange, &[]).await;
    let tap = shared::testing::Tap::bind(&exchange).await;
    let mut socket = open_socket(&consumer).await;
    next_frame(&mut socket, crate::helpers::FRAME_WAIT)
        .await
        .expect("snapshot");
    let now = chrono::Utc::now();
    // A host whose clock ran an hour ahead, then was corrected.
    tap.publish_raw(&reading_at("drifter", 1, now + chrono::Duration::hours(1)))
        .await;
    assert_eq!(next_reading(&mut socket).await["seq"], 1);
    tap.publish_raw(&reading_at("drifter", 2, chrono::Utc::now()))
        .await;
    assert_eq!(next_reading(&mut socket).await["seq"], 2);
    let hosts: serde_json::Value = reqwest::get(format!("{}/api/hosts", consumer.address))
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        hosts[0]["seq"], 2,
        "the newer reading is the latest: {hosts}"
    );
    let metrics = reqwest::get(format!("{}/metrics", consumer.address))
        .await
        .expect("sent")
        .text()
        .await
        .expect("text");
    assert_eq!(
        shared::testing::metric(
            &metrics,
            "hostpulse_readings_retimed_total{reason=\"future\"}"
        ),
        Some(1.0)
    );
    tap.cleanup().await;
}
