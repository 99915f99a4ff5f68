//! The DSL word count end to end on the embedded broker: 100,000 generated
//! lines in three partitions, two stream threads; the last count per word in
//! `word-counts` equals a plain `HashMap` count, and the topology describes
//! its two sub-topologies, the repartition topic and the store.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use broker_embedded::{AutoOffsetReset, Broker, Consumer, ConsumerConfig};
use examples::{
    corpus_with_line_words, count_words, physical_source_topics, produce_values, wait_until_idle,
    word_count_topology, TEXT_LINES_TOPIC, WORD_COUNTS_STORE, WORD_COUNTS_TOPIC,
};
use streams_core::{AppState, StreamsApp, StreamsConfig};

const APPLICATION_ID: &str = "wordcount-e2e";
const LINES: usize = 100_000;
const PARTITIONS: u32 = 3;
/// A bound on each wait, far above what a debug build needs.
const DEADLINE: Duration = Duration::from_secs(120);

#[test]
fn describe_names_both_sub_topologies_the_repartition_topic_and_the_store() {
    let text = word_count_topology(None).unwrap().describe().to_string();
    assert!(text.contains("Sub-topology: 0"), "{text}");
    assert!(text.contains("Sub-topology: 1"), "{text}");
    assert!(!text.contains("Sub-topology: 2"), "{text}");
    assert!(
        text.contains("Sink: word-counts-repartition-sink (topic: word-counts-repartition)"),
        "{text}"
    );
    assert!(
        text.contains("Source: word-counts-repartition-source (topics: [word-counts-repartition])"),
        "{text}"
    );
    assert!(
        text.contains(&format!("(stores: [{WORD_COUNTS_STORE}])")),
        "{text}"
    );
    assert!(
        text.contains(&format!("(topic: {WORD_COUNTS_TOPIC})")),
        "{text}"
    );
}

/// Reads every partition of `topic` up to its current end and keeps the
/// last value per key.
async fn last_values(broker: &Broker, topic: &str) -> HashMap<String, u64> {
    let mut ends = HashMap::new();
    for p in 0..broker.partition_count(topic).await.unwrap() {
        ends.insert(p, broker.offsets(topic, p).await.unwrap().1);
    }
    let mut consumer = Consumer::new(
        broker,
        ConsumerConfig {
            auto_offset_reset: AutoOffsetReset::Earliest,
            enable_auto_commit: false,
            max_poll_records: 10_000,
            ..ConsumerConfig::default()
        },
    );
    consumer.assign_topic(topic).await.unwrap();
    let mut reached: HashMap<u32, u64> = HashMap::new();
    let mut latest = HashMap::new();
    let deadline = Instant::now() + DEADLINE;
    while ends
        .iter()
        .any(|(p, end)| reached.get(p).copied().unwrap_or(0) < *end)
    {
        assert!(
            Instant::now() < deadline,
            "could not read {topic} to its end"
        );
        for record in consumer.poll(Duration::from_millis(200)).await.unwrap() {
            reached.insert(record.partition, record.offset + 1);
            let key = String::from_utf8(record.key.unwrap().to_vec()).unwrap();
            let value = record.value.expect("a count is never null");
            let count = i64::from_be_bytes(value.as_ref().try_into().unwrap());
            latest.insert(key, u64::try_from(count).unwrap());
        }
    }
    latest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn word_count_on_the_broker_equals_a_hash_map_count() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::in_memory().await.unwrap();
    examples::ensure_topic(&broker, TEXT_LINES_TOPIC, PARTITIONS)
        .await
        .unwrap();
    examples::ensure_topic(&broker, WORD_COUNTS_TOPIC, PARTITIONS)
        .await
        .unwrap();
    // Short lines (1 to 6 words, about 350,000 words) keep a debug run quick.
    let lines = corpus_with_line_words(LINES, 42, 1, 6);
    let expected = count_words(&lines);
    produce_values(&broker, TEXT_LINES_TOPIC, &lines, 1_000)
        .await
        .unwrap();

    let topology = word_count_topology(None).unwrap();
    let sources = physical_source_topics(&topology, APPLICATION_ID);
    assert_eq!(
        sources,
        [
            TEXT_LINES_TOPIC.to_owned(),
            format!("{APPLICATION_ID}-word-counts-repartition")
        ]
    );
    let config = StreamsConfig::from_pairs([
        ("application.id", APPLICATION_ID),
        ("num.stream.threads", "2"),
        ("commit.interval.ms", "100"),
        ("state.dir", &*dir.path().to_string_lossy()),
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
    assert_eq!(app.state(), AppState::Running);

    // The internal topics took the input's partition count.
    for topic in [
        format!("{APPLICATION_ID}-word-counts-repartition"),
        format!("{APPLICATION_ID}-word-counts-changelog"),
    ] {
        assert_eq!(broker.partition_count(&topic).await.unwrap(), PARTITIONS);
    }
    app.close().await.unwrap();
    assert_eq!(app.state(), AppState::NotRunning);

    let counted = last_values(&broker, WORD_COUNTS_TOPIC).await;
    assert_eq!(counted.len(), expected.len());
    let differences: Vec<_> = expected
        .iter()
        .filter(|(word, count)| counted.get(*word) != Some(count))
        .take(5)
        .collect();
    assert!(differences.is_empty(), "first differences: {differences:?}");
    assert_eq!(counted, expected);
}
