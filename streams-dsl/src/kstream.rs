//! [`KStream`]: a record stream, and [`BranchedKStream`], its split.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use streams_core::{stateless_fn, Processor, ProcessorContext, Record};

use crate::builder::Handle;
use crate::grouped::KGroupedStream;
use crate::options::{or_default, Branched, Grouped, Named, Produced, Repartitioned, SerdeArc};

/// A predicate over a key (absent for a null key) and a value.
type Predicate<K, V> = Arc<dyn Fn(Option<&K>, &V) -> bool + Send + Sync>;

/// A stream of records, each an independent event (Kafka's `KStream`).
///
/// User functions receive the key as `Option<&K>` (streams often have null
/// keys) and the value as `&V`. A record with a null value skips value
/// functions: `filter`, `filter_not` and `map_values` forward it with its
/// null value, `flat_map_values` forwards nothing, `map`, `flat_map`,
/// `select_key` and `group_by` drop it, `split` sends it to the default
/// branch; `peek` and `foreach` see it.
///
/// Operations take `&self`, so one stream can feed several.
pub struct KStream<K, V> {
    pub(crate) builder: Handle,
    pub(crate) node: String,
    pub(crate) repartition_required: bool,
    pub(crate) key_serde: Option<SerdeArc<K>>,
    pub(crate) value_serde: Option<SerdeArc<V>>,
}

impl<K, V> fmt::Debug for KStream<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KStream")
            .field("node", &self.node)
            .field("repartition_required", &self.repartition_required)
            .finish_non_exhaustive()
    }
}

impl<K, V> Clone for KStream<K, V> {
    fn clone(&self) -> Self {
        Self {
            builder: self.builder.clone(),
            node: self.node.clone(),
            repartition_required: self.repartition_required,
            key_serde: self.key_serde.clone(),
            value_serde: self.value_serde.clone(),
        }
    }
}

impl<K, V> KStream<K, V>
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
    ) -> Self {
        Self {
            builder,
            node,
            repartition_required,
            key_serde: or_default(key_serde),
            value_serde: or_default(value_serde),
        }
    }

    /// The name of the node that produces this stream.
    pub fn node_name(&self) -> &str {
        &self.node
    }

    /// Whether a grouping of this stream repartitions (an upstream
    /// operation may have changed the key).
    pub fn repartition_required(&self) -> bool {
        self.repartition_required
    }

    fn child<K2, V2>(
        &self,
        node: String,
        repartition_required: bool,
        key_serde: Option<SerdeArc<K2>>,
        value_serde: Option<SerdeArc<V2>>,
    ) -> KStream<K2, V2>
    where
        K2: 'static,
        V2: 'static,
    {
        KStream {
            builder: self.builder.clone(),
            node,
            repartition_required,
            key_serde: or_default(key_serde),
            value_serde: or_default(value_serde),
        }
    }

    /// Adds a processor fed by this stream and returns its output stream.
    fn then<K2, V2, P, S>(
        &self,
        name: String,
        supplier: S,
        repartition_required: bool,
        key_serde: Option<SerdeArc<K2>>,
        value_serde: Option<SerdeArc<V2>>,
    ) -> KStream<K2, V2>
    where
        P: Processor<K, V, K2, V2>,
        S: Fn() -> P + Send + Sync + 'static,
        K2: 'static,
        V2: 'static,
    {
        self.builder.add_processor(&name, supplier, &[&self.node]);
        self.child(name, repartition_required, key_serde, value_serde)
    }

    fn do_filter<F>(&self, predicate: F, negate: bool, named: Option<Named>) -> Self
    where
        F: Fn(Option<&K>, &V) -> bool + Send + Sync + 'static,
    {
        let name = self.builder.kstream_name(named, "FILTER");
        let predicate = Arc::new(predicate);
        self.then(
            name,
            move || {
                let predicate = predicate.clone();
                stateless_fn(
                    move |ctx: &mut ProcessorContext<'_, K, V>, r: Record<K, V>| {
                        let keep = match &r.value {
                            Some(v) => predicate(r.key.as_ref(), v) != negate,
                            None => true,
                        };
                        if keep {
                            ctx.forward(r)
                        } else {
                            Ok(())
                        }
                    },
                )
            },
            self.repartition_required,
            self.key_serde.clone(),
            self.value_serde.clone(),
        )
    }

    /// Keeps the records that satisfy `predicate` (`KSTREAM-FILTER`).
    pub fn filter<F>(&self, predicate: F) -> Self
    where
        F: Fn(Option<&K>, &V) -> bool + Send + Sync + 'static,
    {
        self.do_filter(predicate, false, None)
    }

    /// [`KStream::filter`] with a node name.
    pub fn filter_named<F>(&self, predicate: F, named: Named) -> Self
    where
        F: Fn(Option<&K>, &V) -> bool + Send + Sync + 'static,
    {
        self.do_filter(predicate, false, Some(named))
    }

    /// Drops the records that satisfy `predicate` (`KSTREAM-FILTER`).
    pub fn filter_not<F>(&self, predicate: F) -> Self
    where
        F: Fn(Option<&K>, &V) -> bool + Send + Sync + 'static,
    {
        self.do_filter(predicate, true, None)
    }

    /// [`KStream::filter_not`] with a node name.
    pub fn filter_not_named<F>(&self, predicate: F, named: Named) -> Self
    where
        F: Fn(Option<&K>, &V) -> bool + Send + Sync + 'static,
    {
        self.do_filter(predicate, true, Some(named))
    }

    fn do_map<KR, VR, F>(&self, mapper: F, named: Option<Named>) -> KStream<KR, VR>
    where
        KR: Clone + Send + 'static,
        VR: Clone + Send + 'static,
        F: Fn(Option<&K>, &V) -> (KR, VR) + Send + Sync + 'static,
    {
        let name = self.builder.kstream_name(named, "MAP");
        let mapper = Arc::new(mapper);
        self.then(
            name,
            move || {
                let mapper = mapper.clone();
                stateless_fn(
                    move |ctx: &mut ProcessorContext<'_, KR, VR>, r: Record<K, V>| {
                        let Some(value) = &r.value else {
                            return Ok(());
                        };
                        let (k, v) = mapper(r.key.as_ref(), value);
                        ctx.forward(Record {
                            key: Some(k),
                            value: Some(v),
                            timestamp: r.timestamp,
                            headers: r.headers,
                        })
                    },
                )
            },
            true,
            None,
            None,
        )
    }

    /// Maps each record to a new key and value (`KSTREAM-MAP`); marks the
    /// stream for repartitioning.
    pub fn map<KR, VR, F>(&self, mapper: F) -> KStream<KR, VR>
    where
        KR: Clone + Send + 'static,
        VR: Clone + Send + 'static,
        F: Fn(Option<&K>, &V) -> (KR, VR) + Send + Sync + 'static,
    {
        self.do_map(mapper, None)
    }

    /// [`KStream::map`] with a node name.
    pub fn map_named<KR, VR, F>(&self, mapper: F, named: Named) -> KStream<KR, VR>
    where
        KR: Clone + Send + 'static,
        VR: Clone + Send + 'static,
        F: Fn(Option<&K>, &V) -> (KR, VR) + Send + Sync + 'static,
    {
        self.do_map(mapper, Some(named))
    }

    fn do_map_values<VR, F>(&self, mapper: F, named: Option<Named>) -> KStream<K, VR>
    where
        VR: Clone + Send + 'static,
        F: Fn(&V) -> VR + Send + Sync + 'static,
    {
        let name = self.builder.kstream_name(named, "MAPVALUES");
        let mapper = Arc::new(mapper);
        self.then(
            name,
            move || {
                let mapper = mapper.clone();
                stateless_fn(
                    move |ctx: &mut ProcessorContext<'_, K, VR>, r: Record<K, V>| {
                        let value = r.value.as_ref().map(|v| mapper(v));
                        ctx.forward(r.with_value(value))
                    },
                )
            },
            self.repartition_required,
            self.key_serde.clone(),
            None,
        )
    }

    /// Maps each value (`KSTREAM-MAPVALUES`); the key is kept.
    pub fn map_values<VR, F>(&self, mapper: F) -> KStream<K, VR>
    where
        VR: Clone + Send + 'static,
        F: Fn(&V) -> VR + Send + Sync + 'static,
    {
        self.do_map_values(mapper, None)
    }

    /// [`KStream::map_values`] with a node name.
    pub fn map_values_named<VR, F>(&self, mapper: F, named: Named) -> KStream<K, VR>
    where
        VR: Clone + Send + 'static,
        F: Fn(&V) -> VR + Send + Sync + 'static,
    {
        self.do_map_values(mapper, Some(named))
    }

    fn do_flat_map<KR, VR, I, F>(&self, mapper: F, named: Option<Named>) -> KStream<KR, VR>
    where
        KR: Clone + Send + 'static,
        VR: Clone + Send + 'static,
        I: IntoIterator<Item = (KR, VR)>,
        F: Fn(Option<&K>, &V) -> I + Send + Sync + 'static,
    {
        let name = self.builder.kstream_name(named, "FLATMAP");
        let mapper = Arc::new(mapper);
        self.then(
            name,
            move || {
                let mapper = mapper.clone();
                stateless_fn(
                    move |ctx: &mut ProcessorContext<'_, KR, VR>, r: Record<K, V>| {
                        let Some(value) = &r.value else {
                            return Ok(());
                        };
                        for (k, v) in mapper(r.key.as_ref(), value) {
                            ctx.forward(Record {
                                key: Some(k),
                                value: Some(v),
                                timestamp: r.timestamp,
                                headers: r.headers.clone(),
                            })?;
                        }
                        Ok(())
                    },
                )
            },
            true,
            None,
            None,
        )
    }

    /// Maps each record to zero or more records (`KSTREAM-FLATMAP`); marks
    /// the stream for repartitioning.
    pub fn flat_map<KR, VR, I, F>(&self, mapper: F) -> KStream<KR, VR>
    where
        KR: Clone + Send + 'static,
        VR: Clone + Send + 'static,
        I: IntoIterator<Item = (KR, VR)>,
        F: Fn(Option<&K>, &V) -> I + Send + Sync + 'static,
    {
        self.do_flat_map(mapper, None)
    }

    /// [`KStream::flat_map`] with a node name.
    pub fn flat_map_named<KR, VR, I, F>(&self, mapper: F, named: Named) -> KStream<KR, VR>
    where
        KR: Clone + Send + 'static,
        VR: Clone + Send + 'static,
        I: IntoIterator<Item = (KR, VR)>,
        F: Fn(Option<&K>, &V) -> I + Send + Sync + 'static,
    {
        self.do_flat_map(mapper, Some(named))
    }

    fn do_flat_map_values<VR, I, F>(&self, mapper: F, named: Option<Named>) -> KStream<K, VR>
    where
        VR: Clone + Send + 'static,
        I: IntoIterator<Item = VR>,
        F: Fn(&V) -> I + Send + Sync + 'static,
    {
        let name = self.builder.kstream_name(named, "FLATMAPVALUES");
        let mapper = Arc::new(mapper);
        self.then(
            name,
            move || {
                let mapper = mapper.clone();
                stateless_fn(
                    move |ctx: &mut ProcessorContext<'_, K, VR>, r: Record<K, V>| {
                        let Some(value) = &r.value else {
                            return Ok(());
                        };
                        for v in mapper(value) {
                            ctx.forward(Record {
                                key: r.key.clone(),
                                value: Some(v),
                                timestamp: r.timestamp,
                                headers: r.headers.clone(),
                            })?;
                        }
                        Ok(())
                    },
                )
            },
            self.repartition_required,
            self.key_serde.clone(),
            None,
        )
    }

    /// Maps each value to zero or more values, keeping the key
    /// (`KSTREAM-FLATMAPVALUES`).
    pub fn flat_map_values<VR, I, F>(&self, mapper: F) -> KStream<K, VR>
    where
        VR: Clone + Send + 'static,
        I: IntoIterator<Item = VR>,
        F: Fn(&V) -> I + Send + Sync + 'static,
    {
        self.do_flat_map_values(mapper, None)
    }

    /// [`KStream::flat_map_values`] with a node name.
    pub fn flat_map_values_named<VR, I, F>(&self, mapper: F, named: Named) -> KStream<K, VR>
    where
        VR: Clone + Send + 'static,
        I: IntoIterator<Item = VR>,
        F: Fn(&V) -> I + Send + Sync + 'static,
    {
        self.do_flat_map_values(mapper, Some(named))
    }

    /// The key-selection node behind `select_key` and `group_by`.
    fn key_select<KR, F>(&self, name: String, selector: F, count_dropped: bool) -> KStream<KR, V>
    where
        KR: Clone + Send + 'static,
        F: Fn(Option<&K>, &V) -> KR + Send + Sync + 'static,
    {
        let selector = Arc::new(selector);
        let metrics = self.builder.metrics();
        self.then(
            name,
            move || {
                let selector = selector.clone();
                let metrics = metrics.clone();
                stateless_fn(move |ctx: &mut ProcessorContext<'_, KR, V>, r: Record<K, V>| {
                    let Some(value) = &r.value else {
                        if count_dropped {
                            tracing::debug!(processor = %ctx.node_name(), timestamp = r.timestamp, "skipping record with a null value: aggregations ignore them");
                            metrics.record_dropped();
                        }
                        return Ok(());
                    };
                    let key = selector(r.key.as_ref(), value);
                    ctx.forward(r.with_key(Some(key)))
                })
            },
            true,
            None,
            self.value_serde.clone(),
        )
    }

    /// Sets a new key computed from each record (`KSTREAM-KEY-SELECT`);
    /// marks the stream for repartitioning.
    pub fn select_key<KR, F>(&self, selector: F) -> KStream<KR, V>
    where
        KR: Clone + Send + 'static,
        F: Fn(Option<&K>, &V) -> KR + Send + Sync + 'static,
    {
        let name = self.builder.kstream_name(None, "KEY-SELECT");
        self.key_select(name, selector, false)
    }

    /// [`KStream::select_key`] with a node name.
    pub fn select_key_named<KR, F>(&self, selector: F, named: Named) -> KStream<KR, V>
    where
        KR: Clone + Send + 'static,
        F: Fn(Option<&K>, &V) -> KR + Send + Sync + 'static,
    {
        let name = self.builder.kstream_name(Some(named), "KEY-SELECT");
        self.key_select(name, selector, false)
    }

    fn do_peek<F>(&self, action: F, named: Option<Named>) -> Self
    where
        F: Fn(Option<&K>, Option<&V>) + Send + Sync + 'static,
    {
        let name = self.builder.kstream_name(named, "PEEK");
        let action = Arc::new(action);
        self.then(
            name,
            move || {
                let action = action.clone();
                stateless_fn(
                    move |ctx: &mut ProcessorContext<'_, K, V>, r: Record<K, V>| {
                        action(r.key.as_ref(), r.value.as_ref());
                        ctx.forward(r)
                    },
                )
            },
            self.repartition_required,
            self.key_serde.clone(),
            self.value_serde.clone(),
        )
    }

    /// Calls `action` on each record and passes it on unchanged
    /// (`KSTREAM-PEEK`).
    pub fn peek<F>(&self, action: F) -> Self
    where
        F: Fn(Option<&K>, Option<&V>) + Send + Sync + 'static,
    {
        self.do_peek(action, None)
    }

    /// [`KStream::peek`] with a node name.
    pub fn peek_named<F>(&self, action: F, named: Named) -> Self
    where
        F: Fn(Option<&K>, Option<&V>) + Send + Sync + 'static,
    {
        self.do_peek(action, Some(named))
    }

    fn do_foreach<F>(&self, action: F, named: Option<Named>)
    where
        F: Fn(Option<&K>, Option<&V>) + Send + Sync + 'static,
    {
        let name = self.builder.kstream_name(named, "FOREACH");
        let action = Arc::new(action);
        self.builder.add_processor(
            &name,
            move || {
                let action = action.clone();
                stateless_fn(move |_: &mut ProcessorContext<'_, K, V>, r: Record<K, V>| {
                    action(r.key.as_ref(), r.value.as_ref());
                    Ok(())
                })
            },
            &[&self.node],
        );
    }

    /// Calls `action` on each record; a terminal operation
    /// (`KSTREAM-FOREACH`).
    pub fn foreach<F>(&self, action: F)
    where
        F: Fn(Option<&K>, Option<&V>) + Send + Sync + 'static,
    {
        self.do_foreach(action, None);
    }

    /// [`KStream::foreach`] with a node name.
    pub fn foreach_named<F>(&self, action: F, named: Named)
    where
        F: Fn(Option<&K>, Option<&V>) + Send + Sync + 'static,
    {
        self.do_foreach(action, Some(named));
    }

    /// Splits the stream into branches by predicates (Kafka's `split`):
    /// each record goes to the first branch whose predicate it satisfies.
    /// The split node is `KSTREAM-BRANCH-<index>`, and prefixes the branch
    /// names.
    pub fn split(&self) -> BranchedKStream<K, V> {
        self.do_split(None)
    }

    /// [`KStream::split`] with the split node named `named` (which then
    /// prefixes the branch names).
    pub fn split_named(&self, named: Named) -> BranchedKStream<K, V> {
        self.do_split(Some(named))
    }

    fn do_split(&self, named: Option<Named>) -> BranchedKStream<K, V> {
        let splitter = self.builder.kstream_name(named, "BRANCH");
        BranchedKStream {
            stream: self.clone(),
            splitter,
            branches: Vec::new(),
        }
    }

    fn do_merge(&self, other: &KStream<K, V>, named: Option<Named>) -> Self {
        let name = self.builder.kstream_name(named, "MERGE");
        if !self.builder.same_builder(&other.builder) {
            self.builder.fail(format!(
                "merge '{name}': the streams come from different builders"
            ));
        }
        self.builder.add_processor(
            &name,
            || stateless_fn(|ctx: &mut ProcessorContext<'_, K, V>, r: Record<K, V>| ctx.forward(r)),
            &[&self.node, &other.node],
        );
        self.child(
            name,
            self.repartition_required || other.repartition_required,
            self.key_serde.clone(),
            self.value_serde.clone(),
        )
    }

    /// The records of both streams, interleaved as they arrive
    /// (`KSTREAM-MERGE`).
    pub fn merge(&self, other: &KStream<K, V>) -> Self {
        self.do_merge(other, None)
    }

    /// [`KStream::merge`] with a node name.
    pub fn merge_named(&self, other: &KStream<K, V>, named: Named) -> Self {
        self.do_merge(other, Some(named))
    }

    /// Writes the stream through a repartition topic
    /// `<name>-repartition` and reads it back (Kafka's `repartition`); the
    /// name is the [`Repartitioned`]'s or `KSTREAM-REPARTITION-<index>`.
    pub fn repartition(&self, repartitioned: Repartitioned<K, V>) -> Self {
        let base = self
            .builder
            .kstream_name(repartitioned.name.map(Named::as_), "REPARTITION");
        let key_serde = repartitioned.key_serde.or_else(|| self.key_serde.clone());
        let value_serde = repartitioned
            .value_serde
            .or_else(|| self.value_serde.clone());
        let (Some(ks), Some(vs)) = (key_serde, value_serde) else {
            self.builder.fail(format!(
                "repartition '{base}': no serdes known for the stream; give them with Repartitioned::with"
            ));
            return self.child(base, false, None, None);
        };
        let source = self.builder.add_repartition(
            &self.node,
            &base,
            ks.clone(),
            vs.clone(),
            ks.clone(),
            vs.clone(),
            false,
        );
        self.child(source, false, Some(ks), Some(vs))
    }

    /// Writes the stream to `topic` (`KSTREAM-SINK`); serdes not given in
    /// `produced` come from upstream.
    pub fn to(&self, topic: &str, produced: Produced<K, V>) {
        let name = self
            .builder
            .kstream_name(produced.name.map(Named::as_), "SINK");
        let key_serde = produced.key_serde.or_else(|| self.key_serde.clone());
        let value_serde = produced.value_serde.or_else(|| self.value_serde.clone());
        let (Some(ks), Some(vs)) = (key_serde, value_serde) else {
            self.builder.fail(format!(
                "sink '{name}' to '{topic}': no serdes known for the stream; give them with Produced::with"
            ));
            return;
        };
        self.builder.apply(|t| {
            t.add_sink(&name, topic, ks, vs, &[&self.node])?;
            Ok(())
        });
    }

    fn do_process<KOut, VOut, P, S>(
        &self,
        supplier: S,
        stores: &[&str],
        named: Option<Named>,
    ) -> KStream<KOut, VOut>
    where
        KOut: Clone + Send + 'static,
        VOut: Clone + Send + 'static,
        P: Processor<K, V, KOut, VOut>,
        S: Fn() -> P + Send + Sync + 'static,
    {
        let name = self.builder.kstream_name(named, "PROCESSOR");
        let stream = self.then(name, supplier, true, None, None);
        if !stores.is_empty() {
            self.builder.apply(|t| {
                t.connect_processor_and_state_stores(&stream.node, stores)?;
                Ok(())
            });
        }
        stream
    }

    /// Runs a [`Processor`] on the stream, connected to `stores` (added
    /// with [`crate::StreamsBuilder::add_state_store`]); its output is a
    /// new stream (`KSTREAM-PROCESSOR`), marked for repartitioning since
    /// the processor may change keys.
    pub fn process<KOut, VOut, P, S>(&self, supplier: S, stores: &[&str]) -> KStream<KOut, VOut>
    where
        KOut: Clone + Send + 'static,
        VOut: Clone + Send + 'static,
        P: Processor<K, V, KOut, VOut>,
        S: Fn() -> P + Send + Sync + 'static,
    {
        self.do_process(supplier, stores, None)
    }

    /// [`KStream::process`] with a node name.
    pub fn process_named<KOut, VOut, P, S>(
        &self,
        supplier: S,
        stores: &[&str],
        named: Named,
    ) -> KStream<KOut, VOut>
    where
        KOut: Clone + Send + 'static,
        VOut: Clone + Send + 'static,
        P: Processor<K, V, KOut, VOut>,
        S: Fn() -> P + Send + Sync + 'static,
    {
        self.do_process(supplier, stores, Some(named))
    }

    /// Groups by the current key. The aggregation repartitions only if an
    /// upstream operation changed the key.
    pub fn group_by_key(&self, grouped: Grouped<K, V>) -> KGroupedStream<K, V> {
        KGroupedStream::new(
            self.builder.clone(),
            self.node.clone(),
            self.repartition_required,
            grouped.key_serde.or_else(|| self.key_serde.clone()),
            grouped.value_serde.or_else(|| self.value_serde.clone()),
            grouped.name,
        )
    }

    /// Groups by a key computed from each record: a `KSTREAM-KEY-SELECT`
    /// node (named by the [`Grouped`]'s name if given), and the aggregation
    /// always repartitions. Records with a null value are dropped here.
    pub fn group_by<KR, F>(&self, selector: F, grouped: Grouped<KR, V>) -> KGroupedStream<KR, V>
    where
        KR: Clone + Send + 'static,
        F: Fn(Option<&K>, &V) -> KR + Send + Sync + 'static,
    {
        let name = self
            .builder
            .kstream_name(grouped.name.clone().map(Named::as_), "KEY-SELECT");
        let selected = self.key_select(name, selector, true);
        KGroupedStream::new(
            self.builder.clone(),
            selected.node,
            true,
            grouped.key_serde,
            grouped.value_serde.or_else(|| self.value_serde.clone()),
            grouped.name,
        )
    }
}

/// A stream being split into branches (Kafka's `BranchedKStream`); see
/// [`KStream::split`]. Branches are created when the split is finished by
/// [`BranchedKStream::default_branch`] or
/// [`BranchedKStream::no_default_branch`].
pub struct BranchedKStream<K, V> {
    stream: KStream<K, V>,
    splitter: String,
    branches: Vec<(String, Predicate<K, V>)>,
}

impl<K, V> fmt::Debug for BranchedKStream<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BranchedKStream")
            .field("splitter", &self.splitter)
            .field(
                "branches",
                &self.branches.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl<K, V> BranchedKStream<K, V>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    /// The branch name: the split's name followed by the branch's, or by
    /// its position. Consumes an index as Kafka does.
    fn branch_name(&self, branched: Branched, position: usize) -> String {
        let _ = self.stream.builder.kstream_name(None, "BRANCHCHILD");
        match branched.name {
            Some(name) => format!("{}{name}", self.splitter),
            None => format!("{}{position}", self.splitter),
        }
    }

    /// Adds a branch taking the records that satisfy `predicate` and no
    /// earlier branch's.
    pub fn branch<F>(mut self, predicate: F, branched: Branched) -> Self
    where
        F: Fn(Option<&K>, &V) -> bool + Send + Sync + 'static,
    {
        let name = self.branch_name(branched, self.branches.len() + 1);
        self.branches.push((name, Arc::new(predicate)));
        self
    }

    /// Finishes the split with a default branch taking every other record
    /// (and records with a null value); returns the branches by name.
    pub fn default_branch(self) -> HashMap<String, KStream<K, V>> {
        self.default_branch_with(Branched::new())
    }

    /// [`BranchedKStream::default_branch`] with a branch name.
    pub fn default_branch_with(self, branched: Branched) -> HashMap<String, KStream<K, V>> {
        let name = self.branch_name(branched, 0);
        self.finish(Some(name))
    }

    /// Finishes the split; records that satisfy no predicate are dropped.
    pub fn no_default_branch(self) -> HashMap<String, KStream<K, V>> {
        self.finish(None)
    }

    fn finish(self, default: Option<String>) -> HashMap<String, KStream<K, V>> {
        let stream = &self.stream;
        let builder = &stream.builder;
        let branches: Arc<Vec<(String, Predicate<K, V>)>> = Arc::new(self.branches);
        let default_for = default.clone();
        let routes = branches.clone();
        builder.add_processor(
            &self.splitter,
            move || {
                let routes = routes.clone();
                let default = default_for.clone();
                stateless_fn(
                    move |ctx: &mut ProcessorContext<'_, K, V>, r: Record<K, V>| {
                        let target = match &r.value {
                            Some(v) => routes
                                .iter()
                                .find(|(_, p)| p(r.key.as_ref(), v))
                                .map(|(name, _)| name.as_str()),
                            None => None,
                        }
                        .or(default.as_deref());
                        match target {
                            Some(target) => ctx.forward_to(target, r),
                            None => Ok(()),
                        }
                    },
                )
            },
            &[&stream.node],
        );
        let mut out = HashMap::new();
        for name in branches.iter().map(|(n, _)| n).chain(default.iter()) {
            builder.add_processor(
                name,
                || {
                    stateless_fn(|ctx: &mut ProcessorContext<'_, K, V>, r: Record<K, V>| {
                        ctx.forward(r)
                    })
                },
                &[&self.splitter],
            );
            out.insert(
                name.clone(),
                stream.child(
                    name.clone(),
                    stream.repartition_required,
                    stream.key_serde.clone(),
                    stream.value_serde.clone(),
                ),
            );
        }
        out
    }
}
