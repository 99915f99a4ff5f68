//! Conversions between the seam's types and rdkafka's: partition lists,
//! offsets with their metadata, consumed messages.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use bytes::Bytes;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Headers as _, Message, Timestamp};
use rdkafka::{Offset, TopicPartitionList};

use crate::error::{Result, StreamsError};
use crate::record::Headers;

use super::super::{InRecord, OffsetAndMetadata, Offsets, PolledRun, TopicPartition};

/// A partition number in librdkafka's type.
pub(super) fn partition_i32(partition: u32) -> Result<i32> {
    i32::try_from(partition)
        .map_err(|_| StreamsError::Internal(format!("partition {partition} out of range")))
}

/// An offset in librdkafka's type.
pub(super) fn offset_i64(offset: u64) -> Result<i64> {
    i64::try_from(offset)
        .map_err(|_| StreamsError::Internal(format!("offset {offset} out of range")))
}

fn list_error(e: KafkaError) -> StreamsError {
    StreamsError::Internal(format!("cannot build a partition list: {e}"))
}

/// `partitions` as a list without offsets.
pub(super) fn partition_list(partitions: &[TopicPartition]) -> Result<TopicPartitionList> {
    let mut list = TopicPartitionList::with_capacity(partitions.len());
    for tp in partitions {
        list.add_partition(&tp.topic, partition_i32(tp.partition)?);
    }
    Ok(list)
}

/// `offsets` with their metadata, for a commit.
pub(super) fn offsets_list(offsets: &Offsets) -> Result<TopicPartitionList> {
    let mut list = TopicPartitionList::with_capacity(offsets.len());
    for (tp, o) in offsets {
        let partition = partition_i32(tp.partition)?;
        let mut elem = list.add_partition(&tp.topic, partition);
        elem.set_offset(Offset::Offset(offset_i64(o.offset)?))
            .map_err(list_error)?;
        if !o.metadata.is_empty() {
            elem.set_metadata(&o.metadata);
        }
    }
    Ok(list)
}

/// `(partition, offset)` pairs as a list, for an assignment with start
/// offsets or a purge.
pub(super) fn positions_list(positions: &[(TopicPartition, u64)]) -> Result<TopicPartitionList> {
    let mut list = TopicPartitionList::with_capacity(positions.len());
    for (tp, offset) in positions {
        list.add_partition_offset(
            &tp.topic,
            partition_i32(tp.partition)?,
            Offset::Offset(offset_i64(*offset)?),
        )
        .map_err(list_error)?;
    }
    Ok(list)
}

/// The partitions of `list`.
pub(super) fn partitions_of(list: &TopicPartitionList) -> Vec<TopicPartition> {
    list.elements()
        .iter()
        .filter_map(|e| {
            u32::try_from(e.partition())
                .ok()
                .map(|p| TopicPartition::new(e.topic(), p))
        })
        .collect()
}

/// The committed offsets in `list` (an answer to `committed_offsets`), and
/// the partitions whose committed offset a pending transaction holds
/// (`UNSTABLE_OFFSET_COMMIT` after librdkafka's retries).
pub(super) fn committed_of(list: &TopicPartitionList) -> (Offsets, Vec<TopicPartition>) {
    let mut offsets = HashMap::new();
    let mut unstable = Vec::new();
    for e in list.elements() {
        let Ok(partition) = u32::try_from(e.partition()) else {
            continue;
        };
        let tp = TopicPartition::new(e.topic(), partition);
        if let Err(error) = e.error() {
            if error.rdkafka_error_code() == Some(RDKafkaErrorCode::UnstableOffsetCommit) {
                unstable.push(tp);
            } else {
                tracing::warn!(partition = %tp, error = %error, "no committed offset for the partition");
            }
            continue;
        }
        let Offset::Offset(offset) = e.offset() else {
            continue;
        };
        let Ok(offset) = u64::try_from(offset) else {
            continue;
        };
        // rdkafka panics on metadata that is not UTF-8; Kafka's protocol
        // carries it as a string, but it comes from outside the process.
        let metadata = catch_unwind(AssertUnwindSafe(|| e.metadata().to_owned()))
            .unwrap_or_else(|_| {
                tracing::warn!(partition = %tp, "committed offset metadata is not UTF-8; ignoring it");
                String::new()
            });
        offsets.insert(tp, OffsetAndMetadata { offset, metadata });
    }
    (offsets, unstable)
}

/// A message's headers in the seam's form. A header whose key is not
/// UTF-8 (rdkafka panics on it) is skipped with a warning.
fn headers_of(message: &BorrowedMessage<'_>) -> Headers {
    let mut out = Headers::new();
    let Some(headers) = message.headers() else {
        return out;
    };
    for index in 0..headers.count() {
        let header = catch_unwind(AssertUnwindSafe(|| {
            headers
                .try_get(index)
                .map(|h| (h.key.to_owned(), h.value.map(Bytes::copy_from_slice)))
        }));
        match header {
            Ok(Some((key, value))) => {
                out.add(key, value);
            }
            Ok(None) => {}
            Err(_) => tracing::warn!(
                topic = message.topic(),
                partition = message.partition(),
                offset = message.offset(),
                "skipping a record header whose key is not UTF-8"
            ),
        }
    }
    out
}

/// A consumed message in the seam's form: key, value and headers copied
/// out of librdkafka's buffer; the timestamp as the message has it
/// (CreateTime or LogAppendTime), -1 when it has none.
pub(super) fn in_record(message: &BorrowedMessage<'_>) -> Option<InRecord> {
    let offset = u64::try_from(message.offset()).ok()?;
    let timestamp = match message.timestamp() {
        Timestamp::CreateTime(t) | Timestamp::LogAppendTime(t) => t,
        Timestamp::NotAvailable => -1,
    };
    Some(InRecord {
        offset,
        timestamp,
        key: message.key().map(Bytes::copy_from_slice),
        value: message.payload().map(Bytes::copy_from_slice),
        headers: headers_of(message),
    })
}

/// Gathers the messages of a poll into runs, one per partition, each in
/// offset order (librdkafka hands out a partition's messages in order).
#[derive(Debug, Default)]
pub(super) struct Runs {
    runs: Vec<PolledRun>,
    /// Topic names handed out before, so that runs share them.
    names: HashMap<String, Arc<str>>,
}

impl Runs {
    pub(super) fn push(&mut self, topic: &str, partition: u32, record: InRecord) {
        let found = self
            .runs
            .iter()
            .rposition(|r| r.partition == partition && &*r.topic == topic);
        match found {
            Some(index) => self.runs[index].records.push(record),
            None => {
                let topic = match self.names.get(topic) {
                    Some(name) => name.clone(),
                    None => {
                        let name: Arc<str> = Arc::from(topic);
                        self.names.insert(topic.to_owned(), name.clone());
                        name
                    }
                };
                self.runs.push(PolledRun {
                    topic,
                    partition,
                    records: vec![record],
                });
            }
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// The runs gathered since the last take; the topic names are kept.
    pub(super) fn take(&mut self) -> Vec<PolledRun> {
        std::mem::take(&mut self.runs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(offset: u64) -> InRecord {
        InRecord {
            offset,
            timestamp: 0,
            key: None,
            value: None,
            headers: Headers::new(),
        }
    }

    #[test]
    fn runs_group_records_by_partition_in_order() {
        let mut runs = Runs::default();
        runs.push("a", 0, record(5));
        runs.push("a", 1, record(7));
        runs.push("a", 0, record(6));
        runs.push("b", 0, record(1));
        let out = runs.take();
        let shape: Vec<(String, u32, Vec<u64>)> = out
            .iter()
            .map(|r| {
                (
                    r.topic.to_string(),
                    r.partition,
                    r.records.iter().map(|r| r.offset).collect(),
                )
            })
            .collect();
        assert_eq!(
            shape,
            vec![
                ("a".to_owned(), 0, vec![5, 6]),
                ("a".to_owned(), 1, vec![7]),
                ("b".to_owned(), 0, vec![1]),
            ]
        );
        assert!(runs.is_empty());
        runs.push("a", 0, record(8));
        assert!(Arc::ptr_eq(&runs.take()[0].topic, &out[0].topic));
    }

    #[test]
    fn offsets_carry_their_metadata() {
        let offsets = Offsets::from([(
            TopicPartition::new("t", 2),
            OffsetAndMetadata {
                offset: 42,
                metadata: "AQAAAAAAAAPo".to_owned(),
            },
        )]);
        let list = offsets_list(&offsets).unwrap();
        let elem = list.find_partition("t", 2).unwrap();
        assert_eq!(elem.offset(), Offset::Offset(42));
        assert_eq!(elem.metadata(), "AQAAAAAAAAPo");
        let (back, unstable) = committed_of(&list);
        assert_eq!(back, offsets);
        assert!(unstable.is_empty());
    }
}
