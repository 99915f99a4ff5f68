//! DescribeGroups: a group's state, protocol and members, with each member's metadata and
//! assignment (the embedded consumer's members get them encoded in the consumer protocol's
//! layout, so that Kafka's tools can read them).

use broker_embedded::{BrokerError, GroupDescription, GroupState, MemberDescription};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedPartitions;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, DescribeGroupsRequest,
    DescribeGroupsResponse, GroupId, TopicName,
};
use kafka_protocol::protocol::Encodable;

use super::{broker_error_code, str_bytes, text, GROUP_ID_NOT_FOUND};
use crate::context::Context;

/// The operations allowed on a group without an authorizer: READ, DELETE, DESCRIBE,
/// DESCRIBE_CONFIGS and ALTER_CONFIGS, as bits of Kafka's ACL operation codes.
const GROUP_OPERATIONS: i32 = (1 << 3) | (1 << 6) | (1 << 8) | (1 << 10) | (1 << 11);

/// `value` encoded as Kafka's consumer protocol does: a version, then the fields.
fn consumer_protocol(value: &impl Encodable) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    if value.encode(&mut buf, 0).is_err() {
        return Bytes::new();
    }
    buf.freeze()
}

/// An embedded consumer's subscription and assignment as a Kafka consumer's.
fn embedded_member_data(member: &MemberDescription) -> (Bytes, Bytes) {
    let subscription = ConsumerProtocolSubscription::default().with_topics(
        member
            .subscription
            .iter()
            .map(|t| str_bytes(t.clone()))
            .collect(),
    );
    let mut by_topic: Vec<AssignedPartitions> = Vec::new();
    for tp in &member.assignment {
        match by_topic.last_mut() {
            Some(last) if last.topic.0.as_str() == tp.topic => {
                last.partitions.push(tp.partition as i32)
            }
            _ => by_topic.push(
                AssignedPartitions::default()
                    .with_topic(TopicName(str_bytes(tp.topic.clone())))
                    .with_partitions(vec![tp.partition as i32]),
            ),
        }
    }
    let assignment = ConsumerProtocolAssignment::default().with_assigned_partitions(by_topic);
    (
        consumer_protocol(&subscription),
        consumer_protocol(&assignment),
    )
}

fn described(description: GroupDescription, authorized_operations: i32) -> DescribedGroup {
    // Kafka shows the protocol and the members' metadata only for a stable group.
    let stable = description.state == GroupState::Stable;
    let members = description
        .members
        .iter()
        .map(|m| {
            let (metadata, assignment) = match (&m.protocol_metadata, &m.protocol_assignment) {
                (Some(metadata), Some(assignment)) => (metadata.clone(), assignment.clone()),
                _ => embedded_member_data(m),
            };
            DescribedGroupMember::default()
                .with_member_id(str_bytes(m.member_id.clone()))
                .with_group_instance_id(m.group_instance_id.clone().map(str_bytes))
                .with_client_id(str_bytes(m.client_id.clone()))
                .with_client_host(str_bytes(m.client_host.clone()))
                .with_member_metadata(if stable { metadata } else { Bytes::new() })
                .with_member_assignment(assignment)
        })
        .collect();
    DescribedGroup::default()
        .with_group_id(GroupId(str_bytes(description.group_id)))
        .with_group_state(str_bytes(description.state.to_string()))
        .with_protocol_type(str_bytes(description.protocol_type))
        .with_protocol_data(str_bytes(if stable {
            description.protocol.unwrap_or_default()
        } else {
            String::new()
        }))
        .with_members(members)
        .with_authorized_operations(authorized_operations)
}

pub(crate) async fn respond(
    context: &Context,
    request: DescribeGroupsRequest,
    version: i16,
) -> DescribeGroupsResponse {
    let authorized_operations = if version >= 3 && request.include_authorized_operations {
        GROUP_OPERATIONS
    } else {
        i32::MIN
    };
    let mut groups = Vec::with_capacity(request.groups.len());
    for group_id in request.groups {
        let group = text(&group_id.0);
        let answer = match context.broker.describe_group(&group).await {
            Ok(description) => described(description, authorized_operations),
            // Kafka describes an unknown group as a dead one; version 6 says it is not found.
            Err(BrokerError::GroupIdNotFound { .. }) => {
                let dead = DescribedGroup::default()
                    .with_group_id(group_id)
                    .with_group_state(str_bytes("Dead"))
                    .with_authorized_operations(authorized_operations);
                if version >= 6 {
                    dead.with_error_code(GROUP_ID_NOT_FOUND)
                        .with_error_message(Some(str_bytes(format!("group {group} not found"))))
                } else {
                    dead
                }
            }
            Err(e) => DescribedGroup::default()
                .with_group_id(group_id)
                .with_error_code(broker_error_code("DescribeGroups", &group, &e))
                .with_authorized_operations(authorized_operations),
        };
        groups.push(answer);
    }
    DescribeGroupsResponse::default().with_groups(groups)
}
