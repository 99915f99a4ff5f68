//! The cluster backend: a Kafka cluster (or `streams serve`) reached with librdkafka, for
//! `--bootstrap-server`.
//!
//! Every call librdkafka would retry forever has a time limit: [`CONNECT_TIMEOUT`] to reach
//! the cluster at all, [`REQUEST_TIMEOUT`] for each request after that.
//!
//! librdkafka's calls that wait for an answer (metadata, watermarks, committed offsets)
//! block the command's thread for up to their time limit; the command does one thing at a
//! time, so nothing else waits for them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _, Result};
use broker_embedded::{BrokerError, TopicPartition};
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::metadata::Metadata;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};

mod assignment;
mod context;
mod groups;
mod sink;
mod source;
mod topics;

pub(crate) use context::Ctx;
pub(crate) use sink::KafkaSink;
pub(crate) use source::KafkaSource;

/// How long [`Cluster::connect`] tries to reach the cluster.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The time limit of each request after that (admin requests, metadata, offsets, commits,
/// the delivery of a produced record).
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one metadata request of [`Cluster::connect`] waits before librdkafka's errors
/// are looked at.
const CONNECT_SLICE: Duration = Duration::from_millis(100);
/// The `client.id` the cluster sees.
const CLIENT_ID: &str = "streams-cli";
/// Kafka's internal topics, which `topics list` and `topics describe` do not show.
const INTERNAL_TOPICS: [&str; 2] = ["__consumer_offsets", "__transaction_state"];

/// A connected cluster: a client for metadata, offsets and groups, and an admin client.
pub(crate) struct Cluster {
    /// The `--bootstrap-server` list, for messages and for the clients made later.
    servers: String,
    /// Metadata, watermarks, offsets for times, the group list (a consumer without a group).
    client: BaseConsumer<Ctx>,
    /// Topic and group administration.
    admin: AdminClient<Ctx>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("servers", &self.servers)
            .finish_non_exhaustive()
    }
}

/// The settings every client of the command shares.
pub(crate) fn client_config(servers: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", servers)
        .set("client.id", CLIENT_ID)
        // An unknown topic is an error, as on a data dir, not a topic made by asking for it.
        .set("allow.auto.create.topics", "false")
        .set(
            "socket.connection.setup.timeout.ms",
            millis(CONNECT_TIMEOUT),
        )
        .set("socket.timeout.ms", millis(REQUEST_TIMEOUT))
        .set_log_level(RDKafkaLogLevel::Warning);
    config
}

/// `duration` in milliseconds, as librdkafka's settings take it.
pub(crate) fn millis(duration: Duration) -> String {
    duration.as_millis().to_string()
}

/// The text of a librdkafka error code ("Broker: Topic already exists").
pub(crate) fn code_text(code: RDKafkaErrorCode) -> String {
    let text = code.to_string();
    // RDKafkaErrorCode shows as "Name (text)".
    match (text.find('('), text.rfind(')')) {
        (Some(open), Some(close)) if open < close => text[open + 1..close].to_owned(),
        _ => text,
    }
}

impl Cluster {
    /// Connects to the cluster at `servers`: succeeds once a broker answered a metadata
    /// request; fails when librdkafka finds every broker of the list down (refused, not
    /// resolved) or after [`CONNECT_TIMEOUT`].
    pub(crate) async fn connect(servers: &str) -> Result<Arc<Cluster>> {
        let client: BaseConsumer<Ctx> = client_config(servers)
            .create_with_context(Ctx::default())
            .with_context(|| format!("making a Kafka client for {servers}"))?;
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        loop {
            let error = match client.fetch_metadata(None, CONNECT_SLICE) {
                Ok(_) => break,
                Err(e) => e,
            };
            // Serves librdkafka's main queue: its error and log events reach the context.
            if let Some(Err(e)) = client.poll(Duration::ZERO) {
                tracing::debug!(error = %e, "while connecting");
            }
            let ctx = client.context();
            if ctx.all_brokers_down() || Instant::now() >= deadline {
                let cause = ctx.last_error().unwrap_or_else(|| {
                    format!("no answer within {} s ({error})", CONNECT_TIMEOUT.as_secs())
                });
                return Err(anyhow!(
                    "cannot reach the Kafka cluster at {servers} (--bootstrap-server): {cause}"
                ));
            }
            tokio::task::yield_now().await;
        }
        let admin: AdminClient<Ctx> = client_config(servers)
            .create_with_context(Ctx::default())
            .with_context(|| format!("making a Kafka admin client for {servers}"))?;
        tracing::info!(servers, "connected to the Kafka cluster");
        Ok(Arc::new(Cluster {
            servers: servers.to_owned(),
            client,
            admin,
        }))
    }

    /// The `--bootstrap-server` list.
    pub(crate) fn servers(&self) -> &str {
        &self.servers
    }

    /// Options of an admin request: its time limit.
    fn admin_options() -> AdminOptions {
        AdminOptions::new()
            .request_timeout(Some(REQUEST_TIMEOUT))
            .operation_timeout(Some(REQUEST_TIMEOUT))
    }

    /// Metadata of every topic, or of one.
    fn metadata(&self, topic: Option<&str>) -> Result<Metadata> {
        self.client
            .fetch_metadata(topic, REQUEST_TIMEOUT)
            .with_context(|| format!("reading the metadata of the cluster at {}", self.servers))
    }

    /// The names of the topics, sorted, without Kafka's internal topics.
    pub(crate) fn list_topics(&self) -> Result<Vec<String>> {
        let metadata = self.metadata(None)?;
        let mut names: Vec<String> = metadata
            .topics()
            .iter()
            .map(|t| t.name().to_owned())
            .filter(|name| !INTERNAL_TOPICS.contains(&name.as_str()))
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// A topic's number of partitions; [`BrokerError::UnknownTopic`] if it does not exist.
    pub(crate) fn partition_count(&self, topic: &str) -> Result<u32> {
        let metadata = self.metadata(Some(topic))?;
        let found = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .ok_or_else(|| unknown_topic(topic))?;
        let partitions = found.partitions().len();
        match found.error() {
            Some(RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) => {
                Err(unknown_topic(topic))
            }
            Some(e) if partitions == 0 => Err(anyhow!(
                "reading the metadata of topic {topic}: {}",
                code_text(RDKafkaErrorCode::from(e))
            )),
            _ => u32::try_from(partitions)
                .with_context(|| format!("topic {topic} has {partitions} partitions")),
        }
    }

    /// Checks that `partition` is one of the topic's.
    pub(crate) fn check_partition(&self, topic: &str, partition: u32) -> Result<()> {
        let partitions = self.partition_count(topic)?;
        if partition >= partitions {
            return Err(BrokerError::UnknownPartition {
                topic: topic.to_owned(),
                partition,
                partitions,
            }
            .into());
        }
        Ok(())
    }

    /// A partition's log start and log end offsets (low and high watermarks).
    pub(crate) fn offsets(&self, topic: &str, partition: u32) -> Result<(u64, u64)> {
        let (low, high) = self
            .client
            .fetch_watermarks(topic, partition_id(partition)?, REQUEST_TIMEOUT)
            .map_err(|e| match e.rdkafka_error_code() {
                Some(
                    RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic,
                ) => unknown_topic(topic),
                _ => anyhow::Error::new(e).context(format!(
                    "reading the offsets of partition {topic}-{partition}"
                )),
            })?;
        Ok((offset_from(low)?, offset_from(high)?))
    }

    /// The earliest offset of a record at or after `timestamp`; `None` when every record is
    /// older.
    pub(crate) fn offset_for_timestamp(
        &self,
        topic: &str,
        partition: u32,
        timestamp: i64,
    ) -> Result<Option<u64>> {
        let mut query = TopicPartitionList::new();
        query.add_partition_offset(topic, partition_id(partition)?, Offset::Offset(timestamp))?;
        let found = self
            .client
            .offsets_for_times(query, REQUEST_TIMEOUT)
            .with_context(|| {
                format!("looking up the offset of time {timestamp} in {topic}-{partition}")
            })?;
        let elem = found
            .find_partition(topic, partition_id(partition)?)
            .ok_or_else(|| anyhow!("no answer for {topic}-{partition}"))?;
        elem.error()
            .with_context(|| format!("looking up time {timestamp} in {topic}-{partition}"))?;
        match elem.offset() {
            Offset::Offset(offset) => Ok(Some(offset_from(offset)?)),
            _ => Ok(None),
        }
    }

    /// A client in consumer group `group`, outside group management (it never subscribes):
    /// for the group's committed offsets.
    fn group_client(&self, group: &str) -> Result<BaseConsumer<Ctx>> {
        let mut config = client_config(&self.servers);
        config
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false");
        config
            .create_with_context(Ctx::default())
            .with_context(|| format!("making a Kafka client for group {group}"))
    }
}

/// The error of a topic that does not exist, as a data dir's broker words it.
pub(crate) fn unknown_topic(topic: &str) -> anyhow::Error {
    BrokerError::UnknownTopic {
        topic: topic.to_owned(),
    }
    .into()
}

/// A partition number as librdkafka takes it.
pub(crate) fn partition_id(partition: u32) -> Result<i32> {
    i32::try_from(partition).with_context(|| format!("partition {partition} is out of range"))
}

/// A partition number librdkafka reported.
pub(crate) fn partition_from(partition: i32) -> Result<u32> {
    u32::try_from(partition).with_context(|| format!("the cluster sent partition {partition}"))
}

/// An offset librdkafka reported.
pub(crate) fn offset_from(offset: i64) -> Result<u64> {
    u64::try_from(offset).with_context(|| format!("the cluster sent offset {offset}"))
}

/// The partitions as librdkafka lists them, each at `offset`.
pub(crate) fn partition_list(offsets: &[(TopicPartition, u64)]) -> Result<TopicPartitionList> {
    let mut list = TopicPartitionList::new();
    for (tp, offset) in offsets {
        let offset = i64::try_from(*offset).with_context(|| format!("offset {offset}"))?;
        list.add_partition_offset(
            &tp.topic,
            partition_id(tp.partition)?,
            Offset::Offset(offset),
        )?;
    }
    Ok(list)
}
