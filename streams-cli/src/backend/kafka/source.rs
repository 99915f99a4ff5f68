//! `consume` from a cluster: librdkafka's consumer, assigned the partitions or a member of a
//! consumer group, handing out records as the embedded consumer does.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};
use broker_embedded::{ConsumerRecord, TimestampType, TopicPartition};
use bytes::Bytes;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message as _, Timestamp};
use rdkafka::{Offset, TopicPartitionList};
use tokio::time::Instant;

use super::context::PartitionKey;
use super::{
    client_config, offset_from, partition_from, partition_id, Cluster, Ctx, REQUEST_TIMEOUT,
};
use crate::args::{IsolationLevel, StartOffset};
use crate::backend::{check_start_offset, CommitError, ReadSpec};

/// How long a poll that found nothing sleeps before it looks again (the runtime sees Ctrl-C
/// meanwhile).
const IDLE_SLICE: Duration = Duration::from_millis(10);
/// The `group.id` librdkafka needs to assign partitions to a consumer outside any group;
/// the group is never joined and nothing is committed for it.
const ASSIGNING_GROUP_ID: &str = "streams-cli-no-group";
/// How long a group member may wait for the group to give it its partitions.
const JOIN_TIMEOUT: Duration = Duration::from_secs(60);

/// A librdkafka consumer of one topic.
pub(crate) struct KafkaSource {
    consumer: BaseConsumer<Ctx>,
    topic: Arc<str>,
    servers: String,
    /// The consumer group, if reading as a member.
    group: Option<String>,
    /// Where a member starts in a partition its group has no committed offset for.
    from_beginning: bool,
    /// The positions after the records the last poll handed out, which become the
    /// committed positions (in the context) once the caller printed them or sought back.
    pending: HashMap<PartitionKey, i64>,
    /// When the consumer was made, for [`JOIN_TIMEOUT`].
    opened: Instant,
    /// The last consumer error logged, so that a repeated one is logged once.
    last_error: Option<String>,
}

impl std::fmt::Debug for KafkaSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSource")
            .field("topic", &self.topic)
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// A consumer of `spec.topic`: a member of `spec.group` (its committed offsets, else
    /// the log start or end, decide where it starts), or assigned the partitions at the
    /// start `spec` gives.
    pub(crate) fn open_source(&self, spec: &ReadSpec) -> Result<KafkaSource> {
        let topic = spec.topic.as_str();
        let from_beginning = spec.start == StartOffset::Earliest;
        let mut config = client_config(self.servers());
        config
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set(
                "auto.offset.reset",
                if from_beginning { "earliest" } else { "latest" },
            )
            .set(
                "isolation.level",
                match spec.isolation_level {
                    IsolationLevel::ReadUncommitted => "read_uncommitted",
                    IsolationLevel::ReadCommitted => "read_committed",
                },
            );
        // librdkafka assigns partitions only to a consumer with a group id; one that does
        // not read as a member never joins, fetches or commits offsets of that group.
        config.set(
            "group.id",
            spec.group.as_deref().unwrap_or(ASSIGNING_GROUP_ID),
        );
        let consumer: BaseConsumer<Ctx> = config
            .create_with_context(Ctx::default())
            .with_context(|| format!("making a Kafka consumer for {}", self.servers()))?;
        match &spec.group {
            Some(group) => {
                // An unknown topic is an error, as on a data dir, rather than a wait for it.
                self.partition_count(topic)?;
                consumer
                    .subscribe(&[topic])
                    .with_context(|| format!("subscribing group {group} to {topic}"))?;
            }
            None => {
                let partitions = match spec.partition {
                    Some(p) => {
                        self.check_partition(topic, p)?;
                        vec![p]
                    }
                    None => (0..self.partition_count(topic)?).collect(),
                };
                let mut assignment = TopicPartitionList::new();
                for p in partitions {
                    let offset = match spec.start {
                        StartOffset::Earliest => Offset::Beginning,
                        StartOffset::Latest => Offset::End,
                        StartOffset::At(offset) => {
                            let (log_start, log_end) = self.offsets(topic, p)?;
                            check_start_offset(
                                &TopicPartition::new(topic, p),
                                offset,
                                log_start,
                                log_end,
                            )?;
                            Offset::Offset(i64::try_from(offset)?)
                        }
                    };
                    assignment.add_partition_offset(topic, partition_id(p)?, offset)?;
                }
                consumer
                    .assign(&assignment)
                    .with_context(|| format!("assigning the partitions of {topic}"))?;
            }
        }
        Ok(KafkaSource {
            consumer,
            topic: Arc::from(topic),
            servers: self.servers().to_owned(),
            group: spec.group.clone(),
            from_beginning,
            pending: HashMap::new(),
            opened: Instant::now(),
            last_error: None,
        })
    }
}

impl KafkaSource {
    /// Up to `max` records, waiting up to `wait` for the first. A group member then gives
    /// its partitions without a position the one reading starts at.
    pub(crate) async fn poll_up_to(
        &mut self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<ConsumerRecord>> {
        self.settle_pending();
        if let Some(group) = &self.group {
            if !self.ready() && self.opened.elapsed() >= JOIN_TIMEOUT {
                bail!(
                    "joining consumer group {group} at {}: no partitions assigned within {} s",
                    self.servers,
                    JOIN_TIMEOUT.as_secs()
                );
            }
        }
        let deadline = Instant::now() + wait;
        let mut records = Vec::new();
        while records.len() < max {
            let record = match self.consumer.poll(Duration::ZERO) {
                Some(Ok(message)) => to_record(&self.topic, &message)?,
                Some(Err(e)) => {
                    self.consumer_error(e)?;
                    continue;
                }
                None => {
                    let now = Instant::now();
                    if !records.is_empty() || now >= deadline {
                        break;
                    }
                    tokio::time::sleep((deadline - now).min(IDLE_SLICE)).await;
                    continue;
                }
            };
            self.pending.insert(
                (record.topic.to_string(), partition_id(record.partition)?),
                i64::try_from(record.offset)? + 1,
            );
            records.push(record);
        }
        if self.group.is_some() {
            self.resolve_positions()?;
        }
        Ok(records)
    }

    /// A consumer error: a fatal one ends the command; the others are librdkafka's notices
    /// of what it retries, logged once each.
    fn consumer_error(&mut self, e: KafkaError) -> Result<()> {
        if let KafkaError::MessageConsumptionFatal(_) = e {
            return Err(anyhow::Error::new(e).context(format!("reading {}", self.topic)));
        }
        let text = e.to_string();
        if self.last_error.as_deref() != Some(text.as_str()) {
            tracing::warn!(topic = %self.topic, error = %text, "consuming");
            self.last_error = Some(text);
        }
        Ok(())
    }

    /// The positions of the last poll's records become the committed positions: the caller
    /// printed them, or sought back to the first one it did not print.
    fn settle_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let mut positions = self.consumer.context().positions();
        positions.extend(self.pending.drain());
    }

    /// Gives every assigned partition without a position the one reading starts at: the
    /// group's committed offset, else the log start (`--from-beginning`) or end; the
    /// consumer is sought there, so that what is committed for a partition with nothing
    /// printed is where this consume started.
    fn resolve_positions(&mut self) -> Result<()> {
        let assignment = self
            .consumer
            .assignment()
            .context("reading the consumer's assignment")?;
        let unresolved: Vec<PartitionKey> = {
            let positions = self.consumer.context().positions();
            assignment
                .elements()
                .iter()
                .map(|e| (e.topic().to_owned(), e.partition()))
                .filter(|key| !positions.contains_key(key) && !self.pending.contains_key(key))
                .collect()
        };
        if unresolved.is_empty() {
            return Ok(());
        }
        let mut query = TopicPartitionList::new();
        for (topic, partition) in &unresolved {
            query.add_partition(topic, *partition);
        }
        let committed = self
            .consumer
            .committed_offsets(query, REQUEST_TIMEOUT)
            .context("reading the group's committed offsets")?;
        for (topic, partition) in unresolved {
            let stored = committed
                .find_partition(&topic, partition)
                .map(|e| e.offset());
            let offset = match stored {
                Some(Offset::Offset(offset)) => offset,
                _ => {
                    let (low, high) = self
                        .consumer
                        .fetch_watermarks(&topic, partition, REQUEST_TIMEOUT)
                        .with_context(|| {
                            format!("reading the offsets of partition {topic}-{partition}")
                        })?;
                    let start = if self.from_beginning { low } else { high };
                    if let Err(e) = self.consumer.seek(
                        &topic,
                        partition,
                        Offset::Offset(start),
                        REQUEST_TIMEOUT,
                    ) {
                        tracing::debug!(error = %e, topic, partition, "seeking to the start");
                    }
                    start
                }
            };
            self.consumer
                .context()
                .positions()
                .insert((topic, partition), offset);
        }
        Ok(())
    }

    /// Moves a partition back to `offset`.
    pub(crate) fn seek(&mut self, tp: &TopicPartition, offset: u64) -> Result<()> {
        let partition = partition_id(tp.partition)?;
        let offset = i64::try_from(offset)?;
        self.consumer
            .seek(
                &tp.topic,
                partition,
                Offset::Offset(offset),
                REQUEST_TIMEOUT,
            )
            .with_context(|| format!("seeking {tp} back to offset {offset}"))?;
        self.pending.insert((tp.topic.clone(), partition), offset);
        Ok(())
    }

    /// Whether a group member got its partitions (always, without a group).
    pub(crate) fn ready(&self) -> bool {
        self.group.is_none() || self.consumer.context().assigned()
    }

    /// Commits the positions of the partitions the member has.
    pub(crate) async fn commit_printed(&mut self) -> Result<(), CommitError> {
        self.settle_pending();
        let failed = |error: anyhow::Error| CommitError {
            error,
            fatal: false,
        };
        let assignment = self
            .consumer
            .assignment()
            .map_err(|e| failed(anyhow::Error::new(e).context("reading the assignment")))?;
        let mut offsets = TopicPartitionList::new();
        {
            let positions = self.consumer.context().positions();
            for elem in assignment.elements() {
                let key = (elem.topic().to_owned(), elem.partition());
                if let Some(&offset) = positions.get(&key) {
                    offsets
                        .add_partition_offset(&key.0, key.1, Offset::Offset(offset))
                        .map_err(|e| failed(e.into()))?;
                }
            }
        }
        if offsets.count() == 0 {
            return Ok(());
        }
        self.consumer
            .commit(&offsets, CommitMode::Sync)
            .map_err(|e| failed(e.into()))
    }

    /// Leaves the group, if any: librdkafka closes the consumer when it is dropped.
    pub(crate) async fn close(self) -> Result<()> {
        if self.group.is_some() {
            self.consumer.unsubscribe();
        }
        drop(self.consumer);
        Ok(())
    }
}

/// A message as the embedded consumer hands records out.
fn to_record(topic: &Arc<str>, message: &BorrowedMessage<'_>) -> Result<ConsumerRecord> {
    if message.topic() != &**topic {
        return Err(anyhow!(
            "a record of topic {} came to a consumer of {topic}",
            message.topic()
        ));
    }
    let (timestamp, timestamp_type) = match message.timestamp() {
        Timestamp::CreateTime(t) => (t, TimestampType::CreateTime),
        Timestamp::LogAppendTime(t) => (t, TimestampType::LogAppendTime),
        Timestamp::NotAvailable => (-1, TimestampType::CreateTime),
    };
    Ok(ConsumerRecord {
        topic: topic.clone(),
        partition: partition_from(message.partition())?,
        offset: offset_from(message.offset())?,
        timestamp,
        timestamp_type,
        key: message.key().map(Bytes::copy_from_slice),
        value: message.payload().map(Bytes::copy_from_slice),
        headers: Vec::new(),
    })
}
