//! The embedded backend: the client seam over the in-process broker of
//! `broker-embedded`. Its calls run in the caller and complete at their
//! first poll, so they cost what calling the broker directly costs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use broker_embedded::group::{offsets_partition_for, CONSUMER_OFFSETS_TOPIC};
use broker_embedded::{
    AutoOffsetReset, Broker, BrokerError, Consumer, ConsumerConfig, ConsumerGroupMetadata,
    ConsumerRebalanceListener, IsolationLevel, OutgoingRef, PartitionRun, Producer, ProducerConfig,
    RebalanceContext, RecordRef,
};

use crate::error::{ClientErrorKind, Result, StreamsError};
use crate::record::Headers;

use super::{
    client_error, Admin, BoxFuture, ClientSupplier, ConsumerSettings, GroupMetadata, InRecord,
    Isolation, MainConsumer, NewTopic, OffsetAndMetadata, Offsets, OutRecord, PolledRun,
    ProducerSettings, RebalanceConsumer, RebalanceListener, RestoreConsumer, StreamProducer,
    TopicPartition, Watermarks, Written,
};

/// What a broker error means for the runtime.
fn kind_of(error: &BrokerError) -> ClientErrorKind {
    match error {
        BrokerError::ProducerFenced { .. }
        | BrokerError::InvalidProducerEpoch { .. }
        | BrokerError::CommitFailed { .. }
        | BrokerError::InvalidTxnState { .. }
        | BrokerError::OutOfOrderSequence { .. } => ClientErrorKind::TaskMigrated,
        BrokerError::UnknownTopic { .. } | BrokerError::UnknownPartition { .. } => {
            ClientErrorKind::Retriable
        }
        _ => ClientErrorKind::Fatal,
    }
}

/// Wraps a broker error of `operation`.
fn wrap(operation: &'static str) -> impl FnOnce(BrokerError) -> StreamsError {
    move |error| client_error(kind_of(&error), operation, error)
}

fn to_broker_tp(tp: &TopicPartition) -> broker_embedded::TopicPartition {
    broker_embedded::TopicPartition::new(tp.topic.clone(), tp.partition)
}

fn from_broker_tp(tp: &broker_embedded::TopicPartition) -> TopicPartition {
    TopicPartition::new(tp.topic.clone(), tp.partition)
}

fn to_broker_offsets(
    offsets: &Offsets,
) -> HashMap<broker_embedded::TopicPartition, broker_embedded::OffsetAndMetadata> {
    offsets
        .iter()
        .map(|(tp, o)| {
            (
                to_broker_tp(tp),
                broker_embedded::OffsetAndMetadata {
                    offset: o.offset,
                    metadata: o.metadata.clone(),
                },
            )
        })
        .collect()
}

fn from_broker_offsets(
    offsets: HashMap<broker_embedded::TopicPartition, broker_embedded::OffsetAndMetadata>,
) -> Offsets {
    offsets
        .into_iter()
        .map(|(tp, o)| {
            (
                TopicPartition::new(tp.topic, tp.partition),
                OffsetAndMetadata {
                    offset: o.offset,
                    metadata: o.metadata,
                },
            )
        })
        .collect()
}

#[inline]
fn to_headers(headers: Vec<broker_embedded::Header>) -> Headers {
    // Most records have none: no iterator to build and drop.
    if headers.is_empty() {
        return Headers::new();
    }
    let mut out = Headers::new();
    for h in headers {
        out.add(h.key, h.value);
    }
    out
}

/// A poll's runs in the seam's form: each record moved once.
fn to_runs(runs: Vec<PartitionRun>) -> Vec<PolledRun> {
    runs.into_iter()
        .map(|run| PolledRun {
            topic: run.topic,
            partition: run.partition,
            records: run
                .records
                .map(|r| InRecord {
                    offset: r.offset,
                    timestamp: r.timestamp,
                    key: r.key,
                    value: r.value,
                    headers: to_headers(r.headers),
                })
                .collect(),
        })
        .collect()
}

/// The embedded broker as the app's clients.
#[derive(Debug, Clone)]
pub(crate) struct EmbeddedClients {
    broker: Broker,
}

impl EmbeddedClients {
    pub(crate) fn new(broker: Broker) -> Self {
        Self { broker }
    }
}

fn consumer_config(settings: &ConsumerSettings) -> ConsumerConfig {
    ConsumerConfig {
        group_id: settings.group_id.clone(),
        auto_offset_reset: AutoOffsetReset::Earliest,
        enable_auto_commit: false,
        session_timeout_ms: settings.session_timeout_ms,
        heartbeat_interval_ms: settings.heartbeat_interval_ms,
        max_poll_records: settings.max_poll_records,
        max_partition_fetch_bytes: settings.max_partition_fetch_bytes.max(1),
        isolation_level: match settings.isolation {
            Isolation::ReadCommitted => IsolationLevel::ReadCommitted,
            Isolation::ReadUncommitted => IsolationLevel::ReadUncommitted,
        },
        background_fetch: settings.background_fetch,
        ..ConsumerConfig::default()
    }
}

impl ClientSupplier for EmbeddedClients {
    fn main_consumer(&self, settings: ConsumerSettings) -> Result<Box<dyn MainConsumer>> {
        tracing::debug!(client_id = %settings.client_id, "creating a consumer");
        Ok(Box::new(EmbeddedConsumer {
            consumer: Consumer::new(&self.broker, consumer_config(&settings)),
            broker: self.broker.clone(),
            group: settings.group_id,
            read_committed: settings.isolation == Isolation::ReadCommitted,
        }))
    }

    fn restore_consumer(&self, settings: ConsumerSettings) -> Result<Box<dyn RestoreConsumer>> {
        Ok(Box::new(EmbeddedRestoreConsumer {
            consumer: Consumer::new(&self.broker, consumer_config(&settings)),
            broker: self.broker.clone(),
        }))
    }

    fn producer(&self, settings: ProducerSettings) -> Result<Arc<dyn StreamProducer>> {
        tracing::debug!(client_id = %settings.client_id, "creating a producer");
        let producer = match settings.transactional_id {
            Some(id) => Producer::with_config(
                &self.broker,
                ProducerConfig {
                    transactional_id: Some(id),
                    enable_idempotence: true,
                    transaction_timeout_ms: settings.transaction_timeout_ms,
                    ..ProducerConfig::default()
                },
            ),
            None => Producer::new(&self.broker),
        };
        Ok(Arc::new(EmbeddedProducer { producer }))
    }

    fn admin(&self) -> Result<Arc<dyn Admin>> {
        Ok(Arc::new(EmbeddedAdmin {
            broker: self.broker.clone(),
        }))
    }

    fn name(&self) -> &'static str {
        "embedded"
    }
}

/// The embedded consumer's rebalance context, as the seam's.
struct Context<'a, 'b>(&'a mut RebalanceContext<'b>);

impl RebalanceConsumer for Context<'_, '_> {
    fn commit_sync(&mut self, offsets: Offsets) -> Result<()> {
        self.0
            .commit_sync(Some(to_broker_offsets(&offsets)))
            .map_err(wrap("commit offsets"))
    }

    fn committed(&mut self, partitions: &[TopicPartition]) -> Result<Offsets> {
        let tps: Vec<_> = partitions.iter().map(to_broker_tp).collect();
        Ok(from_broker_offsets(self.0.committed(&tps)))
    }

    fn seek(&mut self, tp: &TopicPartition, offset: u64) -> Result<()> {
        self.0.seek(&to_broker_tp(tp), offset).map_err(wrap("seek"))
    }

    fn group_metadata(&self) -> Option<GroupMetadata> {
        self.0.group_metadata().map(|g| GroupMetadata(Box::new(g)))
    }
}

/// The seam's listener as the embedded consumer's.
struct Listener(Box<dyn RebalanceListener>);

fn tps(partitions: &[broker_embedded::TopicPartition]) -> Vec<TopicPartition> {
    partitions.iter().map(from_broker_tp).collect()
}

impl ConsumerRebalanceListener for Listener {
    fn on_partitions_revoked(
        &mut self,
        partitions: &[broker_embedded::TopicPartition],
        consumer: &mut RebalanceContext<'_>,
    ) {
        self.0
            .on_partitions_revoked(&tps(partitions), &mut Context(consumer));
    }

    fn on_partitions_assigned(
        &mut self,
        partitions: &[broker_embedded::TopicPartition],
        consumer: &mut RebalanceContext<'_>,
    ) {
        self.0
            .on_partitions_assigned(&tps(partitions), &mut Context(consumer));
    }

    fn on_partitions_lost(
        &mut self,
        partitions: &[broker_embedded::TopicPartition],
        consumer: &mut RebalanceContext<'_>,
    ) {
        self.0
            .on_partitions_lost(&tps(partitions), &mut Context(consumer));
    }
}

struct EmbeddedConsumer {
    consumer: Consumer,
    broker: Broker,
    group: Option<String>,
    /// Whether it reads `read_committed` (up to the last stable offset).
    read_committed: bool,
}

impl MainConsumer for EmbeddedConsumer {
    fn subscribe(
        &mut self,
        topics: Vec<String>,
        listener: Box<dyn RebalanceListener>,
    ) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            self.consumer
                .subscribe(topics, Listener(listener))
                .await
                .map_err(wrap("subscribe"))
        })
    }

    fn unsubscribe(&mut self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            self.consumer
                .unsubscribe()
                .await
                .map_err(wrap("unsubscribe"))
        })
    }

    fn poll(&mut self, timeout: Duration) -> BoxFuture<'_, Result<Vec<PolledRun>>> {
        Box::pin(async move {
            let runs = self
                .consumer
                .poll_runs(timeout)
                .await
                .map_err(wrap("poll"))?;
            Ok(to_runs(runs))
        })
    }

    fn assignment(&self) -> Vec<TopicPartition> {
        self.consumer
            .assignment()
            .iter()
            .map(from_broker_tp)
            .collect()
    }

    fn lagging_partitions(&self) -> Vec<TopicPartition> {
        self.consumer
            .assignment()
            .iter()
            .filter(|tp| {
                let Some(position) = self.consumer.position(tp) else {
                    return false;
                };
                self.broker
                    .readable_end_offset(&tp.topic, tp.partition, self.read_committed)
                    .is_ok_and(|end| position < end)
            })
            .map(from_broker_tp)
            .collect()
    }

    fn seek(&mut self, tp: &TopicPartition, offset: u64) -> Result<()> {
        self.consumer
            .seek(&to_broker_tp(tp), offset)
            .map_err(wrap("seek"))
    }

    fn pause(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        let tps: Vec<_> = partitions.iter().map(to_broker_tp).collect();
        self.consumer.pause(&tps).map_err(wrap("pause partitions"))
    }

    fn resume(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        let tps: Vec<_> = partitions.iter().map(to_broker_tp).collect();
        self.consumer
            .resume(&tps)
            .map_err(wrap("resume partitions"))
    }

    fn committed(&mut self, partitions: &[TopicPartition]) -> BoxFuture<'_, Result<Offsets>> {
        let tps: Vec<_> = partitions.iter().map(to_broker_tp).collect();
        Box::pin(async move {
            self.consumer
                .committed(&tps)
                .await
                .map(from_broker_offsets)
                .map_err(wrap("read committed offsets"))
        })
    }

    fn commit_sync(&mut self, offsets: Offsets) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            self.consumer
                .commit_sync(Some(to_broker_offsets(&offsets)))
                .await
                .map_err(wrap("commit offsets"))
        })
    }

    fn group_metadata(&self) -> Option<GroupMetadata> {
        self.consumer
            .group_metadata()
            .map(|g| GroupMetadata(Box::new(g)))
    }

    fn group_offsets_stable(&mut self) -> BoxFuture<'_, Result<bool>> {
        Box::pin(async move {
            let Some(group) = &self.group else {
                return Ok(true);
            };
            let read = async {
                let partitions = self.broker.partition_count(CONSUMER_OFFSETS_TOPIC).await?;
                let partition = offsets_partition_for(group, partitions);
                let stable = self
                    .broker
                    .last_stable_offset(CONSUMER_OFFSETS_TOPIC, partition)
                    .await?;
                let (_, end) = self
                    .broker
                    .offsets(CONSUMER_OFFSETS_TOPIC, partition)
                    .await?;
                Ok::<_, BrokerError>(stable >= end)
            };
            read.await
                .map_err(wrap("read the group's offsets partition"))
        })
    }

    fn close(self: Box<Self>) -> BoxFuture<'static, Result<()>> {
        Box::pin(async move {
            self.consumer
                .close()
                .await
                .map_err(wrap("close the consumer"))
        })
    }

    fn abandon(self: Box<Self>) {
        // As a crash: no leave-group; the group removes the member when its
        // session times out.
        std::mem::forget(self.consumer);
    }
}

struct EmbeddedRestoreConsumer {
    consumer: Consumer,
    broker: Broker,
}

impl RestoreConsumer for EmbeddedRestoreConsumer {
    fn watermarks(&mut self, tp: &TopicPartition) -> BoxFuture<'_, Result<Watermarks>> {
        let tp = tp.clone();
        Box::pin(async move {
            let read = async {
                let (log_start, high) = self.broker.offsets(&tp.topic, tp.partition).await?;
                let last_stable = self
                    .broker
                    .last_stable_offset(&tp.topic, tp.partition)
                    .await?;
                Ok::<_, BrokerError>(Watermarks {
                    log_start,
                    high,
                    last_stable,
                })
            };
            read.await.map_err(wrap("read a changelog's offsets"))
        })
    }

    fn assign(&mut self, partitions: Vec<(TopicPartition, u64)>) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let tps = partitions.iter().map(|(tp, _)| to_broker_tp(tp)).collect();
            self.consumer
                .assign(tps)
                .await
                .map_err(wrap("assign changelog partitions"))?;
            for (tp, offset) in &partitions {
                self.consumer
                    .seek(&to_broker_tp(tp), *offset)
                    .map_err(wrap("seek"))?;
            }
            Ok(())
        })
    }

    fn poll(&mut self, timeout: Duration) -> BoxFuture<'_, Result<Vec<PolledRun>>> {
        Box::pin(async move {
            let runs = self
                .consumer
                .poll_runs(timeout)
                .await
                .map_err(wrap("poll changelogs"))?;
            Ok(to_runs(runs))
        })
    }

    fn position(&self, tp: &TopicPartition) -> Option<u64> {
        self.consumer.position(&to_broker_tp(tp))
    }

    fn empty_poll_is_end(&self) -> bool {
        true
    }
}

#[derive(Debug)]
struct EmbeddedProducer {
    producer: Producer,
}

impl StreamProducer for EmbeddedProducer {
    fn send<'a>(&'a self, records: &'a [OutRecord<'a>]) -> BoxFuture<'a, Result<Written>> {
        Box::pin(async move {
            // The headers of the records that have any, in the broker's form.
            let headers: Vec<Vec<broker_embedded::Header>> = records
                .iter()
                .filter(|r| !r.headers.is_empty())
                .map(|r| {
                    r.headers
                        .iter()
                        .map(|h| broker_embedded::Header {
                            key: h.key.clone(),
                            value: h.value.clone(),
                        })
                        .collect()
                })
                .collect();
            let mut with_headers = headers.iter();
            let refs: Vec<OutgoingRef<'_>> = records
                .iter()
                .map(|r| OutgoingRef {
                    topic: r.topic,
                    partition: r.partition,
                    record: RecordRef {
                        timestamp: r.timestamp,
                        key: r.key,
                        value: r.value,
                        headers: if r.headers.is_empty() {
                            &[]
                        } else {
                            with_headers.next().map_or(&[][..], Vec::as_slice)
                        },
                    },
                })
                .collect();
            let appended = self.producer.send_refs(&refs).await.map_err(wrap("send"))?;
            let mut written: Written = Vec::new();
            for batch in appended {
                match written
                    .iter_mut()
                    .find(|(tp, _)| tp.partition == batch.partition && tp.topic == batch.topic)
                {
                    Some((_, last)) => *last = (*last).max(batch.last_offset),
                    None => written.push((
                        TopicPartition::new(batch.topic, batch.partition),
                        batch.last_offset,
                    )),
                }
            }
            Ok(written)
        })
    }

    fn flush<'a>(&'a self, topics: &'a [String]) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let names: Vec<&str> = topics.iter().map(String::as_str).collect();
            self.producer.flush(&names).await.map_err(wrap("flush"))
        })
    }

    fn init_transactions(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            self.producer
                .init_transactions()
                .await
                .map_err(wrap("init transactions"))
        })
    }

    fn begin_transaction(&self) -> Result<()> {
        self.producer
            .begin_transaction()
            .map_err(wrap("begin a transaction"))
    }

    fn send_offsets_to_transaction<'a>(
        &'a self,
        offsets: &'a Offsets,
        group: &'a GroupMetadata,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let Some(group) = group.0.downcast_ref::<ConsumerGroupMetadata>() else {
                return Err(StreamsError::Internal(
                    "group metadata of another backend".to_owned(),
                ));
            };
            self.producer
                .send_offsets_to_transaction(&to_broker_offsets(offsets), group)
                .await
                .map_err(wrap("send offsets to the transaction"))
        })
    }

    fn commit_transaction(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            self.producer
                .commit_transaction()
                .await
                .map_err(wrap("commit the transaction"))
        })
    }

    fn abort_transaction(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            self.producer
                .abort_transaction()
                .await
                .map_err(wrap("abort the transaction"))
        })
    }
}

#[derive(Debug)]
struct EmbeddedAdmin {
    broker: Broker,
}

impl Admin for EmbeddedAdmin {
    fn partition_count<'a>(&'a self, topic: &'a str) -> BoxFuture<'a, Result<Option<u32>>> {
        Box::pin(async move {
            match self.broker.partition_count(topic).await {
                Ok(n) => Ok(Some(n)),
                Err(BrokerError::UnknownTopic { .. }) => Ok(None),
                Err(e) => Err(wrap("describe a topic")(e)),
            }
        })
    }

    fn create_topic(&self, topic: NewTopic) -> BoxFuture<'_, Result<bool>> {
        Box::pin(async move {
            let mut new = broker_embedded::NewTopic::new(topic.name, topic.partitions);
            for (key, value) in topic.configs {
                new = new.config(key, value);
            }
            self.broker
                .ensure_topic(new)
                .await
                .map_err(wrap("create a topic"))
        })
    }

    fn delete_records<'a>(
        &'a self,
        offsets: &'a [(TopicPartition, u64)],
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            for (tp, offset) in offsets {
                self.broker
                    .delete_records(&tp.topic, tp.partition, Some(*offset))
                    .await
                    .map_err(wrap("delete records"))?;
            }
            Ok(())
        })
    }
}
