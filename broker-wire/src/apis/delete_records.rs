//! DeleteRecords (v0 to v2): moves partitions' log start offsets forward. An offset of -1
//! means the high watermark; one above it is `OFFSET_OUT_OF_RANGE`. Each partition's result
//! carries its low watermark (log start offset) after the deletion.

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use super::errors::{from_broker, OFFSET_OUT_OF_RANGE};
use crate::context::Context;

pub(super) async fn respond(
    context: &Context,
    request: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let broker = &context.broker;
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in topic.partitions {
            let result = DeleteRecordsPartitionResult::default()
                .with_partition_index(p.partition_index)
                .with_low_watermark(-1);
            let before = match p.offset {
                -1 => Ok(None),
                offset => u64::try_from(offset).map(Some),
            };
            let outcome = match (u32::try_from(p.partition_index), before) {
                (Ok(partition), Ok(before)) => broker
                    .delete_records(&name, partition, before)
                    .await
                    .map_err(|e| from_broker(&e).0),
                // A negative partition cannot exist; a negative offset other than -1 is out
                // of range.
                (Err(_), _) => Err(super::errors::UNKNOWN_TOPIC_OR_PARTITION),
                (_, Err(_)) => Err(OFFSET_OUT_OF_RANGE),
            };
            partitions.push(match outcome {
                Ok(low) => result.with_low_watermark(low as i64),
                Err(code) => result.with_error_code(code),
            });
        }
        topics.push(
            DeleteRecordsTopicResult::default()
                .with_name(topic.name)
                .with_partitions(partitions),
        );
    }
    DeleteRecordsResponse::default().with_topics(topics)
}
