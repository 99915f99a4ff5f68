//! End-to-end runs of `StreamsApp` on the embedded broker: a Processor API
//! word count that re-keys through a repartition topic and counts in a
//! logged, cached key-value store.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use broker_embedded::{
    AutoOffsetReset, Broker, Consumer, ConsumerConfig, NewTopic, Producer, ProducerRecord,
    TopicPartition,
};
use streams_core::{
    AppState, DeserializationHandler, Serdes, StreamsApp, StreamsConfig, StreamsError, Topology,
};
use tokio::time::Instant;

mod common;

use common::{word_count, Split, INPUT, OUTPUT};

const DEADLINE: Duration = Duration::from_secs(25);

fn config(app: &str, dir: &Path, threads: u32) -> StreamsConfig {
    StreamsConfig::new(app)
        .with_num_stream_threads(threads)
        .with_commit_interval_ms(100)
        .with_state_dir(dir)
}

/// A deterministic corpus: `lines` lines of 1 to 8 words out of 300.
fn corpus(lines: usize, seed: u64) -> Vec<String> {
    let mut state = seed | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..lines)
        .map(|_| {
            let words = 1 + next() % 8;
            (0..words)
                .map(|_| format!("w{}", next() % 300))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

fn count_words<'a>(lines: impl IntoIterator<Item = &'a String>) -> HashMap<String, i64> {
    let mut counts = HashMap::new();
    for line in lines {
        for word in line.split_whitespace() {
            *counts.entry(word.to_owned()).or_insert(0) += 1;
        }
    }
    counts
}

async fn produce(broker: &Broker, lines: &[String]) {
    let producer = Producer::new(broker);
    for (i, chunk) in lines.chunks(5_000).enumerate() {
        let records = chunk
            .iter()
            .map(|l| ProducerRecord::new(INPUT, l.clone().into_bytes()).timestamp(1_000 + i as i64))
            .collect();
        producer.send_batch(records).await.unwrap();
    }
}

/// Follows `word-counts` and keeps the last value per key.
struct OutputReader {
    consumer: Consumer,
    latest: HashMap<String, i64>,
}

impl OutputReader {
    async fn new(broker: &Broker) -> Self {
        let mut consumer = Consumer::new(
            broker,
            ConsumerConfig {
                auto_offset_reset: AutoOffsetReset::Earliest,
                enable_auto_commit: false,
                max_poll_records: 10_000,
                ..ConsumerConfig::default()
            },
        );
        consumer.assign_topic(OUTPUT).await.unwrap();
        Self {
            consumer,
            latest: HashMap::new(),
        }
    }

    /// Reads until the last values equal `expected`; panics at the deadline.
    async fn wait_for(&mut self, expected: &HashMap<String, i64>) {
        let deadline = Instant::now() + DEADLINE;
        while &self.latest != expected {
            assert!(
                Instant::now() < deadline,
                "word counts did not converge: {} of {} keys, first differences: {:?}",
                self.latest.len(),
                expected.len(),
                expected
                    .iter()
                    .filter(|(k, v)| self.latest.get(*k) != Some(v))
                    .take(5)
                    .map(|(k, v)| (k.clone(), *v, self.latest.get(k).copied()))
                    .collect::<Vec<_>>()
            );
            for record in self
                .consumer
                .poll(Duration::from_millis(200))
                .await
                .unwrap()
            {
                let key = String::from_utf8(record.key.unwrap().to_vec()).unwrap();
                let value = record.value.unwrap();
                let count = i64::from_be_bytes(value.as_ref().try_into().unwrap());
                self.latest.insert(key, count);
            }
        }
    }
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

async fn broker_with_input(partitions: u32) -> Broker {
    let broker = Broker::in_memory().await.unwrap();
    broker
        .create_topic(NewTopic::new(INPUT, partitions))
        .await
        .unwrap();
    broker
        .create_topic(NewTopic::new(OUTPUT, partitions))
        .await
        .unwrap();
    broker
}

async fn changelog_size(broker: &Broker, app: &str, partitions: u32) -> u64 {
    let mut total = 0;
    for p in 0..partitions {
        let (start, end) = broker
            .offsets(&format!("{app}-counts-changelog"), p)
            .await
            .unwrap();
        total += end - start;
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn word_count_matches_a_hash_map_count() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker_with_input(3).await;
    let lines = corpus(100_000, 7);
    let expected = count_words(&lines);

    let states = Arc::new(Mutex::new(Vec::new()));
    let mut app = StreamsApp::new(word_count(), config("wc", dir.path(), 2), broker.clone());
    let seen = states.clone();
    app.set_state_listener(move |new, _old| seen.lock().unwrap().push(new));
    assert_eq!(app.state(), AppState::Created);
    app.start().await.unwrap();
    produce(&broker, &lines).await;

    let mut reader = OutputReader::new(&broker).await;
    reader.wait_for(&expected).await;
    wait_for_state(&app, AppState::Running).await;

    // Internal topics exist with the source partition count.
    assert_eq!(
        broker.partition_count("wc-counts-changelog").await.unwrap(),
        3
    );
    assert_eq!(
        broker
            .partition_count("wc-words-repartition")
            .await
            .unwrap(),
        3
    );
    assert_eq!(app.local_tasks().len(), 6);

    // Interactive queries see the counts of every local task.
    let counts = app.store::<String, i64>("counts").unwrap();
    assert_eq!(
        counts.get(&"w1".to_owned()).unwrap(),
        expected.get("w1").copied()
    );
    let all: HashMap<String, i64> = counts.all().unwrap().into_iter().collect();
    assert_eq!(all, expected);
    assert!(matches!(
        app.store::<String, i64>("nope"),
        Err(StreamsError::NoSuchStore { .. })
    ));

    app.close().await.unwrap();
    assert_eq!(app.state(), AppState::NotRunning);
    let states = states.lock().unwrap().clone();
    assert_eq!(states.first(), Some(&AppState::Rebalancing));
    assert!(states.contains(&AppState::Running));
    assert_eq!(
        &states[states.len() - 2..],
        &[AppState::PendingShutdown, AppState::NotRunning]
    );
    // Checkpoints were written for each counting task.
    for p in 0..3 {
        assert!(dir.path().join(format!("wc/1_{p}/.checkpoint")).exists());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_one_instance_moves_its_tasks_to_the_other() {
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let broker = broker_with_input(4).await;
    let lines = corpus(40_000, 11);
    let (first, second) = lines.split_at(20_000);

    let mut a = StreamsApp::new(word_count(), config("two", dir_a.path(), 1), broker.clone());
    let mut b = StreamsApp::new(word_count(), config("two", dir_b.path(), 1), broker.clone());
    a.start().await.unwrap();
    b.start().await.unwrap();
    produce(&broker, first).await;
    let mut reader = OutputReader::new(&broker).await;
    reader.wait_for(&count_words(first)).await;

    // The tasks are split between the two instances.
    let deadline = Instant::now() + DEADLINE;
    while a.local_tasks().is_empty() || b.local_tasks().is_empty() {
        assert!(Instant::now() < deadline, "tasks were not split");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(a.local_tasks().len() + b.local_tasks().len(), 8);

    a.close().await.unwrap();
    produce(&broker, second).await;
    reader.wait_for(&count_words(&lines)).await;
    assert_eq!(b.local_tasks().len(), 8);
    assert!(
        b.restored_records() > 0,
        "the surviving instance restored the moved stores from their changelogs"
    );
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_restores_from_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker_with_input(3).await;
    let lines = corpus(40_000, 23);
    let (first, second) = lines.split_at(20_000);

    let mut app = StreamsApp::new(
        word_count(),
        config("restart", dir.path(), 2),
        broker.clone(),
    );
    app.start().await.unwrap();
    produce(&broker, first).await;
    let mut reader = OutputReader::new(&broker).await;
    reader.wait_for(&count_words(first)).await;
    app.close().await.unwrap();
    assert_eq!(app.restored_records(), 0);

    let changelog = changelog_size(&broker, "restart", 3).await;
    assert!(changelog > 0);
    let mut app = StreamsApp::new(
        word_count(),
        config("restart", dir.path(), 2),
        broker.clone(),
    );
    app.start().await.unwrap();
    produce(&broker, second).await;
    reader.wait_for(&count_words(&lines)).await;
    assert!(
        app.restored_records() < changelog,
        "restored {} records, the changelog holds {changelog}: restoration did not start at the checkpoint",
        app.restored_records()
    );
    app.close().await.unwrap();
}

#[tokio::test]
async fn sources_of_one_task_must_be_co_partitioned() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::in_memory().await.unwrap();
    broker.create_topic(NewTopic::new("left", 2)).await.unwrap();
    broker
        .create_topic(NewTopic::new("right", 3))
        .await
        .unwrap();
    let mut topology = Topology::new();
    topology
        .add_source("l", Serdes::string(), Serdes::string(), &["left"])
        .unwrap()
        .add_source("r", Serdes::string(), Serdes::string(), &["right"])
        .unwrap()
        .add_processor("split", || Split, &["l", "r"])
        .unwrap();
    let mut app = StreamsApp::new(topology, config("copart", dir.path(), 1), broker);
    let err = app.start().await.unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, StreamsError::CoPartitioning { .. }),
        "{message}"
    );
    assert!(
        message.contains("left (2)") && message.contains("right (3)"),
        "{message}"
    );
    assert_eq!(app.state(), AppState::Created);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_a_processor_stops_the_app_in_error() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker_with_input(1).await;
    let mut app = StreamsApp::new(word_count(), config("boom", dir.path(), 1), broker.clone());
    app.start().await.unwrap();
    produce(&broker, &["a b".to_owned()]).await;
    let mut reader = OutputReader::new(&broker).await;
    reader
        .wait_for(&HashMap::from([("a".to_owned(), 1), ("b".to_owned(), 1)]))
        .await;
    produce(&broker, &["c panic! d".to_owned()]).await;
    wait_for_state(&app, AppState::Error).await;
    let cause = app.error().unwrap();
    assert!(
        cause.contains("a user function failed on purpose"),
        "{cause}"
    );
    assert!(app.close().await.is_err());
    assert_eq!(app.state(), AppState::Error);

    // What was committed before the failure stays committed.
    let committed = Consumer::new(
        &broker,
        ConsumerConfig {
            group_id: Some("boom".to_owned()),
            ..ConsumerConfig::default()
        },
    )
    .committed(&[TopicPartition::new(INPUT, 0)])
    .await
    .unwrap();
    assert_eq!(
        committed
            .get(&TopicPartition::new(INPUT, 0))
            .map(|o| o.offset),
        Some(1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_records_go_to_the_dead_letter_topic() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker_with_input(1).await;
    let mut topology = Topology::new();
    topology
        .add_source("n", Serdes::string(), Serdes::i64(), &[INPUT])
        .unwrap()
        .add_sink("out", OUTPUT, Serdes::string(), Serdes::i64(), &["n"])
        .unwrap();
    let config = config("dlq", dir.path(), 1)
        .with_deserialization_handler(DeserializationHandler::DeadLetterTopic)
        .with_dead_letter_topic("dlq-errors");
    let mut app = StreamsApp::new(topology, config, broker.clone());
    app.start().await.unwrap();
    let producer = Producer::new(&broker);
    producer
        .send_batch(vec![
            ProducerRecord::new(INPUT, b"bad".to_vec()).key(b"k1".to_vec()),
            ProducerRecord::new(INPUT, 5i64.to_be_bytes().to_vec()).key(b"k2".to_vec()),
        ])
        .await
        .unwrap();
    let mut reader = OutputReader::new(&broker).await;
    reader
        .wait_for(&HashMap::from([("k2".to_owned(), 5)]))
        .await;
    app.close().await.unwrap();

    let mut dlq = Consumer::new(
        &broker,
        ConsumerConfig {
            auto_offset_reset: AutoOffsetReset::Earliest,
            ..ConsumerConfig::default()
        },
    );
    dlq.assign_topic("dlq-errors").await.unwrap();
    let records = dlq.poll(Duration::from_secs(5)).await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].value.as_deref(), Some(&b"bad"[..]));
    assert!(records[0]
        .headers
        .iter()
        .any(|h| h.key == "__streams.errors.exception"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threads_without_partitions_do_not_hold_the_app_in_rebalancing() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker_with_input(1).await;
    let lines = corpus(1_000, 5);
    let mut app = StreamsApp::new(word_count(), config("idle", dir.path(), 3), broker.clone());
    app.start().await.unwrap();
    produce(&broker, &lines).await;
    let mut reader = OutputReader::new(&broker).await;
    reader.wait_for(&count_words(&lines)).await;
    wait_for_state(&app, AppState::Running).await;
    assert_eq!(app.local_tasks().len(), 2);
    app.close().await.unwrap();
    assert_eq!(app.state(), AppState::NotRunning);
}
