//! [`StreamsApp`]: runs a [`Topology`] on the embedded broker or on a Kafka
//! cluster, as Kafka's `KafkaStreams`.
//!
//! The app creates the internal topics, then starts `num.stream.threads`
//! stream threads. Each is a member of the consumer group
//! `application.id`, subscribed to every source topic; it owns one task per
//! sub-topology and assigned input partition, restores the task's stores
//! from their changelogs, processes records (lowest timestamp first within
//! a task) and commits every `commit.interval.ms`: flush the caches, send
//! outputs and changelog records, make them durable, commit the consumed
//! offsets, write the checkpoint files
//! (`<state.dir>/<application.id>/<task id>/.checkpoint`).
//!
//! Under `processing.guarantee = exactly_once_v2` each stream thread writes
//! through its own transactional producer and a commit is a transaction:
//! outputs, changelog records and the consumed offsets commit together or
//! not at all. `docs/exactly-once.md` describes the protocol.

mod backend;
mod checkpoint;
mod clients;
mod commit;
mod directory;
mod eos;
mod flow_control;
mod global_thread;
mod instances;
mod queries;
mod rebalance;
mod restore;
mod sender;
mod setup;
mod state;
mod store_scan;
mod task_manager;
mod thread;
mod thread_metadata;

use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::client::kafka::KafkaClients;
use crate::client::ClientSupplier;
use crate::config::StreamsConfig;
use crate::error::{Result, StreamsError};
use crate::exec::TaskId;
use crate::query::{KeyQueryMetadata, StreamsMetadata};
use crate::serdes::Serde;
use crate::topology::Topology;

pub use self::backend::Backend;
use self::global_thread::GlobalThread;
use self::instances::InstancesThread;
pub use self::queries::InteractiveQueries;
use self::state::{lock, Shared};
pub use self::state::{AppState, PausePoint, StateListener};
use self::thread::ThreadHandle;
pub use self::thread_metadata::{PartitionMetadata, TaskMetadata, ThreadMetadata};

/// Runs a [`Topology`] against an embedded [`broker_embedded::Broker`] ([`StreamsApp::new`])
/// or a Kafka cluster ([`StreamsApp::connect`]), as Kafka's `KafkaStreams`.
///
/// ```no_run
/// # async fn example(topology: streams_core::Topology) -> Result<(), Box<dyn std::error::Error>> {
/// use broker_embedded::Broker;
/// use streams_core::{StreamsApp, StreamsConfig};
///
/// let broker = Broker::in_memory().await?;
/// let config = StreamsConfig::new("word-count").with_num_stream_threads(2);
/// let mut app = StreamsApp::new(topology, config, broker);
/// app.start().await?;
/// // ...
/// app.close().await?;
/// # Ok(())
/// # }
/// ```
pub struct StreamsApp {
    topology: Option<Topology>,
    config: StreamsConfig,
    clients: Arc<dyn ClientSupplier>,
    shared: Arc<Shared>,
    threads: Vec<ThreadHandle>,
    /// The global thread, when the topology has global tables.
    global: Option<GlobalThread>,
    /// The instances exchange, when `application.server` is set.
    instances: Option<InstancesThread>,
}

impl fmt::Debug for StreamsApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamsApp")
            .field("application_id", &self.config.application_id())
            .field("state", &self.shared.state())
            .field("threads", &self.threads.len())
            .finish_non_exhaustive()
    }
}

impl StreamsApp {
    /// An app that will run `topology` with `config` on `backend`: the
    /// embedded [`broker_embedded::Broker`] (see [`Backend`]).
    pub fn new(topology: Topology, config: StreamsConfig, backend: impl Backend) -> Self {
        Self {
            topology: Some(topology),
            config,
            clients: self::backend::clients_of(backend),
            shared: Arc::new(Shared::new()),
            threads: Vec::new(),
            global: None,
            instances: None,
        }
    }

    /// An app that will run `topology` with `config` on the Kafka cluster
    /// of its `bootstrap.servers`, through librdkafka: any broker that
    /// speaks the Kafka protocol (Apache Kafka, or `streams serve`).
    ///
    /// Client settings go to the clients by prefix (`consumer.`,
    /// `main.consumer.`, `restore.consumer.`, `producer.`, `admin.`), as
    /// in Kafka Streams; `replication.factor` sets the internal topics'
    /// replication factor (default: the broker's) and
    /// `default.api.timeout.ms` how long a blocking client call waits
    /// (default 60 s). Nothing connects before [`StreamsApp::start`].
    ///
    /// # Errors
    ///
    /// [`StreamsError::InvalidConfig`] when `bootstrap.servers` is not set,
    /// or when librdkafka rejects a client setting (the error names the
    /// key as given, e.g. `producer.linger.ms`).
    ///
    /// ```no_run
    /// # async fn example(topology: streams_core::Topology) -> streams_core::Result<()> {
    /// use streams_core::{ProcessingGuarantee, StreamsApp, StreamsConfig};
    ///
    /// let config = StreamsConfig::new("word-count")
    ///     .with_bootstrap_servers("localhost:9092")
    ///     .with_processing_guarantee(ProcessingGuarantee::ExactlyOnceV2);
    /// let mut app = StreamsApp::connect(topology, config)?;
    /// app.start().await?;
    /// // ...
    /// app.close().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn connect(topology: Topology, config: StreamsConfig) -> Result<Self> {
        let clients = KafkaClients::new(&config)?;
        Ok(Self {
            topology: Some(topology),
            config,
            clients: Arc::new(clients),
            shared: Arc::new(Shared::new()),
            threads: Vec::new(),
            global: None,
            instances: None,
        })
    }

    /// Sets the state listener (before or after `start`).
    pub fn set_state_listener(
        &self,
        listener: impl Fn(AppState, AppState) + Send + Sync + 'static,
    ) {
        *lock(&self.shared.listener) = Some(Arc::new(listener));
    }

    /// The current state.
    pub fn state(&self) -> AppState {
        self.shared.state()
    }

    /// Why the app is in [`AppState::Error`], if it is.
    pub fn error(&self) -> Option<String> {
        lock(&self.shared.error).clone()
    }

    /// The number of changelog records replayed into stores so far.
    pub fn restored_records(&self) -> u64 {
        self.shared.restored.load(Ordering::Relaxed)
    }

    /// How many times a stream thread of this instance closed its tasks
    /// dirty because its transaction failed (a fenced producer, a refused
    /// offset commit) or its partitions were lost.
    #[doc(hidden)]
    pub fn dirty_closes_for_tests(&self) -> u64 {
        self.shared.dirty_closes.load(Ordering::Relaxed)
    }

    /// The `dropped-records` metric of the tasks this instance owns now,
    /// per task and node (for the nodes that dropped any), sorted: records
    /// skipped for an invalid timestamp or by the deserialization exception
    /// handler, and records processors dropped (late records of windowed
    /// aggregations). A task's counts start at zero when this instance
    /// creates it, as Kafka's task-level metrics.
    pub fn dropped_records_metrics(&self) -> Vec<crate::exec::DroppedRecordsMetric> {
        let cores = lock(&self.shared.cores).clone();
        let mut metrics: Vec<_> = cores
            .iter()
            .flat_map(|core| {
                lock(core)
                    .tasks
                    .values()
                    .flat_map(|e| e.task.dropped_records_metrics())
                    .collect::<Vec<_>>()
            })
            .collect();
        metrics.sort();
        metrics
    }

    /// The tasks this instance owns now, sorted.
    pub fn local_tasks(&self) -> Vec<TaskId> {
        let cores = lock(&self.shared.cores).clone();
        let mut ids: Vec<TaskId> = cores
            .iter()
            .flat_map(|core| lock(core).tasks.keys().copied().collect::<Vec<_>>())
            .collect();
        ids.sort();
        ids
    }

    /// Checks the topology, creates the internal topics (changelogs,
    /// repartition topics) and starts the stream threads. Fails before
    /// starting anything if sources that share a task are not
    /// co-partitioned or a source topic is missing.
    pub async fn start(&mut self) -> Result<()> {
        let state = self.shared.state();
        let Some(topology) = self.topology.clone().filter(|_| state == AppState::Created) else {
            return Err(StreamsError::IllegalState {
                operation: "start",
                state: state.to_string(),
            });
        };
        let admin = self.clients.admin()?;
        let plan = Arc::new(setup::prepare(topology, self.config.clone(), &*admin).await?);
        let query_plan = queries::build_plan(&plan, &*admin).await?;
        *lock(&self.shared.query_plan) = Some(Arc::new(query_plan));
        if let Some(server) = self.config.application_server() {
            instances::create_topic(&*admin, self.config.application_id()).await?;
            self.instances = Some(instances::start(
                self.config.application_id(),
                server.to_owned(),
                self.clients.clone(),
                self.shared.clone(),
            )?);
        }
        if !plan.globals.is_empty() {
            // As Kafka Streams: the global tables are complete before any
            // task processes a record.
            self.global = Some(
                global_thread::start(
                    plan.clone(),
                    self.clients.clone(),
                    self.shared.clone(),
                    plan.global_partitions.clone(),
                )
                .await?,
            );
        }
        let threads = usize::try_from(self.config.num_stream_threads())
            .unwrap_or(1)
            .max(1);
        tracing::info!(
            application_id = self.config.application_id(),
            backend = self.clients.name(),
            threads,
            "starting the stream threads"
        );
        *lock(&self.shared.rebalancing) = vec![true; threads];
        self.shared
            .transition(AppState::Rebalancing, |old| old == AppState::Created);
        for index in 0..threads {
            let handle = match thread::spawn(
                index,
                plan.clone(),
                self.clients.clone(),
                self.shared.clone(),
            ) {
                Ok(handle) => handle,
                Err(e) => {
                    self.shared.fail(StreamsError::Internal(e.to_string()));
                    return Err(e);
                }
            };
            lock(&self.shared.cores).push(handle.core.clone());
            self.threads.push(handle);
        }
        tracing::info!(
            application_id = self.config.application_id(),
            threads,
            "streams application started"
        );
        Ok(())
    }

    /// Stops cleanly: each thread flushes its caches, sends pending
    /// output, commits offsets, writes checkpoints and leaves the group.
    /// Returns the error that put the app in [`AppState::Error`], if any.
    pub async fn close(&mut self) -> Result<()> {
        self.shared.transition(AppState::PendingShutdown, |old| {
            matches!(old, AppState::Rebalancing | AppState::Running)
        });
        self.shared.shutdown.store(true, Ordering::Release);
        self.resume_for_tests();
        for handle in &mut self.threads {
            if let Some(done) = handle.done.take() {
                // An error means the thread is gone already.
                drop(done.await);
            }
            if let Some(join) = handle.join.take() {
                if join.join().is_err() {
                    self.shared.fail(StreamsError::Internal(
                        "a stream thread panicked".to_owned(),
                    ));
                }
            }
        }
        self.threads.clear();
        if let Some(mut instances) = self.instances.take() {
            instances.join();
        }
        if let Some(mut global) = self.global.take() {
            if !global.join() {
                self.shared.fail(StreamsError::Internal(
                    "the global thread panicked".to_owned(),
                ));
            }
        }
        lock(&self.shared.cores).clear();
        let moved = self.shared.transition(AppState::NotRunning, |old| {
            matches!(old, AppState::PendingShutdown | AppState::Created)
        });
        match self.error() {
            Some(message) if !moved => Err(StreamsError::Internal(format!(
                "the streams application failed: {message}"
            ))),
            _ => Ok(()),
        }
    }

    /// Stops the stream threads as a crash would, for tests of failure
    /// handling: no flush, no commit, no checkpoint, no leave-group. The
    /// group keeps the instance's members until their session times out,
    /// and an open transaction stays open until the broker aborts it.
    #[doc(hidden)]
    pub async fn kill_for_tests(&mut self) {
        self.shared.killed.store(true, Ordering::Release);
        self.shared.shutdown.store(true, Ordering::Release);
        self.resume_for_tests();
        for handle in &mut self.threads {
            if let Some(done) = handle.done.take() {
                drop(done.await);
            }
            if let Some(join) = handle.join.take() {
                drop(join.join());
            }
        }
        self.threads.clear();
        if let Some(mut instances) = self.instances.take() {
            instances.join();
        }
        if let Some(mut global) = self.global.take() {
            global.join();
        }
        lock(&self.shared.cores).clear();
        self.shared.transition(AppState::NotRunning, |_| true);
    }

    /// Blocks every stream thread at `point` of its next commit until
    /// [`StreamsApp::resume_for_tests`], as a long pause of the process
    /// would (for tests of zombie fencing). A paused thread neither polls
    /// nor heartbeats.
    #[doc(hidden)]
    pub fn pause_for_tests(&self, point: PausePoint) {
        *lock(&self.shared.paused) = Some(point);
    }

    /// Lets the threads blocked by [`StreamsApp::pause_for_tests`] go on.
    #[doc(hidden)]
    pub fn resume_for_tests(&self) {
        *lock(&self.shared.paused) = None;
        self.shared.resumed.notify_all();
    }

    /// The configuration.
    pub fn config(&self) -> &StreamsConfig {
        &self.config
    }

    /// The stores of this app over bytes, and the instances that own
    /// their keys, for tools that do not know the stores' Rust types (the
    /// HTTP endpoint of `streams-http`): see [`InteractiveQueries`]. Its
    /// calls fail until [`StreamsApp::start`].
    pub fn interactive_queries(&self) -> InteractiveQueries {
        InteractiveQueries {
            shared: self.shared.clone(),
            config: Arc::new(self.config.clone()),
        }
    }

    /// Which instance owns `key` of store `name`, and its partition, as
    /// Kafka's `KafkaStreams#queryMetadataForKey`: the key is written with
    /// the store's key serde and partitioned by murmur2 as Kafka's default
    /// partitioner. The instances are known by their `application.server`
    /// (each publishes its tasks to the topic
    /// `<application.id>-instances`); without it, only this instance is.
    ///
    /// # Errors
    ///
    /// [`StreamsError::NoSuchStore`], [`StreamsError::StoreTypeMismatch`]
    /// when `K` is not the store's key type, and
    /// [`StreamsError::IllegalState`] before [`StreamsApp::start`].
    pub fn query_metadata_for_key<K: 'static>(
        &self,
        name: &str,
        key: &K,
    ) -> Result<KeyQueryMetadata> {
        let builder = self
            .topology
            .as_ref()
            .and_then(|t| t.state_stores().find(|s| s.name() == name))
            .ok_or_else(|| StreamsError::NoSuchStore {
                store: name.to_owned(),
            })?;
        let serde = builder
            .key_serde
            .downcast_ref::<Arc<dyn Serde<K>>>()
            .ok_or_else(|| StreamsError::StoreTypeMismatch {
                store: name.to_owned(),
                actual: builder.key_type.name.to_owned(),
                requested: std::any::type_name::<K>().to_owned(),
            })?;
        let topic = crate::store::changelog_topic(self.config.application_id(), name);
        let bytes = serde.serialize(&topic, key)?;
        self.interactive_queries()
            .query_metadata_for_key_bytes(name, &bytes)
    }

    /// The instances that host store `name` (this one first, if it does),
    /// as Kafka's `KafkaStreams#streamsMetadataForStore`.
    pub fn all_metadata_for_store(&self, name: &str) -> Result<Vec<StreamsMetadata>> {
        self.interactive_queries().all_metadata_for_store(name)
    }

    /// Every known instance of the app (this one first), as Kafka's
    /// `KafkaStreams#metadataForAllStreamsClients`.
    pub fn all_metadata(&self) -> Result<Vec<StreamsMetadata>> {
        self.interactive_queries().all_metadata()
    }

    /// Holds (or releases) the restoration of state stores: a task with
    /// stores to restore reads its changelogs' end offsets, then waits,
    /// until released (for tests of queries while a store restores).
    #[doc(hidden)]
    pub fn hold_restoration_for_tests(&self, hold: bool) {
        self.shared.hold_restoration.store(hold, Ordering::Release);
    }

    /// Read-only access to key-value store `name` across the tasks this
    /// instance owns (Kafka's interactive queries). Tasks still restoring
    /// are left out.
    pub fn store<K: 'static, V: 'static>(&self, name: &str) -> Result<ReadOnlyKeyValueStore<K, V>> {
        let known = self
            .topology
            .as_ref()
            .is_some_and(|t| t.state_stores().any(|s| s.name() == name));
        if !known {
            return Err(StreamsError::NoSuchStore {
                store: name.to_owned(),
            });
        }
        Ok(ReadOnlyKeyValueStore {
            shared: self.shared.clone(),
            name: name.to_owned(),
            _types: PhantomData,
        })
    }
}

impl Drop for StreamsApp {
    fn drop(&mut self) {
        // Threads still running stop at their next loop, committing and
        // leaving the group on the way out; a dropped app does not wait.
        self.shared.shutdown.store(true, Ordering::Release);
        *lock(&self.shared.paused) = None;
        self.shared.resumed.notify_all();
    }
}

/// A read-only view of a key-value store over the tasks of one
/// [`StreamsApp`]; see [`StreamsApp::store`].
pub struct ReadOnlyKeyValueStore<K, V> {
    shared: Arc<Shared>,
    name: String,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> fmt::Debug for ReadOnlyKeyValueStore<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadOnlyKeyValueStore")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<K: 'static, V: 'static> ReadOnlyKeyValueStore<K, V> {
    /// Runs `f` on the store of every running task that has it.
    fn each(
        &self,
        mut f: impl FnMut(&mut crate::store::TypedKeyValueStore<'_, K, V>) -> Result<bool>,
    ) -> Result<()> {
        let cores = lock(&self.shared.cores).clone();
        for core in cores {
            let mut core = lock(&core);
            for entry in core.tasks.values_mut() {
                if !entry.running() {
                    continue;
                }
                let Some(index) = entry.task.store_index(&self.name) else {
                    continue;
                };
                let stop = entry
                    .task
                    .with_store(index, |slot| f(&mut slot.typed::<K, V>()?))?;
                if stop {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// The store name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value of `key`, from the task that holds it.
    pub fn get(&self, key: &K) -> Result<Option<V>> {
        let mut found = None;
        self.each(|store| {
            found = store.get(key)?;
            Ok(found.is_some())
        })?;
        Ok(found)
    }

    /// The entries with `from <= key <= to`, task by task, each task's in
    /// key order.
    pub fn range(&self, from: &K, to: &K) -> Result<Vec<(K, V)>> {
        let mut out = Vec::new();
        self.each(|store| {
            for item in store.range(from, to)? {
                out.push(item?);
            }
            Ok(false)
        })?;
        Ok(out)
    }

    /// Hands every entry to `visit`, task by task, each task's in key
    /// order, without collecting them: for a store larger than what the
    /// caller wants to hold at once (a top ten of a large count).
    pub fn for_each(&self, mut visit: impl FnMut(K, V)) -> Result<()> {
        self.each(|store| {
            for item in store.all()? {
                let (key, value) = item?;
                visit(key, value);
            }
            Ok(false)
        })
    }

    /// Every entry, task by task, each task's in key order.
    pub fn all(&self) -> Result<Vec<(K, V)>> {
        let mut out = Vec::new();
        self.each(|store| {
            for item in store.all()? {
                out.push(item?);
            }
            Ok(false)
        })?;
        Ok(out)
    }

    /// An estimate of the number of entries.
    pub fn approximate_num_entries(&self) -> Result<u64> {
        let mut total = 0u64;
        self.each(|store| {
            total = total.saturating_add(store.approximate_num_entries()?);
            Ok(false)
        })?;
        Ok(total)
    }
}
