//! An embedded, persistent, partitioned log broker with Kafka's semantics.
//!
//! Topics are split into partitions; each partition is an append-only log of record batches
//! in segment files, in Kafka's record-batch v2 layout. Producers append with Kafka's default
//! partitioner (murmur2 of the key); consumers fetch from any offset and wait for new data.
//! Old data goes by retention (time or size) or by log compaction (latest value per key).

pub mod batch;
pub mod broker;
mod compression;
pub mod config;
pub mod config_catalog;
pub mod consumer;
pub mod error;
pub mod group;
mod log;
mod partition;
pub mod partitioner;
mod prefetch;
pub mod producer;
mod raw_io;
pub mod record;
pub mod time;
mod topic_admin;
mod topic_meta;
mod transaction;
mod transaction_api;

pub use crate::log::{ActiveProducer, AppendInfo, CleanStats};
pub use batch::Compression;
pub use broker::{Broker, NewTopic, PartitionDescription, RepairReport, TopicDescription};
pub use config::{
    BrokerConfig, CleanupPolicy, FlushPolicy, TimestampType, TopicCompression, TopicConfig,
};
pub use consumer::{
    AutoOffsetReset, Consumer, ConsumerConfig, ConsumerRebalanceListener, ConsumerRecord,
    IsolationLevel, NoOpConsumerRebalanceListener, OffsetCommitCallback, PartitionRun,
    RebalanceContext,
};
pub use error::{BrokerError, Result};
pub use group::{
    AssignmentStrategy, ConsumerGroupMetadata, FetchedOffset, GroupDescription, GroupErrorCode,
    GroupJoin, GroupJoinResult, GroupLeaveResult, GroupListing, GroupOffsetCommit,
    GroupOffsetDeleteResult, GroupPartitionDescription, GroupState, GroupSync, GroupSyncResult,
    JoinedMember, LeavingMember, MemberDescription, OffsetAndMetadata, OffsetResetSpec,
};
pub use producer::{
    Appended, OutgoingRef, Producer, ProducerConfig, ProducerRecord, RecordMetadata,
};
pub use raw_io::{AbortedTransaction, StoredRead};
pub use record::{BatchInfo, Header, NewRecord, ProducerFields, Record, RecordBatch, RecordRef};
pub use time::{MockTime, SystemTime, Time};
pub use topic_meta::validate_topic_name;
pub use transaction::{TRANSACTION_STATE_PARTITIONS, TRANSACTION_STATE_TOPIC};
pub use transaction_api::{TransactionDescription, TxnOffsetCommit, TRANSACTION_MAX_TIMEOUT_MS};

/// A topic name and partition index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: u32,
}

impl TopicPartition {
    /// A topic-partition.
    pub fn new(topic: impl Into<String>, partition: u32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}
