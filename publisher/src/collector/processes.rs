//! Processes: how many, how many running, and the top N by CPU and by resident memory.
//!
//! Every process costs one read of `/proc/<pid>/stat` (state, CPU ticks, resident pages);
//! only the top N are read further (`comm` for the name, `status` for the owner). User names
//! come from `/etc/passwd`, read once.

use super::proc_file::Skips;
use shared::reading::{ProcessInfo, Processes};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What the scan needs of one process.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Entry {
    pid: u32,
    /// CPU ticks since the previous scan.
    ticks: u64,
    resident_pages: u64,
}

/// Where to look and what the system's units are.
pub(super) struct ProcessScanOptions {
    /// The proc root: `/proc`, or a fixture folder.
    pub root: PathBuf,
    /// The user database: `/etc/passwd`.
    pub passwd: PathBuf,
    /// How many processes each top list holds.
    pub top_n: usize,
    pub page_bytes: u64,
    pub ticks_per_sec: u64,
}

/// Scans the process table, keeping each process's CPU ticks between scans.
pub(super) struct ProcessScan {
    options: ProcessScanOptions,
    /// User names by uid, read from the passwd file at the first need.
    users: Option<HashMap<u32, String>>,
    previous: HashMap<u32, u64>,
    current: HashMap<u32, u64>,
    entries: Vec<Entry>,
    /// Reused for every file read and every path built during a scan.
    text: String,
    path: String,
}

impl ProcessScan {
    /// Scans once, as the baseline for the first CPU figures.
    pub(super) fn new(options: ProcessScanOptions, skips: &mut Skips) -> Self {
        let mut scan = Self {
            options,
            users: None,
            previous: HashMap::new(),
            current: HashMap::new(),
            entries: Vec::new(),
            text: String::new(),
            path: String::new(),
        };
        scan.scan(Duration::ZERO, skips);
        scan
    }

    /// The process table now, with CPU shares over `elapsed` (the time since the previous
    /// scan); `None` (counted) when the proc root cannot be listed.
    pub(super) fn scan(&mut self, elapsed: Duration, skips: &mut Skips) -> Option<Processes> {
        let listing = match std::fs::read_dir(&self.options.root) {
            Ok(listing) => listing,
            Err(e) => {
                let root = self.options.root.display().to_string();
                skips.skip("processes", format_args!("cannot list {root}: {e}"));
                return None;
            }
        };
        self.entries.clear();
        self.current.clear();
        let mut running = 0u32;
        for item in listing.flatten() {
            let Some(pid) = item
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            // A process that exits between the listing and the read is simply not counted:
            // processes come and go all the time, and that is not a fault.
            if !self.read(pid, "stat") {
                continue;
            }
            let Some(stat) = parse_stat(&self.text) else {
                skips.skip("processes", format_args!("/proc/{pid}/stat is malformed"));
                continue;
            };
            if stat.state == 'R' {
                running += 1;
            }
            self.current.insert(pid, stat.ticks);
            // A pid new since the last scan (or reused, ticks lower) has no share yet.
            let ticks = match self.previous.get(&pid) {
                Some(&before) if before <= stat.ticks => stat.ticks - before,
                _ => 0,
            };
            self.entries.push(Entry {
                pid,
                ticks,
                resident_pages: stat.resident_pages,
            });
        }
        std::mem::swap(&mut self.previous, &mut self.current);
        let total = u32::try_from(self.entries.len()).unwrap_or(u32::MAX);
        let by_cpu = self.top(elapsed, |e| e.ticks);
        let by_memory = self.top(elapsed, |e| e.resident_pages);
        Some(Processes {
            total_count: total,
            running_count: running,
            top_by_cpu: by_cpu,
            top_by_memory: by_memory,
        })
    }

    /// The top N entries by `key`, largest first (ties by pid), described.
    fn top(&mut self, elapsed: Duration, key: impl Fn(&Entry) -> u64) -> Vec<ProcessInfo> {
        let n = self.options.top_n.min(self.entries.len());
        if n == 0 {
            return Vec::new();
        }
        let order = |a: &Entry, b: &Entry| key(b).cmp(&key(a)).then(a.pid.cmp(&b.pid));
        self.entries.select_nth_unstable_by(n - 1, order);
        self.entries[..n].sort_unstable_by(order);
        let chosen: Vec<Entry> = self.entries[..n].to_vec();
        chosen
            .iter()
            .filter_map(|entry| self.describe(entry, elapsed))
            .collect()
    }

    /// Name and owner of one process of a top list; `None` if it exited meanwhile.
    fn describe(&mut self, entry: &Entry, elapsed: Duration) -> Option<ProcessInfo> {
        if !self.read(entry.pid, "comm") {
            return None;
        }
        // Kept as the kernel has it, control characters and markup included: it is text.
        let name = self
            .text
            .strip_suffix('\n')
            .unwrap_or(&self.text)
            .to_owned();
        let uid = if self.read(entry.pid, "status") {
            parse_uid(&self.text)
        } else {
            None
        };
        let user = uid.map(|uid| self.user_name(uid)).unwrap_or_default();
        let secs = elapsed.as_secs_f64();
        let cpu_percent = if secs > 0.0 {
            let busy = entry.ticks as f64 / self.options.ticks_per_sec.max(1) as f64;
            ((busy / secs * 100.0 * 100.0).round() / 100.0) as f32
        } else {
            0.0
        };
        Some(ProcessInfo {
            pid: entry.pid,
            name,
            user,
            cpu_percent,
            resident_bytes: entry.resident_pages.saturating_mul(self.options.page_bytes),
        })
    }

    /// Reads `<root>/<pid>/<file>` into `text`; false if it could not be read.
    fn read(&mut self, pid: u32, file: &str) -> bool {
        self.path.clear();
        let root = self.options.root.display();
        let _ = write!(self.path, "{root}/{pid}/{file}");
        self.text.clear();
        std::fs::File::open(Path::new(&self.path))
            .and_then(|mut f| f.read_to_string(&mut self.text))
            .is_ok()
    }

    /// The user name for `uid`, or the number when the passwd file has none.
    fn user_name(&mut self, uid: u32) -> String {
        let passwd = &self.options.passwd;
        let users = self.users.get_or_insert_with(|| read_passwd(passwd));
        users.get(&uid).cloned().unwrap_or_else(|| uid.to_string())
    }
}

/// What `stat` says of a process.
#[derive(Debug, PartialEq)]
struct Stat {
    state: char,
    /// User plus system time.
    ticks: u64,
    resident_pages: u64,
}

/// Parses `/proc/<pid>/stat`; the name in parentheses may hold spaces and parentheses, so
/// the fields are counted from the last `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let after = &text[text.rfind(')')? + 1..];
    let mut fields = after.split_ascii_whitespace();
    // Fields from 3 (state): utime is 14, stime 15, rss 24.
    let state = fields.next()?.chars().next()?;
    let mut rest = fields.skip(10);
    let utime: u64 = rest.next()?.parse().ok()?;
    let stime: u64 = rest.next()?.parse().ok()?;
    let rss: i64 = rest.nth(8)?.parse().ok()?;
    Some(Stat {
        state,
        ticks: utime.saturating_add(stime),
        resident_pages: u64::try_from(rss).unwrap_or(0),
    })
}

/// The real uid from `/proc/<pid>/status`.
fn parse_uid(text: &str) -> Option<u32> {
    let line = text.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    line.split_ascii_whitespace().next()?.parse().ok()
}

/// uid → name from a passwd file; empty (names shown as numbers) when unreadable.
fn read_passwd(path: &Path) -> HashMap<u32, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read the user names; processes show uids");
            return HashMap::new();
        }
    };
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let uid = fields.nth(1)?.parse().ok()?;
            Some((uid, name.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::proc_file::testing::{fixtures, skips};
    use super::*;

    fn options(root: PathBuf, top_n: usize) -> ProcessScanOptions {
        ProcessScanOptions {
            passwd: fixtures().join("../passwd"),
            root,
            top_n,
            page_bytes: 4096,
            ticks_per_sec: 100,
        }
    }

    #[test]
    fn stat_is_read_past_a_name_with_spaces_and_parentheses() {
        let stat = parse_stat(
            "42 (a) b (c) R 1 1 1 0 -1 0 0 0 0 0 150 50 0 0 20 0 1 0 100 2000 300 18446744073709551615\n",
        )
        .expect("parses");
        assert_eq!(
            stat,
            Stat {
                state: 'R',
                ticks: 200,
                resident_pages: 300
            }
        );
        assert_eq!(parse_stat("42 (x) R 1 2"), None);
    }

    #[test]
    fn top_lists_from_the_fixture_table() {
        // The fixture table: 1 (init), 300 (postgres), 4242 (a hostile name), 77 (a kernel
        // thread); processes.later is the same table 5 s on.
        let mut skips = skips();
        let mut scan = ProcessScan::new(options(fixtures().join("processes"), 2), &mut skips);
        scan.options.root = fixtures().join("processes.later");
        let table = scan
            .scan(Duration::from_secs(5), &mut skips)
            .expect("a table");
        assert_eq!(table.total_count, 4);
        assert_eq!(table.running_count, 2);
        let cpu: Vec<(u32, f32)> = table
            .top_by_cpu
            .iter()
            .map(|p| (p.pid, p.cpu_percent))
            .collect();
        // 4242 used 750 ticks (7.5 s of CPU) in 5 s: 150 % of a core; 300 used 50 ticks.
        assert_eq!(cpu, [(4242, 150.0), (300, 10.0)]);
        let hostile = &table.top_by_cpu[0];
        assert_eq!(hostile.name, "<img src=x onerror=\"alert(1)\">\u{7}'");
        assert_eq!(hostile.user, "mallory");
        let memory: Vec<(u32, u64, &str)> = table
            .top_by_memory
            .iter()
            .map(|p| (p.pid, p.resident_bytes, p.user.as_str()))
            .collect();
        assert_eq!(
            memory,
            [
                (300, 25_000 * 4096, "postgres"),
                (4242, 1_000 * 4096, "mallory")
            ]
        );
        assert_eq!(skips.count("processes"), 0);
    }

    #[test]
    fn a_reused_pid_and_an_unknown_uid_give_no_made_up_figures() {
        let mut skips = skips();
        // Scanned first at the later table, then the earlier: every counter went back, as for
        // a pid reused by a new process.
        let mut scan = ProcessScan::new(options(fixtures().join("processes.later"), 4), &mut skips);
        scan.options.root = fixtures().join("processes");
        let table = scan
            .scan(Duration::from_secs(5), &mut skips)
            .expect("a table");
        assert!(
            table.top_by_cpu.iter().all(|p| p.cpu_percent == 0.0),
            "{table:?}"
        );
        scan.options.passwd = PathBuf::from("/nonexistent/passwd");
        scan.users = None;
        let table = scan
            .scan(Duration::from_secs(5), &mut skips)
            .expect("a table");
        let init = table.top_by_cpu.iter().find(|p| p.pid == 1).expect("init");
        assert_eq!(init.user, "0", "no passwd: the uid as text");
    }

    #[test]
    fn an_unlistable_root_is_counted() {
        let mut skips = skips();
        let mut scan = ProcessScan::new(options(PathBuf::from("/nonexistent-proc"), 3), &mut skips);
        assert_eq!(scan.scan(Duration::from_secs(5), &mut skips), None);
        assert_eq!(skips.count("processes"), 2);
    }

    #[test]
    fn this_hosts_processes_are_listed_with_this_test_among_them() {
        let mut skips = skips();
        let mut live = options(PathBuf::from("/proc"), 10_000);
        live.passwd = PathBuf::from("/etc/passwd");
        let mut scan = ProcessScan::new(live, &mut skips);
        let table = scan
            .scan(Duration::from_secs(1), &mut skips)
            .expect("this host's table");
        // A process counts as running by its main thread, which here waits for the tests.
        assert!(table.running_count <= table.total_count);
        let me = table
            .top_by_memory
            .iter()
            .find(|p| p.pid == std::process::id())
            .expect("this test process is listed");
        assert!(me.resident_bytes > 0);
        assert!(!me.name.is_empty());
        assert!(!me.user.is_empty());
        // Every process is listed, less those that exited between the count and the read of
        // their name (a busy build starts and ends several per millisecond).
        let listed = table.top_by_memory.len() as u32;
        assert!(
            listed <= table.total_count && listed >= table.total_count / 2,
            "{listed} listed of {} counted",
            table.total_count
        );
    }
}
