//! A stream–stream left join on the embedded broker, closed and started
//! again twice: its window stores (lists of values per key and timestamp)
//! and its outer-join store are in memory, so each start restores them from
//! their changelogs, and a join across the restarts equals a join without
//! them.

use std::time::Duration;

use broker_embedded::{Broker, Producer, ProducerRecord};
use examples::{ensure_topic, physical_source_topics, read_committed, wait_until_idle};
use streams_core::{Serdes, StoreBackend, StreamsApp, StreamsConfig, Topology};
use streams_dsl::{Consumed, JoinWindows, Produced, StreamJoined, StreamsBuilder};

const APPLICATION_ID: &str = "join-restore";
const ORDERS: &str = "orders";
const PAYMENTS: &str = "payments";
const PAID: &str = "paid";
/// A bound on each wait, far above what a debug build needs.
const DEADLINE: Duration = Duration::from_secs(120);

fn topology() -> Topology {
    let builder = StreamsBuilder::new();
    let strings = || Consumed::with(Serdes::string(), Serdes::string());
    let orders = builder.stream::<String, String>(ORDERS, strings());
    let payments = builder.stream::<String, String>(PAYMENTS, strings());
    orders
        .left_join(
            &payments,
            |order, payment| format!("{order}+{}", payment.map_or("-", String::as_str)),
            JoinWindows::of_time_difference_and_grace(
                Duration::from_millis(10),
                Duration::from_millis(5),
            ),
            StreamJoined::new().with_backend(StoreBackend::InMemory),
        )
        .to(PAID, Produced::with(Serdes::string(), Serdes::string()));
    builder.build().unwrap()
}

async fn send(broker: &Broker, topic: &str, records: &[(&str, &str, i64)]) {
    let producer = Producer::new(broker);
    let batch = records
        .iter()
        .map(|(k, v, ts)| {
            ProducerRecord::new(topic, v.as_bytes().to_vec())
                .key(k.as_bytes().to_vec())
                .timestamp(*ts)
        })
        .collect();
    producer.send_batch(batch).await.unwrap();
    producer.flush(&[topic]).await.unwrap();
}

/// Runs the join until it has consumed every input record, then closes it.
async fn run(broker: &Broker, state_dir: &str) {
    let topology = topology();
    let sources = physical_source_topics(&topology, APPLICATION_ID);
    let config = StreamsConfig::from_pairs([
        ("application.id", APPLICATION_ID),
        ("commit.interval.ms", "50"),
        ("state.dir", state_dir),
    ])
    .unwrap();
    let mut app = StreamsApp::new(topology, config, broker.clone());
    app.start().await.unwrap();
    wait_until_idle(
        &app,
        broker,
        APPLICATION_ID,
        &sources,
        Some(DEADLINE),
        |_| {},
    )
    .await
    .unwrap();
    app.close().await.unwrap();
}

/// `key:value@timestamp` of every record of `paid`.
async fn paid(broker: &Broker) -> Vec<String> {
    read_committed(broker, PAID, DEADLINE)
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            let text = |b: Option<bytes::Bytes>| {
                String::from_utf8(b.unwrap_or_default().to_vec()).unwrap()
            };
            format!("{}:{}@{}", text(r.key), text(r.value), r.timestamp)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_left_join_resumes_from_its_changelogs_after_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().to_string_lossy().into_owned();
    let broker = Broker::in_memory().await.unwrap();
    for topic in [ORDERS, PAYMENTS, PAID] {
        ensure_topic(&broker, topic, 1).await.unwrap();
    }

    // o1 is paid; o2 and o3 are not yet, and their windows are open.
    send(
        &broker,
        ORDERS,
        &[
            ("o1", "book", 100),
            ("o2", "pen", 101),
            ("o2", "pen2", 101),
            ("o3", "ink", 102),
        ],
    )
    .await;
    send(&broker, PAYMENTS, &[("o1", "card", 104)]).await;
    run(&broker, &state_dir).await;
    assert_eq!(paid(&broker).await, ["o1:book+card@104"]);

    // After a restart, o2's payment finds both o2 orders in the restored
    // left window store, and removes them from the restored outer-join
    // store.
    send(&broker, PAYMENTS, &[("o2", "cash", 105)]).await;
    run(&broker, &state_dir).await;
    assert_eq!(
        paid(&broker).await,
        ["o1:book+card@104", "o2:pen+cash@105", "o2:pen2+cash@105"]
    );

    // After another, a record far ahead closes o3's window: o3 comes out
    // unmatched, o2 does not.
    send(&broker, PAYMENTS, &[("o9", "coin", 200)]).await;
    run(&broker, &state_dir).await;
    assert_eq!(
        paid(&broker).await,
        [
            "o1:book+card@104",
            "o2:pen+cash@105",
            "o2:pen2+cash@105",
            "o3:ink+-@102"
        ]
    );
}
