//! The record-batch codec: Kafka's record batch v2 layout (magic byte 2), the unit in which
//! records are stored in segment files and handed to consumers.
//!
//! Every integer is big-endian; `varint`/`varlong` are zigzag-encoded base-128 integers, as in
//! Kafka. The byte-by-byte layout is drawn in `docs/format.md`.
//!
//! ```text
//! offset  size  field
//!      0     8  baseOffset            i64
//!      8     4  batchLength           i32  bytes after this field
//!     12     4  partitionLeaderEpoch  i32  always 0
//!     16     1  magic                 i8   2
//!     17     4  crc                   u32  CRC32C of bytes 21..end
//!     21     2  attributes            i16  bits 0-2 compression codec, bit 3 timestamp
//!                                          type, bit 4 transactional, bit 5 control
//!     23     4  lastOffsetDelta       i32
//!     27     8  baseTimestamp         i64
//!     35     8  maxTimestamp          i64
//!     43     8  producerId            i64
//!     51     2  producerEpoch         i16
//!     53     4  baseSequence          i32
//!     57     4  recordCount           i32
//!     61     …  records
//! ```
//!
//! The records are stored as they are under codec 0 (none), and as one compressed stream
//! of the same bytes under codecs 1-4 (gzip, snappy, lz4, zstd; see [`Compression`]).
//! Decoding decompresses, with a bound on the output: [`max_decompressed_len`].
//!
//! The encoder writes into a caller's reusable buffer and allocates nothing per record; the
//! decoder hands out keys, values and header values as slices of the one [`Bytes`] buffer it
//! was given (of the decompressed records, for a compressed batch).

use std::borrow::Cow;
mod error;
mod header;
mod varint;

pub use self::error::{DecodeError, EncodeError};
pub use self::header::BatchHeader;

use std::ops::Range;

use bytes::Bytes;

use self::varint::*;
use crate::compression::{self, Inflate};
use crate::config::TimestampType;
use crate::record::{BatchInfo, Header, NewRecord, ProducerFields, Record, RecordBatch, RecordRef};

/// The format version byte of record batch v2.
pub const MAGIC: i8 = 2;

/// Bytes before the `batchLength` count starts: `baseOffset` and `batchLength` themselves.
pub const LOG_OVERHEAD: usize = 12;

/// Size of the fixed batch header, up to and including `recordCount`.
pub const BATCH_HEADER_LEN: usize = 61;

pub use crate::compression::Compression;

/// Bits 0-2 of the attributes: the compression codec (0 to 4, see [`Compression`]).
pub const COMPRESSION_MASK: i16 = 0x07;
/// Bit 3 of the attributes: set when the timestamps are `LogAppendTime`.
pub const TIMESTAMP_TYPE_FLAG: i16 = 0x08;
/// Bit 4 of the attributes: set when the batch belongs to a transaction.
pub const TRANSACTIONAL_FLAG: i16 = 0x10;
/// Bit 5 of the attributes: set when the batch is a transaction control marker.
pub const CONTROL_FLAG: i16 = 0x20;

/// Every attribute bit this codec knows.
const KNOWN_ATTRIBUTES: i16 =
    COMPRESSION_MASK | TIMESTAMP_TYPE_FLAG | TRANSACTIONAL_FLAG | CONTROL_FLAG;

/// The smallest possible encoded record: a one-byte length and six one-byte fields.
const MIN_RECORD_LEN: usize = 7;

/// The least [`max_decompressed_len`] allows any compressed batch: 64 MiB.
pub const MIN_DECOMPRESSED_LIMIT: usize = 64 << 20;

/// How many bytes the records of a compressed batch of `batch_size` bytes (the whole batch,
/// header included) may take once decompressed: 64 MiB, or 4 times the batch's size for a
/// batch larger than 16 MiB. A batch whose records decompress to more is refused as
/// corrupt, when it is decoded, validated or written, so a small batch that expands to
/// gigabytes (a zip bomb) never takes more memory than this.
///
/// The bound depends on the batch alone, not on a topic's `max.message.bytes`, so that a
/// batch accepted once stays readable whatever its topic's configs become; as every batch
/// a topic accepts is at most `max.message.bytes`, it is never above
/// `max(64 MiB, 4 × max.message.bytes)`.
pub fn max_decompressed_len(batch_size: usize) -> usize {
    MIN_DECOMPRESSED_LIMIT.max(batch_size.saturating_mul(4))
}

// Field positions inside a batch.
const LENGTH_AT: usize = 8;
const EPOCH_AT: usize = 12;
const MAGIC_AT: usize = 16;
const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;
const LAST_OFFSET_DELTA_AT: usize = 23;
const BASE_TIMESTAMP_AT: usize = 27;
const MAX_TIMESTAMP_AT: usize = 35;
const PRODUCER_ID_AT: usize = 43;
const PRODUCER_EPOCH_AT: usize = 51;
const BASE_SEQUENCE_AT: usize = 53;
const RECORD_COUNT_AT: usize = 57;

/// Encodes `records` as one batch appended to `buf` (which is not cleared), with offsets
/// `base_offset..` and the producer's fields, its records compressed with `compression`.
/// `log_append_time` is `None` for `CreateTime` or `Some(now)` for `LogAppendTime`, which
/// then becomes the batch's max timestamp.
///
/// Returns the batch's fields. Uncompressed, nothing is allocated per record and `buf`
/// grows at most once; compressed, the records are encoded in `buf`, then replaced by
/// their compressed stream. On an error `buf` is as it was.
pub fn encode_batch(
    buf: &mut Vec<u8>,
    records: &[NewRecord],
    base_offset: u64,
    producer: ProducerFields,
    log_append_time: Option<i64>,
    compression: Compression,
) -> Result<BatchInfo, EncodeError> {
    let records = records.iter().map(NewRecord::as_record_ref);
    encode_numbered(
        buf,
        records,
        base_offset,
        producer,
        log_append_time,
        compression,
    )
}

/// [`encode_batch`] for borrowed records.
pub fn encode_refs(
    buf: &mut Vec<u8>,
    records: &[RecordRef<'_>],
    base_offset: u64,
    producer: ProducerFields,
    log_append_time: Option<i64>,
    compression: Compression,
) -> Result<BatchInfo, EncodeError> {
    encode_numbered(
        buf,
        records.iter().copied(),
        base_offset,
        producer,
        log_append_time,
        compression,
    )
}

/// Encodes `records` with offset deltas 0, 1, 2...
fn encode_numbered<'a>(
    buf: &mut Vec<u8>,
    records: impl ExactSizeIterator<Item = RecordRef<'a>> + Clone,
    base_offset: u64,
    producer: ProducerFields,
    log_append_time: Option<i64>,
    compression: Compression,
) -> Result<BatchInfo, EncodeError> {
    let count = records.len();
    if count > i32::MAX as usize {
        return Err(EncodeError::TooManyRecords(count));
    }
    let fields = records.enumerate().map(|(i, r)| RecordFields {
        offset_delta: i as i32,
        timestamp: r.timestamp,
        key: r.key,
        value: r.value,
        headers: r.headers,
    });
    let last_offset_delta = count.saturating_sub(1) as i32;
    encode_fields(
        buf,
        fields,
        base_offset,
        last_offset_delta,
        producer,
        log_append_time,
        compression,
    )
}

/// Re-encodes the records of a stored batch that a compaction keeps, appended to `buf`.
///
/// `info` is the original batch; `records` are the kept ones, in offset order and with
/// their original offsets, timestamps, keys, values and headers. The new batch starts at the
/// first kept record's offset and ends at the last one's (the gaps are `offsetDelta` gaps);
/// it keeps the producer id and epoch, the transactional and control flags and the
/// timestamp type, and its base sequence moves with its base offset, so that every kept
/// record keeps its sequence number (`baseSequence + offsetDelta`). Under `LogAppendTime`
/// the original append time is kept. The records are compressed with the original
/// batch's codec (`info.compression`), as Kafka's cleaner does.
pub fn encode_retained(
    buf: &mut Vec<u8>,
    info: &BatchInfo,
    records: &[Record],
) -> Result<BatchInfo, EncodeError> {
    let (Some(first), Some(last)) = (records.first(), records.last()) else {
        return Err(EncodeError::Empty);
    };
    let base_offset = first.offset;
    let bad_offsets = EncodeError::Offsets {
        base_offset,
        last_offset: last.offset,
    };
    if base_offset < info.base_offset
        || last.offset > info.last_offset
        || records.windows(2).any(|w| w[1].offset <= w[0].offset)
    {
        return Err(bad_offsets);
    }
    let Ok(last_offset_delta) = i32::try_from(last.offset - base_offset) else {
        return Err(bad_offsets);
    };
    let moved = (base_offset - info.base_offset) as i64;
    let base_sequence = if info.base_sequence < 0 {
        info.base_sequence
    } else {
        // Sequence numbers wrap from i32::MAX to 0, as Kafka's do.
        ((i64::from(info.base_sequence) + moved) % (i64::from(i32::MAX) + 1)) as i32
    };
    let producer = ProducerFields {
        producer_id: info.producer_id,
        producer_epoch: info.producer_epoch,
        base_sequence,
        transactional: info.transactional,
        control: info.control,
    };
    let log_append_time = match info.timestamp_type {
        TimestampType::LogAppendTime => Some(info.max_timestamp),
        TimestampType::CreateTime => None,
    };
    let fields = records.iter().map(|r| RecordFields {
        offset_delta: (r.offset - base_offset) as i32,
        timestamp: r.timestamp,
        key: r.key.as_deref(),
        value: r.value.as_deref(),
        headers: &r.headers,
    });
    encode_fields(
        buf,
        fields,
        base_offset,
        last_offset_delta,
        producer,
        log_append_time,
        info.compression,
    )
}

/// One record's fields, borrowed, for the encoder.
#[derive(Clone, Copy)]
struct RecordFields<'a> {
    offset_delta: i32,
    timestamp: i64,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
    headers: &'a [Header],
}

impl RecordFields<'_> {
    /// Size of the record body (everything after its length varint).
    fn body_len(&self, base_timestamp: i64) -> Result<usize, EncodeError> {
        let mut len = 1 // attributes
            + varlong_len(self.timestamp.wrapping_sub(base_timestamp))
            + varint_len(self.offset_delta)
            + bytes_field_len(self.key, "key")?
            + bytes_field_len(self.value, "value")?
            + varint_len(length_i32(self.headers.len(), "header count")?);
        for header in self.headers {
            len += bytes_field_len(Some(header.key.as_bytes()), "header key")?;
            len += bytes_field_len(header.value.as_deref(), "header value")?;
        }
        length_i32(len, "record")?;
        Ok(len)
    }
}

fn length_i32(len: usize, what: &'static str) -> Result<i32, EncodeError> {
    i32::try_from(len).map_err(|_| EncodeError::TooLarge { what, len })
}

fn bytes_field_len(field: Option<&[u8]>, what: &'static str) -> Result<usize, EncodeError> {
    Ok(match field {
        None => 1,
        Some(b) => varint_len(length_i32(b.len(), what)?) + b.len(),
    })
}

fn encode_fields<'a, I>(
    buf: &mut Vec<u8>,
    records: I,
    base_offset: u64,
    last_offset_delta: i32,
    producer: ProducerFields,
    log_append_time: Option<i64>,
    compression: Compression,
) -> Result<BatchInfo, EncodeError>
where
    I: Iterator<Item = RecordFields<'a>> + Clone,
{
    let last_offset = base_offset.saturating_add(last_offset_delta as u64);
    if last_offset > i64::MAX as u64 {
        return Err(EncodeError::Offsets {
            base_offset,
            last_offset,
        });
    }
    // First pass: sizes (kept for the second) and timestamps.
    let mut bodies: Vec<u32> = Vec::with_capacity(records.size_hint().0);
    let mut base_timestamp = None;
    let mut max_timestamp = i64::MIN;
    let mut records_len = 0usize;
    for r in records.clone() {
        let base = *base_timestamp.get_or_insert(r.timestamp);
        let body = r.body_len(base)?;
        records_len += varint_len(body as i32) + body;
        max_timestamp = max_timestamp.max(r.timestamp);
        // `body_len` checked that it fits an i32.
        bodies.push(body as u32);
    }
    let count = bodies.len();
    let Some(base_timestamp) = base_timestamp else {
        return Err(EncodeError::Empty);
    };
    let record_count = i32::try_from(count).map_err(|_| EncodeError::TooManyRecords(count))?;
    let total = BATCH_HEADER_LEN + records_len;
    let batch_length = length_i32(total - LOG_OVERHEAD, "batch")?;

    let mut attributes = 0i16;
    let timestamp_type = match log_append_time {
        Some(now) => {
            attributes |= TIMESTAMP_TYPE_FLAG;
            max_timestamp = now;
            TimestampType::LogAppendTime
        }
        None => TimestampType::CreateTime,
    };
    if producer.transactional {
        attributes |= TRANSACTIONAL_FLAG;
    }
    if producer.control {
        attributes |= CONTROL_FLAG;
    }

    // Second pass: bytes, written into room made for exactly them.
    let start = buf.len();
    buf.resize(start + total, 0);
    let mut out = Cursor {
        buf: &mut buf[start..],
        at: 0,
    };
    out.put(&(base_offset as i64).to_be_bytes());
    out.put(&batch_length.to_be_bytes());
    out.put(&0i32.to_be_bytes()); // partition leader epoch
    out.put(&[MAGIC as u8]);
    out.put(&0u32.to_be_bytes()); // CRC, filled in below
    out.put(&attributes.to_be_bytes());
    out.put(&last_offset_delta.to_be_bytes());
    out.put(&base_timestamp.to_be_bytes());
    out.put(&max_timestamp.to_be_bytes());
    out.put(&producer.producer_id.to_be_bytes());
    out.put(&producer.producer_epoch.to_be_bytes());
    out.put(&producer.base_sequence.to_be_bytes());
    out.put(&record_count.to_be_bytes());
    for (r, body) in records.zip(bodies) {
        out.put_unsigned(zigzag32(body as i32));
        out.put(&[0]); // record attributes
        out.put_unsigned(zigzag64(r.timestamp.wrapping_sub(base_timestamp)));
        out.put_unsigned(zigzag32(r.offset_delta));
        out.put_bytes_field(r.key);
        out.put_bytes_field(r.value);
        out.put_unsigned(zigzag32(r.headers.len() as i32));
        for header in r.headers {
            out.put_bytes_field(Some(header.key.as_bytes()));
            out.put_bytes_field(header.value.as_deref());
        }
    }
    debug_assert_eq!(out.at, total);
    if compression != Compression::None {
        if let Err(e) = compress_records(buf, start, compression) {
            buf.truncate(start);
            return Err(e);
        }
    }
    let crc = crc32c::crc32c(&buf[start + ATTRIBUTES_AT..]);
    buf[start + CRC_AT..start + CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());

    Ok(BatchInfo {
        base_offset,
        last_offset,
        max_timestamp,
        timestamp_type,
        producer_id: producer.producer_id,
        producer_epoch: producer.producer_epoch,
        base_sequence: producer.base_sequence,
        transactional: producer.transactional,
        control: producer.control,
        compression,
    })
}

/// Replaces the uncompressed records of the batch at `buf[start..]` with their stream
/// compressed by `codec`, and sets its `batchLength` and codec bits (not its CRC).
fn compress_records(
    buf: &mut Vec<u8>,
    start: usize,
    codec: Compression,
) -> Result<(), EncodeError> {
    let records_at = start + BATCH_HEADER_LEN;
    let len = buf.len() - records_at;
    let mut packed = Vec::with_capacity(len / 2 + 64);
    compression::compress(codec, &buf[records_at..], &mut packed).map_err(EncodeError::Compress)?;
    let batch_size = BATCH_HEADER_LEN + packed.len();
    let batch_length = length_i32(batch_size - LOG_OVERHEAD, "compressed batch")?;
    let limit = max_decompressed_len(batch_size);
    if len > limit {
        return Err(EncodeError::Inflates {
            codec,
            batch_size,
            len,
            limit,
        });
    }
    buf.truncate(records_at);
    buf.extend_from_slice(&packed);
    buf[start + LENGTH_AT..start + LENGTH_AT + 4].copy_from_slice(&batch_length.to_be_bytes());
    let attributes = (get_i16(buf, start + ATTRIBUTES_AT) & !COMPRESSION_MASK) | codec.id();
    buf[start + ATTRIBUTES_AT..start + ATTRIBUTES_AT + 2]
        .copy_from_slice(&attributes.to_be_bytes());
    Ok(())
}

/// Rewrites the batch at the start of `batch` with its records compressed by `to` (or
/// stored uncompressed for [`Compression::None`]), for a topic whose `compression.type`
/// is a codec: every other field (offsets, producer id, epoch and sequence, timestamps,
/// the other attribute bits, the record count) and every record byte stay as they are, and
/// the CRC is computed anew. A batch already in `to` comes back as it is.
///
/// The batch is checked in full first ([`validate_batch`]); an invalid one is
/// [`EncodeError::Invalid`]. The rewritten batch may be refused with
/// [`EncodeError::Inflates`] only when its records take more than 64 MiB and it would be
/// less than a quarter of that (readers would refuse it: see [`max_decompressed_len`]).
pub fn recompress(batch: &[u8], to: Compression) -> Result<Vec<u8>, EncodeError> {
    let header = validate_batch(batch)?;
    let size = header.size();
    if header.compression() == to {
        return Ok(batch[..size].to_vec());
    }
    let records = header.records(batch)?;
    let mut out = Vec::with_capacity(BATCH_HEADER_LEN + records.len());
    out.extend_from_slice(&batch[..BATCH_HEADER_LEN]);
    out.extend_from_slice(&records);
    let batch_length = length_i32(out.len() - LOG_OVERHEAD, "batch")?;
    out[LENGTH_AT..LENGTH_AT + 4].copy_from_slice(&batch_length.to_be_bytes());
    let attributes = header.attributes & !COMPRESSION_MASK;
    out[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    if to != Compression::None {
        compress_records(&mut out, 0, to)?;
    }
    let crc = crc32c::crc32c(&out[ATTRIBUTES_AT..]);
    out[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(out)
}

/// Writes a batch into a slice that the first pass sized: the sizes and the writes follow
/// the same fields, so every write fits.
struct Cursor<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl Cursor<'_> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        let end = self.at + bytes.len();
        self.buf[self.at..end].copy_from_slice(bytes);
        self.at = end;
    }

    #[inline]
    fn put_unsigned(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf[self.at] = (v as u8) | 0x80;
            self.at += 1;
            v >>= 7;
        }
        self.buf[self.at] = v as u8;
        self.at += 1;
    }

    #[inline]
    fn put_bytes_field(&mut self, field: Option<&[u8]>) {
        match field {
            // -1, zigzagged.
            None => self.put_unsigned(1),
            Some(b) => {
                self.put_unsigned(zigzag32(b.len() as i32));
                self.put(b);
            }
        }
    }
}

/// Decodes the batch at the start of `buf`: checks its header, its CRC, its record count and
/// every record (decompressing them first for a compressed batch), and returns it with the
/// number of bytes it took. Keys, values and header values are slices of `buf`, or of the
/// decompressed records.
pub fn decode_batch(buf: &Bytes) -> Result<(RecordBatch, usize), DecodeError> {
    decode_batch_at(buf, 0, 0)
}

/// Decodes the batch that starts at byte `start` of `buf`, leaving out its records whose
/// offset is below `min_offset` (the batch's `info` still describes the whole stored batch).
/// Returns the batch and its size in bytes.
pub fn decode_batch_at(
    buf: &Bytes,
    start: usize,
    min_offset: u64,
) -> Result<(RecordBatch, usize), DecodeError> {
    let data = buf.get(start..).unwrap_or_default();
    let header = BatchHeader::parse(data)?;
    header.verify_crc(data)?;
    let size = header.size();
    // Where the record bytes are: in `buf`, or in a buffer of their own once decompressed.
    let (source, range) = match header.records(data)? {
        Cow::Borrowed(_) => (buf.clone(), start + BATCH_HEADER_LEN..start + size),
        Cow::Owned(records) => {
            let len = records.len();
            (Bytes::from(records), 0..len)
        }
    };
    let records_at = range.start;
    let area = &source[range];
    let buf = &source;
    let log_append = header.timestamp_type() == TimestampType::LogAppendTime;

    let count = header.record_count as usize;
    let mut records = Vec::with_capacity(count);
    let mut pos = 0usize;
    let mut previous_delta = -1i64;
    for index in 0..count {
        if pos == area.len() {
            return Err(DecodeError::MissingRecords {
                count,
                found: index,
            });
        }
        let mut headers = Vec::new();
        let keep_headers = |key: &str, value: Option<Range<usize>>, headers: &mut Vec<Header>| {
            headers.push(Header {
                key: key.to_owned(),
                value: value.map(|r| buf.slice(records_at + r.start..records_at + r.end)),
            })
        };
        let raw = parse_record(area, &mut pos, &mut |k, v| keep_headers(k, v, &mut headers))
            .map_err(|reason| DecodeError::Record { index, reason })?;
        check_offset_delta(&header, raw.offset_delta, &mut previous_delta)
            .map_err(|reason| DecodeError::Record { index, reason })?;
        let offset = header.base_offset + raw.offset_delta as u64;
        if offset < min_offset {
            continue;
        }
        let slice = |r: Range<usize>| buf.slice(records_at + r.start..records_at + r.end);
        records.push(Record {
            offset,
            timestamp: if log_append {
                header.max_timestamp
            } else {
                header.base_timestamp.wrapping_add(raw.timestamp_delta)
            },
            key: raw.key.map(slice),
            value: raw.value.map(slice),
            headers,
        });
    }
    if pos != area.len() {
        return Err(DecodeError::TrailingBytes(area.len() - pos));
    }
    Ok((
        RecordBatch {
            info: header.info(),
            records,
        },
        size,
    ))
}

/// Checks a whole batch at the start of `buf` without building records: its header, its
/// CRC, that compressed records decompress (within [`max_decompressed_len`]), that the
/// record count matches, that every record parses, and that no byte is left after the last
/// one. The check run on recovery and on batches from clients. Returns its header.
pub fn validate_batch(buf: &[u8]) -> Result<BatchHeader, DecodeError> {
    let header = BatchHeader::parse(buf)?;
    header.verify_crc(buf)?;
    let records = header.records(buf)?;
    let area = &records[..];
    let mut pos = 0usize;
    let mut previous_delta = -1i64;
    let count = header.record_count as usize;
    for index in 0..count {
        if pos == area.len() {
            return Err(DecodeError::MissingRecords {
                count,
                found: index,
            });
        }
        let raw = parse_record(area, &mut pos, &mut |_, _| {})
            .map_err(|reason| DecodeError::Record { index, reason })?;
        check_offset_delta(&header, raw.offset_delta, &mut previous_delta)
            .map_err(|reason| DecodeError::Record { index, reason })?;
    }
    if pos != area.len() {
        return Err(DecodeError::TrailingBytes(area.len() - pos));
    }
    Ok(header)
}

/// Sets the `baseOffset` of the batch at the start of `buf` (outside the CRC).
pub(crate) fn set_base_offset(buf: &mut [u8], base_offset: u64) {
    buf[..8].copy_from_slice(&(base_offset as i64).to_be_bytes());
}

/// Sets the `partitionLeaderEpoch` of the batch at the start of `buf` to 0, the one epoch of
/// this broker (outside the CRC; a producer sends -1).
pub(crate) fn reset_leader_epoch(buf: &mut [u8]) {
    buf[EPOCH_AT..EPOCH_AT + 4].copy_from_slice(&0i32.to_be_bytes());
}

/// Turns the batch at the start of `buf` into a `LogAppendTime` batch stamped `now`: the
/// timestamp type bit and `maxTimestamp` set, the CRC computed again.
pub(crate) fn stamp_log_append_time(buf: &mut [u8], header: &BatchHeader, now: i64) {
    let attributes = header.attributes | TIMESTAMP_TYPE_FLAG;
    buf[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    buf[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&now.to_be_bytes());
    let crc = crc32c::crc32c(&buf[ATTRIBUTES_AT..header.size()]);
    buf[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
}

fn check_offset_delta(
    header: &BatchHeader,
    delta: i32,
    previous: &mut i64,
) -> Result<(), &'static str> {
    let delta = i64::from(delta);
    if delta <= *previous {
        return Err("offset deltas must increase");
    }
    if delta > i64::from(header.last_offset_delta) {
        return Err("offset delta beyond the batch's last offset delta");
    }
    *previous = delta;
    Ok(())
}

/// A record's fields as positions in the record section.
struct RawRecord {
    timestamp_delta: i64,
    offset_delta: i32,
    key: Option<Range<usize>>,
    value: Option<Range<usize>>,
}

/// Parses the record at `*pos` of the record section `area`, calling `on_header` with each
/// header's key and value position, and moves `*pos` past it.
#[inline]
fn parse_record(
    area: &[u8],
    pos: &mut usize,
    on_header: &mut dyn FnMut(&str, Option<Range<usize>>),
) -> Result<RawRecord, &'static str> {
    let length = read_varint(area, pos)?;
    if length < (MIN_RECORD_LEN - 1) as i32 {
        return Err("record length too small");
    }
    let end = pos
        .checked_add(length as usize)
        .filter(|&end| end <= area.len())
        .ok_or("record length runs past the batch")?;
    let rec = &area[..end];
    let attributes = *rec.get(*pos).ok_or("record ends early")?;
    if attributes != 0 {
        return Err("record attributes must be 0");
    }
    *pos += 1;
    let timestamp_delta = read_varlong(rec, pos)?;
    let offset_delta = read_varint(rec, pos)?;
    if offset_delta < 0 {
        return Err("negative offset delta");
    }
    let key = read_bytes_field(rec, pos, "key length out of range")?;
    let value = read_bytes_field(rec, pos, "value length out of range")?;
    let header_count = read_varint(rec, pos)?;
    if header_count < 0 || header_count as usize > (end - *pos) / 2 {
        return Err("header count out of range");
    }
    for _ in 0..header_count {
        let key = read_bytes_field(rec, pos, "header key length out of range")?
            .ok_or("null header key")?;
        let key = std::str::from_utf8(&rec[key]).map_err(|_| "header key is not UTF-8")?;
        let value = read_bytes_field(rec, pos, "header value length out of range")?;
        on_header(key, value);
    }
    if *pos != end {
        return Err("record length does not match its fields");
    }
    Ok(RawRecord {
        timestamp_delta,
        offset_delta,
        key,
        value,
    })
}

#[inline]
fn read_bytes_field(
    data: &[u8],
    pos: &mut usize,
    error: &'static str,
) -> Result<Option<Range<usize>>, &'static str> {
    let len = read_varint(data, pos)?;
    if len == -1 {
        return Ok(None);
    }
    if len < 0 {
        return Err(error);
    }
    let start = *pos;
    let end = start
        .checked_add(len as usize)
        .filter(|&end| end <= data.len())
        .ok_or(error)?;
    *pos = end;
    Ok(Some(start..end))
}

fn get_i16(buf: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([buf[at], buf[at + 1]])
}

fn get_u32(buf: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

fn get_i32(buf: &[u8], at: usize) -> i32 {
    get_u32(buf, at) as i32
}

fn get_i64(buf: &[u8], at: usize) -> i64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[at..at + 8]);
    i64::from_be_bytes(b)
}

#[cfg(test)]
mod tests;
