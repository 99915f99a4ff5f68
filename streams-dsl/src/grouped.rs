//! [`KGroupedStream`]: a stream grouped by key, ready to aggregate.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use streams_core::{Processor, Serdes};

use crate::builder::{store_builder, DslMetrics, Handle};
use crate::change::Change;
use crate::ktable::KTable;
use crate::options::{or_default, Materialized, Named, SerdeArc};
use crate::processors::{
    count_adder, fold_adder, reduce_adder, AddFn, Presence, RawKeyCount, StreamAggregate,
};
use crate::session_windows::SessionWindows;
use crate::sliding_windows::SlidingWindows;
use crate::windowed_kstream::{
    SessionWindowedKStream, SlidingWindowedKStream, TimeWindowedKStream, WindowedKStream,
};
use crate::windows::TimeWindows;

/// A stream grouped by key (Kafka's `KGroupedStream`): `count`, `reduce`
/// and `aggregate` turn it into a [`KTable`].
///
/// Records with a null key are dropped and records with a null value are
/// ignored (logged at debug, counted in
/// [`crate::DslMetrics::dropped_records`]). The aggregate's timestamp is
/// the largest timestamp of the records that made it.
///
/// If the grouping needs a repartition, the aggregation writes the
/// records to `<name>-repartition` (the [`crate::Grouped`] name, else the
/// store name) through a null-key filter and a sink, and reads them back
/// with a source: a second sub-topology.
pub struct KGroupedStream<K, V> {
    builder: Handle,
    /// Tells this grouped stream from the builder's others.
    id: u64,
    node: String,
    repartition_required: bool,
    key_serde: Option<SerdeArc<K>>,
    value_serde: Option<SerdeArc<V>>,
    name: Option<String>,
}

impl<K, V> fmt::Debug for KGroupedStream<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KGroupedStream")
            .field("node", &self.node)
            .field("repartition_required", &self.repartition_required)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<K, V> KGroupedStream<K, V>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    pub(crate) fn new(
        builder: Handle,
        node: String,
        repartition_required: bool,
        key_serde: Option<SerdeArc<K>>,
        value_serde: Option<SerdeArc<V>>,
        name: Option<String>,
    ) -> Self {
        Self {
            id: builder.next_grouped_stream_id(),
            builder,
            node,
            repartition_required,
            key_serde: or_default(key_serde),
            value_serde: or_default(value_serde),
            name,
        }
    }

    /// Counts the records per key (`KSTREAM-AGGREGATE`); the store holds
    /// `i64` counts (by default with [`Serdes::i64`]).
    pub fn count(&self, materialized: Materialized<K, i64>) -> KTable<K, i64> {
        self.do_count(None, materialized)
    }

    /// [`KGroupedStream::count`] with the processor named `named`, so that
    /// a topology change does not rename it.
    pub fn count_named(&self, named: Named, materialized: Materialized<K, i64>) -> KTable<K, i64> {
        self.do_count(Some(named), materialized)
    }

    fn do_count(&self, named: Option<Named>, materialized: Materialized<K, i64>) -> KTable<K, i64> {
        let counts: SerdeArc<i64> = Arc::new(Serdes::i64());
        if !(self.repartition_required && self.key_serde.is_some() && self.value_serde.is_some()) {
            return self.do_aggregate(
                "KSTREAM-AGGREGATE-",
                "AGGREGATE",
                named,
                materialized,
                Some(counts),
                count_adder(),
            );
        }
        // A count needs only whether each value is null: the repartition
        // topic holds the values as written, and its source reads no more
        // of them than that.
        let presence = |_: &SerdeArc<V>| {
            let presence: SerdeArc<()> = Arc::new(Presence);
            presence
        };
        let (store, name) =
            self.aggregation_names("KSTREAM-AGGREGATE-", "AGGREGATE", named, &materialized);
        if materialized.key_serde.is_some() {
            // The store has a key serde of its own: its keys are not the
            // topic's bytes, so the source reads keys as values of `K`.
            let parent = self.repartition_parent(&store, &name, Arc::clone, presence);
            let add = count_adder::<K, ()>();
            return self.add_aggregate(
                store,
                name,
                parent,
                materialized,
                Some(counts),
                move |store, metrics| StreamAggregate::new(store, add.clone(), metrics),
            );
        }
        // The store's keys are the grouped key serde's bytes, which the
        // repartition topic holds: the source keeps them as bytes and the
        // count updates its store by them, with no value of `K` in between.
        let raw: SerdeArc<Bytes> = Arc::new(Serdes::bytes());
        let parent = self.repartition_parent(&store, &name, |_| raw, presence);
        let default_layout = materialized.value_serde.is_none();
        self.add_aggregate(
            store,
            name,
            parent,
            materialized,
            Some(counts),
            move |store, metrics| RawKeyCount::<K>::new(store, metrics, default_layout),
        )
    }

    /// Combines the values per key with `reducer(aggregate, value)`
    /// (`KSTREAM-REDUCE`); the first value is the initial aggregate.
    pub fn reduce<F>(&self, reducer: F, materialized: Materialized<K, V>) -> KTable<K, V>
    where
        F: Fn(V, &V) -> V + Send + Sync + 'static,
    {
        self.do_reduce(reducer, None, materialized)
    }

    /// [`KGroupedStream::reduce`] with the processor named `named`.
    pub fn reduce_named<F>(
        &self,
        reducer: F,
        named: Named,
        materialized: Materialized<K, V>,
    ) -> KTable<K, V>
    where
        F: Fn(V, &V) -> V + Send + Sync + 'static,
    {
        self.do_reduce(reducer, Some(named), materialized)
    }

    fn do_reduce<F>(
        &self,
        reducer: F,
        named: Option<Named>,
        materialized: Materialized<K, V>,
    ) -> KTable<K, V>
    where
        F: Fn(V, &V) -> V + Send + Sync + 'static,
    {
        let add = reduce_adder(reducer);
        let value_serde = self.value_serde.clone();
        self.do_aggregate(
            "KSTREAM-REDUCE-",
            "REDUCE",
            named,
            materialized,
            value_serde,
            add,
        )
    }

    /// Folds the values per key with `aggregator(key, value, aggregate)`,
    /// starting from `initializer()` (`KSTREAM-AGGREGATE`). The store's
    /// value serde must be given in `materialized`.
    pub fn aggregate<VA, I, A>(
        &self,
        initializer: I,
        aggregator: A,
        materialized: Materialized<K, VA>,
    ) -> KTable<K, VA>
    where
        VA: Clone + Send + 'static,
        I: Fn() -> VA + Send + Sync + 'static,
        A: Fn(&K, &V, VA) -> VA + Send + Sync + 'static,
    {
        self.do_fold(initializer, aggregator, None, materialized)
    }

    /// [`KGroupedStream::aggregate`] with the processor named `named`.
    pub fn aggregate_named<VA, I, A>(
        &self,
        initializer: I,
        aggregator: A,
        named: Named,
        materialized: Materialized<K, VA>,
    ) -> KTable<K, VA>
    where
        VA: Clone + Send + 'static,
        I: Fn() -> VA + Send + Sync + 'static,
        A: Fn(&K, &V, VA) -> VA + Send + Sync + 'static,
    {
        self.do_fold(initializer, aggregator, Some(named), materialized)
    }

    fn do_fold<VA, I, A>(
        &self,
        initializer: I,
        aggregator: A,
        named: Option<Named>,
        materialized: Materialized<K, VA>,
    ) -> KTable<K, VA>
    where
        VA: Clone + Send + 'static,
        I: Fn() -> VA + Send + Sync + 'static,
        A: Fn(&K, &V, VA) -> VA + Send + Sync + 'static,
    {
        let add = fold_adder(initializer, aggregator);
        self.do_aggregate(
            "KSTREAM-AGGREGATE-",
            "AGGREGATE",
            named,
            materialized,
            None,
            add,
        )
    }

    /// Windows the grouped stream by time (Kafka's
    /// `windowedBy(TimeWindows)`): tumbling or hopping windows, aggregated
    /// per key and window.
    pub fn windowed_by(&self, windows: TimeWindows) -> TimeWindowedKStream<K, V> {
        WindowedKStream::new(self.clone_parts(), windows)
    }

    /// Windows the grouped stream by sessions of activity (Kafka's
    /// `windowedBy(SessionWindows)`): each key's records are aggregated per
    /// session, sessions merging when a record bridges them.
    pub fn windowed_by_session(&self, windows: SessionWindows) -> SessionWindowedKStream<K, V> {
        WindowedKStream::new(self.clone_parts(), windows)
    }

    /// Windows the grouped stream by sliding windows (Kafka's
    /// `windowedBy(SlidingWindows)`): windows defined by the records'
    /// timestamps, both bounds inclusive.
    pub fn windowed_by_sliding(&self, windows: SlidingWindows) -> SlidingWindowedKStream<K, V> {
        WindowedKStream::new(self.clone_parts(), windows)
    }

    /// Another handle on this grouped stream (the same stream and id).
    pub(crate) fn clone_parts(&self) -> Self {
        Self {
            builder: self.builder.clone(),
            id: self.id,
            node: self.node.clone(),
            repartition_required: self.repartition_required,
            key_serde: self.key_serde.clone(),
            value_serde: self.value_serde.clone(),
            name: self.name.clone(),
        }
    }

    /// The builder.
    pub(crate) fn handle(&self) -> &Handle {
        &self.builder
    }

    /// What tells this grouped stream from the builder's others.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// The node the grouping was made at.
    pub(crate) fn node(&self) -> &str {
        &self.node
    }

    /// Whether an aggregation of this grouped stream repartitions it.
    pub(crate) fn repartition_required(&self) -> bool {
        self.repartition_required
    }

    /// The key serde of the grouping, if known.
    pub(crate) fn key_serde(&self) -> Option<&SerdeArc<K>> {
        self.key_serde.as_ref()
    }

    /// The value serde of the grouping, if known.
    pub(crate) fn value_serde(&self) -> Option<&SerdeArc<V>> {
        self.value_serde.as_ref()
    }

    /// The node an aggregation `name` with store `store` reads from: the
    /// grouped node, or the source of a repartition topic written from it.
    pub(crate) fn aggregation_parent(&self, store: &str, name: &str) -> String {
        self.repartition_parent(store, name, Arc::clone, Arc::clone)
    }

    /// [`KGroupedStream::aggregation_parent`], the repartition topic's
    /// source reading keys and values with the serdes `read_key` and
    /// `read_value` make of the grouped stream's.
    fn repartition_parent<KR, VR>(
        &self,
        store: &str,
        name: &str,
        read_key: impl FnOnce(&SerdeArc<K>) -> SerdeArc<KR>,
        read_value: impl FnOnce(&SerdeArc<V>) -> SerdeArc<VR>,
    ) -> String
    where
        KR: Clone + Send + 'static,
        VR: Clone + Send + 'static,
    {
        let builder = &self.builder;
        if !self.repartition_required {
            return self.node.clone();
        }
        let base = self.name.clone().unwrap_or_else(|| store.to_owned());
        match (&self.key_serde, &self.value_serde) {
            (Some(ks), Some(vs)) => builder.add_repartition(
                &self.node,
                &base,
                ks.clone(),
                vs.clone(),
                read_key(ks),
                read_value(vs),
                true,
            ),
            _ => {
                builder.fail(format!(
                    "aggregation '{name}' repartitions through '{base}-repartition' but the grouped stream's serdes are unknown; give them with Grouped::with"
                ));
                self.node.clone()
            }
        }
    }

    fn do_aggregate<VA>(
        &self,
        store_prefix: &str,
        operation: &str,
        named: Option<Named>,
        materialized: Materialized<K, VA>,
        default_value_serde: Option<SerdeArc<VA>>,
        add: AddFn<K, V, VA>,
    ) -> KTable<K, VA>
    where
        VA: Clone + Send + 'static,
    {
        let (store, name) = self.aggregation_names(store_prefix, operation, named, &materialized);
        let parent = self.aggregation_parent(&store, &name);
        self.add_aggregate(
            store,
            name,
            parent,
            materialized,
            default_value_serde,
            move |store, metrics| StreamAggregate::new(store, add.clone(), metrics),
        )
    }

    /// The store's and the processor's names of an aggregation, in the
    /// order Kafka generates them.
    fn aggregation_names<VA>(
        &self,
        store_prefix: &str,
        operation: &str,
        named: Option<Named>,
        materialized: &Materialized<K, VA>,
    ) -> (String, String) {
        let builder = &self.builder;
        let store = match &materialized.name {
            Some(name) => name.clone(),
            None => builder.store_name(store_prefix),
        };
        (store, builder.kstream_name(named, operation))
    }

    /// Adds the aggregation `name` over records of `parent` (keys of type
    /// `KIn`, values of type `VIn`), the processor `make(store, metrics)`
    /// builds, and its store.
    fn add_aggregate<KIn, VIn, VA, P>(
        &self,
        store: String,
        name: String,
        parent: String,
        materialized: Materialized<K, VA>,
        default_value_serde: Option<SerdeArc<VA>>,
        make: impl Fn(String, DslMetrics) -> P + Send + Sync + 'static,
    ) -> KTable<K, VA>
    where
        KIn: 'static,
        VIn: 'static,
        VA: Clone + Send + 'static,
        P: Processor<KIn, VIn, K, Change<VA>>,
    {
        let builder = &self.builder;
        builder.reject_versioned(&materialized, &format!("aggregation '{name}'"));
        let key_serde = materialized
            .key_serde
            .clone()
            .or_else(|| self.key_serde.clone());
        let value_serde = or_default(materialized.value_serde.clone().or(default_value_serde));
        let (Some(ks), Some(vs)) = (key_serde, value_serde) else {
            builder.fail(format!(
                "store '{store}' of '{name}': no key or value serde; give them with Materialized::with"
            ));
            return KTable::new(builder.clone(), name, None, None, Some(store));
        };
        let metrics = builder.metrics();
        let store_for = store.clone();
        builder.add_processor(
            &name,
            move || make(store_for.clone(), metrics.clone()),
            &[&parent],
        );
        let store_builder = store_builder(&store, ks.clone(), vs.clone(), &materialized);
        builder.apply(|t| {
            t.add_state_store(store_builder, &[&name])?;
            Ok(())
        });
        KTable::new(builder.clone(), name, Some(ks), Some(vs), Some(store)).with_store_getter()
    }
}
