//! The broker's calls for Kafka's classic group protocol and offset APIs, as the wire
//! protocol server (`streams serve`) serves them to Kafka's own clients: the state machine
//! of `classic.rs` behind the coordinator's lock, parked JoinGroups and SyncGroups awaited
//! without blocking anything else, and offsets in the `__consumer_offsets` storage the
//! embedded consumer's groups use.

use std::time::Duration;

use super::classic::{ClassicGroups, ClassicSettings};
use super::classic_group::Ticket;
use super::classic_types::{
    FetchedOffset, GroupErrorCode, GroupJoin, GroupJoinResult, GroupLeaveResult, GroupOffsetCommit,
    GroupOffsetDeleteResult, GroupSync, GroupSyncResult, LeavingMember,
};
use super::consumer_protocol::CONSUMER_PROTOCOL_TYPE;
use super::coordinator::GroupCoordinator;
use super::state::{CommittedOffset, Groups};
use super::{OffsetAndMetadata, CONSUMER_OFFSETS_TOPIC, OFFSET_METADATA_MAX_BYTES};
use crate::broker::Broker;
use crate::error::Result;
use crate::TopicPartition;

/// The longest a parked request sleeps before it looks again, so that a clock that jumps
/// (a mock clock in tests) is noticed within this much real time.
const MAX_WAIT_MS: i64 = 1000;

/// Forgets a parked request's ticket if its future is dropped before the answer came (the
/// connection closed, the server stopped).
struct TicketGuard<'a> {
    coordinator: &'a GroupCoordinator,
    ticket: Ticket,
    answered: bool,
}

impl Drop for TicketGuard<'_> {
    fn drop(&mut self) {
        if !self.answered {
            let mut groups = self.coordinator.lock();
            groups.classic.abandon(self.ticket);
            self.coordinator.finish(groups);
        }
    }
}

/// Drops classic groups that are empty and have no committed offsets left.
fn sweep(groups: &mut Groups) {
    let Groups {
        groups: embedded,
        classic,
        ..
    } = groups;
    classic.sweep(|id| embedded.contains_key(id));
}

impl Broker {
    fn classic_settings(&self) -> ClassicSettings {
        let config = self.config();
        ClassicSettings {
            initial_rebalance_delay_ms: config.group_initial_rebalance_delay_ms,
            min_session_timeout_ms: config.group_min_session_timeout_ms,
            max_session_timeout_ms: config.group_max_session_timeout_ms,
        }
    }

    /// Waits for the answer to a parked request, firing the classic groups' timers on the
    /// way (the coordinator's timer thread does too). Ends with
    /// [`BrokerError::Closed`](crate::BrokerError::Closed) when the broker closes.
    async fn await_ticket<T>(
        &self,
        ticket: Ticket,
        take: fn(&mut ClassicGroups, Ticket) -> Option<T>,
    ) -> Result<T> {
        let coordinator = &self.inner.groups;
        let mut guard = TicketGuard {
            coordinator,
            ticket,
            answered: false,
        };
        loop {
            let notified = coordinator.classic_changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let now = GroupCoordinator::now(self);
            let (answer, next) = {
                let mut groups = coordinator.lock();
                groups.classic.tick_all(now);
                let answer = take(&mut groups.classic, ticket);
                let next = groups.classic.next_deadline();
                sweep(&mut groups);
                coordinator.finish(groups);
                (answer, next)
            };
            if let Some(answer) = answer {
                guard.answered = true;
                return Ok(answer);
            }
            self.check_open()?;
            let wait = next.map_or(MAX_WAIT_MS, |t| t.saturating_sub(now).clamp(1, MAX_WAIT_MS));
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep(Duration::from_millis(wait as u64)) => {}
            }
        }
    }

    /// Kafka's JoinGroup: joins (or rejoins) a group of Kafka's classic protocol, waiting
    /// until the join phase completes: until every member has rejoined, or the rebalance
    /// timeout, or for a new group `group.initial.rebalance.delay.ms`. The answer tells the
    /// member its id, the generation, the selected protocol and the leader; the leader also
    /// gets every member's metadata.
    ///
    /// A refusal is an answer with an error ([`GroupErrorCode`]): `MEMBER_ID_REQUIRED` for a
    /// new member that must join again with the id it was given, `INCONSISTENT_GROUP_PROTOCOL`
    /// when the group is the embedded consumer's or uses another protocol, and so on. Only
    /// a broker failure is an `Err` ([`BrokerError::Closed`](crate::BrokerError::Closed) when
    /// the broker closes while the join waits).
    pub async fn join_group(&self, join: GroupJoin) -> Result<GroupJoinResult> {
        self.check_open()?;
        self.inner.groups.check_group(&join.group_id)?;
        let now = GroupCoordinator::now(self);
        let settings = self.classic_settings();
        let ticket = {
            let mut groups = self.inner.groups.lock();
            groups.expire(now, self);
            let embedded_members = groups
                .groups
                .get(&join.group_id)
                .is_some_and(|g| !g.members.is_empty());
            let ticket = groups.classic.join(&join, now, settings, embedded_members);
            sweep(&mut groups);
            self.inner.groups.finish(groups);
            ticket
        };
        self.inner.groups.wake_timer();
        self.await_ticket(ticket, ClassicGroups::take_join).await
    }

    /// Kafka's SyncGroup: the leader hands out the assignment it computed, every member gets
    /// its own (waiting for the leader's if it has not come yet).
    pub async fn sync_group(&self, sync: GroupSync) -> Result<GroupSyncResult> {
        self.check_open()?;
        self.inner.groups.check_group(&sync.group_id)?;
        let now = GroupCoordinator::now(self);
        let ticket = {
            let mut groups = self.inner.groups.lock();
            let ticket = groups.classic.sync(&sync, now);
            self.inner.groups.finish(groups);
            ticket
        };
        self.inner.groups.wake_timer();
        self.await_ticket(ticket, ClassicGroups::take_sync).await
    }

    /// Kafka's Heartbeat of a classic-protocol member: `None` when all is well,
    /// `REBALANCE_IN_PROGRESS` when the member has to rejoin, `ILLEGAL_GENERATION`,
    /// `UNKNOWN_MEMBER_ID` or `FENCED_INSTANCE_ID` when it is no longer part of the group.
    pub async fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
    ) -> Result<Option<GroupErrorCode>> {
        self.check_open()?;
        self.inner.groups.check_group(group_id)?;
        let now = GroupCoordinator::now(self);
        let mut groups = self.inner.groups.lock();
        let result =
            groups
                .classic
                .heartbeat(group_id, member_id, group_instance_id, generation_id, now);
        self.inner.groups.finish(groups);
        Ok(result)
    }

    /// Kafka's LeaveGroup: members leave a classic-protocol group at once (the others
    /// rebalance). A static member can be removed by its `group.instance.id` alone.
    pub async fn leave_group(
        &self,
        group_id: &str,
        members: &[LeavingMember],
    ) -> Result<GroupLeaveResult> {
        self.check_open()?;
        self.inner.groups.check_group(group_id)?;
        let now = GroupCoordinator::now(self);
        let result = {
            let mut groups = self.inner.groups.lock();
            let result = groups.classic.leave(group_id, members, now);
            sweep(&mut groups);
            self.inner.groups.finish(groups);
            result
        };
        self.inner.groups.wake_timer();
        Ok(result)
    }

    /// Kafka's OffsetCommit: checks the member and generation against the group (a commit
    /// with generation -1 and no member id is accepted while the group has no members, as
    /// a consumer outside group management makes them), writes the offsets to
    /// `__consumer_offsets` (a `None` offset as a tombstone that removes the partition's
    /// committed offset) and makes them a commit point. Returns each partition's outcome:
    /// `UNKNOWN_TOPIC_OR_PARTITION`, `OFFSET_METADATA_TOO_LARGE`, or the group's refusal
    /// (`ILLEGAL_GENERATION`, `UNKNOWN_MEMBER_ID`, `REBALANCE_IN_PROGRESS`, ...) for all.
    pub async fn commit_offsets(
        &self,
        commit: GroupOffsetCommit,
    ) -> Result<Vec<(TopicPartition, Option<GroupErrorCode>)>> {
        self.check_open()?;
        self.inner.groups.check_group(&commit.group_id)?;
        let now = GroupCoordinator::now(self);
        // Partitions that do not exist are refused before the group is looked at, as
        // Kafka's request handler does.
        let mut results: Vec<(TopicPartition, Option<GroupErrorCode>)> = commit
            .offsets
            .iter()
            .map(|(tp, _)| {
                let known = self.partition(&tp.topic, tp.partition).is_ok();
                (
                    tp.clone(),
                    (!known).then_some(GroupErrorCode::UnknownTopicOrPartition),
                )
            })
            .collect();
        let written = {
            let mut groups = self.inner.groups.lock();
            groups.expire(now, self);
            let check = check_commit(&mut groups, &commit, now);
            let mut entries = Vec::new();
            for ((tp, om), (_, result)) in commit.offsets.iter().zip(results.iter_mut()) {
                if result.is_some() {
                    continue;
                }
                if let Err(error) = check {
                    *result = Some(error);
                } else if om
                    .as_ref()
                    .is_some_and(|om| om.metadata.len() > OFFSET_METADATA_MAX_BYTES)
                {
                    *result = Some(GroupErrorCode::OffsetMetadataTooLarge);
                } else {
                    // A negative offset (`None`) is written as a tombstone.
                    entries.push((
                        tp.clone(),
                        om.as_ref().map(|om| CommittedOffset {
                            offset: om.offset,
                            metadata: om.metadata.clone(),
                            commit_timestamp: now,
                        }),
                    ));
                }
            }
            let written = if entries.is_empty() {
                Ok(None)
            } else {
                GroupCoordinator::write(self, &mut groups, &commit.group_id, entries, now).map(Some)
            };
            sweep(&mut groups);
            self.inner.groups.finish(groups);
            written
        };
        if let Some(partition) = written? {
            self.commit_point(&[(CONSUMER_OFFSETS_TOPIC.to_owned(), partition)])
                .await?;
        }
        Ok(results)
    }

    /// Kafka's OffsetFetch: the committed offsets of `group_id` for `partitions`, or with
    /// `None` every partition it has one for. A group that does not exist has none. With
    /// `require_stable`, a partition with a pending transactional commit is
    /// `UNSTABLE_OFFSET_COMMIT` (the client retries until the transaction ends).
    pub async fn fetch_offsets(
        &self,
        group_id: &str,
        partitions: Option<&[TopicPartition]>,
        require_stable: bool,
    ) -> Result<Vec<FetchedOffset>> {
        self.check_open()?;
        self.inner.groups.check_group(group_id)?;
        let groups = self.inner.groups.lock();
        let pending = if require_stable {
            self.inner.groups.pending_txn_partitions(group_id)
        } else {
            Default::default()
        };
        let offsets = groups.groups.get(group_id).map(|g| &g.offsets);
        let fetched = |tp: &TopicPartition| {
            if pending.contains(tp) {
                return FetchedOffset {
                    partition: tp.clone(),
                    offset: None,
                    error: Some(GroupErrorCode::UnstableOffsetCommit),
                };
            }
            FetchedOffset {
                partition: tp.clone(),
                offset: offsets.and_then(|o| o.get(tp)).map(|c| OffsetAndMetadata {
                    offset: c.offset,
                    metadata: c.metadata.clone(),
                }),
                error: None,
            }
        };
        let result = match partitions {
            Some(tps) => tps.iter().map(fetched).collect(),
            None => offsets
                .map(|o| o.keys().map(fetched).collect())
                .unwrap_or_default(),
        };
        self.inner.groups.finish(groups);
        Ok(result)
    }

    /// Kafka's OffsetDelete: deletes committed offsets of `group_id` (tombstones in
    /// `__consumer_offsets`). An unknown group is `GROUP_ID_NOT_FOUND`; a group with members
    /// keeps the offsets of the topics it consumes (`GROUP_SUBSCRIBED_TO_TOPIC` for those
    /// partitions), and a group with members of a protocol type other than `consumer` is
    /// `NON_EMPTY_GROUP`.
    pub async fn delete_offsets(
        &self,
        group_id: &str,
        partitions: &[TopicPartition],
    ) -> Result<GroupOffsetDeleteResult> {
        self.check_open()?;
        if group_id.is_empty() {
            return Ok(GroupOffsetDeleteResult {
                error: Some(GroupErrorCode::InvalidGroupId),
                partitions: Vec::new(),
            });
        }
        self.inner.groups.check_group(group_id)?;
        let now = GroupCoordinator::now(self);
        let (result, written) = {
            let mut groups = self.inner.groups.lock();
            groups.expire(now, self);
            let (result, entries) = plan_offset_delete(&groups, group_id, partitions);
            let written = if entries.is_empty() {
                Ok(None)
            } else {
                GroupCoordinator::write(self, &mut groups, group_id, entries, now).map(Some)
            };
            sweep(&mut groups);
            self.inner.groups.finish(groups);
            (result, written)
        };
        if let Some(partition) = written? {
            self.commit_point(&[(CONSUMER_OFFSETS_TOPIC.to_owned(), partition)])
                .await?;
        }
        Ok(result)
    }
}

/// Kafka's checks of an OffsetCommit against the group, whichever kind it is.
fn check_commit(
    groups: &mut Groups,
    commit: &GroupOffsetCommit,
    now: i64,
) -> Result<(), GroupErrorCode> {
    if let Some(result) = groups.classic.validate_offset_commit(
        &commit.group_id,
        &commit.member_id,
        commit.group_instance_id.as_deref(),
        commit.generation_id,
        now,
    ) {
        return result;
    }
    match groups.groups.get(&commit.group_id) {
        // The embedded consumer's group: none of its members is a Kafka client.
        Some(g) if !g.members.is_empty() => Err(GroupErrorCode::UnknownMemberId),
        // A group that only has offsets takes commits from outside group management.
        Some(_) if commit.generation_id < 0 => Ok(()),
        Some(_) => Err(GroupErrorCode::UnknownMemberId),
        None if commit.generation_id < 0 => Ok(()),
        None if commit.group_id_not_found_error => Err(GroupErrorCode::GroupIdNotFound),
        None => Err(GroupErrorCode::IllegalGeneration),
    }
}

/// Kafka's check of a TxnOffsetCommit: a classic group's member and generation (a group
/// waiting for its leader's assignment takes it); a group of the embedded consumer takes
/// none from a Kafka client; a group without members takes commits from outside group
/// management.
pub(crate) fn check_txn_commit(
    groups: &mut Groups,
    group_id: &str,
    member_id: &str,
    instance_id: Option<&str>,
    generation: i32,
    now: i64,
) -> Result<(), GroupErrorCode> {
    if let Some(result) =
        groups
            .classic
            .validate_txn_offset_commit(group_id, member_id, instance_id, generation, now)
    {
        return result;
    }
    match groups.groups.get(group_id) {
        Some(g) if !g.members.is_empty() => Err(GroupErrorCode::UnknownMemberId),
        _ if generation < 0 => Ok(()),
        _ => Err(GroupErrorCode::IllegalGeneration),
    }
}

/// The outcome of an OffsetDelete and the tombstones to write.
fn plan_offset_delete(
    groups: &Groups,
    group_id: &str,
    partitions: &[TopicPartition],
) -> (
    GroupOffsetDeleteResult,
    Vec<(TopicPartition, Option<CommittedOffset>)>,
) {
    let refuse = |error| {
        (
            GroupOffsetDeleteResult {
                error: Some(error),
                partitions: Vec::new(),
            },
            Vec::new(),
        )
    };
    let classic = groups.classic.groups.get(group_id);
    let embedded = groups.groups.get(group_id);
    if classic.is_none() && embedded.is_none() {
        return refuse(GroupErrorCode::GroupIdNotFound);
    }
    let classic = classic.filter(|c| c.is_active());
    if classic.is_some_and(|c| c.protocol_type.as_deref() != Some(CONSUMER_PROTOCOL_TYPE)) {
        return refuse(GroupErrorCode::NonEmptyGroup);
    }
    let subscribed = |topic: &str| match (classic, embedded) {
        (Some(c), _) => c.is_subscribed_to(topic),
        (None, Some(g)) => g.members.values().any(|m| m.topics.contains(topic)),
        (None, None) => false,
    };
    let mut results = Vec::with_capacity(partitions.len());
    let mut entries = Vec::new();
    for tp in partitions {
        if subscribed(&tp.topic) {
            results.push((tp.clone(), Some(GroupErrorCode::GroupSubscribedToTopic)));
            continue;
        }
        if embedded.is_some_and(|g| g.offsets.contains_key(tp))
            && !entries.iter().any(|(t, _)| t == tp)
        {
            entries.push((tp.clone(), None));
        }
        results.push((tp.clone(), None));
    }
    (
        GroupOffsetDeleteResult {
            error: None,
            partitions: results,
        },
        entries,
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;

    use super::*;
    use crate::{BrokerConfig, BrokerError, MockTime, NewTopic};

    fn join(group: &str, member_id: &str) -> GroupJoin {
        GroupJoin {
            group_id: group.to_owned(),
            member_id: member_id.to_owned(),
            group_instance_id: None,
            protocol_type: "consumer".to_owned(),
            protocols: vec![("range".to_owned(), Bytes::from_static(b"m"))],
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 10_000,
            client_id: "c".to_owned(),
            client_host: "/127.0.0.1".to_owned(),
            require_known_member_id: false,
            supports_skip_assignment: true,
        }
    }

    fn config(time: Arc<MockTime>) -> BrokerConfig {
        BrokerConfig {
            group_initial_rebalance_delay_ms: 50,
            time,
            ..BrokerConfig::default()
        }
    }

    /// A join parked during the initial delay completes when the (mock) clock passes it,
    /// without any other call, and a commit with a stale generation is refused.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_parked_join_completes_on_the_clock_and_commits_check_the_generation() {
        let time = MockTime::new(1_000_000);
        let broker = Broker::in_memory_with(config(time.clone())).await.unwrap();
        broker.create_topic(NewTopic::new("t", 2)).await.unwrap();
        let joining = tokio::spawn({
            let broker = broker.clone();
            async move { broker.join_group(join("g", "")).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!joining.is_finished(), "the initial delay has not passed");
        time.advance(50);
        let joined = tokio::time::timeout(Duration::from_secs(10), joining)
            .await
            .expect("the join completed")
            .unwrap()
            .unwrap();
        assert_eq!((joined.error, joined.generation_id), (None, 1));
        let member = joined.member_id.clone();
        let synced = broker
            .sync_group(GroupSync {
                group_id: "g".into(),
                member_id: member.clone(),
                group_instance_id: None,
                generation_id: 1,
                protocol_type: None,
                protocol_name: None,
                assignments: vec![(member.clone(), Bytes::from_static(b"a"))],
            })
            .await
            .unwrap();
        assert_eq!(&synced.assignment[..], b"a");
        let commit = |generation| GroupOffsetCommit {
            group_id: "g".into(),
            member_id: member.clone(),
            group_instance_id: None,
            generation_id: generation,
            offsets: vec![
                (TopicPartition::new("t", 0), Some(OffsetAndMetadata::new(5))),
                (
                    TopicPartition::new("nope", 0),
                    Some(OffsetAndMetadata::new(5)),
                ),
            ],
            group_id_not_found_error: false,
        };
        let stale = broker.commit_offsets(commit(0)).await.unwrap();
        assert_eq!(
            stale,
            vec![
                (
                    TopicPartition::new("t", 0),
                    Some(GroupErrorCode::IllegalGeneration)
                ),
                (
                    TopicPartition::new("nope", 0),
                    Some(GroupErrorCode::UnknownTopicOrPartition)
                ),
            ]
        );
        let ok = broker.commit_offsets(commit(1)).await.unwrap();
        assert_eq!(ok[0].1, None);
        let fetched = broker.fetch_offsets("g", None, true).await.unwrap();
        assert_eq!(fetched.len(), 1);
        assert_eq!(fetched[0].offset, Some(OffsetAndMetadata::new(5)));
        // The same group id is not open to the embedded consumer meanwhile.
        let description = broker.describe_group("g").await.unwrap();
        assert_eq!(description.state, crate::GroupState::Stable);
        assert_eq!(description.protocol_type, "consumer");
        assert_eq!(description.members.len(), 1);
        assert_eq!(description.partitions[0].committed_offset, Some(5));
        let err = broker.delete_group("g").await.unwrap_err();
        assert!(matches!(err, BrokerError::GroupNotEmpty { .. }), "{err}");
        broker.close().await.unwrap();
    }

    /// A negative offset (`None`) is accepted and removes the committed offset, also after a
    /// restart; the other partitions of the commit are stored.
    #[tokio::test]
    async fn a_negative_offset_removes_the_committed_offset() {
        let dir = tempfile::tempdir().unwrap();
        let broker = Broker::open(dir.path(), BrokerConfig::default())
            .await
            .unwrap();
        broker.create_topic(NewTopic::new("t", 2)).await.unwrap();
        let (p0, p1) = (TopicPartition::new("t", 0), TopicPartition::new("t", 1));
        let commit = |offsets| GroupOffsetCommit {
            group_id: "g".into(),
            member_id: String::new(),
            group_instance_id: None,
            generation_id: -1,
            offsets,
            group_id_not_found_error: false,
        };
        let both = vec![
            (p0.clone(), Some(OffsetAndMetadata::new(4))),
            (p1.clone(), Some(OffsetAndMetadata::new(6))),
        ];
        broker.commit_offsets(commit(both)).await.unwrap();
        let cleared = vec![
            (p0.clone(), None),
            (p1.clone(), Some(OffsetAndMetadata::new(7))),
        ];
        assert_eq!(
            broker.commit_offsets(commit(cleared)).await.unwrap(),
            vec![(p0.clone(), None), (p1.clone(), None)]
        );
        let offsets = |fetched: Vec<FetchedOffset>| -> Vec<Option<u64>> {
            fetched
                .into_iter()
                .map(|f| f.offset.map(|o| o.offset))
                .collect()
        };
        let asked = [p0.clone(), p1.clone()];
        let fetched = broker
            .fetch_offsets("g", Some(&asked), false)
            .await
            .unwrap();
        assert_eq!(offsets(fetched), [None, Some(7)]);
        broker.close().await.unwrap();
        drop(broker);
        let broker = Broker::open(dir.path(), BrokerConfig::default())
            .await
            .unwrap();
        let fetched = broker
            .fetch_offsets("g", Some(&asked), false)
            .await
            .unwrap();
        assert_eq!(offsets(fetched), [None, Some(7)]);
        broker.close().await.unwrap();
    }

    /// A transactional offset commit that has no marker yet makes a stable fetch
    /// `UNSTABLE_OFFSET_COMMIT`; a plain fetch sees the offsets committed before it.
    #[tokio::test]
    async fn pending_transactional_offsets_are_unstable() {
        use std::collections::HashMap;

        use crate::{ConsumerGroupMetadata, Producer, ProducerConfig};
        let broker = Broker::in_memory().await.unwrap();
        broker.create_topic(NewTopic::new("t", 1)).await.unwrap();
        let tp = TopicPartition::new("t", 0);
        let simple = GroupOffsetCommit {
            group_id: "g".into(),
            member_id: String::new(),
            group_instance_id: None,
            generation_id: -1,
            offsets: vec![(tp.clone(), Some(OffsetAndMetadata::new(3)))],
            group_id_not_found_error: true,
        };
        assert_eq!(
            broker.commit_offsets(simple).await.unwrap(),
            vec![(tp.clone(), None)]
        );
        let producer = Producer::with_config(
            &broker,
            ProducerConfig {
                transactional_id: Some("tx".into()),
                ..ProducerConfig::default()
            },
        );
        producer.init_transactions().await.unwrap();
        producer.begin_transaction().unwrap();
        producer
            .send_offsets_to_transaction(
                &HashMap::from([(tp.clone(), OffsetAndMetadata::new(9))]),
                &ConsumerGroupMetadata {
                    group_id: "g".into(),
                    generation_id: -1,
                    member_id: String::new(),
                },
            )
            .await
            .unwrap();
        let stable = broker
            .fetch_offsets("g", Some(std::slice::from_ref(&tp)), true)
            .await
            .unwrap();
        assert_eq!(stable[0].error, Some(GroupErrorCode::UnstableOffsetCommit));
        assert_eq!(stable[0].offset, None);
        let plain = broker
            .fetch_offsets("g", Some(std::slice::from_ref(&tp)), false)
            .await
            .unwrap();
        assert_eq!(
            (plain[0].error, plain[0].offset.as_ref().map(|o| o.offset)),
            (None, Some(3))
        );
        producer.commit_transaction().await.unwrap();
        let stable = broker.fetch_offsets("g", None, true).await.unwrap();
        assert_eq!(
            (stable[0].error, stable[0].offset.as_ref().map(|o| o.offset)),
            (None, Some(9))
        );
        broker.close().await.unwrap();
    }

    /// Closing the broker ends a parked join with `Closed`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn closing_the_broker_ends_parked_joins() {
        let time = MockTime::new(0);
        let broker = Broker::in_memory_with(config(time)).await.unwrap();
        let joining = tokio::spawn({
            let broker = broker.clone();
            async move { broker.join_group(join("g", "")).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        broker.close().await.unwrap();
        let result = tokio::time::timeout(Duration::from_secs(10), joining)
            .await
            .expect("the join ended")
            .unwrap();
        assert!(matches!(result, Err(BrokerError::Closed)), "{result:?}");
    }

    /// The embedded consumer and Kafka clients cannot share a group id at the same time.
    #[tokio::test]
    async fn one_kind_of_member_at_a_time() {
        use crate::{Consumer, ConsumerConfig};
        let broker = Broker::in_memory_with(BrokerConfig {
            group_initial_rebalance_delay_ms: 0,
            ..BrokerConfig::default()
        })
        .await
        .unwrap();
        broker.create_topic(NewTopic::new("t", 1)).await.unwrap();
        let mut consumer = Consumer::new(
            &broker,
            ConsumerConfig {
                group_id: Some("shared".into()),
                ..ConsumerConfig::default()
            },
        );
        consumer
            .subscribe(["t"], crate::NoOpConsumerRebalanceListener)
            .await
            .unwrap();
        consumer.poll(Duration::from_millis(10)).await.unwrap();
        let refused = broker.join_group(join("shared", "")).await.unwrap();
        assert_eq!(
            refused.error,
            Some(GroupErrorCode::InconsistentGroupProtocol)
        );
        consumer.close().await.unwrap();
        // Now the Kafka client gets it, and the embedded consumer is refused.
        let joined = broker.join_group(join("shared", "")).await.unwrap();
        assert_eq!(joined.error, None);
        let mut consumer = Consumer::new(
            &broker,
            ConsumerConfig {
                group_id: Some("shared".into()),
                ..ConsumerConfig::default()
            },
        );
        consumer
            .subscribe(["t"], crate::NoOpConsumerRebalanceListener)
            .await
            .unwrap();
        let err = consumer.poll(Duration::from_millis(10)).await.unwrap_err();
        assert!(
            matches!(err, BrokerError::InconsistentGroupProtocol { .. }),
            "{err}"
        );
        broker.close().await.unwrap();
    }
}
