//! The execution engine of a task's nodes: how a record travels from node
//! to node ([`Exec`], [`TypedInput`], [`forward_from`]), the plan and state
//! a task's nodes run against, and the scheduled punctuators. Nodes,
//! processors and punctuators are written against it; [`crate::task::Task`]
//! owns one.
//!
//! Records travel between nodes as typed values behind a `&mut dyn Any`;
//! the crate documentation explains the design.

use std::any::Any;

use rustc_hash::FxHashMap;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use state_store::CacheEntry;

use crate::config::DeserializationHandler;
use crate::error::{Result, StreamsError};
use crate::global::GlobalTables;
use crate::output::Output;
use crate::record::{Headers, Record, RecordMetadata};
use crate::serdes::SerdeError;
use crate::store::StoreSlot;
use crate::timestamp::SharedTimestampExtractor;

use crate::punctuation::{Cancellable, PunctuationType};
use crate::record::RawRecord;

/// Identifies a task: a sub-topology and an input partition, written
/// `<subtopology>_<partition>` as in Kafka Streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId {
    /// The sub-topology id.
    pub subtopology: u32,
    /// The input partition.
    pub partition: u32,
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}", self.subtopology, self.partition)
    }
}

/// One node's share of a task's `dropped-records` metric: the records it
/// skipped (a source: invalid timestamps and undeserializable records; a
/// windowed aggregation: late records; any processor that calls
/// [`crate::ProcessorContext::record_dropped`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DroppedRecordsMetric {
    /// The task.
    pub task: TaskId,
    /// The node (processor or source) that dropped them.
    pub processor: String,
    /// How many, since the task was created in this instance.
    pub count: u64,
}

/// What a hop of a record through a node returns: the error boxed, so
/// that the success path of every hop passes one word rather than a whole
/// [`StreamsError`].
pub(crate) type Hop = std::result::Result<(), Box<StreamsError>>;

/// A node's typed entry, for a parent that runs it inside its own call
/// (see [`Task::inline_children`]): the record goes to it directly, with
/// no erased hop through the task's node table.
pub(crate) trait TypedInput<K, V>: Send {
    /// Processes `record` as node `node`.
    fn process_typed(&mut self, exec: Exec<'_>, node: usize, record: Record<K, V>) -> Hop;

    /// Hands `entry`, flushed from `store`, to the flush listener
    /// `listener`: this node when `here`, else an inline node further down
    /// its chain.
    fn flushed_inline(
        &mut self,
        exec: Exec<'_>,
        listener: usize,
        store: &str,
        entry: CacheEntry,
        here: bool,
    ) -> Result<()>;

    /// Calls the processor's `close` (and that of its own inline child).
    fn close_inline(&mut self) -> Result<()>;
}

/// An inline child as its parent holds it: its node index and its entry.
pub(crate) type InlineChild<K, V> = Option<(usize, Box<dyn TypedInput<K, V>>)>;

/// Hands a flushed entry to the inline node `listener` down the chain that
/// starts at `child`.
pub(crate) fn flushed_down<K, V>(
    child: &mut InlineChild<K, V>,
    exec: Exec<'_>,
    listener: usize,
    store: &str,
    entry: CacheEntry,
) -> Result<()> {
    match child {
        Some((node, input)) => {
            let here = *node == listener;
            input.flushed_inline(exec, listener, store, entry, here)
        }
        None => Err(StreamsError::Internal(format!(
            "node #{listener} listens to store '{store}' but is not in the chain it was looked for in"
        ))),
    }
}

/// Runs `record` through `input`, inline node `child`, then delivers what
/// its stores' caches evicted meanwhile (as [`process_at`] does for a node
/// of the table), reaching listeners in its chain through it.
#[inline(always)]
pub(crate) fn run_inline<K, V>(
    exec: &mut Exec<'_>,
    child: usize,
    input: &mut dyn TypedInput<K, V>,
    record: Record<K, V>,
) -> Result<()> {
    input
        .process_typed(exec.reborrow(), child, record)
        .map_err(|e| *e)?;
    // Most records evict nothing.
    let plan = exec.plan;
    if !plan.nodes[child]
        .stores
        .iter()
        .any(|&s| exec.state.stores[s].stack.has_forwarded())
    {
        return Ok(());
    }
    let mut route = |ex: Exec<'_>, listener: usize, store: &str, entry: CacheEntry| {
        input.flushed_inline(ex, listener, store, entry, listener == child)
    };
    deliver_evictions_via(exec, child, Some((child, &mut route)))
}

/// How a node running a chain reaches a flush listener in it: the chain's
/// first inline node, and a call that hands an entry to a listener in the
/// chain (whose nodes are out of the table while the chain runs).
pub(crate) type ChainRoute<'r> = (
    usize,
    &'r mut dyn FnMut(Exec<'_>, usize, &str, CacheEntry) -> Result<()>,
);

/// The entry of an inline child, as a context borrows it.
pub(crate) fn inline_entry<K, V>(
    child: &mut InlineChild<K, V>,
) -> Option<(usize, &mut dyn TypedInput<K, V>)> {
    match child {
        Some((node, input)) => Some((*node, &mut **input)),
        None => None,
    }
}

/// A node of a running task, with its types erased.
pub(crate) trait ErasedNode: Send {
    /// Calls the processor's `init`.
    fn init(&mut self, _exec: Exec<'_>, _node: usize) -> Result<()> {
        Ok(())
    }

    /// Processes a typed record: `record` is an `Option<Record<K, V>>` of
    /// the node's input types.
    fn process(&mut self, exec: Exec<'_>, node: usize, record: &mut dyn Any) -> Hop;

    /// Deserializes and forwards the input record whose bytes are
    /// [`TaskState::current_bytes`] (sources only).
    fn deliver(
        &mut self,
        exec: Exec<'_>,
        node: usize,
        _timestamp: i64,
        _headers: Headers,
    ) -> Result<()> {
        Err(StreamsError::Internal(format!(
            "node '{}' is not a source but was given an input record",
            exec.plan.nodes[node].name
        )))
    }

    /// Hands over an entry flushed from a cached store.
    fn flushed(
        &mut self,
        _exec: Exec<'_>,
        _node: usize,
        _store: &str,
        _entry: CacheEntry,
    ) -> Result<()> {
        Ok(())
    }

    /// Calls the processor's `close`.
    fn close(&mut self) -> Result<()> {
        Ok(())
    }

    /// Whether this node may run inside its parent's call: a sink, or a
    /// processor whose [`crate::Processor::runs_inline`] says so.
    fn runs_inline(&self) -> bool {
        false
    }

    /// Whether this node can run its only child inside its own call: a
    /// source, or a processor that runs inline itself (and so schedules
    /// no punctuator that would forward around it).
    fn hosts_inline(&self) -> bool {
        false
    }

    /// This node as its typed entry (a `Box<dyn TypedInput<KIn, VIn>>`,
    /// boxed as `Any`), for its parent to hold; the node itself when it
    /// cannot run inline.
    fn into_inline(
        self: Box<Self>,
    ) -> std::result::Result<Box<dyn Any + Send>, Box<dyn ErasedNode>>;

    /// Takes `input` (from [`ErasedNode::into_inline`] of node `child`, its
    /// only child) to run inside its own calls; gives it back if it cannot
    /// or if the types differ.
    fn host_inline(
        &mut self,
        _child: usize,
        input: Box<dyn Any + Send>,
    ) -> std::result::Result<(), Box<dyn Any + Send>> {
        Err(input)
    }

    /// Hands `entry` to `listener`, a flush listener that runs inline down
    /// this node's chain.
    fn flushed_inline(
        &mut self,
        _exec: Exec<'_>,
        listener: usize,
        store: &str,
        _entry: CacheEntry,
    ) -> Result<()> {
        Err(StreamsError::Internal(format!(
            "node #{listener} listens to store '{store}' but does not run inline here"
        )))
    }
}

/// Takes the record of an erased call.
pub(crate) fn take_record<K: 'static, V: 'static>(
    slot: &mut dyn Any,
    node: &str,
) -> Result<Record<K, V>> {
    slot.downcast_mut::<Option<Record<K, V>>>()
        .and_then(Option::take)
        .ok_or_else(|| {
            StreamsError::Internal(format!(
                "node '{node}' was given a record that is not a Record<{}, {}>",
                std::any::type_name::<K>(),
                std::any::type_name::<V>()
            ))
        })
}

/// The static shape of a task's node.
#[derive(Debug)]
pub(crate) struct NodePlan {
    pub(crate) name: String,
    pub(crate) children: Vec<usize>,
    /// Indexes into the task's stores.
    pub(crate) stores: Vec<usize>,
}

/// The static shape of a task.
#[derive(Debug)]
pub(crate) struct TaskPlan {
    pub(crate) task_id: TaskId,
    pub(crate) application_id: String,
    pub(crate) nodes: Vec<NodePlan>,
    /// How the task reads each input topic, by [`SourcePlan::slot`].
    pub(crate) sources: Vec<SourcePlan>,
    /// Input topic to its index in `sources`.
    pub(crate) source_slots: FxHashMap<String, usize>,
}

/// How a task reads one input topic.
#[derive(Debug)]
pub(crate) struct SourcePlan {
    /// The source node.
    pub(crate) node: usize,
    /// The topic name, shared with record metadata.
    pub(crate) topic: Arc<str>,
    /// The source's timestamp extractor, or the default one.
    pub(crate) extractor: SharedTimestampExtractor,
    /// Whether the extractor keeps valid record timestamps
    /// ([`crate::TimestampExtractor::keeps_valid_record_timestamps`]).
    pub(crate) record_time: bool,
    /// Index into [`TaskPlan::sources`] and [`TaskState::partition_time`].
    pub(crate) slot: usize,
}

/// Values that the processors of one task share, by name; see
/// [`crate::ProcessorContext::task_shared`].
#[derive(Default)]
pub(crate) struct TaskShared(FxHashMap<String, Arc<dyn Any + Send + Sync>>);

impl fmt::Debug for TaskShared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl TaskShared {
    /// The value under `name`, made by `init` if there is none yet; `None`
    /// if the value there is not a `T`.
    pub(crate) fn get_or_init<T: Any + Send + Sync>(
        &mut self,
        name: &str,
        init: impl FnOnce() -> T,
    ) -> Option<Arc<T>> {
        let value = self
            .0
            .entry(name.to_owned())
            .or_insert_with(|| Arc::new(init()));
        Arc::clone(value).downcast::<T>().ok()
    }
}

/// The mutable state of a task, apart from its nodes.
#[derive(Debug)]
pub(crate) struct TaskState {
    pub(crate) stores: Vec<StoreSlot>,
    pub(crate) schedules: Vec<Schedule>,
    pub(crate) next_schedule_id: u64,
    /// The largest timestamp seen; `None` before the first record.
    pub(crate) stream_time: Option<i64>,
    /// The stream time when the record caches were last flushed.
    pub(crate) flushed_stream_time: Option<i64>,
    pub(crate) wall_clock: i64,
    /// The input record being processed.
    pub(crate) current: Option<RecordMetadata>,
    pub(crate) commit_requested: bool,
    /// Records for topics (sinks, changelogs, dead letters), in order.
    pub(crate) output: Output,
    /// The most records, and bytes of serialized keys and values, taken
    /// from `output` at once.
    pub(crate) output_room: (usize, usize),
    pub(crate) handler: DeserializationHandler,
    pub(crate) dead_letter_topic: Option<Arc<str>>,
    /// The `dropped-records` metric of the task.
    pub(crate) dropped_records: u64,
    /// The `dropped-records` metric per node (the share of the task's that
    /// each node dropped).
    pub(crate) dropped_by_node: Vec<u64>,
    /// The largest timestamp extracted per input partition (by
    /// [`SourcePlan::slot`]).
    pub(crate) partition_time: Vec<Option<i64>>,
    /// The key and value bytes of the input record being processed.
    pub(crate) current_bytes: Option<(Option<Bytes>, Option<Bytes>)>,
    /// Per node, whether it may run inline (see [`ErasedNode::runs_inline`]):
    /// such a node cannot schedule punctuation.
    pub(crate) inline: Vec<bool>,
    /// Per node that runs inline, the node whose calls it runs in.
    pub(crate) host: Vec<Option<usize>>,
    /// The instance's global tables, which every task reads.
    pub(crate) globals: Arc<GlobalTables>,
    /// The stream time the task resumed from its committed offsets' partition
    /// times; `None` for a task that started afresh.
    pub(crate) resumed_stream_time: Option<i64>,
    /// Values the task's processors share.
    pub(crate) shared: TaskShared,
    /// Per input topic and partition, the offset its commits may not pass
    /// ([`crate::ProcessorContext::hold_commit`]).
    pub(crate) commit_holds: std::collections::BTreeMap<(String, u32), u64>,
}

impl TaskState {
    /// The nodes whose calls `node` runs in, nearest first (none for a
    /// node of the task's table). A chain is shorter than the task.
    fn hosts(&self, node: usize) -> impl Iterator<Item = usize> + '_ {
        std::iter::successors(self.host.get(node).copied().flatten(), |&h| {
            self.host.get(h).copied().flatten()
        })
        .take(self.host.len())
    }

    /// Whether `node` is `top` or runs inline below it.
    fn in_chain(&self, node: usize, top: usize) -> bool {
        node == top || self.hosts(node).any(|h| h == top)
    }

    /// For a node that runs inline, the first node of its chain (the one
    /// in the task's table); `None` for a node of the table.
    fn top_host(&self, node: usize) -> Option<usize> {
        self.hosts(node).last()
    }

    #[inline]
    pub(crate) fn advance_stream_time(&mut self, timestamp: i64) {
        self.stream_time = Some(self.stream_time.map_or(timestamp, |t| t.max(timestamp)));
    }

    /// Counts a record dropped by node `node` in `dropped-records`.
    pub(crate) fn record_dropped(&mut self, node: usize) {
        self.dropped_records += 1;
        if let Some(count) = self.dropped_by_node.get_mut(node) {
            *count += 1;
        }
    }

    /// Applies the deserialization exception handler to the input record
    /// of source `node` (its bytes: [`TaskState::current_bytes`]).
    pub(crate) fn deserialization_failed(
        &mut self,
        node: usize,
        error: SerdeError,
        part: &'static str,
        timestamp: i64,
        headers: Headers,
    ) -> Result<()> {
        let (topic, partition, offset) = match &self.current {
            Some(m) => (m.topic.to_string(), m.partition, m.offset),
            None => (error.topic.clone(), 0, 0),
        };
        let dead_letter = match (self.handler, &self.dead_letter_topic) {
            (DeserializationHandler::Fail, _) => {
                return Err(StreamsError::Deserialization {
                    topic,
                    partition,
                    offset,
                    part,
                    source: error,
                })
            }
            (DeserializationHandler::DeadLetterTopic, Some(dlq)) => Some(dlq.clone()),
            _ => None,
        };
        self.record_dropped(node);
        tracing::warn!(
            %topic, partition, offset, part, error = %error,
            dead_letter_topic = dead_letter.as_deref(),
            "skipping record that cannot be deserialized"
        );
        if let Some(dlq) = dead_letter {
            let (key, value) = self.current_bytes.take().unwrap_or_default();
            let mut headers = headers;
            headers
                .add(
                    "__streams.errors.exception",
                    Some(Bytes::from_static(b"SerdeError")),
                )
                .add(
                    "__streams.errors.message",
                    Some(Bytes::from(error.to_string())),
                )
                .add("__streams.errors.topic", Some(Bytes::from(topic)))
                .add(
                    "__streams.errors.partition",
                    Some(Bytes::from(partition.to_string())),
                )
                .add(
                    "__streams.errors.offset",
                    Some(Bytes::from(offset.to_string())),
                );
            self.output.push_raw(
                &dlq,
                RawRecord {
                    key,
                    value,
                    timestamp,
                    headers,
                },
            );
        }
        Ok(())
    }
}

/// A running task's parts, borrowed for one call into its nodes.
pub(crate) struct Exec<'a> {
    pub(crate) plan: &'a TaskPlan,
    pub(crate) nodes: &'a mut [Option<Box<dyn ErasedNode>>],
    pub(crate) state: &'a mut TaskState,
}

impl fmt::Debug for Exec<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exec")
            .field("task_id", &self.plan.task_id)
            .finish_non_exhaustive()
    }
}

impl Exec<'_> {
    pub(crate) fn reborrow(&mut self) -> Exec<'_> {
        Exec {
            plan: self.plan,
            nodes: &mut *self.nodes,
            state: &mut *self.state,
        }
    }
}

/// Runs `f` on node `node`, taken out of its slot meanwhile.
#[inline(always)]
pub(crate) fn call_node<R, E: From<StreamsError>>(
    exec: &mut Exec<'_>,
    node: usize,
    f: impl FnOnce(&mut dyn ErasedNode, Exec<'_>) -> std::result::Result<R, E>,
) -> std::result::Result<R, E> {
    let Some(mut taken) = exec.nodes.get_mut(node).and_then(Option::take) else {
        return Err(E::from(StreamsError::Internal(format!(
            "node #{node} called while it is already running"
        ))));
    };
    // Matched rather than kept and returned: the success path then moves
    // no error-sized result (this runs at every hop of every record).
    match f(taken.as_mut(), exec.reborrow()) {
        Ok(out) => {
            exec.nodes[node] = Some(taken);
            Ok(out)
        }
        Err(e) => {
            exec.nodes[node] = Some(taken);
            Err(e)
        }
    }
}

/// Forwards `record` from `node` to each of its children, depth first.
pub(crate) fn forward_from<K, V>(exec: &mut Exec<'_>, node: usize, record: Record<K, V>) -> Hop
where
    K: Clone + 'static,
    V: Clone + 'static,
{
    let plan = exec.plan;
    match plan.nodes[node].children.split_last() {
        None => Ok(()),
        Some((&last, rest)) => {
            for &child in rest {
                process_at(exec, child, record.clone())?;
            }
            process_at(exec, last, record)
        }
    }
}

/// Has node `node` process `record`, then delivers what its stores' caches
/// evicted meanwhile.
#[inline(always)]
pub(crate) fn process_at<K: 'static, V: 'static>(
    exec: &mut Exec<'_>,
    node: usize,
    record: Record<K, V>,
) -> Hop {
    let mut slot = Some(record);
    call_node(exec, node, |n, ex| n.process(ex, node, &mut slot))?;
    // Most nodes have no store: no call for them.
    if exec.plan.nodes[node].stores.is_empty() {
        return Ok(());
    }
    Ok(deliver_evictions(exec, node)?)
}

/// Delivers the entries that the caches of `node`'s stores evicted.
pub(crate) fn deliver_evictions(exec: &mut Exec<'_>, node: usize) -> Result<()> {
    deliver_evictions_via(exec, node, None)
}

/// [`deliver_evictions`], reaching the listeners of a running chain by
/// `route`.
fn deliver_evictions_via(
    exec: &mut Exec<'_>,
    node: usize,
    mut route: Option<ChainRoute<'_>>,
) -> Result<()> {
    let plan = exec.plan;
    for &store in &plan.nodes[node].stores {
        let entries = exec.state.stores[store].stack.take_forwarded();
        if !entries.is_empty() {
            let via = route.as_mut().map(|(top, r)| (*top, &mut **r as _));
            deliver_flushed(exec, store, entries, via)?;
        }
    }
    Ok(())
}

/// Hands flushed cache entries of `store` to its flush listeners; `route`
/// reaches those of a running chain.
pub(crate) fn deliver_flushed(
    exec: &mut Exec<'_>,
    store: usize,
    entries: Vec<CacheEntry>,
    mut route: Option<ChainRoute<'_>>,
) -> Result<()> {
    if exec.state.stores[store].listeners.is_empty() {
        return Ok(());
    }
    let listeners = exec.state.stores[store].listeners.clone();
    let name = exec.state.stores[store].name.clone();
    let saved = exec.state.current.take();
    let result = (|| {
        for entry in entries {
            // The last listener takes the entry; the others get copies.
            let mut entry = Some(entry);
            for (i, &listener) in listeners.iter().enumerate() {
                let entry = if i + 1 == listeners.len() {
                    entry.take()
                } else {
                    entry.clone()
                };
                let Some(entry) = entry else { break };
                // The listener runs in the chain that is running now, out of
                // the table: the chain's route reaches it.
                let mut via: Option<ChainRoute<'_>> = match &mut route {
                    Some((top, r)) if exec.state.in_chain(listener, *top) => {
                        Some((*top, &mut **r as _))
                    }
                    _ => None,
                };
                match (&mut via, exec.state.top_host(listener)) {
                    (Some((_, r)), _) => r(exec.reborrow(), listener, &name, entry)?,
                    // The listener runs inline: the first node of its
                    // chain, in the table, hands the entry down to it.
                    (None, Some(top)) => call_node(exec, top, |n, ex| {
                        n.flushed_inline(ex, listener, &name, entry)
                    })?,
                    (None, None) => call_node(exec, listener, |n, ex| {
                        n.flushed(ex, listener, &name, entry)
                    })?,
                }
                deliver_evictions_via(exec, listener, via)?;
            }
        }
        Ok(())
    })();
    exec.state.current = saved;
    result
}

/// A type-erased punctuator: called with the task, the node that scheduled
/// it and the current time.
pub(crate) type PunctuatorFn = Box<dyn for<'x> FnMut(Exec<'x>, usize, i64) -> Result<()> + Send>;

/// One scheduled punctuator of a task.
pub(crate) struct Schedule {
    pub(crate) id: u64,
    pub(crate) node: usize,
    pub(crate) kind: PunctuationType,
    pub(crate) interval: i64,
    /// The next slot: fires when the clock reaches it.
    pub(crate) next: i64,
    pub(crate) handle: Cancellable,
    /// `None` while the callback runs.
    pub(crate) callback: Option<PunctuatorFn>,
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Schedule")
            .field("id", &self.id)
            .field("node", &self.node)
            .field("kind", &self.kind)
            .field("interval", &self.interval)
            .field("next", &self.next)
            .field("cancelled", &self.handle.is_cancelled())
            .finish_non_exhaustive()
    }
}
