//! A versioned store survives a restart: its changelog records carry the
//! versions' timestamps, and restoring them (out-of-order records
//! included) rebuilds the same history, in memory or on redb with its
//! local files gone.

use std::time::Duration;

use broker_embedded::{
    AutoOffsetReset, Broker, Consumer, ConsumerConfig, NewTopic, Producer, ProducerRecord,
};
use streams_core::{
    Processor, ProcessorContext, Record, Result, Serdes, StoreBackend, StoreBuilder, StreamsApp,
    StreamsConfig, Topology,
};
use tokio::time::Instant;

const INPUT: &str = "prices";
const OUTPUT: &str = "prices-as-of";
const DEADLINE: Duration = Duration::from_secs(25);

/// A record `key = value` puts a version at the record's timestamp + 1000
/// (so that the changelog must carry the version's own timestamp); a
/// record `key = "?<t>"` answers `"<t>:<value>@<timestamp>"` (or
/// `"<t>:none"`) with the version of `key` valid at `t`.
struct AsOf;

impl Processor<String, String, String, String> for AsOf {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, String, String>,
        record: Record<String, String>,
    ) -> Result<()> {
        let (Some(key), Some(value)) = (record.key, record.value) else {
            return Ok(());
        };
        let answer = {
            let mut store = ctx.versioned_key_value_store::<String, String>("prices")?;
            match value.strip_prefix('?') {
                Some(t) => {
                    let t: i64 = t.parse().unwrap();
                    Some(match store.get_as_of(&key, t)? {
                        Some(found) => format!("{t}:{}@{}", found.value, found.timestamp),
                        None => format!("{t}:none"),
                    })
                }
                None => {
                    store.put(&key, Some(&value), record.timestamp + 1000)?;
                    None
                }
            }
        };
        match answer {
            Some(answer) => ctx.forward(Record::new(key, answer, record.timestamp)),
            None => Ok(()),
        }
    }
}

fn topology(backend: StoreBackend) -> Topology {
    let mut topology = Topology::new();
    topology
        .add_source("in", Serdes::string(), Serdes::string(), &[INPUT])
        .unwrap()
        .add_processor("as-of", || AsOf, &["in"])
        .unwrap()
        .add_state_store(
            StoreBuilder::versioned_key_value(
                "prices",
                Serdes::string(),
                Serdes::string(),
                Duration::from_secs(3600),
            )
            .with_backend(backend),
            &["as-of"],
        )
        .unwrap()
        .add_sink(
            "out",
            OUTPUT,
            Serdes::string(),
            Serdes::string(),
            &["as-of"],
        )
        .unwrap();
    topology
}

async fn produce(broker: &Broker, records: &[(&str, &str, i64)]) {
    let batch = records
        .iter()
        .map(|(k, v, ts)| {
            ProducerRecord::new(INPUT, v.as_bytes().to_vec())
                .key(k.as_bytes().to_vec())
                .timestamp(*ts)
        })
        .collect();
    Producer::new(broker).send_batch(batch).await.unwrap();
}

async fn read(consumer: &mut Consumer, count: usize) -> Vec<(String, String)> {
    let deadline = Instant::now() + DEADLINE;
    let mut out = Vec::new();
    while out.len() < count {
        assert!(
            Instant::now() < deadline,
            "got only {out:?} of {count} answers"
        );
        for record in consumer.poll(Duration::from_millis(200)).await.unwrap() {
            let (Some(key), Some(value)) = (record.key, record.value) else {
                continue;
            };
            out.push((
                String::from_utf8(key.to_vec()).unwrap(),
                String::from_utf8(value.to_vec()).unwrap(),
            ));
        }
    }
    out
}

async fn setup() -> (Broker, Consumer) {
    let broker = Broker::in_memory().await.unwrap();
    broker.create_topic(NewTopic::new(INPUT, 1)).await.unwrap();
    broker.create_topic(NewTopic::new(OUTPUT, 1)).await.unwrap();
    let mut consumer = Consumer::new(
        &broker,
        ConsumerConfig {
            auto_offset_reset: AutoOffsetReset::Earliest,
            enable_auto_commit: false,
            ..ConsumerConfig::default()
        },
    );
    consumer.assign_topic(OUTPUT).await.unwrap();
    (broker, consumer)
}

fn config(app: &str, dir: &std::path::Path) -> StreamsConfig {
    StreamsConfig::new(app)
        .with_num_stream_threads(1)
        .with_commit_interval_ms(100)
        .with_state_dir(dir)
}

/// Versions of `pen` at 1100, 1300 and, out of order, 1200; of `ink` at
/// 1150 and, out of order, 1050.
const PUTS: [(&str, &str, i64); 5] = [
    ("pen", "1", 100),
    ("pen", "3", 300),
    ("ink", "blue", 150),
    ("pen", "2", 200),
    ("ink", "black", 50),
];

/// Queries (at a later time, so that they change nothing) and answers.
const QUERIES: [(&str, &str, i64); 6] = [
    ("pen", "?1150", 400),
    ("pen", "?1250", 400),
    ("pen", "?1350", 400),
    ("pen", "?1050", 400),
    ("ink", "?1100", 400),
    ("ink", "?1200", 400),
];

fn answers() -> Vec<(String, String)> {
    [
        ("pen", "1150:1@1100"),
        ("pen", "1250:2@1200"),
        ("pen", "1350:3@1300"),
        ("pen", "1050:none"),
        ("ink", "1100:black@1050"),
        ("ink", "1200:blue@1150"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

async fn restart_and_query(backend: StoreBackend, app: &str, wipe_local: bool) {
    let dir = tempfile::tempdir().unwrap();
    let (broker, mut consumer) = setup().await;
    let mut first = StreamsApp::new(topology(backend), config(app, dir.path()), broker.clone());
    first.start().await.unwrap();
    produce(&broker, &PUTS).await;
    // A query answered by the first run tells that the puts went through.
    produce(&broker, &[("pen", "?1250", 310)]).await;
    assert_eq!(
        read(&mut consumer, 1).await,
        [("pen".to_owned(), "1250:2@1200".to_owned())]
    );
    first.close().await.unwrap();
    if wipe_local {
        std::fs::remove_dir_all(dir.path()).unwrap();
        std::fs::create_dir_all(dir.path()).unwrap();
    }

    let mut second = StreamsApp::new(topology(backend), config(app, dir.path()), broker.clone());
    second.start().await.unwrap();
    produce(&broker, &QUERIES).await;
    assert_eq!(read(&mut consumer, QUERIES.len()).await, answers());
    if wipe_local || !backend.is_persistent() {
        assert!(
            second.restored_records() > 0,
            "the versioned store was not restored"
        );
    }
    second.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_versioned_store_is_restored_from_its_changelog() {
    restart_and_query(StoreBackend::InMemory, "versioned-memory", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redb_versioned_store_resumes_from_its_files() {
    restart_and_query(StoreBackend::Redb, "versioned-redb", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redb_versioned_store_without_its_files_is_restored_from_its_changelog() {
    restart_and_query(StoreBackend::Redb, "versioned-redb-wiped", true).await;
}
