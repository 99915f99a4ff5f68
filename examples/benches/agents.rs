//! The word count written with Faust-style agents against the DSL's word
//! count, over the same lines in the same run (the goal: agents at least
//! 0.5 of the DSL's words/s).
//!
//! `LINES` lines of the word count's corpus in a 3-partition `text-lines`
//! on the embedded broker (default config), one stream thread,
//! at-least-once, `commit.interval.ms = 100`, in-memory stores. Each run is
//! a child process of its own (a fresh broker and state dir), timed from
//! `start()` until the group has committed every record of the topics it
//! reads; the two sides alternate for `ROUNDS` rounds and the medians are
//! compared. Each child prints its words/s, CPU seconds and peak resident
//! memory. The last line is
//! `agents_words_per_sec=<N> dsl_words_per_sec=<M> ratio=<N/M>`.
//!
//! ```text
//! cargo bench -p examples --bench agents
//! ```

use std::time::{Duration, Instant};

use anyhow::bail;
use broker_embedded::{Broker, BrokerConfig, Producer, ProducerRecord};
use examples::bench::alternate;
use examples::{ensure_topic, peak_memory_kib, wait_until_idle, words};
use streams_core::{StoreBackend, StreamsApp, StreamsConfig};

const LINES: usize = 200_000;
const PARTITIONS: u32 = 3;
const ROUNDS: usize = 3;
const CHILD_ENV: &str = "AGENTS_BENCH_SIDE";
const DEADLINE: Duration = Duration::from_secs(900);

fn main() -> anyhow::Result<()> {
    if let Ok(side) = std::env::var(CHILD_ENV) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        return runtime.block_on(child(&side));
    }
    println!(
        "lines={LINES} partitions={PARTITIONS} threads=1 guarantee=at_least_once \
         store=in_memory commit_interval_ms=100 rounds={ROUNDS}"
    );
    let [dsl, agents] = alternate(CHILD_ENV, ["dsl", "agents"], "words_per_sec", ROUNDS)?;
    println!(
        "agents_words_per_sec={agents:.0} dsl_words_per_sec={dsl:.0} ratio={:.4}",
        agents / dsl
    );
    Ok(())
}

/// One side end to end; prints one line.
async fn child(side: &str) -> anyhow::Result<()> {
    let base = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(&base)?;
    let dir = tempfile::tempdir_in(&base)?;
    let broker = Broker::open(dir.path().join("broker"), BrokerConfig::default()).await?;
    for topic in [examples::TEXT_LINES_TOPIC, examples::WORD_COUNTS_TOPIC] {
        ensure_topic(&broker, topic, PARTITIONS).await?;
    }
    let lines = examples::corpus(LINES, 0x00a9_e275);
    let total_words: usize = lines.iter().map(|l| words(l).len()).sum();
    let producer = Producer::new(&broker);
    for chunk in lines.chunks(5_000) {
        let records = chunk
            .iter()
            .map(|l| ProducerRecord::new(examples::TEXT_LINES_TOPIC, l.clone().into_bytes()))
            .collect();
        producer.send_batch(records).await?;
    }
    let application_id = format!("agents-bench-{side}");
    let config = StreamsConfig::from_pairs([
        ("application.id", application_id.as_str()),
        ("num.stream.threads", "1"),
        ("commit.interval.ms", "100"),
        ("state.dir", &*dir.path().join("state").to_string_lossy()),
    ])?;
    let cpu_before = examples::thread_cpu_times();
    let start = Instant::now();
    // CPU time is read before the app closes: its stream threads end then.
    let (elapsed, cpu_after) = match side {
        "dsl" => {
            let topology = examples::word_count_topology(Some(StoreBackend::InMemory))?;
            let sources = topology.physical_source_topics(&application_id);
            let mut app = StreamsApp::new(topology, config, broker.clone());
            app.start().await?;
            wait_until_idle(
                &app,
                &broker,
                &application_id,
                &sources,
                Some(DEADLINE),
                |_| {},
            )
            .await?;
            let elapsed = start.elapsed();
            let cpu_after = examples::thread_cpu_times();
            app.close().await?;
            (elapsed, cpu_after)
        }
        "agents" => {
            let (app, _) = examples::agents::word_count_app(
                config,
                broker.clone(),
                PARTITIONS,
                Some(StoreBackend::InMemory),
            )?;
            let running = app.start().await?;
            let sources = running.input_topics().to_vec();
            wait_until_idle(
                running.streams_app(),
                &broker,
                &application_id,
                &sources,
                Some(DEADLINE),
                |_| {},
            )
            .await?;
            let elapsed = start.elapsed();
            let cpu_after = examples::thread_cpu_times();
            running.stop().await?;
            (elapsed, cpu_after)
        }
        other => bail!("unknown side {other}"),
    };
    let (cpu, _) = examples::cpu_between(&cpu_before, &cpu_after);
    let mut written = 0;
    for partition in 0..broker.partition_count(examples::WORD_COUNTS_TOPIC).await? {
        written += broker
            .offsets(examples::WORD_COUNTS_TOPIC, partition)
            .await?
            .1;
    }
    broker.close().await?;
    let seconds = elapsed.as_secs_f64();
    println!(
        "side={side} words_per_sec={:.0} seconds={seconds:.3} cpu_seconds={:.3} words={total_words} count_records={written} peak_rss_kib={}",
        total_words as f64 / seconds,
        cpu.as_secs_f64(),
        peak_memory_kib().unwrap_or(0),
    );
    Ok(())
}
