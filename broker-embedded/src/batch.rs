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
use std::ops::Range;

use bytes::Bytes;

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

/// Why bytes are not a valid record batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The buffer ends before the batch does.
    #[error("truncated batch: {needed} bytes needed, {available} available")]
    Truncated {
        /// Bytes the batch needs.
        needed: usize,
        /// Bytes there are.
        available: usize,
    },
    /// The magic byte is not 2.
    #[error("unsupported magic byte {0}: only record batch v2 (magic 2) is supported")]
    UnsupportedMagic(i8),
    /// The partition leader epoch is not 0.
    #[error("partition leader epoch {0}, expected 0")]
    PartitionLeaderEpoch(i32),
    /// `batchLength` is smaller than a header or negative.
    #[error("batch length {0} is out of range")]
    BatchLength(i32),
    /// The stored CRC does not match the bytes.
    #[error("CRC32C mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    Crc {
        /// The CRC in the batch header.
        stored: u32,
        /// The CRC of the bytes.
        computed: u32,
    },
    /// An attribute bit this codec does not know is set (bit 6 and above).
    #[error("unsupported batch attributes {0:#06x}: unknown bits {bits:#06x}", bits = .0 & !KNOWN_ATTRIBUTES)]
    Attributes(i16),
    /// The compression codec in bits 0-2 of the attributes is not 0 to 4.
    #[error("unknown compression codec {0} in the batch attributes (known: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd)")]
    UnknownCompression(i16),
    /// The compressed records do not decompress.
    #[error("{codec} records do not decompress: {reason}")]
    Decompress {
        /// The batch's codec.
        codec: Compression,
        /// What the decompressor found wrong.
        reason: String,
    },
    /// The compressed records decompress to more than [`max_decompressed_len`].
    #[error("{codec} records decompress to more than {limit} bytes")]
    DecompressedTooLarge {
        /// The batch's codec.
        codec: Compression,
        /// The bound for this batch.
        limit: usize,
    },
    /// `baseOffset` is negative or the batch's last offset overflows.
    #[error("invalid base offset {base_offset} with last offset delta {last_offset_delta}")]
    Offsets {
        /// The stored base offset.
        base_offset: i64,
        /// The stored last offset delta.
        last_offset_delta: i32,
    },
    /// `recordCount` does not fit the batch.
    #[error("record count {count} does not fit a batch of {records_len} record bytes with last offset delta {last_offset_delta}")]
    RecordCount {
        /// The stored record count.
        count: i32,
        /// Bytes of the record section.
        records_len: usize,
        /// The stored last offset delta.
        last_offset_delta: i32,
    },
    /// A record is malformed.
    #[error("record {index}: {reason}")]
    Record {
        /// Index of the record in the batch.
        index: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The records end before `recordCount` of them were read.
    #[error("record count {count}, but the records end after {found}")]
    MissingRecords {
        /// The stored record count.
        count: usize,
        /// Records there are.
        found: usize,
    },
    /// Bytes are left in the batch after its last record.
    #[error("{0} bytes left after the last record")]
    TrailingBytes(usize),
}

/// Why records cannot be encoded as one batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A batch needs at least one record.
    #[error("a batch needs at least one record")]
    Empty,
    /// More records than a batch can count.
    #[error("{0} records do not fit in one batch")]
    TooManyRecords(usize),
    /// A key, value, header or the whole batch is larger than the format can express.
    #[error("{what} of {len} bytes is too large for a record batch")]
    TooLarge {
        /// Which part.
        what: &'static str,
        /// Its size.
        len: usize,
    },
    /// Offsets that the format cannot express (above `i64::MAX`, or not increasing).
    #[error("offsets {base_offset}..={last_offset} cannot be encoded")]
    Offsets {
        /// The batch's first offset.
        base_offset: u64,
        /// The batch's last offset.
        last_offset: u64,
    },
    /// The codec failed.
    #[error("{0}")]
    Compress(String),
    /// The records take more bytes uncompressed than the compressed batch may decompress
    /// to ([`max_decompressed_len`]); readers would refuse it.
    #[error("{codec} batch of {batch_size} bytes holds {len} bytes of records, more than the {limit} a batch of its size may decompress to")]
    Inflates {
        /// The codec.
        codec: Compression,
        /// Size of the compressed batch.
        batch_size: usize,
        /// Bytes of the uncompressed records.
        len: usize,
        /// [`max_decompressed_len`] of the batch.
        limit: usize,
    },
    /// The batch given to [`recompress`] is not valid.
    #[error("invalid batch: {0}")]
    Invalid(#[from] DecodeError),
}

/// The fixed 61-byte header of a batch, parsed without touching the records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record.
    pub base_offset: u64,
    /// `batchLength`: bytes after the length field.
    pub batch_length: u32,
    /// The stored CRC32C.
    pub crc: u32,
    /// The attribute bits.
    pub attributes: i16,
    /// Offset of the last record minus the base offset.
    pub last_offset_delta: i32,
    /// Timestamp the record timestamp deltas are relative to.
    pub base_timestamp: i64,
    /// The largest timestamp (the append time under `LogAppendTime`).
    pub max_timestamp: i64,
    /// Producer id, or -1.
    pub producer_id: i64,
    /// Producer epoch, or -1.
    pub producer_epoch: i16,
    /// Sequence of the first record, or -1.
    pub base_sequence: i32,
    /// Number of records.
    pub record_count: i32,
}

impl BatchHeader {
    /// Parses and checks the header at the start of `buf`: magic, partition leader epoch,
    /// batch length, attributes (a known codec and no unknown bit), offsets and record
    /// count. The CRC is not checked here, nor are compressed records decompressed.
    pub fn parse(buf: &[u8]) -> Result<BatchHeader, DecodeError> {
        if buf.len() < BATCH_HEADER_LEN {
            return Err(DecodeError::Truncated {
                needed: BATCH_HEADER_LEN,
                available: buf.len(),
            });
        }
        let magic = buf[MAGIC_AT] as i8;
        if magic != MAGIC {
            return Err(DecodeError::UnsupportedMagic(magic));
        }
        let epoch = get_i32(buf, EPOCH_AT);
        if epoch != 0 {
            return Err(DecodeError::PartitionLeaderEpoch(epoch));
        }
        let batch_length = get_i32(buf, LENGTH_AT);
        if batch_length < (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32 {
            return Err(DecodeError::BatchLength(batch_length));
        }
        let attributes = get_i16(buf, ATTRIBUTES_AT);
        if attributes & !KNOWN_ATTRIBUTES != 0 {
            return Err(DecodeError::Attributes(attributes));
        }
        let codec = attributes & COMPRESSION_MASK;
        let Some(compression) = Compression::from_id(codec) else {
            return Err(DecodeError::UnknownCompression(codec));
        };
        let base_offset = get_i64(buf, 0);
        let last_offset_delta = get_i32(buf, LAST_OFFSET_DELTA_AT);
        if base_offset < 0
            || last_offset_delta < 0
            || base_offset
                .checked_add(i64::from(last_offset_delta))
                .is_none()
        {
            return Err(DecodeError::Offsets {
                base_offset,
                last_offset_delta,
            });
        }
        let record_count = get_i32(buf, RECORD_COUNT_AT);
        let records_len = batch_length as usize + LOG_OVERHEAD - BATCH_HEADER_LEN;
        // Compressed records are checked against their decompressed size when decoded.
        let max_records_len = match compression {
            Compression::None => records_len,
            _ => max_decompressed_len(batch_length as usize + LOG_OVERHEAD),
        };
        if record_count < 0
            || i64::from(record_count) > i64::from(last_offset_delta) + 1
            || record_count as usize > max_records_len / MIN_RECORD_LEN
        {
            return Err(DecodeError::RecordCount {
                count: record_count,
                records_len,
                last_offset_delta,
            });
        }
        Ok(BatchHeader {
            base_offset: base_offset as u64,
            batch_length: batch_length as u32,
            crc: get_u32(buf, CRC_AT),
            attributes,
            last_offset_delta,
            base_timestamp: get_i64(buf, BASE_TIMESTAMP_AT),
            max_timestamp: get_i64(buf, MAX_TIMESTAMP_AT),
            producer_id: get_i64(buf, PRODUCER_ID_AT),
            producer_epoch: get_i16(buf, PRODUCER_EPOCH_AT),
            base_sequence: get_i32(buf, BASE_SEQUENCE_AT),
            record_count,
        })
    }

    /// Total size of the batch in bytes, `baseOffset` and `batchLength` included.
    pub fn size(&self) -> usize {
        LOG_OVERHEAD + self.batch_length as usize
    }

    /// Offset of the batch's last record.
    pub fn last_offset(&self) -> u64 {
        self.base_offset + self.last_offset_delta as u64
    }

    /// The offset after the batch's last record.
    pub fn next_offset(&self) -> u64 {
        self.last_offset() + 1
    }

    /// Whose timestamps the records carry.
    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes & TIMESTAMP_TYPE_FLAG != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    /// Whether the batch belongs to a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_FLAG != 0
    }

    /// Whether the batch is a transaction control marker.
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_FLAG != 0
    }

    /// The codec of the records (bits 0-2 of the attributes). Always the stored codec for
    /// a header from [`BatchHeader::parse`], which refuses unknown ones; `None` for a header
    /// built by hand with an unknown one.
    pub fn compression(&self) -> Compression {
        Compression::from_id(self.attributes & COMPRESSION_MASK).unwrap_or_default()
    }

    /// The bytes of the record section of `batch` (this batch's bytes): decompressed for a
    /// compressed batch (bounded by [`max_decompressed_len`]), borrowed otherwise. The CRC
    /// is not checked here.
    fn records<'a>(&self, batch: &'a [u8]) -> Result<Cow<'a, [u8]>, DecodeError> {
        let size = self.size();
        if batch.len() < size {
            return Err(DecodeError::Truncated {
                needed: size,
                available: batch.len(),
            });
        }
        let area = &batch[BATCH_HEADER_LEN..size];
        let codec = self.compression();
        if codec == Compression::None {
            return Ok(Cow::Borrowed(area));
        }
        let limit = max_decompressed_len(size);
        let records = compression::decompress(codec, area, limit).map_err(|e| match e {
            Inflate::TooLarge => DecodeError::DecompressedTooLarge { codec, limit },
            Inflate::Invalid(reason) => DecodeError::Decompress { codec, reason },
        })?;
        // A count that the decompressed bytes cannot hold is refused before anything is
        // allocated per record.
        if self.record_count as usize > records.len() / MIN_RECORD_LEN {
            return Err(DecodeError::RecordCount {
                count: self.record_count,
                records_len: records.len(),
                last_offset_delta: self.last_offset_delta,
            });
        }
        Ok(Cow::Owned(records))
    }

    /// The batch-level fields as the rest of the crate sees them.
    pub fn info(&self) -> BatchInfo {
        BatchInfo {
            base_offset: self.base_offset,
            last_offset: self.last_offset(),
            max_timestamp: self.max_timestamp,
            timestamp_type: self.timestamp_type(),
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            base_sequence: self.base_sequence,
            transactional: self.is_transactional(),
            control: self.is_control(),
            compression: self.compression(),
        }
    }

    /// Checks the CRC32C of `batch`, which must hold exactly this batch's [`size`](Self::size)
    /// bytes (or at least that many; the rest is ignored).
    pub fn verify_crc(&self, batch: &[u8]) -> Result<(), DecodeError> {
        let size = self.size();
        if batch.len() < size {
            return Err(DecodeError::Truncated {
                needed: size,
                available: batch.len(),
            });
        }
        let computed = crc32c::crc32c(&batch[ATTRIBUTES_AT..size]);
        if computed != self.crc {
            return Err(DecodeError::Crc {
                stored: self.crc,
                computed,
            });
        }
        Ok(())
    }
}

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

/// Reads a zigzag varint (at most 5 bytes).
#[inline]
fn read_varint(data: &[u8], pos: &mut usize) -> Result<i32, &'static str> {
    // Fast path: one byte.
    if let Some(&b) = data.get(*pos) {
        if b < 0x80 {
            *pos += 1;
            return Ok(((b >> 1) as i32) ^ -((b & 1) as i32));
        }
    }
    let raw = read_unsigned(data, pos, 5)?;
    let raw = u32::try_from(raw).map_err(|_| "varint overflows 32 bits")?;
    Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
}

/// Reads a zigzag varlong (at most 10 bytes).
#[inline]
fn read_varlong(data: &[u8], pos: &mut usize) -> Result<i64, &'static str> {
    // Fast path: one byte (a record's timestamp delta, most of the time).
    if let Some(&b) = data.get(*pos) {
        if b < 0x80 {
            *pos += 1;
            return Ok(((b >> 1) as i64) ^ -((b & 1) as i64));
        }
    }
    let raw = read_unsigned(data, pos, 10)?;
    Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
}

#[inline]
fn read_unsigned(data: &[u8], pos: &mut usize, max_bytes: usize) -> Result<u64, &'static str> {
    let mut value = 0u64;
    for i in 0..max_bytes {
        let b = *data.get(*pos).ok_or("varint runs past the record")?;
        *pos += 1;
        let bits = u64::from(b & 0x7f);
        let shift = 7 * i as u32;
        if shift == 63 && bits > 1 {
            return Err("varint overflows 64 bits");
        }
        value |= bits << shift;
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("varint too long")
}

fn zigzag32(v: i32) -> u64 {
    u64::from(((v << 1) ^ (v >> 31)) as u32)
}

fn zigzag64(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unsigned_len(v: u64) -> usize {
    // 1 byte per 7 bits, at least 1.
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

fn varint_len(v: i32) -> usize {
    unsigned_len(zigzag32(v))
}

fn varlong_len(v: i64) -> usize {
    unsigned_len(zigzag64(v))
}

#[cfg(test)]
fn put_unsigned(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

#[cfg(test)]
fn put_varint(buf: &mut Vec<u8>, v: i32) {
    put_unsigned(buf, zigzag32(v));
}

#[cfg(test)]
fn put_varlong(buf: &mut Vec<u8>, v: i64) {
    put_unsigned(buf, zigzag64(v));
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
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record(ts: i64, key: Option<&[u8]>, value: Option<&[u8]>) -> NewRecord {
        NewRecord {
            timestamp: ts,
            key: key.map(Bytes::copy_from_slice),
            value: value.map(Bytes::copy_from_slice),
            headers: Vec::new(),
        }
    }

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// A one-record batch as librdkafka writes it: empty key, value "hello kafka", one header
    /// foo=bar, CreateTime 1641388919, no producer id.
    const LIBRDKAFKA_BATCH: &str = "
        0000000000000000 0000004b 00000000 02 2724fecd 0000 00000000
        0000000061d59b77 0000000061d59b77 ffffffffffffffff ffff ffffffff 00000001
        32 00 00 00 00 16 68656c6c6f206b61666b61 02 06 666f6f 06 626172";

    #[test]
    fn reads_and_writes_the_bytes_librdkafka_writes() {
        let golden = Bytes::from(hex(LIBRDKAFKA_BATCH));
        let (batch, used) = decode_batch(&golden).unwrap();
        assert_eq!(used, golden.len());
        assert_eq!(batch.info.base_offset, 0);
        assert_eq!(batch.info.last_offset, 0);
        assert_eq!(batch.info.max_timestamp, 1641388919);
        assert_eq!(batch.info.producer_id, -1);
        assert_eq!(batch.info.timestamp_type, TimestampType::CreateTime);
        assert_eq!(batch.records.len(), 1);
        let r = &batch.records[0];
        assert_eq!(r.key.as_deref(), Some(&b""[..]));
        assert_eq!(r.value.as_deref(), Some(&b"hello kafka"[..]));
        assert_eq!(r.headers, vec![Header::new("foo", &b"bar"[..])]);

        let mut buf = Vec::new();
        let new = NewRecord {
            timestamp: 1641388919,
            key: Some(Bytes::new()),
            value: Some(Bytes::from_static(b"hello kafka")),
            headers: vec![Header::new("foo", &b"bar"[..])],
        };
        encode_batch(
            &mut buf,
            &[new],
            0,
            ProducerFields::NONE,
            None,
            Compression::None,
        )
        .unwrap();
        assert_eq!(buf, golden.to_vec());
    }

    #[test]
    fn crc_is_castagnoli() {
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
    }

    #[test]
    fn varints_match_kafka() {
        for (v, bytes) in [
            (0i64, vec![0x00]),
            (-1, vec![0x01]),
            (1, vec![0x02]),
            (63, vec![0x7e]),
            (-64, vec![0x7f]),
            (64, vec![0x80, 0x01]),
            (i32::MAX as i64, vec![0xfe, 0xff, 0xff, 0xff, 0x0f]),
            (i32::MIN as i64, vec![0xff, 0xff, 0xff, 0xff, 0x0f]),
        ] {
            let mut buf = Vec::new();
            put_varint(&mut buf, v as i32);
            assert_eq!(buf, bytes, "{v}");
            assert_eq!(varint_len(v as i32), bytes.len());
            let mut pos = 0;
            assert_eq!(read_varint(&buf, &mut pos), Ok(v as i32));
            assert_eq!(pos, buf.len());
        }
        for v in [0i64, -1, 1, i64::MAX, i64::MIN, 1 << 40, -(1 << 40)] {
            let mut buf = Vec::new();
            put_varlong(&mut buf, v);
            assert_eq!(varlong_len(v), buf.len());
            let mut pos = 0;
            assert_eq!(read_varlong(&buf, &mut pos), Ok(v));
            assert_eq!(pos, buf.len());
        }
        // Too long, overflowing and truncated varints are refused.
        let mut pos = 0;
        assert!(read_varint(&[0xff, 0xff, 0xff, 0xff, 0x1f], &mut pos).is_err());
        let mut pos = 0;
        assert!(read_varint(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x01], &mut pos).is_err());
        let mut pos = 0;
        assert!(read_varint(&[0x80], &mut pos).is_err());
        let mut pos = 0;
        assert!(read_varlong(&[0xff; 10], &mut pos).is_err());
    }

    #[test]
    fn log_append_time_is_every_records_timestamp() {
        let mut buf = Vec::new();
        let records = [record(5, Some(b"a"), Some(b"1")), record(9, None, None)];
        let info = encode_batch(
            &mut buf,
            &records,
            7,
            ProducerFields::NONE,
            Some(1000),
            Compression::None,
        )
        .unwrap();
        assert_eq!(info.max_timestamp, 1000);
        assert_eq!(info.timestamp_type, TimestampType::LogAppendTime);
        let (batch, _) = decode_batch(&Bytes::from(buf)).unwrap();
        assert_eq!(batch.info, info);
        assert!(batch.records.iter().all(|r| r.timestamp == 1000));
        assert_eq!(batch.records[1].offset, 8);
    }

    #[test]
    fn producer_fields_and_flags_round_trip() {
        let producer = ProducerFields {
            producer_id: 42,
            producer_epoch: 3,
            base_sequence: 17,
            transactional: true,
            control: true,
        };
        let mut buf = Vec::new();
        let info = encode_batch(
            &mut buf,
            &[record(1, Some(b"k"), None)],
            0,
            producer,
            None,
            Compression::None,
        )
        .unwrap();
        let header = BatchHeader::parse(&buf).unwrap();
        assert!(header.is_transactional() && header.is_control());
        assert_eq!(header.info(), info);
        assert_eq!(validate_batch(&buf), Ok(header));
    }

    #[test]
    fn empty_batches_are_refused() {
        let mut buf = Vec::new();
        assert_eq!(
            encode_batch(
                &mut buf,
                &[],
                0,
                ProducerFields::NONE,
                None,
                Compression::None
            ),
            Err(EncodeError::Empty)
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn retained_records_keep_offsets_and_sequences() {
        let records: Vec<NewRecord> = (0..5)
            .map(|i| record(100 + i, Some(&[i as u8]), Some(b"v")))
            .collect();
        let producer = ProducerFields {
            producer_id: 9,
            producer_epoch: 1,
            base_sequence: 20,
            transactional: false,
            control: false,
        };
        let mut buf = Vec::new();
        encode_batch(&mut buf, &records, 10, producer, None, Compression::None).unwrap();
        let (batch, _) = decode_batch(&Bytes::from(buf)).unwrap();
        let kept = vec![batch.records[1].clone(), batch.records[3].clone()];
        let mut out = Vec::new();
        let info = encode_retained(&mut out, &batch.info, &kept).unwrap();
        assert_eq!((info.base_offset, info.last_offset), (11, 13));
        assert_eq!(info.base_sequence, 21);
        assert_eq!(info.max_timestamp, 103);
        let (again, used) = decode_batch(&Bytes::from(out.clone())).unwrap();
        assert_eq!(used, out.len());
        assert_eq!(again.records, kept);
        assert_eq!(again.info, info);

        // Offsets out of order or outside the batch are refused.
        let backwards = vec![kept[1].clone(), kept[0].clone()];
        assert!(encode_retained(&mut Vec::new(), &batch.info, &backwards).is_err());
        let mut outside = kept[0].clone();
        outside.offset = 99;
        assert!(encode_retained(&mut Vec::new(), &batch.info, &[outside]).is_err());
    }

    #[test]
    fn records_below_the_requested_offset_are_left_out() {
        let records: Vec<NewRecord> = (0..4).map(|i| record(i, None, Some(b"v"))).collect();
        let mut buf = Vec::new();
        encode_batch(
            &mut buf,
            &records,
            100,
            ProducerFields::NONE,
            None,
            Compression::None,
        )
        .unwrap();
        let buf = Bytes::from(buf);
        let (batch, size) = decode_batch_at(&buf, 0, 102).unwrap();
        assert_eq!(size, buf.len());
        assert_eq!(batch.info.base_offset, 100);
        let offsets: Vec<u64> = batch.records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, vec![102, 103]);
    }

    #[test]
    fn specific_corruptions_get_specific_errors() {
        let mut buf = Vec::new();
        encode_batch(
            &mut buf,
            &[record(1, Some(b"k"), Some(b"v"))],
            0,
            ProducerFields::NONE,
            None,
            Compression::None,
        )
        .unwrap();
        let with = |at: usize, byte: u8| {
            let mut b = buf.clone();
            b[at] = byte;
            decode_batch(&Bytes::from(b)).map(|_| ())
        };
        assert_eq!(with(MAGIC_AT, 1), Err(DecodeError::UnsupportedMagic(1)));
        assert_eq!(
            with(EPOCH_AT + 3, 1),
            Err(DecodeError::PartitionLeaderEpoch(1))
        );
        assert!(matches!(
            with(CRC_AT, buf[CRC_AT] ^ 1),
            Err(DecodeError::Crc { .. })
        ));
        assert!(matches!(with(0, 0x80), Err(DecodeError::Offsets { .. })));
        assert!(matches!(
            decode_batch(&Bytes::copy_from_slice(&buf[..30])),
            Err(DecodeError::Truncated { .. })
        ));
        // With a valid CRC: codecs 5-7 and unknown bits are refused by name, and records
        // that are not gzip under codec 1 do not decompress.
        let with_attributes = |attributes: i16| {
            let mut b = buf.clone();
            b[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
            let crc = crc32c::crc32c(&b[ATTRIBUTES_AT..]);
            b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
            (
                decode_batch(&Bytes::from(b.clone())).map(|_| ()),
                validate_batch(&b).map(|_| ()),
            )
        };
        for codec in 5..=7 {
            let err = DecodeError::UnknownCompression(codec);
            assert!(err.to_string().contains(&format!("codec {codec}")), "{err}");
            assert_eq!(with_attributes(codec), (Err(err.clone()), Err(err)));
        }
        let err = DecodeError::Attributes(0x40);
        assert!(err.to_string().contains("unknown bits 0x0040"), "{err}");
        assert_eq!(with_attributes(0x40), (Err(err.clone()), Err(err)));
        let (decoded, validated) = with_attributes(1);
        assert!(
            matches!(
                &decoded,
                Err(DecodeError::Decompress {
                    codec: Compression::Gzip,
                    ..
                })
            ),
            "{decoded:?}"
        );
        assert_eq!(decoded, validated);
    }

    /// A few records with keys, nulls, headers and repeated text, so that every codec
    /// has something to compress.
    fn sample_records(n: usize) -> Vec<NewRecord> {
        (0..n)
            .map(|i| NewRecord {
                timestamp: 1_700_000_000_000 + i as i64 * 7,
                key: (i % 3 != 0).then(|| Bytes::from(format!("key-{}", i % 5))),
                value: (i % 4 != 3).then(|| Bytes::from(format!("value {i} ").repeat(20))),
                headers: if i % 2 == 0 {
                    vec![Header::new("trace", format!("t{i}").into_bytes())]
                } else {
                    Vec::new()
                },
            })
            .collect()
    }

    fn assert_same_records(got: &[Record], want: &[NewRecord], base_offset: u64) {
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert_eq!(g.offset, base_offset + i as u64);
            assert_eq!(g.timestamp, w.timestamp);
            assert_eq!(g.key, w.key);
            assert_eq!(g.value, w.value);
            assert_eq!(g.headers, w.headers);
        }
    }

    /// `batch` with `codec_bits` in its attributes and `records` as its record section, its
    /// length and CRC fixed: a batch as another writer could have built it.
    fn rebuild(batch: &[u8], codec_bits: i16, records: &[u8]) -> Vec<u8> {
        let mut out = batch[..BATCH_HEADER_LEN].to_vec();
        out.extend_from_slice(records);
        let length = (out.len() - LOG_OVERHEAD) as i32;
        out[LENGTH_AT..LENGTH_AT + 4].copy_from_slice(&length.to_be_bytes());
        let attributes = (get_i16(&out, ATTRIBUTES_AT) & !COMPRESSION_MASK) | codec_bits;
        out[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
        let crc = crc32c::crc32c(&out[ATTRIBUTES_AT..]);
        out[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        out
    }

    fn encode(records: &[NewRecord], codec: Compression) -> Vec<u8> {
        let mut buf = Vec::new();
        encode_batch(&mut buf, records, 40, ProducerFields::NONE, None, codec).unwrap();
        buf
    }

    #[test]
    fn every_codec_round_trips_through_encode_parse_and_decode() {
        let records = sample_records(30);
        let plain = encode(&records, Compression::None);
        let producer = ProducerFields {
            producer_id: 77,
            producer_epoch: 2,
            base_sequence: 5,
            transactional: true,
            control: false,
        };
        for codec in Compression::ALL {
            let mut buf = vec![0xAA; 3];
            let info = encode_batch(&mut buf, &records, 40, producer, Some(1234), codec).unwrap();
            assert_eq!(info.compression, codec);
            let header = BatchHeader::parse(&buf[3..]).unwrap();
            assert_eq!(header.compression(), codec);
            assert_eq!(header.attributes & COMPRESSION_MASK, codec.id());
            assert!(header.is_transactional());
            assert_eq!(header.timestamp_type(), TimestampType::LogAppendTime);
            assert_eq!(header.record_count, 30);
            assert_eq!(header.info(), info);
            if codec != Compression::None {
                assert!(
                    header.size() < plain.len() / 2,
                    "{codec}: {}",
                    header.size()
                );
            }
            assert_eq!(validate_batch(&buf[3..]), Ok(header));

            buf.extend_from_slice(b"next batch");
            let buf = Bytes::from(buf);
            let (batch, used) = decode_batch_at(&buf, 3, 0).unwrap();
            assert_eq!(used, header.size());
            assert_eq!(batch.info, info);
            let mut want = records.clone();
            for r in &mut want {
                r.timestamp = 1234;
            }
            assert_same_records(&batch.records, &want, 40);

            // Records below the requested offset are left out, compressed or not.
            let (tail, _) = decode_batch_at(&buf, 3, 65).unwrap();
            assert_same_records(&tail.records, &want[25..], 65);
        }
    }

    #[test]
    fn batches_encoded_by_kafka_protocol_decode_and_ours_decode_there() {
        use kafka_protocol::protocol::StrBytes;
        use kafka_protocol::records::{
            Compression as KpCompression, Record as KpRecord, RecordBatchDecoder,
            RecordBatchEncoder, RecordEncodeOptions, TimestampType as KpTimestampType,
        };

        let records = sample_records(12);
        let kp_records: Vec<KpRecord> = records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let mut headers = kafka_protocol::indexmap::IndexMap::new();
                for h in &r.headers {
                    headers.insert(StrBytes::from_string(h.key.clone()), h.value.clone());
                }
                KpRecord {
                    transactional: false,
                    control: false,
                    delete_horizon: false,
                    partition_leader_epoch: 0,
                    producer_id: 9,
                    producer_epoch: 1,
                    timestamp_type: KpTimestampType::Creation,
                    offset: 100 + i as i64,
                    sequence: 3 + i as i32,
                    timestamp: r.timestamp,
                    key: r.key.clone(),
                    value: r.value.clone(),
                    headers,
                }
            })
            .collect();
        let codecs = [
            (KpCompression::None, Compression::None),
            (KpCompression::Gzip, Compression::Gzip),
            (KpCompression::Snappy, Compression::Snappy),
            (KpCompression::Lz4, Compression::Lz4),
            (KpCompression::Zstd, Compression::Zstd),
        ];
        for (kp, ours) in codecs {
            let mut buf = bytes::BytesMut::new();
            let options = RecordEncodeOptions {
                version: 2,
                compression: kp,
            };
            RecordBatchEncoder::encode(&mut buf, &kp_records, &options).unwrap();
            let buf = buf.freeze();
            let header = validate_batch(&buf).unwrap();
            assert_eq!(header.compression(), ours);
            assert_eq!(header.size(), buf.len());
            let (batch, _) = decode_batch(&buf).unwrap();
            assert_eq!(batch.info.base_offset, 100);
            assert_eq!(batch.info.producer_id, 9);
            assert_eq!(batch.info.base_sequence, 3);
            assert_eq!(batch.info.compression, ours);
            assert_same_records(&batch.records, &records, 100);

            // And the other way: kafka-protocol reads what we write.
            let mut ours_buf = Bytes::from(encode(&records, ours));
            let set = RecordBatchDecoder::decode(&mut ours_buf).unwrap();
            assert_eq!(set.compression, kp);
            assert_eq!(set.records.len(), records.len());
            for (got, want) in set.records.iter().zip(&records) {
                assert_eq!(got.key, want.key);
                assert_eq!(got.value, want.value);
                assert_eq!(got.timestamp, want.timestamp);
            }
        }
    }

    #[test]
    fn raw_snappy_as_librdkafka_writes_it_is_read() {
        let records = sample_records(8);
        let plain = encode(&records, Compression::None);
        let raw = snap::raw::Encoder::new()
            .compress_vec(&plain[BATCH_HEADER_LEN..])
            .unwrap();
        let batch = rebuild(&plain, Compression::Snappy.id(), &raw);
        let (decoded, _) = decode_batch(&Bytes::from(batch.clone())).unwrap();
        assert_same_records(&decoded.records, &records, 40);
        assert_eq!(
            validate_batch(&batch).unwrap().compression(),
            Compression::Snappy
        );
    }

    #[test]
    fn gzip_of_several_members_is_read_whole() {
        // Java's GZIPInputStream reads concatenated members; so do we.
        let records = sample_records(6);
        let plain = encode(&records, Compression::None);
        let area = &plain[BATCH_HEADER_LEN..];
        let half = area.len() / 2;
        let mut members = Vec::new();
        for part in [&area[..half], &area[half..]] {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut gz, part).unwrap();
            members.extend(gz.finish().unwrap());
        }
        let batch = rebuild(&plain, Compression::Gzip.id(), &members);
        let (decoded, _) = decode_batch(&Bytes::from(batch)).unwrap();
        assert_same_records(&decoded.records, &records, 40);
    }

    #[test]
    fn damaged_compressed_records_are_errors_not_panics() {
        let records = sample_records(10);
        for codec in &Compression::ALL[1..] {
            let batch = encode(&records, *codec);
            let stream = &batch[BATCH_HEADER_LEN..];
            // A truncated stream, with a CRC that matches it.
            for cut in [0, 1, stream.len() / 2, stream.len() - 1] {
                let bad = rebuild(&batch, codec.id(), &stream[..cut]);
                let decoded = decode_batch(&Bytes::from(bad.clone())).map(|_| ());
                assert!(decoded.is_err(), "{codec} cut to {cut}");
                assert_eq!(
                    validate_batch(&bad).map(|_| ()),
                    decoded,
                    "{codec} cut to {cut}"
                );
            }
            // A damaged stream start (magic or header), with a CRC that matches it.
            let mut damaged = stream.to_vec();
            damaged[0] ^= 0xff;
            let bad = rebuild(&batch, codec.id(), &damaged);
            assert!(
                matches!(
                    decode_batch(&Bytes::from(bad.clone())),
                    Err(DecodeError::Decompress { codec: c, .. }) if c == *codec
                ),
                "{codec}"
            );
            assert!(validate_batch(&bad).is_err());
            assert!(matches!(
                recompress(&bad, Compression::None),
                Err(EncodeError::Invalid(_))
            ));
            // Any other flipped byte: an error, or records that parse (a codec without a
            // checksum may decode other bytes), never a panic.
            for at in 1..damaged.len() {
                let mut flipped = stream.to_vec();
                flipped[at] ^= 0x21;
                let bad = rebuild(&batch, codec.id(), &flipped);
                let decoded = decode_batch(&Bytes::from(bad.clone()));
                assert_eq!(
                    validate_batch(&bad).is_ok(),
                    decoded.is_ok(),
                    "{codec} byte {at}"
                );
                if let Ok((batch, _)) = decoded {
                    assert_eq!(batch.records.len(), records.len());
                }
            }
            // Garbage after the stream: trailing bytes once decompressed, or a bad stream.
            let mut longer = stream.to_vec();
            longer.extend_from_slice(&[0; 9]);
            let bad = rebuild(&batch, codec.id(), &longer);
            if let Ok((batch, _)) = decode_batch(&Bytes::from(bad)) {
                // LZ4 stops at its end mark, as Kafka's reader does.
                assert_eq!(*codec, Compression::Lz4);
                assert_eq!(batch.records.len(), records.len());
            }
        }
    }

    #[test]
    fn decompressed_records_must_match_the_count_and_leave_nothing() {
        let records = sample_records(4);
        let plain = encode(&records, Compression::None);
        let area = &plain[BATCH_HEADER_LEN..];
        let gzip = |bytes: &[u8]| {
            let mut out = Vec::new();
            compression::compress(Compression::Gzip, bytes, &mut out).unwrap();
            out
        };
        // A byte after the last record.
        let mut extra = area.to_vec();
        extra.push(0);
        let bad = rebuild(&plain, Compression::Gzip.id(), &gzip(&extra));
        assert_eq!(validate_batch(&bad), Err(DecodeError::TrailingBytes(1)));
        assert_eq!(
            decode_batch(&Bytes::from(bad)).map(|_| ()),
            Err(DecodeError::TrailingBytes(1))
        );
        // A record short: the count says 4, the stream holds 3.
        let first_three = {
            let mut pos = 0;
            for _ in 0..3 {
                parse_record(area, &mut pos, &mut |_, _| {}).unwrap();
            }
            pos
        };
        let bad = rebuild(&plain, Compression::Gzip.id(), &gzip(&area[..first_three]));
        let missing = DecodeError::MissingRecords { count: 4, found: 3 };
        assert_eq!(validate_batch(&bad), Err(missing.clone()));
        assert_eq!(decode_batch(&Bytes::from(bad)).map(|_| ()), Err(missing));
        // A count far above what the decompressed bytes hold is refused before decoding.
        let mut huge = rebuild(&plain, Compression::Gzip.id(), &gzip(area));
        huge[RECORD_COUNT_AT..RECORD_COUNT_AT + 4].copy_from_slice(&1_000_000i32.to_be_bytes());
        huge[LAST_OFFSET_DELTA_AT..LAST_OFFSET_DELTA_AT + 4]
            .copy_from_slice(&2_000_000i32.to_be_bytes());
        let crc = crc32c::crc32c(&huge[ATTRIBUTES_AT..]);
        huge[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(
            decode_batch(&Bytes::from(huge)),
            Err(DecodeError::RecordCount {
                count: 1_000_000,
                ..
            })
        ));
    }

    #[test]
    fn a_zip_bomb_is_refused_at_the_limit() {
        let records = sample_records(1);
        let plain = encode(&records, Compression::None);
        // 65 MiB of zeros: gzip as 65 members of 1 MiB each (MultiGzDecoder reads them all),
        // and zstd in one frame.
        let mut member = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut member, &vec![0u8; 1 << 20]).unwrap();
        let member = member.finish().unwrap();
        let gzip_bomb: Vec<u8> = member
            .iter()
            .copied()
            .cycle()
            .take(member.len() * 65)
            .collect();
        let zstd_bomb = zstd::bulk::compress(&vec![0u8; 65 << 20], 1).unwrap();
        for (codec, bomb) in [
            (Compression::Gzip, gzip_bomb),
            (Compression::Zstd, zstd_bomb),
        ] {
            assert!(bomb.len() < 1 << 20, "{codec}: {}", bomb.len());
            let batch = rebuild(&plain, codec.id(), &bomb);
            let want = DecodeError::DecompressedTooLarge {
                codec,
                limit: MIN_DECOMPRESSED_LIMIT,
            };
            assert_eq!(validate_batch(&batch), Err(want.clone()));
            assert_eq!(
                decode_batch(&Bytes::from(batch.clone())).map(|_| ()),
                Err(want)
            );
            assert!(matches!(
                recompress(&batch, Compression::None),
                Err(EncodeError::Invalid(
                    DecodeError::DecompressedTooLarge { .. }
                ))
            ));
        }
        assert_eq!(max_decompressed_len(100), MIN_DECOMPRESSED_LIMIT);
        assert_eq!(max_decompressed_len(32 << 20), 128 << 20);
    }

    #[test]
    fn the_encoder_refuses_records_that_would_decompress_past_the_limit() {
        // 70 MiB of one byte compresses to far less than a quarter of itself.
        let big = NewRecord {
            timestamp: 1,
            key: None,
            value: Some(Bytes::from(vec![7u8; 70 << 20])),
            headers: Vec::new(),
        };
        let mut buf = b"keep".to_vec();
        let err = encode_batch(
            &mut buf,
            std::slice::from_ref(&big),
            0,
            ProducerFields::NONE,
            None,
            Compression::Zstd,
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                EncodeError::Inflates {
                    codec: Compression::Zstd,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(buf, b"keep");
    }

    #[test]
    fn recompress_changes_only_the_codec_length_and_crc() {
        let records = sample_records(20);
        let producer = ProducerFields {
            producer_id: 5,
            producer_epoch: 3,
            base_sequence: 1000,
            transactional: true,
            control: false,
        };
        for from in Compression::ALL {
            let mut original = Vec::new();
            encode_batch(&mut original, &records, 900, producer, Some(77), from).unwrap();
            let before = validate_batch(&original).unwrap();
            for to in Compression::ALL {
                let out = recompress(&original, to).unwrap();
                let after = validate_batch(&out).unwrap();
                assert_eq!(after.compression(), to, "{from} -> {to}");
                assert_eq!(after.size(), out.len());
                assert_eq!(
                    after.attributes & !COMPRESSION_MASK,
                    before.attributes & !COMPRESSION_MASK
                );
                // Every field but the length, the codec bits and the CRC is the same.
                let same = |h: &BatchHeader| {
                    (
                        h.base_offset,
                        h.last_offset_delta,
                        h.base_timestamp,
                        h.max_timestamp,
                        h.producer_id,
                        h.producer_epoch,
                        h.base_sequence,
                        h.record_count,
                    )
                };
                assert_eq!(same(&after), same(&before));
                assert_eq!(out[EPOCH_AT..CRC_AT], original[EPOCH_AT..CRC_AT]);
                let (a, _) = decode_batch(&Bytes::from(out.clone())).unwrap();
                let (b, _) = decode_batch(&Bytes::from(original.clone())).unwrap();
                assert_eq!(a.records, b.records);
                assert_eq!(
                    a.info,
                    BatchInfo {
                        compression: to,
                        ..b.info
                    }
                );
                if to == from {
                    assert_eq!(out, original);
                }
            }
        }
        // Only the first batch of the buffer is rewritten.
        let mut two = encode(&records, Compression::None);
        let one_len = two.len();
        two.extend_from_slice(&encode(&records, Compression::None));
        let out = recompress(&two, Compression::None).unwrap();
        assert_eq!(out.len(), one_len);
        assert!(matches!(
            recompress(&two[..30], Compression::Gzip),
            Err(EncodeError::Invalid(DecodeError::Truncated { .. }))
        ));
    }

    #[test]
    fn retained_records_keep_the_batchs_codec() {
        let records = sample_records(10);
        for codec in Compression::ALL {
            let (batch, _) = decode_batch(&Bytes::from(encode(&records, codec))).unwrap();
            let kept: Vec<Record> = batch.records.iter().skip(2).step_by(3).cloned().collect();
            let mut out = Vec::new();
            let info = encode_retained(&mut out, &batch.info, &kept).unwrap();
            assert_eq!(info.compression, codec);
            assert_eq!(BatchHeader::parse(&out).unwrap().compression(), codec);
            let (again, _) = decode_batch(&Bytes::from(out)).unwrap();
            assert_eq!(again.records, kept);
        }
    }

    fn arb_bytes(max: usize) -> impl Strategy<Value = Option<Bytes>> {
        prop::option::of(prop::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from))
    }

    fn arb_header() -> impl Strategy<Value = Header> {
        (".{0,8}", arb_bytes(16)).prop_map(|(key, value)| Header { key, value })
    }

    fn arb_record() -> impl Strategy<Value = NewRecord> {
        (
            any::<i64>(),
            arb_bytes(40),
            arb_bytes(300),
            prop::collection::vec(arb_header(), 0..3),
        )
            .prop_map(|(timestamp, key, value, headers)| NewRecord {
                timestamp,
                key,
                value,
                headers,
            })
    }

    fn arb_producer() -> impl Strategy<Value = ProducerFields> {
        (
            any::<i64>(),
            any::<i16>(),
            any::<i32>(),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(
                |(producer_id, producer_epoch, base_sequence, transactional, control)| {
                    ProducerFields {
                        producer_id,
                        producer_epoch,
                        base_sequence,
                        transactional,
                        control,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn round_trips_and_consumes_exactly_what_was_written(
            codec in prop::sample::select(Compression::ALL.to_vec()),
            records in prop::collection::vec(arb_record(), 1..12),
            base_offset in 0u64..(1 << 62),
            producer in arb_producer(),
            append_time in prop::option::of(any::<i64>()),
            prefix in prop::collection::vec(any::<u8>(), 0..8),
            suffix in prop::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut buf = prefix.clone();
            let info = encode_batch(&mut buf, &records, base_offset, producer, append_time, codec).unwrap();
            prop_assert_eq!(info.compression, codec);
            let written = buf.len() - prefix.len();
            buf.extend_from_slice(&suffix);
            let buf = Bytes::from(buf);

            let (batch, used) = decode_batch_at(&buf, prefix.len(), 0).unwrap();
            prop_assert_eq!(used, written);
            prop_assert_eq!(batch.info, info);
            prop_assert_eq!(info.base_offset, base_offset);
            prop_assert_eq!(info.last_offset, base_offset + records.len() as u64 - 1);
            prop_assert_eq!(batch.records.len(), records.len());
            for (i, (got, want)) in batch.records.iter().zip(&records).enumerate() {
                prop_assert_eq!(got.offset, base_offset + i as u64);
                prop_assert_eq!(got.timestamp, append_time.unwrap_or(want.timestamp));
                prop_assert_eq!(&got.key, &want.key);
                prop_assert_eq!(&got.value, &want.value);
                prop_assert_eq!(&got.headers, &want.headers);
            }
            if append_time.is_none() {
                let max = records.iter().map(|r| r.timestamp).max().unwrap();
                prop_assert_eq!(info.max_timestamp, max);
            }
            let header = validate_batch(&buf[prefix.len()..]).unwrap();
            prop_assert_eq!(header.size(), written);
            prop_assert_eq!(header.info(), info);

            // Recompressing to another codec and back keeps the records.
            let other = Compression::ALL[(codec.id() as usize + 1) % Compression::ALL.len()];
            let moved = recompress(&buf[prefix.len()..], other).unwrap();
            let back = recompress(&moved, codec).unwrap();
            let (again, _) = decode_batch(&Bytes::from(back)).unwrap();
            prop_assert_eq!(again.records, batch.records);
        }

        #[test]
        fn any_flipped_byte_or_truncation_is_rejected(
            codec in prop::sample::select(Compression::ALL.to_vec()),
            records in prop::collection::vec(arb_record(), 1..4),
            position in any::<prop::sample::Index>(),
            flip in 1u8..=255,
            cut in any::<prop::sample::Index>(),
        ) {
            let mut buf = Vec::new();
            encode_batch(&mut buf, &records, 1000, ProducerFields::NONE, None, codec).unwrap();

            let at = position.index(buf.len());
            let mut flipped = buf.clone();
            flipped[at] ^= flip;
            let flipped = Bytes::from(flipped);
            match decode_batch(&flipped) {
                // The base offset is outside the CRC (as in Kafka); a changed one is caught by
                // the log, which knows which offset comes next.
                Ok((batch, _)) => prop_assert!(at < 8 && batch.info.base_offset != 1000),
                Err(_) => prop_assert!(validate_batch(&flipped).is_err()),
            }

            let len = cut.index(buf.len());
            let cut = Bytes::copy_from_slice(&buf[..len]);
            prop_assert!(
                matches!(decode_batch(&cut), Err(DecodeError::Truncated { .. })),
                "truncated to {} of {} bytes", len, buf.len()
            );
            prop_assert!(validate_batch(&cut).is_err());
        }
    }
}
