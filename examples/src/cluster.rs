//! Where an example runs: the embedded broker in its data dir, or a Kafka cluster named
//! by `--bootstrap-server` ([`Cluster`]). The examples create their topics, load their
//! input, run their application, wait until it has processed everything and read their
//! outputs through it, the same way on both.
//!
//! ```no_run
//! # async fn example(topology: streams_core::Topology) -> anyhow::Result<()> {
//! use examples::cluster::Cluster;
//! use streams_core::StreamsConfig;
//!
//! // `None`: the embedded broker in /tmp/wc/broker; Some("localhost:9092"): that cluster.
//! let cluster = Cluster::open("/tmp/wc".as_ref(), Some("localhost:9092")).await?;
//! cluster.ensure_topic("text-lines", 3).await?;
//! let config = StreamsConfig::new("wordcount").with_state_dir("/tmp/wc/state");
//! let mut app = cluster.app(topology, config)?;
//! app.start().await?;
//! # Ok(())
//! # }
//! ```

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use broker_embedded::{
    AutoOffsetReset, Broker, BrokerConfig, Consumer, ConsumerConfig, ConsumerRecord, ProducerRecord,
};
use streams_core::{StreamsApp, StreamsConfig, Topology};

use crate::kafka_cluster::{KafkaCluster, KafkaReader};
use crate::load::{load, InputLoad};
use crate::progress::{wait_for_group, GroupProgress};

/// The broker an example runs on.
#[derive(Debug, Clone)]
pub enum Cluster {
    /// The embedded broker, in this process.
    Embedded(Broker),
    /// A Kafka cluster (Apache Kafka, `streams serve`, ...) reached with librdkafka; the
    /// application runs on it with [`StreamsApp::connect`].
    Kafka(KafkaCluster),
}

impl Cluster {
    /// With `bootstrap_servers`, the Kafka cluster it names ([`Cluster::connect`]);
    /// without, the embedded broker in `<data_dir>/broker`, opened (or created) with the
    /// default configuration.
    pub async fn open(data_dir: &Path, bootstrap_servers: Option<&str>) -> anyhow::Result<Self> {
        match bootstrap_servers {
            Some(servers) => Self::connect(servers).await,
            None => {
                let dir = data_dir.join("broker");
                let broker = Broker::open(&dir, BrokerConfig::default())
                    .await
                    .with_context(|| format!("cannot open the broker in {}", dir.display()))?;
                Ok(Self::Embedded(broker))
            }
        }
    }

    /// The Kafka cluster at `servers` (`HOST:PORT[,HOST:PORT...]`), once one of its
    /// brokers has answered.
    pub async fn connect(servers: &str) -> anyhow::Result<Self> {
        Ok(Self::Kafka(KafkaCluster::connect(servers).await?))
    }

    /// For messages: "the embedded broker" or "the Kafka cluster at HOST:PORT".
    pub fn describe(&self) -> String {
        match self {
            Self::Embedded(_) => "the embedded broker".to_owned(),
            Self::Kafka(kafka) => format!("the Kafka cluster at {}", kafka.servers()),
        }
    }

    /// Creates `topic` with `partitions` partitions and `retention.ms=-1` (the examples'
    /// records carry fixed event times from 2023: see [`crate::ensure_topic`]) unless it
    /// exists; returns its partition count (that of the existing topic, if it was
    /// there).
    pub async fn ensure_topic(&self, topic: &str, partitions: u32) -> anyhow::Result<u32> {
        match self {
            Self::Embedded(broker) => {
                crate::embedded::ensure_topic(broker, topic, partitions).await
            }
            Self::Kafka(kafka) => kafka.ensure_topic(topic, partitions).await,
        }
    }

    /// Loads the `len` records `record(0)`, `record(1)`, ... into `topic` so that each
    /// is written exactly once, however often a load is killed and run again: it reads
    /// what the topic holds and produces only the rest ([`crate::load_input`] explains
    /// how). On a Kafka cluster the records go through an idempotent producer with
    /// explicit partitions. One process at a time may load a topic.
    pub async fn load_input(
        &self,
        topic: &str,
        len: usize,
        record: impl Fn(usize) -> ProducerRecord,
    ) -> anyhow::Result<InputLoad> {
        match self {
            Self::Embedded(broker) => load(broker, topic, len, record).await,
            Self::Kafka(kafka) => load(kafka, topic, len, record).await,
        }
    }

    /// Produces `records` (to their topics; a record without a partition is placed by
    /// murmur2 of its key) and waits until each is acknowledged.
    pub async fn produce(&self, records: Vec<ProducerRecord>) -> anyhow::Result<()> {
        match self {
            Self::Embedded(broker) => {
                let producer = broker_embedded::Producer::new(broker);
                producer
                    .send_batch(records)
                    .await
                    .context("cannot produce")?;
                Ok(())
            }
            Self::Kafka(kafka) => kafka.produce(records).await,
        }
    }

    /// An application that runs `topology` with `config` here: [`StreamsApp::new`] on the
    /// embedded broker, [`StreamsApp::connect`] with `bootstrap.servers` set on a Kafka
    /// cluster.
    pub fn app(&self, topology: Topology, config: StreamsConfig) -> anyhow::Result<StreamsApp> {
        match self {
            Self::Embedded(broker) => Ok(StreamsApp::new(topology, config, broker.clone())),
            Self::Kafka(kafka) => {
                StreamsApp::connect(topology, config.with_bootstrap_servers(kafka.servers()))
                    .context("invalid configuration for the Kafka cluster")
            }
        }
    }

    /// How far consumer group `group` is through `topics` (topics not created yet are
    /// left out).
    pub async fn group_progress(
        &self,
        group: &str,
        topics: &[String],
    ) -> anyhow::Result<GroupProgress> {
        match self {
            Self::Embedded(broker) => crate::embedded::group_progress(broker, group, topics).await,
            Self::Kafka(kafka) => kafka.group_progress(group, topics).await,
        }
    }

    /// Waits until `app` is running and its group `group` has committed every record of
    /// `topics` (its source and repartition topics: [`crate::physical_source_topics`]),
    /// so that every output of those records is written; see [`crate::wait_until_idle`].
    /// `on_progress` gets the group's progress after each check (every 10 ms on the
    /// embedded broker, 200 ms on a Kafka cluster).
    pub async fn wait_until_idle(
        &self,
        app: &StreamsApp,
        group: &str,
        topics: &[String],
        deadline: Option<Duration>,
        on_progress: impl FnMut(&GroupProgress),
    ) -> anyhow::Result<()> {
        match self {
            Self::Embedded(broker) => {
                wait_for_group(broker, app, group, topics, deadline, on_progress).await
            }
            Self::Kafka(kafka) => {
                wait_for_group(kafka, app, group, topics, deadline, on_progress).await
            }
        }
    }

    /// Every committed record of `topic` (read `read_committed` up to each partition's
    /// last stable offset), partition by partition in offset order. Fails after
    /// `deadline`.
    pub async fn read_committed(
        &self,
        topic: &str,
        deadline: Duration,
    ) -> anyhow::Result<Vec<ConsumerRecord>> {
        match self {
            Self::Embedded(broker) => {
                crate::embedded::read_committed(broker, topic, deadline).await
            }
            Self::Kafka(kafka) => kafka.read_committed(topic, deadline).await,
        }
    }

    /// A reader of the records `topic` gets from now on.
    pub async fn reader_from_end(&self, topic: &str) -> anyhow::Result<TopicReader> {
        match self {
            Self::Embedded(broker) => {
                let mut consumer = Consumer::new(
                    broker,
                    ConsumerConfig {
                        auto_offset_reset: AutoOffsetReset::Latest,
                        enable_auto_commit: false,
                        ..ConsumerConfig::default()
                    },
                );
                consumer
                    .assign_topic(topic)
                    .await
                    .with_context(|| format!("cannot read {topic}"))?;
                Ok(TopicReader::Embedded(Box::new(consumer)))
            }
            Self::Kafka(kafka) => Ok(TopicReader::Kafka(kafka.reader_from_end(topic).await?)),
        }
    }

    /// Closes the embedded broker (a clean shutdown of its data dir); nothing to do for a
    /// Kafka cluster.
    pub async fn close(self) -> anyhow::Result<()> {
        match self {
            Self::Embedded(broker) => broker.close().await.context("cannot close the broker"),
            Self::Kafka(_) => Ok(()),
        }
    }
}

/// Reads the records a topic gets from a point on: see [`Cluster::reader_from_end`].
#[derive(Debug)]
pub enum TopicReader {
    /// On the embedded broker.
    Embedded(Box<Consumer>),
    /// On a Kafka cluster.
    Kafka(KafkaReader),
}

impl TopicReader {
    /// The records that arrive within `timeout` (none if nothing does).
    pub async fn poll(&mut self, timeout: Duration) -> anyhow::Result<Vec<ConsumerRecord>> {
        match self {
            Self::Embedded(consumer) => consumer.poll(timeout).await.context("cannot read"),
            Self::Kafka(reader) => reader.poll(timeout).await,
        }
    }
}
