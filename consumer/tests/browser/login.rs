//! The login in Chromium: the page, a wrong password, the right one, the dashboard live after
//! it, the logout, and an expired session sent back to the login page.

use crate::auth_helpers::{spawn_with_clock, Login, NAME, PASSWORD};
use crate::helpers::spawn_publisher;
use fantoccini::Locator;
use shared::testing::browser::Browser;
use shared::testing::unique_exchange;
use std::time::Duration;

async fn fill_and_submit(browser: &Browser, name: &str, password: &str) {
    for (field, value) in [
        ("input[name=name]", name),
        ("input[name=password]", password),
    ] {
        let input = browser
            .client
            .find(Locator::Css(field))
            .await
            .expect("the login form has the field");
        input.clear().await.expect("cleared");
        input.send_keys(value).await.expect("typed");
    }
    browser
        .client
        .find(Locator::Css("button[type=submit]"))
        .await
        .expect("a submit button")
        .click()
        .await
        .expect("clicked");
}

/// Opens the dashboard's WebSocket from the current page, as the page's own script would:
/// "open", or "refused" when the server turns the handshake down.
async fn try_socket(browser: &Browser) -> String {
    let script = r#"
        const done = arguments[arguments.length - 1];
        const socket = new WebSocket(`ws://${location.host}/ws`);
        socket.onopen = () => { socket.close(); done("open"); };
        socket.onerror = () => done("refused");
    "#;
    browser
        .client
        .execute_async(script, vec![])
        .await
        .expect("the script runs")
        .as_str()
        .unwrap_or("")
        .to_owned()
}

async fn path(browser: &Browser) -> String {
    browser
        .client
        .current_url()
        .await
        .expect("url")
        .path()
        .to_owned()
}

#[tokio::test]
async fn a_person_logs_in_sees_the_fleet_live_logs_out_and_is_sent_back_when_the_session_expires() {
    let login = Login::new("browser-login");
    let exchange = unique_exchange("browser-login");
    let mut vars = login.vars();
    vars.push(("SESSION_TTL", "1h"));
    let (consumer, clock) = spawn_with_clock(&exchange, &vars).await;
    let publisher = spawn_publisher(&exchange, "login-1").await;
    publisher.publish().await;
    let browser = Browser::start().await;

    // Not logged in: the dashboard sends the browser to the login page.
    browser.open(&consumer.address).await;
    browser.wait_text("h2", 10, |t| t == "Log in").await;
    assert_eq!(path(&browser).await, "/login");
    assert_eq!(browser.text(".message").await, "");
    assert_eq!(
        try_socket(&browser).await,
        "refused",
        "no session, no socket"
    );

    fill_and_submit(&browser, NAME, "not it").await;
    browser
        .wait_text(".message", 10, |t| t == "Wrong name or password.")
        .await;

    fill_and_submit(&browser, NAME, PASSWORD).await;
    browser.wait_text("#conn-badge", 10, |t| t == "live").await;
    assert_eq!(path(&browser).await, "/");
    assert_eq!(try_socket(&browser).await, "open");
    // The consumer's clock stands still unless told: keep it with the publisher's, or the
    // new reading would look as old as the first.
    clock.set(chrono::Utc::now());
    let seq = publisher.publish().await;
    browser
        .wait_text("#raw-json", 10, |t| t.contains(&format!("\"seq\": {seq}")))
        .await;

    // The header's logout button ends the session: the dashboard is out of reach again.
    browser
        .client
        .find(Locator::Css("#logout button[type=submit]"))
        .await
        .expect("a logout button in the header")
        .click()
        .await
        .expect("clicked");
    browser.wait_text("h2", 10, |t| t == "Log in").await;
    assert_eq!(path(&browser).await, "/login");
    browser.open(&consumer.address).await;
    browser.wait_text("h2", 10, |t| t == "Log in").await;
    assert_eq!(path(&browser).await, "/login", "/ needs a login again");
    assert_eq!(
        try_socket(&browser).await,
        "refused",
        "logged out, no socket"
    );

    // The logout page works too (without the page's script).
    fill_and_submit(&browser, NAME, PASSWORD).await;
    browser.wait_text("#conn-badge", 10, |t| t == "live").await;
    browser.open(&format!("{}/logout", consumer.address)).await;
    browser.wait_text("h2", 10, |t| t == "Log out").await;
    browser
        .client
        .find(Locator::Css("button[type=submit]"))
        .await
        .expect("a logout button")
        .click()
        .await
        .expect("clicked");
    browser.wait_text("h2", 10, |t| t == "Log in").await;

    // Logged in again; the session outlives its TTL: the server closes the open page's
    // socket (1008) and the page goes to the login page by itself.
    fill_and_submit(&browser, NAME, PASSWORD).await;
    browser.wait_text("#conn-badge", 10, |t| t == "live").await;
    clock.advance(Duration::from_secs(2 * 3600));
    browser.wait_text("h2", 10, |t| t == "Log in").await;
    assert_eq!(path(&browser).await, "/login");
    browser.close().await;
}
