//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong in the embedded broker.
///
/// Fail-stop errors (I/O, corruption, a failed fsync) are kept apart from
/// expected outcomes (an unknown topic, an offset out of range): see
/// [`BrokerError::is_fatal`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrokerError {
    /// Another broker (in this or another process) holds the data dir.
    #[error(
        "data dir {dir} is locked by another broker (a process holds the OS lock on the \
         directory; it is released when that process exits)"
    )]
    DirLocked {
        /// The data dir.
        dir: PathBuf,
    },

    /// A partition's log cannot be trusted past `offset`: it is offline. Offsets below
    /// `offset` can still be read; appends are refused until an operator repairs it (see
    /// `streams topics repair`).
    #[error(
        "partition {topic}-{partition} is offline: {reason} (file {file}, offset {offset}); \
         offsets below {offset} can still be read, and `streams topics repair --topic {topic} \
         --partition {partition}` shows what a repair would drop"
    )]
    PartitionOffline {
        /// The topic.
        topic: String,
        /// The partition.
        partition: u32,
        /// The damaged file.
        file: PathBuf,
        /// The first offset that cannot be read.
        offset: u64,
        /// What is wrong.
        reason: String,
    },

    /// A group's committed offsets live in a `__consumer_offsets` partition that could not be
    /// read when the broker opened: they can neither be read nor committed.
    #[error(
        "group {group}: its committed offsets are in __consumer_offsets-{partition}, which is \
         offline: {reason}; the group cannot read or commit offsets until the partition is \
         repaired (`streams topics repair --topic __consumer_offsets --partition {partition}`)"
    )]
    GroupOffsetsOffline {
        /// The group.
        group: String,
        /// The `__consumer_offsets` partition.
        partition: u32,
        /// Why it is offline (names the file and offset).
        reason: String,
    },

    /// A transactional id's state lives in a `__transaction_state` partition that could not
    /// be read when the broker opened: the id cannot initialize.
    #[error(
        "transactional producer {transactional_id:?}: its state is in \
         __transaction_state-{partition}, which is offline: {reason}; it cannot initialize \
         until the partition is repaired (`streams topics repair --topic __transaction_state \
         --partition {partition}`)"
    )]
    TransactionStateOffline {
        /// The transactional id.
        transactional_id: String,
        /// The `__transaction_state` partition.
        partition: u32,
        /// Why it is offline.
        reason: String,
    },

    /// A read-only open found no broker in the dir.
    #[error("no broker in {dir}: it has no topic metadata ({dir}/meta/topics)")]
    NoBroker {
        /// The dir.
        dir: PathBuf,
    },

    /// The broker was opened read-only (`BrokerConfig::read_only`) and was asked to write.
    #[error("the broker is open read-only: cannot {what}")]
    ReadOnly {
        /// What was refused.
        what: String,
    },

    /// An I/O operation on a file or directory failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A batch failed its checks (CRC, length, offsets) when it was read.
    #[error("partition {topic}-{partition}: corrupt batch at offset {offset} in {file}: {reason}")]
    CorruptBatch {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: u32,
        /// The offset (or expected base offset) of the corrupt batch.
        offset: u64,
        /// The segment file holding it.
        file: PathBuf,
        /// What check failed.
        reason: String,
    },

    /// A metadata or checkpoint file could not be parsed.
    #[error("corrupt metadata file {file}: {reason}")]
    CorruptMetadata {
        /// The file.
        file: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// A topic name breaks Kafka's naming rules.
    #[error("invalid topic name {name:?}: {reason}")]
    InvalidTopicName {
        /// The rejected name.
        name: String,
        /// Which rule it breaks.
        reason: &'static str,
    },

    /// A topic with this name exists already.
    #[error("topic {topic} already exists")]
    TopicExists {
        /// Topic name.
        topic: String,
    },

    /// No topic with this name exists.
    #[error("unknown topic {topic}")]
    UnknownTopic {
        /// Topic name.
        topic: String,
    },

    /// The topic exists but has no such partition.
    #[error("topic {topic} has {partitions} partitions; partition {partition} does not exist")]
    UnknownPartition {
        /// Topic name.
        topic: String,
        /// The requested partition.
        partition: u32,
        /// How many partitions the topic has.
        partitions: u32,
    },

    /// A partition count change that cannot be made: fewer or as many partitions as the
    /// topic has (partitions can only be added), or a topic whose count is fixed.
    #[error("topic {topic}: {reason}")]
    InvalidPartitions {
        /// Topic name.
        topic: String,
        /// Why, in Kafka's words.
        reason: String,
    },

    /// A fetch asked for an offset outside `[log start, log end]`.
    #[error(
        "partition {topic}-{partition}: offset {offset} is out of range [{log_start_offset}, {log_end_offset}]"
    )]
    OffsetOutOfRange {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: u32,
        /// The requested offset.
        offset: u64,
        /// The first offset still in the log.
        log_start_offset: u64,
        /// The offset the next record will get.
        log_end_offset: u64,
    },

    /// A consumer has no position for a partition and `auto.offset.reset` is `none`.
    #[error(
        "partition {topic}-{partition}: no offset to start from and auto.offset.reset is none"
    )]
    NoOffsetForPartition {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: u32,
    },

    /// A configuration key or value is not valid.
    #[error("invalid config {key}={value:?}: {reason}")]
    InvalidConfig {
        /// The config key, with Kafka's name.
        key: String,
        /// The rejected value.
        value: String,
        /// Why it was rejected.
        reason: String,
    },

    /// A record was refused by the broker (too large, no key for a compacted topic, ...).
    #[error("topic {topic}: record rejected: {reason}")]
    InvalidRecord {
        /// Topic name.
        topic: String,
        /// Why it was refused.
        reason: String,
    },

    /// A batch is larger than the topic's `max.message.bytes` (Kafka's
    /// `MESSAGE_TOO_LARGE`).
    #[error("topic {topic}: record rejected: batch of {size} bytes is larger than max.message.bytes ({max})")]
    RecordTooLarge {
        /// Topic name.
        topic: String,
        /// The batch's size in bytes.
        size: u64,
        /// The topic's `max.message.bytes`.
        max: u64,
    },

    /// A batch sent by a client fails its checks: a CRC that does not match, a record that
    /// does not parse (Kafka's `CORRUPT_MESSAGE`).
    #[error("topic {topic}: corrupt batch rejected: {reason}")]
    CorruptRecord {
        /// Topic name.
        topic: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The group coordinator refused a request of a Kafka client with one of Kafka's group
    /// errors (a member or generation it does not know, a rebalance in progress, ...).
    #[error("consumer group {group}: {code:?}")]
    GroupRefused {
        /// The group.
        group: String,
        /// Kafka's error.
        code: crate::group::GroupErrorCode,
    },

    /// A write or an fsync failed earlier: the partition refuses further writes, because
    /// what reached the disk is unknown and retrying an fsync can silently lose data.
    #[error(
        "partition {topic}-{partition} refuses writes after a failed write or fsync (what reached \
         the disk is unknown); reopen the broker, whose recovery checks the log"
    )]
    LogPoisoned {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: u32,
    },

    /// An offset commit was refused because the committer is no longer part of the group's
    /// current generation (Kafka's `CommitFailedException`: illegal generation or unknown
    /// member). The group has rebalanced; the consumer rejoins on its next poll.
    #[error(
        "group {group}: offset commit by member {member_id:?} of generation {generation} \
         failed: {reason}; the group has rebalanced and the partitions may belong to another \
         member now; poll again to rejoin"
    )]
    CommitFailed {
        /// The group.
        group: String,
        /// The committing member (empty outside group management).
        member_id: String,
        /// The generation the commit was made with.
        generation: i32,
        /// Why it was refused.
        reason: String,
    },

    /// An admin operation that needs an inactive group found members in it.
    #[error(
        "group {group} has {members} active member(s) (state {state}); offsets can only be \
         changed while the group is inactive: stop its consumers first"
    )]
    GroupNotEmpty {
        /// The group.
        group: String,
        /// Its state.
        state: String,
        /// How many members it has.
        members: usize,
    },

    /// No group with this id is known (no members, no committed offsets).
    #[error("consumer group {group} does not exist")]
    GroupIdNotFound {
        /// The group.
        group: String,
    },

    /// A member asked for an assignment strategy other than the one the group uses.
    #[error(
        "group {group}: partition.assignment.strategy {strategy} is not the group's strategy \
         {group_strategy}; all members of a group must use the same strategy"
    )]
    InconsistentGroupProtocol {
        /// The group.
        group: String,
        /// The strategy the joining member asked for.
        strategy: String,
        /// The strategy the group's members use.
        group_strategy: String,
    },

    /// A call does not fit the consumer's state (Kafka's `IllegalStateException`), such as
    /// `assign` while subscribed.
    #[error("illegal consumer state: {reason}")]
    IllegalState {
        /// What is wrong.
        reason: String,
    },

    /// The metadata string of a commit is longer than `offset.metadata.max.bytes`.
    #[error(
        "group {group}: metadata for {topic}-{partition} is {size} bytes, more than \
         offset.metadata.max.bytes ({max})"
    )]
    OffsetMetadataTooLarge {
        /// The group.
        group: String,
        /// Topic.
        topic: String,
        /// Partition.
        partition: u32,
        /// The metadata's size in bytes.
        size: usize,
        /// The limit.
        max: usize,
    },

    /// A relative offset reset found no committed offset to start from.
    #[error("group {group} has no committed offset for {topic}-{partition} to shift from")]
    NoCommittedOffset {
        /// The group.
        group: String,
        /// Topic.
        topic: String,
        /// Partition.
        partition: u32,
    },

    /// A record of `__consumer_offsets` passed the log's checks but cannot be decoded.
    #[error(
        "__consumer_offsets-{partition}: record at offset {offset} cannot be decoded: {reason}"
    )]
    CorruptOffsetsRecord {
        /// The `__consumer_offsets` partition.
        partition: u32,
        /// The record's offset.
        offset: u64,
        /// What is wrong with it.
        reason: String,
    },

    /// A batch of an idempotent producer does not follow its last sequence number in the
    /// partition (a batch was lost in between): Kafka's `OutOfOrderSequenceException`.
    #[error(
        "partition {topic}-{partition}: out of order sequence from producer {producer_id}: \
         expected {expected}, got {received}"
    )]
    OutOfOrderSequence {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: u32,
        /// The producer id.
        producer_id: i64,
        /// The sequence the partition expected.
        expected: i32,
        /// The batch's base sequence.
        received: i32,
    },

    /// A batch carries an older producer epoch than the partition has seen: a newer producer
    /// with the same id (or transactional id) exists. Kafka's `InvalidProducerEpochException`.
    #[error(
        "partition {topic}-{partition}: producer {producer_id} epoch {epoch} is older than \
         the current epoch {current_epoch}; the producer was fenced"
    )]
    InvalidProducerEpoch {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: u32,
        /// The producer id.
        producer_id: i64,
        /// The batch's epoch.
        epoch: i16,
        /// The partition's epoch for the producer.
        current_epoch: i16,
    },

    /// Another producer with the same `transactional.id` called `init_transactions`, or the
    /// broker aborted this producer's transaction after `transaction.timeout.ms`: this
    /// producer can do nothing more (Kafka's `ProducerFencedException`). Close it.
    #[error(
        "transactional producer {transactional_id:?} (producer id {producer_id}, epoch \
         {epoch}) is fenced: {reason}"
    )]
    ProducerFenced {
        /// The `transactional.id`.
        transactional_id: String,
        /// The producer id.
        producer_id: i64,
        /// The producer's epoch.
        epoch: i16,
        /// Why.
        reason: String,
    },

    /// A transactional call does not fit the producer's state (Kafka's
    /// `IllegalStateException` / `INVALID_TXN_STATE`), such as `send` before
    /// `begin_transaction`.
    #[error("transactional producer {transactional_id:?}: invalid transaction state: {reason}")]
    InvalidTxnState {
        /// The `transactional.id` (empty for a producer without one).
        transactional_id: String,
        /// What is wrong.
        reason: String,
    },

    /// A record of `__transaction_state` passed the log's checks but cannot be decoded.
    #[error(
        "__transaction_state-{partition}: record at offset {offset} cannot be decoded: {reason}"
    )]
    CorruptTransactionRecord {
        /// The `__transaction_state` partition.
        partition: u32,
        /// The record's offset.
        offset: u64,
        /// What is wrong with it.
        reason: String,
    },

    /// The broker was closed.
    #[error("the broker is closed")]
    Closed,
}

impl BrokerError {
    /// True for fail-stop errors (I/O, corruption, poisoning) as opposed to expected outcomes
    /// that a caller can handle (unknown topic, offset out of range, invalid input).
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            BrokerError::Io { .. }
                | BrokerError::CorruptBatch { .. }
                | BrokerError::CorruptMetadata { .. }
                | BrokerError::LogPoisoned { .. }
                | BrokerError::PartitionOffline { .. }
                | BrokerError::GroupOffsetsOffline { .. }
                | BrokerError::TransactionStateOffline { .. }
                | BrokerError::CorruptOffsetsRecord { .. }
                | BrokerError::CorruptTransactionRecord { .. }
        )
    }

    /// For the errors that mean a partition's log is offline (`PartitionOffline`, and a
    /// `CorruptBatch` a read just found): the damage in words, naming the file and offset.
    pub(crate) fn offline_reason(&self) -> Option<String> {
        match self {
            BrokerError::PartitionOffline {
                file,
                offset,
                reason,
                ..
            }
            | BrokerError::CorruptBatch {
                file,
                offset,
                reason,
                ..
            } => Some(format!(
                "{reason} (file {}, offset {offset})",
                file.display()
            )),
            _ => None,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        BrokerError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = BrokerError> = std::result::Result<T, E>;
