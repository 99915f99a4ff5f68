//! Stream–global table joins, with the inputs, timestamps and expected
//! outputs of Kafka Streams' `KStreamGlobalKTableJoinTest` and
//! `KStreamGlobalKTableLeftJoinTest`, and the global table itself.

// The tests return streams-core's error, whose size is that crate's choice.
#![allow(clippy::result_large_err)]

use std::time::Duration;

use streams_core::{Result, Serdes, TestInputTopic, TestRecord, TopologyTestDriver};
use streams_dsl::{Consumed, Materialized, Produced, StreamsBuilder};

type Row = (Option<i32>, Option<String>, i64);

const KEYS: [i32; 4] = [0, 1, 2, 3];

/// The stream value's foreign key: its second comma-separated token.
fn foreign_key(value: &str) -> Option<String> {
    value.split(',').nth(1).map(str::to_owned)
}

struct Fixture {
    driver: TopologyTestDriver,
    stream: TestInputTopic<i32, String>,
    table: TestInputTopic<String, String>,
}

impl Fixture {
    fn new(left: bool) -> Result<Self> {
        let builder = StreamsBuilder::new();
        let stream = builder.stream(
            "streamTopic",
            Consumed::with(Serdes::i32(), Serdes::string()),
        );
        let table = builder.global_table(
            "globalTableTopic",
            Consumed::with(Serdes::string(), Serdes::string()),
            Materialized::new(),
        );
        let mapper = |_: Option<&i32>, v: &String| foreign_key(v);
        let joined = if left {
            stream.left_join_global(&table, mapper, |v, g| {
                format!("{v}+{}", g.map_or("null", String::as_str))
            })
        } else {
            stream.join_global(&table, mapper, |v, g| format!("{v}+{g}"))
        };
        joined.to("output", Produced::with(Serdes::i32(), Serdes::string()));
        let driver = TopologyTestDriver::new(builder.build()?)?;
        // Stream timestamps advance by 1 ms from 0; table records keep 0.
        let stream = driver.create_input_topic_with_time(
            "streamTopic",
            Serdes::i32(),
            Serdes::string(),
            0,
            Duration::from_millis(1),
        );
        let table =
            driver.create_input_topic("globalTableTopic", Serdes::string(), Serdes::string());
        Ok(Self {
            driver,
            stream,
            table,
        })
    }

    fn push_to_stream(
        &self,
        count: usize,
        prefix: &str,
        foreign_key: bool,
        null_key: bool,
    ) -> Result<()> {
        for (i, k) in KEYS.iter().take(count).enumerate() {
            let mut value = format!("{prefix}{k}");
            if foreign_key {
                value.push_str(&format!(",FKey{k}"));
            }
            if null_key && i == 0 {
                self.stream.pipe_value(value)?;
            } else {
                self.stream.pipe_input(*k, value)?;
            }
        }
        Ok(())
    }

    fn push_to_table(&self, count: usize, prefix: &str) -> Result<()> {
        for k in KEYS.iter().take(count) {
            self.table
                .pipe_input(format!("FKey{k}"), format!("{prefix}{k}"))?;
        }
        Ok(())
    }

    fn push_null_values_to_table(&self, count: usize) -> Result<()> {
        for k in KEYS.iter().take(count) {
            self.table
                .pipe_record(TestRecord::from_parts(Some(format!("FKey{k}")), None, 0))?;
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
fn the_global_topic_is_no_source_of_any_task() -> Result<()> {
    let builder = StreamsBuilder::new();
    let stream = builder.stream(
        "streamTopic",
        Consumed::with(Serdes::i32(), Serdes::string()),
    );
    let table = builder.global_table(
        "globalTableTopic",
        Consumed::with(Serdes::string(), Serdes::string()),
        Materialized::new(),
    );
    assert_eq!(
        table.queryable_store_name(),
        "globalTableTopic-STATE-STORE-0000000001"
    );
    stream
        .join_global(
            &table,
            |_, v: &String| foreign_key(v),
            |v, g| format!("{v}+{g}"),
        )
        .to("output", Produced::with(Serdes::i32(), Serdes::string()));
    let topology = builder.build()?;
    assert_eq!(topology.source_topics(), ["streamTopic"]);
    assert_eq!(topology.global_topics(), ["globalTableTopic"]);
    let text = topology.describe().to_string();
    let expected = "Topologies:\n   Sub-topology: 0\n    \
        Source: KSTREAM-SOURCE-0000000000 (topics: [streamTopic])\n      --> KSTREAM-JOIN-0000000004\n    \
        Processor: KSTREAM-JOIN-0000000004 (stores: [])\n      --> KSTREAM-SINK-0000000005\n      <-- KSTREAM-SOURCE-0000000000\n    \
        Sink: KSTREAM-SINK-0000000005 (topic: output)\n      <-- KSTREAM-JOIN-0000000004\n\n  \
        Sub-topology: 1 for global store (will not generate tasks)\n    \
        Source: KSTREAM-SOURCE-0000000002 (topics: [globalTableTopic])\n      --> KTABLE-SOURCE-0000000003\n    \
        Processor: KTABLE-SOURCE-0000000003 (stores: [globalTableTopic-STATE-STORE-0000000001])\n      --> none\n      <-- KSTREAM-SOURCE-0000000002\n\n";
    assert_eq!(text, expected);
    Ok(())
}

#[test]
fn inner_join_does_not_join_with_an_empty_global_table() -> Result<()> {
    let f = Fixture::new(false)?;
    f.push_to_stream(2, "X", true, false)?;
    assert_eq!(f.output()?, []);
    Ok(())
}

#[test]
fn inner_join_does_not_join_on_global_table_updates() -> Result<()> {
    let f = Fixture::new(false)?;
    f.push_to_stream(2, "X", true, false)?;
    assert_eq!(f.output()?, []);
    f.push_to_table(2, "Y")?;
    assert_eq!(f.output()?, []);
    f.push_to_stream(4, "X", true, false)?;
    assert_eq!(
        f.output()?,
        [r(0, "X0,FKey0+Y0", 2), r(1, "X1,FKey1+Y1", 3)]
    );
    f.push_to_table(4, "YY")?;
    assert_eq!(f.output()?, []);
    f.push_to_stream(4, "X", true, false)?;
    assert_eq!(
        f.output()?,
        [
            r(0, "X0,FKey0+YY0", 6),
            r(1, "X1,FKey1+YY1", 7),
            r(2, "X2,FKey2+YY2", 8),
            r(3, "X3,FKey3+YY3", 9)
        ]
    );
    f.push_to_table(4, "YYY")?;
    assert_eq!(f.output()?, []);
    Ok(())
}

#[test]
fn inner_join_forgets_rows_deleted_from_the_global_table() -> Result<()> {
    let f = Fixture::new(false)?;
    f.push_to_table(4, "Y")?;
    f.push_to_stream(4, "X", true, false)?;
    assert_eq!(
        f.output()?,
        [
            r(0, "X0,FKey0+Y0", 0),
            r(1, "X1,FKey1+Y1", 1),
            r(2, "X2,FKey2+Y2", 2),
            r(3, "X3,FKey3+Y3", 3)
        ]
    );
    f.push_null_values_to_table(2)?;
    assert_eq!(f.output()?, []);
    f.push_to_stream(4, "XX", true, false)?;
    assert_eq!(
        f.output()?,
        [r(2, "XX2,FKey2+Y2", 6), r(3, "XX3,FKey3+Y3", 7)]
    );
    Ok(())
}

#[test]
fn inner_join_drops_records_whose_mapper_finds_no_key() -> Result<()> {
    let f = Fixture::new(false)?;
    f.push_to_table(4, "Y")?;
    f.push_to_stream(4, "XXX", false, false)?;
    assert_eq!(f.output()?, []);
    assert_eq!(f.driver.dropped_records(), 4);
    Ok(())
}

#[test]
fn inner_join_joins_a_null_key_with_a_mapped_key() -> Result<()> {
    let f = Fixture::new(false)?;
    f.push_to_table(2, "Y")?;
    f.push_to_stream(4, "X", true, true)?;
    assert_eq!(
        f.output()?,
        [
            (None, Some("X0,FKey0+Y0".to_owned()), 0),
            r(1, "X1,FKey1+Y1", 1)
        ]
    );
    Ok(())
}

#[test]
fn left_join_joins_with_an_empty_global_table() -> Result<()> {
    let f = Fixture::new(true)?;
    f.push_to_stream(2, "X", true, false)?;
    assert_eq!(
        f.output()?,
        [r(0, "X0,FKey0+null", 0), r(1, "X1,FKey1+null", 1)]
    );
    Ok(())
}

#[test]
fn left_join_joins_deleted_rows_with_none() -> Result<()> {
    let f = Fixture::new(true)?;
    f.push_to_table(4, "Y")?;
    f.push_to_stream(4, "X", true, false)?;
    assert_eq!(f.output()?.len(), 4);
    f.push_null_values_to_table(2)?;
    assert_eq!(f.output()?, []);
    f.push_to_stream(4, "XX", true, false)?;
    assert_eq!(
        f.output()?,
        [
            r(0, "XX0,FKey0+null", 4),
            r(1, "XX1,FKey1+null", 5),
            r(2, "XX2,FKey2+Y2", 6),
            r(3, "XX3,FKey3+Y3", 7)
        ]
    );
    Ok(())
}

/// As Kafka 4.1: a left join keeps a record whose mapper returns `None`,
/// joined with nothing.
#[test]
fn left_join_joins_records_whose_mapper_finds_no_key_with_none() -> Result<()> {
    let f = Fixture::new(true)?;
    f.push_to_table(4, "Y")?;
    f.push_to_stream(2, "XXX", false, false)?;
    assert_eq!(f.output()?, [r(0, "XXX0+null", 0), r(1, "XXX1+null", 1)]);
    assert_eq!(f.driver.dropped_records(), 0);
    Ok(())
}

#[test]
fn the_global_table_is_queryable() -> Result<()> {
    let f = Fixture::new(false)?;
    f.push_to_table(3, "Y")?;
    f.push_null_values_to_table(1)?;
    let view = f.driver.get_global_table(
        "globalTableTopic-STATE-STORE-0000000001",
        Serdes::string(),
        Serdes::string(),
    )?;
    assert_eq!(view.get(&"FKey1".to_owned())?, Some(("Y1".to_owned(), 0)));
    assert_eq!(view.get(&"FKey0".to_owned())?, None);
    assert_eq!(
        view.all()?
            .into_iter()
            .map(|(k, v, _)| (k, v))
            .collect::<Vec<_>>(),
        [("FKey1".into(), "Y1".into()), ("FKey2".into(), "Y2".into())]
    );
    Ok(())
}
