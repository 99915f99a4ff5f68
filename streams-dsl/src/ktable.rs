//! [`KTable`]: a changelog stream of the latest value per key, and
//! [`KGroupedTable`], a table re-grouped for aggregation.

use std::fmt;
use std::sync::Arc;

use streams_core::{stateless_fn, ProcessorContext, Record, Serdes};

use crate::builder::{store_builder, Handle};
use crate::change::{Change, ChangeSerde, ValueAndTimestamp};
use crate::kstream::KStream;
use crate::old_values::OldValues;
use crate::options::{or_default, Grouped, Materialized, Named, SerdeArc};
use crate::processors::{count_adder, fold_adder, reduce_adder, AddFn, SubFn, TableAggregate};
use crate::suppress::WindowEndFn;
use crate::value_getter::ValueGetter;

/// A table: the latest value per key (Kafka's `KTable`).
///
/// Between its processors each update travels as a [`Change`] (new and
/// old value), so that downstream aggregations can subtract the old value.
/// Keys of a table are never null. User functions take `&K` and `&V`.
pub struct KTable<K, V> {
    builder: Handle,
    node: String,
    key_serde: Option<SerdeArc<K>>,
    value_serde: Option<SerdeArc<V>>,
    store: Option<String>,
    /// The grace period of the windowed aggregation producing this table,
    /// and the window end of a key.
    window: Option<(i64, WindowEndFn<K>)>,
    /// Whether the table's processors send old values downstream.
    old_values: Arc<OldValues>,
    /// How a downstream operation reads the table's row of a key; `None`
    /// for tables that cannot be read by key yet (windowed and suppressed
    /// ones).
    getter: Option<ValueGetter<K, V>>,
    /// Whether the table is versioned: kept in a versioned store, or
    /// filtered or mapped from one without a store of its own (Kafka's
    /// `isVersionedOrVersionedUpstream`). The operations downstream then
    /// follow Kafka's versioned semantics.
    versioned: bool,
}

impl<K, V> fmt::Debug for KTable<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KTable")
            .field("node", &self.node)
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl<K, V> Clone for KTable<K, V> {
    fn clone(&self) -> Self {
        Self {
            builder: self.builder.clone(),
            node: self.node.clone(),
            key_serde: self.key_serde.clone(),
            value_serde: self.value_serde.clone(),
            store: self.store.clone(),
            window: self.window.clone(),
            old_values: self.old_values.clone(),
            getter: self.getter.clone(),
            versioned: self.versioned,
        }
    }
}

impl<K, V> KTable<K, V>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    pub(crate) fn new(
        builder: Handle,
        node: String,
        key_serde: Option<SerdeArc<K>>,
        value_serde: Option<SerdeArc<V>>,
        store: Option<String>,
    ) -> Self {
        Self {
            builder,
            node,
            key_serde: or_default(key_serde),
            value_serde: or_default(value_serde),
            store,
            window: None,
            old_values: OldValues::always(),
            getter: None,
            versioned: false,
        }
    }

    /// The table with `versioned` as its versioned flag.
    pub(crate) fn with_versioned(mut self, versioned: bool) -> Self {
        self.versioned = versioned;
        self
    }

    /// Whether the table is versioned (or filtered or mapped from a
    /// versioned table): downstream operations follow Kafka's versioned
    /// semantics.
    pub(crate) fn is_versioned(&self) -> bool {
        self.versioned
    }

    /// The table as read through the key-value store it is kept in (an
    /// aggregation's or a source's).
    pub(crate) fn with_store_getter(mut self) -> Self {
        self.getter = self.store.as_deref().map(ValueGetter::store);
        self
    }

    /// The table with `getter` as its value getter.
    pub(crate) fn with_getter(mut self, getter: Option<ValueGetter<K, V>>) -> Self {
        self.getter = getter;
        self
    }

    /// The table with `old_values` as its `sendOldValues` flag.
    pub(crate) fn with_old_values(mut self, old_values: Arc<OldValues>) -> Self {
        self.old_values = old_values;
        self
    }

    /// The table's `sendOldValues` flag.
    pub(crate) fn old_values(&self) -> &Arc<OldValues> {
        &self.old_values
    }

    /// The table's value getter, materializing a source table that a
    /// downstream operation reads; `None` (with the builder's error
    /// recorded) for a table that cannot be read by key, named by
    /// `operation`.
    pub(crate) fn value_getter(&self, operation: &str) -> Option<ValueGetter<K, V>> {
        match &self.getter {
            Some(getter) => {
                self.old_values.materialize();
                Some(getter.clone())
            }
            None => {
                self.builder.fail(format!(
                    "{operation}: table '{}' cannot be read by key (a windowed or suppressed table); \
                     join its `to_stream()` re-read as a table instead",
                    self.node
                ));
                None
            }
        }
    }

    /// Marks the table as the output of a windowed aggregation with this
    /// grace period, whose keys' windows end at `end(key)`.
    pub(crate) fn with_window(mut self, grace_ms: i64, end: WindowEndFn<K>) -> Self {
        self.window = Some((grace_ms, end));
        self
    }

    /// The grace period and window-end function of the windowed
    /// aggregation producing this table.
    pub(crate) fn window(&self) -> Option<(i64, WindowEndFn<K>)> {
        self.window.clone()
    }

    pub(crate) fn handle(&self) -> &Handle {
        &self.builder
    }

    pub(crate) fn serdes(&self) -> (Option<SerdeArc<K>>, Option<SerdeArc<V>>) {
        (self.key_serde.clone(), self.value_serde.clone())
    }

    /// The name of the node that produces this table.
    pub fn node_name(&self) -> &str {
        &self.node
    }

    /// The store holding this table, if it is materialized (a source or an
    /// aggregation; filtered and mapped tables are not).
    pub fn queryable_store_name(&self) -> Option<&str> {
        self.store.as_deref()
    }

    fn do_filter<F>(&self, predicate: F, negate: bool, named: Option<Named>) -> Self
    where
        F: Fn(&K, &V) -> bool + Send + Sync + 'static,
    {
        let name = self.builder.ktable_name(named, "FILTER");
        let predicate = Arc::new(predicate);
        let old_values = OldValues::filter(&self.old_values, false);
        let send_old = old_values.clone();
        let getter_predicate = predicate.clone();
        // Kafka's versioned semantics: a filter of a versioned table
        // forwards even a (null, null) update.
        let versioned = self.versioned;
        self.builder.add_processor(
            &name,
            move || {
                let predicate = predicate.clone();
                // Read when the task creates the processor: building is over.
                let send_old = send_old.enabled();
                stateless_fn(
                    move |ctx: &mut ProcessorContext<'_, K, Change<V>>, r: Record<K, Change<V>>| {
                        let (Some(key), Some(change)) = (&r.key, &r.value) else {
                            return Ok(());
                        };
                        let keep = |v: &Option<V>| {
                            v.as_ref().filter(|v| predicate(key, v) != negate).cloned()
                        };
                        let filtered = Change::new(
                            keep(&change.new),
                            if send_old { keep(&change.old) } else { None },
                        )
                        .with_is_latest(change.is_latest);
                        // Without old values, a rejected row may have passed
                        // before: its delete goes downstream.
                        if !versioned
                            && send_old
                            && filtered.new.is_none()
                            && filtered.old.is_none()
                        {
                            return Ok(());
                        }
                        ctx.forward(r.with_value(Some(filtered)))
                    },
                )
            },
            &[&self.node],
        );
        let getter = self.getter.as_ref().map(|g| {
            g.map(move |key, row| (getter_predicate(key, &row.value) != negate).then_some(row))
        });
        KTable::new(
            self.builder.clone(),
            name,
            self.key_serde.clone(),
            self.value_serde.clone(),
            None,
        )
        .with_old_values(old_values)
        .with_getter(getter)
        .with_versioned(self.versioned)
    }

    /// Keeps the rows that satisfy `predicate` (`KTABLE-FILTER`): a row
    /// that stops satisfying it is deleted downstream. Over a versioned
    /// table, an update that neither passes now nor passed before still
    /// goes downstream as a delete (Kafka's versioned semantics).
    pub fn filter<F>(&self, predicate: F) -> Self
    where
        F: Fn(&K, &V) -> bool + Send + Sync + 'static,
    {
        self.do_filter(predicate, false, None)
    }

    /// [`KTable::filter`] with a node name.
    pub fn filter_named<F>(&self, predicate: F, named: Named) -> Self
    where
        F: Fn(&K, &V) -> bool + Send + Sync + 'static,
    {
        self.do_filter(predicate, false, Some(named))
    }

    /// Drops the rows that satisfy `predicate` (`KTABLE-FILTER`).
    pub fn filter_not<F>(&self, predicate: F) -> Self
    where
        F: Fn(&K, &V) -> bool + Send + Sync + 'static,
    {
        self.do_filter(predicate, true, None)
    }

    /// [`KTable::filter_not`] with a node name.
    pub fn filter_not_named<F>(&self, predicate: F, named: Named) -> Self
    where
        F: Fn(&K, &V) -> bool + Send + Sync + 'static,
    {
        self.do_filter(predicate, true, Some(named))
    }

    fn do_map_values<VR, F>(&self, mapper: F, named: Option<Named>) -> KTable<K, VR>
    where
        VR: Clone + Send + 'static,
        F: Fn(&V) -> VR + Send + Sync + 'static,
    {
        let name = self.builder.ktable_name(named, "MAPVALUES");
        let mapper = Arc::new(mapper);
        let old_values = OldValues::derived(&self.old_values, false);
        let send_old = old_values.clone();
        let getter_mapper = mapper.clone();
        self.builder.add_processor(
            &name,
            move || {
                let mapper = mapper.clone();
                let send_old = send_old.enabled();
                stateless_fn(
                    move |ctx: &mut ProcessorContext<'_, K, Change<VR>>,
                          r: Record<K, Change<V>>| {
                        let mapped = r.value.as_ref().map(|c| {
                            Change::new(
                                c.new.as_ref().map(|v| mapper(v)),
                                c.old.as_ref().filter(|_| send_old).map(|v| mapper(v)),
                            )
                            .with_is_latest(c.is_latest)
                        });
                        ctx.forward(r.with_value(mapped))
                    },
                )
            },
            &[&self.node],
        );
        let getter = self.getter.as_ref().map(|g| {
            g.map(move |_, row| {
                Some(ValueAndTimestamp::make(
                    getter_mapper(&row.value),
                    row.timestamp,
                ))
            })
        });
        KTable::new(
            self.builder.clone(),
            name,
            self.key_serde.clone(),
            None,
            None,
        )
        .with_old_values(old_values)
        .with_getter(getter)
        .with_versioned(self.versioned)
    }

    /// Maps each row's value (`KTABLE-MAPVALUES`).
    pub fn map_values<VR, F>(&self, mapper: F) -> KTable<K, VR>
    where
        VR: Clone + Send + 'static,
        F: Fn(&V) -> VR + Send + Sync + 'static,
    {
        self.do_map_values(mapper, None)
    }

    /// [`KTable::map_values`] with a node name.
    pub fn map_values_named<VR, F>(&self, mapper: F, named: Named) -> KTable<K, VR>
    where
        VR: Clone + Send + 'static,
        F: Fn(&V) -> VR + Send + Sync + 'static,
    {
        self.do_map_values(mapper, Some(named))
    }

    fn do_to_stream(&self, named: Option<Named>) -> KStream<K, V> {
        let name = self.builder.ktable_name(named, "TOSTREAM");
        self.builder.add_processor(
            &name,
            || {
                stateless_fn(
                    |ctx: &mut ProcessorContext<'_, K, V>, r: Record<K, Change<V>>| {
                        let value = r.value.as_ref().and_then(|c| c.new.clone());
                        ctx.forward(r.with_value(value))
                    },
                )
            },
            &[&self.node],
        );
        KStream::new(
            self.builder.clone(),
            name,
            false,
            self.key_serde.clone(),
            self.value_serde.clone(),
        )
    }

    /// The table's updates as a stream (`KTABLE-TOSTREAM`): a delete is a
    /// record with a null value (a tombstone).
    pub fn to_stream(&self) -> KStream<K, V> {
        self.do_to_stream(None)
    }

    /// [`KTable::to_stream`] with a node name.
    pub fn to_stream_named(&self, named: Named) -> KStream<K, V> {
        self.do_to_stream(Some(named))
    }

    /// Re-groups the rows by `selector(key, value) -> (new key, new value)`
    /// (`KTABLE-SELECT`, named by the [`Grouped`]'s name if given). An
    /// update goes to the old group as a subtraction and to the new group
    /// as an addition, in one record when the group does not change. The
    /// out-of-order updates of a versioned table are skipped (Kafka's
    /// versioned semantics): the aggregate is of the latest rows.
    pub fn group_by<KR, VR, F>(
        &self,
        selector: F,
        grouped: Grouped<KR, VR>,
    ) -> KGroupedTable<KR, VR>
    where
        KR: Clone + Send + PartialEq + 'static,
        VR: Clone + Send + 'static,
        F: Fn(&K, &V) -> (KR, VR) + Send + Sync + 'static,
    {
        let name = self
            .builder
            .ktable_name(grouped.name.clone().map(Named::as_), "SELECT");
        // The re-grouping subtracts old values: the table must send them.
        if !self.old_values.enable(true) {
            self.builder.fail(format!(
                "group_by '{name}': table '{}' cannot send the old values a re-grouping subtracts; materialize it with Materialized::as_",
                self.node
            ));
        }
        let selector = Arc::new(selector);
        let versioned = self.versioned;
        self.builder.add_processor(
            &name,
            move || {
                let selector = selector.clone();
                stateless_fn(
                    move |ctx: &mut ProcessorContext<'_, KR, Change<VR>>,
                          r: Record<K, Change<V>>| {
                        let (Some(key), Some(change)) = (&r.key, &r.value) else {
                            return Ok(());
                        };
                        // Kafka's versioned semantics: the aggregate of a
                        // versioned table takes its latest rows only.
                        if versioned && !change.is_latest {
                            tracing::debug!(processor = %ctx.node_name(), timestamp = r.timestamp, "skipping an out-of-order update of a versioned table in a re-grouping");
                            return Ok(());
                        }
                        let old = change.old.as_ref().map(|v| selector(key, v));
                        let new = change.new.as_ref().map(|v| selector(key, v));
                        let ts = r.timestamp;
                        match (old, new) {
                            (Some((ok, ov)), Some((nk, nv))) if ok == nk => {
                                ctx.forward(Record::from_parts(
                                    Some(nk),
                                    Some(Change::new(Some(nv), Some(ov))),
                                    ts,
                                ))
                            }
                            (old, new) => {
                                if let Some((ok, ov)) = old {
                                    ctx.forward(Record::from_parts(
                                        Some(ok),
                                        Some(Change::new(None, Some(ov))),
                                        ts,
                                    ))?;
                                }
                                if let Some((nk, nv)) = new {
                                    ctx.forward(Record::from_parts(
                                        Some(nk),
                                        Some(Change::new(Some(nv), None)),
                                        ts,
                                    ))?;
                                }
                                Ok(())
                            }
                        }
                    },
                )
            },
            &[&self.node],
        );
        KGroupedTable {
            builder: self.builder.clone(),
            node: name,
            key_serde: or_default(grouped.key_serde),
            value_serde: or_default(grouped.value_serde),
            name: grouped.name,
        }
    }
}

/// A table re-grouped by [`KTable::group_by`] (Kafka's `KGroupedTable`):
/// `count`, `reduce` and `aggregate` with an adder and a subtractor.
///
/// The aggregation always repartitions through `<name>-repartition` (the
/// [`Grouped`] name, else the store name) with nodes `KSTREAM-SINK` and
/// `KSTREAM-SOURCE`. An update subtracts the old value from its old group,
/// then adds the new value to its new group; within one group that is a
/// single output row. A deleted row only subtracts. An aggregate that
/// becomes "empty" (a count of 0) stays in the table.
pub struct KGroupedTable<K, V> {
    builder: Handle,
    node: String,
    key_serde: Option<SerdeArc<K>>,
    value_serde: Option<SerdeArc<V>>,
    name: Option<String>,
}

impl<K, V> fmt::Debug for KGroupedTable<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KGroupedTable")
            .field("node", &self.node)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<K, V> KGroupedTable<K, V>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    /// Counts the rows per group (`KTABLE-AGGREGATE`).
    pub fn count(&self, materialized: Materialized<K, i64>) -> KTable<K, i64> {
        self.do_count(None, materialized)
    }

    /// [`KGroupedTable::count`] with the processor named `named`, so that a
    /// topology change does not rename it.
    pub fn count_named(&self, named: Named, materialized: Materialized<K, i64>) -> KTable<K, i64> {
        self.do_count(Some(named), materialized)
    }

    fn do_count(&self, named: Option<Named>, materialized: Materialized<K, i64>) -> KTable<K, i64> {
        let add = count_adder();
        let sub: SubFn<K, V, i64> = Arc::new(|_, _, count| count - 1);
        self.do_aggregate(
            "KTABLE-AGGREGATE-",
            "AGGREGATE",
            named,
            materialized,
            Some(Arc::new(Serdes::i64())),
            (add, sub),
        )
    }

    /// Combines the values per group (`KTABLE-REDUCE`):
    /// `adder(aggregate, new value)` and `subtractor(aggregate, old
    /// value)`; the first value is the initial aggregate.
    pub fn reduce<A, S>(
        &self,
        adder: A,
        subtractor: S,
        materialized: Materialized<K, V>,
    ) -> KTable<K, V>
    where
        A: Fn(V, &V) -> V + Send + Sync + 'static,
        S: Fn(V, &V) -> V + Send + Sync + 'static,
    {
        self.do_reduce(adder, subtractor, None, materialized)
    }

    /// [`KGroupedTable::reduce`] with the processor named `named`.
    pub fn reduce_named<A, S>(
        &self,
        adder: A,
        subtractor: S,
        named: Named,
        materialized: Materialized<K, V>,
    ) -> KTable<K, V>
    where
        A: Fn(V, &V) -> V + Send + Sync + 'static,
        S: Fn(V, &V) -> V + Send + Sync + 'static,
    {
        self.do_reduce(adder, subtractor, Some(named), materialized)
    }

    fn do_reduce<A, S>(
        &self,
        adder: A,
        subtractor: S,
        named: Option<Named>,
        materialized: Materialized<K, V>,
    ) -> KTable<K, V>
    where
        A: Fn(V, &V) -> V + Send + Sync + 'static,
        S: Fn(V, &V) -> V + Send + Sync + 'static,
    {
        let add = reduce_adder(adder);
        let sub: SubFn<K, V, V> = Arc::new(move |_, value, agg| subtractor(agg, value));
        let value_serde = self.value_serde.clone();
        self.do_aggregate(
            "KTABLE-REDUCE-",
            "REDUCE",
            named,
            materialized,
            value_serde,
            (add, sub),
        )
    }

    /// Folds the values per group (`KTABLE-AGGREGATE`), starting from
    /// `initializer()`: `adder(key, new value, aggregate)` and
    /// `subtractor(key, old value, aggregate)`. The store's value serde
    /// must be given in `materialized`.
    pub fn aggregate<VA, I, A, S>(
        &self,
        initializer: I,
        adder: A,
        subtractor: S,
        materialized: Materialized<K, VA>,
    ) -> KTable<K, VA>
    where
        VA: Clone + Send + 'static,
        I: Fn() -> VA + Send + Sync + 'static,
        A: Fn(&K, &V, VA) -> VA + Send + Sync + 'static,
        S: Fn(&K, &V, VA) -> VA + Send + Sync + 'static,
    {
        self.do_fold(initializer, adder, subtractor, None, materialized)
    }

    /// [`KGroupedTable::aggregate`] with the processor named `named`.
    pub fn aggregate_named<VA, I, A, S>(
        &self,
        initializer: I,
        adder: A,
        subtractor: S,
        named: Named,
        materialized: Materialized<K, VA>,
    ) -> KTable<K, VA>
    where
        VA: Clone + Send + 'static,
        I: Fn() -> VA + Send + Sync + 'static,
        A: Fn(&K, &V, VA) -> VA + Send + Sync + 'static,
        S: Fn(&K, &V, VA) -> VA + Send + Sync + 'static,
    {
        self.do_fold(initializer, adder, subtractor, Some(named), materialized)
    }

    fn do_fold<VA, I, A, S>(
        &self,
        initializer: I,
        adder: A,
        subtractor: S,
        named: Option<Named>,
        materialized: Materialized<K, VA>,
    ) -> KTable<K, VA>
    where
        VA: Clone + Send + 'static,
        I: Fn() -> VA + Send + Sync + 'static,
        A: Fn(&K, &V, VA) -> VA + Send + Sync + 'static,
        S: Fn(&K, &V, VA) -> VA + Send + Sync + 'static,
    {
        let add = fold_adder(initializer, adder);
        let sub: SubFn<K, V, VA> = Arc::new(subtractor);
        self.do_aggregate(
            "KTABLE-AGGREGATE-",
            "AGGREGATE",
            named,
            materialized,
            None,
            (add, sub),
        )
    }

    fn do_aggregate<VA>(
        &self,
        store_prefix: &str,
        operation: &str,
        named: Option<Named>,
        materialized: Materialized<K, VA>,
        default_value_serde: Option<SerdeArc<VA>>,
        (add, sub): (AddFn<K, V, VA>, SubFn<K, V, VA>),
    ) -> KTable<K, VA>
    where
        VA: Clone + Send + 'static,
    {
        let builder = &self.builder;
        builder.reject_versioned(&materialized, "a grouped table's aggregation");
        let store = match &materialized.name {
            Some(name) => name.clone(),
            None => builder.store_name(store_prefix),
        };
        let sink = builder.kstream_name(None, "SINK");
        let source = builder.kstream_name(None, "SOURCE");
        let name = builder.ktable_name(named, operation);
        let topic = builder.repartition_topic(self.name.as_deref().unwrap_or(&store));
        let key_serde = materialized
            .key_serde
            .clone()
            .or_else(|| self.key_serde.clone());
        let value_serde = or_default(materialized.value_serde.clone().or(default_value_serde));
        let (Some(rks), Some(rvs), Some(ks), Some(vs)) = (
            self.key_serde.clone(),
            self.value_serde.clone(),
            key_serde,
            value_serde,
        ) else {
            builder.fail(format!(
                "'{name}' with store '{store}': a serde is unknown; give the grouping's with Grouped::with and the store's with Materialized::with"
            ));
            return KTable::new(builder.clone(), name, None, None, Some(store));
        };
        builder.apply(|t| {
            t.add_sink(
                &sink,
                &topic,
                rks.clone(),
                ChangeSerde::new(rvs.clone()),
                &[&self.node],
            )?
            .add_source(&source, rks, ChangeSerde::new(rvs), &[&topic])?;
            Ok(())
        });
        let store_for = store.clone();
        let key_serde = ks.clone();
        builder.add_processor(
            &name,
            move || {
                TableAggregate::new(
                    store_for.clone(),
                    key_serde.clone(),
                    add.clone(),
                    sub.clone(),
                )
            },
            &[&source],
        );
        let store_builder = store_builder(&store, ks.clone(), vs.clone(), &materialized);
        builder.apply(|t| {
            t.add_state_store(store_builder, &[&name])?;
            Ok(())
        });
        KTable::new(builder.clone(), name, Some(ks), Some(vs), Some(store)).with_store_getter()
    }
}
