//! FindCoordinator: the one broker (node 0) coordinates every consumer group and every
//! transactional id.

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use crate::context::Context;

/// The node id of the one broker.
const NODE_ID: i32 = 0;
/// Kafka's `INVALID_REQUEST` error code.
const INVALID_REQUEST: i16 = 42;
/// Key types: a group (0) and a transactional id (1) have a coordinator here; share groups
/// (2) are not served.
const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

/// Where one key's coordinator is: `Ok((node, host, port))` or an error code and message.
fn locate(context: &Context, key_type: i8) -> Result<(i32, StrBytes, i32), (i16, String)> {
    match key_type {
        KEY_TYPE_GROUP | KEY_TYPE_TRANSACTION => {
            let (host, port) = &context.advertised;
            Ok((
                NODE_ID,
                StrBytes::from_string(host.clone()),
                i32::from(*port),
            ))
        }
        other => Err((
            INVALID_REQUEST,
            format!("coordinator key type {other} is not served (0 groups, 1 transactions are)"),
        )),
    }
}

pub(crate) fn respond(
    context: &Context,
    request: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    // Version 0 knows only groups.
    let key_type = if version == 0 {
        KEY_TYPE_GROUP
    } else {
        request.key_type
    };
    if version >= 4 {
        let coordinators = request
            .coordinator_keys
            .into_iter()
            .map(|key| match locate(context, key_type) {
                Ok((node, host, port)) => Coordinator::default()
                    .with_key(key)
                    .with_node_id(BrokerId(node))
                    .with_host(host)
                    .with_port(port),
                Err((error, message)) => Coordinator::default()
                    .with_key(key)
                    .with_node_id(BrokerId(-1))
                    .with_port(-1)
                    .with_error_code(error)
                    .with_error_message(Some(StrBytes::from_string(message))),
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    match locate(context, key_type) {
        Ok((node, host, port)) => FindCoordinatorResponse::default()
            .with_node_id(BrokerId(node))
            .with_host(host)
            .with_port(port),
        Err((error, message)) => FindCoordinatorResponse::default()
            .with_error_code(error)
            .with_error_message((version >= 1).then(|| StrBytes::from_string(message)))
            .with_node_id(BrokerId(-1))
            .with_port(-1),
    }
}
