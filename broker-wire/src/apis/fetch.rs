//! Fetch: whole batches sent as stored, never decoded or re-encoded, with Kafka's long poll.
//!
//! Each partition is read from its fetch offset, at most `partition_max_bytes` of it and
//! `max_bytes` in all, but always at least one whole batch for the first partition with data,
//! so that a batch larger than the limits still gets through (KIP-74). When fewer than
//! `min_bytes` are found, the request waits for appends until `max_wait_ms` has passed; the
//! wait holds only this connection's later requests, as in Kafka.
//!
//! Under `read_committed` a partition is read up to its last stable offset and the response
//! lists the aborted transactions among the batches returned, for the client to drop.
//!
//! Fetch sessions (KIP-227) are refused the way a Kafka broker without session slots refuses
//! them: every response carries session id 0, so the client sends full fetch requests; an
//! incremental fetch naming a session gets `FETCH_SESSION_ID_NOT_FOUND`.

use std::time::Duration;

use broker_embedded::{BrokerError, IsolationLevel, StoredRead};
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, ProducerId};
use kafka_protocol::ResponseError;
use tokio::time::Instant;

use super::errors::response_error;
use crate::context::Context;

/// Kafka's broker-side `fetch.max.bytes` default: the most one response carries, whatever
/// a client asks, so that a connection's memory stays bounded (at least one whole batch is
/// still returned when a single batch is larger).
const FETCH_MAX_BYTES: usize = 57_671_680;

/// The longest wait honoured, whatever a client asks (Kafka bounds it by the request
/// timeout the same way).
const MAX_WAIT: Duration = Duration::from_secs(60);

pub(super) async fn respond(
    context: &Context,
    request: FetchRequest,
    version: i16,
) -> FetchResponse {
    if version >= 7 && request.session_id != 0 {
        return FetchResponse::default()
            .with_error_code(ResponseError::FetchSessionIdNotFound.code())
            .with_session_id(0);
    }
    let isolation = if request.isolation_level == 1 {
        IsolationLevel::ReadCommitted
    } else {
        IsolationLevel::ReadUncommitted
    };
    let wait = Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0)).min(MAX_WAIT);
    let deadline = Instant::now() + wait;
    let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0);
    // Version 3 brought `max_bytes`; before it, only the partition limits count.
    let max_bytes = match usize::try_from(request.max_bytes) {
        Ok(max) if version >= 3 => max.min(FETCH_MAX_BYTES),
        _ => FETCH_MAX_BYTES,
    };
    loop {
        // Created before the read, so that an append during the read is not missed.
        let arrival = context.broker.data_arrival();
        let (responses, total, any_error) =
            read_all(context, &request, isolation, max_bytes, version).await;
        let now = Instant::now();
        if total >= min_bytes || any_error || now >= deadline {
            return FetchResponse::default()
                .with_session_id(0)
                .with_responses(responses);
        }
        let _ = tokio::time::timeout_at(deadline, arrival).await;
    }
}

/// Reads every partition asked for once: the responses, the record bytes in all, and
/// whether any partition failed (an error answers the request at once).
async fn read_all(
    context: &Context,
    request: &FetchRequest,
    isolation: IsolationLevel,
    max_bytes: usize,
    version: i16,
) -> (Vec<FetchableTopicResponse>, usize, bool) {
    let mut total = 0usize;
    let mut any_error = false;
    let mut responses = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        // From version 13 a topic is named by its id.
        let name = if version >= 13 {
            context.broker.topic_name_by_id(topic.topic_id)
        } else {
            Some(topic.topic.0.as_str().to_owned())
        };
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in &topic.partitions {
            let Some(name) = name.as_deref() else {
                any_error = true;
                partitions.push(
                    PartitionData::default()
                        .with_partition_index(p.partition)
                        .with_error_code(ResponseError::UnknownTopicId.code())
                        .with_high_watermark(-1)
                        .with_aborted_transactions(None)
                        .with_records(Some(bytes::Bytes::new())),
                );
                continue;
            };
            let budget = max_bytes.saturating_sub(total);
            let partition_max = usize::try_from(p.partition_max_bytes).unwrap_or(0);
            let data = if budget == 0 && total > 0 {
                // The response is full: the partition is read in a later fetch.
                empty(context, name, p.partition).await
            } else {
                read_one(
                    context,
                    name,
                    p.partition,
                    p.fetch_offset,
                    partition_max.min(budget),
                    isolation,
                )
                .await
            };
            if data.error_code != 0 {
                any_error = true;
            }
            total += data.records.as_ref().map_or(0, |r| r.len());
            partitions.push(data);
        }
        responses.push(
            FetchableTopicResponse::default()
                .with_topic(topic.topic.clone())
                .with_topic_id(topic.topic_id)
                .with_partitions(partitions),
        );
    }
    (responses, total, any_error)
}

async fn read_one(
    context: &Context,
    topic: &str,
    index: i32,
    offset: i64,
    max_bytes: usize,
    isolation: IsolationLevel,
) -> PartitionData {
    let (Ok(partition), Ok(offset)) = (u32::try_from(index), u64::try_from(offset)) else {
        let code = if index < 0 {
            ResponseError::UnknownTopicOrPartition
        } else {
            ResponseError::OffsetOutOfRange
        };
        return failed(context, topic, index, code.code()).await;
    };
    // At least one byte, so that a read always makes progress.
    let max_bytes = max_bytes.max(1);
    match context
        .broker
        .read_stored(topic, partition, offset, max_bytes, isolation)
        .await
    {
        Ok(read) => found(index, read),
        Err(e) => failed(context, topic, index, response_error(&e).code()).await,
    }
}

fn found(index: i32, read: StoredRead) -> PartitionData {
    let aborted = (!read.aborted.is_empty()).then(|| {
        read.aborted
            .iter()
            .map(|a| {
                AbortedTransaction::default()
                    .with_producer_id(ProducerId(a.producer_id))
                    .with_first_offset(a.first_offset as i64)
            })
            .collect()
    });
    PartitionData::default()
        .with_partition_index(index)
        .with_high_watermark(read.high_watermark as i64)
        .with_last_stable_offset(read.last_stable_offset as i64)
        .with_log_start_offset(read.log_start_offset as i64)
        .with_aborted_transactions(aborted)
        .with_preferred_read_replica(BrokerId(-1))
        .with_records(Some(read.records))
}

/// A partition with nothing read this time, its offsets filled in.
async fn empty(context: &Context, topic: &str, index: i32) -> PartitionData {
    let Ok(partition) = u32::try_from(index) else {
        return failed(
            context,
            topic,
            index,
            ResponseError::UnknownTopicOrPartition.code(),
        )
        .await;
    };
    match offsets(context, topic, partition).await {
        Ok((start, end, lso)) => PartitionData::default()
            .with_partition_index(index)
            .with_high_watermark(end as i64)
            .with_last_stable_offset(lso as i64)
            .with_log_start_offset(start as i64)
            .with_aborted_transactions(None)
            .with_records(Some(bytes::Bytes::new())),
        Err(e) => failed(context, topic, index, response_error(&e).code()).await,
    }
}

/// A failed partition: Kafka's code, with the offsets when the partition exists (a client
/// resetting after `OFFSET_OUT_OF_RANGE` reads them).
async fn failed(context: &Context, topic: &str, index: i32, code: i16) -> PartitionData {
    let known = match u32::try_from(index) {
        Ok(partition) => offsets(context, topic, partition).await.ok(),
        Err(_) => None,
    };
    let (start, end, lso) = known.map_or((-1, -1, -1), |(s, e, l)| (s as i64, e as i64, l as i64));
    PartitionData::default()
        .with_partition_index(index)
        .with_error_code(code)
        .with_high_watermark(end)
        .with_last_stable_offset(lso)
        .with_log_start_offset(start)
        .with_aborted_transactions(None)
        .with_records(Some(bytes::Bytes::new()))
}

async fn offsets(
    context: &Context,
    topic: &str,
    partition: u32,
) -> Result<(u64, u64, u64), BrokerError> {
    let (start, end) = context.broker.offsets(topic, partition).await?;
    let lso = context.broker.last_stable_offset(topic, partition).await?;
    Ok((start, end, lso))
}
