//! The restore consumer on Kafka: changelog partitions assigned by hand,
//! read from given offsets, with no group membership.
//!
//! librdkafka needs a `group.id` to assign partitions; the readers get one
//! that they never join. Each changelog topic is read by a librdkafka
//! consumer of its own: librdkafka reports the end of a partition
//! (`enable.partition.eof`) with its partition number alone, and one topic
//! per reader makes that number name one partition.
//!
//! The position of a partition is the next offset to read: one past the
//! last record returned or transaction marker passed (librdkafka's
//! position counts markers), and at the end of the partition the end
//! offset, so that restoration ends even when the tail of the log holds no
//! record (compacted away). The end offset is what the reader's isolation
//! level reads up to: the high watermark, or the last stable offset under
//! `read_committed`.
//!
//! The offsets of a partition ([`Probes`]) come from two consumers outside
//! any group that the app's restore consumers share: a `read_uncommitted`
//! one asks for the log start offset and the high watermark, a
//! `read_committed` one for the last stable offset (Kafka's ListOffsets
//! answers "latest" with the last stable offset under `read_committed`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{ClientConfig, Message, Offset};

use crate::error::{Result, StreamsError};

use super::super::{
    BoxFuture, ConsumerSettings, Isolation, PolledRun, RestoreConsumer, TopicPartition, Watermarks,
};
use super::context::Logging;
use super::convert::{in_record, partition_i32, positions_list, Runs};
use super::errors::wrap;
use super::{KafkaClients, Role};

fn isolation_level(isolation: Isolation) -> &'static str {
    match isolation {
        Isolation::ReadCommitted => "read_committed",
        Isolation::ReadUncommitted => "read_uncommitted",
    }
}

/// A reader's librdkafka configuration.
pub(super) fn reader_config(
    clients: &KafkaClients,
    settings: &ConsumerSettings,
) -> Result<ClientConfig> {
    clients.config(
        Role::RestoreConsumer,
        &[
            ("auto.offset.reset", "earliest"),
            ("allow.auto.create.topics", "false"),
        ],
        &[
            // Needed by librdkafka to assign partitions; never joined.
            ("group.id", settings.client_id.as_str()),
            ("client.id", settings.client_id.as_str()),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("enable.partition.eof", "true"),
            ("isolation.level", isolation_level(settings.isolation)),
        ],
    )
}

fn offset_u64(operation: &'static str, offset: i64) -> Result<u64> {
    u64::try_from(offset).map_err(|_| {
        StreamsError::Internal(format!("{operation}: the broker answered offset {offset}"))
    })
}

/// Reads the offsets of partitions, for the restore consumers.
pub(super) struct Probes {
    uncommitted: BaseConsumer<Logging>,
    committed: BaseConsumer<Logging>,
    timeout: Duration,
}

impl Probes {
    pub(super) fn new(clients: &KafkaClients) -> Result<Self> {
        let probe = |isolation: Isolation| -> Result<BaseConsumer<Logging>> {
            let client_id = format!(
                "{}-offsets-{}",
                clients.application_id,
                isolation_level(isolation)
            );
            let config = clients.config(
                Role::RestoreConsumer,
                &[("allow.auto.create.topics", "false")],
                &[
                    ("client.id", client_id.as_str()),
                    ("enable.auto.commit", "false"),
                    ("isolation.level", isolation_level(isolation)),
                ],
            )?;
            KafkaClients::create(Role::RestoreConsumer, &config, Logging::new(&client_id))
        };
        Ok(Self {
            uncommitted: probe(Isolation::ReadUncommitted)?,
            committed: probe(Isolation::ReadCommitted)?,
            timeout: clients.api_timeout,
        })
    }

    /// The offsets of `tp`. The last stable offset is read first, so that
    /// it is never above the high watermark read after it.
    pub(super) fn watermarks(&self, tp: &TopicPartition) -> Result<Watermarks> {
        const OPERATION: &str = "read a changelog's offsets";
        let partition = partition_i32(tp.partition)?;
        let (_, last_stable) = self
            .committed
            .fetch_watermarks(&tp.topic, partition, self.timeout)
            .map_err(wrap(OPERATION))?;
        let (log_start, high) = self
            .uncommitted
            .fetch_watermarks(&tp.topic, partition, self.timeout)
            .map_err(wrap(OPERATION))?;
        let log_start = offset_u64(OPERATION, log_start)?;
        let high = offset_u64(OPERATION, high)?;
        let last_stable = offset_u64(OPERATION, last_stable)?.min(high);
        Ok(Watermarks {
            log_start,
            high,
            last_stable,
        })
    }
}

/// Wakes a poll waiting for records: set by librdkafka's threads when a
/// reader's queue stops being empty.
#[derive(Debug, Default)]
struct Signal {
    ready: Mutex<bool>,
    woken: Condvar,
}

impl Signal {
    fn notify(&self) {
        *self.ready.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.woken.notify_all();
    }

    fn reset(&self) {
        *self.ready.lock().unwrap_or_else(PoisonError::into_inner) = false;
    }

    /// Waits until notified (since the last reset) or `deadline`.
    fn wait_until(&self, deadline: Instant) {
        let mut ready = self.ready.lock().unwrap_or_else(PoisonError::into_inner);
        while !*ready {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            ready = self
                .woken
                .wait_timeout(ready, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// The consumer of one changelog topic's assigned partitions.
struct Reader {
    topic: String,
    consumer: BaseConsumer<Logging>,
}

/// A restore consumer on Kafka.
pub(super) struct KafkaRestoreConsumer {
    config: ClientConfig,
    client_id: String,
    probes: Arc<Probes>,
    readers: Vec<Reader>,
    /// The next offset to read of each assigned partition.
    positions: HashMap<TopicPartition, u64>,
    signal: Arc<Signal>,
    max_poll_records: usize,
    api_timeout: Duration,
    runs: Runs,
}

impl KafkaRestoreConsumer {
    /// Makes no librdkafka client yet: readers are made by `assign`.
    pub(super) fn new(clients: &KafkaClients, settings: &ConsumerSettings) -> Result<Self> {
        Ok(Self {
            config: reader_config(clients, settings)?,
            client_id: settings.client_id.clone(),
            probes: clients.probes()?,
            readers: Vec::new(),
            positions: HashMap::new(),
            signal: Arc::new(Signal::default()),
            max_poll_records: settings.max_poll_records.max(1),
            api_timeout: clients.api_timeout,
            runs: Runs::default(),
        })
    }

    fn advance(&mut self, tp: TopicPartition, next: u64) {
        let position = self.positions.entry(tp).or_insert(next);
        *position = (*position).max(next);
    }

    /// Takes what the readers hold, up to max.poll.records, without
    /// waiting. Returns whether any position moved.
    fn drain(&mut self) -> Result<bool> {
        let mut moved = false;
        let mut count = 0;
        let mut ends = Vec::new();
        let mut advanced = Vec::new();
        for (index, reader) in self.readers.iter().enumerate() {
            while count < self.max_poll_records {
                match reader.consumer.poll(Duration::ZERO) {
                    None => break,
                    Some(Ok(message)) => {
                        let (Some(record), Ok(partition)) =
                            (in_record(&message), u32::try_from(message.partition()))
                        else {
                            continue;
                        };
                        let next = record.offset + 1;
                        self.runs.push(&reader.topic, partition, record);
                        advanced.push((TopicPartition::new(&reader.topic, partition), next));
                        count += 1;
                    }
                    Some(Err(KafkaError::PartitionEOF(partition))) => ends.push((index, partition)),
                    Some(Err(e @ KafkaError::MessageConsumptionFatal(_))) => {
                        self.runs.take();
                        return Err(wrap("poll changelogs")(e));
                    }
                    Some(Err(e)) => {
                        tracing::warn!(topic = %reader.topic, error = %e, "restore consumer error")
                    }
                }
            }
            // Past transaction markers too: librdkafka's position counts
            // them, the records do not show them.
            if let Ok(list) = reader.consumer.position() {
                for e in list.elements() {
                    if let (Offset::Offset(next), Ok(partition)) =
                        (e.offset(), u32::try_from(e.partition()))
                    {
                        if let Ok(next) = u64::try_from(next) {
                            advanced.push((TopicPartition::new(&reader.topic, partition), next));
                        }
                    }
                }
            }
        }
        for (index, partition) in ends {
            let Some(reader) = self.readers.get(index) else {
                continue;
            };
            // The end of the partition as the reader's isolation level sees
            // it: at the end-of-partition event the reader had fetched up
            // to it, so every record before it has been returned.
            let (_, end) = reader
                .consumer
                .fetch_watermarks(&reader.topic, partition, self.api_timeout)
                .map_err(wrap("read a changelog's end offset"))?;
            if let (Ok(partition), Ok(end)) = (u32::try_from(partition), u64::try_from(end)) {
                advanced.push((TopicPartition::new(&reader.topic, partition), end));
            }
        }
        for (tp, next) in advanced {
            let before = self.positions.get(&tp).copied();
            if before.is_none_or(|b| b < next) {
                moved = true;
            }
            self.advance(tp, next);
        }
        Ok(moved)
    }
}

impl RestoreConsumer for KafkaRestoreConsumer {
    fn watermarks(&mut self, tp: &TopicPartition) -> BoxFuture<'_, Result<Watermarks>> {
        let tp = tp.clone();
        Box::pin(async move { self.probes.watermarks(&tp) })
    }

    fn assign(&mut self, partitions: Vec<(TopicPartition, u64)>) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            self.readers.clear();
            self.positions.clear();
            self.runs.take();
            let mut by_topic: BTreeMap<String, Vec<(TopicPartition, u64)>> = BTreeMap::new();
            for (tp, offset) in partitions {
                by_topic
                    .entry(tp.topic.clone())
                    .or_default()
                    .push((tp, offset));
            }
            for (topic, starts) in by_topic {
                let mut consumer: BaseConsumer<Logging> = KafkaClients::create(
                    Role::RestoreConsumer,
                    &self.config,
                    Logging::new(&self.client_id),
                )?;
                let signal = self.signal.clone();
                consumer.set_nonempty_callback(move || signal.notify());
                consumer
                    .assign(&positions_list(&starts)?)
                    .map_err(wrap("assign changelog partitions"))?;
                for (tp, offset) in starts {
                    self.positions.insert(tp, offset);
                }
                self.readers.push(Reader { topic, consumer });
            }
            Ok(())
        })
    }

    fn poll(&mut self, timeout: Duration) -> BoxFuture<'_, Result<Vec<PolledRun>>> {
        Box::pin(async move {
            let deadline = Instant::now() + timeout;
            loop {
                self.signal.reset();
                let moved = self.drain()?;
                if moved || !self.runs.is_empty() || Instant::now() >= deadline {
                    return Ok(self.runs.take());
                }
                self.signal.wait_until(deadline);
            }
        })
    }

    fn position(&self, tp: &TopicPartition) -> Option<u64> {
        self.positions.get(tp).copied()
    }

    fn empty_poll_is_end(&self) -> bool {
        false
    }
}
