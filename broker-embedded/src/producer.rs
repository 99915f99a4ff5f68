//! The producer: Kafka's default partitioner, single and batch sends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::broker::Broker;
use crate::error::{BrokerError, Result};
use crate::partitioner::partition_for_key;
use crate::record::{Header, NewRecord, ProducerFields};

/// A record to send (Kafka's `ProducerRecord`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerRecord {
    /// Target topic.
    pub topic: String,
    /// Target partition; `None` lets the partitioner choose (murmur2 of the key, or sticky for
    /// a null key).
    pub partition: Option<u32>,
    /// Key; `None` is a null key.
    pub key: Option<Bytes>,
    /// Value; `None` is a null value (a tombstone on a compacted topic).
    pub value: Option<Bytes>,
    /// Headers.
    pub headers: Vec<Header>,
    /// Event timestamp in epoch ms; `None` takes the producer's clock.
    pub timestamp: Option<i64>,
}

impl ProducerRecord {
    /// A record with a value and no key.
    pub fn new(topic: impl Into<String>, value: impl Into<Bytes>) -> Self {
        ProducerRecord {
            topic: topic.into(),
            partition: None,
            key: None,
            value: Some(value.into()),
            headers: Vec::new(),
            timestamp: None,
        }
    }

    /// Sets the key.
    pub fn key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Sets a null value (a tombstone).
    pub fn tombstone(mut self) -> Self {
        self.value = None;
        self
    }

    /// Pins the partition.
    pub fn partition(mut self, partition: u32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// Sets the timestamp.
    pub fn timestamp(mut self, timestamp: i64) -> Self {
        self.timestamp = Some(timestamp);
        self
    }

    /// Adds a header.
    pub fn header(mut self, key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        self.headers.push(Header::new(key, value));
        self
    }
}

/// Where a record was written (Kafka's `RecordMetadata`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    /// Topic (shared, not copied per record).
    pub topic: Arc<str>,
    /// Partition.
    pub partition: u32,
    /// Offset.
    pub offset: u64,
    /// The stored timestamp (the broker's append time under `LogAppendTime`).
    pub timestamp: i64,
}

/// Producer settings, with Kafka's names.
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// `batch.size`, default 16384: after this many bytes the sticky partition for null keys
    /// moves on (Kafka's uniform sticky partitioner).
    pub batch_size: usize,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig { batch_size: 16_384 }
    }
}

/// The records of one send bound for one partition.
#[derive(Debug)]
struct Group {
    topic: Arc<str>,
    partition: u32,
    /// Where each record stood in the caller's list.
    indexes: Vec<usize>,
    records: Vec<NewRecord>,
}

/// How many of `records` fit in one batch under `max_bytes` (at least one: a record too
/// large on its own is refused by the log with a clear error). Counts 61 bytes of batch
/// header and about 20 bytes of framing per record.
fn batch_len(records: &[NewRecord], max_bytes: usize) -> usize {
    let mut size = 61;
    for (n, r) in records.iter().enumerate() {
        let s = 20
            + r.key.as_ref().map_or(0, Bytes::len)
            + r.value.as_ref().map_or(0, Bytes::len)
            + r.headers
                .iter()
                .map(|h| 10 + h.key.len() + h.value.as_ref().map_or(0, Bytes::len))
                .sum::<usize>();
        if n > 0 && size + s > max_bytes {
            return n;
        }
        size += s;
    }
    records.len()
}

#[derive(Debug, Default)]
struct Sticky {
    partition: u32,
    bytes: usize,
}

/// A producer on an embedded broker. Cheap to create; `Send + Sync`.
#[derive(Debug)]
pub struct Producer {
    broker: Broker,
    config: ProducerConfig,
    sticky: Mutex<HashMap<String, Sticky>>,
}

fn record_size(r: &ProducerRecord) -> usize {
    r.key.as_ref().map_or(0, Bytes::len)
        + r.value.as_ref().map_or(0, Bytes::len)
        + r.headers
            .iter()
            .map(|h| h.key.len() + h.value.as_ref().map_or(0, Bytes::len))
            .sum::<usize>()
        + 16
}

impl Producer {
    /// A producer with default settings.
    pub fn new(broker: &Broker) -> Self {
        Self::with_config(broker, ProducerConfig::default())
    }

    /// A producer with settings.
    pub fn with_config(broker: &Broker, config: ProducerConfig) -> Self {
        Producer {
            broker: broker.clone(),
            config,
            sticky: Mutex::new(HashMap::new()),
        }
    }

    /// The broker this producer writes to.
    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    /// Chooses the partition of a record: its own, murmur2 of its key, or the sticky one.
    fn choose_partition(&self, record: &ProducerRecord, partitions: u32) -> Result<u32> {
        if let Some(p) = record.partition {
            if p >= partitions {
                return Err(BrokerError::UnknownPartition {
                    topic: record.topic.clone(),
                    partition: p,
                    partitions,
                });
            }
            return Ok(p);
        }
        if let Some(key) = &record.key {
            return Ok(partition_for_key(key, partitions));
        }
        let mut sticky = self.sticky.lock().unwrap_or_else(|p| p.into_inner());
        let state = sticky
            .entry(record.topic.clone())
            .or_insert_with(|| Sticky {
                partition: (self.broker.config().time.now_ms() as u64 % partitions as u64) as u32,
                bytes: 0,
            });
        if state.bytes >= self.config.batch_size {
            state.partition = (state.partition + 1) % partitions;
            state.bytes = 0;
        }
        state.partition %= partitions;
        state.bytes += record_size(record);
        Ok(state.partition)
    }

    /// Sends one record and waits for it to be appended.
    pub async fn send(&self, record: ProducerRecord) -> Result<RecordMetadata> {
        let mut out = self.send_batch(vec![record]).await?;
        out.pop().ok_or(BrokerError::Closed)
    }

    /// Sends records, grouped into one batch per partition (split where a batch would pass
    /// `max.message.bytes`), and returns their metadata in the order given.
    ///
    /// Records to one partition keep their relative order. On an error, batches already
    /// appended stay appended; the error names what failed.
    pub async fn send_batch(&self, records: Vec<ProducerRecord>) -> Result<Vec<RecordMetadata>> {
        let now = self.broker.config().time.now_ms();
        let total = records.len();
        // One group per (topic, partition), in first-seen order. A batch usually targets one
        // topic and few partitions, so a linear search beats hashing the topic per record.
        let mut groups: Vec<Group> = Vec::new();
        let mut last_topic: Option<(Arc<str>, u32)> = None;
        for (i, record) in records.into_iter().enumerate() {
            let (topic, partitions) = match &last_topic {
                Some((t, n)) if **t == *record.topic => (t.clone(), *n),
                _ => {
                    let n = self.broker.partition_count(&record.topic).await?;
                    let t: Arc<str> = Arc::from(record.topic.as_str());
                    last_topic = Some((t.clone(), n));
                    (t, n)
                }
            };
            let partition = self.choose_partition(&record, partitions)?;
            let group = match groups
                .iter()
                .rposition(|g| g.partition == partition && *g.topic == *topic)
            {
                Some(g) => &mut groups[g],
                None => {
                    groups.push(Group {
                        topic,
                        partition,
                        indexes: Vec::new(),
                        records: Vec::new(),
                    });
                    let last = groups.len() - 1;
                    &mut groups[last]
                }
            };
            group.indexes.push(i);
            group.records.push(NewRecord {
                timestamp: record.timestamp.unwrap_or(now),
                key: record.key,
                value: record.value,
                headers: record.headers,
            });
        }

        let mut out: Vec<Option<RecordMetadata>> = vec![None; total];
        for group in groups {
            let max_bytes = {
                let t = self.broker.topic(&group.topic)?;
                let max = t.partitions[group.partition as usize]
                    .lock()
                    .config()
                    .max_message_bytes;
                max as usize
            };
            let mut start = 0;
            while start < group.records.len() {
                let end = start + batch_len(&group.records[start..], max_bytes);
                let chunk = &group.records[start..end];
                let info = self
                    .broker
                    .append(&group.topic, group.partition, chunk, ProducerFields::NONE)
                    .await?;
                for (j, record) in chunk.iter().enumerate() {
                    out[group.indexes[start + j]] = Some(RecordMetadata {
                        topic: group.topic.clone(),
                        partition: group.partition,
                        offset: info.base_offset + j as u64,
                        timestamp: info.log_append_time.unwrap_or(record.timestamp),
                    });
                }
                start = end;
            }
        }
        Ok(out.into_iter().flatten().collect())
    }

    /// A commit point: fsyncs every partition of the given topics (per `log.flush.policy`).
    pub async fn flush(&self, topics: &[&str]) -> Result<()> {
        let mut parts = Vec::new();
        for topic in topics {
            let n = self.broker.partition_count(topic).await?;
            parts.extend((0..n).map(|p| (topic.to_string(), p)));
        }
        self.broker.commit_point(&parts).await
    }
}
