//! The broker over the wire: 2,000,000 records of 100 bytes produced over loopback by
//! librdkafka (acks=all, idempotent, `linger.ms=5`, 1 MiB batches) to `broker_wire::Server`
//! in a process of its own, and consumed back by kcat (librdkafka's consumer), next to the
//! in-process produce and consume of the same records with the embedded producer and
//! consumer, measured in the same run. Prints records/s, MB/s, the ratios, and the server's
//! peak resident memory. Run with `cargo bench -p examples --bench wire`
//! (`WIRE_BENCH_RECORDS=N` for a shorter run).
//!
//! The server process is this bench binary again, started with `WIRE_BENCH_SERVE=DIR`: it
//! opens the broker in DIR, serves it on a free loopback port, prints the address and runs
//! until its stdin closes.
//!
//! Then the same load, with the same clients and settings, runs against Apache Kafka (the
//! version of `benches/kafka-broker/pom.xml`, fetched from Maven Central by
//! `scripts/kafka-broker.sh`), a single node in KRaft mode started by the bench on loopback
//! with its defaults (no fsync per message) and its start script's heap, `-Xmx1G -Xms1G`;
//! the bench prints its figures, the ratios of ours to them (goal: >= 1.0 on produce and on
//! consume) and its peak resident memory. Without Java or Maven that leg is skipped, with a
//! line that says why. The node is `examples::apache_kafka::ApacheKafka` with its default
//! options (Kafka's start script's heap and JVM options).

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use broker_embedded::{
    AutoOffsetReset, Broker, BrokerConfig, Consumer, ConsumerConfig, NewTopic, Producer,
    ProducerConfig, ProducerRecord,
};
use broker_wire::{Server, WireConfig};
use bytes::Bytes;
use examples::apache_kafka::{self, ApacheKafka, KafkaOptions};
use rdkafka::error::KafkaError;
use rdkafka::producer::{
    BaseRecord, DeliveryResult, Producer as _, ProducerContext, ThreadedProducer,
};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, ClientContext};

const VALUE_BYTES: usize = 100;
const BATCH: usize = 1_000;

fn records() -> usize {
    std::env::var("WIRE_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000_000)
}

fn mb(bytes: usize, elapsed: Duration) -> f64 {
    bytes as f64 / 1e6 / elapsed.as_secs_f64()
}

/// The server side: serve the broker in `dir` until stdin closes.
fn serve(dir: &str) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let broker = Broker::open(dir, BrokerConfig::default()).await?;
        let server = Server::bind(
            broker.clone(),
            WireConfig {
                listen: "127.0.0.1:0".parse()?,
                ..WireConfig::default()
            },
        )
        .await?;
        println!("{}", server.local_addr()?);
        let stdin_closed = tokio::task::spawn_blocking(|| {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
        });
        server
            .run(async {
                let _ = stdin_closed.await;
            })
            .await?;
        broker.close().await?;
        anyhow::Ok(())
    })
}

/// Peak resident memory of a process in MiB (`VmHWM` of `/proc/PID/status`).
fn peak_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Counts delivery failures of the librdkafka producer.
struct Deliveries {
    failed: AtomicUsize,
    delivered: AtomicUsize,
}

struct Counting(Arc<Deliveries>);

impl ClientContext for Counting {}

impl ProducerContext for Counting {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: Self::DeliveryOpaque) {
        match result {
            Ok(_) => self.0.delivered.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.0.failed.fetch_add(1, Ordering::Relaxed),
        };
    }
}

/// librdkafka produces `n` values to `topic` at `addr`: the time until every record is
/// acknowledged.
fn wire_produce(addr: &str, topic: &str, data: &Bytes, n: usize) -> anyhow::Result<Duration> {
    let counts = Arc::new(Deliveries {
        failed: AtomicUsize::new(0),
        delivered: AtomicUsize::new(0),
    });
    let producer: ThreadedProducer<Counting> = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("batch.size", "1048576")
        .set("queue.buffering.max.kbytes", "1048576")
        .set("queue.buffering.max.messages", "1000000")
        .create_with_context(Counting(counts.clone()))?;
    let start = Instant::now();
    for i in 0..n {
        let value = &data[i * VALUE_BYTES..(i + 1) * VALUE_BYTES];
        let mut record = BaseRecord::<(), [u8]>::to(topic)
            .payload(value)
            .partition(0);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((e, _)) => anyhow::bail!("librdkafka refused record {i}: {e}"),
            }
        }
    }
    producer.flush(Duration::from_secs(120))?;
    let elapsed = start.elapsed();
    let failed = counts.failed.load(Ordering::Relaxed);
    let delivered = counts.delivered.load(Ordering::Relaxed);
    anyhow::ensure!(
        failed == 0 && delivered == n,
        "{failed} deliveries failed, {delivered} of {n} delivered"
    );
    Ok(elapsed)
}

/// librdkafka consumes `n` records of `topic` from the beginning: the time and the bytes.
///
/// The consumer is kcat (librdkafka's own consumer loop, printing each record's size): the
/// Rust binding's `poll` adds an event and an allocation per message, which would be
/// measured instead of the broker. The test command installs kcat.
fn wire_consume(addr: &str, topic: &str, n: usize) -> anyhow::Result<(Duration, usize)> {
    let start = Instant::now();
    let mut child = Command::new("kcat")
        .args([
            "-b",
            addr,
            "-C",
            "-t",
            topic,
            "-p",
            "0",
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            "%S\\n",
            "-X",
            "fetch.max.bytes=52428800",
            "-X",
            "max.partition.fetch.bytes=10485760",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| anyhow::anyhow!("kcat is needed to consume (apt-get install kcat): {e}"))?;
    let out = BufReader::new(child.stdout.take().expect("piped stdout"));
    let (mut read, mut bytes) = (0usize, 0usize);
    for line in out.lines() {
        bytes += line?.trim().parse::<usize>()?;
        read += 1;
    }
    let status = child.wait()?;
    let elapsed = start.elapsed();
    anyhow::ensure!(status.success(), "kcat failed: {status}");
    anyhow::ensure!(read == n, "kcat read {read} of {n} records");
    Ok((elapsed, bytes))
}

/// The embedded producer and consumer on a broker in this process.
async fn in_process(
    dir: &std::path::Path,
    data: &Bytes,
    n: usize,
) -> anyhow::Result<(Duration, Duration, usize)> {
    let broker = Broker::open(dir, BrokerConfig::default()).await?;
    broker.create_topic(NewTopic::new("inproc", 1)).await?;
    let producer = Producer::with_config(
        &broker,
        ProducerConfig {
            enable_idempotence: true,
            ..ProducerConfig::default()
        },
    );
    let batches: Vec<Vec<ProducerRecord>> = (0..n / BATCH)
        .map(|b| {
            (0..BATCH)
                .map(|i| {
                    let at = (b * BATCH + i) * VALUE_BYTES;
                    ProducerRecord::new("inproc", data.slice(at..at + VALUE_BYTES)).partition(0)
                })
                .collect()
        })
        .collect();
    let start = Instant::now();
    for batch in batches {
        producer.send_batch(batch).await?;
    }
    producer.flush(&["inproc"]).await?;
    let produce = start.elapsed();
    let mut consumer = Consumer::new(
        &broker,
        ConsumerConfig {
            auto_offset_reset: AutoOffsetReset::Earliest,
            max_poll_records: 10_000,
            ..ConsumerConfig::default()
        },
    );
    consumer.assign_topic("inproc").await?;
    let start = Instant::now();
    let (mut read, mut bytes) = (0usize, 0usize);
    while read < n {
        let records = consumer.poll(Duration::from_secs(1)).await?;
        anyhow::ensure!(!records.is_empty(), "consumer stopped at {read} of {n}");
        read += records.len();
        bytes += records
            .iter()
            .map(|r| r.value.as_ref().map_or(0, |v| v.len()))
            .sum::<usize>();
    }
    let consume = start.elapsed();
    broker.close().await?;
    Ok((produce, consume, bytes))
}

/// What one broker over the wire did: produce and consume times, bytes consumed, peak RSS.
struct Leg {
    produce: Duration,
    consume: Duration,
    bytes: usize,
    peak_rss_mib: f64,
}

/// The same load against Apache Kafka, started in a dir under `parent` with `classpath`
/// and Kafka's start script's heap and JVM options (`-Xmx1G -Xms1G`), then stopped.
fn kafka_leg(classpath: String, parent: &Path, data: &Bytes, n: usize) -> anyhow::Result<Leg> {
    let kafka = ApacheKafka::start_with(KafkaOptions {
        classpath: Some(classpath),
        parent_dir: Some(parent.to_owned()),
        ..KafkaOptions::default()
    })?;
    kafka.create_topic("wire", 1)?;
    let addr = kafka.bootstrap();
    let produce = wire_produce(&addr, "wire", data, n)?;
    let (consume, bytes) = wire_consume(&addr, "wire", n)?;
    let peak_rss_mib = peak_rss_mib(kafka.pid());
    kafka.stop()?;
    Ok(Leg {
        produce,
        consume,
        bytes,
        peak_rss_mib,
    })
}

fn main() -> anyhow::Result<()> {
    if let Ok(dir) = std::env::var("WIRE_BENCH_SERVE") {
        return serve(&dir);
    }
    let n = records() / BATCH * BATCH;
    // Apache Kafka's jars first (fetched once, then cached), so that no download runs
    // during a measurement.
    let kafka_version = apache_kafka::kafka_version();
    let kafka_classpath = apache_kafka::broker_classpath(Some(
        &Path::new(env!("CARGO_TARGET_TMPDIR")).join("kafka-broker"),
    ));
    let base = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(&base)?;
    let scratch = tempfile::tempdir_in(&base)?;
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let data: Vec<u8> = (0..n * VALUE_BYTES)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            b'a' + (seed % 26) as u8
        })
        .collect();
    let data = Bytes::from(data);
    let payload = n * VALUE_BYTES;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (in_produce, in_consume, in_bytes) =
        runtime.block_on(in_process(&scratch.path().join("inproc"), &data, n))?;

    // The server in a process of its own, on a data dir with the topic made first.
    let served = scratch.path().join("served");
    runtime.block_on(async {
        let broker = Broker::open(&served, BrokerConfig::default()).await?;
        broker.create_topic(NewTopic::new("wire", 1)).await?;
        broker.close().await
    })?;
    let mut child = Command::new(std::env::current_exe()?)
        .env("WIRE_BENCH_SERVE", &served)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped stdout")).read_line(&mut line)?;
    let addr = line.trim().to_owned();
    let produced = wire_produce(&addr, "wire", &data, n);
    let consumed = produced
        .as_ref()
        .ok()
        .map(|_| wire_consume(&addr, "wire", n));
    let peak = peak_rss_mib(child.id());
    drop(child.stdin.take());
    child.wait()?;
    let wire_produce = produced?;
    let (wire_consume, wire_bytes) = consumed.expect("produce succeeded")?;

    // Apache Kafka after ours: the same clients, the same records.
    let kafka = kafka_classpath.map(|classpath| kafka_leg(classpath, scratch.path(), &data, n));

    println!("records={n} value_bytes={VALUE_BYTES} partitions=1");
    println!(
        "in_process produce records_per_sec={:.0} mb_per_sec={:.1} (embedded producer, idempotent, batches of {BATCH})",
        n as f64 / in_produce.as_secs_f64(),
        mb(payload, in_produce)
    );
    println!(
        "in_process consume records_per_sec={:.0} mb_per_sec={:.1}",
        n as f64 / in_consume.as_secs_f64(),
        mb(in_bytes, in_consume)
    );
    println!(
        "wire produce records_per_sec={:.0} mb_per_sec={:.1} ratio_to_in_process={:.2} (librdkafka acks=all idempotent linger.ms=5; goal >= 0.50)",
        n as f64 / wire_produce.as_secs_f64(),
        mb(payload, wire_produce),
        in_produce.as_secs_f64() / wire_produce.as_secs_f64()
    );
    println!(
        "wire consume records_per_sec={:.0} mb_per_sec={:.1} ratio_to_in_process={:.2} (kcat, librdkafka's consumer; goal >= 0.50)",
        n as f64 / wire_consume.as_secs_f64(),
        mb(wire_bytes, wire_consume),
        in_consume.as_secs_f64() / wire_consume.as_secs_f64()
    );
    println!("server peak_rss_mib={peak:.0}");
    match kafka {
        Err(why) => println!("kafka leg skipped: {why:#}"),
        Ok(Err(e)) => {
            println!("kafka leg failed: {e:#}");
            return Err(e);
        }
        Ok(Ok(kafka)) => {
            println!(
                "kafka produce records_per_sec={:.0} mb_per_sec={:.1} (Apache Kafka {kafka_version}, KRaft, one node, default durability, -Xmx1G -Xms1G; same librdkafka producer)",
                n as f64 / kafka.produce.as_secs_f64(),
                mb(payload, kafka.produce)
            );
            println!(
                "kafka consume records_per_sec={:.0} mb_per_sec={:.1} (same kcat)",
                n as f64 / kafka.consume.as_secs_f64(),
                mb(kafka.bytes, kafka.consume)
            );
            println!(
                "wire produce ratio_to_kafka={:.2} (goal >= 1.0)",
                kafka.produce.as_secs_f64() / wire_produce.as_secs_f64()
            );
            println!(
                "wire consume ratio_to_kafka={:.2} (goal >= 1.0)",
                kafka.consume.as_secs_f64() / wire_consume.as_secs_f64()
            );
            println!(
                "kafka peak_rss_mib={:.0} (JVM, -Xmx1G -Xms1G; ours: {peak:.0})",
                kafka.peak_rss_mib
            );
        }
    }
    Ok(())
}
