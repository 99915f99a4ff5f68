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
