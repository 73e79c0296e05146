//! The whole host in the detail view: CPU time split, memory split and swap activity, block
//! devices, network errors, temperatures, reserved disk space and the process table; and what
//! the page shows for readings that do not carry those fields.

use crate::display::{reading_with, script};
use crate::helpers::spawn_consumer;
use crate::page::{card, live_page, screenshots};
use fantoccini::key::Key;
use fantoccini::Locator;
use serde_json::json;
use shared::testing::browser::Browser;
use shared::testing::{unique_exchange, Tap};

/// The fixture reading with every field of the whole host, and `processes` as given.
pub(crate) fn whole_host(host: &str, seq: u64, processes: serde_json::Value) -> Vec<u8> {
    reading_with(host, seq, |v| {
        v["cpu"]["time_split"] = json!({
            "user_percent": 12.5, "system_percent": 3.25, "iowait_percent": 7.0,
            "steal_percent": 0.5, "irq_percent": 0.25, "softirq_percent": 0.5,
            "idle_percent": 76.0
        });
        v["memory"]["cached_buffers_bytes"] = json!(3_u64 << 30);
        v["memory"]["swap_in_bytes_per_sec"] = json!(4096);
        v["memory"]["swap_out_bytes_per_sec"] = json!(0);
        v["disks"][0]["reserved_bytes"] = json!(12_u64 << 30);
        v["networks"][0]["receive_errors_per_sec"] = json!(0.5);
        v["networks"][0]["transmit_errors_per_sec"] = json!(0.0);
        v["networks"][0]["receive_drops_per_sec"] = json!(2.0);
        v["networks"][0]["transmit_drops_per_sec"] = json!(1.25);
        v["temperatures"] = json!([{ "label": "Package id 0", "celsius": 54.5 }]);
        v["block_devices"] = json!([{
            "name": "vda", "read_bytes_per_sec": 2_500_000, "write_bytes_per_sec": 1000,
            "reads_per_sec": 40.5, "writes_per_sec": 12.25, "busy_percent": 37.5
        }]);
        v["processes"] = processes;
        v["pressure"] = json!({
            "cpu": { "some_avg10_percent": 94.91, "some_total_micros": 3_681_798_883_u64 },
            "memory": {
                "some_avg10_percent": 18.79, "some_total_micros": 50_801_325,
                "full_avg10_percent": 5.46, "full_total_micros": 7_423_556
            },
            "io": {
                "some_avg10_percent": 12.07, "some_total_micros": 105_218_703,
                "full_avg10_percent": 0.0, "full_total_micros": 4_058_459
            }
        });
        v["containers"] = json!([
            {
                "name": "api", "image": "shop/api:2", "state": "running", "health": "unhealthy",
                "restart_count": 4, "cpu_percent": 97.5,
                "memory_used_bytes": 200_u64 << 20, "memory_limit_bytes": 256_u64 << 20
            },
            { "name": "<b>job</b>", "image": "busybox", "state": "exited", "restart_count": 0 }
        ]);
    })
}

fn process(pid: u32, name: &str, user: &str, cpu: f64, resident: u64) -> serde_json::Value {
    json!({ "pid": pid, "name": name, "user": user, "cpu_percent": cpu, "resident_bytes": resident })
}

/// Three processes: two busiest by CPU, two largest by memory, postgres in both lists.
pub(crate) fn three_processes() -> serde_json::Value {
    let postgres = process(4242, "postgres", "postgres", 150.5, 500 << 20);
    json!({
        "total_count": 312,
        "running_count": 2,
        "top_by_cpu": [postgres, process(17, "cargo", "dev", 80.0, 100 << 20)],
        "top_by_memory": [process(900, "java", "app", 2.0, 4 << 30), postgres],
    })
}

/// Records the page's uncaught errors from now on, for [`page_errors`].
async fn record_page_errors(browser: &Browser) {
    script(
        browser,
        "window.__pageErrors = [];
         window.addEventListener('error', (e) => window.__pageErrors.push(String(e.message)));
         window.addEventListener('unhandledrejection', (e) => window.__pageErrors.push(String(e.reason)));
         return true;",
    )
    .await;
}

async fn page_errors(browser: &Browser) -> Vec<String> {
    serde_json::from_value(script(browser, "return window.__pageErrors").await)
        .expect("the recorded errors")
}

/// Each cell's text of each row of `table`'s body.
async fn rows(browser: &Browser, table: &str) -> Vec<Vec<String>> {
    let rows = script(
        browser,
        &format!(
            "return [...document.querySelectorAll('#{table} tbody tr')] \
             .map((r) => [...r.cells].map((c) => c.textContent))"
        ),
    )
    .await;
    serde_json::from_value(rows).expect("rows of text")
}

async fn process_order(browser: &Browser) -> Vec<String> {
    serde_json::from_value(
        script(
            browser,
            "return [...document.querySelectorAll('#detail-procs tbody tr')].map((r) => r.dataset.pid)",
        )
        .await,
    )
    .expect("pids")
}

async fn sorted_as(browser: &Browser) -> serde_json::Value {
    script(
        browser,
        "return [...document.querySelectorAll('#detail-procs th[aria-sort]')] \
         .map((th) => [th.dataset.key, th.getAttribute('aria-sort')])",
    )
    .await
}

async fn hidden(browser: &Browser, id: &str) -> bool {
    script(
        browser,
        &format!("return document.getElementById('{id}').hidden"),
    )
    .await
    .as_bool()
    .expect("a boolean")
}

#[tokio::test]
async fn a_reading_of_the_whole_host_shows_every_section_with_its_values() {
    let exchange = unique_exchange("browser-whole-host");
    let (_consumer, tap, browser) = live_page(&exchange).await;
    record_page_errors(&browser).await;
    tap.publish_raw(&whole_host("db-1", 1, three_processes()))
        .await;
    browser.wait_text("#detail-host", 10, |t| t == "db-1").await;
    browser.wait_text("#split-user", 5, |t| t == "12.5 %").await;

    for (id, text) in [
        ("split-system", "3.3 %"),
        ("split-iowait", "7.0 %"),
        ("split-steal", "0.5 %"),
        ("split-irq", "0.3 %"),
        ("split-softirq", "0.5 %"),
        ("split-idle", "76.0 %"),
        ("mem-used", "637.9 MiB"),
        ("mem-cached", "3.0 GiB"),
        ("mem-available", "22.9 GiB"),
        ("swap-in", "4.1 kB/s"),
        ("swap-out", "0 B/s"),
        ("procs-counts", "312 processes · 2 running"),
        ("psi-cpu-some", "94.9 %"),
        ("psi-memory-some", "18.8 %"),
        ("psi-memory-full", "5.5 %"),
        ("psi-io-some", "12.1 %"),
        ("psi-io-full", "0.0 %"),
        ("containers-counts", "1 running / 2"),
    ] {
        assert_eq!(browser.text(&format!("#{id}")).await, text, "#{id}");
    }
    assert_eq!(
        rows(&browser, "detail-block").await,
        [["vda", "2.5 MB/s", "1.0 kB/s", "40.5", "12.25", "37.5 %"]]
    );
    assert_eq!(
        rows(&browser, "detail-temps").await,
        [["Package id 0", "54.5 °C"]]
    );
    assert_eq!(
        rows(&browser, "detail-containers").await,
        [
            [
                "api",
                "shop/api:2",
                "running (unhealthy)",
                "4",
                "97.5 %",
                "200.0 MiB",
                "256.0 MiB"
            ],
            ["<b>job</b>", "busybox", "exited", "0", "–", "–", "–"],
        ],
        "each container by name, a hostile name as text, figures it lacks as –"
    );
    assert_eq!(
        rows(&browser, "detail-disks").await,
        [[
            "/",
            "ext4",
            "177.4 GiB",
            "74.6 GiB",
            "252.0 GiB",
            "12.0 GiB",
            "70.4 %"
        ]],
        "df's figures, with the reserved space apart"
    );
    let net = rows(&browser, "detail-net").await;
    assert_eq!(
        net[0][5..],
        ["↓ 0.5 ↑ 0", "↓ 2 ↑ 1.25"],
        "errors and drops beside eth0's rates"
    );
    assert_eq!(
        rows(&browser, "detail-procs").await,
        [
            ["4242", "postgres", "postgres", "150.5 %", "500.0 MiB"],
            ["17", "cargo", "dev", "80.0 %", "100.0 MiB"],
            ["900", "java", "app", "2.0 %", "4.0 GiB"],
        ],
        "the top by CPU and by memory, each process once, busiest first"
    );
    for note in [
        "cpu-split-none",
        "detail-temps-none",
        "detail-block-none",
        "procs-none",
        "pressure-none",
        "detail-containers-none",
    ] {
        assert!(hidden(&browser, note).await, "#{note} is hidden");
    }
    for chart in ["cpu-split", "disk-io", "net-errors"] {
        assert!(!hidden(&browser, &format!("panel-{chart}")).await);
        let drawn = script(
            &browser,
            &format!(
                "const c = document.getElementById('chart-{chart}'); \
                 return [c.dataset.points, c.querySelectorAll('canvas').length, c.getAttribute('aria-label')]"
            ),
        )
        .await;
        assert_eq!(drawn[0], "1", "chart-{chart} has the reading");
        assert_eq!(drawn[1], 1, "chart-{chart} is drawn by uPlot");
        assert!(
            drawn[2].as_str().is_some_and(|l| l.contains("of db-1")),
            "chart-{chart} describes its values: {}",
            drawn[2]
        );
    }
    let label = script(
        &browser,
        "return document.getElementById('chart-disk-io').getAttribute('aria-label')",
    )
    .await;
    assert!(
        label
            .as_str()
            .is_some_and(|l| l.ends_with("read 2.5 MB/s, write 1.0 kB/s")),
        "the disk I/O chart's latest values: {label}"
    );

    // A reading without a process list keeps the last one shown (the publisher refreshes it
    // every PROCESS_INTERVAL_SECS).
    tap.publish_raw(&whole_host("db-1", 2, serde_json::Value::Null))
        .await;
    browser
        .wait_text("#detail-time", 10, |t| t.contains("#2"))
        .await;
    assert_eq!(
        browser.text("#procs-counts").await,
        "312 processes · 2 running"
    );
    assert_eq!(process_order(&browser).await, ["4242", "17", "900"]);

    script(
        &browser,
        "window.scrollTo(0, document.getElementById('host-charts').offsetTop - 60); return true",
    )
    .await;
    browser
        .screenshot(&screenshots(), "whole-host-charts")
        .await;
    script(
        &browser,
        "document.getElementById('detail-procs').scrollIntoView(); return true",
    )
    .await;
    browser
        .screenshot(&screenshots(), "whole-host-processes")
        .await;
    assert_eq!(page_errors(&browser).await, Vec::<String>::new());
    tap.cleanup().await;
    browser.close().await;
}

#[tokio::test]
async fn the_process_table_sorts_by_the_clicked_column_with_mouse_or_keyboard() {
    let exchange = unique_exchange("browser-processes");
    let (_consumer, tap, browser) = live_page(&exchange).await;
    tap.publish_raw(&whole_host("db-1", 1, three_processes()))
        .await;
    browser
        .wait_text("#procs-counts", 10, |t| t.starts_with("312"))
        .await;
    assert_eq!(process_order(&browser).await, ["4242", "17", "900"]);
    assert_eq!(
        sorted_as(&browser).await,
        json!([["cpu_percent", "descending"]])
    );

    let header = |key: &'static str| {
        let client = browser.client.clone();
        async move {
            client
                .find(Locator::Css(&format!(
                    "#detail-procs th[data-key=\"{key}\"] button"
                )))
                .await
                .expect("a header button")
        }
    };
    header("name").await.click().await.expect("click");
    assert_eq!(
        process_order(&browser).await,
        ["17", "900", "4242"],
        "A to Z"
    );
    assert_eq!(sorted_as(&browser).await, json!([["name", "ascending"]]));
    header("name").await.click().await.expect("click");
    assert_eq!(
        process_order(&browser).await,
        ["4242", "900", "17"],
        "Z to A"
    );
    assert_eq!(sorted_as(&browser).await, json!([["name", "descending"]]));
    header("resident_bytes").await.click().await.expect("click");
    assert_eq!(
        process_order(&browser).await,
        ["900", "4242", "17"],
        "largest first"
    );
    assert_eq!(
        sorted_as(&browser).await,
        json!([["resident_bytes", "descending"]])
    );

    // The keyboard: the header is a button, Enter sorts.
    header("pid")
        .await
        .send_keys(&Key::Enter.to_string())
        .await
        .expect("Enter");
    assert_eq!(process_order(&browser).await, ["4242", "900", "17"]);
    assert_eq!(sorted_as(&browser).await, json!([["pid", "descending"]]));
    header("user")
        .await
        .send_keys(&Key::Enter.to_string())
        .await
        .expect("Enter");
    assert_eq!(
        process_order(&browser).await,
        ["900", "17", "4242"],
        "app, dev, postgres"
    );

    // The order holds as new readings arrive.
    tap.publish_raw(&whole_host("db-1", 2, three_processes()))
        .await;
    browser
        .wait_text("#detail-time", 10, |t| t.contains("#2"))
        .await;
    assert_eq!(process_order(&browser).await, ["900", "17", "4242"]);
    tap.cleanup().await;
    browser.close().await;
}

#[tokio::test]
async fn a_hostile_process_name_is_shown_as_text_and_makes_no_element() {
    let exchange = unique_exchange("browser-hostile-process");
    let (_consumer, tap, browser) = live_page(&exchange).await;
    record_page_errors(&browser).await;
    let hostile = "<img src=x onerror=alert(1)>\"'\u{7}\u{1b}[31m</td><script>alert(2)</script>";
    tap.publish_raw(&whole_host(
        "target",
        1,
        json!({
            "total_count": 1, "running_count": 1,
            "top_by_cpu": [process(666, hostile, "<b>root</b>", 99.0, 1 << 20)],
            "top_by_memory": [],
        }),
    ))
    .await;
    browser
        .wait_text("#procs-counts", 10, |t| t.starts_with("1 process"))
        .await;
    assert_eq!(
        rows(&browser, "detail-procs").await,
        [[
            "666",
            "<img src=x onerror=alert(1)>\"'␇␛[31m</td><script>alert(2)</script>",
            "<b>root</b>",
            "99.0 %",
            "1.0 MiB"
        ]],
        "the name as text, its control characters visible"
    );
    let made = script(
        &browser,
        "return document.querySelectorAll('main img, main script, main b, #detail-procs td *').length",
    )
    .await;
    assert_eq!(made, 0, "no element was made from the process");
    assert!(
        browser.client.get_alert_text().await.is_err(),
        "no alert was opened"
    );
    assert_eq!(page_errors(&browser).await, Vec::<String>::new());
    tap.cleanup().await;
    browser.close().await;
}

/// What the detail view shows for a reading without the whole host's fields.
async fn expect_absent(browser: &Browser, legacy: bool) {
    for (id, text) in [
        ("mem-cached", "–"),
        ("swap-in", "–"),
        ("swap-out", "–"),
        (
            "cpu-split-none",
            "This host does not report where its CPU time goes.",
        ),
        (
            "detail-block-none",
            "This host does not report its block devices.",
        ),
        (
            "detail-temps-none",
            "This host reports no temperature sensors.",
        ),
        ("procs-none", "This host does not report its processes."),
        (
            "pressure-none",
            "This host does not report pressure stall information.",
        ),
        (
            "detail-containers-none",
            "This host reports no container engine.",
        ),
    ] {
        assert_eq!(browser.text(&format!("#{id}")).await, text, "#{id}");
    }
    for id in [
        "cpu-split",
        "pressure",
        "detail-containers",
        "detail-block",
        "detail-temps",
        "detail-procs",
        "panel-cpu-split",
        "panel-disk-io",
        "panel-net-errors",
    ] {
        assert!(hidden(browser, id).await, "#{id} is hidden");
    }
    assert_eq!(browser.text("#procs-counts").await, "");
    assert_eq!(browser.text("#containers-counts").await, "");
    let disks = rows(browser, "detail-disks").await;
    assert_eq!(disks[0][5], "–", "no reserved space known");
    if !legacy {
        let net = rows(browser, "detail-net").await;
        assert_eq!(net[0][5..], ["–", "–"], "no errors or drops known");
    }
}

#[tokio::test]
async fn readings_without_the_new_fields_show_dashes_and_notes_and_raise_no_error() {
    let exchange = unique_exchange("browser-no-whole-host");
    let (_consumer, tap, browser) = live_page(&exchange).await;
    record_page_errors(&browser).await;

    // Today's publisher, before the whole host: the fixture as it is.
    tap.publish_raw(&reading_with("today", 1, |_| {})).await;
    browser
        .wait_text("#detail-host", 10, |t| t == "today")
        .await;
    browser
        .wait_text("#mem-used", 5, |t| t == "637.9 MiB")
        .await;
    expect_absent(&browser, false).await;

    // The original Python publisher.
    let now = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6f")
        .to_string();
    let legacy = format!(
        r#"{{"timestamp": "{now}", "cpu_percent": 37.5,
            "memory": {{"total": 8589934592, "available": 6442450944, "percent": 25.0}},
            "disk": {{"total": 1000000, "used": 400000, "free": 600000}},
            "platform": "Linux", "platform_release": "5.15.0", "processor": "x86_64"}}"#
    );
    tap.publish_raw(legacy.as_bytes()).await;
    let legacy_card = ".card[data-host^=\"legacy-\"]";
    browser
        .wait_text(legacy_card, 10, |t| t.contains("legacy-"))
        .await;
    browser
        .client
        .find(Locator::Css(&format!("{legacy_card} .name")))
        .await
        .expect("the legacy card")
        .click()
        .await
        .expect("click");
    browser
        .wait_text("#detail-host", 5, |t| t.starts_with("legacy-"))
        .await;
    browser
        .wait_text("#mem-available", 5, |t| t == "6.0 GiB")
        .await;
    expect_absent(&browser, true).await;
    assert_eq!(
        browser.text("#detail-net-unknown").await,
        "This host does not report its network."
    );
    assert!(
        !browser.text(&card("today")).await.is_empty(),
        "both hosts are listed"
    );

    // A host that measures block devices and has none: said so, and no I/O chart of zeros.
    tap.publish_raw(&reading_with("diskless", 1, |v| {
        v["block_devices"] = json!([]);
    }))
    .await;
    browser
        .wait_text(&card("diskless"), 10, |t| t.contains("diskless"))
        .await;
    browser
        .client
        .find(Locator::Css(&format!("{} .name", card("diskless"))))
        .await
        .expect("the diskless card")
        .click()
        .await
        .expect("click");
    browser
        .wait_text("#detail-host", 5, |t| t == "diskless")
        .await;
    browser
        .wait_text("#detail-block-none", 5, |t| {
            t == "This host reports no whole block devices."
        })
        .await;
    assert!(hidden(&browser, "detail-block").await);
    assert!(hidden(&browser, "panel-disk-io").await);
    assert_eq!(page_errors(&browser).await, Vec::<String>::new());
    tap.cleanup().await;
    browser.close().await;
}

#[tokio::test]
async fn the_publishers_own_reading_fills_the_sections() {
    let exchange = unique_exchange("browser-whole-host-live");
    let consumer = spawn_consumer(&exchange, &[]).await;
    let publisher = crate::helpers::spawn_publisher(&exchange, "real-host").await;
    let browser = Browser::start().await;
    browser.open(&consumer.address).await;
    browser.wait_text("#conn-badge", 10, |t| t == "live").await;
    record_page_errors(&browser).await;
    publisher.publish().await;
    let seq = publisher.publish().await;
    browser
        .wait_text("#detail-time", 10, |t| t.contains(&format!("#{seq}")))
        .await;
    // This machine's /proc: where CPU time went and the page cache are always known.
    for id in ["split-user", "split-idle"] {
        let text = browser.text(&format!("#{id}")).await;
        assert!(text.ends_with(" %"), "#{id}: {text:?}");
    }
    let cached = browser.text("#mem-cached").await;
    assert!(cached.ends_with("iB"), "cached/buffers: {cached:?}");
    assert!(browser.text("#swap-in").await.ends_with("B/s"));
    assert!(!hidden(&browser, "panel-cpu-split").await);
    let block = rows(&browser, "detail-block").await;
    assert!(
        block.iter().all(|r| r.len() == 6 && r[5].ends_with(" %")),
        "each block device's busy share: {block:?}"
    );
    assert_eq!(page_errors(&browser).await, Vec::<String>::new());
    browser.close().await;
}

#[tokio::test]
async fn on_a_phone_the_whole_host_fits_the_screen() {
    let exchange = unique_exchange("browser-whole-host-phone");
    let consumer = spawn_consumer(&exchange, &[]).await;
    let tap = Tap::bind(&exchange).await;
    let mut processes = three_processes();
    processes["top_by_cpu"][1]["name"] =
        json!("a-process-with-a-very-long-name-that-does-not-break-by-itself");
    tap.publish_raw(&whole_host("pocket", 1, processes)).await;
    let browser = Browser::start().await;
    browser
        .client
        .set_window_size(390, 844)
        .await
        .expect("phone size");
    browser.open(&consumer.address).await;
    browser
        .wait_text("#procs-counts", 10, |t| t.starts_with("312"))
        .await;
    let overflow = script(
        &browser,
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
    )
    .await;
    assert_eq!(overflow, 0, "nothing wider than a phone screen");
    script(
        &browser,
        "const t = document.getElementById('procs-counts'); \
         window.scrollTo(0, t.getBoundingClientRect().top + window.scrollY - 70); return true",
    )
    .await;
    // The headers stay on a phone (a stacked table hides them elsewhere): they sort the table.
    let shown = script(
        &browser,
        "const b = document.querySelector('#detail-procs th[data-key=\"name\"] button'); \
         const r = b.getBoundingClientRect(); \
         return b.contains(document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2))",
    )
    .await;
    assert_eq!(shown, true, "the name header's sort button is shown");
    browser
        .client
        .find(Locator::Css("#detail-procs th[data-key=\"name\"] button"))
        .await
        .expect("the name header")
        .click()
        .await
        .expect("click");
    assert_eq!(process_order(&browser).await, ["17", "900", "4242"]);
    browser.screenshot(&screenshots(), "phone-processes").await;
    tap.cleanup().await;
    browser.close().await;
}
