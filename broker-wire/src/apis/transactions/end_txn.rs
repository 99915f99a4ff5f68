//! EndTxn: commit or abort; answered once the decision is durable and every marker written.

use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse, ProducerId};

use super::{fenced_as, txn_error};
use crate::context::Context;

/// The first EndTxn version that carries `PRODUCER_FENCED`.
const FENCED_SINCE: i16 = 2;

pub(crate) async fn respond(
    context: &Context,
    request: EndTxnRequest,
    version: i16,
) -> EndTxnResponse {
    let result = context
        .broker
        .end_txn(
            request.transactional_id.0.as_str(),
            request.producer_id.0,
            request.producer_epoch,
            request.committed,
        )
        .await;
    // Version 5 (transactions V2) returns the producer id and epoch to use next; this
    // coordinator keeps them unchanged.
    let response = EndTxnResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    match result {
        Ok(()) => response,
        Err(e) => response.with_error_code(fenced_as(txn_error(&e), version, FENCED_SINCE)),
    }
}
