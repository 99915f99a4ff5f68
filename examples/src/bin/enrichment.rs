//! Order enrichment with every kind of join (see `examples::enrichment`):
//! orders joined with a customers table (stream–table, after a re-key)
//! and a products global table (stream–global table), orders joined with
//! the payments that follow them within five minutes (a windowed
//! stream–stream join), and the latest order per id joined with its
//! customer (a foreign-key table join).
//!
//! ```text
//! cargo run -p examples --bin enrichment
//! cargo run -p examples --bin enrichment -- --orders 200 --guarantee exactly_once_v2
//! cargo run -p examples --bin enrichment -- --bootstrap-server localhost:9092
//! ```
//!
//! It loads a generated shop (20 customers, 8 products, `--orders` orders and
//! their payments) once, runs the topology until every input record is
//! processed and committed, prints each output topic, and compares them with
//! what the orders must give. A run killed and started again over the same
//! `--data-dir` loads nothing twice and goes on where the last one stopped.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context as _};
use broker_embedded::ConsumerRecord;
use clap::{Parser, ValueEnum};
use examples::cluster::Cluster;
use examples::enrichment::{
    enrichment_topology, Dataset, BY_CUSTOMER_TOPIC, CUSTOMERS_TOPIC, ENRICHED_TOPIC, ORDERS_TOPIC,
    PAID_TOPIC, PAYMENTS_TOPIC, PRODUCTS_TOPIC,
};
use examples::kafka_cluster::parse_bootstrap_servers;
use examples::{outln, physical_source_topics};
use streams_core::{ProcessingGuarantee, StreamsConfig};

/// The application id: the consumer group and the prefix of the internal
/// topics.
const APPLICATION_ID: &str = "enrichment";
/// How long the run may take to process its input.
const DEADLINE: Duration = Duration::from_secs(300);

/// `processing.guarantee`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
enum Guarantee {
    /// `at_least_once`.
    AtLeastOnce,
    /// `exactly_once_v2`.
    ExactlyOnceV2,
}

/// Enriches a shop's orders with every kind of join, on the embedded broker
/// or on a Kafka cluster.
#[derive(Debug, Parser)]
#[command(name = "enrichment", version, max_term_width = 100)]
struct Args {
    /// The state dir (`<DIR>/state`) and, without --bootstrap-server, the
    /// embedded broker's data dir (`<DIR>/broker`); default: a temporary dir
    /// removed at exit.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// A Kafka cluster to run on instead of the embedded broker: HOST:PORT
    /// of one of its brokers, or several separated by commas (as Kafka's
    /// tools and `streams --bootstrap-server` take it).
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_bootstrap_servers)]
    bootstrap_server: Option<String>,
    /// How many orders to generate.
    #[arg(long, value_name = "N", default_value_t = 40, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    orders: u32,
    /// `processing.guarantee`.
    #[arg(long, value_enum, default_value_t = Guarantee::AtLeastOnce)]
    guarantee: Guarantee,
    /// `commit.interval.ms`.
    #[arg(long, value_name = "MS", default_value_t = 100)]
    commit_interval_ms: u64,
    /// Print only the summary, not every output record.
    #[arg(long)]
    quiet: bool,
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
    let temp;
    let dir = match &args.data_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the data dir {}", dir.display()))?;
            dir.clone()
        }
        None => {
            temp = tempfile::tempdir().context("cannot create a temporary dir")?;
            temp.path().to_path_buf()
        }
    };
    let cluster = Cluster::open(&dir, args.bootstrap_server.as_deref()).await?;
    let result = enrich(&cluster, &dir, &args).await;
    let closed = cluster.close().await;
    result.and(closed)
}

async fn enrich(cluster: &Cluster, dir: &std::path::Path, args: &Args) -> anyhow::Result<()> {
    // Orders and payments are co-partitioned (the stream–stream join); the
    // customers table has fewer partitions (the re-keyed orders are
    // repartitioned to match, the foreign-key join needs nothing).
    for (topic, partitions) in [
        (ORDERS_TOPIC, 3),
        (PAYMENTS_TOPIC, 3),
        (CUSTOMERS_TOPIC, 2),
        (PRODUCTS_TOPIC, 1),
        (ENRICHED_TOPIC, 1),
        (PAID_TOPIC, 1),
        (BY_CUSTOMER_TOPIC, 1),
    ] {
        cluster.ensure_topic(topic, partitions).await?;
    }
    let data = Dataset::new(args.orders as usize);
    // Tables first: their rows are older than every order.
    for (topic, records) in data.records() {
        let load = cluster
            .load_input(topic, records.len(), |i| records[i].clone())
            .await
            .with_context(|| format!("cannot load {topic}"))?;
        if load.produced > 0 {
            outln!("loaded {} records into {topic}", load.produced)?;
        }
    }

    let topology = enrichment_topology(None).context("cannot build the topology")?;
    let topics = physical_source_topics(&topology, APPLICATION_ID);
    let guarantee = match args.guarantee {
        Guarantee::AtLeastOnce => ProcessingGuarantee::AtLeastOnce,
        Guarantee::ExactlyOnceV2 => ProcessingGuarantee::ExactlyOnceV2,
    };
    // A task whose input partitions are read together (orders and payments)
    // does not run ahead of one whose records are not fetched yet; on a
    // Kafka cluster, where the runtime cannot see that, it waits up to 1 s
    // for an empty input before it processes the others, so that it joins
    // in timestamp order rather than in arrival order (Kafka Streams'
    // advice for joins over inputs loaded at different times).
    let config = StreamsConfig::new(APPLICATION_ID)
        .with_processing_guarantee(guarantee)
        .with_commit_interval_ms(args.commit_interval_ms)
        .with_max_task_idle_ms(1_000)
        .with_state_dir(dir.join("state"));
    let mut app = cluster.app(topology, config)?;
    app.start()
        .await
        .context("cannot start the streams application")?;
    let waited = cluster
        .wait_until_idle(&app, APPLICATION_ID, &topics, Some(DEADLINE), |_| {})
        .await;
    let closed = app
        .close()
        .await
        .context("the streams application did not close cleanly");
    waited?;
    closed?;
    report(cluster, &data, args).await
}

fn text(bytes: Option<&[u8]>) -> anyhow::Result<Option<String>> {
    bytes
        .map(|b| String::from_utf8(b.to_vec()).context("an output record that is not UTF-8"))
        .transpose()
}

async fn read(cluster: &Cluster, topic: &str) -> anyhow::Result<Vec<(String, Option<String>)>> {
    let records: Vec<ConsumerRecord> = cluster.read_committed(topic, DEADLINE).await?;
    records
        .iter()
        .map(|r| {
            Ok((
                text(r.key.as_deref())?.context("an output record without a key")?,
                text(r.value.as_deref())?,
            ))
        })
        .collect()
}

async fn report(cluster: &Cluster, data: &Dataset, args: &Args) -> anyhow::Result<()> {
    let expected = data.expected();
    let enriched = read(cluster, ENRICHED_TOPIC).await?;
    let paid = read(cluster, PAID_TOPIC).await?;
    let by_customer = read(cluster, BY_CUSTOMER_TOPIC).await?;
    if !args.quiet {
        for (title, topic, records) in [
            (
                "orders with customer and product (stream–table, stream–global table)",
                ENRICHED_TOPIC,
                &enriched,
            ),
            (
                "orders paid within 5 minutes (windowed stream–stream)",
                PAID_TOPIC,
                &paid,
            ),
            (
                "latest order per id with its customer (foreign-key table join)",
                BY_CUSTOMER_TOPIC,
                &by_customer,
            ),
        ] {
            outln!("\n{topic}: {title}")?;
            for (key, value) in records {
                outln!("  {key:<6} {}", value.as_deref().unwrap_or("(deleted)"))?;
            }
        }
    }
    let sorted = |records: &[(String, Option<String>)]| {
        let mut rows: Vec<(String, String)> = records
            .iter()
            .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
            .collect();
        rows.sort();
        rows
    };
    let mut table = BTreeMap::new();
    for (key, value) in &by_customer {
        match value {
            Some(v) => table.insert(key.clone(), v.clone()),
            None => table.remove(key),
        };
    }
    let checks = [
        (
            ENRICHED_TOPIC,
            sorted(&enriched) == expected.enriched,
            expected.enriched.len(),
        ),
        (
            PAID_TOPIC,
            sorted(&paid) == expected.paid,
            expected.paid.len(),
        ),
        (
            BY_CUSTOMER_TOPIC,
            table == expected.by_customer,
            expected.by_customer.len(),
        ),
    ];
    outln!()?;
    for (topic, ok, count) in checks {
        outln!(
            "{topic}: {}",
            if ok {
                format!("as expected ({count} results, each once)")
            } else {
                "differs from what the input must give".to_owned()
            }
        )?;
    }
    if checks.iter().any(|(_, ok, _)| !ok) {
        bail!("some results differ from the expected ones (under at_least_once a restart may repeat some)");
    }
    Ok(())
}
