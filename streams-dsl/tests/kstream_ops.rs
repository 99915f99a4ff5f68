//! Stateless KStream operations through the test driver.

// The tests return streams-core's error, whose size is that crate's choice.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use streams_core::{
    Processor, ProcessorContext, Record, Result, Serdes, StoreBuilder, TestRecord,
    TopologyTestDriver,
};
use streams_dsl::{Branched, Consumed, KStream, Named, Produced, Repartitioned, StreamsBuilder};

fn strings() -> Consumed<String, String> {
    Consumed::with(Serdes::string(), Serdes::string())
}

fn out() -> Produced<String, String> {
    Produced::with(Serdes::string(), Serdes::string())
}

fn s(v: &str) -> String {
    v.to_owned()
}

fn kv(k: &str, v: &str) -> (Option<String>, Option<String>) {
    (Some(s(k)), Some(s(v)))
}

/// Builds `f(stream of "in")` written to "out", pipes `input`, returns
/// what "out" got.
fn run(
    f: impl FnOnce(&KStream<String, String>) -> KStream<String, String>,
    input: Vec<TestRecord<String, String>>,
) -> Result<Vec<(Option<String>, Option<String>)>> {
    let builder = StreamsBuilder::new();
    f(&builder.stream("in", strings())).to("out", out());
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let topic = driver.create_input_topic("in", Serdes::string(), Serdes::string());
    topic.pipe_record_list(input)?;
    driver
        .create_output_topic("out", Serdes::string(), Serdes::string())
        .read_key_values_to_list()
}

fn rec(k: Option<&str>, v: Option<&str>) -> TestRecord<String, String> {
    TestRecord::from_parts(k.map(s), v.map(s), 0)
}

#[test]
fn filter_and_filter_not() -> Result<()> {
    let input = || {
        vec![
            rec(Some("a"), Some("keep")),
            rec(Some("b"), Some("drop")),
            rec(Some("c"), None),
        ]
    };
    let got = run(|st| st.filter(|_, v| v.as_str() == "keep"), input())?;
    // A null value skips the predicate and passes.
    assert_eq!(got, [kv("a", "keep"), (Some(s("c")), None)]);
    let got = run(|st| st.filter_not(|_, v| v.as_str() == "keep"), input())?;
    assert_eq!(got, [kv("b", "drop"), (Some(s("c")), None)]);
    Ok(())
}

#[test]
fn map_and_map_values() -> Result<()> {
    let got = run(
        |st| st.map(|k, v| (v.clone(), k.cloned().unwrap_or_default())),
        vec![
            rec(Some("k"), Some("v")),
            rec(None, Some("w")),
            rec(Some("x"), None),
        ],
    )?;
    assert_eq!(got, [kv("v", "k"), kv("w", "")]);
    let got = run(
        |st| st.map_values(|v| v.to_uppercase()),
        vec![rec(Some("k"), Some("v")), rec(Some("t"), None)],
    )?;
    assert_eq!(got, [kv("k", "V"), (Some(s("t")), None)]);
    Ok(())
}

#[test]
fn flat_map_and_flat_map_values() -> Result<()> {
    let got = run(
        |st| {
            st.flat_map(|_, v| {
                v.chars()
                    .map(|c| (c.to_string(), v.clone()))
                    .collect::<Vec<_>>()
            })
        },
        vec![rec(None, Some("ab"))],
    )?;
    assert_eq!(got, [kv("a", "ab"), kv("b", "ab")]);
    let got = run(
        |st| st.flat_map_values(|v| v.split(',').map(str::to_owned).collect::<Vec<_>>()),
        vec![rec(Some("k"), Some("x,y")), rec(Some("n"), None)],
    )?;
    assert_eq!(got, [kv("k", "x"), kv("k", "y")]);
    // Any IntoIterator: an Option.
    let got = run(
        |st| st.flat_map_values(|v| (v.len() > 1).then(|| v.clone())),
        vec![rec(Some("k"), Some("x")), rec(Some("k"), Some("xy"))],
    )?;
    assert_eq!(got, [kv("k", "xy")]);
    Ok(())
}

#[test]
fn select_key_marks_for_repartition() -> Result<()> {
    let builder = StreamsBuilder::new();
    let stream = builder.stream::<String, String>("in", strings());
    assert!(!stream.repartition_required());
    assert!(!stream.map_values(|v| v.clone()).repartition_required());
    assert!(!stream
        .flat_map_values(|v| vec![v.clone()])
        .repartition_required());
    assert!(stream.select_key(|_, v| v.clone()).repartition_required());
    assert!(stream
        .map(|_, v| (v.clone(), v.clone()))
        .repartition_required());
    assert!(stream
        .flat_map(|_, v| vec![(v.clone(), v.clone())])
        .repartition_required());
    assert!(stream
        .select_key(|_, v| v.clone())
        .filter(|_, _| true)
        .repartition_required());

    let got = run(
        |st| st.select_key(|_, v| v.chars().take(1).collect()),
        vec![rec(None, Some("hello"))],
    )?;
    assert_eq!(got, [kv("h", "hello")]);
    Ok(())
}

#[test]
fn peek_and_foreach_see_every_record() -> Result<()> {
    let peeked = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let builder = StreamsBuilder::new();
    let p = peeked.clone();
    let f = seen.clone();
    let stream = builder
        .stream::<String, String>("in", strings())
        .peek(move |k, v| p.lock().unwrap().push((k.cloned(), v.cloned())));
    stream.foreach(move |k, v| f.lock().unwrap().push((k.cloned(), v.cloned())));
    stream.to("out", out());
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let input = driver.create_input_topic("in", Serdes::string(), Serdes::string());
    input.pipe_record(rec(Some("a"), Some("1")))?;
    input.pipe_record(rec(Some("b"), None))?;
    let expected = vec![kv("a", "1"), (Some(s("b")), None)];
    assert_eq!(*peeked.lock().unwrap(), expected);
    assert_eq!(*seen.lock().unwrap(), expected);
    let output = driver.create_output_topic("out", Serdes::string(), Serdes::string());
    assert_eq!(output.read_key_values_to_list()?, expected);
    Ok(())
}

#[test]
fn split_routes_to_the_first_matching_branch() -> Result<()> {
    let builder = StreamsBuilder::new();
    let branches: HashMap<String, KStream<String, String>> = builder
        .stream::<String, String>("in", strings())
        .split_named(Named::as_("route-"))
        .branch(|_, v| v.starts_with('a'), Branched::as_("a"))
        .branch(
            |_, v| v.starts_with('a') || v.starts_with('b'),
            Branched::as_("b"),
        )
        .default_branch();
    let mut names: Vec<&String> = branches.keys().collect();
    names.sort();
    assert_eq!(names, ["route-0", "route-a", "route-b"]);
    branches["route-a"].to("out-a", out());
    branches["route-b"].to("out-b", out());
    branches["route-0"].to("out-other", out());
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let input = driver.create_input_topic("in", Serdes::string(), Serdes::string());
    for v in ["apple", "banana", "avocado", "cherry"] {
        input.pipe_input(s("k"), s(v))?;
    }
    input.pipe_record(rec(Some("n"), None))?;
    let read = |topic: &str| {
        driver
            .create_output_topic(topic, Serdes::string(), Serdes::string())
            .read_values_to_list()
    };
    assert_eq!(read("out-a")?, [Some(s("apple")), Some(s("avocado"))]);
    assert_eq!(read("out-b")?, [Some(s("banana"))]);
    assert_eq!(read("out-other")?, [Some(s("cherry")), None]);
    Ok(())
}

#[test]
fn split_without_names_or_default() -> Result<()> {
    let builder = StreamsBuilder::new();
    let stream = builder.stream::<String, String>("in", strings());
    let branches = stream
        .split()
        .branch(|_, v| v.len() == 1, Branched::new())
        .no_default_branch();
    // Kafka's names: the split's name followed by the position.
    assert_eq!(
        branches.keys().collect::<Vec<_>>(),
        ["KSTREAM-BRANCH-00000000011"]
    );
    branches["KSTREAM-BRANCH-00000000011"].to("out", out());
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let input = driver.create_input_topic("in", Serdes::string(), Serdes::string());
    input.pipe_input(s("k"), s("x"))?;
    input.pipe_input(s("k"), s("too long"))?;
    let output = driver.create_output_topic("out", Serdes::string(), Serdes::string());
    assert_eq!(output.read_values_to_list()?, [Some(s("x"))]);
    Ok(())
}

#[test]
fn merge_interleaves_both_streams() -> Result<()> {
    let builder = StreamsBuilder::new();
    let left = builder.stream::<String, String>("left", strings());
    let right = builder
        .stream::<String, String>("right", strings())
        .map_values(|v| format!("r:{v}"));
    left.merge(&right).to("out", out());
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let l = driver.create_input_topic("left", Serdes::string(), Serdes::string());
    let r = driver.create_input_topic("right", Serdes::string(), Serdes::string());
    l.pipe_input(s("a"), s("1"))?;
    r.pipe_input(s("b"), s("2"))?;
    l.pipe_input(s("c"), s("3"))?;
    let output = driver.create_output_topic("out", Serdes::string(), Serdes::string());
    assert_eq!(
        output.read_key_values_to_list()?,
        [kv("a", "1"), kv("b", "r:2"), kv("c", "3")]
    );
    Ok(())
}

#[test]
fn merge_of_streams_from_two_builders_fails_at_build() {
    let one = StreamsBuilder::new();
    let two = StreamsBuilder::new();
    let a = one.stream::<String, String>("a", strings());
    let b = two.stream::<String, String>("b", strings());
    a.merge(&b).to("out", out());
    let error = one.build().err().map(|e| e.to_string());
    assert!(
        error
            .as_deref()
            .is_some_and(|e| e.contains("different builders")),
        "{error:?}"
    );
}

#[test]
fn repartition_goes_through_a_topic() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("in", strings())
        .select_key(|_, v| v.clone())
        .repartition(Repartitioned::with(Serdes::string(), Serdes::string()).with_name("by-value"))
        .to("out", out());
    let topology = builder.build()?;
    let text = topology.describe().to_string();
    assert!(
        text.contains("Sink: by-value-repartition-sink (topic: by-value-repartition)"),
        "{text}"
    );
    assert!(
        text.contains("Source: by-value-repartition-source (topics: [by-value-repartition])"),
        "{text}"
    );
    assert!(text.contains("Sub-topology: 1"), "{text}");
    let driver = TopologyTestDriver::new(topology)?;
    let input = driver.create_input_topic("in", Serdes::string(), Serdes::string());
    input.pipe_input(s("k"), s("v"))?;
    let output = driver.create_output_topic("out", Serdes::string(), Serdes::string());
    assert_eq!(output.read_key_values_to_list()?, [kv("v", "v")]);
    Ok(())
}

#[test]
fn repartition_after_a_key_change_needs_serdes_for_types_without_a_built_in_one() {
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("in", strings())
        .select_key(|_, v| (v.clone(), v.len()))
        .repartition(Repartitioned::as_("by-value"))
        .map(|k, v| (k.map(|k| k.0.clone()).unwrap_or_default(), v.clone()))
        .to("out", out());
    let error = builder.build().err().map(|e| e.to_string());
    assert!(error.is_some_and(|e| e.contains("no serdes known")));
}

#[test]
fn to_without_serdes_is_an_error_for_types_without_a_built_in_one() {
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("in", strings())
        .map_values(|v| (v.len(), v.clone()))
        .to("out", Produced::as_("sink"));
    let error = builder.build().err().map(|e| e.to_string());
    assert!(error.is_some_and(|e| e.contains("no serdes")));
}

#[test]
fn built_in_types_are_written_without_serdes() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("in", strings())
        .map_values(|v| v.len() as i64)
        .to("out", Produced::new());
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let input = driver.create_input_topic("in", Serdes::string(), Serdes::string());
    input.pipe_input("k".to_owned(), "four".to_owned())?;
    let output = driver.create_output_topic("out", Serdes::string(), Serdes::i64());
    assert_eq!(output.read_value()?, Some(4));
    Ok(())
}

#[test]
fn to_takes_serdes_from_upstream_and_a_name() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("in", strings())
        .filter_named(|_, _| true, Named::as_("everything"))
        .to("out", Produced::as_("write-out"));
    let topology = builder.build()?;
    assert_eq!(
        topology.node_names(),
        ["KSTREAM-SOURCE-0000000000", "everything", "write-out"]
    );
    Ok(())
}

/// Counts values per key in a store and forwards the running count.
struct Tally;

impl Processor<String, String, String, i64> for Tally {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, String, i64>,
        record: Record<String, String>,
    ) -> Result<()> {
        let Some(key) = record.key.clone() else {
            return Ok(());
        };
        let count = {
            let mut store = ctx.key_value_store::<String, i64>("tally")?;
            let count = store.get(&key)?.unwrap_or(0) + 1;
            store.put(&key, &count)?;
            count
        };
        ctx.forward(Record::new(key, count, record.timestamp))
    }
}

#[test]
fn process_runs_a_processor_with_a_store() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder.add_state_store(StoreBuilder::key_value(
        "tally",
        Serdes::string(),
        Serdes::i64(),
    ));
    let counted = builder
        .stream::<String, String>("in", strings())
        .process(|| Tally, &["tally"]);
    assert!(counted.repartition_required());
    counted.to("out", Produced::with(Serdes::string(), Serdes::i64()));
    let topology = builder.build()?;
    assert!(topology
        .describe()
        .to_string()
        .contains("Processor: KSTREAM-PROCESSOR-0000000001 (stores: [tally])"));
    let driver = TopologyTestDriver::new(topology)?;
    let input = driver.create_input_topic("in", Serdes::string(), Serdes::string());
    input.pipe_input(s("a"), s("x"))?;
    input.pipe_input(s("a"), s("y"))?;
    let output = driver.create_output_topic("out", Serdes::string(), Serdes::i64());
    assert_eq!(output.read_values_to_list()?, [Some(1), Some(2)]);
    Ok(())
}
