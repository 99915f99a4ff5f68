//! OffsetDelete: deletes a group's committed offsets of partitions it does not consume.

use broker_embedded::TopicPartition;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

use super::{broker_error_code, code, text, UNKNOWN_TOPIC_OR_PARTITION};
use crate::context::Context;

pub(crate) async fn respond(
    context: &Context,
    request: OffsetDeleteRequest,
) -> OffsetDeleteResponse {
    let broker = &context.broker;
    let group = text(&request.group_id.0);
    // Partitions that do not exist are refused here, as Kafka's request handler does.
    let mut asked = Vec::new();
    let mut known = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let name = text(&topic.name.0);
        let count = broker.partition_count(&name).await.unwrap_or(0);
        let mut topic_known = Vec::with_capacity(topic.partitions.len());
        for p in &topic.partitions {
            let exists = u32::try_from(p.partition_index).is_ok_and(|i| i < count);
            if exists {
                asked.push(TopicPartition::new(name.clone(), p.partition_index as u32));
            }
            topic_known.push(exists);
        }
        known.push(topic_known);
    }
    let result = match broker.delete_offsets(&group, &asked).await {
        Ok(result) => result,
        Err(e) => {
            return OffsetDeleteResponse::default().with_error_code(broker_error_code(
                "OffsetDelete",
                &group,
                &e,
            ))
        }
    };
    if result.error.is_some() {
        return OffsetDeleteResponse::default().with_error_code(code(result.error));
    }
    let mut answers = result.partitions.into_iter();
    let topics = request
        .topics
        .into_iter()
        .zip(known)
        .map(|(topic, topic_known)| {
            let partitions = topic
                .partitions
                .iter()
                .zip(topic_known)
                .map(|(p, exists)| {
                    let error = if exists {
                        answers.next().map_or(0, |(_, e)| code(e))
                    } else {
                        UNKNOWN_TOPIC_OR_PARTITION
                    };
                    OffsetDeleteResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(error)
                })
                .collect();
            OffsetDeleteResponseTopic::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    OffsetDeleteResponse::default().with_topics(topics)
}
