//! Memory from `/proc/meminfo`: used, cached and buffers, available, and swap.

use super::proc_file::{ProcFile, Skips};
use shared::reading::{percent_of, Memory};
use std::path::Path;

/// Reads `<root>/meminfo` into a buffer kept between samples.
pub(super) struct MemInfo {
    file: ProcFile,
}

impl MemInfo {
    /// Reads from `<root>/meminfo`.
    pub(super) fn new(root: &Path) -> Self {
        Self {
            file: ProcFile::new(root, "meminfo"),
        }
    }

    /// The memory section of a reading, without swap rates (see `vmstat`); `None` (counted)
    /// when the file cannot be read or lacks `MemTotal`.
    pub(super) fn read(&mut self, skips: &mut Skips) -> Option<Memory> {
        let memory = match self.file.read() {
            Ok(text) => parse(text),
            Err(e) => {
                let path = self.file.path().display().to_string();
                skips.skip("meminfo", format_args!("cannot read {path}: {e}"));
                return None;
            }
        };
        if memory.is_none() {
            skips.skip("meminfo", format_args!("/proc/meminfo has no MemTotal"));
        }
        memory
    }
}

/// The figures of `/proc/meminfo` (in KiB there).
fn parse(text: &str) -> Option<Memory> {
    let mut total = None;
    let (mut available, mut free, mut cached, mut buffers) = (None, 0, 0, 0);
    let (mut swap_total, mut swap_free) = (0, 0);
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let Some(kib) = rest
            .split_ascii_whitespace()
            .next()
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        let bytes = kib.saturating_mul(1024);
        match key {
            "MemTotal" => total = Some(bytes),
            "MemFree" => free = bytes,
            "MemAvailable" => available = Some(bytes),
            "Buffers" => buffers = bytes,
            "Cached" => cached = bytes,
            "SwapTotal" => swap_total = bytes,
            "SwapFree" => swap_free = bytes,
            _ => {}
        }
    }
    let total = total?;
    // Kernels before 3.14 have no MemAvailable: free plus what caches hold is the estimate.
    let available = available.unwrap_or(free + cached + buffers).min(total);
    // "Used" as people mean it: what is not available to new programs (caches excluded).
    let used = total - available;
    Some(Memory {
        total_bytes: total,
        used_bytes: used,
        available_bytes: available,
        usage_percent: percent_of(used, total),
        swap_total_bytes: swap_total,
        swap_used_bytes: swap_total.saturating_sub(swap_free),
        cached_buffers_bytes: Some(cached + buffers),
        swap_in_bytes_per_sec: None,
        swap_out_bytes_per_sec: None,
    })
}

#[cfg(test)]
mod tests {
    use super::super::proc_file::testing::{fixtures, skips};
    use super::*;

    #[test]
    fn the_captured_meminfo_splits_used_cached_and_available() {
        let mut skips = skips();
        let memory = MemInfo::new(&fixtures())
            .read(&mut skips)
            .expect("the captured /proc/meminfo");
        let text = std::fs::read_to_string(fixtures().join("meminfo")).expect("fixture");
        let kib = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|r| r.trim_start_matches(':').split_whitespace().next())
                .and_then(|n| n.parse::<u64>().ok())
                .expect("field present")
                * 1024
        };
        assert_eq!(memory.total_bytes, kib("MemTotal"));
        assert_eq!(memory.available_bytes, kib("MemAvailable"));
        assert_eq!(memory.used_bytes, kib("MemTotal") - kib("MemAvailable"));
        assert_eq!(
            memory.cached_buffers_bytes,
            Some(kib("Cached") + kib("Buffers"))
        );
        assert_eq!(skips.count("meminfo"), 0);
    }

    #[test]
    fn old_kernels_and_broken_files() {
        let old = "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 50 kB\nCached: 250 kB\n";
        let memory = parse(old).expect("parses");
        assert_eq!(memory.available_bytes, 400 * 1024);
        assert_eq!(memory.usage_percent, 60.0);
        assert_eq!(parse("garbage\n"), None);
        let mut skips = skips();
        assert_eq!(
            MemInfo::new(Path::new("/nonexistent-proc")).read(&mut skips),
            None
        );
        assert_eq!(skips.count("meminfo"), 1);
    }

    #[test]
    fn this_hosts_memory_is_read() {
        let mut skips = skips();
        let memory = MemInfo::new(Path::new("/proc"))
            .read(&mut skips)
            .expect("this host's /proc/meminfo");
        assert!(memory.total_bytes > 0);
        assert!(memory.used_bytes + memory.available_bytes == memory.total_bytes);
        assert!(memory
            .cached_buffers_bytes
            .is_some_and(|c| c < memory.total_bytes));
    }
}
