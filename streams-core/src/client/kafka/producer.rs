//! The producer on Kafka: idempotent, transactional with a transactional
//! id, placing keyed records as the Java client does
//! (`partitioner=murmur2_random`: murmur2 of the key, made positive,
//! modulo the partition count; random for records without a key).
//!
//! `send` hands every record to librdkafka, then waits for all their
//! delivery reports (librdkafka's producer thread completes them), so it
//! can be awaited on the sender thread's single-threaded runtime.
//!
//! The transactional calls and `flush` block inside their future's body:
//! they complete at their first poll, as the rebalance listener, which
//! makes them without an executor, requires.

use std::fmt;
use std::time::Duration;

use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header as KafkaHeader, OwnedHeaders};
use rdkafka::producer::future_producer::{Delivery, DeliveryFuture};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::ClientConfig;

use crate::error::{ClientErrorKind, Result, StreamsError};

use super::super::{
    client_error, BoxFuture, GroupMetadata, Offsets, OutRecord, ProducerSettings, StreamProducer,
    TopicPartition, Written,
};
use super::context::Logging;
use super::convert::{offsets_list, partition_i32};
use super::errors::{kind_of, wrap};
use super::{KafkaClients, Role};

/// The producer's librdkafka configuration.
pub(super) fn config(clients: &KafkaClients, settings: &ProducerSettings) -> Result<ClientConfig> {
    let timeout = settings.transaction_timeout_ms.to_string();
    let mut forced = vec![
        ("client.id", settings.client_id.as_str()),
        ("enable.idempotence", "true"),
        ("partitioner", "murmur2_random"),
    ];
    if let Some(id) = &settings.transactional_id {
        forced.push(("transactional.id", id.as_str()));
        forced.push(("transaction.timeout.ms", timeout.as_str()));
    }
    clients.config(Role::Producer, &[], &forced)
}

/// A producer on Kafka.
pub(super) struct KafkaProducer {
    producer: FutureProducer<Logging>,
    transactional: bool,
    /// How long a transactional call or a flush may block.
    timeout: Duration,
}

impl fmt::Debug for KafkaProducer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaProducer")
            .field("transactional", &self.transactional)
            .finish_non_exhaustive()
    }
}

impl KafkaProducer {
    pub(super) fn new(clients: &KafkaClients, settings: &ProducerSettings) -> Result<Self> {
        let config = config(clients, settings)?;
        let producer =
            KafkaClients::create(Role::Producer, &config, Logging::new(&settings.client_id))?;
        Ok(Self {
            producer,
            transactional: settings.transactional_id.is_some(),
            timeout: clients.api_timeout,
        })
    }

    /// A failed delivery as the runtime must see it. A transactional
    /// producer whose transaction failed (fenced, aborted, in an abortable
    /// state) fails its records with librdkafka's own codes: the tasks
    /// moved, as for the transaction's error itself.
    fn delivery_error(&self, error: KafkaError) -> StreamsError {
        let mut kind = kind_of(&error);
        if self.transactional
            && kind == ClientErrorKind::Fatal
            && matches!(
                error.rdkafka_error_code(),
                Some(
                    RDKafkaErrorCode::Fatal
                        | RDKafkaErrorCode::State
                        | RDKafkaErrorCode::PurgeQueue
                        | RDKafkaErrorCode::PurgeInflight
                )
            )
        {
            kind = ClientErrorKind::TaskMigrated;
        }
        client_error(kind, "send", error)
    }

    /// Hands `record` to librdkafka; when its queue is full, waits for
    /// the oldest delivery first.
    async fn enqueue(
        &self,
        record: &OutRecord<'_>,
        pending: &mut Vec<(usize, DeliveryFuture)>,
        settled: &mut Vec<(usize, Outcome)>,
        index: usize,
    ) -> Result<()> {
        let partition = record.partition.map(partition_i32).transpose()?;
        loop {
            let mut out: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(record.topic);
            if let Some(p) = partition {
                out = out.partition(p);
            }
            if let Some(key) = record.key {
                out = out.key(key);
            }
            if let Some(value) = record.value {
                out = out.payload(value);
            }
            if record.timestamp >= 0 {
                out = out.timestamp(record.timestamp);
            }
            if !record.headers.is_empty() {
                let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
                for h in record.headers {
                    headers = headers.insert(KafkaHeader {
                        key: h.key.as_str(),
                        value: h.value.as_deref(),
                    });
                }
                out = out.headers(headers);
            }
            match self.producer.send_result(out) {
                Ok(delivery) => {
                    pending.push((index, delivery));
                    return Ok(());
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    if pending.is_empty() {
                        // Full with none of ours in flight: another sender's
                        // records fill it; let them go out.
                        std::thread::sleep(Duration::from_millis(10));
                    } else {
                        let (i, oldest) = pending.remove(0);
                        settled.push((i, wait(oldest).await));
                    }
                }
                Err((e, _)) => return Err(self.delivery_error(e)),
            }
        }
    }
}

/// The outcome of one record's delivery.
type Outcome = std::result::Result<Delivery, KafkaError>;

async fn wait(delivery: DeliveryFuture) -> Outcome {
    match delivery.await {
        Ok(Ok(delivery)) => Ok(delivery),
        Ok(Err((e, _))) => Err(e),
        // The report was dropped, which librdkafka does only when the
        // client is destroyed.
        Err(_) => Err(KafkaError::Canceled),
    }
}

impl StreamProducer for KafkaProducer {
    fn send<'a>(&'a self, records: &'a [OutRecord<'a>]) -> BoxFuture<'a, Result<Written>> {
        Box::pin(async move {
            let mut pending = Vec::with_capacity(records.len());
            let mut settled = Vec::new();
            let mut failed = None;
            for (index, record) in records.iter().enumerate() {
                if let Err(e) = self
                    .enqueue(record, &mut pending, &mut settled, index)
                    .await
                {
                    failed = Some(e);
                    break;
                }
            }
            // Every record handed over settles before the outcome is told,
            // failed or not: the caller acts on a quiet producer.
            for (index, delivery) in pending {
                settled.push((index, wait(delivery).await));
            }
            let mut written: Written = Vec::new();
            for (index, result) in settled {
                match result {
                    Ok(delivery) => {
                        let (Some(record), Ok(partition), Ok(offset)) = (
                            records.get(index),
                            u32::try_from(delivery.partition),
                            u64::try_from(delivery.offset),
                        ) else {
                            continue;
                        };
                        match written
                            .iter_mut()
                            .find(|(tp, _)| tp.partition == partition && tp.topic == record.topic)
                        {
                            Some((_, last)) => *last = (*last).max(offset),
                            None => {
                                written.push((TopicPartition::new(record.topic, partition), offset))
                            }
                        }
                    }
                    Err(e) => {
                        if failed.is_none() {
                            failed = Some(self.delivery_error(e));
                        }
                    }
                }
            }
            match failed {
                Some(e) => Err(e),
                None => Ok(written),
            }
        })
    }

    fn flush<'a>(&'a self, _topics: &'a [String]) -> BoxFuture<'a, Result<()>> {
        // librdkafka flushes everything; `send` has waited for its records
        // already, so this returns at once unless another send is under way.
        Box::pin(async move { self.producer.flush(self.timeout).map_err(wrap("flush")) })
    }

    fn init_transactions(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            self.producer
                .init_transactions(self.timeout)
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
            let list = offsets_list(offsets)?;
            self.producer
                .send_offsets_to_transaction(&list, group, self.timeout)
                .map_err(wrap("send offsets to the transaction"))
        })
    }

    fn commit_transaction(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            self.producer
                .commit_transaction(self.timeout)
                .map_err(wrap("commit the transaction"))
        })
    }

    fn abort_transaction(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            self.producer
                .abort_transaction(self.timeout)
                .map_err(wrap("abort the transaction"))
        })
    }
}
