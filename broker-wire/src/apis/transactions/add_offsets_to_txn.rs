//! AddOffsetsToTxn: a consumer group's offsets partition joins the producer's transaction,
//! before its TxnOffsetCommit.

use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};

use super::{fenced_as, txn_error};
use crate::context::Context;

/// The first AddOffsetsToTxn version that carries `PRODUCER_FENCED`.
const FENCED_SINCE: i16 = 2;

pub(crate) async fn respond(
    context: &Context,
    request: AddOffsetsToTxnRequest,
    version: i16,
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
        Err(e) => fenced_as(txn_error(&e), version, FENCED_SINCE),
    })
}
