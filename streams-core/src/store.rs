//! State stores as processors see them: [`StoreBuilder`] declares a store
//! of a topology, [`TypedKeyValueStore`] is a typed view over the bytes
//! [`KeyValueStore`] that the task opened for it.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use state_store::{
    open_or_wipe, CacheEntry, CachingStore, ChangeLoggingStore, ChangelogSink, KeyValueStore,
    KvIter, StoreBackend,
};

use crate::error::{Result, StreamsError};
use crate::serdes::Serde;
use crate::topology::TypeInfo;

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
    backend: StoreBackend,
    caching: bool,
    logging: bool,
    log_config: BTreeMap<String, String>,
    pub(crate) key_type: TypeInfo,
    pub(crate) value_type: TypeInfo,
    pub(crate) key_serde: ErasedSerde,
    pub(crate) value_serde: ErasedSerde,
}

impl fmt::Debug for StoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreBuilder")
            .field("name", &self.name)
            .field("backend", &self.backend)
            .field("caching", &self.caching)
            .field("logging", &self.logging)
            .field("log_config", &self.log_config)
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
        let key_serde: Arc<dyn Serde<K>> = Arc::new(key_serde);
        let value_serde: Arc<dyn Serde<V>> = Arc::new(value_serde);
        Self {
            name: name.into(),
            backend: StoreBackend::default(),
            caching: false,
            logging: true,
            log_config: BTreeMap::new(),
            key_type: TypeInfo::of::<K>(),
            value_type: TypeInfo::of::<V>(),
            key_serde: Arc::new(key_serde),
            value_serde: Arc::new(value_serde),
        }
    }

    /// Chooses the storage engine.
    pub fn with_backend(mut self, backend: StoreBackend) -> Self {
        self.backend = backend;
        self
    }

    /// Puts a record cache (`cache.max.bytes.buffering`) in front of the
    /// store: consecutive updates of a key between commits are
    /// deduplicated, and a processor registered with
    /// [`crate::ProcessorContext::set_flush_listener`] receives the
    /// surviving updates when the cache is flushed or evicts.
    pub fn with_caching_enabled(mut self) -> Self {
        self.caching = true;
        self
    }

    /// Writes go straight to the store (the default).
    pub fn with_caching_disabled(mut self) -> Self {
        self.caching = false;
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
        self.logging = true;
        self.log_config = topic_config
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        self
    }

    /// No changelog: the store is not restored after a failure.
    pub fn with_logging_disabled(mut self) -> Self {
        self.logging = false;
        self.log_config.clear();
        self
    }

    /// The store name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The storage engine.
    pub fn backend(&self) -> StoreBackend {
        self.backend
    }

    /// Whether a record cache fronts the store.
    pub fn caching_enabled(&self) -> bool {
        self.caching
    }

    /// Whether updates go to a changelog topic.
    pub fn logging_enabled(&self) -> bool {
        self.logging
    }

    /// Extra configs of the changelog topic.
    pub fn log_config(&self) -> &BTreeMap<String, String> {
        &self.log_config
    }
}

/// The changelog topic of store `store` in application `application_id`.
pub(crate) fn changelog_topic(application_id: &str, store: &str) -> String {
    format!("{application_id}-{store}-changelog")
}

/// A changelog sink that buffers updates until the task hands them to its
/// owner (the test driver, or the runtime's producer).
#[derive(Debug, Clone, Default)]
pub(crate) struct ChangelogBuffer(Arc<Mutex<ChangelogRecords>>);

/// Changelog updates: a key and its new value (`None`: a tombstone).
type ChangelogRecords = Vec<(Bytes, Option<Bytes>)>;

impl ChangelogBuffer {
    pub(crate) fn take(&self) -> ChangelogRecords {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl ChangelogSink for ChangelogBuffer {
    fn send(&mut self, key: Bytes, value: Option<Bytes>) -> state_store::Result<()> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((key, value));
        Ok(())
    }
}

/// The layers of one store: the backend, optionally wrapped by the
/// changelogging layer, optionally fronted by the record cache.
#[derive(Debug)]
pub(crate) enum StoreStack {
    Direct(Box<dyn KeyValueStore>),
    Cached(CachingStore<Box<dyn KeyValueStore>>),
}

impl StoreStack {
    pub(crate) fn as_dyn_mut(&mut self) -> &mut dyn KeyValueStore {
        match self {
            Self::Direct(store) => store.as_mut(),
            Self::Cached(store) => store,
        }
    }

    /// Entries the cache evicted or flushed since the last call.
    pub(crate) fn take_forwarded(&mut self) -> Vec<CacheEntry> {
        match self {
            Self::Direct(_) => Vec::new(),
            Self::Cached(store) => store.take_forwarded(),
        }
    }

    pub(crate) fn dirty_entries(&self) -> usize {
        match self {
            Self::Direct(_) => 0,
            Self::Cached(store) => store.dirty_entries(),
        }
    }
}

/// One store of a task.
#[derive(Debug)]
pub(crate) struct StoreSlot {
    pub(crate) name: String,
    pub(crate) changelog_topic: Arc<str>,
    pub(crate) stack: StoreStack,
    pub(crate) caching: bool,
    pub(crate) changelog: Option<ChangelogBuffer>,
    /// Nodes that receive this store's cache flushes.
    pub(crate) listeners: Vec<usize>,
    /// Whether the store keeps its data on disk across restarts.
    pub(crate) persistent: bool,
    /// Whether the local store failed to open and was wiped (it must be
    /// restored from the start of its changelog).
    pub(crate) wiped: bool,
    key_type: TypeInfo,
    value_type: TypeInfo,
    key_serde: ErasedSerdeDebug,
    value_serde: ErasedSerdeDebug,
}

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
        cache_max_bytes: usize,
    ) -> Result<Self> {
        let backend = backend.unwrap_or(builder.backend);
        let (base, wiped) = open_or_wipe(backend, state_dir, &builder.name)?;
        let persistent = backend.is_persistent();
        let (base, changelog) = if builder.logging {
            let buffer = ChangelogBuffer::default();
            let logged: Box<dyn KeyValueStore> =
                Box::new(ChangeLoggingStore::new(base, buffer.clone()));
            (logged, Some(buffer))
        } else {
            (base, None)
        };
        let stack = if builder.caching {
            StoreStack::Cached(CachingStore::new(base, cache_max_bytes))
        } else {
            StoreStack::Direct(base)
        };
        tracing::debug!(store = %builder.name, %backend, caching = builder.caching, logging = builder.logging, "opened state store");
        Ok(Self {
            name: builder.name.clone(),
            changelog_topic: changelog_topic(application_id, &builder.name).into(),
            stack,
            caching: builder.caching,
            changelog,
            listeners: Vec::new(),
            persistent,
            wiped,
            key_type: builder.key_type,
            value_type: builder.value_type,
            key_serde: ErasedSerdeDebug(builder.key_serde.clone()),
            value_serde: ErasedSerdeDebug(builder.value_serde.clone()),
        })
    }

    /// The layers below the record cache, for restoration. Writes to it
    /// still reach the changelog buffer: drop them with
    /// [`StoreSlot::discard_changelog`].
    pub(crate) fn restore_target(&mut self) -> &mut dyn KeyValueStore {
        match &mut self.stack {
            StoreStack::Direct(store) => store.as_mut(),
            StoreStack::Cached(store) => store.inner_mut().as_mut(),
        }
    }

    /// Drops the changelog updates buffered so far (those of a restoration,
    /// which are in the changelog already).
    pub(crate) fn discard_changelog(&self) {
        if let Some(buffer) = &self.changelog {
            drop(buffer.take());
        }
    }

    /// A typed view, if `K` and `V` are the store's types.
    pub(crate) fn typed<K: 'static, V: 'static>(&mut self) -> Result<TypedKeyValueStore<'_, K, V>> {
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
        Ok(TypedKeyValueStore {
            store: self.stack.as_dyn_mut(),
            name: &self.name,
            topic: &self.changelog_topic,
            key_serde: key_serde.as_ref(),
            value_serde: value_serde.as_ref(),
        })
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
    store: &'a mut dyn KeyValueStore,
    name: &'a str,
    topic: &'a str,
    key_serde: &'a dyn Serde<K>,
    value_serde: &'a dyn Serde<V>,
}

impl<K, V> fmt::Debug for TypedKeyValueStore<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedKeyValueStore")
            .field("name", &self.name)
            .field("key_type", &std::any::type_name::<K>())
            .field("value_type", &std::any::type_name::<V>())
            .finish_non_exhaustive()
    }
}

impl<K: 'static, V: 'static> TypedKeyValueStore<'_, K, V> {
    /// The store name.
    pub fn name(&self) -> &str {
        self.name
    }

    fn key_bytes(&self, key: &K) -> Result<Bytes> {
        Ok(self.key_serde.serialize(self.topic, key)?)
    }

    fn value(&self, bytes: Option<Bytes>) -> Result<Option<V>> {
        Ok(self
            .value_serde
            .deserialize_nullable(self.topic, bytes.as_ref())?)
    }

    /// The value of `key`.
    pub fn get(&self, key: &K) -> Result<Option<V>> {
        let bytes = self.store.get(&self.key_bytes(key)?)?;
        self.value(bytes)
    }

    /// Sets `key` to `value`.
    pub fn put(&mut self, key: &K, value: &V) -> Result<()> {
        let key = self.key_bytes(key)?;
        let value = self.value_serde.serialize(self.topic, value)?;
        Ok(self.store.put(key, value)?)
    }

    /// Sets `key` to `value` unless it has a value; returns the existing
    /// value.
    pub fn put_if_absent(&mut self, key: &K, value: &V) -> Result<Option<V>> {
        let key = self.key_bytes(key)?;
        let value = self.value_serde.serialize(self.topic, value)?;
        let existing = self.store.put_if_absent(key, value)?;
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
        let old = self.store.delete(self.key_bytes(key)?)?;
        self.value(old)
    }

    /// The entries with `from <= key <= to` (both inclusive, as Kafka's
    /// `range`), in key order.
    pub fn range(&self, from: &K, to: &K) -> Result<KeyValueIterator<'_, K, V>> {
        let from = self.key_bytes(from)?;
        let mut to = self.key_bytes(to)?.to_vec();
        // The smallest key above `to`: makes the exclusive bound inclusive.
        to.push(0);
        let inner = self.store.range(&from, &to)?;
        Ok(self.iter(inner))
    }

    /// Every entry, in key order.
    pub fn all(&self) -> Result<KeyValueIterator<'_, K, V>> {
        let inner = self.store.all()?;
        Ok(self.iter(inner))
    }

    fn iter<'s>(&'s self, inner: KvIter<'s>) -> KeyValueIterator<'s, K, V> {
        KeyValueIterator {
            inner,
            topic: self.topic,
            key_serde: self.key_serde,
            value_serde: self.value_serde,
            _types: PhantomData,
        }
    }

    /// An estimate of the number of entries.
    pub fn approximate_num_entries(&self) -> Result<u64> {
        Ok(self.store.approximate_num_entries()?)
    }

    /// Decodes an entry handed to [`crate::Processor::flushed`].
    pub fn decode(&self, entry: &CacheEntry) -> Result<Change<K, V>> {
        Ok(Change {
            key: self.key_serde.deserialize(self.topic, &entry.key)?,
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
