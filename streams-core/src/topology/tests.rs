use super::*;
use crate::processor::{processor_fn, ProcessorContext};
use crate::record::Record;
use crate::serdes::Serdes;

type Ctx<'a> = ProcessorContext<'a, String, String>;

fn pass(ctx: &mut Ctx<'_>, record: Record<String, String>) -> Result<()> {
    ctx.forward(record)
}

/// Adds a pass-through processor of strings.
fn add_pass(t: &mut Topology, name: &str, parents: &[&str]) -> Result<()> {
    t.add_processor(name, || processor_fn(pass), parents)
        .map(|_| ())
}

fn source(t: &mut Topology, name: &str, topic: &str) {
    t.add_source(name, Serdes::string(), Serdes::string(), &[topic])
        .unwrap();
}

#[test]
fn duplicate_names_are_rejected() {
    let mut t = Topology::new();
    source(&mut t, "src", "a");
    let err = t
        .add_source("src", Serdes::string(), Serdes::string(), &["b"])
        .unwrap_err();
    assert!(
        matches!(&err, StreamsError::DuplicateName { kind: "node", name } if name == "src"),
        "{err}"
    );
    let err = add_pass(&mut t, "src", &["src"]).unwrap_err();
    assert!(matches!(err, StreamsError::DuplicateName { .. }), "{err}");
    add_pass(&mut t, "p", &["src"]).unwrap();
    t.add_state_store(
        StoreBuilder::key_value("s", Serdes::string(), Serdes::i64()),
        &["p"],
    )
    .unwrap();
    let err = t
        .add_state_store(
            StoreBuilder::key_value("s", Serdes::string(), Serdes::i64()),
            &[],
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "a state store named 's' is already in the topology; names must be unique"
    );
}

#[test]
fn parents_must_exist_and_have_children() {
    let mut t = Topology::new();
    source(&mut t, "src", "a");
    let err = add_pass(&mut t, "p", &["nope"]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "node 'p' names parent 'nope', which is not in the topology; add 'nope' first"
    );
    let err = add_pass(&mut t, "p", &[]).unwrap_err();
    assert!(matches!(err, StreamsError::NoParents { .. }), "{err}");
    t.add_sink("sink", "out", Serdes::string(), Serdes::string(), &["src"])
        .unwrap();
    let err = add_pass(&mut t, "p", &["sink"]).unwrap_err();
    assert!(
        matches!(
            err,
            StreamsError::InvalidParent {
                reason: "a sink has no children",
                ..
            }
        ),
        "{err}"
    );
    let err = add_pass(&mut t, "p", &["src", "src"]).unwrap_err();
    assert!(matches!(err, StreamsError::InvalidParent { .. }), "{err}");
    // Nothing was added by the failed calls.
    assert_eq!(t.node_names(), ["src", "sink"]);
}

#[test]
fn record_types_must_match_the_parent() {
    let mut t = Topology::new();
    source(&mut t, "src", "a");
    let err = t
        .add_sink("sink", "out", Serdes::string(), Serdes::i64(), &["src"])
        .unwrap_err();
    match err {
        StreamsError::TypeMismatch {
            node,
            parent,
            expected,
            found,
        } => {
            assert_eq!(node, "sink");
            assert_eq!(parent, "src");
            assert_eq!(expected, "alloc::string::String, i64");
            assert_eq!(found, "alloc::string::String, alloc::string::String");
        }
        other => panic!("unexpected error {other}"),
    }
}

#[test]
fn stores_attach_to_known_processors_only() {
    let mut t = Topology::new();
    source(&mut t, "src", "a");
    add_pass(&mut t, "p", &["src"]).unwrap();
    let store = || StoreBuilder::key_value("counts", Serdes::string(), Serdes::i64());
    let err = t.add_state_store(store(), &["ghost"]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "state store 'counts' is attached to processor 'ghost', which is not in the topology; add the processor first"
    );
    let err = t.add_state_store(store(), &["src"]).unwrap_err();
    assert!(
        matches!(err, StreamsError::NotAProcessor { kind: "source", .. }),
        "{err}"
    );
    let err = t
        .connect_processor_and_state_stores("p", &["counts"])
        .unwrap_err();
    assert!(matches!(err, StreamsError::UnknownStore { .. }), "{err}");
    t.add_state_store(store(), &[]).unwrap();
    t.connect_processor_and_state_stores("p", &["counts"])
        .unwrap();
    // Connecting twice is harmless.
    t.connect_processor_and_state_stores("p", &["counts"])
        .unwrap();
    assert_eq!(t.nodes[1].stores, [0]);
    let err = t
        .add_state_store(
            StoreBuilder::key_value("a/b", Serdes::string(), Serdes::i64()),
            &[],
        )
        .unwrap_err();
    assert!(matches!(err, StreamsError::Store(_)), "{err}");
}

#[test]
fn a_topic_is_read_by_one_source() {
    let mut t = Topology::new();
    source(&mut t, "one", "a");
    let err = t
        .add_source("two", Serdes::string(), Serdes::string(), &["b", "a"])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "topic 'a' is already read by source 'one'; source 'two' cannot read it too"
    );
    let err = t
        .add_source("two", Serdes::string(), Serdes::string(), &["b", "b"])
        .unwrap_err();
    assert!(
        matches!(err, StreamsError::TopicAlreadySubscribed { .. }),
        "{err}"
    );
    let err = t
        .add_source("two", Serdes::string(), Serdes::string(), &[])
        .unwrap_err();
    assert!(matches!(err, StreamsError::InvalidTopology { .. }), "{err}");
    assert!(Topology::new().validate().is_err());
    t.validate().unwrap();
}

#[test]
fn sub_topologies_are_connected_components() {
    let mut t = Topology::new();
    // Two sources feeding one processor: one sub-topology.
    source(&mut t, "s1", "a");
    source(&mut t, "s2", "b");
    add_pass(&mut t, "merge", &["s1", "s2"]).unwrap();
    // Two chains sharing a store: one sub-topology.
    source(&mut t, "s3", "c");
    add_pass(&mut t, "p3", &["s3"]).unwrap();
    source(&mut t, "s4", "d");
    add_pass(&mut t, "p4", &["s4"]).unwrap();
    t.add_state_store(
        StoreBuilder::key_value("shared", Serdes::string(), Serdes::string()),
        &["p3", "p4"],
    )
    .unwrap();
    // A lone chain.
    source(&mut t, "s5", "e");
    t.add_sink("k5", "out", Serdes::string(), Serdes::string(), &["s5"])
        .unwrap();
    // A store nobody uses belongs to no sub-topology.
    t.add_state_store(
        StoreBuilder::key_value("unused", Serdes::string(), Serdes::string()),
        &[],
    )
    .unwrap();

    let subs = t.sub_topologies();
    let names = |s: &SubTopology| -> Vec<&str> {
        s.nodes.iter().map(|&n| t.nodes[n].name.as_str()).collect()
    };
    assert_eq!(subs.len(), 3);
    assert_eq!(names(&subs[0]), ["s1", "s2", "merge"]);
    assert_eq!(names(&subs[1]), ["s3", "p3", "s4", "p4"]);
    assert_eq!(subs[1].stores, [0]);
    assert_eq!(names(&subs[2]), ["s5", "k5"]);
    assert!(subs.iter().all(|s| !s.stores.contains(&1)));
    assert_eq!(subs.iter().map(|s| s.id).collect::<Vec<_>>(), [0, 1, 2]);
}

/// The word count of Kafka's examples, built with the Processor API and
/// Kafka's generated names.
pub(crate) fn word_count_names() -> Topology {
    let mut t = Topology::new();
    t.add_source(
        "KSTREAM-SOURCE-0000000000",
        Serdes::string(),
        Serdes::string(),
        &["text-lines"],
    )
    .unwrap();
    add_pass(
        &mut t,
        "KSTREAM-FLATMAPVALUES-0000000001",
        &["KSTREAM-SOURCE-0000000000"],
    )
    .unwrap();
    add_pass(
        &mut t,
        "KSTREAM-AGGREGATE-0000000002",
        &["KSTREAM-FLATMAPVALUES-0000000001"],
    )
    .unwrap();
    t.add_state_store(
        StoreBuilder::key_value("counts", Serdes::string(), Serdes::string()),
        &["KSTREAM-AGGREGATE-0000000002"],
    )
    .unwrap();
    t.add_sink(
        "KSTREAM-SINK-0000000003",
        "word-counts",
        Serdes::string(),
        Serdes::string(),
        &["KSTREAM-AGGREGATE-0000000002"],
    )
    .unwrap();
    t
}

#[test]
fn describe_prints_kafka_text() {
    let expected = "Topologies:\n   Sub-topology: 0\n    \
        Source: KSTREAM-SOURCE-0000000000 (topics: [text-lines])\n      \
        --> KSTREAM-FLATMAPVALUES-0000000001\n    \
        Processor: KSTREAM-FLATMAPVALUES-0000000001 (stores: [])\n      \
        --> KSTREAM-AGGREGATE-0000000002\n      \
        <-- KSTREAM-SOURCE-0000000000\n    \
        Processor: KSTREAM-AGGREGATE-0000000002 (stores: [counts])\n      \
        --> KSTREAM-SINK-0000000003\n      \
        <-- KSTREAM-FLATMAPVALUES-0000000001\n    \
        Sink: KSTREAM-SINK-0000000003 (topic: word-counts)\n      \
        <-- KSTREAM-AGGREGATE-0000000002\n\n";
    assert_eq!(word_count_names().describe().to_string(), expected);
}

#[test]
fn describe_orders_nodes_by_reach_then_name_and_lists_every_sub_topology() {
    let mut t = Topology::new();
    source(&mut t, "src", "in");
    // "b" reaches two nodes, "a" one: "b" comes first despite its name.
    add_pass(&mut t, "a", &["src"]).unwrap();
    add_pass(&mut t, "b", &["src"]).unwrap();
    t.add_sink(
        "b-sink",
        "out-b",
        Serdes::string(),
        Serdes::string(),
        &["b"],
    )
    .unwrap();
    source(&mut t, "other", "in2");
    t.add_sink(
        "other-sink",
        "out2",
        Serdes::string(),
        Serdes::string(),
        &["other"],
    )
    .unwrap();
    let expected = "Topologies:\n   Sub-topology: 0\n    \
        Source: src (topics: [in])\n      --> b, a\n    \
        Processor: b (stores: [])\n      --> b-sink\n      <-- src\n    \
        Processor: a (stores: [])\n      --> none\n      <-- src\n    \
        Sink: b-sink (topic: out-b)\n      <-- b\n\n  \
        Sub-topology: 1\n    \
        Source: other (topics: [in2])\n      --> other-sink\n    \
        Sink: other-sink (topic: out2)\n      <-- other\n\n";
    assert_eq!(t.describe().to_string(), expected);
    let d = t.describe();
    assert_eq!(d.subtopologies.len(), 2);
    assert_eq!(d.subtopologies[0].nodes[0].successors, ["b", "a"]);
}

#[test]
fn dot_and_mermaid_draw_every_node_topic_and_store() {
    let t = word_count_names();
    let dot = t.to_dot();
    assert!(dot.starts_with("digraph topology {\n"), "{dot}");
    assert!(dot.contains("subgraph cluster_0 {"), "{dot}");
    assert!(
        dot.contains("\"KSTREAM-SOURCE-0000000000\" [shape=invhouse];"),
        "{dot}"
    );
    assert!(
        dot.contains("\"KSTREAM-SINK-0000000003\" [shape=house];"),
        "{dot}"
    );
    assert!(
        dot.contains("\"topic-0\" [shape=ellipse, label=\"text-lines\"];"),
        "{dot}"
    );
    assert!(
        dot.contains("\"store-0\" [shape=cylinder, label=\"counts\"];"),
        "{dot}"
    );
    assert!(
        dot.contains("\"topic-0\" -> \"KSTREAM-SOURCE-0000000000\";"),
        "{dot}"
    );
    assert!(
        dot.contains("\"KSTREAM-SOURCE-0000000000\" -> \"KSTREAM-FLATMAPVALUES-0000000001\";"),
        "{dot}"
    );
    assert!(
        dot.contains(
            "\"KSTREAM-AGGREGATE-0000000002\" -> \"store-0\" [style=dashed, arrowhead=none];"
        ),
        "{dot}"
    );
    assert!(
        dot.contains("\"KSTREAM-SINK-0000000003\" -> \"topic-1\";"),
        "{dot}"
    );
    assert!(dot.ends_with("}\n"));

    let mermaid = t.to_mermaid();
    let expected = "flowchart TB\n  subgraph sub0[\"Sub-topology: 0\"]\n    \
        n0[\"KSTREAM-SOURCE-0000000000\"]\n    \
        n1[\"KSTREAM-FLATMAPVALUES-0000000001\"]\n    \
        n2[\"KSTREAM-AGGREGATE-0000000002\"]\n    \
        n3[\"KSTREAM-SINK-0000000003\"]\n  end\n  \
        t0[/\"text-lines\"/]\n  t1[/\"word-counts\"/]\n  s0[(\"counts\")]\n  \
        t0 --> n0\n  n0 --> n1\n  n1 --> n2\n  n2 -.- s0\n  n2 --> n3\n  n3 --> t1\n";
    assert_eq!(mermaid, expected);
}

#[test]
fn dot_escapes_quotes() {
    let mut t = Topology::new();
    source(&mut t, "say \"hi\"", "in");
    assert!(t.to_dot().contains("\"say \\\"hi\\\"\" [shape=invhouse];"));
    assert!(t.to_mermaid().contains("n0[\"say #quot;hi#quot;\"]"));
}
