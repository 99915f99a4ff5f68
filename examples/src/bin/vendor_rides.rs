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
//! cargo run -p examples --bin vendor_rides -- --bootstrap-server localhost:9092
//! ```
//!
//! It runs on an embedded broker in a temporary dir, or with
//! `--bootstrap-server` on that Kafka cluster: the topics are created and
//! the rides loaded there (each ride once: a second run finds them and
//! produces none), and the application runs there; its state lives in a
//! temporary dir.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context as _};
use broker_embedded::ProducerRecord;
use clap::Parser;
use examples::cluster::Cluster;
use examples::kafka_cluster::parse_bootstrap_servers;
use examples::outln;
use examples::physical_source_topics;
use serde::{Deserialize, Serialize};
use streams_core::{Serdes, StreamsConfig, Topology};
use streams_dsl::{Consumed, Grouped, Materialized, Produced, StreamsBuilder, ValueAndTimestamp};

const RIDES_TOPIC: &str = "taxi-rides";
const STATS_TOPIC: &str = "vendor-stats";
const STATS_STORE: &str = "vendor-stats";
const APPLICATION_ID: &str = "vendor-rides";
const RIDES: usize = 20_000;
/// The rides' timestamps start after this.
const FIRST_TIMESTAMP: i64 = 1_700_000_000_000;

/// Aggregates taxi rides per vendor into a table.
#[derive(Debug, Parser)]
#[command(name = "vendor_rides")]
struct Args {
    /// A Kafka cluster to run on instead of an embedded broker: HOST:PORT
    /// of one of its brokers, or several separated by commas (as Kafka's
    /// tools and `streams --bootstrap-server` take it). The topics are
    /// created there if missing, the rides loaded there, and the
    /// application runs there; its state lives in a temporary dir.
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_bootstrap_servers)]
    bootstrap_server: Option<String>,
}

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
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of stdout (`| head`) closed it: nothing went wrong.
        Err(e) if examples::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("cannot create a temporary dir")?;
    let cluster = Cluster::open(dir.path(), args.bootstrap_server.as_deref()).await?;
    let result = rides(&cluster, dir.path()).await;
    let closed = cluster.close().await;
    result.and(closed)
}

async fn rides(cluster: &Cluster, dir: &std::path::Path) -> anyhow::Result<()> {
    cluster.ensure_topic(RIDES_TOPIC, 3).await?;
    cluster.ensure_topic(STATS_TOPIC, 3).await?;
    let rides = sample_rides(RIDES);
    let values = rides
        .iter()
        .map(serde_json::to_vec)
        .collect::<Result<Vec<_>, _>>()
        .context("cannot encode a ride")?;
    let load = cluster
        .load_input(RIDES_TOPIC, values.len(), |i| {
            ProducerRecord::new(RIDES_TOPIC, values[i].clone())
                .timestamp(FIRST_TIMESTAMP + i as i64 + 1)
        })
        .await?;
    if load.produced == 0 {
        outln!(
            "{RIDES_TOPIC} already holds the {} rides: nothing produced",
            rides.len()
        )?;
    } else {
        outln!("produced {} rides to {RIDES_TOPIC}", load.produced)?;
    }

    let topology = topology().context("cannot build the topology")?;
    let sources = physical_source_topics(&topology, APPLICATION_ID);
    let config = StreamsConfig::new(APPLICATION_ID)
        .with_commit_interval_ms(100)
        .with_state_dir(dir.join("state"));
    let mut app = cluster.app(topology, config)?;
    app.start()
        .await
        .context("cannot start the streams application")?;
    let waited = cluster
        .wait_until_idle(
            &app,
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
