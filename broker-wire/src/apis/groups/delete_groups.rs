//! DeleteGroups: deletes empty groups and their committed offsets.

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use super::{broker_error_code, text};
use crate::context::Context;

pub(crate) async fn respond(
    context: &Context,
    request: DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(request.groups_names.len());
    for group_id in request.groups_names {
        let group = text(&group_id.0);
        // NON_EMPTY_GROUP while it has members, GROUP_ID_NOT_FOUND when unknown.
        let error = match context.broker.delete_group(&group).await {
            Ok(()) => 0,
            Err(e) => broker_error_code("DeleteGroups", &group, &e),
        };
        results.push(
            DeletableGroupResult::default()
                .with_group_id(group_id)
                .with_error_code(error),
        );
    }
    DeleteGroupsResponse::default().with_results(results)
}
