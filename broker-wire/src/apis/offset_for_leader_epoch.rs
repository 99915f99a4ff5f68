//! OffsetForLeaderEpoch: the end offset of a leader epoch, which a client asks after a
//! leader change to find out whether its position was truncated. The one broker has led
//! every partition in epoch 0 since it was created, so epoch 0 ends at the log end offset.

use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use kafka_protocol::ResponseError;

use super::errors::response_error;
use crate::context::Context;

pub(super) async fn respond(
    context: &Context,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.topic.0.as_str().to_owned();
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in topic.partitions {
            let entry = EpochEndOffset::default().with_partition(p.partition);
            let unknown = entry
                .clone()
                .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                .with_leader_epoch(-1)
                .with_end_offset(-1);
            let Ok(partition) = u32::try_from(p.partition) else {
                partitions.push(unknown);
                continue;
            };
            // A client that knows a newer epoch than the leader's has newer metadata than
            // the leader: Kafka's UNKNOWN_LEADER_EPOCH (retriable).
            if p.current_leader_epoch > 0 {
                partitions.push(
                    entry
                        .with_error_code(ResponseError::UnknownLeaderEpoch.code())
                        .with_leader_epoch(-1)
                        .with_end_offset(-1),
                );
                continue;
            }
            partitions.push(match context.broker.offsets(&name, partition).await {
                // An epoch above the only one has no end offset yet.
                Ok(_) if p.leader_epoch > 0 => entry.with_leader_epoch(-1).with_end_offset(-1),
                Ok((_, end)) => entry.with_leader_epoch(0).with_end_offset(end as i64),
                Err(e) => entry
                    .with_error_code(response_error(&e).code())
                    .with_leader_epoch(-1)
                    .with_end_offset(-1),
            });
        }
        topics.push(
            OffsetForLeaderTopicResult::default()
                .with_topic(topic.topic)
                .with_partitions(partitions),
        );
    }
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
