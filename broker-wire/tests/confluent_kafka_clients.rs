//! A client no one here wrote: confluent-kafka (librdkafka) — its `AdminClient`,
//! `Producer` (acks=all, idempotent, every codec, transactions with fencing) and `Consumer`
//! (a group of two members, committed offsets, read_committed, offsets sent to
//! transactions) against the served broker (the script is `confluent_kafka_clients.py`).
//!
//! confluent-kafka is installed from PyPI into a virtualenv under the target dir the first
//! time. Without Python or pip the test is skipped with a message, except under `CI=true`,
//! where that is a failure.

mod common;

use broker_embedded::{BrokerConfig, CleanupPolicy, Compression};
use broker_wire::WireConfig;
use common::clients::{
    assert_codec, assert_keyed_partitions, committed_without_lag, producer_batches, python_venv,
    run_checks,
};
use common::start;

const CHECKS: [&str; 6] = [
    "admin",
    "produce",
    "compression",
    "groups",
    "read_committed",
    "transactions",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confluent_kafka_administers_produces_consumes_in_groups_and_transactions() {
    let venv = tokio::task::spawn_blocking(|| {
        python_venv(
            "confluent-kafka-venv",
            &["confluent-kafka>=2.6,<3"],
            "import confluent_kafka.admin",
        )
    })
    .await
    .unwrap();
    let Some(python) = venv else {
        return;
    };
    let (broker, addr) = start(BrokerConfig::default(), WireConfig::default()).await;
    run_checks(python, "confluent_kafka_clients.py", addr, &CHECKS).await;

    // What the clients did is in the broker.
    let topics = broker.list_topics().await.unwrap();
    assert!(topics.contains(&"ck-admin".to_owned()), "{topics:?}");
    assert!(!topics.contains(&"ck-gone".to_owned()), "{topics:?}");
    assert_eq!(broker.partition_count("ck-admin").await.unwrap(), 3);
    assert_eq!(
        broker.offsets("ck-admin", 0).await.unwrap().0,
        2,
        "DeleteRecords"
    );
    let config = broker.describe_topic("ck-admin").await.unwrap().config;
    assert_eq!(config.retention_ms, Some(5000));
    assert_eq!(config.cleanup_policy, CleanupPolicy::COMPACT);
    // librdkafka's murmur2_random partitioner agrees with Kafka's.
    assert_eq!(assert_keyed_partitions(&broker, "ck-plain", 3).await, 300);
    let (data, with_id, _) = producer_batches(&broker, "ck-plain", 3).await;
    assert!(
        data > 0 && with_id == data,
        "idempotent: {with_id} of {data}"
    );
    for (codec, name) in [
        (Compression::Gzip, "gzip"),
        (Compression::Snappy, "snappy"),
        (Compression::Lz4, "lz4"),
        (Compression::Zstd, "zstd"),
    ] {
        assert_codec(&broker, &format!("ck-codec-{name}"), codec, 200).await;
    }
    assert_eq!(committed_without_lag(&broker, "ck-group").await, 240);
    assert_eq!(committed_without_lag(&broker, "ck-txn-group").await, 100);
    let (data, with_id, control) = producer_batches(&broker, "ck-txn-out", 2).await;
    assert!(
        data > 0 && with_id == data && control > 0,
        "{data} {with_id} {control}"
    );
    for p in 0..2 {
        let (_, end) = broker.offsets("ck-txn-out", p).await.unwrap();
        assert_eq!(
            broker.last_stable_offset("ck-txn-out", p).await.unwrap(),
            end
        );
    }
}
