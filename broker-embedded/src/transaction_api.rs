//! The transaction coordinator's API for clients that speak Kafka's protocol: the requests
//! of Kafka's idempotent and transactional producers (`InitProducerId`,
//! `AddPartitionsToTxn`, `AddOffsetsToTxn`, `TxnOffsetCommit`, `EndTxn`), the check every
//! transactional produce passes, and the admin views of producers and transactions.

use crate::broker::Broker;
use crate::error::{BrokerError, Result};
use crate::group::classic_api::check_txn_commit;
use crate::group::{offsets_partition_for, OffsetAndMetadata, CONSUMER_OFFSETS_TOPIC};
use crate::log::ActiveProducer;
use crate::TopicPartition;

/// Kafka's `transaction.max.timeout.ms` default: the longest transaction timeout a producer
/// may ask for (15 minutes).
pub const TRANSACTION_MAX_TIMEOUT_MS: i32 = 900_000;

/// A transactional id's state, as Kafka's ListTransactions and DescribeTransactions report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionDescription {
    /// The transactional id.
    pub transactional_id: String,
    /// Kafka's state name (`Empty`, `Ongoing`, `PrepareCommit`, `PrepareAbort`,
    /// `CompleteCommit`, `CompleteAbort`).
    pub state: &'static str,
    /// The producer id that holds it.
    pub producer_id: i64,
    /// Its epoch.
    pub producer_epoch: i16,
    /// `transaction.timeout.ms`.
    pub timeout_ms: i32,
    /// When the open transaction started, -1 without one.
    pub start_ms: i64,
    /// The partitions of the open transaction.
    pub partitions: Vec<TopicPartition>,
}

/// A TxnOffsetCommit: consumer offsets committed as part of a producer's transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnOffsetCommit {
    /// The producer's `transactional.id`.
    pub transactional_id: String,
    /// Its producer id.
    pub producer_id: i64,
    /// Its epoch.
    pub producer_epoch: i16,
    /// The consumer group.
    pub group_id: String,
    /// The consumer's member id (empty outside group management).
    pub member_id: String,
    /// The consumer's `group.instance.id`.
    pub group_instance_id: Option<String>,
    /// The consumer's generation (-1 outside group management).
    pub generation_id: i32,
    /// The offsets.
    pub offsets: Vec<(TopicPartition, OffsetAndMetadata)>,
}

impl Broker {
    /// `Ok` when a transactional batch of `producer_id` at `epoch` may be appended to `tp`:
    /// the producer holds `transactional_id` and added the partition to its open
    /// transaction. Otherwise `ProducerFenced` (a newer producer took the id),
    /// `InvalidTxnState` (the partition is not in the transaction) or the coordinator's
    /// error.
    pub async fn check_transactional_append(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        tp: &TopicPartition,
    ) -> Result<()> {
        self.inner
            .transactions
            .check_append(self, transactional_id, producer_id, epoch, tp)
    }

    /// Kafka's InitProducerId: without a transactional id, a fresh producer id (epoch 0) for
    /// an idempotent producer; with one, the id's producer id with its epoch bumped (fencing
    /// the previous holder, whose open transaction is aborted), or a new one.
    /// A timeout above [`TRANSACTION_MAX_TIMEOUT_MS`] or not positive is `InvalidConfig`.
    pub async fn init_producer_id(
        &self,
        transactional_id: Option<&str>,
        transaction_timeout_ms: i32,
    ) -> Result<(i64, i16)> {
        self.check_open()?;
        self.check_writable(|| "initialize a producer id".to_owned())?;
        let Some(id) = transactional_id else {
            return Ok((self.inner.transactions.allocate_producer_id(), 0));
        };
        if transaction_timeout_ms <= 0 || transaction_timeout_ms > TRANSACTION_MAX_TIMEOUT_MS {
            return Err(BrokerError::InvalidConfig {
                key: "transaction.timeout.ms".to_owned(),
                value: transaction_timeout_ms.to_string(),
                reason: format!(
                    "must be positive and at most transaction.max.timeout.ms \
                     ({TRANSACTION_MAX_TIMEOUT_MS})"
                ),
            });
        }
        self.inner
            .transactions
            .init_producer_id(self, id, transaction_timeout_ms)
    }

    /// Kafka's AddPartitionsToTxn: adds partitions to the producer's open transaction,
    /// starting it if needed. Every partition must exist (`UnknownTopic`/`UnknownPartition`
    /// otherwise, and nothing is added).
    pub async fn add_partitions_to_txn(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[TopicPartition],
    ) -> Result<()> {
        for tp in partitions {
            self.partition(&tp.topic, tp.partition)?;
        }
        self.inner.transactions.add_partitions(
            self,
            transactional_id,
            producer_id,
            epoch,
            partitions,
        )
    }

    /// Kafka's AddOffsetsToTxn: adds the `__consumer_offsets` partition of `group_id` to the
    /// producer's transaction, for the TxnOffsetCommit that follows.
    pub async fn add_offsets_to_txn(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        group_id: &str,
    ) -> Result<()> {
        let tp = self.offsets_partition_of(group_id)?;
        self.inner.transactions.add_partitions(
            self,
            transactional_id,
            producer_id,
            epoch,
            std::slice::from_ref(&tp),
        )
    }

    /// Kafka's TxnOffsetCommit: the offsets are written to `__consumer_offsets` now, checked
    /// against the group as Kafka checks a transactional commit, and become the group's
    /// committed offsets only when the transaction commits. The producer must hold the
    /// transactional id and have added the group's offsets partition (AddOffsetsToTxn).
    /// The group's refusal is `GroupRefused` with Kafka's code.
    pub async fn txn_offset_commit(&self, commit: TxnOffsetCommit) -> Result<()> {
        let tp = self.offsets_partition_of(&commit.group_id)?;
        self.inner.transactions.check_append(
            self,
            &commit.transactional_id,
            commit.producer_id,
            commit.producer_epoch,
            &tp,
        )?;
        let group = commit.group_id.as_str();
        self.inner.groups.txn_commit_with(
            self,
            group,
            commit.producer_id,
            commit.producer_epoch,
            &commit.offsets,
            |groups, now| {
                check_txn_commit(
                    groups,
                    group,
                    &commit.member_id,
                    commit.group_instance_id.as_deref(),
                    commit.generation_id,
                    now,
                )
                .map_err(|code| BrokerError::GroupRefused {
                    group: group.to_owned(),
                    code,
                })
            },
        )?;
        Ok(())
    }

    /// Kafka's EndTxn: commits or aborts the producer's transaction; returns once the
    /// decision is durable and every marker is written.
    pub async fn end_txn(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
    ) -> Result<()> {
        self.inner
            .transactions
            .end_txn(self, transactional_id, producer_id, epoch, commit)
    }

    /// Every transactional id the coordinator knows, with its state (ListTransactions,
    /// DescribeTransactions).
    pub async fn list_transactions(&self) -> Result<Vec<TransactionDescription>> {
        self.check_open()?;
        Ok(self
            .inner
            .transactions
            .snapshot()
            .into_iter()
            .map(|(id, m)| TransactionDescription {
                transactional_id: id,
                state: m.state.name(),
                producer_id: m.producer_id,
                producer_epoch: m.producer_epoch,
                timeout_ms: m.timeout_ms,
                start_ms: m.start_ms,
                partitions: m.partitions.into_iter().collect(),
            })
            .collect())
    }

    /// The producers with state in a partition (DescribeProducers).
    pub async fn describe_producers(
        &self,
        topic: &str,
        partition: u32,
    ) -> Result<Vec<ActiveProducer>> {
        let (t, p) = self.partition(topic, partition)?;
        let log = t.partitions[p].lock()?;
        Ok(log.active_producers())
    }

    fn offsets_partition_of(&self, group_id: &str) -> Result<TopicPartition> {
        let partitions = self.topic(CONSUMER_OFFSETS_TOPIC)?.partitions.len() as u32;
        Ok(TopicPartition::new(
            CONSUMER_OFFSETS_TOPIC,
            offsets_partition_for(group_id, partitions),
        ))
    }
}
