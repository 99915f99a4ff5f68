//! State stores as processors see them: [`StoreBuilder`] declares a store
//! of a topology, [`TypedKeyValueStore`] is a typed view over the bytes
//! [`KeyValueStore`] that the task opened for it.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use state_store::{
    decode_session_key, decode_windowed_key, encode_session_key, encode_windowed_key, open_or_wipe,
    open_session_store, open_versioned_store, open_window_store, split_windowed_key, BatchWrite,
    CacheBudget, CacheEntry, CachingStore, ChangeLoggingStore, ChangeLoggingVersionedStore, Engine,
    EngineOptions, InMemorySessionStore, InMemoryVersionedStore, InMemoryWindowStore,
    KeyValueStore, KvIter, LocalData, PutOutcome, StoreBackend, VersionedKeyValueStore,
    VersionedRecord, VersionedWrite, WindowedKvStore,
};

use crate::changelog_buffer::ChangelogBuffer;
use crate::error::{Result, StreamsError};
use crate::query::codec::{codec_of, ErasedCodec};
use crate::serdes::{Serde, SerdeError, Window, Windowed};
use crate::store_options::StoreOptions;
use crate::type_info::TypeInfo;

/// The key and value serdes of a store.
/// A store slot's store and typed serdes, borrowed together.
struct SlotParts<'a, K, V> {
    store: &'a mut dyn KeyValueStore,
    name: &'a str,
    topic: &'a str,
    key_serde: &'a dyn Serde<K>,
    value_serde: &'a dyn Serde<V>,
}

/// A serde with its type erased: an `Arc<dyn Serde<T>>` in an `Any`.
pub(crate) type ErasedSerde = Arc<dyn Any + Send + Sync>;

/// Declares a key-value store of a topology, as Kafka's
/// `Stores.keyValueStoreBuilder(..)`: its name, key and value serdes,
/// backend, and whether it is cached and changelogged.
///
/// Defaults follow Kafka's Processor API: logging on, caching off, and the
/// default backend ([`StoreBackend::default`]).
///
/// ```
/// use streams_core::{Serdes, StoreBuilder};
/// use state_store::StoreBackend;
///
/// let counts = StoreBuilder::key_value("counts", Serdes::string(), Serdes::i64())
///     .with_backend(StoreBackend::InMemory)
///     .with_caching_enabled();
/// assert!(counts.caching_enabled());
/// assert!(counts.logging_enabled());
/// ```
#[derive(Clone)]
pub struct StoreBuilder {
    name: String,
    /// The backend of this kind of store when the options name none.
    default_backend: StoreBackend,
    options: StoreOptions,
    window: Option<WindowStoreSpec>,
    /// The retention of a session store, milliseconds.
    session: Option<i64>,
    /// The history retention of a versioned key-value store, milliseconds.
    versioned: Option<i64>,
    pub(crate) key_type: TypeInfo,
    pub(crate) value_type: TypeInfo,
    pub(crate) key_serde: ErasedSerde,
    pub(crate) value_serde: ErasedSerde,
    /// The serdes again, for interactive queries over bytes.
    pub(crate) key_codec: Arc<dyn ErasedCodec>,
    pub(crate) value_codec: Arc<dyn ErasedCodec>,
}

impl fmt::Debug for StoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreBuilder")
            .field("name", &self.name)
            .field("default_backend", &self.default_backend)
            .field("options", &self.options)
            .field("window", &self.window)
            .field("session", &self.session)
            .field("versioned", &self.versioned)
            .field("key_type", &self.key_type.name)
            .field("value_type", &self.value_type.name)
            .finish()
    }
}

impl StoreBuilder {
    /// A key-value store named `name` holding `K` to `V`, written with the
    /// given serdes.
    pub fn key_value<K: 'static, V: 'static>(
        name: impl Into<String>,
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
    ) -> Self {
        let key_serde: Arc<dyn Serde<K>> = crate::serdes::shared(key_serde);
        let value_serde: Arc<dyn Serde<V>> = crate::serdes::shared(value_serde);
        Self {
            name: name.into(),
            default_backend: StoreBackend::default(),
            options: StoreOptions::default(),
            window: None,
            session: None,
            versioned: None,
            key_type: TypeInfo::of::<K>(),
            value_type: TypeInfo::of::<V>(),
            key_codec: codec_of(&key_serde),
            value_codec: codec_of(&value_serde),
            key_serde: Arc::new(key_serde),
            value_serde: Arc::new(value_serde),
        }
    }

    /// A window store named `name` holding values `V` per key `K` and
    /// window start, as Kafka's `Stores.windowStoreBuilder(..)`: windows of
    /// `window_size`, kept for `retention` after their start (see
    /// [`state_store::InMemoryWindowStore`]). Access it with
    /// [`crate::ProcessorContext::window_store`].
    ///
    /// Window stores live in memory by default
    /// ([`state_store::InMemoryWindowStore`], restored from the changelog
    /// on start); [`StoreBuilder::with_backend`] with a persistent backend
    /// keeps them on disk ([`state_store::KvWindowStore`], restored from
    /// its checkpoint like a key-value store). The changelog key is Kafka's windowed
    /// key layout, record key bytes then the 8-byte big-endian window start
    /// then a 4-byte sequence number (always 0), see
    /// [`state_store::encode_windowed_key`]; the topic gets
    /// `cleanup.policy=compact,delete` and `retention.ms` = retention + 1
    /// day. Window starts are expected to be non-negative.
    ///
    /// ```
    /// use std::time::Duration;
    /// use streams_core::{Serdes, StoreBuilder};
    ///
    /// let counts = StoreBuilder::window(
    ///     "counts",
    ///     Serdes::string(),
    ///     Serdes::i64(),
    ///     Duration::from_secs(3600),
    ///     Duration::from_secs(60),
    /// );
    /// assert_eq!(counts.window_size_ms(), Some(60_000));
    /// assert_eq!(counts.log_config()["cleanup.policy"], "compact,delete");
    /// ```
    pub fn window<K: 'static, V: 'static>(
        name: impl Into<String>,
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
        retention: Duration,
        window_size: Duration,
    ) -> Self {
        let mut builder = Self::key_value(name, key_serde, value_serde);
        builder.default_backend = StoreBackend::InMemory;
        builder.window = Some(WindowStoreSpec {
            retention_ms: duration_ms(retention),
            window_size_ms: duration_ms(window_size),
        });
        builder.add_window_log_defaults();
        builder
    }

    /// A session store named `name` holding session aggregates `V` per key
    /// `K` and session `[start, end]`, as Kafka's
    /// `Stores.sessionStoreBuilder(..)`: sessions are kept for `retention`
    /// after their end (see [`state_store::KvSessionStore`]). Access it
    /// with [`crate::ProcessorContext::session_store`].
    ///
    /// Session stores live in memory by default; [`StoreBuilder::with_backend`]
    /// with a persistent backend keeps them on disk. The changelog key is
    /// Kafka's session key layout, record key bytes then the 8-byte
    /// big-endian session end then the 8-byte big-endian start (see
    /// [`state_store::encode_session_key`]); the topic gets
    /// `cleanup.policy=compact,delete` and `retention.ms` = retention + 1
    /// day. Session bounds are expected to be non-negative.
    ///
    /// ```
    /// use std::time::Duration;
    /// use streams_core::{Serdes, StoreBuilder};
    ///
    /// let sessions = StoreBuilder::session(
    ///     "sessions",
    ///     Serdes::string(),
    ///     Serdes::i64(),
    ///     Duration::from_secs(3600),
    /// );
    /// assert!(sessions.is_session_store());
    /// assert_eq!(sessions.retention_ms(), Some(3_600_000));
    /// assert_eq!(sessions.log_config()["cleanup.policy"], "compact,delete");
    /// ```
    pub fn session<K: 'static, V: 'static>(
        name: impl Into<String>,
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
        retention: Duration,
    ) -> Self {
        let mut builder = Self::key_value(name, key_serde, value_serde);
        builder.default_backend = StoreBackend::InMemory;
        builder.session = Some(duration_ms(retention));
        builder.add_window_log_defaults();
        builder
    }

    /// A versioned key-value store named `name` holding versions of `V`
    /// per key `K`, as Kafka's
    /// `Stores.versionedKeyValueStoreBuilder(Stores.persistentVersionedKeyValueStore(name, history_retention), ..)`:
    /// each put adds a version valid from its timestamp, reads are of the
    /// latest version or as of a time, and versions are kept for
    /// `history_retention` of stream time (also the store's grace period:
    /// older puts are refused). See
    /// [`state_store::VersionedKeyValueStore`]. Access it with
    /// [`crate::ProcessorContext::versioned_key_value_store`].
    ///
    /// It lives on the default backend ([`StoreBackend::default`]) unless
    /// [`StoreBuilder::with_backend`] says otherwise, and is never cached
    /// ([`StoreBuilder::with_caching_enabled`] does nothing, as Kafka's
    /// versioned stores have no cache). Its changelog holds the record
    /// keys and values, each record carrying its version's timestamp, and
    /// gets `min.compaction.lag.ms` = history retention + 1 day, so that
    /// compaction keeps the history a restoration needs.
    ///
    /// ```
    /// use std::time::Duration;
    /// use streams_core::{Serdes, StoreBuilder};
    ///
    /// let prices = StoreBuilder::versioned_key_value(
    ///     "prices",
    ///     Serdes::string(),
    ///     Serdes::i64(),
    ///     Duration::from_secs(600),
    /// )
    /// .with_caching_enabled();
    /// assert!(prices.is_versioned_store());
    /// assert!(!prices.caching_enabled());
    /// assert_eq!(prices.history_retention_ms(), Some(600_000));
    /// assert_eq!(prices.log_config()["min.compaction.lag.ms"], "87000000");
    /// ```
    pub fn versioned_key_value<K: 'static, V: 'static>(
        name: impl Into<String>,
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
        history_retention: Duration,
    ) -> Self {
        let mut builder = Self::key_value(name, key_serde, value_serde);
        builder.versioned = Some(duration_ms(history_retention));
        builder.add_window_log_defaults();
        builder
    }

    /// The history retention of a versioned store, milliseconds; `None`
    /// for other stores.
    pub fn history_retention_ms(&self) -> Option<i64> {
        self.versioned
    }

    /// Whether this declares a versioned key-value store.
    pub fn is_versioned_store(&self) -> bool {
        self.versioned.is_some()
    }

    fn add_window_log_defaults(&mut self) {
        if let Some(history_ms) = self.versioned {
            // Kafka's `VersionedChangelogTopicConfig`.
            self.options
                .log_config_mut()
                .entry("min.compaction.lag.ms".to_owned())
                .or_insert_with(|| history_ms.saturating_add(DAY_MS).to_string());
        }
        if let Some(retention_ms) = self.retention_ms() {
            let config = self.options.log_config_mut();
            config
                .entry("cleanup.policy".to_owned())
                .or_insert_with(|| "compact,delete".to_owned());
            config
                .entry("retention.ms".to_owned())
                .or_insert_with(|| retention_ms.saturating_add(DAY_MS).to_string());
        }
    }

    /// The retention period of a window or session store, milliseconds;
    /// `None` for a key-value store.
    pub fn retention_ms(&self) -> Option<i64> {
        self.window.map(|w| w.retention_ms).or(self.session)
    }

    /// The window size of a window store, milliseconds; `None` for a
    /// key-value store.
    pub fn window_size_ms(&self) -> Option<i64> {
        self.window.map(|w| w.window_size_ms)
    }

    /// Whether this declares a window store.
    pub fn is_window_store(&self) -> bool {
        self.window.is_some()
    }

    /// Whether this declares a session store.
    pub fn is_session_store(&self) -> bool {
        self.session.is_some()
    }

    /// Chooses the storage engine. Window and session stores default to
    /// [`StoreBackend::InMemory`], key-value stores to
    /// [`StoreBackend::default`].
    pub fn with_backend(mut self, backend: StoreBackend) -> Self {
        self.options = self.options.with_backend(backend);
        self
    }

    /// Puts a record cache (`cache.max.bytes.buffering`) in front of the
    /// store: consecutive updates of a key between commits are
    /// deduplicated, and a processor registered with
    /// [`crate::ProcessorContext::set_flush_listener`] receives the
    /// surviving updates when the cache is flushed or evicts. A versioned
    /// store has no cache: this does nothing to it.
    pub fn with_caching_enabled(mut self) -> Self {
        if self.versioned.is_none() {
            self.options = self.options.with_caching_enabled();
        }
        self
    }

    /// Writes go straight to the store (the default).
    pub fn with_caching_disabled(mut self) -> Self {
        self.options = self.options.with_caching_disabled();
        self
    }

    /// Sends every update to the changelog topic
    /// `<application.id>-<name>-changelog` (the default), with extra topic
    /// configs for it.
    pub fn with_logging_enabled<I, K, V>(mut self, topic_config: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        self.options = self.options.with_logging_enabled(topic_config);
        self.add_window_log_defaults();
        self
    }

    /// No changelog: the store is not restored after a failure.
    pub fn with_logging_disabled(mut self) -> Self {
        self.options = self.options.with_logging_disabled();
        self
    }

    /// Keeps the store as `options` say, in place of every option given
    /// before: the DSL hands its `Materialized` options over this way. A
    /// versioned store stays without a cache; a window or session store's
    /// changelog keeps its retention defaults.
    pub fn with_options(mut self, options: StoreOptions) -> Self {
        self.options = options;
        if self.versioned.is_some() {
            self.options = std::mem::take(&mut self.options).with_caching_disabled();
        }
        if self.options.logging_enabled() {
            self.add_window_log_defaults();
        }
        self
    }

    /// How the store is kept.
    pub fn options(&self) -> &StoreOptions {
        &self.options
    }

    /// The store name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The storage engine.
    pub fn backend(&self) -> StoreBackend {
        self.options.backend().unwrap_or(self.default_backend)
    }

    /// Whether a record cache fronts the store.
    pub fn caching_enabled(&self) -> bool {
        self.options.caching_enabled()
    }

    /// Whether updates go to a changelog topic.
    pub fn logging_enabled(&self) -> bool {
        self.options.logging_enabled()
    }

    /// Extra configs of the changelog topic.
    pub fn log_config(&self) -> &BTreeMap<String, String> {
        self.options.log_config()
    }
}

/// Milliseconds of one day.
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// `d` in milliseconds, saturating at `i64::MAX`.
pub(crate) fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The shape of a window store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct WindowStoreSpec {
    retention_ms: i64,
    window_size_ms: i64,
}

/// The changelog topic of store `store` in application `application_id`.
pub(crate) fn changelog_topic(application_id: &str, store: &str) -> String {
    format!("{application_id}-{store}-changelog")
}

/// The layers of one store: the backend, optionally wrapped by the
/// changelogging layer, optionally fronted by the record cache.
#[derive(Debug)]
pub(crate) enum StoreStack {
    Direct(Box<dyn KeyValueStore>),
    Cached(CachingStore<Box<dyn KeyValueStore>>),
    /// A versioned store (never cached), changelogged or not.
    Versioned(Box<dyn VersionedKeyValueStore>),
}

impl StoreStack {
    /// The key-value store, unless this is a versioned store.
    pub(crate) fn kv_mut(&mut self) -> Option<&mut dyn KeyValueStore> {
        match self {
            Self::Direct(store) => Some(store.as_mut()),
            Self::Cached(store) => Some(store),
            Self::Versioned(_) => None,
        }
    }

    /// Writes the cache through and hands every write to the backend,
    /// without waiting for durability.
    pub(crate) fn flush_unsynced(&mut self) -> state_store::Result<()> {
        match self {
            Self::Direct(store) => store.flush_unsynced(),
            Self::Cached(store) => store.flush_unsynced(),
            Self::Versioned(store) => store.flush_unsynced(),
        }
    }

    /// Makes every write durable.
    pub(crate) fn flush(&mut self) -> state_store::Result<()> {
        match self {
            Self::Direct(store) => store.flush(),
            Self::Cached(store) => store.flush(),
            Self::Versioned(store) => store.flush(),
        }
    }

    /// Flushes and closes the store.
    pub(crate) fn close(&mut self) -> state_store::Result<()> {
        match self {
            Self::Direct(store) => store.close(),
            Self::Cached(store) => store.close(),
            Self::Versioned(store) => store.close(),
        }
    }

    /// Whether the cache evicted or flushed entries not taken yet.
    pub(crate) fn has_forwarded(&self) -> bool {
        match self {
            Self::Direct(_) | Self::Versioned(_) => false,
            Self::Cached(store) => store.has_forwarded(),
        }
    }

    /// Entries the cache evicted or flushed since the last call.
    pub(crate) fn take_forwarded(&mut self) -> Vec<CacheEntry> {
        match self {
            Self::Direct(_) | Self::Versioned(_) => Vec::new(),
            Self::Cached(store) => store.take_forwarded(),
        }
    }

    pub(crate) fn dirty_entries(&self) -> usize {
        match self {
            Self::Direct(_) | Self::Versioned(_) => 0,
            Self::Cached(store) => store.dirty_entries(),
        }
    }
}

/// One store of a task.
#[derive(Debug)]
pub(crate) struct StoreSlot {
    /// Unique in the process: what a [`KeyValueStoreHandle`] checks.
    id: u64,
    pub(crate) name: String,
    pub(crate) changelog_topic: Arc<str>,
    pub(crate) stack: StoreStack,
    pub(crate) caching: bool,
    pub(crate) changelog: Option<ChangelogBuffer>,
    /// Nodes that receive this store's cache flushes.
    pub(crate) listeners: Vec<usize>,
    /// Whether the store keeps its data on disk across restarts.
    pub(crate) persistent: bool,
    /// What opening the store found of its local files: unless they were
    /// found, a checkpoint does not describe the store and it is restored
    /// from the start of its changelog.
    pub(crate) local_data: LocalData,
    /// The window size of a window store.
    window_size: Option<i64>,
    /// Whether this is a session store.
    session: bool,
    /// Whether this is a versioned key-value store.
    versioned: bool,
    key_type: TypeInfo,
    value_type: TypeInfo,
    key_serde: ErasedSerdeDebug,
    value_serde: ErasedSerdeDebug,
}

/// The id of the next [`StoreSlot`] opened.
static NEXT_STORE_ID: AtomicU64 = AtomicU64::new(0);

/// [`ErasedSerde`] with a `Debug` impl.
#[derive(Clone)]
struct ErasedSerdeDebug(ErasedSerde);

impl fmt::Debug for ErasedSerdeDebug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Serde")
    }
}

impl StoreSlot {
    /// Opens the store declared by `builder`: on `backend` if given (the
    /// test driver runs every store in memory by default), else on the
    /// builder's, in `state_dir`.
    pub(crate) fn open(
        builder: &StoreBuilder,
        application_id: &str,
        backend: Option<StoreBackend>,
        state_dir: &Path,
        cache: &CacheBudget,
        engine: &EngineOptions,
    ) -> Result<Self> {
        let backend = backend.unwrap_or_else(|| builder.backend());
        let name = &builder.name;
        let persistent = backend.is_persistent();
        let (stack, local_data, changelog, caching) = if let Some(history_ms) = builder.versioned {
            let (base, local): (Box<dyn VersionedKeyValueStore>, LocalData) = if persistent {
                let (store, local) = open_versioned_store(
                    Engine::new(backend, engine.clone()),
                    state_dir,
                    name,
                    history_ms,
                )?;
                (Box::new(store), local)
            } else {
                (
                    Box::new(InMemoryVersionedStore::in_memory(name.clone(), history_ms)),
                    LocalData::Created,
                )
            };
            let (base, changelog) = if builder.logging_enabled() {
                let buffer = ChangelogBuffer::default();
                let logged: Box<dyn VersionedKeyValueStore> =
                    Box::new(ChangeLoggingVersionedStore::new(base, buffer.clone()));
                (logged, Some(buffer))
            } else {
                (base, None)
            };
            (StoreStack::Versioned(base), local, changelog, false)
        } else {
            let (base, local_data): (Box<dyn KeyValueStore>, LocalData) =
                match (builder.window, builder.session) {
                    (Some(spec), _) if persistent => {
                        let (store, local) = open_window_store(
                            Engine::new(backend, engine.clone()),
                            state_dir,
                            name,
                            spec.retention_ms,
                        )?;
                        (Box::new(store), local)
                    }
                    (Some(spec), _) => {
                        let store = InMemoryWindowStore::new(name.clone(), spec.retention_ms);
                        (Box::new(WindowedKvStore::new(store)), LocalData::Created)
                    }
                    (None, Some(retention_ms)) if persistent => {
                        let (store, local) = open_session_store(
                            Engine::new(backend, engine.clone()),
                            state_dir,
                            name,
                            retention_ms,
                        )?;
                        (Box::new(store), local)
                    }
                    (None, Some(retention_ms)) => (
                        Box::new(InMemorySessionStore::in_memory(name.clone(), retention_ms)),
                        LocalData::Created,
                    ),
                    (None, None) => {
                        open_or_wipe(Engine::new(backend, engine.clone()), state_dir, name)?
                    }
                };
            let (base, changelog) = if builder.logging_enabled() {
                let buffer = ChangelogBuffer::default();
                let logged: Box<dyn KeyValueStore> =
                    Box::new(ChangeLoggingStore::new(base, buffer.clone()));
                (logged, Some(buffer))
            } else {
                (base, None)
            };
            // As Kafka's: a record cache of no bytes is no cache (every update
            // goes through at once, deletes of absent rows included).
            let caching = builder.caching_enabled() && cache.max_bytes() > 0;
            let stack = if caching {
                StoreStack::Cached(CachingStore::with_budget(base, cache.clone()))
            } else {
                StoreStack::Direct(base)
            };
            (stack, local_data, changelog, caching)
        };
        tracing::debug!(store = %builder.name, %backend, caching, logging = builder.logging_enabled(), "opened state store");
        Ok(Self {
            name: builder.name.clone(),
            changelog_topic: changelog_topic(application_id, &builder.name).into(),
            stack,
            caching,
            changelog,
            listeners: Vec::new(),
            persistent,
            local_data,
            window_size: builder.window.map(|w| w.window_size_ms),
            session: builder.session.is_some(),
            versioned: builder.versioned.is_some(),
            id: NEXT_STORE_ID.fetch_add(1, Ordering::Relaxed),
            key_type: builder.key_type,
            value_type: builder.value_type,
            key_serde: ErasedSerdeDebug(builder.key_serde.clone()),
            value_serde: ErasedSerdeDebug(builder.value_serde.clone()),
        })
    }

    /// Applies a batch of changelog records below the record cache
    /// (restoration): `writes` in order, each at the timestamp of the same
    /// index in `timestamps` (which only a versioned store reads). Writes
    /// still reach the changelog buffer: drop them with
    /// [`StoreSlot::discard_changelog`].
    pub(crate) fn restore_batch(
        &mut self,
        writes: &[BatchWrite],
        timestamps: &[i64],
    ) -> state_store::Result<()> {
        match &mut self.stack {
            StoreStack::Direct(store) => store.write_batch(writes),
            StoreStack::Cached(store) => store.inner_mut().write_batch(writes),
            StoreStack::Versioned(store) => {
                let batch: Vec<VersionedWrite> = writes
                    .iter()
                    .zip(timestamps)
                    .map(|((key, value), ts)| (key.clone(), value.clone(), *ts))
                    .collect();
                store.restore_batch(&batch)
            }
        }
    }

    /// Makes the restored records durable.
    pub(crate) fn flush_restored(&mut self) -> state_store::Result<()> {
        match &mut self.stack {
            StoreStack::Direct(store) => store.flush(),
            StoreStack::Cached(store) => store.inner_mut().flush(),
            StoreStack::Versioned(store) => store.flush(),
        }
    }

    /// Drops the changelog updates buffered so far (those of a restoration,
    /// which are in the changelog already).
    pub(crate) fn discard_changelog(&self) {
        if let Some(buffer) = &self.changelog {
            drop(buffer.take());
        }
    }

    /// The store's serdes, if `K` and `V` are the store's types, with the
    /// store itself (borrowed apart from them).
    fn parts<K: 'static, V: 'static>(&mut self) -> Result<SlotParts<'_, K, V>> {
        let mismatch = || StreamsError::StoreTypeMismatch {
            store: self.name.clone(),
            actual: format!("{}, {}", self.key_type.name, self.value_type.name),
            requested: format!(
                "{}, {}",
                std::any::type_name::<K>(),
                std::any::type_name::<V>()
            ),
        };
        let key_serde = self
            .key_serde
            .0
            .downcast_ref::<Arc<dyn Serde<K>>>()
            .ok_or_else(mismatch)?;
        let value_serde = self
            .value_serde
            .0
            .downcast_ref::<Arc<dyn Serde<V>>>()
            .ok_or_else(mismatch)?;
        let store = self
            .stack
            .kv_mut()
            .ok_or_else(|| StreamsError::StoreKindMismatch {
                store: self.name.clone(),
                actual: "versioned key-value",
                requested: "key-value",
            })?;
        Ok(SlotParts {
            store,
            name: &self.name,
            topic: &self.changelog_topic,
            key_serde: key_serde.as_ref(),
            value_serde: value_serde.as_ref(),
        })
    }

    /// This store (at `index` in its task) resolved for `K` and `V`: its
    /// serdes, taken out of their type erasure once.
    fn resolve<K: 'static, V: 'static>(&self, index: usize) -> Result<Resolved<K, V>> {
        let key_serde = self
            .key_serde
            .0
            .downcast_ref::<Arc<dyn Serde<K>>>()
            .cloned();
        let value_serde = self
            .value_serde
            .0
            .downcast_ref::<Arc<dyn Serde<V>>>()
            .cloned();
        match (key_serde, value_serde) {
            (Some(key_serde), Some(value_serde)) => Ok(Resolved {
                index,
                store_id: self.id,
                name: self.name.clone(),
                key_serde,
                value_serde,
            }),
            _ => Err(StreamsError::Internal(format!(
                "the serdes of store '{}' changed type",
                self.name
            ))),
        }
    }

    /// The parts `resolved` stands for, if [`StoreSlot::resolve`] of this
    /// slot made it.
    fn parts_with<'a, K, V>(
        &'a mut self,
        resolved: &'a Resolved<K, V>,
    ) -> Option<SlotParts<'a, K, V>> {
        if resolved.store_id != self.id {
            return None;
        }
        Some(SlotParts {
            store: self.stack.kv_mut()?,
            name: &self.name,
            topic: &self.changelog_topic,
            key_serde: resolved.key_serde.as_ref(),
            value_serde: resolved.value_serde.as_ref(),
        })
    }

    /// A handle on this key-value store (at `index` in its task), if `K`
    /// and `V` are its types.
    pub(crate) fn handle<K: 'static, V: 'static>(
        &mut self,
        index: usize,
    ) -> Result<KeyValueStoreHandle<K, V>> {
        // The checks of a typed view: a key-value store of these types.
        self.typed::<K, V>()?;
        Ok(KeyValueStoreHandle(self.resolve(index)?))
    }

    /// The typed view that `handle` stands for, if [`StoreSlot::handle`]
    /// of this slot made it.
    pub(crate) fn typed_with<'a, K, V>(
        &'a mut self,
        handle: &'a KeyValueStoreHandle<K, V>,
    ) -> Option<TypedKeyValueStore<'a, K, V>> {
        let parts = self.parts_with(&handle.0)?;
        Some(TypedKeyValueStore { parts })
    }

    /// A handle on this window store (at `index` in its task), if `K` and
    /// `V` are its types.
    pub(crate) fn window_handle<K: 'static, V: 'static>(
        &mut self,
        index: usize,
    ) -> Result<WindowStoreHandle<K, V>> {
        let window_size = self.typed_window::<K, V>()?.window_size;
        Ok(WindowStoreHandle {
            resolved: self.resolve(index)?,
            window_size,
        })
    }

    /// The typed window-store view that `handle` stands for, if
    /// [`StoreSlot::window_handle`] of this slot made it.
    pub(crate) fn typed_window_with<'a, K, V>(
        &'a mut self,
        handle: &'a WindowStoreHandle<K, V>,
    ) -> Option<TypedWindowStore<'a, K, V>> {
        let parts = self.parts_with(&handle.resolved)?;
        Some(TypedWindowStore {
            parts,
            window_size: handle.window_size,
        })
    }

    /// A typed view, if `K` and `V` are the store's types.
    pub(crate) fn typed<K: 'static, V: 'static>(&mut self) -> Result<TypedKeyValueStore<'_, K, V>> {
        if self.window_size.is_some() || self.session || self.versioned {
            return Err(StreamsError::StoreKindMismatch {
                store: self.name.clone(),
                actual: self.kind(),
                requested: "key-value",
            });
        }
        Ok(TypedKeyValueStore {
            parts: self.parts()?,
        })
    }

    /// A typed window-store view, if this is a window store holding `K`
    /// to `V`.
    pub(crate) fn typed_window<K: 'static, V: 'static>(
        &mut self,
    ) -> Result<TypedWindowStore<'_, K, V>> {
        let Some(window_size) = self.window_size else {
            return Err(StreamsError::StoreKindMismatch {
                store: self.name.clone(),
                actual: self.kind(),
                requested: "window",
            });
        };
        Ok(TypedWindowStore {
            parts: self.parts()?,
            window_size,
        })
    }
}

impl StoreSlot {
    /// The kind of store, as error messages name it.
    fn kind(&self) -> &'static str {
        if self.session {
            "session"
        } else if self.versioned {
            "versioned key-value"
        } else if self.window_size.is_some() {
            "window"
        } else {
            "key-value"
        }
    }

    /// A typed session-store view, if this is a session store holding `K`
    /// to `V`.
    pub(crate) fn typed_session<K: 'static, V: 'static>(
        &mut self,
    ) -> Result<TypedSessionStore<'_, K, V>> {
        if !self.session {
            return Err(StreamsError::StoreKindMismatch {
                store: self.name.clone(),
                actual: self.kind(),
                requested: "session",
            });
        }
        Ok(TypedSessionStore {
            parts: self.parts()?,
        })
    }
}

impl StoreSlot {
    /// A typed versioned-store view, if this is a versioned key-value
    /// store holding `K` to `V`.
    pub(crate) fn typed_versioned<K: 'static, V: 'static>(
        &mut self,
    ) -> Result<TypedVersionedKeyValueStore<'_, K, V>> {
        let kind = self.kind();
        let StoreStack::Versioned(store) = &mut self.stack else {
            return Err(StreamsError::StoreKindMismatch {
                store: self.name.clone(),
                actual: kind,
                requested: "versioned key-value",
            });
        };
        let mismatch = || StreamsError::StoreTypeMismatch {
            store: self.name.clone(),
            actual: format!("{}, {}", self.key_type.name, self.value_type.name),
            requested: format!(
                "{}, {}",
                std::any::type_name::<K>(),
                std::any::type_name::<V>()
            ),
        };
        let key_serde = self
            .key_serde
            .0
            .downcast_ref::<Arc<dyn Serde<K>>>()
            .ok_or_else(mismatch)?;
        let value_serde = self
            .value_serde
            .0
            .downcast_ref::<Arc<dyn Serde<V>>>()
            .ok_or_else(mismatch)?;
        Ok(TypedVersionedKeyValueStore {
            store: store.as_mut(),
            name: &self.name,
            topic: &self.changelog_topic,
            key_serde: key_serde.as_ref(),
            value_serde: value_serde.as_ref(),
        })
    }
}

/// A typed view over a task's versioned key-value store, as Kafka's
/// `VersionedKeyValueStore<K, V>`: several versions per key, each valid
/// from the timestamp it was put at until the next version's, read as the
/// latest or as of a time (see [`state_store::VersionedKeyValueStore`] for
/// the rules of the history retention). Keys and values are written with
/// the store's serdes.
///
/// Obtained from [`crate::ProcessorContext::versioned_key_value_store`]
/// (or [`crate::ConnectedStores::versioned_key_value_store`]); it borrows
/// the context, so drop it before forwarding.
pub struct TypedVersionedKeyValueStore<'a, K, V> {
    store: &'a mut dyn VersionedKeyValueStore,
    name: &'a str,
    topic: &'a str,
    key_serde: &'a dyn Serde<K>,
    value_serde: &'a dyn Serde<V>,
}

impl<K, V> fmt::Debug for TypedVersionedKeyValueStore<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedVersionedKeyValueStore")
            .field("name", &self.name)
            .field("key_type", &std::any::type_name::<K>())
            .field("value_type", &std::any::type_name::<V>())
            .finish_non_exhaustive()
    }
}

impl<K: 'static, V: 'static> TypedVersionedKeyValueStore<'_, K, V> {
    /// The store name.
    pub fn name(&self) -> &str {
        self.name
    }

    /// The history retention (and grace period), milliseconds.
    pub fn history_retention_ms(&self) -> i64 {
        self.store.history_retention()
    }

    /// The largest timestamp put so far.
    pub fn observed_stream_time(&self) -> Option<i64> {
        self.store.observed_stream_time()
    }

    fn key_bytes(&self, key: &K) -> Result<Bytes> {
        Ok(self.key_serde.serialize(self.topic, key)?)
    }

    fn record(&self, record: Option<VersionedRecord<Bytes>>) -> Result<Option<VersionedRecord<V>>> {
        record
            .map(|r| r.try_map(|bytes| self.value_serde.deserialize(self.topic, &bytes)))
            .transpose()
            .map_err(Into::into)
    }

    /// Adds a version of `key` valid from `timestamp`: `Some(value)`, or
    /// `None` for a delete (Kafka's `put(key, value, timestamp)` with a
    /// null value). Says whether it became the latest version, went into
    /// the history, or was not put (older than the history retention).
    pub fn put(&mut self, key: &K, value: Option<&V>, timestamp: i64) -> Result<PutOutcome> {
        let key = self.key_bytes(key)?;
        let value = self.value_serde.serialize_nullable(self.topic, value)?;
        Ok(self.store.put(key, value, timestamp)?)
    }

    /// Deletes `key` as of `timestamp`; returns the version that was valid
    /// then. A delete older than the history retention does nothing and
    /// returns `None`.
    pub fn delete(&mut self, key: &K, timestamp: i64) -> Result<Option<VersionedRecord<V>>> {
        let key = self.key_bytes(key)?;
        let old = self.store.delete(key, timestamp)?;
        self.record(old)
    }

    /// The latest version of `key`, unless it is a delete (Kafka's
    /// `get(key)`).
    pub fn get(&self, key: &K) -> Result<Option<VersionedRecord<V>>> {
        let found = self.store.get(&self.key_bytes(key)?)?;
        self.record(found)
    }

    /// The version of `key` valid at `as_of`: the latest one with a
    /// timestamp not after it (Kafka's `get(key, asOfTimestamp)`); `None`
    /// if that is a delete, if there is none, or if `as_of` is older than
    /// the history retention and the latest version is not valid then.
    pub fn get_as_of(&self, key: &K, as_of: i64) -> Result<Option<VersionedRecord<V>>> {
        let found = self.store.get_as_of(&self.key_bytes(key)?, as_of)?;
        self.record(found)
    }
}

/// An update of a cached store, decoded: what a flush listener forwards
/// (Kafka's `Change<V>` with its key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change<K, V> {
    /// The key.
    pub key: K,
    /// The value now (`None`: deleted).
    pub new_value: Option<V>,
    /// The value downstream saw last (`None`: absent).
    pub old_value: Option<V>,
}

/// A store of a task resolved for its key and value types.
struct Resolved<K, V> {
    index: usize,
    store_id: u64,
    name: String,
    key_serde: Arc<dyn Serde<K>>,
    value_serde: Arc<dyn Serde<V>>,
}

impl<K, V> Resolved<K, V> {
    fn debug(&self, kind: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(kind)
            .field("name", &self.name)
            .field("key_type", &std::any::type_name::<K>())
            .field("value_type", &std::any::type_name::<V>())
            .finish_non_exhaustive()
    }
}

/// A key-value store of a processor, resolved once: made by
/// [`crate::ProcessorContext::key_value_store_handle`] (in
/// [`crate::Processor::init`], say) and used by
/// [`crate::ProcessorContext::key_value_store_of`] for each record, which
/// skips the lookup by name and the check of the store's types that
/// [`crate::ProcessorContext::key_value_store`] makes each time.
pub struct KeyValueStoreHandle<K, V>(Resolved<K, V>);

impl<K, V> KeyValueStoreHandle<K, V> {
    /// The store's name.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The store's index in its task.
    pub(crate) fn index(&self) -> usize {
        self.0.index
    }
}

impl<K, V> fmt::Debug for KeyValueStoreHandle<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.debug("KeyValueStoreHandle", f)
    }
}

/// A window store of a processor, resolved once:
/// [`crate::ProcessorContext::window_store_handle`] and
/// [`crate::ProcessorContext::window_store_of`], as
/// [`KeyValueStoreHandle`] is for key-value stores.
pub struct WindowStoreHandle<K, V> {
    resolved: Resolved<K, V>,
    window_size: i64,
}

impl<K, V> WindowStoreHandle<K, V> {
    /// The store's name.
    pub fn name(&self) -> &str {
        &self.resolved.name
    }

    /// The store's index in its task.
    pub(crate) fn index(&self) -> usize {
        self.resolved.index
    }
}

impl<K, V> fmt::Debug for WindowStoreHandle<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.resolved.debug("WindowStoreHandle", f)
    }
}

/// A typed view over a task's key-value store, as Kafka's
/// `KeyValueStore<K, V>`: keys and values are written with the store's
/// serdes.
///
/// Keys are ordered by their serialized bytes: for the built-in integer
/// serdes (big-endian) that is numeric order for non-negative numbers only.
///
/// Obtained from [`crate::ProcessorContext::key_value_store`]; it borrows
/// the context, so drop it before forwarding.
pub struct TypedKeyValueStore<'a, K, V> {
    parts: SlotParts<'a, K, V>,
}

impl<K, V> fmt::Debug for TypedKeyValueStore<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedKeyValueStore")
            .field("name", &self.parts.name)
            .field("key_type", &std::any::type_name::<K>())
            .field("value_type", &std::any::type_name::<V>())
            .finish_non_exhaustive()
    }
}

impl<K: 'static, V: 'static> TypedKeyValueStore<'_, K, V> {
    /// The store name.
    pub fn name(&self) -> &str {
        self.parts.name
    }

    fn key_bytes(&self, key: &K) -> Result<Bytes> {
        Ok(self.parts.key_serde.serialize(self.parts.topic, key)?)
    }

    fn value(&self, bytes: Option<Bytes>) -> Result<Option<V>> {
        Ok(self
            .parts
            .value_serde
            .deserialize_nullable(self.parts.topic, bytes.as_ref())?)
    }

    /// The value of `key`.
    pub fn get(&self, key: &K) -> Result<Option<V>> {
        let bytes = self.parts.store.get(&self.key_bytes(key)?)?;
        self.value(bytes)
    }

    /// Sets `key` to `value`.
    pub fn put(&mut self, key: &K, value: &V) -> Result<()> {
        let key = self.key_bytes(key)?;
        let value = self.parts.value_serde.serialize(self.parts.topic, value)?;
        Ok(self.parts.store.put(key, value)?)
    }

    /// Reads `key`, hands its value to `update`, and writes the value that
    /// `update` returns (`None` deletes the key): a read-modify-write that
    /// serializes the key once. Returns what `update` returned beside the
    /// value.
    pub fn update<R>(
        &mut self,
        key: &K,
        update: impl FnOnce(Option<V>) -> (Option<V>, R),
    ) -> Result<R> {
        with_key_buffer(|buffer| {
            self.parts
                .key_serde
                .serialize_into(self.parts.topic, key, buffer)?;
            update_value::<V, R, OWNED_VALUE>(
                &mut *self.parts.store,
                self.parts.topic,
                self.parts.value_serde,
                buffer,
                update,
            )
        })
    }

    /// Sets `key` to `value` unless it has a value; returns the existing
    /// value.
    pub fn put_if_absent(&mut self, key: &K, value: &V) -> Result<Option<V>> {
        let key = self.key_bytes(key)?;
        let value = self.parts.value_serde.serialize(self.parts.topic, value)?;
        let existing = self.parts.store.put_if_absent(key, value)?;
        self.value(existing)
    }

    /// Puts every entry, in order.
    pub fn put_all(&mut self, entries: &[(K, V)]) -> Result<()> {
        for (key, value) in entries {
            self.put(key, value)?;
        }
        Ok(())
    }

    /// Removes `key`; returns its value.
    pub fn delete(&mut self, key: &K) -> Result<Option<V>> {
        let old = self.parts.store.delete(self.key_bytes(key)?)?;
        self.value(old)
    }

    /// The entries with `from <= key <= to` (both inclusive, as Kafka's
    /// `range`), in key order.
    pub fn range(&self, from: &K, to: &K) -> Result<KeyValueIterator<'_, K, V>> {
        let from = self.key_bytes(from)?;
        let mut to = self.key_bytes(to)?.to_vec();
        // The smallest key above `to`: makes the exclusive bound inclusive.
        to.push(0);
        let inner = self.parts.store.range(&from, &to)?;
        Ok(self.iter(inner))
    }

    /// Every entry, in key order.
    pub fn all(&self) -> Result<KeyValueIterator<'_, K, V>> {
        let inner = self.parts.store.all()?;
        Ok(self.iter(inner))
    }

    fn iter<'s>(&'s self, inner: KvIter<'s>) -> KeyValueIterator<'s, K, V> {
        KeyValueIterator {
            inner,
            topic: self.parts.topic,
            key_serde: self.parts.key_serde,
            value_serde: self.parts.value_serde,
            _types: PhantomData,
        }
    }

    /// An estimate of the number of entries.
    pub fn approximate_num_entries(&self) -> Result<u64> {
        Ok(self.parts.store.approximate_num_entries()?)
    }

    #[doc(hidden)]
    /// [`TypedKeyValueStore::update`] of the key whose serialized form
    /// (with the store's key serde) is `key`: for a processor that has the
    /// key's bytes already (those of its input record, read from a topic
    /// written with the same serde), without a value of `K` in between.
    pub fn update_serialized<R>(
        &mut self,
        key: &[u8],
        update: impl FnOnce(Option<V>) -> (Option<V>, R),
    ) -> Result<R> {
        update_value::<V, R, OWNED_VALUE>(
            &mut *self.parts.store,
            self.parts.topic,
            self.parts.value_serde,
            key,
            update,
        )
    }

    #[doc(hidden)]
    /// Rewrites the serialized value of the key whose serialized form is
    /// `key` in place, when the store holds a copy of its own (the record
    /// cache): see
    /// [`state_store::KeyValueStore::patch`]. Returns whether `patch`
    /// rewrote it; on `false` nothing changed, and the caller updates the
    /// value the usual way ([`TypedKeyValueStore::update_serialized`]). For
    /// fixed-width values whose layout the caller knows (a count's); the
    /// bytes are those the store's value serde wrote.
    pub fn patch_serialized(
        &mut self,
        key: &[u8],
        patch: &mut dyn FnMut(&mut [u8]) -> bool,
    ) -> Result<bool> {
        Ok(self.parts.store.patch(key, patch)?)
    }

    #[doc(hidden)]
    /// Reads a key from its serialized form, with the store's key serde.
    pub fn deserialize_key(&self, key: &[u8]) -> Result<K> {
        Ok(self
            .parts
            .key_serde
            .deserialize_slice(self.parts.topic, key)?)
    }

    /// Decodes an entry handed to [`crate::Processor::flushed`].
    pub fn decode(&self, entry: &CacheEntry) -> Result<Change<K, V>> {
        Ok(Change {
            key: self
                .parts
                .key_serde
                .deserialize(self.parts.topic, &entry.key)?,
            new_value: self.value(entry.new_value.clone())?,
            old_value: self.value(entry.old_value.clone())?,
        })
    }
}

/// Entries of a [`TypedKeyValueStore`], decoded as they are read.
pub struct KeyValueIterator<'s, K, V> {
    inner: KvIter<'s>,
    topic: &'s str,
    key_serde: &'s dyn Serde<K>,
    value_serde: &'s dyn Serde<V>,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> fmt::Debug for KeyValueIterator<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyValueIterator")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl<K: 'static, V: 'static> Iterator for KeyValueIterator<'_, K, V> {
    type Item = Result<(K, V)>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.inner.next()?;
        Some(item.map_err(StreamsError::from).and_then(|(k, v)| {
            Ok((
                self.key_serde.deserialize(self.topic, &k)?,
                self.value_serde.deserialize(self.topic, &v)?,
            ))
        }))
    }
}

/// A typed view over a task's window store, as Kafka's
/// `WindowStore<K, V>`: values per key and window start, keys and values
/// written with the store's serdes.
///
/// Obtained from [`crate::ProcessorContext::window_store`]; it borrows the
/// context, so drop it before forwarding.
pub struct TypedWindowStore<'a, K, V> {
    parts: SlotParts<'a, K, V>,
    window_size: i64,
}

impl<K, V> fmt::Debug for TypedWindowStore<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedWindowStore")
            .field("name", &self.parts.name)
            .field("window_size", &self.window_size)
            .field("key_type", &std::any::type_name::<K>())
            .field("value_type", &std::any::type_name::<V>())
            .finish_non_exhaustive()
    }
}

impl<K: 'static, V: 'static> TypedWindowStore<'_, K, V> {
    /// The store name.
    pub fn name(&self) -> &str {
        self.parts.name
    }

    /// The size of the store's windows, milliseconds.
    pub fn window_size_ms(&self) -> i64 {
        self.window_size
    }

    fn key_bytes(&self, key: &K) -> Result<Bytes> {
        Ok(self.parts.key_serde.serialize(self.parts.topic, key)?)
    }

    /// Sets the value of `key` in the window starting at `window_start`;
    /// `None` removes it. A window past the store's retention is ignored.
    pub fn put(&mut self, key: &K, window_start: i64, value: Option<&V>) -> Result<()> {
        let key = encode_windowed_key(&self.key_bytes(key)?, window_start);
        write_value(
            &mut *self.parts.store,
            self.parts.topic,
            self.parts.value_serde,
            key,
            value,
        )
    }

    /// Reads the value of `key` in the window starting at `window_start`,
    /// hands it to `update`, and writes the value `update` returns (`None`
    /// removes it): a read-modify-write that serializes the key once.
    /// Returns what `update` returned beside the value.
    pub fn update<R>(
        &mut self,
        key: &K,
        window_start: i64,
        update: impl FnOnce(Option<V>) -> (Option<V>, R),
    ) -> Result<R> {
        with_key_buffer(|buffer| {
            self.parts
                .key_serde
                .serialize_into(self.parts.topic, key, buffer)?;
            state_store::put_windowed_key_suffix(buffer, window_start);
            update_value::<V, R, SHARED_VALUE>(
                &mut *self.parts.store,
                self.parts.topic,
                self.parts.value_serde,
                buffer,
                update,
            )
        })
    }

    /// The value of `key` in the window starting at `window_start`.
    pub fn fetch(&self, key: &K, window_start: i64) -> Result<Option<V>> {
        let key = encode_windowed_key(&self.key_bytes(key)?, window_start);
        let bytes = self.parts.store.get(&key)?;
        Ok(self
            .parts
            .value_serde
            .deserialize_nullable(self.parts.topic, bytes.as_ref())?)
    }

    /// The windows of `key` with `time_from <= start <= time_to` (both
    /// inclusive), by ascending start. Negative starts are never found:
    /// window starts are non-negative.
    pub fn fetch_range(&self, key: &K, time_from: i64, time_to: i64) -> Result<Vec<(i64, V)>> {
        let mut out = Vec::new();
        self.fetch_range_with(key, time_from, time_to, |start, value| {
            out.push((start, value));
        })?;
        Ok(out)
    }

    #[doc(hidden)]
    /// [`TypedWindowStore::fetch_range`] handing each window's start and
    /// value to `visit`, by ascending start, instead of collecting them:
    /// for a processor that looks at every window of a key at each record
    /// (a stream–stream join), with no allocation but the values' own.
    pub fn fetch_range_with(
        &self,
        key: &K,
        time_from: i64,
        time_to: i64,
        mut visit: impl FnMut(i64, V),
    ) -> Result<()> {
        let time_from = time_from.max(0);
        if time_to < time_from {
            return Ok(());
        }
        with_key_buffer(|key_bytes| {
            self.parts
                .key_serde
                .serialize_into(self.parts.topic, key, key_bytes)?;
            let mut failed = None;
            let direct = self.parts.store.visit_windows(
                key_bytes,
                time_from,
                time_to,
                &mut |start, value| {
                    if failed.is_none() {
                        match self.parts.value_serde.deserialize(self.parts.topic, value) {
                            Ok(value) => visit(start, value),
                            Err(e) => failed = Some(e),
                        }
                    }
                },
            )?;
            if let Some(e) = failed {
                return Err(e.into());
            }
            if direct {
                return Ok(());
            }
            // Non-negative big-endian starts sort numerically, so this
            // key's windows in range lie between these bounds; longer keys
            // sharing the prefix may too, and are filtered out.
            let from = encode_windowed_key(key_bytes, time_from);
            let mut to = encode_windowed_key(key_bytes, time_to).to_vec();
            to.push(0);
            let mut out = Vec::new();
            for item in self.parts.store.range(&from, &to)? {
                let (windowed, value) = item?;
                match split_windowed_key(&windowed) {
                    Some((k, start))
                        if k == &key_bytes[..] && (time_from..=time_to).contains(&start) =>
                    {
                        out.push((start, value));
                    }
                    _ => {}
                }
            }
            out.sort_by_key(|(start, _)| *start);
            for (start, value) in out {
                visit(
                    start,
                    self.parts
                        .value_serde
                        .deserialize(self.parts.topic, &value)?,
                );
            }
            Ok(())
        })
    }

    #[doc(hidden)]
    /// A read-modify-write of `key`'s window starting at `window_start`
    /// over the serialized value: `write` gets the bytes of the value held,
    /// if any, and appends the bytes of the new value (as the store's
    /// value serde writes them) to `out`. The windowed key and the new
    /// value are handed on borrowed from the thread's buffer
    /// ([`state_store::KeyValueStore::put_slices`]): the in-memory window
    /// store and the changelog copy them where they keep them, so that a
    /// store that keeps every record it is given (a stream–stream join's)
    /// allocates nothing per record for it.
    pub fn update_serialized(
        &mut self,
        key: &K,
        window_start: i64,
        write: impl FnOnce(Option<&[u8]>, &mut Vec<u8>) -> Result<()>,
    ) -> Result<()> {
        with_key_buffer(|buffer| {
            self.parts
                .key_serde
                .serialize_into(self.parts.topic, key, buffer)?;
            state_store::put_windowed_key_suffix(buffer, window_start);
            let key_len = buffer.len();
            let old = self.parts.store.get(buffer)?;
            write(old.as_deref(), buffer)?;
            let (key, value) = buffer.split_at(key_len);
            Ok(self.parts.store.put_slices(key, value)?)
        })
    }

    /// Every window of every key with `time_from <= start <= time_to`, by
    /// ascending window start, then key bytes.
    pub fn fetch_all(&self, time_from: i64, time_to: i64) -> Result<Vec<(Windowed<K>, V)>> {
        let mut raw = self.raw_range(time_from, time_to)?;
        raw.sort_by(|a, b| (a.0.window.start, &a.0.key).cmp(&(b.0.window.start, &b.0.key)));
        raw.into_iter()
            .map(|(windowed, value)| {
                Ok((
                    Windowed::new(
                        self.parts
                            .key_serde
                            .deserialize(self.parts.topic, &windowed.key)?,
                        windowed.window,
                    ),
                    self.parts
                        .value_serde
                        .deserialize(self.parts.topic, &value)?,
                ))
            })
            .collect()
    }

    /// Decodes an entry of this store handed to [`crate::Processor::flushed`]:
    /// the window's key and bounds, its value now and the value before.
    pub fn decode(&self, entry: &CacheEntry) -> Result<Change<Windowed<K>, V>> {
        // The record key shares the entry's buffer: one flushed window, no copy.
        let Some((key, start)) = split_windowed_key(&entry.key)
            .map(|(key, start)| (entry.key.slice(..key.len()), start))
        else {
            return Err(StreamsError::Serde(SerdeError::deserialize::<Windowed<K>>(
                self.parts.topic,
                format!(
                    "a key of window store '{}' is {} bytes, shorter than its 8-byte window start",
                    self.parts.name,
                    entry.key.len()
                ),
            )));
        };
        let window = Window::new(start, start.saturating_add(self.window_size));
        decode_windowed_entry(
            self.parts.topic,
            self.parts.key_serde,
            self.parts.value_serde,
            (&key, window),
            entry,
        )
    }

    fn raw_range(&self, time_from: i64, time_to: i64) -> Result<Vec<(Windowed<Bytes>, Bytes)>> {
        let mut out = Vec::new();
        for item in self.parts.store.all()? {
            let (key, value) = item?;
            let Some((key, start)) = decode_windowed_key(&key) else {
                continue;
            };
            if (time_from..=time_to).contains(&start) {
                let end = start.saturating_add(self.window_size);
                out.push((Windowed::new(key, Window::new(start, end)), value));
            }
        }
        Ok(out)
    }
}

/// Writes `value` under `key` with `serde` (`None` deletes the key).
fn write_value<V: 'static>(
    store: &mut dyn KeyValueStore,
    topic: &str,
    serde: &dyn Serde<V>,
    key: Bytes,
    value: Option<&V>,
) -> Result<()> {
    match value {
        Some(value) => store.put(key, serde.serialize(topic, value)?)?,
        None => {
            store.delete(key)?;
        }
    }
    Ok(())
}

thread_local! {
    /// A buffer for serialized keys of read-modify-writes, kept between
    /// records.
    static KEY_BUFFER: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Runs `f` with an empty buffer for a serialized key, reusing the thread's
/// (a nested call gets a buffer of its own).
fn with_key_buffer<R>(f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    let mut buffer = KEY_BUFFER.take();
    buffer.clear();
    let out = f(&mut buffer);
    // A buffer grown far beyond a key (by a value written after it) is not
    // kept around.
    if buffer.capacity() <= 64 * 1024 {
        KEY_BUFFER.set(buffer);
    }
    out
}

/// How a read-modify-write makes the bytes of the value it writes
/// (`update_value`'s `SHARED`): its own allocation (`OWNED_VALUE`) is the
/// cheapest when the value is overwritten before anything clones it (a
/// key-value aggregate, updated many times per commit interval in the
/// record cache); [`serialize_shared`] (`SHARED_VALUE`) when the value is
/// cloned (a window aggregate: most windows get a few updates, then the
/// cache writes each through to the store, the changelog and downstream).
const OWNED_VALUE: bool = false;
const SHARED_VALUE: bool = true;

thread_local! {
    /// The buffer values are serialized into before they are copied out.
    static VALUE_BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `value` serialized with `serde`, as a store value ready to be shared
/// ([`state_store::shared_bytes`]): the record cache hands it to the inner
/// store, the changelog and downstream. Serialized into a buffer kept by
/// the thread, so a small value costs one allocation.
fn serialize_shared<V: 'static>(topic: &str, serde: &dyn Serde<V>, value: &V) -> Result<Bytes> {
    VALUE_BUFFER.with(|buffer| {
        let Ok(mut buffer) = buffer.try_borrow_mut() else {
            // Re-entered (a serde that updates a store): a buffer of its own.
            let mut own = Vec::new();
            serde.serialize_into(topic, value, &mut own)?;
            return Ok(Bytes::from(own));
        };
        buffer.clear();
        serde.serialize_into(topic, value, &mut buffer)?;
        let bytes = state_store::shared_bytes(&buffer);
        // A value far larger than the usual is not kept around.
        if buffer.capacity() > 64 * 1024 {
            *buffer = Vec::new();
        }
        Ok(bytes)
    })
}

/// Reads the value under `key`, hands it to `update` and writes back the
/// value `update` returns (`None` deletes the key); returns the rest of what
/// `update` returned.
fn update_value<V: 'static, R, const SHARED: bool>(
    store: &mut dyn KeyValueStore,
    topic: &str,
    serde: &dyn Serde<V>,
    key: &[u8],
    update: impl FnOnce(Option<V>) -> (Option<V>, R),
) -> Result<R> {
    let mut update = Some(update);
    let mut outcome: Option<Result<R>> = None;
    store.update(key, &mut |old| {
        let Some(update) = update.take() else {
            return state_store::Update::Keep;
        };
        let step = (|| -> Result<(state_store::Update, R)> {
            let old = old.map(|b| serde.deserialize_slice(topic, b)).transpose()?;
            let (new, out) = update(old);
            let write = match new {
                Some(value) if SHARED => {
                    state_store::Update::Put(serialize_shared(topic, serde, &value)?)
                }
                Some(value) => {
                    // The size of a fixed-width value and its timestamp.
                    let mut bytes = Vec::with_capacity(16);
                    serde.serialize_into(topic, &value, &mut bytes)?;
                    state_store::Update::Put(Bytes::from(bytes))
                }
                None => state_store::Update::Delete,
            };
            Ok((write, out))
        })();
        match step {
            Ok((write, out)) => {
                outcome = Some(Ok(out));
                write
            }
            Err(e) => {
                outcome = Some(Err(e));
                state_store::Update::Keep
            }
        }
    })?;
    outcome.unwrap_or_else(|| {
        Err(StreamsError::Internal(format!(
            "the store behind changelog '{topic}' did not run an update"
        )))
    })
}

/// Decodes a cache entry of a window or session store whose key, parsed
/// by the caller, is the record key `key` in `window`.
fn decode_windowed_entry<K: 'static, V: 'static>(
    topic: &str,
    key_serde: &dyn Serde<K>,
    value_serde: &dyn Serde<V>,
    (key, window): (&Bytes, Window),
    entry: &CacheEntry,
) -> Result<Change<Windowed<K>, V>> {
    Ok(Change {
        key: Windowed::new(key_serde.deserialize(topic, key)?, window),
        new_value: value_serde.deserialize_nullable(topic, entry.new_value.as_ref())?,
        old_value: value_serde.deserialize_nullable(topic, entry.old_value.as_ref())?,
    })
}

/// A typed view over a task's session store, as Kafka's
/// `SessionStore<K, V>`: aggregates per key and session `[start, end]`
/// (both inclusive), keys and values written with the store's serdes.
///
/// Obtained from [`crate::ProcessorContext::session_store`]; it borrows the
/// context, so drop it before forwarding.
pub struct TypedSessionStore<'a, K, V> {
    parts: SlotParts<'a, K, V>,
}

impl<K, V> fmt::Debug for TypedSessionStore<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedSessionStore")
            .field("name", &self.parts.name)
            .field("key_type", &std::any::type_name::<K>())
            .field("value_type", &std::any::type_name::<V>())
            .finish_non_exhaustive()
    }
}

impl<K: 'static, V: 'static> TypedSessionStore<'_, K, V> {
    /// The store name.
    pub fn name(&self) -> &str {
        self.parts.name
    }

    /// Decodes an entry of this store handed to [`crate::Processor::flushed`]:
    /// the session's key and bounds, its aggregate now (`None`: the session
    /// was removed, merged into another) and before.
    pub fn decode(&self, entry: &CacheEntry) -> Result<Change<Windowed<K>, V>> {
        let Some(session) = decode_session_key(&entry.key) else {
            return Err(StreamsError::Serde(SerdeError::deserialize::<Windowed<K>>(
                self.parts.topic,
                format!(
                    "a key of session store '{}' is {} bytes, shorter than its 16-byte session end and start",
                    self.parts.name,
                    entry.key.len()
                ),
            )));
        };
        let window = Window::new(session.start, session.end);
        decode_windowed_entry(
            self.parts.topic,
            self.parts.key_serde,
            self.parts.value_serde,
            (&session.key, window),
            entry,
        )
    }

    fn key_bytes(&self, key: &K) -> Result<Bytes> {
        Ok(self.parts.key_serde.serialize(self.parts.topic, key)?)
    }

    fn session_key(&self, session: &Windowed<K>) -> Result<Bytes> {
        let key = self.key_bytes(&session.key)?;
        Ok(encode_session_key(
            &key,
            session.window.start,
            session.window.end,
        ))
    }

    /// The sessions of `key` with `end >= earliest_session_end` and
    /// `start <= latest_session_start` (Kafka's `findSessions`): for a
    /// record at `t` and an inactivity gap `gap`, the sessions it merges
    /// with are `find_sessions(key, t - gap, t + gap)`. By ascending start,
    /// then end.
    pub fn find_sessions(
        &self,
        key: &K,
        earliest_session_end: i64,
        latest_session_start: i64,
    ) -> Result<Vec<(Windowed<K>, V)>> {
        let key_bytes = self.key_bytes(key)?;
        // Non-negative big-endian ends sort numerically, so this key's
        // sessions ending at or after `earliest_session_end` lie between
        // these bounds; longer keys sharing the prefix may too, and are
        // filtered out.
        let from = encode_session_key(&key_bytes, 0, earliest_session_end.max(0));
        let mut to = encode_session_key(&key_bytes, i64::MAX, i64::MAX).to_vec();
        to.push(0);
        let mut found = Vec::new();
        for item in self.parts.store.range(&from, &to)? {
            let (raw, value) = item?;
            let Some(session) = decode_session_key(&raw) else {
                continue;
            };
            if session.key == key_bytes
                && session.end >= earliest_session_end
                && session.start <= latest_session_start
            {
                found.push((session.start, session.end, value));
            }
        }
        found.sort_by_key(|(start, end, _)| (*start, *end));
        found
            .into_iter()
            .map(|(start, end, value)| {
                Ok((
                    Windowed::new(
                        self.parts
                            .key_serde
                            .deserialize(self.parts.topic, &key_bytes)?,
                        Window::new(start, end),
                    ),
                    self.parts
                        .value_serde
                        .deserialize(self.parts.topic, &value)?,
                ))
            })
            .collect()
    }

    /// Every session of `key`, by ascending start.
    pub fn fetch(&self, key: &K) -> Result<Vec<(Windowed<K>, V)>> {
        self.find_sessions(key, 0, i64::MAX)
    }

    /// The aggregate of exactly the session `session`.
    pub fn fetch_session(&self, session: &Windowed<K>) -> Result<Option<V>> {
        let bytes = self.parts.store.get(&self.session_key(session)?)?;
        Ok(self
            .parts
            .value_serde
            .deserialize_nullable(self.parts.topic, bytes.as_ref())?)
    }

    /// Stores `value` for `session`. A session past the store's retention
    /// is ignored.
    pub fn put(&mut self, session: &Windowed<K>, value: &V) -> Result<()> {
        let key = self.session_key(session)?;
        let value = self.parts.value_serde.serialize(self.parts.topic, value)?;
        Ok(self.parts.store.put(key, value)?)
    }

    /// Removes `session` (a tombstone goes to the changelog).
    pub fn remove(&mut self, session: &Windowed<K>) -> Result<()> {
        let key = self.session_key(session)?;
        self.parts.store.delete(key)?;
        Ok(())
    }

    /// Every session of every key, by key bytes, then end, then start.
    pub fn fetch_all(&self) -> Result<Vec<(Windowed<K>, V)>> {
        let mut out = Vec::new();
        for item in self.parts.store.all()? {
            let (raw, value) = item?;
            let Some(session) = decode_session_key(&raw) else {
                continue;
            };
            out.push((
                Windowed::new(
                    self.parts
                        .key_serde
                        .deserialize(self.parts.topic, &session.key)?,
                    Window::new(session.start, session.end),
                ),
                self.parts
                    .value_serde
                    .deserialize(self.parts.topic, &value)?,
            ));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod window_tests {
    use std::time::Duration;

    use super::*;
    use crate::changelog_buffer::ChangelogRecords;
    use crate::serdes::Serdes;

    fn window_builder() -> StoreBuilder {
        StoreBuilder::window(
            "w",
            Serdes::string(),
            Serdes::i64(),
            Duration::from_millis(1_000),
            Duration::from_millis(100),
        )
    }

    fn open(builder: &StoreBuilder) -> StoreSlot {
        StoreSlot::open(
            builder,
            "app",
            None,
            Path::new("unused"),
            &CacheBudget::new(0),
            &EngineOptions::default(),
        )
        .unwrap()
    }

    /// Restores `changelog` into `slot` as the runtime does, each record at
    /// its timestamp (`ts` where the store gave none).
    fn restore(slot: &mut StoreSlot, changelog: ChangelogRecords, ts: i64) {
        let timestamps: Vec<i64> = changelog.iter().map(|r| r.2.unwrap_or(ts)).collect();
        let writes: Vec<BatchWrite> = changelog.into_iter().map(|(k, v, _)| (k, v)).collect();
        slot.restore_batch(&writes, &timestamps).unwrap();
        slot.flush_restored().unwrap();
        slot.discard_changelog();
    }

    #[test]
    fn window_store_is_changelogged_with_windowed_keys_and_restored() {
        let builder = window_builder();
        assert_eq!(builder.retention_ms(), Some(1_000));
        assert_eq!(builder.log_config()["retention.ms"], "86401000");
        let mut slot = open(&builder);
        {
            let mut store = slot.typed_window::<String, i64>().unwrap();
            store.put(&"a".to_owned(), 100, Some(&1)).unwrap();
            store.put(&"a".to_owned(), 0, Some(&2)).unwrap();
            store.put(&"b".to_owned(), 100, Some(&3)).unwrap();
            store.put(&"b".to_owned(), 100, None).unwrap();
            assert_eq!(
                store.fetch_range(&"a".to_owned(), 0, 200).unwrap(),
                [(0, 2), (100, 1)]
            );
        }
        let changelog = slot.changelog.as_ref().unwrap().take();
        assert_eq!(changelog.len(), 4);
        let mut expected_key = b"a".to_vec();
        expected_key.extend_from_slice(&100i64.to_be_bytes());
        expected_key.extend_from_slice(&0i32.to_be_bytes());
        assert_eq!(changelog[0].0.as_ref(), expected_key.as_slice());
        assert_eq!(changelog[3].1, None);

        // A fresh store restored from the changelog holds the same windows.
        let mut restored = open(&builder);
        restore(&mut restored, changelog, 0);
        let store = restored.typed_window::<String, i64>().unwrap();
        let all = store.fetch_all(0, i64::MAX).unwrap();
        assert_eq!(
            all,
            [
                (Windowed::new("a".to_owned(), Window::new(0, 100)), 2),
                (Windowed::new("a".to_owned(), Window::new(100, 200)), 1),
            ]
        );
    }

    #[test]
    fn fetch_range_skips_longer_keys_sharing_the_prefix() {
        let mut slot = open(&window_builder());
        let mut store = slot.typed_window::<String, i64>().unwrap();
        // "a", then bytes that read as window start 3 and sequence 0.
        let mut longer = "a".to_owned();
        longer.push_str("\0\0\0\0\0\0\0\u{3}\0\0\0\0");
        store.put(&longer, 0, Some(&9)).unwrap();
        store.put(&"a".to_owned(), 5, Some(&1)).unwrap();
        assert_eq!(store.fetch_range(&"a".to_owned(), 0, 10).unwrap(), [(5, 1)]);
        assert_eq!(store.fetch_range(&longer, -5, 10).unwrap(), [(0, 9)]);
        assert!(store
            .fetch_range(&"a".to_owned(), 10, 0)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn fetch_range_with_visits_what_fetch_range_returns_on_every_backend() {
        let dir = tempfile::tempdir().unwrap();
        for backend in StoreBackend::ALL {
            for caching in [false, true] {
                let mut builder = window_builder().with_backend(backend);
                if caching {
                    builder = builder.with_caching_enabled();
                }
                let state_dir = dir.path().join(format!("{backend}-{caching}"));
                let mut slot = StoreSlot::open(
                    &builder,
                    "app",
                    None,
                    &state_dir,
                    &CacheBudget::new(1 << 20),
                    &EngineOptions::default(),
                )
                .unwrap();
                let mut store = slot.typed_window::<String, i64>().unwrap();
                let mut longer = "a".to_owned();
                longer.push_str("\0\0\0\0\0\0\0\u{3}\0\0\0\0");
                store.put(&longer, 0, Some(&9)).unwrap();
                for (start, value) in [(300, 3), (5, 1), (200, 2), (600, 6)] {
                    store.put(&"a".to_owned(), start, Some(&value)).unwrap();
                }
                store.put(&"a".to_owned(), 600, None).unwrap();
                for (from, to) in [(0, 1_000), (5, 200), (6, 199), (-5, 5), (300, 0)] {
                    let mut visited = Vec::new();
                    store
                        .fetch_range_with(&"a".to_owned(), from, to, |start, value| {
                            visited.push((start, value));
                        })
                        .unwrap();
                    let fetched = store.fetch_range(&"a".to_owned(), from, to).unwrap();
                    assert_eq!(
                        visited, fetched,
                        "{backend} caching={caching} {from}..={to}"
                    );
                }
                assert_eq!(
                    store.fetch_range(&"a".to_owned(), 0, 1_000).unwrap(),
                    [(5, 1), (200, 2), (300, 3)],
                    "{backend} caching={caching}"
                );
            }
        }
    }

    #[test]
    fn update_serialized_writes_after_the_windowed_key_and_logs_the_same_bytes() {
        let mut slot = open(&window_builder());
        {
            let mut store = slot.typed_window::<String, i64>().unwrap();
            let add = |n: i64| {
                move |old: Option<&[u8]>, out: &mut Vec<u8>| -> Result<()> {
                    let old = old.map_or(0, |b| i64::from_be_bytes(b.try_into().unwrap()));
                    out.extend_from_slice(&(old + n).to_be_bytes());
                    Ok(())
                }
            };
            store
                .update_serialized(&"a".to_owned(), 100, add(5))
                .unwrap();
            store
                .update_serialized(&"a".to_owned(), 100, add(2))
                .unwrap();
            store
                .update_serialized(&"b".to_owned(), 100, add(1))
                .unwrap();
            assert_eq!(store.fetch(&"a".to_owned(), 100).unwrap(), Some(7));
            assert_eq!(store.fetch(&"b".to_owned(), 100).unwrap(), Some(1));
            // A failed write writes nothing.
            let failed = store.update_serialized(&"c".to_owned(), 100, |_, out| {
                out.push(1);
                Err(StreamsError::Internal("no".to_owned()))
            });
            assert!(failed.is_err());
            assert_eq!(store.fetch(&"c".to_owned(), 100).unwrap(), None);
        }
        let changelog = slot.changelog.as_ref().unwrap().take();
        let logged: Vec<(Bytes, Option<Bytes>)> =
            changelog.into_iter().map(|(k, v, _)| (k, v)).collect();
        let key = |k: &str| encode_windowed_key(k.as_bytes(), 100);
        let value = |n: i64| Some(Bytes::copy_from_slice(&n.to_be_bytes()));
        assert_eq!(
            logged,
            [
                (key("a"), value(5)),
                (key("a"), value(7)),
                (key("b"), value(1))
            ]
        );
    }

    #[test]
    fn session_store_is_changelogged_with_session_keys_and_restored() {
        let builder = StoreBuilder::session(
            "s",
            Serdes::string(),
            Serdes::i64(),
            Duration::from_millis(1_000),
        );
        assert_eq!(builder.log_config()["retention.ms"], "86401000");
        let mut slot = open(&builder);
        let session = |start, end| Windowed::new("a".to_owned(), Window::new(start, end));
        {
            let mut store = slot.typed_session::<String, i64>().unwrap();
            store.put(&session(0, 5), &2).unwrap();
            store.put(&session(20, 20), &1).unwrap();
            assert_eq!(
                store.find_sessions(&"a".to_owned(), 5, 15).unwrap(),
                [(session(0, 5), 2)]
            );
            store.remove(&session(0, 5)).unwrap();
            store.remove(&session(20, 20)).unwrap();
            store.put(&session(0, 20), &4).unwrap();
            assert_eq!(store.fetch_session(&session(0, 20)).unwrap(), Some(4));
        }
        let changelog = slot.changelog.as_ref().unwrap().take();
        assert_eq!(changelog.len(), 5);
        let mut expected_key = b"a".to_vec();
        expected_key.extend_from_slice(&5i64.to_be_bytes());
        expected_key.extend_from_slice(&0i64.to_be_bytes());
        assert_eq!(changelog[0].0.as_ref(), expected_key.as_slice());
        assert_eq!(changelog[2].1, None);

        let mut restored = open(&builder);
        restore(&mut restored, changelog, 0);
        let store = restored.typed_session::<String, i64>().unwrap();
        assert_eq!(store.fetch_all().unwrap(), [(session(0, 20), 4)]);
        assert!(matches!(
            restored.typed_window::<String, i64>(),
            Err(StreamsError::StoreKindMismatch {
                actual: "session",
                ..
            })
        ));
        assert!(matches!(
            restored.typed::<String, i64>(),
            Err(StreamsError::StoreKindMismatch { .. })
        ));
    }

    #[test]
    fn kinds_are_checked() {
        let mut slot = open(&window_builder());
        assert!(matches!(
            slot.typed::<String, i64>(),
            Err(StreamsError::StoreKindMismatch { .. })
        ));
        assert!(matches!(
            slot.typed_window::<String, String>(),
            Err(StreamsError::StoreTypeMismatch { .. })
        ));
        let kv = StoreBuilder::key_value("kv", Serdes::string(), Serdes::i64())
            .with_backend(StoreBackend::InMemory);
        let mut slot = open(&kv);
        assert!(matches!(
            slot.typed_window::<String, i64>(),
            Err(StreamsError::StoreKindMismatch { .. })
        ));
    }

    #[test]
    fn options_replace_the_builders_and_keep_what_the_store_kind_needs() {
        let options = StoreOptions::default()
            .with_caching_enabled()
            .with_logging_enabled([("segment.bytes", "1024")]);
        let window = StoreBuilder::window(
            "w",
            Serdes::string(),
            Serdes::i64(),
            Duration::from_millis(1000),
            Duration::from_millis(10),
        )
        .with_backend(StoreBackend::Sled)
        .with_options(options.clone());
        // No backend in the options: the window store's own default.
        assert_eq!(window.backend(), StoreBackend::InMemory);
        assert!(window.caching_enabled());
        assert_eq!(window.log_config()["segment.bytes"], "1024");
        assert_eq!(window.log_config()["cleanup.policy"], "compact,delete");
        assert_eq!(window.log_config()["retention.ms"], "86401000");
        let versioned = versioned_builder().with_options(options.with_backend(StoreBackend::Redb));
        assert!(!versioned.caching_enabled());
        assert_eq!(versioned.backend(), StoreBackend::Redb);
        assert_eq!(versioned.log_config()["min.compaction.lag.ms"], "86400100");
        let unlogged = versioned.with_options(StoreOptions::default().with_logging_disabled());
        assert!(!unlogged.logging_enabled());
        assert!(unlogged.log_config().is_empty());
    }

    fn versioned_builder() -> StoreBuilder {
        StoreBuilder::versioned_key_value(
            "v",
            Serdes::string(),
            Serdes::string(),
            Duration::from_millis(100),
        )
        .with_backend(StoreBackend::InMemory)
    }

    #[test]
    fn versioned_store_is_changelogged_with_version_timestamps_and_restored() {
        let builder = versioned_builder().with_caching_enabled();
        assert!(!builder.caching_enabled());
        assert_eq!(builder.log_config()["min.compaction.lag.ms"], "86400100");
        assert_eq!(builder.retention_ms(), None);
        let mut slot = open(&builder);
        let (a, b) = ("a".to_owned(), "b".to_owned());
        {
            let mut store = slot.typed_versioned::<String, String>().unwrap();
            assert_eq!(store.history_retention_ms(), 100);
            assert_eq!(
                store.put(&a, Some(&"x".to_owned()), 20).unwrap(),
                PutOutcome::Latest
            );
            assert_eq!(
                store.put(&a, Some(&"w".to_owned()), 10).unwrap(),
                PutOutcome::Older { valid_to: 20 }
            );
            store.put(&b, Some(&"y".to_owned()), 30).unwrap();
            let deleted = store.delete(&b, 40).unwrap();
            assert_eq!(
                deleted,
                Some(VersionedRecord {
                    value: "y".to_owned(),
                    timestamp: 30,
                    valid_to: None
                })
            );
            assert_eq!(store.get(&b).unwrap(), None);
            assert_eq!(
                store.get_as_of(&a, 15).unwrap(),
                Some(VersionedRecord {
                    value: "w".to_owned(),
                    timestamp: 10,
                    valid_to: Some(20)
                })
            );
            // Older than the history retention: not put.
            assert_eq!(
                store.put(&a, Some(&"late".to_owned()), -61).unwrap(),
                PutOutcome::NotPut
            );
        }
        let changelog = slot.changelog.as_ref().unwrap().take();
        let stamps: Vec<Option<i64>> = changelog.iter().map(|r| r.2).collect();
        assert_eq!(stamps, [Some(20), Some(10), Some(30), Some(40), Some(-61)]);
        assert_eq!(changelog[1].0.as_ref(), b"a");
        assert_eq!(changelog[1].1.as_deref(), Some(&b"w"[..]));
        assert_eq!(changelog[3].1, None);

        let mut restored = open(&builder);
        restore(&mut restored, changelog, 0);
        let store = restored.typed_versioned::<String, String>().unwrap();
        assert_eq!(store.observed_stream_time(), Some(40));
        assert_eq!(
            store.get(&a).unwrap().map(|r| r.value),
            Some("x".to_owned())
        );
        assert_eq!(
            store.get_as_of(&a, 19).unwrap().map(|r| r.value),
            Some("w".to_owned())
        );
        assert_eq!(store.get(&b).unwrap(), None);
        assert_eq!(
            store.get_as_of(&b, 35).unwrap().map(|r| r.value),
            Some("y".to_owned())
        );
    }

    #[test]
    fn versioned_store_kind_is_checked() {
        let mut slot = open(&versioned_builder());
        assert!(matches!(
            slot.typed::<String, String>(),
            Err(StreamsError::StoreKindMismatch {
                actual: "versioned key-value",
                requested: "key-value",
                ..
            })
        ));
        assert!(matches!(
            slot.typed_versioned::<String, i64>(),
            Err(StreamsError::StoreTypeMismatch { .. })
        ));
        let mut kv = open(
            &StoreBuilder::key_value("kv", Serdes::string(), Serdes::string())
                .with_backend(StoreBackend::InMemory),
        );
        assert!(matches!(
            kv.typed_versioned::<String, String>(),
            Err(StreamsError::StoreKindMismatch {
                actual: "key-value",
                requested: "versioned key-value",
                ..
            })
        ));
    }

    #[test]
    fn persistent_versioned_store_keeps_its_versions() {
        let dir = tempfile::tempdir().unwrap();
        let builder = versioned_builder().with_backend(StoreBackend::Redb);
        {
            let mut slot = StoreSlot::open(
                &builder,
                "app",
                None,
                dir.path(),
                &CacheBudget::new(0),
                &EngineOptions::default(),
            )
            .unwrap();
            assert!(slot.persistent);
            assert_eq!(slot.local_data, LocalData::Created);
            let mut store = slot.typed_versioned::<String, String>().unwrap();
            store
                .put(&"a".to_owned(), Some(&"1".to_owned()), 5)
                .unwrap();
            store
                .put(&"a".to_owned(), Some(&"2".to_owned()), 9)
                .unwrap();
            slot.stack.close().unwrap();
        }
        let mut slot = StoreSlot::open(
            &builder,
            "app",
            None,
            dir.path(),
            &CacheBudget::new(0),
            &EngineOptions::default(),
        )
        .unwrap();
        assert_eq!(slot.local_data, LocalData::Found);
        let store = slot.typed_versioned::<String, String>().unwrap();
        assert_eq!(
            store
                .get_as_of(&"a".to_owned(), 7)
                .unwrap()
                .map(|r| r.value),
            Some("1".to_owned())
        );
        slot.stack.close().unwrap();
    }
}
