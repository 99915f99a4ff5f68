//! Broker throughput: produce and consume of 100-byte records in batches of 1,000, next to a
//! plain sequential `write` of the same bytes to a file on the same disk, measured in the same
//! run. Run with `cargo bench -p examples --bench broker`.
//!
//! The page cache makes a disk's write speed depend on what ran before, so the baseline and
//! the produce run alternate, three rounds each, and the medians are compared.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use broker_embedded::{
    AutoOffsetReset, Broker, BrokerConfig, Consumer, ConsumerConfig, FlushPolicy, NewTopic,
    Producer, ProducerRecord,
};
use bytes::Bytes;

const RECORDS: usize = 2_000_000;
const VALUE_BYTES: usize = 100;
const BATCH: usize = 1_000;
const ROUNDS: usize = 3;

fn mb(bytes: usize, elapsed: Duration) -> f64 {
    bytes as f64 / 1e6 / elapsed.as_secs_f64()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The same bytes written sequentially to a new file, one `write` per batch, no fsync.
fn write_baseline(path: &Path, data: &[u8]) -> anyhow::Result<Duration> {
    let start = Instant::now();
    {
        let mut file = std::fs::File::create(path)?;
        for chunk in data.chunks(VALUE_BYTES * BATCH) {
            file.write_all(chunk)?;
        }
    }
    let elapsed = start.elapsed();
    std::fs::remove_file(path)?;
    Ok(elapsed)
}

fn batches(topic: &str, data: &Bytes) -> Vec<Vec<ProducerRecord>> {
    (0..RECORDS / BATCH)
        .map(|b| {
            (0..BATCH)
                .map(|i| {
                    let at = (b * BATCH + i) * VALUE_BYTES;
                    ProducerRecord::new(topic, data.slice(at..at + VALUE_BYTES))
                        .timestamp(1_700_000_000_000 + (b * BATCH + i) as i64)
                })
                .collect()
        })
        .collect()
}

fn main() -> anyhow::Result<()> {
    let base = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(&base)?;
    let scratch = tempfile::tempdir_in(&base)?;

    // One buffer of pseudo-random printable bytes; each value is a slice of it.
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
    let payload_bytes = RECORDS * VALUE_BYTES;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let broker = Broker::open(
            scratch.path().join("broker"),
            BrokerConfig {
                flush_policy: FlushPolicy::OnClose,
                retention_check_interval_ms: None,
                ..BrokerConfig::default()
            },
        )
        .await?;
        let producer = Producer::new(&broker);
        let mut baseline_runs = Vec::new();
        let mut produce_runs = Vec::new();
        let mut disk = 0;
        for round in 0..ROUNDS {
            baseline_runs.push(write_baseline(
                &scratch.path().join(format!("baseline-{round}.bin")),
                &data,
            )?);
            let topic = format!("bench-{round}");
            broker.create_topic(NewTopic::new(&topic, 1)).await?;
            let batches = batches(&topic, &data);
            let start = Instant::now();
            for batch in batches {
                producer.send_batch(batch).await?;
            }
            produce_runs.push(start.elapsed());
            disk = broker.describe_topic(&topic).await?.partitions[0].size_bytes;
        }

        let mut consumer = Consumer::new(
            &broker,
            ConsumerConfig {
                auto_offset_reset: AutoOffsetReset::Earliest,
                max_poll_records: 10_000,
                ..ConsumerConfig::default()
            },
        );
        consumer.assign_topic(&format!("bench-{}", ROUNDS - 1)).await?;
        let start = Instant::now();
        let mut read = 0usize;
        let mut bytes = 0usize;
        while read < RECORDS {
            let records = consumer.poll(Duration::from_secs(1)).await?;
            if records.is_empty() {
                anyhow::bail!("consumer stopped at {read} of {RECORDS} records");
            }
            read += records.len();
            bytes += records
                .iter()
                .map(|r| r.value.as_ref().map_or(0, |v| v.len()))
                .sum::<usize>();
        }
        let consume = start.elapsed();
        broker.close().await?;

        let show = |runs: &[Duration]| {
            runs.iter()
                .map(|d| format!("{:.3}s", d.as_secs_f64()))
                .collect::<Vec<_>>()
                .join(",")
        };
        println!(
            "records={RECORDS} value_bytes={VALUE_BYTES} batch={BATCH} log_bytes_on_disk={disk} rounds={ROUNDS}"
        );
        println!(
            "runs: baseline=[{}] produce=[{}]",
            show(&baseline_runs),
            show(&produce_runs)
        );
        let baseline = median(baseline_runs);
        let produce = median(produce_runs);
        println!(
            "baseline_sequential_write mb_per_sec={:.1} (median)",
            mb(payload_bytes, baseline)
        );
        println!(
            "produce records_per_sec={:.0} mb_per_sec={:.1} ratio_to_baseline={:.2} (median; goal >= 0.50)",
            RECORDS as f64 / produce.as_secs_f64(),
            mb(payload_bytes, produce),
            baseline.as_secs_f64() / produce.as_secs_f64()
        );
        println!(
            "consume records_per_sec={:.0} mb_per_sec={:.1} (one thread; goal >= 3000000 records/s)",
            read as f64 / consume.as_secs_f64(),
            mb(bytes, consume),
        );
        Ok(())
    })
}
