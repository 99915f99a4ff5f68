//! The consumer: assign partitions, or subscribe to topics as a member of a consumer group;
//! seek; poll with a timeout that wakes as soon as data arrives; commit offsets.
//!
//! # Consumer groups
//!
//! With a `group.id` ([`ConsumerConfig::group_id`]), [`Consumer::subscribe`] makes the
//! consumer a member of the group: the broker's group coordinator spreads the partitions of
//! the subscribed topics over the members with the `partition.assignment.strategy`, and
//! rebalances when members come and go. Everything happens inside [`Consumer::poll`]:
//!
//! - **Heartbeats.** Every poll heartbeats, and a poll that waits for data wakes every
//!   `heartbeat.interval.ms` to heartbeat again; there is no background thread. A member that
//!   stops calling poll is removed after `session.timeout.ms` (or `max.poll.interval.ms`,
//!   whichever is shorter), and its partitions go to the others: so the time spent between
//!   two polls must stay below both.
//! - **Rebalances.** With `range` (eager protocol) a member commits (with auto-commit),
//!   calls [`ConsumerRebalanceListener::on_partitions_revoked`] for all its partitions and
//!   rejoins; once every member has rejoined, each gets its new partitions through
//!   [`ConsumerRebalanceListener::on_partitions_assigned`]. With `cooperative-sticky`
//!   (incremental protocol) members keep consuming their partitions during a rebalance; only
//!   the partitions that move are revoked, and they are assigned to their new member in a
//!   second rebalance right after. A member removed from the group (after a timeout) learns
//!   it at its next poll, gets [`ConsumerRebalanceListener::on_partitions_lost`] (no commit)
//!   and rejoins as a new member.
//! - **Offsets.** A newly assigned partition starts at the group's committed offset, or at
//!   `auto.offset.reset` if there is none. With `enable.auto.commit` the positions are
//!   committed every `auto.commit.interval.ms` during poll, before partitions are revoked,
//!   and on close. [`Consumer::commit_sync`] and [`Consumer::commit_async`] commit explicitly;
//!   a member whose generation is stale gets [`BrokerError::CommitFailed`] and rejoins on its
//!   next poll.
//! - **Leaving.** [`Consumer::close`] commits (with auto-commit), revokes and leaves the
//!   group; [`Consumer::unsubscribe`] does the same and keeps the consumer usable; dropping a
//!   subscribed consumer leaves the group without committing. Either way the others
//!   rebalance at once.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::broker::Broker;
use crate::config::TimestampType;
use crate::error::{BrokerError, Result};
use crate::group::{
    offsets_commit_point, validate_group_id, AssignmentStrategy, ConsumerGroupMetadata, Heartbeat,
    JoinRequest, OffsetAndMetadata, CONSUMER_OFFSETS_TOPIC,
};
use crate::prefetch::Prefetcher;
use crate::record::{Header, RecordBatch};
use crate::TopicPartition;

/// `auto.offset.reset`: where to start when there is no position, or the position is out of
/// range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AutoOffsetReset {
    /// The log start offset.
    Earliest,
    /// The log end offset (Kafka's default).
    #[default]
    Latest,
    /// Fail with [`BrokerError::NoOffsetForPartition`] or
    /// [`BrokerError::OffsetOutOfRange`].
    None,
}

impl AutoOffsetReset {
    /// Parses `earliest`, `latest` or `none`.
    pub fn parse(value: &str) -> Result<Self> {
        match value {
            "earliest" => Ok(AutoOffsetReset::Earliest),
            "latest" => Ok(AutoOffsetReset::Latest),
            "none" => Ok(AutoOffsetReset::None),
            _ => Err(BrokerError::InvalidConfig {
                key: "auto.offset.reset".to_owned(),
                value: value.to_owned(),
                reason: "expected earliest, latest or none".to_owned(),
            }),
        }
    }
}

/// `isolation.level`: which records of transactions a consumer sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IsolationLevel {
    /// Every data record, of open and aborted transactions too (Kafka's default).
    #[default]
    ReadUncommitted,
    /// Only records below the last stable offset, without those of aborted transactions.
    ReadCommitted,
}

/// Consumer settings, with Kafka's names.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// `auto.offset.reset`, default `latest`: used when a partition has no position and (with
    /// a group) no committed offset.
    pub auto_offset_reset: AutoOffsetReset,
    /// `max.poll.records`, default 500.
    pub max_poll_records: usize,
    /// `max.partition.fetch.bytes`, default 1 MiB: how much one fetch reads from a partition.
    pub max_partition_fetch_bytes: usize,
    /// `group.id`, default none: needed for [`Consumer::subscribe`] and for committing
    /// offsets.
    pub group_id: Option<String>,
    /// `session.timeout.ms`, default 45000: a member not heard from for this long is removed
    /// from the group.
    pub session_timeout_ms: u64,
    /// `heartbeat.interval.ms`, default 3000: how often a poll that waits for data wakes to
    /// heartbeat. Must be below `session.timeout.ms`.
    pub heartbeat_interval_ms: u64,
    /// `max.poll.interval.ms`, default 300000: a member that does not poll for this long is
    /// removed from the group; also the time members get to rejoin during a rebalance.
    pub max_poll_interval_ms: u64,
    /// `enable.auto.commit`, default true: commit positions during poll, before partitions
    /// are revoked, and on close. Needs a `group.id`.
    pub enable_auto_commit: bool,
    /// `auto.commit.interval.ms`, default 5000.
    pub auto_commit_interval_ms: u64,
    /// `partition.assignment.strategy`, default `range`.
    pub partition_assignment_strategy: AssignmentStrategy,
    /// `isolation.level`, default `read_uncommitted`.
    pub isolation_level: IsolationLevel,
    /// Not a Kafka setting (Kafka's Java consumer fetches in its polling thread; librdkafka
    /// always reads ahead): default false. With it, the consumer reads and decodes the next
    /// fetch of each partition that has more data on a thread of its own while the caller
    /// processes the records of the last one, so a busy caller spends its time on its own
    /// work. It holds at most one fetch (`max.partition.fetch.bytes`) per partition ahead.
    /// What a poll returns, and in what order, does not change.
    pub background_fetch: bool,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            auto_offset_reset: AutoOffsetReset::Latest,
            max_poll_records: 500,
            max_partition_fetch_bytes: 1024 * 1024,
            group_id: None,
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 3_000,
            max_poll_interval_ms: 300_000,
            enable_auto_commit: true,
            auto_commit_interval_ms: 5_000,
            partition_assignment_strategy: AssignmentStrategy::Range,
            isolation_level: IsolationLevel::ReadUncommitted,
            background_fetch: false,
        }
    }
}

impl ConsumerConfig {
    fn check_group_settings(&self) -> Result<()> {
        let bad = |key: &str, value: u64, reason: &str| {
            Err(BrokerError::InvalidConfig {
                key: key.to_owned(),
                value: value.to_string(),
                reason: reason.to_owned(),
            })
        };
        if self.session_timeout_ms == 0 {
            return bad("session.timeout.ms", 0, "must be positive");
        }
        if self.max_poll_interval_ms == 0 {
            return bad("max.poll.interval.ms", 0, "must be positive");
        }
        if self.heartbeat_interval_ms == 0 || self.heartbeat_interval_ms >= self.session_timeout_ms
        {
            return bad(
                "heartbeat.interval.ms",
                self.heartbeat_interval_ms,
                "must be positive and lower than session.timeout.ms",
            );
        }
        if self.enable_auto_commit && self.auto_commit_interval_ms == 0 {
            return bad("auto.commit.interval.ms", 0, "must be positive");
        }
        Ok(())
    }
}

/// A record as a consumer receives it (Kafka's `ConsumerRecord`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    /// Topic (shared, not copied per record).
    pub topic: Arc<str>,
    /// Partition.
    pub partition: u32,
    /// Offset.
    pub offset: u64,
    /// Timestamp in epoch ms.
    pub timestamp: i64,
    /// Whose timestamp it is.
    pub timestamp_type: TimestampType,
    /// Key.
    pub key: Option<Bytes>,
    /// Value.
    pub value: Option<Bytes>,
    /// Headers.
    pub headers: Vec<Header>,
}

/// Records of one partition handed out by [`Consumer::poll_runs`]: consecutive records in
/// offset order, of one stored batch (or part of one), with the topic named once for all of
/// them rather than once per record.
#[derive(Debug)]
pub struct PartitionRun {
    /// Topic.
    pub topic: Arc<str>,
    /// Partition.
    pub partition: u32,
    /// Whose timestamps the records carry.
    pub timestamp_type: TimestampType,
    /// The records, at least one.
    pub records: std::vec::IntoIter<crate::record::Record>,
}

impl PartitionRun {
    /// The run's records as [`ConsumerRecord`]s.
    pub fn into_consumer_records(self) -> impl Iterator<Item = ConsumerRecord> {
        let PartitionRun {
            topic,
            partition,
            timestamp_type,
            records,
        } = self;
        records.map(move |r| ConsumerRecord {
            topic: topic.clone(),
            partition,
            offset: r.offset,
            timestamp: r.timestamp,
            timestamp_type,
            key: r.key,
            value: r.value,
            headers: r.headers,
        })
    }
}

/// Callbacks for partitions coming and going in a group (Kafka's
/// `ConsumerRebalanceListener`). They run inside [`Consumer::poll`] (and `close` /
/// `unsubscribe`), on the polling task, with a [`RebalanceContext`] to read positions, seek
/// and commit.
pub trait ConsumerRebalanceListener: Send {
    /// Partitions this consumer gives up in a rebalance, called before they go: the place to
    /// commit what was processed of them. Under the eager protocol (`range`) these are all
    /// its partitions, at the start of every rebalance; under the cooperative protocol only
    /// those that move to another member. Not called with an empty list.
    fn on_partitions_revoked(
        &mut self,
        partitions: &[TopicPartition],
        consumer: &mut RebalanceContext<'_>,
    );

    /// Partitions added to this consumer by a completed rebalance (all of them under the
    /// eager protocol; only the new ones under the cooperative protocol). Called after every
    /// rebalance the consumer takes part in, even with an empty list.
    fn on_partitions_assigned(
        &mut self,
        partitions: &[TopicPartition],
        consumer: &mut RebalanceContext<'_>,
    );

    /// Partitions this consumer lost without a chance to commit: it was removed from the
    /// group (it did not poll within the session or poll timeout), so other members may own
    /// them already. Commits are refused at this point. Defaults to
    /// [`on_partitions_revoked`](ConsumerRebalanceListener::on_partitions_revoked), as in
    /// Kafka.
    fn on_partitions_lost(
        &mut self,
        partitions: &[TopicPartition],
        consumer: &mut RebalanceContext<'_>,
    ) {
        self.on_partitions_revoked(partitions, consumer);
    }
}

/// A listener that does nothing (Kafka's `NoOpConsumerRebalanceListener`).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoOpConsumerRebalanceListener;

impl ConsumerRebalanceListener for NoOpConsumerRebalanceListener {
    fn on_partitions_revoked(&mut self, _: &[TopicPartition], _: &mut RebalanceContext<'_>) {}
    fn on_partitions_assigned(&mut self, _: &[TopicPartition], _: &mut RebalanceContext<'_>) {}
}

/// What a rebalance listener may do with its consumer while it is called.
#[derive(Debug)]
pub struct RebalanceContext<'a> {
    consumer: &'a mut Consumer,
}

impl RebalanceContext<'_> {
    /// The consumer's partitions right now (revoked partitions are still in it during
    /// `on_partitions_revoked`; added ones are in it during `on_partitions_assigned`).
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.consumer.assignment()
    }

    /// The next offset the consumer will return for `tp`, if known yet: `None` for a newly
    /// assigned partition until the next poll resolves it from the committed offset or
    /// `auto.offset.reset`.
    pub fn position(&self, tp: &TopicPartition) -> Option<u64> {
        self.consumer.position(tp)
    }

    /// Sets the next offset to read from an assigned partition.
    pub fn seek(&mut self, tp: &TopicPartition, offset: u64) -> Result<()> {
        self.consumer.seek(tp, offset)
    }

    /// The group's committed offsets for `tps` (absent where there is none). A listener
    /// runs only after its group was joined, which needs the group's offsets to be readable;
    /// should they become unreadable meanwhile, the error is logged and nothing returned.
    pub fn committed(&self, tps: &[TopicPartition]) -> HashMap<TopicPartition, OffsetAndMetadata> {
        self.consumer.committed_now(tps).unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot read committed offsets in a rebalance listener");
            HashMap::new()
        })
    }

    /// Commits `offsets`, or the current positions of all assigned partitions with `None`,
    /// and waits for the commit point, as [`Consumer::commit_sync`].
    pub fn commit_sync(
        &mut self,
        offsets: Option<HashMap<TopicPartition, OffsetAndMetadata>>,
    ) -> Result<()> {
        let offsets = self.consumer.offsets_to_commit(offsets);
        if let Some(partition) = self.consumer.commit_now(&offsets)? {
            offsets_commit_point(&self.consumer.broker, partition)?;
        }
        Ok(())
    }

    /// The consumer's group identity.
    pub fn group_metadata(&self) -> Option<ConsumerGroupMetadata> {
        self.consumer.group_metadata()
    }
}

/// Called when an asynchronous commit completes, with the offsets it committed (Kafka's
/// `OffsetCommitCallback`). It runs on a tokio task, not on the polling task.
pub type OffsetCommitCallback =
    Box<dyn FnOnce(&HashMap<TopicPartition, OffsetAndMetadata>, Result<()>) + Send + 'static>;

/// Fetched records of one partition, kept as decoded and made into
/// [`ConsumerRecord`]s only when a poll hands them out: a fetch reads up to
/// `max.partition.fetch.bytes`, far more than one poll returns, and copying
/// it all at once would walk through memory twice.
#[derive(Debug, Default)]
struct Fetched {
    batches: VecDeque<(TimestampType, std::vec::IntoIter<crate::record::Record>)>,
    /// Records left in `batches`.
    len: usize,
}

impl Fetched {
    fn push(&mut self, timestamp_type: TimestampType, records: Vec<crate::record::Record>) {
        if !records.is_empty() {
            self.len += records.len();
            self.batches
                .push_back((timestamp_type, records.into_iter()));
        }
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn clear(&mut self) {
        self.batches.clear();
        self.len = 0;
    }

    /// Takes up to `max` (at least one) of the next records, all of one batch: the batch's
    /// decoded records move out whole when all of them fit, and only a batch cut short is
    /// copied.
    fn take_run(
        &mut self,
        max: usize,
    ) -> Option<(TimestampType, std::vec::IntoIter<crate::record::Record>)> {
        let max = max.max(1);
        loop {
            let (timestamp_type, records) = self.batches.front_mut()?;
            let left = records.len();
            if left == 0 {
                self.batches.pop_front();
                continue;
            }
            if left <= max {
                self.len -= left;
                return self.batches.pop_front();
            }
            let timestamp_type = *timestamp_type;
            let part: Vec<_> = records.by_ref().take(max).collect();
            self.len -= part.len();
            return Some((timestamp_type, part.into_iter()));
        }
    }
}

#[derive(Debug)]
struct Assigned {
    tp: TopicPartition,
    topic_name: Arc<str>,
    /// The next offset to hand to the user; `None` until resolved from the committed offset
    /// or by `auto.offset.reset`.
    position: Option<u64>,
    /// Fetched records not yet handed out, all at or after `position`.
    buffer: Fetched,
    /// The next offset to fetch (past the buffer).
    fetch_offset: u64,
    /// The id of the read-ahead fetch at `fetch_offset` under way, if any.
    in_flight: Option<u64>,
    /// The last read-ahead failed: none until a fetch in the polling task succeeds.
    read_ahead_failed: bool,
    /// Paused by [`Consumer::pause`]: polls neither fetch nor return its records (those
    /// already fetched are kept for after [`Consumer::resume`]).
    paused: bool,
}

/// The consumer's side of its group membership.
#[derive(Debug)]
struct Membership {
    group_id: String,
    topics: BTreeSet<String>,
    /// Set once the coordinator accepted a join.
    member_id: Option<String>,
    /// The generation of the current assignment; -1 before the first.
    generation: i32,
    /// Join (again) at the next step: after a cooperative revocation or a subscription
    /// change.
    rejoin_needed: bool,
}

/// The rebalance listener, boxed; behind a mutex only so that the consumer stays `Sync`.
struct ListenerSlot(Mutex<Box<dyn ConsumerRebalanceListener>>);

impl std::fmt::Debug for ListenerSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConsumerRebalanceListener")
    }
}

#[derive(Debug, Clone, Copy)]
enum ListenerCall {
    Revoked,
    Assigned,
    Lost,
}

/// A consumer of an embedded broker: of partitions it is assigned ([`Consumer::assign`]), or
/// of the partitions its group gives it ([`Consumer::subscribe`]).
#[derive(Debug)]
pub struct Consumer {
    broker: Broker,
    config: ConsumerConfig,
    assigned: Vec<Assigned>,
    index: HashMap<TopicPartition, usize>,
    /// Round-robin start for fairness across partitions.
    next: usize,
    /// Whether partitions were assigned by hand (`assign`), which excludes `subscribe`.
    manual: bool,
    /// Group membership, while subscribed.
    membership: Option<Membership>,
    listener: Option<ListenerSlot>,
    /// The offset last committed (or read as committed) per partition, so that auto-commit
    /// skips partitions without progress.
    last_committed: HashMap<TopicPartition, u64>,
    /// When auto-commit is next due.
    next_auto_commit: Option<tokio::time::Instant>,
    /// Commit points of asynchronous commits still running.
    pending_commits: Vec<JoinHandle<()>>,
    /// The read-ahead thread, started at the first read-ahead with `background_fetch`.
    prefetch: Option<Prefetcher>,
    /// Fetches made in the polling task rather than read ahead (for tests).
    polling_fetches: u64,
}

impl Consumer {
    /// A consumer with settings.
    pub fn new(broker: &Broker, config: ConsumerConfig) -> Self {
        Consumer {
            broker: broker.clone(),
            config,
            assigned: Vec::new(),
            index: HashMap::new(),
            next: 0,
            manual: false,
            membership: None,
            listener: None,
            last_committed: HashMap::new(),
            next_auto_commit: None,
            pending_commits: Vec::new(),
            prefetch: None,
            polling_fetches: 0,
        }
    }

    /// Replaces the assignment. Unknown topics or partitions are an error and change nothing.
    /// Positions of partitions kept in the assignment are kept. Refused with
    /// [`BrokerError::IllegalState`] while subscribed.
    pub async fn assign(&mut self, partitions: Vec<TopicPartition>) -> Result<()> {
        if self.membership.is_some() {
            return Err(BrokerError::IllegalState {
                reason: "assign() while subscribed to topics; call unsubscribe() first".to_owned(),
            });
        }
        for tp in &partitions {
            let n = self.broker.partition_count(&tp.topic).await?;
            if tp.partition >= n {
                return Err(BrokerError::UnknownPartition {
                    topic: tp.topic.clone(),
                    partition: tp.partition,
                    partitions: n,
                });
            }
        }
        self.manual = !partitions.is_empty();
        self.set_assignment(partitions);
        Ok(())
    }

    /// Replaces the assignment with `partitions`, keeping the positions of partitions kept.
    fn set_assignment(&mut self, partitions: Vec<TopicPartition>) {
        let mut old: HashMap<TopicPartition, Assigned> =
            self.assigned.drain(..).map(|a| (a.tp.clone(), a)).collect();
        self.index.clear();
        for tp in partitions {
            if self.index.contains_key(&tp) {
                continue;
            }
            let a = old.remove(&tp).unwrap_or_else(|| Assigned {
                topic_name: Arc::from(tp.topic.as_str()),
                tp: tp.clone(),
                position: None,
                buffer: Fetched::default(),
                fetch_offset: 0,
                in_flight: None,
                read_ahead_failed: false,
                paused: false,
            });
            self.index.insert(tp, self.assigned.len());
            self.assigned.push(a);
        }
        for tp in old.keys() {
            self.last_committed.remove(tp);
        }
        if self.assigned.is_empty() {
            self.next = 0;
        } else {
            self.next %= self.assigned.len();
        }
    }

    /// Assigns every partition of `topic`.
    pub async fn assign_topic(&mut self, topic: &str) -> Result<()> {
        let n = self.broker.partition_count(topic).await?;
        let mut tps: Vec<TopicPartition> = self.assignment();
        tps.extend((0..n).map(|p| TopicPartition::new(topic, p)));
        self.assign(tps).await
    }

    /// The assigned partitions.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.assigned.iter().map(|a| a.tp.clone()).collect()
    }

    /// Subscribes to `topics` as a member of the consumer's group (Kafka's
    /// `subscribe(topics, listener)`); the group is joined by the next [`Consumer::poll`].
    /// The listener is told about partitions assigned and revoked by rebalances; pass
    /// [`NoOpConsumerRebalanceListener`] for none. Subscribing again replaces the topics and
    /// the listener (and rejoins if the topics changed); an empty list unsubscribes.
    ///
    /// Needs [`ConsumerConfig::group_id`]; refused with [`BrokerError::IllegalState`] while
    /// partitions are assigned by hand. Topics that do not exist yet are assigned once they
    /// are created.
    pub async fn subscribe<I, S>(
        &mut self,
        topics: I,
        listener: impl ConsumerRebalanceListener + 'static,
    ) -> Result<()>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let group_id = self.config.group_id.clone().unwrap_or_default();
        validate_group_id(&group_id)?;
        self.config.check_group_settings()?;
        if self.manual {
            return Err(BrokerError::IllegalState {
                reason: "subscribe() while partitions are assigned with assign(); call \
                         unsubscribe() first"
                    .to_owned(),
            });
        }
        let topics: BTreeSet<String> = topics.into_iter().map(Into::into).collect();
        if topics.is_empty() {
            return self.unsubscribe().await;
        }
        self.listener = Some(ListenerSlot(Mutex::new(Box::new(listener))));
        match &mut self.membership {
            Some(m) => {
                if m.topics != topics {
                    m.topics = topics;
                    m.rejoin_needed = true;
                }
            }
            None => {
                self.membership = Some(Membership {
                    group_id,
                    topics,
                    member_id: None,
                    generation: -1,
                    rejoin_needed: true,
                });
            }
        }
        Ok(())
    }

    /// The subscribed topics, sorted; empty when not subscribed.
    pub fn subscription(&self) -> Vec<String> {
        self.membership
            .as_ref()
            .map(|m| m.topics.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The consumer's group identity (Kafka's `groupMetadata()`), `None` without a
    /// `group.id`.
    pub fn group_metadata(&self) -> Option<ConsumerGroupMetadata> {
        let group_id = self.config.group_id.clone()?;
        let (member_id, generation_id) = match &self.membership {
            Some(m) => (m.member_id.clone().unwrap_or_default(), m.generation),
            None => (String::new(), -1),
        };
        Some(ConsumerGroupMetadata {
            group_id,
            generation_id,
            member_id,
        })
    }

    /// Leaves the group: commits positions (with auto-commit), calls
    /// `on_partitions_revoked` for the partitions held, and leaves, so that the other members
    /// rebalance at once. Also drops a manual assignment. The consumer can subscribe or
    /// assign again afterwards.
    pub async fn unsubscribe(&mut self) -> Result<()> {
        let result = self.leave_group().await;
        self.manual = false;
        self.set_assignment(Vec::new());
        result
    }

    /// Closes the consumer: commits positions (with auto-commit), revokes its partitions,
    /// leaves the group, and waits for pending asynchronous commits.
    pub async fn close(mut self) -> Result<()> {
        let result = self.leave_group().await;
        self.wait_pending_commits().await;
        result
    }

    async fn leave_group(&mut self) -> Result<()> {
        let mut result = Ok(());
        if self.config.enable_auto_commit && self.config.group_id.is_some() {
            if let Err(e) = self.commit_sync(None).await {
                warn!(error = %e, "auto-commit before leaving failed");
                if e.is_fatal() {
                    result = Err(e);
                }
            }
        }
        let Some(member_id) = self.membership.as_ref().map(|m| m.member_id.clone()) else {
            return result;
        };
        let owned = self.assignment();
        if !owned.is_empty() {
            self.call_listener(ListenerCall::Revoked, &owned);
        }
        self.set_assignment(Vec::new());
        if let Some(m) = self.membership.take() {
            if let Some(id) = member_id {
                self.broker
                    .inner
                    .groups
                    .leave(&self.broker, &m.group_id, &id);
                info!(group = %m.group_id, member = %id, "left the group");
            }
        }
        result
    }

    fn slot(&mut self, tp: &TopicPartition) -> Result<&mut Assigned> {
        match self.index.get(tp) {
            Some(i) => Ok(&mut self.assigned[*i]),
            None => Err(BrokerError::InvalidConfig {
                key: "partition".to_owned(),
                value: tp.to_string(),
                reason: "not assigned to this consumer".to_owned(),
            }),
        }
    }

    /// Sets the next offset to read from `tp`. An offset outside the log is handled by
    /// `auto.offset.reset` at the next poll.
    pub fn seek(&mut self, tp: &TopicPartition, offset: u64) -> Result<()> {
        let a = self.slot(tp)?;
        a.position = Some(offset);
        a.fetch_offset = offset;
        a.buffer.clear();
        a.in_flight = None;
        a.read_ahead_failed = false;
        Ok(())
    }

    /// Stops fetching from `partitions` (Kafka's `pause`): later polls return none of their
    /// records, and fetch nothing more of them, until [`Consumer::resume`]; group membership
    /// goes on (heartbeats, rebalances). Records already fetched are kept. A partition that
    /// leaves the assignment is no longer paused when it comes back. Refused with
    /// [`BrokerError::InvalidConfig`] for a partition not assigned.
    pub fn pause(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        self.set_paused(partitions, true)
    }

    /// Fetches from `partitions` again after [`Consumer::pause`] (Kafka's `resume`).
    pub fn resume(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        self.set_paused(partitions, false)
    }

    /// The assigned partitions that are paused.
    pub fn paused(&self) -> Vec<TopicPartition> {
        self.assigned
            .iter()
            .filter(|a| a.paused)
            .map(|a| a.tp.clone())
            .collect()
    }

    fn set_paused(&mut self, partitions: &[TopicPartition], paused: bool) -> Result<()> {
        for tp in partitions {
            self.slot(tp)?;
        }
        for tp in partitions {
            self.slot(tp)?.paused = paused;
        }
        Ok(())
    }

    /// Seeks to the log start offset.
    pub async fn seek_to_beginning(&mut self, tp: &TopicPartition) -> Result<()> {
        let (start, _) = self.broker.offsets(&tp.topic, tp.partition).await?;
        self.seek(tp, start)
    }

    /// Seeks to the end: the log end offset, or the last stable offset under
    /// `read_committed` (as Kafka's `seekToEnd`); only records after it are read.
    pub async fn seek_to_end(&mut self, tp: &TopicPartition) -> Result<()> {
        let end = self.end_offset(tp).await?;
        self.seek(tp, end)
    }

    /// The log end offset, or the last stable offset under `read_committed`.
    async fn end_offset(&self, tp: &TopicPartition) -> Result<u64> {
        match self.config.isolation_level {
            IsolationLevel::ReadUncommitted => {
                Ok(self.broker.offsets(&tp.topic, tp.partition).await?.1)
            }
            IsolationLevel::ReadCommitted => {
                self.broker
                    .last_stable_offset(&tp.topic, tp.partition)
                    .await
            }
        }
    }

    /// Seeks to the earliest record whose timestamp is at least `timestamp`, or to the end if
    /// there is none.
    pub async fn seek_to_timestamp(&mut self, tp: &TopicPartition, timestamp: i64) -> Result<()> {
        match self
            .broker
            .offset_for_timestamp(&tp.topic, tp.partition, timestamp)
            .await?
        {
            Some((offset, _)) => self.seek(tp, offset),
            None => self.seek_to_end(tp).await,
        }
    }

    /// The next offset this consumer will return for `tp`, if known yet.
    pub fn position(&self, tp: &TopicPartition) -> Option<u64> {
        self.index.get(tp).and_then(|i| self.assigned[*i].position)
    }

    /// Polls up to `max.poll.records` records, waiting up to `timeout` for data.
    pub async fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>> {
        let n = self.config.max_poll_records;
        self.poll_up_to(n, timeout).await
    }

    /// [`Consumer::poll`], with the records handed out in runs of one partition
    /// ([`PartitionRun`]), as they were fetched: for a caller that takes records partition
    /// by partition (a stream thread hands each run to its task), this saves making and
    /// moving a [`ConsumerRecord`] per record. The same records, in the same order, and
    /// the same positions afterwards as [`Consumer::poll`].
    pub async fn poll_runs(&mut self, timeout: Duration) -> Result<Vec<PartitionRun>> {
        let n = self.config.max_poll_records;
        self.poll_runs_up_to(n, timeout).await
    }

    /// Polls up to `max_records` records, waiting up to `timeout` for the first one. The wait
    /// ends as soon as any assigned partition gets data; it does not spin.
    ///
    /// When subscribed, the poll also heartbeats, takes part in rebalances (calling the
    /// rebalance listener) and auto-commits; while it waits it wakes every
    /// `heartbeat.interval.ms` to heartbeat, and at once when the group changes.
    pub async fn poll_up_to(
        &mut self,
        max_records: usize,
        timeout: Duration,
    ) -> Result<Vec<ConsumerRecord>> {
        let runs = self.poll_runs_up_to(max_records, timeout).await?;
        let mut records = Vec::with_capacity(runs.iter().map(|r| r.records.len()).sum());
        for run in runs {
            records.extend(run.into_consumer_records());
        }
        Ok(records)
    }

    /// [`Consumer::poll_up_to`], with the records in runs of one partition (see
    /// [`Consumer::poll_runs`]).
    pub async fn poll_runs_up_to(
        &mut self,
        max_records: usize,
        timeout: Duration,
    ) -> Result<Vec<PartitionRun>> {
        let deadline = tokio::time::Instant::now() + timeout;
        let inner = self.broker.inner.clone();
        self.reap_pending_commits();
        let mut auto_commit_checked = false;
        loop {
            // Register for wake-ups before looking, so a change in between is not missed.
            let notified = inner.data_arrived.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let group_changed = inner.groups.changed().notified();
            tokio::pin!(group_changed);
            group_changed.as_mut().enable();

            let subscribed = self.membership.is_some();
            if subscribed {
                self.group_step()?;
            }
            if !auto_commit_checked {
                auto_commit_checked = true;
                self.maybe_auto_commit()?;
            }
            let records = self.collect(max_records).await?;
            if !records.is_empty() || max_records == 0 {
                return Ok(records);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            // A read-ahead that finishes leaves a permit: taken here even if it came first.
            let ready = self.prefetch.as_ref().map(|p| p.ready.clone());
            let prefetched = async {
                match &ready {
                    Some(ready) => ready.notified().await,
                    None => std::future::pending().await,
                }
            };
            tokio::pin!(prefetched);
            let wake = if subscribed {
                deadline.min(now + Duration::from_millis(self.config.heartbeat_interval_ms))
            } else {
                deadline
            };
            tokio::select! {
                _ = &mut notified => {}
                _ = &mut group_changed, if subscribed => {}
                _ = &mut prefetched => {}
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    /// One round of group work: heartbeat, join, apply an assignment, recover from removal.
    /// Never waits: a rebalance that needs other members completes over later polls.
    fn group_step(&mut self) -> Result<()> {
        // Each pass either ends or moves the membership forward (join, then assignment, then
        // at most one cooperative rejoin), so a handful of passes always suffice.
        for _ in 0..8 {
            let Some(m) = &self.membership else {
                return Ok(());
            };
            let status = match (&m.member_id, m.rejoin_needed) {
                (Some(id), false) => self.broker.inner.groups.heartbeat(
                    &self.broker,
                    &m.group_id,
                    id,
                    m.generation,
                    true,
                )?,
                _ => Heartbeat::RejoinNeeded,
            };
            match status {
                Heartbeat::Stable | Heartbeat::Pending => return Ok(()),
                Heartbeat::RejoinNeeded => self.join_group()?,
                Heartbeat::Assignment {
                    generation,
                    partitions,
                } => self.complete_join(generation, partitions),
                Heartbeat::UnknownMember => self.lose_membership(),
            }
        }
        Ok(())
    }

    /// Kafka's `onJoinPrepare` and `JoinGroup`: commit (with auto-commit), revoke everything
    /// under the eager protocol, and join.
    fn join_group(&mut self) -> Result<()> {
        let strategy = self.config.partition_assignment_strategy;
        let was_member = self
            .membership
            .as_ref()
            .is_some_and(|m| m.member_id.is_some());
        if was_member {
            if self.config.enable_auto_commit {
                self.auto_commit_blocking(None);
            }
            if !strategy.is_cooperative() {
                let owned = self.assignment();
                if !owned.is_empty() {
                    self.call_listener(ListenerCall::Revoked, &owned);
                    self.set_assignment(Vec::new());
                }
            }
        }
        let owned = if strategy.is_cooperative() {
            self.assignment()
        } else {
            Vec::new()
        };
        let Some(m) = &mut self.membership else {
            return Ok(());
        };
        let request = JoinRequest {
            topics: m.topics.clone(),
            strategy,
            owned,
            session_timeout_ms: i64::try_from(self.config.session_timeout_ms).unwrap_or(i64::MAX),
            max_poll_interval_ms: i64::try_from(self.config.max_poll_interval_ms)
                .unwrap_or(i64::MAX),
        };
        let id = self.broker.inner.groups.join(
            &self.broker,
            &m.group_id,
            m.member_id.as_deref(),
            request,
        )?;
        debug!(group = %m.group_id, member = %id, "joined");
        m.member_id = Some(id);
        m.rejoin_needed = false;
        Ok(())
    }

    /// A rebalance completed: revoke what moved away, take the new partitions.
    fn complete_join(&mut self, generation: i32, partitions: Vec<TopicPartition>) {
        let owned = self.assignment();
        let new: BTreeSet<&TopicPartition> = partitions.iter().collect();
        let old: BTreeSet<&TopicPartition> = owned.iter().collect();
        let revoked: Vec<TopicPartition> = owned
            .iter()
            .filter(|tp| !new.contains(tp))
            .cloned()
            .collect();
        let added: Vec<TopicPartition> = partitions
            .iter()
            .filter(|tp| !old.contains(tp))
            .cloned()
            .collect();
        if let Some(m) = &mut self.membership {
            m.generation = generation;
            info!(
                group = %m.group_id,
                member = m.member_id.as_deref().unwrap_or(""),
                generation,
                partitions = partitions.len(),
                added = added.len(),
                revoked = revoked.len(),
                "rebalance completed"
            );
        }
        if !revoked.is_empty() {
            if self.config.enable_auto_commit {
                self.auto_commit_blocking(Some(&revoked));
            }
            self.call_listener(ListenerCall::Revoked, &revoked);
            // Cooperative protocol: rejoin so the revoked partitions can be given out.
            if let Some(m) = &mut self.membership {
                m.rejoin_needed = true;
            }
        }
        self.set_assignment(partitions);
        self.call_listener(ListenerCall::Assigned, &added);
    }

    /// The coordinator does not know this member any more: its partitions are lost.
    fn lose_membership(&mut self) {
        let owned = self.assignment();
        if let Some(m) = &self.membership {
            warn!(
                group = %m.group_id,
                member = m.member_id.as_deref().unwrap_or(""),
                partitions = owned.len(),
                "removed from the group (session or poll timeout); partitions lost, rejoining"
            );
        }
        if !owned.is_empty() {
            self.call_listener(ListenerCall::Lost, &owned);
        }
        self.set_assignment(Vec::new());
        if let Some(m) = &mut self.membership {
            m.member_id = None;
            m.generation = -1;
            m.rejoin_needed = true;
        }
    }

    fn call_listener(&mut self, call: ListenerCall, partitions: &[TopicPartition]) {
        let Some(slot) = self.listener.take() else {
            return;
        };
        let mut listener = slot.0.into_inner().unwrap_or_else(|p| p.into_inner());
        {
            let mut ctx = RebalanceContext { consumer: self };
            match call {
                ListenerCall::Revoked => listener.on_partitions_revoked(partitions, &mut ctx),
                ListenerCall::Assigned => listener.on_partitions_assigned(partitions, &mut ctx),
                ListenerCall::Lost => listener.on_partitions_lost(partitions, &mut ctx),
            }
        }
        // A listener that subscribed again from inside the callback cannot happen (the
        // context does not allow it), so the slot is still free.
        self.listener = Some(ListenerSlot(Mutex::new(listener)));
    }

    /// The group id, or the error Kafka gives for group operations without one.
    fn group_id(&self) -> Result<&str> {
        match self.config.group_id.as_deref() {
            Some(g) if !g.is_empty() => Ok(g),
            _ => Err(BrokerError::InvalidConfig {
                key: "group.id".to_owned(),
                value: String::new(),
                reason: "committing offsets needs a group.id".to_owned(),
            }),
        }
    }

    /// The given offsets, or the positions of all assigned partitions.
    fn offsets_to_commit(
        &self,
        offsets: Option<HashMap<TopicPartition, OffsetAndMetadata>>,
    ) -> Vec<(TopicPartition, OffsetAndMetadata)> {
        match offsets {
            Some(map) => {
                let mut v: Vec<_> = map.into_iter().collect();
                v.sort_by(|a, b| a.0.cmp(&b.0));
                v
            }
            None => self
                .assigned
                .iter()
                .filter_map(|a| {
                    a.position
                        .map(|p| (a.tp.clone(), OffsetAndMetadata::new(p)))
                })
                .collect(),
        }
    }

    /// Checks and appends a commit (no fsync); returns the `__consumer_offsets` partition to
    /// make a commit point of.
    fn commit_now(
        &mut self,
        offsets: &[(TopicPartition, OffsetAndMetadata)],
    ) -> Result<Option<u32>> {
        let group = self.group_id()?.to_owned();
        let (member_id, generation) = match &self.membership {
            Some(m) => (m.member_id.clone().unwrap_or_default(), m.generation),
            None => (String::new(), -1),
        };
        let written = self.broker.inner.groups.commit(
            &self.broker,
            &group,
            &member_id,
            generation,
            offsets,
        )?;
        for (tp, om) in offsets {
            if self.index.contains_key(tp) {
                self.last_committed.insert(tp.clone(), om.offset);
            }
        }
        Ok(written)
    }

    /// Commits `offsets`, or with `None` the positions of all assigned partitions (the
    /// offsets after the records returned so far), and waits until the commit is written and
    /// made a commit point (fsynced under the default `log.flush.policy`). Earlier
    /// asynchronous commits complete first.
    ///
    /// A consumer that is no longer part of the group's current generation gets
    /// [`BrokerError::CommitFailed`]; it rejoins on its next poll.
    pub async fn commit_sync(
        &mut self,
        offsets: Option<HashMap<TopicPartition, OffsetAndMetadata>>,
    ) -> Result<()> {
        self.wait_pending_commits().await;
        let offsets = self.offsets_to_commit(offsets);
        if let Some(partition) = self.commit_now(&offsets)? {
            self.broker
                .commit_point(&[(CONSUMER_OFFSETS_TOPIC.to_owned(), partition)])
                .await?;
        }
        Ok(())
    }

    /// Commits `offsets` (or the positions, with `None`) without waiting for the commit
    /// point. The commit is checked and written before this returns, so commits keep their
    /// order and [`Consumer::committed`] sees it at once; the fsync runs on a tokio task,
    /// which then calls `callback` (or logs a failure). A refused commit calls `callback`
    /// with the error before this returns.
    pub fn commit_async(
        &mut self,
        offsets: Option<HashMap<TopicPartition, OffsetAndMetadata>>,
        callback: Option<OffsetCommitCallback>,
    ) {
        let offsets = self.offsets_to_commit(offsets);
        let result = self.commit_now(&offsets);
        let report = move |result: Result<()>| {
            if let Err(e) = &result {
                warn!(error = %e, "asynchronous offset commit failed");
            }
            if let Some(callback) = callback {
                let map: HashMap<TopicPartition, OffsetAndMetadata> = offsets.into_iter().collect();
                callback(&map, result);
            }
        };
        match result {
            Err(e) => report(Err(e)),
            Ok(None) => report(Ok(())),
            Ok(Some(partition)) => match tokio::runtime::Handle::try_current() {
                Ok(handle) => {
                    let broker = self.broker.clone();
                    let task = handle.spawn(async move {
                        let r = broker
                            .commit_point(&[(CONSUMER_OFFSETS_TOPIC.to_owned(), partition)])
                            .await;
                        report(r);
                    });
                    self.pending_commits.push(task);
                }
                Err(_) => report(offsets_commit_point(&self.broker, partition)),
            },
        }
    }

    fn reap_pending_commits(&mut self) {
        self.pending_commits.retain(|h| !h.is_finished());
    }

    async fn wait_pending_commits(&mut self) {
        for handle in self.pending_commits.drain(..) {
            if let Err(e) = handle.await {
                warn!(error = %e, "an asynchronous commit task failed");
            }
        }
    }

    /// The group's committed offsets for `tps` (Kafka's `committed`); partitions without a
    /// committed offset are absent from the map.
    pub async fn committed(
        &self,
        tps: &[TopicPartition],
    ) -> Result<HashMap<TopicPartition, OffsetAndMetadata>> {
        self.group_id()?;
        self.broker.check_open()?;
        self.committed_now(tps)
    }

    fn committed_now(
        &self,
        tps: &[TopicPartition],
    ) -> Result<HashMap<TopicPartition, OffsetAndMetadata>> {
        match self.config.group_id.as_deref() {
            Some(group) => Ok(self
                .broker
                .inner
                .groups
                .committed(group, tps)?
                .into_iter()
                .collect()),
            None => Ok(HashMap::new()),
        }
    }

    /// Positions that moved since they were last committed, among `only` (or all).
    fn progressed(
        &self,
        only: Option<&[TopicPartition]>,
    ) -> Vec<(TopicPartition, OffsetAndMetadata)> {
        self.assigned
            .iter()
            .filter(|a| only.is_none_or(|o| o.contains(&a.tp)))
            .filter_map(|a| {
                let p = a.position?;
                (self.last_committed.get(&a.tp) != Some(&p))
                    .then(|| (a.tp.clone(), OffsetAndMetadata::new(p)))
            })
            .collect()
    }

    /// Auto-commit inside a rebalance step: written and made a commit point before the
    /// partitions go. Failures are logged, as Kafka does.
    fn auto_commit_blocking(&mut self, only: Option<&[TopicPartition]>) {
        if self.config.group_id.is_none() {
            return;
        }
        let offsets = self.progressed(only);
        if offsets.is_empty() {
            return;
        }
        let result = self
            .commit_now(&offsets)
            .and_then(|p| p.map_or(Ok(()), |p| offsets_commit_point(&self.broker, p)));
        match result {
            Ok(()) => debug!(
                partitions = offsets.len(),
                "auto-committed before a rebalance"
            ),
            Err(e) => warn!(error = %e, "auto-commit before a rebalance failed"),
        }
    }

    /// Auto-commit during poll, every `auto.commit.interval.ms`: the positions as of the
    /// start of this poll, that is after every record returned before. Refusals are logged;
    /// fail-stop errors are returned.
    fn maybe_auto_commit(&mut self) -> Result<()> {
        if !self.config.enable_auto_commit || self.config.group_id.is_none() {
            return Ok(());
        }
        let now = tokio::time::Instant::now();
        let interval = Duration::from_millis(self.config.auto_commit_interval_ms);
        match self.next_auto_commit {
            None => {
                self.next_auto_commit = Some(now + interval);
                return Ok(());
            }
            Some(due) if now < due => return Ok(()),
            Some(_) => self.next_auto_commit = Some(now + interval),
        }
        let offsets = self.progressed(None);
        if offsets.is_empty() {
            return Ok(());
        }
        let map: HashMap<TopicPartition, OffsetAndMetadata> = offsets.into_iter().collect();
        let fatal: Arc<Mutex<Option<BrokerError>>> = Arc::default();
        let slot = fatal.clone();
        self.commit_async(
            Some(map),
            Some(Box::new(move |_, result| {
                if let Err(e) = result {
                    if e.is_fatal() {
                        *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                    }
                }
            })),
        );
        // A refusal was reported synchronously; only a fail-stop error stops the poll.
        let err = fatal.lock().unwrap_or_else(|p| p.into_inner()).take();
        match err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    async fn resolve_position(&mut self, i: usize) -> Result<u64> {
        if let Some(p) = self.assigned[i].position {
            return Ok(p);
        }
        let tp = self.assigned[i].tp.clone();
        // A group's committed offset comes first.
        if let Some(group) = self.config.group_id.as_deref() {
            let committed = self
                .broker
                .inner
                .groups
                .committed(group, std::iter::once(&tp))?;
            if let Some((_, om)) = committed.into_iter().next() {
                debug!(partition = %tp, offset = om.offset, "starting at the committed offset");
                self.last_committed.insert(tp, om.offset);
                let a = &mut self.assigned[i];
                a.position = Some(om.offset);
                a.fetch_offset = om.offset;
                a.in_flight = None;
                return Ok(om.offset);
            }
        }
        let p = match self.config.auto_offset_reset {
            AutoOffsetReset::Earliest => self.broker.offsets(&tp.topic, tp.partition).await?.0,
            AutoOffsetReset::Latest => self.end_offset(&tp).await?,
            AutoOffsetReset::None => {
                return Err(BrokerError::NoOffsetForPartition {
                    topic: tp.topic,
                    partition: tp.partition,
                })
            }
        };
        let a = &mut self.assigned[i];
        a.position = Some(p);
        a.fetch_offset = p;
        a.in_flight = None;
        Ok(p)
    }

    /// Fetches into the buffers if needed and hands out up to `max` records, in runs of one
    /// partition.
    async fn collect(&mut self, max: usize) -> Result<Vec<PartitionRun>> {
        let mut out = Vec::new();
        let mut taken = 0;
        let n = self.assigned.len();
        if n == 0 {
            return Ok(out);
        }
        self.take_prefetched();
        for step in 0..n {
            if taken >= max {
                break;
            }
            let i = (self.next + step) % n;
            if self.assigned[i].paused {
                continue;
            }
            self.resolve_position(i).await?;
            // A partition whose next fetch is under way waits for it. With the read-ahead,
            // an empty partition asks it for the next fetch and waits too; the polling task
            // fetches itself only when the read-ahead cannot (it failed last time).
            if self.assigned[i].buffer.is_empty() && self.assigned[i].in_flight.is_none() {
                self.read_ahead(i);
                if self.assigned[i].in_flight.is_none() {
                    self.fetch(i).await?;
                }
            }
            let a = &mut self.assigned[i];
            while taken < max {
                let Some((timestamp_type, records)) = a.buffer.take_run(max - taken) else {
                    break;
                };
                let Some(last) = records.as_slice().last() else {
                    continue;
                };
                a.position = Some(last.offset + 1);
                taken += records.len();
                out.push(PartitionRun {
                    topic: a.topic_name.clone(),
                    partition: a.tp.partition,
                    timestamp_type,
                    records,
                });
            }
            if a.buffer.is_empty() {
                a.position = Some(a.fetch_offset.max(a.position.unwrap_or(0)));
            }
        }
        // Every partition gets its next fetch read ahead, those this poll did not reach (it
        // was full) too, rather than fetched in a later poll.
        for i in 0..n {
            self.read_ahead(i);
        }
        self.next = (self.next + 1) % n;
        Ok(out)
    }

    /// With `background_fetch`, asks the read-ahead thread for the next fetch of partition
    /// `i` unless one is under way (or the last one failed) or enough is buffered.
    fn read_ahead(&mut self, i: usize) {
        if !self.config.background_fetch {
            return;
        }
        let a = &self.assigned[i];
        // One fetch ahead at most: the next is asked for once fewer records are buffered
        // than a poll returns, so that memory stays bounded by a fetch and a poll per
        // partition however far the log runs ahead of the caller.
        if a.in_flight.is_some()
            || a.paused
            || a.read_ahead_failed
            || a.position.is_none()
            || a.buffer.len >= self.config.max_poll_records.max(1)
        {
            return;
        }
        if self.prefetch.is_none() {
            self.prefetch = Prefetcher::start(&self.broker);
        }
        let Some(prefetch) = self.prefetch.as_mut() else {
            return;
        };
        let id = prefetch.request(
            &a.topic_name,
            a.tp.partition,
            a.fetch_offset,
            self.config.max_partition_fetch_bytes,
            self.config.isolation_level,
        );
        self.assigned[i].in_flight = id;
    }

    /// Takes in the read-ahead fetches that finished. A fetch that failed is dropped, and
    /// read-ahead of its partition stops: the polling task fetches the same offset itself
    /// once the buffer is empty, and handles the error there (`auto.offset.reset` for an
    /// offset out of range).
    fn take_prefetched(&mut self) {
        let Some(prefetch) = &self.prefetch else {
            return;
        };
        for done in prefetch.take_done() {
            let Some(i) = self
                .assigned
                .iter()
                .position(|a| a.in_flight == Some(done.id))
            else {
                continue;
            };
            self.assigned[i].in_flight = None;
            match done.batches {
                Ok(batches) => self.take_batches(i, batches),
                Err(e) => {
                    debug!(partition = %self.assigned[i].tp, error = %e, "read-ahead fetch failed; fetching again in the polling task");
                    self.assigned[i].read_ahead_failed = true;
                }
            }
        }
    }

    async fn fetch(&mut self, i: usize) -> Result<()> {
        self.polling_fetches += 1;
        let (tp, offset) = {
            let a = &self.assigned[i];
            (a.tp.clone(), a.fetch_offset)
        };
        let batches = match self
            .broker
            .fetch_with_isolation(
                &tp.topic,
                tp.partition,
                offset,
                self.config.max_partition_fetch_bytes,
                self.config.isolation_level,
            )
            .await
        {
            Ok(b) => b,
            Err(BrokerError::OffsetOutOfRange {
                log_start_offset,
                log_end_offset,
                ..
            }) if self.config.auto_offset_reset != AutoOffsetReset::None => {
                let reset = if self.config.auto_offset_reset == AutoOffsetReset::Earliest {
                    log_start_offset
                } else {
                    log_end_offset
                };
                tracing::info!(
                    partition = %tp, offset, reset,
                    "offset out of range, reset by auto.offset.reset"
                );
                let a = &mut self.assigned[i];
                a.position = Some(reset);
                a.fetch_offset = reset;
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        self.take_batches(i, batches);
        Ok(())
    }

    /// Buffers the records of a fetch of partition `i` at its fetch offset.
    fn take_batches(&mut self, i: usize, batches: Vec<RecordBatch>) {
        let a = &mut self.assigned[i];
        a.read_ahead_failed = false;
        for batch in batches {
            let next = batch.info.last_offset + 1;
            if !batch.info.control {
                // Offsets ascend within a batch: skip those before the fetch offset.
                let mut records = batch.records;
                let from = a.fetch_offset;
                let skip = records.partition_point(|r| r.offset < from);
                records.drain(..skip);
                a.buffer.push(batch.info.timestamp_type, records);
            }
            a.fetch_offset = a.fetch_offset.max(next);
        }
    }
}

impl Drop for Consumer {
    /// Leaves the group (without committing: that needs `close`), so that the other members
    /// rebalance at once instead of waiting for the session timeout.
    fn drop(&mut self) {
        if let Some(m) = self.membership.take() {
            if let Some(id) = m.member_id {
                self.broker
                    .inner
                    .groups
                    .leave(&self.broker, &m.group_id, &id);
                debug!(group = %m.group_id, member = %id, "left the group on drop");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_is_send_and_sync() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Consumer>();
        send_sync::<ConsumerConfig>();
    }

    #[test]
    fn group_settings_are_checked() {
        assert!(ConsumerConfig::default().check_group_settings().is_ok());
        let bad = ConsumerConfig {
            heartbeat_interval_ms: 45_000,
            ..ConsumerConfig::default()
        };
        let err = bad.check_group_settings().unwrap_err();
        assert!(err.to_string().contains("heartbeat.interval.ms"), "{err}");
        let bad = ConsumerConfig {
            session_timeout_ms: 0,
            ..ConsumerConfig::default()
        };
        assert!(bad.check_group_settings().is_err());
    }

    /// A broker whose topic `t` has `partitions` partitions, with one batch per entry of
    /// `chunks` (that many records, `value-<chunk>-<i>`), sent to the partitions in turn.
    async fn broker_with_chunks(partitions: u32, chunks: &[usize]) -> Broker {
        use crate::{NewTopic, Producer, ProducerRecord};
        let broker = Broker::in_memory().await.unwrap();
        broker
            .create_topic(NewTopic::new("t", partitions))
            .await
            .unwrap();
        let producer = Producer::new(&broker);
        for (chunk, &len) in chunks.iter().enumerate() {
            let partition = u32::try_from(chunk).unwrap() % partitions;
            let batch = (0..len)
                .map(|i| {
                    ProducerRecord::new("t", format!("value-{chunk}-{i}")).partition(partition)
                })
                .collect();
            producer.send_batch(batch).await.unwrap();
        }
        broker
    }

    /// However far the log runs ahead of a slow caller, the read-ahead keeps at most a
    /// poll's worth of records and one fetch buffered per partition.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn read_ahead_stays_one_fetch_ahead() {
        let broker = broker_with_chunks(1, &vec![100; 200]).await;
        let mut consumer = Consumer::new(
            &broker,
            ConsumerConfig {
                auto_offset_reset: AutoOffsetReset::Earliest,
                background_fetch: true,
                max_poll_records: 10,
                max_partition_fetch_bytes: 4096,
                ..ConsumerConfig::default()
            },
        );
        consumer.assign_topic("t").await.unwrap();
        let mut next = 0u64;
        let mut most = 0usize;
        for _ in 0..60 {
            let got = consumer.poll(Duration::from_secs(5)).await.unwrap();
            for r in &got {
                assert_eq!(r.offset, next);
                next += 1;
            }
            // Give the read-ahead time to run as far as it would.
            tokio::time::sleep(Duration::from_millis(5)).await;
            consumer.take_prefetched();
            most = most.max(consumer.assigned[0].buffer.len);
        }
        // A 4 KiB fetch holds well under 200 of these records; without the bound the buffer
        // grows by a fetch per poll.
        assert!(most < 10 + 200, "{most} records buffered");
        assert!(next >= 60, "{next}");
    }

    /// A paused partition gives no records and is not fetched while its neighbours go on;
    /// resumed, it goes on from where it stopped, losing and repeating nothing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_paused_partition_waits_and_resumes_where_it_stopped() {
        let broker = broker_with_chunks(2, &[50, 50, 50, 50]).await;
        let mut consumer = Consumer::new(
            &broker,
            ConsumerConfig {
                auto_offset_reset: AutoOffsetReset::Earliest,
                background_fetch: true,
                max_poll_records: 10,
                ..ConsumerConfig::default()
            },
        );
        consumer.assign_topic("t").await.unwrap();
        let p0 = TopicPartition::new("t", 0);
        let mut next = [0u64; 2];
        let take = |records: Vec<ConsumerRecord>, next: &mut [u64; 2]| {
            for r in records {
                let p = usize::try_from(r.partition).unwrap();
                assert_eq!(r.offset, next[p], "partition {p}");
                next[p] += 1;
            }
        };
        take(
            consumer.poll(Duration::from_secs(5)).await.unwrap(),
            &mut next,
        );
        consumer.pause(std::slice::from_ref(&p0)).unwrap();
        assert_eq!(consumer.paused(), vec![p0.clone()]);
        let paused_at = next[0];
        while next[1] < 100 {
            take(
                consumer.poll(Duration::from_secs(5)).await.unwrap(),
                &mut next,
            );
            assert_eq!(next[0], paused_at, "a paused partition gave records");
        }
        // Nothing left but the paused partition: polls come back empty.
        assert!(consumer
            .poll(Duration::from_millis(50))
            .await
            .unwrap()
            .is_empty());
        consumer.resume(std::slice::from_ref(&p0)).unwrap();
        assert!(consumer.paused().is_empty());
        while next[0] < 100 {
            take(
                consumer.poll(Duration::from_secs(5)).await.unwrap(),
                &mut next,
            );
        }
        assert_eq!(next, [100, 100]);
        // Pausing a partition not assigned names it.
        let err = consumer
            .pause(&[TopicPartition::new("other", 0)])
            .unwrap_err();
        assert!(err.to_string().contains("other"), "{err}");
    }

    /// `poll_runs` hands out the records `poll` does, in the same order and with the same
    /// positions after each poll, in runs of one partition and one batch: whole batches
    /// where they fit, and a batch cut short by `max.poll.records` goes on in the next poll.
    #[tokio::test]
    async fn poll_runs_hands_out_what_poll_does_in_runs_of_one_partition() {
        let sizes: Vec<usize> = (0..12).map(|chunk| 7 + chunk).collect();
        let broker = broker_with_chunks(3, &sizes).await;
        let config = ConsumerConfig {
            auto_offset_reset: AutoOffsetReset::Earliest,
            max_poll_records: 10,
            ..ConsumerConfig::default()
        };
        let mut plain = Consumer::new(&broker, config.clone());
        let mut in_runs = Consumer::new(&broker, config);
        plain.assign_topic("t").await.unwrap();
        in_runs.assign_topic("t").await.unwrap();
        let tps: Vec<_> = (0..3).map(|p| TopicPartition::new("t", p)).collect();
        let mut total = 0;
        let mut cut = 0;
        loop {
            let expected = plain.poll(Duration::from_millis(50)).await.unwrap();
            let runs = in_runs.poll_runs(Duration::from_millis(50)).await.unwrap();
            let mut got = Vec::new();
            for run in runs {
                let offsets: Vec<u64> = run.records.as_slice().iter().map(|r| r.offset).collect();
                assert!(!offsets.is_empty(), "a run holds at least one record");
                assert!(offsets.windows(2).all(|w| w[1] == w[0] + 1), "{offsets:?}");
                // Batches here hold 7 to 18 records: a run of fewer that does not end a
                // poll at its limit starts where an earlier one was cut.
                if offsets.len() < 7 {
                    cut += 1;
                }
                got.extend(run.into_consumer_records());
            }
            assert!(got.len() <= 10);
            assert_eq!(got, expected);
            for tp in &tps {
                assert_eq!(in_runs.position(tp), plain.position(tp), "{tp}");
            }
            if expected.is_empty() {
                break;
            }
            total += expected.len();
        }
        assert_eq!(total, (0..12).map(|c| 7 + c).sum::<usize>());
        assert!(cut > 0, "max.poll.records cut some batch short");
    }

    /// With the read-ahead, every fetch is read ahead, the first of each partition and
    /// those of partitions that a full poll did not reach: the polling task decodes none.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn with_the_read_ahead_the_polling_task_fetches_nothing_itself() {
        let broker = broker_with_chunks(3, &vec![50; 30]).await;
        let mut consumer = Consumer::new(
            &broker,
            ConsumerConfig {
                auto_offset_reset: AutoOffsetReset::Earliest,
                background_fetch: true,
                // A poll is full before it reaches every partition.
                max_poll_records: 40,
                max_partition_fetch_bytes: 2048,
                ..ConsumerConfig::default()
            },
        );
        consumer.assign_topic("t").await.unwrap();
        let mut next = [0u64; 3];
        let mut total = 0;
        while total < 1500 {
            let got = consumer.poll(Duration::from_secs(5)).await.unwrap();
            assert!(!got.is_empty(), "{total} of 1500");
            for r in &got {
                assert_eq!(r.offset, next[r.partition as usize]);
                next[r.partition as usize] += 1;
            }
            total += got.len();
        }
        assert_eq!(next, [500, 500, 500]);
        assert_eq!(consumer.polling_fetches, 0);
    }
}
