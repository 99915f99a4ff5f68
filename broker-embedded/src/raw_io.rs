//! The broker's byte-level API, for a server that speaks Kafka's wire protocol: batches
//! appended as a producer encoded them, and read back as stored, never decoded or
//! re-encoded on the way.

use bytes::Bytes;
use tokio::sync::futures::Notified;

use crate::broker::{after_read, Broker};
use crate::consumer::IsolationLevel;
use crate::error::Result;
use crate::log::AppendInfo;

/// A transaction that was aborted in a partition: a `read_committed` reader drops the
/// producer's batches from `first_offset` up to the abort marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTransaction {
    /// The producer whose batches to drop.
    pub producer_id: i64,
    /// The transaction's first offset in the partition.
    pub first_offset: u64,
}

/// What a read of stored batches found.
#[derive(Debug, Clone, Default)]
pub struct StoredRead {
    /// Whole batches as stored, starting with the one that holds the offset read from.
    pub records: Bytes,
    /// The high watermark: the log end offset (every append is committed on one node).
    pub high_watermark: u64,
    /// The last stable offset (the first offset of the earliest open transaction).
    pub last_stable_offset: u64,
    /// The log start offset.
    pub log_start_offset: u64,
    /// Under `read_committed`, the aborted transactions that overlap the batches returned.
    pub aborted: Vec<AbortedTransaction>,
}

impl Broker {
    /// Appends one record batch (Kafka's v2 layout) to a partition as a producer encoded
    /// it, and wakes waiting readers. The batch is checked whole (CRC, records, offsets, no
    /// control bit, keys of a compacted topic, `max.message.bytes`, the producer's epoch and
    /// sequence) and stored byte for byte, but for the base offset, the leader epoch and,
    /// under `LogAppendTime`, the timestamp.
    ///
    /// Returns where the batch went, with the partition's log start offset after the
    /// append (a Produce response carries it).
    ///
    /// A transactional batch is not checked against the transaction coordinator here: the
    /// caller checks that the partition was added to the producer's transaction first.
    pub async fn append_batch(
        &self,
        topic: &str,
        partition: u32,
        batch: &[u8],
    ) -> Result<(AppendInfo, u64)> {
        let (t, p) = self.partition(topic, partition)?;
        let appended = {
            let mut log = t.partitions[p].lock()?;
            let info = log.append_batch(batch)?;
            (info, log.log_start_offset())
        };
        self.inner.data_arrived.notify_waiters();
        Ok(appended)
    }

    /// Reads whole batches of one partition as stored, from the batch that holds `offset`,
    /// about `max_bytes` of them (at least one whole batch, however large, as Kafka does).
    /// Under [`IsolationLevel::ReadCommitted`] the read stops at the last stable offset and
    /// lists the aborted transactions among the batches read, for the reader to drop.
    ///
    /// An offset below the log start or above the log end is `OffsetOutOfRange`.
    pub async fn read_stored(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        max_bytes: usize,
        isolation: IsolationLevel,
    ) -> Result<StoredRead> {
        let (t, p) = self.partition(topic, partition)?;
        let mut log = t.partitions[p].lock()?;
        let lso = log.last_stable_offset();
        let limit = match isolation {
            IsolationLevel::ReadCommitted => lso,
            IsolationLevel::ReadUncommitted => u64::MAX,
        };
        let stored = log.read_stored(offset, max_bytes, limit);
        after_read(&mut log, &stored);
        let stored = stored?;
        let end = stored.next_offset().unwrap_or(offset);
        let aborted = match isolation {
            IsolationLevel::ReadCommitted if end > offset => log
                .aborted_transactions(offset, end)
                .into_iter()
                .map(|(producer_id, first_offset)| AbortedTransaction {
                    producer_id,
                    first_offset,
                })
                .collect(),
            _ => Vec::new(),
        };
        Ok(StoredRead {
            records: stored.into_bytes(),
            high_watermark: log.log_end_offset(),
            last_stable_offset: lso,
            log_start_offset: log.log_start_offset(),
            aborted,
        })
    }

    /// The offset and timestamp of the first record with the largest timestamp in a
    /// partition (Kafka's `ListOffsets` with `MAX_TIMESTAMP`); `None` when it is empty.
    pub async fn offset_of_max_timestamp(
        &self,
        topic: &str,
        partition: u32,
    ) -> Result<Option<(u64, i64)>> {
        let (t, p) = self.partition(topic, partition)?;
        let mut log = t.partitions[p].lock()?;
        let result = log.offset_of_max_timestamp();
        after_read(&mut log, &result);
        result
    }

    /// A future that completes at the next append to any partition of the broker (and at
    /// close). Create it before checking for data, so that no append in between is missed.
    pub fn data_arrival(&self) -> Notified<'_> {
        self.inner.data_arrived.notified()
    }
}
