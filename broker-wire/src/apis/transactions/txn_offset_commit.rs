//! TxnOffsetCommit: consumer offsets committed as part of a producer's transaction, visible
//! to the group only when the transaction commits.

use broker_embedded::{BrokerError, OffsetAndMetadata, TopicPartition, TxnOffsetCommit};
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};
use kafka_protocol::ResponseError;

use super::{fenced_as, txn_error};
use crate::context::Context;

/// The first TxnOffsetCommit version that carries `PRODUCER_FENCED`.
const FENCED_SINCE: i16 = 3;

pub(crate) async fn respond(
    context: &Context,
    request: TxnOffsetCommitRequest,
    version: i16,
) -> TxnOffsetCommitResponse {
    let mut offsets = Vec::new();
    let mut invalid = false;
    for topic in &request.topics {
        for p in &topic.partitions {
            match (
                u32::try_from(p.partition_index),
                u64::try_from(p.committed_offset),
            ) {
                (Ok(partition), Ok(offset)) => offsets.push((
                    TopicPartition::new(topic.name.0.as_str(), partition),
                    OffsetAndMetadata::with_metadata(
                        offset,
                        p.committed_metadata
                            .as_ref()
                            .map(|m| m.as_str().to_owned())
                            .unwrap_or_default(),
                    ),
                )),
                _ => invalid = true,
            }
        }
    }
    let code = if invalid {
        ResponseError::InvalidCommitOffsetSize.code()
    } else {
        let commit = TxnOffsetCommit {
            transactional_id: request.transactional_id.0.as_str().to_owned(),
            producer_id: request.producer_id.0,
            producer_epoch: request.producer_epoch,
            group_id: request.group_id.0.as_str().to_owned(),
            member_id: request.member_id.as_str().to_owned(),
            group_instance_id: request
                .group_instance_id
                .as_ref()
                .map(|i| i.as_str().to_owned()),
            generation_id: request.generation_id,
            offsets,
        };
        match context.broker.txn_offset_commit(commit).await {
            Ok(()) => 0,
            Err(BrokerError::GroupRefused { code, .. }) => code.code(),
            Err(e) => fenced_as(txn_error(&e), version, FENCED_SINCE),
        }
    };
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            TxnOffsetCommitResponseTopic::default()
                .with_partitions(
                    topic
                        .partitions
                        .iter()
                        .map(|p| {
                            TxnOffsetCommitResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(code)
                        })
                        .collect(),
                )
                .with_name(topic.name)
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}
