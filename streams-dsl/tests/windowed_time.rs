//! Event time in windowed aggregations through the test driver: timestamp
//! extractors per source, late records routed to a dead-letter topic, the
//! `dropped-records` metric per processor, bounded suppression buffers,
//! `suppress(until_time_limit)`, and suppressed results emitted when idle
//! inputs advance stream time.

// The tests return streams-core's error, whose size is that crate's choice.
#![allow(clippy::result_large_err)]

use std::time::Duration;

use bytes::Bytes;
use streams_core::{
    ConsumedRecord, DroppedRecordsMetric, Result, Serdes, StreamsConfig, StreamsError, TaskId,
    TestDriverConfig, TestRecord, TopologyTestDriver, Window, Windowed,
};
use streams_dsl::{
    BufferConfig, Consumed, Grouped, LateRecords, Materialized, Produced, StreamsBuilder,
    StrictBufferConfig, Suppressed, TimeWindows,
};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn s(v: &str) -> String {
    v.to_owned()
}

fn w(key: &str, start: i64, end: i64) -> Windowed<String> {
    Windowed::new(s(key), Window::new(start, end))
}

/// `(key, value, timestamp)` of every record written to `out`.
fn read_windowed(
    driver: &TopologyTestDriver,
    size: i64,
) -> Result<Vec<(Windowed<String>, i64, i64)>> {
    Ok(driver
        .create_output_topic(
            "out",
            Serdes::time_windowed(Serdes::string(), size),
            Serdes::i64(),
        )
        .read_records_to_list()?
        .into_iter()
        .map(|r| (r.key.unwrap(), r.value.unwrap(), r.timestamp))
        .collect())
}

fn header(record: &TestRecord<String, String>, key: &str) -> String {
    record
        .headers
        .last(key)
        .and_then(|h| h.value.clone())
        .map(|v| String::from_utf8_lossy(&v).into_owned())
        .unwrap_or_default()
}

#[test]
fn late_records_go_to_the_dead_letter_topic_with_their_lateness() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("in", Consumed::with(Serdes::string(), Serdes::string()))
        .group_by_key(Grouped::with(Serdes::string(), Serdes::string()))
        .windowed_by(TimeWindows::of_size_and_grace(ms(10), ms(5)))
        .with_late_records(LateRecords::to_topic("late-clicks"))
        .count(Materialized::as_("counts"))
        .to_stream()
        .to(
            "out",
            Produced::with(Serdes::time_windowed(Serdes::string(), 10), Serdes::i64()),
        );
    let topology = builder.build()?;
    assert_eq!(topology.output_topics(), ["late-clicks"]);
    let aggregate = topology
        .node_names()
        .into_iter()
        .find(|n| n.starts_with("KSTREAM-AGGREGATE-"))
        .map(str::to_owned)
        .unwrap();
    let driver = TopologyTestDriver::new(topology)?;
    let input = driver.create_input_topic("in", Serdes::string(), Serdes::string());
    let mut headers = streams_core::Headers::new();
    headers.add("trace", Some(Bytes::from_static(b"t-1")));
    input.pipe_input_with_timestamp(s("a"), s("x"), 3)?;
    input.pipe_input_with_timestamp(s("a"), s("y"), 21)?;
    // [0, 10) closed at stream time 15: 'late' is dropped and routed.
    input.pipe_record(TestRecord::new(s("a"), s("late"), 9).with_headers(headers))?;
    input.pipe_input_with_timestamp(s("b"), s("ok"), 17)?;
    assert_eq!(
        read_windowed(&driver, 10)?,
        [
            (w("a", 0, 10), 1, 3),
            (w("a", 20, 30), 1, 21),
            (w("b", 10, 20), 1, 17)
        ]
    );
    let late = driver
        .create_output_topic("late-clicks", Serdes::string(), Serdes::string())
        .read_records_to_list()?;
    assert_eq!(late.len(), 1);
    let record = &late[0];
    assert_eq!(
        (record.key.as_deref(), record.value.as_deref()),
        (Some("a"), Some("late"))
    );
    assert_eq!(record.timestamp, 9);
    assert_eq!(header(record, "late.by.ms"), "12");
    assert_eq!(header(record, "late.window.start"), "0");
    assert_eq!(header(record, "late.window.end"), "10");
    assert_eq!(header(record, "trace"), "t-1");
    assert_eq!(driver.dropped_records(), 1);
    assert_eq!(
        driver.dropped_records_metrics(),
        [DroppedRecordsMetric {
            task: TaskId {
                subtopology: 0,
                partition: 0
            },
            processor: aggregate,
            count: 1
        }]
    );
    Ok(())
}

#[test]
fn a_source_extractor_gives_windows_their_event_time() -> Result<()> {
    // Values are "<event millis>"; record timestamps are all 0.
    let event_time = |record: &ConsumedRecord<'_>, _: Option<i64>| -> Result<i64> {
        let text = record
            .value
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default();
        text.parse().map_err(StreamsError::user)
    };
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>(
            "in",
            Consumed::with(Serdes::string(), Serdes::string()).with_timestamp_extractor(event_time),
        )
        .group_by_key(Grouped::with(Serdes::string(), Serdes::string()))
        .windowed_by(TimeWindows::of_size_with_no_grace(ms(10)))
        .count(Materialized::as_("counts"))
        .suppress(Suppressed::until_window_closes(
            StrictBufferConfig::unbounded(),
        ))
        .to_stream()
        .to(
            "out",
            Produced::with(Serdes::time_windowed(Serdes::string(), 10), Serdes::i64()),
        );
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let input = driver.create_input_topic("in", Serdes::string(), Serdes::string());
    for v in ["1", "4", "12", "3", "20"] {
        input.pipe_input_with_timestamp(s("k"), s(v), 0)?;
    }
    // '3' arrives after stream time 12 closed [0, 10): dropped.
    assert_eq!(
        read_windowed(&driver, 10)?,
        [(w("k", 0, 10), 2, 4), (w("k", 10, 20), 1, 12)]
    );
    assert_eq!(driver.dropped_records(), 1);
    Ok(())
}

/// `in` counted per key in 10 ms tumbling windows (no grace), suppressed
/// with `suppressed`, written to `out`.
fn suppressed_counts(suppressed: Suppressed, config: StreamsConfig) -> Result<TopologyTestDriver> {
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("in", Consumed::with(Serdes::string(), Serdes::string()))
        .group_by_key(Grouped::with(Serdes::string(), Serdes::string()))
        .windowed_by(TimeWindows::of_size_with_no_grace(ms(10)))
        .count(Materialized::as_("counts"))
        .suppress(suppressed)
        .to_stream()
        .to(
            "out",
            Produced::with(Serdes::time_windowed(Serdes::string(), 10), Serdes::i64()),
        );
    TopologyTestDriver::with_config(
        builder.build()?,
        TestDriverConfig::new().with_streams_config(config),
    )
}

#[test]
fn a_full_strict_buffer_stops_with_a_clear_error() -> Result<()> {
    let driver = suppressed_counts(
        Suppressed::until_window_closes(StrictBufferConfig::max_records(2)).with_name("final"),
        StreamsConfig::new("strict"),
    )?;
    let input = driver.create_input_topic("in", Serdes::string(), Serdes::string());
    input.pipe_input_with_timestamp(s("a"), s("x"), 1)?;
    input.pipe_input_with_timestamp(s("b"), s("x"), 2)?;
    // Updating a buffered window does not grow the buffer.
    input.pipe_input_with_timestamp(s("a"), s("x"), 3)?;
    let err = input
        .pipe_input_with_timestamp(s("c"), s("x"), 4)
        .unwrap_err();
    assert!(
        matches!(&err, StreamsError::SuppressionBufferFull { store, limit, .. } if store == "final-store" && limit == "max_records = 2"),
        "{err}"
    );
    assert!(err.to_string().contains("is full"), "{err}");

    // A byte bound counts serialized keys and values.
    let driver = suppressed_counts(
        Suppressed::until_window_closes(StrictBufferConfig::max_bytes(100)),
        StreamsConfig::new("strict-bytes"),
    )?;
    let input = driver.create_input_topic("in", Serdes::string(), Serdes::string());
    // Each entry: key 1 + window 8 bytes, value 18 + 8 bytes = 35 bytes.
    input.pipe_input_with_timestamp(s("a"), s("x"), 1)?;
    input.pipe_input_with_timestamp(s("b"), s("x"), 2)?;
    let err = input
        .pipe_input_with_timestamp(s("c"), s("x"), 3)
        .unwrap_err();
    assert!(
        matches!(&err, StreamsError::SuppressionBufferFull { limit, .. } if limit == "max_bytes = 100"),
        "{err}"
    );
    Ok(())
}

#[test]
fn until_time_limit_emits_the_latest_value_per_key_once_per_limit() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("in", Consumed::with(Serdes::string(), Serdes::string()))
        .group_by_key(Grouped::with(Serdes::string(), Serdes::string()))
        .count(Materialized::as_("counts"))
        .suppress(Suppressed::until_time_limit(
            ms(10),
            BufferConfig::unbounded(),
        ))
        .to_stream()
        .to("out", Produced::with(Serdes::string(), Serdes::i64()));
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let input = driver.create_input_topic("in", Serdes::string(), Serdes::string());
    let out = driver.create_output_topic("out", Serdes::string(), Serdes::i64());
    let read = || -> Result<Vec<(String, i64, i64)>> {
        Ok(out
            .read_records_to_list()?
            .into_iter()
            .map(|r| (r.key.unwrap(), r.value.unwrap(), r.timestamp))
            .collect())
    };
    input.pipe_input_with_timestamp(s("a"), s("x"), 100)?;
    input.pipe_input_with_timestamp(s("a"), s("x"), 104)?;
    input.pipe_input_with_timestamp(s("b"), s("x"), 105)?;
    input.pipe_input_with_timestamp(s("a"), s("x"), 109)?;
    assert!(read()?.is_empty());
    // a's buffer time is 100: due at stream time 110, with its latest value.
    input.pipe_input_with_timestamp(s("c"), s("x"), 110)?;
    assert_eq!(read()?, [(s("a"), 3, 109)]);
    // a's next update starts a new buffer time.
    input.pipe_input_with_timestamp(s("a"), s("x"), 111)?;
    input.pipe_input_with_timestamp(s("c"), s("x"), 115)?;
    assert_eq!(read()?, [(s("b"), 1, 105)]);
    input.pipe_input_with_timestamp(s("d"), s("x"), 121)?;
    assert_eq!(read()?, [(s("c"), 2, 115), (s("a"), 4, 111)]);
    Ok(())
}

#[test]
fn an_eager_buffer_emits_its_oldest_entries_early_when_full() -> Result<()> {
    let driver = suppressed_counts(
        Suppressed::until_time_limit(ms(1_000), BufferConfig::max_records(2)),
        StreamsConfig::new("eager"),
    )?;
    let input = driver.create_input_topic("in", Serdes::string(), Serdes::string());
    input.pipe_input_with_timestamp(s("a"), s("x"), 1)?;
    input.pipe_input_with_timestamp(s("b"), s("x"), 2)?;
    input.pipe_input_with_timestamp(s("b"), s("x"), 3)?;
    assert!(read_windowed(&driver, 10)?.is_empty());
    input.pipe_input_with_timestamp(s("c"), s("x"), 4)?;
    assert_eq!(read_windowed(&driver, 10)?, [(w("a", 0, 10), 1, 1)]);
    Ok(())
}

#[test]
fn idle_inputs_close_suppressed_windows_only_when_configured() -> Result<()> {
    for advance in [None, Some(100)] {
        let config = StreamsConfig::new("idle").with_task_idle_wall_clock_advance_ms(advance);
        let driver = suppressed_counts(
            Suppressed::until_window_closes(StrictBufferConfig::unbounded()),
            config,
        )?;
        let input = driver.create_input_topic("in", Serdes::string(), Serdes::string());
        input.pipe_input_with_timestamp(s("a"), s("x"), 1)?;
        input.pipe_input_with_timestamp(s("a"), s("x"), 5)?;
        driver.advance_wall_clock_time(ms(50))?;
        assert!(read_windowed(&driver, 10)?.is_empty());
        driver.advance_wall_clock_time(ms(60))?;
        let expected = if advance.is_some() {
            vec![(w("a", 0, 10), 2, 5)]
        } else {
            Vec::new()
        };
        assert_eq!(read_windowed(&driver, 10)?, expected, "{advance:?}");
    }
    Ok(())
}

#[test]
fn until_time_limit_on_a_table_emits_a_deleted_key_as_a_tombstone() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder
        .table(
            "in",
            Consumed::with(Serdes::string(), Serdes::string()),
            Materialized::as_("latest"),
        )
        .suppress(Suppressed::until_time_limit(
            ms(10),
            BufferConfig::unbounded(),
        ))
        .to_stream()
        .to("out", Produced::with(Serdes::string(), Serdes::string()));
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let input = driver.create_input_topic("in", Serdes::string(), Serdes::string());
    let out = driver.create_output_topic("out", Serdes::string(), Serdes::string());
    input.pipe_input_with_timestamp(s("a"), s("1"), 100)?;
    input.pipe_record(TestRecord::from_parts(Some(s("a")), None, 105))?;
    input.pipe_input_with_timestamp(s("b"), s("2"), 109)?;
    assert!(out.is_empty());
    input.pipe_input_with_timestamp(s("c"), s("3"), 110)?;
    let records = out.read_records_to_list()?;
    assert_eq!(records.len(), 1);
    assert_eq!(
        (records[0].key.as_deref(), records[0].value.as_deref()),
        (Some("a"), None)
    );
    assert_eq!(records[0].timestamp, 105);
    Ok(())
}

/// [`suppressed_counts`]'s topology with the production record cache and a
/// 100 ms commit interval, or, with no suppression, the windowed counts
/// themselves.
fn cached_counts(suppressed: Option<Suppressed>) -> Result<TopologyTestDriver> {
    cached_counts_with(
        suppressed,
        StreamsConfig::new("cached").with_commit_interval_ms(100),
    )
}

/// [`cached_counts`] with `config`.
fn cached_counts_with(
    suppressed: Option<Suppressed>,
    config: StreamsConfig,
) -> Result<TopologyTestDriver> {
    let builder = StreamsBuilder::new();
    let counts = builder
        .stream::<String, String>("in", Consumed::with(Serdes::string(), Serdes::string()))
        .group_by_key(Grouped::with(Serdes::string(), Serdes::string()))
        .windowed_by(TimeWindows::of_size_with_no_grace(ms(10)))
        .count(Materialized::as_("counts"));
    let counts = match suppressed {
        Some(suppressed) => counts.suppress(suppressed),
        None => counts,
    };
    counts.to_stream().to(
        "out",
        Produced::with(Serdes::time_windowed(Serdes::string(), 10), Serdes::i64()),
    );
    TopologyTestDriver::with_config(
        builder.build()?,
        TestDriverConfig::new()
            .with_streams_config(config)
            .with_production_caching(),
    )
}

#[test]
fn the_window_cache_sends_one_update_per_window_and_commit() -> Result<()> {
    let driver = cached_counts(None)?;
    let input = driver.create_input_topic("in", Serdes::string(), Serdes::string());
    // The last record is late: its window closed at stream time 12.
    for (key, ts) in [("a", 1), ("b", 5), ("a", 4), ("a", 12), ("a", 8)] {
        input.pipe_input_with_timestamp(s(key), s("x"), ts)?;
    }
    // Nothing leaves the cache before the commit interval has passed.
    assert!(read_windowed(&driver, 10)?.is_empty());
    driver.advance_wall_clock_time(ms(100))?;
    // Then each window once, with its latest count and timestamp, in the
    // order of their last update.
    assert_eq!(
        read_windowed(&driver, 10)?,
        [
            (w("b", 0, 10), 1, 5),
            (w("a", 0, 10), 2, 4),
            (w("a", 10, 20), 1, 12),
        ]
    );
    assert_eq!(driver.dropped_records(), 1);
    Ok(())
}

#[test]
fn suppress_behind_a_window_cache_emits_each_final_count_once() -> Result<()> {
    let driver = cached_counts(Some(Suppressed::until_window_closes(
        StrictBufferConfig::unbounded(),
    )))?;
    let input = driver.create_input_topic("in", Serdes::string(), Serdes::string());
    input.pipe_input_with_timestamp(s("a"), s("x"), 1)?;
    driver.advance_wall_clock_time(ms(100))?;
    // a's first count has reached the buffer; its second update waits in
    // the cache when b's record moves stream time past a's window.
    input.pipe_input_with_timestamp(s("a"), s("x"), 5)?;
    input.pipe_input_with_timestamp(s("b"), s("x"), 12)?;
    // Stream time alone does not close a's window: its last update is still
    // in the cache.
    assert!(read_windowed(&driver, 10)?.is_empty());
    driver.advance_wall_clock_time(ms(100))?;
    assert_eq!(read_windowed(&driver, 10)?, [(w("a", 0, 10), 2, 5)]);
    input.pipe_input_with_timestamp(s("c"), s("x"), 25)?;
    driver.advance_wall_clock_time(ms(100))?;
    assert_eq!(read_windowed(&driver, 10)?, [(w("b", 10, 20), 1, 12)]);
    Ok(())
}

#[test]
fn an_idle_advance_flushes_the_window_cache_before_suppress_closes_windows() -> Result<()> {
    // No commit for a minute: only the idle advance can close the window.
    let config = StreamsConfig::new("idle-cached")
        .with_commit_interval_ms(60_000)
        .with_task_idle_wall_clock_advance_ms(Some(100));
    let driver = cached_counts_with(
        Some(Suppressed::until_window_closes(
            StrictBufferConfig::unbounded(),
        )),
        config,
    )?;
    let input = driver.create_input_topic("in", Serdes::string(), Serdes::string());
    input.pipe_input_with_timestamp(s("a"), s("x"), 1)?;
    input.pipe_input_with_timestamp(s("a"), s("x"), 5)?;
    driver.advance_wall_clock_time(ms(50))?;
    assert!(read_windowed(&driver, 10)?.is_empty());
    // Idle for 150 ms: stream time moves to 155, after the cache has handed
    // a's latest count to the suppression.
    driver.advance_wall_clock_time(ms(100))?;
    assert_eq!(read_windowed(&driver, 10)?, [(w("a", 0, 10), 2, 5)]);
    driver.advance_wall_clock_time(ms(500))?;
    assert!(read_windowed(&driver, 10)?.is_empty());
    Ok(())
}
