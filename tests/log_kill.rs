//! Kill test: a child process appends batches and records each acknowledged offset in a side
//! file; it is killed with SIGKILL at random moments; after every kill the log reopens with
//! every acknowledged record present and readable, and nothing corrupt served.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use broker_embedded::{
    AutoOffsetReset, Broker, BrokerConfig, Consumer, ConsumerConfig, NewTopic, Producer,
    ProducerRecord,
};
use bytes::Bytes;
use integration_tests::{child_arg, kill_9, spawn_child, wait_for_lines};
use rand::{Rng, SeedableRng};

const TOPIC: &str = "kill-test";
const PARTITIONS: u32 = 3;

/// The child: appends forever. Each line of `acked.txt` is `seq partition offset`, written
/// only after `send_batch` returned.
async fn child(dir: &Path) {
    let broker = Broker::open(dir.join("data"), BrokerConfig::default())
        .await
        .expect("child: open broker");
    broker
        .ensure_topic(
            NewTopic::new(TOPIC, PARTITIONS)
                .config("segment.bytes", "65536")
                .config("index.interval.bytes", "512"),
        )
        .await
        .expect("child: create topic");
    let producer = Producer::new(&broker);
    let mut acked = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("acked.txt"))
        .expect("child: side file");
    // Continue the sequence where the last child stopped.
    let mut seq: u64 = std::fs::read_to_string(dir.join("acked.txt"))
        .map(|t| t.lines().count() as u64)
        .unwrap_or(0)
        + 1_000_000 * std::process::id() as u64;
    let mut rng = rand::rngs::StdRng::seed_from_u64(std::process::id() as u64);
    loop {
        let n = rng.random_range(1..50);
        let mut batch = Vec::with_capacity(n);
        let mut seqs = Vec::with_capacity(n);
        for _ in 0..n {
            seq += 1;
            let size = rng.random_range(0..400);
            let value = format!("{seq}:{}", "x".repeat(size));
            let mut r = ProducerRecord::new(TOPIC, value);
            if rng.random_bool(0.8) {
                r = r.key(format!("k{}", rng.random_range(0..100)));
            }
            batch.push(r);
            seqs.push(seq);
        }
        let metas = producer.send_batch(batch).await.expect("child: send");
        let mut lines = String::new();
        for (s, m) in seqs.iter().zip(&metas) {
            lines.push_str(&format!("{s} {} {}\n", m.partition, m.offset));
        }
        acked
            .write_all(lines.as_bytes())
            .expect("child: side file write");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_records_survive_sigkill() {
    if let Some(dir) = child_arg() {
        child(Path::new(&dir)).await;
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let side = dir.path().join("acked.txt");
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let kills = 8;
    for round in 0..kills {
        let before = std::fs::read_to_string(&side)
            .map(|t| t.lines().count())
            .unwrap_or(0);
        let mut child = spawn_child(
            "acknowledged_records_survive_sigkill",
            dir.path().to_str().unwrap(),
        )
        .unwrap();
        // Wait until the child has made progress, then kill it at a random moment.
        assert!(
            wait_for_lines(&side, before + 1, Duration::from_secs(60)),
            "round {round}: the child never acknowledged a record"
        );
        std::thread::sleep(Duration::from_millis(rng.random_range(20..400)));
        kill_9(&mut child).unwrap();
    }

    // Expected: seq -> (partition, offset), from the side file.
    let text = std::fs::read_to_string(&side).unwrap();
    let mut expected: BTreeMap<(u32, u64), u64> = BTreeMap::new();
    for line in text.lines() {
        let mut parts = line.split(' ');
        let (Some(s), Some(p), Some(o)) = (parts.next(), parts.next(), parts.next()) else {
            // The side file is written after the ack; a torn last line is not an ack.
            continue;
        };
        let (Ok(s), Ok(p), Ok(o)) = (s.parse(), p.parse(), o.parse()) else {
            continue;
        };
        assert!(
            expected.insert((p, o), s).is_none(),
            "offset {p}/{o} acknowledged twice: an acknowledged record was lost and its offset reused"
        );
    }
    assert!(
        expected.len() > 100,
        "too few acknowledged records: {}",
        expected.len()
    );
    eprintln!(
        "{kills} kills, {} acknowledged records checked",
        expected.len()
    );

    let broker = Broker::open(dir.path().join("data"), BrokerConfig::default())
        .await
        .unwrap();
    let mut consumer = Consumer::new(
        &broker,
        ConsumerConfig {
            auto_offset_reset: AutoOffsetReset::Earliest,
            ..ConsumerConfig::default()
        },
    );
    consumer.assign_topic(TOPIC).await.unwrap();
    let mut found: BTreeMap<(u32, u64), Bytes> = BTreeMap::new();
    let mut ends = BTreeMap::new();
    for p in 0..PARTITIONS {
        ends.insert(p, broker.offsets(TOPIC, p).await.unwrap().1);
    }
    let total: u64 = ends.values().sum();
    while (found.len() as u64) < total {
        let records = consumer
            .poll_up_to(10_000, Duration::from_millis(200))
            .await
            .expect("a reopened log serves no corrupt batch");
        if records.is_empty() {
            break;
        }
        for r in records {
            found.insert((r.partition, r.offset), r.value.unwrap());
        }
    }
    // Offsets are dense: nothing is missing or duplicated within the log.
    assert_eq!(found.len() as u64, total);
    for ((p, o), s) in &expected {
        let value = found
            .get(&(*p, *o))
            .unwrap_or_else(|| panic!("acknowledged record {s} at {p}/{o} is missing"));
        let prefix = format!("{s}:");
        assert!(
            value.starts_with(prefix.as_bytes()),
            "record at {p}/{o} is not the acknowledged record {s}"
        );
    }
    // Appends continue after the last recovered offset.
    let producer = Producer::new(&broker);
    let m = producer
        .send(ProducerRecord::new(TOPIC, "after").partition(0))
        .await
        .unwrap();
    assert_eq!(m.offset, ends[&0]);
}
