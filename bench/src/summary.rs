//! The summary table that opens BENCHMARKS.md: each binary adds its headline figures here, and
//! `bench/run.sh` puts the rows of one run, in the order they came, above the detailed sections.
//!
//! A row goes to the file named by `BENCH_SUMMARY` (one tab-separated line per row); with the
//! variable unset (a binary run by hand) nothing is written.

use std::io::Write;

/// One headline figure: what it is, what it is compared with, hostpulse's figure, the ratio of
/// the two when they compare, and the goal it is held to.
pub struct Row<'a> {
    pub figure: String,
    /// The floor (the same work with nothing of the product around it) or the peer, with its figure.
    pub reference: String,
    pub hostpulse: String,
    /// hostpulse ÷ reference.
    pub ratio: Option<f64>,
    pub goal: &'a str,
}

/// Adds `row` to this run's summary.
pub fn add(row: Row<'_>) {
    let Some(path) = std::env::var_os("BENCH_SUMMARY") else {
        return;
    };
    let ratio = row.ratio.map_or("–".to_string(), |r| format!("{r:.2}"));
    let line = [
        row.figure.as_str(),
        row.reference.as_str(),
        row.hostpulse.as_str(),
        ratio.as_str(),
        row.goal,
    ]
    .map(|cell| cell.replace(['\t', '\n'], " "))
    .join("\t");
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut file| writeln!(file, "{line}"));
    if let Err(e) = written {
        eprintln!(
            "cannot add to the summary at {}: {e}",
            path.to_string_lossy()
        );
    }
}
