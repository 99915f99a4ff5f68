//! Log compaction: keep the latest record per key.
//!
//! A pass works on the cleanable range: the sealed segments, oldest first, up to the first
//! one whose largest timestamp is younger than `min.compaction.lag.ms` (the active segment is
//! never cleaned). It first maps every key in the range to its latest offset, then rewrites
//! each segment of the range without the records that a later record of the same key
//! supersedes, and without tombstones (null values) that are the latest of their key once
//! `delete.retention.ms` has passed since the segment's largest timestamp. Records without a
//! key cannot be compacted and are removed, as Kafka's cleaner does. Control batches are
//! kept as they are.
//!
//! Kept records keep their offsets, order, timestamps and headers; a batch that loses records
//! is re-encoded from its first to its last kept record (see
//! [`encode_retained`](crate::batch::encode_retained)).
//!
//! A segment is rewritten into `<base>.log.cleaned`, fsynced, and renamed over
//! `<base>.log`; a crash leaves either the old or the new file, and open deletes a leftover
//! `.log.cleaned`. A segment left empty is deleted, except the first one, whose base offset
//! is the log start offset. The offset up to which the log was cleaned is kept in
//! `cleaner-offset-checkpoint` (16 bytes: version, reserved, offset, CRC32C; see
//! `docs/format.md`), which drives the dirty ratio.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::ops::Bound;
use std::path::Path;

use bytes::Bytes;
use tracing::{debug, warn};

use super::index::write_file_atomically;
use super::segment::{sync_dir, Scanned, Segment};
use super::{CleanStats, Log};
use crate::batch::{self, BatchHeader};
use crate::error::{BrokerError, Result};
use crate::record::Record;

/// The cleaner checkpoint's file name in the partition directory.
pub(super) const CHECKPOINT_FILE: &str = "cleaner-offset-checkpoint";
const CHECKPOINT_VERSION: u8 = 1;
const CHECKPOINT_LEN: usize = 16;
/// The cleaner writes its output in chunks of about this size.
const WRITE_CHUNK: usize = 1 << 20;

fn encode_checkpoint(offset: u64) -> [u8; CHECKPOINT_LEN] {
    let mut buf = [0u8; CHECKPOINT_LEN];
    buf[0] = CHECKPOINT_VERSION;
    buf[4..12].copy_from_slice(&offset.to_be_bytes());
    let crc = crc32c::crc32c(&buf[..12]);
    buf[12..].copy_from_slice(&crc.to_be_bytes());
    buf
}

fn decode_checkpoint(bytes: &[u8]) -> std::result::Result<u64, String> {
    if bytes.len() != CHECKPOINT_LEN {
        return Err(format!("{} bytes, expected {CHECKPOINT_LEN}", bytes.len()));
    }
    if bytes[0] != CHECKPOINT_VERSION {
        return Err(format!("unknown format version {}", bytes[0]));
    }
    let stored = u32::from_be_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
    let computed = crc32c::crc32c(&bytes[..12]);
    if stored != computed {
        return Err(format!(
            "CRC32C mismatch: stored {stored:#010x}, computed {computed:#010x}"
        ));
    }
    let mut offset = [0u8; 8];
    offset.copy_from_slice(&bytes[4..12]);
    Ok(u64::from_be_bytes(offset))
}

/// Reads the cleaner checkpoint. A missing one is `None`; so is a damaged one, with a
/// warning: it only decides when cleaning is worth it, and cleaning from the log start is
/// always correct.
pub(super) fn read_checkpoint(dir: &Path, label: &str) -> Option<u64> {
    let path = dir.join(CHECKPOINT_FILE);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        Err(e) => {
            warn!(file = %path.display(), "{label}: cannot read the cleaner checkpoint: {e}");
            return None;
        }
    };
    match decode_checkpoint(&bytes) {
        Ok(offset) => Some(offset),
        Err(reason) => {
            warn!(file = %path.display(), "{label}: ignoring the cleaner checkpoint {}: {reason}", path.display());
            None
        }
    }
}

fn write_checkpoint(dir: &Path, offset: u64) -> io::Result<()> {
    write_file_atomically(&dir.join(CHECKPOINT_FILE), &encode_checkpoint(offset))?;
    sync_dir(dir)
}

/// The rewritten copy of one segment, written in chunks.
struct Output {
    segment: Segment,
    pending: Vec<u8>,
    written: u64,
    interval: u64,
    /// The offset after the last batch pushed.
    next: u64,
    /// The offset ranges between the batches pushed: what the cleaning removed.
    gaps: Vec<(u64, u64)>,
}

impl Output {
    fn push(&mut self, header: &BatchHeader, bytes: &[u8]) -> io::Result<()> {
        if header.base_offset > self.next {
            self.gaps.push((self.next, header.base_offset));
        }
        self.next = header.next_offset();
        let position = self.segment.size();
        self.segment.note_batch(position, header, self.interval);
        self.pending.extend_from_slice(bytes);
        if self.pending.len() >= WRITE_CHUNK {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.segment.write_at(&self.pending, self.written)?;
        self.written += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }
}

impl Log {
    /// Calls `f` with every batch of `segment`, in order.
    fn for_each_batch(
        &self,
        segment: &Segment,
        mut f: impl FnMut(BatchHeader, Bytes) -> Result<()>,
    ) -> Result<()> {
        let mut scanner = segment.scanner(0);
        loop {
            let scanned = scanner
                .next(false)
                .map_err(|e| BrokerError::io(segment.path(), e))?;
            match scanned {
                Scanned::End => return Ok(()),
                Scanned::Invalid { position, error } => {
                    return Err(self.corrupt(
                        segment,
                        segment.base_offset(),
                        format!("at byte {position}: {error}"),
                    ))
                }
                Scanned::Batch { header, bytes, .. } => f(header, bytes)?,
            }
        }
    }

    /// Whether a data batch belongs to an aborted transaction.
    fn is_aborted_batch(&self, header: &BatchHeader) -> bool {
        header.is_transactional()
            && !header.is_control()
            && self
                .producers
                .is_aborted(header.producer_id, header.base_offset)
    }

    fn decode(&self, segment: &Segment, bytes: &Bytes) -> Result<crate::record::RecordBatch> {
        batch::decode_batch(bytes)
            .map(|(batch, _)| batch)
            .map_err(|e| {
                let offset =
                    BatchHeader::parse(bytes).map_or(segment.base_offset(), |h| h.base_offset);
                self.corrupt(segment, offset, e.to_string())
            })
    }

    /// One compaction pass; see the module documentation.
    pub(super) fn clean_segments(&mut self, force: bool) -> Result<CleanStats> {
        let mut stats = CleanStats::default();
        if !self.config.cleanup_policy.compact {
            return Ok(stats);
        }
        if self.poisoned {
            return Err(self.poisoned_error());
        }
        if self.damage.is_some() || self.read_only {
            // An offline log keeps every byte for the operator to inspect or repair; a
            // read-only one writes nothing.
            return Ok(stats);
        }
        let now = self.time.now_ms();
        let horizon = now.saturating_sub(self.config.min_compaction_lag_ms);
        let lso = self.last_stable_offset();
        let cleanable: Vec<u64> = self
            .sealed
            .values()
            .take_while(|s| s.max_timestamp().is_none_or(|t| t <= horizon))
            // Only below the last stable offset: an open transaction may still abort.
            .take_while(|s| s.next_offset() <= lso)
            .map(Segment::base_offset)
            .collect();
        let Some(&last) = cleanable.last() else {
            return Ok(stats);
        };
        let end_offset = self
            .sealed
            .range((Bound::Excluded(last), Bound::Unbounded))
            .next()
            .map_or(self.active.base_offset(), |(&base, _)| base);
        let checkpoint = self.cleaner_checkpoint.max(self.log_start_offset());
        let (mut total, mut dirty) = (0u64, 0u64);
        for segment in self.sealed.range(..=last).map(|(_, s)| s) {
            total += segment.size();
            if segment.base_offset() >= checkpoint {
                dirty += segment.size();
            }
        }
        if !force
            && (dirty == 0 || (dirty as f64) < self.config.min_cleanable_dirty_ratio * total as f64)
        {
            return Ok(stats);
        }
        stats.bytes_before = total;

        // Pass 1: the latest offset of every key in the cleanable range.
        let mut latest: HashMap<Vec<u8>, u64> = HashMap::new();
        for segment in self.sealed.range(..=last).map(|(_, s)| s) {
            self.for_each_batch(segment, |header, bytes| {
                // Records of aborted transactions never count as a key's latest value; pass
                // 2 removes them.
                if header.is_control() || self.is_aborted_batch(&header) {
                    return Ok(());
                }
                for record in self.decode(segment, &bytes)?.records {
                    if let Some(key) = &record.key {
                        match latest.get_mut(key.as_ref()) {
                            Some(offset) => *offset = record.offset,
                            None => {
                                latest.insert(key.to_vec(), record.offset);
                            }
                        }
                    }
                }
                Ok(())
            })?;
        }

        // Pass 2: rewrite each segment without what is superseded.
        for base in cleanable {
            let after = self.clean_segment(base, now, &latest, &mut stats)?;
            stats.bytes_after += after;
        }
        self.cleaner_checkpoint = end_offset;
        write_checkpoint(&self.dir, end_offset).map_err(|e| BrokerError::io(&self.dir, e))?;
        debug!(
            "{}: cleaned up to offset {end_offset}: {} segments rewritten, {} of {} records removed, {} -> {} bytes",
            self.label,
            stats.segments_cleaned,
            stats.records_removed,
            stats.records_read,
            stats.bytes_before,
            stats.bytes_after
        );
        Ok(stats)
    }

    /// Rewrites the sealed segment at `base`; returns its size afterwards.
    fn clean_segment(
        &mut self,
        base: u64,
        now: i64,
        latest: &HashMap<Vec<u8>, u64>,
        stats: &mut CleanStats,
    ) -> Result<u64> {
        let Some(segment) = self.sealed.get(&base) else {
            return Ok(0);
        };
        let expire_tombstones = segment
            .max_timestamp()
            .is_none_or(|t| now >= t.saturating_add(self.config.delete_retention_ms));
        let keep = |r: &Record| match &r.key {
            None => false,
            Some(key) => {
                latest.get(key.as_ref()) == Some(&r.offset)
                    && !(r.value.is_none() && expire_tombstones)
            }
        };
        let cleaned = Segment::create_cleaned(&self.dir, base, &self.files)
            .map_err(|e| BrokerError::io(&self.dir, e))?;
        let cleaned_path = cleaned.path().to_path_buf();
        let mut out = Output {
            segment: cleaned,
            pending: Vec::new(),
            written: 0,
            interval: self.config.index_interval_bytes,
            next: base,
            gaps: Vec::new(),
        };
        let io_err = |e| BrokerError::io(&cleaned_path, e);
        let mut removed = 0u64;
        let mut encoded = Vec::new();
        let result = self.for_each_batch(segment, |header, bytes| {
            if header.is_control() {
                return out.push(&header, &bytes).map_err(io_err);
            }
            let aborted = self.is_aborted_batch(&header);
            let batch = self.decode(segment, &bytes)?;
            let count = batch.records.len();
            let kept: Vec<Record> = batch
                .records
                .into_iter()
                .filter(|r| !aborted && keep(r))
                .collect();
            stats.records_read += count as u64;
            removed += (count - kept.len()) as u64;
            if kept.len() == count {
                out.push(&header, &bytes).map_err(io_err)
            } else if kept.is_empty() {
                Ok(())
            } else {
                encoded.clear();
                batch::encode_retained(&mut encoded, &batch.info, &kept)
                    .map_err(|e| self.corrupt(segment, header.base_offset, e.to_string()))?;
                let new_header = BatchHeader::parse(&encoded)
                    .map_err(|e| self.corrupt(segment, header.base_offset, e.to_string()))?;
                out.push(&new_header, &encoded).map_err(io_err)
            }
        });
        let result = result.and_then(|()| {
            out.flush().map_err(io_err)?;
            if removed > 0 {
                out.segment.sync_data().map_err(io_err)?;
            }
            Ok(())
        });
        let size_before = segment.size();
        if result.is_err() || removed == 0 {
            let _ = fs::remove_file(&cleaned_path);
            result?;
            return Ok(size_before);
        }
        stats.records_removed += removed;
        stats.segments_cleaned += 1;

        // The offsets whose batches went (between kept batches, and after the last one up to
        // where the segment ended) are gaps on purpose. They are recorded (and durable)
        // before the swap, so that no open or read ever finds an unrecorded gap and takes
        // the partition offline.
        let (old_next, new_next) = (segment.next_offset(), out.next);
        if new_next < old_next {
            out.gaps.push((new_next, old_next));
        }
        if !out.gaps.is_empty() {
            let initial = if self.gaps.is_none() {
                Some(self.current_gaps())
            } else {
                None
            };
            let gaps = self.gaps.get_or_insert_with(|| initial.unwrap_or_default());
            for &(from, to) in &out.gaps {
                gaps.add(from, to);
            }
            let recorded = super::gaps::write(&self.dir, gaps).and_then(|()| sync_dir(&self.dir));
            if let Err(e) = recorded {
                let _ = fs::remove_file(&cleaned_path);
                return Err(BrokerError::io(self.dir.join(super::gaps::GAPS_FILE), e));
            }
        }

        // Swap: old indexes out, new file in, then its indexes.
        let mut cleaned = out.segment;
        let swapped = segment
            .remove_index_files()
            .map_err(|e| BrokerError::io(segment.path(), e))
            .and_then(|()| cleaned.install_cleaned().map_err(io_err));
        if let Err(e) = swapped {
            // The original segment stays; its index files are written again on close.
            let _ = fs::remove_file(&cleaned_path);
            if let Some(original) = self.sealed.get_mut(&base) {
                original.mark_indexes_dirty();
            }
            return Err(e);
        }
        cleaned.seal();
        let size_after = cleaned.size();
        let path = cleaned.path().to_path_buf();
        let is_first = self.sealed.keys().next() == Some(&base);
        self.sealed.insert(base, cleaned);
        sync_dir(&self.dir).map_err(|e| BrokerError::io(&self.dir, e))?;
        debug!(
            "{}: compacted {}: {size_before} -> {size_after} bytes, {removed} records removed",
            self.label,
            path.display()
        );
        if size_after == 0 && !is_first {
            // An empty segment in the middle carries nothing; the first one stays because its
            // base offset is the log start offset.
            if let Some(empty) = self.sealed.remove(&base) {
                empty
                    .remove_files()
                    .map_err(|e| BrokerError::io(empty.path(), e))?;
            }
            sync_dir(&self.dir).map_err(|e| BrokerError::io(&self.dir, e))?;
            return Ok(0);
        }
        if let Some(cleaned) = self.sealed.get_mut(&base) {
            cleaned
                .write_indexes()
                .map_err(|e| BrokerError::io(&path, e))?;
        }
        sync_dir(&self.dir).map_err(|e| BrokerError::io(&self.dir, e))?;
        Ok(size_after)
    }

    /// The gaps between the segments as they are (each one was accepted on open or left
    /// by this process's compaction): the start of a record of gaps for a log compacted
    /// before gaps were recorded.
    fn current_gaps(&self) -> super::gaps::Gaps {
        let mut gaps = super::gaps::Gaps::default();
        let mut previous_end: Option<u64> = None;
        for segment in self.sealed.values().chain(std::iter::once(&self.active)) {
            if let Some(end) = previous_end {
                gaps.add(end, segment.base_offset());
            }
            previous_end = Some(segment.next_offset());
        }
        gaps
    }

    /// The offset up to which the last cleaner pass compacted.
    #[cfg(test)]
    pub(super) fn cleaner_checkpoint(&self) -> u64 {
        self.cleaner_checkpoint
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_round_trips_and_rejects_damage() {
        let bytes = encode_checkpoint(1234);
        assert_eq!(decode_checkpoint(&bytes), Ok(1234));
        for i in 0..bytes.len() {
            let mut bad = bytes;
            bad[i] ^= 0x10;
            assert!(decode_checkpoint(&bad).is_err(), "byte {i}");
        }
        assert!(decode_checkpoint(&bytes[..15]).is_err());

        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_checkpoint(dir.path(), "t-0"), None);
        write_checkpoint(dir.path(), 99).unwrap();
        assert_eq!(read_checkpoint(dir.path(), "t-0"), Some(99));
        fs::write(dir.path().join(CHECKPOINT_FILE), b"garbage").unwrap();
        assert_eq!(read_checkpoint(dir.path(), "t-0"), None);
    }
}
