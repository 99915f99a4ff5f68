//! ListTransactions: the transactional ids the coordinator knows, filtered by state,
//! producer id, (v1) how long the transaction has been open and (v2) an id pattern.

use kafka_protocol::messages::list_transactions_response::TransactionState;
use kafka_protocol::messages::{
    ListTransactionsRequest, ListTransactionsResponse, ProducerId, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::txn_error;
use crate::context::Context;

/// Kafka's transaction state names; a filter naming another is reported back as unknown.
const STATES: &[&str] = &[
    "Empty",
    "Ongoing",
    "PrepareCommit",
    "PrepareAbort",
    "CompleteCommit",
    "CompleteAbort",
    "Dead",
    "PrepareEpochFence",
];

pub(crate) async fn respond(
    context: &Context,
    request: ListTransactionsRequest,
) -> ListTransactionsResponse {
    let pattern = match request
        .transactional_id_pattern
        .as_ref()
        .map(|p| regex::Regex::new(&format!("^(?:{})$", p.as_str())))
    {
        Some(Ok(re)) => Some(re),
        Some(Err(_)) => {
            return ListTransactionsResponse::default()
                .with_error_code(ResponseError::InvalidRegularExpression.code())
        }
        None => None,
    };
    let listed = match context.broker.list_transactions().await {
        Ok(listed) => listed,
        Err(e) => return ListTransactionsResponse::default().with_error_code(txn_error(&e)),
    };
    let unknown: Vec<StrBytes> = request
        .state_filters
        .iter()
        .filter(|s| !STATES.contains(&s.as_str()))
        .cloned()
        .collect();
    let now = context.broker.config().time.now_ms();
    let states = listed
        .into_iter()
        .filter(|t| {
            request.state_filters.is_empty()
                || request.state_filters.iter().any(|s| s.as_str() == t.state)
        })
        .filter(|t| {
            request.producer_id_filters.is_empty()
                || request
                    .producer_id_filters
                    .iter()
                    .any(|p| p.0 == t.producer_id)
        })
        .filter(|t| {
            request.duration_filter < 0
                || (t.start_ms >= 0 && now - t.start_ms >= request.duration_filter)
        })
        .filter(|t| {
            pattern
                .as_ref()
                .is_none_or(|re| re.is_match(&t.transactional_id))
        })
        .map(|t| {
            TransactionState::default()
                .with_transactional_id(TransactionalId(StrBytes::from_string(t.transactional_id)))
                .with_producer_id(ProducerId(t.producer_id))
                .with_transaction_state(StrBytes::from_static_str(t.state))
        })
        .collect();
    ListTransactionsResponse::default()
        .with_unknown_state_filters(unknown)
        .with_transaction_states(states)
}
