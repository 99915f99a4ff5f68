//! The execution engine of one task: a sub-topology's nodes and stores, run
//! over one input partition. The test driver owns tasks today; the broker
//! runtime will own them the same way (it feeds records in, drains the
//! output and changelog records, and commits).
//!
//! Records travel between nodes as typed values behind a `&mut dyn Any`;
//! the crate documentation explains the design.

use std::collections::HashMap;

use rustc_hash::FxHashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use state_store::{CacheBudget, EngineOptions, StoreBackend};

use crate::changelog_buffer::{ChangelogBuffer, Logged};
use crate::client::TopicPartition;
use crate::config::DeserializationHandler;
use crate::error::{Result, StreamsError};
use crate::output::Output;
use crate::partition_group::PartitionGroup;
use crate::punctuation::{next_slot, PunctuationType};
use crate::record::RecordMetadata;
use crate::store::StoreSlot;
use crate::timestamp::{extract, ConsumedRecord, Extracted, SharedTimestampExtractor};
use crate::topology::{SubTopology, Topology};

use crate::exec::*;
use crate::global::GlobalTables;
use crate::record::RawRecord;

/// What a task needs besides its sub-topology.
#[derive(Debug, Clone)]
pub(crate) struct TaskOptions<'a> {
    pub(crate) application_id: &'a str,
    pub(crate) partition: u32,
    /// Overrides every store's backend (the test driver's in-memory mode).
    pub(crate) backend: Option<StoreBackend>,
    pub(crate) state_dir: &'a Path,
    /// The record caches' bound, shared by every task of a stream thread
    /// (`cache.max.bytes.buffering` over the number of threads).
    pub(crate) cache: CacheBudget,
    /// The persistent stores' engine settings.
    pub(crate) engine: EngineOptions,
    pub(crate) handler: DeserializationHandler,
    pub(crate) dead_letter_topic: Option<&'a str>,
    pub(crate) wall_clock: i64,
    /// `default.timestamp.extractor`.
    pub(crate) timestamp_extractor: SharedTimestampExtractor,
    /// The instance's global tables.
    pub(crate) globals: Arc<GlobalTables>,
}

/// A sub-topology instantiated over one partition.
pub(crate) struct Task {
    plan: TaskPlan,
    nodes: Vec<Option<Box<dyn ErasedNode>>>,
    state: TaskState,
    /// The input partitions and their buffered records.
    group: PartitionGroup,
}

impl fmt::Debug for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("plan", &self.plan)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Task {
    /// Creates the nodes (one processor per node, from its supplier) and
    /// opens the stores of sub-topology `sub`.
    pub(crate) fn new(
        topology: &Topology,
        sub: &SubTopology,
        options: &TaskOptions<'_>,
    ) -> Result<Self> {
        let task_id = TaskId {
            subtopology: sub.id,
            partition: options.partition,
        };
        let local_node: HashMap<usize, usize> =
            sub.nodes.iter().enumerate().map(|(i, &g)| (g, i)).collect();
        let local_store: HashMap<usize, usize> = sub
            .stores
            .iter()
            .enumerate()
            .map(|(i, &g)| (g, i))
            .collect();

        let mut plan_nodes = Vec::with_capacity(sub.nodes.len());
        let mut nodes = Vec::with_capacity(sub.nodes.len());
        let mut sources = Vec::new();
        let mut source_slots = FxHashMap::default();
        for (local, &global) in sub.nodes.iter().enumerate() {
            let def = topology.node(global);
            let children = def
                .children
                .iter()
                .filter_map(|c| local_node.get(c).copied())
                .collect();
            let stores = def
                .stores
                .iter()
                .filter_map(|s| local_store.get(s).copied())
                .collect();
            for topic in def.source_topics() {
                let slot = sources.len();
                source_slots.insert(topic.clone(), slot);
                let extractor = def
                    .timestamp_extractor
                    .clone()
                    .unwrap_or_else(|| options.timestamp_extractor.clone());
                sources.push(SourcePlan {
                    node: local,
                    topic: Arc::<str>::from(topic.as_str()),
                    record_time: extractor.keeps_valid_record_timestamps(),
                    extractor,
                    slot,
                });
            }
            plan_nodes.push(NodePlan {
                name: def.name.clone(),
                children,
                stores,
            });
            nodes.push(Some((def.factory)()));
        }

        let task_dir = options.state_dir.join(task_id.to_string());
        let mut stores = Vec::with_capacity(sub.stores.len());
        for &global in &sub.stores {
            stores.push(StoreSlot::open(
                topology.store_builder(global),
                options.application_id,
                options.backend,
                &task_dir,
                &options.cache,
                &options.engine,
            )?);
        }

        let node_count = plan_nodes.len();
        let source_count = sources.len();
        let inline_nodes = nodes
            .iter()
            .map(|n| n.as_ref().is_some_and(|n| n.runs_inline()))
            .collect();
        Ok(Self {
            plan: TaskPlan {
                task_id,
                application_id: options.application_id.to_owned(),
                nodes: plan_nodes,
                sources,
                source_slots,
            },
            nodes,
            state: TaskState {
                stores,
                schedules: Vec::new(),
                next_schedule_id: 0,
                stream_time: None,
                flushed_stream_time: None,
                wall_clock: options.wall_clock,
                current: None,
                commit_requested: false,
                output: Output::default(),
                output_room: (0, 0),
                handler: options.handler,
                dead_letter_topic: options.dead_letter_topic.map(Arc::from),
                dropped_records: 0,
                dropped_by_node: vec![0; node_count],
                partition_time: vec![None; source_count],
                current_bytes: None,
                inline: inline_nodes,
                host: vec![None; node_count],
                globals: options.globals.clone(),
                resumed_stream_time: None,
                shared: TaskShared::default(),
                commit_holds: std::collections::BTreeMap::new(),
            },
            group: PartitionGroup::default(),
        })
    }

    fn exec(&mut self) -> Exec<'_> {
        Exec {
            plan: &self.plan,
            nodes: &mut self.nodes,
            state: &mut self.state,
        }
    }

    /// The task's stores.
    pub(crate) fn stores_mut(&mut self) -> &mut [StoreSlot] {
        &mut self.state.stores
    }

    /// The topics this task reads.
    pub(crate) fn source_topics(&self) -> impl Iterator<Item = &str> {
        self.plan.source_slots.keys().map(String::as_str)
    }

    /// Initializes every node, in the order they were added.
    pub(crate) fn init(&mut self) -> Result<()> {
        let mut exec = self.exec();
        for node in 0..exec.nodes.len() {
            call_node(&mut exec, node, |n, ex| n.init(ex, node))?;
        }
        let inline = self.inline_children()?;
        tracing::debug!(task = %self.plan.task_id, nodes = self.nodes.len(), inline, "initialized task");
        Ok(())
    }

    /// Hands each node that may run inline to its parent, to run inside the
    /// parent's calls, where the parent can host it, it is the parent's
    /// only child and the parent its only parent: a chain of nodes then
    /// runs as one call per record, the records passed along typed, with
    /// no hop through the node table. A node with stores delivers its
    /// caches' evictions when it returns, and its flushes reach it through
    /// the first node of its chain. Deepest first, so that a node takes its
    /// own inline child along. Returns how many were handed over.
    fn inline_children(&mut self) -> Result<usize> {
        let plan = &self.plan;
        let mut parents = vec![Vec::new(); plan.nodes.len()];
        for (node, def) in plan.nodes.iter().enumerate() {
            for &child in &def.children {
                if let Some(p) = parents.get_mut(child) {
                    p.push(node);
                }
            }
        }
        let mut moved = 0;
        for child in (0..plan.nodes.len()).rev() {
            let [parent] = parents[child][..] else {
                continue;
            };
            if plan.nodes[parent].children.len() != 1
                || self
                    .state
                    .schedules
                    .iter()
                    .any(|s| s.node == parent || s.node == child)
            {
                continue;
            }
            let eligible = matches!(
                (self.nodes.get(parent), self.nodes.get(child)),
                (Some(Some(p)), Some(Some(c))) if p.hosts_inline() && c.runs_inline()
            );
            if !eligible {
                continue;
            }
            let Some(taken) = self.nodes[child].take() else {
                continue;
            };
            let input = match taken.into_inline() {
                Ok(input) => input,
                Err(node) => {
                    self.nodes[child] = Some(node);
                    continue;
                }
            };
            let hosted = match self.nodes[parent].as_mut() {
                Some(p) => p.host_inline(child, input),
                None => Err(input),
            };
            if hosted.is_err() {
                // The types were checked when the topology was built.
                return Err(StreamsError::Internal(format!(
                    "node '{}' takes records of other types than node '{}' forwards",
                    self.plan.nodes[child].name, self.plan.nodes[parent].name
                )));
            }
            self.state.host[child] = Some(parent);
            moved += 1;
        }
        Ok(moved)
    }

    /// How many nodes run inside their parents' calls.
    #[cfg(test)]
    pub(crate) fn inline_nodes(&self) -> usize {
        self.nodes.iter().filter(|n| n.is_none()).count()
    }

    /// The index of input `topic` for [`Task::process_slot`], if the task
    /// reads it.
    pub(crate) fn source_slot(&self, topic: &str) -> Option<usize> {
        self.plan.source_slots.get(topic).copied()
    }

    /// Adds input partition `tp`, of topic `logical` as the topology
    /// names it.
    pub(crate) fn add_input_partition(&mut self, tp: TopicPartition, logical: &str) {
        let slot = self.source_slot(logical);
        self.group.add_partition(tp, slot);
    }

    /// The task's input partitions and their buffers.
    pub(crate) fn inputs(&self) -> &PartitionGroup {
        &self.group
    }

    /// The task's input partitions and their buffers, to add records to.
    pub(crate) fn inputs_mut(&mut self) -> &mut PartitionGroup {
        &mut self.group
    }

    /// Processes the buffered input records, lowest timestamp first, each
    /// followed by the stream-time punctuators it makes due; with
    /// `max_idle`, waits for empty input partitions first (see
    /// [`PartitionGroup::next_run`]). Returns how many it processed.
    pub(crate) fn process_buffered(
        &mut self,
        max_idle: Option<Duration>,
        lagging: &[TopicPartition],
    ) -> Result<usize> {
        let mut group = std::mem::take(&mut self.group);
        let result = self.process_group(&mut group, max_idle, lagging);
        self.group = group;
        result
    }

    fn process_group(
        &mut self,
        group: &mut PartitionGroup,
        max_idle: Option<Duration>,
        lagging: &[TopicPartition],
    ) -> Result<usize> {
        let mut processed = 0;
        while let Some(run) = group.next_run(max_idle, lagging) {
            let Some(slot) = run.slot else {
                group.clear_partition(&run.partition);
                continue;
            };
            let Some(mut records) = group.run_records(&run) else {
                continue;
            };
            let mut last = None;
            let result = (|| -> Result<()> {
                while let Some(record) = records.pop() {
                    let offset = record.offset;
                    let raw = RawRecord {
                        key: record.key,
                        value: record.value,
                        timestamp: record.timestamp,
                        headers: record.headers,
                    };
                    self.process_slot(slot, run.partition.partition, offset, raw)?;
                    self.maybe_punctuate_stream_time()?;
                    last = Some(offset);
                    processed += 1;
                }
                Ok(())
            })();
            if let Some(offset) = last {
                group.processed(run.partition, offset);
            }
            result?;
        }
        Ok(processed)
    }

    /// Processes one input record of the input topic at `slot` (from
    /// [`Task::source_slot`]).
    #[inline]
    pub(crate) fn process_slot(
        &mut self,
        slot: usize,
        partition: u32,
        offset: u64,
        raw: RawRecord,
    ) -> Result<()> {
        let Some(plan) = self.plan.sources.get(slot) else {
            return Err(StreamsError::Internal(format!(
                "task {} has no input #{slot}",
                self.plan.task_id
            )));
        };
        let RawRecord {
            key,
            value,
            mut timestamp,
            headers,
        } = raw;
        let source = plan.node;
        let previous = self.state.partition_time[plan.slot];
        let extracted = if plan.record_time && timestamp >= 0 {
            // What the extractor would return, without the call.
            Extracted::Timestamp(timestamp)
        } else {
            let consumed = ConsumedRecord {
                topic: &plan.topic,
                partition,
                offset,
                timestamp,
                key: key.as_ref(),
                value: value.as_ref(),
                headers: &headers,
                wall_clock: self.state.wall_clock,
            };
            extract(&*plan.extractor, &consumed, previous)?
        };
        match extracted {
            Extracted::Timestamp(ts) => {
                timestamp = ts;
                self.state.partition_time[plan.slot] = Some(previous.map_or(ts, |p| p.max(ts)));
            }
            Extracted::Skip(ts) => {
                tracing::warn!(
                    task = %self.plan.task_id,
                    topic = %plan.topic,
                    partition,
                    offset,
                    timestamp,
                    extracted = ts,
                    extractor = plan.extractor.name(),
                    "skipping record due to negative extracted timestamp"
                );
                self.state.record_dropped(source);
                return Ok(());
            }
        }
        // The bytes stay with the task while the record is processed: the
        // source reads them from there, and so do processors
        // (`ProcessorContext::input_bytes`).
        self.state.current_bytes = Some((key, value));
        match &mut self.state.current {
            // The previous record's metadata, of the same topic most of the
            // time: updated in place, without touching the topic's count.
            Some(current) if Arc::ptr_eq(&current.topic, &plan.topic) => {
                current.partition = partition;
                current.offset = offset;
                current.timestamp = timestamp;
                current.headers.clone_from(&headers);
            }
            current => {
                *current = Some(RecordMetadata {
                    topic: plan.topic.clone(),
                    partition,
                    offset,
                    timestamp,
                    headers: headers.clone(),
                });
            }
        }
        let mut exec = self.exec();
        let result = call_node(&mut exec, source, |n, ex| {
            n.deliver(ex, source, timestamp, headers)
        });
        self.state.current_bytes = None;
        self.drain_changelogs();
        match result {
            Ok(()) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Moves stream time forward to `timestamp` (if later) with no record,
    /// and runs the stream-time punctuators then due: the idle-input
    /// advance of `task.idle.wall.clock.advance.ms`. Returns whether any
    /// fired.
    pub(crate) fn advance_stream_time_idle(&mut self, timestamp: i64) -> Result<bool> {
        if self.state.stream_time.is_some_and(|t| t >= timestamp) {
            return Ok(false);
        }
        tracing::debug!(task = %self.plan.task_id, from = ?self.state.stream_time, to = timestamp, "advancing stream time of idle inputs");
        // Every update still in a cache leaves it first, so that what runs
        // at the new time (suppress's final results) has seen them all.
        self.outside_record(Self::flush_caches)?;
        self.state.advance_stream_time(timestamp);
        self.state.flushed_stream_time = self.state.stream_time;
        self.maybe_punctuate_stream_time()
    }

    /// Runs the stream-time punctuators that are due; returns whether any
    /// fired.
    #[inline]
    pub(crate) fn maybe_punctuate_stream_time(&mut self) -> Result<bool> {
        // Called after every record; most tasks schedule nothing.
        if self.state.schedules.is_empty() {
            return Ok(false);
        }
        match self.state.stream_time {
            Some(now) => self.punctuate(PunctuationType::StreamTime, now),
            None => Ok(false),
        }
    }

    /// Moves the wall clock to `now` and runs the wall-clock punctuators
    /// that are due; returns whether any fired.
    pub(crate) fn punctuate_wall_clock(&mut self, now: i64) -> Result<bool> {
        self.state.wall_clock = now;
        self.punctuate(PunctuationType::WallClockTime, now)
    }

    fn punctuate(&mut self, kind: PunctuationType, now: i64) -> Result<bool> {
        // Called after every record: most of the time nothing is due.
        let due = self
            .state
            .schedules
            .iter()
            .any(|s| s.kind == kind && s.next <= now);
        if !due {
            return Ok(false);
        }
        self.outside_record(|task| task.run_due(kind, now))
    }

    /// Runs `work` outside any input record (a punctuation, a flush): no
    /// record's metadata is current meanwhile, and the changelog records it
    /// writes move to the output afterwards, even when it fails.
    fn outside_record<R>(&mut self, work: impl FnOnce(&mut Self) -> Result<R>) -> Result<R> {
        let saved = self.state.current.take();
        let result = work(self);
        self.state.current = saved;
        self.drain_changelogs();
        result
    }

    fn run_due(&mut self, kind: PunctuationType, now: i64) -> Result<bool> {
        let mut fired = false;
        loop {
            self.state
                .schedules
                .retain(|s| s.callback.is_none() || !s.handle.is_cancelled());
            let due = self
                .state
                .schedules
                .iter()
                .enumerate()
                .filter(|(_, s)| s.kind == kind && s.callback.is_some() && s.next <= now)
                .min_by_key(|(_, s)| (s.next, s.id))
                .map(|(i, _)| i);
            let Some(index) = due else {
                return Ok(fired);
            };
            let schedule = &mut self.state.schedules[index];
            let (id, node, slot) = (schedule.id, schedule.node, schedule.next);
            let Some(mut callback) = schedule.callback.take() else {
                return Ok(fired);
            };
            tracing::trace!(task = %self.plan.task_id, node = %self.plan.nodes[node].name, ?kind, now, slot, "punctuating");
            let mut exec = self.exec();
            let result = callback(exec.reborrow(), node, now)
                .and_then(|()| deliver_evictions(&mut exec, node));
            if let Some(s) = self.state.schedules.iter_mut().find(|s| s.id == id) {
                s.next = next_slot(slot, s.interval, now);
                s.callback = Some(callback);
            }
            fired = true;
            result?;
        }
    }

    /// Flushes the caches (delivering their entries to flush listeners,
    /// whose forwards may fill other caches, flushed in turn) and the
    /// stores, and moves changelog records to the output.
    pub(crate) fn commit(&mut self) -> Result<()> {
        self.outside_record(Self::flush_stores)?;
        self.state.commit_requested = false;
        tracing::trace!(task = %self.plan.task_id, "committed task");
        Ok(())
    }

    /// Flushes the caches and hands every store's writes to its backend,
    /// without waiting for them to be durable ([`Task::sync_stores`] does).
    fn flush_stores(&mut self) -> Result<()> {
        self.flush_caches()?;
        for slot in &mut self.state.stores {
            slot.stack.flush_unsynced()?;
        }
        Ok(())
    }

    /// Makes every store's writes durable (an fsync for the persistent
    /// backends): done before a checkpoint vouches for them, right after a
    /// commit ([`Task::commit`]), so the caches hold nothing dirty that this
    /// would write through.
    pub(crate) fn sync_stores(&mut self) -> Result<()> {
        for slot in &mut self.state.stores {
            debug_assert_eq!(
                slot.stack.dirty_entries(),
                0,
                "sync_stores after a commit only"
            );
            slot.stack.flush()?;
        }
        Ok(())
    }

    /// Flushes the record caches, delivering their entries to the flush
    /// listeners, whose forwards may fill other caches, flushed in turn.
    /// Afterwards every update made by the records processed so far has
    /// left the caches: the flushed stream time catches up.
    fn flush_caches(&mut self) -> Result<()> {
        let count = self.state.stores.len();
        for _pass in 0..=count {
            let mut flushed_any = false;
            for store in 0..count {
                let slot = &mut self.state.stores[store];
                if slot.stack.dirty_entries() == 0 {
                    continue;
                }
                slot.stack.flush_unsynced()?;
                let entries = slot.stack.take_forwarded();
                flushed_any = true;
                let mut exec = self.exec();
                deliver_flushed(&mut exec, store, entries, None)?;
            }
            if !flushed_any {
                break;
            }
        }
        self.state.flushed_stream_time = self.state.stream_time;
        Ok(())
    }

    #[inline]
    fn drain_changelogs(&mut self) {
        // After most records (a cached store) nothing was logged.
        if !self
            .state
            .stores
            .iter()
            .any(|s| s.changelog.as_ref().is_some_and(ChangelogBuffer::pending))
        {
            return;
        }
        let TaskState {
            stores,
            output,
            current,
            stream_time,
            wall_clock,
            ..
        } = &mut self.state;
        let timestamp = current
            .as_ref()
            .map(|m| m.timestamp)
            .or(*stream_time)
            .unwrap_or(*wall_clock);
        for slot in stores.iter() {
            if let Some(buffer) = &slot.changelog {
                buffer.drain(|update| match update {
                    // A versioned store's record carries its version's
                    // timestamp.
                    Logged::Owned(key, value, at) => output.push_logged(
                        &slot.changelog_topic,
                        key,
                        value,
                        at.unwrap_or(timestamp),
                    ),
                    Logged::Copied(key, value) => {
                        output.push_logged_slices(&slot.changelog_topic, key, value, timestamp)
                    }
                });
            }
        }
    }

    /// About the bytes of the records written since the last
    /// [`Task::take_output`]: their keys and values, and a slot each.
    pub(crate) fn output_bytes(&self) -> usize {
        const PER_RECORD: usize = 48;
        self.state.output.bytes_len() + self.state.output.len() * PER_RECORD
    }

    /// Takes the records written since the last call.
    pub(crate) fn take_output(&mut self) -> Output {
        // Start the next round with room for the largest one so far: a
        // round that outgrows its buffers copies them whole.
        let (records, bytes) = self.state.output_room;
        let room = (
            self.state.output.len().max(records),
            self.state.output.bytes_len().max(bytes),
        );
        self.state.output_room = room;
        std::mem::replace(&mut self.state.output, Output::with_room(room.0, room.1))
    }

    /// Whether a processor asked for a commit since the last one.
    pub(crate) fn commit_requested(&self) -> bool {
        self.state.commit_requested
    }

    /// The task's stream time.
    /// The partition time of input `topic` (its largest extracted
    /// timestamp), committed with the offsets so that a restart resumes
    /// stream time where it was.
    /// The offset the commits of input `topic`-`partition` may not pass,
    /// if a processor holds them ([`crate::ProcessorContext::hold_commit`]).
    pub(crate) fn commit_hold(&self, topic: &str, partition: u32) -> Option<u64> {
        self.state
            .commit_holds
            .get(&(topic.to_owned(), partition))
            .copied()
    }

    pub(crate) fn partition_time(&self, topic: &str) -> Option<i64> {
        let plan = &self.plan.sources[self.source_slot(topic)?];
        self.state.partition_time.get(plan.slot).copied().flatten()
    }

    /// Resumes the partition time of input `topic` from a committed offset's
    /// metadata (before any record is processed), and stream time with it,
    /// as Kafka Streams does on task initialization: a record that was late
    /// before a restart is late after it too.
    pub(crate) fn resume_partition_time(&mut self, topic: &str, time: i64) {
        let Some(slot) = self.source_slot(topic) else {
            return;
        };
        let plan = &self.plan.sources[slot];
        if let Some(slot) = self.state.partition_time.get_mut(plan.slot) {
            *slot = Some(slot.map_or(time, |t| t.max(time)));
            self.state.advance_stream_time(time);
            self.state.resumed_stream_time =
                Some(self.state.resumed_stream_time.map_or(time, |t| t.max(time)));
        }
    }

    pub(crate) fn stream_time(&self) -> Option<i64> {
        self.state.stream_time
    }

    /// The task's `dropped-records`: records skipped for an invalid
    /// timestamp or by the deserialization exception handler, and records
    /// processors dropped (late records, for one).
    pub(crate) fn dropped_records(&self) -> u64 {
        self.state.dropped_records
    }

    /// `dropped-records` per node, for the nodes that dropped any.
    pub(crate) fn dropped_records_metrics(
        &self,
    ) -> impl Iterator<Item = DroppedRecordsMetric> + '_ {
        self.plan
            .nodes
            .iter()
            .zip(&self.state.dropped_by_node)
            .filter(|(_, count)| **count > 0)
            .map(|(node, count)| DroppedRecordsMetric {
                task: self.plan.task_id,
                processor: node.name.clone(),
                count: *count,
            })
    }

    /// The index of store `name`, if the task has it.
    pub(crate) fn store_index(&self, name: &str) -> Option<usize> {
        self.state.stores.iter().position(|s| s.name == name)
    }

    /// Runs `f` on store `index`, then delivers what its cache evicted.
    pub(crate) fn with_store<R>(
        &mut self,
        index: usize,
        f: impl FnOnce(&mut StoreSlot) -> Result<R>,
    ) -> Result<R> {
        let slot = self
            .state
            .stores
            .get_mut(index)
            .ok_or_else(|| StreamsError::Internal(format!("no store #{index}")))?;
        let result = f(slot)?;
        let entries = slot.stack.take_forwarded();
        if !entries.is_empty() {
            let mut exec = self.exec();
            deliver_flushed(&mut exec, index, entries, None)?;
        }
        self.drain_changelogs();
        Ok(result)
    }

    /// Commits, closes every processor and every store. Every step runs
    /// even if an earlier one fails; the first error is returned.
    pub(crate) fn close(&mut self) -> Result<()> {
        let mut first = self.commit().err();
        for (node, slot) in self.nodes.iter_mut().enumerate() {
            if let Some(n) = slot.as_mut() {
                if let Err(e) = n.close() {
                    tracing::warn!(task = %self.plan.task_id, node = %self.plan.nodes[node].name, error = %e, "processor failed to close");
                    first.get_or_insert(e);
                }
            }
        }
        for store in &mut self.state.stores {
            if let Err(e) = store.stack.close() {
                tracing::warn!(task = %self.plan.task_id, store = %store.name, error = %e, "store failed to close");
                first.get_or_insert(e.into());
            }
        }
        self.drain_changelogs();
        first.map_or(Ok(()), Err)
    }

    /// Closes the stores of a task that was never initialized (it was
    /// still restoring): no commit and no processor to close. What they
    /// hold came from their files and their changelogs, so nothing is
    /// logged again.
    pub(crate) fn close_stores(&mut self) -> Result<()> {
        let mut first = None;
        for store in &mut self.state.stores {
            if let Err(e) = store.stack.close() {
                tracing::warn!(task = %self.plan.task_id, store = %store.name, error = %e, "store failed to close");
                first.get_or_insert(e.into());
            }
            store.discard_changelog();
        }
        first.map_or(Ok(()), Err)
    }
}
