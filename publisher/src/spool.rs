//! The outbox on disk (`OUTBOX_DIR`): readings waiting for the broker survive a crash or a
//! SIGKILL, and sequence numbers go on increasing across runs.
//!
//! `outbox.log` is append-only. A record is `[length u32 LE][crc32 u32 LE][kind u8][body]`,
//! the length and checksum covering kind and body: kind 0 is a reading (its JSON), kind 1
//! says that the reading with a sequence number (u64 LE) is gone (confirmed by the broker, or
//! dropped because the outbox was full). When nothing waits the file is truncated to empty,
//! and when it holds much more than what waits it is rewritten (to a new file, synced, then
//! renamed over the old one), so a crash at any instant leaves a readable file.
//!
//! fsync policy: a reading's record is synced (`fdatasync`) before the outbox says "queued";
//! "gone" records and truncation are not, so a crash may send a confirmed reading once more,
//! which readers drop by its `message_id` (host:seq).
//!
//! `next_seq` holds a ceiling for sequence numbers, raised [`SEQ_BLOCK`] at a time (one synced
//! write per block, not one per reading): a new run starts at the ceiling, above every number
//! a previous run can have used, even for readings that never went through the outbox.

use shared::reading::Reading;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Sequence numbers reserved per synced write of `next_seq`.
pub const SEQ_BLOCK: u64 = 1000;

/// A record longer than this is taken for corruption (a reading is a few KiB).
const MAX_RECORD: u32 = 16 << 20;

/// The log is rewritten when it exceeds what waits by this much.
const COMPACT_SLACK: u64 = 4 << 20;

/// How often a failing disk is logged at most.
const FAILURE_LOG_EVERY: Duration = Duration::from_secs(60);

const KIND_READING: u8 = 0;
const KIND_GONE: u8 = 1;
const LOG: &str = "outbox.log";
const SEQ: &str = "next_seq";

/// Why the outbox folder cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("OUTBOX_DIR {dir}: {what}: {source}")]
pub struct SpoolError {
    dir: String,
    what: &'static str,
    source: std::io::Error,
}

/// What a previous run left on disk.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Readings that were never confirmed, in `seq` order.
    pub readings: Vec<Reading>,
    /// The first sequence number this run may use.
    pub next_seq: u64,
    /// Bytes at the end of the file that were not a whole, valid record (a crash mid-write,
    /// or corruption); they were reported and cut off.
    pub discarded_bytes: u64,
}

/// The open outbox folder.
pub struct Spool {
    dir: PathBuf,
    log: File,
    log_bytes: u64,
    /// The size of the last reading's record, to estimate what waits.
    record_bytes: u64,
    seq_ceiling: u64,
    last_failure_log: Option<Instant>,
}

impl Spool {
    /// Opens (creating) the folder, reads what a previous run left, and starts a clean log
    /// holding just that. Fails if the folder cannot be written.
    pub fn open(dir: &Path) -> Result<(Self, Loaded), SpoolError> {
        let fail = |what, source| SpoolError {
            dir: dir.display().to_string(),
            what,
            source,
        };
        // Readings name processes, users and mounts: the folder and its files are private.
        shared::private_files::create_dir(dir, "OUTBOX_DIR")
            .map_err(|e| fail("cannot create it", e))?;
        let mut bytes = Vec::new();
        match File::open(dir.join(LOG)) {
            Ok(mut file) => {
                file.read_to_end(&mut bytes)
                    .map_err(|e| fail("cannot read outbox.log", e))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(fail("cannot read outbox.log", e)),
        }
        let (mut readings, good) = parse(&bytes);
        let discarded_bytes = (bytes.len() - good) as u64;
        if discarded_bytes > 0 {
            tracing::warn!(
                file = %dir.join(LOG).display(),
                kept = readings.len(),
                discarded_bytes,
                at_byte = good,
                "the outbox file ends in a broken or partial record (a crash mid-write?): kept every whole record before it"
            );
        }
        readings.sort_by_key(|r| r.seq);
        let stored_ceiling = read_ceiling(&dir.join(SEQ));
        let after_spooled = readings.last().map_or(1, |r| r.seq + 1);
        let next_seq = stored_ceiling.unwrap_or(1).max(after_spooled);
        let mut spool = Self {
            dir: dir.to_path_buf(),
            // Replaced by the rewrite below; opening it now also proves the folder writable.
            log: shared::private_files::file_options()
                .create(true)
                .append(true)
                .open(dir.join(LOG))
                .map_err(|e| fail("cannot write outbox.log", e))?,
            log_bytes: 0,
            record_bytes: 0,
            seq_ceiling: 0,
            last_failure_log: None,
        };
        spool
            .rewrite(readings.iter())
            .map_err(|e| fail("cannot write outbox.log", e))?;
        spool
            .raise_ceiling(next_seq)
            .map_err(|e| fail("cannot write next_seq", e))?;
        Ok((
            spool,
            Loaded {
                readings,
                next_seq,
                discarded_bytes,
            },
        ))
    }

    /// Appends a reading and syncs it to disk.
    pub fn append(&mut self, reading: &Reading) -> std::io::Result<()> {
        let body = serde_json::to_vec(reading)?;
        let record = record(KIND_READING, &body);
        self.write(&record)?;
        self.log.sync_data()?;
        self.record_bytes = record.len() as u64;
        Ok(())
    }

    /// Notes that reading `seq` is gone; `waiting` are the readings still in the outbox, so
    /// the file can be emptied or rewritten when it holds much more than them.
    pub fn remove<'a>(
        &mut self,
        seq: u64,
        waiting: impl ExactSizeIterator<Item = &'a Reading>,
    ) -> std::io::Result<()> {
        if waiting.len() == 0 {
            self.log.set_len(0)?;
            self.log_bytes = 0;
            return Ok(());
        }
        let estimate = waiting.len() as u64 * self.record_bytes.max(1);
        if self.log_bytes > estimate.saturating_mul(2) + COMPACT_SLACK {
            return self.rewrite(waiting);
        }
        self.write(&record(KIND_GONE, &seq.to_le_bytes()))
    }

    /// Makes sure sequence numbers up to `seq` are below the stored ceiling.
    pub fn reserve(&mut self, seq: u64) -> std::io::Result<()> {
        if seq < self.seq_ceiling {
            return Ok(());
        }
        self.raise_ceiling(seq)
    }

    /// Logs a disk failure at most once a minute (the caller counts every one).
    pub fn log_failure(&mut self, what: &str, error: &std::io::Error) {
        let due = self
            .last_failure_log
            .is_none_or(|at| at.elapsed() >= FAILURE_LOG_EVERY);
        if due {
            self.last_failure_log = Some(Instant::now());
            tracing::error!(
                dir = %self.dir.display(),
                error = %error,
                "cannot {what} the outbox on disk: readings are kept in memory only (counted in hostpulse_outbox_spool_failures_total; logged once a minute)"
            );
        }
    }

    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if let Err(e) = self.log.write_all(bytes) {
            // A partial record at the end would hide every later one: cut it off.
            let _ = self.log.set_len(self.log_bytes);
            return Err(e);
        }
        self.log_bytes += bytes.len() as u64;
        Ok(())
    }

    /// Replaces the log by one holding just `readings`: written aside, synced, renamed.
    fn rewrite<'a>(&mut self, readings: impl Iterator<Item = &'a Reading>) -> std::io::Result<()> {
        let fresh = self.dir.join("outbox.log.new");
        let mut bytes = Vec::new();
        for reading in readings {
            let record = record(KIND_READING, &serde_json::to_vec(reading)?);
            self.record_bytes = record.len() as u64;
            bytes.extend_from_slice(&record);
        }
        let mut file = create_private(&fresh)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        std::fs::rename(&fresh, self.dir.join(LOG))?;
        sync_dir(&self.dir)?;
        self.log = OpenOptions::new().append(true).open(self.dir.join(LOG))?;
        self.log_bytes = bytes.len() as u64;
        Ok(())
    }

    fn raise_ceiling(&mut self, seq: u64) -> std::io::Result<()> {
        let ceiling = seq.saturating_add(SEQ_BLOCK);
        let fresh = self.dir.join("next_seq.new");
        let mut file = create_private(&fresh)?;
        writeln!(file, "{ceiling}")?;
        file.sync_all()?;
        std::fs::rename(&fresh, self.dir.join(SEQ))?;
        sync_dir(&self.dir)?;
        self.seq_ceiling = ceiling;
        Ok(())
    }
}

/// Creates (or empties) a file readable by its owner only.
fn create_private(path: &Path) -> std::io::Result<File> {
    shared::private_files::file_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
}

/// A folder's entry list reaches the disk only when the folder itself is synced.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

fn read_ceiling(path: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let ceiling = text.trim().parse().ok();
    if ceiling.is_none() {
        tracing::warn!(file = %path.display(), "unreadable; sequence numbers go on from the outbox's");
    }
    ceiling
}

fn record(kind: u8, body: &[u8]) -> Vec<u8> {
    let length = u32::try_from(body.len() + 1).unwrap_or(u32::MAX);
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&[kind]);
    hasher.update(body);
    let mut record = Vec::with_capacity(body.len() + 9);
    record.extend_from_slice(&length.to_le_bytes());
    record.extend_from_slice(&hasher.finalize().to_le_bytes());
    record.push(kind);
    record.extend_from_slice(body);
    record
}

/// The readings still waiting, and how many bytes from the start were whole, valid records.
fn parse(bytes: &[u8]) -> (Vec<Reading>, usize) {
    let mut readings: Vec<Reading> = Vec::new();
    let mut at = 0;
    while let Some(header) = bytes.get(at..at + 8) {
        let length = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if length == 0 || length > MAX_RECORD {
            break;
        }
        let Some(payload) = bytes.get(at + 8..at + 8 + length as usize) else {
            break;
        };
        if crc32fast::hash(payload) != crc {
            break;
        }
        let (kind, body) = (payload[0], &payload[1..]);
        match kind {
            KIND_READING => match serde_json::from_slice::<Reading>(body) {
                Ok(reading) => readings.push(reading),
                Err(_) => break,
            },
            KIND_GONE => {
                let Ok(seq) = <[u8; 8]>::try_from(body).map(u64::from_le_bytes) else {
                    break;
                };
                readings.retain(|r| r.seq != seq);
            }
            _ => break,
        }
        at += 8 + length as usize;
    }
    (readings, at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(seq: u64) -> Reading {
        let mut r: Reading =
            serde_json::from_str(include_str!("../../consumer/tests/fixtures/reading.json"))
                .expect("fixture");
        r.seq = seq;
        r
    }

    /// A fresh folder; in memory where there is a tmpfs, as thousands of opens sync there.
    fn folder(test: &str) -> PathBuf {
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!(
            "hostpulse-spool-{test}-{}-{}",
            std::process::id(),
            rand_suffix()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn rand_suffix() -> u128 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    }

    fn seqs(loaded: &Loaded) -> Vec<u64> {
        loaded.readings.iter().map(|r| r.seq).collect()
    }

    #[test]
    fn what_waits_survives_a_restart_and_seq_goes_on_above_it() {
        let dir = folder("restart");
        let (mut spool, loaded) = Spool::open(&dir).expect("opens");
        assert!(loaded.readings.is_empty());
        assert_eq!(loaded.next_seq, 1);
        for seq in 1..=4 {
            spool.append(&reading(seq)).expect("appended");
        }
        let waiting = [reading(2), reading(3), reading(4)];
        spool.remove(1, waiting.iter()).expect("noted");
        drop(spool);
        let (_spool, loaded) = Spool::open(&dir).expect("reopens");
        assert_eq!(seqs(&loaded), [2, 3, 4]);
        assert!(loaded.next_seq > 4, "no seq used twice");
        assert_eq!(loaded.discarded_bytes, 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_new_run_starts_above_every_seq_handed_out_even_without_waiting_readings() {
        let dir = folder("ceiling");
        let (mut spool, loaded) = Spool::open(&dir).expect("opens");
        // Published directly, never spooled: only the reservation knows of them.
        for seq in loaded.next_seq..loaded.next_seq + SEQ_BLOCK + 5 {
            spool.reserve(seq).expect("reserved");
        }
        drop(spool);
        let (_spool, again) = Spool::open(&dir).expect("reopens");
        assert!(again.next_seq >= SEQ_BLOCK + 6, "{}", again.next_seq);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_empty_outbox_empties_the_file() {
        let dir = folder("empty");
        let (mut spool, _) = Spool::open(&dir).expect("opens");
        spool.append(&reading(1)).expect("appended");
        spool.remove(1, [].iter()).expect("noted");
        assert_eq!(
            std::fs::metadata(dir.join(LOG)).map(|m| m.len()).ok(),
            Some(0)
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_log_cut_at_any_byte_keeps_every_whole_record_before_the_cut() {
        let dir = folder("cut");
        let (mut spool, _) = Spool::open(&dir).expect("opens");
        let mut ends = Vec::new();
        for seq in 1..=3 {
            spool.append(&reading(seq)).expect("appended");
            ends.push(spool.log_bytes as usize);
        }
        spool
            .remove(2, [reading(1), reading(3)].iter())
            .expect("noted");
        ends.push(spool.log_bytes as usize);
        drop(spool);
        let whole = std::fs::read(dir.join(LOG)).expect("the log");
        assert_eq!(whole.len(), *ends.last().expect("records"));
        for cut in 0..=whole.len() {
            std::fs::write(dir.join(LOG), &whole[..cut]).expect("cut");
            let (_spool, loaded) = Spool::open(&dir).expect("starts whatever the cut");
            let complete = ends.iter().filter(|&&end| end <= cut).count();
            let expected: &[u64] = match complete {
                0 => &[],
                1 => &[1],
                2 => &[1, 2],
                3 => &[1, 2, 3],
                _ => &[1, 3],
            };
            assert_eq!(seqs(&loaded), expected, "cut at byte {cut}");
            let last_end = ends
                .iter()
                .copied()
                .filter(|&end| end <= cut)
                .max()
                .unwrap_or(0);
            assert_eq!(
                loaded.discarded_bytes as usize,
                cut - last_end,
                "cut at {cut}"
            );
            // The broken tail was cut off: the file now holds just the kept readings.
            drop(_spool);
            let (_spool, reread) = Spool::open(&dir).expect("reopens");
            assert_eq!(seqs(&reread), expected);
            assert_eq!(reread.discarded_bytes, 0);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_corrupt_byte_keeps_the_records_before_it() {
        let dir = folder("corrupt");
        let (mut spool, _) = Spool::open(&dir).expect("opens");
        spool.append(&reading(1)).expect("appended");
        let first_end = spool.log_bytes as usize;
        spool.append(&reading(2)).expect("appended");
        spool.append(&reading(3)).expect("appended");
        drop(spool);
        let mut bytes = std::fs::read(dir.join(LOG)).expect("the log");
        bytes[first_end + 20] ^= 0x55;
        std::fs::write(dir.join(LOG), &bytes).expect("corrupted");
        let (_spool, loaded) = Spool::open(&dir).expect("the service still starts");
        assert_eq!(seqs(&loaded), [1]);
        assert_eq!(loaded.discarded_bytes as usize, bytes.len() - first_end);
        assert!(
            loaded.next_seq > 3,
            "seq numbers are not reused: {}",
            loaded.next_seq
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_folder_that_cannot_be_created_is_a_clear_error() {
        let blocker = folder("blocker");
        std::fs::write(&blocker, b"a file, not a folder").expect("written");
        let err = Spool::open(&blocker.join("outbox")).err().expect("refused");
        let text = err.to_string();
        assert!(text.starts_with("OUTBOX_DIR "), "{text}");
        assert!(text.contains("cannot create it"), "{text}");
        let _ = std::fs::remove_file(&blocker);
    }
}
