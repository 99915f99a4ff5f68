//! A stream thread: one group member that owns the tasks of the partitions
//! it is assigned, restores their stores, processes their records and
//! commits.
//!
//! Each stream thread is an OS thread running a single-threaded tokio
//! runtime. User processors are synchronous and may be CPU-bound, so they
//! get a thread of their own rather than a worker of a shared runtime; the
//! runtime is there for the consumer's waits (poll, heartbeats).
//!
//! The thread's tasks live in a [`Core`] behind a std mutex, shared with
//! the rebalance listener (which the consumer calls inside `poll`) and with
//! interactive queries. The mutex is never held across an `.await`.
//!
//! Under exactly-once the thread's producer is transactional. A transaction
//! begins with the first output after a commit; a commit sends the
//! consumed offsets into it with the consumer's group metadata and commits
//! it, both in the loop and in the revocation callback (the embedded
//! broker's transactional calls complete at their first poll, like its
//! offset commits). A failed transaction closes every task dirty (stores
//! wiped, checkpoints deleted), replaces the producer and rejoins the
//! group. Checkpoints are written only on a clean close.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use rustc_hash::FxHashMap;
use state_store::{Checkpoint, LocalData};

use crate::client::{
    Admin, ClientSupplier, ConsumerSettings, GroupMetadata, InRecord, Isolation, MainConsumer,
    OffsetAndMetadata, Offsets, PolledRun, ProducerSettings, RebalanceConsumer, RebalanceListener,
    StreamProducer, TopicPartition,
};
use crate::error::{ClientErrorKind, Result, StreamsError};
use crate::store::StoreSlot;
use crate::task::{RawRecord, Task, TaskId, TaskOptions};

use super::sender::{Outgoing, Routing, Sender, Sent};
use super::setup::Plan;
use super::{PausePoint, Shared};

/// The version byte of the partition time in committed offset metadata.
const PARTITION_TIME_MAGIC: u8 = 1;

/// Encodes a partition time as committed offset metadata, as Kafka Streams
/// does: base64 of a version byte (1) and the time (i64, big-endian).
fn encode_partition_time(time: i64) -> String {
    let mut bytes = Vec::with_capacity(9);
    bytes.push(PARTITION_TIME_MAGIC);
    bytes.extend_from_slice(&time.to_be_bytes());
    BASE64.encode(bytes)
}

/// Decodes the partition time committed with `tp`'s offset; `None` for
/// empty metadata, and, with a warning, for metadata that is not a
/// partition time (another client's, or damaged): stream time then starts
/// from the records.
fn decode_partition_time(tp: &TopicPartition, metadata: &str) -> Option<i64> {
    if metadata.is_empty() {
        return None;
    }
    let decoded = BASE64
        .decode(metadata)
        .ok()
        .and_then(|bytes| match bytes.split_first() {
            Some((&PARTITION_TIME_MAGIC, rest)) if rest.len() >= 8 => {
                let mut time = [0u8; 8];
                time.copy_from_slice(&rest[..8]);
                Some(i64::from_be_bytes(time))
            }
            _ => None,
        });
    if decoded.is_none() {
        tracing::warn!(partition = %tp, metadata, "committed offset metadata is not a partition time; ignoring it");
    }
    decoded
}

/// How long a poll waits for data before the loop checks for shutdown,
/// commits and wall-clock punctuation.
const POLL_TIMEOUT: Duration = Duration::from_millis(50);

/// How long a poll of the stream thread may wait for records: at most
/// [`POLL_TIMEOUT`], and no later than the next commit is due
/// (`commit.interval.ms` after the last one, `since` ago), so that an idle
/// thread commits on time rather than up to a poll's wait late. An interval
/// of 0 (a commit after every loop) keeps the whole wait, so that an idle
/// thread does not spin.
fn poll_timeout(interval: Duration, since: Duration) -> Duration {
    if interval.is_zero() {
        return POLL_TIMEOUT;
    }
    POLL_TIMEOUT
        .min(interval.saturating_sub(since))
        .max(Duration::from_millis(1))
}

/// The checkpoint file of a task directory.
const CHECKPOINT_FILE: &str = ".checkpoint";

/// Changelog records written since a task's last checkpoint past which a
/// commit writes a new one (Kafka Streams' `OFFSET_DELTA_THRESHOLD_FOR_CHECKPOINT`).
/// Fewer are replayed from the older checkpoint on a restart; a clean close
/// always writes one.
const CHECKPOINT_DELTA_RECORDS: u64 = 10_000;

/// Whether a commit writes a task's checkpoint: none written yet, or its
/// changelogs moved by more than [`CHECKPOINT_DELTA_RECORDS`] since.
fn checkpoint_due(
    last: Option<&BTreeMap<TopicPartition, u64>>,
    now: &BTreeMap<TopicPartition, u64>,
) -> bool {
    let Some(last) = last else {
        return true;
    };
    let delta: u64 = now
        .iter()
        .map(|(tp, offset)| offset.saturating_sub(last.get(tp).copied().unwrap_or(0)))
        .sum();
    delta > CHECKPOINT_DELTA_RECORDS
}

/// Runs a broker call that completes without waiting.
///
/// The embedded broker's calls run in the caller and complete at their
/// first poll; the rebalance listener, which is synchronous, relies on
/// that. A call that would wait is reported instead of blocking the thread.
fn now<F: Future>(fut: F) -> Result<F::Output> {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(out) => Ok(out),
        Poll::Pending => Err(StreamsError::Internal(
            "a broker call from the stream thread did not complete at once".to_owned(),
        )),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// Runs user code of task `task`, turning a panic into an error.
fn guarded<R>(task: TaskId, f: impl FnOnce() -> Result<R>) -> Result<R> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => Err(StreamsError::Panicked {
            task: task.to_string(),
            message: panic_message(payload.as_ref()),
        }),
    }
}

/// A store being restored: where its changelog is read from and to.
#[derive(Debug, Clone)]
struct Restoring {
    store: usize,
    changelog: TopicPartition,
    start: u64,
}

/// Where the restoration of store `slot` of task `id` starts, given the
/// offset its task's checkpoint names for its changelog partition, if any.
///
/// A checkpoint vouches only for the files it was written for: a store
/// whose files were missing (created by this open) or wiped is empty, and
/// restoring it from the checkpoint's offset would leave out every update
/// before it (wrong values, which the next updates would then write to the
/// changelog too). Such a store, and any in-memory store, is restored from
/// the beginning of its changelog.
fn restore_start(id: TaskId, slot: &StoreSlot, checkpointed: Option<u64>) -> u64 {
    let Some(offset) = checkpointed else {
        return 0;
    };
    if !slot.persistent {
        return 0;
    }
    match slot.local_data {
        local if local.checkpoint_applies() => offset,
        LocalData::Wiped => {
            tracing::warn!(task = %id, store = %slot.name, changelog = %slot.changelog_topic, checkpoint_offset = offset, "discarding the checkpoint of a wiped store; restoring it from the beginning of its changelog");
            0
        }
        _ => {
            tracing::warn!(task = %id, store = %slot.name, changelog = %slot.changelog_topic, checkpoint_offset = offset, "discarding the checkpoint: the store's files are missing; restoring it from the beginning of its changelog");
            0
        }
    }
}

/// The buffered input records of one partition, in offset order: the runs
/// the consumer handed out ([`PartitionRun`]), kept as they came, so that a
/// record is moved once, from its decoded batch to its task.
#[derive(Debug, Default)]
struct RecordQueue {
    /// Never holds an empty run, so that the front record is the first of
    /// the first run.
    runs: VecDeque<std::vec::IntoIter<InRecord>>,
}

impl RecordQueue {
    fn push(&mut self, run: std::vec::IntoIter<InRecord>) {
        if run.len() > 0 {
            self.runs.push_back(run);
        }
    }

    fn front(&self) -> Option<&InRecord> {
        self.runs.front().and_then(|run| run.as_slice().first())
    }

    fn pop_front(&mut self) -> Option<InRecord> {
        let run = self.runs.front_mut()?;
        let record = run.next();
        if run.len() == 0 {
            self.runs.pop_front();
        }
        record
    }

    fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    fn clear(&mut self) {
        self.runs.clear();
    }
}

/// A task owned by a stream thread, with its input buffers and offsets.
#[derive(Debug)]
pub(crate) struct TaskEntry {
    pub(crate) task: Task,
    dir: PathBuf,
    /// Buffered input per partition.
    buffers: BTreeMap<TopicPartition, RecordQueue>,
    /// The next offset to commit per input partition (processed + 1).
    consumed: FxHashMap<TopicPartition, u64>,
    /// The changelog offset each logged store reflects, by changelog
    /// partition.
    changelog_offsets: BTreeMap<TopicPartition, u64>,
    /// The changelog offsets of the last checkpoint written (`None`: none
    /// written by this owner yet).
    checkpointed: Option<BTreeMap<TopicPartition, u64>>,
    /// The changelog offsets at the last durable flush of the task's stores
    /// (`None`: none since this owner restored them).
    synced: Option<BTreeMap<TopicPartition, u64>>,
    /// Stores still to restore; `None` once the task runs.
    restoring: Option<Vec<Restoring>>,
    /// Since when the task waits for an empty input partition while others
    /// have data (`max.task.idle.ms`).
    idle_wait_since: Option<Instant>,
    /// When the task last processed a record, and its stream time then
    /// (`task.idle.wall.clock.advance.ms`).
    last_record: Option<(Instant, i64)>,
}

impl TaskEntry {
    /// Makes the task's stores durable (right after a commit) and notes the
    /// changelog offsets they now hold durably.
    fn sync_stores(&mut self, id: TaskId) -> Result<()> {
        let task = &mut self.task;
        guarded(id, || task.sync_stores())?;
        self.synced = Some(self.changelog_offsets.clone());
        Ok(())
    }

    /// Whether the task has restored its stores and processes records.
    pub(crate) fn running(&self) -> bool {
        self.restoring.is_none()
    }
}

/// The thread's producer: transactional (and idempotent) with a
/// transactional id, idempotent without.
fn make_producer(
    clients: &dyn ClientSupplier,
    transactional_id: Option<&str>,
    plan: &Plan,
    index: usize,
) -> Result<Arc<dyn StreamProducer>> {
    clients.producer(ProducerSettings {
        client_id: format!(
            "{}-StreamThread-{}-producer",
            plan.config.application_id(),
            index + 1
        ),
        transactional_id: transactional_id.map(str::to_owned),
        transaction_timeout_ms: plan.clients.transaction_timeout_ms,
    })
}

/// Whether a failed call means "the tasks moved or the producer was
/// fenced" (abort, close the tasks dirty, rejoin, go on), as Kafka Streams'
/// `TaskMigratedException`, rather than an error that stops the thread (an
/// unknown topic, a record too large, I/O).
fn task_migrated(error: &StreamsError) -> bool {
    error.is_task_migrated()
}

/// A stream thread's tasks and producer.
#[derive(Debug)]
pub(crate) struct Core {
    index: usize,
    plan: Arc<Plan>,
    clients: Arc<dyn ClientSupplier>,
    /// Sends outputs and changelog records: an idempotent producer under
    /// at-least-once, a transactional one (`transactional.id =
    /// <application.id>-<process id>-<thread index>`) under exactly-once.
    producer: Arc<dyn StreamProducer>,
    /// Appends the output on a thread of its own.
    sender: Sender,
    /// Where the output goes, for the sender.
    routing: Arc<Routing>,
    /// Under exactly-once: the producer's transactional id.
    transactional_id: Option<String>,
    /// Whether a transaction is open (exactly-once).
    in_txn: bool,
    /// A transaction failed inside the rebalance listener and the tasks were
    /// closed dirty: the loop gives the thread a new producer.
    reinit_producer: bool,
    /// Partitions assigned under exactly-once whose committed offsets are to
    /// be read again once no transaction holds pending offsets of the
    /// group.
    unstable: Vec<TopicPartition>,
    /// Since when restoration waits for the changelogs' open transactions
    /// to end.
    restore_blocked_since: Option<Instant>,
    pub(crate) tasks: BTreeMap<TaskId, TaskEntry>,
    /// An error raised inside the rebalance listener, for the loop to act on.
    fatal: Option<StreamsError>,
    /// Between a revocation (or the start) and the next assignment.
    awaiting_assignment: bool,
    /// Counts [`Core::close_all_dirty`] calls, for the app.
    dirty_closes: Arc<AtomicU64>,
}

impl Core {
    fn new(
        index: usize,
        plan: Arc<Plan>,
        clients: Arc<dyn ClientSupplier>,
        dirty_closes: Arc<AtomicU64>,
    ) -> Result<Self> {
        let transactional_id = plan
            .process_id
            .as_ref()
            // The thread index as in the thread's name
            // (`<application.id>-StreamThread-<n>`), from 1.
            .map(|process| format!("{}-{process}-{}", plan.config.application_id(), index + 1));
        let producer = make_producer(&*clients, transactional_id.as_deref(), &plan, index)?;
        let sender = Sender::start(format!(
            "{}-StreamThread-{}-producer",
            plan.config.application_id(),
            index + 1
        ))?;
        let routing = plan.routing.clone();
        Ok(Self {
            index,
            plan,
            clients,
            producer,
            sender,
            routing,
            transactional_id,
            in_txn: false,
            reinit_producer: false,
            unstable: Vec::new(),
            restore_blocked_since: None,
            tasks: BTreeMap::new(),
            fatal: None,
            awaiting_assignment: true,
            dirty_closes,
        })
    }

    fn eos(&self) -> bool {
        self.transactional_id.is_some()
    }

    fn new_producer(&self) -> Result<Arc<dyn StreamProducer>> {
        make_producer(
            &*self.clients,
            self.transactional_id.as_deref(),
            &self.plan,
            self.index,
        )
    }

    /// Opens a transaction unless one is open (exactly-once only).
    fn begin_if_needed(&mut self) -> Result<()> {
        if self.eos() && !self.in_txn {
            self.producer.begin_transaction()?;
            self.in_txn = true;
        }
        Ok(())
    }

    /// Aborts the open transaction, if any; a failure (a fenced producer)
    /// is only logged: the broker aborts the transaction anyway.
    fn abort_if_open(&mut self) {
        self.sender.discard_all();
        if !self.in_txn {
            return;
        }
        self.in_txn = false;
        match now(self.producer.abort_transaction()) {
            Ok(Ok(())) => tracing::info!(thread = self.index, "aborted the open transaction"),
            Ok(Err(e)) => {
                tracing::warn!(thread = self.index, error = %e, "cannot abort the open transaction; the broker aborts it")
            }
            Err(e) => {
                tracing::warn!(thread = self.index, error = %e, "cannot abort the open transaction")
            }
        }
    }

    /// Closes task `id` without committing. Under exactly-once its local
    /// stores may hold writes of the aborted transaction: persistent ones
    /// are wiped and the checkpoint deleted, so that the next owner
    /// restores them from the changelog.
    fn close_dirty(&mut self, id: TaskId) {
        let Some(entry) = self.tasks.remove(&id) else {
            return;
        };
        let dir = entry.dir.clone();
        drop(entry);
        if !self.eos() {
            return;
        }
        if let Err(e) = remove_checkpoint(&dir) {
            tracing::warn!(task = %id, error = %e, "cannot delete the checkpoint of a dirty task");
        }
        let Some(sub) = self.plan.subs.iter().find(|s| s.id == id.subtopology) else {
            return;
        };
        for &store in &sub.stores {
            let builder = self.plan.topology.store_builder(store);
            if builder.backend().is_persistent() && dir.join(builder.name()).exists() {
                if let Err(e) = state_store::wipe(&dir, builder.name()) {
                    tracing::warn!(task = %id, store = builder.name(), error = %e, "cannot wipe a dirty store; it is wiped when next opened without a checkpoint");
                }
            }
        }
    }

    /// After a failed transaction: aborts it if possible and closes every
    /// task dirty (the transaction held the uncommitted work of all of
    /// them).
    fn close_all_dirty(&mut self) {
        self.dirty_closes.fetch_add(1, Ordering::Relaxed);
        self.abort_if_open();
        for id in self.task_ids() {
            tracing::warn!(thread = self.index, task = %id, "closing task dirty; its next owner resumes from the last committed transaction");
            self.close_dirty(id);
        }
    }

    /// Creates the tasks of newly assigned partitions; their stores are
    /// restored by the loop before they process anything.
    fn create_tasks(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        let mut wanted: BTreeMap<TaskId, Vec<TopicPartition>> = BTreeMap::new();
        for tp in partitions {
            if let Some((sub, _)) = self.plan.source_of.get(&tp.topic) {
                wanted
                    .entry(TaskId {
                        subtopology: *sub,
                        partition: tp.partition,
                    })
                    .or_default()
                    .push(tp.clone());
            }
        }
        for (id, tps) in wanted {
            if let Some(entry) = self.tasks.get_mut(&id) {
                for tp in tps {
                    entry.buffers.entry(tp).or_default();
                }
                continue;
            }
            let entry = self.create_task(id, tps)?;
            self.tasks.insert(id, entry);
        }
        Ok(())
    }

    /// Resumes the partition times of the tasks reading `committed`'s
    /// partitions from the committed offsets' metadata.
    fn resume_partition_times(&mut self, committed: &Offsets) {
        let plan = self.plan.clone();
        for (tp, offset) in committed {
            let Some((sub, logical)) = plan.source_of.get(&tp.topic) else {
                continue;
            };
            let Some(time) = decode_partition_time(tp, &offset.metadata) else {
                continue;
            };
            let id = TaskId {
                subtopology: *sub,
                partition: tp.partition,
            };
            if let Some(entry) = self.tasks.get_mut(&id) {
                entry.task.resume_partition_time(logical, time);
            }
        }
    }

    fn create_task(&self, id: TaskId, tps: Vec<TopicPartition>) -> Result<TaskEntry> {
        let plan = &*self.plan;
        let Some(sub) = plan.subs.iter().find(|s| s.id == id.subtopology) else {
            return Err(StreamsError::Internal(format!(
                "no sub-topology {}",
                id.subtopology
            )));
        };
        let dir = plan.app_dir.join(id.to_string());
        let checkpoint_path = dir.join(CHECKPOINT_FILE);
        let checkpoint = match Checkpoint::read(&checkpoint_path) {
            Ok(c) => c.unwrap_or_default(),
            Err(e) => {
                tracing::warn!(task = %id, error = %e, "ignoring unreadable checkpoint; restoring from the start");
                Checkpoint::new()
            }
        };
        if self.eos() {
            // Under exactly-once the stores take uncommitted writes from
            // now on: no checkpoint may vouch for them until a clean close
            // writes one after a committed transaction. After a crash the
            // stores are found without a checkpoint and wiped.
            remove_checkpoint(&dir)?;
        }
        // A persistent store without a checkpoint entry holds data of an
        // unknown offset: wipe it and restore it from the start.
        for &store in &sub.stores {
            let builder = plan.topology.store_builder(store);
            let changelog =
                crate::store::changelog_topic(plan.config.application_id(), builder.name());
            if builder.logging_enabled()
                && builder.backend().is_persistent()
                && checkpoint.get(&changelog, id.partition).is_none()
                && dir.join(builder.name()).exists()
            {
                tracing::info!(task = %id, store = builder.name(), "wiping local store without a checkpoint");
                state_store::wipe(&dir, builder.name())?;
            }
        }
        let options = TaskOptions {
            application_id: plan.config.application_id(),
            partition: id.partition,
            backend: None,
            state_dir: &plan.app_dir,
            cache_bytes_per_store: plan.cache_bytes_per_store,
            handler: plan.config.deserialization_handler(),
            dead_letter_topic: plan.config.dead_letter_topic(),
            wall_clock: wall_clock_ms(),
            timestamp_extractor: plan.config.default_timestamp_extractor(),
        };
        let mut task = guarded(id, || Task::new(&plan.topology, sub, &options))?;
        let mut restoring = Vec::new();
        for (index, slot) in task.stores_mut().iter_mut().enumerate() {
            if slot.changelog.is_none() {
                continue;
            }
            let topic = slot.changelog_topic.to_string();
            let start = restore_start(id, slot, checkpoint.get(&topic, id.partition));
            restoring.push(Restoring {
                store: index,
                changelog: TopicPartition::new(topic, id.partition),
                start,
            });
        }
        tracing::info!(thread = self.index, task = %id, partitions = tps.len(), stores = restoring.len(), "created task");
        Ok(TaskEntry {
            task,
            dir,
            buffers: tps
                .into_iter()
                .map(|tp| (tp, RecordQueue::default()))
                .collect(),
            consumed: FxHashMap::default(),
            changelog_offsets: BTreeMap::new(),
            checkpointed: None,
            synced: None,
            restoring: Some(restoring),
            idle_wait_since: None,
            last_record: None,
        })
    }

    /// Hands polled records to their tasks' buffers. Returns, per partition,
    /// the first offset of records that no task of this thread owns yet:
    /// the consumer must read them again, or a later commit of the same
    /// partition would skip them.
    fn buffer(&mut self, runs: Vec<PolledRun>) -> HashMap<TopicPartition, u64> {
        let mut unowned: HashMap<TopicPartition, u64> = HashMap::new();
        for run in runs {
            let Some((sub, _)) = self.plan.source_of.get(&*run.topic) else {
                continue;
            };
            let id = TaskId {
                subtopology: *sub,
                partition: run.partition,
            };
            let tp = TopicPartition::new(run.topic.to_string(), run.partition);
            match self.tasks.get_mut(&id) {
                Some(entry) => entry
                    .buffers
                    .entry(tp)
                    .or_default()
                    .push(run.records.into_iter()),
                None => {
                    // A run's records are in offset order: its first is its lowest.
                    if let Some(lowest) = run.records.first().map(|r| r.offset) {
                        let first = unowned.entry(tp).or_insert(lowest);
                        *first = (*first).min(lowest);
                    }
                }
            }
        }
        unowned
    }

    /// Processes every buffered record of the running tasks, lowest
    /// timestamp first within a task.
    ///
    /// With `max.task.idle.ms > 0`, a task that has data on some input
    /// partitions and none on others waits up to that long for the empty
    /// ones before it processes the others (Kafka's enforced processing).
    fn process(&mut self) -> Result<usize> {
        let mut processed = 0;
        let plan = self.plan.clone();
        let max_idle = u64::try_from(plan.config.max_task_idle_ms())
            .ok()
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis);
        for (id, entry) in self.tasks.iter_mut() {
            if !entry.running() {
                continue;
            }
            let before = processed;
            let TaskEntry {
                task,
                buffers,
                consumed,
                idle_wait_since,
                last_record,
                ..
            } = entry;
            loop {
                if let (Some(limit), true) = (max_idle, buffers.len() > 1) {
                    let empty = buffers.values().any(RecordQueue::is_empty);
                    let any = buffers.values().any(|b| !b.is_empty());
                    if empty && any {
                        let since = *idle_wait_since.get_or_insert_with(Instant::now);
                        if since.elapsed() < limit {
                            break;
                        }
                        tracing::trace!(task = %id, "max.task.idle.ms passed; processing with empty input partitions");
                    } else if !empty {
                        *idle_wait_since = None;
                    }
                }
                // The partition whose next record has the lowest timestamp,
                // and how far it may run before another partition's next
                // record comes first (ties go to the first partition). The
                // other buffers do not change during the run, and an empty
                // one stops nothing: the idle check above has let it be.
                let mut next: Option<(i64, &TopicPartition)> = None;
                for (tp, buffer) in buffers.iter() {
                    if let Some(r) = buffer.front() {
                        if next.is_none_or(|(ts, _)| r.timestamp < ts) {
                            next = Some((r.timestamp, tp));
                        }
                    }
                }
                let Some((_, tp)) = next else {
                    break;
                };
                let tp = tp.clone();
                let bound = buffers
                    .iter()
                    .filter(|(other, _)| **other != tp)
                    .filter_map(|(_, b)| b.front().map(|r| r.timestamp))
                    .min();
                let Some(buffer) = buffers.get_mut(&tp) else {
                    break;
                };
                let Some(slot) = plan
                    .source_of
                    .get(&tp.topic)
                    .and_then(|(_, logical)| task.source_slot(logical))
                else {
                    buffer.clear();
                    continue;
                };
                let mut last = None;
                let result = (|| -> Result<()> {
                    while let Some(record) = buffer.front() {
                        if bound.is_some_and(|b| record.timestamp > b) {
                            break;
                        }
                        let Some(record) = buffer.pop_front() else {
                            break;
                        };
                        let offset = record.offset;
                        let raw = RawRecord {
                            key: record.key,
                            value: record.value,
                            timestamp: record.timestamp,
                            headers: record.headers,
                        };
                        guarded(*id, || {
                            task.process_slot(slot, tp.partition, offset, raw)?;
                            task.maybe_punctuate_stream_time().map(|_| ())
                        })?;
                        last = Some(offset);
                        processed += 1;
                    }
                    Ok(())
                })();
                if let Some(offset) = last {
                    consumed.insert(tp, offset + 1);
                }
                result?;
            }
            if processed > before {
                *last_record = task.stream_time().map(|t| (Instant::now(), t));
            }
        }
        Ok(processed)
    }

    /// Runs the wall-clock punctuators that are due, then, with
    /// `task.idle.wall.clock.advance.ms`, moves the stream time of tasks
    /// whose inputs have all been empty that long: to their stream time at
    /// their last record plus the wall-clock time since.
    fn punctuate_wall_clock(&mut self) -> Result<()> {
        let now = wall_clock_ms();
        let idle_advance = self
            .plan
            .config
            .task_idle_wall_clock_advance_ms()
            .map(Duration::from_millis);
        for (id, entry) in self.tasks.iter_mut() {
            if entry.running() {
                let task = &mut entry.task;
                guarded(*id, || task.punctuate_wall_clock(now).map(|_| ()))?;
                let Some(after) = idle_advance else {
                    continue;
                };
                let Some((at, base)) = entry.last_record else {
                    continue;
                };
                let idle = at.elapsed();
                if idle >= after && entry.buffers.values().all(RecordQueue::is_empty) {
                    let target =
                        base.saturating_add(i64::try_from(idle.as_millis()).unwrap_or(i64::MAX));
                    guarded(*id, || task.advance_stream_time_idle(target).map(|_| ()))?;
                }
            }
        }
        Ok(())
    }

    fn commit_requested(&self) -> bool {
        self.tasks.values().any(|e| e.task.commit_requested())
    }

    /// Takes the output of every task (sinks, changelogs, dead letters).
    fn take_outputs(&mut self) -> Outgoing {
        self.tasks
            .iter_mut()
            .filter_map(|(id, entry)| {
                let output = entry.task.take_output();
                (!output.is_empty()).then_some((*id, output))
            })
            .collect()
    }

    /// Notes the changelog offsets that sent records reached.
    fn record_sent(&mut self, sent: Sent) {
        for (id, reached) in sent {
            let Some(entry) = self.tasks.get_mut(&id) else {
                continue;
            };
            for (tp, next) in reached {
                let offset = entry.changelog_offsets.entry(tp).or_insert(next);
                *offset = (*offset).max(next);
            }
        }
    }

    /// Hands `outgoing` to the sender thread and notes what has been sent
    /// meanwhile; with `wait`, waits until everything handed over is sent.
    fn dispatch(&mut self, outgoing: Outgoing, wait: bool) -> Result<()> {
        let settled = self
            .sender
            .dispatch(&self.producer, &self.routing, outgoing);
        // What settled is noted even when a later batch failed.
        let settled = settled.and_then(|mut sent| {
            let more = if wait {
                self.sender.settle_all()
            } else {
                self.sender.settle_ready()
            };
            more.map(|more| {
                sent.extend(more);
                sent
            })
        })?;
        self.record_sent(settled);
        Ok(())
    }

    /// Sends `outgoing` and waits until it and everything handed over
    /// before is sent.
    fn send_and_settle(&mut self, outgoing: Outgoing) -> Result<()> {
        self.dispatch(outgoing, true)
    }

    /// Flushes the caches of the tasks `ids` (closing the tasks if
    /// `close`), which moves their pending updates to the output.
    fn flush_tasks(&mut self, ids: &[TaskId], close: bool) -> Result<()> {
        for id in ids {
            if let Some(entry) = self.tasks.get_mut(id) {
                let running = entry.running();
                let task = &mut entry.task;
                if !running {
                    // A task still to be restored has nothing to commit;
                    // closed, its stores are closed cleanly.
                    if close {
                        guarded(*id, || task.close_stores())?;
                    }
                    continue;
                }
                if close {
                    guarded(*id, || task.close())?;
                } else {
                    guarded(*id, || task.commit())?;
                }
            }
        }
        Ok(())
    }

    /// The input offsets to commit for the tasks `ids`, and the changelog
    /// topics they write.
    fn offsets(&self, ids: &[TaskId]) -> (Offsets, Vec<String>) {
        let mut topics: Vec<String> = Vec::new();
        let mut offsets = HashMap::new();
        for id in ids {
            if let Some(entry) = self.tasks.get(id) {
                for (tp, offset) in &entry.consumed {
                    let time = self
                        .plan
                        .source_of
                        .get(&tp.topic)
                        .and_then(|(_, logical)| entry.task.partition_time(logical));
                    let metadata = time.map(encode_partition_time).unwrap_or_default();
                    offsets.insert(
                        tp.clone(),
                        OffsetAndMetadata {
                            offset: *offset,
                            metadata,
                        },
                    );
                }
                topics.extend(entry.changelog_offsets.keys().map(|tp| tp.topic.clone()));
            }
        }
        topics.sort();
        topics.dedup();
        (offsets, topics)
    }

    /// The last step of a commit: writes the checkpoint of each task.
    ///
    /// `force` (a clean close) writes one for every task, including one
    /// still to be restored: its stores hold what they held when opened,
    /// the state at each store's restoration start (or, had restoration
    /// begun, a little more of the changelog, which a restoration from
    /// there replays again), and took no uncommitted writes. Without it
    /// the next owner would find the stores without a checkpoint and wipe
    /// them (stores that the first start of an app created empty moments
    /// before, when a second stream thread joins).
    fn write_checkpoints(&mut self, ids: &[TaskId], force: bool) -> Result<()> {
        for id in ids {
            let Some(entry) = self.tasks.get_mut(id) else {
                continue;
            };
            if let Some(restoring) = &entry.restoring {
                if force {
                    let mut checkpoint = Checkpoint::new();
                    for store in restoring {
                        checkpoint.set(
                            store.changelog.topic.clone(),
                            store.changelog.partition,
                            store.start,
                        )?;
                    }
                    write_checkpoint(&entry.dir, &checkpoint)?;
                }
                continue;
            }
            if !force {
                if !checkpoint_due(entry.checkpointed.as_ref(), &entry.changelog_offsets) {
                    continue;
                }
                // A commit hands the stores' writes to their backends
                // without an fsync; the checkpoint may vouch only for
                // durable ones. (A forced checkpoint follows a close, which
                // made them durable.)
                entry.sync_stores(*id)?;
            }
            let mut checkpoint = Checkpoint::new();
            for (tp, offset) in &entry.changelog_offsets {
                checkpoint.set(tp.topic.clone(), tp.partition, *offset)?;
            }
            write_checkpoint(&entry.dir, &checkpoint)?;
            entry.checkpointed = Some(entry.changelog_offsets.clone());
        }
        Ok(())
    }

    /// Under exactly-once, where no checkpoint is written while running:
    /// makes the stores of each of `ids` durable once their changelogs
    /// moved by more than [`CHECKPOINT_DELTA_RECORDS`] since the last time.
    /// Otherwise a redb store would persist nothing between a start and a
    /// close: redb keeps the record of the pages that unsynced commits free
    /// in memory and reuses those pages only after a durable commit.
    fn sync_due_stores(&mut self, ids: &[TaskId]) -> Result<()> {
        for id in ids {
            let Some(entry) = self.tasks.get_mut(id) else {
                continue;
            };
            if !entry.running() || !checkpoint_due(entry.synced.as_ref(), &entry.changelog_offsets)
            {
                continue;
            }
            entry.sync_stores(*id)?;
        }
        Ok(())
    }

    fn task_ids(&self) -> Vec<TaskId> {
        self.tasks.keys().copied().collect()
    }

    /// The tasks reading any of `partitions`.
    fn tasks_of(&self, partitions: &[TopicPartition]) -> Vec<TaskId> {
        self.tasks
            .iter()
            .filter(|(_, e)| partitions.iter().any(|tp| e.buffers.contains_key(tp)))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Under exactly-once, commits the open transaction (with the offsets
    /// of every task: the transaction holds the output of all of them), then
    /// closes the tasks of revoked partitions and writes their checkpoints.
    /// A failed transaction closes every task dirty instead.
    fn revoke_eos(
        &mut self,
        partitions: &[TopicPartition],
        group: Option<GroupMetadata>,
    ) -> Result<()> {
        let revoked = self.tasks_of(partitions);
        if revoked.is_empty() && !self.in_txn {
            return Ok(());
        }
        let kept: Vec<TaskId> = self
            .task_ids()
            .into_iter()
            .filter(|id| !revoked.contains(id))
            .collect();
        let result = (|| -> Result<()> {
            self.flush_tasks(&revoked, true)?;
            self.flush_tasks(&kept, false)?;
            let outgoing = self.take_outputs();
            if !outgoing.is_empty() {
                self.begin_if_needed()?;
            }
            self.send_and_settle(outgoing)?;
            let (offsets, _) = self.offsets(&self.task_ids());
            if !offsets.is_empty() {
                self.begin_if_needed()?;
            }
            if self.in_txn {
                if !offsets.is_empty() {
                    let Some(group) = &group else {
                        return Err(StreamsError::Internal(
                            "the consumer has no group metadata".to_owned(),
                        ));
                    };
                    now(self.producer.send_offsets_to_transaction(&offsets, group))??;
                }
                now(self.producer.commit_transaction())??;
                self.in_txn = false;
            }
            Ok(())
        })();
        match result {
            Ok(()) => {
                self.write_checkpoints(&revoked, true)?;
                for id in &revoked {
                    self.tasks.remove(id);
                }
                tracing::info!(
                    thread = self.index,
                    tasks = revoked.len(),
                    "committed and closed tasks of revoked partitions"
                );
                Ok(())
            }
            Err(e) if task_migrated(&e) => {
                tracing::warn!(thread = self.index, error = %e, "the transaction of the revocation failed; closing every task dirty");
                self.close_all_dirty();
                self.reinit_producer = true;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Commits and closes the tasks of revoked partitions.
    fn revoke(
        &mut self,
        partitions: &[TopicPartition],
        commit: impl FnOnce(Offsets) -> Result<()>,
    ) -> Result<()> {
        let ids = self.tasks_of(partitions);
        if ids.is_empty() {
            return Ok(());
        }
        self.flush_tasks(&ids, true)?;
        let outgoing = self.take_outputs();
        self.send_and_settle(outgoing)?;
        let (offsets, topics) = self.offsets(&ids);
        now(self.producer.flush(&topics))??;
        if !offsets.is_empty() {
            match commit(offsets) {
                Ok(()) => {}
                // The group moved on (a new generation): the next owner
                // redoes the work since the last commit, as at-least-once
                // allows.
                Err(e)
                    if e.client_error_kind()
                        .is_some_and(|k| k != ClientErrorKind::Fatal) =>
                {
                    tracing::warn!(thread = self.index, error = %e, "offset commit of revoked tasks refused");
                }
                Err(e) => return Err(e),
            }
        }
        self.write_checkpoints(&ids, true)?;
        for id in &ids {
            self.tasks.remove(id);
        }
        tracing::info!(
            thread = self.index,
            tasks = ids.len(),
            "closed tasks of revoked partitions"
        );
        Ok(())
    }
}

/// Writes `checkpoint` as the checkpoint file of task directory `dir`.
fn write_checkpoint(dir: &std::path::Path, checkpoint: &Checkpoint) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|source| {
        StreamsError::Store(state_store::StoreError::CheckpointIo {
            path: dir.to_path_buf(),
            source,
        })
    })?;
    checkpoint.write(&dir.join(CHECKPOINT_FILE))?;
    Ok(())
}

/// Deletes the checkpoint file of task directory `dir`, if there is one.
fn remove_checkpoint(dir: &std::path::Path) -> Result<()> {
    let path = dir.join(CHECKPOINT_FILE);
    let io = |source| {
        StreamsError::Store(state_store::StoreError::CheckpointIo {
            path: path.clone(),
            source,
        })
    };
    match std::fs::remove_file(&path) {
        // Make the removal durable before the stores take uncommitted
        // writes: a checkpoint that comes back after a power loss would
        // vouch for them.
        Ok(()) => std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(io(source)),
    }
}

fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The consumer's rebalance callbacks: commit and close revoked tasks,
/// create assigned ones.
struct Listener {
    core: Arc<Mutex<Core>>,
    shared: Arc<Shared>,
    index: usize,
}

impl RebalanceListener for Listener {
    fn on_partitions_revoked(
        &mut self,
        partitions: &[TopicPartition],
        consumer: &mut dyn RebalanceConsumer,
    ) {
        self.shared.set_thread_rebalancing(self.index, true);
        let mut core = lock(&self.core);
        core.awaiting_assignment = true;
        if core.fatal.is_some() {
            return;
        }
        let result = if core.eos() {
            core.revoke_eos(partitions, consumer.group_metadata())
        } else {
            core.revoke(partitions, |offsets| consumer.commit_sync(offsets))
        };
        if let Err(e) = result {
            core.fatal = Some(e);
        }
    }

    fn on_partitions_assigned(
        &mut self,
        partitions: &[TopicPartition],
        consumer: &mut dyn RebalanceConsumer,
    ) {
        self.shared.set_thread_rebalancing(self.index, true);
        // Resume from the committed offsets: records fetched but not
        // processed before a revocation are read again.
        let committed = match consumer.committed(partitions) {
            Ok(committed) => committed,
            Err(e) => {
                let mut core = lock(&self.core);
                core.awaiting_assignment = false;
                core.fatal.get_or_insert(e);
                return;
            }
        };
        for tp in partitions {
            let offset = committed.get(tp).map_or(0, |o| o.offset);
            if let Err(e) = consumer.seek(tp, offset) {
                tracing::warn!(partition = %tp, error = %e, "cannot seek to the committed offset");
            }
        }
        let mut core = lock(&self.core);
        core.awaiting_assignment = false;
        if core.fatal.is_some() {
            return;
        }
        if core.eos() {
            // A zombie may hold pending offsets of these partitions in an
            // open transaction: the loop reads the committed offsets again
            // once the group's offsets are stable.
            core.unstable.extend(partitions.iter().cloned());
            core.restore_blocked_since = None;
        }
        if let Err(e) = core.create_tasks(partitions) {
            core.fatal = Some(e);
            return;
        }
        core.resume_partition_times(&committed);
    }

    fn on_partitions_lost(
        &mut self,
        partitions: &[TopicPartition],
        _consumer: &mut dyn RebalanceConsumer,
    ) {
        self.shared.set_thread_rebalancing(self.index, true);
        let mut core = lock(&self.core);
        core.awaiting_assignment = true;
        if core.eos() {
            // The open transaction holds the work of every task: abort it
            // and close them all dirty.
            tracing::warn!(
                thread = self.index,
                "partitions lost; aborting any open transaction and closing every task dirty"
            );
            core.close_all_dirty();
            core.reinit_producer = true;
            return;
        }
        let ids = core.tasks_of(partitions);
        for id in ids {
            tracing::warn!(task = %id, "task lost without a commit; its uncommitted work is redone by its next owner");
            core.tasks.remove(&id);
        }
    }
}

/// A handle on a running stream thread.
#[derive(Debug)]
pub(crate) struct ThreadHandle {
    pub(crate) core: Arc<Mutex<Core>>,
    pub(crate) join: Option<std::thread::JoinHandle<()>>,
    pub(crate) done: Option<tokio::sync::oneshot::Receiver<()>>,
}

/// Starts stream thread `index`.
pub(crate) fn spawn(
    index: usize,
    plan: Arc<Plan>,
    clients: Arc<dyn ClientSupplier>,
    shared: Arc<Shared>,
) -> Result<ThreadHandle> {
    let core = Arc::new(Mutex::new(Core::new(
        index,
        plan.clone(),
        clients.clone(),
        shared.dirty_closes.clone(),
    )?));
    let (tx, rx) = tokio::sync::oneshot::channel();
    let thread_core = core.clone();
    let name = format!(
        "{}-StreamThread-{}",
        plan.config.application_id(),
        index + 1
    );
    let join = std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            let result = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .map_err(|e| {
                    StreamsError::Internal(format!("cannot build the thread runtime: {e}"))
                })
                .and_then(|rt| rt.block_on(run(index, plan, clients, shared.clone(), thread_core)));
            if let Err(e) = result {
                tracing::error!(thread = index, error = %e, "stream thread failed");
                shared.fail(e);
            }
            shared.set_thread_rebalancing(index, false);
            if tx.send(()).is_err() {
                tracing::debug!(thread = index, "the app stopped waiting for this thread");
            }
        })
        .map_err(|e| StreamsError::Internal(format!("cannot start a stream thread: {e}")))?;
    Ok(ThreadHandle {
        core,
        join: Some(join),
        done: Some(rx),
    })
}

fn consumer_settings(plan: &Plan, index: usize, group: bool) -> ConsumerSettings {
    let eos = plan.process_id.is_some();
    ConsumerSettings {
        client_id: format!(
            "{}-StreamThread-{}-{}",
            plan.config.application_id(),
            index + 1,
            if group {
                "consumer"
            } else {
                "restore-consumer"
            }
        ),
        group_id: group.then(|| plan.config.application_id().to_owned()),
        session_timeout_ms: plan.clients.session_timeout_ms,
        heartbeat_interval_ms: plan.clients.heartbeat_interval_ms,
        max_poll_records: if group {
            usize::try_from(plan.clients.max_poll_records).unwrap_or(usize::MAX)
        } else {
            5_000
        },
        isolation: if eos {
            Isolation::ReadCommitted
        } else {
            Isolation::ReadUncommitted
        },
        // The stream thread's consumer decodes its next fetches on a thread of its own
        // while the thread processes; the restore consumer reads in bulk as it goes.
        background_fetch: group,
    }
}

/// Gives the thread a new transactional producer: `init_transactions`
/// fences the old one and aborts whatever transaction it left open.
async fn reinit_producer(core: &Arc<Mutex<Core>>) -> Result<()> {
    let producer = {
        let mut core = lock(core);
        core.reinit_producer = false;
        core.in_txn = false;
        core.new_producer()?
    };
    producer.init_transactions().await?;
    lock(core).producer = producer;
    Ok(())
}

/// After a failed transaction in the loop: closes every task dirty, takes
/// a new producer, and rejoins the group, which assigns the tasks again
/// from the committed offsets.
async fn recover_from_failed_transaction(
    error: &StreamsError,
    core: &Arc<Mutex<Core>>,
    consumer: &mut Box<dyn MainConsumer>,
    listener: impl FnOnce() -> Listener,
) -> Result<()> {
    let (index, topics) = {
        let mut core = lock(core);
        tracing::warn!(thread = core.index, error = %error, "transaction failed; closing every task dirty and rejoining the group");
        core.close_all_dirty();
        (core.index, core.plan.subscription())
    };
    reinit_producer(core).await?;
    consumer.unsubscribe().await?;
    consumer.subscribe(topics, Box::new(listener())).await?;
    tracing::info!(
        thread = index,
        "rejoining the group after a failed transaction"
    );
    Ok(())
}

/// Under exactly-once, after an assignment: once no transaction holds
/// pending offsets of the group (a zombie's transaction commits or is
/// aborted), reads the committed offsets of the newly assigned partitions
/// again and seeks to them. Returns whether the partitions are settled.
async fn settle_assigned(
    core: &Arc<Mutex<Core>>,
    consumer: &mut Box<dyn MainConsumer>,
) -> Result<bool> {
    let unstable = std::mem::take(&mut lock(core).unstable);
    if unstable.is_empty() {
        return Ok(true);
    }
    if !consumer.group_offsets_stable().await? {
        lock(core).unstable.extend(unstable);
        return Ok(false);
    }
    let assigned = consumer.assignment();
    let unstable: Vec<TopicPartition> = unstable
        .into_iter()
        .filter(|tp| assigned.contains(tp))
        .collect();
    let committed = consumer.committed(&unstable).await?;
    let mut core = lock(core);
    core.resume_partition_times(&committed);
    for tp in &unstable {
        let offset = committed.get(tp).map_or(0, |o| o.offset);
        if let Err(e) = consumer.seek(tp, offset) {
            tracing::warn!(partition = %tp, error = %e, "cannot seek to the committed offset");
            continue;
        }
        for entry in core.tasks.values_mut() {
            if entry.running() {
                continue;
            }
            if let Some(buffer) = entry.buffers.get_mut(tp) {
                buffer.clear();
            }
        }
    }
    Ok(true)
}

/// Deletes the records of repartition topics that a commit consumed, as
/// Kafka Streams does: at most every `repartition.purge.interval.ms`, up
/// to the offsets committed last.
struct Purger {
    interval: Duration,
    last: Instant,
    pending: HashMap<TopicPartition, u64>,
}

impl Purger {
    fn new(interval: Duration) -> Self {
        Self {
            interval,
            last: Instant::now(),
            pending: HashMap::new(),
        }
    }

    /// Notes the repartition offsets of a commit that succeeded; purges
    /// when the interval has passed. A failed purge is only logged: the
    /// records stay until the next one.
    async fn committed(&mut self, offsets: Vec<(TopicPartition, u64)>, admin: &dyn Admin) {
        for (tp, offset) in offsets {
            let entry = self.pending.entry(tp).or_insert(offset);
            *entry = (*entry).max(offset);
        }
        if self.pending.is_empty() || self.last.elapsed() < self.interval {
            return;
        }
        self.last = Instant::now();
        let purge: Vec<(TopicPartition, u64)> = self.pending.drain().collect();
        match admin.delete_records(&purge).await {
            Ok(()) => tracing::debug!(
                partitions = purge.len(),
                "purged committed records of repartition topics"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "cannot purge committed records of repartition topics")
            }
        }
    }
}

/// The commit of a transaction: the consumed offsets go into it with the
/// consumer's group metadata, then it commits.
async fn commit_transaction(
    producer: &dyn StreamProducer,
    consumer: &dyn MainConsumer,
    offsets: &Offsets,
    shared: &Shared,
) -> Result<()> {
    if !offsets.is_empty() {
        let Some(group) = consumer.group_metadata() else {
            return Err(StreamsError::Internal(
                "the main consumer has no group metadata".to_owned(),
            ));
        };
        producer
            .send_offsets_to_transaction(offsets, &group)
            .await?;
        shared.wait_while_paused(PausePoint::InsideCommit);
    }
    producer.commit_transaction().await?;
    Ok(())
}

async fn run(
    index: usize,
    plan: Arc<Plan>,
    clients: Arc<dyn ClientSupplier>,
    shared: Arc<Shared>,
    core: Arc<Mutex<Core>>,
) -> Result<()> {
    let eos = plan.process_id.is_some();
    let mut consumer = clients.main_consumer(consumer_settings(&plan, index, true))?;
    let listener = || Listener {
        core: core.clone(),
        shared: shared.clone(),
        index,
    };
    if eos {
        // Fences the previous incarnation of this thread and aborts the
        // transaction it left open.
        reinit_producer(&core).await?;
    }
    consumer
        .subscribe(plan.subscription(), Box::new(listener()))
        .await?;
    let interval = Duration::from_millis(plan.config.commit_interval_ms());
    let mut last_commit = Instant::now();
    let admin = clients.admin()?;
    let mut purger = Purger::new(Duration::from_millis(
        plan.clients.repartition_purge_interval_ms,
    ));
    let result: Result<()> = async {
        while !shared.shutting_down() {
            let runs = consumer
                .poll(poll_timeout(interval, last_commit.elapsed()))
                .await?;
            let (restore, reinit, unowned) = {
                let mut core = lock(&core);
                if let Some(e) = core.fatal.take() {
                    return Err(e);
                }
                let unowned = core.buffer(runs);
                (
                    core.tasks.values().any(|e| !e.running()),
                    core.reinit_producer,
                    unowned,
                )
            };
            // Records of a partition whose task does not exist (yet) are read
            // again from the first of them once it does.
            if !unowned.is_empty() {
                let assigned = consumer.assignment();
                for (tp, offset) in unowned {
                    if assigned.contains(&tp) {
                        tracing::debug!(thread = index, partition = %tp, offset, "records of a task not created yet are read again");
                        consumer.seek(&tp, offset)?;
                    }
                }
            }
            if reinit {
                reinit_producer(&core).await?;
            }
            if restore
                && (!eos || settle_assigned(&core, &mut consumer).await?)
            {
                restore_tasks(&core, &*clients, index, &shared).await?;
            }
            let (outgoing, commit, producer) = {
                let mut core = lock(&core);
                let rebalancing =
                    core.awaiting_assignment || !core.tasks.values().all(TaskEntry::running);
                shared.set_thread_rebalancing(index, rebalancing);
                core.process()?;
                core.punctuate_wall_clock()?;
                let commit = (last_commit.elapsed() >= interval || core.commit_requested())
                    .then(|| core.task_ids());
                if let Some(ids) = &commit {
                    core.flush_tasks(ids, false)?;
                }
                let outgoing = core.take_outputs();
                // A transaction begins with the first output after a commit.
                let begun = if outgoing.is_empty() {
                    Ok(())
                } else {
                    core.begin_if_needed()
                };
                (begun.map(|()| outgoing), commit, core.producer.clone())
            };
            // Sent on the sender thread while the next records are
            // processed; a commit waits for everything handed over.
            let sent = outgoing.and_then(|outgoing| {
                lock(&core).dispatch(outgoing, commit.is_some())
            });
            match sent {
                Ok(()) => {}
                Err(e) if eos && task_migrated(&e) => {
                    recover_from_failed_transaction(&e, &core, &mut consumer, listener).await?;
                    continue;
                }
                Err(e) => return Err(e),
            }
            let offsets = {
                let core = lock(&core);
                commit.map(|ids| {
                    let (offsets, topics) = core.offsets(&ids);
                    (ids, offsets, topics)
                })
            };
            let Some((ids, offsets, topics)) = offsets else {
                continue;
            };
            let committed_repartition: Vec<(TopicPartition, u64)> = offsets
                .iter()
                .filter(|(tp, _)| plan.is_repartition_topic(&tp.topic))
                .map(|(tp, o)| (tp.clone(), o.offset))
                .collect();
            shared.wait_while_paused(PausePoint::BeforeCommit);
            if shared.killed() {
                break;
            }
            if eos {
                let open = {
                    let mut core = lock(&core);
                    if !offsets.is_empty() {
                        core.begin_if_needed().map(|()| true)
                    } else {
                        Ok(core.in_txn)
                    }
                };
                let committed = match open {
                    Ok(true) => {
                        commit_transaction(&*producer, &*consumer, &offsets, &shared).await
                    }
                    Ok(false) => Ok(()),
                    Err(e) => Err(e),
                };
                match committed {
                    Ok(()) => lock(&core).in_txn = false,
                    Err(e) if task_migrated(&e) => {
                        recover_from_failed_transaction(&e, &core, &mut consumer, listener)
                            .await?;
                        continue;
                    }
                    Err(e) => return Err(e),
                }
                // No checkpoint while running: the stores keep taking
                // uncommitted writes.
                lock(&core).sync_due_stores(&ids)?;
                last_commit = Instant::now();
                purger.committed(committed_repartition, &*admin).await;
                continue;
            }
            producer.flush(&topics).await?;
            if !offsets.is_empty() {
                if let Err(e) = consumer.commit_sync(offsets).await {
                    if !matches!(
                        e.client_error_kind(),
                        Some(ClientErrorKind::TaskMigrated | ClientErrorKind::Retriable)
                    ) {
                        return Err(e);
                    }
                    tracing::warn!(thread = index, error = %e, "offset commit refused; the next poll rejoins the group");
                    continue;
                }
            }
            lock(&core).write_checkpoints(&ids, false)?;
            last_commit = Instant::now();
            purger.committed(committed_repartition, &*admin).await;
        }
        Ok(())
    }
    .await;
    if shared.killed() {
        // As a crash: no commit, no close, no leave-group; the group
        // removes the members when their session times out, and the broker
        // aborts the open transaction when it times out.
        lock(&core).tasks.clear();
        consumer.abandon();
        tracing::warn!(thread = index, "stream thread killed");
        return result;
    }
    match result {
        Ok(()) => {
            // A clean shutdown: leaving the group revokes every partition,
            // and the listener commits and closes the tasks.
            consumer.close().await?;
            let mut core = lock(&core);
            if let Some(e) = core.fatal.take() {
                return Err(e);
            }
            tracing::info!(thread = index, "stream thread stopped");
            Ok(())
        }
        Err(e) => {
            // Nothing more is committed: the tasks are dropped and their
            // uncommitted work is redone from the last commit.
            let mut core = lock(&core);
            core.abort_if_open();
            core.tasks.clear();
            drop(core);
            drop(consumer);
            Err(e)
        }
    }
}

/// Restores the stores of the thread's new tasks from their changelogs,
/// then initializes the tasks.
async fn restore_tasks(
    core: &Arc<Mutex<Core>>,
    clients: &dyn ClientSupplier,
    index: usize,
    shared: &Shared,
) -> Result<()> {
    // (changelog partition) -> (task, store, end offset)
    let mut targets: HashMap<TopicPartition, (TaskId, usize, u64)> = HashMap::new();
    let mut starts = Vec::new();
    let (pending, plan): (Vec<(TaskId, Vec<Restoring>)>, Arc<Plan>) = {
        let core = lock(core);
        let pending = core
            .tasks
            .iter()
            .filter_map(|(id, e)| e.restoring.clone().map(|r| (*id, r)))
            .collect();
        (pending, core.plan.clone())
    };
    let eos = plan.process_id.is_some();
    let mut consumer = clients.restore_consumer(consumer_settings(&plan, index, false))?;
    let mut watermarks = HashMap::new();
    for (_, stores) in &pending {
        for Restoring { changelog: tp, .. } in stores {
            let marks = consumer.watermarks(tp).await?;
            watermarks.insert(tp.clone(), marks);
        }
    }
    if eos {
        // Under exactly-once, restoration reads committed data only, up to
        // the last stable offset. A transaction still open on a changelog
        // (of a zombie, or of an owner that crashed) would hide whatever
        // was committed after its start: wait for it to commit or to be
        // aborted, up to the transaction timeout and a little more.
        let mut open = None;
        for (_, stores) in &pending {
            for Restoring { changelog: tp, .. } in stores {
                if watermarks
                    .get(tp)
                    .is_some_and(|marks| marks.last_stable < marks.high)
                {
                    open = Some(tp.clone());
                }
            }
        }
        let limit =
            Duration::from_millis(plan.clients.transaction_timeout_ms) + Duration::from_secs(2);
        let mut core_guard = lock(core);
        match open {
            Some(tp) => {
                let since = *core_guard
                    .restore_blocked_since
                    .get_or_insert_with(Instant::now);
                if since.elapsed() < limit {
                    tracing::debug!(changelog = %tp, "waiting for an open transaction on a changelog to end before restoring");
                    return Ok(());
                }
                tracing::warn!(changelog = %tp, "a transaction on the changelog stayed open; restoring up to its start");
                core_guard.restore_blocked_since = None;
            }
            None => core_guard.restore_blocked_since = None,
        }
    }
    for (id, stores) in &pending {
        for Restoring {
            store,
            changelog: tp,
            start,
        } in stores
        {
            let Some(marks) = watermarks.get(tp) else {
                continue;
            };
            let end = if eos { marks.last_stable } else { marks.high };
            let start = (*start).max(marks.log_start);
            if start < end {
                targets.insert(tp.clone(), (*id, *store, end));
                starts.push((tp.clone(), start));
            } else {
                let mut core = lock(core);
                if let Some(entry) = core.tasks.get_mut(id) {
                    entry.changelog_offsets.insert(tp.clone(), end);
                }
            }
        }
    }
    let mut restored: HashMap<TopicPartition, u64> = HashMap::new();
    if !targets.is_empty() {
        consumer.assign(starts).await?;
        loop {
            let unfinished = targets
                .iter()
                .any(|(tp, (_, _, end))| consumer.position(tp).is_none_or(|p| p < *end));
            if !unfinished || shared.shutting_down() {
                break;
            }
            let runs = consumer.poll(POLL_TIMEOUT).await?;
            if runs.is_empty() {
                if consumer.empty_poll_is_end() {
                    // The changelogs are in-process: a poll that finds
                    // nothing means the rest was compacted away.
                    break;
                }
                continue;
            }
            let mut core = lock(core);
            let mut batches: HashMap<TopicPartition, Vec<(bytes::Bytes, Option<bytes::Bytes>)>> =
                HashMap::new();
            for run in runs {
                let tp = TopicPartition::new(run.topic.to_string(), run.partition);
                let Some((_, _, end)) = targets.get(&tp) else {
                    continue;
                };
                let end = *end;
                let batch = batches.entry(tp).or_default();
                for record in run.records {
                    if record.offset >= end {
                        continue;
                    }
                    if let Some(key) = record.key {
                        batch.push((key, record.value));
                    }
                }
            }
            for (tp, batch) in batches {
                let Some((id, store, _)) = targets.get(&tp) else {
                    continue;
                };
                let Some(entry) = core.tasks.get_mut(id) else {
                    continue;
                };
                let slot = &mut entry.task.stores_mut()[*store];
                slot.restore_target().write_batch(&batch)?;
                slot.discard_changelog();
                *restored.entry(tp).or_insert(0) += batch.len() as u64;
            }
        }
    }
    let mut core = lock(core);
    for (tp, (id, store, end)) in &targets {
        if let Some(entry) = core.tasks.get_mut(id) {
            let slot = &mut entry.task.stores_mut()[*store];
            slot.restore_target().flush()?;
            slot.discard_changelog();
            entry.changelog_offsets.insert(tp.clone(), *end);
            let count = restored.get(tp).copied().unwrap_or(0);
            shared.add_restored(count);
            tracing::info!(task = %id, changelog = %tp, records = count, end_offset = end, "restored state store");
        }
    }
    if shared.shutting_down() {
        return Ok(());
    }
    for (id, _) in pending {
        if let Some(entry) = core.tasks.get_mut(&id) {
            let task = &mut entry.task;
            guarded(id, || task.init())?;
            entry.restoring = None;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_idle_poll_ends_by_the_next_commit() {
        let ms = Duration::from_millis;
        // Long before the commit is due: the whole wait.
        assert_eq!(poll_timeout(ms(30_000), ms(10)), POLL_TIMEOUT);
        // The commit is due sooner than a whole wait.
        assert_eq!(poll_timeout(ms(100), ms(80)), ms(20));
        // Due now, or overdue: a short look for records, then the commit.
        assert_eq!(poll_timeout(ms(100), ms(100)), ms(1));
        assert_eq!(poll_timeout(ms(100), ms(250)), ms(1));
        // A commit after every loop: the whole wait, no spinning.
        assert_eq!(poll_timeout(ms(0), ms(5)), POLL_TIMEOUT);
    }

    #[test]
    fn a_commit_checkpoints_first_and_then_past_ten_thousand_changelog_records() {
        let tp = |p| TopicPartition::new("app-store-changelog", p);
        let offsets = |a: u64, b: u64| BTreeMap::from([(tp(0), a), (tp(1), b)]);
        assert!(checkpoint_due(None, &BTreeMap::new()));
        assert!(checkpoint_due(None, &offsets(5, 5)));
        let last = offsets(100, 200);
        assert!(!checkpoint_due(Some(&last), &offsets(100, 200)));
        assert!(!checkpoint_due(Some(&last), &offsets(5_100, 5_200)));
        assert!(checkpoint_due(Some(&last), &offsets(5_100, 5_201)));
        // A partition new since the last checkpoint counts from zero.
        let mut grown = offsets(100, 200);
        grown.insert(tp(2), 10_001);
        assert!(checkpoint_due(Some(&last), &grown));
    }

    #[test]
    fn partition_time_metadata_is_kafkas_encoding() {
        // Version 1, then 1_000 as a big-endian i64.
        assert_eq!(encode_partition_time(1_000), "AQAAAAAAAAPo");
        let tp = TopicPartition::new("t", 0);
        assert_eq!(decode_partition_time(&tp, "AQAAAAAAAAPo"), Some(1_000));
    }

    #[test]
    fn other_metadata_is_no_partition_time() {
        let tp = TopicPartition::new("t", 0);
        for metadata in [
            "",
            "not base64!",
            "AgAAAAAAAAPo",
            "AQAA",
            "printed by the CLI",
        ] {
            assert_eq!(decode_partition_time(&tp, metadata), None, "{metadata}");
        }
    }

    proptest! {
        #[test]
        fn partition_time_round_trips(time in any::<i64>()) {
            let tp = TopicPartition::new("t", 0);
            prop_assert_eq!(decode_partition_time(&tp, &encode_partition_time(time)), Some(time));
        }
    }
}
