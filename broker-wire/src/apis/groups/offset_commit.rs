//! OffsetCommit: offsets of a group's member (checked against the group's generation) or of
//! a consumer outside group management, written to `__consumer_offsets`.

use broker_embedded::{GroupOffsetCommit, OffsetAndMetadata, TopicPartition};
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

use super::{broker_error_code, code, text, UNKNOWN_TOPIC_OR_PARTITION};
use crate::context::Context;

/// Kafka's `INVALID_COMMIT_OFFSET_SIZE`, for a negative offset (which cannot be stored).
const INVALID_COMMIT_OFFSET_SIZE: i16 = 28;

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
            let early = match (
                u32::try_from(p.partition_index),
                u64::try_from(p.committed_offset),
            ) {
                (Err(_), _) => Some(UNKNOWN_TOPIC_OR_PARTITION),
                (_, Err(_)) => Some(INVALID_COMMIT_OFFSET_SIZE),
                (Ok(partition), Ok(offset)) => {
                    offsets.push((
                        TopicPartition::new(text(&topic.name.0), partition),
                        OffsetAndMetadata::with_metadata(
                            offset,
                            p.committed_metadata.as_ref().map(text).unwrap_or_default(),
                        ),
                    ));
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
