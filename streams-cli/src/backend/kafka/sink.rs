//! `produce` to a cluster: librdkafka's producer, with the Java client's partitioner, so
//! that a key lands in the partition it gets on a data dir and with Kafka's own tools.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer as _};

use super::{client_config, millis, offset_from, partition_from, Cluster, Ctx, REQUEST_TIMEOUT};
use crate::args::CompressionType;
use crate::backend::{Appended, KeyValue};

/// How long a send waits before trying again when librdkafka's queue is full and nothing of
/// this command is in flight to make room.
const QUEUE_FULL_BACKOFF: Duration = Duration::from_millis(10);

/// A producer to one topic, and what it appended.
pub(crate) struct KafkaSink {
    producer: FutureProducer<Ctx>,
    topic: String,
    /// Per partition, the first and the last offset appended.
    bounds: BTreeMap<u32, (u64, u64)>,
    /// Records appended.
    count: u64,
}

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSink")
            .field("topic", &self.topic)
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// A producer to `topic`: idempotent (no duplicates or reordering when librdkafka
    /// retries), acks from every in-sync replica, Kafka's murmur2 partitioner, batches
    /// compressed with `compression`; a record not acknowledged within [`REQUEST_TIMEOUT`]
    /// fails.
    pub(crate) fn open_sink(&self, topic: &str, compression: CompressionType) -> Result<KafkaSink> {
        let mut config = client_config(self.servers());
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            // Java's partitioner: murmur2 of the key bytes; records without a key go to a
            // random partition, sticky for the linger time.
            .set("partitioner", "murmur2_random")
            .set("compression.type", codec_name(compression))
            .set("linger.ms", "5")
            .set("message.timeout.ms", millis(REQUEST_TIMEOUT));
        let producer: FutureProducer<Ctx> = config
            .create_with_context(Ctx::default())
            .with_context(|| format!("making a Kafka producer for {}", self.servers()))?;
        Ok(KafkaSink {
            producer,
            topic: topic.to_owned(),
            bounds: BTreeMap::new(),
            count: 0,
        })
    }
}

/// librdkafka's name of a codec.
fn codec_name(codec: CompressionType) -> &'static str {
    match codec {
        CompressionType::None => "none",
        CompressionType::Gzip => "gzip",
        CompressionType::Snappy => "snappy",
        CompressionType::Lz4 => "lz4",
        CompressionType::Zstd => "zstd",
    }
}

impl KafkaSink {
    /// Sends `records` in order and waits until each is acknowledged or failed. Every record
    /// acknowledged counts in [`KafkaSink::appended`], also when another failed.
    pub(crate) async fn send_batch(&mut self, records: Vec<KeyValue>) -> Result<()> {
        let mut pending: Vec<DeliveryFuture> = Vec::with_capacity(records.len());
        let mut failure: Option<KafkaError> = None;
        let topic = self.topic.clone();
        'records: for (key, value) in &records {
            let mut record = FutureRecord::<[u8], [u8]>::to(&topic);
            if let Some(key) = key {
                record = record.key(&key[..]);
            }
            if let Some(value) = value {
                record = record.payload(&value[..]);
            }
            let deadline = Instant::now() + REQUEST_TIMEOUT;
            loop {
                match self.producer.send_result(record) {
                    Ok(delivery) => {
                        pending.push(delivery);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                        if Instant::now() < deadline =>
                    {
                        record = back;
                        if pending.is_empty() {
                            tokio::time::sleep(QUEUE_FULL_BACKOFF).await;
                        } else {
                            self.await_deliveries(&mut pending, &mut failure).await;
                            if failure.is_some() {
                                break 'records;
                            }
                        }
                    }
                    Err((e, _)) => {
                        failure = Some(e);
                        break 'records;
                    }
                }
            }
        }
        self.await_deliveries(&mut pending, &mut failure).await;
        match failure {
            None => Ok(()),
            Some(e) => Err(e.into()),
        }
    }

    /// Waits for every delivery in `pending`; counts the records acknowledged and keeps the
    /// first failure.
    async fn await_deliveries(
        &mut self,
        pending: &mut Vec<DeliveryFuture>,
        failure: &mut Option<KafkaError>,
    ) {
        for delivery in pending.drain(..) {
            let stored = match delivery.await {
                Ok(Ok(delivery)) => partition_from(delivery.partition)
                    .and_then(|p| Ok((p, offset_from(delivery.offset)?))),
                Ok(Err((e, _))) => {
                    failure.get_or_insert(e);
                    continue;
                }
                Err(_) => {
                    failure.get_or_insert(KafkaError::Canceled);
                    continue;
                }
            };
            match stored {
                Ok((partition, offset)) => {
                    let bounds = self.bounds.entry(partition).or_insert((offset, offset));
                    bounds.0 = bounds.0.min(offset);
                    bounds.1 = bounds.1.max(offset);
                    self.count += 1;
                }
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "a delivery report is out of range")
                }
            }
        }
    }

    /// Waits until every record sent is acknowledged or failed.
    pub(crate) fn flush(&mut self) -> Result<()> {
        self.producer.flush(REQUEST_TIMEOUT).with_context(|| {
            format!(
                "waiting for the records to {} to be acknowledged",
                self.topic
            )
        })
    }

    /// What was appended so far.
    pub(crate) fn appended(&self) -> Appended {
        Appended::from_bounds(&self.bounds, self.count)
    }
}
