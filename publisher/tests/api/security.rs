use crate::helpers::spawn_app;

#[tokio::test]
async fn with_a_publish_token_only_bearers_of_it_may_publish() {
    let token = "tok-9f8e7d6c5b4a";
    let app = spawn_app("token", &[("PUBLISH_TOKEN", token)]).await;
    let url = format!("{}/publish", app.address);
    let missing = app.http.get(&url).send().await.expect("sent");
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
