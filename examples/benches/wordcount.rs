//! Word count end to end over the embedded broker, per store backend, next
//! to a plain single-threaded `HashMap<String, u64>` count of the same lines
//! measured in the same run, around each backend's run. Run with
//! `cargo bench -p examples --bench wordcount`.
//!
//! Each backend runs in a child process (this program re-executed), so that
//! its peak resident memory (`VmHWM`) is its own: the child opens a broker
//! in a fresh dir, produces the corpus (200,000 lines, 3 partitions), then
//! runs [`examples::word_count_topology`] with one stream thread and
//! `at_least_once` until every line and every repartitioned word is
//! committed. Words per second is the corpus's word count over the time
//! from `start()` to that point (the produce is timed apart). The CPU time
//! of that stretch is printed too, of all threads and of the busiest (the
//! stream thread). `WORDCOUNT_BENCH_LINES` sets a child's corpus size (to
//! profile a shorter run).
//!
//! The baseline is measured before the first child and after each one
//! (median of 5 rounds each time); each run's ratio is to the mean of the
//! two medians around it, so that a change in the machine's speed in the
//! middle of the benchmark moves both sides of the ratio.
//!
//! Each backend runs [`ROUNDS`] times, the backends taking turns, and every
//! run's line is printed with its ratio. A backend's figure is its run with
//! the median ratio (printed again, as `median`): one slow or fast run, of
//! the machine rather than of the code, does not decide it.
//!
//! The last line printed, for the in-memory store's median run, is
//! `words_per_sec=<N> baseline_words_per_sec=<M> ratio=<N/M>`.

use std::time::{Duration, Instant};

use anyhow::bail;
use broker_embedded::{Broker, BrokerConfig};
use examples::bench::{run_child, run_until_idle};
use examples::{
    corpus, count_words, cpu_between, ensure_topic, peak_memory_kib, physical_source_topics,
    produce_values, thread_cpu_times, word_count_topology, words, TEXT_LINES_TOPIC,
    WORD_COUNTS_TOPIC,
};
use streams_core::{StoreBackend, StreamsApp, StreamsConfig};

const LINES: usize = 200_000;
const SEED: u64 = 0x00c0_ffee;
const PARTITIONS: u32 = 3;
/// `commit.interval.ms`: each commit flushes the store's cache downstream
/// and to the changelog, and the run ends at the first commit after the
/// last record, so the interval bounds the time lost at the end (100 ms, as
/// the other end-to-end benchmarks and Kafka Streams' default under
/// exactly-once; `WORDCOUNT_BENCH_COMMIT_MS` overrides it).
const COMMIT_INTERVAL_MS: &str = "100";
const BASELINE_ROUNDS: usize = 5;
/// Runs per backend.
const ROUNDS: usize = 3;
/// The child's environment variable naming its backend.
const CHILD_ENV: &str = "WORDCOUNT_BENCH_BACKEND";
const DEADLINE: Duration = Duration::from_secs(600);

fn backend_name(backend: StoreBackend) -> &'static str {
    match backend {
        StoreBackend::InMemory => "in_memory",
        StoreBackend::Sled => "sled",
        _ => "redb",
    }
}

fn parse_backend(name: &str) -> anyhow::Result<StoreBackend> {
    Ok(match name {
        "in_memory" => StoreBackend::InMemory,
        "sled" => StoreBackend::Sled,
        "redb" => StoreBackend::Redb,
        other => bail!("unknown backend {other}"),
    })
}

fn main() -> anyhow::Result<()> {
    if let Ok(name) = std::env::var(CHILD_ENV) {
        examples::init_tracing();
        let backend = parse_backend(&name)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        return runtime.block_on(child(backend));
    }
    parent()
}

/// One backend's run: its line, words per second, and the baseline next to it.
struct Run {
    line: String,
    words_per_sec: f64,
    baseline_words_per_sec: f64,
}

impl Run {
    fn ratio(&self) -> f64 {
        self.words_per_sec / self.baseline_words_per_sec
    }

    fn print(&self, prefix: &str) {
        println!(
            "{prefix}{} baseline_words_per_sec={:.0} ratio={:.4}",
            self.line,
            self.baseline_words_per_sec,
            self.ratio()
        );
    }
}

const BACKENDS: [StoreBackend; 3] = [
    StoreBackend::Sled,
    StoreBackend::Redb,
    StoreBackend::InMemory,
];

/// The baseline, then [`ROUNDS`] rounds of one child per backend, in-memory
/// last; then each backend's median run, in-memory last.
fn parent() -> anyhow::Result<()> {
    let lines = corpus(LINES, SEED);
    let word_total: u64 = lines.iter().map(|l| words(l).len() as u64).sum();
    let distinct = count_words(&lines).len();
    let mut before = baseline_seconds(&lines, BASELINE_ROUNDS);
    println!(
        "corpus lines={LINES} words={word_total} distinct={distinct} partitions={PARTITIONS} \
         threads=1 guarantee=at_least_once commit_interval_ms={COMMIT_INTERVAL_MS} rounds={ROUNDS}"
    );
    println!(
        "baseline HashMap count: median of {BASELINE_ROUNDS} rounds {before:.3} s, words_per_sec={:.0}",
        word_total as f64 / before
    );

    let mut runs: Vec<Vec<Run>> = BACKENDS.iter().map(|_| Vec::new()).collect();
    for round in 1..=ROUNDS {
        for (backend, backend_runs) in BACKENDS.iter().zip(runs.iter_mut()) {
            let (line, words_per_sec) =
                run_child(CHILD_ENV, backend_name(*backend), "words_per_sec")?;
            // The baseline next to this run: the mean of the medians measured
            // just before and just after it, so that a change in the machine's
            // speed during the benchmark moves both sides of the ratio.
            let after = baseline_seconds(&lines, BASELINE_ROUNDS);
            let run = Run {
                line,
                words_per_sec,
                baseline_words_per_sec: word_total as f64 / ((before + after) / 2.0),
            };
            run.print(&format!("round={round} "));
            backend_runs.push(run);
            before = after;
        }
    }
    let mut in_memory = None;
    for (backend, mut backend_runs) in BACKENDS.into_iter().zip(runs) {
        backend_runs.sort_by(|a, b| a.ratio().total_cmp(&b.ratio()));
        let Some(median) = backend_runs.get(backend_runs.len() / 2) else {
            bail!("no {} run", backend_name(backend));
        };
        median.print("median ");
        if backend == StoreBackend::InMemory {
            in_memory = Some((median.words_per_sec, median.baseline_words_per_sec));
        }
    }
    let Some((wps, baseline_wps)) = in_memory else {
        bail!("no in-memory run");
    };
    println!(
        "words_per_sec={wps:.0} baseline_words_per_sec={baseline_wps:.0} ratio={:.4}",
        wps / baseline_wps
    );
    Ok(())
}

/// The median time, in seconds, of `rounds` plain `HashMap` counts of
/// `lines`.
fn baseline_seconds(lines: &[String], rounds: usize) -> f64 {
    let mut times: Vec<f64> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(count_words(lines));
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// One backend end to end; prints one line.
async fn child(backend: StoreBackend) -> anyhow::Result<()> {
    let name = backend_name(backend);
    let line_count = std::env::var("WORDCOUNT_BENCH_LINES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(LINES);
    let lines = corpus(line_count, SEED);
    let word_total: u64 = lines.iter().map(|l| words(l).len() as u64).sum();
    let base = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(&base)?;
    let dir = tempfile::tempdir_in(&base)?;
    let broker = Broker::open(dir.path().join("broker"), BrokerConfig::default()).await?;
    ensure_topic(&broker, TEXT_LINES_TOPIC, PARTITIONS).await?;
    ensure_topic(&broker, WORD_COUNTS_TOPIC, PARTITIONS).await?;

    let produce_start = Instant::now();
    produce_values(&broker, TEXT_LINES_TOPIC, &lines, 1_700_000_000_000).await?;
    let produce = produce_start.elapsed();
    drop(lines);

    let application_id = format!("wordcount-bench-{name}");
    let topology = word_count_topology(Some(backend))?;
    let sources = physical_source_topics(&topology, &application_id);
    let state_dir = dir.path().join("state");
    let config = StreamsConfig::from_pairs([
        ("application.id", application_id.as_str()),
        ("num.stream.threads", "1"),
        ("processing.guarantee", "at_least_once"),
        (
            "commit.interval.ms",
            &std::env::var("WORDCOUNT_BENCH_COMMIT_MS").unwrap_or(COMMIT_INTERVAL_MS.to_owned()),
        ),
        ("state.dir", &*state_dir.to_string_lossy()),
    ])?;
    let mut app = StreamsApp::new(topology, config, broker.clone());
    let cpu_before = thread_cpu_times();
    let elapsed = run_until_idle(&mut app, &broker, &application_id, &sources, DEADLINE).await?;
    let (cpu, busiest) = cpu_between(&cpu_before, &thread_cpu_times());
    let close_start = Instant::now();
    app.close().await?;
    let close = close_start.elapsed();
    broker.close().await?;

    let seconds = elapsed.as_secs_f64();
    let peak_mib = peak_memory_kib().map_or(-1.0, |kib| kib as f64 / 1024.0);
    let words_per_sec = word_total as f64 / seconds;
    println!(
        "backend={name} words_per_sec={words_per_sec:.0} lines_per_sec={:.0} seconds={seconds:.3} \
         produce_seconds={:.3} close_seconds={:.3} cpu_seconds={:.3} \
         busiest_thread_cpu_seconds={:.3} peak_rss_mib={peak_mib:.1}",
        line_count as f64 / seconds,
        produce.as_secs_f64(),
        close.as_secs_f64(),
        cpu.as_secs_f64(),
        busiest.as_secs_f64(),
    );
    Ok(())
}
