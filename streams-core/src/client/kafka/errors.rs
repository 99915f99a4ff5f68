//! What an `rdkafka` error means for the runtime: Kafka Streams' reading of
//! client exceptions, applied to librdkafka's error codes.
//!
//! - Task migrated (close the tasks dirty, rejoin): a fenced producer, an
//!   invalid producer epoch, an abortable transaction error, an out of
//!   order sequence, an invalid transaction state, and an offset commit
//!   refused because the group moved on (illegal generation, unknown
//!   member, rebalance in progress, assignment lost).
//! - Retriable: librdkafka's retriable errors and Kafka's retriable codes
//!   (timeouts, coordinator moves, leaders moving, transport failures).
//! - Fatal: everything else.
//!
//! The rdkafka error is kept as the source of every error made here.

use std::fmt;
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::error::{ClientErrorKind, StreamsError};

use super::super::client_error;

/// What a librdkafka error code means for the runtime.
pub(super) fn kind_of_code(code: RDKafkaErrorCode) -> ClientErrorKind {
    use RDKafkaErrorCode as C;
    match code {
        C::ProducerFenced
        | C::InvalidProducerEpoch
        | C::Fenced
        | C::OutOfOrderSequenceNumber
        | C::InvalidTransactionalState
        | C::IllegalGeneration
        | C::UnknownMemberId
        | C::RebalanceInProgress
        | C::FencedInstanceId
        | C::AssignmentLost => ClientErrorKind::TaskMigrated,
        C::RequestTimedOut
        | C::NotCoordinator
        | C::CoordinatorNotAvailable
        | C::CoordinatorLoadInProgress
        | C::LeaderNotAvailable
        | C::NotLeaderForPartition
        | C::BrokerNotAvailable
        | C::ReplicaNotAvailable
        | C::NetworkException
        | C::NotEnoughReplicas
        | C::NotEnoughReplicasAfterAppend
        | C::UnknownTopicOrPartition
        | C::KafkaStorageError
        | C::FetchSessionIdNotFound
        | C::InvalidFetchSessionEpoch
        | C::FencedLeaderEpoch
        | C::UnknownLeaderEpoch
        | C::OffsetNotAvailable
        | C::PreferredLeaderNotAvailable
        | C::UnstableOffsetCommit
        | C::ConcurrentTransactions
        | C::ThrottlingQuotaExceeded
        | C::BrokerTransportFailure
        | C::Resolve
        | C::MessageTimedOut
        | C::AllBrokersDown
        | C::OperationTimedOut
        | C::TimedOutQueue
        | C::QueueFull
        | C::WaitingForCoordinator
        | C::Retry => ClientErrorKind::Retriable,
        _ => ClientErrorKind::Fatal,
    }
}

/// What an rdkafka error means for the runtime.
pub(super) fn kind_of(error: &KafkaError) -> ClientErrorKind {
    match error {
        KafkaError::Transaction(e) => {
            let by_code = kind_of_code(e.code());
            if by_code == ClientErrorKind::TaskMigrated || e.txn_requires_abort() {
                ClientErrorKind::TaskMigrated
            } else if e.is_retriable() {
                ClientErrorKind::Retriable
            } else if e.is_fatal() {
                ClientErrorKind::Fatal
            } else {
                by_code
            }
        }
        other => other
            .rdkafka_error_code()
            .map_or(ClientErrorKind::Fatal, kind_of_code),
    }
}

/// Wraps an rdkafka error of `operation`.
pub(super) fn wrap(operation: &'static str) -> impl FnOnce(KafkaError) -> StreamsError {
    move |error| client_error(kind_of(&error), operation, error)
}

/// No broker of `bootstrap.servers` answered in time.
#[derive(Debug)]
pub(super) struct Unreachable {
    pub(super) servers: String,
    pub(super) timeout: Duration,
    pub(super) source: KafkaError,
}

impl fmt::Display for Unreachable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "no broker of bootstrap.servers '{}' answered within {} ms (default.api.timeout.ms): {}",
            self.servers,
            self.timeout.as_millis(),
            self.source
        )
    }
}

impl std::error::Error for Unreachable {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// A topic that an admin call named came back with an error code.
#[derive(Debug)]
pub(super) struct TopicError {
    pub(super) topic: String,
    pub(super) source: KafkaError,
}

impl fmt::Display for TopicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "topic '{}': {}", self.topic, self.source)
    }
}

impl std::error::Error for TopicError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// The error of `topic` with `code` from an admin call.
pub(super) fn topic_error(
    operation: &'static str,
    topic: &str,
    code: RDKafkaErrorCode,
) -> StreamsError {
    client_error(
        kind_of_code(code),
        operation,
        TopicError {
            topic: topic.to_owned(),
            source: KafkaError::AdminOp(code),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_kafka_streams_kinds() {
        use RDKafkaErrorCode as C;
        for code in [
            C::ProducerFenced,
            C::InvalidProducerEpoch,
            C::IllegalGeneration,
            C::UnknownMemberId,
            C::RebalanceInProgress,
            C::AssignmentLost,
        ] {
            assert_eq!(
                kind_of_code(code),
                ClientErrorKind::TaskMigrated,
                "{code:?}"
            );
        }
        for code in [
            C::RequestTimedOut,
            C::NotCoordinator,
            C::BrokerTransportFailure,
            C::MessageTimedOut,
        ] {
            assert_eq!(kind_of_code(code), ClientErrorKind::Retriable, "{code:?}");
        }
        for code in [
            C::TopicAuthorizationFailed,
            C::MessageSizeTooLarge,
            C::InvalidConfig,
        ] {
            assert_eq!(kind_of_code(code), ClientErrorKind::Fatal, "{code:?}");
        }
    }

    #[test]
    fn a_refused_commit_is_task_migrated_and_keeps_its_source() {
        let e = wrap("commit offsets")(KafkaError::ConsumerCommit(
            RDKafkaErrorCode::IllegalGeneration,
        ));
        assert!(e.is_task_migrated());
        let source = std::error::Error::source(&e).map(ToString::to_string);
        assert!(
            source.is_some_and(|s| s.contains("Consumer commit error")),
            "{e}"
        );
        let e = wrap("create a client")(KafkaError::ClientCreation("bad".to_owned()));
        assert_eq!(e.client_error_kind(), Some(ClientErrorKind::Fatal));
    }
}
