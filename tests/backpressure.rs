//! Back-pressure between the log and a task: a task that cannot process
//! (it waits for an empty input, `max.task.idle.ms`) while its other input
//! runs far ahead holds at most `buffered.records.per.partition` plus one
//! poll of that input's records; the rest stays in the log, the process's
//! memory does not grow with it, and once the task can go on every record
//! comes out once.

use std::time::{Duration, Instant};

use broker_embedded::{Broker, Producer, ProducerRecord};
use examples::{ensure_topic, physical_source_topics, read_committed, wait_until_idle};
use streams_core::{Serdes, StreamsApp, StreamsConfig, Topology};
use streams_dsl::{Consumed, Produced, StreamsBuilder};

const APPLICATION_ID: &str = "backpressure";
const FAST: &str = "fast";
const SLOW: &str = "slow";
const OUT: &str = "out";
const MAX_BUFFERED: u64 = 500;
const MAX_POLL: u64 = 100;
/// Records produced to the fast input while the task waits: 40 MiB.
const RECORDS: usize = 40_000;
const VALUE_BYTES: usize = 1024;
/// The index in the value of the slow input's record (never processed).
const SLOW_INDEX: usize = 1_000_000;
const DEADLINE: Duration = Duration::from_secs(180);

/// Both inputs in one task: the merge of `fast` and `slow`, to `out`.
fn topology() -> Topology {
    let builder = StreamsBuilder::new();
    let strings = || Consumed::with(Serdes::string(), Serdes::string());
    let fast = builder.stream::<String, String>(FAST, strings());
    let slow = builder.stream::<String, String>(SLOW, strings());
    fast.merge(&slow)
        .to(OUT, Produced::with(Serdes::string(), Serdes::string()));
    builder.build().unwrap()
}

async fn produce(broker: &Broker, topic: &str, first: usize, count: usize, timestamp: i64) {
    let producer = Producer::new(broker);
    let value = "v".repeat(VALUE_BYTES);
    for chunk_start in (first..first + count).step_by(1_000) {
        let end = (chunk_start + 1_000).min(first + count);
        let batch = (chunk_start..end)
            .map(|i| {
                ProducerRecord::new(topic, format!("{i:08}:{value}").into_bytes())
                    .key(format!("k{i}").into_bytes())
                    .timestamp(timestamp)
            })
            .collect();
        producer.send_batch(batch).await.unwrap();
    }
    producer.flush(&[topic]).await.unwrap();
}

/// The resident memory of this process in KiB (`VmRSS`).
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// The fast input's buffered records in the app's only task.
fn fast_buffered(app: &StreamsApp) -> Option<u64> {
    app.metadata_for_local_threads()
        .iter()
        .flat_map(|t| &t.tasks)
        .flat_map(|t| &t.partitions)
        .find(|p| p.topic == FAST)
        .map(|p| p.buffered_records)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_task_holds_a_bounded_buffer_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path().join("broker"), Default::default())
        .await
        .unwrap();
    for topic in [FAST, SLOW, OUT] {
        ensure_topic(&broker, topic, 1).await.unwrap();
    }
    let topology = topology();
    let sources = physical_source_topics(&topology, APPLICATION_ID);
    let state_dir = dir.path().join("state");
    let config = StreamsConfig::from_pairs([
        ("application.id", APPLICATION_ID),
        ("commit.interval.ms", "100"),
        ("state.dir", &*state_dir.to_string_lossy()),
        // The task waits for its empty input as long as the test needs.
        ("max.task.idle.ms", "600000"),
        ("buffered.records.per.partition", &MAX_BUFFERED.to_string()),
        ("consumer.max.poll.records", &MAX_POLL.to_string()),
    ])
    .unwrap();
    let mut app = StreamsApp::new(topology, config, broker.clone());
    app.start().await.unwrap();

    // A first record of the fast input lets the app settle (group joined,
    // task created) before the measured stretch.
    produce(&broker, FAST, 0, 1, 1_000).await;
    let deadline = Instant::now() + DEADLINE;
    while fast_buffered(&app) != Some(1) {
        assert!(
            Instant::now() < deadline,
            "the task never buffered the first record"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rss_before = rss_kib();

    // 40 MiB more while the task waits for `slow`: it fills its buffer up
    // to the bound and the consumer stops fetching.
    produce(&broker, FAST, 1, RECORDS - 1, 2_000).await;
    let bound = MAX_BUFFERED + MAX_POLL;
    let mut highest = 0;
    while highest < MAX_BUFFERED {
        assert!(Instant::now() < deadline, "the buffer never filled");
        highest = highest.max(fast_buffered(&app).unwrap_or(0));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Watch it for a while: the thread keeps polling (heartbeats, the
    // wait for `slow`), and nothing more comes in.
    for _ in 0..100 {
        let buffered = fast_buffered(&app).unwrap_or(0);
        highest = highest.max(buffered);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        highest <= bound,
        "the task buffered {highest} records of {FAST}, more than {MAX_BUFFERED} + one poll ({MAX_POLL})"
    );
    let grown_mib = rss_kib().saturating_sub(rss_before) / 1024;
    assert!(
        grown_mib < 24,
        "the process grew by {grown_mib} MiB while {RECORDS} records ({} MiB) waited in the log",
        RECORDS * VALUE_BYTES / (1024 * 1024)
    );

    // The other input gets a later record: the task goes on through the
    // whole fast input (pausing and resuming it as its buffer fills and
    // drains), and every record of it comes out once. The slow record is
    // left waiting for more of the fast input, as `max.task.idle.ms` says.
    produce(&broker, SLOW, SLOW_INDEX, 1, 3_000).await;
    let fast_only: Vec<String> = sources.iter().filter(|t| *t == FAST).cloned().collect();
    wait_until_idle(
        &app,
        &broker,
        APPLICATION_ID,
        &fast_only,
        Some(DEADLINE),
        |_| {},
    )
    .await
    .unwrap();
    app.close().await.unwrap();
    let out = read_committed(&broker, OUT, DEADLINE).await.unwrap();
    assert_eq!(out.len(), RECORDS);
    let indexes: Vec<usize> = out
        .iter()
        .map(|r| {
            let value = std::str::from_utf8(r.value.as_deref().unwrap()).unwrap();
            value.split(':').next().unwrap().parse().unwrap()
        })
        .collect();
    // The fast input in offset order, each record once.
    assert_eq!(indexes, (0..RECORDS).collect::<Vec<_>>());
    broker.close().await.unwrap();
}

/// With a `producer.buffer.memory` so small that one task's output fills a
/// processing round, the tasks take turns round after round: none is
/// starved, and every record comes out once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_take_turns_when_the_output_bound_stops_a_round() {
    const PARTITIONS: u32 = 4;
    const PER_PARTITION: usize = 500;
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path().join("broker"), Default::default())
        .await
        .unwrap();
    ensure_topic(&broker, FAST, PARTITIONS).await.unwrap();
    ensure_topic(&broker, OUT, PARTITIONS).await.unwrap();
    let producer = Producer::new(&broker);
    for partition in 0..PARTITIONS {
        let batch = (0..PER_PARTITION)
            .map(|i| {
                ProducerRecord::new(FAST, format!("{partition}-{i}").into_bytes())
                    .partition(partition)
                    .timestamp(i as i64)
            })
            .collect();
        producer.send_batch(batch).await.unwrap();
    }
    producer.flush(&[FAST]).await.unwrap();
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>(FAST, Consumed::with(Serdes::string(), Serdes::string()))
        .to(OUT, Produced::with(Serdes::string(), Serdes::string()));
    let topology = builder.build().unwrap();
    let sources = physical_source_topics(&topology, APPLICATION_ID);
    let state_dir = dir.path().join("state");
    let config = StreamsConfig::from_pairs([
        ("application.id", APPLICATION_ID),
        ("commit.interval.ms", "100"),
        ("state.dir", &*state_dir.to_string_lossy()),
        // A third of it, one byte, is the most output a round makes before
        // the other tasks wait for the next round.
        ("producer.buffer.memory", "3"),
        ("consumer.max.poll.records", "50"),
    ])
    .unwrap();
    let mut app = StreamsApp::new(topology, config, broker.clone());
    app.start().await.unwrap();
    wait_until_idle(
        &app,
        &broker,
        APPLICATION_ID,
        &sources,
        Some(DEADLINE),
        |_| {},
    )
    .await
    .unwrap();
    app.close().await.unwrap();
    let out = read_committed(&broker, OUT, DEADLINE).await.unwrap();
    let mut values: Vec<String> = out
        .iter()
        .map(|r| String::from_utf8(r.value.as_deref().unwrap().to_vec()).unwrap())
        .collect();
    values.sort();
    let mut expected: Vec<String> = (0..PARTITIONS)
        .flat_map(|p| (0..PER_PARTITION).map(move |i| format!("{p}-{i}")))
        .collect();
    expected.sort();
    assert_eq!(values, expected);
    broker.close().await.unwrap();
}
