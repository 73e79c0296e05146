//! Whole block devices' activity from `/proc/diskstats`: bytes and operations per second and
//! the share of time busy, since the previous sample.
//!
//! Left out: partitions (their disk already counts their I/O) and virtual devices (`loop`,
//! `ram`, `zram`, device-mapper `dm-`, software RAID `md`, `nbd`, optical `sr`, floppy `fd`),
//! whose I/O is either not the disk's or counted twice (a `dm-0` on `sda`).

use super::proc_file::{per_sec, round2, ProcFile, Skips};
use shared::reading::{round_percent, BlockDevice};
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

/// `/proc/diskstats` counts sectors of 512 bytes whatever the device's own sector size.
const SECTOR_BYTES: u64 = 512;

/// Name prefixes of devices that are not disks of their own.
const VIRTUAL: [&str; 8] = ["loop", "ram", "zram", "dm-", "md", "nbd", "sr", "fd"];

/// The counters this module uses, for one device.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Counters {
    reads: u64,
    sectors_read: u64,
    writes: u64,
    sectors_written: u64,
    /// Milliseconds with I/O in flight.
    io_ms: u64,
}

/// Keeps each device's counters between samples.
pub(super) struct DiskStats {
    file: ProcFile,
    previous: HashMap<String, Counters>,
    current: HashMap<String, Counters>,
}

impl DiskStats {
    /// Reads `<root>/diskstats` once, as the baseline.
    pub(super) fn new(root: &Path, skips: &mut Skips) -> Self {
        let mut stats = Self {
            file: ProcFile::new(root, "diskstats"),
            previous: HashMap::new(),
            current: HashMap::new(),
        };
        stats.load(skips);
        std::mem::swap(&mut stats.previous, &mut stats.current);
        stats
    }

    /// Fills `current`; false (counted) if the file could not be read.
    fn load(&mut self, skips: &mut Skips) -> bool {
        self.current.clear();
        match self.file.read() {
            Ok(text) => {
                parse(text, &mut self.current);
                true
            }
            Err(e) => {
                let path = self.file.path().display().to_string();
                skips.skip("diskstats", format_args!("cannot read {path}: {e}"));
                false
            }
        }
    }

    /// Every whole device's activity over `elapsed`, sorted by name. A device seen for the
    /// first time has no rate yet; one whose counters went back (reset, re-plugged) or that
    /// vanished since the previous sample is left out and counted.
    pub(super) fn read(&mut self, elapsed: Duration, skips: &mut Skips) -> Vec<BlockDevice> {
        if !self.load(skips) {
            return Vec::new();
        }
        for name in self.previous.keys() {
            if !self.current.contains_key(name) {
                skips.skip("diskstats", format_args!("device {name} is gone"));
            }
        }
        let mut list = Vec::with_capacity(self.current.len());
        for (name, now) in &self.current {
            let Some(before) = self.previous.get(name) else {
                continue;
            };
            match device(name, now, before, elapsed) {
                Some(device) => list.push(device),
                None => skips.skip(
                    "diskstats",
                    format_args!("the counters of {name} went back (reset or re-plugged)"),
                ),
            }
        }
        std::mem::swap(&mut self.previous, &mut self.current);
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }
}

/// Whole, real devices' counters into `into`; malformed lines are ignored.
fn parse(text: &str, into: &mut HashMap<String, Counters>) {
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        let Some(name) = fields.nth(2) else { continue };
        if VIRTUAL.iter().any(|prefix| name.starts_with(prefix)) {
            continue;
        }
        // Fields after the name, from 0: reads, merged, sectors read, ms reading, writes,
        // merged, sectors written, ms writing, in flight, ms doing I/O.
        let numbers: Vec<u64> = fields.take(10).map_while(|f| f.parse().ok()).collect();
        if numbers.len() < 10 {
            continue;
        }
        into.insert(
            name.to_owned(),
            Counters {
                reads: numbers[0],
                sectors_read: numbers[2],
                writes: numbers[4],
                sectors_written: numbers[6],
                io_ms: numbers[9],
            },
        );
    }
    // A partition's name is its disk's plus a number (`sda1`, `vda2`) or `p` and a number
    // (`nvme0n1p1`, `mmcblk0p1`).
    let partitions: Vec<String> = into
        .keys()
        .filter(|name| {
            into.keys().any(|disk| {
                name.strip_prefix(disk.as_str()).is_some_and(|rest| {
                    let number = rest.strip_prefix('p').unwrap_or(rest);
                    !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit())
                })
            })
        })
        .cloned()
        .collect();
    for partition in partitions {
        into.remove(&partition);
    }
}

/// One device's rates, or `None` when a counter went back.
fn device(name: &str, now: &Counters, before: &Counters, elapsed: Duration) -> Option<BlockDevice> {
    let bytes = |now: u64, before: u64| {
        per_sec(now, before, elapsed).map(|r| (r * SECTOR_BYTES as f64).round() as u64)
    };
    let busy_ms = per_sec(now.io_ms, before.io_ms, elapsed)?;
    Some(BlockDevice {
        name: name.to_owned(),
        read_bytes_per_sec: bytes(now.sectors_read, before.sectors_read)?,
        write_bytes_per_sec: bytes(now.sectors_written, before.sectors_written)?,
        reads_per_sec: round2(per_sec(now.reads, before.reads, elapsed)?),
        writes_per_sec: round2(per_sec(now.writes, before.writes, elapsed)?),
        // Milliseconds busy per second, as a share; a sample's edges can make it a hair over.
        busy_percent: round_percent((busy_ms / 10.0) as f32),
    })
}

#[cfg(test)]
mod tests {
    use super::super::proc_file::testing::{fixtures, skips};
    use super::*;

    #[test]
    fn whole_real_disks_only_with_rates_from_two_samples() {
        let mut skips = skips();
        // diskstats as captured here; diskstats.later is the same 2 s on, with vda busy.
        let mut stats = DiskStats::new(&fixtures(), &mut skips);
        assert_eq!(
            stats.previous.keys().collect::<Vec<_>>(),
            ["vda"],
            "loop and zram left out"
        );
        stats.file = ProcFile::new(&fixtures(), "diskstats.later");
        let list = stats.read(Duration::from_secs(2), &mut skips);
        let names: Vec<&str> = list.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(
            names,
            ["vda"],
            "partitions vda1, nvme0n1p1 left out; nvme0n1 new"
        );
        let vda = &list[0];
        assert_eq!(vda.reads_per_sec, 50.0);
        assert_eq!(vda.read_bytes_per_sec, 1_000 * 512);
        assert_eq!(vda.writes_per_sec, 10.5);
        assert_eq!(vda.write_bytes_per_sec, 2_048 * 512);
        assert_eq!(vda.busy_percent, 25.0);
        assert_eq!(skips.count("diskstats"), 0);
        // The next sample also rates nvme0n1, which was new.
        stats.file = ProcFile::new(&fixtures(), "diskstats.later");
        let again = stats.read(Duration::from_secs(1), &mut skips);
        let names: Vec<&str> = again.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["nvme0n1", "vda"]);
        assert!(again.iter().all(|d| d.read_bytes_per_sec == 0));
    }

    #[test]
    fn a_reset_or_vanished_device_is_left_out_and_counted() {
        let mut skips = skips();
        let mut stats = DiskStats::new(&fixtures(), &mut skips);
        stats.file = ProcFile::new(&fixtures(), "diskstats.later");
        stats.read(Duration::from_secs(2), &mut skips);
        // diskstats.replugged: nvme0n1 is gone, vda's counters started again from small.
        stats.file = ProcFile::new(&fixtures(), "diskstats.replugged");
        let list = stats.read(Duration::from_secs(1), &mut skips);
        assert!(list.is_empty(), "no negative or absurd rate: {list:?}");
        assert_eq!(skips.count("diskstats"), 2, "one reset, one gone");
        // From there on vda is measured again.
        stats.file = ProcFile::new(&fixtures(), "diskstats.replugged");
        let list = stats.read(Duration::from_secs(1), &mut skips);
        assert_eq!(list.len(), 1);
    }

    #[test]
    fn this_hosts_disks_are_read() {
        let mut skips = skips();
        let mut stats = DiskStats::new(Path::new("/proc"), &mut skips);
        let list = stats.read(Duration::from_secs(1), &mut skips);
        let live = std::fs::read_to_string("/proc/diskstats").expect("readable here");
        assert!(list.iter().all(|d| live.contains(&format!(" {} ", d.name))));
        assert!(list.iter().all(|d| !d.name.starts_with("loop")));
        assert_eq!(skips.count("diskstats"), 0);
    }
}
