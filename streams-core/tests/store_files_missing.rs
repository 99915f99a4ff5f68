//! A checkpoint whose store's files are gone is not trusted.
//!
//! Each test runs an application with a persistent store to the end of its
//! input and closes it cleanly, so that every task directory holds a
//! `.checkpoint` naming an offset of the store's changelog. Then it deletes
//! one task's store directory (`<state.dir>/<application.id>/0_0/<store>`)
//! and keeps the checkpoint, as a disk cleanup or a lost volume would, and
//! runs the application again on more input. The restarted store must be
//! restored from the beginning of its changelog: the counts that come out,
//! and the latest value of every key of the changelog, are exact. (Restored
//! from the checkpoint's offset instead, the empty store would count from
//! zero again and write the wrong counts to its changelog too.)

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use broker_embedded::{
    AutoOffsetReset, Broker, Consumer, ConsumerConfig, IsolationLevel, NewTopic, Producer,
    ProducerRecord,
};
use state_store::Checkpoint;
use streams_core::{
    ProcessingGuarantee, Processor, ProcessorContext, Record, Result, Serdes, StoreBackend,
    StoreBuilder, StreamsApp, StreamsConfig, Topology, Window, Windowed,
};
use tokio::time::Instant;

const INPUT: &str = "clicks";
const OUTPUT: &str = "click-counts";
const STORE: &str = "counts";
const PARTITIONS: u32 = 2;
const WINDOW_MS: i64 = 10;
const GAP_MS: i64 = 5;
const DEADLINE: Duration = Duration::from_secs(25);
/// Records of the first run; the second run gets the rest.
const FIRST_RUN: usize = 105;
const RECORDS: usize = 240;

/// The kind of store under test.
#[derive(Debug, Clone, Copy)]
enum Kind {
    KeyValue,
    Window,
    Session,
}

/// Counts records per key in a key-value store; forwards `key` → count.
struct KeyCount;

impl Processor<String, String, String, i64> for KeyCount {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, String, i64>,
        record: Record<String, String>,
    ) -> Result<()> {
        let Some(key) = record.key else {
            return Ok(());
        };
        let count = {
            let mut store = ctx.key_value_store::<String, i64>(STORE)?;
            let count = store.get(&key)?.unwrap_or(0) + 1;
            store.put(&key, &count)?;
            count
        };
        ctx.forward(Record::new(key, count, record.timestamp))
    }
}

/// Counts records per key and tumbling window of [`WINDOW_MS`]; forwards
/// `key@start` → count.
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
        let start = record.timestamp - record.timestamp.rem_euclid(WINDOW_MS);
        let count = {
            let mut store = ctx.window_store::<String, i64>(STORE)?;
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

/// Counts records per key and session (gap [`GAP_MS`]); forwards
/// `key@start-end` → count for the merged session and a tombstone for each
/// session merged into it.
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
        let (mut start, mut end, mut count) = (ts, ts, 1);
        let mut merged = Vec::new();
        {
            let mut store = ctx.session_store::<String, i64>(STORE)?;
            for (session, n) in store.find_sessions(&key, ts - GAP_MS, ts + GAP_MS)? {
                start = start.min(session.window.start);
                end = end.max(session.window.end);
                count += n;
                store.remove(&session)?;
                merged.push(session.window);
            }
            store.put(&Windowed::new(key.clone(), Window::new(start, end)), &count)?;
        }
        for window in merged {
            ctx.forward(Record::from_parts(
                Some(session_name(&key, window.start, window.end)),
                None,
                ts,
            ))?;
        }
        ctx.forward(Record::new(session_name(&key, start, end), count, ts))
    }
}

fn session_name(key: &str, start: i64, end: i64) -> String {
    format!("{key}@{start}-{end}")
}

fn topology(kind: Kind, backend: StoreBackend) -> Topology {
    let store = match kind {
        Kind::KeyValue => StoreBuilder::key_value(STORE, Serdes::string(), Serdes::i64()),
        Kind::Window => StoreBuilder::window(
            STORE,
            Serdes::string(),
            Serdes::i64(),
            Duration::from_secs(3600),
            Duration::from_millis(WINDOW_MS as u64),
        ),
        Kind::Session => StoreBuilder::session(
            STORE,
            Serdes::string(),
            Serdes::i64(),
            Duration::from_secs(3600),
        ),
    }
    .with_backend(backend);
    let mut topology = Topology::new();
    topology
        .add_source("in", Serdes::string(), Serdes::string(), &[INPUT])
        .unwrap();
    match kind {
        Kind::KeyValue => topology.add_processor("count", || KeyCount, &["in"]),
        Kind::Window => topology.add_processor("count", || WindowCount, &["in"]),
        Kind::Session => topology.add_processor("count", || SessionCount, &["in"]),
    }
    .unwrap()
    .add_state_store(store, &["count"])
    .unwrap()
    .add_sink("out", OUTPUT, Serdes::string(), Serdes::i64(), &["count"])
    .unwrap();
    topology
}

/// `(key, timestamp)`: three keys in turn, each one 3 ms after its last
/// record (within the session gap), with a 50 ms pause every 40 records.
/// Keys `k0` and `k2` go to partition 0, `k1` to partition 1.
fn records() -> Vec<(String, i64)> {
    (0..RECORDS as i64)
        .map(|i| (format!("k{}", i % 3), i + (i / 40) * 50))
        .collect()
}

async fn produce(broker: &Broker, records: &[(String, i64)]) {
    let batch = records
        .iter()
        .map(|(key, ts)| {
            ProducerRecord::new(INPUT, "x".as_bytes().to_vec())
                .key(key.clone().into_bytes())
                .partition(u32::from(key == "k1"))
                .timestamp(*ts)
        })
        .collect();
    Producer::new(broker).send_batch(batch).await.unwrap();
}

/// What the store holds after `records`, named as the processors name
/// their output keys.
fn expected(kind: Kind, records: &[(String, i64)]) -> HashMap<String, i64> {
    let mut out = HashMap::new();
    match kind {
        Kind::KeyValue => {
            for (key, _) in records {
                *out.entry(key.clone()).or_insert(0) += 1;
            }
        }
        Kind::Window => {
            for (key, ts) in records {
                let start = ts - ts.rem_euclid(WINDOW_MS);
                *out.entry(format!("{key}@{start}")).or_insert(0) += 1;
            }
        }
        Kind::Session => {
            let mut sessions: HashMap<&str, Vec<(i64, i64, i64)>> = HashMap::new();
            for (key, ts) in records {
                let list = sessions.entry(key).or_default();
                let (mut start, mut end, mut count) = (*ts, *ts, 1);
                list.retain(|&(s, e, n)| {
                    let overlaps = e >= ts - GAP_MS && s <= ts + GAP_MS;
                    if overlaps {
                        start = start.min(s);
                        end = end.max(e);
                        count += n;
                    }
                    !overlaps
                });
                list.push((start, end, count));
            }
            for (key, list) in sessions {
                for (start, end, count) in list {
                    out.insert(session_name(key, start, end), count);
                }
            }
        }
    }
    out
}

/// Reads `topic` from its start with `read_committed` and keeps the latest
/// value of each key, named with `name`; a tombstone removes the key.
async fn latest_values(
    broker: &Broker,
    topic: &str,
    name: impl Fn(&[u8]) -> String,
    until: Option<&HashMap<String, i64>>,
) -> HashMap<String, i64> {
    let mut consumer = Consumer::new(
        broker,
        ConsumerConfig {
            auto_offset_reset: AutoOffsetReset::Earliest,
            enable_auto_commit: false,
            isolation_level: IsolationLevel::ReadCommitted,
            ..ConsumerConfig::default()
        },
    );
    consumer.assign_topic(topic).await.unwrap();
    let mut latest = HashMap::new();
    let deadline = Instant::now() + DEADLINE;
    loop {
        let records = consumer.poll(Duration::from_millis(200)).await.unwrap();
        if records.is_empty() && until.is_none_or(|want| &latest == want) {
            return latest;
        }
        assert!(
            Instant::now() < deadline,
            "{topic} did not reach the expected values: got {latest:?}, want {until:?}"
        );
        for record in records {
            let key = name(&record.key.unwrap());
            match record.value {
                Some(value) => {
                    let count = i64::from_be_bytes(value.as_ref().try_into().unwrap());
                    latest.insert(key, count);
                }
                None => {
                    latest.remove(&key);
                }
            }
        }
    }
}

/// The name of a changelog key of a store of `kind`, as the processors
/// name their output keys.
fn changelog_key(kind: Kind, bytes: &[u8]) -> String {
    match kind {
        Kind::KeyValue => String::from_utf8(bytes.to_vec()).unwrap(),
        Kind::Window => {
            let (key, start) = state_store::decode_windowed_key(bytes).unwrap();
            format!("{}@{start}", String::from_utf8(key.to_vec()).unwrap())
        }
        Kind::Session => {
            let session = state_store::decode_session_key(bytes).unwrap();
            let key = String::from_utf8(session.key.to_vec()).unwrap();
            session_name(&key, session.start, session.end)
        }
    }
}

/// One application under test.
struct Case {
    app_id: String,
    kind: Kind,
    backend: StoreBackend,
    guarantee: ProcessingGuarantee,
}

impl Case {
    /// Runs the application until its output holds `want`, producing
    /// `records` once it has started; closes it cleanly and returns the
    /// number of changelog records it restored.
    async fn run(
        &self,
        broker: &Broker,
        state_dir: &Path,
        records: &[(String, i64)],
        want: &HashMap<String, i64>,
    ) -> u64 {
        let config = StreamsConfig::new(&self.app_id)
            .with_num_stream_threads(1)
            .with_commit_interval_ms(100)
            .with_state_dir(state_dir)
            .with_processing_guarantee(self.guarantee);
        let topology = topology(self.kind, self.backend);
        let mut app = StreamsApp::new(topology, config, broker.clone());
        app.start().await.unwrap();
        produce(broker, records).await;
        let name = |bytes: &[u8]| String::from_utf8(bytes.to_vec()).unwrap();
        latest_values(broker, OUTPUT, name, Some(want)).await;
        app.close().await.unwrap();
        app.restored_records()
    }
}

/// Runs the application on the first records, deletes the store files of
/// task `0_0` under its checkpoint, runs it on the rest, and checks the
/// output and the changelog.
async fn store_files_deleted_under_a_checkpoint(
    kind: Kind,
    backend: StoreBackend,
    guarantee: ProcessingGuarantee,
) {
    let case = Case {
        app_id: format!("lost-{kind:?}-{backend}-{guarantee:?}").to_lowercase(),
        kind,
        backend,
        guarantee,
    };
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::in_memory().await.unwrap();
    for topic in [INPUT, OUTPUT] {
        broker
            .create_topic(NewTopic::new(topic, PARTITIONS))
            .await
            .unwrap();
    }
    let all = records();
    let (first, second) = all.split_at(FIRST_RUN);
    let state_dir = dir.path();
    let restored = case
        .run(&broker, state_dir, first, &expected(kind, first))
        .await;
    assert_eq!(restored, 0, "the first run restored records");

    // The clean close left a checkpoint that names the store's changelog
    // past its start, and the store's files beside it.
    let changelog = format!("{}-{STORE}-changelog", case.app_id);
    let task_dir = state_dir.join(&case.app_id).join("0_0");
    let checkpoint = Checkpoint::read(&task_dir.join(".checkpoint"))
        .unwrap()
        .expect("a clean close writes a checkpoint");
    let offset = checkpoint.get(&changelog, 0).unwrap_or(0);
    assert!(offset > 0, "the checkpoint names no changelog offset");
    let store_dir = task_dir.join(STORE);
    assert!(
        store_dir.is_dir(),
        "no store files at {}",
        store_dir.display()
    );
    std::fs::remove_dir_all(&store_dir).unwrap();

    let restored = case
        .run(&broker, state_dir, second, &expected(kind, &all))
        .await;
    // Task 0_1 resumes at its checkpoint, the end of its changelog: what
    // was restored is task 0_0's changelog, from its beginning.
    assert!(
        restored > 0,
        "nothing was restored: the store without its files was trusted at offset {offset}"
    );
    let logged = latest_values(&broker, &changelog, |b| changelog_key(kind, b), None).await;
    assert_eq!(
        logged,
        expected(kind, &all),
        "the changelog's latest values"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redb_key_value_store_files_deleted_at_least_once() {
    store_files_deleted_under_a_checkpoint(
        Kind::KeyValue,
        StoreBackend::Redb,
        ProcessingGuarantee::AtLeastOnce,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redb_key_value_store_files_deleted_exactly_once() {
    store_files_deleted_under_a_checkpoint(
        Kind::KeyValue,
        StoreBackend::Redb,
        ProcessingGuarantee::ExactlyOnceV2,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sled_key_value_store_files_deleted_at_least_once() {
    store_files_deleted_under_a_checkpoint(
        Kind::KeyValue,
        StoreBackend::Sled,
        ProcessingGuarantee::AtLeastOnce,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redb_window_store_files_deleted_at_least_once() {
    store_files_deleted_under_a_checkpoint(
        Kind::Window,
        StoreBackend::Redb,
        ProcessingGuarantee::AtLeastOnce,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sled_session_store_files_deleted_exactly_once() {
    store_files_deleted_under_a_checkpoint(
        Kind::Session,
        StoreBackend::Sled,
        ProcessingGuarantee::ExactlyOnceV2,
    )
    .await;
}
