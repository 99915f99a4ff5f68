//! Records as producers send them and consumers receive them.

use bytes::Bytes;

use crate::compression::Compression;
use crate::config::TimestampType;

/// A record header: a string key and an optional byte value (Kafka allows repeated keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Header key.
    pub key: String,
    /// Header value; `None` is a null value.
    pub value: Option<Bytes>,
}

impl Header {
    /// A header with a value.
    pub fn new(key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        Header {
            key: key.into(),
            value: Some(value.into()),
        }
    }
}

/// A record to append: the producer has already resolved its timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecord {
    /// Event timestamp in epoch ms (replaced by the broker's clock under `LogAppendTime`).
    pub timestamp: i64,
    /// Key; `None` is a null key.
    pub key: Option<Bytes>,
    /// Value; `None` is a null value (a tombstone in a compacted topic).
    pub value: Option<Bytes>,
    /// Headers, in order.
    pub headers: Vec<Header>,
}

impl NewRecord {
    /// The record's fields, borrowed.
    pub fn as_record_ref(&self) -> RecordRef<'_> {
        RecordRef {
            timestamp: self.timestamp,
            key: self.key.as_deref(),
            value: self.value.as_deref(),
            headers: &self.headers,
        }
    }
}

/// A record to append, borrowed from where its bytes already are: what a [`NewRecord`]
/// holds, without owning it. [`Producer::send_refs`](crate::Producer::send_refs) takes these,
/// so that a caller whose keys and values sit in one buffer sends them without a
/// reference-counted slice per field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// Event timestamp in epoch ms (replaced by the broker's clock under `LogAppendTime`).
    pub timestamp: i64,
    /// Key; `None` is a null key.
    pub key: Option<&'a [u8]>,
    /// Value; `None` is a null value (a tombstone in a compacted topic).
    pub value: Option<&'a [u8]>,
    /// Headers, in order.
    pub headers: &'a [Header],
}

/// A record read back from a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its offset in the partition.
    pub offset: u64,
    /// Its timestamp in epoch ms.
    pub timestamp: i64,
    /// Key; `None` is a null key.
    pub key: Option<Bytes>,
    /// Value; `None` is a null value.
    pub value: Option<Bytes>,
    /// Headers, in order.
    pub headers: Vec<Header>,
}

/// Batch-level fields shared by all records of a stored batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchInfo {
    /// Offset of the batch's first record.
    pub base_offset: u64,
    /// Offset of the batch's last record.
    pub last_offset: u64,
    /// The largest timestamp in the batch (the append time under `LogAppendTime`).
    pub max_timestamp: i64,
    /// Whose timestamps the records carry.
    pub timestamp_type: TimestampType,
    /// Producer id, or -1 for a producer without idempotence.
    pub producer_id: i64,
    /// Producer epoch, or -1.
    pub producer_epoch: i16,
    /// Sequence number of the first record, or -1.
    pub base_sequence: i32,
    /// Whether the batch belongs to a transaction.
    pub transactional: bool,
    /// Whether the batch is a transaction control marker (commit or abort), never shown to users.
    pub control: bool,
    /// The codec its records are stored with.
    pub compression: Compression,
}

/// A decoded batch: its fields and its records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordBatch {
    /// Batch-level fields.
    pub info: BatchInfo,
    /// The records, in offset order (after compaction offsets may have gaps).
    pub records: Vec<Record>,
}

/// The producer fields of a batch to append; [`ProducerFields::NONE`] for a plain producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerFields {
    /// Producer id, or -1.
    pub producer_id: i64,
    /// Producer epoch, or -1.
    pub producer_epoch: i16,
    /// Sequence of the first record, or -1.
    pub base_sequence: i32,
    /// Whether the batch belongs to a transaction.
    pub transactional: bool,
    /// Whether the batch is a control marker.
    pub control: bool,
}

impl ProducerFields {
    /// A batch from a producer without idempotence or transactions.
    pub const NONE: ProducerFields = ProducerFields {
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        transactional: false,
        control: false,
    };
}
