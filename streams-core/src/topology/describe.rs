//! [`TopologyDescription`]: the text of Kafka Streams'
//! `TopologyDescription`, plus Graphviz DOT and Mermaid renderings.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt::{self, Write as _};

use super::{NodeKind, Topology};

/// What a node is, with its topics or stores.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodeKindDescription {
    /// A source and the topics it reads, in the order given.
    Source {
        /// The topics.
        topics: Vec<String>,
    },
    /// A processor and the stores connected to it, sorted by name.
    Processor {
        /// The store names.
        stores: Vec<String>,
    },
    /// A sink and the topic it writes.
    Sink {
        /// The topic.
        topic: String,
    },
}

/// One node of a [`SubtopologyDescription`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeDescription {
    /// The node name.
    pub name: String,
    /// What the node is.
    pub kind: NodeKindDescription,
    /// Parent names, in Kafka's node order.
    pub predecessors: Vec<String>,
    /// Child names, in Kafka's node order.
    pub successors: Vec<String>,
}

/// One sub-topology: a connected component of the topology.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubtopologyDescription {
    /// The sub-topology id (the first number of its task ids).
    pub id: u32,
    /// The nodes, in Kafka's order: by decreasing size of the sub-graph
    /// each node reaches (itself included), then by name. Along a chain
    /// that is upstream first.
    pub nodes: Vec<NodeDescription>,
}

/// The structure of a [`Topology`], as Kafka Streams' `TopologyDescription`.
///
/// `Display` prints Kafka's text, byte for byte; [`TopologyDescription::to_dot`]
/// and [`TopologyDescription::to_mermaid`] draw it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TopologyDescription {
    /// The sub-topologies, by id.
    pub subtopologies: Vec<SubtopologyDescription>,
    /// The global tables, each a sub-topology of its own that generates
    /// no tasks, numbered after the others.
    pub global_stores: Vec<GlobalStoreDescription>,
}

/// A global table's sub-topology: a source reading its topic and the
/// processor updating its store.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GlobalStoreDescription {
    /// The sub-topology id.
    pub id: u32,
    /// The source node's name.
    pub source: String,
    /// The topic.
    pub topic: String,
    /// The processor node's name.
    pub processor: String,
    /// The store (the global table's name).
    pub store: String,
}

pub(super) fn describe(topology: &Topology) -> TopologyDescription {
    let nodes = &topology.nodes;
    // Size of the sub-graph reached from each node, itself included,
    // counted along every path as Kafka does. Children are always added
    // after their parents, so one pass from the end suffices.
    let mut size = vec![1u64; nodes.len()];
    for index in (0..nodes.len()).rev() {
        let below: u64 = nodes[index]
            .children
            .iter()
            .fold(0u64, |acc, &c| acc.saturating_add(size[c]));
        size[index] = below.saturating_add(1);
    }
    let order = |a: &usize, b: &usize| -> Ordering {
        size[*b]
            .cmp(&size[*a])
            .then_with(|| nodes[*a].name.cmp(&nodes[*b].name))
    };
    let names = |indexes: &[usize]| -> Vec<String> {
        let mut sorted = indexes.to_vec();
        sorted.sort_by(order);
        sorted.into_iter().map(|i| nodes[i].name.clone()).collect()
    };

    let subtopologies = topology
        .sub_topologies()
        .into_iter()
        .map(|sub| {
            let mut members = sub.nodes.clone();
            members.sort_by(order);
            let nodes = members
                .into_iter()
                .map(|index| {
                    let node = &nodes[index];
                    let kind = match &node.kind {
                        NodeKind::Source { topics } => NodeKindDescription::Source {
                            topics: topics.clone(),
                        },
                        NodeKind::Processor => {
                            let mut stores: Vec<String> = node
                                .stores
                                .iter()
                                .map(|&s| topology.stores[s].builder.name().to_owned())
                                .collect();
                            stores.sort();
                            NodeKindDescription::Processor { stores }
                        }
                        NodeKind::Sink { topic } => NodeKindDescription::Sink {
                            topic: topic.clone(),
                        },
                    };
                    NodeDescription {
                        name: node.name.clone(),
                        kind,
                        predecessors: names(&node.parents),
                        successors: names(&node.children),
                    }
                })
                .collect();
            SubtopologyDescription { id: sub.id, nodes }
        })
        .collect::<Vec<SubtopologyDescription>>();
    let first_global = subtopologies.iter().map(|s| s.id + 1).max().unwrap_or(0);
    let global_stores = topology
        .global_tables()
        .iter()
        .zip(first_global..)
        .map(|(g, id)| GlobalStoreDescription {
            id,
            source: g.source_name.clone(),
            topic: g.topic.clone(),
            processor: g.processor_name.clone(),
            store: g.name.clone(),
        })
        .collect();
    TopologyDescription {
        subtopologies,
        global_stores,
    }
}

impl fmt::Display for GlobalStoreDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Sub-topology: {} for global store (will not generate tasks)",
            self.id
        )?;
        writeln!(
            f,
            "    Source: {} (topics: [{}])\n      --> {}",
            self.source, self.topic, self.processor
        )?;
        writeln!(
            f,
            "    Processor: {} (stores: [{}])\n      --> none\n      <-- {}",
            self.processor, self.store, self.source
        )?;
        writeln!(f)
    }
}

fn node_names(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

impl fmt::Display for NodeDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            NodeKindDescription::Source { topics } => write!(
                f,
                "Source: {} (topics: [{}])\n      --> {}",
                self.name,
                topics.join(", "),
                node_names(&self.successors)
            ),
            NodeKindDescription::Processor { stores } => write!(
                f,
                "Processor: {} (stores: [{}])\n      --> {}\n      <-- {}",
                self.name,
                stores.join(", "),
                node_names(&self.successors),
                node_names(&self.predecessors)
            ),
            NodeKindDescription::Sink { topic } => write!(
                f,
                "Sink: {} (topic: {})\n      <-- {}",
                self.name,
                topic,
                node_names(&self.predecessors)
            ),
        }
    }
}

impl fmt::Display for SubtopologyDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Sub-topology: {}", self.id)?;
        for node in &self.nodes {
            writeln!(f, "    {node}")?;
        }
        writeln!(f)
    }
}

impl fmt::Display for TopologyDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Topologies:\n ")?;
        for sub in &self.subtopologies {
            write!(f, "  {sub}")?;
        }
        for global in &self.global_stores {
            write!(f, "  {global}")?;
        }
        Ok(())
    }
}

fn dot_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn mermaid_label(s: &str) -> String {
    s.replace('"', "#quot;")
}

/// Topics and stores in order of first appearance, each with an id.
#[derive(Default)]
struct Interned {
    ids: HashMap<String, usize>,
    order: Vec<String>,
}

impl Interned {
    fn id(&mut self, name: &str) -> usize {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.order.len();
        self.ids.insert(name.to_owned(), id);
        self.order.push(name.to_owned());
        id
    }
}

impl TopologyDescription {
    /// The topology in Graphviz DOT: one cluster per sub-topology; sources
    /// as inverted houses, processors as boxes, sinks as houses, topics as
    /// ellipses and stores as cylinders (dashed edges).
    pub fn to_dot(&self) -> String {
        let mut out = String::from(
            "digraph topology {\n  rankdir=TB;\n  node [fontname=\"Helvetica\", fontsize=10];\n",
        );
        let mut topics = Interned::default();
        let mut stores = Interned::default();
        let mut edges = String::new();
        for sub in &self.subtopologies {
            let _ = writeln!(out, "  subgraph cluster_{} {{", sub.id);
            let _ = writeln!(
                out,
                "    label={};",
                dot_quote(&format!("Sub-topology: {}", sub.id))
            );
            for node in &sub.nodes {
                let name = dot_quote(&node.name);
                let shape = match &node.kind {
                    NodeKindDescription::Source { topics: ts } => {
                        for t in ts {
                            let id = topics.id(t);
                            let _ = writeln!(edges, "  \"topic-{id}\" -> {name};");
                        }
                        "invhouse"
                    }
                    NodeKindDescription::Processor { stores: ss } => {
                        for s in ss {
                            let id = stores.id(s);
                            let _ = writeln!(
                                edges,
                                "  {name} -> \"store-{id}\" [style=dashed, arrowhead=none];"
                            );
                        }
                        "box"
                    }
                    NodeKindDescription::Sink { topic } => {
                        let id = topics.id(topic);
                        let _ = writeln!(edges, "  {name} -> \"topic-{id}\";");
                        "house"
                    }
                };
                let _ = writeln!(out, "    {name} [shape={shape}];");
                for child in &node.successors {
                    let _ = writeln!(edges, "  {name} -> {};", dot_quote(child));
                }
            }
            out.push_str("  }\n");
        }
        for (id, topic) in topics.order.iter().enumerate() {
            let _ = writeln!(
                out,
                "  \"topic-{id}\" [shape=ellipse, label={}];",
                dot_quote(topic)
            );
        }
        for (id, store) in stores.order.iter().enumerate() {
            let _ = writeln!(
                out,
                "  \"store-{id}\" [shape=cylinder, label={}];",
                dot_quote(store)
            );
        }
        out.push_str(&edges);
        out.push_str("}\n");
        out
    }

    /// The topology as a Mermaid flowchart: one subgraph per sub-topology;
    /// topics as parallelograms, stores as cylinders (dotted links).
    pub fn to_mermaid(&self) -> String {
        let mut out = String::from("flowchart TB\n");
        let mut ids: HashMap<&str, usize> = HashMap::new();
        for node in self.subtopologies.iter().flat_map(|s| &s.nodes) {
            let next = ids.len();
            ids.entry(node.name.as_str()).or_insert(next);
        }
        let mut topics = Interned::default();
        let mut stores = Interned::default();
        let mut links = String::new();
        for sub in &self.subtopologies {
            let _ = writeln!(
                out,
                "  subgraph sub{}[\"Sub-topology: {}\"]",
                sub.id, sub.id
            );
            for node in &sub.nodes {
                let id = ids[node.name.as_str()];
                let _ = writeln!(out, "    n{id}[\"{}\"]", mermaid_label(&node.name));
                match &node.kind {
                    NodeKindDescription::Source { topics: ts } => {
                        for t in ts {
                            let _ = writeln!(links, "  t{} --> n{id}", topics.id(t));
                        }
                    }
                    NodeKindDescription::Processor { stores: ss } => {
                        for s in ss {
                            let _ = writeln!(links, "  n{id} -.- s{}", stores.id(s));
                        }
                    }
                    NodeKindDescription::Sink { topic } => {
                        let _ = writeln!(links, "  n{id} --> t{}", topics.id(topic));
                    }
                }
                for child in &node.successors {
                    if let Some(child_id) = ids.get(child.as_str()) {
                        let _ = writeln!(links, "  n{id} --> n{child_id}");
                    }
                }
            }
            out.push_str("  end\n");
        }
        for (id, topic) in topics.order.iter().enumerate() {
            let _ = writeln!(out, "  t{id}[/\"{}\"/]", mermaid_label(topic));
        }
        for (id, store) in stores.order.iter().enumerate() {
            let _ = writeln!(out, "  s{id}[(\"{}\")]", mermaid_label(store));
        }
        out.push_str(&links);
        out
    }
}
