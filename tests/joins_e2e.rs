//! Joins end to end on the embedded broker: a re-keyed stream joined with
//! a table whose topic has fewer partitions than the stream's is
//! repartitioned into the table's partition count (as Kafka Streams sizes
//! a co-partitioned repartition topic); a stream and a table whose topics
//! differ in partition count are refused before start, naming both.

// The topology builder returns streams-core's error, whose size is that crate's choice.
#![allow(clippy::result_large_err)]

use std::time::Duration;

use broker_embedded::{Broker, NewTopic, Producer, ProducerRecord};
use examples::{physical_source_topics, read_committed, wait_until_idle};
use streams_core::{AppState, Serdes, StreamsApp, StreamsConfig, StreamsError};
use streams_dsl::{Consumed, Joined, Materialized, Produced, StreamsBuilder};

const DEADLINE: Duration = Duration::from_secs(60);

fn config(app: &str, dir: &std::path::Path) -> StreamsConfig {
    let mut config = StreamsConfig::new(app);
    config
        .set("state.dir", &dir.to_string_lossy())
        .unwrap()
        .set("commit.interval.ms", "50")
        .unwrap();
    config
}

/// Orders keyed by order id, re-keyed by customer, joined with customers.
fn enrichment(app: &str) -> streams_core::Result<streams_core::Topology> {
    let builder = StreamsBuilder::with_application_id(app);
    let strings = || Consumed::with(Serdes::string(), Serdes::string());
    let customers = builder.table("customers", strings(), Materialized::as_("customers-store"));
    builder
        .stream("orders", strings())
        .select_key(|_, order| order.split(':').next().unwrap_or_default().to_owned())
        .join_table(
            &customers,
            |order, name| format!("{order} for {name}"),
            Joined::new()
                .with_value_serde(Serdes::string())
                .with_name("orders-by-customer"),
        )
        .to(
            "enriched",
            Produced::with(Serdes::string(), Serdes::string()),
        );
    builder.build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rekeyed_stream_is_repartitioned_into_the_tables_partition_count() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::in_memory().await.unwrap();
    broker
        .create_topic(NewTopic::new("orders", 3))
        .await
        .unwrap();
    broker
        .create_topic(NewTopic::new("customers", 2))
        .await
        .unwrap();
    broker
        .create_topic(NewTopic::new("enriched", 1))
        .await
        .unwrap();
    let producer = Producer::new(&broker);
    let mut records = Vec::new();
    for (id, name) in [("c1", "Ann"), ("c2", "Bo"), ("c3", "Cy")] {
        records.push(ProducerRecord::new("customers", name).key(id).timestamp(1));
    }
    producer.send_batch(records).await.unwrap();

    let app_id = "joins-e2e";
    let topology = enrichment(app_id).unwrap();
    let topics = physical_source_topics(&topology, app_id);
    let mut app = StreamsApp::new(topology, config(app_id, dir.path()), broker.clone());
    app.start().await.unwrap();
    // The table is read before the orders arrive: stream-table joins see
    // the rows present when each order is processed.
    wait_until_idle(&app, &broker, app_id, &topics, Some(DEADLINE), |_| {})
        .await
        .unwrap();
    let mut orders = Vec::new();
    for i in 0..30 {
        let customer = ["c1", "c2", "c3", "c4"][i % 4];
        orders.push(
            ProducerRecord::new("orders", format!("{customer}:item{i}"))
                .key(format!("o{i}"))
                .timestamp(10 + i as i64),
        );
    }
    producer.send_batch(orders).await.unwrap();
    wait_until_idle(&app, &broker, app_id, &topics, Some(DEADLINE), |_| {})
        .await
        .unwrap();
    assert_eq!(app.state(), AppState::Running);

    let repartition = format!("{app_id}-orders-by-customer-repartition");
    assert_eq!(broker.partition_count(&repartition).await.unwrap(), 2);
    let mut enriched: Vec<(String, String)> = read_committed(&broker, "enriched", DEADLINE)
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            let key = String::from_utf8(r.key.unwrap().to_vec()).unwrap();
            let value = String::from_utf8(r.value.unwrap().to_vec()).unwrap();
            (key, value)
        })
        .collect();
    enriched.sort();
    let mut expected: Vec<(String, String)> = (0..30)
        .filter(|i| i % 4 != 3)
        .map(|i| {
            let (customer, name) = [("c1", "Ann"), ("c2", "Bo"), ("c3", "Cy")][i % 4];
            (
                customer.to_owned(),
                format!("{customer}:item{i} for {name}"),
            )
        })
        .collect();
    expected.sort();
    assert_eq!(enriched, expected);
    app.close().await.unwrap();
}

#[tokio::test]
async fn a_stream_and_a_table_of_different_partition_counts_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::in_memory().await.unwrap();
    broker
        .create_topic(NewTopic::new("clicks", 3))
        .await
        .unwrap();
    broker
        .create_topic(NewTopic::new("users", 2))
        .await
        .unwrap();
    let builder = StreamsBuilder::new();
    let strings = || Consumed::with(Serdes::string(), Serdes::string());
    let users = builder.table("users", strings(), Materialized::new());
    builder
        .stream("clicks", strings())
        .join_table(&users, |c, u| format!("{c}{u}"), Joined::new())
        .to("out", Produced::with(Serdes::string(), Serdes::string()));
    let mut app = StreamsApp::new(
        builder.build().unwrap(),
        config("copart-join", dir.path()),
        broker,
    );
    let err = app.start().await.unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, StreamsError::CoPartitioning { .. }),
        "{message}"
    );
    assert!(
        message.contains("clicks (3)") && message.contains("users (2)"),
        "{message}"
    );
}
