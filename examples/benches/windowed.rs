//! A tumbling-window count against a plain count of the same events, in
//! the same run: `examples::windowed::count_topology`, 1-minute windows
//! (no grace) against a count per key, both with the record cache on as
//! by default, over `EVENTS` events of `KEYS` keys
//! with in-order timestamps in a 3-partition `pageviews` on the embedded
//! broker (default config), one stream thread, at-least-once,
//! `commit.interval.ms = 100`, in-memory stores.
//!
//! Each run is a child process of its own (a fresh broker and state dir);
//! the two alternate for `ROUNDS` rounds and the medians are compared. The
//! last line printed is
//! `windowed_events_per_sec=<N> baseline_events_per_sec=<M> ratio=<N/M>`.
//!
//! ```text
//! cargo bench -p examples --bench windowed
//! ```

use std::time::Duration;

use anyhow::bail;
use broker_embedded::{Broker, BrokerConfig};
use examples::bench::alternate;
use examples::bench::run_until_idle;
use examples::windowed::{count_topology, produce_pageviews, PageView, PAGEVIEWS_TOPIC};
use examples::{ensure_topic, physical_source_topics};
use streams_core::{StreamsApp, StreamsConfig};

const EVENTS: usize = 300_000;
const KEYS: usize = 10_000;
/// Milliseconds between consecutive events: 300,000 events span 50 minutes.
const STEP_MS: i64 = 10;
const PARTITIONS: u32 = 3;
const ROUNDS: usize = 3;
/// The child's environment variable naming its side.
const CHILD_ENV: &str = "WINDOWED_BENCH_SIDE";
const DEADLINE: Duration = Duration::from_secs(600);
const SIDES: [&str; 2] = ["baseline", "windowed"];

fn main() -> anyhow::Result<()> {
    if let Ok(side) = std::env::var(CHILD_ENV) {
        if !SIDES.contains(&side.as_str()) {
            bail!("unknown side {side}");
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        return runtime.block_on(child(&side));
    }
    parent()
}

/// Alternates the two sides, one child per run.
fn parent() -> anyhow::Result<()> {
    println!(
        "events={EVENTS} keys={KEYS} step_ms={STEP_MS} window=1min partitions={PARTITIONS} \
         threads=1 guarantee=at_least_once store=in_memory commit_interval_ms=100 rounds={ROUNDS}"
    );
    let [baseline, windowed] = alternate(CHILD_ENV, SIDES, "events_per_sec", ROUNDS)?;
    println!(
        "windowed_events_per_sec={windowed:.0} baseline_events_per_sec={baseline:.0} ratio={:.4}",
        windowed / baseline
    );
    Ok(())
}

/// `EVENTS` events of `KEYS` keys, in order, `STEP_MS` apart.
fn events() -> Vec<PageView> {
    let mut state: u64 = 0x00c0_ffee;
    (0..EVENTS)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            PageView {
                user: format!("key-{}", state % KEYS as u64),
                page: "/".to_owned(),
                timestamp: 1_700_000_040_000 + i as i64 * STEP_MS,
            }
        })
        .collect()
}

/// One side end to end; prints one line.
async fn child(side: &str) -> anyhow::Result<()> {
    let events = events();
    let base = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(&base)?;
    let dir = tempfile::tempdir_in(&base)?;
    let broker = Broker::open(dir.path().join("broker"), BrokerConfig::default()).await?;
    let windowed = side == "windowed";
    let output = if windowed { "window-counts" } else { "counts" };
    ensure_topic(&broker, PAGEVIEWS_TOPIC, PARTITIONS).await?;
    ensure_topic(&broker, output, PARTITIONS).await?;
    produce_pageviews(&broker, PAGEVIEWS_TOPIC, &events).await?;
    drop(events);

    let application_id = format!("windowed-bench-{side}");
    let topology = count_topology(windowed)?;
    let sources = physical_source_topics(&topology, &application_id);
    let state_dir = dir.path().join("state");
    let config = StreamsConfig::from_pairs([
        ("application.id", application_id.as_str()),
        ("num.stream.threads", "1"),
        ("commit.interval.ms", "100"),
        ("state.dir", &*state_dir.to_string_lossy()),
    ])?;
    let mut app = StreamsApp::new(topology, config, broker.clone());
    let elapsed = run_until_idle(&mut app, &broker, &application_id, &sources, DEADLINE).await?;
    app.close().await?;
    let (_, written) = broker.offsets(output, 0).await?;
    broker.close().await?;

    let seconds = elapsed.as_secs_f64();
    println!(
        "side={side} events_per_sec={:.0} seconds={seconds:.3} output_records_partition0={written}",
        EVENTS as f64 / seconds,
    );
    Ok(())
}
