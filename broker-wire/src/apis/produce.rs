//! Produce: each partition's record batch appended as the producer encoded it.
//!
//! A request names each partition once with exactly one v2 batch (Kafka's rule from Produce
//! v3). `acks` 0 gets no response at all; 1 and -1 (all) are answered once the batch is in
//! the log, which on a single node is every replica. Each partition succeeds or fails on its
//! own, with Kafka's error code and a message naming the partition and the reason.

use broker_embedded::{BrokerError, TopicPartition};
use kafka_protocol::messages::produce_response::{
    LeaderIdAndEpoch, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{BrokerId, ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use tracing::debug;

use super::errors::error_and_message;
use crate::context::Context;

/// What to do with a Produce request's outcome.
pub(super) enum Produced {
    /// `acks` was 0: the client waits for nothing.
    NoResponse,
    /// The response to send.
    Respond(ProduceResponse),
}

pub(super) async fn respond(context: &Context, request: ProduceRequest, version: i16) -> Produced {
    let acks = request.acks;
    // 0 (none), 1 (the leader) and -1 (all).
    let valid_acks = (-1..=1).contains(&acks);
    let transactional_id = request
        .transactional_id
        .as_ref()
        .map(|id| id.0.as_str().to_owned());
    let mut responses = Vec::with_capacity(request.topic_data.len());
    for topic in request.topic_data {
        // From version 13 a topic is named by its id.
        let name = if version >= 13 {
            context.broker.topic_name_by_id(topic.topic_id)
        } else {
            Some(topic.name.0.as_str().to_owned())
        };
        let mut partitions = Vec::with_capacity(topic.partition_data.len());
        for data in topic.partition_data {
            let Some(name) = name.as_deref() else {
                partitions.push(failed(
                    data.index,
                    ResponseError::UnknownTopicId.code(),
                    Some(StrBytes::from_string(format!(
                        "no topic has the id {}",
                        topic.topic_id
                    ))),
                ));
                continue;
            };
            let response = if valid_acks {
                append(
                    context,
                    transactional_id.as_deref(),
                    name,
                    data.index,
                    data.records,
                )
                .await
            } else {
                failed(
                    data.index,
                    ResponseError::InvalidRequiredAcks.code(),
                    Some(StrBytes::from_string(format!(
                        "acks={acks}: a producer asks for 0, 1 or -1 (all)"
                    ))),
                )
            };
            partitions.push(response);
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(topic.name)
                .with_topic_id(topic.topic_id)
                .with_partition_responses(partitions),
        );
    }
    if acks == 0 {
        return Produced::NoResponse;
    }
    Produced::Respond(ProduceResponse::default().with_responses(responses))
}

async fn append(
    context: &Context,
    transactional_id: Option<&str>,
    topic: &str,
    index: i32,
    records: Option<bytes::Bytes>,
) -> PartitionProduceResponse {
    let Ok(partition) = u32::try_from(index) else {
        return failed(
            index,
            ResponseError::UnknownTopicOrPartition.code(),
            Some(StrBytes::from_string(format!(
                "partition {index} of topic {topic} does not exist"
            ))),
        );
    };
    let Some(batch) = records.filter(|r| !r.is_empty()) else {
        return failed(
            index,
            ResponseError::InvalidRecord.code(),
            Some(StrBytes::from_string(format!(
                "{topic}-{partition}: a produce request carries one record batch per partition, \
                 and this one carries none"
            ))),
        );
    };
    let broker = &context.broker;
    if let Err(e) = check_transaction(context, transactional_id, topic, partition, &batch).await {
        let (code, message) = error_and_message(&e);
        return failed(index, code, message);
    }
    match broker.append_batch(topic, partition, &batch).await {
        Ok((info, log_start)) => PartitionProduceResponse::default()
            .with_index(index)
            .with_base_offset(info.base_offset as i64)
            .with_log_append_time_ms(info.log_append_time.unwrap_or(-1))
            .with_log_start_offset(log_start as i64)
            .with_current_leader(no_leader_change()),
        Err(e) => {
            debug!(topic, partition, error = %e, "produce refused");
            let (code, message) = error_and_message(&e);
            failed(index, code, message)
        }
    }
}

/// A transactional batch goes only to a partition its producer added to its open
/// transaction (Kafka's `INVALID_TXN_STATE` otherwise), so that no partition is left with a
/// transaction nobody will end.
async fn check_transaction(
    context: &Context,
    transactional_id: Option<&str>,
    topic: &str,
    partition: u32,
    batch: &[u8],
) -> Result<(), BrokerError> {
    let header = broker_embedded::batch::BatchHeader::parse(&batch_with_zero_epoch(batch))
        .map_err(|e| BrokerError::CorruptRecord {
            topic: topic.to_owned(),
            reason: e.to_string(),
        })?;
    if !header.is_transactional() {
        return Ok(());
    }
    let Some(id) = transactional_id else {
        return Err(BrokerError::InvalidTxnState {
            transactional_id: String::new(),
            reason: format!(
                "a transactional batch for {topic}-{partition} in a produce request without a \
                 transactional id"
            ),
        });
    };
    context
        .broker
        .check_transactional_append(
            id,
            header.producer_id,
            header.producer_epoch,
            &TopicPartition::new(topic, partition),
        )
        .await
}

/// The batch's header with the leader epoch a producer leaves to the broker cleared, so it
/// parses as a stored batch does.
fn batch_with_zero_epoch(batch: &[u8]) -> Vec<u8> {
    let len = broker_embedded::batch::BATCH_HEADER_LEN.min(batch.len());
    let mut header = batch[..len].to_vec();
    if header.len() >= 16 {
        header[12..16].copy_from_slice(&0i32.to_be_bytes());
    }
    header
}

fn failed(index: i32, code: i16, message: Option<StrBytes>) -> PartitionProduceResponse {
    PartitionProduceResponse::default()
        .with_index(index)
        .with_error_code(code)
        .with_base_offset(-1)
        .with_log_append_time_ms(-1)
        .with_log_start_offset(-1)
        .with_error_message(message)
        .with_current_leader(no_leader_change())
}

/// The `current_leader` field: the one broker, unchanged.
fn no_leader_change() -> LeaderIdAndEpoch {
    LeaderIdAndEpoch::default()
        .with_leader_id(BrokerId(0))
        .with_leader_epoch(0)
}
