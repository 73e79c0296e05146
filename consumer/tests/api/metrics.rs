use crate::helpers::{next_frame, open_socket, spawn_consumer, spawn_publisher, wait_until};
use shared::testing::{metric, unique_exchange, Tap};
use std::time::Duration;

async fn scrape(address: &str) -> String {
    reqwest::get(format!("{address}/metrics"))
        .await
        .expect("sent")
        .text()
        .await
        .expect("text")
}

#[tokio::test]
async fn counters_follow_messages_and_clients() {
    let exchange = unique_exchange("consumer-metrics");
    let consumer = spawn_consumer(&exchange, &[]).await;
    let publisher = spawn_publisher(&exchange, "metered").await;
    let tap = Tap::bind(&exchange).await;

    let text = scrape(&consumer.address).await;
    assert_eq!(metric(&text, "hostpulse_ws_clients"), Some(0.0));
    assert_eq!(metric(&text, "hostpulse_broker_connected"), Some(1.0));

    let mut socket = open_socket(&consumer).await;
    next_frame(&mut socket, crate::helpers::FRAME_WAIT)
        .await
        .expect("snapshot");
    let text = scrape(&consumer.address).await;
    assert_eq!(
        metric(&text, "hostpulse_ws_clients"),
        Some(1.0),
        "the open socket counts"
    );

    tap.publish_raw(b"{oops").await;
    publisher.publish().await;
    let metrics = consumer.metrics.clone();
    wait_until("both messages handled", || metrics.received.get() == 2).await;
    let text = scrape(&consumer.address).await;
    assert_eq!(
        metric(&text, "hostpulse_messages_received_total"),
        Some(2.0)
    );
    assert_eq!(
        metric(
            &text,
            "hostpulse_messages_rejected_total{reason=\"malformed\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(&text, "hostpulse_reading_age_seconds_count"),
        Some(1.0)
    );
    assert!(metric(&text, "hostpulse_ws_frames_sent_total").is_some_and(|n| n >= 2.0));
    assert_eq!(
        metric(&text, "hostpulse_host_up{host=\"metered\"}"),
        Some(1.0)
    );
    assert!(
        metric(&text, "hostpulse_host_memory_total_bytes{host=\"metered\"}")
            .is_some_and(|b| b > 0.0)
    );
    assert!(metric(
        &text,
        "hostpulse_host_disk_total_bytes{host=\"metered\",mount=\"/\"}"
    )
    .is_some());
    assert!(metric(
        &text,
        "hostpulse_host_last_seen_timestamp_seconds{host=\"metered\"}"
    )
    .is_some());

    socket.close(None).await.expect("closed");
    let address = consumer.address.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if metric(&scrape(&address).await, "hostpulse_ws_clients") == Some(0.0) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the closed socket never left"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tap.cleanup().await;
}

#[tokio::test]
async fn every_labelled_counter_is_exported_at_zero_from_the_start() {
    let consumer = spawn_consumer(&unique_exchange("zero-labels"), &[]).await;
    let text = scrape(&consumer.address).await;
    for reason in consumer::metrics::REJECT_REASONS {
        let series = format!("hostpulse_messages_rejected_total{{reason=\"{reason}\"}}");
        assert_eq!(metric(&text, &series), Some(0.0), "{series}");
    }
    for reason in consumer::metrics::WS_DROP_REASONS {
        let series = format!("hostpulse_ws_clients_dropped_total{{reason=\"{reason}\"}}");
        assert_eq!(metric(&text, &series), Some(0.0), "{series}");
    }
    for reason in ["future", "no_zone"] {
        let series = format!("hostpulse_readings_retimed_total{{reason=\"{reason}\"}}");
        assert_eq!(metric(&text, &series), Some(0.0), "{series}");
    }
}

#[tokio::test]
async fn two_scrapes_at_once_each_see_the_whole_fleet() {
    let exchange = unique_exchange("concurrent-scrapes");
    let consumer = spawn_consumer(&exchange, &[]).await;
    let tap = Tap::bind(&exchange).await;
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("../fixtures/reading.json")).expect("fixture");
    for i in 0..50 {
        let mut v = fixture.clone();
        v["host"] = format!("scraped-{i:02}").into();
        v["collected_at"] = chrono::Utc::now()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            .into();
        tap.publish_raw(&serde_json::to_vec(&v).expect("json"))
            .await;
    }
    let live = consumer.live.clone();
    wait_until("all 50 hosts are held", || live.hosts().len() == 50).await;
    // Gauges that are reset and refilled per scrape can be seen half-filled by a second
    // scrape; read at scrape time, every scrape sees every host.
    for _ in 0..20 {
        let (a, b) = tokio::join!(scrape(&consumer.address), scrape(&consumer.address));
        for text in [a, b] {
            let up = text
                .lines()
                .filter(|l| l.starts_with("hostpulse_host_up{"))
                .count();
            assert_eq!(up, 50);
        }
    }
    tap.cleanup().await;
}

#[tokio::test]
async fn cores_swap_and_each_temperature_sensor_are_gauges_and_absent_figures_are_no_series() {
    let exchange = unique_exchange("host-gauges");
    let consumer = spawn_consumer(&exchange, &[]).await;
    let tap = Tap::bind(&exchange).await;
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("../fixtures/reading.json")).expect("fixture");
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut warm = fixture.clone();
    warm["host"] = "warm".into();
    warm["collected_at"] = now.clone().into();
    warm["cpu"]["core_count"] = 8.into();
    warm["memory"]["swap_total_bytes"] = 4_000_000_000u64.into();
    warm["memory"]["swap_used_bytes"] = 3_800_000_000u64.into();
    warm["temperatures"] = serde_json::json!([
        { "label": "Package id 0", "celsius": 91.5 },
        { "label": "nvme Composite", "celsius": 40.0 }
    ]);
    // A sender that knows neither its core count nor any sensor.
    let mut bare = fixture;
    bare["host"] = "bare".into();
    bare["collected_at"] = now.into();
    bare["cpu"]
        .as_object_mut()
        .expect("cpu")
        .remove("core_count");
    bare["temperatures"] = serde_json::json!([]);
    for body in [warm, bare] {
        tap.publish_raw(&serde_json::to_vec(&body).expect("json"))
            .await;
    }
    let live = consumer.live.clone();
    wait_until("both hosts are held", || live.hosts().len() == 2).await;
    let text = scrape(&consumer.address).await;

    assert_eq!(
        metric(&text, "hostpulse_host_cpu_cores{host=\"warm\"}"),
        Some(8.0)
    );
    assert_eq!(
        metric(&text, "hostpulse_host_swap_used_bytes{host=\"warm\"}"),
        Some(3.8e9)
    );
    assert_eq!(
        metric(&text, "hostpulse_host_swap_total_bytes{host=\"warm\"}"),
        Some(4e9)
    );
    assert_eq!(
        metric(
            &text,
            "hostpulse_host_temperature_celsius{host=\"warm\",sensor=\"Package id 0\"}"
        ),
        Some(91.5)
    );
    assert_eq!(
        metric(
            &text,
            "hostpulse_host_temperature_celsius{host=\"warm\",sensor=\"nvme Composite\"}"
        ),
        Some(40.0)
    );

    // Swap is always carried (0 of 0 on a host without swap); cores and sensors are not.
    assert_eq!(
        metric(&text, "hostpulse_host_swap_total_bytes{host=\"bare\"}"),
        Some(0.0)
    );
    assert!(
        !text.contains("hostpulse_host_cpu_cores{host=\"bare\"}"),
        "{text}"
    );
    assert!(
        !text.contains("hostpulse_host_temperature_celsius{host=\"bare\""),
        "{text}"
    );
    tap.cleanup().await;
}
