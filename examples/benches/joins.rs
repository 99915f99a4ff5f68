//! Joins against plain operations over the same records, in the same run:
//!
//! - **stream–table**: `EVENTS` events of `KEYS` keys joined with a table
//!   of the `KEYS` keys (`join_table`), against a plain `map_values` of the
//!   same events (the goal: a ratio of at least 0.5);
//! - **stream–stream**: a windowed inner join of two streams of
//!   `EVENTS / 2` events each (`JoinWindows` of one minute each way, no
//!   grace), against the word count's plain `count` per key of the same
//!   `EVENTS` records (the goal: a ratio of at least 0.3).
//!
//! Events have in-order timestamps `STEP_MS` apart, in 3-partition topics
//! on the embedded broker (default config), one stream thread,
//! at-least-once, `commit.interval.ms = 100`, in-memory stores. Each run is
//! a child process of its own (a fresh broker and state dir), timed from
//! `start()` until the group has committed every input record; the sides
//! of a pair alternate for `ROUNDS` rounds and the medians are compared.
//! Each child prints its records/s and its peak resident memory. The last
//! two lines printed are
//! `stream_table_per_sec=<N> map_per_sec=<M> ratio=<N/M>` and
//! `stream_stream_per_sec=<N> count_per_sec=<M> ratio=<N/M>`.
//!
//! ```text
//! cargo bench -p examples --bench joins
//! ```

use std::time::Duration;

use anyhow::bail;
use broker_embedded::{Broker, BrokerConfig, Producer, ProducerRecord};
use examples::bench::alternate;
use examples::bench::run_until_idle;
use examples::{ensure_topic, peak_memory_kib, physical_source_topics};
use streams_core::{Serdes, StoreBackend, StreamsApp, StreamsConfig, Topology};
use streams_dsl::{
    Consumed, Grouped, JoinWindows, Joined, Materialized, Produced, StreamJoined, StreamsBuilder,
};

const EVENTS: usize = 2_000_000;
const KEYS: usize = 10_000;
/// Milliseconds between consecutive events of a topic.
const STEP_MS: i64 = 10;
const PARTITIONS: u32 = 3;
const ROUNDS: usize = 3;
const CHILD_ENV: &str = "JOINS_BENCH_SIDE";
const DEADLINE: Duration = Duration::from_secs(900);
const FIRST_TIMESTAMP: i64 = 1_700_000_040_000;

fn main() -> anyhow::Result<()> {
    if let Ok(side) = std::env::var(CHILD_ENV) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        return runtime.block_on(child(&side));
    }
    println!(
        "events={EVENTS} keys={KEYS} step_ms={STEP_MS} partitions={PARTITIONS} threads=1 \
         guarantee=at_least_once store=in_memory commit_interval_ms=100 rounds={ROUNDS}"
    );
    let [map, stream_table] = alternate(
        CHILD_ENV,
        ["map", "stream_table"],
        "records_per_sec",
        ROUNDS,
    )?;
    let [count, stream_stream] = alternate(
        CHILD_ENV,
        ["count", "stream_stream"],
        "records_per_sec",
        ROUNDS,
    )?;
    println!(
        "stream_table_per_sec={stream_table:.0} map_per_sec={map:.0} ratio={:.4}",
        stream_table / map
    );
    println!(
        "stream_stream_per_sec={stream_stream:.0} count_per_sec={count:.0} ratio={:.4}",
        stream_stream / count
    );
    Ok(())
}

/// `len` keyed events, in order, `STEP_MS` apart, with pseudo-random keys
/// of `KEYS` keys.
fn events(topic: &str, len: usize, seed: u64) -> Vec<ProducerRecord> {
    let mut state = seed | 1;
    (0..len)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ProducerRecord::new(topic, format!("event-{i}").into_bytes())
                .key(format!("key-{}", state % KEYS as u64).into_bytes())
                .timestamp(FIRST_TIMESTAMP + i as i64 * STEP_MS)
        })
        .collect()
}

fn topology(side: &str) -> anyhow::Result<Topology> {
    let builder = StreamsBuilder::new();
    let strings = || Consumed::with(Serdes::string(), Serdes::string());
    let out = || Produced::with(Serdes::string(), Serdes::string());
    match side {
        "map" => builder
            .stream::<String, String>("events", strings())
            .map_values(|v| format!("{v}!"))
            .to("out", out()),
        "stream_table" => {
            let table = builder.table(
                "keys",
                strings(),
                Materialized::as_("keys-store").with_backend(StoreBackend::InMemory),
            );
            builder
                .stream::<String, String>("events", strings())
                .join_table(&table, |v, t| format!("{v}+{t}"), Joined::new())
                .to("out", out());
        }
        "count" => builder
            .stream::<String, String>("events", strings())
            .group_by_key(Grouped::with(Serdes::string(), Serdes::string()))
            .count(Materialized::as_("counts").with_backend(StoreBackend::InMemory))
            .to_stream()
            .to("out", Produced::with(Serdes::string(), Serdes::i64())),
        "stream_stream" => {
            let left = builder.stream::<String, String>("events", strings());
            let right = builder.stream::<String, String>("others", strings());
            left.join(
                &right,
                |l, r| format!("{l}+{r}"),
                JoinWindows::of_time_difference_without_grace(Duration::from_secs(60)),
                StreamJoined::with(Serdes::string(), Serdes::string(), Serdes::string())
                    .with_store_name("events-others"),
            )
            .to("out", out());
        }
        other => bail!("unknown side {other}"),
    }
    Ok(builder.build()?)
}

/// One side end to end; prints one line.
async fn child(side: &str) -> anyhow::Result<()> {
    let base = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(&base)?;
    let dir = tempfile::tempdir_in(&base)?;
    let broker = Broker::open(dir.path().join("broker"), BrokerConfig::default()).await?;
    for topic in ["events", "others", "keys", "out"] {
        ensure_topic(&broker, topic, PARTITIONS).await?;
    }
    let producer = Producer::new(&broker);
    let mut inputs = Vec::new();
    match side {
        "stream_stream" => {
            inputs.push(events("events", EVENTS / 2, 0x00c0_ffee));
            inputs.push(events("others", EVENTS / 2, 0x0bad_cafe));
        }
        _ => inputs.push(events("events", EVENTS, 0x00c0_ffee)),
    }
    if side == "stream_table" {
        // The table's rows, older than every event.
        inputs.insert(
            0,
            (0..KEYS)
                .map(|k| {
                    ProducerRecord::new("keys", format!("row-{k}").into_bytes())
                        .key(format!("key-{k}").into_bytes())
                        .timestamp(FIRST_TIMESTAMP - 1)
                })
                .collect(),
        );
    }
    for records in inputs {
        for chunk in records.chunks(5_000) {
            producer.send_batch(chunk.to_vec()).await?;
        }
    }

    let application_id = format!("joins-bench-{side}");
    let topology = topology(side)?;
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
    let mut written = 0;
    for partition in 0..PARTITIONS {
        written += broker.offsets("out", partition).await?.1;
    }
    broker.close().await?;
    let seconds = elapsed.as_secs_f64();
    println!(
        "side={side} records_per_sec={:.0} seconds={seconds:.3} output_records={written} peak_rss_kib={}",
        EVENTS as f64 / seconds,
        peak_memory_kib().unwrap_or(0),
    );
    Ok(())
}
