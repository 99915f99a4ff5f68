//! CreateTopics (v2 to v7): topics of the one broker, with Kafka's checks and error codes.
//! A replication factor above 1 or an assignment naming a broker other than 0 is refused as
//! Kafka refuses it on a one-broker cluster; `validate_only` checks everything and creates
//! nothing. From v5 on a result carries the partition count, the replication factor and
//! every config of the topic; from v7 on its topic id.

use std::collections::HashMap;

use broker_embedded::NewTopic;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;
use tracing::info;
use uuid::Uuid;

use super::config_entries::topic_entries;
use super::errors::{
    from_broker, ItemError, INVALID_CONFIG, INVALID_PARTITIONS, INVALID_REPLICATION_FACTOR,
    INVALID_REPLICA_ASSIGNMENT, INVALID_REQUEST,
};
use crate::context::Context;

/// The node id of the one broker.
const NODE_ID: i32 = 0;

pub(super) async fn respond(
    context: &Context,
    request: CreateTopicsRequest,
    version: i16,
) -> CreateTopicsResponse {
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
            create(context, topic, request.validate_only).await
        };
        let result = CreatableTopicResult::default().with_name(name);
        results.push(match outcome {
            Ok(created) => {
                let mut result = result;
                if version >= 5 {
                    result.num_partitions = created.partitions as i32;
                    result.replication_factor = 1;
                    result.configs = Some(created.configs);
                }
                if version >= 7 {
                    result.topic_id = created.id;
                }
                result
            }
            Err((code, message)) => result
                .with_error_code(code)
                .with_error_message(Some(StrBytes::from_string(message))),
        });
    }
    CreateTopicsResponse::default().with_topics(results)
}

/// What a created (or validated) topic got.
struct Created {
    id: Uuid,
    partitions: u32,
    configs: Vec<CreatableTopicConfigs>,
}

/// Kafka's checks of the partition count, replication factor and assignment; the
/// partition count to create (`None`: the broker's `num.partitions`).
fn check_layout(topic: &CreatableTopic) -> Result<Option<u32>, ItemError> {
    if !topic.assignments.is_empty() {
        if topic.num_partitions != -1 {
            return Err((
                INVALID_REQUEST,
                "A manual partition assignment was specified, but numPartitions was not set \
                 to -1."
                    .to_owned(),
            ));
        }
        if topic.replication_factor != -1 {
            return Err((
                INVALID_REQUEST,
                "A manual partition assignment was specified, but replicationFactor was not \
                 set to -1."
                    .to_owned(),
            ));
        }
        let mut indexes: Vec<i32> = topic
            .assignments
            .iter()
            .map(|a| a.partition_index)
            .collect();
        indexes.sort_unstable();
        if indexes.iter().enumerate().any(|(i, &p)| p != i as i32) {
            return Err((
                INVALID_REPLICA_ASSIGNMENT,
                "partitions should be a consecutive 0-based integer sequence".to_owned(),
            ));
        }
        for assignment in &topic.assignments {
            check_replicas(&assignment.broker_ids)?;
        }
        return Ok(Some(topic.assignments.len() as u32));
    }
    if topic.num_partitions < -1 || topic.num_partitions == 0 {
        return Err((
            INVALID_PARTITIONS,
            "Number of partitions was set to an invalid non-positive value.".to_owned(),
        ));
    }
    if topic.replication_factor < -1 || topic.replication_factor == 0 {
        return Err((
            INVALID_REPLICATION_FACTOR,
            "Replication factor must be larger than 0, or -1 to use the default value.".to_owned(),
        ));
    }
    if topic.replication_factor > 1 {
        let rf = topic.replication_factor;
        return Err((
            INVALID_REPLICATION_FACTOR,
            format!(
                "Unable to replicate the partition {rf} time(s): The target replication factor \
                 of {rf} cannot be reached because only 1 broker(s) are registered."
            ),
        ));
    }
    Ok((topic.num_partitions > 0).then_some(topic.num_partitions as u32))
}

/// A manual assignment's replica list: node 0, once.
pub(super) fn check_replicas(
    broker_ids: &[kafka_protocol::messages::BrokerId],
) -> Result<(), ItemError> {
    if broker_ids.is_empty() {
        return Err((
            INVALID_REPLICA_ASSIGNMENT,
            "The manual partition assignment includes an empty replica list.".to_owned(),
        ));
    }
    if let Some(other) = broker_ids.iter().find(|b| b.0 != NODE_ID) {
        return Err((
            INVALID_REPLICA_ASSIGNMENT,
            format!(
                "The manual partition assignment includes broker {}, but no such broker is \
                 registered.",
                other.0
            ),
        ));
    }
    if broker_ids.len() > 1 {
        return Err((
            INVALID_REPLICA_ASSIGNMENT,
            format!(
                "The manual partition assignment includes the broker {NODE_ID} more than once."
            ),
        ));
    }
    Ok(())
}

async fn create(
    context: &Context,
    topic: CreatableTopic,
    validate_only: bool,
) -> Result<Created, ItemError> {
    let broker = &context.broker;
    let name = topic.name.0.to_string();
    broker_embedded::validate_topic_name(&name).map_err(|e| from_broker(&e))?;
    if broker.topic_id(&name).is_ok() {
        return Err((
            super::errors::TOPIC_ALREADY_EXISTS,
            format!("Topic '{name}' already exists."),
        ));
    }
    let partitions = check_layout(&topic)?;
    let mut configs = Vec::with_capacity(topic.configs.len());
    for config in &topic.configs {
        let Some(value) = &config.value else {
            return Err((
                INVALID_CONFIG,
                format!(
                    "Null value not supported for topic configs: {}",
                    config.name
                ),
            ));
        };
        configs.push((config.name.to_string(), value.to_string()));
    }
    let new = NewTopic {
        name: name.clone(),
        partitions,
        configs,
    };
    let (partitions, config) = broker
        .validate_new_topic(&new)
        .await
        .map_err(|e| from_broker(&e))?;
    let id = if validate_only {
        Uuid::nil()
    } else {
        broker
            .create_topic(new)
            .await
            .map_err(|e| from_broker(&e))?;
        info!(topic = %name, partitions, "topic created by a CreateTopics request");
        broker.topic_id(&name).map_err(|e| from_broker(&e))?
    };
    let defaults = &broker.config().default_topic_config;
    let configs = topic_entries(defaults, &config)
        .into_iter()
        .map(|e| {
            CreatableTopicConfigs::default()
                .with_name(StrBytes::from_string(e.name))
                .with_value(Some(StrBytes::from_string(e.value)))
                .with_config_source(e.source)
        })
        .collect();
    Ok(Created {
        id,
        partitions,
        configs,
    })
}
