//! The publisher beside the agents people would pick instead, in the same run, each sampling
//! this host once a second for the same minute: collectd (cpu, memory, df, interface and load
//! plugins, publishing to RabbitMQ with its `amqp` plugin), prometheus-node-exporter (scraped
//! once a second), and Netdata when it is installed (its default plugins, one-second updates).
//! For each: RSS median and max and CPU % of one core, summed over its whole process tree, and
//! the bytes it puts on the wire each second (AMQP agents: what a private RabbitMQ node
//! received on their connection; node_exporter: the scrape answers). `bench/run.sh`
//! installs the agents from Debian's packages; one that is missing is reported, not faked.
//! Then the publisher is aged by [`AGEING_READINGS`] more readings and every agent's RSS is
//! read again: a minute does not show what a publisher holds after hours.
//!
//! `cargo run --release -p bench --bin peers -- [seconds=60]`

use bench::{median_and, HttpConnection, Service};
use shared::testing::private_broker::{free_port, PrivateBroker};
use shared::testing::unique_exchange;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Time for every agent to settle before measuring.
const WARM_UP: Duration = Duration::from_secs(5);

/// An agent running as its own process group, killed (with its children) on drop.
struct Agent {
    name: &'static str,
    child: Child,
}

impl Agent {
    /// Starts `program` with `args`, or `None` when it is not installed.
    fn start(name: &'static str, program: &str, args: &[&str]) -> Option<Self> {
        if !Path::new(program).exists() {
            eprintln!("{name}: {program} is not installed; skipped");
            return None;
        }
        let child = Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| eprintln!("{name}: cannot start {program}: {e}"))
            .ok()?;
        Some(Self { name, child })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        // The whole group: Netdata's plugins are processes of their own.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

/// `pid` and every process descended from it.
fn process_tree(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(child) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            let parent = std::fs::read_to_string(format!("/proc/{child}/stat"))
                .ok()
                .and_then(|stat| {
                    let rest = stat.rsplit_once(')')?.1.to_owned();
                    rest.split_whitespace().nth(1)?.parse().ok()
                });
            if let Some(parent) = parent {
                parents.push((child, parent));
            }
        }
    }
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let p = tree[i];
        tree.extend(parents.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    tree
}

fn tree_rss_mib(pid: u32) -> f64 {
    process_tree(pid)
        .into_iter()
        .map(bench::rss_kib)
        .sum::<u64>() as f64
        / 1024.0
}

fn tree_cpu_seconds(pid: u32) -> f64 {
    process_tree(pid).into_iter().map(bench::cpu_seconds).sum()
}

/// Bytes a private node received on each connection: (hostpulse publisher's, the others').
fn broker_received(broker: &PrivateBroker) -> (u64, u64) {
    let out = Command::new("rabbitmqctl")
        .args([
            "-n",
            &broker.node,
            "list_connections",
            "client_properties",
            "recv_oct",
        ])
        .args(["-q", "--no-table-headers"])
        .output()
        .expect("rabbitmqctl");
    let mut ours = 0;
    let mut others = 0;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(bytes) = line
            .rsplit(char::is_whitespace)
            .next()
            .and_then(|b| b.parse::<u64>().ok())
        else {
            continue;
        };
        if line.contains("hostpulse-publisher") {
            ours += bytes;
        } else {
            others += bytes;
        }
    }
    (ours, others)
}

fn collectd_config(dir: &Path, amqp_port: u16) -> PathBuf {
    let file = dir.join("collectd.conf");
    let config = format!(
        r#"Interval 1
FQDNLookup false
TypesDB "/usr/share/collectd/types.db"
BaseDir "{dir}"
PIDFile "{dir}/collectd.pid"
PluginDir "/usr/lib/collectd"
LoadPlugin cpu
LoadPlugin memory
LoadPlugin df
LoadPlugin interface
LoadPlugin load
LoadPlugin amqp
<Plugin amqp>
  <Publish "bench">
    Host "127.0.0.1"
    Port "{amqp_port}"
    VHost "/"
    User "guest"
    Password "guest"
    Exchange "collectd-bench"
    ExchangeType "fanout"
    Persistent true
    Format "JSON"
  </Publish>
</Plugin>
"#,
        dir = dir.display()
    );
    std::fs::write(&file, config).expect("collectd.conf");
    file
}

fn netdata_config(dir: &Path, port: u16) -> PathBuf {
    for sub in ["cache", "lib", "log", "run"] {
        std::fs::create_dir_all(dir.join(sub)).expect("netdata dir");
    }
    let file = dir.join("netdata.conf");
    let d = dir.display();
    let config = format!(
        "[global]\n    update every = 1\n    memory mode = ram\n    run as user = root\n\
         [directories]\n    cache = {d}/cache\n    lib = {d}/lib\n    log = {d}/log\n    run = {d}/run\n\
         [web]\n    bind to = 127.0.0.1:{port}\n\
         [logs]\n    error = {d}/log/error.log\n    access = none\n    debug = {d}/log/debug.log\n"
    );
    std::fs::write(&file, config).expect("netdata.conf");
    file
}

/// Where a process's resident memory is, in MiB: (its own executable's pages, shared
/// libraries' pages, anonymous memory: heap, stacks, buffers).
fn rss_by_part(pid: u32) -> (f64, f64, f64) {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let (mut own, mut libraries, mut anonymous) = (0u64, 0u64, 0u64);
    let mut mapping = String::new();
    for line in smaps.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields
            .first()
            .is_some_and(|f| f.contains('-') && !f.ends_with(':'))
        {
            mapping = fields.get(5).map(|p| p.to_string()).unwrap_or_default();
        } else if fields.first() == Some(&"Rss:") {
            let kib: u64 = fields.get(1).and_then(|k| k.parse().ok()).unwrap_or(0);
            if Path::new(&mapping) == exe {
                own += kib;
            } else if mapping.starts_with('/') {
                libraries += kib;
            } else {
                anonymous += kib;
            }
        }
    }
    let mib = |kib: u64| kib as f64 / 1024.0;
    (mib(own), mib(libraries), mib(anonymous))
}

/// The process scans so far, from the publisher's `/metrics`: (scans, seconds spent, processes
/// read).
async fn process_scan_cost(port: u16) -> Option<(f64, f64, f64)> {
    let (status, body) = HttpConnection::open(port).await.get("/metrics").await;
    if status != 200 {
        return None;
    }
    let text = String::from_utf8_lossy(&body);
    let value = |name: &str| {
        text.lines().find_map(|l| {
            l.strip_prefix(name)?
                .strip_prefix(' ')?
                .trim()
                .parse::<f64>()
                .ok()
        })
    };
    Some((
        value("hostpulse_process_scan_seconds_count")?,
        value("hostpulse_process_scan_seconds_sum")?,
        value("hostpulse_process_scan_processes_total")?,
    ))
}

/// Readings sent through `/publish`, one at a time, to age the publisher: lapin keeps a fixed
/// 256 KiB ring for what it reads and one for what it writes, and moves through each without
/// going back to the start when it is empty, so its pages become resident as bytes pass. At
/// 1 Hz the write ring (~2 KiB a reading) is all resident within minutes, the read ring (a
/// ~21-byte confirmation a reading) within ~3 h: a one-minute window sees neither.
const AGEING_READINGS: u64 = 16_000;
/// However many of them went out by then.
const AGEING_LIMIT: Duration = Duration::from_secs(60);

/// Ages the publisher by [`AGEING_READINGS`] more readings and prints every agent's RSS then,
/// all of them still running: what a host sees after hours, not after a minute.
async fn aged(publisher: &Service, agents: &[(&str, u32)]) {
    let mut http = bench::LightHttp::open(publisher.port).await;
    let deadline = Instant::now() + AGEING_LIMIT;
    let mut sent = 0u64;
    while sent < AGEING_READINGS && Instant::now() < deadline {
        let (status, body) = http.get("/publish").await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(body));
        sent += 1;
    }
    drop(http);
    // What the burst freed is back with the allocator before measuring.
    tokio::time::sleep(WARM_UP).await;
    let rss: Vec<f64> = agents.iter().map(|(_, pid)| tree_rss_mib(*pid)).collect();
    let (own, _, anonymous) = rss_by_part(publisher.pid());
    println!();
    println!(
        "After {sent} more readings from the publisher ({:.1} h of them at 1 Hz), sent one at a \
         time through `/publish`, all agents still running:",
        sent as f64 / 3600.0
    );
    println!();
    println!("| agent | RSS | publisher ÷ agent |");
    println!("|---|---|---|");
    for ((name, _), rss_now) in agents.iter().zip(&rss) {
        println!("| {name} | {rss_now:.1} MiB | {:.2} |", rss[0] / rss_now);
        if *name == "collectd" {
            bench::summary::add(bench::summary::Row {
                figure: format!("publisher RSS after {sent} more readings"),
                reference: format!("collectd {rss_now:.1} MiB"),
                hostpulse: format!("{:.1} MiB", rss[0]),
                ratio: Some(rss[0] / rss_now),
                goal: "< 1 × collectd",
            });
        }
    }
    println!();
    println!(
        "The publisher's RSS by part then: its own code and data {own:.1} MiB, heap, stacks and \
         buffers {anonymous:.1} MiB (an upper bound for a host at 1 Hz: `/publish` also warms \
         the HTTP threads' heaps, which readings on the interval leave alone)."
    );
}

/// One agent's figures over the window.
struct Figures {
    rss: Vec<f64>,
    cpu_before: f64,
    cpu: f64,
    wire: Option<f64>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(60);
    let dir = std::env::temp_dir().join(format!("hostpulse-peers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("work dir");
    let broker = tokio::task::spawn_blocking(|| PrivateBroker::start(""))
        .await
        .expect("node");

    let publisher = Service::start(
        "publisher",
        &unique_exchange("bench-peers"),
        &[
            ("AMQP_URL", &broker.url()),
            ("PUBLISH_INTERVAL_SECS", "1"),
            // Everything on, the process list at its default interval.
            ("PROCESS_INTERVAL_SECS", "5"),
        ],
    )
    .await;
    let collectd_conf = collectd_config(&dir, broker.port);
    let collectd = Agent::start(
        "collectd",
        "/usr/sbin/collectd",
        &["-f", "-C", &collectd_conf.to_string_lossy()],
    );
    let exporter_port = free_port();
    let exporter_address = format!("--web.listen-address=127.0.0.1:{exporter_port}");
    let exporter = Agent::start(
        "node_exporter",
        "/usr/bin/prometheus-node-exporter",
        &[&exporter_address],
    );
    let netdata_conf = netdata_config(&dir.join("netdata"), free_port());
    let netdata = Agent::start(
        "netdata",
        "/usr/sbin/netdata",
        &["-D", "-c", &netdata_conf.to_string_lossy()],
    );
    tokio::time::sleep(WARM_UP).await;

    let mut scraper = match &exporter {
        Some(_) => Some(HttpConnection::open(exporter_port).await),
        None => None,
    };
    let agents: Vec<(&str, u32)> = std::iter::once(("hostpulse publisher", publisher.pid()))
        .chain(
            [&collectd, &exporter, &netdata]
                .into_iter()
                .flatten()
                .map(|a| (a.name, a.pid())),
        )
        .collect();
    let mut figures: Vec<Figures> = agents
        .iter()
        .map(|(_, pid)| Figures {
            rss: Vec::new(),
            cpu_before: tree_cpu_seconds(*pid),
            cpu: 0.0,
            wire: None,
        })
        .collect();
    let (ours_before, others_before) = broker_received(&broker);
    let mut scraped_bytes = 0usize;
    let started = Instant::now();
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    for _ in 0..seconds {
        ticks.tick().await;
        if let Some(scraper) = scraper.as_mut() {
            let (status, _, wire) = scraper.get_counting("/metrics").await;
            assert_eq!(status, 200, "node_exporter answers");
            scraped_bytes += wire;
        }
        for ((_, pid), f) in agents.iter().zip(figures.iter_mut()) {
            f.rss.push(tree_rss_mib(*pid));
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (ours_after, others_after) = broker_received(&broker);
    for ((name, pid), f) in agents.iter().zip(figures.iter_mut()) {
        f.cpu = (tree_cpu_seconds(*pid) - f.cpu_before) / elapsed * 100.0;
        f.wire = match *name {
            "hostpulse publisher" => Some((ours_after - ours_before) as f64 / elapsed),
            "collectd" => Some((others_after - others_before) as f64 / elapsed),
            "node_exporter" => Some(scraped_bytes as f64 / elapsed),
            _ => None,
        };
    }

    println!("Each agent sampled this host once a second for {seconds} s, all at once; RSS and CPU summed over each agent's process tree.");
    println!();
    println!("| agent | RSS median | RSS max | CPU (% of one core) | bytes/s on the wire | publisher ÷ agent: RSS, CPU, bytes |");
    println!("|---|---|---|---|---|---|");
    let mut rows: Vec<(f64, f64, Option<f64>)> = Vec::new();
    for ((name, _), f) in agents.iter().zip(figures.iter_mut()) {
        let (median, max) = median_and(&mut f.rss, 1.0);
        rows.push((median, f.cpu, f.wire));
        let (ours_rss, ours_cpu, ours_wire) = rows[0];
        let ratio_wire = match (ours_wire, f.wire) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
            _ => "–".into(),
        };
        println!(
            "| {name} | {median:.1} MiB | {max:.1} MiB | {:.2} % | {} | {:.2}, {:.2}, {ratio_wire} |",
            f.cpu,
            f.wire.map_or("–".into(), |w| format!("{w:.0}")),
            ours_rss / median,
            ours_cpu / f.cpu,
        );
    }
    if let Some(i) = agents.iter().position(|(name, _)| *name == "collectd") {
        let (ours_rss, ours_cpu, _) = rows[0];
        let (rss, cpu, _) = rows[i];
        bench::summary::add(bench::summary::Row {
            figure: "publisher RSS at 1 reading/s, median".into(),
            reference: format!("collectd {rss:.1} MiB"),
            hostpulse: format!("{ours_rss:.1} MiB"),
            ratio: Some(ours_rss / rss),
            goal: "< 1 × collectd",
        });
        bench::summary::add(bench::summary::Row {
            figure: "publisher CPU at 1 reading/s".into(),
            reference: format!("collectd {cpu:.2} %"),
            hostpulse: format!("{ours_cpu:.2} %"),
            ratio: Some(ours_cpu / cpu),
            goal: "< 1 × collectd",
        });
    }
    let scan = process_scan_cost(publisher.port).await;
    let (own, libraries, anonymous) = rss_by_part(publisher.pid());
    println!();
    println!(
        "The publisher's RSS by part: its own code and data {own:.1} MiB (actix-web, amqprs, rustls \
         for amqps://, tokio, sysinfo, prometheus), shared libraries {libraries:.1} MiB (libc, libm, \
         the loader), heap, stacks and buffers {anonymous:.1} MiB."
    );
    match scan {
        Some((scans, seconds, processes)) if scans > 0.0 && processes > 0.0 => println!(
            "\nThe process scan (every 5 s): {scans:.0} scans of {:.0} processes each, {:.2} ms a \
             scan, {:.1} µs per process (wall time, from the publisher's `/metrics`).",
            processes / scans,
            seconds / scans * 1e3,
            seconds / processes * 1e6,
        ),
        _ => println!("\nThe process scan: no figures in the publisher's `/metrics`."),
    }
    aged(&publisher, &agents).await;
    drop((collectd, exporter, netdata));
    drop(publisher);
    drop(broker);
    let _ = std::fs::remove_dir_all(&dir);
}
