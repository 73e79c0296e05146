//! Swap traffic from `/proc/vmstat`: pages swapped in and out per second.

use super::proc_file::{per_sec, ProcFile, Skips};
use std::path::Path;
use std::time::Duration;

/// Keeps the previous `pswpin` and `pswpout` to turn them into rates.
pub(super) struct VmStat {
    file: ProcFile,
    page_bytes: u64,
    previous: Option<(u64, u64)>,
}

impl VmStat {
    /// Reads `<root>/vmstat` once, as the baseline; `page_bytes` is the system's page size.
    pub(super) fn new(root: &Path, page_bytes: u64, skips: &mut Skips) -> Self {
        let mut vmstat = Self {
            file: ProcFile::new(root, "vmstat"),
            page_bytes,
            previous: None,
        };
        vmstat.previous = vmstat.pages(skips);
        vmstat
    }

    fn pages(&mut self, skips: &mut Skips) -> Option<(u64, u64)> {
        let pages = match self.file.read() {
            Ok(text) => parse(text),
            Err(e) => {
                let path = self.file.path().display().to_string();
                skips.skip("vmstat", format_args!("cannot read {path}: {e}"));
                return None;
            }
        };
        if pages.is_none() {
            skips.skip("vmstat", format_args!("/proc/vmstat has no pswpin/pswpout"));
        }
        pages
    }

    /// Bytes swapped in and out per second over `elapsed`; `None` (counted) when unreadable
    /// or a counter went back.
    pub(super) fn read(&mut self, elapsed: Duration, skips: &mut Skips) -> Option<(u64, u64)> {
        let now = self.pages(skips)?;
        let before = self.previous.replace(now)?;
        let rate = |now, before| {
            per_sec(now, before, elapsed).map(|r| (r * self.page_bytes as f64).round() as u64)
        };
        let rates = rate(now.0, before.0).zip(rate(now.1, before.1));
        if rates.is_none() {
            skips.skip("vmstat", format_args!("a swap counter went back"));
        }
        rates
    }
}

/// `pswpin` and `pswpout`, in pages since boot.
fn parse(text: &str) -> Option<(u64, u64)> {
    let (mut swapped_in, mut swapped_out) = (None, None);
    for line in text.lines() {
        if let Some(n) = line.strip_prefix("pswpin ") {
            swapped_in = n.trim().parse().ok();
        } else if let Some(n) = line.strip_prefix("pswpout ") {
            swapped_out = n.trim().parse().ok();
        }
    }
    swapped_in.zip(swapped_out)
}

#[cfg(test)]
mod tests {
    use super::super::proc_file::testing::{fixtures, skips};
    use super::*;

    #[test]
    fn swap_rates_are_bytes_per_second_and_a_reset_is_counted() {
        let mut skips = skips();
        let mut vmstat = VmStat::new(&fixtures(), 4096, &mut skips);
        assert_eq!(vmstat.previous, Some((0, 0)), "this machine never swapped");
        // vmstat.swapping: 200 pages in and 50 out since.
        vmstat.file = ProcFile::new(&fixtures(), "vmstat.swapping");
        assert_eq!(
            vmstat.read(Duration::from_secs(2), &mut skips),
            Some((100 * 4096, 25 * 4096))
        );
        // Back to the original counters: they went back, as after a reboot.
        vmstat.file = ProcFile::new(&fixtures(), "vmstat");
        assert_eq!(vmstat.read(Duration::from_secs(1), &mut skips), None);
        assert_eq!(skips.count("vmstat"), 1);
        assert_eq!(
            vmstat.read(Duration::from_secs(1), &mut skips),
            Some((0, 0))
        );
    }

    #[test]
    fn this_hosts_swap_counters_are_read() {
        let mut skips = skips();
        let mut vmstat = VmStat::new(Path::new("/proc"), 4096, &mut skips);
        assert!(vmstat.read(Duration::from_secs(1), &mut skips).is_some());
        assert_eq!(skips.count("vmstat"), 0);
    }
}
