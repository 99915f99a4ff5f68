//! A segment's sparse offset index (`.index`) and time index (`.timeindex`).
//!
//! Both live in memory while the segment is open and are written as files when the segment
//! is sealed (rolled, compacted) and on close. A file is trusted on open only if its header
//! matches the `.log` file it describes (base offset, byte length) and its CRC32C is right;
//! otherwise the segment is scanned and the index rebuilt. The layout is in `docs/format.md`.
//!
//! ```text
//! offset size field
//!      0    1 version          u8   1
//!      1    1 kind             u8   'O' (.index) or 'T' (.timeindex)
//!      2    2 reserved         u16  0
//!      4    8 base offset      u64
//!     12    8 log size         u64  byte length of the .log file described
//!     20    8 next offset      u64  last offset in the segment + 1
//!     28    8 max timestamp    i64  i64::MIN when the segment holds no batch
//!     36    4 entry count      u32
//!     40    4 crc              u32  CRC32C of bytes 0..40 followed by the entries
//!     44      entries: .index      relative offset u32, position u32        (8 bytes)
//!                      .timeindex  timestamp i64, relative offset u32       (12 bytes)
//! ```

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The format version byte of both index files.
pub(super) const INDEX_VERSION: u8 = 1;
const KIND_OFFSET: u8 = b'O';
const KIND_TIME: u8 = b'T';
const HEADER_LEN: usize = 44;
const CRC_AT: usize = 40;
const OFFSET_ENTRY_LEN: usize = 8;
const TIME_ENTRY_LEN: usize = 12;
/// Stored as the max timestamp of a segment that holds no batch.
const NO_TIMESTAMP: i64 = i64::MIN;

/// What both index files record about the `.log` file they were built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SegmentSummary {
    /// The segment's base offset (its file name).
    pub(super) base_offset: u64,
    /// Byte length of the `.log` file.
    pub(super) log_size: u64,
    /// The offset after the segment's last batch (`base_offset` when empty).
    pub(super) next_offset: u64,
    /// The largest batch max timestamp in the segment.
    pub(super) max_timestamp: Option<i64>,
}

/// Offset index entries: (offset relative to the base offset, file position of the batch
/// starting at that offset), both increasing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct OffsetIndex {
    entries: Vec<(u32, u32)>,
}

impl OffsetIndex {
    /// Adds an entry; callers add them in increasing order.
    pub(super) fn push(&mut self, relative_offset: u32, position: u32) {
        debug_assert!(self
            .entries
            .last()
            .is_none_or(|&(o, p)| o < relative_offset && p < position));
        self.entries.push((relative_offset, position));
    }

    /// The position of the last indexed batch starting at or before `relative_offset`, or 0.
    pub(super) fn floor_position(&self, relative_offset: u32) -> u32 {
        let i = self.entries.partition_point(|&(o, _)| o <= relative_offset);
        if i == 0 {
            0
        } else {
            self.entries[i - 1].1
        }
    }

    /// The entries: `(relative offset, position)`.
    #[cfg(test)]
    pub(super) fn entries(&self) -> &[(u32, u32)] {
        &self.entries
    }

    /// The last entry: `(relative offset, position)`.
    pub(super) fn last_entry(&self) -> Option<(u32, u32)> {
        self.entries.last().copied()
    }

    /// Number of entries.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// Time index entries: (timestamp, offset relative to the base offset). An entry `(t, o)`
/// says that every record in the batches up to the one holding offset `o` has a timestamp of
/// at most `t`. Timestamps strictly increase; offsets do not decrease.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct TimeIndex {
    entries: Vec<(i64, u32)>,
}

impl TimeIndex {
    /// Adds `(timestamp, relative_offset)` if `timestamp` is above the last entry's.
    pub(super) fn maybe_push(&mut self, timestamp: i64, relative_offset: u32) {
        if self.entries.last().is_none_or(|&(t, _)| timestamp > t) {
            self.entries.push((timestamp, relative_offset));
        }
    }

    /// The relative offset of the last entry whose timestamp is below `timestamp`: every
    /// record with a timestamp of at least `timestamp` lies in a later batch.
    pub(super) fn last_below(&self, timestamp: i64) -> Option<u32> {
        let i = self.entries.partition_point(|&(t, _)| t < timestamp);
        (i > 0).then(|| self.entries[i - 1].1)
    }

    /// Number of entries.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// The temporary name an index file is written under before it is renamed into place.
pub(super) fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

fn header(kind: u8, summary: &SegmentSummary, count: usize) -> Vec<u8> {
    let mut buf = Vec::with_capacity(HEADER_LEN);
    buf.push(INDEX_VERSION);
    buf.push(kind);
    buf.extend_from_slice(&0u16.to_be_bytes());
    buf.extend_from_slice(&summary.base_offset.to_be_bytes());
    buf.extend_from_slice(&summary.log_size.to_be_bytes());
    buf.extend_from_slice(&summary.next_offset.to_be_bytes());
    buf.extend_from_slice(&summary.max_timestamp.unwrap_or(NO_TIMESTAMP).to_be_bytes());
    buf.extend_from_slice(&(count as u32).to_be_bytes());
    buf.extend_from_slice(&0u32.to_be_bytes()); // CRC, filled in by `seal_crc`
    buf
}

fn seal_crc(buf: &mut [u8]) {
    let crc = crc32c::crc32c_append(crc32c::crc32c(&buf[..CRC_AT]), &buf[HEADER_LEN..]);
    buf[CRC_AT..HEADER_LEN].copy_from_slice(&crc.to_be_bytes());
}

/// Encodes the `.index` file.
pub(super) fn encode_offset_index(summary: &SegmentSummary, index: &OffsetIndex) -> Vec<u8> {
    let mut buf = header(KIND_OFFSET, summary, index.entries.len());
    buf.reserve(index.entries.len() * OFFSET_ENTRY_LEN);
    for &(offset, position) in &index.entries {
        buf.extend_from_slice(&offset.to_be_bytes());
        buf.extend_from_slice(&position.to_be_bytes());
    }
    seal_crc(&mut buf);
    buf
}

/// Encodes the `.timeindex` file.
pub(super) fn encode_time_index(summary: &SegmentSummary, index: &TimeIndex) -> Vec<u8> {
    let mut buf = header(KIND_TIME, summary, index.entries.len());
    buf.reserve(index.entries.len() * TIME_ENTRY_LEN);
    for &(timestamp, offset) in &index.entries {
        buf.extend_from_slice(&timestamp.to_be_bytes());
        buf.extend_from_slice(&offset.to_be_bytes());
    }
    seal_crc(&mut buf);
    buf
}

/// Writes `bytes` to `path` durably: a temporary file, fsynced, renamed into place. The
/// caller fsyncs the directory.
pub(super) fn write_file_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = temp_path(path);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, path)
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn be_u64(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(x)
}

/// Parses and checks an index file's header and CRC; returns the summary and the entries.
fn parse(
    bytes: &[u8],
    kind: u8,
    entry_len: usize,
    base_offset: u64,
    log_size: u64,
) -> Result<(SegmentSummary, &[u8]), String> {
    if bytes.len() < HEADER_LEN {
        return Err(format!("{} bytes, shorter than the header", bytes.len()));
    }
    if bytes[0] != INDEX_VERSION {
        return Err(format!("unknown format version {}", bytes[0]));
    }
    if bytes[1] != kind {
        return Err(format!("kind byte {:#04x}, expected {kind:#04x}", bytes[1]));
    }
    let stored = be_u32(bytes, CRC_AT);
    let computed = crc32c::crc32c_append(crc32c::crc32c(&bytes[..CRC_AT]), &bytes[HEADER_LEN..]);
    if stored != computed {
        return Err(format!(
            "CRC32C mismatch: stored {stored:#010x}, computed {computed:#010x}"
        ));
    }
    let max_timestamp = be_u64(bytes, 28) as i64;
    let summary = SegmentSummary {
        base_offset: be_u64(bytes, 4),
        log_size: be_u64(bytes, 12),
        next_offset: be_u64(bytes, 20),
        max_timestamp: (max_timestamp != NO_TIMESTAMP).then_some(max_timestamp),
    };
    if summary.base_offset != base_offset {
        return Err(format!(
            "base offset {} does not match the file name",
            summary.base_offset
        ));
    }
    if summary.log_size != log_size {
        return Err(format!(
            "built for a log of {} bytes, the log has {log_size}",
            summary.log_size
        ));
    }
    if summary.next_offset < base_offset
        || summary.next_offset - base_offset > u64::from(u32::MAX) + 1
    {
        return Err(format!("next offset {} out of range", summary.next_offset));
    }
    let count = be_u32(bytes, 36) as usize;
    let entries = &bytes[HEADER_LEN..];
    if entries.len() != count.saturating_mul(entry_len) {
        return Err(format!(
            "{count} entries declared, {} bytes of entries",
            entries.len()
        ));
    }
    Ok((summary, entries))
}

/// Why a segment's index files cannot be used.
pub(super) type LoadError = String;

/// Loads and checks both index files of the segment at `base_offset` whose `.log` file has
/// `log_size` bytes. Any problem (missing, other version, stale, corrupt) is an error whose
/// text says what is wrong; the caller then rebuilds the indexes from the log.
pub(super) fn load(
    index_path: &Path,
    time_index_path: &Path,
    base_offset: u64,
    log_size: u64,
) -> Result<(SegmentSummary, OffsetIndex, TimeIndex), LoadError> {
    let read =
        |path: &Path| fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()));
    let offset_bytes = read(index_path)?;
    let time_bytes = read(time_index_path)?;
    let in_file = |path: &Path, e: String| format!("{}: {e}", path.display());

    let (summary, entries) = parse(
        &offset_bytes,
        KIND_OFFSET,
        OFFSET_ENTRY_LEN,
        base_offset,
        log_size,
    )
    .map_err(|e| in_file(index_path, e))?;
    let span = summary.next_offset - base_offset;
    let mut offsets = OffsetIndex::default();
    for e in entries.chunks_exact(OFFSET_ENTRY_LEN) {
        let (offset, position) = (be_u32(e, 0), be_u32(e, 4));
        let increasing = offsets
            .entries
            .last()
            .is_none_or(|&(o, p)| o < offset && p < position);
        if !increasing || u64::from(offset) >= span || u64::from(position) >= log_size {
            return Err(in_file(
                index_path,
                format!("entry ({offset}, {position}) out of order or out of range"),
            ));
        }
        offsets.entries.push((offset, position));
    }

    let (time_summary, entries) = parse(
        &time_bytes,
        KIND_TIME,
        TIME_ENTRY_LEN,
        base_offset,
        log_size,
    )
    .map_err(|e| in_file(time_index_path, e))?;
    if time_summary != summary {
        return Err(format!(
            "{} and {} describe different segments",
            index_path.display(),
            time_index_path.display()
        ));
    }
    let mut times = TimeIndex::default();
    for e in entries.chunks_exact(TIME_ENTRY_LEN) {
        let (timestamp, offset) = (be_u64(e, 0) as i64, be_u32(e, 8));
        let increasing = times
            .entries
            .last()
            .is_none_or(|&(t, o)| t < timestamp && o <= offset);
        let beyond_max = summary.max_timestamp.is_none_or(|max| timestamp > max);
        if !increasing || u64::from(offset) >= span || beyond_max {
            return Err(in_file(
                time_index_path,
                format!("entry ({timestamp}, {offset}) out of order or out of range"),
            ));
        }
        times.entries.push((timestamp, offset));
    }
    Ok((summary, offsets, times))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (SegmentSummary, OffsetIndex, TimeIndex) {
        let summary = SegmentSummary {
            base_offset: 100,
            log_size: 5000,
            next_offset: 180,
            max_timestamp: Some(77),
        };
        let mut offsets = OffsetIndex::default();
        offsets.push(10, 1000);
        offsets.push(30, 3000);
        let mut times = TimeIndex::default();
        times.maybe_push(50, 10);
        times.maybe_push(40, 20); // not above the last: ignored
        times.maybe_push(77, 30);
        (summary, offsets, times)
    }

    #[test]
    fn files_round_trip_and_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let (summary, offsets, times) = sample();
        let ip = dir.path().join("a.index");
        let tp = dir.path().join("a.timeindex");
        write_file_atomically(&ip, &encode_offset_index(&summary, &offsets)).unwrap();
        write_file_atomically(&tp, &encode_time_index(&summary, &times)).unwrap();
        assert!(!temp_path(&ip).exists());
        let loaded = load(&ip, &tp, 100, 5000).unwrap();
        assert_eq!(loaded, (summary, offsets.clone(), times.clone()));

        // Stale: the log has another size.
        assert!(load(&ip, &tp, 100, 5001).unwrap_err().contains("5000"));
        // Wrong base offset.
        assert!(load(&ip, &tp, 0, 5000).is_err());
        // Any flipped byte is caught.
        let good = fs::read(&ip).unwrap();
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x40;
            fs::write(&ip, &bad).unwrap();
            assert!(load(&ip, &tp, 100, 5000).is_err(), "byte {i}");
        }
        fs::write(&ip, &good).unwrap();
        // Swapped files are refused by their kind byte.
        assert!(load(&tp, &ip, 100, 5000).is_err());
        // Missing.
        fs::remove_file(&tp).unwrap();
        assert!(load(&ip, &tp, 100, 5000).is_err());
    }

    #[test]
    fn lookups() {
        let (_, offsets, times) = sample();
        assert_eq!(offsets.floor_position(0), 0);
        assert_eq!(offsets.floor_position(10), 1000);
        assert_eq!(offsets.floor_position(29), 1000);
        assert_eq!(offsets.floor_position(1000), 3000);
        assert_eq!(times.last_below(50), None);
        assert_eq!(times.last_below(51), Some(10));
        assert_eq!(times.last_below(i64::MAX), Some(30));
    }
}
