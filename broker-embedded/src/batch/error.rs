//! Why bytes are not a batch, and why records cannot become one.

use super::KNOWN_ATTRIBUTES;
use crate::compression::Compression;

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
