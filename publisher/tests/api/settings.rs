//! The real binary with bad settings: one line naming the variable, exit code 2, no panic.

use std::process::Command;

fn run_publisher(vars: &[(&str, &str)]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_publisher"));
    // An env file that does not exist in the temp dir: only the variables below count.
    command.current_dir(std::env::temp_dir());
    for name in [
        "AMQP_URL",
        "RABBITMQ_HOST",
        "RABBITMQ_PORT",
        "RABBITMQ_USER",
        "RABBITMQ_PASSWORD",
        "RABBITMQ_VHOST",
    ] {
        command.env_remove(name);
    }
    // Should one start, it keeps no outbox folder in the shared temp dir.
    command.env("OUTBOX_DIR", "off");
    for (name, value) in vars {
        command.env(name, value);
    }
    command.output().expect("the binary runs")
}

#[test]
fn a_bad_setting_stops_start_up_with_one_line_naming_it() {
    for (name, value) in [
        ("APP_PORT", "eighty"),
        ("PUBLISH_INTERVAL_SECS", "-1"),
        ("AMQP_URL", "http://admin:s3cret-pw@host/"),
        ("RUST_LOG", "info,[[["),
        ("NETWORK_INTERFACES", "eth*,!veth[0-"),
    ] {
        let out = run_publisher(&[(name, value)]);
        assert_eq!(out.status.code(), Some(2), "{name}={value}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(name), "names {name}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!stderr.contains("s3cret-pw"), "password leaked: {stderr}");
    }
}

#[test]
fn amqp_url_and_an_original_variable_together_stop_start_up_naming_both() {
    let out = run_publisher(&[
        ("AMQP_URL", "amqp://admin:s3cret-pw@127.0.0.1:1/%2f"),
        ("RABBITMQ_PORT", "5673"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains("AMQP_URL") && stderr.contains("RABBITMQ_PORT"),
        "names both: {stderr}"
    );
    assert!(!stderr.contains("s3cret-pw"), "password leaked: {stderr}");
}

#[test]
fn an_outbox_dir_that_cannot_be_written_stops_start_up_with_one_line() {
    // Not even root can make a folder in /proc.
    let out = run_publisher(&[("OUTBOX_DIR", "/proc/hostpulse-outbox")]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains("OUTBOX_DIR /proc/hostpulse-outbox"),
        "{stderr}"
    );
}

#[test]
fn the_process_environment_wins_over_the_env_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("publisher.env");
    std::fs::write(&file, "APP_PORT=not-a-port\n").expect("write");
    let file = file.to_string_lossy().into_owned();
    // From the file alone, its bad port stops start-up ...
    let out = run_publisher(&[("PUBLISHER_ENV_FILE", &file)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("APP_PORT"), "{stderr}");
    // ... while the environment's port wins over it: the port passes, and the next bad value
    // (RUST_LOG, checked after all settings) is the one reported.
    let out = run_publisher(&[
        ("PUBLISHER_ENV_FILE", &file),
        ("APP_PORT", "0"),
        ("RUST_LOG", "info,[[["),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("RUST_LOG") && !stderr.contains("APP_PORT"),
        "{stderr}"
    );
    let out = run_publisher(&[("PUBLISHER_ENV_FILE", "/nonexistent/publisher.env")]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a named file that is missing is an error"
    );
}
