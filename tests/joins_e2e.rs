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
use streams_dsl::{Consumed, Joined, Materialized, Produced, StreamsBuilder, TableJoined};

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

/// An app of `topology` started on `broker`, and the topics its group
/// reads.
async fn start(
    broker: &Broker,
    topology: streams_core::Topology,
    app_id: &str,
    dir: &std::path::Path,
) -> (StreamsApp, Vec<String>) {
    let topics = physical_source_topics(&topology, app_id);
    let mut app = StreamsApp::new(topology, config(app_id, dir), broker.clone());
    app.start().await.unwrap();
    (app, topics)
}

/// Waits until the app's group has processed and committed every record of
/// `topics`.
async fn settle(app: &StreamsApp, broker: &Broker, app_id: &str, topics: &[String]) {
    wait_until_idle(app, broker, app_id, topics, Some(DEADLINE), |_| {})
        .await
        .unwrap();
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
    let (mut app, topics) = start(&broker, topology, app_id, dir.path()).await;
    // The table is read before the orders arrive: stream-table joins see
    // the rows present when each order is processed.
    settle(&app, &broker, app_id, &topics).await;
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
    settle(&app, &broker, app_id, &topics).await;
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

/// A global table is read to its end before the stream is processed, then
/// followed: orders placed before the app started join with every product
/// written before it started, and later products join later orders.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_global_table_is_complete_before_processing_and_then_followed() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::in_memory().await.unwrap();
    broker
        .create_topic(NewTopic::new("sales", 3))
        .await
        .unwrap();
    // More partitions than the stream: no co-partitioning needed.
    broker
        .create_topic(NewTopic::new("products", 5))
        .await
        .unwrap();
    broker
        .create_topic(NewTopic::new("priced", 1))
        .await
        .unwrap();
    let producer = Producer::new(&broker);
    let products: Vec<ProducerRecord> = (0..200)
        .map(|i| ProducerRecord::new("products", format!("price{i}")).key(format!("p{i}")))
        .collect();
    producer.send_batch(products).await.unwrap();
    // Sales waiting before the app starts: each must find its product.
    let sales: Vec<ProducerRecord> = (0..200)
        .map(|i| ProducerRecord::new("sales", format!("p{i}")).key(format!("s{i}")))
        .collect();
    producer.send_batch(sales).await.unwrap();

    let app_id = "global-e2e";
    let builder = StreamsBuilder::new();
    let strings = || Consumed::with(Serdes::string(), Serdes::string());
    let catalog = builder.global_table("products", strings(), Materialized::as_("catalog"));
    builder
        .stream("sales", strings())
        .join_global(
            &catalog,
            |_, product: &String| Some(product.clone()),
            |p, price| format!("{p}@{price}"),
        )
        .to("priced", Produced::with(Serdes::string(), Serdes::string()));
    let topology = builder.build().unwrap();
    let (mut app, topics) = start(&broker, topology, app_id, dir.path()).await;
    settle(&app, &broker, app_id, &topics).await;
    let priced = read_committed(&broker, "priced", DEADLINE).await.unwrap();
    assert_eq!(priced.len(), 200, "every sale found its product");

    // A product added while running is seen by a later sale.
    producer
        .send(ProducerRecord::new("products", "new-price").key("p-new"))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        producer
            .send(ProducerRecord::new("sales", "p-new").key("s-new"))
            .await
            .unwrap();
        settle(&app, &broker, app_id, &topics).await;
        let values: Vec<String> = read_committed(&broker, "priced", DEADLINE)
            .await
            .unwrap()
            .into_iter()
            .map(|r| String::from_utf8(r.value.unwrap().to_vec()).unwrap())
            .collect();
        if values.iter().any(|v| v == "p-new@new-price") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the global table never saw the new product"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.close().await.unwrap();
}

/// A foreign-key join needs no co-partitioning: orders (3 partitions)
/// joined with products (2) by the order's product id, through its
/// subscription and response topics, which the runtime creates with the
/// partition counts of the tables that read them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_key_join_runs_across_partition_counts() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::in_memory().await.unwrap();
    broker
        .create_topic(NewTopic::new("order-table", 3))
        .await
        .unwrap();
    broker
        .create_topic(NewTopic::new("product-table", 2))
        .await
        .unwrap();
    broker
        .create_topic(NewTopic::new("order-lines", 1))
        .await
        .unwrap();
    let producer = Producer::new(&broker);
    let products: Vec<ProducerRecord> = (0..10)
        .map(|i| ProducerRecord::new("product-table", format!("Product {i}")).key(format!("p{i}")))
        .collect();
    producer.send_batch(products).await.unwrap();
    let orders: Vec<ProducerRecord> = (0..60)
        .map(|i| ProducerRecord::new("order-table", format!("p{}", i % 12)).key(format!("o{i}")))
        .collect();
    producer.send_batch(orders).await.unwrap();

    let app_id = "fk-e2e";
    let builder = StreamsBuilder::new();
    let strings = || Consumed::with(Serdes::string(), Serdes::string());
    let orders = builder.table("order-table", strings(), Materialized::new());
    let products = builder.table("product-table", strings(), Materialized::new());
    orders
        .join_foreign_key(
            &products,
            |product: &String| Some(product.clone()),
            |product, name| format!("{product}={name}"),
            TableJoined::new(),
            Materialized::new(),
        )
        .to_stream()
        .to(
            "order-lines",
            Produced::with(Serdes::string(), Serdes::string()),
        );
    let topology = builder.build().unwrap();
    let (mut app, topics) = start(&broker, topology, app_id, dir.path()).await;
    settle(&app, &broker, app_id, &topics).await;
    let registration =
        format!("{app_id}-KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-0000000006-topic");
    assert_eq!(broker.partition_count(&registration).await.unwrap(), 2);
    let mut latest = std::collections::BTreeMap::new();
    for record in read_committed(&broker, "order-lines", DEADLINE)
        .await
        .unwrap()
    {
        let key = String::from_utf8(record.key.unwrap().to_vec()).unwrap();
        latest.insert(
            key,
            record.value.map(|v| String::from_utf8(v.to_vec()).unwrap()),
        );
    }
    let joined: Vec<_> = latest
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
    let expected: Vec<(String, String)> = {
        let mut rows: Vec<_> = (0..60)
            .filter(|i| i % 12 < 10)
            .map(|i| (format!("o{i}"), format!("p{0}=Product {0}", i % 12)))
            .collect();
        rows.sort();
        rows
    };
    assert_eq!(joined, expected);
    app.close().await.unwrap();
}

/// A task does not process ahead of an input that is only behind (Kafka's
/// KIP-695): with `max.task.idle.ms` at its default 0, a stream joined
/// with a table loaded before it finds every row, however the consumer's
/// fetches interleave the two topics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_loaded_first_is_joined_in_full_by_a_backlog() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::in_memory().await.unwrap();
    broker.create_topic(NewTopic::new("rows", 3)).await.unwrap();
    broker
        .create_topic(NewTopic::new("events", 3))
        .await
        .unwrap();
    broker
        .create_topic(NewTopic::new("joined", 1))
        .await
        .unwrap();
    let producer = Producer::new(&broker);
    let rows: Vec<ProducerRecord> = (0..5_000)
        .map(|k| {
            ProducerRecord::new("rows", format!("row{k}"))
                .key(format!("k{k}"))
                .timestamp(1)
        })
        .collect();
    producer.send_batch(rows).await.unwrap();
    for chunk in 0..20 {
        let events: Vec<ProducerRecord> = (0..5_000)
            .map(|i| {
                let n = chunk * 5_000 + i;
                ProducerRecord::new("events", format!("e{n}"))
                    .key(format!("k{}", (n * 7) % 5_000))
                    .timestamp(10 + n as i64)
            })
            .collect();
        producer.send_batch(events).await.unwrap();
    }
    let app_id = "backlog-join";
    let builder = StreamsBuilder::new();
    let strings = || Consumed::with(Serdes::string(), Serdes::string());
    let rows = builder.table("rows", strings(), Materialized::as_("rows-store"));
    builder
        .stream::<String, String>("events", strings())
        .join_table(&rows, |e, r| format!("{e}+{r}"), Joined::new())
        .to("joined", Produced::with(Serdes::string(), Serdes::string()));
    let topology = builder.build().unwrap();
    let (mut app, topics) = start(&broker, topology, app_id, dir.path()).await;
    settle(&app, &broker, app_id, &topics).await;
    let joined = read_committed(&broker, "joined", DEADLINE).await.unwrap();
    assert_eq!(joined.len(), 100_000, "every event found its row");
    app.close().await.unwrap();
}
