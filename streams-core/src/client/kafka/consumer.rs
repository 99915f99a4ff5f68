//! A stream thread's consumer on Kafka: a librdkafka group member whose
//! rebalance events reach the runtime's listener.
//!
//! librdkafka serves rebalance events inside `poll`, on the calling thread,
//! through the consumer's context ([`Rebalancing`]): a revocation calls the
//! listener's `on_partitions_revoked` (or `on_partitions_lost` when
//! librdkafka says the assignment was lost) and then unassigns; an
//! assignment calls `on_partitions_assigned` and then assigns, with the
//! offsets the listener sought as the partitions' starting offsets
//! (librdkafka cannot seek a partition it does not fetch yet). Inside the
//! callbacks the listener's calls (commit, committed offsets, group
//! metadata) block until done, as the seam requires.
//!
//! The stream thread polls from a thread of its own, so the blocking calls
//! of librdkafka are made where they are asked for.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use crate::error::{ClientErrorKind, Result, StreamsError};

use super::super::{
    client_error, BoxFuture, ConsumerSettings, GroupMetadata, Isolation, MainConsumer, Offsets,
    PolledRun, RebalanceConsumer, RebalanceListener, TopicPartition,
};
use super::context::Logging;
use super::convert::{
    committed_of, in_record, offset_i64, offsets_list, partition_i32, partition_list,
    partitions_of, Runs,
};
use super::errors::wrap;
use super::{KafkaClients, Role};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The main consumer's librdkafka configuration.
pub(super) fn config(clients: &KafkaClients, settings: &ConsumerSettings) -> Result<ClientConfig> {
    let group = settings
        .group_id
        .clone()
        .unwrap_or_else(|| settings.client_id.clone());
    let session = settings.session_timeout_ms.to_string();
    let heartbeat = settings.heartbeat_interval_ms.to_string();
    let mut forced = vec![
        ("group.id", group.as_str()),
        ("client.id", settings.client_id.as_str()),
        ("enable.auto.commit", "false"),
        ("enable.auto.offset.store", "false"),
        ("session.timeout.ms", session.as_str()),
        ("heartbeat.interval.ms", heartbeat.as_str()),
    ];
    if settings.isolation == Isolation::ReadCommitted {
        forced.push(("isolation.level", "read_committed"));
    }
    clients.config(
        Role::MainConsumer,
        &[
            ("auto.offset.reset", "earliest"),
            // librdkafka has no custom assignors; the runtime checks that
            // co-partitioned topics have equal partition counts, which
            // `range` then assigns together.
            ("partition.assignment.strategy", "range"),
            ("enable.partition.eof", "false"),
            ("isolation.level", "read_uncommitted"),
            ("allow.auto.create.topics", "false"),
            // librdkafka stops fetching a partition whose local queue
            // holds `queued.min.messages` (100,000) and looks again only
            // after this backoff (1 s by default). A stream thread drains
            // its queue in well under a second, so the default left it idle
            // most of the time: the word count ran 2.6 times slower.
            ("fetch.queue.backoff.ms", "10"),
        ],
        &forced,
    )
}

/// The main consumer's context: librdkafka's logs, and the rebalance
/// events handed to the runtime's listener.
pub(super) struct Rebalancing {
    logging: Logging,
    listener: Mutex<Option<Box<dyn RebalanceListener>>>,
    /// An assign or unassign librdkafka refused, for the next poll.
    failure: Mutex<Option<StreamsError>>,
    api_timeout: Duration,
}

impl ClientContext for Rebalancing {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.logging.log_line(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.logging.error_event(&error, reason);
    }
}

impl Rebalancing {
    fn fail(&self, error: StreamsError) {
        lock(&self.failure).get_or_insert(error);
    }

    fn assign(&self, consumer: &BaseConsumer<Self>, tpl: &mut TopicPartitionList) {
        let partitions = partitions_of(tpl);
        let mut seeks = Vec::new();
        if let Some(listener) = lock(&self.listener).as_mut() {
            let mut inside = InCallback {
                consumer,
                seeks: Some(&mut seeks),
                api_timeout: self.api_timeout,
            };
            listener.on_partitions_assigned(&partitions, &mut inside);
        }
        for (tp, offset) in seeks {
            let set = partition_i32(tp.partition).and_then(|p| {
                tpl.set_partition_offset(&tp.topic, p, Offset::Offset(offset_i64(offset)?))
                    .map_err(wrap("seek"))
            });
            if let Err(e) = set {
                tracing::warn!(partition = %tp, error = %e, "cannot start the partition at the offset sought");
            }
        }
        let assigned = match consumer.rebalance_protocol() {
            RebalanceProtocol::Cooperative => consumer.incremental_assign(tpl),
            _ => consumer.assign(tpl),
        };
        if let Err(e) = assigned {
            self.fail(wrap("assign partitions")(e));
        }
    }

    fn revoke(&self, consumer: &BaseConsumer<Self>, tpl: &TopicPartitionList) {
        let partitions = partitions_of(tpl);
        let lost = consumer.assignment_lost();
        if let Some(listener) = lock(&self.listener).as_mut() {
            let mut inside = InCallback {
                consumer,
                seeks: None,
                api_timeout: self.api_timeout,
            };
            if lost {
                listener.on_partitions_lost(&partitions, &mut inside);
            } else {
                listener.on_partitions_revoked(&partitions, &mut inside);
            }
        }
        let unassigned = match consumer.rebalance_protocol() {
            RebalanceProtocol::Cooperative => consumer.incremental_unassign(tpl),
            _ => consumer.unassign(),
        };
        if let Err(e) = unassigned {
            self.fail(wrap("unassign partitions")(e));
        }
    }
}

impl ConsumerContext for Rebalancing {
    fn rebalance(
        &self,
        base_consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => self.assign(base_consumer, tpl),
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => self.revoke(base_consumer, tpl),
            other => {
                // rdkafka hands only assignments and revocations here; an
                // error means the assignment is gone.
                tracing::warn!(error = ?other, "rebalance error; dropping the assignment");
                if let Err(e) = base_consumer.unassign() {
                    self.fail(wrap("unassign partitions")(e));
                }
            }
        }
    }
}

/// The consumer as the listener sees it inside a rebalance callback.
struct InCallback<'a> {
    consumer: &'a BaseConsumer<Rebalancing>,
    /// During an assignment: the offsets sought, applied as the starting
    /// offsets of the assign call.
    seeks: Option<&'a mut Vec<(TopicPartition, u64)>>,
    api_timeout: Duration,
}

impl RebalanceConsumer for InCallback<'_> {
    fn commit_sync(&mut self, offsets: Offsets) -> Result<()> {
        commit(self.consumer, &offsets)
    }

    fn committed(&mut self, partitions: &[TopicPartition]) -> Result<Offsets> {
        let (offsets, unstable) = committed(self.consumer, partitions, self.api_timeout)?;
        if !unstable.is_empty() {
            // Exactly-once: a transaction still holds offsets of these
            // partitions; the runtime reads them again once the group's
            // offsets are stable.
            tracing::debug!(partitions = ?unstable, "committed offsets pending in an open transaction");
        }
        Ok(offsets)
    }

    fn seek(&mut self, tp: &TopicPartition, offset: u64) -> Result<()> {
        match &mut self.seeks {
            Some(seeks) => {
                seeks.retain(|(sought, _)| sought != tp);
                seeks.push((tp.clone(), offset));
                Ok(())
            }
            None => seek(self.consumer, tp, offset, self.api_timeout),
        }
    }

    fn group_metadata(&self) -> Option<GroupMetadata> {
        self.consumer
            .group_metadata()
            .map(|g| GroupMetadata(Box::new(g)))
    }
}

fn commit(consumer: &BaseConsumer<Rebalancing>, offsets: &Offsets) -> Result<()> {
    if offsets.is_empty() {
        return Ok(());
    }
    let list = offsets_list(offsets)?;
    consumer
        .commit(&list, CommitMode::Sync)
        .map_err(wrap("commit offsets"))
}

fn committed(
    consumer: &BaseConsumer<Rebalancing>,
    partitions: &[TopicPartition],
    timeout: Duration,
) -> Result<(Offsets, Vec<TopicPartition>)> {
    if partitions.is_empty() {
        return Ok((Offsets::new(), Vec::new()));
    }
    let list = consumer
        .committed_offsets(partition_list(partitions)?, timeout)
        .map_err(wrap("read committed offsets"))?;
    Ok(committed_of(&list))
}

fn seek(
    consumer: &BaseConsumer<Rebalancing>,
    tp: &TopicPartition,
    offset: u64,
    timeout: Duration,
) -> Result<()> {
    consumer
        .seek(
            &tp.topic,
            partition_i32(tp.partition)?,
            Offset::Offset(offset_i64(offset)?),
            timeout,
        )
        .map_err(wrap("seek"))
}

/// A stream thread's consumer on Kafka.
pub(super) struct KafkaConsumer {
    consumer: BaseConsumer<Rebalancing>,
    max_poll_records: usize,
    api_timeout: Duration,
    session_timeout: Duration,
    read_committed: bool,
    runs: Runs,
}

impl KafkaConsumer {
    pub(super) fn new(clients: &KafkaClients, settings: &ConsumerSettings) -> Result<Self> {
        let config = config(clients, settings)?;
        let context = Rebalancing {
            logging: Logging::new(&settings.client_id),
            listener: Mutex::new(None),
            failure: Mutex::new(None),
            api_timeout: clients.api_timeout,
        };
        let consumer = KafkaClients::create(Role::MainConsumer, &config, context)?;
        Ok(Self {
            consumer,
            max_poll_records: settings.max_poll_records.max(1),
            api_timeout: clients.api_timeout,
            session_timeout: Duration::from_millis(settings.session_timeout_ms),
            read_committed: settings.isolation == Isolation::ReadCommitted,
            runs: Runs::default(),
        })
    }

    /// The error of an assign or unassign in the last rebalance, if any.
    fn take_failure(&self) -> Result<()> {
        match lock(&self.consumer.context().failure).take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Unsubscribes, and polls until the revocation has run (the listener
    /// commits and closes the tasks) or the API timeout passes. Records
    /// polled meanwhile are dropped: they were not processed, so their
    /// offsets were not committed.
    fn leave(&mut self) -> Result<()> {
        self.consumer.unsubscribe();
        let deadline = Instant::now() + self.api_timeout;
        loop {
            let assigned = self.consumer.assignment().map(|a| a.count()).unwrap_or(0);
            if assigned == 0 || Instant::now() >= deadline {
                break;
            }
            if let Some(Err(e @ KafkaError::MessageConsumptionFatal(_))) =
                self.consumer.poll(Duration::from_millis(100))
            {
                return Err(wrap("leave the group")(e));
            }
        }
        self.take_failure()
    }
}

impl MainConsumer for KafkaConsumer {
    fn subscribe(
        &mut self,
        topics: Vec<String>,
        listener: Box<dyn RebalanceListener>,
    ) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            *lock(&self.consumer.context().listener) = Some(listener);
            let names: Vec<&str> = topics.iter().map(String::as_str).collect();
            self.consumer.subscribe(&names).map_err(wrap("subscribe"))
        })
    }

    fn unsubscribe(&mut self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.leave() })
    }

    fn poll(&mut self, timeout: Duration) -> BoxFuture<'_, Result<Vec<PolledRun>>> {
        Box::pin(async move {
            // Wait up to `timeout` for the first record, then take what is
            // ready without waiting, up to max.poll.records.
            let mut wait = timeout;
            let mut count = 0;
            while count < self.max_poll_records {
                let Some(next) = self.consumer.poll(wait) else {
                    break;
                };
                wait = Duration::ZERO;
                match next {
                    Ok(message) => {
                        let (Some(record), Ok(partition)) =
                            (in_record(&message), u32::try_from(message.partition()))
                        else {
                            continue;
                        };
                        self.runs.push(message.topic(), partition, record);
                        count += 1;
                    }
                    Err(KafkaError::PartitionEOF(_)) => {}
                    Err(e @ KafkaError::MessageConsumptionFatal(_)) => {
                        self.runs.take();
                        return Err(wrap("poll")(e));
                    }
                    // Broker connections dropping, a topic missing for a
                    // moment: librdkafka recovers from these itself.
                    Err(e) => tracing::warn!(error = %e, "consumer error"),
                }
            }
            let runs = self.runs.take();
            self.take_failure()?;
            Ok(runs)
        })
    }

    fn assignment(&self) -> Vec<TopicPartition> {
        match self.consumer.assignment() {
            Ok(list) => partitions_of(&list),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the consumer's assignment");
                Vec::new()
            }
        }
    }

    fn lagging_partitions(&self) -> Vec<TopicPartition> {
        // rdkafka offers no local view of a partition's end (its cached
        // watermarks are not exposed; asking the broker would block the
        // stream thread): none is known to lag, and a task waits for empty
        // inputs only as `max.task.idle.ms` says.
        Vec::new()
    }

    fn seek(&mut self, tp: &TopicPartition, offset: u64) -> Result<()> {
        seek(&self.consumer, tp, offset, self.api_timeout)
    }

    fn pause(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        if partitions.is_empty() {
            return Ok(());
        }
        self.consumer
            .pause(&partition_list(partitions)?)
            .map_err(wrap("pause partitions"))
    }

    fn resume(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        if partitions.is_empty() {
            return Ok(());
        }
        self.consumer
            .resume(&partition_list(partitions)?)
            .map_err(wrap("resume partitions"))
    }

    fn committed(&mut self, partitions: &[TopicPartition]) -> BoxFuture<'_, Result<Offsets>> {
        let partitions = partitions.to_vec();
        Box::pin(async move {
            let (offsets, unstable) = committed(&self.consumer, &partitions, self.api_timeout)?;
            if let Some(tp) = unstable.first() {
                return Err(client_error(
                    ClientErrorKind::Retriable,
                    "read committed offsets",
                    format!("the committed offset of {tp} is pending in an open transaction"),
                ));
            }
            Ok(offsets)
        })
    }

    fn commit_sync(&mut self, offsets: Offsets) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { commit(&self.consumer, &offsets) })
    }

    fn group_metadata(&self) -> Option<GroupMetadata> {
        self.consumer
            .group_metadata()
            .map(|g| GroupMetadata(Box::new(g)))
    }

    fn group_offsets_stable(&mut self) -> BoxFuture<'_, Result<bool>> {
        Box::pin(async move {
            // Under read_committed librdkafka asks for stable offsets: a
            // partition whose offset an open transaction holds comes back
            // UNSTABLE_OFFSET_COMMIT once librdkafka's retries are spent.
            if !self.read_committed {
                return Ok(true);
            }
            let assigned = self.assignment();
            let (_, unstable) = committed(&self.consumer, &assigned, self.api_timeout)?;
            Ok(unstable.is_empty())
        })
    }

    fn close(self: Box<Self>) -> BoxFuture<'static, Result<()>> {
        Box::pin(async move {
            let mut this = self;
            let left = this.leave();
            // Dropping the consumer closes it: it leaves the group.
            drop(this);
            left
        })
    }

    /// librdkafka cannot drop a group member without leaving the group, and
    /// a consumer kept alive goes on heartbeating. So, as close to a crash
    /// as it gets: the listener is detached at once (no more callbacks: no
    /// commit, no task closed), and the consumer is closed on a thread of
    /// its own after its session timeout, when a crashed member's session
    /// would have expired; the group then rebalances.
    fn abandon(self: Box<Self>) {
        lock(&self.consumer.context().listener).take();
        let wait = self.session_timeout;
        let spawned = std::thread::Builder::new()
            .name("abandoned-consumer".to_owned())
            .spawn(move || {
                std::thread::sleep(wait);
                drop(self);
            });
        if let Err(e) = spawned {
            // The consumer went with the closure: it closed now.
            tracing::warn!(error = %e, "cannot keep the abandoned consumer; it left the group now");
        }
    }
}
