//! DescribeTransactions: the state, producer, timeout, start time and partitions of each
//! transactional id asked for.

use std::collections::BTreeMap;

use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::txn_error;
use crate::context::Context;

pub(crate) async fn respond(
    context: &Context,
    request: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let listed = match context.broker.list_transactions().await {
        Ok(listed) => listed,
        Err(e) => {
            let code = txn_error(&e);
            let states = request
                .transactional_ids
                .into_iter()
                .map(|id| {
                    TransactionState::default()
                        .with_error_code(code)
                        .with_transactional_id(id)
                })
                .collect();
            return DescribeTransactionsResponse::default().with_transaction_states(states);
        }
    };
    let states = request
        .transactional_ids
        .into_iter()
        .map(|id| {
            let Some(t) = listed.iter().find(|t| t.transactional_id == id.0.as_str()) else {
                return TransactionState::default()
                    .with_error_code(ResponseError::TransactionalIdNotFound.code())
                    .with_transactional_id(id);
            };
            let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
            for tp in &t.partitions {
                by_topic
                    .entry(tp.topic.as_str())
                    .or_default()
                    .push(tp.partition as i32);
            }
            TransactionState::default()
                .with_transactional_id(id)
                .with_transaction_state(StrBytes::from_static_str(t.state))
                .with_transaction_timeout_ms(t.timeout_ms)
                .with_transaction_start_time_ms(t.start_ms)
                .with_producer_id(ProducerId(t.producer_id))
                .with_producer_epoch(t.producer_epoch)
                .with_topics(
                    by_topic
                        .into_iter()
                        .map(|(topic, partitions)| {
                            TopicData::default()
                                .with_topic(TopicName(StrBytes::from_string(topic.to_owned())))
                                .with_partitions(partitions)
                        })
                        .collect(),
                )
        })
        .collect();
    DescribeTransactionsResponse::default().with_transaction_states(states)
}
