//! The transaction APIs: what Kafka's idempotent and transactional producers send to their
//! transaction coordinator (this broker), and the admin views of producers and
//! transactions. The coordinator is the embedded broker's; these handlers translate.

mod add_offsets_to_txn;
mod add_partitions_to_txn;
mod describe_producers;
mod describe_transactions;
mod end_txn;
mod init_producer_id;
mod list_transactions;
mod txn_offset_commit;

pub(super) use add_offsets_to_txn::respond as add_offsets_to_txn;
pub(super) use add_partitions_to_txn::respond as add_partitions_to_txn;
pub(super) use describe_producers::respond as describe_producers;
pub(super) use describe_transactions::respond as describe_transactions;
pub(super) use end_txn::respond as end_txn;
pub(super) use init_producer_id::respond as init_producer_id;
pub(super) use list_transactions::respond as list_transactions;
pub(super) use txn_offset_commit::respond as txn_offset_commit;

use broker_embedded::BrokerError;
use kafka_protocol::ResponseError;

use super::errors::response_error;

/// A coordinator error as a transactional producer expects it. `InvalidConfig` here is
/// always the transaction timeout, and an unknown transactional id is
/// `INVALID_PRODUCER_ID_MAPPING` (Kafka's answer when the id has no producer).
fn txn_error(e: &BrokerError) -> i16 {
    match e {
        BrokerError::InvalidConfig { .. } => ResponseError::InvalidTransactionTimeout.code(),
        BrokerError::InvalidTxnState { reason, .. }
            if reason.starts_with("unknown transactional id") =>
        {
            ResponseError::InvalidProducerIdMapping.code()
        }
        e => response_error(e).code(),
    }
}

/// `code` as a client of `version` of an API that has carried `PRODUCER_FENCED` since
/// version `fenced_since` knows it: Kafka added that code (KIP-588, Kafka 2.7) and answers
/// older versions `INVALID_PRODUCER_EPOCH`, which their clients handle as fencing (kafkajs,
/// at EndTxn v1, fails on a code it does not know).
fn fenced_as(code: i16, version: i16, fenced_since: i16) -> i16 {
    if code == ResponseError::ProducerFenced.code() && version < fenced_since {
        ResponseError::InvalidProducerEpoch.code()
    } else {
        code
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn producer_fenced_is_invalid_producer_epoch_before_its_version() {
        let fenced = ResponseError::ProducerFenced.code();
        let epoch = ResponseError::InvalidProducerEpoch.code();
        assert_eq!(fenced_as(fenced, 1, 2), epoch);
        assert_eq!(fenced_as(fenced, 2, 2), fenced);
        assert_eq!(fenced_as(0, 0, 2), 0);
        assert_eq!(fenced_as(epoch, 5, 2), epoch);
    }
}
