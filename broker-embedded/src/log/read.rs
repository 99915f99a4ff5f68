//! Reads of a partition's log: whole stored batches from an offset, checked on the way
//! (offsets run on, the index is only a hint), decoded after the partition's lock is
//! released.

use std::path::PathBuf;

use bytes::Bytes;
use tracing::warn;

use super::segment::Segment;
use super::{Log, MAX_READ_SLACK};
use crate::batch::{self, BatchHeader, DecodeError, BATCH_HEADER_LEN};
use crate::error::{BrokerError, Result};
use crate::record::RecordBatch;

impl Log {
    /// [`Log::read_stored`] for a `read_committed` consumer: stops at the last stable
    /// offset, and marks the batches of aborted transactions to come back with no records
    /// (the batches stay, so the reader can move past them).
    pub(crate) fn read_committed_stored(
        &self,
        offset: u64,
        max_bytes: usize,
        max_offset: u64,
    ) -> Result<StoredBatches> {
        let lso = self.last_stable_offset();
        let mut stored = self.read_stored(offset, max_bytes, max_offset.min(lso))?;
        for b in &mut stored.batches {
            b.aborted = b.in_transaction && self.producers.is_aborted(b.producer_id, b.base_offset);
        }
        Ok(stored)
    }

    /// Reads batches from `offset`: whole batches, in order, about `max_bytes` of them (at
    /// least one whole batch, however large, as Kafka does), none whose base offset is
    /// `max_offset` or above. Records below `offset` in the first batch are left out, so
    /// every returned batch holds at least one record at or after `offset`.
    ///
    /// `offset == log end` returns nothing; an offset below the log start or above the log
    /// end is `OffsetOutOfRange`. A batch that fails its checks is `CorruptBatch`.
    pub(crate) fn read(
        &self,
        offset: u64,
        max_bytes: usize,
        max_offset: u64,
    ) -> Result<Vec<RecordBatch>> {
        self.read_stored(offset, max_bytes, max_offset)?.decode()
    }

    /// [`Log::read`] without the decoding: the batches as stored, checked (CRC aside) and
    /// ready to decode after the partition's lock is released, so that a reader decoding a
    /// large fetch does not hold up appends.
    pub(crate) fn read_stored(
        &self,
        offset: u64,
        max_bytes: usize,
        max_offset: u64,
    ) -> Result<StoredBatches> {
        let (start, end) = (self.log_start_offset(), self.log_end_offset());
        if let Some(d) = self.damage.as_ref().filter(|d| offset >= d.offset) {
            return Err(self.offline_error(d));
        }
        if offset < start || offset > end {
            return Err(BrokerError::OffsetOutOfRange {
                topic: self.topic.clone(),
                partition: self.partition,
                offset,
                log_start_offset: start,
                log_end_offset: end,
            });
        }
        let mut out = StoredBatches {
            topic: self.topic.clone(),
            partition: self.partition,
            min_offset: offset,
            file: PathBuf::new(),
            batches: Vec::new(),
        };
        let max_offset = match &self.damage {
            Some(d) => max_offset.min(d.offset),
            None => max_offset,
        };
        if offset == end || offset >= max_offset {
            return Ok(out);
        }
        let floor = if self.active.base_offset() <= offset {
            self.active.base_offset()
        } else {
            self.sealed
                .range(..=offset)
                .next_back()
                .map_or(start, |(&base, _)| base)
        };
        let mut segments = self
            .segments()
            .skip_while(|s| s.base_offset() < floor)
            .peekable();
        while let Some(segment) = segments.next() {
            let limit = segments.peek().map_or(end, |next| next.base_offset());
            let done =
                self.read_segment(segment, limit, offset, max_bytes, max_offset, &mut out)?;
            // One segment per read, unless it had nothing at or after `offset` (compaction
            // can leave a segment's tail, or a whole segment, empty).
            if done || !out.batches.is_empty() {
                break;
            }
        }
        Ok(out)
    }

    /// Reads from one segment whose batches must lie below `limit`. Returns true when the
    /// read is complete (the byte budget is used or `max_offset` is reached).
    pub(super) fn read_segment(
        &self,
        segment: &Segment,
        limit: u64,
        offset: u64,
        max_bytes: usize,
        max_offset: u64,
        out: &mut StoredBatches,
    ) -> Result<bool> {
        let start = segment.floor_position(offset);
        let args = (limit, offset, max_bytes, max_offset);
        match self.read_segment_from(segment, start, args, out)? {
            Some(done) => Ok(done),
            None => {
                // The index is a hint: it pointed at the wrong batch, so scan from the start
                // of the segment, and have the index rebuilt.
                warn!(
                    file = %segment.path().display(),
                    "{}: the index of {} places offset {offset} at byte {start}, which does not \
                     hold it; reading by a scan and rebuilding the index",
                    self.label,
                    segment.path().display()
                );
                self.index_misses
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(segment.base_offset());
                self.index_missed
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                Ok(self
                    .read_segment_from(segment, 0, args, out)?
                    .unwrap_or(false))
            }
        }
    }

    /// [`Log::read_segment`] from byte `start`; `None` when `start` came from the index and
    /// the batch there does not hold `offset` (nothing was collected then).
    pub(super) fn read_segment_from(
        &self,
        segment: &Segment,
        start: u64,
        (limit, offset, max_bytes, max_offset): (u64, u64, usize, u64),
        out: &mut StoredBatches,
    ) -> Result<Option<bool>> {
        let end = match &self.damage {
            Some(d) if d.file == segment.path() => d.position.min(segment.size()),
            _ => segment.size(),
        };
        let mut position = start;
        let mut first = start > 0;
        // The offset the next batch must start at (or, past a gap compaction recorded,
        // after); unknown for the first batch read from an index position.
        let mut expected_next = (start == 0).then(|| segment.base_offset());
        let mut collected = 0usize;
        let mut min_len = 0usize;
        let mut expected_min = segment.base_offset();
        let slack = self.config.index_interval_bytes.min(MAX_READ_SLACK) as usize;
        while position < end {
            let mut want = max_bytes
                .saturating_sub(collected)
                .max(min_len)
                .max(BATCH_HEADER_LEN);
            if collected == 0 {
                want = want.saturating_add(slack);
            }
            let len = (want as u64).min(end - position) as usize;
            let buf = segment
                .read_at(position, len)
                .map_err(|e| BrokerError::io(segment.path(), e))?;
            min_len = 0;
            let mut p = 0usize;
            loop {
                let at = position + p as u64;
                if at >= end {
                    return Ok(Some(false));
                }
                if p + BATCH_HEADER_LEN > buf.len() {
                    if end - at < BATCH_HEADER_LEN as u64 {
                        let e = DecodeError::Truncated {
                            needed: BATCH_HEADER_LEN,
                            available: (end - at) as usize,
                        };
                        return Err(self.corrupt(
                            segment,
                            expected_min,
                            format!("at byte {at}: {e}"),
                        ));
                    }
                    break;
                }
                let parsed = BatchHeader::parse(&buf[p..]);
                if std::mem::take(&mut first) {
                    // The batch the index points at must hold `offset` or lie before it.
                    let misses = match &parsed {
                        Ok(header) => {
                            header.base_offset > offset || at + header.size() as u64 > end
                        }
                        Err(_) => true,
                    };
                    if misses {
                        return Ok(None);
                    }
                }
                let header = parsed.map_err(|e| {
                    self.corrupt(segment, expected_min, format!("at byte {at}: {e}"))
                })?;
                let size = header.size();
                if at + size as u64 > end {
                    return Err(self.corrupt(
                        segment,
                        header.base_offset,
                        format!("at byte {at}: batch of {size} bytes runs past the end of the segment ({end} bytes)"),
                    ));
                }
                if let Some(next) = expected_next {
                    if header.base_offset > next && !self.gap_allowed(next, header.base_offset) {
                        return Err(self.corrupt(
                            segment,
                            next,
                            format!(
                                "at byte {at}: batch base offset {} where {next} was expected, \
                                 and no gap is recorded there",
                                header.base_offset
                            ),
                        ));
                    }
                }
                expected_next = Some(header.next_offset());
                if header.base_offset < expected_min || header.last_offset() >= limit {
                    return Err(self.corrupt(
                        segment,
                        header.base_offset,
                        format!(
                            "at byte {at}: batch offsets {}..={} outside the expected range {expected_min}..{limit}",
                            header.base_offset,
                            header.last_offset()
                        ),
                    ));
                }
                if header.last_offset() < offset {
                    expected_min = header.next_offset();
                    p += size;
                    if p > buf.len() {
                        break;
                    }
                    continue;
                }
                if header.base_offset >= max_offset {
                    return Ok(Some(true));
                }
                if collected > 0 && collected + size > max_bytes {
                    return Ok(Some(true));
                }
                if p + size > buf.len() {
                    min_len = size;
                    break;
                }
                if out.batches.is_empty() {
                    out.file = segment.path().to_path_buf();
                }
                out.batches.push(StoredBatch {
                    buf: buf.clone(),
                    start: p,
                    at,
                    base_offset: header.base_offset,
                    producer_id: header.producer_id,
                    in_transaction: header.is_transactional() && !header.is_control(),
                    aborted: false,
                });
                expected_min = header.next_offset();
                collected += size;
                p += size;
                if collected >= max_bytes {
                    return Ok(Some(true));
                }
            }
            position += p as u64;
        }
        Ok(Some(false))
    }
}

/// Batches as a read found them in a segment, to decode with [`StoredBatches::decode`]
/// (after the partition's lock is released).
#[derive(Debug)]
pub(crate) struct StoredBatches {
    topic: String,
    partition: u32,
    /// Records below it are left out of the first batch.
    min_offset: u64,
    /// The segment file the batches come from (a read takes them from one segment).
    file: PathBuf,
    batches: Vec<StoredBatch>,
}

/// One stored batch: where it sits in the bytes read, and whether it belongs to an aborted
/// transaction (a `read_committed` read returns those with no records).
#[derive(Debug)]
struct StoredBatch {
    buf: Bytes,
    start: usize,
    /// Its byte position in the segment file, for errors.
    at: u64,
    base_offset: u64,
    producer_id: i64,
    /// A transactional data batch (not a marker).
    in_transaction: bool,
    aborted: bool,
}

impl StoredBatches {
    /// The offset after the last batch read, `None` when nothing was read.
    pub(crate) fn next_offset(&self) -> Option<u64> {
        let last = self.batches.last()?;
        BatchHeader::parse(&last.buf[last.start..])
            .ok()
            .map(|h| h.next_offset())
    }

    /// The batches' bytes as stored, in order, not decoded. Batches read into one buffer lie
    /// next to each other there and come back as one slice of it; only a read that spans
    /// buffers is copied.
    pub(crate) fn into_bytes(self) -> Bytes {
        // Runs of `(buffer, start..end)`.
        let mut runs: Vec<(Bytes, std::ops::Range<usize>)> = Vec::new();
        for b in self.batches {
            let size = BatchHeader::parse(&b.buf[b.start..]).map_or(0, |h| h.size());
            let end = (b.start + size).min(b.buf.len());
            match runs.last_mut() {
                Some((buf, range))
                    if buf.as_ptr() == b.buf.as_ptr()
                        && buf.len() == b.buf.len()
                        && range.end == b.start =>
                {
                    range.end = end;
                }
                _ => runs.push((b.buf, b.start..end)),
            }
        }
        match runs.len() {
            0 => Bytes::new(),
            1 => {
                let (buf, range) = runs.swap_remove(0);
                buf.slice(range)
            }
            _ => {
                let total = runs.iter().map(|(_, r)| r.len()).sum();
                let mut out = Vec::with_capacity(total);
                for (buf, range) in runs {
                    out.extend_from_slice(&buf[range]);
                }
                Bytes::from(out)
            }
        }
    }

    /// Decodes the batches, in order; a batch that fails to decode (a bad CRC, a record
    /// that does not parse) is `CorruptBatch`, naming its file and byte position.
    pub(crate) fn decode(self) -> Result<Vec<RecordBatch>> {
        let StoredBatches {
            topic,
            partition,
            min_offset,
            file,
            batches,
        } = self;
        batches
            .into_iter()
            .map(|b| {
                let (mut batch, _) =
                    batch::decode_batch_at(&b.buf, b.start, min_offset).map_err(|e| {
                        BrokerError::CorruptBatch {
                            topic: topic.clone(),
                            partition,
                            offset: b.base_offset,
                            file: file.clone(),
                            reason: format!("at byte {}: {e}", b.at),
                        }
                    })?;
                if b.aborted {
                    batch.records.clear();
                }
                Ok(batch)
            })
            .collect()
    }
}
