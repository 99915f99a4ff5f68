//! Broker-side group operations: creating and loading `__consumer_offsets` when the broker
//! opens, and the admin calls behind `kafka-consumer-groups`-style tooling.

use std::collections::{BTreeMap, BTreeSet};

use tracing::{info, warn};

use super::codec::{DecodedKey, OffsetKey, OffsetValue};
use super::state::CommittedOffset;
use super::{
    GroupDescription, GroupListing, GroupPartitionDescription, OffsetAndMetadata, OffsetResetSpec,
    CONSUMER_OFFSETS_TOPIC, OFFSETS_TOPIC_PARTITIONS,
};
use crate::broker::{Broker, NewTopic};
use crate::error::{BrokerError, Result};
use crate::TopicPartition;

/// Transactional offsets by producer id, until their transaction's marker.
type PendingOffsets =
    std::collections::HashMap<i64, Vec<(String, TopicPartition, CommittedOffset)>>;

/// `offsets.topic.segment.bytes`, Kafka's default: 100 MiB.
const OFFSETS_TOPIC_SEGMENT_BYTES: &str = "104857600";
/// How much one read of `__consumer_offsets` asks for while loading.
const LOAD_FETCH_BYTES: usize = 1 << 20;

/// Refuses an empty group id (Kafka's `InvalidGroupIdException`).
pub(crate) fn validate_group_id(group: &str) -> Result<()> {
    if group.is_empty() {
        return Err(BrokerError::InvalidConfig {
            key: "group.id".to_owned(),
            value: String::new(),
            reason: "group management and offset commits need a non-empty group.id".to_owned(),
        });
    }
    Ok(())
}

impl Broker {
    /// Creates `__consumer_offsets` if it is missing, rebuilds the committed-offsets cache
    /// from it, and starts the coordinator's timer. Called once when the broker opens.
    pub(crate) async fn start_groups(&self) -> Result<()> {
        if self.config().read_only {
            // Nothing is created: groups come from the offsets topic if there is one.
            if self.topic(CONSUMER_OFFSETS_TOPIC).is_ok() {
                self.load_offsets().await?;
            }
            return Ok(());
        }
        let created = self
            .ensure_topic(
                NewTopic::new(CONSUMER_OFFSETS_TOPIC, OFFSETS_TOPIC_PARTITIONS)
                    .config("cleanup.policy", "compact")
                    .config("segment.bytes", OFFSETS_TOPIC_SEGMENT_BYTES),
            )
            .await?;
        if created {
            info!(
                topic = CONSUMER_OFFSETS_TOPIC,
                partitions = OFFSETS_TOPIC_PARTITIONS,
                "created the offsets topic"
            );
        } else {
            self.load_offsets().await?;
        }
        self.inner.groups.start_timer(self);
        Ok(())
    }

    /// Reads every record of `__consumer_offsets`, in order, into the cache. A record that
    /// cannot be decoded is corruption and fails the open; a key of another version (a record
    /// kind this build does not know) is skipped with a warning. A partition that is offline
    /// (a damaged file) is loaded not at all: its groups get `GroupOffsetsOffline` until it
    /// is repaired, rather than no offsets (which would restart them elsewhere).
    async fn load_offsets(&self) -> Result<()> {
        let partitions = self.partition_count(CONSUMER_OFFSETS_TOPIC).await?;
        let mut entries = Vec::new();
        let mut pending: PendingOffsets = std::collections::HashMap::new();
        let mut skipped = 0usize;
        let mut offline = BTreeMap::new();
        for p in 0..partitions {
            let mut part_entries = Vec::new();
            let mut part_pending: PendingOffsets = std::collections::HashMap::new();
            let loaded = self
                .load_offsets_partition(p, &mut part_entries, &mut part_pending, &mut skipped)
                .await;
            match loaded {
                Ok(()) => {
                    entries.extend(part_entries);
                    for (pid, offsets) in part_pending {
                        pending.entry(pid).or_default().extend(offsets);
                    }
                }
                Err(e) => {
                    let Some(reason) = e.offline_reason() else {
                        return Err(e);
                    };
                    let groups: BTreeSet<&str> = part_entries
                        .iter()
                        .map(|(g, _, _)| g.as_str())
                        .chain(part_pending.values().flatten().map(|(g, _, _)| g.as_str()))
                        .collect();
                    let groups = groups.into_iter().collect::<Vec<_>>().join(", ");
                    let groups = if groups.is_empty() { "none" } else { &groups };
                    tracing::error!(
                        partition = p,
                        "{CONSUMER_OFFSETS_TOPIC}-{p} is offline: {reason}; the committed offsets of the groups it serves cannot be read (groups found before the damage: {groups})"
                    );
                    offline.insert(
                        p,
                        format!("{reason}; groups found before the damage: {groups}"),
                    );
                }
            }
        }
        info!(
            records = entries.len(),
            skipped, "loaded committed offsets from the offsets topic"
        );
        self.inner.groups.load(entries);
        self.inner.groups.load_pending(pending);
        self.inner.groups.set_offline(partitions, offline);
        Ok(())
    }

    /// Reads one partition of `__consumer_offsets` into `entries` and `pending`.
    async fn load_offsets_partition(
        &self,
        p: u32,
        entries: &mut Vec<(String, TopicPartition, Option<CommittedOffset>)>,
        pending: &mut PendingOffsets,
        skipped: &mut usize,
    ) -> Result<()> {
        let corrupt = |offset: u64, reason: String| BrokerError::CorruptOffsetsRecord {
            partition: p,
            offset,
            reason,
        };
        self.check_online(CONSUMER_OFFSETS_TOPIC, p)?;
        let (start, end) = self.offsets(CONSUMER_OFFSETS_TOPIC, p).await?;
        let mut next = start;
        while next < end {
            let batches = self
                .fetch(CONSUMER_OFFSETS_TOPIC, p, next, LOAD_FETCH_BYTES, None)
                .await?;
            if batches.is_empty() {
                warn!(
                    partition = p,
                    offset = next,
                    log_end_offset = end,
                    "reading the offsets topic returned nothing before its end"
                );
                break;
            }
            for batch in batches {
                next = next.max(batch.info.last_offset + 1);
                let pid = batch.info.producer_id;
                if batch.info.control {
                    let commit = batch
                        .records
                        .first()
                        .and_then(|r| r.key.as_deref())
                        .and_then(crate::log::control_is_commit);
                    let done = pending.remove(&pid).unwrap_or_default();
                    if commit == Some(true) {
                        entries.extend(done.into_iter().map(|(g, tp, c)| (g, tp, Some(c))));
                    }
                    continue;
                }
                for record in batch.records {
                    let Some(key) = record.key.as_deref() else {
                        return Err(corrupt(record.offset, "the record has no key".to_owned()));
                    };
                    let key = match OffsetKey::decode(key) {
                        Ok(DecodedKey::Offset(key)) => key,
                        Ok(DecodedKey::Unknown { version }) => {
                            *skipped += 1;
                            warn!(
                                partition = p,
                                offset = record.offset,
                                version,
                                "skipping an offsets-topic record with an unknown key version"
                            );
                            continue;
                        }
                        Err(e) => return Err(corrupt(record.offset, e.to_string())),
                    };
                    let value = match record.value.as_deref() {
                        None => None,
                        Some(bytes) => match OffsetValue::decode(bytes) {
                            Ok(v) => Some(CommittedOffset {
                                offset: v.offset,
                                metadata: v.metadata,
                                commit_timestamp: v.commit_timestamp,
                            }),
                            Err(e) => return Err(corrupt(record.offset, e.to_string())),
                        },
                    };
                    let tp = TopicPartition::new(key.topic, key.partition);
                    match value {
                        Some(c) if batch.info.transactional => {
                            pending.entry(pid).or_default().push((key.group, tp, c))
                        }
                        value => entries.push((key.group, tp, value)),
                    }
                }
            }
        }
        Ok(())
    }

    /// Every consumer group the broker knows (with members or committed offsets), sorted by
    /// id (Kafka's `listConsumerGroups`): the embedded consumer's groups and those of Kafka
    /// clients alike.
    pub async fn list_groups(&self) -> Result<Vec<GroupListing>> {
        self.check_open()?;
        Ok(self.inner.groups.list(self))
    }

    /// A group's state, members and, per partition, the committed offset, the log end offset,
    /// the lag and the member it is assigned to (Kafka's `describeConsumerGroups` with
    /// `listConsumerGroupOffsets`), for groups of the embedded consumer and of Kafka clients
    /// alike (the members of a `consumer`-protocol group show the partitions and topics read
    /// from their assignment and metadata). An unknown group is
    /// [`BrokerError::GroupIdNotFound`].
    pub async fn describe_group(&self, group: &str) -> Result<GroupDescription> {
        self.check_open()?;
        self.inner.groups.check_group(group)?;
        let snapshot = self.inner.groups.snapshot(self, group).ok_or_else(|| {
            BrokerError::GroupIdNotFound {
                group: group.to_owned(),
            }
        })?;
        let mut owner: BTreeMap<&TopicPartition, &str> = BTreeMap::new();
        for member in &snapshot.members {
            for tp in &member.assignment {
                owner.insert(tp, &member.member_id);
            }
        }
        let tps: BTreeSet<&TopicPartition> = snapshot
            .offsets
            .keys()
            .chain(owner.keys().copied())
            .collect();
        let mut partitions = Vec::with_capacity(tps.len());
        for tp in tps {
            let log_end_offset = match self.offsets(&tp.topic, tp.partition).await {
                Ok((_, end)) => Some(end),
                Err(BrokerError::UnknownTopic { .. } | BrokerError::UnknownPartition { .. }) => {
                    None
                }
                Err(e) => return Err(e),
            };
            let committed = snapshot.offsets.get(tp);
            let committed_offset = committed.map(|c| c.offset);
            let lag = match (committed_offset, log_end_offset) {
                (Some(c), Some(end)) => Some(end.saturating_sub(c)),
                _ => None,
            };
            partitions.push(GroupPartitionDescription {
                topic: tp.topic.clone(),
                partition: tp.partition,
                committed_offset,
                metadata: committed.map(|c| c.metadata.clone()),
                log_end_offset,
                lag,
                member_id: owner.get(tp).map(|m| (*m).to_owned()),
            });
        }
        Ok(GroupDescription {
            group_id: group.to_owned(),
            state: snapshot.state,
            generation: snapshot.generation,
            strategy: snapshot.strategy,
            protocol_type: snapshot.protocol_type,
            protocol: snapshot.protocol,
            leader: snapshot.leader,
            members: snapshot.members,
            partitions,
        })
    }

    /// Moves the committed offsets of `group` for every partition of `topic` (Kafka's
    /// `kafka-consumer-groups --reset-offsets ... --execute`) and returns the new offsets.
    ///
    /// Refused with [`BrokerError::GroupNotEmpty`] while the group has members: a running
    /// consumer would overwrite the reset with its next commit. Targets outside
    /// `[log start, log end]` are clamped to it, as Kafka does. The group need not exist yet.
    pub async fn reset_offsets(
        &self,
        group: &str,
        topic: &str,
        spec: OffsetResetSpec,
    ) -> Result<Vec<(TopicPartition, u64)>> {
        self.check_open()?;
        validate_group_id(group)?;
        self.inner.groups.check_group(group)?;
        let partitions = self.partition_count(topic).await?;
        let committed = self.inner.groups.all_committed(group);
        let mut targets = Vec::with_capacity(partitions as usize);
        for p in 0..partitions {
            let tp = TopicPartition::new(topic, p);
            let (start, end) = self.offsets(topic, p).await?;
            let wanted = match spec {
                OffsetResetSpec::ToEarliest => start,
                OffsetResetSpec::ToLatest => end,
                OffsetResetSpec::ToOffset(offset) => offset,
                OffsetResetSpec::ShiftBy(delta) => {
                    let current =
                        committed
                            .get(&tp)
                            .ok_or_else(|| BrokerError::NoCommittedOffset {
                                group: group.to_owned(),
                                topic: topic.to_owned(),
                                partition: p,
                            })?;
                    let shifted = i128::from(current.offset) + i128::from(delta);
                    u64::try_from(shifted.max(0)).unwrap_or(u64::MAX)
                }
            };
            let offset = wanted.clamp(start, end);
            if offset != wanted {
                info!(
                    group, partition = %tp, wanted, offset,
                    "reset target is outside the log; clamped"
                );
            }
            targets.push((tp, OffsetAndMetadata::new(offset)));
        }
        if let Some(partition) = self
            .inner
            .groups
            .write_if_inactive(self, group, Some(&targets))?
        {
            self.commit_point(&[(CONSUMER_OFFSETS_TOPIC.to_owned(), partition)])
                .await?;
        }
        info!(group, topic, ?spec, "offsets reset");
        Ok(targets
            .into_iter()
            .map(|(tp, om)| (tp, om.offset))
            .collect())
    }

    /// Deletes a group's committed offsets (tombstones in `__consumer_offsets`) and forgets
    /// the group (Kafka's `deleteConsumerGroups`). Refused with
    /// [`BrokerError::GroupNotEmpty`] while it has members; an unknown group is
    /// [`BrokerError::GroupIdNotFound`].
    pub async fn delete_group(&self, group: &str) -> Result<()> {
        self.check_open()?;
        if let Some(partition) = self.inner.groups.write_if_inactive(self, group, None)? {
            self.commit_point(&[(CONSUMER_OFFSETS_TOPIC.to_owned(), partition)])
                .await?;
        }
        info!(group, "group deleted");
        Ok(())
    }
}
