//! Where the CPU time went (`/proc/stat`'s first line): user, system, iowait, steal, irq,
//! softirq and idle shares since the previous sample.

use super::proc_file::{ProcFile, Skips};
use shared::reading::{round_percent, CpuTimeSplit};
use std::path::Path;

/// The `cpu` line's first eight counters, in clock ticks: user, nice, system, idle, iowait,
/// irq, softirq, steal. Guest time is already counted inside user and nice.
type Ticks = [u64; 8];

/// Keeps the previous counters to turn them into shares.
pub(super) struct CpuTimes {
    file: ProcFile,
    previous: Option<Ticks>,
}

impl CpuTimes {
    /// Reads `<root>/stat` once, as the baseline.
    pub(super) fn new(root: &Path, skips: &mut Skips) -> Self {
        let mut times = Self {
            file: ProcFile::new(root, "stat"),
            previous: None,
        };
        times.previous = times.ticks(skips);
        times
    }

    fn ticks(&mut self, skips: &mut Skips) -> Option<Ticks> {
        let parsed = match self.file.read() {
            Ok(text) => parse(text),
            Err(e) => {
                let path = self.file.path().display().to_string();
                skips.skip("cpu_times", format_args!("cannot read {path}: {e}"));
                return None;
            }
        };
        if parsed.is_none() {
            skips.skip("cpu_times", format_args!("no cpu line in /proc/stat"));
        }
        parsed
    }

    /// The shares since the previous call; `None` (counted) when the file could not be read or
    /// a counter went back.
    pub(super) fn read(&mut self, skips: &mut Skips) -> Option<CpuTimeSplit> {
        let now = self.ticks(skips)?;
        let before = self.previous.replace(now)?;
        let split = split(&now, &before);
        if split.is_none() && now.iter().zip(&before).any(|(n, b)| n < b) {
            skips.skip("cpu_times", format_args!("a CPU time counter went back"));
        }
        split
    }
}

/// The `cpu` line's counters; kernels before 2.6.11 lack steal, which is then 0.
fn parse(text: &str) -> Option<Ticks> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let mut ticks = [0; 8];
    let mut fields = line.split_ascii_whitespace().skip(1);
    for (at, slot) in ticks.iter_mut().enumerate() {
        match fields.next().map(str::parse) {
            Some(Ok(value)) => *slot = value,
            // user, nice, system and idle are always there.
            None if at >= 4 => break,
            _ => return None,
        }
    }
    Some(ticks)
}

/// Shares of the time between two readings of the counters; `None` when a counter went back
/// or no time passed.
fn split(now: &Ticks, before: &Ticks) -> Option<CpuTimeSplit> {
    let mut delta = [0u64; 8];
    for (d, (n, b)) in delta.iter_mut().zip(now.iter().zip(before)) {
        *d = n.checked_sub(*b)?;
    }
    let total: u64 = delta.iter().sum();
    if total == 0 {
        return None;
    }
    let share = |ticks: u64| round_percent((ticks as f64 / total as f64 * 100.0) as f32);
    let [user, nice, system, idle, iowait, irq, softirq, steal] = delta;
    Some(CpuTimeSplit {
        user_percent: share(user + nice),
        system_percent: share(system),
        iowait_percent: share(iowait),
        steal_percent: share(steal),
        irq_percent: share(irq),
        softirq_percent: share(softirq),
        idle_percent: share(idle),
    })
}

#[cfg(test)]
mod tests {
    use super::super::proc_file::testing::{fixtures, skips};
    use super::*;

    #[test]
    fn shares_come_from_the_difference_between_two_samples() {
        let fixture =
            std::fs::read_to_string(fixtures().join("stat")).expect("the captured /proc/stat");
        let before = parse(&fixture).expect("the cpu line of this machine");
        let mut now = before;
        // 1000 ticks: 500 user + 100 nice, 100 system, 200 iowait, 50 steal, 50 idle.
        for (at, add) in [(0, 500), (1, 100), (2, 100), (4, 200), (7, 50), (3, 50)] {
            now[at] += add;
        }
        let split = split(&now, &before).expect("time passed");
        assert_eq!(split.user_percent, 60.0, "nice counts as user");
        assert_eq!(split.system_percent, 10.0);
        assert_eq!(split.iowait_percent, 20.0);
        assert_eq!(split.steal_percent, 5.0);
        assert_eq!(split.idle_percent, 5.0);
        assert_eq!(split.irq_percent, 0.0);
    }

    #[test]
    fn a_counter_that_went_back_gives_no_split_and_is_counted() {
        let root = fixtures();
        let mut skips = skips();
        let mut times = CpuTimes::new(&root, &mut skips);
        // As if the host rebooted: every counter is now below the last sample.
        times.previous = times.previous.map(|t| t.map(|v| v + 1_000_000));
        assert_eq!(times.read(&mut skips), None);
        assert_eq!(skips.count("cpu_times"), 1);
        // The next sample measures from the new counters again.
        times.previous = times.previous.map(|t| t.map(|v| v.saturating_sub(100)));
        let split = times.read(&mut skips).expect("a split after the reset");
        assert!(split.idle_percent <= 100.0);
        assert_eq!(skips.count("cpu_times"), 1);
    }

    #[test]
    fn an_unreadable_file_is_counted() {
        let mut skips = skips();
        let mut times = CpuTimes::new(Path::new("/nonexistent-proc"), &mut skips);
        assert_eq!(times.read(&mut skips), None);
        assert_eq!(skips.count("cpu_times"), 2, "at start and at the sample");
    }

    #[test]
    fn old_kernels_without_steal_are_read() {
        let ticks = parse("cpu  10 20 30 40 50\ncpu0 1 2 3 4 5\n").expect("parses");
        assert_eq!(ticks, [10, 20, 30, 40, 50, 0, 0, 0]);
        assert_eq!(parse("cpu  10 x 30 40\n"), None);
    }

    #[test]
    fn this_hosts_split_since_boot_adds_up_to_about_100() {
        let mut skips = skips();
        let mut times = CpuTimes::new(Path::new("/proc"), &mut skips);
        let now = times.ticks(&mut skips).expect("this host's /proc/stat");
        // Since boot: the same arithmetic over the whole uptime, so no waiting is needed.
        let split = split(&now, &[0; 8]).expect("the host has run");
        let sum = split.user_percent
            + split.system_percent
            + split.iowait_percent
            + split.steal_percent
            + split.irq_percent
            + split.softirq_percent
            + split.idle_percent;
        assert!((99.0..=101.0).contains(&sum), "{split:?}");
        assert_eq!(skips.count("cpu_times"), 0);
    }
}
