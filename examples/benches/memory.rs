//! Peak memory of the word count as the number of distinct keys grows, per
//! store backend, next to a plain `HashMap<String, u64>` count of the same
//! words measured in the same run. Run with
//! `cargo bench -p examples --bench memory`.
//!
//! The input is [`examples::distinct_word_lines`]: lines of 10 words, every
//! word distinct (8 characters), so that the store holds one entry per
//! word: 1 M, 2 M and 8 M distinct words (`MEMORY_BENCH_WORDS`, a
//! comma-separated list, sets other sizes).
//!
//! Every run is a child process (this program re-executed) so that its
//! peak resident memory (`VmHWM`) is its own:
//! - the baseline child counts the words in a `HashMap<String, u64>`
//!   (generating the lines as it goes) and prints its peak RSS;
//! - a store's child opens a broker in a fresh dir, produces the lines
//!   (generated in chunks, so that the input is never whole in memory),
//!   runs [`examples::word_count_topology`] with one stream thread,
//!   `at_least_once`, the `wordcount` binary's `commit.interval.ms` (200)
//!   and otherwise the defaults (10 MiB record cache) until every line and
//!   every repartitioned word is committed, and prints its peak RSS, the
//!   size of its state directory and words per second (from `start()` to
//!   that point).
//!
//! Each line printed for a store carries `rss_ratio`: its peak RSS over the
//! baseline's on the same words in the same run. The goals: with redb, peak
//! RSS at most 200 MiB at every size; in memory, at most twice the
//! `HashMap`'s.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use broker_embedded::{Broker, BrokerConfig};
use examples::bench::{run_child, run_until_idle};
use examples::{
    distinct_word_lines, ensure_topic, peak_memory_kib, physical_source_topics, produce_values,
    word_count_topology, TEXT_LINES_TOPIC, WORD_COUNTS_TOPIC,
};
use streams_core::{StoreBackend, StreamsApp, StreamsConfig};

const SIZES: [u64; 3] = [1_000_000, 2_000_000, 8_000_000];
const WORDS_PER_LINE: u64 = 10;
/// The `wordcount` binary's default.
const COMMIT_INTERVAL_MS: &str = "200";
const PARTITIONS: u32 = 3;
/// Lines generated and produced at a time.
const CHUNK_LINES: u64 = 10_000;
/// The child's environment variable: `hashmap:<words>` or
/// `<backend>:<words>`.
const CHILD_ENV: &str = "MEMORY_BENCH_CHILD";
const DEADLINE: Duration = Duration::from_secs(1_800);
const BACKENDS: [(&str, StoreBackend); 3] = [
    ("in_memory", StoreBackend::InMemory),
    ("redb", StoreBackend::Redb),
    ("sled", StoreBackend::Sled),
];

fn main() -> anyhow::Result<()> {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        examples::init_tracing();
        let (side, words) = spec
            .split_once(':')
            .with_context(|| format!("bad {CHILD_ENV}={spec}"))?;
        let words: u64 = words
            .parse()
            .with_context(|| format!("bad word count {words}"))?;
        if side == "hashmap" {
            return hashmap_child(words);
        }
        let Some((_, backend)) = BACKENDS.iter().find(|(name, _)| *name == side) else {
            bail!("unknown backend {side}");
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        return runtime.block_on(app_child(side, *backend, words));
    }
    parent()
}

fn sizes() -> anyhow::Result<Vec<u64>> {
    match std::env::var("MEMORY_BENCH_WORDS") {
        Ok(list) => list
            .split(',')
            .map(|n| {
                n.trim()
                    .parse()
                    .with_context(|| format!("bad MEMORY_BENCH_WORDS entry {n}"))
            })
            .collect(),
        Err(_) => Ok(SIZES.to_vec()),
    }
}

/// Per size: the baseline, then each backend.
fn parent() -> anyhow::Result<()> {
    println!(
        "words_per_line={WORDS_PER_LINE} word_bytes=8 partitions={PARTITIONS} threads=1 \
         guarantee=at_least_once commit_interval_ms={COMMIT_INTERVAL_MS} cache.max.bytes.buffering=10MiB"
    );
    for words in sizes()? {
        let (line, baseline_kib) =
            run_child(CHILD_ENV, &format!("hashmap:{words}"), "peak_rss_kib")?;
        println!("{line}");
        for (name, _) in BACKENDS {
            let (line, kib) = run_child(CHILD_ENV, &format!("{name}:{words}"), "peak_rss_kib")?;
            println!("{line} rss_ratio={:.2}", kib / baseline_kib);
        }
    }
    Ok(())
}

/// The baseline: a `HashMap<String, u64>` count of the same words.
fn hashmap_child(words: u64) -> anyhow::Result<()> {
    let lines = words / WORDS_PER_LINE;
    let start = Instant::now();
    let mut counts: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    let mut first = 0;
    while first < lines {
        let chunk = distinct_word_lines(first, CHUNK_LINES.min(lines - first), WORDS_PER_LINE);
        for line in &chunk {
            for word in line.to_lowercase().split_whitespace() {
                match counts.get_mut(word) {
                    Some(count) => *count += 1,
                    None => {
                        counts.insert(word.to_owned(), 1);
                    }
                }
            }
        }
        first += CHUNK_LINES;
    }
    let seconds = start.elapsed().as_secs_f64();
    let distinct = counts.len();
    std::hint::black_box(&counts);
    let peak = peak_memory_kib().context("no VmHWM in /proc/self/status")?;
    println!(
        "side=hashmap words={words} distinct={distinct} peak_rss_kib={peak} peak_rss_mib={:.1} \
         bytes_per_word={:.0} words_per_sec={:.0}",
        peak as f64 / 1024.0,
        peak as f64 * 1024.0 / words as f64,
        words as f64 / seconds
    );
    Ok(())
}

/// The word count over `words` distinct words with `backend`.
async fn app_child(name: &str, backend: StoreBackend, words: u64) -> anyhow::Result<()> {
    let lines = words / WORDS_PER_LINE;
    let base = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(&base)?;
    let dir = tempfile::tempdir_in(&base)?;
    let broker = Broker::open(dir.path().join("broker"), BrokerConfig::default()).await?;
    ensure_topic(&broker, TEXT_LINES_TOPIC, PARTITIONS).await?;
    ensure_topic(&broker, WORD_COUNTS_TOPIC, PARTITIONS).await?;
    let produce_start = Instant::now();
    let mut first = 0;
    while first < lines {
        let chunk = distinct_word_lines(first, CHUNK_LINES.min(lines - first), WORDS_PER_LINE);
        let timestamp = 1_700_000_000_000 + i64::try_from(first)?;
        produce_values(&broker, TEXT_LINES_TOPIC, &chunk, timestamp).await?;
        first += CHUNK_LINES;
    }
    let produce = produce_start.elapsed();
    let after_produce = peak_memory_kib().unwrap_or(0);

    let application_id = format!("memory-bench-{name}");
    let topology = word_count_topology(Some(backend))?;
    let sources = physical_source_topics(&topology, &application_id);
    let state_dir = dir.path().join("state");
    let mut pairs: Vec<(String, String)> = [
        ("application.id", application_id.as_str()),
        ("num.stream.threads", "1"),
        ("commit.interval.ms", COMMIT_INTERVAL_MS),
        ("state.dir", &*state_dir.to_string_lossy()),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    // `MEMORY_BENCH_CONFIG=key=value,key=value` adds settings (to try a
    // budget).
    if let Ok(extra) = std::env::var("MEMORY_BENCH_CONFIG") {
        for pair in extra.split(',').filter(|p| !p.is_empty()) {
            let (key, value) = pair
                .split_once('=')
                .with_context(|| format!("bad MEMORY_BENCH_CONFIG entry {pair}"))?;
            pairs.push((key.to_owned(), value.to_owned()));
        }
    }
    let config = StreamsConfig::from_pairs(pairs)?;
    let mut app = StreamsApp::new(topology, config, broker.clone());
    let seconds = run_until_idle(&mut app, &broker, &application_id, &sources, DEADLINE)
        .await?
        .as_secs_f64();
    let state_bytes = dir_size(&state_dir);
    app.close().await?;
    broker.close().await?;
    let peak = peak_memory_kib().context("no VmHWM in /proc/self/status")?;
    println!(
        "side={name} words={words} peak_rss_kib={peak} peak_rss_mib={:.1} bytes_per_word={:.0} \
         state_on_disk_mib={:.1} words_per_sec={:.0} produce_seconds={:.1} \
         peak_rss_after_produce_mib={:.1}",
        peak as f64 / 1024.0,
        peak as f64 * 1024.0 / words as f64,
        state_bytes as f64 / (1024.0 * 1024.0),
        words as f64 / seconds,
        produce.as_secs_f64(),
        after_produce as f64 / 1024.0,
    );
    Ok(())
}

/// The bytes of the files under `dir`.
fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(t) if t.is_dir() => dir_size(&entry.path()),
            Ok(_) => entry.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}
