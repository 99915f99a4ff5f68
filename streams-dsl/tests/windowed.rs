//! Windowed aggregations through the test driver: tumbling boundaries,
//! grace, late records, hopping windows, the window store and a model
//! check of windowed counts.

// The tests return streams-core's error, whose size is that crate's choice.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;
use streams_core::{Result, Serdes, TestOutputTopic, TopologyTestDriver, Window, Windowed};
use streams_dsl::{
    Consumed, Grouped, Materialized, Produced, StreamsBuilder, StrictBufferConfig, Suppressed,
    TimeWindows, ValueAndTimestamp,
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

/// `in` (String, String) grouped by key, windowed, counted in store
/// `counts`, written to `out`. Returns the driver and the builder's
/// metrics reader.
fn counting(windows: TimeWindows) -> Result<(TopologyTestDriver, streams_dsl::DslMetrics)> {
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("in", Consumed::with(Serdes::string(), Serdes::string()))
        .group_by_key(Grouped::with(Serdes::string(), Serdes::string()))
        .windowed_by(windows)
        .count(Materialized::as_("counts"))
        .to_stream()
        .to(
            "out",
            Produced::with(
                Serdes::time_windowed(Serdes::string(), windows.size_ms()),
                Serdes::i64(),
            ),
        );
    let metrics = builder.metrics();
    Ok((TopologyTestDriver::new(builder.build()?)?, metrics))
}

fn output(driver: &TopologyTestDriver, size: i64) -> TestOutputTopic<Windowed<String>, i64> {
    driver.create_output_topic(
        "out",
        Serdes::time_windowed(Serdes::string(), size),
        Serdes::i64(),
    )
}

/// `(key, value, timestamp)` of every record written to `out`.
fn read(out: &TestOutputTopic<Windowed<String>, i64>) -> Result<Vec<(Windowed<String>, i64, i64)>> {
    Ok(out
        .read_records_to_list()?
        .into_iter()
        .filter_map(|r| Some((r.key?, r.value?, r.timestamp)))
        .collect())
}

#[test]
fn tumbling_window_end_belongs_to_the_next_window() -> Result<()> {
    let (driver, _) = counting(TimeWindows::of_size_with_no_grace(ms(10)))?;
    let input = driver.create_input_topic("in", Serdes::string(), Serdes::string());
    input.pipe_input_with_timestamp(s("a"), s("x"), 0)?;
    input.pipe_input_with_timestamp(s("a"), s("x"), 9)?;
    input.pipe_input_with_timestamp(s("a"), s("x"), 10)?;
    input.pipe_input_with_timestamp(s("b"), s("x"), 19)?;
    let out = output(&driver, 10);
    assert_eq!(
        read(&out)?,
        [
            (w("a", 0, 10), 1, 0),
            (w("a", 0, 10), 2, 9),
            (w("a", 10, 20), 1, 10),
            (w("b", 10, 20), 1, 19),
        ]
    );

    let store = driver.get_window_store::<String, ValueAndTimestamp<i64>>("counts")?;
    assert_eq!(
        store.fetch(&s("a"), 0)?,
        Some(ValueAndTimestamp::make(2, 9))
    );
    assert_eq!(
        store
            .fetch_range(&s("a"), 0, 100)?
            .into_iter()
            .map(|(start, v)| (start, v.value))
            .collect::<Vec<_>>(),
        [(0, 2), (10, 1)]
    );
    assert_eq!(store.fetch_all(10, 10)?.len(), 2);
    Ok(())
}

#[test]
fn out_of_order_records_within_grace_update_their_window() -> Result<()> {
    let windows = TimeWindows::of_size_and_grace(ms(10), ms(5));
    let (driver, metrics) = counting(windows)?;
    let input = driver.create_input_topic("in", Serdes::string(), Serdes::string());
    input.pipe_input_with_timestamp(s("a"), s("x"), 3)?;
    input.pipe_input_with_timestamp(s("a"), s("x"), 14)?;
    // Stream time 14: window [0, 10) closes at 10 + 5 = 15, still open.
    input.pipe_input_with_timestamp(s("a"), s("x"), 7)?;
    let out = output(&driver, 10);
    assert_eq!(
        read(&out)?,
        [
            (w("a", 0, 10), 1, 3),
            (w("a", 10, 20), 1, 14),
            (w("a", 0, 10), 2, 7),
        ]
    );
    assert_eq!(metrics.dropped_records(), 0);
    assert_eq!(driver.dropped_records(), 0);
    Ok(())
}

#[test]
fn records_after_grace_are_dropped_and_counted() -> Result<()> {
    let windows = TimeWindows::of_size_and_grace(ms(10), ms(5));
    let (driver, metrics) = counting(windows)?;
    let input = driver.create_input_topic("in", Serdes::string(), Serdes::string());
    input.pipe_input_with_timestamp(s("a"), s("x"), 3)?;
    input.pipe_input_with_timestamp(s("a"), s("x"), 15)?;
    // Stream time 15 = end 10 + grace 5: [0, 10) is closed.
    input.pipe_input_with_timestamp(s("a"), s("x"), 9)?;
    input.pipe_input_with_timestamp(s("b"), s("x"), 0)?;
    // [10, 20) is still open.
    input.pipe_input_with_timestamp(s("a"), s("x"), 10)?;
    let out = output(&driver, 10);
    assert_eq!(
        read(&out)?,
        [
            (w("a", 0, 10), 1, 3),
            (w("a", 10, 20), 1, 15),
            (w("a", 10, 20), 2, 15),
        ]
    );
    assert_eq!(metrics.dropped_records(), 2);
    assert_eq!(driver.dropped_records(), 2);
    let store = driver.get_window_store::<String, ValueAndTimestamp<i64>>("counts")?;
    assert_eq!(store.fetch(&s("a"), 0)?.map(|v| v.value), Some(1));
    assert_eq!(store.fetch(&s("b"), 0)?, None);
    Ok(())
}

#[test]
fn hopping_windows_update_every_window_in_ascending_start() -> Result<()> {
    let windows = TimeWindows::of_size_with_no_grace(ms(10)).advance_by(ms(5));
    let (driver, _) = counting(windows)?;
    let input = driver.create_input_topic("in", Serdes::string(), Serdes::string());
    input.pipe_input_with_timestamp(s("a"), s("x"), 2)?;
    input.pipe_input_with_timestamp(s("a"), s("x"), 7)?;
    input.pipe_input_with_timestamp(s("a"), s("x"), 12)?;
    let out = output(&driver, 10);
    assert_eq!(
        read(&out)?,
        [
            (w("a", 0, 10), 1, 2),
            (w("a", 0, 10), 2, 7),
            (w("a", 5, 15), 1, 7),
            (w("a", 5, 15), 2, 12),
            (w("a", 10, 20), 1, 12),
        ]
    );
    Ok(())
}

#[test]
fn hopping_record_is_dropped_only_for_its_closed_windows() -> Result<()> {
    let windows = TimeWindows::of_size_with_no_grace(ms(10)).advance_by(ms(5));
    let (driver, metrics) = counting(windows)?;
    let input = driver.create_input_topic("in", Serdes::string(), Serdes::string());
    input.pipe_input_with_timestamp(s("a"), s("x"), 10)?;
    // 7 is in [0, 10) (closed at stream time 10) and [5, 15) (open).
    input.pipe_input_with_timestamp(s("a"), s("x"), 7)?;
    let out = output(&driver, 10);
    assert_eq!(
        read(&out)?,
        [
            (w("a", 5, 15), 1, 10),
            (w("a", 10, 20), 1, 10),
            (w("a", 5, 15), 2, 10),
        ]
    );
    assert_eq!(metrics.dropped_records(), 1);
    Ok(())
}

#[test]
fn reduce_and_aggregate_per_window() -> Result<()> {
    let builder = StreamsBuilder::new();
    let windowed = builder
        .stream::<String, String>("in", Consumed::with(Serdes::string(), Serdes::string()))
        .group_by_key(Grouped::with(Serdes::string(), Serdes::string()))
        .windowed_by(TimeWindows::of_size_with_no_grace(ms(10)));
    windowed
        .reduce(|a, b| format!("{a}{b}"), Materialized::as_("joined"))
        .to_stream()
        .to(
            "joined",
            Produced::with(
                Serdes::time_windowed(Serdes::string(), 10),
                Serdes::string(),
            ),
        );
    windowed
        .aggregate(
            || 0i64,
            |_, v, agg| agg + i64::try_from(v.len()).unwrap_or(0),
            Materialized::as_("lengths")
                .with_value_serde(Serdes::i64())
                .with_retention(ms(60_000)),
        )
        .to_stream()
        .to(
            "lengths",
            Produced::with(Serdes::time_windowed(Serdes::string(), 10), Serdes::i64()),
        );
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let input = driver.create_input_topic("in", Serdes::string(), Serdes::string());
    input.pipe_input_with_timestamp(s("a"), s("x"), 1)?;
    input.pipe_input_with_timestamp(s("a"), s("yz"), 2)?;
    input.pipe_input_with_timestamp(s("a"), s("w"), 11)?;
    let joined = driver.create_output_topic(
        "joined",
        Serdes::time_windowed(Serdes::string(), 10),
        Serdes::string(),
    );
    assert_eq!(
        joined.read_key_values_to_list()?,
        [
            (Some(w("a", 0, 10)), Some(s("x"))),
            (Some(w("a", 0, 10)), Some(s("xyz"))),
            (Some(w("a", 10, 20)), Some(s("w"))),
        ]
    );
    let lengths = driver.create_output_topic(
        "lengths",
        Serdes::time_windowed(Serdes::string(), 10),
        Serdes::i64(),
    );
    assert_eq!(lengths.read_values_to_list()?, [Some(1), Some(3), Some(1)]);
    Ok(())
}

/// Kafka 4.1 aggregates a record with a null value in time windows: its
/// `count` counts it (the case the oracle found: `a = null` at 0, tumbling
/// 1 ms, gives `a@0/1 -> 1`). `reduce` and `aggregate` skip it, since no
/// user function sees a null value, but it still moves their stream time.
#[test]
fn null_values_are_counted_in_time_windows_and_skipped_by_user_functions() -> Result<()> {
    let builder = StreamsBuilder::new();
    let metrics = builder.metrics();
    let windowed = builder
        .stream::<String, String>("in", Consumed::with(Serdes::string(), Serdes::string()))
        .group_by_key(Grouped::with(Serdes::string(), Serdes::string()))
        .windowed_by(TimeWindows::of_size_with_no_grace(ms(10)));
    let window_keys = || Serdes::time_windowed(Serdes::string(), 10);
    windowed
        .count(Materialized::as_("counts"))
        .to_stream()
        .to("counts", Produced::with(window_keys(), Serdes::i64()));
    windowed
        .reduce(|a, b| format!("{a}{b}"), Materialized::as_("joined"))
        .to_stream()
        .to("joined", Produced::with(window_keys(), Serdes::string()));
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let input = driver.create_input_topic("in", Serdes::string(), Serdes::string());
    input.pipe_record(streams_core::TestRecord::from_parts(Some(s("a")), None, 1))?;
    input.pipe_input_with_timestamp(s("a"), s("x"), 2)?;
    // A null value at 25 closes [10, 20) for the reduce too: x@12 is late.
    input.pipe_record(streams_core::TestRecord::from_parts(Some(s("b")), None, 25))?;
    input.pipe_input_with_timestamp(s("a"), s("y"), 12)?;
    let counts = driver.create_output_topic("counts", window_keys(), Serdes::i64());
    assert_eq!(
        counts.read_key_values_to_list()?,
        [
            (Some(w("a", 0, 10)), Some(1)),
            (Some(w("a", 0, 10)), Some(2)),
            (Some(w("b", 20, 30)), Some(1)),
        ]
    );
    let joined = driver.create_output_topic("joined", window_keys(), Serdes::string());
    assert_eq!(
        joined.read_key_values_to_list()?,
        [(Some(w("a", 0, 10)), Some(s("x")))]
    );
    // Two null values skipped by the reduce, and y@12 late for both.
    assert_eq!(metrics.dropped_records(), 4);
    Ok(())
}

/// Each windowed aggregation keeps its own stream time, as Kafka's
/// processors do: a record it skips (a null key) or never sees (filtered
/// out upstream) does not close its windows. The oracle's minimal case:
/// `null = ""` at 7, then `a = ""` at 0, tumbling 1 ms, no grace: Kafka
/// counts the second record.
#[test]
fn a_windowed_aggregation_keeps_its_own_stream_time() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("in", Consumed::with(Serdes::string(), Serdes::string()))
        .filter(|_, v| v != "skip")
        .group_by_key(Grouped::with(Serdes::string(), Serdes::string()))
        .windowed_by(TimeWindows::of_size_with_no_grace(ms(1)))
        .count(Materialized::as_("counts"))
        .to_stream()
        .to(
            "out",
            Produced::with(Serdes::time_windowed(Serdes::string(), 1), Serdes::i64()),
        );
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let input = driver.create_input_topic("in", Serdes::string(), Serdes::string());
    input.pipe_record(streams_core::TestRecord::from_parts(None, Some(s("")), 7))?;
    input.pipe_input_with_timestamp(s("b"), s("skip"), 9)?;
    input.pipe_input_with_timestamp(s("a"), s(""), 0)?;
    // The task's stream time is 9; the aggregation's is 0.
    assert_eq!(driver.stream_time("in")?, Some(9));
    input.pipe_input_with_timestamp(s("a"), s(""), 5)?;
    input.pipe_input_with_timestamp(s("a"), s(""), 3)?;
    let out = output(&driver, 1);
    assert_eq!(read(&out)?, [(w("a", 0, 1), 1, 0), (w("a", 5, 6), 1, 5)]);
    assert_eq!(driver.dropped_records(), 1);
    Ok(())
}

#[test]
fn window_store_is_changelogged_with_windowed_keys() -> Result<()> {
    let (driver, _) = counting(TimeWindows::of_size_with_no_grace(ms(10)))?;
    let input = driver.create_input_topic("in", Serdes::string(), Serdes::string());
    input.pipe_input_with_timestamp(s("a"), s("x"), 12)?;
    let changelog = driver.create_output_topic(
        "test-driver-counts-changelog",
        Serdes::bytes(),
        Serdes::bytes(),
    );
    let record = changelog.read_record()?;
    let mut expected = b"a".to_vec();
    expected.extend_from_slice(&10i64.to_be_bytes());
    expected.extend_from_slice(&0i32.to_be_bytes());
    assert_eq!(record.key.as_deref(), Some(expected.as_slice()));
    Ok(())
}

#[test]
fn invalid_windows_and_short_retention_fail_the_build() {
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("in", Consumed::with(Serdes::string(), Serdes::string()))
        .group_by_key(Grouped::with(Serdes::string(), Serdes::string()))
        .windowed_by(TimeWindows::of_size_with_no_grace(ms(10)).advance_by(ms(20)))
        .count(Materialized::new());
    let err = builder.build().unwrap_err().to_string();
    assert!(err.contains("advance"), "{err}");

    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("in", Consumed::with(Serdes::string(), Serdes::string()))
        .group_by_key(Grouped::with(Serdes::string(), Serdes::string()))
        .windowed_by(TimeWindows::of_size_and_grace(ms(10), ms(5)))
        .count(Materialized::as_("c").with_retention(ms(14)));
    let err = builder.build().unwrap_err().to_string();
    assert!(err.contains("retention"), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// With timestamps in ascending order (so no record is ever late), the
    /// final count of every (key, window) equals a brute-force count.
    #[test]
    fn windowed_counts_match_brute_force(
        size in 1u64..20,
        advance_frac in 0.0f64..1.0,
        mut records in proptest::collection::vec((0u8..3, 0i64..200), 1..40),
    ) {
        let advance = 1 + ((size - 1) as f64 * advance_frac) as u64;
        records.sort_by_key(|(_, ts)| *ts);
        let windows = TimeWindows::of_size_with_no_grace(ms(size)).advance_by(ms(advance));
        let (driver, metrics) = counting(windows).unwrap();
        let input = driver.create_input_topic("in", Serdes::string(), Serdes::string());
        for (key, ts) in &records {
            input.pipe_input_with_timestamp(key.to_string(), s("x"), *ts).unwrap();
        }
        let out = output(&driver, size as i64);
        let mut latest = BTreeMap::new();
        for (key, count, _) in read(&out).unwrap() {
            latest.insert((key.key, key.window.start), count);
        }
        let (size, advance) = (size as i64, advance as i64);
        let mut expected = BTreeMap::new();
        for (key, ts) in &records {
            for start in (0..=*ts).filter(|st| st % advance == 0 && *ts < st + size) {
                *expected.entry((key.to_string(), start)).or_insert(0i64) += 1;
            }
        }
        prop_assert_eq!(latest, expected);
        prop_assert_eq!(metrics.dropped_records(), 0);
    }
}

#[test]
fn suppress_until_window_closes_emits_one_final_result_per_window() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("in", Consumed::with(Serdes::string(), Serdes::string()))
        .group_by_key(Grouped::with(Serdes::string(), Serdes::string()))
        .windowed_by(TimeWindows::of_size_and_grace(ms(10), ms(5)))
        .count(Materialized::as_("counts"))
        .suppress(Suppressed::until_window_closes(
            StrictBufferConfig::unbounded(),
        ))
        .to_stream()
        .to(
            "out",
            Produced::with(Serdes::time_windowed(Serdes::string(), 10), Serdes::i64()),
        );
    let metrics = builder.metrics();
    let topology = builder.build()?;
    let text = topology.describe().to_string();
    assert!(text.contains("KTABLE-SUPPRESS-"), "{text}");
    let driver = TopologyTestDriver::new(topology)?;
    let input = driver.create_input_topic("in", Serdes::string(), Serdes::string());
    let out = output(&driver, 10);
    input.pipe_input_with_timestamp(s("a"), s("x"), 1)?;
    input.pipe_input_with_timestamp(s("a"), s("x"), 3)?;
    input.pipe_input_with_timestamp(s("b"), s("x"), 8)?;
    input.pipe_input_with_timestamp(s("a"), s("x"), 12)?;
    input.pipe_input_with_timestamp(s("a"), s("x"), 14)?;
    // Stream time 14 < 10 + 5: nothing is final yet.
    assert!(read(&out)?.is_empty());
    input.pipe_input_with_timestamp(s("b"), s("x"), 15)?;
    assert_eq!(read(&out)?, [(w("a", 0, 10), 2, 3), (w("b", 0, 10), 1, 8)]);
    // Late for [0, 10): dropped, and never re-emitted.
    input.pipe_input_with_timestamp(s("a"), s("x"), 9)?;
    input.pipe_input_with_timestamp(s("a"), s("x"), 16)?;
    assert!(read(&out)?.is_empty());
    assert_eq!(metrics.dropped_records(), 1);
    input.pipe_input_with_timestamp(s("c"), s("x"), 25)?;
    assert_eq!(
        read(&out)?,
        [(w("a", 10, 20), 3, 16), (w("b", 10, 20), 1, 15)]
    );
    // The buffer is changelogged.
    assert!(driver.produced_topic_names().iter().any(|t| t
        .starts_with("test-driver-KTABLE-SUPPRESS-STATE-STORE-")
        && t.ends_with("-changelog")));
    Ok(())
}

#[test]
fn suppress_needs_a_windowed_aggregation_upstream() {
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("in", Consumed::with(Serdes::string(), Serdes::string()))
        .group_by_key(Grouped::with(Serdes::string(), Serdes::string()))
        .windowed_by(TimeWindows::of_size_with_no_grace(ms(10)))
        .count(Materialized::as_("counts"))
        .filter(|_, v| *v > 0)
        .suppress(Suppressed::until_window_closes(
            StrictBufferConfig::unbounded(),
        ));
    let err = builder.build().unwrap_err().to_string();
    assert!(err.contains("until_window_closes"), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Suppressed output: each window closed by the last record appears
    /// exactly once, with its brute-force count.
    #[test]
    fn suppressed_counts_are_final_and_emitted_once(
        grace in 0u64..10,
        mut records in proptest::collection::vec((0u8..3, 0i64..100), 1..30),
    ) {
        records.sort_by_key(|(_, ts)| *ts);
        let builder = StreamsBuilder::new();
        builder
            .stream::<String, String>("in", Consumed::with(Serdes::string(), Serdes::string()))
            .group_by_key(Grouped::with(Serdes::string(), Serdes::string()))
            .windowed_by(TimeWindows::of_size_and_grace(ms(10), ms(grace)))
            .count(Materialized::as_("counts"))
            .suppress(Suppressed::until_window_closes(StrictBufferConfig::unbounded()))
            .to_stream()
            .to("out", Produced::with(Serdes::time_windowed(Serdes::string(), 10), Serdes::i64()));
        let driver = TopologyTestDriver::new(builder.build().unwrap()).unwrap();
        let input = driver.create_input_topic("in", Serdes::string(), Serdes::string());
        for (key, ts) in &records {
            input.pipe_input_with_timestamp(key.to_string(), s("x"), *ts).unwrap();
        }
        let stream_time = records.iter().map(|(_, ts)| *ts).max().unwrap_or(0);
        let mut expected = BTreeMap::new();
        for (key, ts) in &records {
            let start = ts - ts % 10;
            if start + 10 + grace as i64 <= stream_time {
                *expected.entry((key.to_string(), start)).or_insert(0i64) += 1;
            }
        }
        let mut got = BTreeMap::new();
        for (key, count, _) in read(&output(&driver, 10)).unwrap() {
            let previous = got.insert((key.key, key.window.start), count);
            prop_assert!(previous.is_none(), "a window was emitted twice");
        }
        prop_assert_eq!(got, expected);
    }
}

#[test]
fn windowed_aggregations_can_be_named() -> Result<()> {
    use streams_dsl::{
        Consumed, Grouped, Materialized, Named, SessionWindows, SlidingWindows, StreamsBuilder,
        TimeWindows,
    };
    let builder = StreamsBuilder::new();
    let grouped = builder
        .stream::<String, String>("in", Consumed::with(Serdes::string(), Serdes::string()))
        .group_by_key(Grouped::with(Serdes::string(), Serdes::string()));
    let minute = Duration::from_secs(60);
    grouped
        .windowed_by(TimeWindows::of_size_with_no_grace(minute))
        .count_named(
            Named::as_("per-minute"),
            Materialized::as_("per-minute-store"),
        );
    grouped
        .windowed_by_session(SessionWindows::of_inactivity_gap_with_no_grace(minute))
        .count_named(
            Named::as_("per-session"),
            Materialized::as_("per-session-store"),
        );
    grouped
        .windowed_by_sliding(SlidingWindows::of_time_difference_with_no_grace(minute))
        .count_named(Named::as_("sliding"), Materialized::as_("sliding-store"));
    let text = builder.build()?.describe().to_string();
    for name in ["per-minute", "per-session", "sliding"] {
        assert!(
            text.contains(&format!("Processor: {name} (stores: [{name}-store])")),
            "{name} in:\n{text}"
        );
    }
    assert!(!text.contains("KSTREAM-AGGREGATE"), "{text}");
    Ok(())
}
