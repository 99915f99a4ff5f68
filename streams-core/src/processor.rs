//! The Processor API: [`Processor`] and the [`ProcessorContext`] it works
//! through.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use state_store::CacheEntry;

use crate::error::{Result, StreamsError};
use crate::exec::{
    forward_from, process_at, run_inline, Exec, PunctuatorFn, Schedule, TaskId, TaskPlan,
    TaskState, TypedInput,
};
use crate::global::GlobalTableView;
use crate::punctuation::{Cancellable, PunctuationType};
use crate::record::RawRecord;
use crate::record::{Headers, Record, RecordMetadata};
use crate::serdes::Serde;
use crate::store::{
    KeyValueStoreHandle, StoreSlot, TypedKeyValueStore, TypedSessionStore,
    TypedVersionedKeyValueStore, TypedWindowStore, WindowStoreHandle,
};

/// A node of a topology that processes records one at a time, as Kafka's
/// `org.apache.kafka.streams.processor.api.Processor`.
///
/// Takes records with keys `KIn` and values `VIn`; forwards records with
/// keys `KOut` and values `VOut` through the [`ProcessorContext`]. A task
/// creates one instance per processor node from the supplier given to
/// [`crate::Topology::add_processor`].
///
/// ```
/// use streams_core::{Processor, ProcessorContext, Record, Result};
///
/// /// Splits lines into lowercase words.
/// struct SplitWords;
///
/// impl Processor<String, String, String, String> for SplitWords {
///     fn process(
///         &mut self,
///         ctx: &mut ProcessorContext<'_, String, String>,
///         record: Record<String, String>,
///     ) -> Result<()> {
///         let Some(line) = &record.value else { return Ok(()) };
///         for word in line.to_lowercase().split_whitespace() {
///             ctx.forward(Record::from_parts(record.key.clone(), Some(word.to_owned()), record.timestamp))?;
///         }
///         Ok(())
///     }
/// }
/// ```
pub trait Processor<KIn, VIn, KOut, VOut>: Send + 'static {
    /// Called once before the first record: open stores, schedule
    /// punctuators, register flush listeners.
    fn init(&mut self, ctx: &mut ProcessorContext<'_, KOut, VOut>) -> Result<()> {
        let _ = ctx;
        Ok(())
    }

    /// Processes one record.
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, KOut, VOut>,
        record: Record<KIn, VIn>,
    ) -> Result<()>;

    /// Receives an update that left the record cache of `store` (at a
    /// commit, or evicted when the cache is full), after this processor
    /// registered with [`ProcessorContext::set_flush_listener`]. Decode it
    /// with [`TypedKeyValueStore::decode`]. Record metadata is absent here.
    ///
    /// Entries evicted while a processor runs are delivered as soon as that
    /// processor's `process` (or punctuator) returns; entries flushed by a
    /// commit are delivered in the order of their last update.
    fn flushed(
        &mut self,
        ctx: &mut ProcessorContext<'_, KOut, VOut>,
        store: &str,
        entry: CacheEntry,
    ) -> Result<()> {
        let _ = (ctx, store, entry);
        Ok(())
    }

    /// Called once when the task closes, after its last commit.
    fn close(&mut self) -> Result<()> {
        Ok(())
    }

    #[doc(hidden)]
    /// Whether the task may run this processor inside its parent's call:
    /// its parent then hands it each record directly, as in a chain of
    /// operators run as one. Only for a processor that schedules no
    /// punctuation ([`stateless_fn`]'s, and the DSL's `count` after a
    /// repartition); `false` unless overridden. Such a processor cannot
    /// call [`ProcessorContext::schedule`]. The topology, its description
    /// and the records are the same either way.
    fn runs_inline(&self) -> bool {
        false
    }
}

/// Marks the record types of a processor without owning any.
pub(crate) type TypesMarker<KIn, VIn, KOut, VOut> = PhantomData<fn(KIn, VIn) -> (KOut, VOut)>;

/// A [`Processor`] from a closure; see [`processor_fn`].
pub struct FnProcessor<F, KIn, VIn, KOut, VOut> {
    f: F,
    /// Made by [`stateless_fn`]: see [`Processor::runs_inline`].
    inline: bool,
    _types: TypesMarker<KIn, VIn, KOut, VOut>,
}

impl<F, KIn, VIn, KOut, VOut> fmt::Debug for FnProcessor<F, KIn, VIn, KOut, VOut> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnProcessor").finish_non_exhaustive()
    }
}

/// A stateless [`Processor`] whose `process` is `f`.
///
/// ```
/// use streams_core::{processor_fn, ProcessorContext, Record, Serdes, Topology};
///
/// let mut topology = Topology::new();
/// topology
///     .add_source("in", Serdes::string(), Serdes::string(), &["input"])?
///     .add_processor(
///         "upper",
///         || processor_fn(|ctx: &mut ProcessorContext<'_, String, String>, r: Record<String, String>| {
///             let value = r.value.as_ref().map(|v| v.to_uppercase());
///             ctx.forward(r.with_value(value))
///         }),
///         &["in"],
///     )?;
/// # Ok::<(), streams_core::StreamsError>(())
/// ```
pub fn processor_fn<KIn, VIn, KOut, VOut, F>(f: F) -> FnProcessor<F, KIn, VIn, KOut, VOut>
where
    F: FnMut(&mut ProcessorContext<'_, KOut, VOut>, Record<KIn, VIn>) -> Result<()>
        + Send
        + 'static,
{
    FnProcessor {
        f,
        inline: false,
        _types: PhantomData,
    }
}

/// A stateless [`Processor`] whose `process` is `f`, as [`processor_fn`],
/// that the task may run inside its parent's call
/// ([`Processor::runs_inline`]): for a function of the record alone, which
/// uses no store and schedules no punctuation. The DSL's stateless
/// operations (`filter`, `map`, `flat_map_values`, ...) are made with it.
/// [`ProcessorContext::schedule`] called from such a processor is an error.
pub fn stateless_fn<KIn, VIn, KOut, VOut, F>(f: F) -> FnProcessor<F, KIn, VIn, KOut, VOut>
where
    F: FnMut(&mut ProcessorContext<'_, KOut, VOut>, Record<KIn, VIn>) -> Result<()>
        + Send
        + 'static,
{
    FnProcessor {
        f,
        inline: true,
        _types: PhantomData,
    }
}

impl<F, KIn, VIn, KOut, VOut> Processor<KIn, VIn, KOut, VOut>
    for FnProcessor<F, KIn, VIn, KOut, VOut>
where
    F: FnMut(&mut ProcessorContext<'_, KOut, VOut>, Record<KIn, VIn>) -> Result<()>
        + Send
        + 'static,
    KIn: 'static,
    VIn: 'static,
    KOut: 'static,
    VOut: 'static,
{
    #[inline(always)]
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, KOut, VOut>,
        record: Record<KIn, VIn>,
    ) -> Result<()> {
        (self.f)(ctx, record)
    }

    #[doc(hidden)]
    fn runs_inline(&self) -> bool {
        self.inline
    }
}

/// What a [`Processor`] works through: forwarding, stores, record metadata,
/// punctuation and commit requests, as Kafka's `ProcessorContext`.
///
/// A context lives for one call (`init`, `process`, a punctuator, a flush)
/// and borrows the task; a store view borrows the context, so drop it
/// before forwarding.
pub struct ProcessorContext<'a, KOut, VOut> {
    exec: Exec<'a>,
    node: usize,
    /// The only child, when it runs inside this node's call: its index and
    /// its typed entry.
    inline_child: Option<(usize, &'a mut dyn TypedInput<KOut, VOut>)>,
}

impl<KOut, VOut> fmt::Debug for ProcessorContext<'_, KOut, VOut> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessorContext")
            .field("task_id", &self.exec.plan.task_id)
            .field("node", &self.node_name())
            .field("record", &self.exec.state.current)
            .finish_non_exhaustive()
    }
}

impl<'a, KOut, VOut> ProcessorContext<'a, KOut, VOut> {
    pub(crate) fn new(exec: Exec<'a>, node: usize) -> Self {
        Self::with_inline_child(exec, node, None)
    }

    /// A context whose forwards go straight to `inline_child`, the node's
    /// only child, run inside the node's call.
    pub(crate) fn with_inline_child(
        exec: Exec<'a>,
        node: usize,
        inline_child: Option<(usize, &'a mut dyn TypedInput<KOut, VOut>)>,
    ) -> Self {
        Self {
            exec,
            node,
            inline_child,
        }
    }

    /// Sends `record` to every child of this node, depth first: when this
    /// returns, the children (and theirs) have processed it. A record sent
    /// to several children is cloned for all but the last.
    #[inline(always)]
    pub fn forward(&mut self, record: Record<KOut, VOut>) -> Result<()>
    where
        KOut: Clone + 'static,
        VOut: Clone + 'static,
    {
        if let Some((child, input)) = &mut self.inline_child {
            return run_inline(&mut self.exec, *child, &mut **input, record);
        }
        forward_from(&mut self.exec, self.node, record).map_err(|e| *e)
    }

    /// Sends `record` to the child named `child` only.
    pub fn forward_to(&mut self, child: &str, record: Record<KOut, VOut>) -> Result<()>
    where
        KOut: 'static,
        VOut: 'static,
    {
        let plan = self.exec.plan;
        let Some(&target) = plan.nodes[self.node]
            .children
            .iter()
            .find(|&&c| plan.nodes[c].name == child)
        else {
            return Err(StreamsError::UnknownChild {
                node: self.node_name().to_owned(),
                child: child.to_owned(),
            });
        };
        if let Some((inline, input)) = &mut self.inline_child {
            if *inline == target {
                return run_inline(&mut self.exec, target, &mut **input, record);
            }
        }
        process_at(&mut self.exec, target, record).map_err(|e| *e)
    }

    /// The name of this node.
    pub fn node_name(&self) -> &str {
        &self.exec.plan.nodes[self.node].name
    }

    /// The names of this node's children, in the order records reach them.
    pub fn child_names(&self) -> impl Iterator<Item = &str> {
        let plan = self.exec.plan;
        plan.nodes[self.node]
            .children
            .iter()
            .map(move |&c| plan.nodes[c].name.as_str())
    }

    /// The task running this node.
    pub fn task_id(&self) -> TaskId {
        self.exec.plan.task_id
    }

    /// `application.id`.
    pub fn application_id(&self) -> &str {
        &self.exec.plan.application_id
    }

    /// Where the record being processed came from; `None` in `init`, in
    /// punctuators and in [`Processor::flushed`].
    pub fn record_metadata(&self) -> Option<&RecordMetadata> {
        self.exec.state.current.as_ref()
    }

    /// The task's stream time: the largest record timestamp seen, the
    /// current record included; `None` before the first record.
    pub fn stream_time(&self) -> Option<i64> {
        self.exec.state.stream_time
    }

    /// The stream time the task resumed from when it restarted: the largest
    /// partition time committed with its input offsets (Kafka Streams'
    /// offset metadata); `None` for a task that started without one. A
    /// processor that keeps a stream time of its own (a windowed
    /// aggregation) starts from it, so that after a restart it does not
    /// take back records for windows it had closed.
    pub fn resumed_stream_time(&self) -> Option<i64> {
        self.exec.state.resumed_stream_time
    }

    /// The task's stream time when its record caches were last flushed (at
    /// a commit, or before an idle-input advance of stream time): every
    /// update that the records up to this time made to a cached store has
    /// been handed downstream. [`ProcessorContext::stream_time`] may run
    /// ahead of updates still waiting in a cache; a processor downstream of
    /// a cache that decides by time that a result is final (as `suppress`
    /// does) can rely on this one. `None` before the first flush.
    pub fn flushed_stream_time(&self) -> Option<i64> {
        self.exec.state.flushed_stream_time
    }

    /// The wall-clock time in epoch milliseconds (the test driver's mock
    /// clock in tests).
    pub fn wall_clock_time(&self) -> i64 {
        self.exec.state.wall_clock
    }

    /// The value named `name` that the processors of this task share:
    /// made by `init` for the first processor that asks, handed to every
    /// later caller in this task. Processors of one task run on one
    /// thread, one call at a time, so a `Mutex` or atomics inside `T` are
    /// never contended. The value lives as long as the task: a task
    /// closed and opened again (after a rebalance, a restart, a crash)
    /// starts without it. For processors of one operation that must see
    /// each other's state, as the two sides of a stream–stream join
    /// share their stream time (Kafka's `TimeTracker` per task).
    ///
    /// A value of another type already under `name` is
    /// [`StreamsError::InvalidTopology`].
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use std::sync::Arc;
    /// use streams_core::{Processor, ProcessorContext, Record, Result};
    ///
    /// /// Counts the records of every processor that shares `"seen"`.
    /// struct SharedCount(Option<Arc<AtomicU64>>);
    ///
    /// impl Processor<String, String, String, u64> for SharedCount {
    ///     fn init(&mut self, ctx: &mut ProcessorContext<'_, String, u64>) -> Result<()> {
    ///         self.0 = Some(ctx.task_shared("seen", || AtomicU64::new(0))?);
    ///         Ok(())
    ///     }
    ///
    ///     fn process(&mut self, ctx: &mut ProcessorContext<'_, String, u64>, r: Record<String, String>) -> Result<()> {
    ///         let seen = self.0.as_ref().map_or(0, |c| c.fetch_add(1, Ordering::Relaxed) + 1);
    ///         ctx.forward(r.with_value(Some(seen)))
    ///     }
    /// }
    /// ```
    pub fn task_shared<T: std::any::Any + Send + Sync>(
        &mut self,
        name: &str,
        init: impl FnOnce() -> T,
    ) -> Result<Arc<T>> {
        self.exec
            .state
            .shared
            .get_or_init(name, init)
            .ok_or_else(|| StreamsError::InvalidTopology {
                reason: format!(
                    "processor '{}' asked for the task's shared value '{name}' as a {}, but another processor made it with another type",
                    self.node_name(),
                    std::any::type_name::<T>()
                ),
            })
    }

    /// Asks for a commit as soon as possible (after the current record).
    pub fn commit(&mut self) {
        self.exec.state.commit_requested = true;
    }

    fn store_index(&self, name: &str) -> Result<usize> {
        let plan = self.exec.plan;
        plan.nodes[self.node]
            .stores
            .iter()
            .copied()
            .find(|&s| self.exec.state.stores[s].name == name)
            .ok_or_else(|| StreamsError::StoreNotConnected {
                processor: self.node_name().to_owned(),
                store: name.to_owned(),
            })
    }

    /// The stores connected to this node, as a view that does not depend
    /// on this context's output types: what a function shared by
    /// processors of different output types (a table's value getter, say)
    /// reads stores through.
    pub fn stores(&mut self) -> ConnectedStores<'_> {
        ConnectedStores {
            plan: self.exec.plan,
            state: &mut *self.exec.state,
            node: self.node,
        }
    }

    /// A typed view of store `name`, which must be connected to this node
    /// and hold `K` to `V`.
    pub fn key_value_store<K: 'static, V: 'static>(
        &mut self,
        name: &str,
    ) -> Result<TypedKeyValueStore<'_, K, V>> {
        let index = self.store_index(name)?;
        self.exec.state.stores[index].typed()
    }

    /// A handle on key-value store `name`, which must be connected to
    /// this node and hold `K` to `V`: resolved once (in
    /// [`Processor::init`]), then used for each record with
    /// [`ProcessorContext::key_value_store_of`].
    pub fn key_value_store_handle<K: 'static, V: 'static>(
        &mut self,
        name: &str,
    ) -> Result<KeyValueStoreHandle<K, V>> {
        let index = self.store_index(name)?;
        self.exec.state.stores[index].handle(index)
    }

    /// The typed view of the store `handle` stands for
    /// ([`ProcessorContext::key_value_store`] without the lookup). The
    /// handle must come from this processor's context: a handle on a store
    /// this node is not connected to is an error.
    pub fn key_value_store_of<'s, K: 'static, V: 'static>(
        &'s mut self,
        handle: &'s KeyValueStoreHandle<K, V>,
    ) -> Result<TypedKeyValueStore<'s, K, V>> {
        self.view_of(handle.index(), handle.name(), |slot| {
            slot.typed_with(handle)
        })
    }

    /// A handle on window store `name`, which must be connected to this
    /// node and hold `K` to `V`: resolved once (in [`Processor::init`]),
    /// then used for each record with [`ProcessorContext::window_store_of`].
    pub fn window_store_handle<K: 'static, V: 'static>(
        &mut self,
        name: &str,
    ) -> Result<WindowStoreHandle<K, V>> {
        let index = self.store_index(name)?;
        self.exec.state.stores[index].window_handle(index)
    }

    /// The typed view of the window store `handle` stands for
    /// ([`ProcessorContext::window_store`] without the lookup); a handle
    /// on a store this node is not connected to is an error.
    pub fn window_store_of<'s, K: 'static, V: 'static>(
        &'s mut self,
        handle: &'s WindowStoreHandle<K, V>,
    ) -> Result<TypedWindowStore<'s, K, V>> {
        self.view_of(handle.index(), handle.name(), |slot| {
            slot.typed_window_with(handle)
        })
    }

    /// `view` of store `index` (named `name`), if this node is connected
    /// to it and `view` accepts it; else the error of a store this node
    /// is not connected to.
    #[inline(always)]
    fn view_of<'s, T>(
        &'s mut self,
        index: usize,
        name: &str,
        view: impl FnOnce(&'s mut StoreSlot) -> Option<T>,
    ) -> Result<T> {
        let (plan, node) = (self.exec.plan, self.node);
        let slot = if plan.nodes[node].stores.contains(&index) {
            self.exec.state.stores.get_mut(index)
        } else {
            None
        };
        slot.and_then(view)
            .ok_or_else(|| StreamsError::StoreNotConnected {
                processor: plan.nodes[node].name.clone(),
                store: name.to_owned(),
            })
    }

    /// A typed view of window store `name` (declared with
    /// [`crate::StoreBuilder::window`]), which must be connected to this
    /// node and hold `K` to `V`.
    pub fn window_store<K: 'static, V: 'static>(
        &mut self,
        name: &str,
    ) -> Result<TypedWindowStore<'_, K, V>> {
        let index = self.store_index(name)?;
        self.exec.state.stores[index].typed_window()
    }

    /// A typed view of session store `name` (declared with
    /// [`crate::StoreBuilder::session`]), which must be connected to this
    /// node and hold `K` to `V`.
    pub fn session_store<K: 'static, V: 'static>(
        &mut self,
        name: &str,
    ) -> Result<TypedSessionStore<'_, K, V>> {
        let index = self.store_index(name)?;
        self.exec.state.stores[index].typed_session()
    }

    /// A typed view of versioned key-value store `name` (declared with
    /// [`crate::StoreBuilder::versioned_key_value`]), which must be
    /// connected to this node and hold `K` to `V`.
    pub fn versioned_key_value_store<K: 'static, V: 'static>(
        &mut self,
        name: &str,
    ) -> Result<TypedVersionedKeyValueStore<'_, K, V>> {
        let index = self.store_index(name)?;
        self.exec.state.stores[index].typed_versioned()
    }

    /// Counts a record this processor dropped (a late record, say) in the
    /// task's `dropped-records` metric and this processor's share of it,
    /// which [`crate::TopologyTestDriver::dropped_records`],
    /// [`crate::TopologyTestDriver::dropped_records_metrics`] and
    /// [`crate::StreamsApp::dropped_records_metrics`] report.
    pub fn record_dropped(&mut self) {
        self.exec.state.record_dropped(self.node);
    }

    #[doc(hidden)]
    /// The key and value bytes of the input record being processed, as read
    /// from the task's input topic (a source topic or a repartition topic);
    /// `None` outside `process` or when no input record is being processed
    /// (punctuators, flushes).
    pub fn input_bytes(&self) -> Option<(Option<&Bytes>, Option<&Bytes>)> {
        self.exec
            .state
            .current_bytes
            .as_ref()
            .map(|(k, v)| (k.as_ref(), v.as_ref()))
    }

    /// Writes a record of bytes to `topic`, outside the topology's sinks
    /// (a dead-letter topic, say): it goes out with the task's other output
    /// (in the same transaction under exactly-once), partitioned by its
    /// key. Declare the topic with [`crate::Topology::add_output_topic`]
    /// so that the runtime creates it.
    pub fn send_bytes(
        &mut self,
        topic: &str,
        key: Option<Bytes>,
        value: Option<Bytes>,
        timestamp: i64,
        headers: Headers,
    ) {
        self.exec.state.output.push_raw(
            &Arc::from(topic),
            RawRecord {
                key,
                value,
                timestamp,
                headers,
            },
        );
    }

    /// Holds the commits of input `topic`-`partition` at `offset`: until the
    /// hold is released (`None`), the task commits that partition's offset
    /// no further than `offset`, whatever it processed after it; records
    /// from `offset` on are read again after a crash or a rebalance. For a
    /// processor that keeps records it has not processed yet (a batch), so
    /// that a commit never covers them. The hold is the task's, not the
    /// node's: one holder per partition.
    pub fn hold_commit(&mut self, topic: &str, partition: u32, offset: Option<u64>) {
        let key = (topic.to_owned(), partition);
        match offset {
            Some(offset) => {
                self.exec.state.commit_holds.insert(key, offset);
            }
            None => {
                self.exec.state.commit_holds.remove(&key);
            }
        }
    }

    /// Whether store `name` (connected to this node) has a record cache.
    pub fn caching_enabled(&self, name: &str) -> Result<bool> {
        let index = self.store_index(name)?;
        Ok(self.exec.state.stores[index].caching)
    }

    /// Registers this node to receive the updates leaving store `name`'s
    /// record cache, through [`Processor::flushed`]. A no-op for a store
    /// without a cache: its writes are final at once, so forward them
    /// directly (check with [`ProcessorContext::caching_enabled`]).
    pub fn set_flush_listener(&mut self, name: &str) -> Result<()> {
        let index = self.store_index(name)?;
        let listeners = &mut self.exec.state.stores[index].listeners;
        if !listeners.contains(&self.node) {
            listeners.push(self.node);
        }
        Ok(())
    }

    /// Schedules `callback` every `interval` of `kind` time, with Kafka's
    /// rules (see [`crate::punctuation`]): a stream-time schedule fires as
    /// soon as data arrives, then at each multiple of `interval`; a
    /// wall-clock schedule first fires at `now + interval`. The callback
    /// receives the current time of that clock. The minimum interval is
    /// 1 ms. A processor made with [`stateless_fn`] cannot schedule
    /// ([`StreamsError::InlineSchedule`]).
    pub fn schedule<F>(
        &mut self,
        interval: Duration,
        kind: PunctuationType,
        mut callback: F,
    ) -> Result<Cancellable>
    where
        F: FnMut(&mut ProcessorContext<'_, KOut, VOut>, i64) -> Result<()> + Send + 'static,
        KOut: 'static,
        VOut: 'static,
    {
        if self
            .exec
            .state
            .inline
            .get(self.node)
            .copied()
            .unwrap_or(false)
        {
            return Err(StreamsError::InlineSchedule {
                processor: self.node_name().to_owned(),
            });
        }
        let millis = interval.as_millis();
        let interval = match i64::try_from(millis) {
            Ok(ms) if ms >= 1 => ms,
            _ => {
                return Err(StreamsError::InvalidInterval {
                    interval_ms: millis,
                })
            }
        };
        let first = match kind {
            PunctuationType::StreamTime => 0,
            PunctuationType::WallClockTime => self.exec.state.wall_clock.saturating_add(interval),
        };
        let erased: PunctuatorFn = Box::new(move |exec: Exec<'_>, node: usize, now: i64| {
            let mut ctx = ProcessorContext::<KOut, VOut>::new(exec, node);
            callback(&mut ctx, now)
        });
        let handle = Cancellable::default();
        let state = &mut *self.exec.state;
        let id = state.next_schedule_id;
        state.next_schedule_id += 1;
        state.schedules.push(Schedule {
            id,
            node: self.node,
            kind,
            interval,
            next: first,
            handle: handle.clone(),
            callback: Some(erased),
        });
        tracing::debug!(node = %self.node_name(), ?kind, interval, first, "scheduled punctuator");
        Ok(handle)
    }
}

/// The stores connected to one processor node, apart from the node's
/// output types ([`ProcessorContext::stores`]).
pub struct ConnectedStores<'a> {
    plan: &'a TaskPlan,
    state: &'a mut TaskState,
    node: usize,
}

impl fmt::Debug for ConnectedStores<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectedStores")
            .field("node", &self.plan.nodes[self.node].name)
            .finish_non_exhaustive()
    }
}

impl ConnectedStores<'_> {
    /// A read-only view of global table `name` (added with
    /// [`crate::Topology::add_global_table`]), decoding rows with
    /// `key_serde` and `value_serde`; every processor may read every
    /// global table.
    pub fn global_table<K: 'static, V: 'static>(
        &self,
        name: &str,
        key_serde: Arc<dyn Serde<K>>,
        value_serde: Arc<dyn Serde<V>>,
    ) -> Result<GlobalTableView<K, V>> {
        let table = self
            .state
            .globals
            .get(name)
            .ok_or_else(|| StreamsError::UnknownStore {
                processor: self.plan.nodes[self.node].name.clone(),
                store: name.to_owned(),
            })?;
        Ok(GlobalTableView::new(table.clone(), key_serde, value_serde))
    }

    /// The index of store `name`, which must be connected to this node.
    fn store_index(&self, name: &str) -> Result<usize> {
        let node = &self.plan.nodes[self.node];
        node.stores
            .iter()
            .copied()
            .find(|&s| self.state.stores[s].name == name)
            .ok_or_else(|| StreamsError::StoreNotConnected {
                processor: node.name.clone(),
                store: name.to_owned(),
            })
    }

    /// A typed view of key-value store `name`, which must be connected to
    /// this node and hold `K` to `V`.
    pub fn key_value_store<K: 'static, V: 'static>(
        &mut self,
        name: &str,
    ) -> Result<TypedKeyValueStore<'_, K, V>> {
        let index = self.store_index(name)?;
        self.state.stores[index].typed()
    }

    /// A typed view of versioned key-value store `name`, which must be
    /// connected to this node and hold `K` to `V`.
    pub fn versioned_key_value_store<K: 'static, V: 'static>(
        &mut self,
        name: &str,
    ) -> Result<TypedVersionedKeyValueStore<'_, K, V>> {
        let index = self.store_index(name)?;
        self.state.stores[index].typed_versioned()
    }
}
