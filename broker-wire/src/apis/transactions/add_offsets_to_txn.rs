//! AddOffsetsToTxn: a consumer group's offsets partition joins the producer's transaction,
//! before its TxnOffsetCommit.

use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};

use super::txn_error;
use crate::context::Context;

pub(crate) async fn respond(
    context: &Context,
    request: AddOffsetsToTxnRequest,
) -> AddOffsetsToTxnResponse {
    let result = context
        .broker
        .add_offsets_to_txn(
            request.transactional_id.0.as_str(),
            request.producer_id.0,
            request.producer_epoch,
            request.group_id.0.as_str(),
        )
        .await;
    AddOffsetsToTxnResponse::default().with_error_code(match result {
        Ok(()) => 0,
        Err(e) => txn_error(&e),
    })
}
