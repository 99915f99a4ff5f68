//! The offset gaps that compaction leaves between segments, recorded so that a gap found on
//! open is told apart from a missing or emptied segment.
//!
//! Offsets run on from one segment to the next: a segment's base offset is the previous
//! segment's next offset. Compaction breaks that on purpose, when it removes the last records
//! of a segment or a whole segment in the middle; it records each range it removes here,
//! in `offset-gaps` (layout in `docs/format.md`: version, count, `(from, to)` pairs, CRC32C).
//! Any other gap is a hole, and the partition is taken offline rather than read past it.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;

use super::index::write_file_atomically;

/// The file name in the partition directory.
pub(super) const GAPS_FILE: &str = "offset-gaps";
const VERSION: u8 = 1;
/// More ranges than this in one file is damage, not compaction (a partition's segments
/// number far fewer).
const MAX_RANGES: usize = 1 << 20;

/// Recorded gaps: half-open offset ranges `[from, to)` that hold no records on purpose.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Gaps {
    /// `from -> to`, disjoint and not touching.
    ranges: BTreeMap<u64, u64>,
}

impl Gaps {
    /// Whether `[from, to)` lies inside the recorded gaps.
    pub(super) fn covers(&self, from: u64, to: u64) -> bool {
        if from >= to {
            return true;
        }
        match self.ranges.range(..=from).next_back() {
            Some((_, &end)) => end >= to,
            None => false,
        }
    }

    /// Records `[from, to)`, merged with the ranges it touches.
    pub(super) fn add(&mut self, from: u64, to: u64) {
        if from >= to {
            return;
        }
        let (mut from, mut to) = (from, to);
        let touching: Vec<(u64, u64)> = self
            .ranges
            .range(..=to)
            .filter(|&(_, &end)| end >= from)
            .map(|(&s, &e)| (s, e))
            .collect();
        for (s, e) in touching {
            self.ranges.remove(&s);
            from = from.min(s);
            to = to.max(e);
        }
        self.ranges.insert(from, to);
    }

    /// Forgets the ranges below `offset` (the log start moved past them).
    pub(super) fn prune_below(&mut self, offset: u64) {
        self.ranges.retain(|_, &mut end| end > offset);
    }

    /// Number of ranges.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.ranges.len()
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(9 + self.ranges.len() * 16);
        out.push(VERSION);
        out.extend_from_slice(&(self.ranges.len() as u32).to_be_bytes());
        for (&from, &to) in &self.ranges {
            out.extend_from_slice(&from.to_be_bytes());
            out.extend_from_slice(&to.to_be_bytes());
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> std::result::Result<Gaps, String> {
        if bytes.len() < 9 {
            return Err(format!("{} bytes, at least 9 expected", bytes.len()));
        }
        if bytes[0] != VERSION {
            return Err(format!("unknown format version {}", bytes[0]));
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        let stored = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
        let computed = crc32c::crc32c(body);
        if stored != computed {
            return Err(format!(
                "CRC32C mismatch: stored {stored:#010x}, computed {computed:#010x}"
            ));
        }
        let count = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
        if count > MAX_RANGES || body.len() != 5 + count * 16 {
            return Err(format!("{count} ranges do not fit {} bytes", body.len()));
        }
        let mut gaps = Gaps::default();
        let mut previous_end = 0;
        for pair in body[5..].chunks_exact(16) {
            let mut from = [0u8; 8];
            let mut to = [0u8; 8];
            from.copy_from_slice(&pair[..8]);
            to.copy_from_slice(&pair[8..]);
            let (from, to) = (u64::from_be_bytes(from), u64::from_be_bytes(to));
            if from >= to || (!gaps.ranges.is_empty() && from <= previous_end) {
                return Err(format!("range {from}..{to} is empty or out of order"));
            }
            previous_end = to;
            gaps.ranges.insert(from, to);
        }
        Ok(gaps)
    }
}

/// Reads the recorded gaps: `Ok(None)` when there is no file (a partition compaction never
/// changed, or one written before gaps were recorded), `Err` with the reason when the file
/// cannot be used.
pub(super) fn read(dir: &Path) -> std::result::Result<Option<Gaps>, String> {
    let path = dir.join(GAPS_FILE);
    match fs::read(&path) {
        Ok(bytes) => Gaps::decode(&bytes)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Writes the gaps atomically (temporary file, fsync, rename); the caller fsyncs the dir.
pub(super) fn write(dir: &Path, gaps: &Gaps) -> io::Result<()> {
    write_file_atomically(&dir.join(GAPS_FILE), &gaps.encode())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ranges_merge_and_cover() {
        let mut gaps = Gaps::default();
        gaps.add(10, 20);
        gaps.add(30, 40);
        assert!(gaps.covers(12, 20));
        assert!(!gaps.covers(12, 21));
        assert!(!gaps.covers(20, 30));
        gaps.add(20, 30);
        assert_eq!(gaps.len(), 1);
        assert!(gaps.covers(10, 40));
        gaps.prune_below(50);
        assert_eq!(gaps.len(), 0);
    }

    #[test]
    fn the_file_rejects_every_flipped_byte() {
        let mut gaps = Gaps::default();
        gaps.add(3, 7);
        gaps.add(9, 12);
        let bytes = gaps.encode();
        assert_eq!(Gaps::decode(&bytes), Ok(gaps));
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            assert!(Gaps::decode(&bad).is_err(), "byte {i}");
        }
        assert!(Gaps::decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(Gaps::decode(&[]).is_err());
    }

    proptest! {
        #[test]
        fn covers_agrees_with_a_set_of_offsets(
            adds in prop::collection::vec((0u64..200, 1u64..30), 0..12),
            query in (0u64..240, 0u64..40),
        ) {
            let mut gaps = Gaps::default();
            let mut model = std::collections::BTreeSet::new();
            for (from, len) in adds {
                gaps.add(from, from + len);
                model.extend(from..from + len);
            }
            let (from, len) = query;
            let expected = (from..from + len).all(|o| model.contains(&o));
            prop_assert_eq!(gaps.covers(from, from + len), expected);
            prop_assert_eq!(Gaps::decode(&gaps.encode()), Ok(gaps));
        }
    }
}
