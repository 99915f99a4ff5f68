//! A broker for the runtime's end-to-end scenarios, of three kinds behind one [`Cluster`]:
//!
//! - [`Cluster::embedded`]: an in-memory embedded broker; apps run on it through
//!   `StreamsApp::new`, input is written with broker-embedded's producer and output read
//!   with its consumer;
//! - [`Cluster::served`]: the same broker served over the Kafka protocol by broker-wire
//!   (what `streams serve` runs), on a runtime of its own as if in another process; apps
//!   run through `StreamsApp::connect`, input is written and output read with librdkafka;
//! - [`Cluster::apache_kafka`]: a single-node Apache Kafka (KRaft) started by the examples'
//!   fixture, reached as the served broker is.
//!
//! A scenario asks the cluster for unique names ([`Cluster::unique`]), so that several
//! scenarios can share one broker, creates its topics, builds its apps with
//! [`Cluster::app`] from [`Cluster::config`], writes [`Input`] records with explicit
//! timestamps and reads what the apps wrote with a [`Reader`].

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context as _};
use broker_embedded::{
    AutoOffsetReset, Broker, BrokerConfig, Consumer, ConsumerConfig, IsolationLevel, NewTopic,
    Producer, ProducerRecord,
};
use broker_wire::{Server, WireConfig};
use examples::apache_kafka::ApacheKafka;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic as KafkaNewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer as _, StreamConsumer};
use rdkafka::message::Message as _;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use streams_core::{StreamsApp, StreamsConfig, Topology};

/// How long a topic may take to have a leader for each partition.
const TOPIC_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the input of one [`Cluster::produce`] may take to be acknowledged.
const PRODUCE_TIMEOUT: Duration = Duration::from_secs(60);

/// Which broker a [`Cluster`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    /// The embedded broker, in the test's process, apps on `StreamsApp::new`.
    Embedded,
    /// The embedded broker served over the Kafka protocol, apps on `StreamsApp::connect`.
    Served,
    /// Apache Kafka, apps on `StreamsApp::connect`.
    ApacheKafka,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Embedded => "embedded",
            Backend::Served => "served",
            Backend::ApacheKafka => "apache-kafka",
        })
    }
}

/// How a [`Reader`] reads transactional output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Isolation {
    /// Everything written, committed or not.
    ReadUncommitted,
    /// Committed records only, up to the last stable offset.
    ReadCommitted,
}

/// One record to write: key, value, timestamp and, if given, the partition.
#[derive(Debug, Clone)]
pub(crate) struct Input {
    key: Option<Vec<u8>>,
    value: Vec<u8>,
    timestamp: i64,
    partition: Option<u32>,
}

impl Input {
    /// A record without a key (placed by the producer's partitioner).
    pub(crate) fn unkeyed(value: impl Into<Vec<u8>>, timestamp: i64) -> Self {
        Self {
            key: None,
            value: value.into(),
            timestamp,
            partition: None,
        }
    }

    /// A keyed record (placed by murmur2 of the key unless a partition is given).
    pub(crate) fn keyed(
        key: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
        timestamp: i64,
    ) -> Self {
        Self {
            key: Some(key.into()),
            value: value.into(),
            timestamp,
            partition: None,
        }
    }

    /// The record written to `partition`.
    pub(crate) fn in_partition(mut self, partition: u32) -> Self {
        self.partition = Some(partition);
        self
    }
}

/// One record read from a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Output {
    pub(crate) partition: u32,
    pub(crate) offset: i64,
    pub(crate) timestamp: i64,
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) value: Option<Vec<u8>>,
}

enum Kind {
    Embedded {
        broker: Broker,
    },
    Served {
        bootstrap: String,
        /// The server's runtime; shut down in the background on drop (a runtime cannot be
        /// dropped inside another's context).
        runtime: Option<tokio::runtime::Runtime>,
    },
    ApacheKafka {
        bootstrap: String,
        /// Stopped by [`Cluster::shutdown`], or on drop.
        kafka: Option<ApacheKafka>,
    },
}

/// A broker the scenarios run on; see the module's documentation.
pub(crate) struct Cluster {
    kind: Kind,
    next_name: AtomicU32,
    /// The apps' state dirs are made under it.
    state_root: tempfile::TempDir,
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("backend", &self.backend())
            .field("bootstrap", &self.bootstrap())
            .finish_non_exhaustive()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Kind::Served { runtime, .. } = &mut self.kind {
            if let Some(runtime) = runtime.take() {
                runtime.shutdown_background();
            }
        }
    }
}

/// Epoch milliseconds now.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Cluster {
    fn with_kind(kind: Kind) -> anyhow::Result<Self> {
        Ok(Self {
            kind,
            next_name: AtomicU32::new(0),
            state_root: tempfile::Builder::new()
                .prefix("backend-matrix-state-")
                .tempdir()?,
        })
    }

    /// A fresh in-memory embedded broker, without the initial rebalance delay of new groups.
    pub(crate) async fn embedded() -> anyhow::Result<Self> {
        let broker = Broker::in_memory_with(BrokerConfig {
            group_initial_rebalance_delay_ms: 0,
            ..BrokerConfig::default()
        })
        .await?;
        Self::with_kind(Kind::Embedded { broker })
    }

    /// A fresh in-memory embedded broker served over the Kafka protocol on an ephemeral
    /// loopback port, by a runtime of two threads of its own.
    pub(crate) async fn served() -> anyhow::Result<Self> {
        let (runtime, bootstrap) = tokio::task::spawn_blocking(|| -> anyhow::Result<_> {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("served-broker")
                .enable_all()
                .build()?;
            let bootstrap = runtime.block_on(async {
                let broker = Broker::in_memory_with(BrokerConfig {
                    group_initial_rebalance_delay_ms: 0,
                    ..BrokerConfig::default()
                })
                .await?;
                let server = Server::bind(
                    broker,
                    WireConfig {
                        listen: "127.0.0.1:0".parse()?,
                        ..WireConfig::default()
                    },
                )
                .await?;
                let addr = server.local_addr()?.to_string();
                tokio::spawn(server.run(std::future::pending()));
                anyhow::Ok(addr)
            })?;
            Ok((runtime, bootstrap))
        })
        .await??;
        Self::with_kind(Kind::Served {
            bootstrap,
            runtime: Some(runtime),
        })
    }

    /// The running Apache Kafka node `kafka`.
    pub(crate) fn apache_kafka(kafka: ApacheKafka) -> anyhow::Result<Self> {
        Self::with_kind(Kind::ApacheKafka {
            bootstrap: kafka.bootstrap(),
            kafka: Some(kafka),
        })
    }

    /// Stops Apache Kafka (and waits for it) off the async threads; for the other kinds,
    /// the same as dropping the cluster.
    pub(crate) async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Kind::ApacheKafka { kafka, .. } = &mut self.kind {
            if let Some(kafka) = kafka.take() {
                tokio::task::spawn_blocking(move || kafka.stop()).await??;
            }
        }
        Ok(())
    }

    /// Which broker this is.
    pub(crate) fn backend(&self) -> Backend {
        match self.kind {
            Kind::Embedded { .. } => Backend::Embedded,
            Kind::Served { .. } => Backend::Served,
            Kind::ApacheKafka { .. } => Backend::ApacheKafka,
        }
    }

    /// The `bootstrap.servers` of a Kafka-protocol broker; `None` for the embedded one.
    pub(crate) fn bootstrap(&self) -> Option<&str> {
        match &self.kind {
            Kind::Embedded { .. } => None,
            Kind::Served { bootstrap, .. } | Kind::ApacheKafka { bootstrap, .. } => Some(bootstrap),
        }
    }

    /// `base` made unique on this cluster: the prefix of a scenario's topics and app ids.
    pub(crate) fn unique(&self, base: &str) -> String {
        format!("{base}-{}", self.next_name.fetch_add(1, Ordering::Relaxed))
    }

    /// A new, empty state dir, removed when the cluster is dropped.
    pub(crate) fn state_dir(&self) -> anyhow::Result<tempfile::TempDir> {
        Ok(tempfile::Builder::new()
            .prefix("app-")
            .tempdir_in(self.state_root.path())?)
    }

    /// The group session timeout the apps use: short, within what the broker accepts
    /// (`group.min.session.timeout.ms` is 6000 on Kafka and on the served broker).
    pub(crate) fn session_timeout_ms(&self) -> u64 {
        match self.backend() {
            Backend::Embedded => 2_000,
            Backend::Served | Backend::ApacheKafka => 6_000,
        }
    }

    /// The configuration of app `application_id` on this cluster, with `state_dir`: one
    /// stream thread, commits every 100 ms, a short session timeout, and for the
    /// Kafka-protocol brokers their `bootstrap.servers` and a producer that sends at once.
    pub(crate) fn config(
        &self,
        application_id: &str,
        state_dir: &Path,
    ) -> anyhow::Result<StreamsConfig> {
        let session = self.session_timeout_ms();
        let mut config = StreamsConfig::new(application_id)
            .with_num_stream_threads(1)
            .with_commit_interval_ms(100)
            .with_state_dir(state_dir);
        config
            .set("consumer.session.timeout.ms", &session.to_string())?
            .set("consumer.heartbeat.interval.ms", &(session / 6).to_string())?;
        if let Some(bootstrap) = self.bootstrap() {
            config = config.with_bootstrap_servers(bootstrap);
            config.set("producer.linger.ms", "1")?;
        }
        Ok(config)
    }

    /// An app running `topology` with `config` on this cluster: `StreamsApp::new` on the
    /// embedded broker, `StreamsApp::connect` on the others.
    pub(crate) fn app(
        &self,
        topology: Topology,
        config: StreamsConfig,
    ) -> anyhow::Result<StreamsApp> {
        match &self.kind {
            Kind::Embedded { broker } => Ok(StreamsApp::new(topology, config, broker.clone())),
            Kind::Served { .. } | Kind::ApacheKafka { .. } => {
                Ok(StreamsApp::connect(topology, config)?)
            }
        }
    }

    /// Creates `topic` with `partitions` partitions (the broker's defaults otherwise) and
    /// waits until each has a leader.
    pub(crate) async fn create_topic(&self, topic: &str, partitions: u32) -> anyhow::Result<()> {
        let bootstrap = match &self.kind {
            Kind::Embedded { broker } => {
                broker
                    .create_topic(NewTopic::new(topic, partitions))
                    .await?;
                return Ok(());
            }
            Kind::Served { bootstrap, .. } | Kind::ApacheKafka { bootstrap, .. } => bootstrap,
        };
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .create()?;
        let count = i32::try_from(partitions)?;
        let results = admin
            .create_topics(
                &[KafkaNewTopic::new(topic, count, TopicReplication::Fixed(1))],
                &AdminOptions::new().operation_timeout(Some(TOPIC_TIMEOUT)),
            )
            .await?;
        for result in results {
            if let Err((name, code)) = result {
                bail!("creating {name} failed: {code}");
            }
        }
        let (bootstrap, topic) = (bootstrap.to_owned(), topic.to_owned());
        tokio::task::spawn_blocking(move || wait_for_leaders(&bootstrap, &topic, count)).await?
    }

    /// Writes `records` to `topic` and waits until every one is acknowledged: with
    /// broker-embedded's producer, or with an idempotent librdkafka producer placing keyed
    /// records as Kafka's Java client does (`murmur2_random`).
    pub(crate) async fn produce(&self, topic: &str, records: &[Input]) -> anyhow::Result<()> {
        let bootstrap = match &self.kind {
            Kind::Embedded { broker } => {
                let producer = Producer::new(broker);
                for chunk in records.chunks(5_000) {
                    let batch = chunk
                        .iter()
                        .map(|r| {
                            let mut record =
                                ProducerRecord::new(topic, r.value.clone()).timestamp(r.timestamp);
                            if let Some(key) = &r.key {
                                record = record.key(key.clone());
                            }
                            if let Some(partition) = r.partition {
                                record = record.partition(partition);
                            }
                            record
                        })
                        .collect();
                    producer
                        .send_batch(batch)
                        .await
                        .with_context(|| format!("cannot produce to {topic}"))?;
                }
                return Ok(());
            }
            Kind::Served { bootstrap, .. } | Kind::ApacheKafka { bootstrap, .. } => bootstrap,
        };
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("partitioner", "murmur2_random")
            .set("linger.ms", "5")
            .set(
                "message.timeout.ms",
                PRODUCE_TIMEOUT.as_millis().to_string(),
            )
            .create()?;
        let mut pending = Vec::with_capacity(records.len());
        for r in records {
            let mut record = FutureRecord::<[u8], [u8]>::to(topic)
                .payload(&r.value)
                .timestamp(r.timestamp);
            if let Some(key) = &r.key {
                record = record.key(key.as_slice());
            }
            if let Some(partition) = r.partition {
                record = record.partition(i32::try_from(partition)?);
            }
            loop {
                match producer.send_result(record) {
                    Ok(delivery) => {
                        pending.push(delivery);
                        break;
                    }
                    Err((e, back))
                        if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) =>
                    {
                        // Let the queue drain a little.
                        record = back;
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    Err((e, _)) => bail!("cannot produce to {topic}: {e}"),
                }
            }
        }
        for delivery in pending {
            match delivery.await {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => bail!("a record to {topic} was not delivered: {e}"),
                Err(_) => bail!("the producer to {topic} went away"),
            }
        }
        Ok(())
    }

    /// A reader of every partition of `topic` from its start.
    pub(crate) async fn reader(&self, topic: &str, isolation: Isolation) -> anyhow::Result<Reader> {
        let source = match &self.kind {
            Kind::Embedded { broker } => {
                let mut consumer = Consumer::new(
                    broker,
                    ConsumerConfig {
                        auto_offset_reset: AutoOffsetReset::Earliest,
                        enable_auto_commit: false,
                        max_poll_records: 10_000,
                        isolation_level: match isolation {
                            Isolation::ReadUncommitted => IsolationLevel::ReadUncommitted,
                            Isolation::ReadCommitted => IsolationLevel::ReadCommitted,
                        },
                        ..ConsumerConfig::default()
                    },
                );
                consumer.assign_topic(topic).await?;
                Source::Embedded(Box::new(consumer))
            }
            Kind::Served { bootstrap, .. } | Kind::ApacheKafka { bootstrap, .. } => {
                let (bootstrap, topic) = (bootstrap.clone(), topic.to_owned());
                let consumer = tokio::task::spawn_blocking(move || {
                    kafka_reader(&bootstrap, &topic, isolation)
                })
                .await??;
                Source::Kafka(consumer)
            }
        };
        Ok(Reader {
            topic: topic.to_owned(),
            source,
            records: Vec::new(),
        })
    }
}

/// Waits until each of the `partitions` partitions of `topic` has a leader.
fn wait_for_leaders(bootstrap: &str, topic: &str, partitions: i32) -> anyhow::Result<()> {
    let client: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()?;
    let deadline = Instant::now() + TOPIC_TIMEOUT;
    loop {
        let metadata = client.fetch_metadata(Some(topic), Duration::from_secs(5))?;
        let ready = metadata.topics().iter().any(|t| {
            t.name() == topic
                && t.error().is_none()
                && t.partitions().len() == partitions as usize
                && t.partitions().iter().all(|p| p.leader() >= 0)
        });
        if ready {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{topic} has no leader after {TOPIC_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A librdkafka consumer assigned every partition of `topic` from the beginning, outside
/// any group (librdkafka wants a `group.id` for an assignment; it neither joins nor
/// commits).
fn kafka_reader(
    bootstrap: &str,
    topic: &str,
    isolation: Isolation,
) -> anyhow::Result<StreamConsumer> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("reader-of-{topic}"))
        .set("enable.auto.commit", "false")
        .set(
            "isolation.level",
            match isolation {
                Isolation::ReadUncommitted => "read_uncommitted",
                Isolation::ReadCommitted => "read_committed",
            },
        )
        .create()?;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let partitions = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
        .map(|t| t.partitions().len())
        .ok_or_else(|| anyhow!("no metadata for {topic}"))?;
    let mut list = TopicPartitionList::new();
    for partition in 0..partitions {
        list.add_partition_offset(topic, i32::try_from(partition)?, Offset::Beginning)?;
    }
    consumer.assign(&list)?;
    Ok(consumer)
}

enum Source {
    Embedded(Box<Consumer>),
    Kafka(StreamConsumer),
}

/// Follows a topic from its start and keeps every record read, in the order read (offset
/// order within a partition).
pub(crate) struct Reader {
    topic: String,
    source: Source,
    records: Vec<Output>,
}

impl fmt::Debug for Reader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reader")
            .field("topic", &self.topic)
            .field("records", &self.records.len())
            .finish_non_exhaustive()
    }
}

impl Reader {
    /// Every record read so far.
    pub(crate) fn records(&self) -> &[Output] {
        &self.records
    }

    /// Reads what arrives within `wait`; returns how many records came.
    pub(crate) async fn poll(&mut self, wait: Duration) -> anyhow::Result<usize> {
        let before = self.records.len();
        match &mut self.source {
            Source::Embedded(consumer) => {
                for r in consumer.poll(wait).await? {
                    self.records.push(Output {
                        partition: r.partition,
                        offset: i64::try_from(r.offset)?,
                        timestamp: r.timestamp,
                        key: r.key.map(|k| k.to_vec()),
                        value: r.value.map(|v| v.to_vec()),
                    });
                }
            }
            Source::Kafka(consumer) => {
                let until = tokio::time::Instant::now() + wait;
                while self.records.len() - before < 10_000 {
                    let message = match tokio::time::timeout_at(until, consumer.recv()).await {
                        Err(_) => break,
                        Ok(Ok(message)) => message,
                        Ok(Err(e)) => {
                            // librdkafka reports transient faults (a reconnect) as
                            // errors and recovers; a reader that stops making progress
                            // fails its caller's deadline.
                            tracing::warn!(topic = %self.topic, error = %e, "reader error");
                            continue;
                        }
                    };
                    self.records.push(Output {
                        partition: u32::try_from(message.partition())?,
                        offset: message.offset(),
                        timestamp: message.timestamp().to_millis().unwrap_or(-1),
                        key: message.key().map(<[u8]>::to_vec),
                        value: message.payload().map(<[u8]>::to_vec),
                    });
                }
            }
        }
        Ok(self.records.len() - before)
    }

    /// Reads until `done` holds for the records read so far; fails after `deadline` with
    /// `what` and the description `describe` gives of the records.
    pub(crate) async fn until(
        &mut self,
        what: &str,
        deadline: Duration,
        mut done: impl FnMut(&[Output]) -> bool,
        describe: impl Fn(&[Output]) -> String,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + deadline;
        while !done(&self.records) {
            if Instant::now() > deadline {
                bail!(
                    "{}: timed out waiting for {what}: {}",
                    self.topic,
                    describe(&self.records)
                );
            }
            self.poll(Duration::from_millis(100)).await?;
        }
        Ok(())
    }

    /// Reads until nothing more arrives for `quiet`.
    pub(crate) async fn drain(&mut self, quiet: Duration) -> anyhow::Result<()> {
        while self.poll(quiet).await? > 0 {}
        Ok(())
    }
}
