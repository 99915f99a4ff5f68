//! Idempotent and transactional producers and `read_committed` consumers: duplicate
//! batches, sequence gaps, fencing, timeouts, recovery of open transactions, transactional
//! offsets, a model-based property test, and a SIGKILL test of whole transactions.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use broker_embedded::{
    AutoOffsetReset, Broker, BrokerConfig, BrokerError, Consumer, ConsumerConfig,
    ConsumerGroupMetadata, FlushPolicy, IsolationLevel, MockTime, NewRecord, NewTopic,
    OffsetAndMetadata, Producer, ProducerConfig, ProducerFields, ProducerRecord, TopicPartition,
};
use bytes::Bytes;
use integration_tests::{child_arg, kill_9, spawn_child, wait_for_lines};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};

fn txn_config(id: &str) -> ProducerConfig {
    ProducerConfig {
        transactional_id: Some(id.to_owned()),
        ..ProducerConfig::default()
    }
}

fn consumer_config(isolation: IsolationLevel) -> ConsumerConfig {
    ConsumerConfig {
        auto_offset_reset: AutoOffsetReset::Earliest,
        isolation_level: isolation,
        enable_auto_commit: false,
        ..ConsumerConfig::default()
    }
}

/// Every record value a fresh consumer reads from `topic`, per partition, in offset order.
async fn read_values(
    broker: &Broker,
    topic: &str,
    isolation: IsolationLevel,
) -> BTreeMap<u32, Vec<String>> {
    let mut consumer = Consumer::new(broker, consumer_config(isolation));
    consumer.assign_topic(topic).await.unwrap();
    let mut out: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for p in 0..broker.partition_count(topic).await.unwrap() {
        out.insert(p, Vec::new());
    }
    loop {
        let records = consumer
            .poll_up_to(100_000, Duration::from_millis(50))
            .await
            .unwrap();
        if records.is_empty() {
            return out;
        }
        for r in records {
            let value = String::from_utf8(r.value.unwrap().to_vec()).unwrap();
            out.entry(r.partition).or_default().push(value);
        }
    }
}

fn rec(value: &str) -> NewRecord {
    NewRecord {
        timestamp: 0,
        key: None,
        value: Some(Bytes::from(value.to_owned())),
        headers: Vec::new(),
    }
}

#[tokio::test]
async fn a_resent_batch_is_written_once_and_a_sequence_gap_is_an_error() {
    let broker = Broker::in_memory().await.unwrap();
    broker.create_topic(NewTopic::new("t", 1)).await.unwrap();
    let fields = ProducerFields {
        producer_id: 42,
        producer_epoch: 0,
        base_sequence: 0,
        transactional: false,
        control: false,
    };
    let batch = [rec("a"), rec("b"), rec("c")];
    let first = broker.append("t", 0, &batch, fields).await.unwrap();
    let again = broker.append("t", 0, &batch, fields).await.unwrap();
    assert_eq!((first.base_offset, first.last_offset), (0, 2));
    assert_eq!(
        again, first,
        "a resent batch is acknowledged with its offsets"
    );
    assert_eq!(broker.offsets("t", 0).await.unwrap().1, 3, "written once");

    // The next batch in sequence is written; a resend of an older one of the last five is
    // still recognized.
    let next = ProducerFields {
        base_sequence: 3,
        ..fields
    };
    let second = broker.append("t", 0, &[rec("d")], next).await.unwrap();
    assert_eq!(second.base_offset, 3);
    assert_eq!(broker.append("t", 0, &batch, fields).await.unwrap(), first);

    // A gap: sequence 10 when 4 is expected.
    let gap = ProducerFields {
        base_sequence: 10,
        ..fields
    };
    let err = broker.append("t", 0, &[rec("x")], gap).await.unwrap_err();
    assert!(
        matches!(
            err,
            BrokerError::OutOfOrderSequence {
                producer_id: 42,
                expected: 4,
                received: 10,
                ..
            }
        ),
        "{err}"
    );
    assert!(!err.is_fatal());

    // A newer epoch starts at sequence 0 and fences the older one.
    let bumped = ProducerFields {
        producer_epoch: 1,
        base_sequence: 0,
        ..fields
    };
    broker.append("t", 0, &[rec("e")], bumped).await.unwrap();
    let stale = ProducerFields {
        base_sequence: 4,
        ..fields
    };
    let err = broker.append("t", 0, &[rec("y")], stale).await.unwrap_err();
    assert!(
        matches!(
            err,
            BrokerError::InvalidProducerEpoch {
                epoch: 0,
                current_epoch: 1,
                ..
            }
        ),
        "{err}"
    );
    let values = read_values(&broker, "t", IsolationLevel::ReadUncommitted).await;
    assert_eq!(values[&0], ["a", "b", "c", "d", "e"]);
}

#[tokio::test]
async fn producer_state_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let fields = ProducerFields {
        producer_id: 7,
        producer_epoch: 3,
        base_sequence: 0,
        transactional: false,
        control: false,
    };
    let first;
    {
        let broker = Broker::open(dir.path(), BrokerConfig::default())
            .await
            .unwrap();
        broker.create_topic(NewTopic::new("t", 1)).await.unwrap();
        first = broker
            .append("t", 0, &[rec("a"), rec("b")], fields)
            .await
            .unwrap();
        broker.close().await.unwrap();
    }
    let broker = Broker::open(dir.path(), BrokerConfig::default())
        .await
        .unwrap();
    assert_eq!(
        broker
            .append("t", 0, &[rec("a"), rec("b")], fields)
            .await
            .unwrap(),
        first
    );
    assert_eq!(broker.offsets("t", 0).await.unwrap().1, 2);
    let gap = ProducerFields {
        base_sequence: 5,
        ..fields
    };
    assert!(matches!(
        broker.append("t", 0, &[rec("c")], gap).await,
        Err(BrokerError::OutOfOrderSequence { expected: 2, .. })
    ));
    // A new idempotent producer gets a producer id above every one in the log.
    let producer = Producer::new(&broker);
    assert!(producer.producer_id_and_epoch().0 > 7);
    producer
        .send(ProducerRecord::new("t", "c").partition(0))
        .await
        .unwrap();
    let batches = broker.fetch("t", 0, 2, 1 << 20, None).await.unwrap();
    assert_eq!(
        batches[0].info.producer_id,
        producer.producer_id_and_epoch().0
    );
    assert_eq!(batches[0].info.base_sequence, 0);
}

#[tokio::test]
async fn a_second_producer_with_the_same_transactional_id_fences_the_first() {
    let broker = Broker::in_memory().await.unwrap();
    broker.create_topic(NewTopic::new("t", 2)).await.unwrap();
    let first = Producer::with_config(&broker, txn_config("tx"));
    first.init_transactions().await.unwrap();
    first.begin_transaction().unwrap();
    first
        .send(ProducerRecord::new("t", "first-0").partition(0))
        .await
        .unwrap();

    let second = Producer::with_config(&broker, txn_config("tx"));
    second.init_transactions().await.unwrap();
    let (pid1, epoch1) = first.producer_id_and_epoch();
    let (pid2, epoch2) = second.producer_id_and_epoch();
    assert_eq!(pid1, pid2);
    assert!(epoch2 > epoch1);

    // The first producer's open transaction was aborted: nothing holds the LSO back.
    assert_eq!(
        broker.last_stable_offset("t", 0).await.unwrap(),
        broker.offsets("t", 0).await.unwrap().1
    );
    // Its sends fail, to a partition of its transaction and to a new one.
    for p in [0, 1] {
        let err = first
            .send(ProducerRecord::new("t", "first-1").partition(p))
            .await
            .unwrap_err();
        assert!(
            matches!(err, BrokerError::ProducerFenced { .. }),
            "partition {p}: {err}"
        );
    }
    let err = first.commit_transaction().await.unwrap_err();
    assert!(matches!(err, BrokerError::ProducerFenced { .. }), "{err}");

    second.begin_transaction().unwrap();
    second
        .send(ProducerRecord::new("t", "second-0").partition(0))
        .await
        .unwrap();
    second.commit_transaction().await.unwrap();

    let committed = read_values(&broker, "t", IsolationLevel::ReadCommitted).await;
    assert_eq!(committed[&0], ["second-0"]);
    assert!(committed[&1].is_empty());
    let all = read_values(&broker, "t", IsolationLevel::ReadUncommitted).await;
    assert_eq!(all[&0], ["first-0", "second-0"]);
}

#[tokio::test]
async fn misuse_of_transactions_is_a_typed_error() {
    let broker = Broker::in_memory().await.unwrap();
    broker.create_topic(NewTopic::new("t", 1)).await.unwrap();
    let plain = Producer::new(&broker);
    assert!(matches!(
        plain.init_transactions().await,
        Err(BrokerError::InvalidTxnState { .. })
    ));
    let p = Producer::with_config(&broker, txn_config("tx"));
    assert!(matches!(
        p.begin_transaction(),
        Err(BrokerError::InvalidTxnState { .. })
    ));
    p.init_transactions().await.unwrap();
    let err = p
        .send(ProducerRecord::new("t", "x").partition(0))
        .await
        .unwrap_err();
    assert!(matches!(err, BrokerError::InvalidTxnState { .. }), "{err}");
    p.begin_transaction().unwrap();
    assert!(matches!(
        p.begin_transaction(),
        Err(BrokerError::InvalidTxnState { .. })
    ));
    // A transaction with nothing in it commits.
    p.commit_transaction().await.unwrap();
    assert!(matches!(
        p.commit_transaction().await,
        Err(BrokerError::InvalidTxnState { .. })
    ));
}

#[tokio::test]
async fn a_transaction_open_past_its_timeout_is_aborted_and_its_producer_fenced() {
    let time = MockTime::new(1_000_000);
    let config = BrokerConfig {
        time: time.clone(),
        ..BrokerConfig::default()
    };
    let broker = Broker::in_memory_with(config).await.unwrap();
    broker.create_topic(NewTopic::new("t", 1)).await.unwrap();
    let p = Producer::with_config(
        &broker,
        ProducerConfig {
            transaction_timeout_ms: 1_000,
            ..txn_config("tx")
        },
    );
    p.init_transactions().await.unwrap();
    p.begin_transaction().unwrap();
    p.send(ProducerRecord::new("t", "late").partition(0))
        .await
        .unwrap();
    assert_eq!(broker.last_stable_offset("t", 0).await.unwrap(), 0);
    time.advance(1_001);
    let err = p.commit_transaction().await.unwrap_err();
    assert!(matches!(err, BrokerError::ProducerFenced { .. }), "{err}");
    assert_eq!(
        broker.last_stable_offset("t", 0).await.unwrap(),
        broker.offsets("t", 0).await.unwrap().1
    );
    let committed = read_values(&broker, "t", IsolationLevel::ReadCommitted).await;
    assert!(committed[&0].is_empty());
    // A new producer with the id carries on.
    let p = Producer::with_config(&broker, txn_config("tx"));
    p.init_transactions().await.unwrap();
    p.begin_transaction().unwrap();
    p.send(ProducerRecord::new("t", "next").partition(0))
        .await
        .unwrap();
    p.commit_transaction().await.unwrap();
    let committed = read_values(&broker, "t", IsolationLevel::ReadCommitted).await;
    assert_eq!(committed[&0], ["next"]);
}

#[tokio::test]
async fn read_committed_stops_at_the_last_stable_offset_and_wakes_on_commit() {
    let broker = Broker::in_memory().await.unwrap();
    broker.create_topic(NewTopic::new("t", 1)).await.unwrap();
    let tx = Producer::with_config(&broker, txn_config("tx"));
    tx.init_transactions().await.unwrap();
    let plain = Producer::new(&broker);
    plain
        .send(ProducerRecord::new("t", "before").partition(0))
        .await
        .unwrap();
    tx.begin_transaction().unwrap();
    tx.send(ProducerRecord::new("t", "in-txn").partition(0))
        .await
        .unwrap();
    plain
        .send(ProducerRecord::new("t", "after").partition(0))
        .await
        .unwrap();
    assert_eq!(broker.last_stable_offset("t", 0).await.unwrap(), 1);

    let mut consumer = Consumer::new(&broker, consumer_config(IsolationLevel::ReadCommitted));
    consumer.assign_topic("t").await.unwrap();
    let got = consumer
        .poll_up_to(100, Duration::from_millis(50))
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].value.as_deref(), Some(&b"before"[..]));

    let committer = {
        let broker = broker.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let _keep = broker;
            tx.commit_transaction().await.unwrap();
        })
    };
    let got = consumer
        .poll_up_to(100, Duration::from_secs(10))
        .await
        .unwrap();
    committer.await.unwrap();
    let values: Vec<_> = got
        .iter()
        .map(|r| String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap())
        .collect();
    assert_eq!(values, ["in-txn", "after"]);
}

#[tokio::test]
async fn a_transaction_open_when_the_broker_closed_is_aborted_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let broker = Broker::open(dir.path(), BrokerConfig::default())
            .await
            .unwrap();
        broker.create_topic(NewTopic::new("t", 2)).await.unwrap();
        let p = Producer::with_config(&broker, txn_config("tx"));
        p.init_transactions().await.unwrap();
        p.begin_transaction().unwrap();
        p.send(ProducerRecord::new("t", "committed").partition(0))
            .await
            .unwrap();
        p.commit_transaction().await.unwrap();
        p.begin_transaction().unwrap();
        p.send(ProducerRecord::new("t", "open-0").partition(0))
            .await
            .unwrap();
        p.send(ProducerRecord::new("t", "open-1").partition(1))
            .await
            .unwrap();
        broker.close().await.unwrap();
    }
    let broker = Broker::open(dir.path(), BrokerConfig::default())
        .await
        .unwrap();
    for p in 0..2 {
        assert_eq!(
            broker.last_stable_offset("t", p).await.unwrap(),
            broker.offsets("t", p).await.unwrap().1
        );
    }
    let committed = read_values(&broker, "t", IsolationLevel::ReadCommitted).await;
    assert_eq!(committed[&0], ["committed"]);
    assert!(committed[&1].is_empty());
    let all = read_values(&broker, "t", IsolationLevel::ReadUncommitted).await;
    assert_eq!(all[&0], ["committed", "open-0"]);
    assert_eq!(all[&1], ["open-1"]);
    // And again: the aborted transactions index is rebuilt from the log.
    broker.close().await.unwrap();
    drop(broker);
    let broker = Broker::open(dir.path(), BrokerConfig::default())
        .await
        .unwrap();
    let committed = read_values(&broker, "t", IsolationLevel::ReadCommitted).await;
    assert_eq!(committed[&0], ["committed"]);
    assert!(committed[&1].is_empty());
}

#[tokio::test]
async fn transactional_offsets_are_invisible_until_commit_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let input = TopicPartition::new("in", 0);
    let group = ConsumerGroupMetadata {
        group_id: "g".to_owned(),
        generation_id: -1,
        member_id: String::new(),
    };
    let group_consumer = |broker: &Broker| {
        Consumer::new(
            broker,
            ConsumerConfig {
                group_id: Some("g".to_owned()),
                enable_auto_commit: false,
                ..ConsumerConfig::default()
            },
        )
    };
    {
        let broker = Broker::open(dir.path(), BrokerConfig::default())
            .await
            .unwrap();
        broker.create_topic(NewTopic::new("in", 1)).await.unwrap();
        broker.create_topic(NewTopic::new("out", 1)).await.unwrap();
        let consumer = group_consumer(&broker);
        let p = Producer::with_config(&broker, txn_config("tx"));
        p.init_transactions().await.unwrap();

        // Aborted: never visible.
        p.begin_transaction().unwrap();
        p.send(ProducerRecord::new("out", "x").partition(0))
            .await
            .unwrap();
        let offsets = HashMap::from([(input.clone(), OffsetAndMetadata::new(5))]);
        p.send_offsets_to_transaction(&offsets, &group)
            .await
            .unwrap();
        assert!(consumer
            .committed(std::slice::from_ref(&input))
            .await
            .unwrap()
            .is_empty());
        p.abort_transaction().await.unwrap();
        assert!(consumer
            .committed(std::slice::from_ref(&input))
            .await
            .unwrap()
            .is_empty());

        // Committed: visible only after the commit.
        p.begin_transaction().unwrap();
        let offsets = HashMap::from([(input.clone(), OffsetAndMetadata::with_metadata(10, "m"))]);
        p.send_offsets_to_transaction(&offsets, &group)
            .await
            .unwrap();
        assert!(consumer
            .committed(std::slice::from_ref(&input))
            .await
            .unwrap()
            .is_empty());
        p.commit_transaction().await.unwrap();
        assert_eq!(
            consumer
                .committed(std::slice::from_ref(&input))
                .await
                .unwrap()[&input],
            OffsetAndMetadata::with_metadata(10, "m")
        );

        // Open when the broker closes: aborted on reopen.
        p.begin_transaction().unwrap();
        let offsets = HashMap::from([(input.clone(), OffsetAndMetadata::new(20))]);
        p.send_offsets_to_transaction(&offsets, &group)
            .await
            .unwrap();
        broker.close().await.unwrap();
    }
    let broker = Broker::open(dir.path(), BrokerConfig::default())
        .await
        .unwrap();
    let consumer = group_consumer(&broker);
    assert_eq!(
        consumer
            .committed(std::slice::from_ref(&input))
            .await
            .unwrap()[&input],
        OffsetAndMetadata::with_metadata(10, "m")
    );
    let description = broker.describe_group("g").await.unwrap();
    assert_eq!(description.partitions[0].committed_offset, Some(10));
}

#[tokio::test]
async fn offsets_of_a_stale_group_generation_are_refused() {
    let broker = Broker::in_memory().await.unwrap();
    broker.create_topic(NewTopic::new("in", 1)).await.unwrap();
    let mut consumer = Consumer::new(
        &broker,
        ConsumerConfig {
            group_id: Some("g".to_owned()),
            enable_auto_commit: false,
            auto_offset_reset: AutoOffsetReset::Earliest,
            ..ConsumerConfig::default()
        },
    );
    consumer
        .subscribe(["in"], broker_embedded::NoOpConsumerRebalanceListener)
        .await
        .unwrap();
    consumer.poll(Duration::from_millis(50)).await.unwrap();
    let mut metadata = consumer.group_metadata().unwrap();
    assert!(metadata.generation_id >= 1);
    metadata.generation_id += 5;
    let p = Producer::with_config(&broker, txn_config("tx"));
    p.init_transactions().await.unwrap();
    p.begin_transaction().unwrap();
    let offsets = HashMap::from([(TopicPartition::new("in", 0), OffsetAndMetadata::new(1))]);
    let err = p
        .send_offsets_to_transaction(&offsets, &metadata)
        .await
        .unwrap_err();
    assert!(matches!(err, BrokerError::CommitFailed { .. }), "{err}");
    p.abort_transaction().await.unwrap();
}

// ---------------------------------------------------------------------------------------
// Model-based property test.

#[derive(Debug, Clone)]
enum Op {
    /// Producer (0..3 transactional, 3 plain) sends `n` records to a partition.
    Send {
        producer: usize,
        partition: u32,
        n: usize,
    },
    Commit(usize),
    Abort(usize),
    /// Close the broker and open it again: open transactions are aborted, producers start
    /// over with `init_transactions`.
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0usize..4, 0u32..3, 1usize..4).prop_map(|(producer, partition, n)| Op::Send {
            producer,
            partition,
            n
        }),
        2 => (0usize..3).prop_map(Op::Commit),
        1 => (0usize..3).prop_map(Op::Abort),
        1 => Just(Op::Reopen),
    ]
}

/// Who wrote a record: a plain producer, or a transaction `(producer, number)`.
type Owner = Option<(usize, usize)>;

/// A broker on `dir` with three transactional producers and a plain one.
async fn open_model_broker(dir: &Path) -> (Broker, Vec<Producer>, Producer) {
    let config = BrokerConfig {
        flush_policy: FlushPolicy::OnClose,
        retention_check_interval_ms: None,
        ..BrokerConfig::default()
    };
    let broker = Broker::open(dir, config).await.unwrap();
    broker.ensure_topic(NewTopic::new("t", 3)).await.unwrap();
    let mut txn = Vec::new();
    for i in 0..3 {
        let p = Producer::with_config(&broker, txn_config(&format!("tx-{i}")));
        p.init_transactions().await.unwrap();
        txn.push(p);
    }
    let plain = Producer::new(&broker);
    (broker, txn, plain)
}

async fn run_model(ops: Vec<Op>) {
    let dir = tempfile::tempdir().unwrap();
    let (mut broker, mut txn, mut plain) = open_model_broker(dir.path()).await;
    // The model: per partition, the records in append order with their owner.
    let mut log: Vec<Vec<(String, Owner)>> = vec![Vec::new(); 3];
    let mut open: Vec<Option<usize>> = vec![None; 3];
    let mut number = [0usize; 3];
    let mut committed: BTreeSet<(usize, usize)> = BTreeSet::new();
    let mut counter = 0usize;
    for op in ops {
        match op {
            Op::Send {
                producer,
                partition,
                n,
            } => {
                let mut records = Vec::new();
                let owner = if producer == 3 {
                    None
                } else {
                    if open[producer].is_none() {
                        txn[producer].begin_transaction().unwrap();
                        number[producer] += 1;
                        open[producer] = Some(number[producer]);
                    }
                    open[producer].map(|t| (producer, t))
                };
                for _ in 0..n {
                    counter += 1;
                    let value = format!("{producer}-{counter}");
                    records.push(ProducerRecord::new("t", value.clone()).partition(partition));
                    log[partition as usize].push((value, owner));
                }
                let sender = if producer == 3 {
                    &plain
                } else {
                    &txn[producer]
                };
                sender.send_batch(records).await.unwrap();
            }
            Op::Reopen => {
                // Whatever is open is aborted by the reopen.
                open = vec![None; 3];
                broker.close().await.unwrap();
                drop((txn, plain, broker));
                (broker, txn, plain) = open_model_broker(dir.path()).await;
            }
            Op::Commit(p) | Op::Abort(p) => {
                let commit = matches!(op, Op::Commit(_));
                if let Some(t) = open[p].take() {
                    if commit {
                        txn[p].commit_transaction().await.unwrap();
                        committed.insert((p, t));
                    } else {
                        txn[p].abort_transaction().await.unwrap();
                    }
                }
            }
        }
    }
    let still_open: BTreeSet<(usize, usize)> = open
        .iter()
        .enumerate()
        .filter_map(|(p, t)| t.map(|t| (p, t)))
        .collect();
    let read_committed = read_values(&broker, "t", IsolationLevel::ReadCommitted).await;
    let read_uncommitted = read_values(&broker, "t", IsolationLevel::ReadUncommitted).await;
    for (p, records) in log.iter().enumerate() {
        // Below the last stable offset: plain records and those of committed transactions.
        let expected: Vec<String> = records
            .iter()
            .take_while(|(_, owner)| !owner.is_some_and(|o| still_open.contains(&o)))
            .filter(|(_, owner)| owner.is_none_or(|o| committed.contains(&o)))
            .map(|(v, _)| v.clone())
            .collect();
        assert_eq!(read_committed[&(p as u32)], expected, "partition {p}");
        let all: Vec<String> = records.iter().map(|(v, _)| v.clone()).collect();
        assert_eq!(read_uncommitted[&(p as u32)], all, "partition {p}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn read_committed_matches_a_model_of_interleaved_transactions(
        ops in proptest::collection::vec(op(), 1..40)
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(run_model(ops));
    }
}

// ---------------------------------------------------------------------------------------
// Kill test.

const KILL_TOPIC: &str = "txn-kill";
const KILL_PARTITIONS: u32 = 3;
const KILL_GROUP: &str = "kill-group";

/// The child: runs transactions forever, each writing `n` records to each of the 3
/// partitions (values `id:partition:index:n`) and committing the offset `id` of
/// `in-0` for the group; appends `id` to `committed.txt` after the commit returns.
async fn kill_child(dir: &Path, round: u64) {
    let broker = Broker::open(dir.join("data"), BrokerConfig::default())
        .await
        .expect("child: open broker");
    broker
        .ensure_topic(NewTopic::new(KILL_TOPIC, KILL_PARTITIONS).config("segment.bytes", "65536"))
        .await
        .expect("child: create topic");
    broker
        .ensure_topic(NewTopic::new("in", 1))
        .await
        .expect("child: create input topic");
    let producer = Producer::with_config(&broker, txn_config("kill-txn"));
    producer.init_transactions().await.expect("child: init");
    let mut side = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("committed.txt"))
        .expect("child: side file");
    let group = ConsumerGroupMetadata {
        group_id: KILL_GROUP.to_owned(),
        generation_id: -1,
        member_id: String::new(),
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(round);
    for i in 0u64.. {
        let id = round * 1_000_000 + i;
        let n = rng.random_range(1..20usize);
        producer.begin_transaction().expect("child: begin");
        for p in 0..KILL_PARTITIONS {
            let records = (0..n)
                .map(|j| ProducerRecord::new(KILL_TOPIC, format!("{id}:{p}:{j}:{n}")).partition(p))
                .collect();
            producer.send_batch(records).await.expect("child: send");
        }
        let offsets = HashMap::from([(TopicPartition::new("in", 0), OffsetAndMetadata::new(id))]);
        producer
            .send_offsets_to_transaction(&offsets, &group)
            .await
            .expect("child: offsets");
        producer.commit_transaction().await.expect("child: commit");
        side.write_all(format!("{id}\n").as_bytes())
            .expect("child: side file write");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_transactions_survive_sigkill_whole() {
    if let Some(arg) = child_arg() {
        let (dir, round) = arg.rsplit_once(' ').expect("child arg: dir round");
        kill_child(Path::new(dir), round.parse().expect("child arg: round")).await;
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let side = dir.path().join("committed.txt");
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let kills = 6;
    for round in 1..=kills {
        let before = std::fs::read_to_string(&side)
            .map(|t| t.lines().count())
            .unwrap_or(0);
        let arg = format!("{} {round}", dir.path().display());
        let mut child = spawn_child("committed_transactions_survive_sigkill_whole", &arg).unwrap();
        assert!(
            wait_for_lines(&side, before + 1, Duration::from_secs(60)),
            "round {round}: the child never committed a transaction"
        );
        std::thread::sleep(Duration::from_millis(rng.random_range(10..300)));
        kill_9(&mut child).unwrap();
    }

    let text = std::fs::read_to_string(&side).unwrap();
    // A torn last line is not a commit acknowledgement.
    let acknowledged: BTreeSet<u64> = text.lines().filter_map(|l| l.parse().ok()).collect();
    assert!(acknowledged.len() >= kills as usize);

    let broker = Broker::open(dir.path().join("data"), BrokerConfig::default())
        .await
        .unwrap();
    let visible = read_values(&broker, KILL_TOPIC, IsolationLevel::ReadCommitted).await;
    // id -> (n, per partition the indexes seen)
    let mut seen: BTreeMap<u64, (usize, BTreeMap<u32, Vec<usize>>)> = BTreeMap::new();
    for (p, values) in &visible {
        for v in values {
            let parts: Vec<&str> = v.split(':').collect();
            assert_eq!(parts.len(), 4, "malformed record {v}");
            let id: u64 = parts[0].parse().unwrap();
            let vp: u32 = parts[1].parse().unwrap();
            let j: usize = parts[2].parse().unwrap();
            let n: usize = parts[3].parse().unwrap();
            assert_eq!(vp, *p);
            let entry = seen.entry(id).or_insert((n, BTreeMap::new()));
            entry.1.entry(*p).or_default().push(j);
        }
    }
    for (id, (n, parts)) in &seen {
        for p in 0..KILL_PARTITIONS {
            let indexes = parts.get(&p).cloned().unwrap_or_default();
            assert_eq!(
                indexes,
                (0..*n).collect::<Vec<_>>(),
                "transaction {id} is not whole on partition {p}"
            );
        }
    }
    for id in &acknowledged {
        assert!(
            seen.contains_key(id),
            "acknowledged transaction {id} is not visible"
        );
    }
    // Every partition is stable after recovery, and read_uncommitted holds more (aborted
    // transactions) or the same.
    for p in 0..KILL_PARTITIONS {
        assert_eq!(
            broker.last_stable_offset(KILL_TOPIC, p).await.unwrap(),
            broker.offsets(KILL_TOPIC, p).await.unwrap().1
        );
    }
    // The group's offset is that of the last visible transaction.
    let last = *seen.keys().next_back().unwrap();
    let description = broker.describe_group(KILL_GROUP).await.unwrap();
    assert_eq!(description.partitions[0].committed_offset, Some(last));
    eprintln!(
        "{kills} kills, {} acknowledged and {} visible transactions checked",
        acknowledged.len(),
        seen.len()
    );
}
