//! Packed tiers: one stored row per host and time span (a minute of raw readings, an hour of
//! minute buckets, a day of hour buckets) holding its records encoded together — column by
//! column, each value as a zigzag varint of its difference from the one before, then deflated.
//! A row per reading cost ~130 bytes in SQLite; a packed reading costs a few.
//!
//! A record is one reading's (or one bucket's) figures for the host (`sub` = [`HOST`]) or for
//! one of its items (`sub` = the item's id). Raw records are keyed by (time, seq): merging a
//! block with a reading it already holds keeps the stored one, which makes writes idempotent.
//! Rollup records are keyed by time alone and merge by adding counts and sums and comparing
//! minima and maxima, so a late reading updates its bucket exactly.

use super::query::Tier;
use super::rows::Msm;
use std::collections::BTreeMap;
use std::io::Write;

/// `sub` of a host-wide record.
pub const HOST: i64 = -1;
/// The first byte of every block: its format. (Measured: without deflate the varints alone
/// took ten times the space, 13.4 MiB per host with full tiers instead of 1.2.)
const DEFLATED: u8 = 1;

/// One record of a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rec {
    /// Unix seconds (raw) or the bucket's start.
    pub t: i64,
    /// [`HOST`] or an item id.
    pub sub: i64,
    /// The reading's seq (raw); 0 in rollups.
    pub key: i64,
    /// Raw: the figures. Rollups: counts first ([`counts`]), then min / sum / max per figure.
    pub vals: Vec<Option<i64>>,
}

/// Leading count columns of a rollup record: `n` and `load_n` for the host, `n` for an item.
pub fn counts(sub: i64) -> usize {
    if sub == HOST {
        2
    } else {
        1
    }
}

/// Seconds one block of `tier` spans.
pub fn span(tier: Tier) -> i64 {
    match tier {
        Tier::Raw => 60,
        Tier::Minute => 3_600,
        Tier::Hour => 86_400,
    }
}

/// The start of the block of `tier` holding time `t`.
pub fn block_start(tier: Tier, t: i64) -> i64 {
    t.div_euclid(span(tier)) * span(tier)
}

/// The table holding `tier`'s blocks.
pub fn table(tier: Tier) -> &'static str {
    match tier {
        Tier::Raw => "raw_block",
        Tier::Minute => "minute_block",
        Tier::Hour => "hour_block",
    }
}

/// Why a stored block could not be read.
#[derive(Debug, thiserror::Error)]
#[error("a stored history block is damaged: {0}")]
pub struct Damaged(&'static str);

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put(out: &mut Vec<u8>, v: u64) {
    put_wide(out, u128::from(v));
}

/// A value column's entry: 0 = absent, else 1 + the zigzagged difference (which may be
/// `u64::MAX`, hence the width).
fn put_wide(out: &mut Vec<u8>, mut v: u128) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn get(&mut self) -> Result<u64, Damaged> {
        u64::try_from(self.get_wide()?).map_err(|_| Damaged("a number too long"))
    }

    fn get_wide(&mut self) -> Result<u128, Damaged> {
        let mut v: u128 = 0;
        for shift in (0..71).step_by(7) {
            let (&b, rest) = self.bytes.split_first().ok_or(Damaged("cut short"))?;
            self.bytes = rest;
            v |= u128::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(Damaged("a number too long"))
    }

    fn len(&mut self, most: usize) -> Result<usize, Damaged> {
        usize::try_from(self.get()?)
            .ok()
            .filter(|n| *n <= most)
            .ok_or(Damaged("a count too large"))
    }
}

/// Most records, and values per record, a block may claim (a damaged count allocates nothing).
const MAX_RECORDS: usize = 1 << 20;
const MAX_WIDTH: usize = 64;

/// Encodes `recs` (any order; sorted here by sub, time, key).
pub fn encode(recs: &mut [Rec]) -> Vec<u8> {
    recs.sort_by_key(|r| (r.sub, r.t, r.key));
    let mut raw = Vec::with_capacity(recs.len() * 8);
    let groups: Vec<&[Rec]> = recs.chunk_by(|a, b| a.sub == b.sub).collect();
    put(&mut raw, groups.len() as u64);
    for group in groups {
        let width = group.iter().map(|r| r.vals.len()).max().unwrap_or(0);
        put(&mut raw, zigzag(group[0].sub));
        put(&mut raw, group.len() as u64);
        put(&mut raw, width as u64);
        let mut prev = 0i64;
        for r in group {
            put(&mut raw, zigzag(r.t.wrapping_sub(prev)));
            prev = r.t;
        }
        prev = 0;
        for r in group {
            put(&mut raw, zigzag(r.key.wrapping_sub(prev)));
            prev = r.key;
        }
        for col in 0..width {
            let mut prev = 0i64;
            for r in group {
                match r.vals.get(col).copied().flatten() {
                    None => put(&mut raw, 0),
                    Some(v) => {
                        put_wide(&mut raw, u128::from(zigzag(v.wrapping_sub(prev))) + 1);
                        prev = v;
                    }
                }
            }
        }
    }
    let mut out = Vec::with_capacity(raw.len() / 2 + 64);
    out.push(DEFLATED);
    deflate(&raw, &mut out);
    out
}

// A compressor and a decompressor per thread, reset between blocks: making new ones for every
// block (tens of thousands a second at 1,000 hosts) allocated and zeroed ~200 KB each time.
thread_local! {
    static DEFLATE: std::cell::RefCell<flate2::Compress> =
        std::cell::RefCell::new(flate2::Compress::new(flate2::Compression::fast(), false));
    static INFLATE: std::cell::RefCell<flate2::Decompress> =
        std::cell::RefCell::new(flate2::Decompress::new(false));
}

/// Appends `raw` deflated to `out`.
fn deflate(raw: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    let done = DEFLATE.with_borrow_mut(|c| {
        c.reset();
        loop {
            if out.len() == out.capacity() {
                out.reserve(out.capacity().max(256));
            }
            let consumed = usize::try_from(c.total_in()).unwrap_or(usize::MAX);
            let rest = raw.get(consumed..).unwrap_or_default();
            match c.compress_vec(rest, out, flate2::FlushCompress::Finish) {
                Ok(flate2::Status::StreamEnd) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
    });
    if !done {
        // Not expected from an in-memory stream; the one-off encoder gives the same bytes.
        out.truncate(start);
        let mut deflater = flate2::write::DeflateEncoder::new(out, flate2::Compression::fast());
        // Writing to a Vec cannot fail.
        let _ = deflater.write_all(raw);
        let _ = deflater.finish();
    }
}

/// A block's records inflated; bounded, so a damaged block cannot claim unbounded memory.
fn inflate(packed: &[u8]) -> Result<Vec<u8>, Damaged> {
    const MOST: usize = 256 << 20;
    let mut raw = Vec::with_capacity(packed.len() * 4 + 64);
    INFLATE.with_borrow_mut(|d| {
        d.reset(false);
        loop {
            if raw.len() == raw.capacity() {
                if raw.len() >= MOST {
                    return Err(Damaged("inflates past any block's size"));
                }
                raw.reserve(raw.capacity().max(256));
            }
            let (read, wrote) = (d.total_in(), d.total_out());
            let consumed = usize::try_from(read).unwrap_or(usize::MAX);
            let rest = packed.get(consumed..).unwrap_or_default();
            // `None`, not `Finish`: with `Finish` miniz_oxide wants all the room at once.
            match d.decompress_vec(rest, &mut raw, flate2::FlushDecompress::None) {
                Ok(flate2::Status::StreamEnd) => return Ok(()),
                Ok(_)
                    if d.total_in() == read
                        && d.total_out() == wrote
                        && raw.len() < raw.capacity() =>
                {
                    return Err(Damaged("cut short"))
                }
                Ok(_) => {}
                Err(_) => {
                    // A reset does not always clear a failed stream: start afresh.
                    *d = flate2::Decompress::new(false);
                    return Err(Damaged("not deflate"));
                }
            }
        }
    })?;
    Ok(raw)
}

/// Decodes a block written by [`encode`].
pub fn decode(bytes: &[u8]) -> Result<Vec<Rec>, Damaged> {
    let (&format, packed) = bytes.split_first().ok_or(Damaged("empty"))?;
    if format != DEFLATED {
        return Err(Damaged("an unknown format"));
    }
    let raw = inflate(packed)?;
    let mut r = Reader { bytes: &raw };
    let mut recs = Vec::new();
    for _ in 0..r.len(MAX_RECORDS)? {
        let sub = unzigzag(r.get()?);
        let n = r.len(MAX_RECORDS)?;
        let width = r.len(MAX_WIDTH)?;
        let first = recs.len();
        let mut prev = 0i64;
        for _ in 0..n {
            prev = prev.wrapping_add(unzigzag(r.get()?));
            recs.push(Rec {
                t: prev,
                sub,
                key: 0,
                vals: Vec::with_capacity(width),
            });
        }
        prev = 0;
        for rec in &mut recs[first..] {
            prev = prev.wrapping_add(unzigzag(r.get()?));
            rec.key = prev;
        }
        for _ in 0..width {
            let mut prev = 0i64;
            for rec in &mut recs[first..] {
                let v = r.get_wide()?;
                if v == 0 {
                    rec.vals.push(None);
                } else {
                    let z = u64::try_from(v - 1).map_err(|_| Damaged("a number too long"))?;
                    prev = prev.wrapping_add(unzigzag(z));
                    rec.vals.push(Some(prev));
                }
            }
        }
    }
    Ok(recs)
}

/// Raw tier: adds `incoming` readings' records to `stored`, keeping the stored one where a
/// reading (host record with the same time and seq) is there already. Returns the (time, seq)
/// of the readings added.
pub fn merge_raw(stored: &mut Vec<Rec>, incoming: Vec<Rec>) -> Vec<(i64, i64)> {
    let mut have: std::collections::HashSet<(i64, i64)> = stored
        .iter()
        .filter(|r| r.sub == HOST)
        .map(|r| (r.t, r.key))
        .collect();
    let added: Vec<(i64, i64)> = incoming
        .iter()
        .filter(|r| r.sub == HOST && have.insert((r.t, r.key)))
        .map(|r| (r.t, r.key))
        .collect();
    let new: std::collections::HashSet<(i64, i64)> = added.iter().copied().collect();
    // Item records go with their reading; each record once (a batch may repeat a reading).
    let mut seen: std::collections::HashSet<(i64, i64, i64)> = std::collections::HashSet::new();
    stored.extend(
        incoming
            .into_iter()
            .filter(|r| new.contains(&(r.t, r.key)) && seen.insert((r.t, r.key, r.sub))),
    );
    added
}

/// Rollup tiers: merges `incoming` buckets into `stored` ones (counts and sums add, minima
/// and maxima compare; an absent figure on either side leaves the other).
pub fn merge_rollup(stored: &mut Vec<Rec>, incoming: Vec<Rec>) {
    let mut index: BTreeMap<(i64, i64), usize> = stored
        .iter()
        .enumerate()
        .map(|(i, r)| ((r.sub, r.t), i))
        .collect();
    for rec in incoming {
        match index.get(&(rec.sub, rec.t)) {
            None => {
                index.insert((rec.sub, rec.t), stored.len());
                stored.push(rec);
            }
            Some(&i) => {
                let old = &mut stored[i];
                let c = counts(rec.sub);
                if old.vals.len() < rec.vals.len() {
                    old.vals.resize(rec.vals.len(), None);
                }
                for (j, new) in rec.vals.into_iter().enumerate() {
                    let slot = &mut old.vals[j];
                    let role = if j < c { 1 } else { (j - c) % 3 };
                    *slot = match (*slot, new) {
                        (None, v) | (v, None) => v,
                        (Some(a), Some(b)) => Some(match role {
                            0 => a.min(b),
                            1 => a.saturating_add(b),
                            _ => a.max(b),
                        }),
                    };
                }
            }
        }
    }
}

/// A rollup record's values: `counts` then each figure's min / sum / max.
pub fn rollup_vals<const N: usize>(counts: &[i64], cols: &[Option<Msm>; N]) -> Vec<Option<i64>> {
    let mut vals: Vec<Option<i64>> = counts.iter().map(|c| Some(*c)).collect();
    for c in cols {
        vals.extend([c.map(|c| c.min), c.map(|c| c.sum), c.map(|c| c.max)]);
    }
    vals
}

/// Readings (raw) or buckets (rollups) in a block: its host records.
pub fn count(recs: &[Rec]) -> i64 {
    recs.iter().filter(|r| r.sub == HOST).count() as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn rec(t: i64, sub: i64, key: i64, vals: &[Option<i64>]) -> Rec {
        Rec {
            t,
            sub,
            key,
            vals: vals.to_vec(),
        }
    }

    #[test]
    fn a_block_decodes_to_what_was_encoded() {
        let mut recs = vec![
            rec(1_795_564_800, HOST, 7, &[Some(1234), None, Some(i64::MAX)]),
            rec(1_795_564_801, HOST, 8, &[Some(-5), Some(0), Some(i64::MIN)]),
            rec(
                1_795_564_802,
                HOST,
                9,
                &[Some(i64::MIN), Some(i64::MAX), Some(1)],
            ),
            rec(1_795_564_800, 3, 7, &[Some(10), Some(20)]),
            rec(1_795_564_801, 3, 8, &[None, Some(21)]),
        ];
        let bytes = encode(&mut recs);
        assert_eq!(decode(&bytes).expect("decodes"), recs);
        assert!(decode(&bytes[..bytes.len() / 2]).is_err(), "cut short");
        assert!(decode(&[]).is_err());
    }

    #[test]
    fn blocks_cut_anywhere_or_garbled_are_refused_and_the_next_block_still_decodes() {
        let mut recs: Vec<Rec> = (0..60)
            .map(|i| rec(1_795_564_800 + i, HOST, i, &[Some(i * 37 % 11); 9]))
            .collect();
        let bytes = encode(&mut recs);
        for cut in 1..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut garbled = bytes.clone();
        garbled[1] ^= 0xff;
        let _ = decode(&garbled); // refused or misread, never a panic or a hang
                                  // The thread's decompressor and compressor are reset between blocks.
        assert_eq!(decode(&bytes).expect("decodes"), recs);
        assert_eq!(encode(&mut recs), bytes, "the same bytes again");
    }

    #[test]
    fn a_block_written_by_a_one_off_encoder_decodes() {
        let mut recs = vec![rec(1_795_564_800, HOST, 1, &[Some(1), Some(2)])];
        let ours = encode(&mut recs);
        // What earlier versions wrote: the same stream from a fresh encoder per block.
        let mut raw = Vec::new();
        flate2::read::DeflateDecoder::new(&ours[1..])
            .read_to_end(&mut raw)
            .expect("inflates");
        let mut theirs = vec![DEFLATED];
        let mut encoder =
            flate2::write::DeflateEncoder::new(&mut theirs, flate2::Compression::fast());
        encoder.write_all(&raw).expect("in memory");
        encoder.finish().expect("in memory");
        assert_eq!(theirs, ours);
        assert_eq!(decode(&theirs).expect("decodes"), recs);
    }

    #[test]
    fn a_minute_of_steady_readings_packs_into_a_few_bytes_each() {
        let mut recs: Vec<Rec> = (0..60)
            .flat_map(|i| {
                [
                    rec(1_795_564_800 + i, HOST, i, &[Some(5000 + i % 7); 9]),
                    rec(
                        1_795_564_800 + i,
                        1,
                        i,
                        &[Some(1 << 40), Some(1 << 41), None],
                    ),
                ]
            })
            .collect();
        let bytes = encode(&mut recs);
        assert!(bytes.len() < 60 * 4, "{} bytes", bytes.len());
    }

    #[test]
    fn a_reading_already_stored_is_not_added_again() {
        let mut stored = vec![rec(100, HOST, 1, &[Some(1)]), rec(100, 4, 1, &[Some(2)])];
        let added = merge_raw(
            &mut stored,
            vec![
                rec(100, HOST, 1, &[Some(9)]),
                rec(100, 4, 1, &[Some(9)]),
                rec(101, HOST, 2, &[Some(3)]),
                rec(101, 4, 2, &[Some(4)]),
                rec(101, HOST, 2, &[Some(3)]),
                rec(101, 4, 2, &[Some(4)]),
            ],
        );
        assert_eq!(added, [(101, 2)]);
        assert_eq!(stored.len(), 4);
        assert_eq!(stored[0].vals, [Some(1)], "the stored reading is kept");
    }

    #[test]
    fn rollups_merge_counts_sums_minima_and_maxima() {
        // Host record: n, load_n, then (min, sum, max) of one figure and of a load average.
        let mut stored = vec![rec(
            60,
            HOST,
            0,
            &[
                Some(2),
                Some(0),
                Some(5),
                Some(15),
                Some(10),
                None,
                None,
                None,
            ],
        )];
        merge_rollup(
            &mut stored,
            vec![
                rec(
                    60,
                    HOST,
                    0,
                    &[
                        Some(1),
                        Some(1),
                        Some(3),
                        Some(3),
                        Some(3),
                        Some(7),
                        Some(7),
                        Some(7),
                    ],
                ),
                rec(120, HOST, 0, &[Some(1), Some(0), Some(1), Some(1), Some(1)]),
            ],
        );
        assert_eq!(
            stored[0].vals,
            [
                Some(3),
                Some(1),
                Some(3),
                Some(18),
                Some(10),
                Some(7),
                Some(7),
                Some(7)
            ]
        );
        assert_eq!(stored.len(), 2);
    }
}
