//! Stream–table joins with a versioned table: the lookup as of the stream
//! record's timestamp, and the grace period's buffer, with the inputs and
//! expected outputs of Kafka Streams' `KStreamKTableJoinTest`
//! (`shouldDelayJoinByGracePeriod`, `shouldHandleLateJoinsWithGracePeriod`
//! and the build checks).

// The tests return streams-core's error, whose size is that crate's choice.
#![allow(clippy::result_large_err)]

use std::time::Duration;

use bytes::Bytes;
use streams_core::{
    Headers, Result, Serdes, StreamsError, TestInputTopic, TestRecord, Topology, TopologyTestDriver,
};
use streams_dsl::{Consumed, Joined, KStream, KTable, Materialized, Produced, StreamsBuilder};

type Row = (Option<i32>, Option<String>, i64);

const KEYS: [i32; 4] = [0, 1, 2, 3];

fn consumed() -> Consumed<i32, String> {
    Consumed::with(Serdes::i32(), Serdes::string())
}

/// Kafka's `makeJoin(grace)`: a stream joined with a table kept in the
/// versioned store `V-grace` (5 minutes of history), the join named
/// `Grace` with the grace period.
struct GraceJoin {
    driver: TopologyTestDriver,
    stream: TestInputTopic<i32, String>,
    table: TestInputTopic<i32, String>,
}

impl GraceJoin {
    fn topology(grace: Duration) -> Result<Topology> {
        let builder = StreamsBuilder::new();
        let stream = builder.stream("streamTopic", consumed());
        let table = builder.table(
            "tableTopic2",
            consumed(),
            Materialized::as_versioned("V-grace", Duration::from_secs(300)),
        );
        stream
            .join_table(
                &table,
                |v, t| format!("{v}+{t}"),
                Joined::with(Serdes::i32(), Serdes::string(), Serdes::string())
                    .with_name("Grace")
                    .with_grace_period(grace),
            )
            .to("output", Produced::with(Serdes::i32(), Serdes::string()));
        builder.build()
    }

    fn new(grace: Duration) -> Result<Self> {
        let driver = TopologyTestDriver::new(Self::topology(grace)?)?;
        let stream = driver.create_input_topic("streamTopic", Serdes::i32(), Serdes::string());
        let table = driver.create_input_topic("tableTopic2", Serdes::i32(), Serdes::string());
        Ok(Self {
            driver,
            stream,
            table,
        })
    }

    /// `pushToStream`: key `k` with value `<prefix><k>` at timestamp `i`.
    fn push_to_stream(&self, count: usize, prefix: &str) -> Result<()> {
        for (i, k) in KEYS.iter().take(count).enumerate() {
            self.stream
                .pipe_input_with_timestamp(*k, format!("{prefix}{k}"), i as i64)?;
        }
        Ok(())
    }

    /// `pushToTableNonRandom`: every update at timestamp 0.
    fn push_to_table(&self, count: usize, prefix: &str) -> Result<()> {
        for k in KEYS.iter().take(count) {
            self.table
                .pipe_input_with_timestamp(*k, format!("{prefix}{k}"), 0)?;
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
fn should_delay_join_by_grace_period() -> Result<()> {
    let join = GraceJoin::new(Duration::from_millis(2))?;
    join.push_to_table(4, "Y")?;
    assert_eq!(join.output()?, []);
    // Four records in the buffer; stream time 3 lets the first two go.
    join.push_to_stream(4, "X")?;
    assert_eq!(join.output()?, [r(0, "X0+Y0", 0), r(1, "X1+Y1", 1)]);
    join.push_to_table(4, "YY")?;
    assert_eq!(join.output()?, []);
    join.push_to_stream(4, "X")?;
    assert_eq!(join.output()?, [r(0, "X0+YY0", 0), r(1, "X1+YY1", 1)]);
    join.stream
        .pipe_input_with_timestamp(5, "test".to_owned(), 7)?;
    assert_eq!(
        join.output()?,
        [
            r(2, "X2+YY2", 2),
            r(2, "X2+YY2", 2),
            r(3, "X3+YY3", 3),
            r(3, "X3+YY3", 3),
        ]
    );
    join.push_to_table(4, "YYY")?;
    assert_eq!(join.output()?, []);
    Ok(())
}

#[test]
fn should_handle_late_joins_with_grace_period() -> Result<()> {
    let join = GraceJoin::new(Duration::from_millis(2))?;
    join.push_to_table(4, "Y")?;
    assert_eq!(join.output()?, []);
    join.push_to_stream(4, "X")?;
    assert_eq!(join.output()?, [r(0, "X0+Y0", 0), r(1, "X1+Y1", 1)]);
    // Too late to wait: joined at once, evicting nothing.
    join.push_to_stream(1, "X")?;
    assert_eq!(join.output()?, [r(0, "X0+Y0", 0)]);
    Ok(())
}

#[test]
fn a_buffered_record_meets_a_table_update_that_arrived_after_it() -> Result<()> {
    let join = GraceJoin::new(Duration::from_millis(10))?;
    join.table
        .pipe_input_with_timestamp(1, "old".to_owned(), 0)?;
    // The stream record at 20 waits; the table update at 15 arrives
    // later but is valid at 20, so the join sees it.
    join.stream
        .pipe_input_with_timestamp(1, "s".to_owned(), 20)?;
    join.table
        .pipe_input_with_timestamp(1, "new".to_owned(), 15)?;
    join.table
        .pipe_input_with_timestamp(1, "newer".to_owned(), 25)?;
    assert_eq!(join.output()?, []);
    join.stream
        .pipe_input_with_timestamp(2, "t".to_owned(), 30)?;
    assert_eq!(join.output()?, [r(1, "s+new", 20)]);
    Ok(())
}

#[test]
fn buffered_records_keep_their_headers() -> Result<()> {
    let join = GraceJoin::new(Duration::from_millis(1))?;
    join.table.pipe_input_with_timestamp(1, "T".to_owned(), 0)?;
    let mut headers = Headers::new();
    headers.add("trace", Some(Bytes::from_static(b"42")));
    headers.add("empty", None);
    join.stream.pipe_record(
        TestRecord::from_parts(Some(1), Some("s".to_owned()), 5).with_headers(headers.clone()),
    )?;
    join.stream
        .pipe_input_with_timestamp(2, "t".to_owned(), 6)?;
    let out = join
        .driver
        .create_output_topic("output", Serdes::i32(), Serdes::string())
        .read_records_to_list()?;
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].value.as_deref(), Some("s+T"));
    assert_eq!(out[0].headers, headers);
    Ok(())
}

#[test]
fn the_buffer_is_a_store_of_the_join_named_after_it() -> Result<()> {
    let description = GraceJoin::topology(Duration::from_millis(2))?
        .describe()
        .to_string();
    assert!(
        description.contains("Grace-Buffer") && description.contains("V-grace"),
        "{description}"
    );
    Ok(())
}

/// A stream joined with a versioned table, without a grace period.
fn as_of_join(left: bool) -> Result<Vec<Row>> {
    let builder = StreamsBuilder::new();
    let stream = builder.stream("s", consumed());
    let table = builder.table(
        "t",
        consumed(),
        Materialized::as_versioned("t-store", Duration::from_secs(60)),
    );
    let joined = if left {
        stream.left_join_table(
            &table,
            |v, t| format!("{v}+{}", t.map_or("null", String::as_str)),
            Joined::new(),
        )
    } else {
        stream.join_table(&table, |v, t| format!("{v}+{t}"), Joined::new())
    };
    joined.to("out", Produced::with(Serdes::i32(), Serdes::string()));
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let t = driver.create_input_topic("t", Serdes::i32(), Serdes::string());
    let s = driver.create_input_topic("s", Serdes::i32(), Serdes::string());
    t.pipe_input_with_timestamp(1, "A1".to_owned(), 10)?;
    t.pipe_input_with_timestamp(1, "A2".to_owned(), 20)?;
    t.pipe_record(TestRecord::from_parts(Some(1), None, 30))?;
    for ts in [15, 25, 5, 35, 20] {
        s.pipe_input_with_timestamp(1, format!("s{ts}"), ts)?;
    }
    Ok(driver
        .create_output_topic("out", Serdes::i32(), Serdes::string())
        .read_records_to_list()?
        .into_iter()
        .map(|r| (r.key, r.value, r.timestamp))
        .collect())
}

#[test]
fn a_stream_record_meets_the_table_row_valid_at_its_timestamp() -> Result<()> {
    assert_eq!(
        as_of_join(false)?,
        [r(1, "s15+A1", 15), r(1, "s25+A2", 25), r(1, "s20+A2", 20)]
    );
    assert_eq!(
        as_of_join(true)?,
        [
            r(1, "s15+A1", 15),
            r(1, "s25+A2", 25),
            r(1, "s5+null", 5),
            r(1, "s35+null", 35),
            r(1, "s20+A2", 20),
        ]
    );
    Ok(())
}

#[test]
fn a_left_join_with_grace_joins_a_null_key_at_once() -> Result<()> {
    let builder = StreamsBuilder::new();
    let stream = builder.stream("s", consumed());
    let table = builder.table(
        "t",
        consumed(),
        Materialized::as_versioned("t-store", Duration::from_secs(60)),
    );
    stream
        .left_join_table(
            &table,
            |v, t| format!("{v}+{}", t.map_or("null", String::as_str)),
            Joined::new().with_grace_period(Duration::from_millis(5)),
        )
        .to("out", Produced::with(Serdes::i32(), Serdes::string()));
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let s = driver.create_input_topic("s", Serdes::i32(), Serdes::string());
    s.pipe_record(TestRecord::from_parts(None, Some("n".to_owned()), 3))?;
    let out = driver
        .create_output_topic("out", Serdes::i32(), Serdes::string())
        .read_records_to_list()?;
    assert_eq!(
        out.into_iter()
            .map(|r| (r.key, r.value, r.timestamp))
            .collect::<Vec<_>>(),
        [(None, Some("n+null".to_owned()), 3)]
    );
    Ok(())
}

fn stream_and_table(
    table: Materialized<String, String>,
) -> (
    StreamsBuilder,
    KStream<String, String>,
    KTable<String, String>,
) {
    let strings = || Consumed::with(Serdes::string(), Serdes::string());
    let builder = StreamsBuilder::new();
    let stream = builder.stream("topic", strings());
    let table = builder.table("topic2", strings(), table);
    (builder, stream, table)
}

fn join_with_grace(
    builder: StreamsBuilder,
    stream: &KStream<String, String>,
    table: &KTable<String, String>,
    grace: Duration,
) -> Result<()> {
    stream
        .join_table(
            table,
            |a, b| format!("{a}{b}"),
            Joined::with(Serdes::string(), Serdes::string(), Serdes::string())
                .with_name("first-join")
                .with_grace_period(grace),
        )
        .to(
            "out-one",
            Produced::with(Serdes::string(), Serdes::string()),
        );
    builder.build().map(drop)
}

fn invalid(result: Result<()>) -> String {
    match result {
        Err(StreamsError::InvalidTopology { reason }) => reason,
        other => panic!("expected an invalid topology, got {other:?}"),
    }
}

#[test]
fn should_fail_if_table_is_not_versioned() {
    let (builder, stream, table) = stream_and_table(Materialized::new());
    let reason = invalid(join_with_grace(
        builder,
        &stream,
        &table,
        Duration::from_millis(6),
    ));
    assert!(
        reason.contains("must be versioned to use a grace period"),
        "{reason}"
    );
}

#[test]
fn should_fail_if_table_is_not_versioned_but_materialization_is_inherited() {
    let (builder, stream, source) = stream_and_table(Materialized::as_("tableB"));
    let table = source.filter(|_, _| true);
    let reason = invalid(join_with_grace(
        builder,
        &stream,
        &table,
        Duration::from_millis(6),
    ));
    assert!(
        reason.contains("must be versioned to use a grace period"),
        "{reason}"
    );
}

#[test]
fn should_not_fail_if_table_is_versioned_but_materialization_is_inherited() -> Result<()> {
    let (builder, stream, source) = stream_and_table(Materialized::as_versioned(
        "tableB",
        Duration::from_secs(300),
    ));
    let table = source.filter(|_, _| true);
    join_with_grace(builder, &stream, &table, Duration::from_millis(6))
}

#[test]
fn should_fail_if_grace_period_is_longer_than_history_retention() {
    let (builder, stream, table) = stream_and_table(Materialized::as_versioned(
        "tableB",
        Duration::from_secs(300),
    ));
    let reason = invalid(join_with_grace(
        builder,
        &stream,
        &table,
        Duration::from_secs(360),
    ));
    assert!(reason.contains("history retention"), "{reason}");
    // Also through an inherited store.
    let (builder, stream, source) =
        stream_and_table(Materialized::as_versioned("V-grace", Duration::ZERO));
    let table = source.filter(|_, _| true);
    let reason = invalid(join_with_grace(
        builder,
        &stream,
        &table,
        Duration::from_millis(6),
    ));
    assert!(reason.contains("history retention"), "{reason}");
}
