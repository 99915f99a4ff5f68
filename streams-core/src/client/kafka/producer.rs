//! The producer on Kafka: idempotent, transactional with a transactional
//! id, placing keyed records as the Java client does
//! (`partitioner=murmur2_random`: murmur2 of the key, made positive,
//! modulo the partition count; random for records without a key).
//!
//! `send` hands every record to librdkafka with one shared record of the
//! batch's deliveries (`Batch`) as its opaque; librdkafka's polling
//! thread settles each report there (last offset per partition, first
//! error, count), and `send` blocks inside its future until the count is
//! complete: the sender thread's single-threaded runtime drives nothing
//! else. No allocation or channel per record, and one wake-up per batch.
//!
//! The transactional calls and `flush` block inside their future's body:
//! they complete at their first poll, as the rebalance listener, which
//! makes them without an executor, requires.

use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Header as KafkaHeader, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
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

/// How long `send` sleeps on a full queue that none of its own records
/// fill (another send's do) before it tries again.
const QUEUE_FULL_WAIT: Duration = Duration::from_millis(10);

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

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

/// The delivery reports of one `send`: every record of the batch carries
/// an `Arc` of it to librdkafka, and its report updates it from
/// librdkafka's polling thread.
#[derive(Debug, Default)]
struct Batch {
    state: Mutex<BatchState>,
    /// Signalled when `settled` reaches `wake_at`.
    progress: Condvar,
}

#[derive(Debug)]
struct BatchState {
    /// Records whose delivery report came.
    settled: usize,
    /// The count of settled records the sender waits for; `usize::MAX`
    /// while it does not wait, so reports wake nobody.
    wake_at: usize,
    /// Per partition written, the offset of its last record.
    written: Written,
    /// The first failed delivery.
    failed: Option<KafkaError>,
}

impl Default for BatchState {
    fn default() -> Self {
        Self {
            settled: 0,
            wake_at: usize::MAX,
            written: Vec::new(),
            failed: None,
        }
    }
}

impl Batch {
    /// Takes one record's delivery report.
    fn settle(&self, result: &DeliveryResult<'_>) {
        match result {
            Ok(message) => self.delivered(message.topic(), message.partition(), message.offset()),
            Err((error, _)) => self.failed(error),
        }
    }

    /// A record written at `offset` of `topic`-`partition`.
    fn delivered(&self, topic: &str, partition: i32, offset: i64) {
        let mut state = lock(&self.state);
        if let (Ok(partition), Ok(offset)) = (u32::try_from(partition), u64::try_from(offset)) {
            match state
                .written
                .iter_mut()
                .find(|(tp, _)| tp.partition == partition && tp.topic == topic)
            {
                Some((_, last)) => *last = (*last).max(offset),
                None => state
                    .written
                    .push((TopicPartition::new(topic, partition), offset)),
            }
        }
        self.settled(state);
    }

    /// A record that failed with `error`.
    fn failed(&self, error: &KafkaError) {
        let mut state = lock(&self.state);
        if state.failed.is_none() {
            state.failed = Some(error.clone());
        }
        self.settled(state);
    }

    /// Counts one more settled record, and wakes the sender when it waits
    /// for this count.
    fn settled(&self, mut state: MutexGuard<'_, BatchState>) {
        state.settled += 1;
        if state.settled >= state.wake_at {
            state.wake_at = usize::MAX;
            self.progress.notify_one();
        }
    }

    /// Blocks until `count` records of the batch are settled.
    fn wait_settled(&self, count: usize) -> MutexGuard<'_, BatchState> {
        let mut state = lock(&self.state);
        while state.settled < count {
            state.wake_at = count;
            state = self
                .progress
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        state.wake_at = usize::MAX;
        state
    }
}

/// The producer's context: librdkafka's logs, and the delivery reports
/// handed to the batch of their record.
#[derive(Debug)]
struct Delivering {
    logging: Logging,
}

impl ClientContext for Delivering {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.logging.log_line(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.logging.error_event(&error, reason);
    }
}

impl ProducerContext for Delivering {
    type DeliveryOpaque = Arc<Batch>;

    fn delivery(&self, result: &DeliveryResult<'_>, batch: Arc<Batch>) {
        batch.settle(result);
    }
}

/// A producer on Kafka.
pub(super) struct KafkaProducer {
    producer: ThreadedProducer<Delivering>,
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
        let context = Delivering {
            logging: Logging::new(&settings.client_id),
        };
        let producer = KafkaClients::create(Role::Producer, &config, context)?;
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

    /// Hands `record` to librdkafka with `batch` as its report's
    /// destination; `sent` counts the batch's records handed over before.
    /// When librdkafka's queue is full, waits for a report of the batch
    /// first.
    fn enqueue(&self, record: &OutRecord<'_>, batch: &Arc<Batch>, sent: usize) -> Result<()> {
        let partition = record.partition.map(partition_i32).transpose()?;
        loop {
            let mut out: BaseRecord<'_, [u8], [u8], Arc<Batch>> =
                BaseRecord::with_opaque_to(record.topic, Arc::clone(batch));
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
            match self.producer.send(out) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    // Wait for one of ours to settle; with none of ours in
                    // flight, another sender's records fill the queue: let
                    // them go out.
                    let settled = lock(&batch.state).settled;
                    if settled < sent {
                        drop(batch.wait_settled(settled + 1));
                    } else {
                        std::thread::sleep(QUEUE_FULL_WAIT);
                    }
                }
                Err((e, _)) => return Err(self.delivery_error(e)),
            }
        }
    }
}

impl StreamProducer for KafkaProducer {
    fn send<'a>(&'a self, records: &'a [OutRecord<'a>]) -> BoxFuture<'a, Result<Written>> {
        Box::pin(async move {
            // The reports come on librdkafka's polling thread; this future
            // blocks until they all came, as the sender thread's runtime
            // drives nothing else.
            let batch = Arc::new(Batch::default());
            let mut sent = 0;
            let mut failed = None;
            for record in records {
                if let Err(e) = self.enqueue(record, &batch, sent) {
                    failed = Some(e);
                    break;
                }
                sent += 1;
            }
            // Every record handed over settles before the outcome is told,
            // failed or not: the caller acts on a quiet producer.
            let mut state = batch.wait_settled(sent);
            if failed.is_none() {
                failed = state.failed.take().map(|e| self.delivery_error(e));
            }
            match failed {
                Some(e) => Err(e),
                None => Ok(std::mem::take(&mut state.written)),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_keeps_the_last_offset_per_partition_and_the_first_error() {
        let batch = Batch::default();
        batch.delivered("a", 0, 5);
        batch.delivered("a", 1, 3);
        batch.delivered("a", 0, 7);
        batch.delivered("b", 0, 2);
        batch.delivered("a", 0, 6);
        batch.failed(&KafkaError::MessageProduction(
            RDKafkaErrorCode::MessageTimedOut,
        ));
        batch.failed(&KafkaError::Canceled);
        let mut state = batch.wait_settled(7);
        assert_eq!(state.settled, 7);
        assert_eq!(
            std::mem::take(&mut state.written),
            vec![
                (TopicPartition::new("a", 0), 7),
                (TopicPartition::new("a", 1), 3),
                (TopicPartition::new("b", 0), 2),
            ]
        );
        assert!(matches!(
            state.failed,
            Some(KafkaError::MessageProduction(
                RDKafkaErrorCode::MessageTimedOut
            ))
        ));
    }

    #[test]
    fn waiting_for_a_batch_ends_when_its_last_report_comes_from_another_thread() {
        let batch = Arc::new(Batch::default());
        let reporter = {
            let batch = Arc::clone(&batch);
            std::thread::spawn(move || {
                for offset in 0..1_000 {
                    if offset % 100 == 0 {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    batch.delivered("t", 0, offset);
                }
            })
        };
        // A wait for some progress ends before the whole batch settled
        // or as it does; the wait for all ends with all.
        assert!(batch.wait_settled(1).settled >= 1);
        let state = batch.wait_settled(1_000);
        assert_eq!(state.settled, 1_000);
        assert_eq!(state.written, vec![(TopicPartition::new("t", 0), 999)]);
        assert_eq!(state.wake_at, usize::MAX, "nobody waits any more");
        drop(state);
        reporter.join().unwrap();
    }
}
