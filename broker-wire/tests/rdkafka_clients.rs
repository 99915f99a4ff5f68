//! librdkafka through the `rdkafka` crate against the served broker: an idempotent
//! producer, a consumer group member reading and a transactional producer writing with its
//! offsets (consume-transform-produce), an aborted transaction a `read_committed` consumer
//! never sees, and a second producer with the same `transactional.id` fencing the first.

mod common;

use std::time::{Duration, Instant};

use broker_embedded::{BrokerConfig, NewTopic, TopicPartition};
use broker_wire::WireConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

const TIMEOUT: Duration = Duration::from_secs(30);

fn producer(addr: &str, transactional_id: Option<&str>) -> BaseProducer {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", addr)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "1");
    if let Some(id) = transactional_id {
        config
            .set("transactional.id", id)
            .set("transaction.timeout.ms", "60000");
    }
    config.create().unwrap()
}

fn consumer(addr: &str, group: &str, isolation: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", isolation)
        .set("enable.partition.eof", "true")
        .set("session.timeout.ms", "6000")
        .create()
        .unwrap()
}

/// Polls until `n` records came or the partition's end was reached after at least `n`.
fn read(consumer: &BaseConsumer, n: usize) -> Vec<(i64, String)> {
    let deadline = Instant::now() + TIMEOUT;
    let mut out = Vec::new();
    loop {
        assert!(
            Instant::now() < deadline,
            "read {} of {n}: {out:?}",
            out.len()
        );
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => out.push((
                m.offset(),
                String::from_utf8(m.payload().unwrap_or_default().to_vec()).unwrap(),
            )),
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) if out.len() >= n => return out,
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) | None => {}
            Some(Err(e)) => panic!("consume failed: {e}"),
        }
    }
}

fn send(producer: &BaseProducer, topic: &str, value: &str) {
    producer
        .send(BaseRecord::to(topic).key("k").payload(value).partition(0))
        .unwrap();
}

#[test]
fn librdkafka_consumes_transforms_and_produces_in_transactions() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let config = BrokerConfig {
        group_initial_rebalance_delay_ms: 0,
        ..BrokerConfig::default()
    };
    let (broker, addr) = runtime.block_on(common::start(config, WireConfig::default()));
    let addr = addr.to_string();
    runtime.block_on(async {
        broker.create_topic(NewTopic::new("in", 1)).await.unwrap();
        broker.create_topic(NewTopic::new("out", 1)).await.unwrap();
    });

    // An idempotent producer writes the input.
    let plain = producer(&addr, None);
    for i in 0..10 {
        send(&plain, "in", &format!("v{i}"));
    }
    plain.flush(TIMEOUT).unwrap();

    // A group member reads it; a transactional producer writes the results and the
    // group's offsets in one transaction.
    let input = consumer(&addr, "etl", "read_committed");
    input.subscribe(&["in"]).unwrap();
    let records = read(&input, 10);
    assert_eq!(records.len(), 10);
    let txn = producer(&addr, Some("etl-1"));
    txn.init_transactions(TIMEOUT).unwrap();
    txn.begin_transaction().unwrap();
    for (_, v) in &records {
        send(&txn, "out", &v.to_uppercase());
    }
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset("in", 0, Offset::Offset(10))
        .unwrap();
    txn.send_offsets_to_transaction(&offsets, &input.group_metadata().unwrap(), TIMEOUT)
        .unwrap();
    txn.commit_transaction(TIMEOUT).unwrap();
    // An aborted transaction.
    txn.begin_transaction().unwrap();
    for i in 0..5 {
        send(&txn, "out", &format!("aborted-{i}"));
    }
    txn.flush(TIMEOUT).unwrap();
    txn.abort_transaction(TIMEOUT).unwrap();

    // A read_committed consumer sees the committed results only.
    let output = consumer(&addr, "check", "read_committed");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("out", 0, Offset::Beginning)
        .unwrap();
    output.assign(&tpl).unwrap();
    let got: Vec<String> = read(&output, 10).into_iter().map(|(_, v)| v).collect();
    let want: Vec<String> = (0..10).map(|i| format!("V{i}")).collect();
    assert_eq!(got, want);
    // read_uncommitted sees the aborted records too.
    let dirty = consumer(&addr, "dirty", "read_uncommitted");
    dirty.assign(&tpl).unwrap();
    assert_eq!(read(&dirty, 15).len(), 15);
    // The group's offset committed with the transaction.
    let committed =
        runtime.block_on(broker.fetch_offsets("etl", Some(&[TopicPartition::new("in", 0)]), false));
    assert_eq!(
        committed.unwrap()[0].offset.as_ref().map(|o| o.offset),
        Some(10)
    );

    // A second producer with the same transactional.id fences the first.
    let second = producer(&addr, Some("etl-1"));
    second.init_transactions(TIMEOUT).unwrap();
    let fenced = txn
        .begin_transaction()
        .and_then(|()| {
            send(&txn, "out", "zombie");
            txn.commit_transaction(TIMEOUT)
        })
        .expect_err("the first producer is fenced");
    assert!(
        fenced.to_string().to_lowercase().contains("fenced"),
        "{fenced}"
    );
    let after = consumer(&addr, "after", "read_committed");
    after.assign(&tpl).unwrap();
    let got: Vec<String> = read(&after, 10).into_iter().map(|(_, v)| v).collect();
    assert_eq!(got, want, "the fenced producer's record is not committed");
}
