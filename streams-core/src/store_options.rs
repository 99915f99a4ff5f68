//! [`StoreOptions`]: how a store is kept, whatever it holds.

use std::collections::BTreeMap;

use state_store::StoreBackend;

/// How a store is kept, beside what it holds: its storage engine, whether a
/// record cache fronts it and whether its updates go to a changelog topic
/// (with which topic configs). One set of options for every way a store is
/// declared: [`crate::StoreBuilder`] in the Processor API, and the DSL's
/// `Materialized` and `StreamJoined`, which hand theirs to the builder.
///
/// The defaults are Kafka's Processor API ones: the store kind's default
/// backend, no cache, a changelog with no extra configs. (The DSL's
/// `Materialized` starts with the cache on, as Kafka's DSL does.)
///
/// ```
/// use streams_core::{StoreBackend, StoreOptions};
///
/// let options = StoreOptions::default()
///     .with_backend(StoreBackend::InMemory)
///     .with_caching_enabled()
///     .with_logging_enabled([("min.insync.replicas", "2")]);
/// assert_eq!(options.backend(), Some(StoreBackend::InMemory));
/// assert!(options.caching_enabled());
/// assert_eq!(options.log_config()["min.insync.replicas"], "2");
/// assert!(!options.with_logging_disabled().logging_enabled());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    backend: Option<StoreBackend>,
    caching: bool,
    logging: bool,
    log_config: BTreeMap<String, String>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            backend: None,
            caching: false,
            logging: true,
            log_config: BTreeMap::new(),
        }
    }
}

impl StoreOptions {
    /// Chooses the storage engine; without it the store kind's default is
    /// used (see [`crate::StoreBuilder::with_backend`]).
    pub fn with_backend(mut self, backend: StoreBackend) -> Self {
        self.backend = Some(backend);
        self
    }

    /// Puts a record cache (`cache.max.bytes.buffering`) in front of the
    /// store (see [`crate::StoreBuilder::with_caching_enabled`]).
    pub fn with_caching_enabled(mut self) -> Self {
        self.caching = true;
        self
    }

    /// Writes go straight to the store.
    pub fn with_caching_disabled(mut self) -> Self {
        self.caching = false;
        self
    }

    /// Sends every update to the changelog topic
    /// `<application.id>-<store name>-changelog`, with extra topic configs
    /// for it (replacing any given before).
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

    /// The storage engine chosen, if any.
    pub fn backend(&self) -> Option<StoreBackend> {
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

    /// The extra configs of the changelog topic, to add defaults to.
    pub(crate) fn log_config_mut(&mut self) -> &mut BTreeMap<String, String> {
        &mut self.log_config
    }
}
