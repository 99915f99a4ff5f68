//! Event time in `StreamsApp` on the embedded broker: a failing timestamp
//! extractor stops the application with its message, skipped records show
//! in the app's `dropped-records`, and `max.task.idle.ms` makes a task
//! wait for an empty input partition so that it processes in timestamp
//! order across its inputs, and `task.idle.wall.clock.advance.ms` moves the
//! stream time of an idle task with the wall clock.

// Closures here return the crate's `Result`, whose error size is the
// crate's choice.
#![allow(clippy::result_large_err)]

use std::path::Path;
use std::time::Duration;

use broker_embedded::{
    AutoOffsetReset, Broker, Consumer, ConsumerConfig, NewTopic, Producer, ProducerRecord,
};
use streams_core::{
    processor_fn, AppState, ConsumedRecord, ProcessorContext, Record, Result, Serdes, StreamsApp,
    StreamsConfig, StreamsError, Topology,
};
use tokio::time::Instant;

const DEADLINE: Duration = Duration::from_secs(25);

/// Sources `sa` (topic `ta`) and `sb` (topic `tb`) feed `merge`, which
/// writes each value to `out`: one task reads both topics.
fn merge() -> Topology {
    let mut topology = Topology::new();
    topology
        .add_source("sa", Serdes::string(), Serdes::string(), &["ta"])
        .unwrap()
        .add_source("sb", Serdes::string(), Serdes::string(), &["tb"])
        .unwrap()
        .add_processor(
            "merge",
            || {
                processor_fn(
                    |ctx: &mut ProcessorContext<'_, String, String>, r: Record<String, String>| {
                        ctx.forward(r)
                    },
                )
            },
            &["sa", "sb"],
        )
        .unwrap()
        .add_sink("out", "out", Serdes::string(), Serdes::string(), &["merge"])
        .unwrap();
    topology
}

async fn broker_with(topics: &[&str]) -> Broker {
    let broker = Broker::in_memory().await.unwrap();
    for topic in topics {
        broker.create_topic(NewTopic::new(*topic, 1)).await.unwrap();
    }
    broker
}

async fn send(broker: &Broker, topic: &str, records: &[(&str, i64)]) {
    let producer = Producer::new(broker);
    let batch = records
        .iter()
        .map(|(v, ts)| ProducerRecord::new(topic, v.as_bytes().to_vec()).timestamp(*ts))
        .collect();
    producer.send_batch(batch).await.unwrap();
}

/// Reads `out` until it holds `n` records; returns their values.
async fn read_out(broker: &Broker, n: usize) -> Vec<String> {
    let mut consumer = Consumer::new(
        broker,
        ConsumerConfig {
            auto_offset_reset: AutoOffsetReset::Earliest,
            enable_auto_commit: false,
            ..ConsumerConfig::default()
        },
    );
    consumer.assign_topic("out").await.unwrap();
    let deadline = Instant::now() + DEADLINE;
    let mut values = Vec::new();
    while values.len() < n {
        assert!(
            Instant::now() < deadline,
            "only {values:?} in out, wanted {n}"
        );
        for record in consumer.poll(Duration::from_millis(100)).await.unwrap() {
            values.push(String::from_utf8(record.value.unwrap().to_vec()).unwrap());
        }
    }
    values
}

async fn wait_for_state(app: &StreamsApp, wanted: AppState) {
    let deadline = Instant::now() + DEADLINE;
    while app.state() != wanted {
        assert!(
            Instant::now() < deadline,
            "app stayed in {:?}, wanted {wanted:?}",
            app.state()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn config(app: &str, dir: &Path) -> StreamsConfig {
    StreamsConfig::new(app)
        .with_commit_interval_ms(50)
        .with_state_dir(dir)
}

/// Event time from the value: "skip" gives -1 (skipped and counted), "bad"
/// an error, anything else the record's timestamp.
fn picky(record: &ConsumedRecord<'_>, _previous: Option<i64>) -> Result<i64> {
    match record.value.map(|v| v.as_ref()) {
        Some(b"skip") => Ok(-1),
        Some(b"bad") => Err(StreamsError::user(format!(
            "no event time in {}@{}",
            record.topic, record.offset
        ))),
        _ => Ok(record.timestamp),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extractor_skips_are_counted_and_its_errors_stop_the_app() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker_with(&["ta", "tb", "out"]).await;
    let mut app = StreamsApp::new(
        merge(),
        config("ts-app", dir.path()).with_default_timestamp_extractor(picky),
        broker.clone(),
    );
    app.start().await.unwrap();
    send(&broker, "ta", &[("one", 5), ("skip", 6), ("two", 7)]).await;
    assert_eq!(read_out(&broker, 2).await, ["one", "two"]);
    let metrics = app.dropped_records_metrics();
    assert_eq!(metrics.len(), 1, "{metrics:?}");
    assert_eq!((metrics[0].processor.as_str(), metrics[0].count), ("sa", 1));

    send(&broker, "tb", &[("bad", 8)]).await;
    wait_for_state(&app, AppState::Error).await;
    let cause = app.error().unwrap();
    assert!(cause.contains("no event time in tb@0"), "{cause}");
    assert!(app.close().await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_task_idle_waits_for_an_empty_input_then_processes_in_timestamp_order() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker_with(&["ta", "tb", "out"]).await;
    // Long enough that `tb`'s record, sent after `ta`'s were polled,
    // arrives within it.
    let mut app = StreamsApp::new(
        merge(),
        config("idle-app", dir.path()).with_max_task_idle_ms(60_000),
        broker.clone(),
    );
    app.start().await.unwrap();
    wait_for_state(&app, AppState::Running).await;
    send(&broker, "ta", &[("a10", 10), ("a30", 30)]).await;
    // Usually the task polls `ta` and finds `tb` empty before `tb`'s record
    // is sent; if not, both arrive together and the order is the same.
    tokio::time::sleep(Duration::from_millis(300)).await;
    send(&broker, "tb", &[("b20", 20)]).await;
    // a10 needs no wait once tb has data; a30 waits for tb again, which
    // stays empty, so only enforced processing after 60 s would emit it.
    assert_eq!(read_out(&broker, 2).await, ["a10", "b20"]);
    app.close().await.unwrap();

    // With a short limit, a task whose other input stays empty goes on
    // once the limit passes.
    let dir = tempfile::tempdir().unwrap();
    let broker = broker_with(&["ta", "tb", "out"]).await;
    let mut app = StreamsApp::new(
        merge(),
        config("idle-app-2", dir.path()).with_max_task_idle_ms(200),
        broker.clone(),
    );
    app.start().await.unwrap();
    send(&broker, "ta", &[("a10", 10), ("a30", 30)]).await;
    assert_eq!(read_out(&broker, 2).await, ["a10", "a30"]);
    app.close().await.unwrap();
}

/// Forwards `tick@<stream time>` at each stream-time punctuation (every
/// second of stream time) and nothing for records.
struct Ticks;

impl streams_core::Processor<String, String, String, String> for Ticks {
    fn init(&mut self, ctx: &mut ProcessorContext<'_, String, String>) -> Result<()> {
        ctx.schedule(
            Duration::from_secs(1),
            streams_core::PunctuationType::StreamTime,
            |ctx: &mut ProcessorContext<'_, String, String>, now| {
                ctx.forward(Record::new("t".to_owned(), format!("tick@{now}"), now))
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_input_advances_stream_time_with_the_wall_clock_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker_with(&["ta", "out"]).await;
    let mut topology = Topology::new();
    topology
        .add_source("sa", Serdes::string(), Serdes::string(), &["ta"])
        .unwrap()
        .add_processor("ticks", || Ticks, &["sa"])
        .unwrap()
        .add_sink("out", "out", Serdes::string(), Serdes::string(), &["ticks"])
        .unwrap();
    let mut app = StreamsApp::new(
        topology,
        config("idle-advance", dir.path()).with_task_idle_wall_clock_advance_ms(Some(100)),
        broker.clone(),
    );
    app.start().await.unwrap();
    send(&broker, "ta", &[("x", 10)]).await;
    // The first record fires the schedule at stream time 10; with no more
    // input, stream time then follows the wall clock from 10 and passes
    // 1000 about a second later, firing it again.
    let ticks = read_out(&broker, 2).await;
    assert_eq!(ticks[0], "tick@10");
    let second: i64 = ticks[1].strip_prefix("tick@").unwrap().parse().unwrap();
    assert!(second >= 1_000, "{ticks:?}");
    app.close().await.unwrap();
}

/// Source `in` to `out`, each value written as `<value>@<stream time>`.
fn stamp_stream_time() -> Topology {
    let mut topology = Topology::new();
    topology
        .add_source("in", Serdes::string(), Serdes::string(), &["ta"])
        .unwrap()
        .add_processor(
            "stamp",
            || {
                processor_fn(
                    |ctx: &mut ProcessorContext<'_, String, String>, r: Record<String, String>| {
                        let time = ctx.stream_time().unwrap_or(-1);
                        let value = r.value.clone().map(|v| format!("{v}@{time}"));
                        ctx.forward(Record { value, ..r })
                    },
                )
            },
            &["in"],
        )
        .unwrap()
        .add_sink("out", "out", Serdes::string(), Serdes::string(), &["stamp"])
        .unwrap();
    topology
}

/// Stream time survives a restart: the partition time is committed with
/// the offsets (in Kafka's metadata encoding) and resumed by the next
/// owner, so a record older than what came before the restart does not
/// move stream time back (a late record stays late).
async fn stream_time_survives_a_restart(guarantee: streams_core::ProcessingGuarantee) {
    let broker = broker_with(&["ta", "out"]).await;
    let app_id = format!("resume-{}", guarantee.as_str().replace('_', "-"));
    send(&broker, "ta", &[("a", 1_000), ("b", 5_000)]).await;
    let first_dir = tempfile::tempdir().unwrap();
    let mut first = StreamsApp::new(
        stamp_stream_time(),
        config(&app_id, first_dir.path()).with_processing_guarantee(guarantee),
        broker.clone(),
    );
    first.start().await.unwrap();
    assert_eq!(read_out(&broker, 2).await, ["a@1000", "b@5000"]);
    first.close().await.unwrap();

    // A new instance with no local state: stream time comes from the
    // committed offset's metadata only.
    send(&broker, "ta", &[("c", 2_000)]).await;
    let second_dir = tempfile::tempdir().unwrap();
    let mut second = StreamsApp::new(
        stamp_stream_time(),
        config(&app_id, second_dir.path()).with_processing_guarantee(guarantee),
        broker.clone(),
    );
    second.start().await.unwrap();
    assert_eq!(read_out(&broker, 3).await[2], "c@5000");
    second.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_time_survives_a_restart_at_least_once() {
    stream_time_survives_a_restart(streams_core::ProcessingGuarantee::AtLeastOnce).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_time_survives_a_restart_exactly_once() {
    stream_time_survives_a_restart(streams_core::ProcessingGuarantee::ExactlyOnceV2).await;
}
