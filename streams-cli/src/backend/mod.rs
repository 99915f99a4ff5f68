//! Where the commands' topics and groups live: a data dir whose broker the command opens
//! in-process ([`dir`]), or a Kafka cluster reached over the network with librdkafka
//! ([`kafka`]). Each command works on a [`Backend`] and prints what it returns, so that its
//! output is the same on both.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};
use broker_embedded::{
    Broker, ConsumerRecord, GroupPartitionDescription, NewTopic, TopicPartition,
};
use bytes::Bytes;

use crate::args::{CompressionType, IsolationLevel, StartOffset};

pub(crate) mod dir;
pub(crate) mod kafka;

/// What `--data-dir` or `--bootstrap-server` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// A data dir (a broker's, or an application's with its broker in `broker/`).
    Dir(PathBuf),
    /// A Kafka cluster: `HOST:PORT[,HOST:PORT...]`.
    Kafka(String),
}

/// An open broker or a connected cluster.
#[derive(Debug, Clone)]
pub(crate) enum Backend {
    /// The data dir's broker, opened by this process.
    Dir(Broker),
    /// A Kafka cluster.
    Kafka(Arc<kafka::Cluster>),
}

/// A topic as `topics describe` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TopicView {
    /// Its name.
    pub(crate) name: String,
    /// Its partitions, by number.
    pub(crate) partitions: Vec<PartitionView>,
    /// Its configs, by key.
    pub(crate) configs: Vec<ConfigView>,
}

/// One partition of a [`TopicView`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartitionView {
    /// Its number.
    pub(crate) partition: u32,
    /// The first offset kept; `None` when it cannot be read (an offline partition).
    pub(crate) log_start_offset: Option<u64>,
    /// The offset the next record gets; `None` when it cannot be read.
    pub(crate) log_end_offset: Option<u64>,
    /// Bytes of its segment files; `None` where the protocol does not tell (a cluster).
    pub(crate) size_bytes: Option<u64>,
    /// Number of its segments; `None` where the protocol does not tell (a cluster).
    pub(crate) segment_count: Option<u64>,
    /// Why it is offline, if it is.
    pub(crate) offline: Option<String>,
}

/// One config of a [`TopicView`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConfigView {
    /// Kafka's name of the config.
    pub(crate) key: String,
    /// Its value.
    pub(crate) value: String,
    /// `true` when the value is the broker's default for new topics, `false` when the topic
    /// sets its own.
    pub(crate) is_default: bool,
}

/// The keys `topics describe` always shows: the configs the embedded broker enforces. A
/// topic's other configs are shown when the topic sets them.
pub(crate) fn core_config_keys() -> Vec<&'static str> {
    broker_embedded::TopicConfig::default()
        .to_pairs()
        .into_keys()
        .collect()
}

/// A consumer group as `groups describe` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GroupView {
    /// The group id.
    pub(crate) group_id: String,
    /// Its state, by Kafka's name (`Empty`, `PreparingRebalance`, `CompletingRebalance`,
    /// `Stable`).
    pub(crate) state: String,
    /// The ids of its members.
    pub(crate) members: Vec<String>,
    /// Every partition it has a committed offset for or has assigned, sorted.
    pub(crate) partitions: Vec<GroupPartitionDescription>,
}

/// What one `produce` appended: per partition written to, the first and the last offset,
/// and the number of records.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Appended {
    /// `(partition, first offset, last offset)`, by partition.
    pub(crate) ranges: Vec<(u32, u64, u64)>,
    /// Records appended (other writers' records between first and last are not counted).
    pub(crate) count: u64,
}

impl Appended {
    /// From the first and last offsets of the records appended to each partition, and their
    /// number.
    pub(crate) fn from_bounds(bounds: &BTreeMap<u32, (u64, u64)>, count: u64) -> Self {
        Appended {
            ranges: bounds
                .iter()
                .map(|(&p, &(first, last))| (p, first, last))
                .collect(),
            count,
        }
    }
}

/// What `consume` reads, and where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReadSpec {
    /// The topic.
    pub(crate) topic: String,
    /// Only this partition (not with a group).
    pub(crate) partition: Option<u32>,
    /// Where to start without a group (or, with one, in partitions it has no committed
    /// offset for: [`StartOffset::Earliest`] or [`StartOffset::Latest`]).
    pub(crate) start: StartOffset,
    /// Read as a member of this consumer group.
    pub(crate) group: Option<String>,
    /// Which records of transactions to read.
    pub(crate) isolation_level: IsolationLevel,
}

/// A failed commit of printed offsets; a failure that is not fatal is retried at the next
/// commit.
#[derive(Debug)]
pub(crate) struct CommitError {
    /// The cause.
    pub(crate) error: anyhow::Error,
    /// Whether the consumer cannot go on.
    pub(crate) fatal: bool,
}

/// Records to print: a consumer of a data dir's broker or of a cluster.
#[derive(Debug)]
pub(crate) enum Source {
    /// The embedded consumer.
    Dir(Box<dir::DirSource>),
    /// A librdkafka consumer.
    Kafka(Box<kafka::KafkaSource>),
}

impl Source {
    /// Up to `max` records, waiting up to `wait` for the first. A group member's partitions
    /// without a position get the one reading would start at (see
    /// [`dir::DirSource::resolve_positions`]).
    pub(crate) async fn poll_up_to(
        &mut self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<ConsumerRecord>> {
        match self {
            Source::Dir(s) => s.poll_up_to(max, wait).await,
            Source::Kafka(s) => s.poll_up_to(max, wait).await,
        }
    }

    /// Moves a partition's position back to `offset`, so that the next poll hands out that
    /// record again.
    pub(crate) fn seek(&mut self, tp: &TopicPartition, offset: u64) -> Result<()> {
        match self {
            Source::Dir(s) => s.seek(tp, offset),
            Source::Kafka(s) => s.seek(tp, offset),
        }
    }

    /// Whether the reading has begun: a group member has its partitions. Until then, the
    /// idle time of `--timeout-ms` does not run.
    pub(crate) fn ready(&self) -> bool {
        match self {
            Source::Dir(_) => true,
            Source::Kafka(s) => s.ready(),
        }
    }

    /// A group member commits its positions (just past the printed records, or where reading
    /// starts in a partition with none printed).
    pub(crate) async fn commit_printed(&mut self) -> Result<(), CommitError> {
        match self {
            Source::Dir(s) => s.commit_printed().await,
            Source::Kafka(s) => s.commit_printed().await,
        }
    }

    /// Leaves the group, if any, and closes the consumer.
    pub(crate) async fn close(self) -> Result<()> {
        match self {
            Source::Dir(s) => s.close().await,
            Source::Kafka(s) => s.close().await,
        }
    }
}

/// Where `produce` writes: a producer of a data dir's broker or of a cluster.
#[derive(Debug)]
pub(crate) enum Sink {
    /// The embedded producer.
    Dir(Box<dir::DirSink>),
    /// A librdkafka producer.
    Kafka(kafka::KafkaSink),
}

/// A record's key and value, `None` for null.
pub(crate) type KeyValue = (Option<Bytes>, Option<Bytes>);

impl Sink {
    /// Writes `records` to the topic, in order; returns once each is stored or one failed.
    pub(crate) async fn send_batch(&mut self, records: Vec<KeyValue>) -> Result<()> {
        match self {
            Sink::Dir(s) => s.send_batch(records).await,
            Sink::Kafka(s) => s.send_batch(records).await,
        }
    }

    /// Makes what was written durable (data dir: a commit point) or delivered (cluster).
    pub(crate) async fn flush(&mut self) -> Result<()> {
        match self {
            Sink::Dir(s) => s.flush().await,
            Sink::Kafka(s) => s.flush(),
        }
    }

    /// What was appended so far.
    pub(crate) async fn appended(&self) -> Result<Appended> {
        match self {
            Sink::Dir(s) => s.appended().await,
            Sink::Kafka(s) => Ok(s.appended()),
        }
    }
}

impl Backend {
    /// The data dir's broker, for the commands that work on its files.
    pub(crate) fn broker(&self) -> Option<&Broker> {
        match self {
            Backend::Dir(broker) => Some(broker),
            Backend::Kafka(_) => None,
        }
    }

    /// Creates a topic; an existing one is [`broker_embedded::BrokerError::TopicExists`].
    pub(crate) async fn create_topic(&self, topic: NewTopic) -> Result<()> {
        match self {
            Backend::Dir(broker) => Ok(broker.create_topic(topic).await?),
            Backend::Kafka(cluster) => cluster.create_topic(&topic).await,
        }
    }

    /// Creates the topic with `partitions` if it does not exist; returns whether it did.
    pub(crate) async fn ensure_topic(&self, topic: &str, partitions: u32) -> Result<bool> {
        match self {
            Backend::Dir(broker) => Ok(broker
                .ensure_topic(NewTopic::new(topic, partitions))
                .await?),
            Backend::Kafka(cluster) => {
                match cluster
                    .create_topic(&NewTopic::new(topic, partitions))
                    .await
                {
                    Ok(()) => Ok(true),
                    Err(e) if is_topic_exists(&e) => Ok(false),
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// The names of the topics, sorted, without the internal ones.
    pub(crate) async fn list_topics(&self) -> Result<Vec<String>> {
        match self {
            Backend::Dir(broker) => {
                let mut names = broker.list_topics().await?;
                names.sort();
                Ok(names)
            }
            Backend::Kafka(cluster) => cluster.list_topics(),
        }
    }

    /// A topic's partitions and configs.
    pub(crate) async fn describe_topic(&self, topic: &str) -> Result<TopicView> {
        match self {
            Backend::Dir(broker) => dir::describe_topic(broker, topic).await,
            Backend::Kafka(cluster) => cluster.describe_topic(topic).await,
        }
    }

    /// Deletes a topic; an unknown one is [`broker_embedded::BrokerError::UnknownTopic`].
    pub(crate) async fn delete_topic(&self, topic: &str) -> Result<()> {
        match self {
            Backend::Dir(broker) => Ok(broker.delete_topic(topic).await?),
            Backend::Kafka(cluster) => cluster.delete_topic(topic).await,
        }
    }

    /// A topic's number of partitions; an unknown topic is
    /// [`broker_embedded::BrokerError::UnknownTopic`].
    pub(crate) async fn partition_count(&self, topic: &str) -> Result<u32> {
        match self {
            Backend::Dir(broker) => Ok(broker.partition_count(topic).await?),
            Backend::Kafka(cluster) => cluster.partition_count(topic),
        }
    }

    /// A partition's log start and log end offsets.
    pub(crate) async fn offsets(&self, topic: &str, partition: u32) -> Result<(u64, u64)> {
        match self {
            Backend::Dir(broker) => Ok(broker.offsets(topic, partition).await?),
            Backend::Kafka(cluster) => cluster.offsets(topic, partition),
        }
    }

    /// The earliest offset whose record's timestamp is at or after `timestamp`, `None` when
    /// every record is older (Kafka's `offsetsForTimes`).
    pub(crate) async fn offset_for_timestamp(
        &self,
        topic: &str,
        partition: u32,
        timestamp: i64,
    ) -> Result<Option<u64>> {
        match self {
            Backend::Dir(broker) => Ok(broker
                .offset_for_timestamp(topic, partition, timestamp)
                .await?
                .map(|(offset, _)| offset)),
            Backend::Kafka(cluster) => cluster.offset_for_timestamp(topic, partition, timestamp),
        }
    }

    /// The consumer group ids, sorted.
    pub(crate) async fn list_groups(&self) -> Result<Vec<String>> {
        match self {
            Backend::Dir(broker) => {
                let mut ids: Vec<String> = broker
                    .list_groups()
                    .await?
                    .into_iter()
                    .map(|listing| listing.group_id)
                    .collect();
                ids.sort();
                Ok(ids)
            }
            Backend::Kafka(cluster) => cluster.list_groups(),
        }
    }

    /// A group's state, members and offsets; an unknown group is
    /// [`broker_embedded::BrokerError::GroupIdNotFound`].
    pub(crate) async fn describe_group(&self, group: &str) -> Result<GroupView> {
        match self {
            Backend::Dir(broker) => dir::describe_group(broker, group).await,
            Backend::Kafka(cluster) => cluster.describe_group(group),
        }
    }

    /// Commits `offsets` for `group` from outside group management, which is allowed only
    /// while the group has no members.
    pub(crate) async fn commit_offsets(
        &self,
        group: &str,
        offsets: &[(TopicPartition, u64)],
    ) -> Result<()> {
        match self {
            Backend::Dir(broker) => dir::commit_offsets(broker, group, offsets).await,
            Backend::Kafka(cluster) => cluster.commit_offsets(group, offsets),
        }
    }

    /// Deletes a group and its committed offsets.
    pub(crate) async fn delete_group(&self, group: &str) -> Result<()> {
        match self {
            Backend::Dir(broker) => Ok(broker.delete_group(group).await?),
            Backend::Kafka(cluster) => cluster.delete_group(group).await,
        }
    }

    /// A consumer positioned as `spec` says.
    pub(crate) async fn open_source(&self, spec: &ReadSpec) -> Result<Source> {
        match self {
            Backend::Dir(broker) => Ok(Source::Dir(Box::new(
                dir::DirSource::open(broker, spec).await?,
            ))),
            Backend::Kafka(cluster) => Ok(Source::Kafka(Box::new(cluster.open_source(spec)?))),
        }
    }

    /// A producer to `topic` (which must exist), writing batches with `compression`.
    pub(crate) async fn open_sink(
        &self,
        topic: &str,
        compression: CompressionType,
    ) -> Result<Sink> {
        match self {
            Backend::Dir(broker) => Ok(Sink::Dir(Box::new(
                dir::DirSink::open(broker, topic, compression).await?,
            ))),
            Backend::Kafka(cluster) => Ok(Sink::Kafka(cluster.open_sink(topic, compression)?)),
        }
    }
}

/// `--offset O` must be within `[log start, log end]`.
pub(crate) fn check_start_offset(
    tp: &TopicPartition,
    offset: u64,
    log_start: u64,
    log_end: u64,
) -> Result<()> {
    if offset < log_start || offset > log_end {
        bail!(
            "offset {offset} is out of range for partition {tp} \
             (log start offset {log_start}, log end offset {log_end})"
        );
    }
    Ok(())
}

/// Whether `e` says the topic exists already.
pub(crate) fn is_topic_exists(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<broker_embedded::BrokerError>(),
        Some(broker_embedded::BrokerError::TopicExists { .. })
    )
}

/// Whether `e` says the topic does not exist.
pub(crate) fn is_unknown_topic(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<broker_embedded::BrokerError>(),
        Some(broker_embedded::BrokerError::UnknownTopic { .. })
    )
}

/// Whether `e` says the group does not exist.
pub(crate) fn is_unknown_group(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<broker_embedded::BrokerError>(),
        Some(broker_embedded::BrokerError::GroupIdNotFound { .. })
    )
}
