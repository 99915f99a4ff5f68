//! Table–table joins on the primary key, with the inputs, timestamps and
//! expected outputs of Kafka Streams' `KTableKTableInnerJoinTest`,
//! `KTableKTableLeftJoinTest` and `KTableKTableOuterJoinTest`.

// The tests return streams-core's error, whose size is that crate's choice.
#![allow(clippy::result_large_err)]

use streams_core::{Result, Serdes, TestRecord, TopologyTestDriver};
use streams_dsl::{
    Consumed, Grouped, KTable, Materialized, Produced, StreamsBuilder, ValueAndTimestamp,
};

type Row = (Option<i32>, Option<String>, i64);

fn consumed() -> Consumed<i32, String> {
    Consumed::with(Serdes::i32(), Serdes::string())
}

fn to_string_joiner(l: Option<&String>, r: Option<&String>) -> String {
    format!(
        "{}+{}",
        l.map_or("null", String::as_str),
        r.map_or("null", String::as_str)
    )
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Inner,
    Left,
    Outer,
}

/// `table1 <kind> table2`, with the two source tables given `m1` and
/// `m2` and the join `joined`.
fn join(
    builder: &StreamsBuilder,
    kind: Kind,
    table1: &KTable<i32, String>,
    table2: &KTable<i32, String>,
    joined: Materialized<i32, String>,
) -> KTable<i32, String> {
    let _ = builder;
    match kind {
        Kind::Inner => table1.join(table2, |l, r| to_string_joiner(Some(l), Some(r)), joined),
        Kind::Left => table1.left_join(table2, |l, r| to_string_joiner(Some(l), r), joined),
        Kind::Outer => table1.outer_join(table2, to_string_joiner, joined),
    }
}

/// The steps of Kafka's `doTestJoin`, each the records it pipes; returns
/// the output each step produced.
fn run_steps(driver: &TopologyTestDriver) -> Result<Vec<Vec<Row>>> {
    let t1 = driver.create_input_topic("topic1", Serdes::i32(), Serdes::string());
    let t2 = driver.create_input_topic("topic2", Serdes::i32(), Serdes::string());
    let out = driver.create_output_topic("output", Serdes::i32(), Serdes::string());
    let keys = [0, 1, 2, 3];
    let rec = |k: Option<i32>, v: Option<String>, ts: i64| TestRecord::from_parts(k, v, ts);
    let mut steps = Vec::new();
    let read = || -> Result<Vec<Row>> {
        Ok(out
            .read_records_to_list()?
            .into_iter()
            .map(|r| (r.key, r.value, r.timestamp))
            .collect())
    };
    for &k in &keys[..2] {
        t1.pipe_record(rec(Some(k), Some(format!("X{k}")), 5 + i64::from(k)))?;
    }
    t1.pipe_record(rec(None, Some("SomeVal".into()), 42))?;
    steps.push(read()?);
    for &k in &keys[..2] {
        t2.pipe_record(rec(Some(k), Some(format!("Y{k}")), 10 * i64::from(k)))?;
    }
    t2.pipe_record(rec(None, Some("AnotherVal".into()), 73))?;
    steps.push(read()?);
    for &k in &keys {
        t1.pipe_record(rec(Some(k), Some(format!("XX{k}")), 7))?;
    }
    steps.push(read()?);
    for &k in &keys {
        t2.pipe_record(rec(Some(k), Some(format!("YY{k}")), 5 * i64::from(k)))?;
    }
    steps.push(read()?);
    for &k in &keys {
        t1.pipe_record(rec(Some(k), Some(format!("XXX{k}")), 6))?;
    }
    steps.push(read()?);
    t2.pipe_record(rec(Some(0), None, 5))?;
    t2.pipe_record(rec(Some(1), None, 7))?;
    steps.push(read()?);
    for &k in &keys {
        t1.pipe_record(rec(Some(k), Some(format!("XXXX{k}")), 13))?;
    }
    steps.push(read()?);
    for (k, ts) in [(0, 0), (1, 42), (2, 5), (3, 20)] {
        t1.pipe_record(rec(Some(k), None, ts))?;
    }
    steps.push(read()?);
    Ok(steps)
}

fn r(k: i32, v: Option<&str>, ts: i64) -> Row {
    (Some(k), v.map(str::to_owned), ts)
}

fn joined_steps(kind: Kind, joined: Materialized<i32, String>) -> Result<Vec<Vec<Row>>> {
    let builder = StreamsBuilder::new();
    let table1 = builder.table("topic1", consumed(), Materialized::new());
    let table2 = builder.table("topic2", consumed(), Materialized::new());
    join(&builder, kind, &table1, &table2, joined)
        .to_stream()
        .to("output", Produced::with(Serdes::i32(), Serdes::string()));
    let driver = TopologyTestDriver::new(builder.build()?)?;
    run_steps(&driver)
}

fn expected_inner() -> Vec<Vec<Row>> {
    vec![
        vec![],
        vec![r(0, Some("X0+Y0"), 5), r(1, Some("X1+Y1"), 10)],
        vec![r(0, Some("XX0+Y0"), 7), r(1, Some("XX1+Y1"), 10)],
        vec![
            r(0, Some("XX0+YY0"), 7),
            r(1, Some("XX1+YY1"), 7),
            r(2, Some("XX2+YY2"), 10),
            r(3, Some("XX3+YY3"), 15),
        ],
        vec![
            r(0, Some("XXX0+YY0"), 6),
            r(1, Some("XXX1+YY1"), 6),
            r(2, Some("XXX2+YY2"), 10),
            r(3, Some("XXX3+YY3"), 15),
        ],
        vec![r(0, None, 6), r(1, None, 7)],
        vec![r(2, Some("XXXX2+YY2"), 13), r(3, Some("XXXX3+YY3"), 15)],
        vec![r(2, None, 10), r(3, None, 20)],
    ]
}

fn expected_left() -> Vec<Vec<Row>> {
    vec![
        vec![r(0, Some("X0+null"), 5), r(1, Some("X1+null"), 6)],
        vec![r(0, Some("X0+Y0"), 5), r(1, Some("X1+Y1"), 10)],
        vec![
            r(0, Some("XX0+Y0"), 7),
            r(1, Some("XX1+Y1"), 10),
            r(2, Some("XX2+null"), 7),
            r(3, Some("XX3+null"), 7),
        ],
        vec![
            r(0, Some("XX0+YY0"), 7),
            r(1, Some("XX1+YY1"), 7),
            r(2, Some("XX2+YY2"), 10),
            r(3, Some("XX3+YY3"), 15),
        ],
        vec![
            r(0, Some("XXX0+YY0"), 6),
            r(1, Some("XXX1+YY1"), 6),
            r(2, Some("XXX2+YY2"), 10),
            r(3, Some("XXX3+YY3"), 15),
        ],
        vec![r(0, Some("XXX0+null"), 6), r(1, Some("XXX1+null"), 7)],
        vec![
            r(0, Some("XXXX0+null"), 13),
            r(1, Some("XXXX1+null"), 13),
            r(2, Some("XXXX2+YY2"), 13),
            r(3, Some("XXXX3+YY3"), 15),
        ],
        vec![
            r(0, None, 0),
            r(1, None, 42),
            r(2, None, 10),
            r(3, None, 20),
        ],
    ]
}

fn expected_outer() -> Vec<Vec<Row>> {
    let mut steps = expected_left();
    steps[7] = vec![
        r(0, None, 0),
        r(1, None, 42),
        r(2, Some("null+YY2"), 10),
        r(3, Some("null+YY3"), 20),
    ];
    steps
}

#[test]
fn inner_join_as_kafka() -> Result<()> {
    assert_eq!(
        joined_steps(Kind::Inner, Materialized::new())?,
        expected_inner()
    );
    Ok(())
}

#[test]
fn left_join_as_kafka() -> Result<()> {
    assert_eq!(
        joined_steps(Kind::Left, Materialized::new())?,
        expected_left()
    );
    Ok(())
}

#[test]
fn outer_join_as_kafka() -> Result<()> {
    assert_eq!(
        joined_steps(Kind::Outer, Materialized::new())?,
        expected_outer()
    );
    Ok(())
}

/// Materialized (uncached), each join emits the same and keeps its
/// latest rows queryable.
#[test]
fn materialized_joins_emit_the_same_and_are_queryable() -> Result<()> {
    for (kind, expected) in [
        (Kind::Inner, expected_inner()),
        (Kind::Left, expected_left()),
        (Kind::Outer, expected_outer()),
    ] {
        let builder = StreamsBuilder::new();
        let table1 = builder.table("topic1", consumed(), Materialized::new());
        let table2 = builder.table("topic2", consumed(), Materialized::new());
        let joined = join(
            &builder,
            kind,
            &table1,
            &table2,
            Materialized::as_("joined")
                .with_value_serde(Serdes::string())
                .with_caching_disabled(),
        );
        assert_eq!(joined.queryable_store_name(), Some("joined"));
        joined
            .to_stream()
            .to("output", Produced::with(Serdes::i32(), Serdes::string()));
        let driver = TopologyTestDriver::new(builder.build()?)?;
        assert_eq!(run_steps(&driver)?, expected, "{kind:?}");
        let store = driver.get_key_value_store::<i32, ValueAndTimestamp<String>>("joined")?;
        let rows: Vec<(i32, String, i64)> = store
            .all()?
            .into_iter()
            .map(|(k, v)| (k, v.value, v.timestamp))
            .collect();
        let want: Vec<(i32, String, i64)> = match kind {
            Kind::Inner | Kind::Left => vec![],
            Kind::Outer => vec![(2, "null+YY2".into(), 10), (3, "null+YY3".into(), 20)],
        };
        assert_eq!(rows, want, "{kind:?}");
    }
    Ok(())
}

/// A join read through a filtered side's getter: the filter needs no store.
#[test]
fn a_filtered_table_is_joined_through_its_parent_store() -> Result<()> {
    let builder = StreamsBuilder::new();
    let table1 = builder.table("topic1", consumed(), Materialized::new());
    let table2 = builder
        .table("topic2", consumed(), Materialized::new())
        .filter(|_, v| !v.ends_with('1'));
    table1
        .join(&table2, |l, r| format!("{l}+{r}"), Materialized::new())
        .to_stream()
        .to("output", Produced::with(Serdes::i32(), Serdes::string()));
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let t1 = driver.create_input_topic("topic1", Serdes::i32(), Serdes::string());
    let t2 = driver.create_input_topic("topic2", Serdes::i32(), Serdes::string());
    let out = driver.create_output_topic("output", Serdes::i32(), Serdes::string());
    t2.pipe_input_with_timestamp(0, "Y0".into(), 1)?;
    t2.pipe_input_with_timestamp(1, "Y1".into(), 1)?;
    t1.pipe_input_with_timestamp(0, "X0".into(), 2)?;
    t1.pipe_input_with_timestamp(1, "X1".into(), 2)?;
    assert_eq!(
        out.read_key_values_to_list()?,
        [(Some(0), Some("X0+Y0".into()))]
    );
    Ok(())
}

/// A downstream aggregation subtracts the join's old rows: counting joined
/// rows per value stays exact as both sides change.
#[test]
fn an_aggregation_of_a_join_subtracts_old_rows() -> Result<()> {
    let builder = StreamsBuilder::new();
    let table1 = builder.table("topic1", consumed(), Materialized::new());
    let table2 = builder.table("topic2", consumed(), Materialized::new());
    table1
        .left_join(
            &table2,
            |l, r| format!("{l}+{}", r.map_or("null", |r| r.as_str())),
            Materialized::new(),
        )
        .group_by(
            |_, v| (v.clone(), v.clone()),
            Grouped::with(Serdes::string(), Serdes::string()),
        )
        .count(Materialized::as_("counts").with_caching_disabled())
        .to_stream()
        .to("output", Produced::with(Serdes::string(), Serdes::i64()));
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let t1 = driver.create_input_topic("topic1", Serdes::i32(), Serdes::string());
    let t2 = driver.create_input_topic("topic2", Serdes::i32(), Serdes::string());
    let out = driver.create_output_topic("output", Serdes::string(), Serdes::i64());
    t1.pipe_input_with_timestamp(0, "A".into(), 1)?;
    t1.pipe_input_with_timestamp(1, "A".into(), 2)?;
    t2.pipe_input_with_timestamp(0, "B".into(), 3)?;
    t1.pipe_record(TestRecord::from_parts(Some(1), None, 4))?;
    assert_eq!(
        out.read_key_values_to_list()?,
        [
            (Some("A+null".into()), Some(1)),
            (Some("A+null".into()), Some(2)),
            (Some("A+null".into()), Some(1)),
            (Some("A+B".into()), Some(1)),
            (Some("A+null".into()), Some(0)),
        ]
    );
    Ok(())
}

/// Both sides' topics are one co-partitioned group: one sub-topology.
#[test]
fn both_tables_are_read_by_one_sub_topology() -> Result<()> {
    let builder = StreamsBuilder::new();
    let table1 = builder.table("topic1", consumed(), Materialized::new());
    let table2 = builder.table("topic2", consumed(), Materialized::new());
    table1
        .join(&table2, |l, r| format!("{l}+{r}"), Materialized::new())
        .to_stream()
        .to("output", Produced::with(Serdes::i32(), Serdes::string()));
    let text = builder.build()?.describe().to_string();
    assert_eq!(text.matches("Sub-topology:").count(), 1, "{text}");
    for node in [
        "KTABLE-MERGE-0000000006",
        "KTABLE-JOINTHIS-0000000007",
        "KTABLE-JOINOTHER-0000000008",
    ] {
        assert!(text.contains(node), "{node} in {text}");
    }
    Ok(())
}
