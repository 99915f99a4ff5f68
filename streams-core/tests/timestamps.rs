//! Timestamp extractors, per source and by default, their policies for
//! invalid timestamps, the stream time they drive, the `dropped-records`
//! metric, and the idle-input advance of stream time, in the test driver.

// Closures here return the crate's `Result`, whose error size is the
// crate's choice.
#![allow(clippy::result_large_err)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use streams_core::{
    processor_fn, BuiltinTimestampExtractor, ConsumedRecord, DroppedRecordsMetric,
    ProcessorContext, PunctuationType, Record, Result, Serdes, StreamsConfig, StreamsError, TaskId,
    TestDriverConfig, TestRecord, Topology, TopologyTestDriver,
};

/// `in` -> `echo` -> `out`, with `extractor` on the source if given.
fn echo(extractor: Option<streams_core::SharedTimestampExtractor>) -> Topology {
    let mut topology = Topology::new();
    topology
        .add_source_with_timestamp_extractor(
            "src",
            extractor,
            Serdes::string(),
            Serdes::string(),
            &["in"],
        )
        .unwrap()
        .add_processor(
            "echo",
            || {
                processor_fn(
                    |ctx: &mut ProcessorContext<'_, String, String>, r: Record<String, String>| {
                        // The forwarded value carries the stream time seen.
                        let seen = format!("{}", ctx.stream_time().unwrap_or(-1));
                        ctx.forward(r.with_value(Some(seen)))
                    },
                )
            },
            &["src"],
        )
        .unwrap()
        .add_sink("sink", "out", Serdes::string(), Serdes::string(), &["echo"])
        .unwrap();
    topology
}

fn driver(topology: Topology, config: StreamsConfig) -> TopologyTestDriver {
    TopologyTestDriver::with_config(
        topology,
        TestDriverConfig::new()
            .with_streams_config(config)
            .with_initial_wall_clock_ms(1_000),
    )
    .unwrap()
}

fn pipe(driver: &TopologyTestDriver, timestamps: &[i64]) -> Result<()> {
    let input = driver.create_input_topic("in", Serdes::string(), Serdes::string());
    for ts in timestamps {
        input.pipe_record(TestRecord::new("k".to_owned(), "v".to_owned(), *ts))?;
    }
    Ok(())
}

/// (timestamp, stream time seen) of every output record.
fn outputs(driver: &TopologyTestDriver) -> Vec<(i64, i64)> {
    driver
        .create_output_topic("out", Serdes::string(), Serdes::string())
        .read_records_to_list()
        .unwrap()
        .into_iter()
        .map(|r| (r.timestamp, r.value.unwrap().parse().unwrap()))
        .collect()
}

fn source_drops(count: u64) -> Vec<DroppedRecordsMetric> {
    vec![DroppedRecordsMetric {
        task: TaskId {
            subtopology: 0,
            partition: 0,
        },
        processor: "src".to_owned(),
        count,
    }]
}

#[test]
fn the_default_fails_on_a_negative_timestamp_with_a_clear_error() {
    let d = driver(echo(None), StreamsConfig::new("ts"));
    pipe(&d, &[5]).unwrap();
    let err = pipe(&d, &[-1]).unwrap_err();
    assert!(
        matches!(err, StreamsError::InvalidTimestamp { timestamp: -1, offset: 1, ref topic, .. } if topic == "in"),
        "{err}"
    );
    assert!(err.to_string().contains("log-and-skip-on-invalid"), "{err}");
    assert_eq!(outputs(&d), [(5, 5)]);
}

#[test]
fn log_and_skip_drops_and_counts_invalid_records() {
    let config = StreamsConfig::from_pairs([
        ("application.id", "ts"),
        ("default.timestamp.extractor", "log-and-skip-on-invalid"),
    ])
    .unwrap();
    let d = driver(echo(None), config);
    pipe(&d, &[5, -1, 7, -20, 6]).unwrap();
    // Stream time is the largest extracted timestamp, the current one
    // included; skipped records do not move it.
    assert_eq!(outputs(&d), [(5, 5), (7, 7), (6, 7)]);
    assert_eq!(d.dropped_records(), 2);
    assert_eq!(d.dropped_records_metrics(), source_drops(2));
    assert_eq!(d.stream_time("in").unwrap(), Some(7));
}

#[test]
fn use_previous_takes_the_partition_time_and_fails_without_one() {
    let config = StreamsConfig::new("ts")
        .with_default_timestamp_extractor_builtin(BuiltinTimestampExtractor::UsePreviousOnInvalid);
    let d = driver(echo(None), config.clone());
    pipe(&d, &[5, 9, -1, 3, -7]).unwrap();
    assert_eq!(outputs(&d), [(5, 5), (9, 9), (9, 9), (3, 9), (9, 9)]);
    assert_eq!(d.dropped_records(), 0);

    let d = driver(echo(None), config);
    let err = pipe(&d, &[-1]).unwrap_err();
    assert!(
        matches!(err, StreamsError::InvalidTimestamp { .. }),
        "{err}"
    );
}

#[test]
fn wall_clock_uses_the_mock_clock() {
    let config = StreamsConfig::new("ts")
        .with_default_timestamp_extractor_builtin(BuiltinTimestampExtractor::WallClock);
    let d = driver(echo(None), config);
    pipe(&d, &[5, -1]).unwrap();
    d.advance_wall_clock_time(Duration::from_millis(500))
        .unwrap();
    pipe(&d, &[2]).unwrap();
    assert_eq!(
        outputs(&d),
        [(1_000, 1_000), (1_000, 1_000), (1_500, 1_500)]
    );
}

#[test]
fn a_source_extractor_wins_over_the_default_and_can_fail_or_skip() {
    // Event time in the value: "<millis>"; "skip" gives -1, "bad" an error.
    let from_value = |record: &ConsumedRecord<'_>, _previous: Option<i64>| -> Result<i64> {
        let text = record
            .value
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default();
        match text.as_str() {
            "skip" => Ok(-1),
            "bad" => Err(StreamsError::user(format!(
                "no event time in the value at offset {}",
                record.offset
            ))),
            t => t.parse().map_err(StreamsError::user),
        }
    };
    let config = StreamsConfig::new("ts")
        .with_default_timestamp_extractor_builtin(BuiltinTimestampExtractor::WallClock);
    let d = driver(echo(Some(Arc::new(from_value))), config);
    let input = d.create_input_topic("in", Serdes::string(), Serdes::string());
    for value in ["40", "skip", "30", "50"] {
        input
            .pipe_record(TestRecord::new("k".to_owned(), value.to_owned(), 1))
            .unwrap();
    }
    assert_eq!(outputs(&d), [(40, 40), (30, 40), (50, 50)]);
    assert_eq!(d.dropped_records_metrics(), source_drops(1));
    let err = input
        .pipe_record(TestRecord::new("k".to_owned(), "bad".to_owned(), 1))
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("no event time in the value at offset 4"),
        "{err}"
    );
}

#[test]
fn extracted_time_drives_stream_time_punctuation() {
    let fired = Arc::new(Mutex::new(Vec::new()));
    let fired_in = fired.clone();
    let mut topology = Topology::new();
    topology
        .add_source("src", Serdes::string(), Serdes::string(), &["in"])
        .unwrap()
        .add_processor(
            "tick",
            move || {
                let fired = fired_in.clone();
                struct Tick(Arc<Mutex<Vec<i64>>>);
                impl streams_core::Processor<String, String, String, String> for Tick {
                    fn init(
                        &mut self,
                        ctx: &mut ProcessorContext<'_, String, String>,
                    ) -> Result<()> {
                        let fired = self.0.clone();
                        ctx.schedule(
                            Duration::from_millis(10),
                            PunctuationType::StreamTime,
                            move |_, now| {
                                fired.lock().unwrap().push(now);
                                Ok(())
                            },
                        )?;
                        Ok(())
                    }
                    fn process(
                        &mut self,
                        _ctx: &mut ProcessorContext<'_, String, String>,
                        _record: Record<String, String>,
                    ) -> Result<()> {
                        Ok(())
                    }
                }
                Tick(fired)
            },
            &["src"],
        )
        .unwrap();
    // Event time from the value, record timestamps all 0.
    let config = StreamsConfig::new("ts").with_default_timestamp_extractor(
        |record: &ConsumedRecord<'_>, _: Option<i64>| -> Result<i64> {
            let v = record
                .value
                .map(|v| String::from_utf8_lossy(v).into_owned());
            v.unwrap_or_default().parse().map_err(StreamsError::user)
        },
    );
    let d = driver(topology, config);
    let input = d.create_input_topic("in", Serdes::string(), Serdes::string());
    for v in ["3", "12", "5", "31"] {
        input
            .pipe_record(TestRecord::new("k".to_owned(), v.to_owned(), 0))
            .unwrap();
    }
    assert_eq!(*fired.lock().unwrap(), [3, 12, 31]);
}

#[test]
fn idle_inputs_advance_stream_time_only_when_configured() {
    for (setting, expected) in [(None, Some(20)), (Some(100), Some(20 + 250))] {
        let config = StreamsConfig::new("ts").with_task_idle_wall_clock_advance_ms(setting);
        let d = driver(echo(None), config);
        pipe(&d, &[20]).unwrap();
        d.advance_wall_clock_time(Duration::from_millis(50))
            .unwrap();
        assert_eq!(
            d.stream_time("in").unwrap(),
            Some(20),
            "not idle long enough"
        );
        d.advance_wall_clock_time(Duration::from_millis(200))
            .unwrap();
        assert_eq!(d.stream_time("in").unwrap(), expected, "{setting:?}");
    }
}
