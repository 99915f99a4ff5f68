//! Window and session stores survive a restart: in-memory content is
//! rebuilt from the changelog before processing resumes; a sled window
//! store resumes from its local data and checkpoint, and is rebuilt from
//! the changelog when its local state is lost.

use std::collections::HashMap;
use std::time::Duration;

use broker_embedded::{
    AutoOffsetReset, Broker, Consumer, ConsumerConfig, NewTopic, Producer, ProducerRecord,
};
use streams_core::{
    ProcessingGuarantee, Processor, ProcessorContext, Record, Result, Serdes, StoreBackend,
    StoreBuilder, StreamsApp, StreamsConfig, Topology, Window, Windowed,
};
use tokio::time::Instant;

const INPUT: &str = "clicks";
const OUTPUT: &str = "clicks-per-window";
const SIZE_MS: i64 = 10;
const DEADLINE: Duration = Duration::from_secs(25);
const GAP_MS: i64 = 5;

/// Counts records per key and 10 ms tumbling window; forwards
/// `"<key>@<start>"` with the count.
struct WindowCount;

impl Processor<String, String, String, i64> for WindowCount {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, String, i64>,
        record: Record<String, String>,
    ) -> Result<()> {
        let Some(key) = record.key else {
            return Ok(());
        };
        let start = record.timestamp - record.timestamp.rem_euclid(SIZE_MS);
        let count = {
            let mut store = ctx.window_store::<String, i64>("windows")?;
            let count = store.fetch(&key, start)?.unwrap_or(0) + 1;
            store.put(&key, start, Some(&count))?;
            count
        };
        ctx.forward(Record::new(
            format!("{key}@{start}"),
            count,
            record.timestamp,
        ))
    }
}

/// Counts records per key and session (inactivity gap [`GAP_MS`]):
/// merges the sessions a record reaches, removes them and puts the merged
/// one; forwards `"<key>"` with the count of its current session.
struct SessionCount;

impl Processor<String, String, String, i64> for SessionCount {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, String, i64>,
        record: Record<String, String>,
    ) -> Result<()> {
        let Some(key) = record.key else {
            return Ok(());
        };
        let ts = record.timestamp;
        let count = {
            let mut store = ctx.session_store::<String, i64>("sessions")?;
            let (mut start, mut end, mut count) = (ts, ts, 1);
            for (session, n) in store.find_sessions(&key, ts - GAP_MS, ts + GAP_MS)? {
                start = start.min(session.window.start);
                end = end.max(session.window.end);
                count += n;
                store.remove(&session)?;
            }
            store.put(&Windowed::new(key.clone(), Window::new(start, end)), &count)?;
            count
        };
        ctx.forward(Record::new(key, count, ts))
    }
}

fn topology(backend: StoreBackend) -> Topology {
    let mut topology = Topology::new();
    topology
        .add_source("in", Serdes::string(), Serdes::string(), &[INPUT])
        .unwrap()
        .add_processor("count", || WindowCount, &["in"])
        .unwrap()
        .add_state_store(
            StoreBuilder::window(
                "windows",
                Serdes::string(),
                Serdes::i64(),
                Duration::from_secs(3600),
                Duration::from_millis(10),
            )
            .with_backend(backend),
            &["count"],
        )
        .unwrap()
        .add_sink("out", OUTPUT, Serdes::string(), Serdes::i64(), &["count"])
        .unwrap();
    topology
}

fn session_topology(backend: StoreBackend) -> Topology {
    let mut topology = Topology::new();
    topology
        .add_source("in", Serdes::string(), Serdes::string(), &[INPUT])
        .unwrap()
        .add_processor("count", || SessionCount, &["in"])
        .unwrap()
        .add_state_store(
            StoreBuilder::session(
                "sessions",
                Serdes::string(),
                Serdes::i64(),
                Duration::from_secs(3600),
            )
            .with_backend(backend),
            &["count"],
        )
        .unwrap()
        .add_sink("out", OUTPUT, Serdes::string(), Serdes::i64(), &["count"])
        .unwrap();
    topology
}

/// `(key, timestamp)` records: 3 keys over 5 windows.
fn records(from: i64, to: i64) -> Vec<(String, i64)> {
    (from..to).map(|i| (format!("k{}", i % 3), i)).collect()
}

async fn produce(broker: &Broker, records: &[(String, i64)]) {
    let batch = records
        .iter()
        .map(|(k, ts)| {
            ProducerRecord::new(INPUT, "x".as_bytes().to_vec())
                .key(k.clone().into_bytes())
                .timestamp(*ts)
        })
        .collect();
    Producer::new(broker).send_batch(batch).await.unwrap();
}

fn expected(records: &[(String, i64)]) -> HashMap<String, i64> {
    let mut counts = HashMap::new();
    for (k, ts) in records {
        let start = ts - ts.rem_euclid(SIZE_MS);
        *counts.entry(format!("{k}@{start}")).or_insert(0) += 1;
    }
    counts
}

async fn wait_for(
    consumer: &mut Consumer,
    latest: &mut HashMap<String, i64>,
    want: &HashMap<String, i64>,
) {
    let deadline = Instant::now() + DEADLINE;
    while latest != want {
        assert!(
            Instant::now() < deadline,
            "windowed counts did not converge: got {latest:?}, want {want:?}"
        );
        for record in consumer.poll(Duration::from_millis(200)).await.unwrap() {
            let (Some(key), Some(value)) = (record.key, record.value) else {
                continue;
            };
            let key = String::from_utf8(key.to_vec()).unwrap();
            let value: [u8; 8] = value.as_ref().try_into().unwrap();
            latest.insert(key, i64::from_be_bytes(value));
        }
    }
}

/// The count of each key's last session, for in-order `records`.
fn expected_sessions(records: &[(String, i64)]) -> HashMap<String, i64> {
    let mut last: HashMap<String, (i64, i64)> = HashMap::new();
    for (k, ts) in records {
        let entry = last.entry(k.clone()).or_insert((*ts, 0));
        if ts - entry.0 > GAP_MS {
            entry.1 = 0;
        }
        *entry = (*ts, entry.1 + 1);
    }
    last.into_iter().map(|(k, (_, n))| (k, n)).collect()
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_store_is_restored_from_its_changelog() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, mut consumer) = setup().await;
    let mut latest = HashMap::new();
    // Keys k0..k2 every 3 ms each (within the gap), then a pause of 20 ms
    // that starts new sessions.
    let all: Vec<(String, i64)> = (0..60)
        .map(|i| (format!("k{}", i % 3), if i < 40 { i } else { i + 20 }))
        .collect();

    let mut app = StreamsApp::new(
        session_topology(StoreBackend::InMemory),
        config("sessions-restart", dir.path()),
        broker.clone(),
    );
    app.start().await.unwrap();
    produce(&broker, &all[..25]).await;
    wait_for(&mut consumer, &mut latest, &expected_sessions(&all[..25])).await;
    app.close().await.unwrap();

    // The second run extends the sessions of the first: their counts go on
    // from the restored sessions.
    let mut app = StreamsApp::new(
        session_topology(StoreBackend::InMemory),
        config("sessions-restart", dir.path()),
        broker.clone(),
    );
    app.start().await.unwrap();
    produce(&broker, &all[25..]).await;
    wait_for(&mut consumer, &mut latest, &expected_sessions(&all)).await;
    assert!(
        app.restored_records() > 0,
        "the session store was not restored"
    );
    app.close().await.unwrap();
}

/// Whether a directory `store` holding a `sled` directory lies under `dir`.
fn has_sled_dir(dir: &std::path::Path, store: &str) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|entry| {
        let path = entry.path();
        path.is_dir()
            && ((path.file_name() == Some(store.as_ref()) && path.join("sled").is_dir())
                || has_sled_dir(&path, store))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sled_window_store_resumes_and_is_restored_from_its_changelog() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, mut consumer) = setup().await;
    let mut latest = HashMap::new();
    let all = records(0, 75);
    let topology = || topology(StoreBackend::Sled);

    let mut app = StreamsApp::new(
        topology(),
        config("sled-windows", dir.path()),
        broker.clone(),
    );
    app.start().await.unwrap();
    produce(&broker, &all[..25]).await;
    wait_for(&mut consumer, &mut latest, &expected(&all[..25])).await;
    app.close().await.unwrap();
    assert!(
        has_sled_dir(dir.path(), "windows"),
        "the window store left no sled database on disk"
    );

    // The second run resumes from the local store and its checkpoint.
    let mut app = StreamsApp::new(
        topology(),
        config("sled-windows", dir.path()),
        broker.clone(),
    );
    app.start().await.unwrap();
    produce(&broker, &all[25..50]).await;
    wait_for(&mut consumer, &mut latest, &expected(&all[..50])).await;
    app.close().await.unwrap();

    // With its local state gone, the third run rebuilds it from the
    // changelog: window [50, 60) goes on from the restored count.
    std::fs::remove_dir_all(dir.path()).unwrap();
    std::fs::create_dir_all(dir.path()).unwrap();
    let mut app = StreamsApp::new(
        topology(),
        config("sled-windows", dir.path()),
        broker.clone(),
    );
    app.start().await.unwrap();
    produce(&broker, &all[50..]).await;
    wait_for(&mut consumer, &mut latest, &expected(&all)).await;
    assert!(
        app.restored_records() > 0,
        "the sled window store was not restored"
    );
    app.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn window_store_is_restored_from_its_changelog() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, mut consumer) = setup().await;
    let config = || config("windows-restart", dir.path());
    let mut latest = HashMap::new();

    let first = records(0, 25);
    let mut app = StreamsApp::new(topology(StoreBackend::InMemory), config(), broker.clone());
    app.start().await.unwrap();
    produce(&broker, &first).await;
    wait_for(&mut consumer, &mut latest, &expected(&first)).await;
    app.close().await.unwrap();

    // The second run continues window [20, 30): its counts go on from the
    // restored values instead of starting again from 1.
    let all = records(0, 50);
    let mut app = StreamsApp::new(topology(StoreBackend::InMemory), config(), broker.clone());
    app.start().await.unwrap();
    produce(&broker, &all[25..]).await;
    wait_for(&mut consumer, &mut latest, &expected(&all)).await;
    assert!(
        app.restored_records() > 0,
        "the window store was not restored"
    );
    app.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sled_session_store_killed_under_exactly_once_is_restored_without_double_counting() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, mut consumer) = setup().await;
    let mut latest = HashMap::new();
    let all: Vec<(String, i64)> = (0..300)
        .map(|i| (format!("k{}", i % 3), i + (i / 100) * 50))
        .collect();
    // The killed instance never leaves its group: short session and
    // transaction timeouts let the next one take over quickly.
    let config = || {
        let mut config = config("sessions-eos", dir.path())
            .with_processing_guarantee(ProcessingGuarantee::ExactlyOnceV2);
        for (key, value) in [
            ("consumer.session.timeout.ms", "2000"),
            ("consumer.heartbeat.interval.ms", "300"),
            ("producer.transaction.timeout.ms", "4000"),
        ] {
            config.set(key, value).unwrap();
        }
        config
    };

    let mut first = StreamsApp::new(
        session_topology(StoreBackend::Sled),
        config(),
        broker.clone(),
    );
    first.start().await.unwrap();
    produce(&broker, &all[..150]).await;
    // Some output is read, then the instance dies: no commit, no close.
    let deadline = Instant::now() + DEADLINE;
    while latest.is_empty() {
        assert!(Instant::now() < deadline, "no output was produced");
        for record in consumer.poll(Duration::from_millis(50)).await.unwrap() {
            if let (Some(key), Some(value)) = (record.key, record.value) {
                let value: [u8; 8] = value.as_ref().try_into().unwrap();
                latest.insert(
                    String::from_utf8(key.to_vec()).unwrap(),
                    i64::from_be_bytes(value),
                );
            }
        }
    }
    first.kill_for_tests().await;

    // The next instance finds the store without a checkpoint, wipes it and
    // restores the committed sessions, which the second half extends: the
    // last session counts are exact, not counted twice.
    let mut second = StreamsApp::new(
        session_topology(StoreBackend::Sled),
        config(),
        broker.clone(),
    );
    second.start().await.unwrap();
    produce(&broker, &all[150..]).await;
    wait_for(&mut consumer, &mut latest, &expected_sessions(&all)).await;
    second.close().await.unwrap();
}
