//! Cogroups through the test driver: the inputs and expected outputs of
//! Kafka Streams' `CogroupedKStreamImplTest`,
//! `TimeWindowedCogroupedKStreamImplTest`,
//! `SessionWindowedCogroupedKStreamImplTest` and
//! `SlidingWindowedCogroupedKStreamImplTest` (topologies, names,
//! repartitions, aggregates), and the record cache.

// The tests return streams-core's error, whose size is that crate's choice.
#![allow(clippy::result_large_err)]
// The aggregators are `Fn(&K, &V, VOut)` over `String` values: they take
// `&String`, not `&str`.
#![allow(clippy::ptr_arg)]

use std::time::Duration;

use streams_core::{
    Result, Serdes, StreamsConfig, TestDriverConfig, TestOutputTopic, TestRecord,
    TopologyTestDriver, Window, Windowed,
};
use streams_dsl::{
    Consumed, Grouped, KGroupedStream, KStream, Materialized, Named, Produced, SessionWindows,
    SlidingWindows, StreamsBuilder, TimeWindows,
};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn s(v: &str) -> String {
    v.to_owned()
}

fn strings() -> Consumed<String, String> {
    Consumed::with(Serdes::string(), Serdes::string())
}

fn string_grouping() -> Grouped<String, String> {
    Grouped::with(Serdes::string(), Serdes::string())
}

/// `topic` grouped by key.
fn grouped(builder: &StreamsBuilder, topic: &str) -> KGroupedStream<String, String> {
    builder
        .stream::<String, String>(topic, strings())
        .group_by_key(string_grouping())
}

/// `stream` re-keyed by its value (Kafka's `map((k, v) -> (v, k))`), then
/// grouped by key: its aggregations repartition.
fn rekeyed(
    stream: &KStream<String, String>,
    grouping: Grouped<String, String>,
) -> KGroupedStream<String, String> {
    stream
        .map(|k, v| (v.clone(), k.cloned().unwrap_or_default()))
        .group_by_key(grouping)
}

/// Kafka's `STRING_AGGREGATOR`: `aggregate + value`.
fn concat(_: &String, v: &String, agg: String) -> String {
    agg + v
}

/// Kafka's `MockAggregator.TOSTRING_ADDER`: `aggregate + "+" + value`.
fn adder(_: &String, v: &String, agg: String) -> String {
    format!("{agg}+{v}")
}

/// Kafka's `MockAggregator.TOSTRING_REMOVER`: `aggregate + "-" + value`.
fn remover(_: &String, v: &String, agg: String) -> String {
    format!("{agg}-{v}")
}

/// Kafka's `MockInitializer.STRING_INIT`.
fn zero() -> String {
    s("0")
}

fn string_store() -> Materialized<String, String> {
    Materialized::new().with_value_serde(Serdes::string())
}

/// The description with each `-->` and `<--` list sorted: Kafka orders
/// them with a comparator over sub-graph sizes that it updates while the
/// lists are being filled, so their order there is an accident of hashing.
fn normalized(text: &str) -> String {
    text.lines()
        .map(|line| {
            for arrow in ["--> ", "<-- "] {
                if let Some(at) = line.find(arrow) {
                    let (head, names) = line.split_at(at + arrow.len());
                    let mut names: Vec<&str> = names.split(", ").collect();
                    names.sort_unstable();
                    return format!("{head}{}", names.join(", "));
                }
            }
            line.to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn assert_describes(builder: StreamsBuilder, expected: &str) -> Result<()> {
    let text = builder.build()?.describe().to_string();
    assert_eq!(normalized(&text), normalized(expected), "\n{text}");
    Ok(())
}

/// `(key, value, timestamp)` of every record on `out`.
fn read(out: &TestOutputTopic<String, String>) -> Result<Vec<(String, Option<String>, i64)>> {
    Ok(out
        .read_records_to_list()?
        .into_iter()
        .map(|r| (r.key.unwrap_or_default(), r.value, r.timestamp))
        .collect())
}

/// `(key, value, timestamp)` of every record on a windowed `out`: the
/// window dropped, as Kafka's tests compare them.
fn read_windowed(
    out: &TestOutputTopic<Windowed<String>, String>,
) -> Result<Vec<(String, Option<String>, i64)>> {
    Ok(out
        .read_records_to_list()?
        .into_iter()
        .map(|r| {
            (
                r.key.map(|k| k.key).unwrap_or_default(),
                r.value,
                r.timestamp,
            )
        })
        .collect())
}

fn row(key: &str, value: &str, timestamp: i64) -> (String, Option<String>, i64) {
    (s(key), Some(s(value)), timestamp)
}

fn tombstone(key: &str, timestamp: i64) -> (String, Option<String>, i64) {
    (s(key), None, timestamp)
}

// ---- topologies and names (CogroupedKStreamImplTest) ----

#[test]
fn processors_are_named_after_named_and_the_store_after_materialized() -> Result<()> {
    let builder = StreamsBuilder::new();
    let one = grouped(&builder, "one");
    let two = grouped(&builder, "two");
    one.cogroup(concat)
        .cogroup(&two, concat)
        .aggregate_named(
            String::new,
            Named::as_("test"),
            Materialized::as_("store").with_value_serde(Serdes::string()),
        )
        .to_stream()
        .to("output", Produced::with(Serdes::string(), Serdes::string()));
    assert_describes(
        builder,
        "Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [one])
      --> test-cogroup-agg-0
    Source: KSTREAM-SOURCE-0000000001 (topics: [two])
      --> test-cogroup-agg-1
    Processor: test-cogroup-agg-0 (stores: [store])
      --> test-cogroup-merge
      <-- KSTREAM-SOURCE-0000000000
    Processor: test-cogroup-agg-1 (stores: [store])
      --> test-cogroup-merge
      <-- KSTREAM-SOURCE-0000000001
    Processor: test-cogroup-merge (stores: [])
      --> KTABLE-TOSTREAM-0000000005
      <-- test-cogroup-agg-0, test-cogroup-agg-1
    Processor: KTABLE-TOSTREAM-0000000005 (stores: [])
      --> KSTREAM-SINK-0000000006
      <-- test-cogroup-merge
    Sink: KSTREAM-SINK-0000000006 (topic: output)
      <-- KTABLE-TOSTREAM-0000000005

",
    )
}

#[test]
fn the_grouped_name_names_the_repartition_topic() -> Result<()> {
    let builder = StreamsBuilder::new();
    let one = builder.stream::<String, String>("one", strings());
    let two = grouped(&builder, "two");
    let one = rekeyed(&one, string_grouping().with_name("repartition-test"));
    one.cogroup(concat)
        .cogroup(&two, concat)
        .aggregate(String::new, string_store())
        .to_stream()
        .to("output", Produced::with(Serdes::string(), Serdes::string()));
    assert_describes(
        builder,
        "Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [one])
      --> KSTREAM-MAP-0000000002
    Processor: KSTREAM-MAP-0000000002 (stores: [])
      --> repartition-test-repartition-filter
      <-- KSTREAM-SOURCE-0000000000
    Processor: repartition-test-repartition-filter (stores: [])
      --> repartition-test-repartition-sink
      <-- KSTREAM-MAP-0000000002
    Sink: repartition-test-repartition-sink (topic: repartition-test-repartition)
      <-- repartition-test-repartition-filter

  Sub-topology: 1
    Source: KSTREAM-SOURCE-0000000001 (topics: [two])
      --> COGROUPKSTREAM-AGGREGATE-0000000008
    Source: repartition-test-repartition-source (topics: [repartition-test-repartition])
      --> COGROUPKSTREAM-AGGREGATE-0000000007
    Processor: COGROUPKSTREAM-AGGREGATE-0000000007 (stores: [COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000003])
      --> COGROUPKSTREAM-MERGE-0000000009
      <-- repartition-test-repartition-source
    Processor: COGROUPKSTREAM-AGGREGATE-0000000008 (stores: [COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000003])
      --> COGROUPKSTREAM-MERGE-0000000009
      <-- KSTREAM-SOURCE-0000000001
    Processor: COGROUPKSTREAM-MERGE-0000000009 (stores: [])
      --> KTABLE-TOSTREAM-0000000010
      <-- COGROUPKSTREAM-AGGREGATE-0000000007, COGROUPKSTREAM-AGGREGATE-0000000008
    Processor: KTABLE-TOSTREAM-0000000010 (stores: [])
      --> KSTREAM-SINK-0000000011
      <-- COGROUPKSTREAM-MERGE-0000000009
    Sink: KSTREAM-SINK-0000000011 (topic: output)
      <-- KTABLE-TOSTREAM-0000000010

",
    )
}

#[test]
fn an_input_whose_key_changed_is_repartitioned_through_the_store_name() -> Result<()> {
    let builder = StreamsBuilder::new();
    let one = builder.stream::<String, String>("one", strings());
    let two = grouped(&builder, "two");
    let one = rekeyed(&one, string_grouping());
    one.cogroup(concat)
        .cogroup(&two, concat)
        .aggregate_named(
            String::new,
            Named::as_("test"),
            Materialized::as_("store").with_value_serde(Serdes::string()),
        )
        .to_stream()
        .to("output", Produced::with(Serdes::string(), Serdes::string()));
    assert_describes(
        builder,
        "Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [one])
      --> KSTREAM-MAP-0000000002
    Processor: KSTREAM-MAP-0000000002 (stores: [])
      --> store-repartition-filter
      <-- KSTREAM-SOURCE-0000000000
    Processor: store-repartition-filter (stores: [])
      --> store-repartition-sink
      <-- KSTREAM-MAP-0000000002
    Sink: store-repartition-sink (topic: store-repartition)
      <-- store-repartition-filter

  Sub-topology: 1
    Source: KSTREAM-SOURCE-0000000001 (topics: [two])
      --> test-cogroup-agg-1
    Source: store-repartition-source (topics: [store-repartition])
      --> test-cogroup-agg-0
    Processor: test-cogroup-agg-0 (stores: [store])
      --> test-cogroup-merge
      <-- store-repartition-source
    Processor: test-cogroup-agg-1 (stores: [store])
      --> test-cogroup-merge
      <-- KSTREAM-SOURCE-0000000001
    Processor: test-cogroup-merge (stores: [])
      --> KTABLE-TOSTREAM-0000000009
      <-- test-cogroup-agg-0, test-cogroup-agg-1
    Processor: KTABLE-TOSTREAM-0000000009 (stores: [])
      --> KSTREAM-SINK-0000000010
      <-- test-cogroup-merge
    Sink: KSTREAM-SINK-0000000010 (topic: output)
      <-- KTABLE-TOSTREAM-0000000009

",
    )
}

#[test]
fn a_grouped_stream_in_two_cogroups_is_repartitioned_for_each() -> Result<()> {
    let builder = StreamsBuilder::new();
    let one = builder.stream::<String, String>("one", strings());
    let two = grouped(&builder, "two");
    let one = rekeyed(&one, string_grouping());
    let cogrouped_two = one
        .cogroup(concat)
        .cogroup(&two, concat)
        .aggregate(String::new, string_store());
    let cogrouped_one = one
        .cogroup(concat)
        .cogroup(&two, concat)
        .aggregate(String::new, string_store());
    cogrouped_one
        .to_stream()
        .to("output", Produced::with(Serdes::string(), Serdes::string()));
    cogrouped_two.to_stream().to(
        "OUTPUT2",
        Produced::with(Serdes::string(), Serdes::string()),
    );
    assert_describes(
        builder,
        "Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [one])
      --> KSTREAM-MAP-0000000002
    Processor: KSTREAM-MAP-0000000002 (stores: [])
      --> COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000010-repartition-filter, COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000003-repartition-filter
      <-- KSTREAM-SOURCE-0000000000
    Processor: COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000003-repartition-filter (stores: [])
      --> COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000003-repartition-sink
      <-- KSTREAM-MAP-0000000002
    Processor: COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000010-repartition-filter (stores: [])
      --> COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000010-repartition-sink
      <-- KSTREAM-MAP-0000000002
    Sink: COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000003-repartition-sink (topic: COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000003-repartition)
      <-- COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000003-repartition-filter
    Sink: COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000010-repartition-sink (topic: COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000010-repartition)
      <-- COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000010-repartition-filter

  Sub-topology: 1
    Source: KSTREAM-SOURCE-0000000001 (topics: [two])
      --> COGROUPKSTREAM-AGGREGATE-0000000008, COGROUPKSTREAM-AGGREGATE-0000000015
    Source: COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000003-repartition-source (topics: [COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000003-repartition])
      --> COGROUPKSTREAM-AGGREGATE-0000000007
    Source: COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000010-repartition-source (topics: [COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000010-repartition])
      --> COGROUPKSTREAM-AGGREGATE-0000000014
    Processor: COGROUPKSTREAM-AGGREGATE-0000000007 (stores: [COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000003])
      --> COGROUPKSTREAM-MERGE-0000000009
      <-- COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000003-repartition-source
    Processor: COGROUPKSTREAM-AGGREGATE-0000000008 (stores: [COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000003])
      --> COGROUPKSTREAM-MERGE-0000000009
      <-- KSTREAM-SOURCE-0000000001
    Processor: COGROUPKSTREAM-AGGREGATE-0000000014 (stores: [COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000010])
      --> COGROUPKSTREAM-MERGE-0000000016
      <-- COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000010-repartition-source
    Processor: COGROUPKSTREAM-AGGREGATE-0000000015 (stores: [COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000010])
      --> COGROUPKSTREAM-MERGE-0000000016
      <-- KSTREAM-SOURCE-0000000001
    Processor: COGROUPKSTREAM-MERGE-0000000009 (stores: [])
      --> KTABLE-TOSTREAM-0000000019
      <-- COGROUPKSTREAM-AGGREGATE-0000000007, COGROUPKSTREAM-AGGREGATE-0000000008
    Processor: COGROUPKSTREAM-MERGE-0000000016 (stores: [])
      --> KTABLE-TOSTREAM-0000000017
      <-- COGROUPKSTREAM-AGGREGATE-0000000014, COGROUPKSTREAM-AGGREGATE-0000000015
    Processor: KTABLE-TOSTREAM-0000000017 (stores: [])
      --> KSTREAM-SINK-0000000018
      <-- COGROUPKSTREAM-MERGE-0000000016
    Processor: KTABLE-TOSTREAM-0000000019 (stores: [])
      --> KSTREAM-SINK-0000000020
      <-- COGROUPKSTREAM-MERGE-0000000009
    Sink: KSTREAM-SINK-0000000018 (topic: output)
      <-- KTABLE-TOSTREAM-0000000017
    Sink: KSTREAM-SINK-0000000020 (topic: OUTPUT2)
      <-- KTABLE-TOSTREAM-0000000019

",
    )
}

#[test]
fn a_grouped_stream_in_different_cogroups_is_repartitioned_for_each() -> Result<()> {
    let builder = StreamsBuilder::new();
    let one = builder.stream::<String, String>("one", strings());
    let two = grouped(&builder, "two");
    let three = grouped(&builder, "three");
    let one = rekeyed(&one, string_grouping());
    one.cogroup(concat)
        .cogroup(&three, concat)
        .aggregate(String::new, string_store());
    one.cogroup(concat)
        .cogroup(&two, concat)
        .aggregate(String::new, string_store());
    assert_describes(
        builder,
        "Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [one])
      --> KSTREAM-MAP-0000000003
    Processor: KSTREAM-MAP-0000000003 (stores: [])
      --> COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000004-repartition-filter, COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000011-repartition-filter
      <-- KSTREAM-SOURCE-0000000000
    Processor: COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000004-repartition-filter (stores: [])
      --> COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000004-repartition-sink
      <-- KSTREAM-MAP-0000000003
    Processor: COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000011-repartition-filter (stores: [])
      --> COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000011-repartition-sink
      <-- KSTREAM-MAP-0000000003
    Sink: COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000004-repartition-sink (topic: COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000004-repartition)
      <-- COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000004-repartition-filter
    Sink: COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000011-repartition-sink (topic: COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000011-repartition)
      <-- COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000011-repartition-filter

  Sub-topology: 1
    Source: COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000011-repartition-source (topics: [COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000011-repartition])
      --> COGROUPKSTREAM-AGGREGATE-0000000015
    Source: KSTREAM-SOURCE-0000000001 (topics: [two])
      --> COGROUPKSTREAM-AGGREGATE-0000000016
    Processor: COGROUPKSTREAM-AGGREGATE-0000000015 (stores: [COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000011])
      --> COGROUPKSTREAM-MERGE-0000000017
      <-- COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000011-repartition-source
    Processor: COGROUPKSTREAM-AGGREGATE-0000000016 (stores: [COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000011])
      --> COGROUPKSTREAM-MERGE-0000000017
      <-- KSTREAM-SOURCE-0000000001
    Processor: COGROUPKSTREAM-MERGE-0000000017 (stores: [])
      --> none
      <-- COGROUPKSTREAM-AGGREGATE-0000000015, COGROUPKSTREAM-AGGREGATE-0000000016

  Sub-topology: 2
    Source: COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000004-repartition-source (topics: [COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000004-repartition])
      --> COGROUPKSTREAM-AGGREGATE-0000000008
    Source: KSTREAM-SOURCE-0000000002 (topics: [three])
      --> COGROUPKSTREAM-AGGREGATE-0000000009
    Processor: COGROUPKSTREAM-AGGREGATE-0000000008 (stores: [COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000004])
      --> COGROUPKSTREAM-MERGE-0000000010
      <-- COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000004-repartition-source
    Processor: COGROUPKSTREAM-AGGREGATE-0000000009 (stores: [COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000004])
      --> COGROUPKSTREAM-MERGE-0000000010
      <-- KSTREAM-SOURCE-0000000002
    Processor: COGROUPKSTREAM-MERGE-0000000010 (stores: [])
      --> none
      <-- COGROUPKSTREAM-AGGREGATE-0000000008, COGROUPKSTREAM-AGGREGATE-0000000009

",
    )
}

#[test]
fn a_cogrouped_stream_also_aggregated_alone_is_repartitioned_for_each() -> Result<()> {
    let builder = StreamsBuilder::new();
    let one = builder.stream::<String, String>("one", strings());
    let two = grouped(&builder, "two");
    let one = rekeyed(&one, string_grouping());
    one.cogroup(concat)
        .cogroup(&two, concat)
        .aggregate(String::new, string_store());
    one.aggregate(String::new, concat, string_store());
    assert_describes(
        builder,
        "Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [one])
      --> KSTREAM-MAP-0000000002
    Processor: KSTREAM-MAP-0000000002 (stores: [])
      --> COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000003-repartition-filter, KSTREAM-FILTER-0000000013
      <-- KSTREAM-SOURCE-0000000000
    Processor: COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000003-repartition-filter (stores: [])
      --> COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000003-repartition-sink
      <-- KSTREAM-MAP-0000000002
    Processor: KSTREAM-FILTER-0000000013 (stores: [])
      --> KSTREAM-SINK-0000000012
      <-- KSTREAM-MAP-0000000002
    Sink: COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000003-repartition-sink (topic: COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000003-repartition)
      <-- COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000003-repartition-filter
    Sink: KSTREAM-SINK-0000000012 (topic: KSTREAM-AGGREGATE-STATE-STORE-0000000010-repartition)
      <-- KSTREAM-FILTER-0000000013

  Sub-topology: 1
    Source: COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000003-repartition-source (topics: [COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000003-repartition])
      --> COGROUPKSTREAM-AGGREGATE-0000000007
    Source: KSTREAM-SOURCE-0000000001 (topics: [two])
      --> COGROUPKSTREAM-AGGREGATE-0000000008
    Processor: COGROUPKSTREAM-AGGREGATE-0000000007 (stores: [COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000003])
      --> COGROUPKSTREAM-MERGE-0000000009
      <-- COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000003-repartition-source
    Processor: COGROUPKSTREAM-AGGREGATE-0000000008 (stores: [COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000003])
      --> COGROUPKSTREAM-MERGE-0000000009
      <-- KSTREAM-SOURCE-0000000001
    Processor: COGROUPKSTREAM-MERGE-0000000009 (stores: [])
      --> none
      <-- COGROUPKSTREAM-AGGREGATE-0000000007, COGROUPKSTREAM-AGGREGATE-0000000008

  Sub-topology: 2
    Source: KSTREAM-SOURCE-0000000014 (topics: [KSTREAM-AGGREGATE-STATE-STORE-0000000010-repartition])
      --> KSTREAM-AGGREGATE-0000000011
    Processor: KSTREAM-AGGREGATE-0000000011 (stores: [KSTREAM-AGGREGATE-STATE-STORE-0000000010])
      --> none
      <-- KSTREAM-SOURCE-0000000014

",
    )
}

#[test]
fn a_cogroup_aggregated_twice_reads_one_repartition() -> Result<()> {
    let builder = StreamsBuilder::new();
    let one = builder.stream::<String, String>("one", strings());
    let one = rekeyed(&one, string_grouping().with_name("foo"));
    let cogrouped = one.cogroup(concat);
    cogrouped.aggregate(String::new, string_store());
    cogrouped.aggregate(String::new, string_store());
    assert_describes(
        builder,
        "Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [one])
      --> KSTREAM-MAP-0000000001
    Processor: KSTREAM-MAP-0000000001 (stores: [])
      --> foo-repartition-filter
      <-- KSTREAM-SOURCE-0000000000
    Processor: foo-repartition-filter (stores: [])
      --> foo-repartition-sink
      <-- KSTREAM-MAP-0000000001
    Sink: foo-repartition-sink (topic: foo-repartition)
      <-- foo-repartition-filter

  Sub-topology: 1
    Source: foo-repartition-source (topics: [foo-repartition])
      --> COGROUPKSTREAM-AGGREGATE-0000000006, COGROUPKSTREAM-AGGREGATE-0000000012
    Processor: COGROUPKSTREAM-AGGREGATE-0000000006 (stores: [COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000002])
      --> COGROUPKSTREAM-MERGE-0000000007
      <-- foo-repartition-source
    Processor: COGROUPKSTREAM-AGGREGATE-0000000012 (stores: [COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000008])
      --> COGROUPKSTREAM-MERGE-0000000013
      <-- foo-repartition-source
    Processor: COGROUPKSTREAM-MERGE-0000000007 (stores: [])
      --> none
      <-- COGROUPKSTREAM-AGGREGATE-0000000006
    Processor: COGROUPKSTREAM-MERGE-0000000013 (stores: [])
      --> none
      <-- COGROUPKSTREAM-AGGREGATE-0000000012

",
    )
}

/// Two inputs that repartition with no `Grouped` name would both write
/// `<store>-repartition`: the build fails on the duplicate, as Kafka's.
#[test]
fn two_unnamed_repartitions_fail_the_build() {
    let builder = StreamsBuilder::new();
    let one = builder.stream::<String, String>("one", strings());
    let two = builder.stream::<String, String>("two", strings());
    let (one, two) = (
        rekeyed(&one, string_grouping()),
        rekeyed(&two, string_grouping()),
    );
    one.cogroup(concat).cogroup(&two, concat).aggregate(
        String::new,
        Materialized::as_("store").with_value_serde(Serdes::string()),
    );
    let error = builder.build().err().map(|e| e.to_string());
    assert!(
        error
            .as_deref()
            .is_some_and(|e| e.contains("store-repartition")),
        "{error:?}"
    );
}

#[test]
fn windowed_cogroups_are_named_after_named() -> Result<()> {
    let expected = "Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [topic])
      --> foo-cogroup-agg-0
    Processor: foo-cogroup-agg-0 (stores: [COGROUPKSTREAM-AGGREGATE-STATE-STORE-0000000001])
      --> foo-cogroup-merge
      <-- KSTREAM-SOURCE-0000000000
    Processor: foo-cogroup-merge (stores: [])
      --> none
      <-- foo-cogroup-agg-0

";
    let builder = StreamsBuilder::new();
    grouped(&builder, "topic")
        .cogroup(adder)
        .windowed_by(TimeWindows::of_size_with_no_grace(ms(500)))
        .aggregate_named(zero, Named::as_("foo"), string_store());
    assert_describes(builder, expected)?;
    let builder = StreamsBuilder::new();
    grouped(&builder, "topic")
        .cogroup(adder)
        .windowed_by_session(SessionWindows::of_inactivity_gap_with_no_grace(ms(1)))
        .aggregate_named(
            zero,
            |_, a, b| format!("{a}+{b}"),
            Named::as_("foo"),
            string_store(),
        );
    assert_describes(builder, expected)?;
    let builder = StreamsBuilder::new();
    grouped(&builder, "topic")
        .cogroup(adder)
        .windowed_by_sliding(SlidingWindows::of_time_difference_and_grace(
            ms(500),
            ms(2000),
        ))
        .aggregate_named(zero, Named::as_("foo"), string_store());
    assert_describes(builder, expected)
}

// ---- aggregates (CogroupedKStreamImplTest) ----

/// `inputs` cogrouped with `concat` from `""` (Kafka's `STRING_AGGREGATOR`
/// and `STRING_INITIALIZER`), to `output`.
fn concatenated(topics: &[&str]) -> Result<TopologyTestDriver> {
    let builder = StreamsBuilder::new();
    let mut inputs = topics.iter().map(|t| grouped(&builder, t));
    let Some(first) = inputs.next() else {
        return Err(streams_core::StreamsError::Internal(s("no input")));
    };
    let mut cogrouped = first.cogroup(concat);
    for input in inputs {
        cogrouped = cogrouped.cogroup(&input, concat);
    }
    cogrouped
        .aggregate(String::new, string_store())
        .to_stream()
        .to("output", Produced::with(Serdes::string(), Serdes::string()));
    TopologyTestDriver::new(builder.build()?)
}

fn output(driver: &TopologyTestDriver) -> TestOutputTopic<String, String> {
    driver.create_output_topic("output", Serdes::string(), Serdes::string())
}

#[test]
fn a_single_stream_cogroups_as_an_aggregate() -> Result<()> {
    let driver = concatenated(&["one"])?;
    let one = driver.create_input_topic("one", Serdes::string(), Serdes::string());
    for (k, v) in [("k1", "A"), ("k2", "B"), ("k2", "B"), ("k1", "A")] {
        one.pipe_input_with_timestamp(s(k), s(v), 0)?;
    }
    assert_eq!(
        read(&output(&driver))?,
        [
            row("k1", "A", 0),
            row("k2", "B", 0),
            row("k2", "BB", 0),
            row("k1", "AA", 0)
        ]
    );
    Ok(())
}

#[test]
fn null_values_and_keys_are_skipped() -> Result<()> {
    let builder = StreamsBuilder::new();
    let metrics = builder.metrics();
    grouped(&builder, "one")
        .cogroup(concat)
        .aggregate(String::new, string_store())
        .to_stream()
        .to("output", Produced::with(Serdes::string(), Serdes::string()));
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let one = driver.create_input_topic("one", Serdes::string(), Serdes::string());
    one.pipe_input_with_timestamp(s("k1"), s("A"), 0)?;
    one.pipe_input_with_timestamp(s("k2"), s("B"), 0)?;
    one.pipe_record(TestRecord::from_parts(Some(s("k2")), None, 0))?;
    one.pipe_record(TestRecord::from_parts(None, Some(s("C")), 0))?;
    one.pipe_input_with_timestamp(s("k2"), s("B"), 0)?;
    one.pipe_input_with_timestamp(s("k1"), s("A"), 0)?;
    assert_eq!(
        read(&output(&driver))?,
        [
            row("k1", "A", 0),
            row("k2", "B", 0),
            row("k2", "BB", 0),
            row("k1", "AA", 0)
        ]
    );
    assert_eq!(metrics.dropped_records(), 2);
    Ok(())
}

#[test]
fn two_streams_with_distinct_keys() -> Result<()> {
    let driver = concatenated(&["one", "two"])?;
    let one = driver.create_input_topic("one", Serdes::string(), Serdes::string());
    let two = driver.create_input_topic("two", Serdes::string(), Serdes::string());
    for t in [0, 1, 10, 100] {
        one.pipe_input_with_timestamp(s("k1"), s("A"), t)?;
    }
    for t in [100, 200, 1, 500, 500, 100] {
        two.pipe_input_with_timestamp(s("k2"), s("B"), t)?;
    }
    assert_eq!(
        read(&output(&driver))?,
        [
            row("k1", "A", 0),
            row("k1", "AA", 1),
            row("k1", "AAA", 10),
            row("k1", "AAAA", 100),
            row("k2", "B", 100),
            row("k2", "BB", 200),
            row("k2", "BBB", 200),
            row("k2", "BBBB", 500),
            row("k2", "BBBBB", 500),
            row("k2", "BBBBBB", 500),
        ]
    );
    Ok(())
}

#[test]
fn two_streams_with_shared_keys() -> Result<()> {
    let driver = concatenated(&["one", "two"])?;
    let one = driver.create_input_topic("one", Serdes::string(), Serdes::string());
    let two = driver.create_input_topic("two", Serdes::string(), Serdes::string());
    for (k, t) in [("k1", 0), ("k2", 1), ("k1", 10), ("k2", 100)] {
        one.pipe_input_with_timestamp(s(k), s("A"), t)?;
    }
    for (k, t) in [
        ("k2", 100),
        ("k2", 200),
        ("k1", 1),
        ("k2", 500),
        ("k1", 500),
        ("k2", 500),
        ("k3", 500),
        ("k2", 100),
    ] {
        two.pipe_input_with_timestamp(s(k), s("B"), t)?;
    }
    assert_eq!(
        read(&output(&driver))?,
        [
            row("k1", "A", 0),
            row("k2", "A", 1),
            row("k1", "AA", 10),
            row("k2", "AA", 100),
            row("k2", "AAB", 100),
            row("k2", "AABB", 200),
            row("k1", "AAB", 10),
            row("k2", "AABBB", 500),
            row("k1", "AABB", 500),
            row("k2", "AABBBB", 500),
            row("k3", "B", 500),
            row("k2", "AABBBBB", 500),
        ]
    );
    Ok(())
}

/// The sums of `shouldAllowDifferentOutputTypeInCoGroup` and
/// `shouldCoGroupStreamsWithDifferentInputTypes`: the second input's
/// values are `text` strings or `i32`s.
fn assert_sums(
    driver: &TopologyTestDriver,
    pipe_two: impl Fn(&str, i32, i64) -> Result<()>,
) -> Result<()> {
    let one = driver.create_input_topic("one", Serdes::string(), Serdes::string());
    for (k, t) in [("k1", 0), ("k2", 1), ("k1", 10), ("k2", 100)] {
        one.pipe_input_with_timestamp(s(k), s("1"), t)?;
    }
    for (k, v, t) in [
        ("k2", 2, 100),
        ("k2", 2, 200),
        ("k1", 2, 1),
        ("k2", 2, 500),
        ("k1", 2, 500),
        ("k2", 3, 500),
        ("k3", 2, 500),
        ("k2", 2, 100),
    ] {
        pipe_two(k, v, t)?;
    }
    let out = driver.create_output_topic("output", Serdes::string(), Serdes::i32());
    let got: Vec<_> = out
        .read_records_to_list()?
        .into_iter()
        .map(|r| (r.key.unwrap_or_default(), r.value, r.timestamp))
        .collect();
    let sum = |k: &str, v: i32, t: i64| (s(k), Some(v), t);
    assert_eq!(
        got,
        [
            sum("k1", 1, 0),
            sum("k2", 1, 1),
            sum("k1", 2, 10),
            sum("k2", 2, 100),
            sum("k2", 4, 100),
            sum("k2", 6, 200),
            sum("k1", 4, 10),
            sum("k2", 8, 500),
            sum("k1", 6, 500),
            sum("k2", 11, 500),
            sum("k3", 2, 500),
            sum("k2", 13, 500),
        ]
    );
    Ok(())
}

/// Kafka's `STRING_SUM_AGGREGATOR`: the aggregate plus the value read as a
/// number.
fn string_sum(_: &String, v: &String, agg: i32) -> i32 {
    agg + v.parse::<i32>().unwrap_or(0)
}

#[test]
fn the_output_type_may_differ_from_the_inputs() -> Result<()> {
    let builder = StreamsBuilder::new();
    let one = grouped(&builder, "one");
    let two = grouped(&builder, "two");
    one.cogroup(string_sum)
        .cogroup(&two, string_sum)
        .aggregate(
            || 0,
            Materialized::as_("store1").with_value_serde(Serdes::i32()),
        )
        .to_stream()
        .to("output", Produced::with(Serdes::string(), Serdes::i32()));
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let two = driver.create_input_topic("two", Serdes::string(), Serdes::string());
    assert_sums(&driver, |k, v, t| {
        two.pipe_input_with_timestamp(s(k), v.to_string(), t)
    })
}

#[test]
fn inputs_may_have_different_value_types() -> Result<()> {
    let builder = StreamsBuilder::new();
    let one = grouped(&builder, "one");
    let two = builder
        .stream::<String, i32>("two", Consumed::with(Serdes::string(), Serdes::i32()))
        .group_by_key(Grouped::with(Serdes::string(), Serdes::i32()));
    one.cogroup(string_sum)
        .cogroup(&two, |_, v: &i32, agg: i32| agg + v)
        .aggregate(
            || 0,
            Materialized::as_("store1").with_value_serde(Serdes::i32()),
        )
        .to_stream()
        .to("output", Produced::with(Serdes::string(), Serdes::i32()));
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let two = driver.create_input_topic("two", Serdes::string(), Serdes::i32());
    assert_sums(&driver, |k, v, t| two.pipe_input_with_timestamp(s(k), v, t))
}

#[test]
fn each_input_has_its_own_aggregator() -> Result<()> {
    let builder = StreamsBuilder::new();
    let one = grouped(&builder, "one");
    let two = grouped(&builder, "two");
    one.cogroup(remover)
        .cogroup(&two, adder)
        .aggregate(
            zero,
            Materialized::as_("store1").with_value_serde(Serdes::string()),
        )
        .to_stream()
        .to("output", Produced::with(Serdes::string(), Serdes::string()));
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let one = driver.create_input_topic("one", Serdes::string(), Serdes::string());
    let two = driver.create_input_topic("two", Serdes::string(), Serdes::string());
    for (k, t) in [("k1", 0), ("k2", 1), ("k1", 10), ("k2", 100)] {
        one.pipe_input_with_timestamp(s(k), s("1"), t)?;
    }
    for (k, t) in [("k1", 500), ("k2", 500), ("k1", 500), ("k2", 100)] {
        two.pipe_input_with_timestamp(s(k), s("2"), t)?;
    }
    assert_eq!(
        read(&output(&driver))?,
        [
            row("k1", "0-1", 0),
            row("k2", "0-1", 1),
            row("k1", "0-1-1", 10),
            row("k2", "0-1-1", 100),
            row("k1", "0-1-1+2", 500),
            row("k2", "0-1-1+2", 500),
            row("k1", "0-1-1+2+2", 500),
            row("k2", "0-1-1+2+2", 500),
        ]
    );
    Ok(())
}

#[test]
fn three_streams() -> Result<()> {
    let driver = concatenated(&["one", "two", "three"])?;
    let topic = |t| driver.create_input_topic(t, Serdes::string(), Serdes::string());
    let (one, two, three) = (topic("one"), topic("two"), topic("three"));
    for (k, t) in [("k1", 0), ("k2", 1), ("k1", 10), ("k2", 100)] {
        one.pipe_input_with_timestamp(s(k), s("A"), t)?;
    }
    for (k, t) in [("k2", 100), ("k2", 200), ("k1", 1), ("k2", 500)] {
        two.pipe_input_with_timestamp(s(k), s("B"), t)?;
    }
    for (k, t) in [("k1", 500), ("k2", 500), ("k3", 500), ("k2", 100)] {
        three.pipe_input_with_timestamp(s(k), s("B"), t)?;
    }
    assert_eq!(
        read(&output(&driver))?,
        [
            row("k1", "A", 0),
            row("k2", "A", 1),
            row("k1", "AA", 10),
            row("k2", "AA", 100),
            row("k2", "AAB", 100),
            row("k2", "AABB", 200),
            row("k1", "AAB", 10),
            row("k2", "AABBB", 500),
            row("k1", "AABB", 500),
            row("k2", "AABBBB", 500),
            row("k3", "B", 500),
            row("k2", "AABBBBB", 500),
        ]
    );
    Ok(())
}

#[test]
fn a_cogrouped_table_joins_another_table() -> Result<()> {
    let builder = StreamsBuilder::new();
    let one = grouped(&builder, "one");
    let two = grouped(&builder, "two");
    let table1 = one.cogroup(concat).cogroup(&two, concat).aggregate_named(
        String::new,
        Named::as_("name"),
        Materialized::as_("store").with_value_serde(Serdes::string()),
    );
    let table2 = builder.table("three", strings(), Materialized::<String, String>::new());
    table1
        .join(
            &table2,
            |a, b| format!("{a}+{b}"),
            Materialized::with(Serdes::string(), Serdes::string()),
        )
        .to_stream()
        .to("output", Produced::with(Serdes::string(), Serdes::string()));
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let topic = |t| driver.create_input_topic(t, Serdes::string(), Serdes::string());
    let (one, two, three) = (topic("one"), topic("two"), topic("three"));
    one.pipe_input_with_timestamp(s("k1"), s("A"), 5)?;
    two.pipe_input_with_timestamp(s("k2"), s("B"), 6)?;
    let out = output(&driver);
    assert!(out.is_empty());
    three.pipe_input_with_timestamp(s("k1"), s("C"), 0)?;
    three.pipe_input_with_timestamp(s("k2"), s("D"), 10)?;
    assert_eq!(read(&out)?, [row("k1", "A+C", 5), row("k2", "B+D", 10)]);
    Ok(())
}

/// An input whose key changed reaches its aggregator through its
/// repartition topic; records with a null key are filtered out before it.
#[test]
fn a_repartitioned_input_is_aggregated_after_its_repartition() -> Result<()> {
    let builder = StreamsBuilder::new();
    let metrics = builder.metrics();
    let one = builder.stream::<String, String>("one", strings());
    let two = grouped(&builder, "two");
    let one = rekeyed(&one, string_grouping().with_name("by-value"));
    one.cogroup(|_, v: &String, agg: String| format!("{agg}<{v}"))
        .cogroup(&two, |_, v, agg| format!("{agg}>{v}"))
        .aggregate(String::new, string_store())
        .to_stream()
        .to("output", Produced::with(Serdes::string(), Serdes::string()));
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let topic = |t| driver.create_input_topic(t, Serdes::string(), Serdes::string());
    let (one, two) = (topic("one"), topic("two"));
    // Re-keyed by value: ("a", "k") becomes ("k", "a").
    one.pipe_input_with_timestamp(s("a"), s("k"), 1)?;
    two.pipe_input_with_timestamp(s("k"), s("b"), 2)?;
    one.pipe_input_with_timestamp(s("c"), s("j"), 3)?;
    assert_eq!(
        read(&output(&driver))?,
        [row("k", "<a", 1), row("k", "<a>b", 2), row("j", "<c", 3)]
    );
    assert_eq!(metrics.dropped_records(), 0);
    Ok(())
}

/// Cogrouping a grouped stream again replaces its aggregator: each record
/// is aggregated once.
#[test]
fn cogrouping_a_grouped_stream_again_replaces_its_aggregator() -> Result<()> {
    let builder = StreamsBuilder::new();
    let one = grouped(&builder, "one");
    let two = grouped(&builder, "two");
    one.cogroup(concat)
        .cogroup(&two, concat)
        .cogroup(&one, adder)
        .aggregate(String::new, string_store())
        .to_stream()
        .to("output", Produced::with(Serdes::string(), Serdes::string()));
    let topology = builder.build()?;
    let aggregators = topology
        .node_names()
        .into_iter()
        .filter(|n| n.starts_with("COGROUPKSTREAM-AGGREGATE-"))
        .count();
    assert_eq!(aggregators, 2);
    let driver = TopologyTestDriver::new(topology)?;
    let one = driver.create_input_topic("one", Serdes::string(), Serdes::string());
    let two = driver.create_input_topic("two", Serdes::string(), Serdes::string());
    one.pipe_input_with_timestamp(s("k"), s("A"), 1)?;
    two.pipe_input_with_timestamp(s("k"), s("B"), 2)?;
    assert_eq!(
        read(&output(&driver))?,
        [row("k", "+A", 1), row("k", "+AB", 2)]
    );
    Ok(())
}

/// With the record cache on, the store's updates go downstream when they
/// leave it, once each: one of the aggregators forwards them for all.
#[test]
fn with_a_record_cache_each_update_goes_downstream_once() -> Result<()> {
    let builder = StreamsBuilder::new();
    let one = grouped(&builder, "one");
    let two = grouped(&builder, "two");
    one.cogroup(concat)
        .cogroup(&two, concat)
        .aggregate(
            String::new,
            Materialized::as_("cached")
                .with_value_serde(Serdes::string())
                .with_caching_enabled(),
        )
        .to_stream()
        .to("output", Produced::with(Serdes::string(), Serdes::string()));
    let driver = TopologyTestDriver::with_config(
        builder.build()?,
        TestDriverConfig::new()
            .with_streams_config(StreamsConfig::new("cogroup-cache").with_commit_interval_ms(100))
            .with_production_caching(),
    )?;
    let one = driver.create_input_topic("one", Serdes::string(), Serdes::string());
    let two = driver.create_input_topic("two", Serdes::string(), Serdes::string());
    one.pipe_input_with_timestamp(s("k"), s("A"), 1)?;
    two.pipe_input_with_timestamp(s("k"), s("B"), 2)?;
    two.pipe_input_with_timestamp(s("j"), s("C"), 3)?;
    let out = output(&driver);
    assert!(out.is_empty(), "nothing leaves the cache before a commit");
    driver.advance_wall_clock_time(ms(100))?;
    assert_eq!(read(&out)?, [row("k", "AB", 2), row("j", "C", 3)]);
    Ok(())
}

/// The same in time and session windows: the windows' updates leave the
/// cache once each.
#[test]
fn with_a_record_cache_each_window_update_goes_downstream_once() -> Result<()> {
    for sessions in [false, true] {
        let builder = StreamsBuilder::new();
        let one = grouped(&builder, "one");
        let two = grouped(&builder, "two");
        let cogrouped = one.cogroup(adder).cogroup(&two, remover);
        let store = || {
            Materialized::as_("cached")
                .with_value_serde(Serdes::string())
                .with_caching_enabled()
        };
        let table = if sessions {
            cogrouped
                .windowed_by_session(SessionWindows::of_inactivity_gap_with_no_grace(ms(10)))
                .aggregate(zero, plus, store())
        } else {
            cogrouped
                .windowed_by(TimeWindows::of_size_with_no_grace(ms(10)))
                .aggregate(zero, store())
        };
        table
            .to_stream()
            .map(|k, v| (k.map(|k| k.key.clone()).unwrap_or_default(), v.clone()))
            .to("output", Produced::with(Serdes::string(), Serdes::string()));
        let driver = TopologyTestDriver::with_config(
            builder.build()?,
            TestDriverConfig::new()
                .with_streams_config(
                    StreamsConfig::new("cogroup-cache").with_commit_interval_ms(100),
                )
                .with_production_caching(),
        )?;
        pipe(&driver, "one", &[("k", "A", 1)])?;
        pipe(&driver, "two", &[("k", "B", 2), ("j", "C", 3)])?;
        let out = output(&driver);
        assert!(out.is_empty(), "nothing leaves the cache before a commit");
        driver.advance_wall_clock_time(ms(100))?;
        let k = if sessions { "0+0+A-B" } else { "0+A-B" };
        assert_eq!(
            read(&out)?,
            [row("k", k, 2), row("j", "0-C", 3)],
            "sessions: {sessions}"
        );
    }
    Ok(())
}

// ---- time windows (TimeWindowedCogroupedKStreamImplTest) ----

const WINDOW_SIZE: i64 = 500;

/// `topic` (`+`) and `topic2` (`-`) cogrouped, windowed by `windowing`,
/// aggregated from `"0"` to `output`.
fn windowed_driver(
    windowing: impl FnOnce(
        streams_dsl::CogroupedKStream<String, String>,
    ) -> streams_dsl::KTable<Windowed<String>, String>,
    key_serde: impl streams_core::Serde<Windowed<String>> + Clone,
) -> Result<(
    TopologyTestDriver,
    TestOutputTopic<Windowed<String>, String>,
)> {
    let builder = StreamsBuilder::new();
    let one = grouped(&builder, "topic");
    let two = grouped(&builder, "topic2");
    windowing(one.cogroup(adder).cogroup(&two, remover))
        .to_stream()
        .to(
            "output",
            Produced::with(key_serde.clone(), Serdes::string()),
        );
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let out = driver.create_output_topic("output", key_serde, Serdes::string());
    Ok((driver, out))
}

fn time_windowed(
    windows: TimeWindows,
) -> Result<(
    TopologyTestDriver,
    TestOutputTopic<Windowed<String>, String>,
)> {
    windowed_driver(
        move |c| c.windowed_by(windows).aggregate(zero, string_store()),
        Serdes::time_windowed(Serdes::string(), WINDOW_SIZE),
    )
}

fn pipe(driver: &TopologyTestDriver, topic: &str, records: &[(&str, &str, i64)]) -> Result<()> {
    let input = driver.create_input_topic(topic, Serdes::string(), Serdes::string());
    for (k, v, t) in records {
        input.pipe_input_with_timestamp(s(k), s(v), *t)?;
    }
    Ok(())
}

#[test]
fn time_windows_over_one_stream() -> Result<()> {
    let (driver, out) = time_windowed(TimeWindows::of_size_with_no_grace(ms(500)))?;
    pipe(
        &driver,
        "topic",
        &[
            ("k1", "A", 0),
            ("k2", "A", 0),
            ("k2", "A", 1),
            ("k1", "A", 2),
            ("k1", "B", 3),
            ("k2", "B", 3),
            ("k2", "B", 4),
            ("k1", "B", 4),
        ],
    )?;
    assert_eq!(
        read_windowed(&out)?,
        [
            row("k1", "0+A", 0),
            row("k2", "0+A", 0),
            row("k2", "0+A+A", 1),
            row("k1", "0+A+A", 2),
            row("k1", "0+A+A+B", 3),
            row("k2", "0+A+A+B", 3),
            row("k2", "0+A+A+B+B", 4),
            row("k1", "0+A+A+B+B", 4),
        ]
    );
    Ok(())
}

#[test]
fn time_windows_mix_the_inputs_aggregators() -> Result<()> {
    let (driver, out) = time_windowed(TimeWindows::of_size_with_no_grace(ms(500)))?;
    pipe(
        &driver,
        "topic",
        &[
            ("k1", "A", 0),
            ("k2", "A", 0),
            ("k2", "A", 1),
            ("k1", "A", 2),
        ],
    )?;
    pipe(
        &driver,
        "topic2",
        &[
            ("k1", "B", 3),
            ("k2", "B", 3),
            ("k2", "B", 4),
            ("k1", "B", 4),
        ],
    )?;
    assert_eq!(
        read_windowed(&out)?,
        [
            row("k1", "0+A", 0),
            row("k2", "0+A", 0),
            row("k2", "0+A+A", 1),
            row("k1", "0+A+A", 2),
            row("k1", "0+A+A-B", 3),
            row("k2", "0+A+A-B", 3),
            row("k2", "0+A+A-B-B", 4),
            row("k1", "0+A+A-B-B", 4),
        ]
    );
    Ok(())
}

#[test]
fn time_windows_many_windows() -> Result<()> {
    let (driver, out) = time_windowed(TimeWindows::of_size_with_no_grace(ms(500)))?;
    pipe(
        &driver,
        "topic",
        &[
            ("k1", "A", 0),
            ("k2", "A", 499),
            ("k2", "A", 500),
            ("k1", "A", 500),
        ],
    )?;
    assert_eq!(
        read_windowed(&out)?,
        [
            row("k1", "0+A", 0),
            row("k2", "0+A", 499),
            row("k2", "0+A", 500),
            row("k1", "0+A", 500),
        ]
    );
    Ok(())
}

#[test]
fn time_windows_overlapping_windows() -> Result<()> {
    let (driver, out) =
        time_windowed(TimeWindows::of_size_with_no_grace(ms(500)).advance_by(ms(200)))?;
    pipe(
        &driver,
        "topic",
        &[
            ("k1", "A", 0),
            ("k2", "A", 0),
            ("k1", "B", 250),
            ("k2", "B", 250),
            ("k2", "A", 500),
            ("k1", "A", 500),
        ],
    )?;
    assert_eq!(
        read_windowed(&out)?,
        [
            row("k1", "0+A", 0),
            row("k2", "0+A", 0),
            row("k1", "0+A+B", 250),
            row("k1", "0+B", 250),
            row("k2", "0+A+B", 250),
            row("k2", "0+B", 250),
            row("k2", "0+B+A", 500),
            row("k2", "0+A", 500),
            row("k1", "0+B+A", 500),
            row("k1", "0+A", 500),
        ]
    );
    Ok(())
}

#[test]
fn time_windows_mix_the_inputs_aggregators_over_many_windows() -> Result<()> {
    let (driver, out) = time_windowed(TimeWindows::of_size_with_no_grace(ms(500)))?;
    pipe(
        &driver,
        "topic",
        &[
            ("k1", "A", 0),
            ("k2", "A", 0),
            ("k2", "A", 1),
            ("k1", "A", 2),
        ],
    )?;
    pipe(
        &driver,
        "topic2",
        &[
            ("k1", "B", 3),
            ("k2", "B", 3),
            ("k2", "B", 501),
            ("k1", "B", 501),
        ],
    )?;
    assert_eq!(
        read_windowed(&out)?,
        [
            row("k1", "0+A", 0),
            row("k2", "0+A", 0),
            row("k2", "0+A+A", 1),
            row("k1", "0+A+A", 2),
            row("k1", "0+A+A-B", 3),
            row("k2", "0+A+A-B", 3),
            row("k2", "0-B", 501),
            row("k1", "0-B", 501),
        ]
    );
    Ok(())
}

/// Each input's processor closes windows by its own stream time, as in
/// Kafka: a record of `topic` at 600 does not close `[0, 500)` for
/// `topic2`.
#[test]
fn each_input_closes_windows_by_its_own_stream_time() -> Result<()> {
    let (driver, out) = time_windowed(TimeWindows::of_size_with_no_grace(ms(500)))?;
    pipe(&driver, "topic", &[("k1", "A", 600)])?;
    pipe(&driver, "topic2", &[("k1", "B", 100)])?;
    pipe(&driver, "topic", &[("k1", "A", 100)])?;
    assert_eq!(
        read_windowed(&out)?,
        [row("k1", "0+A", 600), row("k1", "0-B", 100)]
    );
    assert_eq!(driver.dropped_records(), 1);
    Ok(())
}

// ---- session windows (SessionWindowedCogroupedKStreamImplTest) ----

/// Kafka's test merger: `left + "+" + right`.
fn plus(_: &String, left: String, right: String) -> String {
    format!("{left}+{right}")
}

fn session_windowed(
    windows: SessionWindows,
) -> Result<(
    TopologyTestDriver,
    TestOutputTopic<Windowed<String>, String>,
)> {
    windowed_driver(
        move |c| {
            c.windowed_by_session(windows)
                .aggregate(zero, plus, string_store())
        },
        Serdes::session_windowed(Serdes::string()),
    )
}

#[test]
fn sessions_of_one_stream() -> Result<()> {
    let (driver, out) = session_windowed(SessionWindows::of_inactivity_gap_with_no_grace(ms(500)))?;
    pipe(
        &driver,
        "topic",
        &[
            ("k1", "A", 0),
            ("k2", "A", 0),
            ("k1", "B", 599),
            ("k2", "B", 607),
        ],
    )?;
    assert_eq!(
        read_windowed(&out)?,
        [
            row("k1", "0+A", 0),
            row("k2", "0+A", 0),
            row("k1", "0+B", 599),
            row("k2", "0+B", 607),
        ]
    );
    Ok(())
}

#[test]
fn sessions_merge_a_record_at_the_same_time() -> Result<()> {
    let (driver, out) = session_windowed(SessionWindows::of_inactivity_gap_with_no_grace(ms(500)))?;
    pipe(
        &driver,
        "topic",
        &[
            ("k1", "A", 0),
            ("k1", "A", 0),
            ("k2", "B", 599),
            ("k1", "B", 607),
        ],
    )?;
    assert_eq!(
        read_windowed(&out)?,
        [
            row("k1", "0+A", 0),
            row("k1", "0+0+A+A", 0),
            row("k2", "0+B", 599),
            row("k1", "0+B", 607),
        ]
    );
    Ok(())
}

fn long_grace_sessions() -> Result<(
    TopologyTestDriver,
    TestOutputTopic<Windowed<String>, String>,
)> {
    session_windowed(SessionWindows::with_inactivity_gap_and_grace(
        ms(100),
        Duration::from_secs(24 * 60 * 60),
    ))
}

#[test]
fn sessions_retract_and_merge() -> Result<()> {
    let (driver, out) = long_grace_sessions()?;
    pipe(
        &driver,
        "topic",
        &[
            ("k1", "A", 0),
            ("k1", "A", 84),
            ("k1", "A", 113),
            ("k1", "A", 199),
            ("k1", "B", 300),
            ("k2", "B", 301),
            ("k2", "B", 400),
            ("k1", "B", 400),
        ],
    )?;
    assert_eq!(
        read_windowed(&out)?,
        [
            row("k1", "0+A", 0),
            tombstone("k1", 0),
            row("k1", "0+0+A+A", 84),
            tombstone("k1", 84),
            row("k1", "0+0+0+A+A+A", 113),
            tombstone("k1", 113),
            row("k1", "0+0+0+0+A+A+A+A", 199),
            row("k1", "0+B", 300),
            row("k2", "0+B", 301),
            tombstone("k2", 301),
            row("k2", "0+0+B+B", 400),
            tombstone("k1", 300),
            row("k1", "0+0+B+B", 400),
        ]
    );
    Ok(())
}

#[test]
fn sessions_mix_the_inputs_aggregators() -> Result<()> {
    let (driver, out) = long_grace_sessions()?;
    pipe(
        &driver,
        "topic",
        &[
            ("k1", "A", 0),
            ("k2", "A", 0),
            ("k2", "A", 1),
            ("k1", "A", 2),
        ],
    )?;
    pipe(
        &driver,
        "topic2",
        &[
            ("k1", "B", 3),
            ("k2", "B", 3),
            ("k2", "B", 444),
            ("k1", "B", 444),
        ],
    )?;
    assert_eq!(
        read_windowed(&out)?,
        [
            row("k1", "0+A", 0),
            row("k2", "0+A", 0),
            tombstone("k2", 0),
            row("k2", "0+0+A+A", 1),
            tombstone("k1", 0),
            row("k1", "0+0+A+A", 2),
            tombstone("k1", 2),
            row("k1", "0+0+0+A+A-B", 3),
            tombstone("k2", 1),
            row("k2", "0+0+0+A+A-B", 3),
            row("k2", "0-B", 444),
            row("k1", "0-B", 444),
        ]
    );
    Ok(())
}

#[test]
fn sessions_mix_the_inputs_aggregators_over_many_sessions() -> Result<()> {
    let (driver, out) = long_grace_sessions()?;
    pipe(
        &driver,
        "topic",
        &[
            ("k1", "A", 0),
            ("k2", "A", 0),
            ("k2", "A", 1),
            ("k1", "A", 2),
        ],
    )?;
    pipe(
        &driver,
        "topic2",
        &[
            ("k1", "B", 3),
            ("k2", "B", 500),
            ("k2", "B", 501),
            ("k1", "B", 501),
        ],
    )?;
    assert_eq!(
        read_windowed(&out)?,
        [
            row("k1", "0+A", 0),
            row("k2", "0+A", 0),
            tombstone("k2", 0),
            row("k2", "0+0+A+A", 1),
            tombstone("k1", 0),
            row("k1", "0+0+A+A", 2),
            tombstone("k1", 2),
            row("k1", "0+0+0+A+A-B", 3),
            row("k2", "0-B", 500),
            tombstone("k2", 500),
            row("k2", "0+0-B-B", 501),
            row("k1", "0-B", 501),
        ]
    );
    Ok(())
}

// ---- sliding windows (SlidingWindowedCogroupedKStreamImplTest) ----

fn sliding() -> Result<(
    TopologyTestDriver,
    TestOutputTopic<Windowed<String>, String>,
)> {
    windowed_driver(
        |c| {
            c.windowed_by_sliding(SlidingWindows::of_time_difference_and_grace(
                ms(500),
                ms(2000),
            ))
            .aggregate(zero, string_store())
        },
        Serdes::time_windowed(Serdes::string(), WINDOW_SIZE),
    )
}

#[test]
fn sliding_windows_of_one_stream() -> Result<()> {
    let (driver, out) = sliding()?;
    pipe(
        &driver,
        "topic",
        &[
            ("k1", "A", 500),
            ("k2", "A", 500),
            ("k2", "A", 501),
            ("k1", "A", 502),
            ("k1", "B", 503),
            ("k2", "B", 503),
            ("k2", "B", 504),
            ("k1", "B", 504),
        ],
    )?;
    let got: Vec<_> = out
        .read_records_to_list()?
        .into_iter()
        .map(|r| (r.key, r.value, r.timestamp))
        .collect();
    let w = |k: &str, start: i64, end: i64, v: &str, t: i64| {
        (
            Some(Windowed::new(s(k), Window::new(start, end))),
            Some(s(v)),
            t,
        )
    };
    assert_eq!(
        got,
        [
            // k1-A-500
            w("k1", 0, 500, "0+A", 500),
            // k2-A-500
            w("k2", 0, 500, "0+A", 500),
            // k2-A-501
            w("k2", 501, 1001, "0+A", 501),
            w("k2", 1, 501, "0+A+A", 501),
            // k1-A-502
            w("k1", 501, 1001, "0+A", 502),
            w("k1", 2, 502, "0+A+A", 502),
            // k1-B-503
            w("k1", 501, 1001, "0+A+B", 503),
            w("k1", 503, 1003, "0+B", 503),
            w("k1", 3, 503, "0+A+A+B", 503),
            // k2-B-503
            w("k2", 501, 1001, "0+A+B", 503),
            w("k2", 502, 1002, "0+B", 503),
            w("k2", 3, 503, "0+A+A+B", 503),
            // k2-B-504
            w("k2", 502, 1002, "0+B+B", 504),
            w("k2", 501, 1001, "0+A+B+B", 504),
            w("k2", 504, 1004, "0+B", 504),
            w("k2", 4, 504, "0+A+A+B+B", 504),
            // k1-B-504
            w("k1", 503, 1003, "0+B+B", 504),
            w("k1", 501, 1001, "0+A+B+B", 504),
            w("k1", 504, 1004, "0+B", 504),
            w("k1", 4, 504, "0+A+A+B+B", 504),
        ]
    );
    Ok(())
}

#[test]
fn sliding_windows_overlapping() -> Result<()> {
    let (driver, out) = sliding()?;
    pipe(
        &driver,
        "topic",
        &[
            ("k1", "A", 500),
            ("k2", "A", 500),
            ("k1", "B", 750),
            ("k2", "B", 750),
            ("k2", "A", 1000),
            ("k1", "A", 1000),
        ],
    )?;
    assert_eq!(
        read_windowed(&out)?,
        [
            // left window k1@500
            row("k1", "0+A", 500),
            // left window k2@500
            row("k2", "0+A", 500),
            // right window k1@500
            row("k1", "0+B", 750),
            // left window k1@750
            row("k1", "0+A+B", 750),
            // right window k2@500
            row("k2", "0+B", 750),
            // left window k2@750
            row("k2", "0+A+B", 750),
            // right window k2@500 update
            row("k2", "0+B+A", 1000),
            // right window k2@750
            row("k2", "0+A", 1000),
            // left window k2@1000
            row("k2", "0+A+B+A", 1000),
            // right window k1@500 update
            row("k1", "0+B+A", 1000),
            // right window k1@750
            row("k1", "0+A", 1000),
            // left window k1@1000
            row("k1", "0+A+B+A", 1000),
        ]
    );
    Ok(())
}
