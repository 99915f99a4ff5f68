//! JoinGroup: a member joins a group, waiting (on its connection only) until the join phase
//! completes; the leader gets every member's metadata.

use std::net::SocketAddr;

use broker_embedded::GroupJoin;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse, RequestHeader};

use super::{broker_error_code, code, str_bytes, text};
use crate::context::Context;

pub(crate) async fn respond(
    context: &Context,
    header: &RequestHeader,
    peer: SocketAddr,
    request: JoinGroupRequest,
    version: i16,
) -> JoinGroupResponse {
    let group = text(&request.group_id.0);
    let join = GroupJoin {
        group_id: group.clone(),
        member_id: text(&request.member_id),
        group_instance_id: request.group_instance_id.as_ref().map(text),
        protocol_type: text(&request.protocol_type),
        protocols: request
            .protocols
            .into_iter()
            .map(|p| (text(&p.name), p.metadata))
            .collect(),
        session_timeout_ms: request.session_timeout_ms,
        // Version 0 has no rebalance timeout: the session timeout serves as one.
        rebalance_timeout_ms: if version == 0 {
            request.session_timeout_ms
        } else {
            request.rebalance_timeout_ms
        },
        client_id: header.client_id.as_ref().map(text).unwrap_or_default(),
        client_host: format!("/{}", peer.ip()),
        require_known_member_id: version >= 4,
        supports_skip_assignment: version >= 9,
    };
    let result = match context.broker.join_group(join).await {
        Ok(result) => result,
        Err(e) => {
            return JoinGroupResponse::default()
                .with_error_code(broker_error_code("JoinGroup", &group, &e))
                .with_generation_id(-1)
                .with_protocol_name((version < 7).then(Default::default))
                .with_member_id(request.member_id)
        }
    };
    // Before version 7 the protocol name cannot be null.
    let protocol_name = match result.protocol_name {
        Some(name) => Some(str_bytes(name)),
        None if version < 7 => Some(Default::default()),
        None => None,
    };
    JoinGroupResponse::default()
        .with_error_code(code(result.error))
        .with_generation_id(result.generation_id)
        .with_protocol_type(result.protocol_type.map(str_bytes))
        .with_protocol_name(protocol_name)
        .with_leader(str_bytes(result.leader))
        .with_skip_assignment(version >= 9 && result.skip_assignment)
        .with_member_id(str_bytes(result.member_id))
        .with_members(
            result
                .members
                .into_iter()
                .map(|m| {
                    JoinGroupResponseMember::default()
                        .with_member_id(str_bytes(m.member_id))
                        .with_group_instance_id(m.group_instance_id.map(str_bytes))
                        .with_metadata(m.metadata)
                })
                .collect(),
        )
}
