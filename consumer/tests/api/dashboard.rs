use crate::helpers::spawn_consumer;
use shared::testing::unique_exchange;

#[tokio::test]
async fn the_page_and_its_assets_are_served_from_the_binary_with_a_strict_policy() {
    let consumer = spawn_consumer(&unique_exchange("page"), &[]).await;
    let page = reqwest::get(format!("{}/", consumer.address))
        .await
        .expect("sent");
    assert_eq!(page.status(), 200);
    let csp = page
        .headers()
        .get("content-security-policy")
        .expect("a CSP")
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
    let html = page.text().await.expect("body");
    assert!(html.contains("/assets/app.js"));
    for (asset, kind) in [("app.js", "javascript"), ("style.css", "text/css")] {
        let response = reqwest::get(format!("{}/assets/{asset}", consumer.address))
            .await
            .expect("sent");
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .to_owned();
        assert!(content_type.contains(kind), "{asset}: {content_type}");
    }
    let missing = reqwest::get(format!("{}/assets/nope.js", consumer.address))
        .await
        .expect("sent");
    assert_eq!(missing.status(), 404);
}
