//! Consumer groups as Kafka's clients use them: the classic group protocol (JoinGroup,
//! SyncGroup, Heartbeat, LeaveGroup, with the assignment computed by the group's leader), the
//! offset APIs (OffsetCommit, OffsetFetch, OffsetDelete) and the group admin APIs
//! (ListGroups, DescribeGroups, DeleteGroups). The broker is the coordinator; these handlers
//! only translate between Kafka's messages and its calls.

pub(super) mod delete_groups;
pub(super) mod describe_groups;
pub(super) mod heartbeat;
pub(super) mod join_group;
pub(super) mod leave_group;
pub(super) mod list_groups;
pub(super) mod offset_commit;
pub(super) mod offset_delete;
pub(super) mod offset_fetch;
pub(super) mod sync_group;

use broker_embedded::{BrokerError, GroupErrorCode};
use kafka_protocol::protocol::StrBytes;
use tracing::warn;

/// Kafka's error codes used by more than one of these APIs.
pub(super) const UNKNOWN_SERVER_ERROR: i16 = -1;
pub(super) const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
pub(super) const COORDINATOR_NOT_AVAILABLE: i16 = 15;
pub(super) const NON_EMPTY_GROUP: i16 = 68;
pub(super) const GROUP_ID_NOT_FOUND: i16 = 69;

/// The code of a protocol outcome, 0 for none.
pub(super) fn code(error: Option<GroupErrorCode>) -> i16 {
    error.map_or(0, GroupErrorCode::code)
}

/// The code a client gets when the broker failed: `COORDINATOR_NOT_AVAILABLE` while the
/// coordinator cannot serve the group (the broker is closing, the group's offsets partition
/// is offline), so that the client retries; `UNKNOWN_SERVER_ERROR` otherwise.
pub(super) fn broker_error_code(api: &str, group: &str, error: &BrokerError) -> i16 {
    match error {
        BrokerError::Closed | BrokerError::GroupOffsetsOffline { .. } => COORDINATOR_NOT_AVAILABLE,
        BrokerError::GroupNotEmpty { .. } => NON_EMPTY_GROUP,
        BrokerError::GroupIdNotFound { .. } => GROUP_ID_NOT_FOUND,
        other => {
            warn!(api, group, error = %other, "a group request failed");
            UNKNOWN_SERVER_ERROR
        }
    }
}

/// A protocol string as Rust's.
pub(super) fn text(s: &StrBytes) -> String {
    s.as_str().to_owned()
}

/// A Rust string as a protocol string.
pub(super) fn str_bytes(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}
