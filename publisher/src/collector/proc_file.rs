//! One `/proc` file, read whole into a buffer kept between samples, and the count of what a
//! sample had to leave out.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A file under the proc root (`/proc`, or a fixture folder in tests), re-read on demand.
pub(super) struct ProcFile {
    path: PathBuf,
    text: String,
}

impl ProcFile {
    /// `relative` under `root`, such as `stat` or `net/dev`.
    pub(super) fn new(root: &Path, relative: &str) -> Self {
        Self {
            path: root.join(relative),
            text: String::new(),
        }
    }

    /// The file's current content; the buffer's capacity is kept, so a steady file costs no
    /// allocation after the first read.
    pub(super) fn read(&mut self) -> std::io::Result<&str> {
        self.text.clear();
        std::fs::File::open(&self.path)?.read_to_string(&mut self.text)?;
        Ok(&self.text)
    }

    /// Where the file is, for log lines.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }
}

/// Every `what` label of `hostpulse_collect_skipped_total`, exported at 0 from the start.
pub const SKIP_LABELS: [&str; 6] = [
    "cpu_times",
    "diskstats",
    "meminfo",
    "vmstat",
    "network",
    "processes",
];

/// How often a kind of skip is logged at most: a broken file would otherwise log every second.
const SKIP_LOG_EVERY: Duration = Duration::from_secs(60);

/// Counts items left out of a sample (a counter that went back, a device gone, a file that
/// could not be read), and logs each kind at most once a minute.
pub(super) struct Skips {
    counter: prometheus::IntCounterVec,
    last_logged: [Option<Instant>; SKIP_LABELS.len()],
}

impl Skips {
    /// Counts into `counter` (labelled `what`); sets every label to 0 so it is exported.
    pub(super) fn new(counter: prometheus::IntCounterVec) -> Self {
        for what in SKIP_LABELS {
            counter.with_label_values(&[what]).inc_by(0);
        }
        Self {
            counter,
            last_logged: [None; SKIP_LABELS.len()],
        }
    }

    /// One item of kind `what` left out of this sample, for `why`.
    pub(super) fn skip(&mut self, what: &'static str, why: std::fmt::Arguments<'_>) {
        self.counter.with_label_values(&[what]).inc();
        let Some(at) = SKIP_LABELS.iter().position(|w| *w == what) else {
            return;
        };
        let due = self.last_logged[at].is_none_or(|last| last.elapsed() >= SKIP_LOG_EVERY);
        if due {
            self.last_logged[at] = Some(Instant::now());
            tracing::warn!(what, "left out of a sample: {why} (counted in hostpulse_collect_skipped_total; logged once a minute)");
        }
    }

    /// How many items of kind `what` were left out so far.
    #[cfg(test)]
    pub(super) fn count(&self, what: &str) -> u64 {
        self.counter.with_label_values(&[what]).get()
    }
}

/// A counter's increase per second, or `None` when it went back (a wrap or a reset: no
/// negative or absurd rate is made up).
pub(super) fn per_sec(now: u64, before: u64, elapsed: Duration) -> Option<f64> {
    let secs = elapsed.as_secs_f64();
    if now < before || secs <= 0.0 {
        return None;
    }
    Some((now - before) as f64 / secs)
}

/// Rounded to two decimals: enough for rates of a few events per second.
pub(super) fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

#[cfg(test)]
pub(super) mod testing {
    /// The fixture copies of this machine's `/proc` files (and edited ones for the edge cases).
    pub(crate) fn fixtures() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/proc")
    }

    /// A skip counter of its own, for one test.
    pub(crate) fn skips() -> super::Skips {
        let counter =
            prometheus::IntCounterVec::new(prometheus::Opts::new("skipped", "skipped"), &["what"])
                .expect("valid metric");
        super::Skips::new(counter)
    }
}
