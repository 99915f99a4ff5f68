//! [`TopologyTestDriver`]: runs a topology synchronously, with no broker, as
//! Kafka Streams' `TopologyTestDriver`.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use state_store::{CacheBudget, PutOutcome, StoreBackend, VersionedRecord};

use crate::client::{InRecord, TopicPartition};
use crate::config::StreamsConfig;
use crate::error::{Result, StreamsError};
use crate::exec::DroppedRecordsMetric;
use crate::global::{Applied, GlobalTableView, GlobalTables};
use crate::record::Headers;
use crate::record::RawRecord;
use crate::serdes::{Serde, Windowed};
use crate::task::{Task, TaskOptions};
use crate::topology::Topology;

/// When the test driver commits (flushing record caches downstream).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CommitMode {
    /// After every input record and every wall-clock advance, as Kafka's
    /// driver: caches never hold anything back, every update is visible.
    #[default]
    EveryRecord,
    /// As production: commit every `commit.interval.ms` of the driver's
    /// wall clock (and when a processor asks), with record caches bounded
    /// by `cache.max.bytes.buffering`; a test sees what production would
    /// emit.
    Interval,
}

/// Settings of a [`TopologyTestDriver`].
#[derive(Debug, Clone)]
pub struct TestDriverConfig {
    streams: StreamsConfig,
    commit_mode: CommitMode,
    initial_wall_clock_ms: i64,
    declared_backends: bool,
}

impl Default for TestDriverConfig {
    fn default() -> Self {
        Self {
            streams: StreamsConfig::new("test-driver"),
            commit_mode: CommitMode::EveryRecord,
            initial_wall_clock_ms: 0,
            declared_backends: false,
        }
    }
}

impl TestDriverConfig {
    /// Application id `test-driver`, commit after every record, wall clock
    /// at 0, every store in memory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Uses `config` (application id, caches, commit interval, handlers).
    pub fn with_streams_config(mut self, config: StreamsConfig) -> Self {
        self.streams = config;
        self
    }

    /// Chooses when to commit.
    pub fn with_commit_mode(mut self, mode: CommitMode) -> Self {
        self.commit_mode = mode;
        self
    }

    /// Shorthand for [`CommitMode::Interval`]: production caching and
    /// commit interval.
    pub fn with_production_caching(self) -> Self {
        self.with_commit_mode(CommitMode::Interval)
    }

    /// Starts the mock wall clock at `ms` (epoch milliseconds).
    pub fn with_initial_wall_clock_ms(mut self, ms: i64) -> Self {
        self.initial_wall_clock_ms = ms;
        self
    }

    /// Runs each store on the backend its [`crate::StoreBuilder`] declares,
    /// in a fresh directory under `state.dir` removed on close. By default
    /// every store is in memory.
    pub fn with_declared_store_backends(mut self) -> Self {
        self.declared_backends = true;
        self
    }

    /// The streams configuration.
    pub fn streams_config(&self) -> &StreamsConfig {
        &self.streams
    }

    /// The commit mode.
    pub fn commit_mode(&self) -> CommitMode {
        self.commit_mode
    }
}

#[derive(Debug, Default)]
struct TopicLog {
    next_offset: u64,
    unread: VecDeque<RawRecord>,
    /// Whether the topology wrote to the topic (not only the test).
    produced: bool,
}

#[derive(Debug)]
struct DriverInner {
    tasks: Vec<Task>,
    /// The global tables, updated as soon as a record reaches their topic.
    globals: Arc<GlobalTables>,
    task_of_topic: HashMap<String, usize>,
    topics: HashMap<String, TopicLog>,
    /// Records to process, in order: piped input and loop-backs.
    pending: VecDeque<(Arc<str>, u64, RawRecord)>,
    wall_clock: i64,
    last_commit: i64,
    commit_mode: CommitMode,
    commit_interval_ms: i64,
    /// A state directory the driver created (removed on close).
    state_dir: Option<PathBuf>,
    closed: bool,
    /// `task.idle.wall.clock.advance.ms`.
    idle_advance_ms: Option<i64>,
    /// Per task: the wall clock when it last processed a record, and its
    /// stream time then.
    last_record: Vec<Option<(i64, i64)>>,
}

static DRIVER_COUNTER: AtomicU64 = AtomicU64::new(0);

impl DriverInner {
    fn check_open(&self) -> Result<()> {
        if self.closed {
            Err(StreamsError::Closed)
        } else {
            Ok(())
        }
    }

    fn append(&mut self, topic: &str) -> (&mut TopicLog, u64) {
        let log = self.topics.entry(topic.to_owned()).or_default();
        let offset = log.next_offset;
        log.next_offset += 1;
        (log, offset)
    }

    fn pipe(&mut self, topic: &str, raw: RawRecord) -> Result<()> {
        self.check_open()?;
        if !self.task_of_topic.contains_key(topic) && self.globals.by_topic(topic).is_none() {
            return Err(StreamsError::UnknownTopic {
                topic: topic.to_owned(),
            });
        }
        let (_, offset) = self.append(topic);
        self.pending.push_back((Arc::from(topic), offset, raw));
        self.run()
    }

    /// Processes pending records until none are left. After an error the
    /// pending records are dropped.
    fn run(&mut self) -> Result<()> {
        let result = self.run_pending();
        if result.is_err() {
            self.pending.clear();
        }
        result
    }

    fn run_pending(&mut self) -> Result<()> {
        while let Some((topic, offset, raw)) = self.pending.pop_front() {
            if let Some(table) = self.globals.by_topic(&topic) {
                // As the global thread would, before any later record.
                let applied = table.apply(
                    (0, offset),
                    raw.key.as_ref(),
                    raw.value.as_ref(),
                    raw.timestamp,
                )?;
                if applied == Applied::NullKey {
                    tracing::warn!(table = %table.name(), topic = %topic, offset, "skipping global table record with a null key");
                }
                continue;
            }
            let Some(&index) = self.task_of_topic.get(&*topic) else {
                return Err(StreamsError::UnknownTopic {
                    topic: topic.to_string(),
                });
            };
            let task = &mut self.tasks[index];
            // Through the task's partition group, as the stream threads
            // feed it (one record at a time here: no wait for other inputs).
            let record = InRecord {
                offset,
                timestamp: raw.timestamp,
                key: raw.key,
                value: raw.value,
                headers: raw.headers,
            };
            task.inputs_mut()
                .add_records(&TopicPartition::new(topic.to_string(), 0), vec![record]);
            task.process_buffered(None, &[])?;
            self.last_record[index] = task.stream_time().map(|t| (self.wall_clock, t));
            match self.commit_mode {
                CommitMode::EveryRecord => task.commit()?,
                CommitMode::Interval => {
                    if task.commit_requested() {
                        task.commit()?;
                    }
                }
            }
            self.capture();
            self.maybe_commit_on_interval()?;
        }
        Ok(())
    }

    /// In interval mode, commits every task once `commit.interval.ms` has
    /// passed on the wall clock since the last commit.
    fn maybe_commit_on_interval(&mut self) -> Result<()> {
        if self.commit_mode == CommitMode::Interval
            && self.wall_clock.saturating_sub(self.last_commit) >= self.commit_interval_ms
        {
            self.commit_all()?;
        }
        Ok(())
    }

    fn commit_all(&mut self) -> Result<()> {
        for task in &mut self.tasks {
            task.commit()?;
        }
        self.last_commit = self.wall_clock;
        self.capture();
        Ok(())
    }

    /// Moves the tasks' output to the topics; records for a topic that a
    /// source reads are queued for processing (repartition topics loop
    /// back, as in Kafka's driver).
    fn capture(&mut self) {
        for index in 0..self.tasks.len() {
            for (topic, raw) in self.tasks[index].take_output().into_records() {
                let loops_back = self.task_of_topic.contains_key(&*topic)
                    || self.globals.by_topic(&topic).is_some();
                let (log, offset) = self.append(&topic);
                log.produced = true;
                if loops_back {
                    log.unread.push_back(raw.clone());
                    self.pending.push_back((topic, offset, raw));
                } else {
                    log.unread.push_back(raw);
                }
            }
        }
    }

    fn advance_wall_clock(&mut self, advance: Duration) -> Result<()> {
        self.check_open()?;
        let millis = i64::try_from(advance.as_millis()).unwrap_or(i64::MAX);
        self.wall_clock = self.wall_clock.saturating_add(millis);
        let now = self.wall_clock;
        for (index, task) in self.tasks.iter_mut().enumerate() {
            task.punctuate_wall_clock(now)?;
            if let (Some(after), Some((at, base))) = (self.idle_advance_ms, self.last_record[index])
            {
                let idle = now.saturating_sub(at);
                if idle >= after {
                    task.advance_stream_time_idle(base.saturating_add(idle))?;
                }
            }
        }
        self.capture();
        match self.commit_mode {
            CommitMode::EveryRecord => self.commit_all()?,
            CommitMode::Interval => {
                for task in &mut self.tasks {
                    if task.commit_requested() {
                        task.commit()?;
                    }
                }
                self.capture();
                self.maybe_commit_on_interval()?;
            }
        }
        self.run()
    }

    fn find_store(&self, name: &str) -> Result<(usize, usize)> {
        self.tasks
            .iter()
            .enumerate()
            .find_map(|(t, task)| task.store_index(name).map(|s| (t, s)))
            .ok_or_else(|| StreamsError::NoSuchStore {
                store: name.to_owned(),
            })
    }

    fn close(&mut self) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        let mut first = None;
        for task in &mut self.tasks {
            if let Err(e) = task.close() {
                first.get_or_insert(e);
            }
        }
        self.capture();
        self.pending.clear();
        if let Some(dir) = self.state_dir.take() {
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot remove the test driver's state directory");
            }
        }
        first.map_or(Ok(()), Err)
    }
}

fn with_inner<R>(
    inner: &RefCell<DriverInner>,
    f: impl FnOnce(&mut DriverInner) -> Result<R>,
) -> Result<R> {
    let mut guard = inner
        .try_borrow_mut()
        .map_err(|_| StreamsError::Internal("the test driver was re-entered".to_owned()))?;
    f(&mut guard)
}

/// Runs a [`Topology`] synchronously with no broker, as Kafka Streams'
/// `TopologyTestDriver`.
///
/// Each sub-topology runs as one task over partition 0, with its own stream
/// time (the largest timestamp it has seen). Records piped into an input
/// topic are processed at once, depth first; records written to a topic
/// that a source reads (a repartition topic) are processed next, in the
/// order written. Everything written (sinks, changelogs
/// `<application.id>-<store>-changelog`, dead letters) can be read with an
/// output topic.
///
/// By default the driver commits after every record, so caches hold
/// nothing back; [`TestDriverConfig::with_production_caching`] commits on
/// the `commit.interval.ms` of the mock wall clock instead, which only
/// moves with [`TopologyTestDriver::advance_wall_clock_time`].
///
/// ```
/// use streams_core::{processor_fn, ProcessorContext, Record, Serdes, Topology, TopologyTestDriver};
///
/// let mut topology = Topology::new();
/// topology
///     .add_source("in", Serdes::string(), Serdes::string(), &["input"])?
///     .add_processor(
///         "upper",
///         || processor_fn(|ctx: &mut ProcessorContext<'_, String, String>, r: Record<String, String>| {
///             let upper = r.value.as_ref().map(|v| v.to_uppercase());
///             ctx.forward(r.with_value(upper))
///         }),
///         &["in"],
///     )?
///     .add_sink("out", "output", Serdes::string(), Serdes::string(), &["upper"])?;
///
/// let driver = TopologyTestDriver::new(topology)?;
/// let input = driver.create_input_topic("input", Serdes::string(), Serdes::string());
/// let output = driver.create_output_topic("output", Serdes::string(), Serdes::string());
/// input.pipe_input("k".to_owned(), "hello".to_owned())?;
/// assert_eq!(output.read_key_value()?, (Some("k".to_owned()), Some("HELLO".to_owned())));
/// assert!(output.is_empty());
/// # Ok::<(), streams_core::StreamsError>(())
/// ```
pub struct TopologyTestDriver {
    inner: Rc<RefCell<DriverInner>>,
}

impl fmt::Debug for TopologyTestDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TopologyTestDriver")
            .field("inner", &self.inner)
            .finish()
    }
}

impl TopologyTestDriver {
    /// A driver with the default [`TestDriverConfig`].
    pub fn new(topology: Topology) -> Result<Self> {
        Self::with_config(topology, TestDriverConfig::default())
    }

    /// A driver with `config`.
    pub fn with_config(topology: Topology, config: TestDriverConfig) -> Result<Self> {
        topology.validate()?;
        let streams = &config.streams;
        streams.validate()?;
        let subs = topology.sub_topologies();
        // One bound for every store's cache, as Kafka's driver's one
        // thread cache.
        let cache = CacheBudget::new(
            usize::try_from(streams.cache_max_bytes_buffering()).unwrap_or(usize::MAX),
        );

        let (backend, state_dir, created_dir) = if config.declared_backends {
            let dir = streams.state_dir().join(format!(
                "{}-driver-{}-{}",
                streams.application_id(),
                std::process::id(),
                DRIVER_COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            (None, dir.clone(), Some(dir))
        } else {
            (
                Some(StoreBackend::InMemory),
                streams.state_dir().to_path_buf(),
                None,
            )
        };

        let globals = Arc::new(GlobalTables::new(topology.global_tables()));
        let mut tasks = Vec::with_capacity(subs.len());
        let mut task_of_topic = HashMap::new();
        for sub in &subs {
            let options = TaskOptions {
                application_id: streams.application_id(),
                partition: 0,
                backend,
                state_dir: &state_dir,
                cache: cache.clone(),
                engine: streams.engine_options(),
                handler: streams.deserialization_handler(),
                dead_letter_topic: streams.dead_letter_topic(),
                wall_clock: config.initial_wall_clock_ms,
                timestamp_extractor: streams.default_timestamp_extractor(),
                globals: globals.clone(),
            };
            let mut task = Task::new(&topology, sub, &options)?;
            let topics: Vec<String> = task.source_topics().map(str::to_owned).collect();
            for topic in topics {
                task.add_input_partition(TopicPartition::new(topic.clone(), 0), &topic);
                task_of_topic.insert(topic, tasks.len());
            }
            tasks.push(task);
        }

        let mut inner = DriverInner {
            tasks,
            globals,
            task_of_topic,
            topics: HashMap::new(),
            pending: VecDeque::new(),
            wall_clock: config.initial_wall_clock_ms,
            last_commit: config.initial_wall_clock_ms,
            commit_mode: config.commit_mode,
            commit_interval_ms: i64::try_from(streams.commit_interval_ms()).unwrap_or(i64::MAX),
            state_dir: created_dir,
            closed: false,
            idle_advance_ms: streams
                .task_idle_wall_clock_advance_ms()
                .map(|ms| i64::try_from(ms).unwrap_or(i64::MAX)),
            last_record: Vec::new(),
        };
        inner.last_record = vec![None; inner.tasks.len()];
        for task in &mut inner.tasks {
            task.init()?;
        }
        inner.capture();
        inner.run()?;
        tracing::debug!(tasks = inner.tasks.len(), mode = ?inner.commit_mode, "test driver started");
        Ok(Self {
            inner: Rc::new(RefCell::new(inner)),
        })
    }

    /// An input topic to pipe records into, serialized with the given
    /// serdes. Records piped without a timestamp get the driver's wall
    /// clock at creation; see [`TestInputTopic::advance_time`].
    pub fn create_input_topic<K: 'static, V: 'static>(
        &self,
        topic: &str,
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
    ) -> TestInputTopic<K, V> {
        let start = self.inner.borrow().wall_clock;
        self.create_input_topic_with_time(topic, key_serde, value_serde, start, Duration::ZERO)
    }

    /// An input topic whose records piped without a timestamp get `start_ms`,
    /// then `start_ms + auto_advance`, and so on.
    pub fn create_input_topic_with_time<K: 'static, V: 'static>(
        &self,
        topic: &str,
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
        start_ms: i64,
        auto_advance: Duration,
    ) -> TestInputTopic<K, V> {
        TestInputTopic {
            inner: self.inner.clone(),
            topic: topic.to_owned(),
            key_serde: Arc::new(key_serde),
            value_serde: Arc::new(value_serde),
            time: Cell::new(start_ms),
            auto_advance_ms: i64::try_from(auto_advance.as_millis()).unwrap_or(i64::MAX),
        }
    }

    /// An output topic to read, deserialized with the given serdes. Every
    /// output topic object of a topic shares one queue: a record is read
    /// once.
    pub fn create_output_topic<K: 'static, V: 'static>(
        &self,
        topic: &str,
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
    ) -> TestOutputTopic<K, V> {
        TestOutputTopic {
            inner: self.inner.clone(),
            topic: topic.to_owned(),
            key_serde: Arc::new(key_serde),
            value_serde: Arc::new(value_serde),
        }
    }

    /// Advances the mock wall clock, runs the wall-clock punctuators that
    /// are due, and commits (every time by default; in interval mode once
    /// `commit.interval.ms` has passed since the last commit).
    ///
    /// With `task.idle.wall.clock.advance.ms` set, a task whose last record
    /// is at least that old on the mock clock gets its stream time moved
    /// to its stream time at that record plus the mock time since, as the
    /// runtime does for idle inputs (the driver's inputs are always empty
    /// between pipes).
    pub fn advance_wall_clock_time(&self, advance: Duration) -> Result<()> {
        with_inner(&self.inner, |inner| inner.advance_wall_clock(advance))
    }

    /// The mock wall clock, epoch milliseconds.
    pub fn wall_clock_time(&self) -> i64 {
        self.inner.borrow().wall_clock
    }

    /// A read-only view of global table `name`, decoding its rows with
    /// `key_serde` and `value_serde`.
    pub fn get_global_table<K: 'static, V: 'static>(
        &self,
        name: &str,
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
    ) -> Result<GlobalTableView<K, V>> {
        let inner = self.inner.borrow();
        let table = inner
            .globals
            .get(name)
            .ok_or_else(|| StreamsError::UnknownStore {
                processor: "TopologyTestDriver".to_owned(),
                store: name.to_owned(),
            })?;
        Ok(GlobalTableView::new(
            table.clone(),
            Arc::new(key_serde),
            Arc::new(value_serde),
        ))
    }

    /// Typed access to key-value store `name`. Writes go through the
    /// store's cache and changelog like a processor's.
    pub fn get_key_value_store<K: 'static, V: 'static>(
        &self,
        name: &str,
    ) -> Result<DriverKeyValueStore<K, V>> {
        let (task, store) = with_inner(&self.inner, |inner| {
            let (task, store) = inner.find_store(name)?;
            // Checks the types now rather than at first use.
            inner.tasks[task].with_store(store, |slot| slot.typed::<K, V>().map(|_| ()))?;
            Ok((task, store))
        })?;
        Ok(DriverKeyValueStore {
            inner: self.inner.clone(),
            name: name.to_owned(),
            task,
            store,
            _types: PhantomData,
        })
    }

    /// Typed access to session store `name` (declared with
    /// [`crate::StoreBuilder::session`]). Writes go through the store's
    /// changelog like a processor's.
    pub fn get_session_store<K: 'static, V: 'static>(
        &self,
        name: &str,
    ) -> Result<DriverSessionStore<K, V>> {
        let (task, store) = with_inner(&self.inner, |inner| {
            let (task, store) = inner.find_store(name)?;
            inner.tasks[task].with_store(store, |slot| slot.typed_session::<K, V>().map(|_| ()))?;
            Ok((task, store))
        })?;
        Ok(DriverSessionStore {
            inner: self.inner.clone(),
            name: name.to_owned(),
            task,
            store,
            _types: PhantomData,
        })
    }

    /// Typed access to window store `name` (declared with
    /// [`crate::StoreBuilder::window`]). Writes go through the store's
    /// cache and changelog like a processor's.
    pub fn get_window_store<K: 'static, V: 'static>(
        &self,
        name: &str,
    ) -> Result<DriverWindowStore<K, V>> {
        let (task, store) = with_inner(&self.inner, |inner| {
            let (task, store) = inner.find_store(name)?;
            inner.tasks[task].with_store(store, |slot| slot.typed_window::<K, V>().map(|_| ()))?;
            Ok((task, store))
        })?;
        Ok(DriverWindowStore {
            inner: self.inner.clone(),
            name: name.to_owned(),
            task,
            store,
            _types: PhantomData,
        })
    }

    /// Typed access to versioned key-value store `name` (declared with
    /// [`crate::StoreBuilder::versioned_key_value`]), as Kafka's
    /// `getVersionedKeyValueStore`. Writes go through the store's changelog
    /// like a processor's.
    pub fn get_versioned_key_value_store<K: 'static, V: 'static>(
        &self,
        name: &str,
    ) -> Result<DriverVersionedKeyValueStore<K, V>> {
        let (task, store) = with_inner(&self.inner, |inner| {
            let (task, store) = inner.find_store(name)?;
            inner.tasks[task]
                .with_store(store, |slot| slot.typed_versioned::<K, V>().map(|_| ()))?;
            Ok((task, store))
        })?;
        Ok(DriverVersionedKeyValueStore {
            inner: self.inner.clone(),
            name: name.to_owned(),
            task,
            store,
            _types: PhantomData,
        })
    }

    /// The stream time of the task reading `topic`: the largest timestamp
    /// it has seen; `None` before its first record.
    pub fn stream_time(&self, topic: &str) -> Result<Option<i64>> {
        let inner = self.inner.borrow();
        let index = inner
            .task_of_topic
            .get(topic)
            .ok_or_else(|| StreamsError::UnknownTopic {
                topic: topic.to_owned(),
            })?;
        Ok(inner.tasks[*index].stream_time())
    }

    /// The `dropped-records` metric summed over tasks: records skipped for
    /// a negative extracted timestamp or by the deserialization exception
    /// handler, and records processors dropped (late records of windowed
    /// aggregations, for one).
    pub fn dropped_records(&self) -> u64 {
        self.inner
            .borrow()
            .tasks
            .iter()
            .map(Task::dropped_records)
            .sum()
    }

    /// The `dropped-records` metric per task and node, for the nodes that
    /// dropped any, sorted.
    pub fn dropped_records_metrics(&self) -> Vec<DroppedRecordsMetric> {
        let mut metrics: Vec<DroppedRecordsMetric> = self
            .inner
            .borrow()
            .tasks
            .iter()
            .flat_map(Task::dropped_records_metrics)
            .collect();
        metrics.sort();
        metrics
    }

    /// The topics written so far, sorted.
    pub fn produced_topic_names(&self) -> Vec<String> {
        let inner = self.inner.borrow();
        let mut names: Vec<String> = inner
            .topics
            .iter()
            .filter(|(_, log)| log.produced)
            .map(|(name, _)| name.clone())
            .collect();
        names.sort();
        names
    }

    /// Commits every task, closes every processor and store, and removes
    /// the state directory the driver created. Output written by the last
    /// commit stays readable. Dropping the driver closes it too, logging
    /// errors.
    pub fn close(self) -> Result<()> {
        with_inner(&self.inner, DriverInner::close)
    }
}

impl Drop for TopologyTestDriver {
    fn drop(&mut self) {
        if let Ok(mut inner) = self.inner.try_borrow_mut() {
            if let Err(e) = inner.close() {
                tracing::warn!(error = %e, "closing the topology test driver failed");
            }
        }
    }
}

/// A record read from or piped into a test topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRecord<K, V> {
    /// The key; `None` is a null key.
    pub key: Option<K>,
    /// The value; `None` is a null value (a tombstone).
    pub value: Option<V>,
    /// Epoch milliseconds.
    pub timestamp: i64,
    /// The headers.
    pub headers: Headers,
}

impl<K, V> TestRecord<K, V> {
    /// A record with a key and a value.
    pub fn new(key: K, value: V, timestamp: i64) -> Self {
        Self::from_parts(Some(key), Some(value), timestamp)
    }

    /// A record with an optional key and value.
    pub fn from_parts(key: Option<K>, value: Option<V>, timestamp: i64) -> Self {
        Self {
            key,
            value,
            timestamp,
            headers: Headers::new(),
        }
    }

    /// The same record with `headers`.
    pub fn with_headers(self, headers: Headers) -> Self {
        Self { headers, ..self }
    }
}

/// An input topic of a [`TopologyTestDriver`]; see
/// [`TopologyTestDriver::create_input_topic`].
pub struct TestInputTopic<K, V> {
    inner: Rc<RefCell<DriverInner>>,
    topic: String,
    key_serde: Arc<dyn Serde<K>>,
    value_serde: Arc<dyn Serde<V>>,
    time: Cell<i64>,
    auto_advance_ms: i64,
}

impl<K, V> fmt::Debug for TestInputTopic<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestInputTopic")
            .field("topic", &self.topic)
            .field("time", &self.time.get())
            .field("auto_advance_ms", &self.auto_advance_ms)
            .finish_non_exhaustive()
    }
}

impl<K: 'static, V: 'static> TestInputTopic<K, V> {
    /// The topic name.
    pub fn name(&self) -> &str {
        &self.topic
    }

    fn next_time(&self) -> i64 {
        let now = self.time.get();
        self.time.set(now.saturating_add(self.auto_advance_ms));
        now
    }

    /// Moves this topic's clock (the timestamp of records piped without
    /// one) forward.
    pub fn advance_time(&self, advance: Duration) {
        let millis = i64::try_from(advance.as_millis()).unwrap_or(i64::MAX);
        self.time.set(self.time.get().saturating_add(millis));
    }

    /// Pipes a record and processes it (and everything it causes) at once.
    pub fn pipe_record(&self, record: TestRecord<K, V>) -> Result<()> {
        let raw = RawRecord {
            key: self
                .key_serde
                .serialize_nullable(&self.topic, record.key.as_ref())?,
            value: self
                .value_serde
                .serialize_nullable(&self.topic, record.value.as_ref())?,
            timestamp: record.timestamp,
            headers: record.headers,
        };
        with_inner(&self.inner, |inner| inner.pipe(&self.topic, raw))
    }

    /// Pipes `key` and `value` with this topic's current time.
    pub fn pipe_input(&self, key: K, value: V) -> Result<()> {
        let timestamp = self.next_time();
        self.pipe_record(TestRecord::new(key, value, timestamp))
    }

    /// Pipes `value` with a null key and this topic's current time.
    pub fn pipe_value(&self, value: V) -> Result<()> {
        let timestamp = self.next_time();
        self.pipe_record(TestRecord::from_parts(None, Some(value), timestamp))
    }

    /// Pipes `key` and `value` with `timestamp`.
    pub fn pipe_input_with_timestamp(&self, key: K, value: V, timestamp: i64) -> Result<()> {
        self.pipe_record(TestRecord::new(key, value, timestamp))
    }

    /// Pipes each record in order.
    pub fn pipe_record_list(
        &self,
        records: impl IntoIterator<Item = TestRecord<K, V>>,
    ) -> Result<()> {
        records.into_iter().try_for_each(|r| self.pipe_record(r))
    }

    /// Pipes each pair in order, with this topic's clock.
    pub fn pipe_key_value_list(&self, pairs: impl IntoIterator<Item = (K, V)>) -> Result<()> {
        pairs
            .into_iter()
            .try_for_each(|(k, v)| self.pipe_input(k, v))
    }

    /// Pipes each value in order with a null key, with this topic's clock.
    pub fn pipe_value_list(&self, values: impl IntoIterator<Item = V>) -> Result<()> {
        values.into_iter().try_for_each(|v| self.pipe_value(v))
    }
}

/// An output topic of a [`TopologyTestDriver`]; see
/// [`TopologyTestDriver::create_output_topic`].
pub struct TestOutputTopic<K, V> {
    inner: Rc<RefCell<DriverInner>>,
    topic: String,
    key_serde: Arc<dyn Serde<K>>,
    value_serde: Arc<dyn Serde<V>>,
}

impl<K, V> fmt::Debug for TestOutputTopic<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestOutputTopic")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl<K: 'static, V: 'static> TestOutputTopic<K, V> {
    /// The topic name.
    pub fn name(&self) -> &str {
        &self.topic
    }

    /// The number of unread records.
    pub fn queue_size(&self) -> usize {
        self.inner
            .borrow()
            .topics
            .get(&self.topic)
            .map_or(0, |log| log.unread.len())
    }

    /// Whether every record has been read.
    pub fn is_empty(&self) -> bool {
        self.queue_size() == 0
    }

    /// Reads the next record; [`StreamsError::EmptyTopic`] if there is
    /// none.
    pub fn read_record(&self) -> Result<TestRecord<K, V>> {
        let raw = self
            .inner
            .borrow_mut()
            .topics
            .get_mut(&self.topic)
            .and_then(|log| log.unread.pop_front())
            .ok_or_else(|| StreamsError::EmptyTopic {
                topic: self.topic.clone(),
            })?;
        Ok(TestRecord {
            key: self
                .key_serde
                .deserialize_nullable(&self.topic, raw.key.as_ref())?,
            value: self
                .value_serde
                .deserialize_nullable(&self.topic, raw.value.as_ref())?,
            timestamp: raw.timestamp,
            headers: raw.headers,
        })
    }

    /// Reads the next key and value.
    pub fn read_key_value(&self) -> Result<(Option<K>, Option<V>)> {
        self.read_record().map(|r| (r.key, r.value))
    }

    /// Reads the next value.
    pub fn read_value(&self) -> Result<Option<V>> {
        self.read_record().map(|r| r.value)
    }

    /// Reads every record.
    pub fn read_records_to_list(&self) -> Result<Vec<TestRecord<K, V>>> {
        let mut out = Vec::with_capacity(self.queue_size());
        while !self.is_empty() {
            out.push(self.read_record()?);
        }
        Ok(out)
    }

    /// Reads every key and value.
    pub fn read_key_values_to_list(&self) -> Result<Vec<(Option<K>, Option<V>)>> {
        Ok(self
            .read_records_to_list()?
            .into_iter()
            .map(|r| (r.key, r.value))
            .collect())
    }

    /// Reads every value.
    pub fn read_values_to_list(&self) -> Result<Vec<Option<V>>> {
        Ok(self
            .read_records_to_list()?
            .into_iter()
            .map(|r| r.value)
            .collect())
    }

    /// Reads every record into a map, the latest value of a key winning,
    /// as Kafka's `readKeyValuesToMap` (a tombstone is kept as `None`). A
    /// null key is an error.
    pub fn read_key_values_to_map(&self) -> Result<HashMap<K, Option<V>>>
    where
        K: Hash + Eq,
    {
        let mut map = HashMap::new();
        for record in self.read_records_to_list()? {
            let key = record.key.ok_or_else(|| StreamsError::NullKey {
                operation: "read_key_values_to_map",
                topic: self.topic.clone(),
            })?;
            map.insert(key, record.value);
        }
        Ok(map)
    }
}

/// A key-value store of a [`TopologyTestDriver`]'s task; see
/// [`TopologyTestDriver::get_key_value_store`].
pub struct DriverKeyValueStore<K, V> {
    inner: Rc<RefCell<DriverInner>>,
    name: String,
    task: usize,
    store: usize,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> fmt::Debug for DriverKeyValueStore<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DriverKeyValueStore")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<K: 'static, V: 'static> DriverKeyValueStore<K, V> {
    fn with<R>(
        &self,
        f: impl FnOnce(&mut crate::store::TypedKeyValueStore<'_, K, V>) -> Result<R>,
    ) -> Result<R> {
        with_inner(&self.inner, |inner| {
            inner.check_open()?;
            let result =
                inner.tasks[self.task].with_store(self.store, |slot| f(&mut slot.typed()?))?;
            inner.capture();
            inner.run()?;
            Ok(result)
        })
    }

    /// The store name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value of `key`.
    pub fn get(&self, key: &K) -> Result<Option<V>> {
        self.with(|s| s.get(key))
    }

    /// Sets `key` to `value`.
    pub fn put(&self, key: &K, value: &V) -> Result<()> {
        self.with(|s| s.put(key, value))
    }

    /// Removes `key`; returns its value.
    pub fn delete(&self, key: &K) -> Result<Option<V>> {
        self.with(|s| s.delete(key))
    }

    /// Every entry, in key order.
    pub fn all(&self) -> Result<Vec<(K, V)>> {
        self.with(|s| s.all()?.collect())
    }

    /// An estimate of the number of entries.
    pub fn approximate_num_entries(&self) -> Result<u64> {
        self.with(|s| s.approximate_num_entries())
    }
}

/// A window store of a [`TopologyTestDriver`], as Kafka's
/// `getWindowStore`.
pub struct DriverWindowStore<K, V> {
    inner: Rc<RefCell<DriverInner>>,
    name: String,
    task: usize,
    store: usize,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> fmt::Debug for DriverWindowStore<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DriverWindowStore")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<K: 'static, V: 'static> DriverWindowStore<K, V> {
    fn with<R>(
        &self,
        f: impl FnOnce(&mut crate::store::TypedWindowStore<'_, K, V>) -> Result<R>,
    ) -> Result<R> {
        with_inner(&self.inner, |inner| {
            inner.check_open()?;
            let result = inner.tasks[self.task]
                .with_store(self.store, |slot| f(&mut slot.typed_window()?))?;
            inner.capture();
            inner.run()?;
            Ok(result)
        })
    }

    /// The store name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value of `key` in the window starting at `window_start`.
    pub fn fetch(&self, key: &K, window_start: i64) -> Result<Option<V>> {
        self.with(|s| s.fetch(key, window_start))
    }

    /// The windows of `key` with `time_from <= start <= time_to`, by
    /// ascending start.
    pub fn fetch_range(&self, key: &K, time_from: i64, time_to: i64) -> Result<Vec<(i64, V)>> {
        self.with(|s| s.fetch_range(key, time_from, time_to))
    }

    /// Every window with `time_from <= start <= time_to`, by ascending
    /// start.
    pub fn fetch_all(&self, time_from: i64, time_to: i64) -> Result<Vec<(Windowed<K>, V)>> {
        self.with(|s| s.fetch_all(time_from, time_to))
    }

    /// Sets the value of `key` in the window starting at `window_start`.
    pub fn put(&self, key: &K, window_start: i64, value: Option<&V>) -> Result<()> {
        self.with(|s| s.put(key, window_start, value))
    }
}

/// A session store of a [`TopologyTestDriver`], as Kafka's
/// `getSessionStore`.
pub struct DriverSessionStore<K, V> {
    inner: Rc<RefCell<DriverInner>>,
    name: String,
    task: usize,
    store: usize,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> fmt::Debug for DriverSessionStore<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DriverSessionStore")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<K: 'static, V: 'static> DriverSessionStore<K, V> {
    fn with<R>(
        &self,
        f: impl FnOnce(&mut crate::store::TypedSessionStore<'_, K, V>) -> Result<R>,
    ) -> Result<R> {
        with_inner(&self.inner, |inner| {
            inner.check_open()?;
            let result = inner.tasks[self.task]
                .with_store(self.store, |slot| f(&mut slot.typed_session()?))?;
            inner.capture();
            inner.run()?;
            Ok(result)
        })
    }

    /// The store name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Every session of `key`, by ascending start.
    pub fn fetch(&self, key: &K) -> Result<Vec<(Windowed<K>, V)>> {
        self.with(|s| s.fetch(key))
    }

    /// The sessions of `key` with `end >= earliest_session_end` and
    /// `start <= latest_session_start`, by ascending start.
    pub fn find_sessions(
        &self,
        key: &K,
        earliest_session_end: i64,
        latest_session_start: i64,
    ) -> Result<Vec<(Windowed<K>, V)>> {
        self.with(|s| s.find_sessions(key, earliest_session_end, latest_session_start))
    }

    /// The aggregate of exactly `session`.
    pub fn fetch_session(&self, session: &Windowed<K>) -> Result<Option<V>> {
        self.with(|s| s.fetch_session(session))
    }

    /// Every session of every key.
    pub fn fetch_all(&self) -> Result<Vec<(Windowed<K>, V)>> {
        self.with(|s| s.fetch_all())
    }
}

/// A versioned key-value store of a [`TopologyTestDriver`]'s task; see
/// [`TopologyTestDriver::get_versioned_key_value_store`].
pub struct DriverVersionedKeyValueStore<K, V> {
    inner: Rc<RefCell<DriverInner>>,
    name: String,
    task: usize,
    store: usize,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> fmt::Debug for DriverVersionedKeyValueStore<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DriverVersionedKeyValueStore")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<K: 'static, V: 'static> DriverVersionedKeyValueStore<K, V> {
    fn with<R>(
        &self,
        f: impl FnOnce(&mut crate::store::TypedVersionedKeyValueStore<'_, K, V>) -> Result<R>,
    ) -> Result<R> {
        with_inner(&self.inner, |inner| {
            inner.check_open()?;
            let result = inner.tasks[self.task]
                .with_store(self.store, |slot| f(&mut slot.typed_versioned()?))?;
            inner.capture();
            inner.run()?;
            Ok(result)
        })
    }

    /// The store name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The latest version of `key`, unless it is a delete.
    pub fn get(&self, key: &K) -> Result<Option<VersionedRecord<V>>> {
        self.with(|s| s.get(key))
    }

    /// The version of `key` valid at `as_of`.
    pub fn get_as_of(&self, key: &K, as_of: i64) -> Result<Option<VersionedRecord<V>>> {
        self.with(|s| s.get_as_of(key, as_of))
    }

    /// Adds a version of `key` valid from `timestamp` (`None`: a delete).
    pub fn put(&self, key: &K, value: Option<&V>, timestamp: i64) -> Result<PutOutcome> {
        self.with(|s| s.put(key, value, timestamp))
    }

    /// Deletes `key` as of `timestamp`; returns the version valid then.
    pub fn delete(&self, key: &K, timestamp: i64) -> Result<Option<VersionedRecord<V>>> {
        self.with(|s| s.delete(key, timestamp))
    }
}

#[cfg(test)]
mod tests;
