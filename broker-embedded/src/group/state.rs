//! The group coordinator's state machine, free of I/O and locks: membership, generations,
//! rebalances, liveness and the committed-offsets cache. Time is passed in, so every
//! transition is testable without waiting.
//!
//! The protocol, in Kafka's terms:
//!
//! - A member joins with its subscription, its strategy, the partitions it owns (cooperative
//!   protocol only) and its timeouts. A join moves an `Empty` or `Stable` group to
//!   `PreparingRebalance`; every member must then join again (it learns of the rebalance
//!   from its next heartbeat). When every member has joined, the coordinator computes the
//!   assignment itself (the join and sync phases of Kafka's protocol are one step here, so
//!   there is no `CompletingRebalance` state), bumps the generation and the group is
//!   `Stable`. Members that have not rejoined by the rebalance deadline (the largest
//!   `max.poll.interval.ms` of the members) are removed.
//! - A member is removed when nothing has been heard from it for `session.timeout.ms`, or
//!   when it has not polled for `max.poll.interval.ms`; a leave removes it at once. Either
//!   starts a rebalance of the others.
//! - A commit is accepted from a current member with the current generation (also while a
//!   rebalance is being prepared, as Kafka does), or from a consumer outside group
//!   management (generation -1, no member id) while the group has no members. Anything else
//!   is `CommitFailed`.

use std::collections::{BTreeMap, BTreeSet};

use tracing::{debug, info};

use super::assignor::{self, AssignmentStrategy, MemberInput};
use super::classic::ClassicGroups;
use super::{GroupState, OffsetAndMetadata};
use crate::error::{BrokerError, Result};
use crate::TopicPartition;

/// Partition counts of topics, as the coordinator needs them for an assignment.
pub(crate) trait TopicMetadata {
    /// The partition count of `topic`, `None` if it does not exist.
    fn partition_count(&self, topic: &str) -> Option<u32>;
}

impl TopicMetadata for BTreeMap<String, u32> {
    fn partition_count(&self, topic: &str) -> Option<u32> {
        self.get(topic).copied()
    }
}

/// What a member sends when it joins.
#[derive(Debug, Clone)]
pub(crate) struct JoinRequest {
    pub(crate) topics: BTreeSet<String>,
    pub(crate) strategy: AssignmentStrategy,
    /// Partitions the member owns (cooperative protocol); empty under the eager protocol.
    pub(crate) owned: Vec<TopicPartition>,
    pub(crate) session_timeout_ms: i64,
    pub(crate) max_poll_interval_ms: i64,
}

/// What a heartbeat tells a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Heartbeat {
    /// Nothing to do: the member has the current generation's assignment.
    Stable,
    /// The member has joined the rebalance in progress and waits for the others.
    Pending,
    /// A rebalance is in progress and the member has to join it.
    RejoinNeeded,
    /// A rebalance completed: the member's partitions for `generation`.
    Assignment {
        generation: i32,
        partitions: Vec<TopicPartition>,
    },
    /// The member is not in the group (it was removed, or never joined).
    UnknownMember,
}

/// A committed offset as the cache holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CommittedOffset {
    pub(crate) offset: u64,
    pub(crate) metadata: String,
    pub(crate) commit_timestamp: i64,
}

#[derive(Debug)]
pub(crate) struct Member {
    pub(crate) topics: BTreeSet<String>,
    pub(crate) owned: Vec<TopicPartition>,
    /// Its partitions in generation `generation`.
    pub(crate) assignment: Vec<TopicPartition>,
    /// The generation `assignment` belongs to; -1 before its first.
    pub(crate) generation: i32,
    /// Joined the rebalance in progress.
    joined: bool,
    session_timeout_ms: i64,
    max_poll_interval_ms: i64,
    pub(crate) last_heartbeat_ms: i64,
    pub(crate) last_poll_ms: i64,
}

impl Member {
    fn deadline(&self) -> i64 {
        (self
            .last_heartbeat_ms
            .saturating_add(self.session_timeout_ms))
        .min(self.last_poll_ms.saturating_add(self.max_poll_interval_ms))
    }
}

#[derive(Debug)]
pub(crate) struct Group {
    pub(crate) state: GroupState,
    pub(crate) generation: i32,
    pub(crate) protocol: Option<AssignmentStrategy>,
    pub(crate) leader: Option<String>,
    pub(crate) members: BTreeMap<String, Member>,
    rebalance_deadline_ms: i64,
    /// Partition counts the current assignment was computed from.
    partition_counts: BTreeMap<String, u32>,
    pub(crate) offsets: BTreeMap<TopicPartition, CommittedOffset>,
}

impl Group {
    fn new() -> Self {
        Group {
            state: GroupState::Empty,
            generation: 0,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            rebalance_deadline_ms: 0,
            partition_counts: BTreeMap::new(),
            offsets: BTreeMap::new(),
        }
    }

    fn subscribed_topics(&self) -> BTreeSet<&String> {
        self.members
            .values()
            .flat_map(|m| m.topics.iter())
            .collect()
    }
}

/// All groups of a broker.
#[derive(Debug, Default)]
pub(crate) struct Groups {
    pub(crate) groups: BTreeMap<String, Group>,
    next_member: u64,
    /// Set by every transition a waiting member could care about; the owner clears it and
    /// wakes the waiters.
    pub(crate) changed: bool,
    /// The groups of Kafka's classic protocol (Kafka's clients over the wire), which share
    /// the group ids and committed offsets of `groups`.
    pub(crate) classic: ClassicGroups,
}

fn commit_failed(group: &str, member_id: &str, generation: i32, reason: String) -> BrokerError {
    BrokerError::CommitFailed {
        group: group.to_owned(),
        member_id: member_id.to_owned(),
        generation,
        reason,
    }
}

impl Groups {
    fn new_member_id(&mut self, group: &str) -> String {
        self.next_member += 1;
        // Unique within the broker's lifetime and unlikely to repeat across restarts.
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32))
            .unwrap_or(0);
        format!("consumer-{group}-{}-{nonce:08x}", self.next_member)
    }

    /// Joins (or rejoins) `group`. Returns the member id, new if `member_id` is `None` or not
    /// a member any more.
    pub(crate) fn join(
        &mut self,
        group_id: &str,
        member_id: Option<&str>,
        request: JoinRequest,
        now: i64,
        meta: &dyn TopicMetadata,
    ) -> Result<String> {
        self.expire_group(group_id, now, meta);
        if let Some(classic) = self.classic.groups.get(group_id).filter(|g| g.is_active()) {
            return Err(BrokerError::InconsistentGroupProtocol {
                group: group_id.to_owned(),
                strategy: request.strategy.name().to_owned(),
                group_strategy: format!(
                    "{} (the group is in use by Kafka clients with protocol type {:?})",
                    classic
                        .protocol_name
                        .as_deref()
                        .unwrap_or("a classic-protocol assignor"),
                    classic.protocol_type.as_deref().unwrap_or("")
                ),
            });
        }
        let known = member_id
            .filter(|id| {
                self.groups
                    .get(group_id)
                    .is_some_and(|g| g.members.contains_key(*id))
            })
            .map(str::to_owned);
        let id = match known {
            Some(id) => id,
            None => self.new_member_id(group_id),
        };
        let group = self
            .groups
            .entry(group_id.to_owned())
            .or_insert_with(Group::new);
        let others = group.members.keys().any(|m| *m != id);
        match group.protocol {
            Some(protocol) if others && protocol != request.strategy => {
                return Err(BrokerError::InconsistentGroupProtocol {
                    group: group_id.to_owned(),
                    strategy: request.strategy.name().to_owned(),
                    group_strategy: protocol.name().to_owned(),
                });
            }
            _ => group.protocol = Some(request.strategy),
        }
        let is_new = !group.members.contains_key(&id);
        let member = group.members.entry(id.clone()).or_insert_with(|| Member {
            topics: BTreeSet::new(),
            owned: Vec::new(),
            assignment: Vec::new(),
            generation: -1,
            joined: false,
            session_timeout_ms: request.session_timeout_ms,
            max_poll_interval_ms: request.max_poll_interval_ms,
            last_heartbeat_ms: now,
            last_poll_ms: now,
        });
        member.topics = request.topics;
        member.owned = request.owned;
        member.session_timeout_ms = request.session_timeout_ms;
        member.max_poll_interval_ms = request.max_poll_interval_ms;
        member.last_heartbeat_ms = now;
        member.last_poll_ms = now;
        if is_new {
            info!(group = group_id, member = %id, "member joined the group");
        } else {
            debug!(group = group_id, member = %id, "member rejoined the group");
        }
        let reason = if is_new {
            "a member joined"
        } else {
            "a member rejoined"
        };
        Self::prepare_rebalance(group_id, group, now, reason);
        if let Some(member) = group.members.get_mut(&id) {
            member.joined = true;
        }
        self.changed = true;
        self.try_complete(group_id, meta);
        Ok(id)
    }

    /// A heartbeat; `from_poll` also counts as a poll for `max.poll.interval.ms`.
    pub(crate) fn heartbeat(
        &mut self,
        group_id: &str,
        member_id: &str,
        known_generation: i32,
        from_poll: bool,
        now: i64,
        meta: &dyn TopicMetadata,
    ) -> Heartbeat {
        self.expire_group(group_id, now, meta);
        let Some(group) = self.groups.get_mut(group_id) else {
            return Heartbeat::UnknownMember;
        };
        let Some(member) = group.members.get_mut(member_id) else {
            return Heartbeat::UnknownMember;
        };
        member.last_heartbeat_ms = now;
        if from_poll {
            member.last_poll_ms = now;
        }
        match group.state {
            GroupState::PreparingRebalance => {
                if member.joined {
                    Heartbeat::Pending
                } else {
                    Heartbeat::RejoinNeeded
                }
            }
            GroupState::Stable => {
                if member.generation != known_generation {
                    return Heartbeat::Assignment {
                        generation: member.generation,
                        partitions: member.assignment.clone(),
                    };
                }
                // A subscribed topic was created or got more partitions: rebalance.
                let changed = group
                    .subscribed_topics()
                    .into_iter()
                    .any(|t| meta.partition_count(t) != group.partition_counts.get(t).copied());
                if changed {
                    Self::prepare_rebalance(group_id, group, now, "topic metadata changed");
                    self.changed = true;
                    Heartbeat::RejoinNeeded
                } else {
                    Heartbeat::Stable
                }
            }
            // CompletingRebalance is a state of classic-protocol groups only.
            GroupState::Empty | GroupState::CompletingRebalance => Heartbeat::UnknownMember,
        }
    }

    /// A member leaves; the others rebalance at once. Returns whether it was a member.
    pub(crate) fn leave(
        &mut self,
        group_id: &str,
        member_id: &str,
        now: i64,
        meta: &dyn TopicMetadata,
    ) -> bool {
        let Some(group) = self.groups.get_mut(group_id) else {
            return false;
        };
        if group.members.remove(member_id).is_none() {
            return false;
        }
        info!(
            group = group_id,
            member = member_id,
            "member left the group"
        );
        Self::prepare_rebalance(group_id, group, now, "a member left");
        self.changed = true;
        self.try_complete(group_id, meta);
        true
    }

    /// Removes members whose session or poll interval expired, and members that missed the
    /// rebalance deadline, in every group.
    pub(crate) fn expire(&mut self, now: i64, meta: &dyn TopicMetadata) {
        let ids: Vec<String> = self.groups.keys().cloned().collect();
        for id in ids {
            self.expire_group(&id, now, meta);
        }
        self.classic.tick_all(now);
    }

    fn expire_group(&mut self, group_id: &str, now: i64, meta: &dyn TopicMetadata) {
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        let mut removed = false;
        let preparing = group.state == GroupState::PreparingRebalance;
        let rebalance_over = preparing && now > group.rebalance_deadline_ms;
        group.members.retain(|id, m| {
            let session = now - m.last_heartbeat_ms > m.session_timeout_ms;
            let poll = now - m.last_poll_ms > m.max_poll_interval_ms;
            let missed = rebalance_over && !m.joined;
            if session || poll || missed {
                let why = if session {
                    "session.timeout.ms expired"
                } else if poll {
                    "max.poll.interval.ms expired"
                } else {
                    "it did not rejoin before the rebalance timeout"
                };
                info!(group = group_id, member = %id, reason = why, "member removed from the group");
                removed = true;
                false
            } else {
                true
            }
        });
        if removed {
            Self::prepare_rebalance(group_id, group, now, "members expired");
            self.changed = true;
            self.try_complete(group_id, meta);
        }
    }

    fn prepare_rebalance(group_id: &str, group: &mut Group, now: i64, reason: &str) {
        if group.state == GroupState::PreparingRebalance {
            return;
        }
        let timeout = group
            .members
            .values()
            .map(|m| m.max_poll_interval_ms)
            .max()
            .unwrap_or(0);
        group.state = GroupState::PreparingRebalance;
        group.rebalance_deadline_ms = now.saturating_add(timeout);
        for m in group.members.values_mut() {
            m.joined = false;
        }
        info!(
            group = group_id,
            generation = group.generation,
            reason,
            "preparing to rebalance the group"
        );
    }

    /// Completes the rebalance in progress if every member has joined.
    fn try_complete(&mut self, group_id: &str, meta: &dyn TopicMetadata) {
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        if group.state != GroupState::PreparingRebalance
            || group.members.values().any(|m| !m.joined)
        {
            return;
        }
        group.generation += 1;
        self.changed = true;
        if group.members.is_empty() {
            group.state = GroupState::Empty;
            group.protocol = None;
            group.leader = None;
            group.partition_counts.clear();
            info!(
                group = group_id,
                generation = group.generation,
                "group is empty"
            );
            if group.offsets.is_empty() {
                self.groups.remove(group_id);
            }
            return;
        }
        let counts: BTreeMap<String, u32> = group
            .subscribed_topics()
            .into_iter()
            .filter_map(|t| meta.partition_count(t).map(|n| (t.clone(), n)))
            .collect();
        let inputs: BTreeMap<String, MemberInput> = group
            .members
            .iter()
            .map(|(id, m)| {
                (
                    id.clone(),
                    MemberInput {
                        topics: m.topics.clone(),
                        owned: m.owned.clone(),
                    },
                )
            })
            .collect();
        let strategy = group.protocol.unwrap_or_default();
        let assignment = match strategy {
            AssignmentStrategy::Range => assignor::range(&inputs, &counts),
            AssignmentStrategy::CooperativeSticky => {
                assignor::cooperative_adjust(assignor::sticky(&inputs, &counts), &inputs)
            }
        };
        let generation = group.generation;
        for (id, member) in group.members.iter_mut() {
            member.assignment = assignment.get(id).cloned().unwrap_or_default();
            member.generation = generation;
            member.joined = false;
        }
        if group
            .leader
            .as_ref()
            .is_none_or(|l| !group.members.contains_key(l))
        {
            group.leader = group.members.keys().next().cloned();
        }
        group.partition_counts = counts;
        group.state = GroupState::Stable;
        info!(
            group = group_id,
            generation,
            members = group.members.len(),
            strategy = strategy.name(),
            "group rebalanced"
        );
    }

    /// Checks that `member_id` at `generation` may commit offsets for `group_id`.
    pub(crate) fn check_commit(
        &mut self,
        group_id: &str,
        member_id: &str,
        generation: i32,
        now: i64,
        meta: &dyn TopicMetadata,
    ) -> Result<()> {
        self.expire_group(group_id, now, meta);
        let group = self.groups.get_mut(group_id);
        if generation < 0 && member_id.is_empty() {
            if let Some(classic) = self.classic.groups.get(group_id).filter(|g| g.is_active()) {
                return Err(commit_failed(
                    group_id,
                    member_id,
                    generation,
                    format!(
                        "the group has {} member(s) of Kafka's classic protocol; a consumer \
                         outside group management cannot commit for it",
                        classic.member_count()
                    ),
                ));
            }
            return match group {
                Some(g) if !g.members.is_empty() => Err(commit_failed(
                    group_id,
                    member_id,
                    generation,
                    format!(
                        "the group has {} active member(s); a consumer outside group \
                         management cannot commit for it",
                        g.members.len()
                    ),
                )),
                _ => Ok(()),
            };
        }
        let Some(group) = group else {
            return Err(commit_failed(
                group_id,
                member_id,
                generation,
                "the member is not in the group (removed after a session or poll timeout, \
                 or it left)"
                    .to_owned(),
            ));
        };
        let group_generation = group.generation;
        let Some(member) = group.members.get_mut(member_id) else {
            return Err(commit_failed(
                group_id,
                member_id,
                generation,
                "the member is not in the group (removed after a session or poll timeout, \
                 or it left)"
                    .to_owned(),
            ));
        };
        if generation != group_generation {
            return Err(commit_failed(
                group_id,
                member_id,
                generation,
                format!("illegal generation {generation}: the group is at generation {group_generation}"),
            ));
        }
        member.last_heartbeat_ms = now;
        Ok(())
    }

    /// Stores committed offsets in the cache (after they were appended to the log).
    pub(crate) fn apply_offsets(
        &mut self,
        group_id: &str,
        offsets: impl IntoIterator<Item = (TopicPartition, CommittedOffset)>,
    ) {
        let group = self
            .groups
            .entry(group_id.to_owned())
            .or_insert_with(Group::new);
        group.offsets.extend(offsets);
    }

    /// Removes committed offsets (a tombstone); drops the group if nothing is left of it.
    pub(crate) fn remove_offset(&mut self, group_id: &str, tp: &TopicPartition) {
        if let Some(group) = self.groups.get_mut(group_id) {
            group.offsets.remove(tp);
            if group.offsets.is_empty() && group.members.is_empty() {
                self.groups.remove(group_id);
            }
        }
    }

    /// Committed offsets of `group_id` for `tps`.
    pub(crate) fn committed<'a>(
        &self,
        group_id: &str,
        tps: impl IntoIterator<Item = &'a TopicPartition>,
    ) -> Vec<(TopicPartition, OffsetAndMetadata)> {
        let Some(group) = self.groups.get(group_id) else {
            return Vec::new();
        };
        tps.into_iter()
            .filter_map(|tp| {
                group.offsets.get(tp).map(|c| {
                    (
                        tp.clone(),
                        OffsetAndMetadata {
                            offset: c.offset,
                            metadata: c.metadata.clone(),
                        },
                    )
                })
            })
            .collect()
    }

    /// The earliest time at which a member could expire or a rebalance deadline pass.
    pub(crate) fn next_deadline(&self) -> Option<i64> {
        let embedded = self
            .groups
            .values()
            .flat_map(|g| {
                let rebalance =
                    (g.state == GroupState::PreparingRebalance).then_some(g.rebalance_deadline_ms);
                g.members.values().map(Member::deadline).chain(rebalance)
            })
            .min()
            .map(|t| t.saturating_add(1));
        // Classic timers fire at their deadline, not after it.
        embedded
            .into_iter()
            .chain(self.classic.next_deadline())
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(counts: &[(&str, u32)]) -> BTreeMap<String, u32> {
        counts.iter().map(|(t, n)| (t.to_string(), *n)).collect()
    }

    fn request(strategy: AssignmentStrategy, owned: Vec<TopicPartition>) -> JoinRequest {
        JoinRequest {
            topics: ["t".to_owned()].into(),
            strategy,
            owned,
            session_timeout_ms: 1000,
            max_poll_interval_ms: 5000,
        }
    }

    fn assignment(h: Heartbeat) -> (i32, Vec<TopicPartition>) {
        match h {
            Heartbeat::Assignment {
                generation,
                partitions,
            } => (generation, partitions),
            other => panic!("expected an assignment, got {other:?}"),
        }
    }

    #[test]
    fn single_member_gets_everything_at_once() {
        let m = meta(&[("t", 4)]);
        let mut g = Groups::default();
        let a = g
            .join("g", None, request(AssignmentStrategy::Range, vec![]), 0, &m)
            .unwrap();
        let (generation, parts) = assignment(g.heartbeat("g", &a, -1, true, 1, &m));
        assert_eq!(generation, 1);
        assert_eq!(parts.len(), 4);
        assert_eq!(g.heartbeat("g", &a, 1, true, 2, &m), Heartbeat::Stable);
    }

    #[test]
    fn second_member_waits_for_the_first_to_rejoin() {
        let m = meta(&[("t", 4)]);
        let mut g = Groups::default();
        let r = || request(AssignmentStrategy::Range, vec![]);
        let a = g.join("g", None, r(), 0, &m).unwrap();
        assignment(g.heartbeat("g", &a, -1, true, 1, &m));
        let b = g.join("g", None, r(), 2, &m).unwrap();
        assert_eq!(g.heartbeat("g", &b, -1, true, 3, &m), Heartbeat::Pending);
        assert_eq!(
            g.heartbeat("g", &a, 1, true, 3, &m),
            Heartbeat::RejoinNeeded
        );
        // A commit with the current generation is still accepted while preparing.
        assert!(g.check_commit("g", &a, 1, 3, &m).is_ok());
        g.join("g", Some(&a), r(), 4, &m).unwrap();
        let (ga, pa) = assignment(g.heartbeat("g", &a, 1, true, 5, &m));
        let (gb, pb) = assignment(g.heartbeat("g", &b, -1, true, 5, &m));
        assert_eq!((ga, gb), (2, 2));
        assert_eq!(pa.len() + pb.len(), 4);
        assert_eq!(pa.len(), 2);
        // The old generation is fenced.
        assert!(matches!(
            g.check_commit("g", &a, 1, 6, &m),
            Err(BrokerError::CommitFailed { .. })
        ));
    }

    #[test]
    fn silent_member_expires_and_others_take_over() {
        let m = meta(&[("t", 6)]);
        let mut g = Groups::default();
        let r = || request(AssignmentStrategy::Range, vec![]);
        let a = g.join("g", None, r(), 0, &m).unwrap();
        let b = g.join("g", None, r(), 0, &m).unwrap();
        g.join("g", Some(&a), r(), 0, &m).unwrap();
        assert_eq!(
            assignment(g.heartbeat("g", &a, -1, true, 10, &m)).1.len(),
            3
        );
        assert_eq!(
            assignment(g.heartbeat("g", &b, -1, true, 10, &m)).1.len(),
            3
        );
        assert_eq!(g.next_deadline(), Some(1011));
        // b keeps polling, a goes silent.
        g.heartbeat("g", &b, 2, true, 900, &m);
        g.expire(1011, &m);
        assert_eq!(
            g.heartbeat("g", &a, 2, true, 1012, &m),
            Heartbeat::UnknownMember
        );
        assert!(matches!(
            g.check_commit("g", &a, 2, 1012, &m),
            Err(BrokerError::CommitFailed { .. })
        ));
        assert_eq!(
            g.heartbeat("g", &b, 2, true, 1012, &m),
            Heartbeat::RejoinNeeded
        );
        g.join("g", Some(&b), r(), 1013, &m).unwrap();
        let (generation, parts) = assignment(g.heartbeat("g", &b, 2, true, 1014, &m));
        assert_eq!((generation, parts.len()), (3, 6));
    }

    #[test]
    fn max_poll_interval_counts_only_polls() {
        let m = meta(&[("t", 1)]);
        let mut g = Groups::default();
        let a = g
            .join("g", None, request(AssignmentStrategy::Range, vec![]), 0, &m)
            .unwrap();
        // Heartbeats outside poll (commits) keep the session but not the poll interval.
        for t in (500..=5000).step_by(500) {
            g.check_commit("g", &a, 1, t, &m).unwrap();
        }
        g.expire(5001, &m);
        assert_eq!(
            g.heartbeat("g", &a, 1, true, 5002, &m),
            Heartbeat::UnknownMember
        );
    }

    #[test]
    fn members_that_miss_the_rebalance_deadline_are_removed() {
        let m = meta(&[("t", 2)]);
        let mut g = Groups::default();
        let r = || request(AssignmentStrategy::Range, vec![]);
        let a = g.join("g", None, r(), 0, &m).unwrap();
        let b = g.join("g", None, r(), 0, &m).unwrap();
        g.join("g", Some(&a), r(), 0, &m).unwrap();
        g.heartbeat("g", &a, -1, true, 1, &m);
        let c = g.join("g", None, r(), 2, &m).unwrap();
        for t in (100..=5000).step_by(100) {
            // b polls (so it is alive) but never rejoins.
            g.heartbeat("g", &b, 2, true, t, &m);
            g.heartbeat("g", &c, -1, true, t, &m);
            if t == 100 {
                g.join("g", Some(&a), r(), t, &m).unwrap();
            }
            g.heartbeat("g", &a, 2, true, t, &m);
        }
        g.expire(5003, &m);
        assert_eq!(
            g.heartbeat("g", &b, 2, true, 5004, &m),
            Heartbeat::UnknownMember
        );
        assert!(matches!(
            g.heartbeat("g", &c, -1, true, 5004, &m),
            Heartbeat::Assignment { .. }
        ));
    }

    #[test]
    fn leave_rebalances_at_once_and_last_leave_empties() {
        let m = meta(&[("t", 2)]);
        let mut g = Groups::default();
        let r = || request(AssignmentStrategy::Range, vec![]);
        let a = g.join("g", None, r(), 0, &m).unwrap();
        let b = g.join("g", None, r(), 0, &m).unwrap();
        g.join("g", Some(&a), r(), 0, &m).unwrap();
        assert!(g.leave("g", &a, 1, &m));
        assert_eq!(
            g.heartbeat("g", &b, 1, true, 1, &m),
            Heartbeat::RejoinNeeded
        );
        g.join("g", Some(&b), r(), 2, &m).unwrap();
        assert_eq!(assignment(g.heartbeat("g", &b, 1, true, 2, &m)).1.len(), 2);
        g.apply_offsets(
            "g",
            [(
                TopicPartition::new("t", 0),
                CommittedOffset {
                    offset: 5,
                    metadata: String::new(),
                    commit_timestamp: 0,
                },
            )],
        );
        assert!(g.leave("g", &b, 3, &m));
        assert_eq!(g.groups["g"].state, GroupState::Empty);
        // A consumer outside group management may now commit.
        assert!(g.check_commit("g", "", -1, 4, &m).is_ok());
    }

    #[test]
    fn inconsistent_protocols_are_refused() {
        let m = meta(&[("t", 2)]);
        let mut g = Groups::default();
        g.join("g", None, request(AssignmentStrategy::Range, vec![]), 0, &m)
            .unwrap();
        let err = g
            .join(
                "g",
                None,
                request(AssignmentStrategy::CooperativeSticky, vec![]),
                0,
                &m,
            )
            .unwrap_err();
        assert!(
            matches!(err, BrokerError::InconsistentGroupProtocol { .. }),
            "{err}"
        );
    }

    #[test]
    fn cooperative_rebalance_revokes_before_it_assigns() {
        let m = meta(&[("t", 4)]);
        let mut g = Groups::default();
        let coop = |owned| request(AssignmentStrategy::CooperativeSticky, owned);
        let a = g.join("g", None, coop(vec![]), 0, &m).unwrap();
        let (_, pa) = assignment(g.heartbeat("g", &a, -1, true, 0, &m));
        assert_eq!(pa.len(), 4);
        let b = g.join("g", None, coop(vec![]), 1, &m).unwrap();
        g.join("g", Some(&a), coop(pa.clone()), 1, &m).unwrap();
        // First round: a keeps two, the other two are withheld, b gets nothing yet.
        let (ga, pa2) = assignment(g.heartbeat("g", &a, 1, true, 2, &m));
        let (_, pb) = assignment(g.heartbeat("g", &b, -1, true, 2, &m));
        assert_eq!((ga, pa2.len(), pb.len()), (2, 2, 0));
        // a revoked two partitions and rejoins; the second round gives them to b.
        g.join("g", Some(&a), coop(pa2.clone()), 3, &m).unwrap();
        assert_eq!(
            g.heartbeat("g", &b, 2, true, 3, &m),
            Heartbeat::RejoinNeeded
        );
        g.join("g", Some(&b), coop(vec![]), 3, &m).unwrap();
        let (_, pa3) = assignment(g.heartbeat("g", &a, 2, true, 4, &m));
        let (_, pb3) = assignment(g.heartbeat("g", &b, 2, true, 4, &m));
        assert_eq!(pa3, pa2);
        assert_eq!(pb3.len(), 2);
    }

    #[test]
    fn new_partitions_trigger_a_rebalance() {
        let mut m = meta(&[("t", 2)]);
        let mut g = Groups::default();
        let a = g
            .join("g", None, request(AssignmentStrategy::Range, vec![]), 0, &m)
            .unwrap();
        assignment(g.heartbeat("g", &a, -1, true, 0, &m));
        m.insert("t".to_owned(), 3);
        assert_eq!(
            g.heartbeat("g", &a, 1, true, 1, &m),
            Heartbeat::RejoinNeeded
        );
        g.join(
            "g",
            Some(&a),
            request(AssignmentStrategy::Range, vec![]),
            1,
            &m,
        )
        .unwrap();
        assert_eq!(assignment(g.heartbeat("g", &a, 1, true, 1, &m)).1.len(), 3);
    }
}
