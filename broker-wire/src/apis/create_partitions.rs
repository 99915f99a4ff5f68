//! CreatePartitions (v0 to v3): grows a topic's partition count. An assignment must give
//! each new partition node 0 alone; `validate_only` checks and changes nothing.

use std::collections::HashMap;

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::StrBytes;
use tracing::info;

use super::create_topics::check_replicas;
use super::errors::{
    from_broker, ItemError, INVALID_PARTITIONS, INVALID_REPLICA_ASSIGNMENT, INVALID_REQUEST,
};
use crate::context::Context;

pub(super) async fn respond(
    context: &Context,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for topic in &request.topics {
        *counts.entry(topic.name.0.to_string()).or_default() += 1;
    }
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.clone();
        let outcome = if counts.get(topic.name.0.as_str()).copied().unwrap_or(0) > 1 {
            Err((INVALID_REQUEST, "Duplicate topic name.".to_owned()))
        } else {
            grow(context, topic, request.validate_only).await
        };
        let mut result = CreatePartitionsTopicResult::default().with_name(name);
        if let Err((code, message)) = outcome {
            result.error_code = code;
            result.error_message = Some(StrBytes::from_string(message));
        }
        results.push(result);
    }
    CreatePartitionsResponse::default().with_results(results)
}

async fn grow(
    context: &Context,
    topic: CreatePartitionsTopic,
    validate_only: bool,
) -> Result<(), ItemError> {
    let broker = &context.broker;
    let name = topic.name.0.to_string();
    let current = broker
        .partition_count(&name)
        .await
        .map_err(|e| from_broker(&e))?;
    let total = u32::try_from(topic.count).map_err(|_| {
        (
            INVALID_PARTITIONS,
            format!("The partition count {} is not positive.", topic.count),
        )
    })?;
    if let Some(assignments) = &topic.assignments {
        let added = total.saturating_sub(current) as usize;
        if total > current && assignments.len() != added {
            return Err((
                INVALID_REPLICA_ASSIGNMENT,
                format!(
                    "Attempted to add {added} additional partition(s), but only {} assignment(s) \
                     were specified.",
                    assignments.len()
                ),
            ));
        }
        for assignment in assignments {
            check_replicas(&assignment.broker_ids)?;
        }
    }
    if validate_only {
        broker
            .validate_create_partitions(&name, total)
            .await
            .map_err(|e| from_broker(&e))?;
        return Ok(());
    }
    broker
        .create_partitions(&name, total)
        .await
        .map_err(|e| from_broker(&e))?;
    info!(topic = %name, from = current, to = total, "partitions added by a CreatePartitions request");
    Ok(())
}
