//! LeaveGroup: members leave at once (one member id before version 3, a batch of members,
//! static ones by instance id, from version 3).

use broker_embedded::LeavingMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

use super::{broker_error_code, code, text};
use crate::context::Context;

pub(crate) async fn respond(
    context: &Context,
    request: LeaveGroupRequest,
    version: i16,
) -> LeaveGroupResponse {
    let group = text(&request.group_id.0);
    let leaving: Vec<LeavingMember> = if version < 3 {
        vec![LeavingMember {
            member_id: text(&request.member_id),
            group_instance_id: None,
        }]
    } else {
        request
            .members
            .iter()
            .map(|m| LeavingMember {
                member_id: text(&m.member_id),
                group_instance_id: m.group_instance_id.as_ref().map(text),
            })
            .collect()
    };
    let result = match context.broker.leave_group(&group, &leaving).await {
        Ok(result) => result,
        Err(e) => {
            return LeaveGroupResponse::default().with_error_code(broker_error_code(
                "LeaveGroup",
                &group,
                &e,
            ))
        }
    };
    if version < 3 {
        // One member: its outcome is the answer's.
        let error = result
            .error
            .or_else(|| result.members.iter().flatten().next().copied());
        return LeaveGroupResponse::default().with_error_code(code(error));
    }
    let members = request
        .members
        .into_iter()
        .zip(result.members)
        .map(|(m, error)| {
            MemberResponse::default()
                .with_member_id(m.member_id)
                .with_group_instance_id(m.group_instance_id)
                .with_error_code(code(error))
        })
        .collect();
    LeaveGroupResponse::default()
        .with_error_code(code(result.error))
        .with_members(members)
}
