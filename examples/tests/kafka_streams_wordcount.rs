//! Kafka Streams' own word count (Java, `examples/benches/kafka-streams`) on a single-node
//! Apache Kafka, both started by the examples library, with exactly-once: once its group
//! has committed the end of its input and repartition topics, the last count of each word
//! in `word-counts` (read `read_committed`) is the count of `examples::count_words`.
//!
//! `scripts/kafka-broker.sh` and `scripts/kafka-streams.sh` fetch Kafka's jars from Maven
//! Central and build the Java program the first time, under the target dir. Without Java,
//! Maven or the network the test is skipped with a message, except under `CI=true`, where
//! that is a failure.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use examples::apache_kafka::{self, ApacheKafka, KafkaOptions};
use examples::kafka_progress::{group_caught_up, repartition_topics};
use examples::kafka_streams::{self, Guarantee, KafkaStreamsApp, KafkaStreamsOptions};
use examples::{TEXT_LINES_TOPIC, WORD_COUNTS_TOPIC};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _};
use rdkafka::error::KafkaError;
use rdkafka::message::Message as _;
use rdkafka::producer::{
    BaseProducer, BaseRecord, DeliveryResult, Producer as _, ProducerContext, ThreadedProducer,
};
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};

const APP_ID: &str = "kstreams-wordcount-test";
const PARTITIONS: i32 = 3;

/// Whether the test runs under CI (`CI=true`), where a missing tool is a failure.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Fails under CI, skips elsewhere.
fn unavailable(why: String) {
    if in_ci() {
        panic!("{why} (CI=true: Java, Maven and Maven Central are required)");
    }
    eprintln!("skipping a test on Apache Kafka: {why}");
}

/// The classpath of Apache Kafka's broker, fetched on the first run.
fn broker_classpath() -> Option<String> {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    apache_kafka::broker_classpath(Some(&tmp.join("kafka-broker")))
        .map_err(|e| unavailable(format!("{e:#}")))
        .ok()
}

/// The classpaths of Apache Kafka's broker and of Kafka Streams' word count, fetched and
/// built on the first run.
fn classpaths() -> Option<(String, String)> {
    let broker = broker_classpath()?;
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    kafka_streams::word_count_classpath(Some(&tmp.join("kafka-streams")))
        .map(|streams| (broker, streams))
        .map_err(|e| unavailable(format!("{e:#}")))
        .ok()
}

/// Apache Kafka with `classpath`, its dir under the target dir.
fn start_kafka(classpath: String) -> ApacheKafka {
    ApacheKafka::start_with(KafkaOptions {
        classpath: Some(classpath),
        parent_dir: Some(Path::new(env!("CARGO_TARGET_TMPDIR")).to_owned()),
        ..KafkaOptions::default()
    })
    .unwrap()
}

/// The input: a corpus, and lines that try the split and the lowercasing at their edges
/// (leading, trailing and Unicode whitespace, blank lines, non-ASCII case).
fn input() -> Vec<String> {
    let mut lines = examples::corpus(400, 0x5eed);
    lines.extend(
        [
            "  Leading and trailing spaces  ",
            "Tabs\tand\nnewlines\r\nand   runs",
            "",
            "   ",
            "no\u{a0}break em\u{2003}space ideographic\u{3000}space",
            "École ÉCOLE école",
            "ΟΔΟΣ οδος Straße STRASSE",
            "zero\u{200b}width is not whitespace",
        ]
        .map(str::to_owned),
    );
    lines
}

/// Counts the producer's failed deliveries.
struct Deliveries(Arc<AtomicUsize>);

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: Self::DeliveryOpaque) {
        if result.is_err() {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Produces `lines` (no key) to `topic` with librdkafka, spread by its `murmur2_random`
/// partitioner (Kafka's Java producer's).
fn produce(bootstrap: &str, topic: &str, lines: &[String]) {
    let failed = Arc::new(AtomicUsize::new(0));
    let producer: ThreadedProducer<Deliveries> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("partitioner", "murmur2_random")
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .create_with_context(Deliveries(failed.clone()))
        .unwrap();
    for line in lines {
        producer
            .send(BaseRecord::<(), str>::to(topic).payload(line.as_str()))
            .map_err(|(e, _)| e)
            .unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    assert_eq!(failed.load(Ordering::Relaxed), 0, "deliveries failed");
}

/// Every record of `topic` (String key, Long value) read `read_committed` from the start
/// to the end of each partition: the last value of each key.
fn last_counts(bootstrap: &str, topic: &str) -> HashMap<String, u64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        // librdkafka's assign needs a group; it does not join it, nor commit.
        .set("group.id", "kstreams-wordcount-test-reader")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let mut counts = HashMap::new();
    let mut ended = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while ended.len() < PARTITIONS as usize {
        assert!(Instant::now() < deadline, "{topic} was not read to its end");
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(message)) => {
                let key = String::from_utf8(message.key().expect("a keyed count").to_vec())
                    .expect("a UTF-8 word");
                let value: [u8; 8] = message
                    .payload()
                    .expect("a count")
                    .try_into()
                    .expect("a count of 8 bytes");
                let count = i64::from_be_bytes(value);
                assert!(count > 0, "{key}: {count}");
                counts.insert(key, count as u64);
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                ended.insert(partition);
            }
            Some(Err(e)) => panic!("reading {topic}: {e}"),
        }
    }
    counts
}

#[test]
fn kafka_streams_word_count_on_apache_kafka_counts_exactly_once() {
    let Some((broker_classpath, streams_classpath)) = classpaths() else {
        return;
    };
    let started = Instant::now();
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let kafka = start_kafka(broker_classpath);
    let bootstrap = kafka.bootstrap();
    kafka.create_topic(TEXT_LINES_TOPIC, PARTITIONS).unwrap();
    kafka.create_topic(WORD_COUNTS_TOPIC, PARTITIONS).unwrap();
    let lines = input();
    produce(&bootstrap, TEXT_LINES_TOPIC, &lines);

    // Before the application runs, its group has committed nothing of a topic with
    // records; an unknown topic is an error.
    assert!(!group_caught_up(&bootstrap, APP_ID, &[TEXT_LINES_TOPIC]).unwrap());
    assert!(group_caught_up(&bootstrap, APP_ID, &["no-such-topic"]).is_err());

    let state = tempfile::tempdir_in(tmp).unwrap();
    let mut options = KafkaStreamsOptions::new(
        &bootstrap,
        APP_ID,
        Guarantee::ExactlyOnceV2,
        2,
        100,
        state.path(),
    );
    options.classpath = Some(streams_classpath);
    // A short run: a small heap, and the JIT's first tier only, which starts faster.
    options.jvm_options = ["-Xmx512m", "-XX:TieredStopAtLevel=1"]
        .map(str::to_owned)
        .to_vec();
    let mut app = KafkaStreamsApp::start_with(options).unwrap();
    app.wait_for_state("RUNNING", Duration::from_secs(60))
        .unwrap();
    assert_eq!(
        repartition_topics(&bootstrap, APP_ID).unwrap(),
        [format!("{APP_ID}-word-counts-repartition")]
    );
    app.wait_until_caught_up(&[TEXT_LINES_TOPIC], Duration::from_secs(60))
        .unwrap();
    let cpu = app.cpu_seconds().unwrap();
    let rss = app.peak_rss_kib().unwrap();
    assert!(cpu > 0.0, "cpu {cpu}");
    assert!(rss > 10_000, "peak rss {rss} KiB");

    // Read while the application still runs: caught up means every output is committed.
    let counts = last_counts(&bootstrap, WORD_COUNTS_TOPIC);
    let expected = examples::count_words(&lines);
    assert_eq!(counts.len(), expected.len());
    for (word, count) in &expected {
        assert_eq!(counts.get(word), Some(count), "the count of {word:?}");
    }

    app.stop().unwrap();
    kafka.stop().unwrap();
    eprintln!(
        "Kafka Streams word count on Apache Kafka: {} lines, {} words, {:.1} s of CPU, \
         peak rss {} MiB, {:.1} s in all",
        lines.len(),
        expected.len(),
        cpu,
        rss / 1024,
        started.elapsed().as_secs_f64()
    );
}

/// Commits `offset` of `topic`-0 for `group`, as a consumer outside the group does.
fn commit(bootstrap: &str, group: &str, topic: &str, offset: i64) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset(topic, 0, Offset::Offset(offset))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    // The first commit on a new broker may meet a coordinator not ready yet.
    while let Err(e) = consumer.commit(&offsets, CommitMode::Sync) {
        assert!(
            Instant::now() < deadline,
            "commit of {topic} at {offset}: {e}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A group that committed the offset of a transaction's commit or abort marker has
/// processed everything (the marker is not a record it reads); one that has an unread
/// record before the end, or sits before a transaction still open, has not.
#[test]
fn group_caught_up_reads_past_transaction_markers_only() {
    let Some(classpath) = broker_classpath() else {
        return;
    };
    let kafka = start_kafka(classpath);
    let bootstrap = kafka.bootstrap();
    let (topic, group) = ("gaps", "gaps-group");
    kafka.create_topic(topic, 1).unwrap();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("transactional.id", "gaps-producer")
        .create()
        .unwrap();
    let timeout = Duration::from_secs(30);
    producer.init_transactions(timeout).unwrap();
    let send = |value: &str| {
        producer
            .send(BaseRecord::<(), str>::to(topic).partition(0).payload(value))
            .map_err(|(e, _)| e)
            .unwrap();
        producer.flush(timeout).unwrap();
    };
    let caught_up = || group_caught_up(&bootstrap, group, &[topic]).unwrap();

    // Records at 0, 1, 2; the commit marker at 3.
    producer.begin_transaction().unwrap();
    for value in ["a", "b", "c"] {
        send(value);
    }
    producer.commit_transaction(timeout).unwrap();
    assert_eq!(high_watermark(&bootstrap, topic), 4);
    commit(&bootstrap, group, topic, 2);
    assert!(!caught_up(), "record 2 is not processed");
    commit(&bootstrap, group, topic, 3);
    assert!(caught_up(), "only the commit marker is left");
    commit(&bootstrap, group, topic, 4);
    assert!(caught_up());

    // A transaction still open: its record at 4 may yet be committed.
    producer.begin_transaction().unwrap();
    send("d");
    assert!(!caught_up(), "a transaction is open");
    // Aborted: the record at 4 and the abort marker at 5 are nothing to read.
    producer.abort_transaction(timeout).unwrap();
    assert_eq!(high_watermark(&bootstrap, topic), 6);
    assert!(caught_up(), "only an aborted record and a marker are left");

    // A record written without a transaction after them is one to read.
    let plain: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .unwrap();
    plain
        .send(BaseRecord::<(), str>::to(topic).partition(0).payload("e"))
        .map_err(|(e, _)| e)
        .unwrap();
    plain.flush(timeout).unwrap();
    assert!(!caught_up(), "record 6 is not processed");
    commit(&bootstrap, group, topic, 7);
    assert!(caught_up());
    kafka.stop().unwrap();
}

/// The high watermark of `topic`-0.
fn high_watermark(bootstrap: &str, topic: &str) -> i64 {
    let client: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    client
        .fetch_watermarks(topic, 0, Duration::from_secs(10))
        .unwrap()
        .1
}
