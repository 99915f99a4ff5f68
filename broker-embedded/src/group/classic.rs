//! Kafka's classic group protocol, as Kafka's own clients (the Java consumer, librdkafka,
//! kafka-python, kafkajs) speak it: every classic group of a broker, the requests made to
//! them (checked as Kafka's coordinator checks them), and the JoinGroups and SyncGroups
//! parked until a rebalance step completes. Free of I/O and locks; time is passed in, so
//! every transition is testable without waiting. One group's transitions are in
//! `classic_group.rs`.
//!
//! A JoinGroup or SyncGroup that has to wait is parked under a ticket: its answer is
//! delivered to the ticket later, and the caller takes it from there. A caller that goes
//! away abandons its ticket; an answer delivered to it later is dropped.

use std::collections::{BTreeMap, HashMap};

use super::classic_group::{ClassicGroup, Outbox, Ticket};
use super::classic_types::{
    GroupErrorCode, GroupJoin, GroupJoinResult, GroupLeaveResult, GroupSync, GroupSyncResult,
    LeavingMember,
};

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
        group.join(
            join,
            new_id,
            settings.initial_rebalance_delay_ms,
            ticket,
            now,
            out,
        );
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
        group.sync(sync, ticket, now, out);
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
        group.heartbeat(member_id, instance_id, generation, now)
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
        let results = group.leave(members, now, &mut out);
        self.flush(out);
        GroupLeaveResult {
            error: None,
            members: results,
        }
    }

    /// Kafka's check of a TxnOffsetCommit against the classic group `group_id`; `None` when
    /// there is no such group.
    pub(crate) fn validate_txn_offset_commit(
        &mut self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: i64,
    ) -> Option<Result<(), GroupErrorCode>> {
        let group = self.ticked(group_id, now)?;
        Some(group.validate_txn_offset_commit(member_id, instance_id, generation, now))
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
        let group = self.ticked(group_id, now)?;
        Some(group.validate_offset_commit(member_id, instance_id, generation, now))
    }

    /// The group `group_id` with its timers run up to `now` (expired members removed, a
    /// rebalance completed), for a check that must see its current state.
    fn ticked(&mut self, group_id: &str, now: i64) -> Option<&mut ClassicGroup> {
        let mut out = Outbox::default();
        self.tick_group(group_id, now, &mut out);
        self.flush(out);
        self.groups.get_mut(group_id)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::group::GroupState;

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
        assert!(g.groups["g"].has_member(&a));
        g.tick_all(1200);
        assert!(!g.groups["g"].has_member(&a), "a expired");
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
