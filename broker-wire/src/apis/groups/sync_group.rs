//! SyncGroup: the leader hands out the assignment; every member gets its own, waiting (on its
//! connection only) for the leader's if needed.

use broker_embedded::GroupSync;
use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};

use super::{broker_error_code, code, str_bytes, text};
use crate::context::Context;

pub(crate) async fn respond(context: &Context, request: SyncGroupRequest) -> SyncGroupResponse {
    let group = text(&request.group_id.0);
    let sync = GroupSync {
        group_id: group.clone(),
        member_id: text(&request.member_id),
        group_instance_id: request.group_instance_id.as_ref().map(text),
        generation_id: request.generation_id,
        protocol_type: request.protocol_type.as_ref().map(text),
        protocol_name: request.protocol_name.as_ref().map(text),
        assignments: request
            .assignments
            .into_iter()
            .map(|a| (text(&a.member_id), a.assignment))
            .collect(),
    };
    match context.broker.sync_group(sync).await {
        Ok(result) => SyncGroupResponse::default()
            .with_error_code(code(result.error))
            .with_protocol_type(result.protocol_type.map(str_bytes))
            .with_protocol_name(result.protocol_name.map(str_bytes))
            .with_assignment(result.assignment),
        Err(e) => {
            SyncGroupResponse::default().with_error_code(broker_error_code("SyncGroup", &group, &e))
        }
    }
}
