//! The fixed 61-byte batch header: parsed and checked without touching the records.

use super::*;

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
    pub(super) fn records<'a>(&self, batch: &'a [u8]) -> Result<Cow<'a, [u8]>, DecodeError> {
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
