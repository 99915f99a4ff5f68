//! Kafka's classic group protocol, as Kafka's own clients (the Java consumer, librdkafka,
//! kafka-python, kafkajs) speak it: the coordinator's state machine, free of I/O and locks.
//! Time is passed in, so every transition is testable without waiting.
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
//!
//! A JoinGroup or SyncGroup that has to wait is parked under a ticket: its answer is
//! delivered to the ticket later, and the caller takes it from there.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::Bytes;
use tracing::{debug, info};

use super::classic_types::{
    GroupErrorCode, GroupJoin, GroupJoinResult, GroupLeaveResult, GroupSync, GroupSyncResult,
    JoinedMember, LeavingMember,
};
use super::consumer_protocol::{subscription_topics, CONSUMER_PROTOCOL_TYPE};
use super::GroupState;

/// How long a new member's JoinGroup may stay parked before the member is dropped (Kafka's
/// `group.classic.new.member.join.timeout.ms`, an internal setting of 5 minutes): a client
/// that gave up on a long rebalance and retried leaves no member behind for longer.
pub(crate) const NEW_MEMBER_JOIN_TIMEOUT_MS: i64 = 5 * 60 * 1000;

/// The broker settings the classic protocol uses.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClassicSettings {
    /// `group.initial.rebalance.delay.ms`.
    pub(crate) initial_rebalance_delay_ms: i64,
    /// `group.min.session.timeout.ms`.
    pub(crate) min_session_timeout_ms: i64,
    /// `group.max.session.timeout.ms`.
    pub(crate) max_session_timeout_ms: i64,
}

/// The handle of a parked JoinGroup or SyncGroup.
pub(crate) type Ticket = u64;

/// Answers to deliver to parked requests.
#[derive(Debug, Default)]
struct Outbox {
    joins: Vec<(Ticket, GroupJoinResult)>,
    syncs: Vec<(Ticket, GroupSyncResult)>,
}

impl Outbox {
    fn join(&mut self, ticket: Option<Ticket>, result: GroupJoinResult) {
        if let Some(ticket) = ticket {
            self.joins.push((ticket, result));
        }
    }

    fn sync(&mut self, ticket: Option<Ticket>, result: GroupSyncResult) {
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
    fn new(initial_delay_ms: i64) -> Self {
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

    fn support_count(&self, protocol: &str) -> usize {
        self.members
            .values()
            .filter(|m| m.protocols.iter().any(|(name, _)| name == protocol))
            .count()
    }

    /// A joining member fits: in an empty group, any protocol type and at least one
    /// protocol; otherwise the group's protocol type and a protocol every member supports.
    fn supports_protocols(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.state == GroupState::Empty {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols
                .iter()
                .any(|(name, _)| self.support_count(name) == self.members.len())
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
        let candidates: Vec<&str> = leader
            .protocols
            .iter()
            .map(|(name, _)| name.as_str())
            .filter(|name| self.support_count(name) == n)
            .collect();
        let mut votes: HashMap<&str, usize> = HashMap::new();
        for m in self.members.values() {
            if let Some((name, _)) = m
                .protocols
                .iter()
                .find(|(name, _)| candidates.contains(&name.as_str()))
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
    fn tick(&mut self, now: i64, out: &mut Outbox) {
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

    fn next_deadline(&self) -> Option<i64> {
        let members = self.members.values().filter_map(|m| m.heartbeat_deadline);
        let pending = self.pending_join.values().copied();
        let timers = self
            .join_timer
            .map(|t| t.deadline())
            .into_iter()
            .chain(self.sync_timer.map(|(d, _)| d));
        members.chain(pending).chain(timers).min()
    }

    /// Kafka's check of an OffsetCommit against a classic group.
    fn validate_offset_commit(
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

/// Every classic group of a broker, and the requests parked on them.
#[derive(Debug, Default)]
pub(crate) struct ClassicGroups {
    pub(crate) groups: BTreeMap<String, ClassicGroup>,
    next_ticket: Ticket,
    next_member: u64,
    /// Parked JoinGroups still waited for: ticket → answer once delivered.
    join_waiters: HashMap<Ticket, Option<GroupJoinResult>>,
    /// Parked SyncGroups still waited for.
    sync_waiters: HashMap<Ticket, Option<GroupSyncResult>>,
    /// Set when an answer was delivered; the owner clears it and wakes the waiters.
    pub(crate) changed: bool,
}

impl ClassicGroups {
    fn new_ticket(&mut self) -> Ticket {
        self.next_ticket += 1;
        self.next_ticket
    }

    /// A member id as Kafka makes them: the instance id or client id, a dash and a unique
    /// suffix.
    fn new_member_id(&mut self, join: &GroupJoin) -> String {
        self.next_member += 1;
        let prefix = join
            .group_instance_id
            .as_deref()
            .unwrap_or(join.client_id.as_str());
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let mix = |mut z: u64| {
            // splitmix64: spreads the bits so that ids differ in every position.
            z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        let a = mix(nanos ^ u64::from(std::process::id()).rotate_left(32));
        let b = mix(a ^ self.next_member);
        format!(
            "{prefix}-{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xffff,
            b >> 48,
            b & 0xffff_ffff_ffff
        )
    }

    fn flush(&mut self, out: Outbox) {
        for (ticket, result) in out.joins {
            if let Some(slot) = self.join_waiters.get_mut(&ticket) {
                *slot = Some(result);
                self.changed = true;
            }
        }
        for (ticket, result) in out.syncs {
            if let Some(slot) = self.sync_waiters.get_mut(&ticket) {
                *slot = Some(result);
                self.changed = true;
            }
        }
    }

    /// Fires the due timers of one group.
    fn tick_group(&mut self, group: &str, now: i64, out: &mut Outbox) {
        if let Some(g) = self.groups.get_mut(group) {
            g.tick(now, out);
        }
    }

    /// Fires the due timers of every group.
    pub(crate) fn tick_all(&mut self, now: i64) {
        let mut out = Outbox::default();
        for g in self.groups.values_mut() {
            g.tick(now, &mut out);
        }
        self.flush(out);
    }

    /// The earliest timer of any group.
    pub(crate) fn next_deadline(&self) -> Option<i64> {
        self.groups
            .values()
            .filter_map(ClassicGroup::next_deadline)
            .min()
    }

    /// Drops groups that are empty and idle, unless `keep` (they have committed offsets).
    pub(crate) fn sweep(&mut self, keep: impl Fn(&str) -> bool) {
        self.groups.retain(|id, g| g.is_active() || keep(id));
    }

    /// A JoinGroup. Its answer is delivered to the returned ticket, at once or when the join
    /// phase completes. `embedded_members`: the group is in use by the embedded consumer.
    pub(crate) fn join(
        &mut self,
        join: &GroupJoin,
        now: i64,
        settings: ClassicSettings,
        embedded_members: bool,
    ) -> Ticket {
        let ticket = self.new_ticket();
        self.join_waiters.insert(ticket, None);
        let mut out = Outbox::default();
        self.join_inner(join, now, settings, embedded_members, ticket, &mut out);
        self.flush(out);
        ticket
    }

    fn join_inner(
        &mut self,
        join: &GroupJoin,
        now: i64,
        settings: ClassicSettings,
        embedded_members: bool,
        ticket: Ticket,
        out: &mut Outbox,
    ) {
        let fail = |out: &mut Outbox, error| {
            out.join(
                Some(ticket),
                GroupJoinResult::error(error, join.member_id.clone()),
            )
        };
        if join.group_id.is_empty() {
            return fail(out, GroupErrorCode::InvalidGroupId);
        }
        let session = i64::from(join.session_timeout_ms);
        if session < settings.min_session_timeout_ms || session > settings.max_session_timeout_ms {
            return fail(out, GroupErrorCode::InvalidSessionTimeout);
        }
        if embedded_members {
            // The embedded consumer's group: another protocol (Kafka's answer to a
            // protocol type the group does not use).
            return fail(out, GroupErrorCode::InconsistentGroupProtocol);
        }
        self.tick_group(&join.group_id, now, out);
        let unknown = join.member_id.is_empty();
        if !self.groups.contains_key(&join.group_id) {
            if !unknown {
                return fail(out, GroupErrorCode::UnknownMemberId);
            }
            self.groups.insert(
                join.group_id.clone(),
                ClassicGroup::new(settings.initial_rebalance_delay_ms),
            );
        }
        let new_id = unknown.then(|| self.new_member_id(join));
        let Some(group) = self.groups.get_mut(&join.group_id) else {
            return fail(out, GroupErrorCode::UnknownMemberId);
        };
        group.initial_delay_ms = settings.initial_rebalance_delay_ms;
        let protocols = unique_protocols(&join.protocols);
        if !group.supports_protocols(&join.protocol_type, &protocols) {
            return fail(out, GroupErrorCode::InconsistentGroupProtocol);
        }
        if let Some(new_id) = new_id {
            match &join.group_instance_id {
                Some(instance) => match group.static_members.get(instance).cloned() {
                    Some(existing) => group.replace_static_member(
                        join, protocols, &existing, new_id, ticket, now, out,
                    ),
                    None => {
                        group.add_member_then_rebalance(join, protocols, new_id, ticket, now, out)
                    }
                },
                None if join.require_known_member_id => {
                    debug!(member = %new_id, "new member asked to join again with its member id");
                    group
                        .pending_join
                        .insert(new_id.clone(), now.saturating_add(session));
                    out.join(
                        Some(ticket),
                        GroupJoinResult::error(GroupErrorCode::MemberIdRequired, new_id),
                    );
                }
                None => group.add_member_then_rebalance(join, protocols, new_id, ticket, now, out),
            }
            return;
        }
        let member_id = join.member_id.as_str();
        if join.group_instance_id.is_none() && group.pending_join.contains_key(member_id) {
            return group.add_member_then_rebalance(
                join,
                protocols,
                member_id.to_owned(),
                ticket,
                now,
                out,
            );
        }
        if let Err(error) = group.validate_member(member_id, join.group_instance_id.as_deref()) {
            return fail(out, error);
        }
        let matches = group
            .members
            .get(member_id)
            .is_some_and(|m| m.protocols == protocols);
        let is_leader = group.leader.as_deref() == Some(member_id);
        match group.state {
            GroupState::PreparingRebalance => {
                group.update_member(member_id, join, protocols, ticket, out);
                group.maybe_prepare_rebalance_or_complete_join(now, out, "a member rejoined");
            }
            GroupState::CompletingRebalance if matches => {
                // The member lost the answer to its JoinGroup: the same again.
                out.join(Some(ticket), group.join_result(member_id, is_leader));
            }
            GroupState::Stable if matches && !is_leader => {
                out.join(Some(ticket), group.join_result(member_id, false));
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                // New metadata, or the leader rejoining (to rebalance for a change the
                // metadata does not show, such as new partitions).
                group.update_member(member_id, join, protocols, ticket, out);
                group.maybe_prepare_rebalance_or_complete_join(
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

    /// The answer to a parked JoinGroup, once delivered; the ticket is then forgotten.
    pub(crate) fn take_join(&mut self, ticket: Ticket) -> Option<GroupJoinResult> {
        let result = self.join_waiters.get_mut(&ticket)?.take()?;
        self.join_waiters.remove(&ticket);
        Some(result)
    }

    /// The answer to a parked SyncGroup, once delivered; the ticket is then forgotten.
    pub(crate) fn take_sync(&mut self, ticket: Ticket) -> Option<GroupSyncResult> {
        let result = self.sync_waiters.get_mut(&ticket)?.take()?;
        self.sync_waiters.remove(&ticket);
        Some(result)
    }

    /// Nobody waits for `ticket` any more (the connection went away): an answer delivered
    /// later is dropped. The member stays parked, as in Kafka, until its rebalance step
    /// completes or times out.
    pub(crate) fn abandon(&mut self, ticket: Ticket) {
        self.join_waiters.remove(&ticket);
        self.sync_waiters.remove(&ticket);
    }

    /// A SyncGroup. Its answer is delivered to the returned ticket, at once or when the
    /// leader's assignment arrives.
    pub(crate) fn sync(&mut self, sync: &GroupSync, now: i64) -> Ticket {
        let ticket = self.new_ticket();
        self.sync_waiters.insert(ticket, None);
        let mut out = Outbox::default();
        self.sync_inner(sync, now, ticket, &mut out);
        self.flush(out);
        ticket
    }

    fn sync_inner(&mut self, sync: &GroupSync, now: i64, ticket: Ticket, out: &mut Outbox) {
        let fail = |out: &mut Outbox, error| out.sync(Some(ticket), GroupSyncResult::error(error));
        if sync.group_id.is_empty() {
            return fail(out, GroupErrorCode::InvalidGroupId);
        }
        self.tick_group(&sync.group_id, now, out);
        let Some(group) = self.groups.get_mut(&sync.group_id) else {
            return fail(out, GroupErrorCode::UnknownMemberId);
        };
        if group.state == GroupState::Empty {
            return fail(out, GroupErrorCode::UnknownMemberId);
        }
        if let Err(error) =
            group.validate_member(&sync.member_id, sync.group_instance_id.as_deref())
        {
            return fail(out, error);
        }
        if sync.generation_id != group.generation {
            return fail(out, GroupErrorCode::IllegalGeneration);
        }
        let inconsistent =
            |asked: &Option<String>, actual: &Option<String>| asked.is_some() && asked != actual;
        if inconsistent(&sync.protocol_type, &group.protocol_type)
            || inconsistent(&sync.protocol_name, &group.protocol_name)
        {
            return fail(out, GroupErrorCode::InconsistentGroupProtocol);
        }
        match group.state {
            GroupState::PreparingRebalance => fail(out, GroupErrorCode::RebalanceInProgress),
            GroupState::CompletingRebalance => {
                if let Some(m) = group.members.get_mut(&sync.member_id) {
                    if let Some(old) = m.awaiting_sync.replace(ticket) {
                        out.sync(
                            Some(old),
                            GroupSyncResult::error(GroupErrorCode::RebalanceInProgress),
                        );
                    }
                }
                group.pending_sync.remove(&sync.member_id);
                if group.pending_sync.is_empty() {
                    group.sync_timer = None;
                }
                if group.leader.as_deref() == Some(sync.member_id.as_str()) {
                    info!(
                        member = %sync.member_id,
                        generation = group.generation,
                        members = group.members.len(),
                        "assignment received from the leader of the classic group"
                    );
                    let assignments: HashMap<&str, &Bytes> = sync
                        .assignments
                        .iter()
                        .map(|(id, a)| (id.as_str(), a))
                        .collect();
                    for m in group.members.values_mut() {
                        m.assignment = assignments
                            .get(m.id.as_str())
                            .map(|a| (*a).clone())
                            .unwrap_or_default();
                    }
                    group.propagate_assignment(None, now, out);
                    group.transition(GroupState::Stable);
                }
            }
            GroupState::Stable => {
                group.pending_sync.remove(&sync.member_id);
                if group.pending_sync.is_empty() {
                    group.sync_timer = None;
                }
                let assignment = group
                    .members
                    .get(&sync.member_id)
                    .map(|m| m.assignment.clone())
                    .unwrap_or_default();
                out.sync(
                    Some(ticket),
                    GroupSyncResult {
                        error: None,
                        protocol_type: group.protocol_type.clone(),
                        protocol_name: group.protocol_name.clone(),
                        assignment,
                    },
                );
            }
            GroupState::Empty => fail(out, GroupErrorCode::UnknownMemberId),
        }
    }

    /// A Heartbeat: `None` when all is well.
    pub(crate) fn heartbeat(
        &mut self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: i64,
    ) -> Option<GroupErrorCode> {
        if group_id.is_empty() {
            return Some(GroupErrorCode::InvalidGroupId);
        }
        let mut out = Outbox::default();
        self.tick_group(group_id, now, &mut out);
        self.flush(out);
        let Some(group) = self.groups.get_mut(group_id) else {
            return Some(GroupErrorCode::UnknownMemberId);
        };
        if let Err(error) = group.validate_member(member_id, instance_id) {
            return Some(error);
        }
        if generation != group.generation {
            return Some(GroupErrorCode::IllegalGeneration);
        }
        match group.state {
            GroupState::Empty => Some(GroupErrorCode::UnknownMemberId),
            GroupState::PreparingRebalance => {
                group.reschedule_heartbeat(member_id, now);
                Some(GroupErrorCode::RebalanceInProgress)
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                group.reschedule_heartbeat(member_id, now);
                None
            }
        }
    }

    /// A LeaveGroup of one or more members.
    pub(crate) fn leave(
        &mut self,
        group_id: &str,
        members: &[LeavingMember],
        now: i64,
    ) -> GroupLeaveResult {
        if group_id.is_empty() {
            return GroupLeaveResult {
                error: Some(GroupErrorCode::InvalidGroupId),
                members: Vec::new(),
            };
        }
        let mut out = Outbox::default();
        self.tick_group(group_id, now, &mut out);
        let Some(group) = self.groups.get_mut(group_id) else {
            self.flush(out);
            return GroupLeaveResult {
                error: Some(GroupErrorCode::UnknownMemberId),
                members: Vec::new(),
            };
        };
        let mut results = Vec::with_capacity(members.len());
        let mut left = 0usize;
        for leaving in members {
            let result = if leaving.member_id.is_empty() {
                // An administrative removal of a static member by its instance id.
                match leaving
                    .group_instance_id
                    .as_ref()
                    .and_then(|i| group.static_members.get(i).cloned())
                {
                    Some(id) => {
                        group.remove_member(&id, &mut out);
                        None
                    }
                    None => Some(GroupErrorCode::UnknownMemberId),
                }
            } else if group.pending_join.remove(&leaving.member_id).is_some() {
                None
            } else {
                match group
                    .validate_member(&leaving.member_id, leaving.group_instance_id.as_deref())
                {
                    Ok(()) => {
                        group.remove_member(&leaving.member_id, &mut out);
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
            match group.state {
                GroupState::Stable | GroupState::CompletingRebalance => {
                    group.maybe_prepare_rebalance_or_complete_join(now, &mut out, "members left")
                }
                GroupState::PreparingRebalance => group.maybe_complete_join_phase(now, &mut out),
                GroupState::Empty => {}
            }
        }
        self.flush(out);
        GroupLeaveResult {
            error: None,
            members: results,
        }
    }

    /// Kafka's check of an OffsetCommit against the classic group `group_id`; `None` when
    /// there is no such group.
    pub(crate) fn validate_offset_commit(
        &mut self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: i64,
    ) -> Option<Result<(), GroupErrorCode>> {
        let mut out = Outbox::default();
        self.tick_group(group_id, now, &mut out);
        self.flush(out);
        let group = self.groups.get_mut(group_id)?;
        Some(group.validate_offset_commit(member_id, instance_id, generation, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTINGS: ClassicSettings = ClassicSettings {
        initial_rebalance_delay_ms: 100,
        min_session_timeout_ms: 10,
        max_session_timeout_ms: 100_000,
    };

    fn join(member_id: &str) -> GroupJoin {
        GroupJoin {
            group_id: "g".to_owned(),
            member_id: member_id.to_owned(),
            group_instance_id: None,
            protocol_type: "consumer".to_owned(),
            protocols: vec![
                ("range".to_owned(), Bytes::from_static(b"range-meta")),
                ("roundrobin".to_owned(), Bytes::from_static(b"rr-meta")),
            ],
            session_timeout_ms: 1000,
            rebalance_timeout_ms: 2000,
            client_id: "client".to_owned(),
            client_host: "/127.0.0.1".to_owned(),
            require_known_member_id: true,
            supports_skip_assignment: true,
        }
    }

    fn sync(member_id: &str, generation: i32, assignments: &[(&str, &'static [u8])]) -> GroupSync {
        GroupSync {
            group_id: "g".to_owned(),
            member_id: member_id.to_owned(),
            group_instance_id: None,
            generation_id: generation,
            protocol_type: Some("consumer".to_owned()),
            protocol_name: None,
            assignments: assignments
                .iter()
                .map(|(m, a)| ((*m).to_owned(), Bytes::from_static(a)))
                .collect(),
        }
    }

    /// Joins with an empty member id, gets MEMBER_ID_REQUIRED, joins again: the ticket of
    /// the second join and the member id.
    fn join_new(g: &mut ClassicGroups, request: GroupJoin, now: i64) -> (Ticket, String) {
        let t = g.join(&request, now, SETTINGS, false);
        let first = g.take_join(t).expect("an answer at once");
        assert_eq!(first.error, Some(GroupErrorCode::MemberIdRequired));
        assert!(
            first.member_id.starts_with("client-"),
            "{}",
            first.member_id
        );
        let id = first.member_id;
        let t = g.join(
            &GroupJoin {
                member_id: id.clone(),
                ..request
            },
            now,
            SETTINGS,
            false,
        );
        (t, id)
    }

    fn state(g: &ClassicGroups) -> GroupState {
        g.groups["g"].state
    }

    /// Two members form a group: the initial delay, the leader's view, the assignment
    /// handed out by SyncGroup, and heartbeats.
    #[test]
    fn two_members_join_the_leader_assigns_and_both_sync() {
        let mut g = ClassicGroups::default();
        let (ta, a) = join_new(&mut g, join(""), 0);
        let (tb, b) = join_new(&mut g, join(""), 10);
        assert_ne!(a, b);
        assert_eq!(state(&g), GroupState::PreparingRebalance);
        // The initial delay (100 ms), extended once because b arrived during it.
        g.tick_all(100);
        assert!(g.take_join(ta).is_none());
        g.tick_all(199);
        assert!(g.take_join(ta).is_none());
        g.tick_all(200);
        let ra = g.take_join(ta).expect("a's join completed");
        let rb = g.take_join(tb).expect("b's join completed");
        assert_eq!(state(&g), GroupState::CompletingRebalance);
        assert_eq!((ra.error, ra.generation_id), (None, 1));
        assert_eq!(ra.protocol_name.as_deref(), Some("range"));
        assert_eq!(ra.leader, a, "the first member to join leads");
        assert_eq!(ra.members.len(), 2);
        assert!(ra
            .members
            .iter()
            .all(|m| m.metadata == Bytes::from_static(b"range-meta")));
        assert!(rb.members.is_empty(), "followers get no member list");
        assert_eq!(rb.leader, a);

        // b syncs first and waits for the leader.
        let sb = g.sync(&sync(&b, 1, &[]), 210);
        assert!(g.take_sync(sb).is_none());
        assert_eq!(g.heartbeat("g", &b, None, 1, 215), None);
        let sa = g.sync(&sync(&a, 1, &[(&a, b"A"), (&b, b"B")]), 220);
        assert_eq!(state(&g), GroupState::Stable);
        let sa = g.take_sync(sa).unwrap();
        let sb = g.take_sync(sb).unwrap();
        assert_eq!((sa.error, &sa.assignment[..]), (None, &b"A"[..]));
        assert_eq!((sb.error, &sb.assignment[..]), (None, &b"B"[..]));
        assert_eq!(sb.protocol_name.as_deref(), Some("range"));
        // Heartbeats: fine, a stale generation, an unknown member.
        assert_eq!(g.heartbeat("g", &a, None, 1, 300), None);
        assert_eq!(
            g.heartbeat("g", &a, None, 0, 300),
            Some(GroupErrorCode::IllegalGeneration)
        );
        assert_eq!(
            g.heartbeat("g", "nobody", None, 1, 300),
            Some(GroupErrorCode::UnknownMemberId)
        );
        assert_eq!(
            g.heartbeat("other", &a, None, 1, 300),
            Some(GroupErrorCode::UnknownMemberId)
        );
        // A SyncGroup in a stable group answers the member's assignment at once.
        let again = g.sync(&sync(&b, 1, &[]), 310);
        assert_eq!(&g.take_sync(again).unwrap().assignment[..], b"B");
    }

    /// A third member joins a stable group: the others learn of the rebalance from their
    /// heartbeat, rejoin, and the join completes as soon as all have (no initial delay).
    #[test]
    fn heartbeats_during_a_rebalance_say_rejoin() {
        let mut g = ClassicGroups::default();
        let (ta, a) = join_new(&mut g, join(""), 0);
        g.tick_all(100);
        assert_eq!(g.take_join(ta).unwrap().generation_id, 1);
        let s = g.sync(&sync(&a, 1, &[(&a, b"all")]), 101);
        assert!(g.take_sync(s).is_some());
        let (tc, c) = join_new(&mut g, join(""), 200);
        assert_eq!(state(&g), GroupState::PreparingRebalance);
        assert!(g.take_join(tc).is_none());
        assert_eq!(
            g.heartbeat("g", &a, None, 1, 210),
            Some(GroupErrorCode::RebalanceInProgress)
        );
        // A commit of the current generation is still accepted while preparing.
        assert_eq!(
            g.validate_offset_commit("g", &a, None, 1, 211),
            Some(Ok(()))
        );
        let ta = g.join(&join(&a), 220, SETTINGS, false);
        let ra = g
            .take_join(ta)
            .expect("everyone rejoined: the join completes at once");
        let rc = g.take_join(tc).unwrap();
        assert_eq!((ra.generation_id, rc.generation_id), (2, 2));
        assert_eq!(ra.members.len(), 2);
        assert_eq!(state(&g), GroupState::CompletingRebalance);
        // Commits: refused while the assignment is pending, and with the old generation.
        assert_eq!(
            g.validate_offset_commit("g", &c, None, 2, 221),
            Some(Err(GroupErrorCode::RebalanceInProgress))
        );
        assert_eq!(
            g.validate_offset_commit("g", &a, None, 1, 221),
            Some(Err(GroupErrorCode::IllegalGeneration))
        );
        // A follower's SyncGroup with the old generation is refused; a rejoin in the
        // CompletingRebalance state with the same metadata gets the same answer again.
        let s = g.sync(&sync(&c, 1, &[]), 222);
        assert_eq!(
            g.take_sync(s).unwrap().error,
            Some(GroupErrorCode::IllegalGeneration)
        );
        let again = g.join(&join(&c), 223, SETTINGS, false);
        assert_eq!(g.take_join(again).unwrap().generation_id, 2);
        // A new member during CompletingRebalance: parked SyncGroups are told to rejoin.
        let sc = g.sync(&sync(&c, 2, &[]), 224);
        assert!(g.take_sync(sc).is_none());
        let (_td, _d) = join_new(&mut g, join(""), 225);
        assert_eq!(
            g.take_sync(sc).unwrap().error,
            Some(GroupErrorCode::RebalanceInProgress)
        );
        assert_eq!(state(&g), GroupState::PreparingRebalance);
    }

    /// A member that stops heartbeating is removed after its session timeout, and the
    /// others rebalance without it; a member that does not sync in time is removed too.
    #[test]
    fn session_expiry_removes_a_member_and_rebalances() {
        let mut g = ClassicGroups::default();
        let (ta, a) = join_new(&mut g, join(""), 0);
        let (tb, b) = join_new(&mut g, join(""), 0);
        // b arrived during the initial delay: it is extended once.
        g.tick_all(100);
        assert!(g.take_join(ta).is_none());
        g.tick_all(200);
        assert!(g.take_join(ta).is_some() && g.take_join(tb).is_some());
        let sa = g.sync(&sync(&a, 1, &[]), 200);
        let sb = g.sync(&sync(&b, 1, &[]), 200);
        assert!(g.take_sync(sa).is_some() && g.take_sync(sb).is_some());
        // b heartbeats; a goes silent. Sessions are 1000 ms, counted from the sync.
        for t in (300..=1100).step_by(100) {
            assert_eq!(g.heartbeat("g", &b, None, 1, t), None, "at {t}");
            g.tick_all(t);
        }
        g.tick_all(1199);
        assert!(g.groups["g"].members.contains_key(&a));
        g.tick_all(1200);
        assert!(!g.groups["g"].members.contains_key(&a), "a expired");
        assert_eq!(
            g.heartbeat("g", &b, None, 1, 1250),
            Some(GroupErrorCode::RebalanceInProgress)
        );
        let tb = g.join(&join(&b), 1260, SETTINGS, false);
        let rb = g.take_join(tb).expect("the only member rejoined");
        assert_eq!((rb.generation_id, rb.leader.as_str()), (2, b.as_str()));
        assert_eq!(rb.members.len(), 1);
        assert_eq!(
            g.heartbeat("g", &a, None, 1, 1270),
            Some(GroupErrorCode::UnknownMemberId)
        );
        // b keeps heartbeating but never syncs: it is removed at the rebalance timeout
        // (2000 ms after the join completed) and the group empties.
        for t in (1300..=3200).step_by(100) {
            assert_eq!(g.heartbeat("g", &b, None, 2, t), None, "at {t}");
            g.tick_all(t);
        }
        g.tick_all(3259);
        assert_eq!(state(&g), GroupState::CompletingRebalance);
        g.tick_all(3260);
        assert_eq!(state(&g), GroupState::Empty);
        assert_eq!(g.groups["g"].generation, 3);
    }

    /// A static member that restarts rejoins with its instance id and no member id: it gets
    /// a new member id and its old assignment without a rebalance; the old id is fenced.
    #[test]
    fn static_member_rejoins_and_keeps_its_assignment() {
        let mut g = ClassicGroups::default();
        let static_join = |instance: &str| GroupJoin {
            group_instance_id: Some(instance.to_owned()),
            ..join("")
        };
        let ta = g.join(&static_join("i-a"), 0, SETTINGS, false);
        let tb = g.join(&static_join("i-b"), 0, SETTINGS, false);
        g.tick_all(100);
        g.tick_all(200);
        let ra = g.take_join(ta).unwrap();
        let rb = g.take_join(tb).unwrap();
        assert!(ra.member_id.starts_with("i-a-"), "{}", ra.member_id);
        let (a, b) = (ra.member_id, rb.member_id);
        assert_eq!(ra.leader, a);
        let sa = g.sync(
            &GroupSync {
                group_instance_id: Some("i-a".into()),
                ..sync(&a, 1, &[(&a, b"A"), (&b, b"B")])
            },
            200,
        );
        assert!(g.take_sync(sa).is_some());
        // b restarts: same instance id, no member id.
        let t = g.join(&static_join("i-b"), 500, SETTINGS, false);
        let r = g.take_join(t).expect("no rebalance: answered at once");
        assert_eq!(r.error, None);
        assert_ne!(r.member_id, b);
        assert_eq!((r.generation_id, r.skip_assignment), (1, false));
        assert_eq!(state(&g), GroupState::Stable);
        let s = g.sync(
            &GroupSync {
                group_instance_id: Some("i-b".into()),
                ..sync(&r.member_id, 1, &[])
            },
            510,
        );
        assert_eq!(&g.take_sync(s).unwrap().assignment[..], b"B");
        // The old member id is fenced.
        assert_eq!(
            g.heartbeat("g", &b, Some("i-b"), 1, 520),
            Some(GroupErrorCode::FencedInstanceId)
        );
        assert_eq!(
            g.validate_offset_commit("g", &b, Some("i-b"), 1, 520),
            Some(Err(GroupErrorCode::FencedInstanceId))
        );
        // The static leader restarts: with JoinGroup v9 it is told to skip the assignment.
        let t = g.join(&static_join("i-a"), 600, SETTINGS, false);
        let r = g.take_join(t).unwrap();
        assert!(r.skip_assignment);
        assert_eq!(r.leader, r.member_id);
        assert_eq!(r.members.len(), 2);
        assert_eq!(state(&g), GroupState::Stable);
        // An administrative removal by instance id.
        let left = g.leave(
            "g",
            &[LeavingMember {
                member_id: String::new(),
                group_instance_id: Some("i-b".into()),
            }],
            700,
        );
        assert_eq!(left.members, vec![None]);
        assert_eq!(state(&g), GroupState::PreparingRebalance);
    }

    #[test]
    fn commits_check_the_generation_and_the_member() {
        let mut g = ClassicGroups::default();
        // No group: not known here (the caller decides).
        assert_eq!(g.validate_offset_commit("g", "", None, -1, 0), None);
        let (ta, a) = join_new(&mut g, join(""), 0);
        g.tick_all(100);
        g.take_join(ta).unwrap();
        let s = g.sync(&sync(&a, 1, &[]), 100);
        g.take_sync(s).unwrap();
        let check = |g: &mut ClassicGroups, member: &str, generation| {
            g.validate_offset_commit("g", member, None, generation, 200)
        };
        assert_eq!(check(&mut g, &a, 1), Some(Ok(())));
        assert_eq!(
            check(&mut g, &a, 2),
            Some(Err(GroupErrorCode::IllegalGeneration))
        );
        assert_eq!(
            check(&mut g, "stranger", 1),
            Some(Err(GroupErrorCode::UnknownMemberId))
        );
        // A consumer outside group management may not commit while the group has members.
        assert_eq!(
            check(&mut g, "", -1),
            Some(Err(GroupErrorCode::UnknownMemberId))
        );
        // After the last member leaves, it may.
        let left = g.leave(
            "g",
            &[LeavingMember {
                member_id: a.clone(),
                group_instance_id: None,
            }],
            300,
        );
        assert_eq!(
            left,
            GroupLeaveResult {
                error: None,
                members: vec![None]
            }
        );
        assert_eq!(state(&g), GroupState::Empty);
        assert_eq!(check(&mut g, "", -1), Some(Ok(())));
        assert_eq!(
            check(&mut g, &a, 2),
            Some(Err(GroupErrorCode::UnknownMemberId))
        );
    }

    #[test]
    fn joins_that_do_not_fit_are_refused() {
        let mut g = ClassicGroups::default();
        let answer = |g: &mut ClassicGroups, request: GroupJoin, embedded| {
            let t = g.join(&request, 0, SETTINGS, embedded);
            g.take_join(t).unwrap().error
        };
        assert_eq!(
            answer(
                &mut g,
                GroupJoin {
                    group_id: String::new(),
                    ..join("")
                },
                false
            ),
            Some(GroupErrorCode::InvalidGroupId)
        );
        assert_eq!(
            answer(
                &mut g,
                GroupJoin {
                    session_timeout_ms: 1,
                    ..join("")
                },
                false
            ),
            Some(GroupErrorCode::InvalidSessionTimeout)
        );
        assert_eq!(
            answer(&mut g, join(""), true),
            Some(GroupErrorCode::InconsistentGroupProtocol),
            "the embedded consumer uses the group"
        );
        assert_eq!(
            answer(&mut g, join("made-up"), false),
            Some(GroupErrorCode::UnknownMemberId)
        );
        let (_t, _a) = join_new(&mut g, join(""), 0);
        // Another protocol type, or no protocol in common.
        assert_eq!(
            answer(
                &mut g,
                GroupJoin {
                    protocol_type: "connect".into(),
                    ..join("")
                },
                false
            ),
            Some(GroupErrorCode::InconsistentGroupProtocol)
        );
        assert_eq!(
            answer(
                &mut g,
                GroupJoin {
                    protocols: vec![("sticky".into(), Bytes::new())],
                    ..join("")
                },
                false
            ),
            Some(GroupErrorCode::InconsistentGroupProtocol)
        );
        // Before version 4 a new member joins at once, without MEMBER_ID_REQUIRED.
        let t = g.join(
            &GroupJoin {
                require_known_member_id: false,
                ..join("")
            },
            0,
            SETTINGS,
            false,
        );
        assert!(g.take_join(t).is_none(), "parked until the join completes");
    }

    #[test]
    fn protocol_selection_votes_among_common_protocols() {
        let mut g = ClassicGroups::default();
        let with = |names: &[&str]| GroupJoin {
            protocols: names
                .iter()
                .map(|n| ((*n).to_owned(), Bytes::from(n.to_string())))
                .collect(),
            ..join("")
        };
        let (t1, _) = join_new(&mut g, with(&["sticky", "range", "roundrobin"]), 0);
        let (t2, _) = join_new(&mut g, with(&["roundrobin", "range"]), 0);
        let (t3, _) = join_new(&mut g, with(&["range", "roundrobin"]), 0);
        g.tick_all(100);
        g.tick_all(200);
        // "sticky" is not common to all: member 1 votes range (its first common choice),
        // member 2 roundrobin, member 3 range.
        let r = g.take_join(t1).unwrap();
        assert_eq!(r.protocol_name.as_deref(), Some("range"));
        assert!(r.members.iter().all(|m| &m.metadata[..] == b"range"));
        assert!(g.take_join(t2).is_some() && g.take_join(t3).is_some());
    }

    #[test]
    fn abandoned_tickets_leave_nothing_behind() {
        let mut g = ClassicGroups::default();
        let (ta, _a) = join_new(&mut g, join(""), 0);
        g.abandon(ta);
        g.tick_all(100);
        assert!(g.take_join(ta).is_none());
        assert!(g.join_waiters.is_empty() && g.sync_waiters.is_empty());
        // The member is still in the group, as in Kafka, until its session ends.
        assert_eq!(state(&g), GroupState::CompletingRebalance);
        g.tick_all(1099);
        assert_eq!(state(&g), GroupState::CompletingRebalance);
        g.tick_all(1100);
        assert_eq!(state(&g), GroupState::Empty);
        g.sweep(|_| false);
        assert!(g.groups.is_empty());
    }
}
