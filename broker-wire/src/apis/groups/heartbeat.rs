//! Heartbeat: a member says it is alive and learns whether it has to rejoin.

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use super::{broker_error_code, code, text};
use crate::context::Context;

pub(crate) async fn respond(context: &Context, request: HeartbeatRequest) -> HeartbeatResponse {
    let group = text(&request.group_id.0);
    let instance = request.group_instance_id.as_ref().map(text);
    let error = match context
        .broker
        .heartbeat(
            &group,
            request.member_id.as_str(),
            instance.as_deref(),
            request.generation_id,
        )
        .await
    {
        Ok(error) => code(error),
        Err(e) => broker_error_code("Heartbeat", &group, &e),
    };
    HeartbeatResponse::default().with_error_code(error)
}
