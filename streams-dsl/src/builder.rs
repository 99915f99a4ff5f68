//! [`StreamsBuilder`]: the entry point of the DSL, and the shared state
//! that every stream and table of one builder writes to.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use streams_core::{
    stateless_fn, NameGenerator, Processor, ProcessorContext, Record, Result, StoreBuilder,
    StreamsError, Topology,
};

use crate::change::ValueAndTimestampSerde;
use crate::kstream::KStream;
use crate::ktable::KTable;
use crate::old_values::OldValues;
use crate::options::{Consumed, Materialized, Named, SerdeArc};
use crate::processors::versioned_table_source::VersionedTableSource;
use crate::processors::TableSource;
use crate::value_getter::ValueGetter;

/// Counters shared by the processors of one topology (and every task that
/// runs it).
///
/// `dropped_records` counts the records the DSL skips, as Kafka's
/// `dropped-records` metric: null keys dropped by grouping and by table
/// sources, null values ignored by `count`/`reduce`/`aggregate` (except
/// `count` in time and session windows, which counts them) and by
/// `group_by`.
#[derive(Debug, Clone, Default)]
pub struct DslMetrics {
    dropped: Arc<AtomicU64>,
}

impl DslMetrics {
    /// Records skipped so far.
    pub fn dropped_records(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub(crate) fn record_dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

/// The state of one builder, shared by its streams and tables.
#[derive(Debug)]
pub(crate) struct Inner {
    topology: Topology,
    names: NameGenerator,
    /// The first error; later operations are skipped and `build` returns
    /// it.
    error: Option<StreamsError>,
    /// `<application.id>-` or empty.
    topic_prefix: String,
    metrics: DslMetrics,
    /// The repartitions made for joins, by parent node and topic base:
    /// the source node reading each back.
    join_repartitions: HashMap<(String, String), String>,
    /// The grouped streams made so far: the last one's id.
    grouped_streams: u64,
}

/// A handle on a builder's shared state.
#[derive(Clone)]
pub(crate) struct Handle(Rc<RefCell<Inner>>);

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StreamsBuilder")
    }
}

/// Whether `name` is generated (`KSTREAM...-<10 digits>`), as Kafka's
/// `KSTREAM.*-[0-9]{10}` test.
fn is_generated(name: &str) -> bool {
    let bytes = name.as_bytes();
    name.starts_with("KSTREAM")
        && bytes.len() >= 11
        && bytes[bytes.len() - 11] == b'-'
        && bytes[bytes.len() - 10..].iter().all(u8::is_ascii_digit)
}

impl Handle {
    /// `named`'s name, or a generated `KSTREAM-<operation>-<index>`.
    pub(crate) fn kstream_name(&self, named: Option<Named>, operation: &str) -> String {
        match named {
            Some(named) => named.name,
            None => self.0.borrow_mut().names.kstream(operation),
        }
    }

    /// `named`'s name, or a generated `KTABLE-<operation>-<index>`.
    pub(crate) fn ktable_name(&self, named: Option<Named>, operation: &str) -> String {
        match named {
            Some(named) => named.name,
            None => self.0.borrow_mut().names.ktable(operation),
        }
    }

    /// `name` if given, else a generated `<prefix><10-digit index>`; an
    /// index is taken either way, as Kafka's `suffixWithOrElseGet` does for
    /// the names a cogroup derives from its `Named`.
    pub(crate) fn name_or_generate(&self, name: Option<String>, prefix: &str) -> String {
        let generated = self.0.borrow_mut().names.with_prefix(prefix);
        name.unwrap_or(generated)
    }

    /// A number that tells a grouped stream of this builder from the
    /// others (Kafka tells them apart by object identity).
    pub(crate) fn next_grouped_stream_id(&self) -> u64 {
        let mut inner = self.0.borrow_mut();
        inner.grouped_streams += 1;
        inner.grouped_streams
    }

    /// `<prefix>STATE-STORE-<index>`.
    pub(crate) fn store_name(&self, prefix: &str) -> String {
        self.0.borrow_mut().names.store(prefix)
    }

    /// The topic `<application.id>-<base>-repartition`.
    pub(crate) fn repartition_topic(&self, base: &str) -> String {
        format!("{}{}", self.0.borrow().topic_prefix, repartition_name(base))
    }

    /// The internal topic `<application.id>-<name>` (a foreign-key join's
    /// subscription and response topics).
    pub(crate) fn internal_topic(&self, name: &str) -> String {
        format!("{}{name}", self.0.borrow().topic_prefix)
    }

    pub(crate) fn metrics(&self) -> DslMetrics {
        self.0.borrow().metrics.clone()
    }

    pub(crate) fn same_builder(&self, other: &Handle) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }

    /// Runs `f` on the topology unless an earlier operation failed; keeps
    /// the first error.
    pub(crate) fn apply(&self, f: impl FnOnce(&mut Topology) -> Result<()>) {
        let mut inner = self.0.borrow_mut();
        if inner.error.is_some() {
            return;
        }
        if let Err(e) = f(&mut inner.topology) {
            tracing::debug!(error = %e, "the DSL topology is invalid");
            inner.error = Some(e);
        }
    }

    /// Records an error found by the DSL itself.
    pub(crate) fn fail(&self, reason: String) {
        self.apply(|_| Err(StreamsError::InvalidTopology { reason }));
    }

    /// Records an error if `materialized` asks for a versioned store, which
    /// `operation` cannot keep yet.
    pub(crate) fn reject_versioned<K, V>(
        &self,
        materialized: &Materialized<K, V>,
        operation: &str,
    ) {
        if materialized.versioned.is_some() {
            self.fail(format!(
                "{operation}: a versioned store (Materialized::as_versioned) is supported for \
                 tables read from a topic (StreamsBuilder::table) and KStream::to_table only"
            ));
        }
    }

    /// Adds the processor `name`, child of `parent`, that keeps a table in
    /// store `store` (Kafka's `KTableSource`): a timestamped key-value
    /// store, or the versioned store `materialized` asks for. Returns the
    /// table.
    pub(crate) fn add_table_source<K, V>(
        &self,
        name: &str,
        parent: &str,
        store: &str,
        (ks, vs): (SerdeArc<K>, SerdeArc<V>),
        materialized: &Materialized<K, V>,
    ) -> KTable<K, V>
    where
        K: Clone + Send + 'static,
        V: Clone + Send + 'static,
    {
        let metrics = self.metrics();
        let store_for = store.to_owned();
        let (store_builder, getter) = match materialized.versioned {
            Some(history) => {
                self.add_processor(
                    name,
                    move || VersionedTableSource::<K, V>::new(store_for.clone(), metrics.clone()),
                    &[parent],
                );
                let builder = apply_materialized(
                    StoreBuilder::versioned_key_value(store, ks.clone(), vs.clone(), history),
                    materialized,
                );
                let history_ms = builder.history_retention_ms().unwrap_or(0);
                (builder, ValueGetter::versioned_store(store, history_ms))
            }
            None => {
                let key_serde = ks.clone();
                self.add_processor(
                    name,
                    move || {
                        TableSource::<K, V>::new(
                            store_for.clone(),
                            key_serde.clone(),
                            metrics.clone(),
                        )
                    },
                    &[parent],
                );
                (
                    store_builder(store, ks.clone(), vs.clone(), materialized),
                    ValueGetter::store(store),
                )
            }
        };
        self.apply(|t| {
            t.add_state_store(store_builder, &[name])?;
            Ok(())
        });
        // A versioned store always has a name (Kafka's supplier's): the
        // source is materialized.
        let named = materialized.name.is_some() || materialized.versioned.is_some();
        KTable::new(
            self.clone(),
            name.to_owned(),
            Some(ks),
            Some(vs),
            Some(store.to_owned()),
        )
        .with_getter(Some(getter))
        .with_old_values(OldValues::source(named))
        .with_versioned(materialized.versioned.is_some())
    }

    /// Adds a processor node.
    pub(crate) fn add_processor<KIn, VIn, KOut, VOut, P, S>(
        &self,
        name: &str,
        supplier: S,
        parents: &[&str],
    ) where
        P: Processor<KIn, VIn, KOut, VOut>,
        S: Fn() -> P + Send + Sync + 'static,
        KIn: 'static,
        VIn: 'static,
        KOut: 'static,
        VOut: 'static,
    {
        self.apply(|t| t.add_processor(name, supplier, parents).map(|_| ()));
    }

    /// Adds the nodes of a repartition through topic
    /// `<application.id>-<base>-repartition`: with `filter_null_keys`, a
    /// filter dropping null keys; a sink writing the topic; a source reading
    /// it. Returns the source's name. The sink writes keys and values with
    /// `key_serde` and `value_serde`; the source reads them with
    /// `read_key_serde` and `read_value_serde`: the same serdes, or ones
    /// that take less from the bytes when the reader needs less (a count
    /// keeps its keys as bytes and needs only whether a value is null:
    /// [`crate::processors::RawKeyCount`], [`crate::processors::Presence`]).
    ///
    /// Names follow Kafka: three indexes are always consumed; a generated
    /// `base` keeps the generated node names, a user `base` names them
    /// `<base>-repartition-sink`, `-filter` and `-source`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn add_repartition<K, V, KR, VR>(
        &self,
        parent: &str,
        base: &str,
        key_serde: SerdeArc<K>,
        value_serde: SerdeArc<V>,
        read_key_serde: SerdeArc<KR>,
        read_value_serde: SerdeArc<VR>,
        filter_null_keys: bool,
    ) -> String
    where
        K: Clone + Send + 'static,
        V: Clone + Send + 'static,
        KR: Clone + Send + 'static,
        VR: Clone + Send + 'static,
    {
        let topic_name = repartition_name(base);
        let (gen_sink, gen_filter, gen_source) = {
            let mut inner = self.0.borrow_mut();
            (
                inner.names.kstream("SINK"),
                inner.names.kstream("FILTER"),
                inner.names.kstream("SOURCE"),
            )
        };
        let (sink, filter, source) = if is_generated(base) {
            (gen_sink, gen_filter, gen_source)
        } else {
            (
                format!("{topic_name}-sink"),
                format!("{topic_name}-filter"),
                format!("{topic_name}-source"),
            )
        };
        let topic = self.repartition_topic(base);
        let sink_parent = if filter_null_keys {
            let metrics = self.metrics();
            let node = filter.clone();
            self.add_processor(
                &filter,
                move || {
                    let metrics = metrics.clone();
                    let node = node.clone();
                    stateless_fn(
                        move |ctx: &mut ProcessorContext<'_, K, V>, r: Record<K, V>| {
                            if r.key.is_none() {
                                tracing::debug!(processor = %node, timestamp = r.timestamp, "skipping record with a null key: grouping drops null keys");
                                metrics.record_dropped();
                                return Ok(());
                            }
                            ctx.forward(r)
                        },
                    )
                },
                &[parent],
            );
            filter.as_str()
        } else {
            parent
        };
        self.apply(|t| {
            t.add_sink(
                &sink,
                &topic,
                key_serde.clone(),
                value_serde.clone(),
                &[sink_parent],
            )?
            .add_source(
                &source,
                read_key_serde.clone(),
                read_value_serde.clone(),
                &[&topic],
            )?;
            Ok(())
        });
        source
    }
}

impl Handle {
    /// Takes the three indexes of a repartition's names without making
    /// one: Kafka burns them even when it reuses a repartition, so that
    /// later generated names stay the same.
    pub(crate) fn skip_repartition_names(&self) {
        let mut inner = self.0.borrow_mut();
        for operation in ["SINK", "FILTER", "SOURCE"] {
            inner.names.kstream(operation);
        }
    }

    /// Kafka's `repartitionForJoin`: writes `parent`'s records through
    /// topic `<application.id>-<base>-repartition` with `key_serde` and
    /// `value_serde` and reads them back; returns the reading source's
    /// name. Between the parent and the sink is a filter that passes every
    /// record, null keys included (as Kafka's since 3.7, KIP-962: a left
    /// or outer join emits them). Names as
    /// [`Handle::add_repartition`]'s: three indexes consumed, generated
    /// node names for a generated `base`, `<base>-repartition-sink`,
    /// `-filter` and `-source` for a user's.
    ///
    /// A second join of the same parent with the same `base` (a stream
    /// with a generated name joined twice) reuses the first repartition,
    /// as Kafka does; the three indexes are consumed all the same.
    pub(crate) fn add_join_repartition<K, V>(
        &self,
        parent: &str,
        base: &str,
        key_serde: SerdeArc<K>,
        value_serde: SerdeArc<V>,
    ) -> String
    where
        K: Clone + Send + 'static,
        V: Clone + Send + 'static,
    {
        let topic_name = repartition_name(base);
        let (gen_sink, gen_filter, gen_source) = {
            let mut inner = self.0.borrow_mut();
            (
                inner.names.kstream("SINK"),
                inner.names.kstream("FILTER"),
                inner.names.kstream("SOURCE"),
            )
        };
        let made = (parent.to_owned(), base.to_owned());
        if let Some(source) = self.0.borrow().join_repartitions.get(&made) {
            return source.clone();
        }
        let (sink, filter, source) = if is_generated(base) {
            (gen_sink, gen_filter, gen_source)
        } else {
            (
                format!("{topic_name}-sink"),
                format!("{topic_name}-filter"),
                format!("{topic_name}-source"),
            )
        };
        let topic = self.repartition_topic(base);
        self.add_processor(
            &filter,
            || stateless_fn(|ctx: &mut ProcessorContext<'_, K, V>, r: Record<K, V>| ctx.forward(r)),
            &[parent],
        );
        self.apply(|t| {
            t.add_sink(
                &sink,
                &topic,
                key_serde.clone(),
                value_serde.clone(),
                &[&filter],
            )?
            .add_source(&source, key_serde.clone(), value_serde.clone(), &[&topic])?;
            Ok(())
        });
        self.0
            .borrow_mut()
            .join_repartitions
            .insert(made, source.clone());
        source
    }
}

/// `<base>-repartition`, unless `base` already ends so.
fn repartition_name(base: &str) -> String {
    if base.ends_with("-repartition") {
        base.to_owned()
    } else {
        format!("{base}-repartition")
    }
}

/// The entry point of the DSL (Kafka's `StreamsBuilder`): creates streams
/// and tables from topics; [`StreamsBuilder::build`] yields the
/// [`Topology`].
///
/// Operations take `&self`: a builder, its streams and tables share one
/// topology under construction. Errors (a duplicate name, a missing serde)
/// are kept and returned by `build`.
///
/// Repartition topics are named `<name>-repartition` by
/// [`StreamsBuilder::new`], as Kafka's `TopologyDescription` prints them;
/// the runtime prefixes such topics with the application id.
/// [`StreamsBuilder::with_application_id`] writes
/// `<application.id>-<name>-repartition` into the topology itself.
///
/// ```
/// use streams_core::{Serdes, TopologyTestDriver};
/// use streams_dsl::{Consumed, Produced, StreamsBuilder};
///
/// let builder = StreamsBuilder::new();
/// builder
///     .stream::<String, String>("input", Consumed::with(Serdes::string(), Serdes::string()))
///     .map_values(|v| v.to_uppercase())
///     .to("output", Produced::with(Serdes::string(), Serdes::string()));
/// let driver = TopologyTestDriver::new(builder.build()?)?;
/// let input = driver.create_input_topic("input", Serdes::string(), Serdes::string());
/// let output = driver.create_output_topic("output", Serdes::string(), Serdes::string());
/// input.pipe_input("k".to_owned(), "hello".to_owned())?;
/// assert_eq!(output.read_value()?, Some("HELLO".to_owned()));
/// # Ok::<(), streams_core::StreamsError>(())
/// ```
#[derive(Debug)]
pub struct StreamsBuilder {
    handle: Handle,
}

impl Default for StreamsBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamsBuilder {
    /// A builder whose repartition topics are `<name>-repartition`.
    pub fn new() -> Self {
        Self::with_topic_prefix(String::new())
    }

    /// A builder for application `application_id`: repartition topics are
    /// `<application_id>-<name>-repartition`, as the runtime creates them.
    pub fn with_application_id(application_id: &str) -> Self {
        Self::with_topic_prefix(format!("{application_id}-"))
    }

    fn with_topic_prefix(topic_prefix: String) -> Self {
        Self {
            handle: Handle(Rc::new(RefCell::new(Inner {
                topology: Topology::new(),
                names: NameGenerator::new(),
                error: None,
                topic_prefix,
                metrics: DslMetrics::default(),
                join_repartitions: HashMap::new(),
                grouped_streams: 0,
            }))),
        }
    }

    /// A stream of the records of `topic` (Kafka's `stream`). The source is
    /// `KSTREAM-SOURCE-<index>` unless [`Consumed::with_name`] names it.
    pub fn stream<K, V>(&self, topic: &str, consumed: Consumed<K, V>) -> KStream<K, V>
    where
        K: Clone + Send + 'static,
        V: Clone + Send + 'static,
    {
        let name = self
            .handle
            .kstream_name(consumed.name.map(Named::as_), "SOURCE");
        let (ks, vs) = (consumed.key_serde, consumed.value_serde);
        let extractor = consumed.timestamp_extractor;
        self.handle.apply(|t| {
            t.add_source_with_timestamp_extractor(
                &name,
                extractor.clone(),
                ks.clone(),
                vs.clone(),
                &[topic],
            )?;
            Ok(())
        });
        KStream::new(self.handle.clone(), name, false, Some(ks), Some(vs))
    }

    /// A table of the latest value per key of `topic` (Kafka's `table`): a
    /// null value deletes the row and goes downstream as a tombstone;
    /// records with a null key are dropped.
    ///
    /// The table is kept in a store named by `materialized` or
    /// `<topic>-STATE-STORE-<index>`, holding [`crate::ValueAndTimestamp`]
    /// values, or in a versioned store ([`Materialized::as_versioned`]):
    /// then each update is kept as a version at its timestamp, an update
    /// older than the key's latest goes downstream with
    /// [`crate::Change::is_latest`] false (Kafka's versioned semantics,
    /// see `docs/dsl.md`), and one older than the history retention is
    /// dropped. Nodes: `KSTREAM-SOURCE-<index>` then
    /// `KTABLE-SOURCE-<index>`.
    pub fn table<K, V>(
        &self,
        topic: &str,
        consumed: Consumed<K, V>,
        materialized: Materialized<K, V>,
    ) -> KTable<K, V>
    where
        K: Clone + Send + 'static,
        V: Clone + Send + 'static,
    {
        let store = match &materialized.name {
            Some(name) => name.clone(),
            None => self.handle.store_name(&format!("{topic}-")),
        };
        let source = self
            .handle
            .kstream_name(consumed.name.map(Named::as_), "SOURCE");
        let table_source = self.handle.ktable_name(None, "SOURCE");
        let ks = materialized.key_serde.clone().unwrap_or(consumed.key_serde);
        let vs = materialized
            .value_serde
            .clone()
            .unwrap_or(consumed.value_serde);
        let extractor = consumed.timestamp_extractor;
        self.handle.apply(|t| {
            t.add_source_with_timestamp_extractor(
                &source,
                extractor.clone(),
                ks.clone(),
                vs.clone(),
                &[topic],
            )?;
            Ok(())
        });
        self.handle
            .add_table_source(&table_source, &source, &store, (ks, vs), &materialized)
    }

    /// Adds a store for [`KStream::process`] to connect to (Kafka's
    /// `addStateStore`).
    pub fn add_state_store(&self, builder: StoreBuilder) -> &Self {
        self.handle.apply(|t| {
            t.add_state_store(builder, &[])?;
            Ok(())
        });
        self
    }

    pub(crate) fn handle(&self) -> &Handle {
        &self.handle
    }

    /// The counters of this builder's processors.
    pub fn metrics(&self) -> DslMetrics {
        self.handle.metrics()
    }

    /// The topology, or the first error an operation met.
    pub fn build(self) -> Result<Topology> {
        let mut inner = self.handle.0.borrow_mut();
        if let Some(error) = inner.error.take() {
            return Err(error);
        }
        Ok(std::mem::take(&mut inner.topology))
    }
}

/// The store declared by `materialized`, holding timestamped values.
pub(crate) fn store_builder<K: 'static, V: 'static, M>(
    name: &str,
    key_serde: SerdeArc<K>,
    value_serde: SerdeArc<V>,
    materialized: &Materialized<M, V>,
) -> StoreBuilder {
    apply_materialized(
        StoreBuilder::key_value(name, key_serde, ValueAndTimestampSerde::new(value_serde)),
        materialized,
    )
}

/// `builder` with the backend, caching and logging that `materialized`
/// asks for.
pub(crate) fn apply_materialized<K, V>(
    builder: StoreBuilder,
    materialized: &Materialized<K, V>,
) -> StoreBuilder {
    builder.with_options(materialized.options.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_are_recognised() {
        assert!(is_generated("KSTREAM-AGGREGATE-STATE-STORE-0000000003"));
        assert!(is_generated("KSTREAM-REPARTITION-0000000001"));
        assert!(!is_generated("word-counts"));
        assert!(!is_generated("KSTREAM-0000000001x"));
        assert!(!is_generated("KSTREAM"));
    }

    #[test]
    fn repartition_suffix_is_not_doubled() {
        assert_eq!(repartition_name("a"), "a-repartition");
        assert_eq!(repartition_name("a-repartition"), "a-repartition");
    }
}
