//! The option objects of the DSL, as Kafka's: [`Named`], [`Consumed`],
//! [`Produced`], [`Grouped`], [`Materialized`], [`Branched`] and
//! [`Repartitioned`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use streams_core::{
    Serde, SharedTimestampExtractor, StoreBackend, StoreOptions, TimestampExtractor,
};

/// A shared, type-erased serde.
pub(crate) type SerdeArc<T> = Arc<dyn Serde<T>>;

/// `serde`, or the built-in serde of `T` if `T` has one
/// ([`streams_core::Serdes::default_for`]): where types allow, serdes are
/// optional.
pub(crate) fn or_default<T: 'static>(serde: Option<SerdeArc<T>>) -> Option<SerdeArc<T>> {
    serde.or_else(streams_core::Serdes::default_for::<T>)
}

pub(crate) fn serde_arc<T>(serde: impl Serde<T>) -> SerdeArc<T> {
    Arc::new(serde)
}

/// The name of an operator, replacing the generated
/// `KSTREAM-<OPERATION>-<index>` name (Kafka's `Named`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    pub(crate) name: String,
}

impl Named {
    /// Names the operator `name`.
    pub fn as_(name: impl Into<String>) -> Self {
        Self { name: name.into() }
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// How a source topic is read: its key and value serdes and, optionally,
/// the source node's name and its timestamp extractor (Kafka's
/// `Consumed`).
pub struct Consumed<K, V> {
    pub(crate) key_serde: SerdeArc<K>,
    pub(crate) value_serde: SerdeArc<V>,
    pub(crate) name: Option<String>,
    pub(crate) timestamp_extractor: Option<SharedTimestampExtractor>,
}

impl<K, V> fmt::Debug for Consumed<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumed")
            .field("name", &self.name)
            .field("timestamp_extractor", &self.timestamp_extractor)
            .finish_non_exhaustive()
    }
}

impl<K, V> Consumed<K, V> {
    /// Reads keys with `key_serde` and values with `value_serde`.
    pub fn with(key_serde: impl Serde<K>, value_serde: impl Serde<V>) -> Self {
        Self {
            key_serde: serde_arc(key_serde),
            value_serde: serde_arc(value_serde),
            name: None,
            timestamp_extractor: None,
        }
    }

    /// Names the source node.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Gives the source's records their timestamps with `extractor`
    /// instead of `default.timestamp.extractor` (see
    /// [`streams_core::timestamp`]).
    pub fn with_timestamp_extractor(mut self, extractor: impl TimestampExtractor) -> Self {
        self.timestamp_extractor = Some(Arc::new(extractor));
        self
    }
}

/// How a stream is written to a topic: serdes and, optionally, the sink
/// node's name (Kafka's `Produced`). Serdes left out are taken from
/// upstream when known.
pub struct Produced<K, V> {
    pub(crate) key_serde: Option<SerdeArc<K>>,
    pub(crate) value_serde: Option<SerdeArc<V>>,
    pub(crate) name: Option<String>,
}

impl<K, V> fmt::Debug for Produced<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Produced")
            .field("name", &self.name)
            .field("key_serde", &self.key_serde.is_some())
            .field("value_serde", &self.value_serde.is_some())
            .finish()
    }
}

impl<K, V> Default for Produced<K, V> {
    fn default() -> Self {
        Self {
            key_serde: None,
            value_serde: None,
            name: None,
        }
    }
}

impl<K, V> Produced<K, V> {
    /// No serdes given: the stream's (or the built-in ones of its types).
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes keys with `key_serde` and values with `value_serde`.
    pub fn with(key_serde: impl Serde<K>, value_serde: impl Serde<V>) -> Self {
        Self {
            key_serde: Some(serde_arc(key_serde)),
            value_serde: Some(serde_arc(value_serde)),
            name: None,
        }
    }

    /// Names the sink node; the serdes come from upstream.
    pub fn as_(name: impl Into<String>) -> Self {
        Self::default().with_name(name)
    }

    /// Names the sink node.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

/// How a stream is grouped: the serdes of the repartition topic and the
/// name that prefixes it (Kafka's `Grouped`).
pub struct Grouped<K, V> {
    pub(crate) key_serde: Option<SerdeArc<K>>,
    pub(crate) value_serde: Option<SerdeArc<V>>,
    pub(crate) name: Option<String>,
}

impl<K, V> fmt::Debug for Grouped<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grouped")
            .field("name", &self.name)
            .field("key_serde", &self.key_serde.is_some())
            .field("value_serde", &self.value_serde.is_some())
            .finish()
    }
}

impl<K, V> Default for Grouped<K, V> {
    fn default() -> Self {
        Self {
            key_serde: None,
            value_serde: None,
            name: None,
        }
    }
}

impl<K, V> Grouped<K, V> {
    /// No serdes given: the stream's (or the built-in ones of its types).
    pub fn new() -> Self {
        Self::default()
    }

    /// Groups with these serdes.
    pub fn with(key_serde: impl Serde<K>, value_serde: impl Serde<V>) -> Self {
        Self {
            key_serde: Some(serde_arc(key_serde)),
            value_serde: Some(serde_arc(value_serde)),
            name: None,
        }
    }

    /// Names the grouping: the repartition topic becomes
    /// `<name>-repartition`; the serdes come from upstream.
    pub fn as_(name: impl Into<String>) -> Self {
        Self::default().with_name(name)
    }

    /// Names the grouping.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

/// How an aggregation or a table is stored (Kafka's `Materialized`): store
/// name, serdes, backend, caching and changelogging.
///
/// Defaults follow Kafka's DSL: a generated name, caching and logging
/// enabled, the default backend.
pub struct Materialized<K, V> {
    pub(crate) name: Option<String>,
    pub(crate) key_serde: Option<SerdeArc<K>>,
    pub(crate) value_serde: Option<SerdeArc<V>>,
    /// Backend, record cache, changelog: handed to the store's builder.
    pub(crate) options: StoreOptions,
    pub(crate) retention: Option<Duration>,
    /// The history retention of a versioned store.
    pub(crate) versioned: Option<Duration>,
}

impl<K, V> fmt::Debug for Materialized<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Materialized")
            .field("name", &self.name)
            .field("key_serde", &self.key_serde.is_some())
            .field("value_serde", &self.value_serde.is_some())
            .field("options", &self.options)
            .field("retention", &self.retention)
            .field("versioned", &self.versioned)
            .finish()
    }
}

impl<K, V> Default for Materialized<K, V> {
    fn default() -> Self {
        Self {
            name: None,
            key_serde: None,
            value_serde: None,
            options: StoreOptions::default().with_caching_enabled(),
            retention: None,
            versioned: None,
        }
    }
}

impl<K, V> Materialized<K, V> {
    /// A store with a generated name and serdes taken from upstream.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store named `store_name`: queryable, and its changelog is
    /// `<application.id>-<store_name>-changelog`.
    pub fn as_(store_name: impl Into<String>) -> Self {
        Self {
            name: Some(store_name.into()),
            ..Self::default()
        }
    }

    /// A versioned store named `store_name` that keeps `history_retention`
    /// of history (Kafka's
    /// `Materialized.as(Stores.persistentVersionedKeyValueStore(name, historyRetention))`):
    /// each update of a row is kept as a version valid from its timestamp,
    /// so that a stream–table join reads the row as of the stream record's
    /// time, and downstream table operations follow Kafka's versioned
    /// semantics (see `docs/dsl.md`). `builder.table` and
    /// `KStream::to_table` accept one; the other operations do not yet.
    ///
    /// The history retention is also the store's grace period: an update
    /// older than stream time minus it is dropped. A versioned store has
    /// no record cache; [`Materialized::with_backend`] chooses where it
    /// lives (persistent by default, as Kafka's).
    pub fn as_versioned(store_name: impl Into<String>, history_retention: Duration) -> Self {
        Self {
            name: Some(store_name.into()),
            versioned: Some(history_retention),
            ..Self::default()
        }
    }

    /// The history retention of a versioned store
    /// ([`Materialized::as_versioned`]).
    pub fn history_retention(&self) -> Option<Duration> {
        self.versioned
    }

    /// A store with a generated name and these serdes.
    pub fn with(key_serde: impl Serde<K>, value_serde: impl Serde<V>) -> Self {
        Self::default()
            .with_key_serde(key_serde)
            .with_value_serde(value_serde)
    }

    /// Sets the key serde.
    pub fn with_key_serde(mut self, key_serde: impl Serde<K>) -> Self {
        self.key_serde = Some(serde_arc(key_serde));
        self
    }

    /// Sets the value serde.
    pub fn with_value_serde(mut self, value_serde: impl Serde<V>) -> Self {
        self.value_serde = Some(serde_arc(value_serde));
        self
    }

    /// Chooses the storage engine.
    pub fn with_backend(mut self, backend: StoreBackend) -> Self {
        self.options = self.options.with_backend(backend);
        self
    }

    /// Puts a record cache in front of the store (the default): updates
    /// of a key between commits are deduplicated before going downstream.
    pub fn with_caching_enabled(mut self) -> Self {
        self.options = self.options.with_caching_enabled();
        self
    }

    /// Every update goes downstream at once.
    pub fn with_caching_disabled(mut self) -> Self {
        self.options = self.options.with_caching_disabled();
        self
    }

    /// Changelogs the store (the default), with extra configs for the
    /// changelog topic.
    pub fn with_logging_enabled<I, CK, CV>(mut self, topic_config: I) -> Self
    where
        I: IntoIterator<Item = (CK, CV)>,
        CK: Into<String>,
        CV: Into<String>,
    {
        self.options = self.options.with_logging_enabled(topic_config);
        self
    }

    /// No changelog: the store is not restored after a failure.
    pub fn with_logging_disabled(mut self) -> Self {
        self.options = self.options.with_logging_disabled();
        self
    }

    /// The store's options: backend, record cache and changelog, as
    /// [`streams_core::StoreBuilder`] takes them.
    pub fn store_options(&self) -> &StoreOptions {
        &self.options
    }

    /// How long a window store keeps a window after its start (Kafka's
    /// `Materialized.withRetention`). Only windowed aggregations use it;
    /// it must be at least the window size plus the grace period (sliding
    /// windows: twice the time difference plus the grace period; sessions:
    /// the gap plus the grace period), which is the default, as in Kafka.
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.retention = Some(retention);
        self
    }

    /// The retention of a window store, if given.
    pub fn retention(&self) -> Option<Duration> {
        self.retention
    }

    /// The store name, if given.
    pub fn store_name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}

/// Names a branch of [`crate::KStream::split`] (Kafka's `Branched`). The
/// branch's name is the split's name followed by this one; an unnamed
/// branch takes its position (from 1; the default branch is 0).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Branched {
    pub(crate) name: Option<String>,
}

impl Branched {
    /// An unnamed branch.
    pub fn new() -> Self {
        Self::default()
    }

    /// A branch named `name`.
    pub fn as_(name: impl Into<String>) -> Self {
        Self {
            name: Some(name.into()),
        }
    }
}

/// How [`crate::KStream::repartition`] writes its topic: its name prefix
/// and serdes (Kafka's `Repartitioned`).
pub struct Repartitioned<K, V> {
    pub(crate) name: Option<String>,
    pub(crate) key_serde: Option<SerdeArc<K>>,
    pub(crate) value_serde: Option<SerdeArc<V>>,
    pub(crate) partitions: Option<u32>,
}

impl<K, V> fmt::Debug for Repartitioned<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Repartitioned")
            .field("name", &self.name)
            .field("key_serde", &self.key_serde.is_some())
            .field("value_serde", &self.value_serde.is_some())
            .field("partitions", &self.partitions)
            .finish()
    }
}

impl<K, V> Default for Repartitioned<K, V> {
    fn default() -> Self {
        Self {
            name: None,
            key_serde: None,
            value_serde: None,
            partitions: None,
        }
    }
}

impl<K, V> Repartitioned<K, V> {
    /// A generated name and serdes from upstream.
    pub fn new() -> Self {
        Self::default()
    }

    /// The topic becomes `<name>-repartition`.
    pub fn as_(name: impl Into<String>) -> Self {
        Self {
            name: Some(name.into()),
            ..Self::default()
        }
    }

    /// Writes the topic with these serdes.
    pub fn with(key_serde: impl Serde<K>, value_serde: impl Serde<V>) -> Self {
        Self {
            key_serde: Some(serde_arc(key_serde)),
            value_serde: Some(serde_arc(value_serde)),
            ..Self::default()
        }
    }

    /// Names the topic (see [`Repartitioned::as_`]).
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The number of partitions the runtime should create the topic with
    /// (by default, that of the input).
    pub fn with_number_of_partitions(mut self, partitions: u32) -> Self {
        self.partitions = Some(partitions);
        self
    }

    /// The requested number of partitions.
    pub fn number_of_partitions(&self) -> Option<u32> {
        self.partitions
    }
}
