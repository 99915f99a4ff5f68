use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::*;
use crate::config::DeserializationHandler;
use crate::processor::{processor_fn, stateless_fn, Processor, ProcessorContext};
use crate::punctuation::{Cancellable, PunctuationType};
use crate::record::{Record, RecordMetadata};
use crate::serdes::Serdes;
use crate::store::{KeyValueStoreHandle, StoreBuilder, WindowStoreHandle};
use crate::CacheEntry;

const SOURCE: &str = "KSTREAM-SOURCE-0000000000";
const SPLIT: &str = "KSTREAM-FLATMAPVALUES-0000000001";
const COUNT: &str = "KSTREAM-AGGREGATE-0000000002";
const SINK: &str = "KSTREAM-SINK-0000000003";

/// Splits lines into lowercase words, keyed by the word.
struct SplitWords;

impl Processor<String, String, String, String> for SplitWords {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, String, String>,
        record: Record<String, String>,
    ) -> Result<()> {
        let Some(line) = &record.value else {
            return Ok(());
        };
        for word in line.to_lowercase().split_whitespace() {
            ctx.forward(Record::new(
                word.to_owned(),
                word.to_owned(),
                record.timestamp,
            ))?;
        }
        Ok(())
    }
}

/// Counts records per key in store `store`. Without a cache it forwards
/// every update at once; with one it forwards what the cache flushes.
struct CountWords {
    store: &'static str,
}

impl Processor<String, String, String, i64> for CountWords {
    fn init(&mut self, ctx: &mut ProcessorContext<'_, String, i64>) -> Result<()> {
        if ctx.caching_enabled(self.store)? {
            ctx.set_flush_listener(self.store)?;
        }
        Ok(())
    }

    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, String, i64>,
        record: Record<String, String>,
    ) -> Result<()> {
        let Some(word) = record.key else {
            return Ok(());
        };
        let count = {
            let mut counts = ctx.key_value_store::<String, i64>(self.store)?;
            let count = counts.get(&word)?.unwrap_or(0) + 1;
            counts.put(&word, &count)?;
            count
        };
        if !ctx.caching_enabled(self.store)? {
            ctx.forward(Record::new(word, count, record.timestamp))?;
        }
        Ok(())
    }

    fn flushed(
        &mut self,
        ctx: &mut ProcessorContext<'_, String, i64>,
        store: &str,
        entry: CacheEntry,
    ) -> Result<()> {
        assert!(ctx.record_metadata().is_none());
        let change = ctx.key_value_store::<String, i64>(store)?.decode(&entry)?;
        let timestamp = ctx.stream_time().unwrap_or(0);
        ctx.forward(Record::from_parts(
            Some(change.key),
            change.new_value,
            timestamp,
        ))
    }
}

fn word_count(caching: bool) -> Topology {
    let mut store = StoreBuilder::key_value("counts", Serdes::string(), Serdes::i64());
    if caching {
        store = store.with_caching_enabled();
    }
    let mut t = Topology::new();
    t.add_source(SOURCE, Serdes::string(), Serdes::string(), &["text-lines"])
        .unwrap()
        .add_processor(SPLIT, || SplitWords, &[SOURCE])
        .unwrap()
        .add_processor(COUNT, || CountWords { store: "counts" }, &[SPLIT])
        .unwrap()
        .add_state_store(store, &[COUNT])
        .unwrap()
        .add_sink(
            SINK,
            "word-counts",
            Serdes::string(),
            Serdes::i64(),
            &[COUNT],
        )
        .unwrap();
    t
}

fn kv(k: &str, v: i64) -> (Option<String>, Option<i64>) {
    (Some(k.to_owned()), Some(v))
}

fn s(v: &str) -> String {
    v.to_owned()
}

#[test]
fn word_count_with_the_processor_api() {
    let topology = word_count(false);
    let expected_description = "Topologies:\n   Sub-topology: 0\n    \
        Source: KSTREAM-SOURCE-0000000000 (topics: [text-lines])\n      \
        --> KSTREAM-FLATMAPVALUES-0000000001\n    \
        Processor: KSTREAM-FLATMAPVALUES-0000000001 (stores: [])\n      \
        --> KSTREAM-AGGREGATE-0000000002\n      \
        <-- KSTREAM-SOURCE-0000000000\n    \
        Processor: KSTREAM-AGGREGATE-0000000002 (stores: [counts])\n      \
        --> KSTREAM-SINK-0000000003\n      \
        <-- KSTREAM-FLATMAPVALUES-0000000001\n    \
        Sink: KSTREAM-SINK-0000000003 (topic: word-counts)\n      \
        <-- KSTREAM-AGGREGATE-0000000002\n\n";
    assert_eq!(topology.describe().to_string(), expected_description);

    let driver = TopologyTestDriver::new(topology).unwrap();
    let lines = driver.create_input_topic("text-lines", Serdes::string(), Serdes::string());
    let counts = driver.create_output_topic("word-counts", Serdes::string(), Serdes::i64());
    lines
        .pipe_value_list([
            s("Hello Kafka Streams"),
            s("All streams lead to Kafka"),
            s("Join Kafka Summit"),
        ])
        .unwrap();
    assert_eq!(
        counts.read_key_values_to_list().unwrap(),
        [
            kv("hello", 1),
            kv("kafka", 1),
            kv("streams", 1),
            kv("all", 1),
            kv("streams", 2),
            kv("lead", 1),
            kv("to", 1),
            kv("kafka", 2),
            kv("join", 1),
            kv("kafka", 3),
            kv("summit", 1),
        ]
    );
    assert!(counts.is_empty());
    assert!(matches!(
        counts.read_record(),
        Err(StreamsError::EmptyTopic { topic }) if topic == "word-counts"
    ));

    let store = driver.get_key_value_store::<String, i64>("counts").unwrap();
    assert_eq!(store.get(&s("kafka")).unwrap(), Some(3));
    assert_eq!(store.get(&s("absent")).unwrap(), None);
    assert_eq!(store.approximate_num_entries().unwrap(), 8);
    assert_eq!(store.all().unwrap().first(), Some(&(s("all"), 1)));

    // Every update went to the changelog.
    let changelog = driver.create_output_topic(
        "test-driver-counts-changelog",
        Serdes::string(),
        Serdes::i64(),
    );
    assert_eq!(changelog.queue_size(), 11);
    assert_eq!(
        driver.produced_topic_names(),
        ["test-driver-counts-changelog", "word-counts"]
    );
    driver.close().unwrap();
}

#[test]
fn unknown_topics_and_wrong_store_types_are_errors() {
    let driver = TopologyTestDriver::new(word_count(false)).unwrap();
    let wrong = driver.create_input_topic("nope", Serdes::string(), Serdes::string());
    let err = wrong.pipe_value(s("x")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "topic 'nope' is not read by any source of the topology"
    );
    let err = driver
        .get_key_value_store::<String, String>("counts")
        .unwrap_err();
    assert!(
        matches!(err, StreamsError::StoreTypeMismatch { .. }),
        "{err}"
    );
    assert!(matches!(
        driver.get_key_value_store::<String, i64>("other"),
        Err(StreamsError::NoSuchStore { .. })
    ));
}

/// Pipes the lines and returns every count emitted.
fn counts_emitted(
    config: TestDriverConfig,
    caching: bool,
    steps: &[Step],
) -> Vec<(Option<String>, Option<i64>)> {
    let driver = TopologyTestDriver::with_config(word_count(caching), config).unwrap();
    let lines = driver.create_input_topic("text-lines", Serdes::string(), Serdes::string());
    let counts = driver.create_output_topic("word-counts", Serdes::string(), Serdes::i64());
    let mut emitted = Vec::new();
    for step in steps {
        match step {
            Step::Line(line) => lines.pipe_value(s(line)).unwrap(),
            Step::Advance(ms) => driver
                .advance_wall_clock_time(Duration::from_millis(*ms))
                .unwrap(),
            Step::Expect(n) => {
                let got = counts.read_key_values_to_list().unwrap();
                assert_eq!(got.len(), *n, "{got:?}");
                emitted.extend(got);
            }
        }
    }
    emitted.extend(counts.read_key_values_to_list().unwrap());
    emitted
}

enum Step {
    Line(&'static str),
    Advance(u64),
    Expect(usize),
}

#[test]
fn per_record_commits_show_every_update_and_caching_dedups_within_a_record() {
    let steps = [Step::Line("a a a b"), Step::Line("a")];
    // No cache: every write is forwarded.
    let plain = counts_emitted(TestDriverConfig::new(), false, &steps);
    assert_eq!(
        plain,
        [kv("a", 1), kv("a", 2), kv("a", 3), kv("b", 1), kv("a", 4)]
    );
    // A cache, committed after each record: the latest value per record.
    let cached = counts_emitted(TestDriverConfig::new(), true, &steps);
    assert_eq!(cached, [kv("a", 3), kv("b", 1), kv("a", 4)]);
}

fn interval_config(cache_bytes: u64) -> TestDriverConfig {
    TestDriverConfig::new()
        .with_streams_config(
            StreamsConfig::new("cache-test")
                .with_commit_interval_ms(1000)
                .with_cache_max_bytes_buffering(cache_bytes),
        )
        .with_production_caching()
}

#[test]
fn production_caching_emits_once_per_commit_interval() {
    let steps = [
        Step::Line("a a a b"),
        Step::Line("a"),
        Step::Expect(0),
        Step::Advance(999),
        Step::Expect(0),
        // The commit interval has passed: the cache is flushed, in the
        // order of each key's last update.
        Step::Advance(1),
        Step::Expect(2),
        Step::Line("b"),
        Step::Advance(1000),
        Step::Expect(1),
    ];
    let emitted = counts_emitted(interval_config(10 * 1024 * 1024), true, &steps);
    assert_eq!(emitted, [kv("b", 1), kv("a", 4), kv("b", 2)]);
}

#[test]
fn a_full_cache_evicts_and_forwards_at_once() {
    // A zero-byte cache writes every update through immediately.
    let steps = [Step::Line("a a b"), Step::Expect(3)];
    let emitted = counts_emitted(interval_config(0), true, &steps);
    assert_eq!(emitted, [kv("a", 1), kv("a", 2), kv("b", 1)]);
}

#[test]
fn closing_flushes_the_caches() {
    let driver =
        TopologyTestDriver::with_config(word_count(true), interval_config(1 << 20)).unwrap();
    let lines = driver.create_input_topic("text-lines", Serdes::string(), Serdes::string());
    let counts = driver.create_output_topic("word-counts", Serdes::string(), Serdes::i64());
    lines.pipe_value(s("x y x")).unwrap();
    assert!(counts.is_empty());
    driver.close().unwrap();
    assert_eq!(
        counts.read_key_values_to_list().unwrap(),
        [kv("y", 1), kv("x", 2)]
    );
    assert!(matches!(
        lines.pipe_value(s("late")),
        Err(StreamsError::Closed)
    ));
}

#[test]
fn a_commit_request_flushes_in_interval_mode() {
    let mut t = word_count(true);
    t.add_source("ctl", Serdes::string(), Serdes::string(), &["control"])
        .unwrap()
        .add_processor(
            "committer",
            || {
                processor_fn(
                    |ctx: &mut ProcessorContext<'_, String, String>, _r: Record<String, String>| {
                        ctx.commit();
                        Ok(())
                    },
                )
            },
            &["ctl"],
        )
        .unwrap();
    // Share the word count's sub-topology, so that its commit is ours.
    t.connect_processor_and_state_stores("committer", &["counts"])
        .unwrap();
    let driver = TopologyTestDriver::with_config(t, interval_config(1 << 20)).unwrap();
    let lines = driver.create_input_topic("text-lines", Serdes::string(), Serdes::string());
    let control = driver.create_input_topic("control", Serdes::string(), Serdes::string());
    let counts = driver.create_output_topic("word-counts", Serdes::string(), Serdes::i64());
    lines.pipe_value(s("q q")).unwrap();
    assert!(counts.is_empty());
    control.pipe_value(s("commit")).unwrap();
    assert_eq!(counts.read_key_values_to_list().unwrap(), [kv("q", 2)]);
}

/// Forwards a record `(kind, time)` each time its punctuator fires, and
/// counts input records.
struct Ticker {
    kind: PunctuationType,
    interval: Duration,
    /// Cancel after this many calls.
    cancel_after: Option<usize>,
}

impl Processor<String, String, String, i64> for Ticker {
    fn init(&mut self, ctx: &mut ProcessorContext<'_, String, i64>) -> Result<()> {
        let handle: Arc<Mutex<Option<Cancellable>>> = Arc::default();
        let own = handle.clone();
        let cancel_after = self.cancel_after;
        let mut calls = 0usize;
        let kind = self.kind;
        let cancellable = ctx.schedule(self.interval, self.kind, move |ctx, now| {
            assert!(
                ctx.record_metadata().is_none(),
                "no metadata in a punctuator"
            );
            calls += 1;
            if Some(calls) == cancel_after {
                if let Some(h) = own.lock().unwrap().as_ref() {
                    h.cancel();
                }
            }
            ctx.forward(Record::new(format!("{kind:?}"), now, now))
        })?;
        *handle.lock().unwrap() = Some(cancellable);
        Ok(())
    }

    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, String, i64>,
        record: Record<String, String>,
    ) -> Result<()> {
        assert!(ctx.record_metadata().is_some());
        let _ = record;
        Ok(())
    }
}

fn ticker_driver(
    ticker: impl Fn() -> Ticker + Send + Sync + 'static,
    wall_clock: i64,
) -> TopologyTestDriver {
    let mut t = Topology::new();
    t.add_source("in", Serdes::string(), Serdes::string(), &["input"])
        .unwrap()
        .add_processor("ticker", ticker, &["in"])
        .unwrap()
        .add_sink("out", "ticks", Serdes::string(), Serdes::i64(), &["ticker"])
        .unwrap();
    TopologyTestDriver::with_config(
        t,
        TestDriverConfig::new().with_initial_wall_clock_ms(wall_clock),
    )
    .unwrap()
}

fn ticks(output: &TestOutputTopic<String, i64>) -> Vec<i64> {
    output
        .read_records_to_list()
        .unwrap()
        .into_iter()
        .map(|r| {
            assert_eq!(r.value, Some(r.timestamp));
            r.timestamp
        })
        .collect()
}

#[test]
fn stream_time_punctuation_is_anchored_at_zero_and_fires_once_after_a_jump() {
    let driver = ticker_driver(
        || Ticker {
            kind: PunctuationType::StreamTime,
            interval: Duration::from_millis(10),
            cancel_after: None,
        },
        0,
    );
    let input = driver.create_input_topic("input", Serdes::string(), Serdes::string());
    let output = driver.create_output_topic("ticks", Serdes::string(), Serdes::i64());
    // No data, no stream time: nothing fires, whatever the wall clock does.
    driver
        .advance_wall_clock_time(Duration::from_secs(60))
        .unwrap();
    assert!(output.is_empty());
    assert_eq!(driver.stream_time("input").unwrap(), None);

    let at = |ts: i64| input.pipe_input_with_timestamp(s("k"), s("v"), ts).unwrap();
    // The first record fires the slot at 0 with the current stream time.
    at(5);
    assert_eq!(ticks(&output), [5]);
    at(7);
    // Out of order: stream time stays at 7.
    at(3);
    assert_eq!(driver.stream_time("input").unwrap(), Some(7));
    assert!(output.is_empty());
    // Slot 10 is due at 25: one call, next slot 30 (not 20).
    at(25);
    assert_eq!(ticks(&output), [25]);
    at(29);
    assert!(output.is_empty());
    at(30);
    assert_eq!(ticks(&output), [30]);
    // A jump over several slots: one call, next slot 40 + 5 × 10 = 90.
    at(85);
    assert_eq!(ticks(&output), [85]);
    at(89);
    assert!(output.is_empty());
    at(90);
    assert_eq!(ticks(&output), [90]);
}

#[test]
fn wall_clock_punctuation_is_anchored_at_now_plus_interval() {
    let driver = ticker_driver(
        || Ticker {
            kind: PunctuationType::WallClockTime,
            interval: Duration::from_millis(100),
            cancel_after: None,
        },
        1_000,
    );
    let output = driver.create_output_topic("ticks", Serdes::string(), Serdes::i64());
    let advance = |ms: u64| {
        driver
            .advance_wall_clock_time(Duration::from_millis(ms))
            .unwrap()
    };
    advance(99);
    assert!(output.is_empty());
    advance(1);
    assert_eq!(ticks(&output), [1_100]);
    // A jump of 3.5 intervals: one call at 1450, next slot 1500.
    advance(350);
    assert_eq!(ticks(&output), [1_450]);
    advance(49);
    assert!(output.is_empty());
    advance(1);
    assert_eq!(ticks(&output), [1_500]);
    assert_eq!(driver.wall_clock_time(), 1_500);
}

#[test]
fn a_cancelled_punctuator_stops() {
    let driver = ticker_driver(
        || Ticker {
            kind: PunctuationType::WallClockTime,
            interval: Duration::from_millis(10),
            cancel_after: Some(2),
        },
        0,
    );
    let output = driver.create_output_topic("ticks", Serdes::string(), Serdes::i64());
    for _ in 0..5 {
        driver
            .advance_wall_clock_time(Duration::from_millis(10))
            .unwrap();
    }
    assert_eq!(ticks(&output), [10, 20]);
}

#[test]
fn intervals_below_one_millisecond_are_rejected() {
    let mut t = Topology::new();
    t.add_source("in", Serdes::string(), Serdes::string(), &["input"])
        .unwrap()
        .add_processor(
            "ticker",
            || Ticker {
                kind: PunctuationType::StreamTime,
                interval: Duration::from_micros(500),
                cancel_after: None,
            },
            &["in"],
        )
        .unwrap();
    let err = TopologyTestDriver::new(t).unwrap_err();
    assert_eq!(
        err.to_string(),
        "punctuation interval of 0 ms is invalid; the minimum is 1 ms"
    );
}

/// Re-keys each line's words for a repartition topic.
fn repartition_topology() -> Topology {
    let mut t = Topology::new();
    t.add_source("lines", Serdes::string(), Serdes::string(), &["text-lines"])
        .unwrap()
        .add_processor("split", || SplitWords, &["lines"])
        .unwrap()
        .add_sink(
            "to-repartition",
            "wc-words-repartition",
            Serdes::string(),
            Serdes::string(),
            &["split"],
        )
        .unwrap()
        .add_source(
            "from-repartition",
            Serdes::string(),
            Serdes::string(),
            &["wc-words-repartition"],
        )
        .unwrap()
        .add_processor(
            "count",
            || CountWords { store: "counts" },
            &["from-repartition"],
        )
        .unwrap()
        .add_state_store(
            StoreBuilder::key_value("counts", Serdes::string(), Serdes::i64())
                .with_logging_disabled(),
            &["count"],
        )
        .unwrap()
        .add_sink(
            "out",
            "word-counts",
            Serdes::string(),
            Serdes::i64(),
            &["count"],
        )
        .unwrap();
    t
}

#[test]
fn records_written_to_a_source_topic_loop_back() {
    let topology = repartition_topology();
    let expected = "Topologies:\n   Sub-topology: 0\n    \
        Source: lines (topics: [text-lines])\n      --> split\n    \
        Processor: split (stores: [])\n      --> to-repartition\n      <-- lines\n    \
        Sink: to-repartition (topic: wc-words-repartition)\n      <-- split\n\n  \
        Sub-topology: 1\n    \
        Source: from-repartition (topics: [wc-words-repartition])\n      --> count\n    \
        Processor: count (stores: [counts])\n      --> out\n      <-- from-repartition\n    \
        Sink: out (topic: word-counts)\n      <-- count\n\n";
    assert_eq!(topology.describe().to_string(), expected);

    let driver = TopologyTestDriver::new(topology).unwrap();
    let lines = driver.create_input_topic("text-lines", Serdes::string(), Serdes::string());
    let counts = driver.create_output_topic("word-counts", Serdes::string(), Serdes::i64());
    let repartition =
        driver.create_output_topic("wc-words-repartition", Serdes::string(), Serdes::string());
    lines
        .pipe_input_with_timestamp(s("l1"), s("to be or not to be"), 100)
        .unwrap();
    assert_eq!(
        counts.read_key_values_to_list().unwrap(),
        [
            kv("to", 1),
            kv("be", 1),
            kv("or", 1),
            kv("not", 1),
            kv("to", 2),
            kv("be", 2)
        ]
    );
    // The repartition topic can be read too, keyed by word.
    let words = repartition.read_records_to_list().unwrap();
    assert_eq!(words.len(), 6);
    assert_eq!(words[0].key.as_deref(), Some("to"));
    assert!(words.iter().all(|r| r.timestamp == 100));
    // Each sub-topology tracks its own stream time.
    assert_eq!(driver.stream_time("text-lines").unwrap(), Some(100));
    assert_eq!(
        driver.stream_time("wc-words-repartition").unwrap(),
        Some(100)
    );
    lines
        .pipe_input_with_timestamp(s("l2"), s("be"), 50)
        .unwrap();
    assert_eq!(counts.read_key_values_to_list().unwrap(), [kv("be", 3)]);
    assert_eq!(driver.stream_time("text-lines").unwrap(), Some(100));
}

#[test]
fn stream_time_is_per_sub_topology() {
    let mut t = Topology::new();
    for (source, topic) in [("a", "topic-a"), ("b", "topic-b")] {
        t.add_source(source, Serdes::string(), Serdes::string(), &[topic])
            .unwrap();
    }
    let driver = TopologyTestDriver::new(t).unwrap();
    let a = driver.create_input_topic("topic-a", Serdes::string(), Serdes::string());
    a.pipe_input_with_timestamp(s("k"), s("v"), 42).unwrap();
    assert_eq!(driver.stream_time("topic-a").unwrap(), Some(42));
    assert_eq!(driver.stream_time("topic-b").unwrap(), None);
}

#[test]
fn processors_see_record_metadata() {
    let seen: Arc<Mutex<Vec<RecordMetadata>>> = Arc::default();
    let log = seen.clone();
    let mut t = Topology::new();
    t.add_source("in", Serdes::string(), Serdes::string(), &["input"])
        .unwrap()
        .add_processor(
            "spy",
            move || {
                let log = log.clone();
                processor_fn(
                    move |ctx: &mut ProcessorContext<'_, String, String>,
                          r: Record<String, String>| {
                        let meta = ctx
                            .record_metadata()
                            .cloned()
                            .ok_or_else(|| StreamsError::user("no metadata"))?;
                        log.lock().unwrap().push(meta);
                        assert_eq!(ctx.node_name(), "spy");
                        assert_eq!(ctx.task_id().to_string(), "0_0");
                        assert_eq!(ctx.application_id(), "test-driver");
                        ctx.forward(r)
                    },
                )
            },
            &["in"],
        )
        .unwrap()
        .add_sink(
            "out",
            "output",
            Serdes::string(),
            Serdes::string(),
            &["spy"],
        )
        .unwrap();
    let driver = TopologyTestDriver::new(t).unwrap();
    let input = driver.create_input_topic_with_time(
        "input",
        Serdes::string(),
        Serdes::string(),
        1_000,
        Duration::from_millis(10),
    );
    let output = driver.create_output_topic("output", Serdes::string(), Serdes::string());
    let mut headers = Headers::new();
    headers.add("trace", Some(Bytes::from_static(b"abc")));
    input.pipe_input(s("a"), s("1")).unwrap();
    input.pipe_input(s("b"), s("2")).unwrap();
    input
        .pipe_record(TestRecord::new(s("c"), s("3"), 7).with_headers(headers.clone()))
        .unwrap();
    let seen = seen.lock().unwrap();
    let summary: Vec<_> = seen
        .iter()
        .map(|m| (m.topic.to_string(), m.partition, m.offset, m.timestamp))
        .collect();
    assert_eq!(
        summary,
        [
            (s("input"), 0, 0, 1_000),
            (s("input"), 0, 1, 1_010),
            (s("input"), 0, 2, 7)
        ]
    );
    assert_eq!(seen[2].headers, headers);
    // Headers and timestamps reach the output.
    let records = output.read_records_to_list().unwrap();
    assert_eq!(records[2].headers, headers);
    assert_eq!(records[2].timestamp, 7);
}

#[test]
fn forward_to_reaches_one_child() {
    let mut t = Topology::new();
    t.add_source("in", Serdes::string(), Serdes::string(), &["input"])
        .unwrap()
        .add_processor(
            "route",
            || {
                processor_fn(
                    |ctx: &mut ProcessorContext<'_, String, String>, r: Record<String, String>| {
                        let child = match r.value.as_deref() {
                            Some(v) if v.starts_with('l') => "left",
                            Some(v) if v.starts_with('r') => "right",
                            _ => "nowhere",
                        };
                        ctx.forward_to(child, r)
                    },
                )
            },
            &["in"],
        )
        .unwrap()
        .add_sink(
            "left",
            "left-out",
            Serdes::string(),
            Serdes::string(),
            &["route"],
        )
        .unwrap()
        .add_sink(
            "right",
            "right-out",
            Serdes::string(),
            Serdes::string(),
            &["route"],
        )
        .unwrap();
    let driver = TopologyTestDriver::new(t).unwrap();
    let input = driver.create_input_topic("input", Serdes::string(), Serdes::string());
    let left = driver.create_output_topic("left-out", Serdes::string(), Serdes::string());
    let right = driver.create_output_topic("right-out", Serdes::string(), Serdes::string());
    input.pipe_value(s("l1")).unwrap();
    input.pipe_value(s("r1")).unwrap();
    input.pipe_value(s("l2")).unwrap();
    assert_eq!(
        left.read_values_to_list().unwrap(),
        [Some(s("l1")), Some(s("l2"))]
    );
    assert_eq!(right.read_values_to_list().unwrap(), [Some(s("r1"))]);
    let err = input.pipe_value(s("x")).unwrap_err();
    assert_eq!(err.to_string(), "node 'route' has no child named 'nowhere'");
}

#[test]
fn a_processor_cannot_reach_a_store_it_is_not_connected_to() {
    let mut t = word_count(false);
    t.add_source("other", Serdes::string(), Serdes::string(), &["other"])
        .unwrap()
        .add_processor(
            "snoop",
            || {
                processor_fn(
                    |ctx: &mut ProcessorContext<'_, String, String>, _r: Record<String, String>| {
                        ctx.key_value_store::<String, i64>("counts")?;
                        Ok(())
                    },
                )
            },
            &["other"],
        )
        .unwrap();
    let driver = TopologyTestDriver::new(t).unwrap();
    let input = driver.create_input_topic("other", Serdes::string(), Serdes::string());
    let err = input.pipe_value(s("x")).unwrap_err();
    assert!(
        matches!(&err, StreamsError::StoreNotConnected { processor, store } if processor == "snoop" && store == "counts"),
        "{err}"
    );
}

/// A handle one processor resolved, handed to another.
type SharedHandle = Arc<Mutex<Option<KeyValueStoreHandle<String, i64>>>>;

/// Counts keys through a store handle resolved at `init`, and leaves a
/// second handle in `shared`.
struct HandleCount {
    handle: Option<KeyValueStoreHandle<String, i64>>,
    shared: SharedHandle,
}

impl Processor<String, String, String, i64> for HandleCount {
    fn init(&mut self, ctx: &mut ProcessorContext<'_, String, i64>) -> Result<()> {
        let wrong = ctx.key_value_store_handle::<String, String>("counts");
        assert!(
            matches!(wrong, Err(StreamsError::StoreTypeMismatch { .. })),
            "{wrong:?}"
        );
        self.handle = Some(ctx.key_value_store_handle("counts")?);
        *self.shared.lock().unwrap() = Some(ctx.key_value_store_handle("counts")?);
        Ok(())
    }

    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, String, i64>,
        record: Record<String, String>,
    ) -> Result<()> {
        let (Some(handle), Some(word)) = (&self.handle, record.key) else {
            return Ok(());
        };
        let count = {
            let mut counts = ctx.key_value_store_of(handle)?;
            assert_eq!(handle.name(), "counts");
            let count = counts.get(&word)?.unwrap_or(0) + 1;
            counts.put(&word, &count)?;
            count
        };
        ctx.forward(Record::new(word, count, record.timestamp))
    }
}

#[test]
fn a_store_handle_reaches_its_store_from_its_own_node_only() {
    let shared = SharedHandle::default();
    let mut t = Topology::new();
    let counter_shared = shared.clone();
    let snoop_shared = shared.clone();
    t.add_source(SOURCE, Serdes::string(), Serdes::string(), &["in"])
        .unwrap()
        .add_processor(
            COUNT,
            move || HandleCount {
                handle: None,
                shared: counter_shared.clone(),
            },
            &[SOURCE],
        )
        .unwrap()
        .add_state_store(
            StoreBuilder::key_value("counts", Serdes::string(), Serdes::i64()),
            &[COUNT],
        )
        .unwrap()
        .add_sink(SINK, "out", Serdes::string(), Serdes::i64(), &[COUNT])
        .unwrap()
        .add_source("other", Serdes::string(), Serdes::string(), &["other"])
        .unwrap()
        .add_processor(
            "snoop",
            move || {
                let shared = snoop_shared.clone();
                processor_fn(
                    move |ctx: &mut ProcessorContext<'_, String, String>,
                          _r: Record<String, String>| {
                        let handle = shared.lock().unwrap().take().expect("a handle");
                        ctx.key_value_store_of(&handle)?;
                        Ok(())
                    },
                )
            },
            &["other"],
        )
        .unwrap();
    let driver = TopologyTestDriver::new(t).unwrap();
    let input = driver.create_input_topic("in", Serdes::string(), Serdes::string());
    let out = driver.create_output_topic("out", Serdes::string(), Serdes::i64());
    for word in ["a", "b", "a"] {
        input.pipe_input(s(word), s("")).unwrap();
    }
    assert_eq!(
        out.read_key_values_to_list().unwrap(),
        [
            (Some(s("a")), Some(1)),
            (Some(s("b")), Some(1)),
            (Some(s("a")), Some(2))
        ]
    );
    let store = driver.get_key_value_store::<String, i64>("counts").unwrap();
    assert_eq!(store.get(&s("a")).unwrap(), Some(2));
    let other = driver.create_input_topic("other", Serdes::string(), Serdes::string());
    let err = other.pipe_value(s("x")).unwrap_err();
    assert!(
        matches!(&err, StreamsError::StoreNotConnected { processor, store } if processor == "snoop" && store == "counts"),
        "{err}"
    );
}

/// Counts keys per 10 ms window through a window-store handle resolved at
/// `init`, after checking that the wrong types and the wrong kind of store
/// are refused.
#[derive(Default)]
struct WindowHandleCount {
    handle: Option<WindowStoreHandle<String, i64>>,
}

impl Processor<String, String, String, i64> for WindowHandleCount {
    fn init(&mut self, ctx: &mut ProcessorContext<'_, String, i64>) -> Result<()> {
        let wrong = ctx.window_store_handle::<String, String>("windows");
        assert!(
            matches!(wrong, Err(StreamsError::StoreTypeMismatch { .. })),
            "{wrong:?}"
        );
        let kind = ctx.key_value_store_handle::<String, i64>("windows");
        assert!(
            matches!(kind, Err(StreamsError::StoreKindMismatch { .. })),
            "{kind:?}"
        );
        self.handle = Some(ctx.window_store_handle("windows")?);
        Ok(())
    }

    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, String, i64>,
        record: Record<String, String>,
    ) -> Result<()> {
        let (Some(handle), Some(key)) = (&self.handle, record.key) else {
            return Ok(());
        };
        let start = record.timestamp - record.timestamp.rem_euclid(10);
        let count = {
            let mut store = ctx.window_store_of(handle)?;
            assert_eq!(store.window_size_ms(), 10);
            let count = store.fetch(&key, start)?.unwrap_or(0) + 1;
            store.put(&key, start, Some(&count))?;
            count
        };
        ctx.forward(Record::new(key, count, record.timestamp))
    }
}

#[test]
fn a_window_store_handle_reaches_its_store() {
    let mut t = Topology::new();
    t.add_source(SOURCE, Serdes::string(), Serdes::string(), &["in"])
        .unwrap()
        .add_processor(COUNT, WindowHandleCount::default, &[SOURCE])
        .unwrap()
        .add_state_store(
            StoreBuilder::window(
                "windows",
                Serdes::string(),
                Serdes::i64(),
                Duration::from_secs(3600),
                Duration::from_millis(10),
            ),
            &[COUNT],
        )
        .unwrap()
        .add_sink(SINK, "out", Serdes::string(), Serdes::i64(), &[COUNT])
        .unwrap();
    let driver = TopologyTestDriver::new(t).unwrap();
    let input = driver.create_input_topic("in", Serdes::string(), Serdes::string());
    let out = driver.create_output_topic("out", Serdes::string(), Serdes::i64());
    for (key, ts) in [("a", 1), ("a", 5), ("a", 12), ("b", 3)] {
        input
            .pipe_record(TestRecord::new(s(key), s(""), ts))
            .unwrap();
    }
    assert_eq!(
        out.read_values_to_list().unwrap(),
        [Some(1), Some(2), Some(1), Some(1)]
    );
}

/// Reads i64 keys, forwards them unchanged.
fn numbers_topology() -> Topology {
    let mut t = Topology::new();
    t.add_source("in", Serdes::i64(), Serdes::string(), &["numbers"])
        .unwrap()
        .add_sink("out", "echo", Serdes::i64(), Serdes::string(), &["in"])
        .unwrap();
    t
}

fn handler_config(handler: DeserializationHandler) -> TestDriverConfig {
    TestDriverConfig::new().with_streams_config(
        StreamsConfig::new("serde-errors")
            .with_deserialization_handler(handler)
            .with_dead_letter_topic("dlq"),
    )
}

#[test]
fn a_bad_record_fails_by_default_naming_where_it_was() {
    let driver = TopologyTestDriver::new(numbers_topology()).unwrap();
    // Writes 3-byte keys where 8-byte i64s are expected.
    let bad = driver.create_input_topic("numbers", Serdes::string(), Serdes::string());
    let err = bad.pipe_input(s("abc"), s("v")).unwrap_err();
    match &err {
        StreamsError::Deserialization {
            topic,
            partition,
            offset,
            part,
            source,
        } => {
            assert_eq!(
                (topic.as_str(), *partition, *offset, *part),
                ("numbers", 0, 0, "key")
            );
            assert_eq!(source.topic, "numbers");
        }
        other => panic!("unexpected error {other}"),
    }
    assert!(err.to_string().contains("numbers-0@0"), "{err}");
    assert!(err.to_string().contains("log-and-continue"), "{err}");
}

#[test]
fn log_and_continue_skips_bad_records() {
    let driver = TopologyTestDriver::with_config(
        numbers_topology(),
        handler_config(DeserializationHandler::LogAndContinue),
    )
    .unwrap();
    let bad = driver.create_input_topic("numbers", Serdes::string(), Serdes::string());
    let good = driver.create_input_topic("numbers", Serdes::i64(), Serdes::string());
    let echo = driver.create_output_topic("echo", Serdes::i64(), Serdes::string());
    bad.pipe_input(s("abc"), s("v")).unwrap();
    good.pipe_input_with_timestamp(7, s("seven"), 3).unwrap();
    assert_eq!(driver.dropped_records(), 1);
    assert_eq!(
        echo.read_key_values_to_list().unwrap(),
        [(Some(7), Some(s("seven")))]
    );
    // The skipped record did not move stream time.
    assert_eq!(driver.stream_time("numbers").unwrap(), Some(3));
}

#[test]
fn dead_letter_topic_receives_bad_records_with_error_headers() {
    let driver = TopologyTestDriver::with_config(
        numbers_topology(),
        handler_config(DeserializationHandler::DeadLetterTopic),
    )
    .unwrap();
    let bad = driver.create_input_topic("numbers", Serdes::string(), Serdes::string());
    let dlq = driver.create_output_topic("dlq", Serdes::bytes(), Serdes::bytes());
    bad.pipe_input_with_timestamp(s("abc"), s("v"), 9).unwrap();
    let record = dlq.read_record().unwrap();
    assert_eq!(record.key, Some(Bytes::from_static(b"abc")));
    assert_eq!(record.value, Some(Bytes::from_static(b"v")));
    assert_eq!(record.timestamp, 9);
    let header = |k: &str| record.headers.last(k).and_then(|h| h.value.clone());
    assert_eq!(
        header("__streams.errors.topic"),
        Some(Bytes::from_static(b"numbers"))
    );
    assert_eq!(
        header("__streams.errors.offset"),
        Some(Bytes::from_static(b"0"))
    );
    assert!(header("__streams.errors.message").is_some());
    assert_eq!(driver.dropped_records(), 1);
}

#[test]
fn reading_output_with_the_wrong_serde_is_an_error() {
    let driver = TopologyTestDriver::new(numbers_topology()).unwrap();
    let input = driver.create_input_topic("numbers", Serdes::i64(), Serdes::string());
    let echo = driver.create_output_topic("echo", Serdes::string(), Serdes::i32());
    input.pipe_input(1, s("one")).unwrap();
    let err = echo.read_record().unwrap_err();
    assert!(matches!(err, StreamsError::Serde(_)), "{err}");
    let echo = driver.create_output_topic("echo", Serdes::i64(), Serdes::string());
    input
        .pipe_record(TestRecord::from_parts(None, Some(s("x")), 1))
        .unwrap();
    assert!(matches!(
        echo.read_key_values_to_map(),
        Err(StreamsError::NullKey { .. })
    ));
}

#[test]
fn driver_store_writes_go_through_cache_and_changelog() {
    let driver = TopologyTestDriver::new(word_count(true)).unwrap();
    let store = driver.get_key_value_store::<String, i64>("counts").unwrap();
    store.put(&s("seed"), &41).unwrap();
    let lines = driver.create_input_topic("text-lines", Serdes::string(), Serdes::string());
    let counts = driver.create_output_topic("word-counts", Serdes::string(), Serdes::i64());
    lines.pipe_value(s("seed")).unwrap();
    assert_eq!(counts.read_key_values_to_list().unwrap(), [kv("seed", 42)]);
    assert_eq!(store.delete(&s("seed")).unwrap(), Some(42));
    assert_eq!(store.get(&s("seed")).unwrap(), None);
}

#[test]
fn stores_can_run_on_their_declared_backend() {
    let dir = std::env::temp_dir().join(format!("streams-core-driver-test-{}", std::process::id()));
    let topology = {
        let mut t = Topology::new();
        t.add_source(SOURCE, Serdes::string(), Serdes::string(), &["text-lines"])
            .unwrap()
            .add_processor(SPLIT, || SplitWords, &[SOURCE])
            .unwrap()
            .add_processor(COUNT, || CountWords { store: "counts" }, &[SPLIT])
            .unwrap()
            .add_state_store(
                StoreBuilder::key_value("counts", Serdes::string(), Serdes::i64())
                    .with_backend(StoreBackend::Redb),
                &[COUNT],
            )
            .unwrap();
        t
    };
    let config = TestDriverConfig::new()
        .with_streams_config(StreamsConfig::new("redb-app").with_state_dir(&dir))
        .with_declared_store_backends();
    let driver = TopologyTestDriver::with_config(topology, config).unwrap();
    let lines = driver.create_input_topic("text-lines", Serdes::string(), Serdes::string());
    lines.pipe_value(s("x y x")).unwrap();
    let store = driver.get_key_value_store::<String, i64>("counts").unwrap();
    assert_eq!(store.get(&s("x")).unwrap(), Some(2));
    let task_dir = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(task_dir, 1, "one driver directory under state.dir");
    driver.close().unwrap();
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "removed on close"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Records whether `close` was called.
struct Closer(Arc<Mutex<bool>>);

impl Processor<String, String, String, String> for Closer {
    fn process(
        &mut self,
        _ctx: &mut ProcessorContext<'_, String, String>,
        _record: Record<String, String>,
    ) -> Result<()> {
        Ok(())
    }

    fn close(&mut self) -> Result<()> {
        *self.0.lock().unwrap() = true;
        Ok(())
    }
}

#[test]
fn closing_the_driver_closes_processors() {
    let closed: Arc<Mutex<bool>> = Arc::default();
    let flag = closed.clone();
    let mut t = Topology::new();
    t.add_source("in", Serdes::string(), Serdes::string(), &["input"])
        .unwrap()
        .add_processor("closer", move || Closer(flag.clone()), &["in"])
        .unwrap();
    let driver = TopologyTestDriver::new(t).unwrap();
    assert!(!*closed.lock().unwrap());
    drop(driver);
    assert!(*closed.lock().unwrap());
}

/// `update` reads, changes and writes a key in one call; `None` deletes it.
#[test]
fn update_is_a_read_modify_write_and_none_deletes() {
    let mut t = Topology::new();
    t.add_source("in", Serdes::string(), Serdes::string(), &["in"])
        .unwrap()
        .add_processor(
            "tally",
            || {
                processor_fn(
                    |ctx: &mut ProcessorContext<'_, String, i64>, r: Record<String, String>| {
                        let (Some(key), Some(value)) = (r.key, r.value) else {
                            return Ok(());
                        };
                        let mut store = ctx.key_value_store::<String, i64>("tally")?;
                        let before = store.update(&key, |old| {
                            let next = (value != "reset").then(|| old.unwrap_or(0) + 1);
                            (next, old)
                        })?;
                        assert_eq!(before.is_some(), value != "first", "{key}: {value}");
                        Ok(())
                    },
                )
            },
            &["in"],
        )
        .unwrap()
        .add_state_store(
            StoreBuilder::key_value("tally", Serdes::string(), Serdes::i64()),
            &["tally"],
        )
        .unwrap();
    let driver = TopologyTestDriver::new(t).unwrap();
    let input = driver.create_input_topic("in", Serdes::string(), Serdes::string());
    for (k, v) in [("a", "first"), ("a", "x"), ("b", "first"), ("a", "x")] {
        input.pipe_input(s(k), s(v)).unwrap();
    }
    let store = driver.get_key_value_store::<String, i64>("tally").unwrap();
    assert_eq!(store.get(&s("a")).unwrap(), Some(3));
    assert_eq!(store.get(&s("b")).unwrap(), Some(1));
    input.pipe_input(s("a"), s("reset")).unwrap();
    let store = driver.get_key_value_store::<String, i64>("tally").unwrap();
    assert_eq!(store.get(&s("a")).unwrap(), None);
    assert_eq!(store.get(&s("b")).unwrap(), Some(1));
}

/// `upper` → `split` → `keyed` → sink, each a closure made with `make`:
/// the three stateless steps of a word count.
fn stateless_chain<P1, P2, P3>(upper: fn() -> P1, split: fn() -> P2, keyed: fn() -> P3) -> Topology
where
    P1: Processor<String, String, String, String>,
    P2: Processor<String, String, String, String>,
    P3: Processor<String, String, String, String>,
{
    let mut t = Topology::new();
    t.add_source("in", Serdes::string(), Serdes::string(), &["input"])
        .unwrap()
        .add_processor("upper", upper, &["in"])
        .unwrap()
        .add_processor("split", split, &["upper"])
        .unwrap()
        .add_processor("keyed", keyed, &["split"])
        .unwrap()
        .add_sink(
            "out",
            "output",
            Serdes::string(),
            Serdes::string(),
            &["keyed"],
        )
        .unwrap();
    t
}

macro_rules! chain_steps {
    ($make:ident) => {
        stateless_chain(
            || {
                $make(
                    |ctx: &mut ProcessorContext<'_, String, String>, r: Record<String, String>| {
                        let value = r.value.as_ref().map(|v| v.to_uppercase());
                        let mut headers = r.headers.clone();
                        headers.add("seen", Some(Bytes::from_static(b"upper")));
                        ctx.forward(r.with_value(value).with_headers(headers))
                    },
                )
            },
            || {
                $make(
                    |ctx: &mut ProcessorContext<'_, String, String>, r: Record<String, String>| {
                        let Some(line) = &r.value else {
                            return ctx.forward(r);
                        };
                        for word in line.split_whitespace() {
                            ctx.forward(r.clone().with_value(Some(word.to_owned())))?;
                        }
                        Ok(())
                    },
                )
            },
            || {
                $make(
                    |ctx: &mut ProcessorContext<'_, String, String>, r: Record<String, String>| {
                        if r.value.as_deref() == Some("FAIL") {
                            return Err(StreamsError::User("no FAIL please".into()));
                        }
                        let key = r.value.clone();
                        ctx.forward(r.with_key(key))
                    },
                )
            },
        )
    };
}

/// A chain of `stateless_fn` nodes runs inside one call per record, each
/// node handing its records to the next directly; it emits what the same
/// chain of `processor_fn` nodes, run hop by hop, emits: keys, values,
/// timestamps and headers, in order, and the same errors.
#[test]
fn a_chain_of_stateless_fns_runs_inline_and_emits_what_hops_emit() {
    let run = |topology: Topology| {
        let driver = TopologyTestDriver::new(topology).unwrap();
        let inline = driver
            .inner
            .borrow()
            .tasks
            .iter()
            .map(Task::inline_nodes)
            .sum::<usize>();
        let input = driver.create_input_topic("input", Serdes::string(), Serdes::string());
        let output = driver.create_output_topic("output", Serdes::string(), Serdes::string());
        let mut headers = Headers::new();
        headers.add("origin", Some(Bytes::from_static(b"test")));
        input
            .pipe_record(TestRecord::new(s("k1"), s("the quick fox"), 5).with_headers(headers))
            .unwrap();
        input
            .pipe_input_with_timestamp(s("k2"), s("jumps"), 3)
            .unwrap();
        input
            .pipe_record(TestRecord::from_parts(Some(s("k3")), None, 9))
            .unwrap();
        let error = input
            .pipe_input(s("k4"), s("a fail"))
            .unwrap_err()
            .to_string();
        let records: Vec<_> = output
            .read_records_to_list()
            .unwrap()
            .into_iter()
            .map(|r| (r.key, r.value, r.timestamp, r.headers))
            .collect();
        (inline, records, error)
    };
    let (inline, records, error) = run(chain_steps!(stateless_fn));
    let (hops, hop_records, hop_error) = run(chain_steps!(processor_fn));
    assert_eq!(inline, 4, "upper, split, keyed and the sink run inline");
    assert_eq!(hops, 0, "processor_fn nodes run hop by hop");
    assert_eq!(records, hop_records);
    assert_eq!(error, hop_error);
    assert!(error.contains("no FAIL please"), "{error}");
    let mut seen = Headers::new();
    seen.add("origin", Some(Bytes::from_static(b"test")));
    seen.add("seen", Some(Bytes::from_static(b"upper")));
    let words: Vec<_> = records
        .iter()
        .map(|(k, v, t, _)| (k.clone(), v.clone(), *t))
        .collect();
    assert_eq!(
        words,
        [
            (Some(s("THE")), Some(s("THE")), 5),
            (Some(s("QUICK")), Some(s("QUICK")), 5),
            (Some(s("FOX")), Some(s("FOX")), 5),
            (Some(s("JUMPS")), Some(s("JUMPS")), 3),
            (None, None, 9),
        ],
        "the failed record's outputs are not emitted, inline or not"
    );
    assert_eq!(records[0].3, seen);
}

/// A `stateless_fn` cannot schedule punctuation: its parent may run it
/// inside its own call, where no punctuator could reach it.
#[test]
fn a_stateless_fn_cannot_schedule_punctuation() {
    let mut t = Topology::new();
    t.add_source("in", Serdes::string(), Serdes::string(), &["input"])
        .unwrap()
        .add_processor(
            "ticking",
            || {
                stateless_fn(
                    |ctx: &mut ProcessorContext<'_, String, String>, r: Record<String, String>| {
                        ctx.schedule(
                            std::time::Duration::from_secs(1),
                            PunctuationType::StreamTime,
                            |_, _| Ok(()),
                        )?;
                        ctx.forward(r)
                    },
                )
            },
            &["in"],
        )
        .unwrap();
    let driver = TopologyTestDriver::new(t).unwrap();
    let input = driver.create_input_topic("input", Serdes::string(), Serdes::string());
    let error = input.pipe_input(s("k"), s("v")).unwrap_err();
    assert!(
        matches!(&error, StreamsError::InlineSchedule { processor } if processor == "ticking"),
        "{error}"
    );
}

/// Emits a record from a wall-clock punctuator, through its only child.
struct Beeper;

impl Processor<String, String, String, String> for Beeper {
    fn init(&mut self, ctx: &mut ProcessorContext<'_, String, String>) -> Result<()> {
        ctx.schedule(
            std::time::Duration::from_secs(10),
            PunctuationType::WallClockTime,
            |ctx, now| ctx.forward(Record::new(s("beep"), format!("at {now}"), now)),
        )?;
        Ok(())
    }

    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, String, String>,
        record: Record<String, String>,
    ) -> Result<()> {
        ctx.forward(record)
    }
}

/// A processor that schedules punctuation keeps its `stateless_fn` child
/// in the task's table, where its punctuator's forwards reach it; the
/// child's own child (a sink) still runs inside the child's call. With one
/// child, `forward_to` reaches an inline child by name too.
#[test]
fn punctuators_and_forward_to_reach_children_that_run_inline() {
    let mut t = Topology::new();
    t.add_source("in", Serdes::string(), Serdes::string(), &["input"])
        .unwrap()
        .add_processor("beeper", || Beeper, &["in"])
        .unwrap()
        .add_processor(
            "shout",
            || {
                stateless_fn(
                    |ctx: &mut ProcessorContext<'_, String, String>, r: Record<String, String>| {
                        let value = r.value.as_ref().map(|v| format!("{v}!"));
                        ctx.forward_to("out", r.with_value(value))
                    },
                )
            },
            &["beeper"],
        )
        .unwrap()
        .add_sink(
            "out",
            "output",
            Serdes::string(),
            Serdes::string(),
            &["shout"],
        )
        .unwrap();
    let driver = TopologyTestDriver::new(t).unwrap();
    assert_eq!(
        driver
            .inner
            .borrow()
            .tasks
            .iter()
            .map(Task::inline_nodes)
            .sum::<usize>(),
        1,
        "only the sink runs inline"
    );
    let input = driver.create_input_topic("input", Serdes::string(), Serdes::string());
    let output = driver.create_output_topic("output", Serdes::string(), Serdes::string());
    input.pipe_input(s("k"), s("hello")).unwrap();
    driver
        .advance_wall_clock_time(std::time::Duration::from_secs(10))
        .unwrap();
    let values = output.read_values_to_list().unwrap();
    assert_eq!(values.len(), 2, "{values:?}");
    assert_eq!(values[0], Some(s("hello!")));
    assert!(
        values[1]
            .as_deref()
            .is_some_and(|v| v.starts_with("at ") && v.ends_with('!')),
        "{values:?}"
    );
}

/// Forwards each record with the number of records every processor sharing
/// `"seen"` in this task has processed, itself included.
struct SharedCounter(Option<Arc<std::sync::atomic::AtomicU64>>);

impl Processor<String, String, String, u64> for SharedCounter {
    fn init(&mut self, ctx: &mut ProcessorContext<'_, String, u64>) -> Result<()> {
        self.0 = Some(ctx.task_shared("seen", || std::sync::atomic::AtomicU64::new(0))?);
        Ok(())
    }

    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, String, u64>,
        record: Record<String, String>,
    ) -> Result<()> {
        let seen = self.0.as_ref().map_or(0, |c| {
            c.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
        });
        ctx.forward(record.with_value(Some(seen)))
    }
}

#[test]
fn processors_of_a_task_share_values_by_name_and_tasks_do_not() -> Result<()> {
    let mut topology = Topology::new();
    topology
        .add_source("a", Serdes::string(), Serdes::string(), &["in-a"])?
        .add_source("b", Serdes::string(), Serdes::string(), &["in-b"])?
        .add_processor("count-a", || SharedCounter(None), &["a"])?
        .add_processor("count-b", || SharedCounter(None), &["b"])?
        .add_processor(
            "merge",
            || {
                stateless_fn(
                    |ctx: &mut ProcessorContext<'_, String, u64>, r: Record<String, u64>| {
                        ctx.forward(r)
                    },
                )
            },
            &["count-a", "count-b"],
        )?
        .add_sink("out", "out", Serdes::string(), Serdes::u64(), &["merge"])?
        // A second sub-topology, hence a second task, with its own value.
        .add_source("c", Serdes::string(), Serdes::string(), &["in-c"])?
        .add_processor("count-c", || SharedCounter(None), &["c"])?
        .add_sink(
            "out-c",
            "out-c",
            Serdes::string(),
            Serdes::u64(),
            &["count-c"],
        )?;
    let driver = TopologyTestDriver::new(topology.clone())?;
    let (a, b, c) = (
        driver.create_input_topic("in-a", Serdes::string(), Serdes::string()),
        driver.create_input_topic("in-b", Serdes::string(), Serdes::string()),
        driver.create_input_topic("in-c", Serdes::string(), Serdes::string()),
    );
    a.pipe_input(s("k"), s("1"))?;
    b.pipe_input(s("k"), s("2"))?;
    a.pipe_input(s("k"), s("3"))?;
    c.pipe_input(s("k"), s("4"))?;
    let out = driver.create_output_topic("out", Serdes::string(), Serdes::u64());
    assert_eq!(out.read_values_to_list()?, [Some(1), Some(2), Some(3)]);
    let out_c = driver.create_output_topic("out-c", Serdes::string(), Serdes::u64());
    assert_eq!(out_c.read_values_to_list()?, [Some(1)]);

    // A driver on a clone of the topology starts from nothing.
    let again = TopologyTestDriver::new(topology)?;
    again
        .create_input_topic("in-b", Serdes::string(), Serdes::string())
        .pipe_input(s("k"), s("5"))?;
    let out = again.create_output_topic("out", Serdes::string(), Serdes::u64());
    assert_eq!(out.read_values_to_list()?, [Some(1)]);
    Ok(())
}

#[test]
fn a_shared_value_of_another_type_is_an_error() -> Result<()> {
    let mut topology = Topology::new();
    topology
        .add_source("a", Serdes::string(), Serdes::string(), &["in-a"])?
        .add_processor("count", || SharedCounter(None), &["a"])?
        .add_processor(
            "other",
            || {
                processor_fn(
                    |_: &mut ProcessorContext<'_, String, u64>, _: Record<String, u64>| Ok(()),
                )
            },
            &["count"],
        )?;
    // A processor asking for "seen" as a String.
    struct Wrong;
    impl Processor<String, String, String, String> for Wrong {
        fn init(&mut self, ctx: &mut ProcessorContext<'_, String, String>) -> Result<()> {
            ctx.task_shared("seen", String::new)?;
            Ok(())
        }
        fn process(
            &mut self,
            _: &mut ProcessorContext<'_, String, String>,
            _: Record<String, String>,
        ) -> Result<()> {
            Ok(())
        }
    }
    topology.add_processor("wrong", || Wrong, &["a"])?;
    let err = TopologyTestDriver::new(topology).err();
    assert!(
        matches!(&err, Some(StreamsError::InvalidTopology { reason }) if reason.contains("'seen'")),
        "{err:?}"
    );
    Ok(())
}

#[test]
fn versioned_store_through_the_processor_api_and_the_driver() {
    let mut topology = Topology::new();
    topology
        .add_source("in", Serdes::string(), Serdes::string(), &["prices"])
        .unwrap()
        .add_processor(
            "put",
            || {
                processor_fn(
                    |ctx: &mut ProcessorContext<'_, String, String>, r: Record<String, String>| {
                        let Some(key) = r.key.clone() else {
                            return Ok(());
                        };
                        // The version is a second later than the record.
                        let outcome = ctx
                            .versioned_key_value_store::<String, String>("prices")?
                            .put(&key, r.value.as_ref(), r.timestamp + 1000)?;
                        ctx.forward(Record::new(key, format!("{outcome:?}"), r.timestamp))
                    },
                )
            },
            &["in"],
        )
        .unwrap()
        .add_state_store(
            StoreBuilder::versioned_key_value(
                "prices",
                Serdes::string(),
                Serdes::string(),
                Duration::from_millis(200),
            ),
            &["put"],
        )
        .unwrap()
        .add_sink(
            "out",
            "outcomes",
            Serdes::string(),
            Serdes::string(),
            &["put"],
        )
        .unwrap();
    let driver = TopologyTestDriver::new(topology).unwrap();
    let input = driver.create_input_topic("prices", Serdes::string(), Serdes::string());
    input
        .pipe_input_with_timestamp(s("pen"), s("3"), 300)
        .unwrap();
    input
        .pipe_input_with_timestamp(s("pen"), s("1"), 100)
        .unwrap();
    input
        .pipe_record(TestRecord::from_parts(Some(s("pen")), None, 400))
        .unwrap();
    // Older than stream time 1400 minus the history retention.
    input
        .pipe_input_with_timestamp(s("pen"), s("0"), 150)
        .unwrap();
    let outcomes = driver.create_output_topic("outcomes", Serdes::string(), Serdes::string());
    assert_eq!(
        outcomes.read_values_to_list().unwrap(),
        [
            Some(s("Latest")),
            Some(s("Older { valid_to: 1300 }")),
            Some(s("Latest")),
            Some(s("NotPut")),
        ]
    );
    // The changelog records carry the versions' timestamps.
    let changelog = driver.create_output_topic(
        "test-driver-prices-changelog",
        Serdes::string(),
        Serdes::string(),
    );
    let records: Vec<(Option<String>, i64)> = changelog
        .read_records_to_list()
        .unwrap()
        .into_iter()
        .map(|r| (r.value, r.timestamp))
        .collect();
    assert_eq!(
        records,
        [
            (Some(s("3")), 1300),
            (Some(s("1")), 1100),
            (None, 1400),
            (Some(s("0")), 1150)
        ]
    );
    let store = driver
        .get_versioned_key_value_store::<String, String>("prices")
        .unwrap();
    assert_eq!(store.get(&s("pen")).unwrap(), None);
    let found = store.get_as_of(&s("pen"), 1200).unwrap().unwrap();
    assert_eq!(
        (found.value, found.timestamp, found.valid_to),
        (s("1"), 1100, Some(1300))
    );
    assert_eq!(
        store.put(&s("pen"), Some(&s("4")), 1500).unwrap(),
        PutOutcome::Latest
    );
    assert!(matches!(
        driver.get_key_value_store::<String, String>("prices"),
        Err(StreamsError::StoreKindMismatch { .. })
    ));
}
