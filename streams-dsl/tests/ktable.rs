//! KTable sources, stateless table operations and re-grouped
//! aggregations with their subtract/add semantics.

// The tests return streams-core's error, whose size is that crate's choice.
#![allow(clippy::result_large_err)]

use streams_core::{Result, Serdes, TestRecord, TopologyTestDriver};
use streams_dsl::{Consumed, Grouped, Materialized, Produced, StreamsBuilder, ValueAndTimestamp};

fn strings() -> Consumed<String, String> {
    Consumed::with(Serdes::string(), Serdes::string())
}

fn s(v: &str) -> String {
    v.to_owned()
}

#[test]
fn table_source_materializes_and_forwards_tombstones() -> Result<()> {
    let builder = StreamsBuilder::new();
    let metrics = builder.metrics();
    let table = builder.table("users", strings(), Materialized::as_("users-store"));
    assert_eq!(table.queryable_store_name(), Some("users-store"));
    table
        .to_stream()
        .to("out", Produced::with(Serdes::string(), Serdes::string()));
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let input = driver.create_input_topic("users", Serdes::string(), Serdes::string());
    input.pipe_input_with_timestamp(s("alice"), s("eu"), 5)?;
    input.pipe_input_with_timestamp(s("alice"), s("us"), 6)?;
    input.pipe_record(TestRecord::from_parts(Some(s("alice")), None, 7))?;
    input.pipe_record(TestRecord::from_parts(None, Some(s("nobody")), 8))?;
    let output = driver.create_output_topic("out", Serdes::string(), Serdes::string());
    let records = output.read_records_to_list()?;
    assert_eq!(
        records
            .iter()
            .map(|r| (r.key.clone(), r.value.clone(), r.timestamp))
            .collect::<Vec<_>>(),
        [
            (Some(s("alice")), Some(s("eu")), 5),
            (Some(s("alice")), Some(s("us")), 6),
            (Some(s("alice")), None, 7),
        ]
    );
    assert_eq!(metrics.dropped_records(), 1);
    let store = driver.get_key_value_store::<String, ValueAndTimestamp<String>>("users-store")?;
    assert_eq!(store.all()?, []);
    Ok(())
}

#[test]
fn table_store_names_are_generated_from_the_topic() -> Result<()> {
    let builder = StreamsBuilder::new();
    let table = builder.table("users", strings(), Materialized::new());
    assert_eq!(
        table.queryable_store_name(),
        Some("users-STATE-STORE-0000000000")
    );
    assert_eq!(table.node_name(), "KTABLE-SOURCE-0000000002");
    let text = builder.build()?.describe().to_string();
    assert!(
        text.contains("Source: KSTREAM-SOURCE-0000000001 (topics: [users])"),
        "{text}"
    );
    assert!(
        text.contains(
            "Processor: KTABLE-SOURCE-0000000002 (stores: [users-STATE-STORE-0000000000])"
        ),
        "{text}"
    );
    Ok(())
}

/// `scores` filtered (`>= 10`) and doubled, from a source table that is
/// named (`materialized`) or not; the output for the scores 5, 12, 15, 3
/// of `a` and 1 of `b`.
fn filtered_scores(
    materialized: Materialized<String, i64>,
) -> Result<Vec<(Option<String>, Option<i64>)>> {
    let builder = StreamsBuilder::new();
    builder
        .table(
            "scores",
            Consumed::with(Serdes::string(), Serdes::i64()),
            materialized,
        )
        .filter(|_, v| *v >= 10)
        .map_values(|v| v * 2)
        .to_stream()
        .to("out", Produced::with(Serdes::string(), Serdes::i64()));
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let input = driver.create_input_topic("scores", Serdes::string(), Serdes::i64());
    input.pipe_input(s("a"), 5)?;
    input.pipe_input(s("a"), 12)?; // enters
    input.pipe_input(s("a"), 15)?; // updates
    input.pipe_input(s("a"), 3)?; // leaves: tombstone
    input.pipe_input(s("b"), 1)?;
    let output = driver.create_output_topic("out", Serdes::string(), Serdes::i64());
    output.read_key_values_to_list()
}

/// As Kafka's `KTableFilterTest`: over a source that is not materialized,
/// the filter sends no old values, so it cannot tell whether a rejected row
/// passed before, and every rejected row goes downstream as a tombstone.
#[test]
fn table_filter_over_an_unnamed_source_forwards_a_tombstone_for_every_rejected_row() -> Result<()> {
    assert_eq!(
        filtered_scores(Materialized::new())?,
        [
            (Some(s("a")), None),
            (Some(s("a")), Some(24)),
            (Some(s("a")), Some(30)),
            (Some(s("a")), None),
            (Some(s("b")), None),
        ]
    );
    Ok(())
}

/// Over a materialized (named) source the filter sends old values and
/// forwards a tombstone only for a row that passed before.
#[test]
fn table_filter_over_a_named_source_deletes_only_rows_that_stop_matching() -> Result<()> {
    assert_eq!(
        filtered_scores(Materialized::as_("scores-store"))?,
        [
            (Some(s("a")), Some(24)),
            (Some(s("a")), Some(30)),
            (Some(s("a")), None)
        ]
    );
    Ok(())
}

/// Counts users per region; with `caching`, both stores are cached.
fn region_counts(builder: &StreamsBuilder, caching: bool) {
    fn cache<V>(m: Materialized<String, V>, caching: bool) -> Materialized<String, V> {
        if caching {
            m.with_caching_enabled()
        } else {
            m.with_caching_disabled()
        }
    }
    builder
        .table(
            "users",
            strings(),
            cache(Materialized::as_("users"), caching),
        )
        .group_by(
            |user, region| (region.clone(), user.clone()),
            Grouped::with(Serdes::string(), Serdes::string()),
        )
        .count(cache(Materialized::as_("region-counts"), caching))
        .to_stream()
        .to("out", Produced::with(Serdes::string(), Serdes::i64()));
}

#[test]
fn group_by_count_subtracts_then_adds() -> Result<()> {
    group_by_count_subtracts_then_adds_with(true)?;
    group_by_count_subtracts_then_adds_with(false)
}

fn group_by_count_subtracts_then_adds_with(caching: bool) -> Result<()> {
    let builder = StreamsBuilder::new();
    region_counts(&builder, caching);
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let input = driver.create_input_topic("users", Serdes::string(), Serdes::string());
    let output = driver.create_output_topic("out", Serdes::string(), Serdes::i64());
    let row = |k: &str, v: i64| (Some(s(k)), Some(v));

    input.pipe_input(s("alice"), s("eu"))?;
    input.pipe_input(s("bob"), s("eu"))?;
    assert_eq!(
        output.read_key_values_to_list()?,
        [row("eu", 1), row("eu", 2)]
    );

    // Alice moves: subtract from the old group first, then add to the new.
    input.pipe_input(s("alice"), s("us"))?;
    assert_eq!(
        output.read_key_values_to_list()?,
        [row("eu", 1), row("us", 1)]
    );

    // Same group: one row, no transient intermediate count.
    input.pipe_input(s("bob"), s("eu"))?;
    assert_eq!(output.read_key_values_to_list()?, [row("eu", 1)]);

    // A tombstone only subtracts; the empty group stays with 0.
    input.pipe_record(TestRecord::from_parts(Some(s("alice")), None, 0))?;
    assert_eq!(output.read_key_values_to_list()?, [row("us", 0)]);
    let store = driver.get_key_value_store::<String, ValueAndTimestamp<i64>>("region-counts")?;
    assert_eq!(
        store
            .all()?
            .into_iter()
            .map(|(k, v)| (k, v.value))
            .collect::<Vec<_>>(),
        [(s("eu"), 1), (s("us"), 0)]
    );
    Ok(())
}

#[test]
fn grouped_table_describes_its_repartition() -> Result<()> {
    let builder = StreamsBuilder::new();
    region_counts(&builder, true);
    let text = builder.build()?.describe().to_string();
    // source 0, table source 1, select 2, sink 3, source 4, aggregate 5.
    for line in [
        "Processor: KTABLE-SELECT-0000000002 (stores: [])",
        "Sink: KSTREAM-SINK-0000000003 (topic: region-counts-repartition)",
        "Source: KSTREAM-SOURCE-0000000004 (topics: [region-counts-repartition])",
        "Processor: KTABLE-AGGREGATE-0000000005 (stores: [region-counts])",
        "Sub-topology: 1",
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }
    Ok(())
}

#[test]
fn group_by_aggregate_and_reduce_use_adder_and_subtractor() -> Result<()> {
    let builder = StreamsBuilder::new();
    // item -> "category:price"
    let grouped = builder
        .table("items", strings(), Materialized::new())
        .group_by(
            |_, v| {
                let (category, price) = v.split_once(':').unwrap_or((v.as_str(), "0"));
                (category.to_owned(), price.parse::<i64>().unwrap_or(0))
            },
            Grouped::with(Serdes::string(), Serdes::i64()),
        );
    grouped
        .aggregate(
            || 0i64,
            |_, price, sum| sum + price,
            |_, price, sum| sum - price,
            Materialized::as_("sum-aggregate").with_value_serde(Serdes::i64()),
        )
        .to_stream()
        .to(
            "aggregate-out",
            Produced::with(Serdes::string(), Serdes::i64()),
        );
    grouped
        .reduce(
            |sum, price| sum + price,
            |sum, price| sum - price,
            Materialized::as_("sum-reduce"),
        )
        .to_stream()
        .to(
            "reduce-out",
            Produced::with(Serdes::string(), Serdes::i64()),
        );
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let input = driver.create_input_topic("items", Serdes::string(), Serdes::string());
    input.pipe_record(TestRecord::new(s("pen"), s("office:3"), 10))?;
    input.pipe_record(TestRecord::new(s("desk"), s("office:100"), 20))?;
    input.pipe_record(TestRecord::new(s("pen"), s("office:4"), 15))?;
    input.pipe_record(TestRecord::new(s("pen"), s("toys:4"), 30))?;
    input.pipe_record(TestRecord::from_parts(Some(s("desk")), None, 40))?;
    let expected = [
        (s("office"), 3, 10),
        (s("office"), 103, 20),
        (s("office"), 104, 20),
        (s("office"), 100, 30),
        (s("toys"), 4, 30),
        (s("office"), 0, 40),
    ];
    for topic in ["aggregate-out", "reduce-out"] {
        let output = driver.create_output_topic(topic, Serdes::string(), Serdes::i64());
        let got: Vec<_> = output
            .read_records_to_list()?
            .into_iter()
            .map(|r| {
                (
                    r.key.unwrap_or_default(),
                    r.value.unwrap_or(-1),
                    r.timestamp,
                )
            })
            .collect();
        assert_eq!(got, expected, "{topic}");
    }
    Ok(())
}
