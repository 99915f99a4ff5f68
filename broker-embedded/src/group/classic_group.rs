//! One group of Kafka's classic protocol: its members, its state and generation, the
//! transitions of a rebalance and its timers, following Kafka's `ClassicGroup` and the
//! per-group steps of its `GroupMetadataManager`. Free of I/O and locks; time is passed in.
//! Answers to parked requests are put in an [`Outbox`]; `classic.rs` delivers them.
//!
//! Unlike the embedded consumer's groups (`state.rs`), the assignment is computed by the
//! clients: the coordinator collects the members (JoinGroup), picks a protocol every member
//! supports, hands every member's metadata to the leader, and passes the leader's assignment
//! on to everyone (SyncGroup). The transitions follow Kafka's `GroupMetadataManager` and
//! `ClassicGroup`:
//!
//! - `Empty` → `PreparingRebalance` when a member joins. A new group waits
//!   `group.initial.rebalance.delay.ms` (extended while members keep arriving, up to the
//!   rebalance timeout) before it completes the join phase; a group that had a generation
//!   completes as soon as every member has rejoined, or at the rebalance timeout, when the
//!   dynamic members that did not rejoin are removed.
//! - Completing the join phase bumps the generation and moves to `CompletingRebalance`:
//!   every parked JoinGroup is answered (the leader gets all members' metadata). The
//!   leader's SyncGroup moves the group to `Stable` and answers every parked SyncGroup.
//! - A member that is silent for `session.timeout.ms` is removed, which starts a rebalance;
//!   so does a LeaveGroup, a member that joins or changes its metadata, or the leader
//!   rejoining. Members that do not send SyncGroup within the rebalance timeout are removed.
//! - A static member (`group.instance.id`) that rejoins gets a new member id and keeps its
//!   assignment; the old member id is fenced (`FENCED_INSTANCE_ID`).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use bytes::Bytes;
use tracing::{debug, info};

use super::classic_types::{
    GroupErrorCode, GroupJoin, GroupJoinResult, GroupSync, GroupSyncResult, JoinedMember,
    LeavingMember,
};
use super::consumer_protocol::{subscription_topics, CONSUMER_PROTOCOL_TYPE};
use super::GroupState;

/// How long a new member's JoinGroup may stay parked before the member is dropped (Kafka's
/// `group.classic.new.member.join.timeout.ms`, an internal setting of 5 minutes): a client
/// that gave up on a long rebalance and retried leaves no member behind for longer.
pub(crate) const NEW_MEMBER_JOIN_TIMEOUT_MS: i64 = 5 * 60 * 1000;

/// The handle of a parked JoinGroup or SyncGroup.
pub(crate) type Ticket = u64;

/// Answers to deliver to parked requests.
#[derive(Debug, Default)]
pub(super) struct Outbox {
    pub(super) joins: Vec<(Ticket, GroupJoinResult)>,
    pub(super) syncs: Vec<(Ticket, GroupSyncResult)>,
}

impl Outbox {
    pub(super) fn join(&mut self, ticket: Option<Ticket>, result: GroupJoinResult) {
        if let Some(ticket) = ticket {
            self.joins.push((ticket, result));
        }
    }

    pub(super) fn sync(&mut self, ticket: Option<Ticket>, result: GroupSyncResult) {
        if let Some(ticket) = ticket {
            self.syncs.push((ticket, result));
        }
    }
}

#[derive(Debug, Clone)]
struct Member {
    id: String,
    instance_id: Option<String>,
    client_id: String,
    client_host: String,
    rebalance_timeout_ms: i64,
    session_timeout_ms: i64,
    /// Protocol names (unique) with their metadata, most preferred first.
    protocols: Vec<(String, Bytes)>,
    assignment: Bytes,
    /// The parked JoinGroup of the member ("awaiting join").
    awaiting_join: Option<Ticket>,
    /// The parked SyncGroup of the member.
    awaiting_sync: Option<Ticket>,
    /// Joined in the rebalance in progress and has not had a generation yet.
    is_new: bool,
    /// When the member is removed unless a heartbeat (or a rebalance step) comes first.
    heartbeat_deadline: Option<i64>,
}

impl Member {
    fn metadata(&self, protocol: Option<&str>) -> Bytes {
        protocol
            .and_then(|p| self.protocols.iter().find(|(name, _)| name == p))
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    /// Members awaiting a rebalance step need no heartbeat, except new ones.
    fn has_satisfied_heartbeat(&self) -> bool {
        !self.is_new && (self.awaiting_join.is_some() || self.awaiting_sync.is_some())
    }
}

/// The join-phase timer of a group.
#[derive(Debug, Clone, Copy)]
enum JoinTimer {
    /// The initial rebalance of a new group: wait `delay`, then extend while members keep
    /// arriving, for at most `remaining` more.
    Initial {
        deadline: i64,
        configured_delay: i64,
        delay: i64,
        remaining: i64,
    },
    /// The rebalance timeout.
    Rebalance { deadline: i64 },
}

impl JoinTimer {
    fn deadline(&self) -> i64 {
        match *self {
            JoinTimer::Initial { deadline, .. } | JoinTimer::Rebalance { deadline } => deadline,
        }
    }
}

/// A member as a describe shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClassicMemberSnapshot {
    pub(crate) member_id: String,
    pub(crate) group_instance_id: Option<String>,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    /// The member's metadata for the group's protocol (empty without one).
    pub(crate) metadata: Bytes,
    pub(crate) assignment: Bytes,
}

/// One classic group.
#[derive(Debug)]
pub(crate) struct ClassicGroup {
    pub(crate) state: GroupState,
    previous_state: GroupState,
    pub(crate) protocol_type: Option<String>,
    pub(crate) protocol_name: Option<String>,
    pub(crate) generation: i32,
    pub(crate) leader: Option<String>,
    members: BTreeMap<String, Member>,
    /// `group.instance.id` → member id.
    static_members: BTreeMap<String, String>,
    /// Member ids handed out with `MEMBER_ID_REQUIRED`, with their deadline.
    pending_join: BTreeMap<String, i64>,
    /// Members that have not sent SyncGroup for the current generation.
    pending_sync: BTreeSet<String>,
    /// A member joined during the initial delay: extend it.
    new_member_added: bool,
    /// `group.initial.rebalance.delay.ms` as of the last join.
    initial_delay_ms: i64,
    join_timer: Option<JoinTimer>,
    /// The deadline for SyncGroups, and the generation it belongs to.
    sync_timer: Option<(i64, i32)>,
}

impl ClassicGroup {
    pub(super) fn new(initial_delay_ms: i64) -> Self {
        ClassicGroup {
            state: GroupState::Empty,
            previous_state: GroupState::Empty,
            protocol_type: None,
            protocol_name: None,
            generation: 0,
            leader: None,
            members: BTreeMap::new(),
            static_members: BTreeMap::new(),
            pending_join: BTreeMap::new(),
            pending_sync: BTreeSet::new(),
            new_member_added: false,
            initial_delay_ms,
            join_timer: None,
            sync_timer: None,
        }
    }

    /// Has members, pending members or a rebalance in progress: the group is in use.
    pub(crate) fn is_active(&self) -> bool {
        self.state != GroupState::Empty || !self.members.is_empty() || !self.pending_join.is_empty()
    }

    /// Whether `member_id` is a member.
    #[cfg(test)]
    pub(crate) fn has_member(&self, member_id: &str) -> bool {
        self.members.contains_key(member_id)
    }

    /// How many members the group has.
    pub(crate) fn member_count(&self) -> usize {
        self.members.len()
    }

    /// The members, as a describe shows them.
    pub(crate) fn members(&self) -> Vec<ClassicMemberSnapshot> {
        self.members
            .values()
            .map(|m| ClassicMemberSnapshot {
                member_id: m.id.clone(),
                group_instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: m.metadata(self.protocol_name.as_deref()),
                assignment: m.assignment.clone(),
            })
            .collect()
    }

    /// The topics the members consume, read from their metadata when the group uses the
    /// consumer protocol: `Some(empty)` for an empty group, `None` when unknown (another
    /// protocol type, no protocol selected yet, or metadata that cannot be read).
    pub(crate) fn subscribed_topics(&self) -> Option<BTreeSet<String>> {
        if self.protocol_type.as_deref() != Some(CONSUMER_PROTOCOL_TYPE) {
            return None;
        }
        if self.members.is_empty() {
            return Some(BTreeSet::new());
        }
        let protocol = self.protocol_name.as_deref()?;
        let mut topics = BTreeSet::new();
        for m in self.members.values() {
            topics.extend(subscription_topics(&m.metadata(Some(protocol)))?);
        }
        Some(topics)
    }

    /// Whether the group consumes `topic`, for OffsetDelete: an unknown subscription counts
    /// as every topic for a consumer-protocol group, as Kafka does.
    pub(crate) fn is_subscribed_to(&self, topic: &str) -> bool {
        if self.state == GroupState::Empty {
            return false;
        }
        match self.subscribed_topics() {
            Some(topics) => topics.contains(topic),
            None => self.protocol_type.as_deref() == Some(CONSUMER_PROTOCOL_TYPE),
        }
    }

    fn transition(&mut self, to: GroupState) {
        self.previous_state = self.state;
        self.state = to;
    }

    fn awaiting_join_count(&self) -> usize {
        self.members
            .values()
            .filter(|m| m.awaiting_join.is_some())
            .count()
    }

    fn has_all_members_joined(&self) -> bool {
        self.members.len() == self.awaiting_join_count() && self.pending_join.is_empty()
    }

    fn rebalance_timeout_ms(&self) -> i64 {
        self.members
            .values()
            .map(|m| m.rebalance_timeout_ms)
            .max()
            .unwrap_or(0)
    }

    fn can_rebalance(&self) -> bool {
        matches!(
            self.state,
            GroupState::Stable | GroupState::CompletingRebalance | GroupState::Empty
        )
    }

    /// How many members support each protocol (names are unique per member).
    fn protocol_counts(&self) -> HashMap<&str, usize> {
        let mut counts = HashMap::new();
        for m in self.members.values() {
            for (name, _) in &m.protocols {
                *counts.entry(name.as_str()).or_default() += 1;
            }
        }
        counts
    }

    /// A joining member fits: in an empty group, any protocol type and at least one
    /// protocol; otherwise the group's protocol type and a protocol every member supports.
    fn supports_protocols(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.state == GroupState::Empty {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        let counts = self.protocol_counts();
        protocols
            .iter()
            .any(|(name, _)| counts.get(name.as_str()) == Some(&self.members.len()))
    }

    /// Kafka's protocol selection: among the protocols every member supports, each member
    /// votes for the one it prefers most; the most votes win, ties going to the leader's
    /// preference.
    fn select_protocol(&self) -> Option<String> {
        let n = self.members.len();
        let leader = self
            .leader
            .as_ref()
            .and_then(|l| self.members.get(l))
            .or_else(|| self.members.values().next())?;
        let counts = self.protocol_counts();
        let candidates: Vec<&str> = leader
            .protocols
            .iter()
            .map(|(name, _)| name.as_str())
            .filter(|name| counts.get(name) == Some(&n))
            .collect();
        let candidate_set: HashSet<&str> = candidates.iter().copied().collect();
        let mut votes: HashMap<&str, usize> = HashMap::new();
        for m in self.members.values() {
            if let Some((name, _)) = m
                .protocols
                .iter()
                .find(|(name, _)| candidate_set.contains(name.as_str()))
            {
                *votes.entry(name.as_str()).or_default() += 1;
            }
        }
        let most = votes.values().copied().max()?;
        candidates
            .into_iter()
            .find(|c| votes.get(c) == Some(&most))
            .map(str::to_owned)
    }

    /// The member exists, and a static member's instance id maps to it.
    fn validate_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), GroupErrorCode> {
        if let Some(instance) = instance_id {
            match self.static_members.get(instance) {
                None => return Err(GroupErrorCode::UnknownMemberId),
                Some(existing) if existing != member_id => {
                    info!(
                        member = member_id,
                        instance, existing = %existing, "fenced a stale member id of a static member"
                    );
                    return Err(GroupErrorCode::FencedInstanceId);
                }
                Some(_) => {}
            }
        }
        if self.members.contains_key(member_id) {
            Ok(())
        } else {
            Err(GroupErrorCode::UnknownMemberId)
        }
    }

    fn reschedule_heartbeat(&mut self, member_id: &str, now: i64) {
        if let Some(m) = self.members.get_mut(member_id) {
            m.heartbeat_deadline = Some(now.saturating_add(m.session_timeout_ms));
        }
    }

    /// Every member with its metadata for the selected protocol, for the leader.
    fn joined_members(&self) -> Vec<JoinedMember> {
        self.members
            .values()
            .map(|m| JoinedMember {
                member_id: m.id.clone(),
                group_instance_id: m.instance_id.clone(),
                metadata: m.metadata(self.protocol_name.as_deref()),
            })
            .collect()
    }

    /// The current generation's JoinGroup answer for `member_id`.
    fn join_result(&self, member_id: &str, with_members: bool) -> GroupJoinResult {
        GroupJoinResult {
            error: None,
            generation_id: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            skip_assignment: false,
            member_id: member_id.to_owned(),
            members: if with_members {
                self.joined_members()
            } else {
                Vec::new()
            },
        }
    }

    fn add_member(&mut self, member: Member, protocol_type: &str) {
        if let Some(instance) = &member.instance_id {
            self.static_members
                .insert(instance.clone(), member.id.clone());
        }
        if self.members.is_empty() {
            self.protocol_type = Some(protocol_type.to_owned());
        }
        if self.leader.is_none() {
            self.leader = Some(member.id.clone());
        }
        self.pending_join.remove(&member.id);
        self.members.insert(member.id.clone(), member);
    }

    /// Removes a member; its parked requests are answered `UNKNOWN_MEMBER_ID` (the client
    /// rejoins if it is still there).
    fn remove_member(&mut self, member_id: &str, out: &mut Outbox) {
        if let Some(m) = self.members.remove(member_id) {
            out.join(
                m.awaiting_join,
                GroupJoinResult::error(GroupErrorCode::UnknownMemberId, ""),
            );
            out.sync(
                m.awaiting_sync,
                GroupSyncResult::error(GroupErrorCode::UnknownMemberId),
            );
            if let Some(instance) = &m.instance_id {
                if self.static_members.get(instance).map(String::as_str) == Some(member_id) {
                    self.static_members.remove(instance);
                }
            }
        }
        if self.leader.as_deref() == Some(member_id) {
            self.leader = self.members.keys().next().cloned();
        }
        self.pending_join.remove(member_id);
        self.pending_sync.remove(member_id);
    }

    /// A member's new protocols and timeouts, and its JoinGroup parked under `ticket`.
    fn update_member(
        &mut self,
        member_id: &str,
        join: &GroupJoin,
        protocols: Vec<(String, Bytes)>,
        ticket: Ticket,
        out: &mut Outbox,
    ) {
        if let Some(m) = self.members.get_mut(member_id) {
            m.protocols = protocols;
            m.rebalance_timeout_ms = i64::from(join.rebalance_timeout_ms.max(0));
            m.session_timeout_ms = i64::from(join.session_timeout_ms);
            // A JoinGroup parked earlier (a client that gave up and retried) is answered
            // so that its connection does not wait for nothing.
            if let Some(old) = m.awaiting_join.replace(ticket) {
                out.join(
                    Some(old),
                    GroupJoinResult::error(GroupErrorCode::RebalanceInProgress, member_id),
                );
            }
        }
    }

    fn add_member_then_rebalance(
        &mut self,
        join: &GroupJoin,
        protocols: Vec<(String, Bytes)>,
        member_id: String,
        ticket: Ticket,
        now: i64,
        out: &mut Outbox,
    ) {
        let member = Member {
            id: member_id.clone(),
            instance_id: join.group_instance_id.clone(),
            client_id: join.client_id.clone(),
            client_host: join.client_host.clone(),
            rebalance_timeout_ms: i64::from(join.rebalance_timeout_ms.max(0)),
            session_timeout_ms: i64::from(join.session_timeout_ms),
            protocols,
            assignment: Bytes::new(),
            awaiting_join: Some(ticket),
            awaiting_sync: None,
            is_new: true,
            heartbeat_deadline: Some(now.saturating_add(NEW_MEMBER_JOIN_TIMEOUT_MS)),
        };
        if self.state == GroupState::PreparingRebalance && self.previous_state == GroupState::Empty
        {
            self.new_member_added = true;
        }
        self.add_member(member, &join.protocol_type);
        info!(member = %member_id, instance = ?join.group_instance_id, "member joined the classic group");
        self.maybe_prepare_rebalance_or_complete_join(now, out, "a member joined");
    }

    fn maybe_prepare_rebalance_or_complete_join(
        &mut self,
        now: i64,
        out: &mut Outbox,
        reason: &str,
    ) {
        if self.can_rebalance() {
            self.prepare_rebalance(now, out, reason);
        } else {
            self.maybe_complete_join_phase(now, out);
        }
    }

    fn prepare_rebalance(&mut self, now: i64, out: &mut Outbox, reason: &str) {
        if self.state == GroupState::CompletingRebalance {
            // Members waiting for their assignment rejoin instead.
            for m in self.members.values_mut() {
                m.assignment = Bytes::new();
            }
            self.propagate_assignment(Some(GroupErrorCode::RebalanceInProgress), now, out);
        }
        self.pending_sync.clear();
        self.sync_timer = None;
        let initial = self.state == GroupState::Empty;
        if initial {
            let delay = self.initial_delay_ms.max(0);
            self.join_timer = Some(JoinTimer::Initial {
                deadline: now.saturating_add(delay),
                configured_delay: delay,
                delay,
                remaining: (self.rebalance_timeout_ms() - delay).max(0),
            });
        }
        self.transition(GroupState::PreparingRebalance);
        info!(
            generation = self.generation,
            reason, "preparing to rebalance the classic group"
        );
        if !initial {
            if self.has_all_members_joined() {
                self.complete_join(now, out);
            } else {
                self.join_timer = Some(JoinTimer::Rebalance {
                    deadline: now.saturating_add(self.rebalance_timeout_ms()),
                });
            }
        }
    }

    /// Completes the join phase if every member has rejoined (never during the initial
    /// delay of a new group).
    fn maybe_complete_join_phase(&mut self, now: i64, out: &mut Outbox) {
        if self.state == GroupState::PreparingRebalance
            && self.previous_state != GroupState::Empty
            && self.has_all_members_joined()
        {
            self.complete_join(now, out);
        }
    }

    /// The leader rejoined, or another member that did becomes the leader.
    fn maybe_elect_new_joined_leader(&mut self) -> bool {
        let Some(leader) = &self.leader else {
            return false;
        };
        if self
            .members
            .get(leader)
            .is_some_and(|m| m.awaiting_join.is_some())
        {
            return true;
        }
        match self.members.values().find(|m| m.awaiting_join.is_some()) {
            Some(m) => {
                info!(old = %leader, new = %m.id, "the leader did not rejoin before the rebalance timeout; a new leader was elected");
                self.leader = Some(m.id.clone());
                true
            }
            None => false,
        }
    }

    /// Ends the join phase: dynamic members that did not rejoin are removed, the generation
    /// is bumped and every parked JoinGroup answered.
    fn complete_join(&mut self, now: i64, out: &mut Outbox) {
        self.join_timer = None;
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| m.awaiting_join.is_none() && m.instance_id.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in &gone {
            info!(member = %id, "member removed: it did not rejoin before the rebalance timeout");
            self.remove_member(id, out);
        }
        if !self.maybe_elect_new_joined_leader() && !self.members.is_empty() {
            // Only static members that did not rejoin are left: wait for them, or for their
            // sessions to end.
            self.join_timer = Some(JoinTimer::Rebalance {
                deadline: now.saturating_add(self.rebalance_timeout_ms()),
            });
            return;
        }
        self.generation += 1;
        self.pending_sync.clear();
        if self.members.is_empty() {
            self.protocol_name = None;
            self.transition(GroupState::Empty);
            info!(generation = self.generation, "classic group is empty");
            return;
        }
        self.protocol_name = self.select_protocol();
        self.transition(GroupState::CompletingRebalance);
        info!(
            generation = self.generation,
            members = self.members.len(),
            protocol = ?self.protocol_name,
            "classic group joined; waiting for the leader's assignment"
        );
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let is_leader = self.leader.as_deref() == Some(id.as_str());
            let result = self.join_result(&id, is_leader);
            if let Some(m) = self.members.get_mut(&id) {
                out.join(m.awaiting_join.take(), result);
                m.heartbeat_deadline = Some(now.saturating_add(m.session_timeout_ms));
                m.is_new = false;
            }
            self.pending_sync.insert(id);
        }
        self.sync_timer = Some((
            now.saturating_add(self.rebalance_timeout_ms()),
            self.generation,
        ));
    }

    /// Answers every parked SyncGroup with the member's assignment, or with `error`.
    fn propagate_assignment(&mut self, error: Option<GroupErrorCode>, now: i64, out: &mut Outbox) {
        for m in self.members.values_mut() {
            if m.awaiting_sync.is_none() {
                continue;
            }
            let result = match error {
                None => GroupSyncResult {
                    error: None,
                    protocol_type: self.protocol_type.clone(),
                    protocol_name: self.protocol_name.clone(),
                    assignment: m.assignment.clone(),
                },
                Some(e) => GroupSyncResult::error(e),
            };
            out.sync(m.awaiting_sync.take(), result);
            m.heartbeat_deadline = Some(now.saturating_add(m.session_timeout_ms));
        }
    }

    /// A member that was silent for its session timeout (or a new member whose join took
    /// too long) is removed.
    fn remove_member_and_update(&mut self, member_id: &str, now: i64, out: &mut Outbox) {
        self.remove_member(member_id, out);
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => self
                .maybe_prepare_rebalance_or_complete_join(now, out, "a member's session expired"),
            GroupState::PreparingRebalance if self.has_all_members_joined() => {
                self.complete_join(now, out)
            }
            _ => {}
        }
    }

    /// A static member rejoined without its member id: the member gets `new_id` (the old one
    /// is fenced) and keeps its assignment; a stable group does not rebalance unless the
    /// selected protocol would change.
    #[allow(clippy::too_many_arguments, reason = "one step of Kafka's protocol")]
    fn replace_static_member(
        &mut self,
        join: &GroupJoin,
        protocols: Vec<(String, Bytes)>,
        old_id: &str,
        new_id: String,
        ticket: Ticket,
        now: i64,
        out: &mut Outbox,
    ) {
        let current_leader = self.leader.clone().unwrap_or_default();
        let Some(mut member) = self.members.remove(old_id) else {
            out.join(
                Some(ticket),
                GroupJoinResult::error(GroupErrorCode::UnknownMemberId, ""),
            );
            return;
        };
        out.join(
            member.awaiting_join.take(),
            GroupJoinResult::error(GroupErrorCode::FencedInstanceId, old_id),
        );
        out.sync(
            member.awaiting_sync.take(),
            GroupSyncResult::error(GroupErrorCode::FencedInstanceId),
        );
        info!(old = old_id, new = %new_id, instance = ?member.instance_id, "static member rejoined with a new member id");
        member.id = new_id.clone();
        member.heartbeat_deadline = Some(now.saturating_add(member.session_timeout_ms));
        if let Some(instance) = &member.instance_id {
            self.static_members.insert(instance.clone(), new_id.clone());
        }
        if self.leader.as_deref() == Some(old_id) {
            self.leader = Some(new_id.clone());
        }
        self.pending_sync.remove(old_id);
        self.members.insert(new_id.clone(), member);
        self.update_member(&new_id, join, protocols, ticket, out);
        match self.state {
            GroupState::Stable => {
                if self.protocol_name == self.select_protocol() {
                    debug!("a static member rejoined a stable group without a protocol change: no rebalance");
                    let is_leader = self.leader.as_deref() == Some(new_id.as_str());
                    let mut result = self.join_result(&new_id, false);
                    if join.supports_skip_assignment {
                        if is_leader {
                            result.members = self.joined_members();
                            result.skip_assignment = true;
                        }
                    } else {
                        // The old leader id, so that a rejoining leader does not assign.
                        result.leader = current_leader;
                    }
                    if let Some(m) = self.members.get_mut(&new_id) {
                        out.join(m.awaiting_join.take(), result);
                    }
                } else {
                    self.maybe_prepare_rebalance_or_complete_join(
                        now,
                        out,
                        "a static member rejoined with another protocol",
                    );
                }
            }
            GroupState::CompletingRebalance => {
                // The leader may be assigning for the old member id.
                self.prepare_rebalance(now, out, "a static member rejoined");
            }
            GroupState::PreparingRebalance => self.maybe_complete_join_phase(now, out),
            GroupState::Empty => {
                self.maybe_prepare_rebalance_or_complete_join(now, out, "a static member rejoined")
            }
        }
    }

    /// Fires the timers that are due at `now`.
    pub(super) fn tick(&mut self, now: i64, out: &mut Outbox) {
        let expired: Vec<String> = self
            .pending_join
            .iter()
            .filter(|(_, deadline)| **deadline <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            info!(member = %id, "pending member removed: it did not join again with its member id");
            self.pending_join.remove(&id);
            if self.state == GroupState::PreparingRebalance && self.has_all_members_joined() {
                self.complete_join(now, out);
            }
        }
        let due: Vec<String> = self
            .members
            .values()
            .filter(|m| m.heartbeat_deadline.is_some_and(|d| d <= now))
            .map(|m| m.id.clone())
            .collect();
        for id in due {
            let Some(m) = self.members.get_mut(&id) else {
                continue;
            };
            if m.heartbeat_deadline.is_none_or(|d| d > now) {
                continue;
            }
            if m.has_satisfied_heartbeat() {
                m.heartbeat_deadline = None;
                continue;
            }
            info!(member = %id, "member removed: its session timed out");
            self.remove_member_and_update(&id, now, out);
        }
        match self.join_timer {
            Some(JoinTimer::Initial {
                deadline,
                configured_delay,
                delay,
                remaining,
            }) if deadline <= now => {
                if self.new_member_added && remaining != 0 {
                    self.new_member_added = false;
                    let next_delay = configured_delay.min(remaining);
                    self.join_timer = Some(JoinTimer::Initial {
                        deadline: now.saturating_add(next_delay),
                        configured_delay,
                        delay: next_delay,
                        remaining: (remaining - delay).max(0),
                    });
                } else {
                    self.complete_join(now, out);
                }
            }
            Some(JoinTimer::Rebalance { deadline }) if deadline <= now => {
                self.complete_join(now, out)
            }
            _ => {}
        }
        if let Some((deadline, generation)) = self.sync_timer {
            if deadline <= now {
                self.sync_timer = None;
                if generation == self.generation
                    && matches!(
                        self.state,
                        GroupState::CompletingRebalance | GroupState::Stable
                    )
                    && !self.pending_sync.is_empty()
                {
                    let missing: Vec<String> = self.pending_sync.iter().cloned().collect();
                    for id in &missing {
                        info!(member = %id, "member removed: it did not send SyncGroup before the rebalance timeout");
                        self.remove_member(id, out);
                    }
                    self.prepare_rebalance(now, out, "members did not sync");
                }
            }
        }
    }

    pub(super) fn next_deadline(&self) -> Option<i64> {
        let members = self.members.values().filter_map(|m| m.heartbeat_deadline);
        let pending = self.pending_join.values().copied();
        let timers = self
            .join_timer
            .map(|t| t.deadline())
            .into_iter()
            .chain(self.sync_timer.map(|(d, _)| d));
        members.chain(pending).chain(timers).min()
    }

    /// A JoinGroup to this group: `new_id` is the member id made for a member that joined
    /// without one. The answer goes to `ticket`, now or when the join phase completes.
    pub(super) fn join(
        &mut self,
        join: &GroupJoin,
        new_id: Option<String>,
        initial_delay_ms: i64,
        ticket: Ticket,
        now: i64,
        out: &mut Outbox,
    ) {
        let fail = |out: &mut Outbox, error| {
            out.join(
                Some(ticket),
                GroupJoinResult::error(error, join.member_id.clone()),
            )
        };
        self.initial_delay_ms = initial_delay_ms;
        let protocols = unique_protocols(&join.protocols);
        if !self.supports_protocols(&join.protocol_type, &protocols) {
            return fail(out, GroupErrorCode::InconsistentGroupProtocol);
        }
        if let Some(new_id) = new_id {
            match &join.group_instance_id {
                Some(instance) => match self.static_members.get(instance).cloned() {
                    Some(existing) => self.replace_static_member(
                        join, protocols, &existing, new_id, ticket, now, out,
                    ),
                    None => {
                        self.add_member_then_rebalance(join, protocols, new_id, ticket, now, out)
                    }
                },
                None if join.require_known_member_id => {
                    debug!(member = %new_id, "new member asked to join again with its member id");
                    self.pending_join.insert(
                        new_id.clone(),
                        now.saturating_add(i64::from(join.session_timeout_ms)),
                    );
                    out.join(
                        Some(ticket),
                        GroupJoinResult::error(GroupErrorCode::MemberIdRequired, new_id),
                    );
                }
                None => self.add_member_then_rebalance(join, protocols, new_id, ticket, now, out),
            }
            return;
        }
        let member_id = join.member_id.as_str();
        if join.group_instance_id.is_none() && self.pending_join.contains_key(member_id) {
            return self.add_member_then_rebalance(
                join,
                protocols,
                member_id.to_owned(),
                ticket,
                now,
                out,
            );
        }
        if let Err(error) = self.validate_member(member_id, join.group_instance_id.as_deref()) {
            return fail(out, error);
        }
        let matches = self
            .members
            .get(member_id)
            .is_some_and(|m| m.protocols == protocols);
        let is_leader = self.leader.as_deref() == Some(member_id);
        match self.state {
            GroupState::PreparingRebalance => {
                self.update_member(member_id, join, protocols, ticket, out);
                self.maybe_prepare_rebalance_or_complete_join(now, out, "a member rejoined");
            }
            GroupState::CompletingRebalance if matches => {
                // The member lost the answer to its JoinGroup: the same again.
                out.join(Some(ticket), self.join_result(member_id, is_leader));
            }
            GroupState::Stable if matches && !is_leader => {
                out.join(Some(ticket), self.join_result(member_id, false));
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                // New metadata, or the leader rejoining (to rebalance for a change the
                // metadata does not show, such as new partitions).
                self.update_member(member_id, join, protocols, ticket, out);
                self.maybe_prepare_rebalance_or_complete_join(
                    now,
                    out,
                    if is_leader {
                        "the leader rejoined"
                    } else {
                        "a member changed its metadata"
                    },
                );
            }
            GroupState::Empty => fail(out, GroupErrorCode::UnknownMemberId),
        }
    }

    /// A SyncGroup to this group. The answer goes to `ticket`, now or when the leader's
    /// assignment arrives.
    pub(super) fn sync(&mut self, sync: &GroupSync, ticket: Ticket, now: i64, out: &mut Outbox) {
        let fail = |out: &mut Outbox, error| out.sync(Some(ticket), GroupSyncResult::error(error));
        if self.state == GroupState::Empty {
            return fail(out, GroupErrorCode::UnknownMemberId);
        }
        if let Err(error) = self.validate_member(&sync.member_id, sync.group_instance_id.as_deref())
        {
            return fail(out, error);
        }
        if sync.generation_id != self.generation {
            return fail(out, GroupErrorCode::IllegalGeneration);
        }
        let inconsistent =
            |asked: &Option<String>, actual: &Option<String>| asked.is_some() && asked != actual;
        if inconsistent(&sync.protocol_type, &self.protocol_type)
            || inconsistent(&sync.protocol_name, &self.protocol_name)
        {
            return fail(out, GroupErrorCode::InconsistentGroupProtocol);
        }
        match self.state {
            GroupState::PreparingRebalance => fail(out, GroupErrorCode::RebalanceInProgress),
            GroupState::CompletingRebalance => {
                if let Some(m) = self.members.get_mut(&sync.member_id) {
                    if let Some(old) = m.awaiting_sync.replace(ticket) {
                        out.sync(
                            Some(old),
                            GroupSyncResult::error(GroupErrorCode::RebalanceInProgress),
                        );
                    }
                }
                self.pending_sync.remove(&sync.member_id);
                if self.pending_sync.is_empty() {
                    self.sync_timer = None;
                }
                if self.leader.as_deref() == Some(sync.member_id.as_str()) {
                    info!(
                        member = %sync.member_id,
                        generation = self.generation,
                        members = self.members.len(),
                        "assignment received from the leader of the classic group"
                    );
                    let assignments: HashMap<&str, &Bytes> = sync
                        .assignments
                        .iter()
                        .map(|(id, a)| (id.as_str(), a))
                        .collect();
                    for m in self.members.values_mut() {
                        m.assignment = assignments
                            .get(m.id.as_str())
                            .map(|a| (*a).clone())
                            .unwrap_or_default();
                    }
                    self.propagate_assignment(None, now, out);
                    self.transition(GroupState::Stable);
                }
            }
            GroupState::Stable => {
                self.pending_sync.remove(&sync.member_id);
                if self.pending_sync.is_empty() {
                    self.sync_timer = None;
                }
                let assignment = self
                    .members
                    .get(&sync.member_id)
                    .map(|m| m.assignment.clone())
                    .unwrap_or_default();
                out.sync(
                    Some(ticket),
                    GroupSyncResult {
                        error: None,
                        protocol_type: self.protocol_type.clone(),
                        protocol_name: self.protocol_name.clone(),
                        assignment,
                    },
                );
            }
            GroupState::Empty => fail(out, GroupErrorCode::UnknownMemberId),
        }
    }

    /// A Heartbeat of a member: `None` when all is well.
    pub(super) fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: i64,
    ) -> Option<GroupErrorCode> {
        if let Err(error) = self.validate_member(member_id, instance_id) {
            return Some(error);
        }
        if generation != self.generation {
            return Some(GroupErrorCode::IllegalGeneration);
        }
        match self.state {
            GroupState::Empty => Some(GroupErrorCode::UnknownMemberId),
            GroupState::PreparingRebalance => {
                self.reschedule_heartbeat(member_id, now);
                Some(GroupErrorCode::RebalanceInProgress)
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.reschedule_heartbeat(member_id, now);
                None
            }
        }
    }

    /// Members leave; each one's outcome, in order.
    pub(super) fn leave(
        &mut self,
        members: &[LeavingMember],
        now: i64,
        out: &mut Outbox,
    ) -> Vec<Option<GroupErrorCode>> {
        let mut results = Vec::with_capacity(members.len());
        let mut left = 0usize;
        for leaving in members {
            let result = if leaving.member_id.is_empty() {
                // An administrative removal of a static member by its instance id.
                match leaving
                    .group_instance_id
                    .as_ref()
                    .and_then(|i| self.static_members.get(i).cloned())
                {
                    Some(id) => {
                        self.remove_member(&id, out);
                        None
                    }
                    None => Some(GroupErrorCode::UnknownMemberId),
                }
            } else if self.pending_join.remove(&leaving.member_id).is_some() {
                None
            } else {
                match self.validate_member(&leaving.member_id, leaving.group_instance_id.as_deref())
                {
                    Ok(()) => {
                        self.remove_member(&leaving.member_id, out);
                        None
                    }
                    Err(error) => Some(error),
                }
            };
            if result.is_none() {
                left += 1;
                info!(member = %leaving.member_id, instance = ?leaving.group_instance_id, "member left the classic group");
            }
            results.push(result);
        }
        if left > 0 {
            match self.state {
                GroupState::Stable | GroupState::CompletingRebalance => {
                    self.maybe_prepare_rebalance_or_complete_join(now, out, "members left")
                }
                GroupState::PreparingRebalance => self.maybe_complete_join_phase(now, out),
                GroupState::Empty => {}
            }
        }
        results
    }

    /// Kafka's check of a TxnOffsetCommit: an OffsetCommit's, except that a group waiting
    /// for its leader's assignment takes it (the transaction decides later).
    pub(super) fn validate_txn_offset_commit(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: i64,
    ) -> Result<(), GroupErrorCode> {
        match self.validate_offset_commit(member_id, instance_id, generation, now) {
            Err(GroupErrorCode::RebalanceInProgress)
                if self.state == GroupState::CompletingRebalance =>
            {
                Ok(())
            }
            other => other,
        }
    }

    /// Kafka's check of an OffsetCommit against a classic group.
    pub(super) fn validate_offset_commit(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: i64,
    ) -> Result<(), GroupErrorCode> {
        if generation < 0 && self.state == GroupState::Empty {
            // A consumer outside group management (or an admin) commits for an empty group.
            return Ok(());
        }
        if generation >= 0 || !member_id.is_empty() || instance_id.is_some() {
            self.validate_member(member_id, instance_id)?;
            if generation != self.generation {
                return Err(GroupErrorCode::IllegalGeneration);
            }
        } else if self.state != GroupState::Empty {
            return Err(GroupErrorCode::UnknownMemberId);
        }
        if self.state == GroupState::CompletingRebalance {
            return Err(GroupErrorCode::RebalanceInProgress);
        }
        if matches!(
            self.state,
            GroupState::Stable | GroupState::PreparingRebalance
        ) {
            // A commit keeps the member's session alive, as a heartbeat does.
            self.reschedule_heartbeat(member_id, now);
        }
        Ok(())
    }
}

/// Protocol names are unique per member: a repeated name keeps its first place.
fn unique_protocols(protocols: &[(String, Bytes)]) -> Vec<(String, Bytes)> {
    let mut seen = BTreeSet::new();
    protocols
        .iter()
        .filter(|(name, _)| seen.insert(name.clone()))
        .cloned()
        .collect()
}
