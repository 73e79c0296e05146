//! The Host check in a real browser: the page works as people open it, on
//! `http://127.0.0.1:PORT/` and `http://localhost:PORT/`, and a name rebound to this machine
//! gets nothing of the fleet.

use crate::helpers::spawn_consumer;
use crate::page::{card, reading_json};
use shared::testing::browser::Browser;
use shared::testing::{unique_exchange, Tap};

#[tokio::test]
async fn the_page_works_on_127_0_0_1_and_on_localhost() {
    let exchange = unique_exchange("browser-hosts");
    let consumer = spawn_consumer(&exchange, &[]).await;
    let tap = Tap::bind(&exchange).await;
    let browser = Browser::start().await;
    for (seq, name) in [(1, "127.0.0.1"), (2, "localhost")] {
        let host = format!("web-{seq}");
        browser
            .open(&format!("http://{name}:{}/", consumer.port))
            .await;
        // The socket opened: its Origin passed the check against the allowed names.
        browser.wait_text("#conn-badge", 10, |t| t == "live").await;
        tap.publish_raw(&reading_json(&host, seq)).await;
        browser
            .wait_text(&card(&host), 10, |t| t.contains(&host) && t.contains('%'))
            .await;
    }
    tap.cleanup().await;
    browser.close().await;
}

#[tokio::test]
async fn a_name_rebound_to_this_machine_reads_nothing() {
    let exchange = unique_exchange("browser-rebind");
    let consumer = spawn_consumer(&exchange, &[]).await;
    let tap = Tap::bind(&exchange).await;
    tap.publish_raw(&reading_json("secret-host", 1)).await;
    crate::helpers::wait_until("the reading arrives", || {
        consumer.live.latest_json().contains("secret-host")
    })
    .await;
    // What DNS rebinding achieves: the attacker's name resolves to this machine.
    let browser =
        Browser::start_with(&["--host-resolver-rules=MAP rebind.example 127.0.0.1"]).await;
    let port = consumer.port;
    for path in ["/", "/api/hosts"] {
        browser
            .open(&format!("http://rebind.example:{port}{path}"))
            .await;
        let shown = browser
            .wait_text("body", 10, |t| t.contains("ALLOWED_HOSTS"))
            .await;
        assert!(!shown.contains("secret-host"), "{path}: {shown}");
    }
    tap.cleanup().await;
    browser.close().await;
}
