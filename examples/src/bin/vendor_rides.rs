//! Taxi rides per vendor: JSON ride events (`vendor_id`, `fare`,
//! `distance`) in `taxi-rides` are grouped by vendor and aggregated into a
//! KTable of (rides, total fare, total distance) per vendor, kept in the
//! store `vendor-stats` with a JSON value serde and sent to the topic
//! `vendor-stats`. The sample is generated deterministically; the program
//! exits once every ride is processed and prints the table next to a
//! direct computation.
//!
//! ```text
//! cargo run -p examples --bin vendor_rides
//! ```

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context as _};
use broker_embedded::Broker;
use examples::outln;
use examples::{ensure_topic, physical_source_topics, produce_values, wait_until_idle};
use serde::{Deserialize, Serialize};
use streams_core::{Serdes, StreamsApp, StreamsConfig, Topology};
use streams_dsl::{Consumed, Grouped, Materialized, Produced, StreamsBuilder, ValueAndTimestamp};

const RIDES_TOPIC: &str = "taxi-rides";
const STATS_TOPIC: &str = "vendor-stats";
const STATS_STORE: &str = "vendor-stats";
const APPLICATION_ID: &str = "vendor-rides";
const RIDES: usize = 20_000;

/// One ride, as JSON on `taxi-rides`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Ride {
    vendor_id: String,
    /// Dollars.
    fare: f64,
    /// Miles.
    distance: f64,
}

/// The aggregate per vendor, as JSON in the store and on `vendor-stats`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct VendorStats {
    rides: u64,
    total_fare: f64,
    total_distance: f64,
}

impl VendorStats {
    fn add(mut self, ride: &Ride) -> Self {
        self.rides += 1;
        self.total_fare += ride.fare;
        self.total_distance += ride.distance;
        self
    }
}

/// A deterministic sample: four vendors of different sizes, distances of
/// 0.5 to 20 miles, a fare of $3 plus $2.50 a mile, rounded to cents.
fn sample_rides(count: usize) -> Vec<Ride> {
    const VENDORS: &[&str] = &["CMT", "VTS", "DDS", "CMT", "VTS", "CMT", "NYC"];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..count)
        .map(|_| {
            let vendor = VENDORS[(next() % VENDORS.len() as u64) as usize];
            let distance = 0.5 + (next() % 1_950) as f64 / 100.0;
            let fare = ((3.0 + 2.5 * distance) * 100.0).round() / 100.0;
            Ride {
                vendor_id: vendor.to_owned(),
                fare,
                distance,
            }
        })
        .collect()
}

fn topology() -> anyhow::Result<Topology> {
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, Ride>(
            RIDES_TOPIC,
            Consumed::with(Serdes::string(), Serdes::json()),
        )
        .group_by(
            |_key, ride| ride.vendor_id.clone(),
            Grouped::with(Serdes::string(), Serdes::json()).with_name("rides-by-vendor"),
        )
        .aggregate(
            VendorStats::default,
            |_vendor, ride, stats| stats.add(ride),
            Materialized::as_(STATS_STORE).with_value_serde(Serdes::json()),
        )
        .to_stream()
        .to(
            STATS_TOPIC,
            Produced::with(Serdes::string(), Serdes::json()),
        );
    Ok(builder.build()?)
}

#[tokio::main]
async fn main() -> ExitCode {
    examples::init_tracing();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of stdout (`| head`) closed it: nothing went wrong.
        Err(e) if examples::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("cannot create a temporary dir")?;
    let broker = Broker::open(dir.path().join("broker"), Default::default())
        .await
        .context("cannot open the broker")?;
    let result = rides(&broker, dir.path()).await;
    let closed = broker.close().await.context("cannot close the broker");
    result.and(closed)
}

async fn rides(broker: &Broker, dir: &std::path::Path) -> anyhow::Result<()> {
    ensure_topic(broker, RIDES_TOPIC, 3).await?;
    ensure_topic(broker, STATS_TOPIC, 3).await?;
    let rides = sample_rides(RIDES);
    let values = rides
        .iter()
        .map(serde_json::to_vec)
        .collect::<Result<Vec<_>, _>>()
        .context("cannot encode a ride")?;
    produce_values(broker, RIDES_TOPIC, &values, 1_700_000_000_000).await?;
    outln!("produced {} rides to {RIDES_TOPIC}", rides.len())?;

    let topology = topology().context("cannot build the topology")?;
    let sources = physical_source_topics(&topology, APPLICATION_ID);
    let config = StreamsConfig::new(APPLICATION_ID)
        .with_commit_interval_ms(100)
        .with_state_dir(dir.join("state"));
    let mut app = StreamsApp::new(topology, config, broker.clone());
    app.start()
        .await
        .context("cannot start the streams application")?;
    let waited = wait_until_idle(
        &app,
        broker,
        APPLICATION_ID,
        &sources,
        Some(Duration::from_secs(120)),
        |_| {},
    )
    .await;
    if let Err(e) = waited {
        drop(app.close().await);
        return Err(e);
    }
    let table: BTreeMap<String, VendorStats> = app
        .store::<String, ValueAndTimestamp<VendorStats>>(STATS_STORE)
        .context("cannot query the vendor-stats store")?
        .all()
        .context("cannot read the vendor-stats store")?
        .into_iter()
        .map(|(vendor, stats)| (vendor, stats.value))
        .collect();
    app.close()
        .await
        .context("the streams application did not close cleanly")?;

    let mut expected: BTreeMap<String, VendorStats> = BTreeMap::new();
    for ride in &rides {
        let entry = expected.entry(ride.vendor_id.clone()).or_default();
        *entry = std::mem::take(entry).add(ride);
    }

    outln!(
        "{:<8} {:>7} {:>14} {:>12} {:>10}",
        "vendor",
        "rides",
        "total fare",
        "miles",
        "avg fare"
    )?;
    for (vendor, stats) in &table {
        outln!(
            "{vendor:<8} {:>7} {:>14.2} {:>12.2} {:>10.2}",
            stats.rides,
            stats.total_fare,
            stats.total_distance,
            stats.total_fare / stats.rides.max(1) as f64
        )?;
    }
    let matches = table.len() == expected.len()
        && table.iter().all(|(vendor, got)| {
            expected.get(vendor).is_some_and(|want| {
                got.rides == want.rides
                    && (got.total_fare - want.total_fare).abs() < 1e-6
                    && (got.total_distance - want.total_distance).abs() < 1e-6
            })
        });
    if !matches {
        bail!("the table differs from a direct computation over the same rides: {expected:?}");
    }
    outln!("the table equals a direct computation over the same rides")?;
    Ok(())
}
