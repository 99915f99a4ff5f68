//! DescribeCluster (v0 to v2): the cluster id Metadata gives, node 0 as the controller and
//! the one broker, and the authorized operations when asked (every cluster operation:
//! there is no authorizer).

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

use super::acl_operations::{CLUSTER_OPERATIONS, NOT_ASKED};
use super::errors::{INVALID_REQUEST, UNSUPPORTED_ENDPOINT_TYPE};
use super::metadata::CLUSTER_ID;
use crate::context::Context;

/// `endpoint_type` values: brokers, controllers.
const BROKERS: i8 = 1;
const CONTROLLERS: i8 = 2;

pub(super) fn respond(
    context: &Context,
    request: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let response = DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_static_str(CLUSTER_ID))
        .with_controller_id(BrokerId(-1));
    match request.endpoint_type {
        BROKERS => {}
        CONTROLLERS => {
            return response
                .with_error_code(UNSUPPORTED_ENDPOINT_TYPE)
                .with_error_message(Some(StrBytes::from_static_str(
                    "The AdminClient thinks it is talking to a controller but it is talking \
                     to a broker.",
                )))
        }
        other => {
            return response
                .with_error_code(INVALID_REQUEST)
                .with_error_message(Some(StrBytes::from_string(format!(
                    "Unknown endpoint type {other}"
                ))))
        }
    }
    let (host, port) = &context.advertised;
    let broker = DescribeClusterBroker::default()
        .with_broker_id(BrokerId(0))
        .with_host(StrBytes::from_string(host.clone()))
        .with_port(i32::from(*port));
    response
        .with_controller_id(BrokerId(0))
        .with_brokers(vec![broker])
        .with_cluster_authorized_operations(if request.include_cluster_authorized_operations {
            CLUSTER_OPERATIONS
        } else {
            NOT_ASKED
        })
}
