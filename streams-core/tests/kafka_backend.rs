//! `StreamsApp` on the Kafka backend (`StreamsApp::connect`), against the
//! Kafka wire protocol server in the same process: the word count under
//! at-least-once and exactly-once, compared with a hash map count; a
//! restart on an empty state directory that restores the store from its
//! changelog; keyed output placed in the partitions the Java client picks;
//! an instance killed mid-stream and a zombie fenced under exactly-once;
//! and the errors of a bad client setting and of an unreachable cluster.
//!
//! Input is written and output read with librdkafka's own clients.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use broker_embedded::partitioner::partition_for_key;
use broker_embedded::{Broker, BrokerConfig, NewTopic};
use broker_wire::{Server, WireConfig};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use streams_core::{
    AppState, PausePoint, ProcessingGuarantee, Serdes, StreamsApp, StreamsConfig, StreamsError,
    Topology,
};

mod common;

use common::{word_count, INPUT, OUTPUT};

const PARTITIONS: u32 = 3;
const DEADLINE: Duration = Duration::from_secs(60);

/// A broker served on an ephemeral port, with the runtime serving it.
struct Served {
    runtime: tokio::runtime::Runtime,
    broker: Broker,
    addr: String,
}

fn serve() -> Served {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let broker = runtime
        .block_on(Broker::in_memory_with(BrokerConfig {
            group_initial_rebalance_delay_ms: 0,
            ..BrokerConfig::default()
        }))
        .unwrap();
    let server = runtime
        .block_on(Server::bind(
            broker.clone(),
            WireConfig {
                listen: "127.0.0.1:0".parse().unwrap(),
                ..WireConfig::default()
            },
        ))
        .unwrap();
    let addr = server.local_addr().unwrap().to_string();
    runtime.spawn(server.run(std::future::pending()));
    Served {
        runtime,
        broker,
        addr,
    }
}

impl Served {
    fn create_topic(&self, name: &str, partitions: u32) {
        self.runtime
            .block_on(self.broker.create_topic(NewTopic::new(name, partitions)))
            .unwrap();
    }
}

/// A deterministic corpus: `lines` lines of 1 to 8 words out of 300.
fn corpus(lines: usize, seed: u64) -> Vec<String> {
    let mut next = xorshift(seed);
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

fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed | 1;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
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

fn config(app: &str, addr: &str, dir: &Path, guarantee: ProcessingGuarantee) -> StreamsConfig {
    let mut config = StreamsConfig::new(app)
        .with_bootstrap_servers(addr)
        .with_num_stream_threads(2)
        .with_processing_guarantee(guarantee)
        .with_commit_interval_ms(100)
        .with_state_dir(dir);
    config
        .set("consumer.session.timeout.ms", "6000")
        .unwrap()
        .set("producer.linger.ms", "1")
        .unwrap();
    config
}

/// Writes `lines` to the input topic with librdkafka, unkeyed.
fn produce(addr: &str, lines: &[String]) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()
        .unwrap();
    for (i, line) in lines.iter().enumerate() {
        let record = BaseRecord::<(), _>::to(INPUT)
            .payload(line.as_str())
            .timestamp(1_000 + i as i64);
        producer.send(record).map_err(|(e, _)| e).unwrap();
        if i % 1_000 == 999 {
            producer.poll(Duration::ZERO);
        }
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

/// Follows the output topic with librdkafka and keeps, per word, every
/// count read in offset order.
struct OutputReader {
    consumer: BaseConsumer,
    counts: HashMap<String, Vec<i64>>,
}

impl OutputReader {
    fn new(addr: &str, isolation: &str) -> Self {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", addr)
            .set("group.id", "output-reader")
            .set("enable.auto.commit", "false")
            .set("isolation.level", isolation)
            .create()
            .unwrap();
        let mut list = TopicPartitionList::new();
        for p in 0..PARTITIONS {
            list.add_partition_offset(OUTPUT, p as i32, Offset::Beginning)
                .unwrap();
        }
        consumer.assign(&list).unwrap();
        Self {
            consumer,
            counts: HashMap::new(),
        }
    }

    fn latest(&self) -> HashMap<String, i64> {
        self.counts
            .iter()
            .filter_map(|(k, v)| v.last().map(|last| (k.clone(), *last)))
            .collect()
    }

    /// Reads until the last count of every word equals `expected`.
    fn wait_for(&mut self, expected: &HashMap<String, i64>) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let latest = self.latest();
            if &latest == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "word counts did not converge: {} of {} words, first differences: {:?}",
                latest.len(),
                expected.len(),
                expected
                    .iter()
                    .filter(|(k, v)| latest.get(*k) != Some(v))
                    .take(5)
                    .map(|(k, v)| (k.clone(), *v, latest.get(k).copied()))
                    .collect::<Vec<_>>()
            );
            match self.consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    let key = String::from_utf8(m.key().unwrap().to_vec()).unwrap();
                    let count = i64::from_be_bytes(m.payload().unwrap().try_into().unwrap());
                    self.counts.entry(key).or_default().push(count);
                }
                Some(Err(e)) => panic!("reading the output failed: {e}"),
                None => {}
            }
        }
    }

    /// Reads until nothing more comes for a while.
    fn drain(&mut self) {
        let mut quiet = Instant::now();
        while quiet.elapsed() < Duration::from_millis(500) {
            if let Some(Ok(m)) = self.consumer.poll(Duration::from_millis(50)) {
                let key = String::from_utf8(m.key().unwrap().to_vec()).unwrap();
                let count = i64::from_be_bytes(m.payload().unwrap().try_into().unwrap());
                self.counts.entry(key).or_default().push(count);
                quiet = Instant::now();
            }
        }
    }

    /// Under exactly-once every count of a word is read once: per word,
    /// the committed counts strictly increase.
    fn assert_no_duplicates(&self) {
        for (word, counts) in &self.counts {
            assert!(
                counts.windows(2).all(|w| w[0] < w[1]),
                "counts of {word} repeat or go back: {counts:?}"
            );
        }
    }
}

fn wait_for_state(app: &StreamsApp, wanted: AppState) {
    let deadline = Instant::now() + DEADLINE;
    while app.state() != wanted {
        assert!(
            Instant::now() < deadline,
            "app stayed in {:?} ({:?}), wanted {wanted:?}",
            app.state(),
            app.error()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The word count on Kafka: run, check against a hash map count; then a
/// second instance on an empty state directory restores the counts from
/// the changelog and goes on from the committed offsets.
fn word_count_on_kafka(app_id: &str, guarantee: ProcessingGuarantee) {
    let served = serve();
    served.create_topic(INPUT, PARTITIONS);
    served.create_topic(OUTPUT, PARTITIONS);
    let lines = corpus(3_000, 11);
    let isolation = match guarantee {
        ProcessingGuarantee::ExactlyOnceV2 => "read_committed",
        _ => "read_uncommitted",
    };

    let first_dir = tempfile::tempdir().unwrap();
    let mut app = StreamsApp::connect(
        word_count(),
        config(app_id, &served.addr, first_dir.path(), guarantee),
    )
    .unwrap();
    served.runtime.block_on(app.start()).unwrap();
    produce(&served.addr, &lines[..2_000]);
    let mut reader = OutputReader::new(&served.addr, isolation);
    reader.wait_for(&count_words(&lines[..2_000]));
    wait_for_state(&app, AppState::Running);
    assert_eq!(app.local_tasks().len(), 2 * PARTITIONS as usize);
    // The internal topics, made through the admin client.
    for topic in [
        format!("{app_id}-counts-changelog"),
        format!("{app_id}-words-repartition"),
    ] {
        assert_eq!(
            served
                .runtime
                .block_on(served.broker.partition_count(&topic))
                .unwrap(),
            PARTITIONS,
            "{topic}"
        );
    }
    served.runtime.block_on(app.close()).unwrap();
    assert_eq!(app.state(), AppState::NotRunning);

    // A new instance with nothing on disk: the store comes back from the
    // changelog, and the counts go on.
    let second_dir = tempfile::tempdir().unwrap();
    let mut app = StreamsApp::connect(
        word_count(),
        config(app_id, &served.addr, second_dir.path(), guarantee),
    )
    .unwrap();
    served.runtime.block_on(app.start()).unwrap();
    produce(&served.addr, &lines[2_000..]);
    reader.wait_for(&count_words(&lines));
    assert!(
        app.restored_records() > 0,
        "the second instance restored nothing"
    );
    if guarantee == ProcessingGuarantee::ExactlyOnceV2 {
        reader.assert_no_duplicates();
    }
    served.runtime.block_on(app.close()).unwrap();
    assert_eq!(app.error(), None);
}

#[test]
fn word_count_at_least_once_on_kafka_matches_a_hash_map_count_and_restores() {
    word_count_on_kafka("wc-alos", ProcessingGuarantee::AtLeastOnce);
}

#[test]
fn word_count_exactly_once_on_kafka_matches_a_hash_map_count_and_restores() {
    word_count_on_kafka("wc-eos", ProcessingGuarantee::ExactlyOnceV2);
}

/// Exactly-once across a crash: an instance killed mid-stream (no commit,
/// no leave-group, its transaction left open) is replaced by another on an
/// empty state directory. The new instance waits for the group to drop the
/// dead member and for the broker to abort its transaction, restores the
/// store from the committed changelog, and goes on from the committed
/// offsets: read with `read_committed`, each count is written once.
#[test]
fn exactly_once_on_kafka_survives_a_killed_instance() {
    let served = serve();
    served.create_topic(INPUT, PARTITIONS);
    served.create_topic(OUTPUT, PARTITIONS);
    let lines = corpus(4_000, 23);
    let app_id = "wc-eos-kill";
    let with_short_transactions = |dir: &Path| {
        let mut config = config(
            app_id,
            &served.addr,
            dir,
            ProcessingGuarantee::ExactlyOnceV2,
        );
        config
            .set("producer.transaction.timeout.ms", "5000")
            .unwrap();
        config
    };

    let first_dir = tempfile::tempdir().unwrap();
    let mut first =
        StreamsApp::connect(word_count(), with_short_transactions(first_dir.path())).unwrap();
    served.runtime.block_on(first.start()).unwrap();
    produce(&served.addr, &lines[..2_000]);
    let mut reader = OutputReader::new(&served.addr, "read_committed");
    reader.wait_for(&count_words(&lines[..2_000]));
    produce(&served.addr, &lines[2_000..3_000]);
    served.runtime.block_on(first.kill_for_tests());

    let second_dir = tempfile::tempdir().unwrap();
    let mut second =
        StreamsApp::connect(word_count(), with_short_transactions(second_dir.path())).unwrap();
    served.runtime.block_on(second.start()).unwrap();
    produce(&served.addr, &lines[3_000..]);
    reader.wait_for(&count_words(&lines));
    reader.assert_no_duplicates();
    assert!(second.restored_records() > 0);
    served.runtime.block_on(second.close()).unwrap();
    assert_eq!(second.error(), None);
}

fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Two instances share the tasks; one stops before its commit, with its
/// transaction open, past `max.poll.interval.ms`: librdkafka takes it out
/// of the group and the other instance takes every task. Woken up, the
/// zombie's commit is refused (its transaction timed out and was aborted,
/// its producer fenced): it closes its tasks dirty, takes a new producer
/// and rejoins. Nothing is committed twice.
#[test]
fn a_zombie_on_kafka_is_fenced_and_rejoins() {
    let served = serve();
    served.create_topic(INPUT, PARTITIONS);
    served.create_topic(OUTPUT, PARTITIONS);
    let lines = corpus(10_000, 29);
    let expected = count_words(&lines);
    let app_config = |dir: &Path| {
        let mut config = config(
            "zombie",
            &served.addr,
            dir,
            ProcessingGuarantee::ExactlyOnceV2,
        )
        .with_num_stream_threads(1);
        config
            .set("producer.transaction.timeout.ms", "3000")
            .unwrap()
            .set("main.consumer.max.poll.interval.ms", "6500")
            .unwrap();
        config
    };
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = StreamsApp::connect(word_count(), app_config(dirs.0.path())).unwrap();
    let mut b = StreamsApp::connect(word_count(), app_config(dirs.1.path())).unwrap();
    served.runtime.block_on(a.start()).unwrap();
    served.runtime.block_on(b.start()).unwrap();
    wait_until("the tasks to be split", || {
        !a.local_tasks().is_empty() && !b.local_tasks().is_empty()
    });
    produce(&served.addr, &lines);
    let mut reader = OutputReader::new(&served.addr, "read_committed");
    wait_until("some output", || {
        reader.drain();
        !reader.counts.is_empty()
    });

    a.pause_for_tests(PausePoint::BeforeCommit);
    wait_until("B to own every task", || {
        b.local_tasks().len() == 2 * PARTITIONS as usize
    });
    reader.wait_for(&expected);

    let before = a.dirty_closes_for_tests();
    a.resume_for_tests();
    wait_until("the zombie to be fenced", || {
        a.dirty_closes_for_tests() > before
    });
    wait_until("the zombie to rejoin and get tasks", || {
        !a.local_tasks().is_empty()
    });
    served.runtime.block_on(a.close()).unwrap();
    served.runtime.block_on(b.close()).unwrap();
    assert_eq!(a.error(), None);

    reader.drain();
    assert_eq!(reader.latest(), expected);
    reader.assert_no_duplicates();
}

#[test]
fn keyed_output_lands_in_the_java_clients_partitions() {
    let served = serve();
    served.create_topic("keys-in", 1);
    served.create_topic("keys-out", 7);
    let mut topology = Topology::new();
    topology
        .add_source("in", Serdes::byte_vec(), Serdes::byte_vec(), &["keys-in"])
        .unwrap()
        .add_sink(
            "out",
            "keys-out",
            Serdes::byte_vec(),
            Serdes::byte_vec(),
            &["in"],
        )
        .unwrap();

    let mut next = xorshift(5);
    let keys: Vec<Vec<u8>> = (0..1_000)
        .map(|_| {
            let len = (next() % 20) as usize + 1;
            (0..len).map(|_| next() as u8).collect()
        })
        .collect();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &served.addr)
        .create()
        .unwrap();
    for key in &keys {
        producer
            .send(
                BaseRecord::to("keys-in")
                    .key(key.as_slice())
                    .payload("v")
                    .partition(0),
            )
            .map_err(|(e, _)| e)
            .unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let mut app = StreamsApp::connect(
        topology,
        config(
            "placement",
            &served.addr,
            dir.path(),
            ProcessingGuarantee::AtLeastOnce,
        ),
    )
    .unwrap();
    served.runtime.block_on(app.start()).unwrap();

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &served.addr)
        .set("group.id", "placement-check")
        .create()
        .unwrap();
    let mut list = TopicPartitionList::new();
    list.add_partition_range("keys-out", 0, 6);
    list.set_all_offsets(Offset::Beginning).unwrap();
    consumer.assign(&list).unwrap();
    let deadline = Instant::now() + DEADLINE;
    let mut read = 0;
    while read < keys.len() {
        assert!(Instant::now() < deadline, "read {read} of {}", keys.len());
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let key = m.key().unwrap();
                assert_eq!(
                    m.partition() as u32,
                    partition_for_key(key, 7),
                    "key {key:?}"
                );
                read += 1;
            }
            Some(Err(e)) => panic!("reading the output failed: {e}"),
            None => {}
        }
    }
    served.runtime.block_on(app.close()).unwrap();
}

#[test]
fn a_bad_producer_setting_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut bad = config(
        "bad-setting",
        "127.0.0.1:9092",
        dir.path(),
        ProcessingGuarantee::AtLeastOnce,
    );
    bad.set("producer.no.such.setting", "1").unwrap();
    match StreamsApp::connect(word_count(), bad) {
        Err(StreamsError::InvalidConfig { key, .. }) => {
            assert_eq!(key, "producer.no.such.setting")
        }
        other => panic!("expected an invalid config, got {other:?}"),
    }

    let mut bad = config(
        "bad-value",
        "127.0.0.1:9092",
        dir.path(),
        ProcessingGuarantee::AtLeastOnce,
    );
    bad.set("producer.linger.ms", "soon").unwrap();
    let error = StreamsApp::connect(word_count(), bad).unwrap_err();
    assert!(error.to_string().contains("producer.linger.ms"), "{error}");

    let no_servers = StreamsConfig::new("no-servers").with_state_dir(dir.path());
    match StreamsApp::connect(word_count(), no_servers) {
        Err(StreamsError::InvalidConfig { key, .. }) => assert_eq!(key, "bootstrap.servers"),
        other => panic!("expected an invalid config, got {other:?}"),
    }
}

#[test]
fn an_unreachable_cluster_is_a_clear_error_in_bounded_time() {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let servers = format!("127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let mut unreachable = config(
        "unreachable",
        &servers,
        dir.path(),
        ProcessingGuarantee::AtLeastOnce,
    );
    unreachable.set("default.api.timeout.ms", "2000").unwrap();
    let mut app = StreamsApp::connect(word_count(), unreachable).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let error = runtime.block_on(app.start()).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    let message = error.to_string();
    assert!(message.contains(&servers), "{message}");
    assert!(message.contains("bootstrap.servers"), "{message}");
}
