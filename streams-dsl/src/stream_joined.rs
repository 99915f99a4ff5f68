//! [`StreamJoined`]: the serdes, names and stores of a stream–stream join.

use std::fmt;
use std::sync::Arc;

use streams_core::{Serde, StoreBackend, StoreOptions};

use crate::options::SerdeArc;

/// How a stream–stream join ([`crate::KStream::join`],
/// [`crate::KStream::left_join`], [`crate::KStream::outer_join`]) keeps its
/// records (Kafka's `StreamJoined`): the serdes of its stores (and of its
/// repartition topics), the name of its processors and the base name of
/// its stores, their backend, and their changelogging.
///
/// Serdes left out are taken from the joined streams when they are known
/// (a stream read from a topic knows them; one made by `map` does not); a
/// join that needs a serde it cannot find fails when the topology is
/// built, naming the store.
///
/// Names, as Kafka's: [`StreamJoined::with_name`] names the processors
/// `<name>-this-windowed`, `<name>-other-windowed`, `<name>-this-join` (or
/// `-outer-this-join` for an outer join), `<name>-other-join` (or
/// `-outer-other-join` for a left or outer join), `<name>-merge`, and the
/// repartition topics `<name>-left-repartition` and
/// `<name>-right-repartition`; [`StreamJoined::with_store_name`] names
/// the stores `<store>-this-join-store`, `<store>-other-join-store` (with
/// `outer-` before `this` or `other` as for the processors) and, for left
/// and outer joins, `<store>-left-shared-join-store` or
/// `<store>-outer-shared-join-store`. Without them, the processors and
/// stores get generated names (`KSTREAM-JOINTHIS-<index>-store`,
/// `KSTREAM-OUTERSHARED-<index>-store`, ...; see `docs/joins.md`).
///
/// Defaults: the streams' serdes, generated names, the default backend of
/// each kind of store (in memory for the two window stores), changelogs
/// on. The stores never have a record cache.
///
/// ```
/// use streams_core::{Serdes, StoreBackend};
/// use streams_dsl::StreamJoined;
///
/// let joined = StreamJoined::with(Serdes::string(), Serdes::i64(), Serdes::string())
///     .with_name("orders-payments")
///     .with_store_name("orders-payments-store")
///     .with_backend(StoreBackend::InMemory)
///     .with_logging_disabled();
/// assert_eq!(joined.name(), Some("orders-payments"));
/// assert_eq!(joined.store_name(), Some("orders-payments-store"));
/// assert!(!joined.logging_enabled());
/// ```
pub struct StreamJoined<K, V, VO> {
    pub(crate) name: Option<String>,
    pub(crate) store_name: Option<String>,
    pub(crate) key_serde: Option<SerdeArc<K>>,
    pub(crate) value_serde: Option<SerdeArc<V>>,
    pub(crate) other_value_serde: Option<SerdeArc<VO>>,
    /// Backend and changelog of the join's stores.
    pub(crate) options: StoreOptions,
}

impl<K, V, VO> fmt::Debug for StreamJoined<K, V, VO> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamJoined")
            .field("name", &self.name)
            .field("store_name", &self.store_name)
            .field("key_serde", &self.key_serde.is_some())
            .field("value_serde", &self.value_serde.is_some())
            .field("other_value_serde", &self.other_value_serde.is_some())
            .field("options", &self.options)
            .finish()
    }
}

impl<K, V, VO> Default for StreamJoined<K, V, VO> {
    fn default() -> Self {
        Self {
            name: None,
            store_name: None,
            key_serde: None,
            value_serde: None,
            other_value_serde: None,
            options: StoreOptions::default(),
        }
    }
}

impl<K, V, VO> StreamJoined<K, V, VO> {
    /// Generated names, serdes from the joined streams.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keys written with `key_serde`, this stream's values with
    /// `value_serde`, the other stream's with `other_value_serde`.
    pub fn with(
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
        other_value_serde: impl Serde<VO>,
    ) -> Self {
        Self::default()
            .with_key_serde(key_serde)
            .with_value_serde(value_serde)
            .with_other_value_serde(other_value_serde)
    }

    /// Stores named after `store_name` (see [`StreamJoined::with_store_name`]).
    pub fn as_(store_name: impl Into<String>) -> Self {
        Self::default().with_store_name(store_name)
    }

    /// Names the join's processors and repartition topics after `name`.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Names the join's stores after `store_name`, and so their changelog
    /// topics `<application.id>-<store>-changelog`.
    pub fn with_store_name(mut self, store_name: impl Into<String>) -> Self {
        self.store_name = Some(store_name.into());
        self
    }

    /// Sets the key serde.
    pub fn with_key_serde(mut self, key_serde: impl Serde<K>) -> Self {
        self.key_serde = Some(Arc::new(key_serde));
        self
    }

    /// Sets the serde of this stream's values.
    pub fn with_value_serde(mut self, value_serde: impl Serde<V>) -> Self {
        self.value_serde = Some(Arc::new(value_serde));
        self
    }

    /// Sets the serde of the other stream's values.
    pub fn with_other_value_serde(mut self, other_value_serde: impl Serde<VO>) -> Self {
        self.other_value_serde = Some(Arc::new(other_value_serde));
        self
    }

    /// Chooses the storage engine of the join's stores (as
    /// [`crate::Materialized::with_backend`]).
    pub fn with_backend(mut self, backend: StoreBackend) -> Self {
        self.options = self.options.with_backend(backend);
        self
    }

    /// Changelogs the stores (the default), with extra configs for their
    /// changelog topics.
    pub fn with_logging_enabled<I, CK, CV>(mut self, topic_config: I) -> Self
    where
        I: IntoIterator<Item = (CK, CV)>,
        CK: Into<String>,
        CV: Into<String>,
    {
        self.options = self.options.with_logging_enabled(topic_config);
        self
    }

    /// No changelogs: the stores are not restored after a failure.
    pub fn with_logging_disabled(mut self) -> Self {
        self.options = self.options.with_logging_disabled();
        self
    }

    /// The processors' base name, if given.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The stores' base name, if given.
    pub fn store_name(&self) -> Option<&str> {
        self.store_name.as_deref()
    }

    /// The backend, if chosen.
    pub fn backend(&self) -> Option<StoreBackend> {
        self.options.backend()
    }

    /// Whether the stores are changelogged.
    pub fn logging_enabled(&self) -> bool {
        self.options.logging_enabled()
    }

    /// The stores' options: backend and changelog (the join's window
    /// stores are never cached).
    pub fn store_options(&self) -> &StoreOptions {
        &self.options
    }
}
