//! The embedded broker's errors as Kafka's error codes, with the message clients print.

use broker_embedded::BrokerError;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

/// Kafka's error for a broker error: the code a Kafka broker sends in the same case.
pub(crate) fn response_error(e: &BrokerError) -> ResponseError {
    use BrokerError as B;
    match e {
        B::UnknownTopic { .. } | B::UnknownPartition { .. } => {
            ResponseError::UnknownTopicOrPartition
        }
        B::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        B::InvalidTopicName { .. } => ResponseError::InvalidTopicException,
        B::TopicExists { .. } => ResponseError::TopicAlreadyExists,
        B::InvalidConfig { .. } => ResponseError::InvalidConfig,
        B::InvalidRecord { .. } => ResponseError::InvalidRecord,
        B::CorruptRecord { .. } => ResponseError::CorruptMessage,
        B::RecordTooLarge { .. } => ResponseError::MessageTooLarge,
        B::OutOfOrderSequence { .. } => ResponseError::OutOfOrderSequenceNumber,
        B::InvalidProducerEpoch { .. } => ResponseError::InvalidProducerEpoch,
        B::ProducerFenced { .. } => ResponseError::ProducerFenced,
        B::InvalidTxnState { .. } => ResponseError::InvalidTxnState,
        B::GroupNotEmpty { .. } => ResponseError::NonEmptyGroup,
        B::GroupIdNotFound { .. } => ResponseError::GroupIdNotFound,
        B::InconsistentGroupProtocol { .. } => ResponseError::InconsistentGroupProtocol,
        B::OffsetMetadataTooLarge { .. } => ResponseError::OffsetMetadataTooLarge,
        B::GroupOffsetsOffline { .. } | B::TransactionStateOffline { .. } => {
            ResponseError::CoordinatorNotAvailable
        }
        // The partition's storage cannot serve it: what Kafka answers for an offline log dir.
        B::PartitionOffline { .. }
        | B::CorruptBatch { .. }
        | B::LogPoisoned { .. }
        | B::Io { .. }
        | B::ReadOnly { .. } => ResponseError::KafkaStorageError,
        // Shutting down: the client retries elsewhere (or here, after a restart).
        B::Closed => ResponseError::NotLeaderOrFollower,
        _ => ResponseError::UnknownServerError,
    }
}

/// `(error code, message)` for a response that carries both.
pub(crate) fn error_and_message(e: &BrokerError) -> (i16, Option<StrBytes>) {
    (
        response_error(e).code(),
        Some(StrBytes::from_string(e.to_string())),
    )
}
