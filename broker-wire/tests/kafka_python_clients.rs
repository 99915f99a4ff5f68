//! A client no one here wrote: kafka-python's `KafkaProducer` (acks=all, idempotent, every
//! codec, transactions) and `KafkaConsumer` (a group of two members, committed offsets,
//! read_committed) against the served broker (the script is `kafka_python_clients.py`).
//!
//! kafka-python and the codec packages it needs for snappy, lz4 and zstd are installed from
//! PyPI into a virtualenv under the target dir the first time. Without Python or pip the
//! test is skipped with a message, except under `CI=true`, where that is a failure.

mod common;

use broker_embedded::{BrokerConfig, Compression};
use broker_wire::WireConfig;
use common::clients::{
    assert_codec, assert_keyed_partitions, committed_without_lag, producer_batches, python_venv,
    run_checks,
};
use common::start;

const CHECKS: [&str; 7] = [
    "produce",
    "compression",
    "idempotent",
    "groups",
    "committed",
    "read_committed",
    "transactions",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_python_produces_consumes_in_groups_and_transactions() {
    let venv = tokio::task::spawn_blocking(|| {
        python_venv(
            "kafka-python-clients-venv",
            &[
                "kafka-python>=3.0,<4",
                "python-snappy>=0.7,<1",
                "lz4>=4,<5",
                "zstandard>=0.22,<1",
            ],
            "import kafka, snappy, lz4.frame, zstandard",
        )
    })
    .await
    .unwrap();
    let Some(python) = venv else {
        return;
    };
    let (broker, addr) = start(BrokerConfig::default(), WireConfig::default()).await;
    run_checks(python, "kafka_python_clients.py", addr, &CHECKS).await;

    // What the clients did is in the broker.
    assert_eq!(assert_keyed_partitions(&broker, "py-plain", 3).await, 300);
    let (data, with_id, _) = producer_batches(&broker, "py-plain", 3).await;
    assert!(
        data > 0 && with_id == 0,
        "enable_idempotence=False: {with_id} of {data}"
    );
    for (codec, name) in [
        (Compression::Gzip, "gzip"),
        (Compression::Snappy, "snappy"),
        (Compression::Lz4, "lz4"),
        (Compression::Zstd, "zstd"),
    ] {
        assert_codec(&broker, &format!("py-codec-{name}"), codec, 200).await;
    }
    let (data, with_id, _) = producer_batches(&broker, "py-idempotent", 3).await;
    assert!(
        data > 0 && with_id == data,
        "idempotent: {with_id} of {data}"
    );
    assert_eq!(committed_without_lag(&broker, "py-group").await, 240);
    assert_eq!(committed_without_lag(&broker, "py-txn-group").await, 100);
    // Every transaction ended with a marker in each partition it wrote to.
    let (data, with_id, control) = producer_batches(&broker, "py-txn-out", 2).await;
    assert!(
        data > 0 && with_id == data && control > 0,
        "{data} {with_id} {control}"
    );
    for p in 0..2 {
        let (_, end) = broker.offsets("py-txn-out", p).await.unwrap();
        assert_eq!(
            broker.last_stable_offset("py-txn-out", p).await.unwrap(),
            end
        );
    }
}
