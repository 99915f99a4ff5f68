//! [`CogroupedKStream`]: several grouped streams aggregated into one table
//! (Kafka's `KGroupedStream#cogroup` and `CogroupedKStream`).
//!
//! The topology is Kafka's (`CogroupedStreamAggregateBuilder`): one store
//! for all inputs; each input, repartitioned first if its grouping needs
//! it, gets an aggregate processor of its own (`COGROUPKSTREAM-AGGREGATE`)
//! that updates the store with that input's aggregator; a merge node
//! (`COGROUPKSTREAM-MERGE`) takes the updates of all of them downstream as
//! one table. The processors are those of `KGroupedStream::aggregate` and
//! of the windowed aggregations.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;
use std::sync::Arc;

use streams_core::Windowed;

use crate::builder::{store_builder, DslMetrics, Handle};
use crate::grouped::KGroupedStream;
use crate::ktable::KTable;
use crate::options::{Materialized, Named, SerdeArc};
use crate::processors::cogroup_merge::CogroupMerge;
use crate::processors::{fold_adder, AddFn, StreamAggregate};
use crate::windowed_aggregation::{AggregatorOptions, WindowedBy};

/// The prefix of a cogroup's generated store and aggregate processor names.
const AGGREGATE_PREFIX: &str = "COGROUPKSTREAM-AGGREGATE-";
/// The prefix of a cogroup's generated merge node name.
const MERGE_PREFIX: &str = "COGROUPKSTREAM-MERGE-";

/// A cogroup input's aggregator: `aggregator(key, value, aggregate)`.
pub(crate) type CogroupAggregator<K, V, VOut> = Arc<dyn Fn(&K, &V, VOut) -> VOut + Send + Sync>;
/// A cogroup's initializer: the aggregate a key or window starts from.
pub(crate) type Initializer<VOut> = Arc<dyn Fn() -> VOut + Send + Sync>;

/// The aggregation one input's processor runs: over what, from which
/// initial aggregate, into which store.
struct AggregateSpec<'a, K, VOut> {
    /// The windows, if any.
    windows: Option<&'a WindowedBy<K, VOut>>,
    initializer: &'a Initializer<VOut>,
    store: &'a str,
    /// Whether this processor forwards the updates leaving the store's
    /// record cache: only the first input's does.
    forwards_flushes: bool,
    metrics: DslMetrics,
}

/// One input of a cogroup: a grouped stream and its aggregator, its value
/// type erased.
trait CogroupInput<K, VOut> {
    /// The grouped stream's id: a grouped stream is an input once.
    fn grouped_id(&self) -> u64;

    /// The grouped stream's key serde, if known.
    fn key_serde(&self) -> Option<SerdeArc<K>>;

    /// Whether the input is repartitioned before its aggregation.
    fn repartition_required(&self) -> bool;

    /// Repartitions the input through `<name>-repartition` (the
    /// `Grouped` name, else `store`); returns the repartition's source.
    fn repartition(&self, store: &str) -> String;

    /// The grouped stream's own node.
    fn node(&self) -> String;

    /// Adds the processor `name` that aggregates the records of `parent`
    /// into the store, as `spec` says.
    fn add_aggregate(
        &self,
        builder: &Handle,
        name: &str,
        parent: &str,
        spec: AggregateSpec<'_, K, VOut>,
    );
}

/// A grouped stream with values `V` and its aggregator.
struct Input<K, V, VOut> {
    grouped: KGroupedStream<K, V>,
    aggregator: CogroupAggregator<K, V, VOut>,
}

impl<K, V, VOut> CogroupInput<K, VOut> for Input<K, V, VOut>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
    VOut: Clone + Send + 'static,
{
    fn grouped_id(&self) -> u64 {
        self.grouped.id()
    }

    fn key_serde(&self) -> Option<SerdeArc<K>> {
        self.grouped.key_serde().cloned()
    }

    fn repartition_required(&self) -> bool {
        self.grouped.repartition_required()
    }

    fn repartition(&self, store: &str) -> String {
        self.grouped
            .aggregation_parent(store, &format!("cogroup into '{store}'"))
    }

    fn node(&self) -> String {
        self.grouped.node().to_owned()
    }

    fn add_aggregate(
        &self,
        builder: &Handle,
        name: &str,
        parent: &str,
        spec: AggregateSpec<'_, K, VOut>,
    ) {
        let initializer = spec.initializer.clone();
        let aggregator = self.aggregator.clone();
        let add: AddFn<K, V, VOut> = fold_adder(
            move || initializer(),
            move |k, v, agg| aggregator(k, v, agg),
        );
        let store = spec.store.to_owned();
        let metrics = spec.metrics;
        let forwards = spec.forwards_flushes;
        match spec.windows {
            None => builder.add_processor(
                name,
                move || {
                    StreamAggregate::new(store.clone(), add.clone(), metrics.clone())
                        .forwarding_flushes(forwards)
                },
                &[parent],
            ),
            Some(by) => by.add_aggregator(
                builder,
                name,
                parent,
                &store,
                add,
                AggregatorOptions {
                    add_null: None,
                    forwards_flushes: forwards,
                    late_topic: None,
                    metrics,
                },
            ),
        }
    }
}

/// Grouped streams aggregated together into one table (Kafka's
/// `CogroupedKStream`), made by [`KGroupedStream::cogroup`]: each input
/// has its own aggregator, all of them update one aggregate per key (or
/// per key and window), starting from one initializer.
///
/// ```
/// use streams_core::{Serdes, TopologyTestDriver};
/// use streams_dsl::{Consumed, Grouped, Materialized, Produced, StreamsBuilder};
///
/// let builder = StreamsBuilder::new();
/// let grouped = |topic: &str| {
///     builder
///         .stream::<String, String>(topic, Consumed::with(Serdes::string(), Serdes::string()))
///         .group_by_key(Grouped::with(Serdes::string(), Serdes::string()))
/// };
/// let (clicks, views) = (grouped("clicks"), grouped("views"));
/// clicks
///     .cogroup(|_user, _click, total: i64| total + 10)
///     .cogroup(&views, |_user, _view, total| total + 1)
///     .aggregate(|| 0, Materialized::as_("scores").with_value_serde(Serdes::i64()))
///     .to_stream()
///     .to("scores", Produced::with(Serdes::string(), Serdes::i64()));
///
/// let driver = TopologyTestDriver::new(builder.build()?)?;
/// let clicks = driver.create_input_topic("clicks", Serdes::string(), Serdes::string());
/// let views = driver.create_input_topic("views", Serdes::string(), Serdes::string());
/// let scores = driver.create_output_topic("scores", Serdes::string(), Serdes::i64());
/// views.pipe_input("ann".to_owned(), "home".to_owned())?;
/// clicks.pipe_input("ann".to_owned(), "buy".to_owned())?;
/// assert_eq!(scores.read_values_to_list()?, [Some(1), Some(11)]);
/// # Ok::<(), streams_core::StreamsError>(())
/// ```
///
/// Records with a null key are dropped, and so are records with a null
/// value: an aggregator never sees one (Kafka hands them to the
/// aggregators of time and session windows; see `docs/dsl.md`). The
/// aggregate's timestamp is the largest timestamp of its records. Inputs
/// read in one task must be co-partitioned.
pub struct CogroupedKStream<K, VOut> {
    builder: Handle,
    inputs: Vec<Rc<dyn CogroupInput<K, VOut>>>,
    /// The repartition sources made for the inputs, by grouped stream id:
    /// every aggregation of this cogroup reads an input through the same
    /// repartition, as Kafka's builder does.
    repartitions: Rc<RefCell<HashMap<u64, String>>>,
}

impl<K, VOut> fmt::Debug for CogroupedKStream<K, VOut> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CogroupedKStream")
            .field("inputs", &self.inputs.len())
            .finish_non_exhaustive()
    }
}

impl<K, VOut> CogroupedKStream<K, VOut>
where
    K: Clone + Send + 'static,
    VOut: Clone + Send + 'static,
{
    pub(crate) fn new<V, A>(grouped: &KGroupedStream<K, V>, aggregator: A) -> Self
    where
        V: Clone + Send + 'static,
        A: Fn(&K, &V, VOut) -> VOut + Send + Sync + 'static,
    {
        Self {
            builder: grouped.handle().clone(),
            inputs: vec![input(grouped, aggregator)],
            repartitions: Rc::default(),
        }
    }

    /// Adds `grouped` as an input aggregated with
    /// `aggregator(key, value, aggregate)` (Kafka's `cogroup`). Cogrouping
    /// a grouped stream again replaces its aggregator. Its key type must be
    /// the cogroup's; its value type may differ from the other inputs'.
    pub fn cogroup<V, A>(mut self, grouped: &KGroupedStream<K, V>, aggregator: A) -> Self
    where
        V: Clone + Send + 'static,
        A: Fn(&K, &V, VOut) -> VOut + Send + Sync + 'static,
    {
        if !grouped.handle().same_builder(&self.builder) {
            self.builder
                .fail("cogroup: the grouped stream comes from another StreamsBuilder".to_owned());
            return self;
        }
        let added = input(grouped, aggregator);
        match self
            .inputs
            .iter()
            .position(|i| i.grouped_id() == grouped.id())
        {
            Some(at) => self.inputs[at] = added,
            None => self.inputs.push(added),
        }
        self
    }

    /// Aggregates every input into one table (`COGROUPKSTREAM-AGGREGATE`
    /// per input, then `COGROUPKSTREAM-MERGE`): each key's aggregate starts
    /// from `initializer()` and each record updates it with its input's
    /// aggregator. The store's value serde must be given in
    /// `materialized`; its key serde defaults to the first input's.
    pub fn aggregate<I>(
        &self,
        initializer: I,
        materialized: Materialized<K, VOut>,
    ) -> KTable<K, VOut>
    where
        I: Fn() -> VOut + Send + Sync + 'static,
    {
        self.do_aggregate(Arc::new(initializer), None, materialized)
    }

    /// [`CogroupedKStream::aggregate`] with the processors named after
    /// `named`: `<name>-cogroup-agg-<i>` for the `i`-th input (from 0) and
    /// `<name>-cogroup-merge`, as Kafka names them.
    pub fn aggregate_named<I>(
        &self,
        initializer: I,
        named: Named,
        materialized: Materialized<K, VOut>,
    ) -> KTable<K, VOut>
    where
        I: Fn() -> VOut + Send + Sync + 'static,
    {
        self.do_aggregate(Arc::new(initializer), Some(named), materialized)
    }

    fn do_aggregate(
        &self,
        initializer: Initializer<VOut>,
        named: Option<Named>,
        materialized: Materialized<K, VOut>,
    ) -> KTable<K, VOut> {
        let built = self.build(None, initializer, named, &materialized);
        match built {
            Ok(Built {
                merge,
                key_serde,
                value_serde,
                store,
            }) => KTable::new(
                self.builder.clone(),
                merge,
                Some(key_serde),
                Some(value_serde),
                Some(store),
            )
            .with_store_getter(),
            Err((node, store)) => KTable::new(self.builder.clone(), node, None, None, Some(store)),
        }
    }

    /// This cogroup, for a windowed aggregation of it: the same inputs and
    /// the same repartitions.
    pub(crate) fn same_cogroup(&self) -> Self {
        Self {
            builder: self.builder.clone(),
            inputs: self.inputs.clone(),
            repartitions: self.repartitions.clone(),
        }
    }

    /// The builder.
    pub(crate) fn handle(&self) -> &Handle {
        &self.builder
    }

    /// Builds the cogroup's nodes and store, in Kafka's order: the store's
    /// name, its retention checked, every input's repartition, every
    /// input's aggregate processor, the merge node. Returns the merge node,
    /// the serdes and the store; on an error (recorded on the builder) a
    /// node name and the store.
    pub(crate) fn build(
        &self,
        windows: Option<WindowedBy<K, VOut>>,
        initializer: Initializer<VOut>,
        named: Option<Named>,
        materialized: &Materialized<K, VOut>,
    ) -> Result<Built<K, VOut>, (String, String)> {
        let builder = &self.builder;
        builder.reject_versioned(materialized, "a cogroup's aggregation");
        let store = match &materialized.name {
            Some(name) => name.clone(),
            None => builder.store_name(AGGREGATE_PREFIX),
        };
        let retention = match &windows {
            None => Ok(0),
            Some(by) => by.retention_ms(materialized.retention),
        };
        let retention = match retention {
            Ok(retention) => retention,
            Err(reason) => {
                builder.fail(format!("store '{store}' of a cogroup: {reason}"));
                return Err((store.clone(), store));
            }
        };
        let key_serde = materialized
            .key_serde
            .clone()
            .or_else(|| self.inputs.iter().find_map(|i| i.key_serde()));
        let (Some(ks), Some(vs)) = (key_serde, materialized.value_serde.clone()) else {
            builder.fail(format!(
                "store '{store}' of a cogroup: no key or value serde; give them with Materialized::with"
            ));
            return Err((store.clone(), store));
        };
        let store_builder = match &windows {
            None => store_builder(&store, ks.clone(), vs.clone(), materialized),
            Some(by) => by.store_builder(&store, &ks, &vs, retention, materialized),
        };
        let parents: Vec<String> = self
            .inputs
            .iter()
            .map(|i| self.parent(i.as_ref(), &store))
            .collect();
        let metrics = builder.metrics();
        let mut aggregators = Vec::with_capacity(self.inputs.len());
        for (i, (input, parent)) in self.inputs.iter().zip(&parents).enumerate() {
            let name = builder.name_or_generate(
                named
                    .as_ref()
                    .map(|n| format!("{}-cogroup-agg-{i}", n.name)),
                AGGREGATE_PREFIX,
            );
            input.add_aggregate(
                builder,
                &name,
                parent,
                AggregateSpec {
                    windows: windows.as_ref(),
                    initializer: &initializer,
                    store: &store,
                    forwards_flushes: i == 0,
                    metrics: metrics.clone(),
                },
            );
            aggregators.push(name);
        }
        let users: Vec<&str> = aggregators.iter().map(String::as_str).collect();
        builder.apply(|t| {
            t.add_state_store(store_builder, &users)?;
            Ok(())
        });
        let merge = builder.name_or_generate(
            named.as_ref().map(|n| format!("{}-cogroup-merge", n.name)),
            MERGE_PREFIX,
        );
        match &windows {
            None => builder.add_processor(&merge, CogroupMerge::<K, VOut>::new, &users),
            Some(_) => {
                builder.add_processor(&merge, CogroupMerge::<Windowed<K>, VOut>::new, &users)
            }
        }
        Ok(Built {
            merge,
            key_serde: ks,
            value_serde: vs,
            store,
        })
    }

    /// The node `input`'s aggregation reads: the grouped stream's node, or
    /// the source of its repartition, made once per input of this cogroup
    /// (a later aggregation still takes the repartition's three name
    /// indexes, as in Kafka).
    fn parent(&self, input: &dyn CogroupInput<K, VOut>, store: &str) -> String {
        if !input.repartition_required() {
            return input.node();
        }
        let made = self.repartitions.borrow().get(&input.grouped_id()).cloned();
        if let Some(source) = made {
            self.builder.skip_repartition_names();
            return source;
        }
        let source = input.repartition(store);
        self.repartitions
            .borrow_mut()
            .insert(input.grouped_id(), source.clone());
        source
    }
}

/// What [`CogroupedKStream::build`] made.
pub(crate) struct Built<K, VOut> {
    /// The merge node: the table's node.
    pub(crate) merge: String,
    pub(crate) key_serde: SerdeArc<K>,
    pub(crate) value_serde: SerdeArc<VOut>,
    pub(crate) store: String,
}

/// The cogroup input of `grouped` aggregated with `aggregator`.
fn input<K, V, VOut, A>(
    grouped: &KGroupedStream<K, V>,
    aggregator: A,
) -> Rc<dyn CogroupInput<K, VOut>>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
    VOut: Clone + Send + 'static,
    A: Fn(&K, &V, VOut) -> VOut + Send + Sync + 'static,
{
    Rc::new(Input {
        grouped: grouped.clone_parts(),
        aggregator: Arc::new(aggregator),
    })
}

impl<K, V> KGroupedStream<K, V>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    /// Starts a cogroup with this grouped stream as its first input,
    /// aggregated with `aggregator(key, value, aggregate)` (Kafka's
    /// `cogroup`); add more inputs with [`CogroupedKStream::cogroup`], then
    /// aggregate them all into one table.
    pub fn cogroup<VOut, A>(&self, aggregator: A) -> CogroupedKStream<K, VOut>
    where
        VOut: Clone + Send + 'static,
        A: Fn(&K, &V, VOut) -> VOut + Send + Sync + 'static,
    {
        CogroupedKStream::new(self, aggregator)
    }
}
