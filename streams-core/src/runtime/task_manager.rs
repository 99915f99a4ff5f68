//! A stream thread's tasks: created for assigned partitions, fed the
//! polled records, run (lowest timestamp first within a task), flushed for
//! commits and closed, as Kafka Streams' `TaskManager`. They live in a
//! [`Core`] behind a std mutex, shared with the rebalance listener (which
//! the consumer calls inside `poll`) and with interactive queries; the
//! mutex is never held across an `.await`.

use std::collections::{BTreeMap, HashMap};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use state_store::{CacheBudget, Checkpoint, LocalData};

use crate::client::{
    ClientSupplier, OffsetAndMetadata, Offsets, PolledRun, StreamProducer, TopicPartition,
};
use crate::error::{Result, StreamsError};
use crate::exec::TaskId;
use crate::store::StoreSlot;
use crate::task::{Task, TaskOptions};

use super::sender::{Outgoing, Routing, Sender, Sent};
use super::setup::Plan;

use super::checkpoint::{checkpoint_due, remove_checkpoint, write_checkpoint, CHECKPOINT_FILE};
use super::clients::make_producer;
use super::commit::{decode_partition_time, encode_partition_time};

pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(super) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// Runs user code of task `task`, turning a panic into an error.
pub(super) fn guarded<R>(task: TaskId, f: impl FnOnce() -> Result<R>) -> Result<R> {
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
pub(super) struct Restoring {
    pub(super) store: usize,
    pub(super) changelog: TopicPartition,
    pub(super) start: u64,
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
pub(super) fn restore_start(id: TaskId, slot: &StoreSlot, checkpointed: Option<u64>) -> u64 {
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

/// A task owned by a stream thread, with its restoration and checkpoint
/// state.
#[derive(Debug)]
pub(crate) struct TaskEntry {
    pub(crate) task: Task,
    pub(super) dir: PathBuf,
    /// The changelog offset each logged store reflects, by changelog
    /// partition.
    pub(super) changelog_offsets: BTreeMap<TopicPartition, u64>,
    /// The changelog offsets of the last checkpoint written (`None`: none
    /// written by this owner yet).
    pub(super) checkpointed: Option<BTreeMap<TopicPartition, u64>>,
    /// The changelog offsets at the last durable flush of the task's stores
    /// (`None`: none since this owner restored them).
    pub(super) synced: Option<BTreeMap<TopicPartition, u64>>,
    /// Stores still to restore; `None` once the task runs.
    pub(super) restoring: Option<Vec<Restoring>>,
    /// When the task last processed a record, and its stream time then
    /// (`task.idle.wall.clock.advance.ms`).
    pub(super) last_record: Option<(Instant, i64)>,
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

/// A stream thread's tasks and producer.
#[derive(Debug)]
pub(crate) struct Core {
    pub(super) index: usize,
    pub(super) plan: Arc<Plan>,
    pub(super) clients: Arc<dyn ClientSupplier>,
    /// Sends outputs and changelog records: an idempotent producer under
    /// at-least-once, a transactional one (`transactional.id =
    /// <application.id>-<process id>-<thread index>`) under exactly-once.
    pub(super) producer: Arc<dyn StreamProducer>,
    /// Appends the output on a thread of its own.
    pub(super) sender: Sender,
    /// Where the output goes, for the sender.
    pub(super) routing: Arc<Routing>,
    /// Under exactly-once: the producer's transactional id.
    pub(super) transactional_id: Option<String>,
    /// Whether a transaction is open (exactly-once).
    pub(super) in_txn: bool,
    /// A transaction failed inside the rebalance listener and the tasks were
    /// closed dirty: the loop gives the thread a new producer.
    pub(super) reinit_producer: bool,
    /// Partitions assigned under exactly-once whose committed offsets are to
    /// be read again once no transaction holds pending offsets of the
    /// group.
    pub(super) unstable: Vec<TopicPartition>,
    /// Since when restoration waits for the changelogs' open transactions
    /// to end.
    pub(super) restore_blocked_since: Option<Instant>,
    pub(crate) tasks: BTreeMap<TaskId, TaskEntry>,
    /// An error raised inside the rebalance listener, for the loop to act on.
    pub(super) fatal: Option<StreamsError>,
    /// Between a revocation (or the start) and the next assignment.
    pub(super) awaiting_assignment: bool,
    /// Counts [`Core::close_all_dirty`] calls, for the app.
    pub(super) dirty_closes: Arc<AtomicU64>,
    /// The bound the record caches of all this thread's tasks share.
    pub(super) cache: CacheBudget,
    /// The task the next [`Core::process`] starts with, when the last one
    /// stopped at the output's bound.
    pub(super) resume_processing_at: Option<TaskId>,
}

pub(super) fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Core {
    pub(super) fn new(
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
        let cache = CacheBudget::new(plan.cache_bytes_per_thread);
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
            cache,
            resume_processing_at: None,
        })
    }

    pub(super) fn eos(&self) -> bool {
        self.transactional_id.is_some()
    }

    /// Closes task `id` without committing. Under exactly-once its local
    /// stores may hold writes of the aborted transaction: persistent ones
    /// are wiped and the checkpoint deleted, so that the next owner
    /// restores them from the changelog.
    pub(super) fn close_dirty(&mut self, id: TaskId) {
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
    pub(super) fn close_all_dirty(&mut self) {
        self.dirty_closes.fetch_add(1, Ordering::Relaxed);
        self.abort_if_open();
        for id in self.task_ids() {
            tracing::warn!(thread = self.index, task = %id, "closing task dirty; its next owner resumes from the last committed transaction");
            self.close_dirty(id);
        }
    }

    /// Creates the tasks of newly assigned partitions; their stores are
    /// restored by the loop before they process anything.
    pub(super) fn create_tasks(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        let mut wanted: BTreeMap<TaskId, Vec<TopicPartition>> = BTreeMap::new();
        let plan = self.plan.clone();
        for tp in partitions {
            if let Some((sub, _)) = plan.source_of.get(&tp.topic) {
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
                    if let Some((_, logical)) = plan.source_of.get(&tp.topic) {
                        entry.task.add_input_partition(tp, logical);
                    }
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
    pub(super) fn resume_partition_times(&mut self, committed: &Offsets) {
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

    pub(super) fn create_task(&self, id: TaskId, tps: Vec<TopicPartition>) -> Result<TaskEntry> {
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
            cache: self.cache.clone(),
            engine: plan.config.engine_options(),
            handler: plan.config.deserialization_handler(),
            dead_letter_topic: plan.config.dead_letter_topic(),
            wall_clock: wall_clock_ms(),
            timestamp_extractor: plan.config.default_timestamp_extractor(),
            globals: plan.globals.clone(),
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
        for tp in tps {
            if let Some((_, logical)) = plan.source_of.get(&tp.topic) {
                task.add_input_partition(tp, logical);
            }
        }
        Ok(TaskEntry {
            task,
            dir,
            changelog_offsets: BTreeMap::new(),
            checkpointed: None,
            synced: None,
            restoring: Some(restoring),
            last_record: None,
        })
    }

    /// Hands polled records to their tasks' buffers. Returns, per partition,
    /// the first offset of records that no task of this thread owns yet:
    /// the consumer must read them again, or a later commit of the same
    /// partition would skip them.
    pub(super) fn buffer(&mut self, runs: Vec<PolledRun>) -> HashMap<TopicPartition, u64> {
        let mut unowned: HashMap<TopicPartition, u64> = HashMap::new();
        for run in runs {
            let Some((sub, logical)) = self.plan.source_of.get(&*run.topic) else {
                continue;
            };
            let id = TaskId {
                subtopology: *sub,
                partition: run.partition,
            };
            let tp = TopicPartition::new(run.topic.to_string(), run.partition);
            match self.tasks.get_mut(&id) {
                Some(entry) => {
                    let inputs = entry.task.inputs_mut();
                    if !inputs.contains(&tp) {
                        entry.task.add_input_partition(tp.clone(), logical);
                    }
                    entry.task.inputs_mut().add_records(&tp, run.records);
                }
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
    /// Unless it is -1, a task also waits for an empty partition that is
    /// in `lagging` (records the consumer has not fetched yet), as
    /// Kafka's KIP-695: it processes in timestamp order across its inputs
    /// rather than ahead of one that is only behind.
    ///
    /// Once the output of the tasks processed in this call reaches the
    /// thread's share of `producer.buffer.memory` (see
    /// [`ClientSettings::output_bytes_per_loop`]), the rest wait for the
    /// next call, which starts with them: the output waits to be sent, and
    /// the records not processed stay in their task's buffer (and past
    /// `buffered.records.per.partition`, in the log).
    ///
    /// [`ClientSettings::output_bytes_per_loop`]: super::setup::ClientSettings::output_bytes_per_loop
    pub(super) fn process(&mut self, lagging: &[TopicPartition]) -> Result<usize> {
        let mut processed = 0;
        let budget = self.plan.clients.output_bytes_per_loop();
        let mut output = 0usize;
        let plan = self.plan.clone();
        let max_idle = u64::try_from(plan.config.max_task_idle_ms())
            .ok()
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis);
        let lagging = if plan.config.max_task_idle_ms() < 0 {
            &[]
        } else {
            lagging
        };
        // The tasks from where the last call stopped, then the others.
        let start = self.resume_processing_at.take();
        let order: Vec<TaskId> = match start {
            Some(start) => self
                .tasks
                .range(start..)
                .chain(self.tasks.range(..start))
                .map(|(id, _)| *id)
                .collect(),
            None => self.tasks.keys().copied().collect(),
        };
        for id in order {
            if output >= budget {
                self.resume_processing_at = Some(id);
                break;
            }
            let Some(entry) = self.tasks.get_mut(&id) else {
                continue;
            };
            if !entry.running() {
                continue;
            }
            let task = &mut entry.task;
            let count = guarded(id, || task.process_buffered(max_idle, lagging))?;
            if count > 0 {
                processed += count;
                entry.last_record = task.stream_time().map(|t| (Instant::now(), t));
            }
            output += task.output_bytes();
        }
        Ok(processed)
    }

    /// Runs the wall-clock punctuators that are due, then, with
    /// `task.idle.wall.clock.advance.ms`, moves the stream time of tasks
    /// whose inputs have all been empty that long: to their stream time at
    /// their last record plus the wall-clock time since.
    pub(super) fn punctuate_wall_clock(&mut self) -> Result<()> {
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
                if idle >= after && task.inputs().is_empty() {
                    let target =
                        base.saturating_add(i64::try_from(idle.as_millis()).unwrap_or(i64::MAX));
                    guarded(*id, || task.advance_stream_time_idle(target).map(|_| ()))?;
                }
            }
        }
        Ok(())
    }

    pub(super) fn commit_requested(&self) -> bool {
        self.tasks.values().any(|e| e.task.commit_requested())
    }

    /// Takes the output of every task (sinks, changelogs, dead letters).
    pub(super) fn take_outputs(&mut self) -> Outgoing {
        self.tasks
            .iter_mut()
            .filter_map(|(id, entry)| {
                let output = entry.task.take_output();
                (!output.is_empty()).then_some((*id, output))
            })
            .collect()
    }

    /// Notes the changelog offsets that sent records reached.
    pub(super) fn record_sent(&mut self, sent: Sent) {
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
    pub(super) fn dispatch(&mut self, outgoing: Outgoing, wait: bool) -> Result<()> {
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
    pub(super) fn send_and_settle(&mut self, outgoing: Outgoing) -> Result<()> {
        self.dispatch(outgoing, true)
    }

    /// Flushes the caches of the tasks `ids` (closing the tasks if
    /// `close`), which moves their pending updates to the output.
    pub(super) fn flush_tasks(&mut self, ids: &[TaskId], close: bool) -> Result<()> {
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
    pub(super) fn offsets(&self, ids: &[TaskId]) -> (Offsets, Vec<String>) {
        let mut topics: Vec<String> = Vec::new();
        let mut offsets = HashMap::new();
        for id in ids {
            if let Some(entry) = self.tasks.get(id) {
                for (tp, offset) in entry.task.inputs().consumed() {
                    let time = self
                        .plan
                        .source_of
                        .get(&tp.topic)
                        .and_then(|(_, logical)| entry.task.partition_time(logical));
                    let metadata = time.map(encode_partition_time).unwrap_or_default();
                    // A processor that still holds records of the partition
                    // (a batch it has not processed) holds its commit.
                    let offset = match entry.task.commit_hold(&tp.topic, tp.partition) {
                        Some(hold) => (*offset).min(hold),
                        None => *offset,
                    };
                    offsets.insert(tp.clone(), OffsetAndMetadata { offset, metadata });
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
    pub(super) fn write_checkpoints(&mut self, ids: &[TaskId], force: bool) -> Result<()> {
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
    pub(super) fn sync_due_stores(&mut self, ids: &[TaskId]) -> Result<()> {
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

    pub(super) fn task_ids(&self) -> Vec<TaskId> {
        self.tasks.keys().copied().collect()
    }

    /// The tasks reading any of `partitions`.
    pub(super) fn tasks_of(&self, partitions: &[TopicPartition]) -> Vec<TaskId> {
        self.tasks
            .iter()
            .filter(|(_, e)| partitions.iter().any(|tp| e.task.inputs().contains(tp)))
            .map(|(id, _)| *id)
            .collect()
    }
}
