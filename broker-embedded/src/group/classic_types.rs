//! What Kafka's classic group protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup and the
//! offset APIs, as Kafka's own clients speak it) asks of the coordinator and what it
//! answers: the requests and results of the `Broker` calls that serve it, and the error
//! codes the protocol answers with.

use bytes::Bytes;

use crate::TopicPartition;

/// An outcome of the classic group protocol that is not a success, with Kafka's name and
/// error code. These are answers to a client, not failures of the broker (those are
/// [`BrokerError`](crate::BrokerError)s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[repr(i16)]
pub enum GroupErrorCode {
    /// `UNKNOWN_TOPIC_OR_PARTITION`: an offset commit names a partition that does not exist.
    UnknownTopicOrPartition = 3,
    /// `OFFSET_METADATA_TOO_LARGE`: the metadata of a commit is above
    /// `offset.metadata.max.bytes`.
    OffsetMetadataTooLarge = 12,
    /// `COORDINATOR_NOT_AVAILABLE`: the coordinator cannot serve the group now.
    CoordinatorNotAvailable = 15,
    /// `ILLEGAL_GENERATION`: the request's generation is not the group's.
    IllegalGeneration = 22,
    /// `INCONSISTENT_GROUP_PROTOCOL`: the member's protocol type or protocols do not fit the
    /// group's (or the group is used by the embedded consumer).
    InconsistentGroupProtocol = 23,
    /// `INVALID_GROUP_ID`: an empty group id where one is needed.
    InvalidGroupId = 24,
    /// `UNKNOWN_MEMBER_ID`: the member is not in the group.
    UnknownMemberId = 25,
    /// `INVALID_SESSION_TIMEOUT`: the session timeout is outside
    /// `[group.min.session.timeout.ms, group.max.session.timeout.ms]`.
    InvalidSessionTimeout = 26,
    /// `REBALANCE_IN_PROGRESS`: the group is rebalancing; the member has to rejoin.
    RebalanceInProgress = 27,
    /// `INVALID_COMMIT_OFFSET_SIZE`: a committed offset that cannot be stored (negative).
    InvalidCommitOffsetSize = 28,
    /// `NON_EMPTY_GROUP`: the group has members.
    NonEmptyGroup = 68,
    /// `GROUP_ID_NOT_FOUND`: the group does not exist.
    GroupIdNotFound = 69,
    /// `MEMBER_ID_REQUIRED`: a new member must join again with the member id it was given.
    MemberIdRequired = 79,
    /// `FENCED_INSTANCE_ID`: another member id holds this static member's
    /// `group.instance.id` now.
    FencedInstanceId = 82,
    /// `GROUP_SUBSCRIBED_TO_TOPIC`: offsets of a topic the group consumes cannot be deleted.
    GroupSubscribedToTopic = 86,
    /// `UNSTABLE_OFFSET_COMMIT`: a transactional offset commit of the partition is pending.
    UnstableOffsetCommit = 88,
}

impl GroupErrorCode {
    /// Kafka's numeric error code.
    pub fn code(self) -> i16 {
        self as i16
    }
}

/// A JoinGroup: a member joining or rejoining a classic group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupJoin {
    /// `group.id`.
    pub group_id: String,
    /// The member id; empty for a member that has none yet.
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub group_instance_id: Option<String>,
    /// The protocol type (`consumer` for Kafka's consumers).
    pub protocol_type: String,
    /// The protocols the member supports, most preferred first: name and metadata (for a
    /// consumer, the assignor's name and the member's subscription).
    pub protocols: Vec<(String, Bytes)>,
    /// `session.timeout.ms`.
    pub session_timeout_ms: i32,
    /// The rebalance timeout (`max.poll.interval.ms` for a consumer).
    pub rebalance_timeout_ms: i32,
    /// The client's `client.id`.
    pub client_id: String,
    /// The client's address, as Kafka shows it (`/127.0.0.1`).
    pub client_host: String,
    /// A new dynamic member gets `MEMBER_ID_REQUIRED` and a member id, and joins again with
    /// it (JoinGroup version 4 and later).
    pub require_known_member_id: bool,
    /// The leader of a static group may be told to skip the assignment (JoinGroup version
    /// 9 and later).
    pub supports_skip_assignment: bool,
}

/// A member as the leader sees it in its JoinGroup result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedMember {
    /// The member id.
    pub member_id: String,
    /// Its `group.instance.id`.
    pub group_instance_id: Option<String>,
    /// Its metadata for the selected protocol.
    pub metadata: Bytes,
}

/// What a JoinGroup answers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupJoinResult {
    /// The error, if the join failed.
    pub error: Option<GroupErrorCode>,
    /// The generation the member joined (-1 on error).
    pub generation_id: i32,
    /// The group's protocol type.
    pub protocol_type: Option<String>,
    /// The selected protocol.
    pub protocol_name: Option<String>,
    /// The leader's member id.
    pub leader: String,
    /// The leader need not assign (a static leader that rejoined a stable group).
    pub skip_assignment: bool,
    /// The member's id (new for a member that joined without one).
    pub member_id: String,
    /// Every member with its metadata, for the leader; empty for the others.
    pub members: Vec<JoinedMember>,
}

impl GroupJoinResult {
    pub(crate) fn error(error: GroupErrorCode, member_id: impl Into<String>) -> Self {
        GroupJoinResult {
            error: Some(error),
            generation_id: -1,
            member_id: member_id.into(),
            ..GroupJoinResult::default()
        }
    }
}

/// A SyncGroup: a member asking for its assignment, the leader handing out everyone's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSync {
    /// `group.id`.
    pub group_id: String,
    /// The member id.
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub group_instance_id: Option<String>,
    /// The generation the member joined.
    pub generation_id: i32,
    /// The protocol type, checked against the group's when given.
    pub protocol_type: Option<String>,
    /// The protocol name, checked against the group's when given.
    pub protocol_name: Option<String>,
    /// From the leader: each member's assignment.
    pub assignments: Vec<(String, Bytes)>,
}

/// What a SyncGroup answers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupSyncResult {
    /// The error, if the sync failed.
    pub error: Option<GroupErrorCode>,
    /// The group's protocol type.
    pub protocol_type: Option<String>,
    /// The group's protocol.
    pub protocol_name: Option<String>,
    /// The member's assignment, as the leader encoded it.
    pub assignment: Bytes,
}

impl GroupSyncResult {
    pub(crate) fn error(error: GroupErrorCode) -> Self {
        GroupSyncResult {
            error: Some(error),
            ..GroupSyncResult::default()
        }
    }
}

/// A member leaving (LeaveGroup): by member id, or a static member by its instance id with
/// an empty member id (an administrative removal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeavingMember {
    /// The member id; empty to name a static member by instance id alone.
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub group_instance_id: Option<String>,
}

/// What a LeaveGroup answers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupLeaveResult {
    /// An error of the whole request (an unknown group).
    pub error: Option<GroupErrorCode>,
    /// Each member's outcome, in the order asked.
    pub members: Vec<Option<GroupErrorCode>>,
}

/// An OffsetCommit of Kafka's protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupOffsetCommit {
    /// `group.id` (may be empty, as Kafka allows for commits).
    pub group_id: String,
    /// The committing member; empty for a consumer outside group management.
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub group_instance_id: Option<String>,
    /// The member's generation; -1 for a consumer outside group management.
    pub generation_id: i32,
    /// The offsets, each with its metadata. `None` stands for a negative offset, which
    /// removes the partition's committed offset: Kafka keeps any offset, and its clients
    /// (the Java client, kafkajs, franz-go) read a negative committed offset as none.
    pub offsets: Vec<(TopicPartition, Option<crate::OffsetAndMetadata>)>,
    /// The OffsetCommit version is 9 or later: an unknown group is `GROUP_ID_NOT_FOUND`
    /// rather than `ILLEGAL_GENERATION`.
    pub group_id_not_found_error: bool,
}

/// One partition of an OffsetFetch answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedOffset {
    /// The partition.
    pub partition: TopicPartition,
    /// The committed offset, if any.
    pub offset: Option<crate::OffsetAndMetadata>,
    /// `UNSTABLE_OFFSET_COMMIT` when the fetch required stable offsets and a transactional
    /// commit of this partition is pending.
    pub error: Option<GroupErrorCode>,
}

/// What an OffsetDelete answers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupOffsetDeleteResult {
    /// An error of the whole request (`GROUP_ID_NOT_FOUND`, `NON_EMPTY_GROUP`).
    pub error: Option<GroupErrorCode>,
    /// Each partition's outcome, in the order asked.
    pub partitions: Vec<(TopicPartition, Option<GroupErrorCode>)>,
}
