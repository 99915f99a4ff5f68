//! Sliding-window and session counts against a plain count of the same
//! records, through the `TopologyTestDriver` (no broker: the cost is the
//! processors and their stores), in the same run.
//!
//! `RECORDS` records of `KEYS` keys, 2 ms apart (each key every 10 s),
//! counted per key in sliding windows of 10 s and in sessions with a 10 s
//! gap (both with 5 s of grace), in-memory stores with the defaults'
//! caching (on for the plain count and the sessions; sliding windows have
//! no cache), and in sessions with the cache off. The driver runs with the
//! production record cache and commits every 1,000 records. Each side runs `ROUNDS` times, alternating,
//! and the medians are compared. The last line printed is
//! `sliding_records_per_sec=<N> baseline_records_per_sec=<M> ratio=<N/M>`.
//!
//! ```text
//! cargo bench -p streams-dsl --bench sliding
//! ```

// Returns streams-core's error, whose size is that crate's choice.
#![allow(clippy::result_large_err)]

use std::time::{Duration, Instant};

use streams_core::{Result, Serdes, StreamsConfig, TestDriverConfig, Topology, TopologyTestDriver};
use streams_dsl::{
    Consumed, Grouped, Materialized, Produced, SessionWindows, SlidingWindows, StreamsBuilder,
};

const RECORDS: usize = 20_000;
const KEYS: usize = 5_000;
const STEP_MS: i64 = 2;
const ROUNDS: usize = 3;

/// What a run counts.
#[derive(Debug, Clone, Copy)]
enum Side {
    /// Per key, no window.
    Baseline,
    /// Per key in sliding windows of 10 s, 5 s of grace.
    Sliding,
    /// Per key in sessions with a 10 s gap, 5 s of grace.
    Session,
    /// As `Session`, with the store's record cache off.
    SessionUncached,
}

fn topology(side: Side) -> Result<Topology> {
    let builder = StreamsBuilder::new();
    let grouped = builder
        .stream::<String, String>("in", Consumed::with(Serdes::string(), Serdes::string()))
        .group_by_key(Grouped::with(Serdes::string(), Serdes::string()));
    let (ten, five) = (Duration::from_secs(10), Duration::from_secs(5));
    match side {
        Side::Baseline => grouped
            .count(Materialized::as_("counts"))
            .to_stream()
            .to("out", Produced::with(Serdes::string(), Serdes::i64())),
        Side::Sliding => grouped
            .windowed_by_sliding(SlidingWindows::of_time_difference_and_grace(ten, five))
            .count(Materialized::as_("sliding-counts"))
            .to_stream()
            .to(
                "out",
                Produced::with(
                    Serdes::time_windowed(Serdes::string(), 10_000),
                    Serdes::i64(),
                ),
            ),
        Side::Session | Side::SessionUncached => grouped
            .windowed_by_session(SessionWindows::with_inactivity_gap_and_grace(ten, five))
            .count(if matches!(side, Side::Session) {
                Materialized::as_("session-counts")
            } else {
                Materialized::as_("session-counts").with_caching_disabled()
            })
            .to_stream()
            .to(
                "out",
                Produced::with(Serdes::session_windowed(Serdes::string()), Serdes::i64()),
            ),
    }
    builder.build()
}

/// Records per second of one run.
fn run(side: Side, keys: &[String]) -> Result<f64> {
    let config = TestDriverConfig::new()
        .with_streams_config(StreamsConfig::new("sliding-bench").with_commit_interval_ms(100))
        .with_production_caching();
    let driver = TopologyTestDriver::with_config(topology(side)?, config)?;
    let input = driver.create_input_topic("in", Serdes::string(), Serdes::string());
    let start = Instant::now();
    for i in 0..RECORDS {
        let ts = i64::try_from(i).unwrap_or(i64::MAX) * STEP_MS;
        input.pipe_input_with_timestamp(keys[i % KEYS].clone(), "x".to_owned(), ts)?;
        // A commit every 1,000 records, as 100 ms of wall clock would give
        // at about 10,000 records/s.
        if i % 1_000 == 999 {
            driver.advance_wall_clock_time(Duration::from_millis(100))?;
        }
    }
    driver.advance_wall_clock_time(Duration::from_millis(100))?;
    let seconds = start.elapsed().as_secs_f64();
    Ok(RECORDS as f64 / seconds)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() -> Result<()> {
    let keys: Vec<String> = (0..KEYS).map(|k| format!("key-{k}")).collect();
    println!(
        "records={RECORDS} keys={KEYS} step_ms={STEP_MS} sliding=10s+5s session=10s+5s rounds={ROUNDS} commit_every=1000"
    );
    let sides = [
        ("baseline", Side::Baseline),
        ("sliding", Side::Sliding),
        ("session", Side::Session),
        ("session_uncached", Side::SessionUncached),
    ];
    let mut figures: Vec<Vec<f64>> = vec![Vec::new(); sides.len()];
    for round in 0..ROUNDS {
        let mut line = format!("round={round}");
        for ((name, side), figures) in sides.iter().zip(&mut figures) {
            let per_sec = run(*side, &keys)?;
            line.push_str(&format!(" {name}_records_per_sec={per_sec:.0}"));
            figures.push(per_sec);
        }
        println!("{line}");
    }
    let medians: Vec<f64> = figures.into_iter().map(median).collect();
    let baseline = medians[0];
    // The sliding count last: the line named in the module docs.
    for index in [3, 2, 1] {
        let (name, _) = sides[index];
        let value = medians[index];
        println!(
            "{name}_records_per_sec={value:.0} baseline_records_per_sec={baseline:.0} ratio={:.4}",
            value / baseline
        );
    }
    Ok(())
}
