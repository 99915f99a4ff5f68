//! The client seam: what the runtime needs of a Kafka-protocol broker, in
//! the roles of Kafka Streams' `KafkaClientSupplier`: the main consumer of
//! a stream thread (a group member with a rebalance listener), the restore
//! consumer (assigned changelog partitions), the producer (idempotent, or
//! transactional under exactly-once) and the admin client (internal
//! topics, partition counts, purges).
//!
//! Two backends implement it: [`embedded`], the in-process broker of
//! `broker-embedded` (the default), and [`kafka`], any Kafka-protocol
//! broker through `rdkafka`. The runtime names neither: it holds a
//! [`ClientSupplier`] and the trait objects it makes.
//!
//! Every failure of a client comes back as a [`StreamsError::Client`] whose
//! [`ClientErrorKind`] tells the runtime what to do: retry, close the tasks
//! dirty and rejoin (task migrated, fenced), or stop the thread.
//!
//! The calls are asynchronous where a backend may wait (poll, commit,
//! transactions); the rebalance listener is synchronous, as Kafka's, and
//! gets a [`RebalanceConsumer`] whose calls complete before they return.

pub(crate) mod embedded;
pub(crate) mod kafka;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::error::{ClientErrorKind, Result, StreamsError};
use crate::record::{Header, Headers};

/// A boxed future, for the seam's asynchronous calls.
///
/// Not `Send`: each stream thread and each sender thread drives its own
/// futures on a single-threaded runtime.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// A partition of a topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct TopicPartition {
    pub(crate) topic: String,
    pub(crate) partition: u32,
}

impl TopicPartition {
    pub(crate) fn new(topic: impl Into<String>, partition: u32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// A committed offset (the next offset to read) with its metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OffsetAndMetadata {
    pub(crate) offset: u64,
    pub(crate) metadata: String,
}

/// Input offsets to commit.
pub(crate) type Offsets = HashMap<TopicPartition, OffsetAndMetadata>;

/// A consumed record.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct InRecord {
    pub(crate) offset: u64,
    pub(crate) timestamp: i64,
    pub(crate) key: Option<Bytes>,
    pub(crate) value: Option<Bytes>,
    pub(crate) headers: Headers,
}

/// Records of one partition, in offset order, as one poll returned them.
#[derive(Debug)]
pub(crate) struct PolledRun {
    pub(crate) topic: Arc<str>,
    pub(crate) partition: u32,
    pub(crate) records: Vec<InRecord>,
}

/// A record to send, borrowed from a task's output.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OutRecord<'a> {
    /// The physical topic.
    pub(crate) topic: &'a str,
    /// A pinned partition (changelogs); `None` lets the partitioner choose
    /// by key (murmur2, as Kafka's default partitioner).
    pub(crate) partition: Option<u32>,
    pub(crate) timestamp: i64,
    pub(crate) key: Option<&'a [u8]>,
    pub(crate) value: Option<&'a [u8]>,
    pub(crate) headers: &'a [Header],
}

/// Where the records of one send went: per partition written, the offset
/// of its last record.
pub(crate) type Written = Vec<(TopicPartition, u64)>;

/// The consumer's group metadata, handed to the producer of the same
/// backend with the offsets of a transaction.
pub(crate) struct GroupMetadata(pub(crate) Box<dyn std::any::Any + Send + Sync>);

impl fmt::Debug for GroupMetadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GroupMetadata")
    }
}

/// Which records a consumer reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Isolation {
    ReadUncommitted,
    ReadCommitted,
}

/// What the runtime asks of a consumer.
#[derive(Debug, Clone)]
pub(crate) struct ConsumerSettings {
    /// `client.id`.
    pub(crate) client_id: String,
    /// `group.id`: the main consumer's; `None` for the restore consumer.
    pub(crate) group_id: Option<String>,
    pub(crate) isolation: Isolation,
    pub(crate) session_timeout_ms: u64,
    pub(crate) heartbeat_interval_ms: u64,
    pub(crate) max_poll_records: usize,
    /// The most one fetch of a partition reads.
    pub(crate) max_partition_fetch_bytes: usize,
    /// Decode the next fetches while the caller processes (the main
    /// consumer), rather than only inside a poll (the restore consumer).
    pub(crate) background_fetch: bool,
}

/// What the runtime asks of a producer: always idempotent; transactional
/// with a transactional id.
#[derive(Debug, Clone)]
pub(crate) struct ProducerSettings {
    pub(crate) client_id: String,
    pub(crate) transactional_id: Option<String>,
    pub(crate) transaction_timeout_ms: u64,
}

/// An internal topic to create.
#[derive(Debug, Clone)]
pub(crate) struct NewTopic {
    pub(crate) name: String,
    pub(crate) partitions: u32,
    pub(crate) configs: Vec<(String, String)>,
}

impl NewTopic {
    pub(crate) fn new(name: impl Into<String>, partitions: u32) -> Self {
        Self {
            name: name.into(),
            partitions,
            configs: Vec::new(),
        }
    }

    pub(crate) fn config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.configs.push((key.into(), value.into()));
        self
    }
}

/// The offsets of a partition that restoration needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Watermarks {
    /// The first offset still in the log.
    pub(crate) log_start: u64,
    /// The offset the next record appended gets.
    pub(crate) high: u64,
    /// The first offset of the first open transaction, or `high`.
    pub(crate) last_stable: u64,
}

/// Makes the clients of an app, as Kafka Streams' `KafkaClientSupplier`.
pub(crate) trait ClientSupplier: Send + Sync + fmt::Debug {
    /// A stream thread's consumer (a member of `settings.group_id`).
    fn main_consumer(&self, settings: ConsumerSettings) -> Result<Box<dyn MainConsumer>>;
    /// A consumer of changelog partitions, assigned by hand.
    fn restore_consumer(&self, settings: ConsumerSettings) -> Result<Box<dyn RestoreConsumer>>;
    /// A producer.
    fn producer(&self, settings: ProducerSettings) -> Result<Arc<dyn StreamProducer>>;
    /// The admin client.
    fn admin(&self) -> Result<Arc<dyn Admin>>;
    /// The backend's name, for logs and errors: `embedded` or `kafka`.
    fn name(&self) -> &'static str;
}

/// The consumer calls a rebalance listener may make; they complete before
/// they return.
pub(crate) trait RebalanceConsumer {
    /// Commits `offsets` (at-least-once).
    fn commit_sync(&mut self, offsets: Offsets) -> Result<()>;
    /// The committed offsets of `partitions` (absent: none committed).
    fn committed(&mut self, partitions: &[TopicPartition]) -> Result<Offsets>;
    /// Reads `tp` from `offset` next.
    fn seek(&mut self, tp: &TopicPartition, offset: u64) -> Result<()>;
    /// The group metadata for a transaction's offsets.
    fn group_metadata(&self) -> Option<GroupMetadata>;
}

/// The rebalance callbacks, as Kafka's `ConsumerRebalanceListener`; called
/// inside [`MainConsumer::poll`] (and `unsubscribe`, `close`).
pub(crate) trait RebalanceListener: Send {
    fn on_partitions_revoked(
        &mut self,
        partitions: &[TopicPartition],
        consumer: &mut dyn RebalanceConsumer,
    );
    fn on_partitions_assigned(
        &mut self,
        partitions: &[TopicPartition],
        consumer: &mut dyn RebalanceConsumer,
    );
    fn on_partitions_lost(
        &mut self,
        partitions: &[TopicPartition],
        consumer: &mut dyn RebalanceConsumer,
    );
}

/// A stream thread's consumer: a member of the app's group.
pub(crate) trait MainConsumer: Send {
    /// Joins the group for `topics`; `listener` hears of every change of
    /// the assignment.
    fn subscribe(
        &mut self,
        topics: Vec<String>,
        listener: Box<dyn RebalanceListener>,
    ) -> BoxFuture<'_, Result<()>>;
    /// Leaves the group (revoking every partition first).
    fn unsubscribe(&mut self) -> BoxFuture<'_, Result<()>>;
    /// Records of the assigned partitions, waiting up to `timeout` for some;
    /// runs the rebalance callbacks when the assignment changes.
    fn poll(&mut self, timeout: Duration) -> BoxFuture<'_, Result<Vec<PolledRun>>>;
    /// The assigned partitions.
    fn assignment(&self) -> Vec<TopicPartition>;
    /// The assigned partitions that the consumer knows to hold records
    /// past its position (records a later poll returns), as far as it knows
    /// without asking the broker: the runtime does not process a task ahead
    /// of such an input (Kafka's KIP-695). Read committed, records of open
    /// transactions are not counted.
    fn lagging_partitions(&self) -> Vec<TopicPartition>;
    /// Reads `tp` from `offset` next.
    fn seek(&mut self, tp: &TopicPartition, offset: u64) -> Result<()>;
    /// Stops fetching from `partitions` (assigned ones) until
    /// [`MainConsumer::resume`]; the group membership goes on. Pausing a
    /// paused partition does nothing.
    fn pause(&mut self, partitions: &[TopicPartition]) -> Result<()>;
    /// Fetches from `partitions` again after [`MainConsumer::pause`].
    fn resume(&mut self, partitions: &[TopicPartition]) -> Result<()>;
    /// The committed offsets of `partitions`.
    fn committed(&mut self, partitions: &[TopicPartition]) -> BoxFuture<'_, Result<Offsets>>;
    /// Commits `offsets` (at-least-once).
    fn commit_sync(&mut self, offsets: Offsets) -> BoxFuture<'_, Result<()>>;
    /// The group metadata for a transaction's offsets.
    fn group_metadata(&self) -> Option<GroupMetadata>;
    /// Whether no open transaction holds offsets of the group, so that
    /// [`MainConsumer::committed`] reads the last committed ones. (A backend
    /// whose `committed` waits for them itself says yes.)
    fn group_offsets_stable(&mut self) -> BoxFuture<'_, Result<bool>>;
    /// Leaves the group cleanly: the listener commits and closes the tasks.
    fn close(self: Box<Self>) -> BoxFuture<'static, Result<()>>;
    /// Drops the consumer as a crash would: no leave-group, no commit.
    fn abandon(self: Box<Self>);
}

/// A consumer of changelog partitions, assigned by hand.
pub(crate) trait RestoreConsumer: Send {
    /// The offsets of `tp`.
    fn watermarks(&mut self, tp: &TopicPartition) -> BoxFuture<'_, Result<Watermarks>>;
    /// Reads exactly `partitions`, each from its offset.
    fn assign(&mut self, partitions: Vec<(TopicPartition, u64)>) -> BoxFuture<'_, Result<()>>;
    /// Records of the assigned partitions, waiting up to `timeout` for
    /// some.
    fn poll(&mut self, timeout: Duration) -> BoxFuture<'_, Result<Vec<PolledRun>>>;
    /// The next offset to read of `tp`.
    fn position(&self, tp: &TopicPartition) -> Option<u64>;
    /// Whether a poll that returns nothing means the rest of the assigned
    /// partitions up to their end was compacted away (an in-process log,
    /// which a poll reads in full), rather than not fetched yet.
    fn empty_poll_is_end(&self) -> bool;
}

/// A producer, shared by a stream thread and its sender thread.
pub(crate) trait StreamProducer: Send + Sync + fmt::Debug {
    /// Sends `records` and waits until each is written; returns the last
    /// offset written of each partition.
    fn send<'a>(&'a self, records: &'a [OutRecord<'a>]) -> BoxFuture<'a, Result<Written>>;
    /// Makes what was sent to `topics` durable.
    fn flush<'a>(&'a self, topics: &'a [String]) -> BoxFuture<'a, Result<()>>;
    /// Registers the transactional id, fences its earlier producers and
    /// aborts their open transaction.
    fn init_transactions(&self) -> BoxFuture<'_, Result<()>>;
    fn begin_transaction(&self) -> Result<()>;
    fn send_offsets_to_transaction<'a>(
        &'a self,
        offsets: &'a Offsets,
        group: &'a GroupMetadata,
    ) -> BoxFuture<'a, Result<()>>;
    fn commit_transaction(&self) -> BoxFuture<'_, Result<()>>;
    fn abort_transaction(&self) -> BoxFuture<'_, Result<()>>;
}

/// The admin calls of the runtime.
pub(crate) trait Admin: Send + Sync + fmt::Debug {
    /// The partition count of `topic`; `None` if it does not exist.
    fn partition_count<'a>(&'a self, topic: &'a str) -> BoxFuture<'a, Result<Option<u32>>>;
    /// Creates `topic` unless it exists; returns whether it created it.
    fn create_topic(&self, topic: NewTopic) -> BoxFuture<'_, Result<bool>>;
    /// Deletes the records before each offset (the purge of repartition
    /// topics after a commit).
    fn delete_records<'a>(
        &'a self,
        offsets: &'a [(TopicPartition, u64)],
    ) -> BoxFuture<'a, Result<()>>;
}

/// A client error of `kind` with its cause.
pub(crate) fn client_error(
    kind: ClientErrorKind,
    operation: &'static str,
    source: impl Into<crate::error::BoxError>,
) -> StreamsError {
    StreamsError::Client {
        kind,
        operation,
        source: source.into(),
    }
}
