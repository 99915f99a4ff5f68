//! A stream–table join on a versioned table with a grace period, end to
//! end on the embedded broker: a stream record waiting in the join's
//! buffer when the application stops, with its local state gone, is
//! restored from the buffer's changelog and meets, as of its timestamp, a
//! table update restored from the versioned store's changelog and one
//! that arrives after the restart.

// The topology builder returns streams-core's error, whose size is that crate's choice.
#![allow(clippy::result_large_err)]

use std::time::Duration;

use broker_embedded::{Broker, NewTopic, Producer, ProducerRecord};
use examples::{physical_source_topics, read_committed, wait_until_idle};
use streams_core::{Serdes, StreamsApp, StreamsConfig};
use streams_dsl::{Consumed, Joined, Materialized, Produced, StreamsBuilder};

const DEADLINE: Duration = Duration::from_secs(60);
const APP: &str = "versioned-join";

fn config(dir: &std::path::Path) -> StreamsConfig {
    let mut config = StreamsConfig::new(APP);
    config
        .set("state.dir", &dir.to_string_lossy())
        .unwrap()
        .set("commit.interval.ms", "50")
        .unwrap();
    config
}

/// Orders joined with the price of their key as of their time, each
/// order waiting 10 ms for late prices.
fn topology() -> streams_core::Topology {
    let builder = StreamsBuilder::with_application_id(APP);
    let strings = || Consumed::with(Serdes::string(), Serdes::string());
    let prices = builder.table(
        "prices",
        strings(),
        Materialized::as_versioned("prices-store", Duration::from_secs(60)),
    );
    builder
        .stream::<String, String>("orders", strings())
        .join_table(
            &prices,
            |order, price| format!("{order} at {price}"),
            Joined::new()
                .with_name("priced")
                .with_grace_period(Duration::from_millis(10)),
        )
        .to("priced", Produced::with(Serdes::string(), Serdes::string()));
    builder.build().unwrap()
}

async fn send(broker: &Broker, topic: &str, key: &str, value: &str, timestamp: i64) {
    Producer::new(broker)
        .send_batch(vec![ProducerRecord::new(topic, value.to_owned())
            .key(key.to_owned())
            .timestamp(timestamp)])
        .await
        .unwrap();
}

async fn run_until_idle(app: &StreamsApp, broker: &Broker) {
    let topics = physical_source_topics(&topology(), APP);
    wait_until_idle(app, broker, APP, &topics, Some(DEADLINE), |_| {})
        .await
        .unwrap();
}

async fn priced(broker: &Broker) -> Vec<(String, String, i64)> {
    read_committed(broker, "priced", DEADLINE)
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            (
                String::from_utf8(r.key.unwrap().to_vec()).unwrap(),
                String::from_utf8(r.value.unwrap().to_vec()).unwrap(),
                r.timestamp,
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buffered_order_survives_a_restart_without_local_state() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::in_memory().await.unwrap();
    for topic in ["prices", "orders", "priced"] {
        broker.create_topic(NewTopic::new(topic, 1)).await.unwrap();
    }

    let mut app = StreamsApp::new(topology(), config(dir.path()), broker.clone());
    app.start().await.unwrap();
    send(&broker, "prices", "pen", "2", 0).await;
    send(&broker, "prices", "pen", "4", 200).await;
    run_until_idle(&app, &broker).await;
    // The order waits for stream time 110 (100 + 10 of grace).
    send(&broker, "orders", "pen", "o1", 100).await;
    run_until_idle(&app, &broker).await;
    app.close().await.unwrap();
    assert_eq!(priced(&broker).await, []);

    // Local state gone: the prices' versions and the waiting order come
    // back from their changelogs.
    std::fs::remove_dir_all(dir.path()).unwrap();
    std::fs::create_dir_all(dir.path()).unwrap();
    let mut app = StreamsApp::new(topology(), config(dir.path()), broker.clone());
    app.start().await.unwrap();
    // A price valid at 95, older than the latest (out of order), arrives
    // late; then an order at 110 releases the first one.
    send(&broker, "prices", "pen", "3", 95).await;
    run_until_idle(&app, &broker).await;
    send(&broker, "orders", "ink", "o2", 110).await;
    run_until_idle(&app, &broker).await;
    assert!(app.restored_records() > 0, "nothing was restored");
    assert_eq!(
        priced(&broker).await,
        [("pen".to_owned(), "o1 at 3".to_owned(), 100)]
    );
    app.close().await.unwrap();
}
