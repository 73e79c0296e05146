use crate::helpers::spawn_app;
use shared::testing::metric;

#[tokio::test]
async fn a_publish_moves_the_published_counter_and_the_confirm_histogram() {
    let app = spawn_app("metrics", &[]).await;
    let before = app.get("/metrics").await.text().await.expect("text");
    assert_eq!(
        metric(&before, "hostpulse_readings_published_total"),
        Some(0.0)
    );
    assert_eq!(metric(&before, "hostpulse_broker_connected"), Some(1.0));
    for _ in 0..3 {
        assert_eq!(app.get("/publish").await.status(), 200);
    }
    let after = app.get("/metrics").await.text().await.expect("text");
    assert_eq!(
        metric(&after, "hostpulse_readings_published_total"),
        Some(3.0)
    );
    assert_eq!(
        metric(&after, "hostpulse_publish_confirm_seconds_count"),
        Some(3.0)
    );
    assert!(metric(&after, "hostpulse_collect_seconds_count").is_some_and(|n| n >= 1.0));
    // The process scan's cost is there to read, even before its first scan is due.
    assert!(metric(&after, "hostpulse_process_scan_seconds_count").is_some());
    assert!(metric(&after, "hostpulse_process_scan_processes_total").is_some());
    assert!(metric(&after, "hostpulse_process_resident_memory_bytes").is_some_and(|b| b > 0.0));
    assert!(metric(&after, "hostpulse_process_open_fds").is_some());
    crate::helpers::assert_no_password(&after);
}

#[tokio::test]
async fn a_failed_publish_is_counted_with_its_reason() {
    let address = crate::helpers::spawn_app_without_broker(&[("OUTBOX_CAPACITY", "0")]).await;
    let publish = reqwest::get(format!("{address}/publish"))
        .await
        .expect("sent");
    assert_eq!(publish.status(), 503, "no outbox: nothing can take it");
    let body: serde_json::Value = publish.json().await.expect("JSON");
    assert_eq!(body["reason"], "not_connected");
    let text = reqwest::get(format!("{address}/metrics"))
        .await
        .expect("sent")
        .text()
        .await
        .expect("text");
    assert_eq!(
        metric(
            &text,
            "hostpulse_publish_failures_total{reason=\"not_connected\"}"
        ),
        Some(1.0)
    );
    assert_eq!(metric(&text, "hostpulse_broker_connected"), Some(0.0));
}

#[tokio::test]
async fn every_failure_reason_is_exported_at_zero_from_start() {
    let app = spawn_app("reasons", &[]).await;
    let text = app.get("/metrics").await.text().await.expect("text");
    for reason in publisher::metrics::FAILURE_REASONS {
        assert_eq!(
            metric(
                &text,
                &format!("hostpulse_publish_failures_total{{reason=\"{reason}\"}}")
            ),
            Some(0.0),
            "{reason}"
        );
    }
}

#[tokio::test]
async fn every_kind_of_skipped_item_is_exported_at_zero_from_the_start() {
    let app = spawn_app("skipped", &[]).await;
    let text = app.get("/metrics").await.text().await.expect("text");
    for what in publisher::collector::SKIP_LABELS {
        let line = format!("hostpulse_collect_skipped_total{{what=\"{what}\"}} 0");
        assert!(text.contains(&line), "{line} missing from:\n{text}");
    }
}

#[tokio::test]
async fn a_published_reading_carries_the_whole_host_view() {
    let app = spawn_app("wholehost", &[]).await;
    // Two publishes: rates need a previous sample, and the first one is it.
    assert_eq!(app.get("/publish").await.status(), 200);
    let body: serde_json::Value = app.get("/publish").await.json().await.expect("JSON");
    let reading = &body["reading"];
    assert!(
        reading["cpu"]["time_split"]["idle_percent"].is_number(),
        "{reading}"
    );
    assert!(reading["memory"]["cached_buffers_bytes"].is_number());
    assert!(reading["memory"]["swap_out_bytes_per_sec"].is_number());
    assert!(reading["block_devices"].is_array());
    let root = reading["disks"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["mount_point"] == "/"))
        .expect("the root file system");
    assert!(root["reserved_bytes"].is_number());
    let networks = reading["networks"].as_array().expect("networks");
    assert!(networks
        .iter()
        .all(|n| n["receive_drops_per_sec"].is_number()));
}
