//! Word count under `exactly_once_v2` against `at_least_once`, in the same
//! run: the topology of `examples::word_count_topology` with the in-memory
//! store, one stream thread and `commit.interval.ms = 100` under both
//! guarantees, over a generated corpus in a 3-partition `text-lines` on the
//! embedded broker (default config: fsync at commit points).
//!
//! Each run is a child process of its own (a fresh broker and state dir);
//! the two guarantees alternate for `ROUNDS` rounds and the medians are
//! compared. The last line printed is
//! `eos_words_per_sec=<E> alos_words_per_sec=<A> ratio=<E/A>`.
//!
//! ```text
//! cargo bench -p examples --bench eos
//! ```

use std::time::Duration;

use anyhow::bail;
use broker_embedded::{Broker, BrokerConfig};
use examples::bench::alternate;
use examples::bench::run_until_idle;
use examples::{
    corpus, ensure_topic, physical_source_topics, produce_values, word_count_topology, words,
    TEXT_LINES_TOPIC, WORD_COUNTS_TOPIC,
};
use streams_core::{StoreBackend, StreamsApp, StreamsConfig};

const LINES: usize = 200_000;
const SEED: u64 = 0x00c0_ffee;
const PARTITIONS: u32 = 3;
const COMMIT_INTERVAL_MS: &str = "100";
const ROUNDS: usize = 3;
/// The child's environment variable naming its guarantee.
const CHILD_ENV: &str = "EOS_BENCH_GUARANTEE";
const DEADLINE: Duration = Duration::from_secs(600);
const GUARANTEES: [&str; 2] = ["at_least_once", "exactly_once_v2"];

fn main() -> anyhow::Result<()> {
    if let Ok(guarantee) = std::env::var(CHILD_ENV) {
        if !GUARANTEES.contains(&guarantee.as_str()) {
            bail!("unknown guarantee {guarantee}");
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        return runtime.block_on(child(&guarantee));
    }
    parent()
}

/// Alternates the two guarantees, one child per run.
fn parent() -> anyhow::Result<()> {
    let lines = corpus(LINES, SEED);
    let word_total: u64 = lines.iter().map(|l| words(l).len() as u64).sum();
    drop(lines);
    println!(
        "corpus lines={LINES} words={word_total} partitions={PARTITIONS} threads=1 \
         store=in_memory commit_interval_ms={COMMIT_INTERVAL_MS} rounds={ROUNDS}"
    );
    let [alos, eos] = alternate(CHILD_ENV, GUARANTEES, "words_per_sec", ROUNDS)?;
    println!(
        "eos_words_per_sec={eos:.0} alos_words_per_sec={alos:.0} ratio={:.4}",
        eos / alos
    );
    Ok(())
}

/// One guarantee end to end; prints one line.
async fn child(guarantee: &str) -> anyhow::Result<()> {
    let lines = corpus(LINES, SEED);
    let word_total: u64 = lines.iter().map(|l| words(l).len() as u64).sum();
    let base = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(&base)?;
    let dir = tempfile::tempdir_in(&base)?;
    let broker = Broker::open(dir.path().join("broker"), BrokerConfig::default()).await?;
    ensure_topic(&broker, TEXT_LINES_TOPIC, PARTITIONS).await?;
    ensure_topic(&broker, WORD_COUNTS_TOPIC, PARTITIONS).await?;
    produce_values(&broker, TEXT_LINES_TOPIC, &lines, 1_700_000_000_000).await?;
    drop(lines);

    let application_id = format!("eos-bench-{guarantee}");
    let topology = word_count_topology(Some(StoreBackend::InMemory))?;
    let sources = physical_source_topics(&topology, &application_id);
    let state_dir = dir.path().join("state");
    let config = StreamsConfig::from_pairs([
        ("application.id", application_id.as_str()),
        ("num.stream.threads", "1"),
        ("processing.guarantee", guarantee),
        ("commit.interval.ms", COMMIT_INTERVAL_MS),
        ("state.dir", &*state_dir.to_string_lossy()),
    ])?;
    let mut app = StreamsApp::new(topology, config, broker.clone());
    let elapsed = run_until_idle(&mut app, &broker, &application_id, &sources, DEADLINE).await?;
    app.close().await?;
    broker.close().await?;

    let seconds = elapsed.as_secs_f64();
    println!(
        "guarantee={guarantee} words_per_sec={:.0} lines_per_sec={:.0} seconds={seconds:.3}",
        word_total as f64 / seconds,
        LINES as f64 / seconds,
    );
    Ok(())
}
