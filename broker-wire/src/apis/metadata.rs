//! Metadata: the one broker (node 0, the controller and every partition's leader) and the
//! topics asked for, by name or (v10+) by topic id, created on the way when
//! `auto.create.topics.enable` and the client allow it. Topic ids are returned from v10 on;
//! v13's top-level error code is always 0.

use broker_embedded::{validate_topic_name, BrokerError, NewTopic};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use tracing::info;
use uuid::Uuid;

use super::acl_operations::{CLUSTER_OPERATIONS, TOPIC_OPERATIONS};
use crate::context::Context;

/// The node id of the one broker.
const NODE_ID: i32 = 0;
/// Kafka's error codes used here.
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const INVALID_TOPIC_EXCEPTION: i16 = 17;
const KAFKA_STORAGE_ERROR: i16 = 56;
const UNKNOWN_TOPIC_ID: i16 = 100;
/// The cluster id clients are told.
pub(super) const CLUSTER_ID: &str = "rill-embedded";

/// A topic asked for: by name, or by id (v10+, with a null name).
enum Wanted {
    Name(String),
    Id(Uuid),
}

pub(super) async fn respond(
    context: &Context,
    request: MetadataRequest,
    version: i16,
) -> MetadataResponse {
    let broker = &context.broker;
    let (host, port) = &context.advertised;
    let brokers = vec![MetadataResponseBroker::default()
        .with_node_id(BrokerId(NODE_ID))
        .with_host(StrBytes::from_string(host.clone()))
        .with_port(i32::from(*port))];
    // Version 0 asks for every topic with an empty list; later versions with a null one.
    let names: Vec<Wanted> = match request.topics {
        Some(topics) if !(version == 0 && topics.is_empty()) => topics
            .into_iter()
            .map(|t| match t.name {
                Some(name) => Wanted::Name(name.0.as_str().to_owned()),
                None => Wanted::Id(t.topic_id),
            })
            .collect(),
        _ => {
            let mut all = broker.list_topics().await.unwrap_or_default();
            for internal in ["__consumer_offsets", "__transaction_state"] {
                if broker.partition_count(internal).await.is_ok() {
                    all.push(internal.to_owned());
                }
            }
            all.into_iter().map(Wanted::Name).collect()
        }
    };
    let auto_create = request.allow_auto_topic_creation || version < 4;
    let mut topics = Vec::with_capacity(names.len());
    for wanted in names {
        let name = match wanted {
            Wanted::Name(name) => name,
            Wanted::Id(id) => match broker.topic_name_by_id(id) {
                Some(name) => name,
                None => {
                    topics.push(
                        MetadataResponseTopic::default()
                            .with_topic_id(id)
                            .with_error_code(UNKNOWN_TOPIC_ID),
                    );
                    continue;
                }
            },
        };
        let mut entry = topic(
            context,
            name,
            auto_create && context.config.auto_create_topics_enable,
        )
        .await;
        if version < 10 {
            entry.topic_id = Uuid::nil();
        }
        // Without an authorizer a client may do everything (v8+, when it asks).
        if version >= 8 && request.include_topic_authorized_operations && entry.error_code == 0 {
            entry.topic_authorized_operations = TOPIC_OPERATIONS;
        }
        topics.push(entry);
    }
    let mut response = MetadataResponse::default();
    if (8..=10).contains(&version) && request.include_cluster_authorized_operations {
        response.cluster_authorized_operations = CLUSTER_OPERATIONS;
    }
    response
        .with_brokers(brokers)
        .with_cluster_id(Some(StrBytes::from_static_str(CLUSTER_ID)))
        .with_controller_id(BrokerId(NODE_ID))
        .with_topics(topics)
}

async fn topic(context: &Context, name: String, auto_create: bool) -> MetadataResponseTopic {
    let broker = &context.broker;
    let entry = |error: i16| {
        MetadataResponseTopic::default()
            .with_name(Some(TopicName(StrBytes::from_string(name.clone()))))
            .with_error_code(error)
            .with_is_internal(name.starts_with("__"))
    };
    if validate_topic_name(&name).is_err() {
        return entry(INVALID_TOPIC_EXCEPTION);
    }
    let mut description = broker.describe_topic(&name).await;
    if matches!(description, Err(BrokerError::UnknownTopic { .. })) && auto_create {
        match broker
            .ensure_topic(NewTopic {
                name: name.clone(),
                partitions: None,
                configs: Vec::new(),
            })
            .await
        {
            Ok(true) => {
                info!(topic = %name, "topic created by a metadata request (auto.create.topics.enable)")
            }
            Ok(false) => {}
            Err(_) => return entry(UNKNOWN_TOPIC_OR_PARTITION),
        }
        description = broker.describe_topic(&name).await;
    }
    let Ok(description) = description else {
        return entry(UNKNOWN_TOPIC_OR_PARTITION);
    };
    let id = broker.topic_id(&name).unwrap_or_default();
    let partitions = description
        .partitions
        .iter()
        .map(|p| {
            let (error, leader) = match &p.offline {
                // An offline partition has no leader to serve it (Kafka's answer for a log
                // in an offline log dir).
                Some(_) => (KAFKA_STORAGE_ERROR, -1),
                None => (0, NODE_ID),
            };
            MetadataResponsePartition::default()
                .with_error_code(error)
                .with_partition_index(p.partition as i32)
                .with_leader_id(BrokerId(leader))
                .with_leader_epoch(0)
                .with_replica_nodes(vec![BrokerId(NODE_ID)])
                .with_isr_nodes(if leader < 0 {
                    Vec::new()
                } else {
                    vec![BrokerId(NODE_ID)]
                })
                .with_offline_replicas(if leader < 0 {
                    vec![BrokerId(NODE_ID)]
                } else {
                    Vec::new()
                })
        })
        .collect();
    entry(0).with_topic_id(id).with_partitions(partitions)
}
