use crate::helpers::spawn_app;

#[tokio::test]
async fn health_and_ready_report_the_broker_without_its_password() {
    let app = spawn_app("health", &[]).await;
    let health = app.get("/health").await;
    assert_eq!(health.status(), 200);
    let text = health.text().await.expect("body");
    let body: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(body["broker"]["connected"], true);
    let shown = body["broker"]["url"]
        .as_str()
        .expect("the broker's URL is shown");
    assert!(shown.contains(":***@"), "masked: {shown}");
    crate::helpers::assert_no_password(&text);
    let ready = app.get("/ready").await;
    assert_eq!(ready.status(), 200);
    crate::helpers::assert_no_password(&ready.text().await.expect("body"));
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_answer_json() {
    let app = spawn_app("routes", &[]).await;
    let missing = app.get("/nope").await;
    assert_eq!(missing.status(), 404);
    let body: serde_json::Value = missing.json().await.expect("JSON");
    assert_eq!(body["reason"], "not_found");
    let wrong = app
        .http
        .delete(format!("{}/publish", app.address))
        .send()
        .await
        .expect("sent");
    assert_eq!(wrong.status(), 405);
}

#[tokio::test]
async fn ready_is_503_while_the_broker_cannot_be_reached() {
    // A port nothing listens on: the publisher must still start and answer.
    let address = crate::helpers::spawn_app_without_broker(&[]).await;
    let http = reqwest::Client::new();
    let ready = http
        .get(format!("{address}/ready"))
        .send()
        .await
        .expect("sent");
    assert_eq!(ready.status(), 503);
    let health = http
        .get(format!("{address}/health"))
        .send()
        .await
        .expect("sent");
    assert_eq!(health.status(), 200);
    let publish = http
        .get(format!("{address}/publish"))
        .send()
        .await
        .expect("sent");
    // Taken and queued for when the broker comes: 202, at once.
    assert_eq!(publish.status(), 202);
    let body: serde_json::Value = publish.json().await.expect("JSON");
    assert_eq!(body["status"], "queued");
    assert_eq!(body["seq"], 1);
}

#[tokio::test]
async fn the_root_names_every_route_and_each_one_answers() {
    let app = spawn_app("root", &[]).await;
    let root = app.get("/").await;
    assert_eq!(root.status(), 200);
    let body: serde_json::Value = root.json().await.expect("JSON");
    assert_eq!(body["service"], "hostpulse publisher");
    let routes = body["routes"].as_object().expect("routes");
    assert!(routes.contains_key("/publish"), "{body}");
    assert!(routes.contains_key("/metrics"), "{body}");
    for path in routes.keys() {
        let answer = app.get(path).await;
        assert_ne!(answer.status(), 404, "{path} is a route");
    }
}
