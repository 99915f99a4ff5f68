//! [`Topology`]: the graph of sources, processors and sinks, with the
//! stores attached to processors, as Kafka's `Topology`.

mod describe;

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use state_store::{open_store, StoreBackend};

pub use describe::{
    GlobalStoreDescription, NodeDescription, NodeKindDescription, SubtopologyDescription,
    TopologyDescription,
};

use crate::error::{Result, StreamsError};
use crate::exec::ErasedNode;
use crate::global::GlobalTableSpec;
use crate::node::{ProcessorNode, SinkNode, SourceNode};
use crate::processor::Processor;
use crate::serdes::Serde;
use crate::store::StoreBuilder;
use crate::timestamp::SharedTimestampExtractor;
pub(crate) use crate::type_info::TypeInfo;

/// Key and value types of the records a node takes or forwards.
type RecordTypes = (TypeInfo, TypeInfo);

fn types_name((k, v): RecordTypes) -> String {
    format!("{}, {}", k.name, v.name)
}

/// Creates a node's runtime instance (one per task).
pub(crate) type NodeFactory = Arc<dyn Fn() -> Box<dyn ErasedNode> + Send + Sync>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NodeKind {
    Source { topics: Vec<String> },
    Processor,
    Sink { topic: String },
}

#[derive(Clone)]
pub(crate) struct NodeDef {
    pub(crate) name: String,
    pub(crate) kind: NodeKind,
    pub(crate) parents: Vec<usize>,
    pub(crate) children: Vec<usize>,
    /// Indexes of the stores connected to this node.
    pub(crate) stores: Vec<usize>,
    /// The types forwarded to children; `None` for sinks.
    output: Option<RecordTypes>,
    pub(crate) factory: NodeFactory,
    /// A source's own timestamp extractor; `None` uses
    /// `default.timestamp.extractor`.
    pub(crate) timestamp_extractor: Option<SharedTimestampExtractor>,
}

impl fmt::Debug for NodeDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeDef")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("parents", &self.parents)
            .field("children", &self.children)
            .field("stores", &self.stores)
            .field("output", &self.output)
            .field("timestamp_extractor", &self.timestamp_extractor)
            .finish_non_exhaustive()
    }
}

impl NodeDef {
    pub(crate) fn source_topics(&self) -> &[String] {
        match &self.kind {
            NodeKind::Source { topics } => topics,
            _ => &[],
        }
    }

    fn kind_name(&self) -> &'static str {
        match self.kind {
            NodeKind::Source { .. } => "source",
            NodeKind::Processor => "processor",
            NodeKind::Sink { .. } => "sink",
        }
    }
}

#[derive(Debug, Clone)]
struct StoreDef {
    builder: StoreBuilder,
    /// Processors connected to the store.
    users: Vec<usize>,
}

/// A connected component of the topology: nodes linked by parent edges or
/// by a shared store. It runs as one task per input partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SubTopology {
    pub(crate) id: u32,
    /// Node indexes, in the order they were added.
    pub(crate) nodes: Vec<usize>,
    /// Store indexes, in the order they were added.
    pub(crate) stores: Vec<usize>,
}

/// The processing graph of an application, as Kafka's `Topology`: source
/// nodes read topics, processor nodes transform records and use state
/// stores, sink nodes write topics.
///
/// Each `add_*` call checks its arguments at once (names unique, parents
/// known and able to have children, record types matching the parent's)
/// and returns a [`StreamsError`] saying what to fix; on error the topology
/// is left unchanged.
///
/// ```
/// use streams_core::{processor_fn, ProcessorContext, Record, Serdes, Topology};
///
/// let mut topology = Topology::new();
/// topology
///     .add_source("Source", Serdes::string(), Serdes::string(), &["input"])?
///     .add_processor(
///         "Upper",
///         || processor_fn(|ctx: &mut ProcessorContext<'_, String, String>, r: Record<String, String>| {
///             let upper = r.value.as_ref().map(|v| v.to_uppercase());
///             ctx.forward(r.with_value(upper))
///         }),
///         &["Source"],
///     )?
///     .add_sink("Sink", "output", Serdes::string(), Serdes::string(), &["Upper"])?;
///
/// assert_eq!(
///     topology.describe().to_string(),
///     "Topologies:\n   Sub-topology: 0\n    Source: Source (topics: [input])\n      --> Upper\n    \
///      Processor: Upper (stores: [])\n      --> Sink\n      <-- Source\n    \
///      Sink: Sink (topic: output)\n      <-- Upper\n\n"
/// );
/// # Ok::<(), streams_core::StreamsError>(())
/// ```
#[derive(Clone, Default)]
pub struct Topology {
    nodes: Vec<NodeDef>,
    node_index: HashMap<String, usize>,
    stores: Vec<StoreDef>,
    store_index: HashMap<String, usize>,
    topic_index: HashMap<String, usize>,
    /// Topics written outside the sinks (dead-letter topics of late
    /// records), sorted.
    output_topics: Vec<String>,
    /// The global tables, each a full copy of a topic on every instance.
    global_tables: Vec<GlobalTableSpec>,
}

impl fmt::Debug for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Topology")
            .field("nodes", &self.nodes)
            .field("stores", &self.stores)
            .finish()
    }
}

impl Topology {
    /// An empty topology.
    pub fn new() -> Self {
        Self::default()
    }

    fn check_new_name(&self, name: &str) -> Result<()> {
        if name.is_empty() {
            return Err(StreamsError::invalid_topology(
                "node names must not be empty",
            ));
        }
        let global = self
            .global_tables
            .iter()
            .any(|g| g.source_name == name || g.processor_name == name);
        if self.node_index.contains_key(name) || global {
            return Err(StreamsError::DuplicateName {
                kind: "node",
                name: name.to_owned(),
            });
        }
        Ok(())
    }

    /// Resolves and checks the parents of a new node taking `input` types.
    fn resolve_parents(
        &self,
        node: &str,
        parents: &[&str],
        input: RecordTypes,
    ) -> Result<Vec<usize>> {
        if parents.is_empty() {
            return Err(StreamsError::NoParents {
                node: node.to_owned(),
            });
        }
        let mut resolved = Vec::with_capacity(parents.len());
        for &parent in parents {
            let Some(&index) = self.node_index.get(parent) else {
                return Err(StreamsError::UnknownParent {
                    node: node.to_owned(),
                    parent: parent.to_owned(),
                });
            };
            let def = &self.nodes[index];
            let Some(output) = def.output else {
                return Err(StreamsError::InvalidParent {
                    node: node.to_owned(),
                    parent: parent.to_owned(),
                    reason: "a sink has no children",
                });
            };
            if resolved.contains(&index) {
                return Err(StreamsError::InvalidParent {
                    node: node.to_owned(),
                    parent: parent.to_owned(),
                    reason: "it is listed twice",
                });
            }
            if output.0.id != input.0.id || output.1.id != input.1.id {
                return Err(StreamsError::TypeMismatch {
                    node: node.to_owned(),
                    parent: parent.to_owned(),
                    expected: types_name(input),
                    found: types_name(output),
                });
            }
            resolved.push(index);
        }
        Ok(resolved)
    }

    fn push_node(&mut self, def: NodeDef) {
        let index = self.nodes.len();
        for &parent in &def.parents {
            self.nodes[parent].children.push(index);
        }
        for topic in def.source_topics() {
            self.topic_index.insert(topic.clone(), index);
        }
        self.node_index.insert(def.name.clone(), index);
        tracing::trace!(node = %def.name, kind = def.kind_name(), "added node");
        self.nodes.push(def);
    }

    /// Adds a source node `name` reading `topics`, deserializing keys and
    /// values with the given serdes (Kafka's `addSource`). Its records'
    /// timestamps come from `default.timestamp.extractor`.
    pub fn add_source<K, V>(
        &mut self,
        name: &str,
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
        topics: &[&str],
    ) -> Result<&mut Self>
    where
        K: Clone + Send + 'static,
        V: Clone + Send + 'static,
    {
        self.add_source_with_timestamp_extractor(name, None, key_serde, value_serde, topics)
    }

    /// Adds a source node as [`Topology::add_source`], whose records get
    /// their timestamps from `extractor` (Kafka's `addSource` with a
    /// `TimestampExtractor`); `None` uses `default.timestamp.extractor`.
    pub fn add_source_with_timestamp_extractor<K, V>(
        &mut self,
        name: &str,
        extractor: Option<SharedTimestampExtractor>,
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
        topics: &[&str],
    ) -> Result<&mut Self>
    where
        K: Clone + Send + 'static,
        V: Clone + Send + 'static,
    {
        self.check_new_name(name)?;
        if topics.is_empty() {
            return Err(StreamsError::invalid_topology(format!(
                "source '{name}' must read at least one topic"
            )));
        }
        for (i, &topic) in topics.iter().enumerate() {
            if topic.is_empty() {
                return Err(StreamsError::invalid_topology(format!(
                    "source '{name}' names an empty topic"
                )));
            }
            let existing = self
                .topic_index
                .get(topic)
                .map(|&n| self.nodes[n].name.clone())
                .or_else(|| {
                    self.global_tables
                        .iter()
                        .find(|g| g.topic == topic)
                        .map(|g| g.source_name.clone())
                })
                .or_else(|| topics[..i].contains(&topic).then(|| name.to_owned()));
            if let Some(existing) = existing {
                return Err(StreamsError::TopicAlreadySubscribed {
                    topic: topic.to_owned(),
                    source_node: name.to_owned(),
                    existing,
                });
            }
        }
        let key_serde: Arc<dyn Serde<K>> = crate::serdes::shared(key_serde);
        let value_serde: Arc<dyn Serde<V>> = crate::serdes::shared(value_serde);
        let factory: NodeFactory = Arc::new(move || {
            Box::new(SourceNode {
                key_serde: key_serde.clone(),
                value_serde: value_serde.clone(),
                inline: None,
            }) as Box<dyn ErasedNode>
        });
        self.push_node(NodeDef {
            name: name.to_owned(),
            kind: NodeKind::Source {
                topics: topics.iter().map(|&t| t.to_owned()).collect(),
            },
            parents: Vec::new(),
            children: Vec::new(),
            stores: Vec::new(),
            output: Some((TypeInfo::of::<K>(), TypeInfo::of::<V>())),
            factory,
            timestamp_extractor: extractor,
        });
        Ok(self)
    }

    /// Adds a processor node `name` fed by `parents`; `supplier` creates
    /// one [`Processor`] per task (Kafka's `addProcessor`). Every parent
    /// must forward `KIn`/`VIn` records.
    pub fn add_processor<KIn, VIn, KOut, VOut, P, F>(
        &mut self,
        name: &str,
        supplier: F,
        parents: &[&str],
    ) -> Result<&mut Self>
    where
        P: Processor<KIn, VIn, KOut, VOut>,
        F: Fn() -> P + Send + Sync + 'static,
        KIn: 'static,
        VIn: 'static,
        KOut: 'static,
        VOut: 'static,
    {
        self.check_new_name(name)?;
        let input = (TypeInfo::of::<KIn>(), TypeInfo::of::<VIn>());
        let parents = self.resolve_parents(name, parents, input)?;
        let factory: NodeFactory = Arc::new(move || {
            Box::new(ProcessorNode::<P, KIn, VIn, KOut, VOut>::new(supplier()))
                as Box<dyn ErasedNode>
        });
        self.push_node(NodeDef {
            name: name.to_owned(),
            kind: NodeKind::Processor,
            parents,
            children: Vec::new(),
            stores: Vec::new(),
            output: Some((TypeInfo::of::<KOut>(), TypeInfo::of::<VOut>())),
            factory,
            timestamp_extractor: None,
        });
        Ok(self)
    }

    /// Adds a sink node `name` writing the records of `parents` to `topic`
    /// with the given serdes (Kafka's `addSink`).
    pub fn add_sink<K, V>(
        &mut self,
        name: &str,
        topic: &str,
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
        parents: &[&str],
    ) -> Result<&mut Self>
    where
        K: 'static,
        V: 'static,
    {
        self.check_new_name(name)?;
        if topic.is_empty() {
            return Err(StreamsError::invalid_topology(format!(
                "sink '{name}' names an empty topic"
            )));
        }
        let parents =
            self.resolve_parents(name, parents, (TypeInfo::of::<K>(), TypeInfo::of::<V>()))?;
        let topic_name: Arc<str> = Arc::from(topic);
        let key_serde: Arc<dyn Serde<K>> = crate::serdes::shared(key_serde);
        let value_serde: Arc<dyn Serde<V>> = crate::serdes::shared(value_serde);
        let factory: NodeFactory = Arc::new(move || {
            Box::new(SinkNode::new(
                topic_name.clone(),
                key_serde.clone(),
                value_serde.clone(),
            )) as Box<dyn ErasedNode>
        });
        self.push_node(NodeDef {
            name: name.to_owned(),
            kind: NodeKind::Sink {
                topic: topic.to_owned(),
            },
            parents,
            children: Vec::new(),
            stores: Vec::new(),
            output: None,
            factory,
            timestamp_extractor: None,
        });
        Ok(self)
    }

    /// Checks that `processor` is a processor node; returns its index.
    fn processor_index(&self, store: &str, processor: &str) -> Result<usize> {
        let Some(&index) = self.node_index.get(processor) else {
            return Err(StreamsError::UnknownProcessor {
                store: store.to_owned(),
                processor: processor.to_owned(),
            });
        };
        let def = &self.nodes[index];
        if def.kind != NodeKind::Processor {
            return Err(StreamsError::NotAProcessor {
                store: store.to_owned(),
                node: processor.to_owned(),
                kind: def.kind_name(),
            });
        }
        Ok(index)
    }

    fn connect(&mut self, node: usize, store: usize) {
        if !self.nodes[node].stores.contains(&store) {
            self.nodes[node].stores.push(store);
            self.stores[store].users.push(node);
        }
    }

    /// Adds the store declared by `builder` and connects it to
    /// `processors` (Kafka's `addStateStore`).
    pub fn add_state_store(
        &mut self,
        builder: StoreBuilder,
        processors: &[&str],
    ) -> Result<&mut Self> {
        let name = builder.name();
        if self.store_index.contains_key(name) {
            return Err(StreamsError::DuplicateName {
                kind: "state store",
                name: name.to_owned(),
            });
        }
        // The state-store crate's name rules (it becomes a directory name).
        open_store(StoreBackend::InMemory, Path::new(""), name)?;
        let users = processors
            .iter()
            .map(|p| self.processor_index(name, p))
            .collect::<Result<Vec<_>>>()?;
        let index = self.stores.len();
        self.store_index.insert(name.to_owned(), index);
        tracing::trace!(store = %name, "added state store");
        self.stores.push(StoreDef {
            builder,
            users: Vec::new(),
        });
        for node in users {
            self.connect(node, index);
        }
        Ok(self)
    }

    /// Adds a global table named `name` (Kafka's global store behind a
    /// `GlobalKTable`): a full copy of `topic`'s latest value per key on
    /// every instance, read by every task through
    /// [`crate::ConnectedStores::global_table`]. The topic is read from its
    /// beginning to its end before processing starts, then followed; a
    /// record's key and value must decode with `key_serde` and
    /// `value_serde`. The topic is not a source of any task, needs no
    /// co-partitioning, and is its own changelog.
    ///
    /// As Kafka's `addGlobalStore`, the table's source node `source_name`
    /// reads the topic and its processor `processor_name` updates the
    /// table; [`Topology::describe`] prints them as a sub-topology "for
    /// global store" that generates no tasks.
    pub fn add_global_table<K: 'static, V: 'static>(
        &mut self,
        name: &str,
        source_name: &str,
        topic: &str,
        processor_name: &str,
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
    ) -> Result<&mut Self> {
        self.check_new_name(source_name)?;
        self.check_new_name(processor_name)?;
        if source_name == processor_name {
            return Err(StreamsError::DuplicateName {
                kind: "node",
                name: processor_name.to_owned(),
            });
        }
        if self.store_index.contains_key(name) || self.global_tables.iter().any(|g| g.name == name)
        {
            return Err(StreamsError::DuplicateName {
                kind: "state store",
                name: name.to_owned(),
            });
        }
        if self.topic_index.contains_key(topic)
            || self.global_tables.iter().any(|g| g.topic == topic)
        {
            return Err(StreamsError::invalid_topology(format!(
                "topic '{topic}' of global table '{name}' is already read by another source"
            )));
        }
        open_store(StoreBackend::InMemory, Path::new(""), name)?;
        self.global_tables.push(GlobalTableSpec::new(
            name,
            (source_name, processor_name),
            topic,
            Arc::new(key_serde) as Arc<dyn Serde<K>>,
            Arc::new(value_serde) as Arc<dyn Serde<V>>,
        ));
        Ok(self)
    }

    /// The global tables.
    pub(crate) fn global_tables(&self) -> &[GlobalTableSpec] {
        &self.global_tables
    }

    /// The topics the application's tasks read, as the runtime names them
    /// for application `application_id`: the user's topics as they are,
    /// internal topics (repartition topics, a foreign-key join's
    /// subscription and response topics) prefixed with
    /// `<application_id>-` unless they already are. Sorted, once each.
    pub fn physical_source_topics(&self, application_id: &str) -> Vec<String> {
        let sinks = self.sink_topics();
        let prefix = format!("{application_id}-");
        let mut topics: Vec<String> = self
            .source_topics()
            .into_iter()
            .map(|topic| {
                let internal = sinks.contains(&topic) && is_internal_topic_name(topic);
                if internal && !topic.starts_with(&prefix) {
                    format!("{prefix}{topic}")
                } else {
                    topic.to_owned()
                }
            })
            .collect();
        topics.sort();
        topics.dedup();
        topics
    }

    /// The topics of the global tables.
    pub fn global_topics(&self) -> Vec<&str> {
        self.global_tables
            .iter()
            .map(|g| g.topic.as_str())
            .collect()
    }

    /// Connects `processor` to stores already added (Kafka's
    /// `connectProcessorAndStateStores`).
    pub fn connect_processor_and_state_stores(
        &mut self,
        processor: &str,
        stores: &[&str],
    ) -> Result<&mut Self> {
        let mut resolved = Vec::with_capacity(stores.len());
        for &store in stores {
            let Some(&index) = self.store_index.get(store) else {
                return Err(StreamsError::UnknownStore {
                    processor: processor.to_owned(),
                    store: store.to_owned(),
                });
            };
            resolved.push((index, self.processor_index(store, processor)?));
        }
        for (store, node) in resolved {
            self.connect(node, store);
        }
        Ok(self)
    }

    /// Checks that the topology can run: at least one source.
    pub fn validate(&self) -> Result<()> {
        if self.topic_index.is_empty() {
            return Err(StreamsError::invalid_topology(
                "the topology has no source; add one with Topology::add_source",
            ));
        }
        Ok(())
    }

    /// The topics read by sources, in the order they were added.
    pub fn source_topics(&self) -> Vec<&str> {
        self.nodes
            .iter()
            .flat_map(|n| n.source_topics().iter().map(String::as_str))
            .collect()
    }

    /// The topics written by sinks, in the order they were added (once
    /// each).
    pub fn sink_topics(&self) -> Vec<&str> {
        let mut topics: Vec<&str> = Vec::new();
        for node in &self.nodes {
            if let NodeKind::Sink { topic } = &node.kind {
                if !topics.contains(&topic.as_str()) {
                    topics.push(topic);
                }
            }
        }
        topics
    }

    /// Declares `topic` as written by a processor outside the sinks (with
    /// [`crate::ProcessorContext::send_bytes`]), such as a dead-letter
    /// topic of late records. The runtime creates it (one partition) if it
    /// does not exist.
    pub fn add_output_topic(&mut self, topic: &str) -> Result<&mut Self> {
        if topic.is_empty() {
            return Err(StreamsError::invalid_topology(
                "an output topic name must not be empty",
            ));
        }
        if let Err(i) = self
            .output_topics
            .binary_search_by(|t| t.as_str().cmp(topic))
        {
            self.output_topics.insert(i, topic.to_owned());
        }
        Ok(self)
    }

    /// The topics declared with [`Topology::add_output_topic`], sorted.
    pub fn output_topics(&self) -> Vec<&str> {
        self.output_topics.iter().map(String::as_str).collect()
    }

    /// The node names, in the order they were added.
    pub fn node_names(&self) -> Vec<&str> {
        self.nodes.iter().map(|n| n.name.as_str()).collect()
    }

    /// The store builders, in the order they were added.
    pub fn state_stores(&self) -> impl Iterator<Item = &StoreBuilder> {
        self.stores.iter().map(|s| &s.builder)
    }

    /// The description of the topology, printed as Kafka Streams'
    /// `TopologyDescription`.
    pub fn describe(&self) -> TopologyDescription {
        describe::describe(self)
    }

    /// The topology in Graphviz DOT; see [`TopologyDescription::to_dot`].
    pub fn to_dot(&self) -> String {
        self.describe().to_dot()
    }

    /// The topology as a Mermaid flowchart; see
    /// [`TopologyDescription::to_mermaid`].
    pub fn to_mermaid(&self) -> String {
        self.describe().to_mermaid()
    }

    pub(crate) fn node(&self, index: usize) -> &NodeDef {
        &self.nodes[index]
    }

    pub(crate) fn store_builder(&self, index: usize) -> &StoreBuilder {
        &self.stores[index].builder
    }

    /// The connected components, numbered in the order of their first node
    /// (upstream sub-topologies first, as current Kafka Streams does).
    /// Stores connected to no processor belong to none.
    pub(crate) fn sub_topologies(&self) -> Vec<SubTopology> {
        let mut uf = UnionFind::new(self.nodes.len());
        for (index, node) in self.nodes.iter().enumerate() {
            for &parent in &node.parents {
                uf.union(index, parent);
            }
        }
        for store in &self.stores {
            if let Some((&first, rest)) = store.users.split_first() {
                for &user in rest {
                    uf.union(first, user);
                }
            }
        }
        let mut group_of_root: HashMap<usize, usize> = HashMap::new();
        let mut groups: Vec<SubTopology> = Vec::new();
        let mut group_of_node = vec![0usize; self.nodes.len()];
        for (index, node_group) in group_of_node.iter_mut().enumerate() {
            let root = uf.find(index);
            let group = *group_of_root.entry(root).or_insert_with(|| {
                groups.push(SubTopology {
                    id: groups.len() as u32,
                    nodes: Vec::new(),
                    stores: Vec::new(),
                });
                groups.len() - 1
            });
            groups[group].nodes.push(index);
            *node_group = group;
        }
        for (index, store) in self.stores.iter().enumerate() {
            if let Some(&user) = store.users.first() {
                groups[group_of_node[user]].stores.push(index);
            }
        }
        groups
    }
}

struct UnionFind {
    parent: Vec<usize>,
}

impl UnionFind {
    fn new(n: usize) -> Self {
        Self {
            parent: (0..n).collect(),
        }
    }

    fn find(&mut self, mut x: usize) -> usize {
        while self.parent[x] != x {
            self.parent[x] = self.parent[self.parent[x]];
            x = self.parent[x];
        }
        x
    }

    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            // The smaller index stays the root: deterministic.
            let (root, child) = if ra < rb { (ra, rb) } else { (rb, ra) };
            self.parent[child] = root;
        }
    }
}

#[cfg(test)]
mod tests;

/// Whether a topic written and read by a topology is one of its internal
/// topics by name: `<name>-repartition`, or a foreign-key join's
/// `<name>-subscription-registration-topic` and
/// `<name>-subscription-response-topic` (generated:
/// `KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-<n>-topic`,
/// `KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-<n>-topic`).
pub(crate) fn is_internal_topic_name(topic: &str) -> bool {
    topic.ends_with("-repartition")
        || topic.ends_with("-subscription-registration-topic")
        || topic.ends_with("-subscription-response-topic")
        || (topic.contains("KTABLE-FK-JOIN-SUBSCRIPTION-") && topic.ends_with("-topic"))
}
