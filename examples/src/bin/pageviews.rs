//! Page views per user: final counts in 1-minute tumbling windows with
//! 10 s of grace (`suppress(until_window_closes)`), and counts in 5-minute
//! windows advancing by 1 minute. It generates a stream of page views with
//! some out of order and some late, runs the application on the embedded
//! broker until every view is processed, then prints the final per-minute
//! counts, the late views the per-minute count dropped (routed to
//! `pageviews-late` with their lateness) and the app's `dropped-records`.
//!
//! ```text
//! cargo run -p examples --bin pageviews
//! cargo run -p examples --bin pageviews -- --events 100000 --data-dir /tmp/pv --guarantee exactly_once_v2
//! ```
//!
//! With `--data-dir` the broker and the state live there. The views are
//! loaded with [`examples::cluster::Cluster::load_input`]: a run finds what
//! `pageviews` already holds and produces only the rest, so a run killed at
//! any moment (while loading too) and started again with the same arguments
//! resumes the same work, each view produced exactly once.
//!
//! With `--bootstrap-server HOST:PORT` it runs on that Kafka cluster
//! instead of the embedded broker: the topics are created and the views
//! loaded there, the application runs there, the outputs are read from
//! there; only the state lives under the data dir.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::Parser;
use examples::cluster::Cluster;
use examples::kafka_cluster::parse_bootstrap_servers;
use examples::windowed::{
    pageview_events, pageview_record, pageviews_topology, LATE_TOPIC, PAGEVIEWS_TOPIC,
    PER_FIVE_MINUTES_TOPIC, PER_MINUTE_TOPIC,
};
use examples::{outln, physical_source_topics};
use streams_core::{Serde as _, Serdes, StreamsConfig};

const APPLICATION_ID: &str = "pageviews";
/// How long reading an output topic to its end may take.
const READ_DEADLINE: Duration = Duration::from_secs(120);

#[derive(Debug, Parser)]
#[command(about = "Page views per user in tumbling and hopping windows, final results only")]
struct Args {
    /// Keep the state (`<DIR>/state`) and, without --bootstrap-server, the
    /// embedded broker (`<DIR>/broker`) in DIR (default: a temporary dir).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// A Kafka cluster to run on instead of the embedded broker: HOST:PORT
    /// of one of its brokers, or several separated by commas (as Kafka's
    /// tools and `streams --bootstrap-server` take it). The topics are
    /// created there if missing, the views loaded there, and the
    /// application runs there; only the state lives under --data-dir.
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_bootstrap_servers)]
    bootstrap_server: Option<String>,
    /// How many page views to generate (plus one that closes the windows).
    #[arg(long, value_name = "N", default_value_t = 400)]
    events: usize,
    /// How many distinct users.
    #[arg(long, value_name = "N", default_value_t = 5)]
    users: usize,
    /// Milliseconds between consecutive views.
    #[arg(long, value_name = "MS", default_value_t = 500)]
    step_ms: i64,
    /// The generator's seed.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// `processing.guarantee`: at_least_once or exactly_once_v2.
    #[arg(long, default_value = "at_least_once")]
    guarantee: String,
    /// `commit.interval.ms`.
    #[arg(long, value_name = "MS", default_value_t = 100)]
    commit_interval_ms: u64,
    /// Leave out the 5-minute hopping count.
    #[arg(long)]
    no_hopping: bool,
    /// Print only the summary line, not every final window and late view.
    #[arg(long)]
    summary_only: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    examples::init_tracing();
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if examples::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
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
    let cluster = Cluster::open(&data_dir, args.bootstrap_server.as_deref()).await?;
    let result = pageviews(&args, &cluster, &data_dir).await;
    let closed = cluster.close().await;
    result.and(closed)
}

async fn pageviews(args: &Args, cluster: &Cluster, data_dir: &Path) -> anyhow::Result<()> {
    // One input partition: the views are processed in the order generated.
    cluster.ensure_topic(PAGEVIEWS_TOPIC, 1).await?;
    cluster.ensure_topic(PER_MINUTE_TOPIC, 1).await?;
    cluster.ensure_topic(PER_FIVE_MINUTES_TOPIC, 1).await?;
    cluster.ensure_topic(LATE_TOPIC, 1).await?;
    let events = pageview_events(args.events, args.users, args.step_ms, args.seed);
    let load = cluster
        .load_input(PAGEVIEWS_TOPIC, events.len(), |i| {
            pageview_record(PAGEVIEWS_TOPIC, &events[i])
        })
        .await?;
    if load.produced == 0 {
        outln!(
            "{PAGEVIEWS_TOPIC} already holds the {} views: nothing produced",
            events.len()
        )?;
    } else if load.held == 0 {
        outln!(
            "produced {} page views of {} users to {PAGEVIEWS_TOPIC}",
            events.len(),
            args.users
        )?;
    } else {
        outln!(
            "produced the last {} of {} page views to {PAGEVIEWS_TOPIC}; an interrupted load had produced {}",
            load.produced,
            events.len(),
            load.held
        )?;
    }

    let topology = pageviews_topology(!args.no_hopping).context("cannot build the topology")?;
    let sources = physical_source_topics(&topology, APPLICATION_ID);
    let state_dir = data_dir.join("state");
    let commit_interval = args.commit_interval_ms.to_string();
    let config = StreamsConfig::from_pairs([
        ("application.id", APPLICATION_ID),
        ("processing.guarantee", args.guarantee.as_str()),
        ("commit.interval.ms", commit_interval.as_str()),
        ("state.dir", &*state_dir.to_string_lossy()),
    ])
    .context("invalid configuration")?;
    let mut app = cluster.app(topology, config)?;
    app.start()
        .await
        .context("cannot start the streams application")?;
    if let Err(e) = cluster
        .wait_until_idle(&app, APPLICATION_ID, &sources, None, |_| {})
        .await
    {
        drop(app.close().await);
        return Err(e);
    }
    let dropped = app.dropped_records_metrics();
    app.close()
        .await
        .context("the streams application did not close cleanly")?;

    let windowed = Serdes::time_windowed(Serdes::string(), examples::windowed::MINUTE_MS);
    let finals = cluster
        .read_committed(PER_MINUTE_TOPIC, READ_DEADLINE)
        .await?;
    for record in &finals {
        let key = record.key.as_ref().context("a final count without a key")?;
        let key = windowed.deserialize(PER_MINUTE_TOPIC, key)?;
        let count = record
            .value
            .as_ref()
            .map(|v| Serdes::i64().deserialize(PER_MINUTE_TOPIC, v))
            .transpose()?
            .context("a final count without a value")?;
        if !args.summary_only {
            outln!(
                "final user={} window_start={} window_end={} count={count}",
                key.key,
                key.window.start,
                key.window.end
            )?;
        }
    }
    let late = cluster.read_committed(LATE_TOPIC, READ_DEADLINE).await?;
    for record in &late {
        let text = |b: Option<&bytes::Bytes>| {
            b.map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default()
        };
        let late_by = record
            .headers
            .iter()
            .rev()
            .find(|h| h.key == streams_dsl::LateRecords::LATE_BY_MS_HEADER)
            .map(|h| text(h.value.as_ref()))
            .unwrap_or_default();
        if !args.summary_only {
            outln!(
                "late user={} page={} timestamp={} late_by_ms={late_by}",
                text(record.key.as_ref()),
                text(record.value.as_ref()),
                record.timestamp
            )?;
        }
    }
    let hopping = if args.no_hopping {
        0
    } else {
        cluster
            .read_committed(PER_FIVE_MINUTES_TOPIC, READ_DEADLINE)
            .await?
            .len()
    };
    for metric in &dropped {
        outln!(
            "dropped-records task={} processor={} count={}",
            metric.task,
            metric.processor,
            metric.count
        )?;
    }
    outln!(
        "final_windows={} late_records={} dropped_records={} hopping_updates={hopping}",
        finals.len(),
        late.len(),
        dropped.iter().map(|m| m.count).sum::<u64>()
    )?;
    Ok(())
}
