//! The data dir backend: the broker opened in-process, its embedded consumer and producer.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context as _, Result};
use broker_embedded::{
    AutoOffsetReset, Broker, Consumer, ConsumerConfig, ConsumerRebalanceListener, ConsumerRecord,
    GroupDescription, OffsetAndMetadata, Producer, ProducerConfig, ProducerRecord,
    RebalanceContext, TopicConfig, TopicDescription, TopicPartition,
};
use std::sync::Arc;

use super::{
    check_start_offset, Appended, CommitError, ConfigView, GroupView, KeyValue, PartitionView,
    ReadSpec, TopicView,
};
use crate::args::{CompressionType, StartOffset};

/// A topic's partitions and configs. A config is a default when its value is the broker's
/// default for new topics.
pub(crate) async fn describe_topic(broker: &Broker, topic: &str) -> Result<TopicView> {
    let description = broker.describe_topic(topic).await?;
    Ok(topic_view(
        &description,
        &broker.config().default_topic_config,
    ))
}

/// [`describe_topic`]'s conversion.
pub(crate) fn topic_view(description: &TopicDescription, defaults: &TopicConfig) -> TopicView {
    let defaults = defaults.to_pairs();
    TopicView {
        name: description.name.clone(),
        partitions: description
            .partitions
            .iter()
            .map(|p| PartitionView {
                partition: p.partition,
                log_start_offset: Some(p.log_start_offset),
                log_end_offset: Some(p.log_end_offset),
                size_bytes: Some(p.size_bytes),
                segment_count: Some(p.segment_count as u64),
                offline: p.offline.clone(),
            })
            .collect(),
        configs: description
            .config
            .to_pairs()
            .into_iter()
            .map(|(key, value)| ConfigView {
                key: key.to_owned(),
                is_default: defaults.get(key) == Some(&value),
                value,
            })
            .collect(),
    }
}

/// A group's state, members and offsets.
pub(crate) async fn describe_group(broker: &Broker, group: &str) -> Result<GroupView> {
    let description = broker.describe_group(group).await?;
    Ok(group_view(description))
}

/// [`describe_group`]'s conversion.
pub(crate) fn group_view(description: GroupDescription) -> GroupView {
    GroupView {
        group_id: description.group_id,
        state: description.state.to_string(),
        members: description
            .members
            .into_iter()
            .map(|m| m.member_id)
            .collect(),
        partitions: description.partitions,
    }
}

/// Commits `offsets` for `group` as a consumer outside group management, which the broker
/// allows only while the group has no members (checked with the write, under its lock).
pub(crate) async fn commit_offsets(
    broker: &Broker,
    group: &str,
    offsets: &[(TopicPartition, u64)],
) -> Result<()> {
    let config = ConsumerConfig {
        group_id: Some(group.to_owned()),
        enable_auto_commit: false,
        ..ConsumerConfig::default()
    };
    let mut consumer = Consumer::new(broker, config);
    let to_commit = offsets
        .iter()
        .map(|(tp, offset)| (tp.clone(), OffsetAndMetadata::new(*offset)))
        .collect();
    let committed = consumer
        .commit_sync(Some(to_commit))
        .await
        .with_context(|| format!("committing the new offsets of group {group}"));
    let closed = consumer.close().await;
    committed?;
    closed?;
    Ok(())
}

/// The embedded consumer, positioned as `consume` asks.
#[derive(Debug)]
pub(crate) struct DirSource {
    broker: Broker,
    consumer: Consumer,
    /// A group member resolves the positions of its partitions after each poll.
    in_group: bool,
    /// Where a group member starts in a partition its group has no committed offset for.
    from_beginning: bool,
}

impl DirSource {
    /// A consumer of `spec.topic`: a member of `spec.group`, or assigned the partitions and
    /// sought to the start `spec` gives.
    pub(crate) async fn open(broker: &Broker, spec: &ReadSpec) -> Result<Self> {
        let from_beginning = spec.start == StartOffset::Earliest;
        let config = ConsumerConfig {
            auto_offset_reset: if from_beginning {
                AutoOffsetReset::Earliest
            } else {
                AutoOffsetReset::Latest
            },
            group_id: spec.group.clone(),
            // A group commits what was printed, explicitly (`commit_printed`): a commit of
            // the positions at an arbitrary poll could count records that a failed write
            // never printed.
            enable_auto_commit: false,
            isolation_level: spec.isolation_level.into(),
            ..ConsumerConfig::default()
        };
        let mut consumer = Consumer::new(broker, config);
        let topic = spec.topic.as_str();
        if spec.group.is_some() {
            // An unknown topic is an error, as without a group, rather than a wait for its
            // creation.
            broker.partition_count(topic).await?;
            consumer
                .subscribe([topic.to_owned()], CommitOnRevoke)
                .await?;
        } else {
            assign(broker, &mut consumer, spec).await?;
        }
        Ok(DirSource {
            broker: broker.clone(),
            consumer,
            in_group: spec.group.is_some(),
            from_beginning,
        })
    }

    pub(crate) async fn poll_up_to(
        &mut self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<ConsumerRecord>> {
        let records = self.consumer.poll_up_to(max, wait).await?;
        if self.in_group {
            self.resolve_positions().await?;
        }
        Ok(records)
    }

    /// Gives every assigned partition that has no position yet the one the consumer would
    /// resolve when it first reads from it: the group's committed offset, else the log start
    /// (`--from-beginning`) or end. A poll that stops at its record limit may not have
    /// reached every partition, and the commit then covers those too, so that a later
    /// consume of the group starts where this one did rather than at a later end of the log.
    pub(crate) async fn resolve_positions(&mut self) -> Result<()> {
        let unresolved: Vec<TopicPartition> = self
            .consumer
            .assignment()
            .into_iter()
            .filter(|tp| self.consumer.position(tp).is_none())
            .collect();
        if unresolved.is_empty() {
            return Ok(());
        }
        let committed = self.consumer.committed(&unresolved).await?;
        for tp in &unresolved {
            let offset = match committed.get(tp) {
                Some(c) => c.offset,
                None => {
                    let (start, end) = self.broker.offsets(&tp.topic, tp.partition).await?;
                    if self.from_beginning {
                        start
                    } else {
                        end
                    }
                }
            };
            self.consumer.seek(tp, offset)?;
        }
        Ok(())
    }

    pub(crate) fn seek(&mut self, tp: &TopicPartition, offset: u64) -> Result<()> {
        Ok(self.consumer.seek(tp, offset)?)
    }

    /// Commits the positions of the consumer's partitions where they moved.
    pub(crate) async fn commit_printed(&mut self) -> Result<(), CommitError> {
        commit_printed(&mut self.consumer)
            .await
            .map_err(|e| CommitError {
                fatal: e.is_fatal(),
                error: e.into(),
            })
    }

    pub(crate) async fn close(self) -> Result<()> {
        Ok(self.consumer.close().await?)
    }
}

/// Assigns the consumer the partitions to read and seeks each to where `spec` starts.
async fn assign(broker: &Broker, consumer: &mut Consumer, spec: &ReadSpec) -> Result<()> {
    let topic = spec.topic.as_str();
    let partitions: Vec<TopicPartition> = match spec.partition {
        Some(p) => vec![TopicPartition::new(topic, p)],
        None => {
            let n = broker.partition_count(topic).await?;
            (0..n).map(|p| TopicPartition::new(topic, p)).collect()
        }
    };
    consumer.assign(partitions.clone()).await?;
    for tp in &partitions {
        match spec.start {
            StartOffset::Earliest => consumer.seek_to_beginning(tp).await?,
            StartOffset::Latest => consumer.seek_to_end(tp).await?,
            StartOffset::At(offset) => {
                let (log_start, log_end) = broker.offsets(topic, tp.partition).await?;
                check_start_offset(tp, offset, log_start, log_end)?;
                consumer.seek(tp, offset)?;
            }
        }
    }
    Ok(())
}

/// The positions among `partitions` that differ from the group's committed offsets.
fn moved_positions(
    partitions: &[TopicPartition],
    position: impl Fn(&TopicPartition) -> Option<u64>,
    committed: &HashMap<TopicPartition, OffsetAndMetadata>,
) -> HashMap<TopicPartition, OffsetAndMetadata> {
    partitions
        .iter()
        .filter_map(|tp| {
            let p = position(tp)?;
            (committed.get(tp).map(|c| c.offset) != Some(p))
                .then(|| (tp.clone(), OffsetAndMetadata::new(p)))
        })
        .collect()
}

/// Commits the positions of the consumer's partitions (just past the printed records, or
/// where reading starts for a partition with none printed) where they moved.
async fn commit_printed(consumer: &mut Consumer) -> broker_embedded::Result<()> {
    let partitions = consumer.assignment();
    let committed = consumer.committed(&partitions).await?;
    let offsets = moved_positions(&partitions, |tp| consumer.position(tp), &committed);
    if offsets.is_empty() {
        return Ok(());
    }
    consumer.commit_sync(Some(offsets)).await
}

/// Commits what was printed of the partitions a rebalance takes away, so that their next
/// owner continues after it.
#[derive(Debug, Clone, Copy)]
struct CommitOnRevoke;

impl ConsumerRebalanceListener for CommitOnRevoke {
    fn on_partitions_revoked(
        &mut self,
        partitions: &[TopicPartition],
        consumer: &mut RebalanceContext<'_>,
    ) {
        let committed = consumer.committed(partitions);
        let offsets = moved_positions(partitions, |tp| consumer.position(tp), &committed);
        if offsets.is_empty() {
            return;
        }
        if let Err(e) = consumer.commit_sync(Some(offsets)) {
            tracing::warn!(error = %e, "committing the printed offsets of revoked partitions failed");
        }
    }

    fn on_partitions_assigned(&mut self, _: &[TopicPartition], _: &mut RebalanceContext<'_>) {}

    fn on_partitions_lost(&mut self, partitions: &[TopicPartition], _: &mut RebalanceContext<'_>) {
        // Another member may own them already: committing now would be refused.
        tracing::warn!(
            partitions = partitions.len(),
            "partitions lost to a rebalance; what was printed of them since the last commit \
             may be printed again"
        );
    }
}

/// The embedded producer, writing to one topic.
#[derive(Debug)]
pub(crate) struct DirSink {
    broker: Broker,
    producer: Producer,
    topic: Arc<str>,
    /// The log end offset of each partition before the first send.
    ends_before: Vec<u64>,
}

impl DirSink {
    /// A producer to `topic`, which must exist.
    pub(crate) async fn open(
        broker: &Broker,
        topic: &str,
        compression: CompressionType,
    ) -> Result<Self> {
        let ends_before = log_end_offsets(broker, topic).await?;
        let producer = Producer::with_config(
            broker,
            ProducerConfig {
                compression_type: compression.into(),
                ..ProducerConfig::default()
            },
        );
        Ok(DirSink {
            broker: broker.clone(),
            producer,
            topic: Arc::from(topic),
            ends_before,
        })
    }

    pub(crate) async fn send_batch(&mut self, records: Vec<KeyValue>) -> Result<()> {
        let records = records
            .into_iter()
            .map(|(key, value)| ProducerRecord {
                topic: self.topic.clone(),
                partition: None,
                key,
                value,
                headers: Vec::new(),
                timestamp: None,
            })
            .collect();
        self.producer.send_batch(records).await?;
        Ok(())
    }

    /// Flushes the topic: a commit point.
    pub(crate) async fn flush(&mut self) -> Result<()> {
        Ok(self.producer.flush(&[&*self.topic]).await?)
    }

    /// What was appended since [`DirSink::open`]. The command holds the data dir's lock, so
    /// it is the topic's only writer, and the growth of each partition is exactly what it
    /// wrote, including the records of a send that failed part-way.
    pub(crate) async fn appended(&self) -> Result<Appended> {
        let ends_after = log_end_offsets(&self.broker, &self.topic).await?;
        Ok(appended_between(&self.ends_before, &ends_after))
    }
}

/// What was appended between two readings of the log end offsets.
pub(crate) fn appended_between(ends_before: &[u64], ends_after: &[u64]) -> Appended {
    let ranges: Vec<(u32, u64, u64)> = (0..)
        .zip(ends_before.iter().zip(ends_after))
        .filter(|(_, (before, after))| after > before)
        .map(|(p, (&before, &after))| (p, before, after - 1))
        .collect();
    let count = ranges.iter().map(|(_, first, last)| last - first + 1).sum();
    Appended { ranges, count }
}

/// The log end offset of each partition of `topic`.
async fn log_end_offsets(broker: &Broker, topic: &str) -> Result<Vec<u64>> {
    let partitions = broker.partition_count(topic).await?;
    let mut ends = Vec::with_capacity(partitions as usize);
    for p in 0..partitions {
        ends.push(broker.offsets(topic, p).await?.1);
    }
    Ok(ends)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appended_is_the_growth_of_each_partition() {
        let appended = appended_between(&[0, 5, 7, 2], &[3, 5, 8, 2]);
        assert_eq!(appended.ranges, [(0, 0, 2), (2, 7, 7)]);
        assert_eq!(appended.count, 4);
        let none = appended_between(&[4, 1], &[4, 1]);
        assert_eq!(none, Appended::default());
    }
}
