//! The embedded broker's errors as Kafka's error codes, the code a Kafka broker sends in the
//! same case, with messages in Kafka's words where clients print them.

use broker_embedded::BrokerError;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

pub(super) const OFFSET_OUT_OF_RANGE: i16 = 1;
pub(super) const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
pub(super) const INVALID_TOPIC_EXCEPTION: i16 = 17;
pub(super) const TOPIC_ALREADY_EXISTS: i16 = 36;
pub(super) const INVALID_PARTITIONS: i16 = 37;
pub(super) const INVALID_REPLICATION_FACTOR: i16 = 38;
pub(super) const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
pub(super) const INVALID_CONFIG: i16 = 40;
pub(super) const INVALID_REQUEST: i16 = 42;
pub(super) const UNKNOWN_TOPIC_ID: i16 = 100;
pub(super) const UNSUPPORTED_ENDPOINT_TYPE: i16 = 115;

/// An error for one item of a response: Kafka's code and message.
pub(super) type ItemError = (i16, String);

/// `validate_topic_name`'s reasons in Kafka's words (`Topic.validate`).
fn topic_name_message(name: &str, reason: &str) -> String {
    if name.is_empty() {
        "Topic name is illegal, it can't be empty".to_owned()
    } else if name == "." || name == ".." {
        "Topic name cannot be \".\" or \"..\"".to_owned()
    } else if reason.starts_with("longer than") {
        format!("Topic name is illegal, it can't be longer than 249 characters, topic name: {name}")
    } else if reason.starts_with("only ASCII") {
        format!(
            "Topic name \"{name}\" is illegal, it contains a character other than ASCII \
             alphanumerics, '.', '_' and '-'"
        )
    } else {
        format!("Topic name \"{name}\" is illegal: {reason}")
    }
}

/// A config key or value the broker refused, in Kafka's words.
pub(super) fn config_message(key: &str, value: &str, reason: &str) -> String {
    if reason.starts_with("unknown topic config") {
        format!("Unknown topic config name: {key}")
    } else {
        format!("Invalid value {value} for configuration {key}: {reason}")
    }
}

/// A broker error as Kafka reports it.
pub(super) fn from_broker(error: &BrokerError) -> ItemError {
    match error {
        BrokerError::UnknownTopic { topic } => (
            UNKNOWN_TOPIC_OR_PARTITION,
            format!("The topic '{topic}' does not exist."),
        ),
        BrokerError::UnknownPartition { .. } => (UNKNOWN_TOPIC_OR_PARTITION, error.to_string()),
        BrokerError::InvalidTopicName { name, reason } => {
            (INVALID_TOPIC_EXCEPTION, topic_name_message(name, reason))
        }
        BrokerError::TopicExists { topic } => (
            TOPIC_ALREADY_EXISTS,
            format!("Topic '{topic}' already exists."),
        ),
        BrokerError::InvalidPartitions { reason, .. } => (INVALID_PARTITIONS, reason.clone()),
        BrokerError::InvalidConfig { key, value, reason } if key == "partitions" => (
            INVALID_PARTITIONS,
            format!("Invalid number of partitions {value}: {reason}"),
        ),
        BrokerError::InvalidConfig { key, value, reason } => {
            (INVALID_CONFIG, config_message(key, value, reason))
        }
        BrokerError::OffsetOutOfRange { .. } => (OFFSET_OUT_OF_RANGE, error.to_string()),
        e => (response_error(e).code(), e.to_string()),
    }
}

/// Kafka's error for a broker error: the code a Kafka broker sends in the same case.
pub(super) fn response_error(e: &BrokerError) -> ResponseError {
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
        B::GroupRefused { code, .. } => {
            ResponseError::try_from_code(code.code()).unwrap_or(ResponseError::UnknownServerError)
        }
        _ => ResponseError::UnknownServerError,
    }
}

/// `(error code, message)` for a response that carries both.
pub(super) fn error_and_message(e: &BrokerError) -> (i16, Option<StrBytes>) {
    (
        response_error(e).code(),
        Some(StrBytes::from_string(e.to_string())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_errors_get_kafka_codes_and_words() {
        let e = BrokerError::TopicExists { topic: "t".into() };
        assert_eq!(from_broker(&e), (36, "Topic 't' already exists.".into()));
        let e = BrokerError::InvalidConfig {
            key: "retention.ms".into(),
            value: "soon".into(),
            reason: "not an integer".into(),
        };
        assert_eq!(
            from_broker(&e),
            (
                40,
                "Invalid value soon for configuration retention.ms: not an integer".into()
            )
        );
        let e = BrokerError::InvalidConfig {
            key: "no.such".into(),
            value: "1".into(),
            reason: "unknown topic config; known: ...".into(),
        };
        assert_eq!(from_broker(&e).1, "Unknown topic config name: no.such");
        let e = broker_embedded::validate_topic_name("a b").unwrap_err();
        assert_eq!(from_broker(&e).0, 17);
        assert!(from_broker(&e).1.contains("ASCII alphanumerics"));
    }
}
