//! Stream–table joins and `to_table`, with the inputs, timestamps and
//! expected outputs of Kafka Streams' `KStreamKTableJoinTest` and
//! `KStreamKTableLeftJoinTest`.

// The tests return streams-core's error, whose size is that crate's choice.
#![allow(clippy::result_large_err)]

use streams_core::{Result, Serdes, TestRecord, TopologyTestDriver};
use streams_dsl::{Consumed, Joined, Materialized, Produced, StreamsBuilder, ValueAndTimestamp};

type Row = (Option<i32>, Option<String>, i64);

const KEYS: [i32; 4] = [0, 1, 2, 3];

struct Fixture {
    driver: TopologyTestDriver,
}

impl Fixture {
    /// `stream.join_table(table)` (or the left join) of Kafka's test setup.
    fn new(left: bool) -> Result<Self> {
        let builder = StreamsBuilder::new();
        let consumed = || Consumed::with(Serdes::i32(), Serdes::string());
        let stream = builder.stream("streamTopic", consumed());
        let table = builder.table("tableTopic", consumed(), Materialized::new());
        let joined = if left {
            stream.left_join_table(
                &table,
                |v, t| format!("{v}+{}", t.map_or("null", String::as_str)),
                Joined::new(),
            )
        } else {
            stream.join_table(&table, |v, t| format!("{v}+{t}"), Joined::new())
        };
        joined.to("output", Produced::with(Serdes::i32(), Serdes::string()));
        Ok(Self {
            driver: TopologyTestDriver::new(builder.build()?)?,
        })
    }

    fn push_to_stream(&self, count: usize, prefix: &str) -> Result<()> {
        let input = self
            .driver
            .create_input_topic("streamTopic", Serdes::i32(), Serdes::string());
        for (i, k) in KEYS.iter().take(count).enumerate() {
            input.pipe_input_with_timestamp(*k, format!("{prefix}{k}"), i as i64)?;
        }
        Ok(())
    }

    /// Kafka's test uses random timestamps for table updates: they must not
    /// matter to the output.
    fn push_to_table(&self, count: usize, prefix: &str) -> Result<()> {
        let input = self
            .driver
            .create_input_topic("tableTopic", Serdes::i32(), Serdes::string());
        for (i, k) in KEYS.iter().take(count).enumerate() {
            input.pipe_input_with_timestamp(
                *k,
                format!("{prefix}{k}"),
                1_000_003 * (i as i64 + 7),
            )?;
        }
        Ok(())
    }

    fn push_null_values_to_table(&self, count: usize) -> Result<()> {
        let input = self
            .driver
            .create_input_topic("tableTopic", Serdes::i32(), Serdes::string());
        for k in KEYS.iter().take(count) {
            input.pipe_record(TestRecord::from_parts(Some(*k), None, 0))?;
        }
        Ok(())
    }

    fn output(&self) -> Result<Vec<Row>> {
        Ok(self
            .driver
            .create_output_topic("output", Serdes::i32(), Serdes::string())
            .read_records_to_list()?
            .into_iter()
            .map(|r| (r.key, r.value, r.timestamp))
            .collect())
    }
}

fn r(k: i32, v: &str, ts: i64) -> Row {
    (Some(k), Some(v.to_owned()), ts)
}

#[test]
fn inner_join_does_not_join_with_an_empty_table() -> Result<()> {
    let f = Fixture::new(false)?;
    f.push_to_stream(2, "X")?;
    assert_eq!(f.output()?, []);
    Ok(())
}

#[test]
fn inner_join_does_not_join_on_table_updates() -> Result<()> {
    let f = Fixture::new(false)?;
    f.push_to_stream(2, "X")?;
    assert_eq!(f.output()?, []);
    f.push_to_table(2, "Y")?;
    assert_eq!(f.output()?, []);
    f.push_to_stream(4, "X")?;
    assert_eq!(f.output()?, [r(0, "X0+Y0", 0), r(1, "X1+Y1", 1)]);
    f.push_to_table(4, "YY")?;
    assert_eq!(f.output()?, []);
    f.push_to_stream(4, "X")?;
    assert_eq!(
        f.output()?,
        [
            r(0, "X0+YY0", 0),
            r(1, "X1+YY1", 1),
            r(2, "X2+YY2", 2),
            r(3, "X3+YY3", 3)
        ]
    );
    f.push_to_table(4, "YYY")?;
    assert_eq!(f.output()?, []);
    Ok(())
}

#[test]
fn inner_join_joins_only_if_a_row_is_found() -> Result<()> {
    let f = Fixture::new(false)?;
    f.push_to_table(2, "Y")?;
    assert_eq!(f.output()?, []);
    f.push_to_stream(4, "X")?;
    assert_eq!(f.output()?, [r(0, "X0+Y0", 0), r(1, "X1+Y1", 1)]);
    Ok(())
}

#[test]
fn inner_join_forgets_rows_deleted_from_the_table() -> Result<()> {
    let f = Fixture::new(false)?;
    f.push_to_table(4, "Y")?;
    f.push_to_stream(4, "X")?;
    assert_eq!(
        f.output()?,
        [
            r(0, "X0+Y0", 0),
            r(1, "X1+Y1", 1),
            r(2, "X2+Y2", 2),
            r(3, "X3+Y3", 3)
        ]
    );
    f.push_null_values_to_table(2)?;
    assert_eq!(f.output()?, []);
    f.push_to_stream(4, "XX")?;
    assert_eq!(f.output()?, [r(2, "XX2+Y2", 2), r(3, "XX3+Y3", 3)]);
    Ok(())
}

#[test]
fn inner_join_drops_null_keys_and_values_and_counts_them() -> Result<()> {
    let f = Fixture::new(false)?;
    f.push_to_table(2, "Y")?;
    let input = f
        .driver
        .create_input_topic("streamTopic", Serdes::i32(), Serdes::string());
    input.pipe_record(TestRecord::from_parts(None, Some("A".into()), 0))?;
    input.pipe_record(TestRecord::from_parts(Some(1), None, 0))?;
    assert_eq!(f.output()?, []);
    assert_eq!(f.driver.dropped_records(), 2);
    Ok(())
}

#[test]
fn left_join_joins_with_an_empty_table() -> Result<()> {
    let f = Fixture::new(true)?;
    f.push_to_stream(2, "X")?;
    assert_eq!(f.output()?, [r(0, "X0+null", 0), r(1, "X1+null", 1)]);
    Ok(())
}

#[test]
fn left_join_does_not_join_on_table_updates() -> Result<()> {
    let f = Fixture::new(true)?;
    f.push_to_stream(2, "X")?;
    assert_eq!(f.output()?, [r(0, "X0+null", 0), r(1, "X1+null", 1)]);
    f.push_to_table(2, "Y")?;
    assert_eq!(f.output()?, []);
    f.push_to_stream(4, "X")?;
    assert_eq!(
        f.output()?,
        [
            r(0, "X0+Y0", 0),
            r(1, "X1+Y1", 1),
            r(2, "X2+null", 2),
            r(3, "X3+null", 3)
        ]
    );
    f.push_to_table(4, "YY")?;
    assert_eq!(f.output()?, []);
    f.push_to_stream(4, "X")?;
    assert_eq!(
        f.output()?,
        [
            r(0, "X0+YY0", 0),
            r(1, "X1+YY1", 1),
            r(2, "X2+YY2", 2),
            r(3, "X3+YY3", 3)
        ]
    );
    Ok(())
}

#[test]
fn left_join_joins_deleted_rows_with_none() -> Result<()> {
    let f = Fixture::new(true)?;
    f.push_to_table(4, "Y")?;
    assert_eq!(f.output()?, []);
    f.push_to_stream(4, "X")?;
    assert_eq!(
        f.output()?,
        [
            r(0, "X0+Y0", 0),
            r(1, "X1+Y1", 1),
            r(2, "X2+Y2", 2),
            r(3, "X3+Y3", 3)
        ]
    );
    f.push_null_values_to_table(2)?;
    assert_eq!(f.output()?, []);
    f.push_to_stream(4, "XX")?;
    assert_eq!(
        f.output()?,
        [
            r(0, "XX0+null", 0),
            r(1, "XX1+null", 1),
            r(2, "XX2+Y2", 2),
            r(3, "XX3+Y3", 3)
        ]
    );
    Ok(())
}

/// Kafka's KIP-962: a left join keeps a record with a null key (it has no
/// row to join); a null value is still dropped.
#[test]
fn left_join_keeps_null_keys_and_drops_null_values() -> Result<()> {
    let f = Fixture::new(true)?;
    let input = f
        .driver
        .create_input_topic("streamTopic", Serdes::i32(), Serdes::string());
    input.pipe_record(TestRecord::from_parts(None, Some("A".into()), 4))?;
    input.pipe_record(TestRecord::from_parts(Some(1), None, 5))?;
    assert_eq!(f.output()?, [(None, Some("A+null".into()), 4)]);
    assert_eq!(f.driver.dropped_records(), 1);
    Ok(())
}

/// A re-keyed stream joined with two tables is repartitioned once, through
/// a topic named after the re-keying node, as Kafka's
/// `shouldReuseRepartitionTopicWithGeneratedName`.
#[test]
fn a_rekeyed_stream_is_repartitioned_once_for_two_joins() -> Result<()> {
    let builder = StreamsBuilder::new();
    let strings = || Consumed::with(Serdes::string(), Serdes::string());
    let stream = builder.stream("topic", strings());
    let table_b = builder.table("topic2", strings(), Materialized::new());
    let table_c = builder.table("topic3", strings(), Materialized::new());
    let rekeyed = stream.map(|k, v| (v.clone(), k.cloned().unwrap_or_default()));
    let joined = || Joined::new().with_value_serde(Serdes::string());
    rekeyed
        .join_table(&table_b, |a, b| format!("{a}{b}"), joined())
        .to(
            "out-one",
            Produced::with(Serdes::string(), Serdes::string()),
        );
    rekeyed
        .join_table(&table_c, |a, b| format!("{a}{b}"), joined())
        .to(
            "out-two",
            Produced::with(Serdes::string(), Serdes::string()),
        );
    let text = builder.build()?.describe().to_string();
    let expected = [
        "Source: KSTREAM-SOURCE-0000000000 (topics: [topic])",
        "Processor: KSTREAM-MAP-0000000007 (stores: [])",
        "Processor: KSTREAM-FILTER-0000000009 (stores: [])",
        "Sink: KSTREAM-SINK-0000000008 (topic: KSTREAM-MAP-0000000007-repartition)",
        "Source: KSTREAM-SOURCE-0000000010 (topics: [KSTREAM-MAP-0000000007-repartition])",
        "--> KSTREAM-JOIN-0000000011, KSTREAM-JOIN-0000000016",
        "Processor: KSTREAM-JOIN-0000000011 (stores: [topic2-STATE-STORE-0000000001])",
        "Processor: KSTREAM-JOIN-0000000016 (stores: [topic3-STATE-STORE-0000000004])",
    ];
    for line in expected {
        assert!(text.contains(line), "{line} in\n{text}");
    }
    assert_eq!(text.matches("Sub-topology:").count(), 2, "{text}");
    Ok(())
}

/// With a name, the repartition topic is `<name>-repartition`.
#[test]
fn a_named_join_names_its_repartition_topic() -> Result<()> {
    let builder = StreamsBuilder::new();
    let strings = || Consumed::with(Serdes::string(), Serdes::string());
    let stream = builder.stream("topic", strings());
    let table = builder.table("topic2", strings(), Materialized::new());
    stream
        .map(|k, v| (v.clone(), k.cloned().unwrap_or_default()))
        .join_table(
            &table,
            |a, b| format!("{a}{b}"),
            Joined::with(Serdes::string(), Serdes::string(), Serdes::string())
                .with_name("first-join"),
        )
        .to(
            "out-one",
            Produced::with(Serdes::string(), Serdes::string()),
        );
    let text = builder.build()?.describe().to_string();
    assert!(text.contains("(topic: first-join-repartition)"), "{text}");
    assert!(
        text.contains("Processor: first-join (stores: [topic2-STATE-STORE-0000000001])"),
        "{text}"
    );
    Ok(())
}

/// A re-keyed stream joined end to end: the join sees the new keys.
#[test]
fn a_rekeyed_stream_joins_on_its_new_key() -> Result<()> {
    let builder = StreamsBuilder::new();
    let strings = || Consumed::with(Serdes::string(), Serdes::string());
    let orders = builder.stream("orders", strings());
    let customers = builder.table("customers", strings(), Materialized::new());
    orders
        .select_key(|_, v| v.split(':').next().unwrap_or_default().to_owned())
        .join_table(
            &customers,
            |o, c| format!("{o} by {c}"),
            Joined::new().with_value_serde(Serdes::string()),
        )
        .to("out", Produced::with(Serdes::string(), Serdes::string()));
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let c = driver.create_input_topic("customers", Serdes::string(), Serdes::string());
    let o = driver.create_input_topic("orders", Serdes::string(), Serdes::string());
    c.pipe_input("alice".into(), "Alice".into())?;
    o.pipe_input_with_timestamp("o1".into(), "alice:book".into(), 10)?;
    o.pipe_input_with_timestamp("o2".into(), "bob:pen".into(), 11)?;
    let out = driver.create_output_topic("out", Serdes::string(), Serdes::string());
    let rows: Vec<_> = out
        .read_records_to_list()?
        .into_iter()
        .map(|r| (r.key, r.value, r.timestamp))
        .collect();
    assert_eq!(
        rows,
        [(Some("alice".into()), Some("alice:book by Alice".into()), 10)]
    );
    Ok(())
}

/// `to_table`: upserts, tombstones, null keys dropped, and the store
/// queryable; a stream-table join reads it.
#[test]
fn to_table_materializes_the_latest_value_per_key() -> Result<()> {
    let builder = StreamsBuilder::new();
    let metrics = builder.metrics();
    let strings = || Consumed::with(Serdes::string(), Serdes::string());
    let table = builder
        .stream("in", strings())
        .to_table(Materialized::as_("latest"));
    assert_eq!(table.queryable_store_name(), Some("latest"));
    table
        .to_stream()
        .to("out", Produced::with(Serdes::string(), Serdes::string()));
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let input = driver.create_input_topic("in", Serdes::string(), Serdes::string());
    input.pipe_input_with_timestamp("a".into(), "1".into(), 1)?;
    input.pipe_input_with_timestamp("b".into(), "2".into(), 2)?;
    input.pipe_input_with_timestamp("a".into(), "3".into(), 3)?;
    input.pipe_record(TestRecord::from_parts(Some("b".into()), None, 4))?;
    input.pipe_record(TestRecord::from_parts(None, Some("x".into()), 5))?;
    let out = driver.create_output_topic("out", Serdes::string(), Serdes::string());
    let rows: Vec<_> = out
        .read_records_to_list()?
        .into_iter()
        .map(|r| (r.key, r.value, r.timestamp))
        .collect();
    assert_eq!(
        rows,
        [
            (Some("a".into()), Some("1".into()), 1),
            (Some("b".into()), Some("2".into()), 2),
            (Some("a".into()), Some("3".into()), 3),
            (Some("b".into()), None, 4),
        ]
    );
    let store = driver.get_key_value_store::<String, ValueAndTimestamp<String>>("latest")?;
    assert_eq!(
        store.all()?,
        [("a".to_owned(), ValueAndTimestamp::make("3".to_owned(), 3))]
    );
    assert_eq!(metrics.dropped_records(), 1);
    Ok(())
}
