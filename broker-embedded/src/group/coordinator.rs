//! The group coordinator bound to a broker: the state machine behind a lock, offset commits
//! written to `__consumer_offsets`, wake-ups for waiting members, and a timer thread that
//! expires silent members even when nobody else talks to the coordinator.

use std::collections::BTreeMap;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::Notify;
use tracing::{debug, warn};

use super::codec::{OffsetKey, OffsetValue};
use super::consumer_protocol::{assignment_partitions, subscription_topics};
use super::state::{CommittedOffset, Groups, Heartbeat, JoinRequest, TopicMetadata};
use super::{
    offsets_partition_for, ConsumerGroupMetadata, GroupListing, GroupState, MemberDescription,
    OffsetAndMetadata, CONSUMER_OFFSETS_TOPIC, OFFSET_METADATA_MAX_BYTES,
};
use crate::broker::Broker;
use crate::error::{BrokerError, Result};
use crate::record::{NewRecord, ProducerFields};
use crate::TopicPartition;

/// The longest the timer thread sleeps, so that a clock that jumps (a mock clock in tests)
/// is noticed within this much real time.
const MAX_TIMER_SLEEP_MS: i64 = 1000;

impl TopicMetadata for Broker {
    fn partition_count(&self, topic: &str) -> Option<u32> {
        self.topic(topic).ok().map(|t| t.partitions.len() as u32)
    }
}

#[derive(Debug)]
enum TimerMsg {
    /// Recompute the next deadline (a member joined with maybe shorter timeouts).
    Wake,
    /// The broker is closing.
    Stop,
}

#[derive(Debug)]
struct Timer {
    tx: mpsc::Sender<TimerMsg>,
    handle: JoinHandle<()>,
}

/// A snapshot of one group for `describe_group`.
#[derive(Debug)]
pub(crate) struct GroupSnapshot {
    pub(crate) state: GroupState,
    pub(crate) generation: i32,
    pub(crate) strategy: Option<super::AssignmentStrategy>,
    pub(crate) protocol_type: String,
    pub(crate) protocol: Option<String>,
    pub(crate) leader: Option<String>,
    pub(crate) members: Vec<MemberDescription>,
    pub(crate) offsets: BTreeMap<TopicPartition, CommittedOffset>,
}

/// The coordinator of every group of one broker.
#[derive(Debug)]
pub(crate) struct GroupCoordinator {
    groups: Mutex<Groups>,
    /// Woken on every membership or generation change, so members waiting in `poll` act on
    /// it at once.
    changed: Notify,
    /// Woken when an answer is delivered to a parked JoinGroup or SyncGroup of Kafka's
    /// classic protocol, and when the broker closes.
    pub(super) classic_changed: Notify,
    timer: Mutex<Option<Timer>>,
    /// Offsets committed inside transactions that have no marker yet, by producer id.
    #[allow(clippy::type_complexity, reason = "a plain map of lists")]
    pending_txn:
        Mutex<std::collections::HashMap<i64, Vec<(String, TopicPartition, CommittedOffset)>>>,
    /// Partitions of `__consumer_offsets` that could not be read when the broker opened,
    /// with the reason, and the topic's partition count: the groups they serve can neither
    /// read nor commit offsets (serving none would restart them from `auto.offset.reset`).
    offline: Mutex<(u32, BTreeMap<u32, String>)>,
}

impl Default for GroupCoordinator {
    fn default() -> Self {
        Self::new()
    }
}

impl GroupCoordinator {
    pub(crate) fn new() -> Self {
        GroupCoordinator {
            groups: Mutex::new(Groups::default()),
            changed: Notify::new(),
            classic_changed: Notify::new(),
            timer: Mutex::new(None),
            pending_txn: Mutex::new(std::collections::HashMap::new()),
            offline: Mutex::new((0, BTreeMap::new())),
        }
    }

    /// Records the `__consumer_offsets` partitions that could not be loaded.
    pub(crate) fn set_offline(&self, partitions: u32, offline: BTreeMap<u32, String>) {
        *self.offline.lock().unwrap_or_else(|p| p.into_inner()) = (partitions, offline);
    }

    /// `GroupOffsetsOffline` when `group`'s offsets partition could not be loaded.
    pub(crate) fn check_group(&self, group: &str) -> Result<()> {
        let offline = self.offline.lock().unwrap_or_else(|p| p.into_inner());
        if offline.1.is_empty() {
            return Ok(());
        }
        let partition = super::offsets_partition_for(group, offline.0);
        match offline.1.get(&partition) {
            Some(reason) => Err(BrokerError::GroupOffsetsOffline {
                group: group.to_owned(),
                partition,
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Groups> {
        // Every transition completes before it returns; a panic elsewhere while the guard
        // was held leaves a consistent state, so the guard is reused.
        self.groups.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Releases the lock and wakes waiting members if anything changed.
    pub(super) fn finish(&self, mut groups: MutexGuard<'_, Groups>) {
        let changed = std::mem::take(&mut groups.changed);
        let classic_changed = std::mem::take(&mut groups.classic.changed);
        drop(groups);
        if changed {
            self.changed.notify_waiters();
        }
        if classic_changed {
            self.classic_changed.notify_waiters();
        }
    }

    /// Woken whenever a group changes (a rebalance starts or completes, a member expires).
    pub(crate) fn changed(&self) -> &Notify {
        &self.changed
    }

    pub(super) fn now(broker: &Broker) -> i64 {
        broker.config().time.now_ms()
    }

    /// Joins or rejoins a group; returns the member id.
    pub(crate) fn join(
        &self,
        broker: &Broker,
        group: &str,
        member_id: Option<&str>,
        request: JoinRequest,
    ) -> Result<String> {
        broker.check_open()?;
        self.check_group(group)?;
        let mut groups = self.lock();
        let result = groups.join(group, member_id, request, Self::now(broker), broker);
        self.finish(groups);
        self.wake_timer();
        result
    }

    /// A heartbeat of a member; `from_poll` marks it as polling.
    pub(crate) fn heartbeat(
        &self,
        broker: &Broker,
        group: &str,
        member_id: &str,
        generation: i32,
        from_poll: bool,
    ) -> Result<Heartbeat> {
        broker.check_open()?;
        let mut groups = self.lock();
        let result = groups.heartbeat(
            group,
            member_id,
            generation,
            from_poll,
            Self::now(broker),
            broker,
        );
        self.finish(groups);
        Ok(result)
    }

    /// A member leaves its group.
    pub(crate) fn leave(&self, broker: &Broker, group: &str, member_id: &str) {
        let mut groups = self.lock();
        groups.leave(group, member_id, Self::now(broker), broker);
        self.finish(groups);
    }

    /// Expires silent members of every group.
    pub(crate) fn expire(&self, broker: &Broker) {
        let mut groups = self.lock();
        groups.expire(Self::now(broker), broker);
        self.finish(groups);
    }

    /// Committed offsets of `group` for `tps` (absent where there is none).
    pub(crate) fn committed<'a>(
        &self,
        group: &str,
        tps: impl IntoIterator<Item = &'a TopicPartition>,
    ) -> Result<Vec<(TopicPartition, OffsetAndMetadata)>> {
        self.check_group(group)?;
        Ok(self.lock().committed(group, tps))
    }

    /// Every committed offset of `group`.
    pub(crate) fn all_committed(&self, group: &str) -> BTreeMap<TopicPartition, CommittedOffset> {
        self.lock()
            .groups
            .get(group)
            .map(|g| g.offsets.clone())
            .unwrap_or_default()
    }

    /// Checks offsets to commit (metadata size, known partitions) and turns them into the
    /// entries written to `__consumer_offsets`, stamped `now`.
    pub(super) fn offset_entries(
        broker: &Broker,
        group: &str,
        offsets: &[(TopicPartition, OffsetAndMetadata)],
        now: i64,
    ) -> Result<Vec<(TopicPartition, Option<CommittedOffset>)>> {
        offsets
            .iter()
            .map(|(tp, om)| {
                if om.metadata.len() > OFFSET_METADATA_MAX_BYTES {
                    return Err(BrokerError::OffsetMetadataTooLarge {
                        group: group.to_owned(),
                        topic: tp.topic.clone(),
                        partition: tp.partition,
                        size: om.metadata.len(),
                        max: OFFSET_METADATA_MAX_BYTES,
                    });
                }
                broker.partition(&tp.topic, tp.partition)?;
                Ok((
                    tp.clone(),
                    Some(CommittedOffset {
                        offset: om.offset,
                        metadata: om.metadata.clone(),
                        commit_timestamp: now,
                    }),
                ))
            })
            .collect()
    }

    /// Commits offsets for `member_id` at `generation` (or, with generation -1 and an empty
    /// member id, for a consumer outside group management). The check, the append to
    /// `__consumer_offsets` and the cache update happen under one lock, so a commit can never
    /// land after a rebalance fenced it, and the cache follows the log's order. Returns the
    /// `__consumer_offsets` partition written, for the caller's commit point.
    pub(crate) fn commit(
        &self,
        broker: &Broker,
        group: &str,
        member_id: &str,
        generation: i32,
        offsets: &[(TopicPartition, OffsetAndMetadata)],
    ) -> Result<Option<u32>> {
        broker.check_open()?;
        self.check_group(group)?;
        if offsets.is_empty() {
            return Ok(None);
        }
        let now = Self::now(broker);
        let entries = Self::offset_entries(broker, group, offsets, now)?;
        let mut groups = self.lock();
        let result = groups
            .check_commit(group, member_id, generation, now, broker)
            .and_then(|()| Self::write(broker, &mut groups, group, entries, now));
        self.finish(groups);
        result.map(Some)
    }

    /// Writes offsets (or tombstones) of a group that has no members; refused with
    /// `GroupNotEmpty` otherwise. With `require_known`, an unknown group is `GroupIdNotFound`
    /// and every offset it has is tombstoned (a group delete).
    pub(crate) fn write_if_inactive(
        &self,
        broker: &Broker,
        group: &str,
        offsets: Option<&[(TopicPartition, OffsetAndMetadata)]>,
    ) -> Result<Option<u32>> {
        broker.check_open()?;
        self.check_group(group)?;
        let now = Self::now(broker);
        let mut groups = self.lock();
        groups.expire(now, broker);
        let result = (|| {
            if let Some(classic) = groups.classic.groups.get(group).filter(|g| g.is_active()) {
                return Err(BrokerError::GroupNotEmpty {
                    group: group.to_owned(),
                    state: classic.state.to_string(),
                    members: classic.member_count(),
                });
            }
            let known_classic = groups.classic.groups.contains_key(group);
            if offsets.is_none() {
                // A delete forgets the classic group too (it is empty).
                groups.classic.groups.remove(group);
            }
            let existing = groups.groups.get(group);
            if let Some(g) = existing {
                if !g.members.is_empty() {
                    return Err(BrokerError::GroupNotEmpty {
                        group: group.to_owned(),
                        state: g.state.to_string(),
                        members: g.members.len(),
                    });
                }
            }
            let entries: Vec<(TopicPartition, Option<CommittedOffset>)> = match offsets {
                Some(offsets) => offsets
                    .iter()
                    .map(|(tp, om)| {
                        (
                            tp.clone(),
                            Some(CommittedOffset {
                                offset: om.offset,
                                metadata: om.metadata.clone(),
                                commit_timestamp: now,
                            }),
                        )
                    })
                    .collect(),
                None => match existing {
                    Some(g) => g.offsets.keys().map(|tp| (tp.clone(), None)).collect(),
                    None if known_classic => Vec::new(),
                    None => {
                        return Err(BrokerError::GroupIdNotFound {
                            group: group.to_owned(),
                        })
                    }
                },
            };
            if entries.is_empty() {
                // A delete of a group with no offsets: nothing to write.
                groups.groups.remove(group);
                return Ok(None);
            }
            Self::write(broker, &mut groups, group, entries, now).map(Some)
        })();
        self.finish(groups);
        result
    }

    /// Appends offset records (a `None` offset is a tombstone) to the group's
    /// `__consumer_offsets` partition and applies them to the cache. Called with the lock
    /// held; the append does not fsync (the caller's commit point does).
    pub(super) fn write(
        broker: &Broker,
        groups: &mut Groups,
        group: &str,
        entries: Vec<(TopicPartition, Option<CommittedOffset>)>,
        now: i64,
    ) -> Result<u32> {
        let partition = Self::append_offsets(broker, group, &entries, now, ProducerFields::NONE)?;
        for (tp, value) in entries {
            match value {
                Some(c) => groups.apply_offsets(group, [(tp, c)]),
                None => groups.remove_offset(group, &tp),
            }
        }
        Ok(partition)
    }

    /// Encodes offset records and appends them as one batch with `fields` to the group's
    /// `__consumer_offsets` partition; returns the partition.
    fn append_offsets(
        broker: &Broker,
        group: &str,
        entries: &[(TopicPartition, Option<CommittedOffset>)],
        now: i64,
        fields: ProducerFields,
    ) -> Result<u32> {
        let (topic, _) = broker.partition(CONSUMER_OFFSETS_TOPIC, 0)?;
        let partition = offsets_partition_for(group, topic.partitions.len() as u32);
        let mut records = Vec::with_capacity(entries.len());
        for (tp, value) in entries {
            let key = OffsetKey {
                group: group.to_owned(),
                topic: tp.topic.clone(),
                partition: tp.partition,
            }
            .encode()
            .map_err(|e| BrokerError::InvalidConfig {
                key: "group.id".to_owned(),
                value: group.chars().take(64).collect(),
                reason: e.to_string(),
            })?;
            let value = match value {
                Some(c) => Some(
                    OffsetValue {
                        offset: c.offset,
                        metadata: c.metadata.clone(),
                        commit_timestamp: c.commit_timestamp,
                    }
                    .encode()
                    .map_err(|e| BrokerError::InvalidRecord {
                        topic: CONSUMER_OFFSETS_TOPIC.to_owned(),
                        reason: e.to_string(),
                    })?,
                ),
                None => None,
            };
            records.push(NewRecord {
                timestamp: now,
                key: Some(key),
                value,
                headers: Vec::new(),
            });
        }
        // The append is synchronous (no `.await`), so it can run under the coordinator lock.
        topic.partitions[partition as usize]
            .lock()?
            .append(&records, fields)?;
        broker.inner.data_arrived.notify_waiters();
        debug!(
            group,
            partition,
            records = records.len(),
            transactional = fields.transactional,
            "offsets written"
        );
        Ok(partition)
    }

    /// Kafka's `TxnOffsetCommit`: checks the group generation as a commit does, appends the
    /// offsets to the group's `__consumer_offsets` partition as transactional records of the
    /// producer, and keeps them aside until the transaction's marker: they become the
    /// group's committed offsets only when it commits. Returns the partition written.
    pub(crate) fn txn_commit(
        &self,
        broker: &Broker,
        metadata: &ConsumerGroupMetadata,
        producer_id: i64,
        producer_epoch: i16,
        offsets: &[(TopicPartition, OffsetAndMetadata)],
    ) -> Result<Option<u32>> {
        let group = metadata.group_id.as_str();
        self.txn_commit_with(
            broker,
            group,
            producer_id,
            producer_epoch,
            offsets,
            |groups, now| {
                groups.check_commit(
                    group,
                    &metadata.member_id,
                    metadata.generation_id,
                    now,
                    broker,
                )
            },
        )
    }

    /// [`GroupCoordinator::txn_commit`] with the group's check of the committer given by the
    /// caller (the embedded consumer's rules, or Kafka's classic protocol's), run under the
    /// same lock as the append.
    pub(crate) fn txn_commit_with(
        &self,
        broker: &Broker,
        group: &str,
        producer_id: i64,
        producer_epoch: i16,
        offsets: &[(TopicPartition, OffsetAndMetadata)],
        check: impl FnOnce(&mut Groups, i64) -> Result<()>,
    ) -> Result<Option<u32>> {
        broker.check_open()?;
        self.check_group(group)?;
        if offsets.is_empty() {
            return Ok(None);
        }
        let now = Self::now(broker);
        let entries = Self::offset_entries(broker, group, offsets, now)?;
        let fields = ProducerFields {
            producer_id,
            producer_epoch,
            base_sequence: -1,
            transactional: true,
            control: false,
        };
        let mut groups = self.lock();
        let result = check(&mut groups, now)
            .and_then(|()| Self::append_offsets(broker, group, &entries, now, fields));
        if result.is_ok() {
            let mut pending = self.pending_txn.lock().unwrap_or_else(|p| p.into_inner());
            let list = pending.entry(producer_id).or_default();
            for (tp, value) in entries {
                if let Some(c) = value {
                    list.push((group.to_owned(), tp, c));
                }
            }
        }
        self.finish(groups);
        result.map(Some)
    }

    /// Partitions of `group` with a transactional offset commit that has no marker yet.
    pub(super) fn pending_txn_partitions(
        &self,
        group: &str,
    ) -> std::collections::BTreeSet<TopicPartition> {
        self.pending_txn
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .flatten()
            .filter(|(g, _, _)| g == group)
            .map(|(_, tp, _)| tp.clone())
            .collect()
    }

    /// A transaction marker of `producer_id` reached `__consumer_offsets`: its offsets become
    /// committed (commit) or are dropped (abort).
    pub(crate) fn complete_txn(&self, producer_id: i64, commit: bool) {
        let mut groups = self.lock();
        let entries = self
            .pending_txn
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&producer_id)
            .unwrap_or_default();
        if commit {
            for (group, tp, c) in entries {
                groups.apply_offsets(&group, [(tp, c)]);
            }
        }
        self.finish(groups);
    }

    /// Loads transactional offsets read from `__consumer_offsets` on open whose transaction
    /// has no marker yet.
    pub(crate) fn load_pending(
        &self,
        pending: std::collections::HashMap<i64, Vec<(String, TopicPartition, CommittedOffset)>>,
    ) {
        let mut map = self.pending_txn.lock().unwrap_or_else(|p| p.into_inner());
        for (pid, entries) in pending {
            map.entry(pid).or_default().extend(entries);
        }
    }

    /// Loads offsets read from `__consumer_offsets` when the broker opens.
    pub(crate) fn load(&self, entries: Vec<(String, TopicPartition, Option<CommittedOffset>)>) {
        let mut groups = self.lock();
        for (group, tp, value) in entries {
            match value {
                Some(c) => groups.apply_offsets(&group, [(tp, c)]),
                None => groups.remove_offset(&group, &tp),
            }
        }
        groups.changed = false;
    }

    /// Every known group of either kind, sorted by id.
    pub(crate) fn list(&self, broker: &Broker) -> Vec<GroupListing> {
        let mut groups = self.lock();
        groups.expire(Self::now(broker), broker);
        let ids: std::collections::BTreeSet<&String> = groups
            .groups
            .keys()
            .chain(groups.classic.groups.keys())
            .collect();
        // A group id is in use by one kind at a time; an empty classic group that still
        // has offsets shows as a classic group.
        let out = ids
            .into_iter()
            .filter_map(|id| {
                let embedded = groups.groups.get(id);
                let embedded_active = embedded.is_some_and(|g| !g.members.is_empty());
                match (groups.classic.groups.get(id), embedded) {
                    (Some(c), _) if !embedded_active => Some(GroupListing {
                        group_id: id.clone(),
                        state: c.state,
                        members: c.member_count(),
                        protocol_type: c.protocol_type.clone().unwrap_or_default(),
                    }),
                    (_, Some(g)) => Some(GroupListing {
                        group_id: id.clone(),
                        state: g.state,
                        members: g.members.len(),
                        protocol_type: if embedded_active {
                            super::consumer_protocol::CONSUMER_PROTOCOL_TYPE.to_owned()
                        } else {
                            String::new()
                        },
                    }),
                    _ => None,
                }
            })
            .collect();
        self.finish(groups);
        out
    }

    /// One group's state, members and offsets; `None` if the group is unknown.
    pub(crate) fn snapshot(&self, broker: &Broker, group: &str) -> Option<GroupSnapshot> {
        let mut groups = self.lock();
        groups.expire(Self::now(broker), broker);
        let offsets = groups
            .groups
            .get(group)
            .map(|g| g.offsets.clone())
            .unwrap_or_default();
        let embedded_active = groups
            .groups
            .get(group)
            .is_some_and(|g| !g.members.is_empty());
        let out = match (groups.classic.groups.get(group), groups.groups.get(group)) {
            (Some(c), _) if !embedded_active => {
                let consumer = c.protocol_type.as_deref()
                    == Some(super::consumer_protocol::CONSUMER_PROTOCOL_TYPE);
                Some(GroupSnapshot {
                    state: c.state,
                    generation: c.generation,
                    strategy: None,
                    protocol_type: c.protocol_type.clone().unwrap_or_default(),
                    protocol: c.protocol_name.clone(),
                    leader: c.leader.clone(),
                    members: c
                        .members()
                        .into_iter()
                        .map(|m| MemberDescription {
                            generation: c.generation,
                            assignment: consumer
                                .then(|| assignment_partitions(&m.assignment))
                                .flatten()
                                .unwrap_or_default(),
                            subscription: consumer
                                .then(|| subscription_topics(&m.metadata))
                                .flatten()
                                .unwrap_or_default(),
                            member_id: m.member_id,
                            group_instance_id: m.group_instance_id,
                            client_id: m.client_id,
                            client_host: m.client_host,
                            protocol_metadata: Some(m.metadata),
                            protocol_assignment: Some(m.assignment),
                        })
                        .collect(),
                    offsets,
                })
            }
            (_, Some(g)) => Some(GroupSnapshot {
                state: g.state,
                generation: g.generation,
                strategy: g.protocol,
                protocol_type: if g.members.is_empty() {
                    String::new()
                } else {
                    super::consumer_protocol::CONSUMER_PROTOCOL_TYPE.to_owned()
                },
                protocol: g.protocol.map(|p| p.name().to_owned()),
                leader: g.leader.clone(),
                members: g
                    .members
                    .iter()
                    .map(|(id, m)| MemberDescription {
                        member_id: id.clone(),
                        generation: m.generation,
                        assignment: m.assignment.clone(),
                        subscription: m.topics.iter().cloned().collect(),
                        group_instance_id: None,
                        client_id: String::new(),
                        client_host: String::new(),
                        protocol_metadata: None,
                        protocol_assignment: None,
                    })
                    .collect(),
                offsets,
            }),
            _ => None,
        };
        self.finish(groups);
        out
    }

    /// Starts the timer thread that expires silent members. It holds the broker weakly and
    /// sleeps until the next member deadline (at most [`MAX_TIMER_SLEEP_MS`]).
    pub(crate) fn start_timer(&self, broker: &Broker) {
        let (tx, rx) = mpsc::channel::<TimerMsg>();
        let weak = Arc::downgrade(&broker.inner);
        let spawned = std::thread::Builder::new()
            .name("group-coordinator".to_owned())
            .spawn(move || loop {
                let wait_ms = {
                    let Some(inner) = weak.upgrade() else { return };
                    let now = inner.config.time.now_ms();
                    let next = inner.groups.lock().next_deadline();
                    next.map_or(MAX_TIMER_SLEEP_MS, |t| {
                        t.saturating_sub(now).clamp(1, MAX_TIMER_SLEEP_MS)
                    })
                };
                match rx.recv_timeout(Duration::from_millis(wait_ms as u64)) {
                    Ok(TimerMsg::Wake) | Err(RecvTimeoutError::Timeout) => {}
                    Ok(TimerMsg::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                }
                let Some(inner) = weak.upgrade() else { return };
                let broker = Broker { inner };
                if broker.check_open().is_err() {
                    return;
                }
                broker.inner.groups.expire(&broker);
                broker.inner.transactions.abort_expired(&broker);
            });
        match spawned {
            Ok(handle) => {
                *self.timer.lock().unwrap_or_else(|p| p.into_inner()) = Some(Timer { tx, handle });
            }
            Err(e) => warn!(
                error = %e,
                "could not start the group coordinator timer; silent members expire only when \
                 another member talks to the coordinator"
            ),
        }
    }

    pub(super) fn wake_timer(&self) {
        if let Some(timer) = self
            .timer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            let _ = timer.tx.send(TimerMsg::Wake);
        }
    }

    /// Stops the timer thread and wakes every waiting member (the broker is closing).
    pub(crate) fn shutdown(&self) {
        let timer = self.timer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(timer) = timer {
            let _ = timer.tx.send(TimerMsg::Stop);
            // The timer thread may be the one dropping the last broker handle.
            if timer.handle.thread().id() != std::thread::current().id() {
                let _ = timer.handle.join();
            }
        }
        self.changed.notify_waiters();
        self.classic_changed.notify_waiters();
    }
}

/// A commit point of one `__consumer_offsets` partition, for callers that cannot `.await`
/// (a rebalance listener, the rebalance steps inside `poll`). Same effect as
/// [`Broker::commit_point`]: an fsync unless `log.flush.policy` is `close`.
pub(crate) fn offsets_commit_point(broker: &Broker, partition: u32) -> Result<()> {
    let (topic, p) = broker.partition(CONSUMER_OFFSETS_TOPIC, partition)?;
    let result = topic.partitions[p]
        .lock()
        .and_then(|mut log| log.commit_point());
    result
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::broker::NewTopic;
    use crate::group::AssignmentStrategy;

    fn request(session_timeout_ms: i64) -> JoinRequest {
        JoinRequest {
            topics: BTreeSet::from(["t".to_owned()]),
            strategy: AssignmentStrategy::Range,
            owned: Vec::new(),
            session_timeout_ms,
            max_poll_interval_ms: 60_000,
        }
    }

    /// A member that never calls again is removed by the timer thread alone, and waiting
    /// members are woken.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_timer_expires_silent_members_without_any_call() {
        let broker = Broker::in_memory().await.unwrap();
        broker.create_topic(NewTopic::new("t", 2)).await.unwrap();
        let coordinator = &broker.inner.groups;
        // Taken before the join: the session deadline counts from the join.
        let start = Instant::now();
        let member = coordinator.join(&broker, "g", None, request(150)).unwrap();
        let changed = coordinator.changed().notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        // Only look at the state: nothing here expires members.
        let members = || {
            coordinator
                .lock()
                .groups
                .get("g")
                .map_or(0, |g| g.members.len())
        };
        assert_eq!(members(), 1);
        tokio::time::timeout(Duration::from_secs(10), changed)
            .await
            .expect("waiting members were not woken");
        while members() != 0 {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "member never expired"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // The coordinator's clock has millisecond resolution: allow for one tick.
        assert!(start.elapsed() >= Duration::from_millis(149));
        assert!(matches!(
            coordinator
                .heartbeat(&broker, "g", &member, 1, true)
                .unwrap(),
            Heartbeat::UnknownMember
        ));
    }

    #[tokio::test]
    async fn commits_are_written_to_the_groups_partition_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let tp = TopicPartition::new("t", 1);
        let partition;
        {
            let broker = Broker::open(dir.path(), crate::BrokerConfig::default())
                .await
                .unwrap();
            broker.create_topic(NewTopic::new("t", 2)).await.unwrap();
            partition = broker
                .inner
                .groups
                .commit(
                    &broker,
                    "my-group",
                    "",
                    -1,
                    &[(tp.clone(), OffsetAndMetadata::with_metadata(42, "m"))],
                )
                .unwrap();
            assert_eq!(
                partition,
                Some(offsets_partition_for(
                    "my-group",
                    super::super::OFFSETS_TOPIC_PARTITIONS
                ))
            );
            let (_, end) = broker
                .offsets(CONSUMER_OFFSETS_TOPIC, partition.unwrap_or(0))
                .await
                .unwrap();
            assert_eq!(end, 1);
            broker.close().await.unwrap();
        }
        let broker = Broker::open(dir.path(), crate::BrokerConfig::default())
            .await
            .unwrap();
        assert_eq!(
            broker.inner.groups.committed("my-group", [&tp]).unwrap(),
            vec![(tp.clone(), OffsetAndMetadata::with_metadata(42, "m"))]
        );
        // Unknown partitions are refused before anything is written.
        let err = broker
            .inner
            .groups
            .commit(
                &broker,
                "my-group",
                "",
                -1,
                &[(TopicPartition::new("t", 9), OffsetAndMetadata::new(1))],
            )
            .unwrap_err();
        assert!(matches!(err, BrokerError::UnknownPartition { .. }), "{err}");
    }

    #[tokio::test]
    async fn an_undecodable_offsets_record_fails_the_open_and_unknown_kinds_are_skipped() {
        use crate::producer::{Producer, ProducerRecord};
        let dir = tempfile::tempdir().unwrap();
        let key = OffsetKey {
            group: "g".into(),
            topic: "t".into(),
            partition: 0,
        }
        .encode()
        .unwrap();
        {
            let broker = Broker::open(dir.path(), crate::BrokerConfig::default())
                .await
                .unwrap();
            let producer = Producer::new(&broker);
            // A record kind of a later version: skipped.
            producer
                .send(
                    ProducerRecord::new(CONSUMER_OFFSETS_TOPIC, vec![1u8, 2, 3])
                        .key(vec![9u8, 0, 0])
                        .partition(0),
                )
                .await
                .unwrap();
            broker.close().await.unwrap();
        }
        {
            let broker = Broker::open(dir.path(), crate::BrokerConfig::default())
                .await
                .unwrap();
            // A known key with a value nobody can read.
            Producer::new(&broker)
                .send(
                    ProducerRecord::new(CONSUMER_OFFSETS_TOPIC, vec![1u8, 0, 0])
                        .key(key)
                        .partition(0),
                )
                .await
                .unwrap();
            broker.close().await.unwrap();
        }
        let err = Broker::open(dir.path(), crate::BrokerConfig::default())
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                BrokerError::CorruptOffsetsRecord {
                    partition: 0,
                    offset: 1,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.is_fatal());
    }
}
