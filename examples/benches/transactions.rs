//! Transactional produce against non-transactional produce, in the same run: 100-byte
//! records in batches of 1,000 to one partition, a transaction committed every 1,000 records,
//! under `log.flush.policy` `close` and the default `commit-points`. Run with
//! `cargo bench -p examples --bench transactions`.
//!
//! `txn+offsets` also commits a consumer offset in each transaction, which makes it span
//! two partitions and take the full two-phase commit (three commit points instead of one).
//!
//! Two non-transactional baselines are measured: `plain` sends batches and never waits for
//! a commit point, `plain+flush` calls `flush` after every batch (one commit point per 1,000
//! records, the durability a transaction commit gives). The runs alternate, five rounds
//! each, and the medians are compared.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use broker_embedded::{
    Broker, BrokerConfig, ConsumerGroupMetadata, FlushPolicy, NewTopic, OffsetAndMetadata,
    Producer, ProducerConfig, ProducerRecord, TopicPartition,
};
use bytes::Bytes;

const RECORDS: usize = 1_000_000;
const VALUE_BYTES: usize = 100;
const BATCH: usize = 1_000;
const ROUNDS: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Plain,
    PlainFlush,
    Transactional,
    /// A transaction with `send_offsets_to_transaction` too: two partitions, so the full
    /// two-phase commit.
    TransactionalOffsets,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Plain => "plain",
            Mode::PlainFlush => "plain+flush",
            Mode::Transactional => "transactional",
            Mode::TransactionalOffsets => "txn+offsets",
        }
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn rate(d: Duration) -> f64 {
    RECORDS as f64 / d.as_secs_f64()
}

fn batches(topic: &str, data: &Bytes) -> Vec<Vec<ProducerRecord>> {
    (0..RECORDS / BATCH)
        .map(|b| {
            (0..BATCH)
                .map(|i| {
                    let at = (b * BATCH + i) * VALUE_BYTES;
                    ProducerRecord::new(topic, data.slice(at..at + VALUE_BYTES))
                        .partition(0)
                        .timestamp(1_700_000_000_000 + (b * BATCH + i) as i64)
                })
                .collect()
        })
        .collect()
}

async fn run(broker: &Broker, mode: Mode, topic: &str, data: &Bytes) -> anyhow::Result<Duration> {
    broker.create_topic(NewTopic::new(topic, 1)).await?;
    let input = batches(topic, data);
    let producer = match mode {
        Mode::Transactional | Mode::TransactionalOffsets => {
            let p = Producer::with_config(
                broker,
                ProducerConfig {
                    transactional_id: Some(format!("bench-{topic}")),
                    ..ProducerConfig::default()
                },
            );
            p.init_transactions().await?;
            p
        }
        _ => Producer::new(broker),
    };
    let group = ConsumerGroupMetadata {
        group_id: "bench".to_owned(),
        generation_id: -1,
        member_id: String::new(),
    };
    let mut consumed = 0u64;
    let start = Instant::now();
    for batch in input {
        match mode {
            Mode::Plain => {
                producer.send_batch(batch).await?;
            }
            Mode::PlainFlush => {
                producer.send_batch(batch).await?;
                producer.flush(&[topic]).await?;
            }
            Mode::Transactional => {
                producer.begin_transaction()?;
                producer.send_batch(batch).await?;
                producer.commit_transaction().await?;
            }
            Mode::TransactionalOffsets => {
                producer.begin_transaction()?;
                producer.send_batch(batch).await?;
                consumed += BATCH as u64;
                let offsets = HashMap::from([(
                    TopicPartition::new("in", 0),
                    OffsetAndMetadata::new(consumed),
                )]);
                producer
                    .send_offsets_to_transaction(&offsets, &group)
                    .await?;
                producer.commit_transaction().await?;
            }
        }
    }
    let elapsed = start.elapsed();
    broker.delete_topic(topic).await?;
    Ok(elapsed)
}

fn main() -> anyhow::Result<()> {
    let base = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(&base)?;
    let scratch = tempfile::tempdir_in(&base)?;

    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let data: Vec<u8> = (0..RECORDS * VALUE_BYTES)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            b'a' + (seed % 26) as u8
        })
        .collect();
    let data = Bytes::from(data);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        for policy in [FlushPolicy::OnClose, FlushPolicy::CommitPoints] {
            let broker = Broker::open(
                scratch.path().join(format!("broker-{policy:?}")),
                BrokerConfig {
                    flush_policy: policy,
                    retention_check_interval_ms: None,
                    ..BrokerConfig::default()
                },
            )
            .await?;
            broker.ensure_topic(NewTopic::new("in", 1)).await?;
            let modes = [
                Mode::Plain,
                Mode::PlainFlush,
                Mode::Transactional,
                Mode::TransactionalOffsets,
            ];
            let mut runs: Vec<Vec<Duration>> = vec![Vec::new(); modes.len()];
            for round in 0..ROUNDS {
                for (i, mode) in modes.iter().enumerate() {
                    let topic = format!("bench-{}-{round}", mode.name().replace('+', "-"));
                    runs[i].push(run(&broker, *mode, &topic, &data).await?);
                }
            }
            let medians: Vec<Duration> = runs.into_iter().map(median).collect();
            println!(
                "log.flush.policy={policy:?}: {RECORDS} records of {VALUE_BYTES} bytes, a \
                 transaction or flush per {BATCH} records, median of {ROUNDS}"
            );
            for (mode, d) in modes.iter().zip(&medians) {
                println!(
                    "  {:<14} {:>10.0} records/s ({:.3} s)",
                    mode.name(),
                    rate(*d),
                    d.as_secs_f64()
                );
            }
            let txn = rate(medians[2]);
            println!(
                "  ratio transactional / plain        = {:.2}",
                txn / rate(medians[0])
            );
            println!(
                "  ratio transactional / plain+flush  = {:.2} (goal >= 0.80)",
                txn / rate(medians[1])
            );
            println!(
                "  ratio txn+offsets / plain+flush    = {:.2}",
                rate(medians[3]) / rate(medians[1])
            );
            broker.close().await?;
        }
        anyhow::Ok(())
    })?;
    Ok(())
}
