//! ListOffsets: a partition's earliest or latest offset, the first offset at or after a
//! timestamp, or the offset of its largest timestamp.

use broker_embedded::BrokerError;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::ResponseError;

use super::errors::response_error;
use crate::context::Context;

/// Kafka's special timestamps.
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
/// With tiered storage these differ from EARLIEST; without it they are the log start.
const EARLIEST_LOCAL: i64 = -4;
const EARLIEST_PENDING_UPLOAD: i64 = -5;

pub(super) async fn respond(
    context: &Context,
    request: ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
    let read_committed = request.isolation_level == 1;
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.0.as_str().to_owned();
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in topic.partitions {
            partitions.push(
                lookup(
                    context,
                    &name,
                    p.partition_index,
                    p.timestamp,
                    read_committed,
                    version,
                )
                .await,
            );
        }
        topics.push(
            ListOffsetsTopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions),
        );
    }
    ListOffsetsResponse::default().with_topics(topics)
}

async fn lookup(
    context: &Context,
    topic: &str,
    index: i32,
    timestamp: i64,
    read_committed: bool,
    version: i16,
) -> ListOffsetsPartitionResponse {
    let response = ListOffsetsPartitionResponse::default().with_partition_index(index);
    let Ok(partition) = u32::try_from(index) else {
        return response
            .with_error_code(ResponseError::UnknownTopicOrPartition.code())
            .with_timestamp(-1)
            .with_offset(-1);
    };
    if timestamp < EARLIEST_PENDING_UPLOAD {
        return response
            .with_error_code(ResponseError::InvalidRequest.code())
            .with_offset(-1)
            .with_timestamp(-1);
    }
    let found = find(context, topic, partition, timestamp, read_committed).await;
    match found {
        Ok(Some((offset, ts))) => response
            .with_offset(offset as i64)
            .with_timestamp(ts)
            // The field exists from version 4.
            .with_leader_epoch(if version >= 4 { 0 } else { -1 }),
        // No record at or after the timestamp: Kafka answers offset -1.
        Ok(None) => response.with_offset(-1).with_timestamp(-1),
        Err(e) => response
            .with_error_code(response_error(&e).code())
            .with_offset(-1)
            .with_timestamp(-1),
    }
}

async fn find(
    context: &Context,
    topic: &str,
    partition: u32,
    timestamp: i64,
    read_committed: bool,
) -> Result<Option<(u64, i64)>, BrokerError> {
    let broker = &context.broker;
    let (start, end) = broker.offsets(topic, partition).await?;
    Ok(match timestamp {
        EARLIEST | EARLIEST_LOCAL => Some((start, -1)),
        LATEST if read_committed => Some((broker.last_stable_offset(topic, partition).await?, -1)),
        LATEST => Some((end, -1)),
        MAX_TIMESTAMP => broker.offset_of_max_timestamp(topic, partition).await?,
        // Nothing waits to be uploaded without tiered storage.
        EARLIEST_PENDING_UPLOAD => None,
        t => broker.offset_for_timestamp(topic, partition, t).await?,
    })
}
