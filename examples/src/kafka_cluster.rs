//! A Kafka cluster reached with librdkafka: the side of [`crate::cluster::Cluster`] that
//! the examples use with `--bootstrap-server`. Any broker that speaks the Kafka protocol
//! will do: Apache Kafka, or `streams serve`.
//!
//! librdkafka's calls block; each operation here runs on tokio's blocking threads, so an
//! application running in the same runtime is not held up. Every call that librdkafka
//! would retry forever has a time limit: [`CONNECT_TIMEOUT`] to reach the cluster,
//! [`REQUEST_TIMEOUT`] for each request after that.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use broker_embedded::{ConsumerRecord, Header, ProducerRecord, TimestampType};
use bytes::Bytes;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Headers as _, Message as _, OwnedHeaders, Timestamp};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer as _, ProducerContext};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::kafka_context::{lock, Ctx};
use crate::kafka_progress::GroupWatch;
use crate::load::{KeyValue, LoadTarget};
use crate::progress::{GroupProgress, ProgressSource};

/// How long [`KafkaCluster::connect`] tries to reach the cluster.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The time limit of each request after that (metadata, offsets, a topic's creation).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the records of one load may take to be acknowledged.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(120);
/// The `client.id` the cluster sees.
const CLIENT_ID: &str = "rill-examples";
/// The group id of the clients that read partitions they assign themselves (librdkafka's
/// assign needs one); they never join it nor commit.
const READER_GROUP: &str = "rill-examples-reader";

/// Checks a `--bootstrap-server` list, `HOST:PORT[,HOST:PORT...]` (as Kafka's tools and
/// the `streams` CLI take it); returns it without spaces around the entries.
pub fn parse_bootstrap_servers(s: &str) -> Result<String, String> {
    let mut servers = Vec::new();
    for entry in s.split(',').map(str::trim) {
        if entry.is_empty() {
            return Err(format!(
                "{s:?} has an empty entry; expected HOST:PORT[,HOST:PORT...]"
            ));
        }
        let Some((host, port)) = entry.rsplit_once(':') else {
            return Err(format!("{entry:?} is not HOST:PORT"));
        };
        if host.is_empty() {
            return Err(format!("{entry:?} has no host"));
        }
        match port.parse::<u16>() {
            Ok(port) if port > 0 => {}
            _ => return Err(format!("{entry:?}: the port must be from 1 to 65535")),
        }
        servers.push(entry);
    }
    Ok(servers.join(","))
}

/// Remembers the producer's failed deliveries.
#[derive(Debug, Default)]
struct Deliveries {
    logs: Ctx,
    failed: Mutex<(u64, Option<String>)>,
}

impl ClientContext for Deliveries {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.logs.log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.logs.error(error, reason);
    }
}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: Self::DeliveryOpaque) {
        if let Err((error, message)) = result {
            let mut failed = lock(&self.failed);
            failed.0 += 1;
            if failed.1.is_none() {
                failed.1 = Some(format!(
                    "{}-{}: {error}",
                    message.topic(),
                    message.partition()
                ));
            }
        }
    }
}

/// A connected Kafka cluster: a client for metadata and offsets, an admin client, and
/// the group progress clients made on demand. Cheap to clone (shared).
#[derive(Clone)]
pub struct KafkaCluster {
    inner: Arc<Inner>,
}

struct Inner {
    servers: String,
    /// Metadata and watermarks (`read_uncommitted`, no group).
    client: BaseConsumer<Ctx>,
    admin: AdminClient<Ctx>,
    /// One [`GroupWatch`] per group asked about.
    watches: Mutex<HashMap<String, Arc<GroupWatch>>>,
}

impl std::fmt::Debug for KafkaCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaCluster")
            .field("servers", &self.inner.servers)
            .finish_non_exhaustive()
    }
}

/// Runs a blocking librdkafka call on tokio's blocking threads.
async fn blocking<T: Send + 'static>(
    call: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(call)
        .await
        .context("a Kafka client call panicked")?
}

impl KafkaCluster {
    /// Connects to the cluster at `servers` (a `--bootstrap-server` list): succeeds once a
    /// broker answered a metadata request; fails when librdkafka finds every broker of the
    /// list down (refused, not resolved) or after [`CONNECT_TIMEOUT`].
    pub async fn connect(servers: &str) -> anyhow::Result<Self> {
        let servers = servers.to_owned();
        blocking(move || {
            let client: BaseConsumer<Ctx> = client_config(&servers)
                .create_with_context(Ctx::default())
                .with_context(|| format!("cannot make a Kafka client for {servers}"))?;
            let deadline = Instant::now() + CONNECT_TIMEOUT;
            loop {
                let error = match client.fetch_metadata(None, Duration::from_millis(100)) {
                    Ok(_) => break,
                    Err(e) => e,
                };
                // Serves librdkafka's main queue: its error events reach the context.
                if let Some(Err(e)) = client.poll(Duration::ZERO) {
                    tracing::debug!(error = %e, "while connecting");
                }
                let ctx = client.context();
                if ctx.all_brokers_down() || Instant::now() >= deadline {
                    let cause = ctx.last_error().unwrap_or_else(|| {
                        format!("no answer within {} s ({error})", CONNECT_TIMEOUT.as_secs())
                    });
                    bail!(
                        "cannot reach the Kafka cluster at {servers} (--bootstrap-server): {cause}"
                    );
                }
            }
            let admin: AdminClient<Ctx> = client_config(&servers)
                .create_with_context(Ctx::default())
                .with_context(|| format!("cannot make a Kafka admin client for {servers}"))?;
            tracing::info!(servers, "connected to the Kafka cluster");
            Ok(Self {
                inner: Arc::new(Inner {
                    servers,
                    client,
                    admin,
                    watches: Mutex::new(HashMap::new()),
                }),
            })
        })
        .await
    }

    /// The `--bootstrap-server` list.
    pub fn servers(&self) -> &str {
        &self.inner.servers
    }

    /// Creates `topic` with `partitions` partitions, the broker's default replication
    /// factor and `retention.ms=-1` unless it exists, and waits until each of its
    /// partitions has a leader; returns its partition count. The retention is unlimited
    /// because the examples' records carry fixed event times from 2023, which Kafka's
    /// default retention (7 days, judged by the records' timestamps) would delete at its
    /// next check (five minutes apart, the first 30 s after the broker starts), processed
    /// or not; see [`crate::ensure_topic`].
    pub async fn ensure_topic(&self, topic: &str, partitions: u32) -> anyhow::Result<u32> {
        let count = i32::try_from(partitions).context("too many partitions")?;
        let options = AdminOptions::new()
            .request_timeout(Some(REQUEST_TIMEOUT))
            .operation_timeout(Some(REQUEST_TIMEOUT));
        let results = self
            .inner
            .admin
            .create_topics(
                &[NewTopic::new(topic, count, TopicReplication::Fixed(-1))
                    .set("retention.ms", "-1")],
                &options,
            )
            .await
            .with_context(|| format!("cannot create topic {topic} on {}", self.servers()))?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((name, code)) => {
                    bail!("cannot create topic {name} on {}: {code}", self.servers())
                }
            }
        }
        let this = self.clone();
        let topic = topic.to_owned();
        blocking(move || {
            let deadline = Instant::now() + REQUEST_TIMEOUT;
            loop {
                if let Some(count) = this.leaders_ready(&topic)? {
                    return Ok(count);
                }
                if Instant::now() >= deadline {
                    bail!(
                        "topic {topic} on {} has no leader for each partition after {} s",
                        this.servers(),
                        REQUEST_TIMEOUT.as_secs()
                    );
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
        .await
    }

    /// The partition count of `topic` once each partition has a leader; `None` before
    /// (or while the topic is not known).
    fn leaders_ready(&self, topic: &str) -> anyhow::Result<Option<u32>> {
        let metadata = self
            .inner
            .client
            .fetch_metadata(Some(topic), REQUEST_TIMEOUT)
            .with_context(|| format!("cannot read the metadata of {topic}"))?;
        let ready = metadata.topics().iter().find(|t| {
            t.name() == topic
                && t.error().is_none()
                && !t.partitions().is_empty()
                && t.partitions().iter().all(|p| p.leader() >= 0)
        });
        Ok(ready.map(|t| t.partitions().len() as u32))
    }

    /// The partition count of `topic`; an unknown topic is an error.
    fn partition_count(&self, topic: &str) -> anyhow::Result<u32> {
        let metadata = self
            .inner
            .client
            .fetch_metadata(Some(topic), REQUEST_TIMEOUT)
            .with_context(|| format!("cannot read the metadata of {topic}"))?;
        let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else {
            bail!(
                "the cluster at {} does not name topic {topic}",
                self.servers()
            );
        };
        if let Some(error) = found.error() {
            bail!("topic {topic}: {}", RDKafkaErrorCode::from(error));
        }
        Ok(found.partitions().len() as u32)
    }

    /// A consumer for partitions it assigns itself, `read_committed`, reporting each
    /// partition's end.
    fn reader(&self) -> anyhow::Result<BaseConsumer<Ctx>> {
        client_config(self.servers())
            .set("group.id", READER_GROUP)
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .set("enable.partition.eof", "true")
            .set("fetch.wait.max.ms", "50")
            .create_with_context(Ctx::default())
            .context("cannot make a Kafka consumer")
    }

    /// Every committed record of `topic` (read `read_committed` up to each partition's
    /// last stable offset as it was when the call began), partition by partition in
    /// offset order. Fails after `deadline`.
    pub async fn read_committed(
        &self,
        topic: &str,
        deadline: Duration,
    ) -> anyhow::Result<Vec<ConsumerRecord>> {
        let this = self.clone();
        let topic = topic.to_owned();
        blocking(move || this.read_committed_blocking(&topic, deadline)).await
    }

    fn read_committed_blocking(
        &self,
        topic: &str,
        deadline: Duration,
    ) -> anyhow::Result<Vec<ConsumerRecord>> {
        let started = Instant::now();
        let partitions = self.partition_count(topic)?;
        let consumer = self.reader()?;
        let mut assignment = TopicPartitionList::new();
        let mut ends: HashMap<i32, i64> = HashMap::new();
        for partition in 0..partitions as i32 {
            // read_committed: the high end is the last stable offset.
            let (low, stable) = consumer
                .fetch_watermarks(topic, partition, REQUEST_TIMEOUT)
                .with_context(|| format!("cannot read the offsets of {topic}-{partition}"))?;
            if stable > low {
                assignment.add_partition_offset(topic, partition, Offset::Offset(low))?;
                ends.insert(partition, stable);
            }
        }
        let shared: Arc<str> = Arc::from(topic);
        let mut records = Vec::new();
        if ends.is_empty() {
            return Ok(records);
        }
        consumer.assign(&assignment)?;
        while !ends.is_empty() {
            if started.elapsed() > deadline {
                bail!("cannot read {topic} to its end within {deadline:?}");
            }
            match consumer.poll(Duration::from_millis(100)) {
                None => {}
                Some(Ok(message)) => {
                    let partition = message.partition();
                    let Some(&end) = ends.get(&partition) else {
                        continue;
                    };
                    if message.offset() >= end {
                        ends.remove(&partition);
                        continue;
                    }
                    records.push(consumer_record(&shared, &message)?);
                    if message.offset() + 1 >= end {
                        ends.remove(&partition);
                    }
                }
                // The end of what read_committed may read, at or past the end asked for.
                Some(Err(KafkaError::PartitionEOF(partition))) => {
                    ends.remove(&partition);
                }
                Some(Err(e)) => return Err(e).with_context(|| format!("cannot read {topic}")),
            }
        }
        records.sort_by_key(|r| (r.partition, r.offset));
        Ok(records)
    }

    /// A reader of the records that `topic` gets from now on (`read_committed`).
    pub async fn reader_from_end(&self, topic: &str) -> anyhow::Result<KafkaReader> {
        let this = self.clone();
        let topic = topic.to_owned();
        blocking(move || {
            let partitions = this.partition_count(&topic)?;
            let consumer = this.reader()?;
            let mut assignment = TopicPartitionList::new();
            for partition in 0..partitions as i32 {
                let (_, end) = consumer
                    .fetch_watermarks(&topic, partition, REQUEST_TIMEOUT)
                    .with_context(|| format!("cannot read the offsets of {topic}-{partition}"))?;
                assignment.add_partition_offset(&topic, partition, Offset::Offset(end))?;
            }
            consumer.assign(&assignment)?;
            Ok(KafkaReader {
                topic: Arc::from(topic.as_str()),
                consumer: Arc::new(consumer),
            })
        })
        .await
    }

    /// Produces `records` with an idempotent producer (`acks=all`; in order within each
    /// partition) and waits until each is acknowledged; fails if one is not delivered. A
    /// record without a partition is placed by the producer's `murmur2_random` partitioner
    /// (the Java client's).
    pub async fn produce(&self, records: Vec<ProducerRecord>) -> anyhow::Result<()> {
        let this = self.clone();
        blocking(move || this.produce_blocking(records)).await
    }

    fn produce_blocking(&self, records: Vec<ProducerRecord>) -> anyhow::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let producer: BaseProducer<Deliveries> = client_config(self.servers())
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("partitioner", "murmur2_random")
            .set("linger.ms", "5")
            .set("message.timeout.ms", millis(DELIVERY_TIMEOUT))
            .create_with_context(Deliveries::default())
            .context("cannot make a Kafka producer")?;
        for r in &records {
            let headers = (!r.headers.is_empty()).then(|| {
                r.headers.iter().fold(OwnedHeaders::new(), |headers, h| {
                    headers.insert(rdkafka::message::Header {
                        key: &h.key,
                        value: h.value.as_deref(),
                    })
                })
            });
            let mut record = BaseRecord::<[u8], [u8]>::to(&r.topic);
            if let Some(partition) = r.partition {
                record = record.partition(i32::try_from(partition).context("partition")?);
            }
            if let Some(key) = &r.key {
                record = record.key(key.as_ref());
            }
            if let Some(value) = &r.value {
                record = record.payload(value.as_ref());
            }
            if let Some(timestamp) = r.timestamp {
                record = record.timestamp(timestamp);
            }
            if let Some(headers) = headers {
                record = record.headers(headers);
            }
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        record = back;
                        producer.poll(Duration::from_millis(20));
                    }
                    Err((e, _)) => {
                        return Err(e).with_context(|| format!("cannot produce to {}", r.topic))
                    }
                }
            }
        }
        producer
            .flush(DELIVERY_TIMEOUT)
            .with_context(|| format!("the records were not acknowledged by {}", self.servers()))?;
        let failed = lock(&producer.context().failed).clone();
        if failed.0 > 0 {
            bail!(
                "{} records were not delivered, the first to {}",
                failed.0,
                failed.1.unwrap_or_default()
            );
        }
        Ok(())
    }

    /// The [`GroupWatch`] of `group`, made on the first question.
    fn watch(&self, group: &str) -> anyhow::Result<Arc<GroupWatch>> {
        let mut watches = lock(&self.inner.watches);
        if let Some(watch) = watches.get(group) {
            return Ok(watch.clone());
        }
        let watch = Arc::new(GroupWatch::new(self.servers(), group)?);
        watches.insert(group.to_owned(), watch.clone());
        Ok(watch)
    }

    /// The committed position and lag of `group` over every partition of `topics`
    /// ([`GroupWatch::progress`]); a topic not created yet is left out.
    pub async fn group_progress(
        &self,
        group: &str,
        topics: &[String],
    ) -> anyhow::Result<GroupProgress> {
        let watch = self.watch(group)?;
        let topics = topics.to_vec();
        blocking(move || watch.progress(&topics)).await
    }
}

impl LoadTarget for KafkaCluster {
    async fn partitions(&self, topic: &str) -> anyhow::Result<u32> {
        let this = self.clone();
        let topic = topic.to_owned();
        blocking(move || this.partition_count(&topic)).await
    }

    async fn offsets(&self, topic: &str, partition: u32) -> anyhow::Result<(u64, u64)> {
        let this = self.clone();
        let topic = topic.to_owned();
        blocking(move || {
            let (low, high) = this.inner.client.fetch_watermarks(
                &topic,
                i32::try_from(partition).context("partition")?,
                REQUEST_TIMEOUT,
            )?;
            Ok((
                u64::try_from(low).unwrap_or(0),
                u64::try_from(high).unwrap_or(0),
            ))
        })
        .await
    }

    async fn record_at(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
    ) -> anyhow::Result<Option<KeyValue>> {
        let this = self.clone();
        let topic = topic.to_owned();
        blocking(move || {
            let consumer: BaseConsumer<Ctx> = client_config(this.servers())
                .set("group.id", READER_GROUP)
                .set("enable.auto.commit", "false")
                .set("enable.partition.eof", "true")
                .create_with_context(Ctx::default())
                .context("cannot make a Kafka consumer")?;
            let partition = i32::try_from(partition).context("partition")?;
            let at = i64::try_from(offset).context("offset")?;
            let mut assignment = TopicPartitionList::new();
            assignment.add_partition_offset(&topic, partition, Offset::Offset(at))?;
            consumer.assign(&assignment)?;
            let deadline = Instant::now() + REQUEST_TIMEOUT;
            while Instant::now() < deadline {
                match consumer.poll(Duration::from_millis(100)) {
                    None => {}
                    Some(Ok(message)) if message.offset() == at => {
                        return Ok(Some((
                            message.key().map(Bytes::copy_from_slice),
                            message.payload().map(Bytes::copy_from_slice),
                        )))
                    }
                    // Removed (compacted, deleted): nothing to compare.
                    Some(Ok(_)) | Some(Err(KafkaError::PartitionEOF(_))) => return Ok(None),
                    Some(Err(e)) => {
                        return Err(e).with_context(|| {
                            format!("cannot read {topic}-{partition} at offset {offset}")
                        })
                    }
                }
            }
            bail!(
                "cannot read {topic}-{partition} at offset {offset} within {} s",
                REQUEST_TIMEOUT.as_secs()
            )
        })
        .await
    }

    async fn append(&self, _topic: &str, records: Vec<ProducerRecord>) -> anyhow::Result<()> {
        self.produce(records).await
    }
}

impl ProgressSource for KafkaCluster {
    async fn group_progress(
        &self,
        group: &str,
        topics: &[String],
    ) -> anyhow::Result<GroupProgress> {
        KafkaCluster::group_progress(self, group, topics).await
    }

    fn poll_interval(&self) -> Duration {
        // Each question is a dozen requests or so.
        Duration::from_millis(200)
    }
}

/// Reads the records a topic gets from a given point on, on a Kafka cluster.
pub struct KafkaReader {
    topic: Arc<str>,
    consumer: Arc<BaseConsumer<Ctx>>,
}

impl std::fmt::Debug for KafkaReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaReader")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl KafkaReader {
    /// The records that arrive within `timeout` (none if nothing does), in the order
    /// read.
    pub async fn poll(&self, timeout: Duration) -> anyhow::Result<Vec<ConsumerRecord>> {
        let consumer = self.consumer.clone();
        let topic = self.topic.clone();
        blocking(move || {
            let mut records = Vec::new();
            let mut wait = timeout;
            loop {
                match consumer.poll(wait) {
                    None => return Ok(records),
                    Some(Ok(message)) => records.push(consumer_record(&topic, &message)?),
                    Some(Err(KafkaError::PartitionEOF(_))) => {}
                    Some(Err(e)) => return Err(e).with_context(|| format!("cannot read {topic}")),
                }
                // Once something came, take only what is there already.
                if !records.is_empty() {
                    wait = Duration::ZERO;
                }
            }
        })
        .await
    }
}

/// The settings every client shares.
fn client_config(servers: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", servers)
        .set("client.id", CLIENT_ID)
        // An unknown topic is an error, not a topic made by asking for it.
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
fn millis(duration: Duration) -> String {
    duration.as_millis().to_string()
}

/// `message` as the embedded broker's consumers hand records out.
fn consumer_record(
    topic: &Arc<str>,
    message: &BorrowedMessage<'_>,
) -> anyhow::Result<ConsumerRecord> {
    let (timestamp, timestamp_type) = match message.timestamp() {
        Timestamp::CreateTime(t) => (t, TimestampType::CreateTime),
        Timestamp::LogAppendTime(t) => (t, TimestampType::LogAppendTime),
        Timestamp::NotAvailable => (-1, TimestampType::CreateTime),
    };
    let headers = message
        .headers()
        .map(|headers| {
            headers
                .iter()
                .map(|h| Header {
                    key: h.key.to_owned(),
                    value: h.value.map(Bytes::copy_from_slice),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(ConsumerRecord {
        topic: topic.clone(),
        partition: u32::try_from(message.partition()).context("a negative partition")?,
        offset: u64::try_from(message.offset()).context("a negative offset")?,
        timestamp,
        timestamp_type,
        key: message.key().map(Bytes::copy_from_slice),
        value: message.payload().map(Bytes::copy_from_slice),
        headers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use broker_embedded::{Broker, BrokerConfig, Producer};
    use broker_wire::{Server, WireConfig};

    use crate::load::load;

    #[test]
    fn bootstrap_lists_are_checked() {
        assert_eq!(
            parse_bootstrap_servers("k1:9092, k2:9093").as_deref(),
            Ok("k1:9092,k2:9093")
        );
        for bad in ["", "k1", ":9092", "k1:0", "k1:x", "k1:9092,", "k1:70000"] {
            assert!(parse_bootstrap_servers(bad).is_err(), "{bad:?}");
        }
    }

    /// An in-memory broker served on an ephemeral loopback port, and a cluster connected
    /// to it.
    async fn served() -> (Broker, KafkaCluster) {
        let broker = Broker::in_memory_with(BrokerConfig {
            group_initial_rebalance_delay_ms: 0,
            ..BrokerConfig::default()
        })
        .await
        .unwrap();
        let server = Server::bind(
            broker.clone(),
            WireConfig {
                listen: "127.0.0.1:0".parse().unwrap(),
                ..WireConfig::default()
            },
        )
        .await
        .unwrap();
        let addr = server.local_addr().unwrap().to_string();
        tokio::spawn(server.run(std::future::pending()));
        let cluster = KafkaCluster::connect(&addr).await.unwrap();
        (broker, cluster)
    }

    fn line(i: usize) -> ProducerRecord {
        ProducerRecord::new("in", format!("line {i}").into_bytes()).timestamp(1_000 + i as i64)
    }

    /// Each partition of `in` holds exactly its lines, in order: `i % 3`.
    async fn assert_loaded(cluster: &KafkaCluster, len: usize) {
        let records = cluster
            .read_committed("in", Duration::from_secs(30))
            .await
            .unwrap();
        for partition in 0..3u32 {
            let held: Vec<(u64, Option<Bytes>, i64)> = records
                .iter()
                .filter(|r| r.partition == partition)
                .map(|r| (r.offset, r.value.clone(), r.timestamp))
                .collect();
            let wanted: Vec<(u64, Option<Bytes>, i64)> = (0..len)
                .filter(|i| i % 3 == partition as usize)
                .enumerate()
                .map(|(offset, i)| {
                    (
                        offset as u64,
                        Some(Bytes::from(format!("line {i}"))),
                        1_000 + i as i64,
                    )
                })
                .collect();
            assert_eq!(held, wanted, "partition {partition}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_load_on_kafka_writes_each_record_once_and_completes_prefixes() {
        let (broker, cluster) = served().await;
        assert_eq!(cluster.ensure_topic("in", 3).await.unwrap(), 3);
        // Asked again: the topic is there, with its partitions.
        assert_eq!(cluster.ensure_topic("in", 5).await.unwrap(), 3);
        // An interrupted load: partitions hold prefixes of different lengths.
        let producer = Producer::new(&broker);
        for (partition, n) in [(0u32, 7), (1, 0), (2, 2)] {
            let batch: Vec<_> = (0..3_000)
                .filter(|i| i % 3 == partition as usize)
                .take(n)
                .map(|i| line(i).partition(partition))
                .collect();
            if !batch.is_empty() {
                producer.send_batch(batch).await.unwrap();
            }
        }
        let first = load(&cluster, "in", 3_000, line).await.unwrap();
        assert_eq!((first.held, first.produced), (9, 2_991));
        assert_loaded(&cluster, 3_000).await;
        let again = load(&cluster, "in", 3_000, line).await.unwrap();
        assert_eq!((again.held, again.produced), (3_000, 0));
        // An input that grows: only the new lines are appended.
        let grown = load(&cluster, "in", 3_100, line).await.unwrap();
        assert_eq!((grown.held, grown.produced), (3_000, 100));
        assert_loaded(&cluster, 3_100).await;
        // Another input is refused, and appends nothing.
        let other = |i: usize| ProducerRecord::new("in", format!("other {i}").into_bytes());
        let err = load(&cluster, "in", 4_000, other).await.unwrap_err();
        assert!(
            err.to_string()
                .contains("does not hold the start of this input"),
            "{err}"
        );
        assert_loaded(&cluster, 3_100).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn keyed_records_go_where_the_java_client_puts_them() {
        let (_broker, cluster) = served().await;
        cluster.ensure_topic("in", 3).await.unwrap();
        let keyed = |i: usize| line(i).key(format!("user{}", i % 7).into_bytes());
        load(&cluster, "in", 300, keyed).await.unwrap();
        let records = cluster
            .read_committed("in", Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(records.len(), 300);
        for record in &records {
            let key = record.key.as_ref().unwrap();
            assert_eq!(
                broker_embedded::partitioner::partition_for_key(key, 3),
                record.partition
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn group_progress_counts_what_a_group_has_left() {
        let (_broker, cluster) = served().await;
        cluster.ensure_topic("in", 3).await.unwrap();
        load(&cluster, "in", 30, line).await.unwrap();
        let topics = ["in".to_owned(), "not-yet".to_owned()];
        let progress = cluster.group_progress("g", &topics).await.unwrap();
        assert_eq!((progress.committed, progress.remaining), (0, 30));
        // The group commits 4 of each partition's 10 records.
        let member: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", cluster.servers())
            .set("group.id", "g")
            .create()
            .unwrap();
        let mut offsets = TopicPartitionList::new();
        for partition in 0..3 {
            offsets
                .add_partition_offset("in", partition, Offset::Offset(4))
                .unwrap();
        }
        tokio::task::block_in_place(|| {
            member
                .commit(&offsets, rdkafka::consumer::CommitMode::Sync)
                .unwrap()
        });
        let progress = cluster.group_progress("g", &topics).await.unwrap();
        assert_eq!((progress.committed, progress.remaining), (12, 18));
        assert_eq!(progress.committed_per_topic["in"], 12);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reader_from_the_end_gets_only_what_comes_later() {
        let (_broker, cluster) = served().await;
        cluster.ensure_topic("in", 3).await.unwrap();
        load(&cluster, "in", 30, line).await.unwrap();
        let reader = cluster.reader_from_end("in").await.unwrap();
        assert!(reader
            .poll(Duration::from_millis(300))
            .await
            .unwrap()
            .is_empty());
        cluster
            .produce(vec![line(99).partition(1).key(&b"k"[..])])
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let got = loop {
            let got = reader.poll(Duration::from_millis(200)).await.unwrap();
            if !got.is_empty() || Instant::now() > deadline {
                break got;
            }
        };
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].partition, 1);
        assert_eq!(got[0].offset, 10);
        assert_eq!(got[0].key.as_deref(), Some(&b"k"[..]));
        assert_eq!(got[0].value.as_deref(), Some(&b"line 99"[..]));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unreachable_cluster_is_named() {
        // A port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let servers = format!("127.0.0.1:{port}");
        let err = KafkaCluster::connect(&servers).await.unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("cannot reach the Kafka cluster at {servers}")),
            "{err}"
        );
    }
}
