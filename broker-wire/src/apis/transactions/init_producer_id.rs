//! InitProducerId: a producer id and epoch for an idempotent producer, or for a
//! transactional id (bumping the epoch fences the id's previous producer).

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::{fenced_as, txn_error};
use crate::context::Context;

/// The first InitProducerId version that carries `PRODUCER_FENCED`.
const FENCED_SINCE: i16 = 4;

pub(crate) async fn respond(
    context: &Context,
    request: InitProducerIdRequest,
    version: i16,
) -> InitProducerIdResponse {
    let id = request.transactional_id.as_ref().map(|t| t.0.as_str());
    let response = InitProducerIdResponse::default();
    match context
        .broker
        .init_producer_id(id, request.transaction_timeout_ms)
        .await
    {
        Ok((producer_id, epoch)) => response
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(epoch),
        Err(e) => response
            .with_error_code(fenced_as(txn_error(&e), version, FENCED_SINCE))
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    }
}
