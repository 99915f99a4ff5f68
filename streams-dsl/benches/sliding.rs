//! A sliding-window count against a plain count of the same records, both
//! through the `TopologyTestDriver` (no broker: the cost is the processors
//! and their stores), in the same run.
//!
//! `RECORDS` records of `KEYS` keys, 2 ms apart, counted per key in
//! sliding windows of 10 s (5 s of grace), in-memory store; the baseline
//! counts per key with no window. Each side runs `ROUNDS` times,
//! alternating, and the medians are compared. The last line printed is
//! `sliding_records_per_sec=<N> baseline_records_per_sec=<M> ratio=<N/M>`.
//!
//! ```text
//! cargo bench -p streams-dsl --bench sliding
//! ```

// Returns streams-core's error, whose size is that crate's choice.
#![allow(clippy::result_large_err)]

use std::time::{Duration, Instant};

use streams_core::{Result, Serdes, Topology, TopologyTestDriver};
use streams_dsl::{Consumed, Grouped, Materialized, Produced, SlidingWindows, StreamsBuilder};

const RECORDS: usize = 20_000;
const KEYS: usize = 5_000;
const STEP_MS: i64 = 2;
const ROUNDS: usize = 3;

fn topology(sliding: bool) -> Result<Topology> {
    let builder = StreamsBuilder::new();
    let grouped = builder
        .stream::<String, String>("in", Consumed::with(Serdes::string(), Serdes::string()))
        .group_by_key(Grouped::with(Serdes::string(), Serdes::string()));
    if sliding {
        grouped
            .windowed_by_sliding(SlidingWindows::of_time_difference_and_grace(
                Duration::from_secs(10),
                Duration::from_secs(5),
            ))
            .count(Materialized::as_("sliding-counts"))
            .to_stream()
            .to(
                "out",
                Produced::with(
                    Serdes::time_windowed(Serdes::string(), 10_000),
                    Serdes::i64(),
                ),
            );
    } else {
        grouped
            .count(Materialized::as_("counts"))
            .to_stream()
            .to("out", Produced::with(Serdes::string(), Serdes::i64()));
    }
    builder.build()
}

/// Records per second of one run.
fn run(sliding: bool, keys: &[String]) -> Result<f64> {
    let driver = TopologyTestDriver::new(topology(sliding)?)?;
    let input = driver.create_input_topic("in", Serdes::string(), Serdes::string());
    let start = Instant::now();
    for i in 0..RECORDS {
        let ts = i64::try_from(i).unwrap_or(i64::MAX) * STEP_MS;
        input.pipe_input_with_timestamp(keys[i % KEYS].clone(), "x".to_owned(), ts)?;
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok(RECORDS as f64 / seconds)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() -> Result<()> {
    let keys: Vec<String> = (0..KEYS).map(|k| format!("key-{k}")).collect();
    println!("records={RECORDS} keys={KEYS} step_ms={STEP_MS} window=sliding 10s grace 5s rounds={ROUNDS}");
    let (mut sliding, mut baseline) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let b = run(false, &keys)?;
        let s = run(true, &keys)?;
        println!("round={round} baseline_records_per_sec={b:.0} sliding_records_per_sec={s:.0}");
        baseline.push(b);
        sliding.push(s);
    }
    let (s, b) = (median(sliding), median(baseline));
    println!(
        "sliding_records_per_sec={s:.0} baseline_records_per_sec={b:.0} ratio={:.4}",
        s / b
    );
    Ok(())
}
