//! OffsetCommit: offsets of a group's member (checked against the group's generation) or of
//! a consumer outside group management, written to `__consumer_offsets`.

use broker_embedded::{GroupOffsetCommit, OffsetAndMetadata, TopicPartition};
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

use super::{broker_error_code, code, text, UNKNOWN_TOPIC_OR_PARTITION};
use crate::context::Context;

pub(crate) async fn respond(
    context: &Context,
    request: OffsetCommitRequest,
    version: i16,
) -> OffsetCommitResponse {
    let group = text(&request.group_id.0);
    // Each partition's code when it is refused here, in the request's order; `None` for
    // the partitions the broker is asked about, which it answers in the same order.
    let mut codes: Vec<Vec<Option<i16>>> = Vec::with_capacity(request.topics.len());
    let mut offsets = Vec::new();
    for topic in &request.topics {
        let mut topic_codes = Vec::with_capacity(topic.partitions.len());
        for p in &topic.partitions {
            let early = match u32::try_from(p.partition_index) {
                Err(_) => Some(UNKNOWN_TOPIC_OR_PARTITION),
                Ok(partition) => {
                    // Kafka takes any offset. kafkajs commits -1 or -2 to have a partition
                    // reset by its own policy; it, franz-go and the Java client read a
                    // negative committed offset as none: it removes the committed offset.
                    let offset = u64::try_from(p.committed_offset).ok().map(|offset| {
                        OffsetAndMetadata::with_metadata(
                            offset,
                            p.committed_metadata.as_ref().map(text).unwrap_or_default(),
                        )
                    });
                    offsets.push((TopicPartition::new(text(&topic.name.0), partition), offset));
                    None
                }
            };
            topic_codes.push(early);
        }
        codes.push(topic_codes);
    }
    let commit = GroupOffsetCommit {
        group_id: group.clone(),
        member_id: text(&request.member_id),
        group_instance_id: request.group_instance_id.as_ref().map(text),
        generation_id: request.generation_id_or_member_epoch,
        offsets,
        group_id_not_found_error: version >= 9,
    };
    let asked = commit.offsets.len();
    let mut answers = match context.broker.commit_offsets(commit).await {
        Ok(results) => results.into_iter().map(|(_, error)| code(error)).collect(),
        Err(e) => vec![broker_error_code("OffsetCommit", &group, &e); asked],
    }
    .into_iter();
    let topics = request
        .topics
        .into_iter()
        .zip(codes)
        .map(|(topic, topic_codes)| {
            let partitions = topic
                .partitions
                .iter()
                .zip(topic_codes)
                .map(|(p, early)| {
                    let error = early
                        .or_else(|| answers.next())
                        .unwrap_or(super::UNKNOWN_SERVER_ERROR);
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(error)
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}
