//! ListGroups: every group, of the embedded consumer and of Kafka clients alike, with the
//! state filter of version 4 and the type filter of version 5.

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};

use super::{broker_error_code, str_bytes};
use crate::context::Context;

/// The group type of every group here: the classic protocol's groups (the embedded
/// consumer's groups are answered through the classic APIs too).
const GROUP_TYPE: &str = "classic";

pub(crate) async fn respond(
    context: &Context,
    request: ListGroupsRequest,
    version: i16,
) -> ListGroupsResponse {
    let groups = match context.broker.list_groups().await {
        Ok(groups) => groups,
        Err(e) => {
            return ListGroupsResponse::default().with_error_code(broker_error_code(
                "ListGroups",
                "",
                &e,
            ))
        }
    };
    // Filters compare without regard to case, as Kafka's do.
    let lower = |filter: Vec<kafka_protocol::protocol::StrBytes>| -> Vec<String> {
        filter
            .iter()
            .map(|s| s.as_str().trim().to_lowercase())
            .collect()
    };
    let states = if version >= 4 {
        lower(request.states_filter)
    } else {
        Vec::new()
    };
    let types = if version >= 5 {
        lower(request.types_filter)
    } else {
        Vec::new()
    };
    let listed = groups
        .into_iter()
        .filter(|g| states.is_empty() || states.contains(&g.state.to_string().to_lowercase()))
        .filter(|_| types.is_empty() || types.iter().any(|t| t == GROUP_TYPE))
        .map(|g| {
            ListedGroup::default()
                .with_group_id(GroupId(str_bytes(g.group_id)))
                .with_protocol_type(str_bytes(g.protocol_type))
                .with_group_state(str_bytes(g.state.to_string()))
                .with_group_type(str_bytes(GROUP_TYPE))
        })
        .collect();
    ListGroupsResponse::default().with_groups(listed)
}
