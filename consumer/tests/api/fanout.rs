use crate::helpers::{next_frame, next_reading, open_socket, spawn_consumer, spawn_publisher};
use shared::testing::unique_exchange;

#[tokio::test]
async fn two_consumers_on_one_exchange_each_receive_every_reading() {
    let exchange = unique_exchange("fanout");
    let first = spawn_consumer(&exchange, &[]).await;
    let second = spawn_consumer(&exchange, &[]).await;
    let publisher = spawn_publisher(&exchange, "fanout-host").await;
    let mut a = open_socket(&first).await;
    let mut b = open_socket(&second).await;
    next_frame(&mut a, crate::helpers::FRAME_WAIT)
        .await
        .expect("snapshot");
    next_frame(&mut b, crate::helpers::FRAME_WAIT)
        .await
        .expect("snapshot");
    for _ in 0..10 {
        let seq = publisher.publish().await;
        assert_eq!(next_reading(&mut a).await["seq"], seq);
        assert_eq!(next_reading(&mut b).await["seq"], seq);
    }
}

#[tokio::test]
async fn a_named_queue_is_used_when_queue_name_is_set() {
    let exchange = unique_exchange("named");
    let queue = format!("{exchange}-queue");
    let consumer = spawn_consumer(&exchange, &[("QUEUE_NAME", &queue)]).await;
    let publisher = spawn_publisher(&exchange, "named-host").await;
    let mut socket = open_socket(&consumer).await;
    next_frame(&mut socket, crate::helpers::FRAME_WAIT)
        .await
        .expect("snapshot");
    let seq = publisher.publish().await;
    assert_eq!(next_reading(&mut socket).await["seq"], seq);
    let listed = std::process::Command::new("rabbitmqctl")
        .args([
            "list_queues",
            "name",
            "exclusive",
            "auto_delete",
            "arguments",
        ])
        .output()
        .expect("rabbitmqctl runs (scripts/test.sh installs rabbitmq-server)");
    assert!(listed.status.success(), "rabbitmqctl: {listed:?}");
    let text = String::from_utf8_lossy(&listed.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with(&queue))
        .expect("the named queue exists");
    assert!(
        line.contains("true\ttrue"),
        "exclusive and auto-delete: {line}"
    );
    assert!(line.contains("x-max-length"), "bounded: {line}");
}
