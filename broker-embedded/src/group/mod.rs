//! Consumer groups: the group coordinator inside the broker, the partition assignors, and
//! committed offsets in the internal compacted topic `__consumer_offsets`.
//!
//! One coordinator serves every consumer of a [`Broker`](crate::Broker), on any task or
//! thread. The protocol follows Kafka's: members join with a subscription and get a member id
//! and a generation; the coordinator assigns partitions with the group's
//! [`AssignmentStrategy`] (`range` with the eager protocol, `cooperative-sticky` with the
//! incremental cooperative protocol); a member that leaves, or that is silent for
//! `session.timeout.ms` (or does not poll for `max.poll.interval.ms`), starts a rebalance of
//! the others; a commit from a stale generation is refused with
//! [`BrokerError::CommitFailed`](crate::BrokerError::CommitFailed).
//!
//! The same coordinator serves Kafka's own clients over the wire protocol with Kafka's
//! classic group protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup: the clients assign
//! partitions themselves), through [`Broker::join_group`](crate::Broker::join_group) and
//! its siblings. A group id is used by one kind of member at a time: the other kind is
//! refused with `INCONSISTENT_GROUP_PROTOCOL`
//! ([`BrokerError::InconsistentGroupProtocol`](crate::BrokerError::InconsistentGroupProtocol)
//! for the embedded consumer). Both kinds share the committed offsets, their storage and
//! the admin calls (list, describe, reset, delete).
//!
//! Committed offsets are records of `__consumer_offsets` (created when the broker opens,
//! [`OFFSETS_TOPIC_PARTITIONS`] partitions, `cleanup.policy=compact`); a group's records live
//! in partition [`offsets_partition_for`]`(group)`. The broker rebuilds its cache of them by
//! reading the topic when it opens, so they survive a restart. An offset commit is a commit
//! point of the partition it was written to (fsynced under the default `log.flush.policy`).

mod admin;
mod assignor;
mod classic;
pub(crate) mod classic_api;
mod classic_group;
mod classic_types;
mod codec;
pub mod consumer_protocol;
mod coordinator;
mod state;

pub(crate) use admin::validate_group_id;
pub use assignor::AssignmentStrategy;
pub use classic_types::{
    FetchedOffset, GroupErrorCode, GroupJoin, GroupJoinResult, GroupLeaveResult, GroupOffsetCommit,
    GroupOffsetDeleteResult, GroupSync, GroupSyncResult, JoinedMember, LeavingMember,
};
pub(crate) use coordinator::{offsets_commit_point, GroupCoordinator};
pub(crate) use state::{Heartbeat, JoinRequest};

use bytes::Bytes;

use crate::TopicPartition;

/// The internal topic that holds committed offsets.
pub const CONSUMER_OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Partitions of `__consumer_offsets` when the broker creates it (Kafka's
/// `offsets.topic.num.partitions` defaults to 50; an embedded broker has far fewer groups, so
/// it uses 10). An existing topic keeps the count it was created with.
pub const OFFSETS_TOPIC_PARTITIONS: u32 = 10;

/// `offset.metadata.max.bytes`: the longest metadata string a commit may carry (Kafka's
/// default).
pub const OFFSET_METADATA_MAX_BYTES: usize = 4096;

/// Java's `String.hashCode`: `s[0]*31^(n-1) + ... + s[n-1]` over UTF-16 code units, with
/// 32-bit wrapping arithmetic.
pub fn java_string_hash_code(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// The `__consumer_offsets` partition of a group, as Kafka computes it:
/// `Utils.abs(groupId.hashCode()) % partitions`, where `Utils.abs(Integer.MIN_VALUE)` is 0.
pub fn offsets_partition_for(group_id: &str, partitions: u32) -> u32 {
    let hash = java_string_hash_code(group_id);
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    (abs as u32) % partitions.max(1)
}

/// A group's state, with Kafka's names.
///
/// For the embedded consumer's groups the coordinator computes the assignment as soon as
/// the last member has joined, so `CompletingRebalance` (waiting for the leader's
/// `SyncGroup`) occurs only in groups of Kafka's classic protocol; a group that is not
/// known is an error ([`BrokerError::GroupIdNotFound`]), not `Dead`.
///
/// [`BrokerError::GroupIdNotFound`]: crate::BrokerError::GroupIdNotFound
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GroupState {
    /// No members; committed offsets may exist.
    Empty,
    /// A rebalance is in progress: members are (re)joining.
    PreparingRebalance,
    /// Every member has joined; the group waits for the leader's assignment (classic
    /// protocol only).
    CompletingRebalance,
    /// Every member has its partitions for the current generation.
    Stable,
}

impl std::fmt::Display for GroupState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
        })
    }
}

/// A committed offset with its metadata string (Kafka's `OffsetAndMetadata`). The offset is
/// the next record to consume, not the last one consumed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OffsetAndMetadata {
    /// The next offset to consume.
    pub offset: u64,
    /// Free-form metadata stored with the offset (at most [`OFFSET_METADATA_MAX_BYTES`]).
    pub metadata: String,
}

impl OffsetAndMetadata {
    /// An offset with empty metadata.
    pub fn new(offset: u64) -> Self {
        OffsetAndMetadata {
            offset,
            metadata: String::new(),
        }
    }

    /// An offset with metadata.
    pub fn with_metadata(offset: u64, metadata: impl Into<String>) -> Self {
        OffsetAndMetadata {
            offset,
            metadata: metadata.into(),
        }
    }
}

/// A consumer's group identity (Kafka's `ConsumerGroupMetadata`): what a commit is checked
/// against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupMetadata {
    /// `group.id`.
    pub group_id: String,
    /// The generation of the consumer's assignment; -1 outside group management.
    pub generation_id: i32,
    /// The member id; empty outside group management or before the first join.
    pub member_id: String,
}

/// A group as [`Broker::list_groups`](crate::Broker::list_groups) shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// `group.id`.
    pub group_id: String,
    /// Its state.
    pub state: GroupState,
    /// How many members it has.
    pub members: usize,
    /// Its protocol type: `consumer` for the embedded consumer's groups, the clients'
    /// protocol type for groups of Kafka's classic protocol, empty for a group that only
    /// has committed offsets.
    pub protocol_type: String,
}

/// A member as [`Broker::describe_group`](crate::Broker::describe_group) shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    /// The member id.
    pub member_id: String,
    /// The generation its assignment belongs to (-1 before its first).
    pub generation: i32,
    /// Its partitions in that generation.
    pub assignment: Vec<TopicPartition>,
    /// The topics it subscribes to.
    pub subscription: Vec<String>,
    /// `group.instance.id` of a static member (classic protocol).
    pub group_instance_id: Option<String>,
    /// The client's `client.id` (classic protocol; empty for the embedded consumer).
    pub client_id: String,
    /// The client's address, as Kafka shows it (`/127.0.0.1`; empty for the embedded
    /// consumer).
    pub client_host: String,
    /// Kafka's classic protocol: the member's metadata for the group's protocol, as the
    /// client encoded it (`subscription` is read from it when the protocol type is
    /// `consumer`). `None` for the embedded consumer.
    pub protocol_metadata: Option<Bytes>,
    /// Kafka's classic protocol: the member's assignment, as the leader encoded it
    /// (`assignment` is read from it when the protocol type is `consumer`). `None` for the
    /// embedded consumer.
    pub protocol_assignment: Option<Bytes>,
}

/// One partition of a group as [`Broker::describe_group`](crate::Broker::describe_group)
/// shows it (a row of `kafka-consumer-groups --describe`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupPartitionDescription {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: u32,
    /// The group's committed offset, if any.
    pub committed_offset: Option<u64>,
    /// The metadata committed with it.
    pub metadata: Option<String>,
    /// The partition's log end offset; `None` if the topic no longer exists.
    pub log_end_offset: Option<u64>,
    /// `log end offset - committed offset` (0 if the committed offset is past the end);
    /// `None` without a committed offset or a log end offset.
    pub lag: Option<u64>,
    /// The member the partition is assigned to in the current generation, if any.
    pub member_id: Option<String>,
}

/// A group as [`Broker::describe_group`](crate::Broker::describe_group) shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// `group.id`.
    pub group_id: String,
    /// Its state.
    pub state: GroupState,
    /// The current generation (0 for a group that never rebalanced).
    pub generation: i32,
    /// The assignment strategy in use, if the group has members (embedded consumer).
    pub strategy: Option<AssignmentStrategy>,
    /// The protocol type (see [`GroupListing::protocol_type`]).
    pub protocol_type: String,
    /// The protocol in use, if the group has members: the strategy's name for the
    /// embedded consumer, the selected protocol for Kafka's classic protocol.
    pub protocol: Option<String>,
    /// The member chosen as leader, if any.
    pub leader: Option<String>,
    /// Members, by member id.
    pub members: Vec<MemberDescription>,
    /// Every partition the group has a committed offset for or has assigned, sorted.
    pub partitions: Vec<GroupPartitionDescription>,
}

/// Where [`Broker::reset_offsets`](crate::Broker::reset_offsets) moves a group's committed
/// offsets (the options of `kafka-consumer-groups --reset-offsets`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetResetSpec {
    /// `--to-earliest`: the log start offset.
    ToEarliest,
    /// `--to-latest`: the log end offset.
    ToLatest,
    /// `--to-offset N`, clamped to `[log start, log end]`.
    ToOffset(u64),
    /// `--shift-by N`: the committed offset plus `N` (negative moves back), clamped to
    /// `[log start, log end]`. A partition without a committed offset is an error.
    ShiftBy(i64),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_hash_codes() {
        assert_eq!(java_string_hash_code(""), 0);
        assert_eq!(java_string_hash_code("a"), 97);
        assert_eq!(java_string_hash_code("hello"), 99_162_322);
        assert_eq!(java_string_hash_code("my-group"), -1_906_497_762);
        // Outside the BMP: two UTF-16 code units, as Java sees them.
        assert_eq!(java_string_hash_code("\u{1F600}"), 1_772_899);
        // The famous string whose hash code is Integer.MIN_VALUE.
        assert_eq!(java_string_hash_code("polygenelubricants"), i32::MIN);
    }

    #[test]
    fn offsets_partition_follows_kafka() {
        assert_eq!(offsets_partition_for("polygenelubricants", 50), 0);
        assert_eq!(offsets_partition_for("hello", 50), 99_162_322 % 50);
        // A negative hash code is made positive with abs (1906497762), not by masking the
        // sign bit (which would give 240985886).
        assert_eq!(offsets_partition_for("my-group", 50), 12);
        for g in ["", "a", "group-1", "group-2", "\u{e9}t\u{e9}"] {
            assert!(offsets_partition_for(g, OFFSETS_TOPIC_PARTITIONS) < OFFSETS_TOPIC_PARTITIONS);
        }
    }
}
