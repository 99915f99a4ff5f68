//! AddPartitionsToTxn: the partitions a transactional producer is about to write to join
//! its transaction. Versions 0–3 are the producer's form (one transaction); 4 and 5 batch
//! transactions, and `verify_only` asks whether the partitions are in the transaction
//! already without adding them.

use broker_embedded::TopicPartition;
use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse};
use kafka_protocol::ResponseError;

use super::{fenced_as, txn_error};
use crate::context::Context;

/// The first AddPartitionsToTxn version that carries `PRODUCER_FENCED`.
const FENCED_SINCE: i16 = 2;

pub(crate) async fn respond(
    context: &Context,
    request: AddPartitionsToTxnRequest,
    version: i16,
) -> AddPartitionsToTxnResponse {
    if version <= 3 {
        let transaction = AddPartitionsToTxnTransaction::default()
            .with_transactional_id(request.v3_and_below_transactional_id)
            .with_producer_id(request.v3_and_below_producer_id)
            .with_producer_epoch(request.v3_and_below_producer_epoch)
            .with_topics(request.v3_and_below_topics);
        let mut result = add(context, transaction).await;
        for partition in result
            .topic_results
            .iter_mut()
            .flat_map(|t| t.results_by_partition.iter_mut())
        {
            partition.partition_error_code =
                fenced_as(partition.partition_error_code, version, FENCED_SINCE);
        }
        return AddPartitionsToTxnResponse::default()
            .with_results_by_topic_v3_and_below(result.topic_results);
    }
    let mut results = Vec::with_capacity(request.transactions.len());
    for transaction in request.transactions {
        results.push(add(context, transaction).await);
    }
    AddPartitionsToTxnResponse::default().with_results_by_transaction(results)
}

async fn add(context: &Context, t: AddPartitionsToTxnTransaction) -> AddPartitionsToTxnResult {
    let id = t.transactional_id.0.as_str().to_owned();
    let partitions: Vec<TopicPartition> = t
        .topics
        .iter()
        .flat_map(|topic| {
            topic.partitions.iter().filter_map(|&p| {
                u32::try_from(p)
                    .ok()
                    .map(|p| TopicPartition::new(topic.name.0.as_str(), p))
            })
        })
        .collect();
    let any_negative = t
        .topics
        .iter()
        .any(|topic| topic.partitions.iter().any(|&p| p < 0));
    // Partitions that do not exist fail on their own; the others then get
    // OPERATION_NOT_ATTEMPTED, as Kafka answers.
    let mut unknown = Vec::new();
    for tp in &partitions {
        if context
            .broker
            .partition_count(&tp.topic)
            .await
            .map_or(true, |n| tp.partition >= n)
        {
            unknown.push(tp.clone());
        }
    }
    let outcome: Result<(), i16> = if any_negative || !unknown.is_empty() {
        Err(ResponseError::OperationNotAttempted.code())
    } else if t.verify_only {
        let mut missing = None;
        for tp in &partitions {
            if let Err(e) = context
                .broker
                .check_transactional_append(&id, t.producer_id.0, t.producer_epoch, tp)
                .await
            {
                missing = Some(txn_error(&e));
                break;
            }
        }
        missing.map_or(Ok(()), Err)
    } else {
        context
            .broker
            .add_partitions_to_txn(&id, t.producer_id.0, t.producer_epoch, &partitions)
            .await
            .map_err(|e| txn_error(&e))
    };
    let code_of = |topic: &str, p: i32| -> i16 {
        let unknown_here = p < 0
            || unknown
                .iter()
                .any(|tp| tp.topic == topic && i64::from(tp.partition) == i64::from(p));
        match &outcome {
            _ if unknown_here => ResponseError::UnknownTopicOrPartition.code(),
            Ok(()) => 0,
            Err(code) => *code,
        }
    };
    let topic_results = t
        .topics
        .iter()
        .map(|topic: &AddPartitionsToTxnTopic| {
            AddPartitionsToTxnTopicResult::default()
                .with_name(topic.name.clone())
                .with_results_by_partition(
                    topic
                        .partitions
                        .iter()
                        .map(|&p| {
                            AddPartitionsToTxnPartitionResult::default()
                                .with_partition_index(p)
                                .with_partition_error_code(code_of(topic.name.0.as_str(), p))
                        })
                        .collect(),
                )
        })
        .collect();
    AddPartitionsToTxnResult::default()
        .with_transactional_id(t.transactional_id)
        .with_topic_results(topic_results)
}
