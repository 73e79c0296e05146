//! Containers by name, from a real Docker Engine (Debian's docker.io, started by
//! scripts/test.sh when none runs) through its unix socket.

use shared::reading::{Container, Reading};
use std::process::Command;
use std::time::Duration;

/// A local image holding only Debian's static busybox (no registry is reachable here): made
/// with `docker import`, again if it is missing.
const IMAGE: &str = "hostpulse-busybox:test";

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI runs (scripts/test.sh installs docker.io)");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn ensure_image() {
    let present = Command::new("docker")
        .args(["image", "inspect", IMAGE])
        .output()
        .is_ok_and(|o| o.status.success());
    if present {
        return;
    }
    let root = tempfile::tempdir().expect("temp dir");
    let bin = root.path().join("bin");
    std::fs::create_dir(&bin).expect("mkdir bin");
    std::fs::copy("/bin/busybox", bin.join("busybox")).expect("Debian's busybox-static");
    for applet in ["sh", "yes", "sleep"] {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).expect("symlink");
    }
    let tar = Command::new("tar")
        .arg("-C")
        .arg(root.path())
        .args(["-cf", "-", "."])
        .output()
        .expect("tar runs");
    let mut import = Command::new("docker")
        .args(["import", "-", IMAGE])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("docker import runs");
    use std::io::Write;
    import
        .stdin
        .take()
        .expect("stdin")
        .write_all(&tar.stdout)
        .expect("image written");
    assert!(import.wait().expect("docker import ends").success());
}

/// Containers started by one test, removed when it ends, pass or fail.
struct Started(Vec<String>);

impl Drop for Started {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = Command::new("docker").args(["rm", "-f", name]).output();
        }
    }
}

async fn reading(address: &str) -> Reading {
    reqwest::get(format!("{address}/api/reading"))
        .await
        .expect("answers")
        .json()
        .await
        .expect("a reading")
}

fn find<'a>(reading: &'a Reading, name: &str) -> Option<&'a Container> {
    reading.containers.as_ref()?.iter().find(|c| c.name == name)
}

#[tokio::test]
async fn a_busy_and_an_idle_container_appear_by_name_with_their_cpu_and_memory() {
    ensure_image();
    let suffix = format!("{:08x}", rand_suffix());
    let busy = format!("hostpulse-test-busy-{suffix}");
    let idle = format!("hostpulse-test-idle-{suffix}");
    let started = Started(vec![busy.clone(), idle.clone()]);
    let run = |name: &str, command: &str| {
        docker(&[
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "none",
            "--memory",
            "64m",
            IMAGE,
            "/bin/sh",
            "-c",
            command,
        ]);
    };
    run(&busy, "yes > /dev/null");
    run(&idle, "sleep 600");
    let address = crate::helpers::spawn_app_without_broker(&[]).await;
    // The publisher looks at the engine every 2 s and needs two looks for a CPU figure; the
    // loop ends as soon as both are seen (up to a minute on a busy machine).
    let mut last = None;
    for _ in 0..120 {
        let now = reading(&address).await;
        let seen = find(&now, &busy).is_some_and(|c| c.cpu_percent.is_some())
            && find(&now, &idle).is_some_and(|c| c.cpu_percent.is_some());
        last = Some(now);
        if seen {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let reading = last.expect("readings");
    let busy =
        find(&reading, &busy).unwrap_or_else(|| panic!("{busy} in {:?}", reading.containers));
    let idle =
        find(&reading, &idle).unwrap_or_else(|| panic!("{idle} in {:?}", reading.containers));
    for c in [busy, idle] {
        assert_eq!(c.image, IMAGE);
        assert_eq!(c.state, "running");
        assert_eq!(c.restart_count, Some(0));
        assert_eq!(c.health, None, "no health check");
        assert_eq!(c.memory_limit_bytes, Some(64 << 20));
        assert!(
            c.memory_used_bytes.is_some_and(|m| m > 0 && m < 64 << 20),
            "{c:?}"
        );
    }
    // `yes` wants a whole core; on a busy 2-core machine it still gets far more than an
    // idle shell, which gets none.
    let busy_cpu = busy.cpu_percent.expect("busy cpu");
    let idle_cpu = idle.cpu_percent.expect("idle cpu");
    assert!(busy_cpu > 10.0, "{busy:?}");
    assert!(idle_cpu < 5.0, "{idle:?}");
    drop(started);
}

#[test]
fn without_an_engine_the_publisher_says_so_once_and_readings_go_out_without_containers() {
    // The real binary, its log on stderr: one line naming the socket, not one per look.
    let mut child = Command::new(env!("CARGO_BIN_EXE_publisher"))
        .current_dir(std::env::temp_dir())
        .env("AMQP_URL", "amqp://guest:guest@127.0.0.1:1/%2f")
        .env("APP_PORT", "0")
        .env("PUBLISH_INTERVAL_SECS", "0")
        .env("OUTBOX_DIR", "off")
        .env("RUST_LOG", "info")
        .env("DOCKER_SOCKET", "/nonexistent/docker.sock")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let (lines, received) = std::sync::mpsc::channel();
    for pipe in [
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let lines = lines.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
    }
    let mut seen = Vec::new();
    let mut said = 0;
    // Until the line comes (a minute at most on a busy machine), then three more looks.
    let mut until = std::time::Instant::now() + Duration::from_secs(60);
    while let Ok(line) =
        received.recv_timeout(until.saturating_duration_since(std::time::Instant::now()))
    {
        if line.contains("no container engine") {
            assert!(line.contains("/nonexistent/docker.sock"), "{line}");
            said += 1;
            until = std::time::Instant::now() + 3 * Duration::from_secs(2);
        }
        seen.push(line);
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(said, 1, "said once: {seen:#?}");
}

#[tokio::test]
async fn without_an_engine_the_reading_goes_out_without_containers() {
    let address =
        crate::helpers::spawn_app_without_broker(&[("DOCKER_SOCKET", "/nonexistent/docker.sock")])
            .await;
    let reading = reading(&address).await;
    assert_eq!(reading.containers, None);
    assert!(!reading.disks.is_empty(), "the rest of the reading as ever");
}

fn rand_suffix() -> u32 {
    std::process::id()
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
}
