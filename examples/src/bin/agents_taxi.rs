//! Faust's taxi tutorial with Rust agents: yellow-taxi rides as JSON (as in
//! the tutorial's `yellow_taxi_ride.json`) in `yellow_taxi_ride.json`; the
//! agent `print_rides` prints every ride; the agent `count_rides` groups
//! the rides by vendor (`group_by`, through the repartition topic
//! `agents-taxi-vendor-repartition`) and counts them in the table
//! `vendor_rides` (default 0). It generates the rides, runs until each is
//! counted, and prints the table next to a direct count.
//!
//! ```text
//! cargo run -p examples --bin agents_taxi
//! cargo run -p examples --bin agents_taxi -- --rides 1000 --quiet
//! cargo run -p examples --bin agents_taxi -- agents
//! ```
//!
//! After the flags, Faust's commands: `worker`, `agents`, `tables`,
//! `send TOPIC VALUE` (a ride as JSON).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context as _};
use broker_embedded::ProducerRecord;
use clap::Parser;
use examples::cluster::Cluster;
use examples::outln;
use futures::StreamExt as _;
use serde::{Deserialize, Serialize};
use streams_agents::App;
use streams_core::{Serdes, StreamsConfig};

const APPLICATION_ID: &str = "agents-taxi";
const RIDES_TOPIC: &str = "yellow_taxi_ride.json";
const PARTITIONS: u32 = 3;

/// A yellow-taxi ride, as the tutorial's JSON has it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct TaxiRide {
    #[serde(rename = "vendorId")]
    vendor_id: String,
    tpep_pickup_datetime: String,
    tpep_dropoff_datetime: String,
    passenger_count: u32,
    trip_distance: f64,
    total_amount: f64,
}

/// Counts taxi rides per vendor with Faust-style agents on the embedded
/// broker.
#[derive(Debug, Parser)]
#[command(name = "agents_taxi")]
struct Args {
    /// The state dir (`<DIR>/state`) and the embedded broker's data dir
    /// (`<DIR>/broker`); default: a temporary dir removed at exit.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// How many rides to generate.
    #[arg(long, value_name = "N", default_value_t = 40)]
    rides: usize,
    /// Do not print every ride.
    #[arg(long)]
    quiet: bool,
    /// Faust's commands: `worker`, `agents`, `tables`, `send TOPIC VALUE`.
    #[arg(trailing_var_arg = true, value_name = "COMMAND")]
    command: Vec<String>,
}

/// Ride `i` of a deterministic sample: vendors 1 and 2 as in the NYC data,
/// and a few others.
fn ride(i: usize) -> TaxiRide {
    let mut x = (i as u64 + 1).wrapping_mul(6_364_136_223_846_793_005);
    let mut next = |n: u64| {
        x ^= x >> 29;
        x = x.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (x >> 33) % n
    };
    let vendor = ["1", "2", "1", "2", "4"][next(5) as usize];
    let minute = i % 60;
    let length = 3 + next(40);
    TaxiRide {
        vendor_id: vendor.to_owned(),
        tpep_pickup_datetime: format!("2020-01-01 00:{minute:02}:00"),
        tpep_dropoff_datetime: format!(
            "2020-01-01 {:02}:{:02}:00",
            (minute as u64 + length) / 60,
            (minute as u64 + length) % 60
        ),
        passenger_count: 1 + next(4) as u32,
        trip_distance: (next(200) as f64) / 10.0,
        total_amount: 5.0 + (next(6000) as f64) / 100.0,
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let temp = match &args.data_dir {
        Some(_) => None,
        None => Some(tempfile::tempdir().context("cannot create a temporary dir")?),
    };
    let Some(data_dir) = args
        .data_dir
        .clone()
        .or_else(|| temp.as_ref().map(|t| t.path().to_owned()))
    else {
        bail!("no data dir");
    };
    let cluster = Cluster::open(&data_dir, None).await?;
    let Cluster::Embedded(broker) = &cluster else {
        bail!("agents run on the embedded broker");
    };
    let config = StreamsConfig::new(APPLICATION_ID)
        .with_state_dir(data_dir.join("state"))
        .with_commit_interval_ms(100);

    // app = faust.App('faust.stream', ...)
    let mut app = App::new(config)
        .with_broker(broker.clone())
        .with_topic_partitions(PARTITIONS);
    // topic = app.topic('yellow_taxi_ride.json', value_type=TaxiRide)
    let topic = app.topic::<String, TaxiRide>(RIDES_TOPIC, Serdes::string(), Serdes::json())?;
    // vendor_rides = app.Table('vendor_rides', default=int)
    let vendor_rides = app.table::<String, i64>("vendor_rides")?.default(|| 0);

    // @app.agent(topic) async def print_rides(rides): async for ride in rides: print(ride)
    let quiet = args.quiet;
    app.agent("print_rides", &topic, move |rides| async move {
        let mut rides = Box::pin(rides.values());
        while let Some(ride) = rides.next().await {
            let ride = ride?;
            if !quiet {
                println!(
                    "ride of vendor {}: {} passenger(s), {:.1} miles, ${:.2}, picked up {}",
                    ride.vendor_id,
                    ride.passenger_count,
                    ride.trip_distance,
                    ride.total_amount,
                    ride.tpep_pickup_datetime
                );
            }
        }
        Ok(())
    })?
    .describe("prints every ride");

    // @app.agent(topic) async def process(rides):
    //     async for ride in rides.group_by(TaxiRide.vendorId):
    //         vendor_rides[ride.vendorId] += 1
    let table = vendor_rides.clone();
    app.agent("count_rides", &topic, move |rides| {
        let vendor_rides = table.clone();
        async move {
            let mut rides = rides.group_by(
                |ride| {
                    ride.value
                        .as_ref()
                        .map(|r| r.vendor_id.clone())
                        .unwrap_or_default()
                },
                "vendor",
            );
            while let Some(ride) = rides.next().await {
                if let Some(vendor) = ride?.key {
                    vendor_rides.update(&vendor, |n| n + 1).await?;
                }
            }
            Ok(())
        }
    })?
    .describe("counts the rides of each vendor in vendor_rides");

    if !args.command.is_empty() {
        let command = std::iter::once("agents_taxi".to_owned()).chain(args.command.clone());
        let result = app.run_command(command).await;
        cluster.close().await?;
        return Ok(result?);
    }

    cluster.ensure_topic(RIDES_TOPIC, PARTITIONS).await?;
    let rides: Vec<TaxiRide> = (0..args.rides).map(ride).collect();
    let json: Vec<Vec<u8>> = rides
        .iter()
        .map(serde_json::to_vec)
        .collect::<Result<_, _>>()?;
    cluster
        .load_input(RIDES_TOPIC, json.len(), |i| {
            ProducerRecord::new(RIDES_TOPIC, json[i].clone()).key(format!("ride-{i}").into_bytes())
        })
        .await?;

    let running = app.start().await?;
    let topics = running.input_topics().to_vec();
    let exit_when_idle = temp.is_some();
    let finished = if exit_when_idle {
        tokio::select! {
            idle = cluster.wait_until_idle(running.streams_app(), APPLICATION_ID, &topics, Some(Duration::from_secs(300)), |_| {}) => idle,
            stopped = running.wait() => stopped.map_err(anyhow::Error::from),
        }
    } else {
        outln!("running; Ctrl-C to stop")?;
        tokio::select! {
            stopped = running.wait() => stopped.map_err(anyhow::Error::from),
            _ = tokio::signal::ctrl_c() => Ok(()),
        }
    };
    let table: BTreeMap<String, i64> = running.table_entries(&vendor_rides)?.into_iter().collect();
    let stopped = running.stop().await;
    finished?;
    stopped?;

    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    for ride in &rides {
        *expected.entry(ride.vendor_id.clone()).or_default() += 1;
    }
    outln!("vendor_rides:")?;
    for (vendor, count) in &table {
        outln!("  vendor {vendor}: {count} rides")?;
    }
    if exit_when_idle {
        if table == expected {
            outln!("the table matches a direct count of the rides")?;
        } else {
            bail!("the table {table:?} does not match a direct count {expected:?}");
        }
    }
    cluster.close().await?;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    examples::init_tracing();
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) if !e.use_stderr() => {
            print!("{e}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprint!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if examples::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
