//! Tables kept in versioned stores (Kafka's KIP-914): out-of-order updates
//! at the source, filters, re-groupings and table–table joins downstream
//! of them, with the inputs and expected outputs of Kafka Streams'
//! `KTableFilterTest`, `KTableAggregateTest` and
//! `TableTableJoinIntegrationTest` (their versioned cases) and what Kafka
//! Streams 4.1 itself answers (`tests/oracle.rs`).

// The tests return streams-core's error, whose size is that crate's choice.
#![allow(clippy::result_large_err)]

use std::time::Duration;

use streams_core::{
    Result, Serdes, StreamsConfig, StreamsError, TestDriverConfig, TestRecord, TopologyTestDriver,
};
use streams_dsl::{
    Consumed, Grouped, KTable, Materialized, Produced, StreamsBuilder, Suppressed, TableJoined,
};

type Row = (Option<String>, Option<String>, i64);

/// What one input record of a join made: a value (`None`: a tombstone)
/// at a timestamp, or nothing.
type Step = Option<(Option<String>, i64)>;

fn strings() -> Consumed<String, String> {
    Consumed::with(Serdes::string(), Serdes::string())
}

fn s(v: &str) -> String {
    v.to_owned()
}

fn row(k: &str, v: Option<&str>, ts: i64) -> Row {
    (Some(s(k)), v.map(s), ts)
}

fn versioned(name: &str, history_ms: u64) -> Materialized<String, String> {
    Materialized::as_versioned(name, Duration::from_millis(history_ms))
}

/// A driver without a record cache, as Kafka's tests of these cases run.
fn driver(builder: StreamsBuilder) -> Result<TopologyTestDriver> {
    let config = StreamsConfig::from_pairs([
        ("application.id", "versioned"),
        ("statestore.cache.max.bytes", "0"),
    ])?;
    TopologyTestDriver::with_config(
        builder.build()?,
        TestDriverConfig::new().with_streams_config(config),
    )
}

fn pipe(
    driver: &TopologyTestDriver,
    topic: &str,
    records: &[(&str, Option<&str>, i64)],
) -> Result<()> {
    let input = driver.create_input_topic(topic, Serdes::string(), Serdes::string());
    for (k, v, ts) in records {
        input.pipe_record(TestRecord::from_parts(Some(s(k)), v.map(s), *ts))?;
    }
    Ok(())
}

fn read(driver: &TopologyTestDriver, topic: &str) -> Result<Vec<Row>> {
    Ok(driver
        .create_output_topic(topic, Serdes::string(), Serdes::string())
        .read_records_to_list()?
        .into_iter()
        .map(|r| (r.key, r.value, r.timestamp))
        .collect())
}

#[test]
fn a_versioned_source_forwards_out_of_order_updates_and_keeps_their_history() -> Result<()> {
    let builder = StreamsBuilder::new();
    let table = builder.table("left", strings(), versioned("left-versioned", 100));
    assert_eq!(table.queryable_store_name(), Some("left-versioned"));
    table
        .to_stream()
        .to("out", Produced::with(Serdes::string(), Serdes::string()));
    let driver = driver(builder)?;
    pipe(
        &driver,
        "left",
        &[
            ("a", Some("x"), 10),
            ("a", Some("y"), 5),
            ("a", None, 7),
            ("a", Some("z"), 12),
        ],
    )?;
    // As Kafka Streams 4.1: the source forwards the out-of-order updates
    // too (marked as not the latest); `to_stream` emits them.
    assert_eq!(
        read(&driver, "out")?,
        [
            row("a", Some("x"), 10),
            row("a", Some("y"), 5),
            row("a", None, 7),
            row("a", Some("z"), 12),
        ]
    );
    let store = driver.get_versioned_key_value_store::<String, String>("left-versioned")?;
    let at = |t| -> Result<Option<(String, i64)>> {
        Ok(store.get_as_of(&s("a"), t)?.map(|r| (r.value, r.timestamp)))
    };
    assert_eq!(at(6)?, Some((s("y"), 5)));
    assert_eq!(at(8)?, None);
    assert_eq!(at(11)?, Some((s("x"), 10)));
    assert_eq!(store.get(&s("a"))?.map(|r| r.value), Some(s("z")));
    Ok(())
}

#[test]
fn an_update_older_than_the_history_retention_is_dropped() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder
        .table("left", strings(), versioned("left-versioned", 3))
        .to_stream()
        .to("out", Produced::with(Serdes::string(), Serdes::string()));
    let driver = driver(builder)?;
    pipe(
        &driver,
        "left",
        &[
            ("a", Some("x"), 10),
            ("a", Some("y"), 6),
            ("a", Some("w"), 7),
        ],
    )?;
    assert_eq!(
        read(&driver, "out")?,
        [row("a", Some("x"), 10), row("a", Some("w"), 7)]
    );
    assert_eq!(driver.dropped_records(), 1);
    Ok(())
}

#[test]
fn to_table_can_be_versioned() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("in", strings())
        .to_table(versioned("as-table", 100))
        .to_stream()
        .to("out", Produced::with(Serdes::string(), Serdes::string()));
    let driver = driver(builder)?;
    pipe(&driver, "in", &[("a", Some("x"), 10), ("a", Some("y"), 5)])?;
    assert_eq!(
        read(&driver, "out")?,
        [row("a", Some("x"), 10), row("a", Some("y"), 5)]
    );
    let store = driver.get_versioned_key_value_store::<String, String>("as-table")?;
    assert_eq!(store.get(&s("a"))?.map(|r| r.value), Some(s("x")));
    assert_eq!(store.get_as_of(&s("a"), 7)?.map(|r| r.value), Some(s("y")));
    Ok(())
}

/// Kafka's `doTestSkipNullOnMaterialization`: a filter rejecting every
/// record, whose old values a downstream re-grouping asks for.
fn filter_output(source: Materialized<String, String>) -> Result<Vec<Row>> {
    let builder = StreamsBuilder::new();
    let table = builder.table("topic1", strings(), source);
    let filtered = table.filter(|_, v| v.eq_ignore_ascii_case("accept"));
    filtered
        .group_by(
            |k, v| (k.clone(), v.clone()),
            Grouped::with(Serdes::string(), Serdes::string()),
        )
        .reduce(
            |a, b| format!("{a}{b}"),
            |a, b| format!("{a}-{b}"),
            Materialized::new(),
        );
    filtered.to_stream().to(
        "filtered",
        Produced::with(Serdes::string(), Serdes::string()),
    );
    let driver = driver(builder)?;
    pipe(
        &driver,
        "topic1",
        &[
            ("A", Some("reject"), 5),
            ("B", Some("reject"), 10),
            ("C", Some("reject"), 20),
        ],
    )?;
    read(&driver, "filtered")
}

#[test]
fn a_filter_of_a_versioned_table_does_not_skip_null_updates() -> Result<()> {
    // Kafka's `shouldNotSkipNullIfVersionedUpstream`.
    assert_eq!(
        filter_output(versioned("versioned", 300_000))?,
        [row("A", None, 5), row("B", None, 10), row("C", None, 20)]
    );
    // And `shouldSkipNullToRepartitionWithoutMaterialization`'s
    // counterpart: a non-versioned source sends old values, and the filter
    // skips them.
    assert_eq!(filter_output(Materialized::as_("store"))?, []);
    Ok(())
}

#[test]
fn a_count_of_a_versioned_table_ignores_out_of_order_updates() -> Result<()> {
    // Kafka's `testCountOfVersionedStore`.
    let builder = StreamsBuilder::new();
    builder
        .table(
            "count-test-input",
            strings(),
            versioned("versioned", 300_000),
        )
        .group_by(
            |_, v| (v.clone(), v.clone()),
            Grouped::with(Serdes::string(), Serdes::string()),
        )
        .count(Materialized::new())
        .to_stream()
        .to("out", Produced::with(Serdes::string(), Serdes::i64()));
    let driver = driver(builder)?;
    pipe(
        &driver,
        "count-test-input",
        &[
            ("A", Some("green"), 10),
            ("B", Some("green"), 9),
            ("A", Some("blue"), 12),
            ("A", Some("blue"), 11),
            ("C", Some("yellow"), 15),
            ("D", Some("green"), 11),
        ],
    )?;
    let out: Vec<(String, i64, i64)> = driver
        .create_output_topic("out", Serdes::string(), Serdes::i64())
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
    assert_eq!(
        out,
        [
            (s("green"), 1, 10),
            (s("green"), 2, 10),
            (s("green"), 1, 12),
            (s("blue"), 1, 12),
            (s("yellow"), 1, 15),
            (s("green"), 2, 12),
        ]
    );
    Ok(())
}

#[test]
fn an_aggregate_of_a_versioned_table_ignores_out_of_order_updates() -> Result<()> {
    // Kafka's `testAggOfVersionedStore`, without its records whose
    // selector returns a null key or no pair (they emit nothing there).
    let builder = StreamsBuilder::new();
    builder
        .table("topic1", strings(), versioned("versioned", 300_000))
        .group_by(
            |_, v| (v.clone(), v.clone()),
            Grouped::with(Serdes::string(), Serdes::string()),
        )
        .aggregate(
            || s("0"),
            |_, v, agg| format!("{agg}+{v}"),
            |_, v, agg| format!("{agg}-{v}"),
            Materialized::as_("topic1-Canonized").with_value_serde(Serdes::string()),
        )
        .to_stream()
        .to("out", Produced::with(Serdes::string(), Serdes::string()));
    let driver = driver(builder)?;
    pipe(
        &driver,
        "topic1",
        &[
            ("A", Some("1"), 10),
            ("A", None, 15),
            ("A", Some("1"), 12),
            ("B", Some("2"), 20),
            ("B", Some("4"), 23),
            ("B", Some("7"), 22),
        ],
    )?;
    assert_eq!(
        read(&driver, "out")?,
        [
            row("1", Some("0+1"), 10),
            row("1", Some("0+1-1"), 15),
            row("2", Some("0+2"), 20),
            row("2", Some("0+2-2"), 23),
            row("4", Some("0+4"), 23),
        ]
    );
    Ok(())
}

// ---- table-table joins: Kafka's `TableTableJoinIntegrationTest` ----

/// `AbstractJoinIntegrationTest.input`: one key, values on `left` and
/// `right`, with out-of-order updates near the end.
const JOIN_INPUT: [(&str, Option<&str>, i64); 23] = [
    ("left", None, 1),
    ("right", None, 2),
    ("left", Some("A"), 3),
    ("right", Some("a"), 4),
    ("left", Some("B"), 5),
    ("right", Some("b"), 6),
    ("left", None, 7),
    ("right", None, 8),
    ("left", Some("C"), 9),
    ("right", Some("c"), 10),
    ("right", None, 11),
    ("left", None, 12),
    ("right", None, 13),
    ("right", Some("d"), 7),
    ("left", Some("D"), 6),
    ("left", None, 2),
    ("right", None, 3),
    ("right", Some("e"), 14),
    ("left", Some("E"), 15),
    ("left", None, 10),
    ("right", None, 9),
    ("left", Some("F"), 4),
    ("right", Some("f"), 3),
];

#[derive(Debug, Clone, Copy)]
enum Kind {
    Inner,
    Left,
    Outer,
}

#[derive(Debug, Clone, Copy)]
enum Sides {
    Both,
    LeftOnly,
    RightOnly,
}

/// The output of each input record of [`JOIN_INPUT`] (at most one each
/// here), for `kind` with the versioned `sides`; the join materialized
/// without a cache, as in Kafka's test. Also checks the join's store holds
/// the last result.
fn join_steps(kind: Kind, sides: Sides) -> Result<Vec<Step>> {
    let builder = StreamsBuilder::new();
    let history = 300_000;
    let table = |topic: &str, versioned_side: bool| -> KTable<String, String> {
        let materialized = if versioned_side {
            versioned(topic, history)
        } else {
            Materialized::as_(topic)
        };
        builder.table(topic, strings(), materialized.with_logging_disabled())
    };
    let left = table("left", matches!(sides, Sides::Both | Sides::LeftOnly));
    let right = table("right", matches!(sides, Sides::Both | Sides::RightOnly));
    let store = || {
        Materialized::as_("join-store")
            .with_key_serde(Serdes::string())
            .with_value_serde(Serdes::string())
            .with_caching_disabled()
            .with_logging_disabled()
    };
    let show = |v: Option<&String>| v.map_or("null", String::as_str).to_owned();
    let joined = match kind {
        Kind::Inner => left.join(&right, |l, r| format!("{l}-{r}"), store()),
        Kind::Left => left.left_join(&right, move |l, r| format!("{l}-{}", show(r)), store()),
        Kind::Outer => left.outer_join(
            &right,
            move |l, r| format!("{}-{}", show(l), show(r)),
            store(),
        ),
    };
    joined
        .to_stream()
        .to("output", Produced::with(Serdes::string(), Serdes::string()));
    let driver = driver(builder)?;
    let mut steps = Vec::new();
    for (topic, value, ts) in JOIN_INPUT {
        pipe(&driver, topic, &[("k", value, ts)])?;
        let out = read(&driver, "output")?;
        assert!(out.len() <= 1, "{out:?}");
        steps.push(out.into_iter().next().map(|(_, v, ts)| (v, ts)));
    }
    Ok(steps)
}

/// `expected` written as `(step index, value, timestamp)` of the steps
/// that emit.
fn steps(expected: &[(usize, Option<&str>, i64)]) -> Vec<Step> {
    let mut out = vec![None; JOIN_INPUT.len()];
    for (i, v, ts) in expected {
        out[*i] = Some((v.map(s), *ts));
    }
    out
}

#[test]
fn inner_join_of_versioned_tables_as_kafka() -> Result<()> {
    let expected = steps(&[
        (3, Some("A-a"), 4),
        (4, Some("B-a"), 5),
        (5, Some("B-b"), 6),
        (6, None, 7),
        (9, Some("C-c"), 10),
        (10, None, 11),
        (18, Some("E-e"), 15),
    ]);
    assert_eq!(join_steps(Kind::Inner, Sides::Both)?, expected);
    Ok(())
}

#[test]
fn left_join_of_versioned_tables_as_kafka() -> Result<()> {
    let expected = steps(&[
        (2, Some("A-null"), 3),
        (3, Some("A-a"), 4),
        (4, Some("B-a"), 5),
        (5, Some("B-b"), 6),
        (6, None, 7),
        (8, Some("C-null"), 9),
        (9, Some("C-c"), 10),
        (10, Some("C-null"), 11),
        (11, None, 12),
        (18, Some("E-e"), 15),
    ]);
    assert_eq!(join_steps(Kind::Left, Sides::Both)?, expected);
    Ok(())
}

#[test]
fn outer_join_of_versioned_tables_as_kafka() -> Result<()> {
    let expected = steps(&[
        (2, Some("A-null"), 3),
        (3, Some("A-a"), 4),
        (4, Some("B-a"), 5),
        (5, Some("B-b"), 6),
        (6, Some("null-b"), 7),
        (7, None, 8),
        (8, Some("C-null"), 9),
        (9, Some("C-c"), 10),
        (10, Some("C-null"), 11),
        (11, None, 12),
        (17, Some("null-e"), 14),
        (18, Some("E-e"), 15),
    ]);
    assert_eq!(join_steps(Kind::Outer, Sides::Both)?, expected);
    Ok(())
}

#[test]
fn joins_with_the_left_table_versioned_only_as_kafka() -> Result<()> {
    let common_inner = [
        (3, Some("A-a"), 4),
        (4, Some("B-a"), 5),
        (5, Some("B-b"), 6),
        (6, None, 7),
        (9, Some("C-c"), 10),
        (10, None, 11),
        (18, Some("E-e"), 15),
        (20, None, 15),
        (22, Some("E-f"), 15),
    ];
    assert_eq!(
        join_steps(Kind::Inner, Sides::LeftOnly)?,
        steps(&common_inner)
    );
    assert_eq!(
        join_steps(Kind::Left, Sides::LeftOnly)?,
        steps(&[
            (2, Some("A-null"), 3),
            (3, Some("A-a"), 4),
            (4, Some("B-a"), 5),
            (5, Some("B-b"), 6),
            (6, None, 7),
            (8, Some("C-null"), 9),
            (9, Some("C-c"), 10),
            (10, Some("C-null"), 11),
            (11, None, 12),
            (18, Some("E-e"), 15),
            (20, Some("E-null"), 15),
            (22, Some("E-f"), 15),
        ])
    );
    assert_eq!(
        join_steps(Kind::Outer, Sides::LeftOnly)?,
        steps(&[
            (2, Some("A-null"), 3),
            (3, Some("A-a"), 4),
            (4, Some("B-a"), 5),
            (5, Some("B-b"), 6),
            (6, Some("null-b"), 7),
            (7, None, 8),
            (8, Some("C-null"), 9),
            (9, Some("C-c"), 10),
            (10, Some("C-null"), 11),
            (11, None, 12),
            (13, Some("null-d"), 7),
            (16, None, 3),
            (17, Some("null-e"), 14),
            (18, Some("E-e"), 15),
            (20, Some("E-null"), 15),
            (22, Some("E-f"), 15),
        ])
    );
    Ok(())
}

#[test]
fn joins_with_the_right_table_versioned_only_as_kafka() -> Result<()> {
    assert_eq!(
        join_steps(Kind::Inner, Sides::RightOnly)?,
        steps(&[
            (3, Some("A-a"), 4),
            (4, Some("B-a"), 5),
            (5, Some("B-b"), 6),
            (6, None, 7),
            (9, Some("C-c"), 10),
            (10, None, 11),
            (18, Some("E-e"), 15),
            (19, None, 14),
            (21, Some("F-e"), 14),
        ])
    );
    assert_eq!(
        join_steps(Kind::Left, Sides::RightOnly)?,
        steps(&[
            (2, Some("A-null"), 3),
            (3, Some("A-a"), 4),
            (4, Some("B-a"), 5),
            (5, Some("B-b"), 6),
            (6, None, 7),
            (8, Some("C-null"), 9),
            (9, Some("C-c"), 10),
            (10, Some("C-null"), 11),
            (11, None, 12),
            (14, Some("D-null"), 6),
            (15, None, 2),
            (18, Some("E-e"), 15),
            (19, None, 14),
            (21, Some("F-e"), 14),
        ])
    );
    assert_eq!(
        join_steps(Kind::Outer, Sides::RightOnly)?,
        steps(&[
            (2, Some("A-null"), 3),
            (3, Some("A-a"), 4),
            (4, Some("B-a"), 5),
            (5, Some("B-b"), 6),
            (6, Some("null-b"), 7),
            (7, None, 8),
            (8, Some("C-null"), 9),
            (9, Some("C-c"), 10),
            (10, Some("C-null"), 11),
            (11, None, 12),
            (14, Some("D-null"), 6),
            (15, None, 2),
            (17, Some("null-e"), 14),
            (18, Some("E-e"), 15),
            (19, Some("null-e"), 14),
            (21, Some("F-e"), 14),
        ])
    );
    Ok(())
}

#[test]
fn a_foreign_key_join_skips_out_of_order_updates_of_a_versioned_table() -> Result<()> {
    let builder = StreamsBuilder::new();
    let left = builder.table("left", strings(), versioned("left-versioned", 1_000));
    let right = builder.table("right", strings(), versioned("right-versioned", 1_000));
    left.join_foreign_key(
        &right,
        |v: &String| v.split(':').next().map(str::to_owned),
        |l, r| format!("{l}+{r}"),
        TableJoined::new(),
        Materialized::new(),
    )
    .to_stream()
    .to("out", Produced::with(Serdes::string(), Serdes::string()));
    let driver = driver(builder)?;
    pipe(&driver, "right", &[("x", Some("X1"), 10)])?;
    pipe(&driver, "left", &[("a", Some("x:1"), 10)])?;
    assert_eq!(read(&driver, "out")?, [row("a", Some("x:1+X1"), 10)]);
    // Out of order on either side: skipped, nothing emitted.
    pipe(&driver, "right", &[("x", Some("X0"), 5)])?;
    pipe(&driver, "left", &[("a", Some("x:0"), 5)])?;
    assert_eq!(read(&driver, "out")?, []);
    assert_eq!(driver.dropped_records(), 2);
    // In order again.
    pipe(&driver, "right", &[("x", Some("X2"), 20)])?;
    assert_eq!(read(&driver, "out")?, [row("a", Some("x:1+X2"), 20)]);
    Ok(())
}

fn build_error(builder: StreamsBuilder) -> String {
    match builder.build() {
        Err(StreamsError::InvalidTopology { reason }) => reason,
        other => panic!("expected an invalid topology, got {other:?}"),
    }
}

#[test]
fn versioned_stores_are_refused_where_kafka_or_this_dsl_refuse_them() {
    // A suppressed versioned table (Kafka's `TopologyException`), also when
    // versioned semantics are inherited through a filter.
    let builder = StreamsBuilder::new();
    builder
        .table("t", strings(), versioned("v", 100))
        .filter(|_, _| true)
        .suppress(Suppressed::until_time_limit(
            Duration::from_millis(10),
            streams_dsl::BufferConfig::unbounded(),
        ));
    assert!(build_error(builder).contains("suppress() is only supported for non-versioned"));

    // A versioned global table.
    let builder = StreamsBuilder::new();
    builder.global_table("g", strings(), versioned("gv", 100));
    assert!(build_error(builder).contains("global tables cannot be versioned"));

    // An aggregation kept in a versioned store: not yet here.
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("s", strings())
        .group_by_key(Grouped::with(Serdes::string(), Serdes::string()))
        .reduce(|a, _| a.clone(), versioned("agg", 100));
    assert!(build_error(builder).contains("a versioned store"));
}
