use crate::helpers::spawn_app;
use reqwest::header::HOST;

#[tokio::test]
async fn with_a_publish_token_only_bearers_of_it_may_publish() {
    let token = "tok-9f8e7d6c5b4a";
    let app = spawn_app("token", &[("PUBLISH_TOKEN", token)]).await;
    let url = format!("{}/publish", app.address);
    // With a token, GET no longer publishes: a link or an <img> on another site cannot.
    let get = app
        .http
        .get(&url)
        .bearer_auth(token)
        .send()
        .await
        .expect("sent");
    assert_eq!(get.status(), 405);
    assert_eq!(get.headers()["allow"], "POST");
    let body: serde_json::Value = get.json().await.expect("JSON");
    assert!(
        body["error"].as_str().expect("text").contains("POST"),
        "{body}"
    );
    let missing = app.http.post(&url).send().await.expect("sent");
    assert_eq!(missing.status(), 401);
    assert_eq!(missing.headers()["www-authenticate"], "Bearer");
    let body: serde_json::Value = missing.json().await.expect("JSON");
    assert_eq!(body["reason"], "unauthorized");
    let wrong = app
        .http
        .post(&url)
        .bearer_auth("tok-9f8e7d6c5b4b")
        .send()
        .await
        .expect("sent");
    assert_eq!(wrong.status(), 401);
    let right = app
        .http
        .post(&url)
        .bearer_auth(token)
        .send()
        .await
        .expect("sent");
    assert_eq!(right.status(), 200);
    // The other routes stay open, and never show the token.
    let health = app.get("/health").await.text().await.expect("text");
    assert!(!health.contains(token));
    let metrics = app.get("/metrics").await.text().await.expect("text");
    assert!(!metrics.contains(token));
}

#[tokio::test]
async fn an_oversized_body_is_refused_with_413() {
    let app = spawn_app("oversized", &[]).await;
    let response = app
        .http
        .post(format!("{}/publish", app.address))
        .body(vec![b'x'; 100 * 1024])
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 413);
    let body: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(body["reason"], "payload_too_large");
    assert_eq!(app.get("/health").await.status(), 200, "still serving");
}

#[tokio::test]
async fn beyond_loopback_the_reading_needs_the_publish_token() {
    let token = "tok-reading-51c2";
    // Listening on every address; the test still reaches it through 127.0.0.1.
    let app = spawn_app(
        "exposed_reading",
        &[("APP_HOST", "0.0.0.0"), ("PUBLISH_TOKEN", token)],
    )
    .await;
    let url = format!("{}/api/reading", app.address);
    let missing = app.get("/api/reading").await;
    assert_eq!(missing.status(), 401);
    assert_eq!(missing.headers()["www-authenticate"], "Bearer");
    let body = missing.text().await.expect("text");
    assert!(body.contains("PUBLISH_TOKEN"), "{body}");
    assert!(!body.contains("exposed_reading-host"), "no reading: {body}");
    let wrong = app
        .http
        .get(&url)
        .bearer_auth("tok-reading-51c3")
        .send()
        .await
        .expect("sent");
    assert_eq!(wrong.status(), 401);
    let right = app
        .http
        .get(&url)
        .bearer_auth(token)
        .send()
        .await
        .expect("sent");
    assert_eq!(right.status(), 200);
    let reading: serde_json::Value = right.json().await.expect("JSON");
    assert_eq!(reading["host"], "exposed_reading-host");
    let publish = format!("{}/publish", app.address);
    let refused = app.http.post(&publish).send().await.expect("sent");
    assert_eq!(refused.status(), 401);
    let published = app
        .http
        .post(&publish)
        .bearer_auth(token)
        .send()
        .await
        .expect("sent");
    assert_eq!(published.status(), 200);
}

#[tokio::test]
async fn on_loopback_the_reading_stays_open_and_get_publishes_without_a_token() {
    let app = spawn_app("loopback_habit", &[]).await;
    assert_eq!(app.get("/api/reading").await.status(), 200);
    let published = app.get("/publish").await;
    assert_eq!(published.status(), 200, "the original's GET /publish");
    let with_token = spawn_app("loopback_token", &[("PUBLISH_TOKEN", "tok-lo-77")]).await;
    assert_eq!(with_token.get("/api/reading").await.status(), 200);
}

#[tokio::test]
async fn a_request_for_a_name_the_publisher_does_not_answer_to_is_refused() {
    let app = spawn_app("rebind", &[]).await;
    let port = app.address.rsplit(':').next().expect("port").to_owned();
    for path in ["/api/reading", "/publish", "/metrics", "/health"] {
        let refused = app
            .http
            .get(format!("{}{path}", app.address))
            .header(HOST, format!("rebind.example:{port}"))
            .send()
            .await
            .expect("sent");
        assert_eq!(refused.status(), 421, "{path}");
        let body: serde_json::Value = refused.json().await.expect("JSON");
        assert_eq!(body["reason"], "host_not_allowed", "{path}");
        let text = body["error"].as_str().expect("text");
        assert!(text.contains("ALLOWED_HOSTS"), "{text}");
        assert!(!text.contains("rebind-host"), "{text}");
    }
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        "[::1]".into(),
    ] {
        let answered = app
            .http
            .get(format!("{}/api/reading", app.address))
            .header(HOST, host.as_str())
            .send()
            .await
            .expect("sent");
        assert_eq!(answered.status(), 200, "{host}");
    }
    let metrics = app.get("/metrics").await.text().await.expect("text");
    assert!(
        metrics.contains("hostpulse_http_host_refused_total 4"),
        "counted: {metrics}"
    );
    // Nothing was published by the refused /publish.
    assert!(
        metrics.contains("hostpulse_readings_published_total 0"),
        "{metrics}"
    );

    let listed = spawn_app(
        "rebind_listed",
        &[("ALLOWED_HOSTS", "dash.example, .fleet.example")],
    )
    .await;
    for host in ["dash.example", "a.fleet.example:8000"] {
        let answered = listed
            .http
            .get(format!("{}/api/reading", listed.address))
            .header(HOST, host)
            .send()
            .await
            .expect("sent");
        assert_eq!(answered.status(), 200, "{host}");
    }
}

#[tokio::test]
async fn beyond_loopback_addresses_are_answered_and_names_still_checked() {
    let app = spawn_app(
        "rebind_exposed",
        &[("APP_HOST", "0.0.0.0"), ("PUBLISH_TOKEN", "tok-ex-1")],
    )
    .await;
    let ask = |host: &'static str| {
        app.http
            .get(format!("{}/health", app.address))
            .header(HOST, host)
            .send()
    };
    assert_eq!(ask("10.1.2.3:8000").await.expect("sent").status(), 200);
    assert_eq!(ask("[fd00::5]:8000").await.expect("sent").status(), 200);
    assert_eq!(
        ask("rebind.example:8000").await.expect("sent").status(),
        421
    );
}

#[tokio::test]
async fn a_fresh_outbox_dir_and_its_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let root = std::env::temp_dir().join(shared::testing::unique_exchange("outbox-private"));
    let dir = root.join("nested").join("outbox");
    let dir_text = dir.display().to_string();
    let app = spawn_app("outbox_private", &[("OUTBOX_DIR", dir_text.as_str())]).await;
    assert_eq!(app.get("/health").await.status(), 200);
    let mode = |path: &std::path::Path| {
        std::fs::metadata(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(&root.join("nested")), 0o700);
    assert_eq!(mode(&dir), 0o700);
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("listed") {
        let path = entry.expect("entry").path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
        files.push(
            path.file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned(),
        );
    }
    files.sort();
    assert_eq!(files, ["next_seq", "outbox.log"]);
    let _ = std::fs::remove_dir_all(&root);
}
