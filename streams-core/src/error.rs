//! The crate's error type.

use state_store::StoreError;

use crate::serdes::SerdeError;

/// A boxed error from user code (a processor, a punctuator).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What a failed client call means for the runtime, as Kafka Streams
/// classifies client exceptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ClientErrorKind {
    /// Transient (a timeout, a coordinator moving, a rebalance in
    /// progress): the call may succeed if made again.
    Retriable,
    /// The thread's tasks moved to another member or its producer was
    /// fenced (Kafka Streams' `TaskMigratedException`): the thread closes
    /// its tasks dirty, rejoins the group and goes on from the last commit.
    TaskMigrated,
    /// The thread cannot go on (I/O, corruption, authorization, a record
    /// too large, a missing topic).
    Fatal,
}

impl std::fmt::Display for ClientErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Retriable => "retriable",
            Self::TaskMigrated => "task migrated",
            Self::Fatal => "fatal",
        })
    }
}

/// The result type of every fallible operation in this crate.
pub type Result<T, E = StreamsError> = std::result::Result<T, E>;

/// Everything that can go wrong while building or running a topology.
///
/// Topology errors ([`StreamsError::DuplicateName`],
/// [`StreamsError::UnknownParent`], ...) are returned by the
/// [`crate::Topology`] builder as soon as the offending call is made;
/// configuration errors name the key; processing errors name the topic,
/// partition and offset, the node or the store involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StreamsError {
    /// Two nodes (sources, processors, sinks) or two stores share a name.
    #[error("a {kind} named '{name}' is already in the topology; names must be unique")]
    DuplicateName {
        /// `"node"` or `"state store"`.
        kind: &'static str,
        /// The repeated name.
        name: String,
    },

    /// A node names a parent that is not in the topology.
    #[error(
        "node '{node}' names parent '{parent}', which is not in the topology; add '{parent}' first"
    )]
    UnknownParent {
        /// The node being added.
        node: String,
        /// The missing parent.
        parent: String,
    },

    /// A node names a parent that cannot have children (a sink), or itself.
    #[error("node '{node}' cannot have '{parent}' as a parent: {reason}")]
    InvalidParent {
        /// The node being added.
        node: String,
        /// The rejected parent.
        parent: String,
        /// Why.
        reason: &'static str,
    },

    /// A processor or sink was added without parents.
    #[error("node '{node}' must have at least one parent")]
    NoParents {
        /// The node being added.
        node: String,
    },

    /// A store was attached to a processor that is not in the topology.
    #[error("state store '{store}' is attached to processor '{processor}', which is not in the topology; add the processor first")]
    UnknownProcessor {
        /// The store.
        store: String,
        /// The missing processor.
        processor: String,
    },

    /// A store was attached to a source or a sink.
    #[error(
        "state store '{store}' cannot be attached to {kind} '{node}': only processors have stores"
    )]
    NotAProcessor {
        /// The store.
        store: String,
        /// The node.
        node: String,
        /// `"source"` or `"sink"`.
        kind: &'static str,
    },

    /// A processor was connected to a store that is not in the topology.
    #[error("processor '{processor}' is connected to state store '{store}', which is not in the topology; add it with Topology::add_state_store first")]
    UnknownStore {
        /// The processor.
        processor: String,
        /// The missing store.
        store: String,
    },

    /// A topic is read by two sources.
    #[error("topic '{topic}' is already read by source '{existing}'; source '{source_node}' cannot read it too")]
    TopicAlreadySubscribed {
        /// The topic.
        topic: String,
        /// The source being added.
        source_node: String,
        /// The source that reads it already.
        existing: String,
    },

    /// A node's input types differ from its parent's output types.
    #[error(
        "node '{node}' takes records of ({expected}) but its parent '{parent}' forwards ({found})"
    )]
    TypeMismatch {
        /// The node being added.
        node: String,
        /// The parent.
        parent: String,
        /// The node's input key and value types.
        expected: String,
        /// The parent's output key and value types.
        found: String,
    },

    /// A topology that cannot run (no sources, an empty topic name, ...).
    #[error("invalid topology: {reason}")]
    InvalidTopology {
        /// What is wrong.
        reason: String,
    },

    /// A configuration value that cannot be used.
    #[error("invalid value {value:?} for configuration '{key}': {reason}")]
    InvalidConfig {
        /// The configuration key.
        key: String,
        /// The rejected value.
        value: String,
        /// What was expected.
        reason: String,
    },

    /// A required configuration key is missing.
    #[error("missing required configuration '{key}'")]
    MissingConfig {
        /// The configuration key.
        key: &'static str,
    },

    /// A serializer or deserializer failed.
    #[error(transparent)]
    Serde(#[from] SerdeError),

    /// An input record could not be deserialized and the deserialization
    /// exception handler is `fail`.
    #[error(
        "cannot deserialize the {part} of the record at {topic}-{partition}@{offset}: {source}; \
         set default.deserialization.exception.handler to log-and-continue or \
         dead-letter-topic to skip such records"
    )]
    Deserialization {
        /// The input topic.
        topic: String,
        /// The partition.
        partition: u32,
        /// The record's offset.
        offset: u64,
        /// `"key"` or `"value"`.
        part: &'static str,
        /// The deserializer's error.
        #[source]
        source: SerdeError,
    },

    /// An input record has a negative timestamp and the timestamp
    /// extractor fails on invalid timestamps (the default).
    #[error(
        "record at {topic}-{partition}@{offset} has invalid timestamp {timestamp}; \
         timestamps must be epoch milliseconds >= 0; set default.timestamp.extractor (or the \
         source's extractor) to log-and-skip-on-invalid or use-previous-on-invalid to go on"
    )]
    InvalidTimestamp {
        /// The input topic.
        topic: String,
        /// The partition.
        partition: u32,
        /// The record's offset.
        offset: u64,
        /// The rejected timestamp.
        timestamp: i64,
    },

    /// A state store operation failed.
    #[error(transparent)]
    Store(#[from] StoreError),

    /// A processor asked for a store it is not connected to.
    #[error(
        "processor '{processor}' has no access to state store '{store}'; connect them with \
         Topology::connect_processor_and_state_stores"
    )]
    StoreNotConnected {
        /// The processor.
        processor: String,
        /// The store.
        store: String,
    },

    /// A store was accessed with key or value types other than its own.
    #[error("state store '{store}' holds ({actual}), not ({requested})")]
    StoreTypeMismatch {
        /// The store.
        store: String,
        /// The store's key and value types.
        actual: String,
        /// The types asked for.
        requested: String,
    },

    /// A key-value store was accessed as a window store, or the reverse.
    #[error("state store '{store}' is a {actual} store, not a {requested} store")]
    StoreKindMismatch {
        /// The store.
        store: String,
        /// The store's kind.
        actual: &'static str,
        /// The kind asked for.
        requested: &'static str,
    },

    /// No store of that name exists.
    #[error("no state store named '{store}' in the topology")]
    NoSuchStore {
        /// The store.
        store: String,
    },

    /// An interactive query that the store's kind does not answer (a range
    /// of a versioned store, the windows of a key-value store).
    #[error("state store '{store}' is a {kind} store: {query} is not supported on it")]
    UnsupportedQuery {
        /// The store.
        store: String,
        /// The store's kind.
        kind: &'static str,
        /// The query.
        query: &'static str,
    },

    /// `forward_to` named a node that is not a child of the forwarding node.
    #[error("node '{node}' has no child named '{child}'")]
    UnknownChild {
        /// The forwarding node.
        node: String,
        /// The name given.
        child: String,
    },

    /// A processor that runs inline (`stateless_fn`) asked for punctuation.
    #[error("processor '{processor}' runs inline (a stateless_fn) and cannot schedule punctuation; make it with processor_fn or as a Processor")]
    InlineSchedule {
        /// The processor.
        processor: String,
    },

    /// A punctuation interval below one millisecond.
    #[error("punctuation interval of {interval_ms} ms is invalid; the minimum is 1 ms")]
    InvalidInterval {
        /// The interval, in milliseconds, rounded down.
        interval_ms: u128,
    },

    /// A topic that the test driver cannot pipe into.
    #[error("topic '{topic}' is not read by any source of the topology")]
    UnknownTopic {
        /// The topic.
        topic: String,
    },

    /// An output topic was read with nothing left in it.
    #[error("output topic '{topic}' has no more records")]
    EmptyTopic {
        /// The topic.
        topic: String,
    },

    /// An operation that requires a key met a null key.
    #[error("{operation} does not accept records with a null key (topic '{topic}')")]
    NullKey {
        /// What was attempted.
        operation: &'static str,
        /// The topic.
        topic: String,
    },

    /// The test driver was used after `close`.
    #[error("the topology test driver is closed")]
    Closed,

    /// An error returned by user code: a processor or a punctuator.
    #[error("processor error: {0}")]
    User(#[source] BoxError),

    /// A client call (consumer, producer, admin) failed, on the embedded
    /// broker or on Kafka; `kind` says what the runtime does about it and
    /// `source` keeps the backend's own error.
    #[error("{operation} failed ({kind}): {source}")]
    Client {
        /// Retriable, task migrated or fatal.
        kind: ClientErrorKind,
        /// What was attempted, e.g. `commit offsets`.
        operation: &'static str,
        /// The backend's error.
        #[source]
        source: BoxError,
    },

    /// Sources that share a task read topics with different partition
    /// counts.
    #[error(
        "sub-topology {subtopology} reads topics that must be co-partitioned but have different \
         partition counts: {topics}; give them the same number of partitions"
    )]
    CoPartitioning {
        /// The sub-topology.
        subtopology: u32,
        /// Each topic with its partition count, e.g. `orders (3), customers (4)`.
        topics: String,
    },

    /// A topic the topology reads does not exist.
    #[error("source topic '{topic}' does not exist; create it before starting the application")]
    MissingSourceTopic {
        /// The topic.
        topic: String,
    },

    /// An existing internal topic has the wrong number of partitions.
    #[error(
        "internal topic '{topic}' has {actual} partitions but needs {expected}; delete it or \
         reset the application"
    )]
    InternalTopicMismatch {
        /// The topic.
        topic: String,
        /// Its partition count.
        actual: u32,
        /// The count it needs.
        expected: u32,
    },

    /// A `StreamsApp` call that its current state does not allow.
    #[error("cannot {operation} a streams application in state {state}")]
    IllegalState {
        /// What was attempted.
        operation: &'static str,
        /// The state it was in.
        state: String,
    },

    /// A feature that is not available yet.
    #[error("{feature} is not supported yet")]
    Unsupported {
        /// What was asked for.
        feature: String,
    },

    /// User code panicked while a task processed or punctuated.
    #[error("task {task} panicked: {message}")]
    Panicked {
        /// The task.
        task: String,
        /// The panic message.
        message: String,
    },

    /// A strict suppression buffer is full: the application stops rather
    /// than emit a result early (Kafka's `shutDownWhenFull`).
    #[error(
        "suppression buffer '{store}' of '{processor}' is full ({limit}); raise the limit of \
         its StrictBufferConfig, or use a BufferConfig that emits early when full"
    )]
    SuppressionBufferFull {
        /// The suppression processor.
        processor: String,
        /// The buffer's store.
        store: String,
        /// The limit reached, e.g. `max_records = 100`.
        limit: String,
    },

    /// A broken internal invariant.
    #[error("internal error: {0}; this is a bug, please report it")]
    Internal(String),
}

impl StreamsError {
    /// The kind of a client error; `None` for every other error.
    pub fn client_error_kind(&self) -> Option<ClientErrorKind> {
        match self {
            Self::Client { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// Whether this is a client error that means the thread's tasks moved
    /// or its producer was fenced.
    pub fn is_task_migrated(&self) -> bool {
        self.client_error_kind() == Some(ClientErrorKind::TaskMigrated)
    }

    /// Wraps an error from user code, to return it from
    /// [`crate::Processor::process`] or a punctuator.
    pub fn user(error: impl Into<BoxError>) -> Self {
        Self::User(error.into())
    }

    pub(crate) fn invalid_topology(reason: impl Into<String>) -> Self {
        Self::InvalidTopology {
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid_config(
        key: impl Into<String>,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Self::InvalidConfig {
            key: key.into(),
            value: value.into(),
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_what_to_fix() {
        let e = StreamsError::UnknownParent {
            node: "count".into(),
            parent: "split".into(),
        };
        assert_eq!(
            e.to_string(),
            "node 'count' names parent 'split', which is not in the topology; add 'split' first"
        );
        let e = StreamsError::invalid_config("commit.interval.ms", "-1", "expected a number >= 0");
        assert_eq!(
            e.to_string(),
            "invalid value \"-1\" for configuration 'commit.interval.ms': expected a number >= 0"
        );
        let e = StreamsError::user("boom");
        assert_eq!(e.to_string(), "processor error: boom");
    }
}
