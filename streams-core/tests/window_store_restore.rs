//! A window store survives a restart: its in-memory content is rebuilt
//! from its changelog before processing resumes.

use std::collections::HashMap;
use std::time::Duration;

use broker_embedded::{
    AutoOffsetReset, Broker, Consumer, ConsumerConfig, NewTopic, Producer, ProducerRecord,
};
use streams_core::{
    Processor, ProcessorContext, Record, Result, Serdes, StoreBuilder, StreamsApp, StreamsConfig,
    Topology,
};
use tokio::time::Instant;

const INPUT: &str = "clicks";
const OUTPUT: &str = "clicks-per-window";
const SIZE_MS: i64 = 10;
const DEADLINE: Duration = Duration::from_secs(25);

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

fn topology() -> Topology {
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
            ),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn window_store_is_restored_from_its_changelog() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::in_memory().await.unwrap();
    broker.create_topic(NewTopic::new(INPUT, 1)).await.unwrap();
    broker.create_topic(NewTopic::new(OUTPUT, 1)).await.unwrap();
    let config = || {
        StreamsConfig::new("windows-restart")
            .with_num_stream_threads(1)
            .with_commit_interval_ms(100)
            .with_state_dir(dir.path())
    };
    let mut consumer = Consumer::new(
        &broker,
        ConsumerConfig {
            auto_offset_reset: AutoOffsetReset::Earliest,
            enable_auto_commit: false,
            ..ConsumerConfig::default()
        },
    );
    consumer.assign_topic(OUTPUT).await.unwrap();
    let mut latest = HashMap::new();

    let first = records(0, 25);
    let mut app = StreamsApp::new(topology(), config(), broker.clone());
    app.start().await.unwrap();
    produce(&broker, &first).await;
    wait_for(&mut consumer, &mut latest, &expected(&first)).await;
    app.close().await.unwrap();

    // The second run continues window [20, 30): its counts go on from the
    // restored values instead of starting again from 1.
    let all = records(0, 50);
    let mut app = StreamsApp::new(topology(), config(), broker.clone());
    app.start().await.unwrap();
    produce(&broker, &all[25..]).await;
    wait_for(&mut consumer, &mut latest, &expected(&all)).await;
    assert!(
        app.restored_records() > 0,
        "the window store was not restored"
    );
    app.close().await.unwrap();
}
