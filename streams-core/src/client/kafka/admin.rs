//! The admin client on Kafka: partition counts, internal topics, purges.
//!
//! librdkafka's admin client is a producer underneath, and a producer's
//! metadata requests may create the topic they name. Partition counts are
//! therefore read by a consumer outside any group, with
//! `allow.auto.create.topics=false`: a topic that does not exist stays so.
//! The metadata calls block, so they run on a thread of their own; the
//! admin client's calls are futures that its own thread completes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic as KafkaNewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::ClientConfig;

use crate::error::{ClientErrorKind, Result, StreamsError};

use super::super::{client_error, Admin, BoxFuture, NewTopic, TopicPartition};
use super::context::Logging;
use super::convert::positions_list;
use super::errors::{kind_of_code, topic_error, wrap, Unreachable};
use super::{off_thread, KafkaClients, Role};

/// How long to wait between two looks at a topic's metadata.
const METADATA_RETRY: Duration = Duration::from_millis(100);

/// The admin client's librdkafka configuration.
pub(super) fn config(clients: &KafkaClients) -> Result<ClientConfig> {
    let client_id = format!("{}-admin", clients.application_id);
    clients.config(Role::Admin, &[], &[("client.id", client_id.as_str())])
}

/// The configuration of the consumer that reads topics' metadata.
fn metadata_config(clients: &KafkaClients) -> Result<ClientConfig> {
    let client_id = format!("{}-admin-metadata", clients.application_id);
    clients.config(
        Role::Admin,
        &[],
        &[
            ("client.id", client_id.as_str()),
            ("allow.auto.create.topics", "false"),
        ],
    )
}

/// The admin client on Kafka.
pub(super) struct KafkaAdmin {
    admin: AdminClient<Logging>,
    metadata: Arc<BaseConsumer<Logging>>,
    replication_factor: i32,
    timeout: Duration,
    servers: Arc<str>,
}

impl std::fmt::Debug for KafkaAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaAdmin")
            .field("servers", &self.servers)
            .field("replication_factor", &self.replication_factor)
            .finish_non_exhaustive()
    }
}

impl KafkaAdmin {
    pub(super) fn new(clients: &KafkaClients) -> Result<Self> {
        let admin = KafkaClients::create(
            Role::Admin,
            &config(clients)?,
            Logging::new(&format!("{}-admin", clients.application_id)),
        )?;
        let metadata = KafkaClients::create(
            Role::Admin,
            &metadata_config(clients)?,
            Logging::new(&format!("{}-admin-metadata", clients.application_id)),
        )?;
        Ok(Self {
            admin,
            metadata: Arc::new(metadata),
            replication_factor: clients.replication_factor,
            timeout: clients.api_timeout,
            servers: Arc::from(clients.bootstrap_servers.as_str()),
        })
    }

    fn options(&self) -> AdminOptions {
        AdminOptions::new()
            .request_timeout(Some(self.timeout))
            .operation_timeout(Some(self.timeout))
    }
}

/// What a failed metadata request means: no broker reached (a clear
/// error naming `bootstrap.servers`), or another failure.
fn metadata_error(servers: &str, timeout: Duration, error: KafkaError) -> StreamsError {
    const OPERATION: &str = "read a topic's metadata";
    let unreachable = matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::OperationTimedOut
                | RDKafkaErrorCode::Resolve
        )
    );
    if unreachable {
        client_error(
            ClientErrorKind::Retriable,
            OPERATION,
            Unreachable {
                servers: servers.to_owned(),
                timeout,
                source: error,
            },
        )
    } else {
        wrap(OPERATION)(error)
    }
}

/// The partition count of `topic` (`None`: it does not exist), waiting up
/// to `timeout` while the cluster has no leader for it yet.
fn topic_partitions(
    consumer: &BaseConsumer<Logging>,
    topic: &str,
    timeout: Duration,
    servers: &str,
) -> Result<Option<u32>> {
    let deadline = Instant::now() + timeout;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let metadata = consumer
            .fetch_metadata(Some(topic), remaining.max(Duration::from_millis(1)))
            .map_err(|e| metadata_error(servers, timeout, e))?;
        let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else {
            return Ok(None);
        };
        let code = found.error().map(RDKafkaErrorCode::from);
        match code {
            None => {
                return Ok(Some(
                    u32::try_from(found.partitions().len()).unwrap_or(u32::MAX),
                ))
            }
            Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic) => {
                return Ok(None)
            }
            Some(code) if kind_of_code(code) == ClientErrorKind::Retriable => {
                if Instant::now() + METADATA_RETRY >= deadline {
                    return Err(topic_error("read a topic's metadata", topic, code));
                }
                std::thread::sleep(METADATA_RETRY);
            }
            Some(code) => return Err(topic_error("read a topic's metadata", topic, code)),
        }
    }
}

/// Waits until the metadata shows `topic` with `partitions` partitions.
fn wait_for_topic(
    consumer: &BaseConsumer<Logging>,
    topic: &str,
    partitions: u32,
    timeout: Duration,
    servers: &str,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match topic_partitions(consumer, topic, remaining, servers)? {
            Some(n) if n >= partitions => return Ok(()),
            seen => {
                if Instant::now() + METADATA_RETRY >= deadline {
                    return Err(client_error(
                        ClientErrorKind::Retriable,
                        "create a topic",
                        format!(
                            "topic '{topic}' was created but the metadata shows {} of its {partitions} partitions after {} ms",
                            seen.unwrap_or(0),
                            timeout.as_millis()
                        ),
                    ));
                }
                std::thread::sleep(METADATA_RETRY);
            }
        }
    }
}

impl Admin for KafkaAdmin {
    fn partition_count<'a>(&'a self, topic: &'a str) -> BoxFuture<'a, Result<Option<u32>>> {
        let consumer = self.metadata.clone();
        let topic = topic.to_owned();
        let timeout = self.timeout;
        let servers = self.servers.clone();
        Box::pin(async move {
            off_thread("kafka-metadata", move || {
                topic_partitions(&consumer, &topic, timeout, &servers)
            })
            .await?
        })
    }

    fn create_topic(&self, topic: NewTopic) -> BoxFuture<'_, Result<bool>> {
        Box::pin(async move {
            let partitions = i32::try_from(topic.partitions).map_err(|_| {
                StreamsError::Internal(format!(
                    "topic '{}': {} partitions",
                    topic.name, topic.partitions
                ))
            })?;
            let mut new = KafkaNewTopic::new(
                &topic.name,
                partitions,
                TopicReplication::Fixed(self.replication_factor),
            );
            for (key, value) in &topic.configs {
                new = new.set(key, value);
            }
            let results = self
                .admin
                .create_topics([&new], &self.options())
                .await
                .map_err(wrap("create a topic"))?;
            for result in results {
                match result {
                    Ok(_) => {}
                    Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => return Ok(false),
                    Err((name, code)) => return Err(topic_error("create a topic", &name, code)),
                }
            }
            // Created: wait until the cluster's metadata shows it, so that
            // the clients made next find its partitions.
            let consumer = self.metadata.clone();
            let name = topic.name.clone();
            let timeout = self.timeout;
            let servers = self.servers.clone();
            off_thread("kafka-metadata", move || {
                wait_for_topic(&consumer, &name, topic.partitions, timeout, &servers)
            })
            .await??;
            Ok(true)
        })
    }

    fn delete_records<'a>(
        &'a self,
        offsets: &'a [(TopicPartition, u64)],
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            if offsets.is_empty() {
                return Ok(());
            }
            let list = positions_list(offsets)?;
            let result = self
                .admin
                .delete_records(&list, &self.options())
                .await
                .map_err(wrap("delete records"))?;
            for e in result.elements() {
                if let Err(error) = e.error() {
                    return Err(wrap("delete records")(error));
                }
            }
            Ok(())
        })
    }
}
