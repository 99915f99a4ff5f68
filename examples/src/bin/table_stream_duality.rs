//! The stream–table duality: a stream of account updates (account →
//! balance, a null balance closing the account) is read as a table with
//! `builder.table`, and the table's changes are read back as a stream with
//! `to_stream`. The table is also joined with a table of account owners
//! (a table–table join), whose result is a table too. Each update is sent
//! on its own; the program waits for the changes it causes and prints,
//! side by side, the update, the table's state (queried from its store),
//! the change emitted and the joined table's change. Exits after the last
//! update.
//!
//! ```text
//! cargo run -p examples --bin table_stream_duality
//! cargo run -p examples --bin table_stream_duality -- --bootstrap-server localhost:9092
//! ```
//!
//! It runs on an embedded broker in a temporary dir, or with
//! `--bootstrap-server` on that Kafka cluster, where the topics are created
//! if missing and the application runs; its state lives in a temporary dir.
//! On a cluster a second run starts from the table the first one left (the
//! table is what the topic holds), so the states it shows differ.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use broker_embedded::{ConsumerRecord, ProducerRecord};
use clap::Parser;
use examples::cluster::Cluster;
use examples::kafka_cluster::parse_bootstrap_servers;
use examples::outln;
use streams_core::{AppState, Serdes, StreamsApp, StreamsConfig, Topology};
use streams_dsl::{Consumed, Materialized, Produced, StreamsBuilder, ValueAndTimestamp};

const UPDATES_TOPIC: &str = "account-updates";
const CHANGES_TOPIC: &str = "balance-changes";
/// Account → owner's name, a table loaded before the updates.
const OWNERS_TOPIC: &str = "account-owners";
/// The balances joined with their owners: the joined table's changes.
const JOINED_TOPIC: &str = "balances-with-owner";
const OWNERS: &[(&str, &str)] = &[
    ("alice", "Alice A."),
    ("bob", "Bob B."),
    ("carol", "Carol C."),
];
const BALANCES_STORE: &str = "balances";
const APPLICATION_ID: &str = "table-stream-duality";
/// How long one update may take to come out as a change.
const STEP_DEADLINE: Duration = Duration::from_secs(30);

/// The updates, in order: `None` is a tombstone (the account is closed).
const UPDATES: &[(&str, Option<i64>)] = &[
    ("alice", Some(100)),
    ("bob", Some(50)),
    ("alice", Some(80)),
    ("carol", Some(300)),
    ("bob", Some(75)),
    ("alice", None),
    ("carol", Some(250)),
    ("alice", Some(10)),
];

/// Shows the stream–table duality on a table of account balances.
#[derive(Debug, Parser)]
#[command(name = "table_stream_duality")]
struct Args {
    /// A Kafka cluster to run on instead of an embedded broker: HOST:PORT
    /// of one of its brokers, or several separated by commas (as Kafka's
    /// tools and `streams --bootstrap-server` take it). The topics are
    /// created there if missing and the application runs there; its state
    /// lives in a temporary dir.
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_bootstrap_servers)]
    bootstrap_server: Option<String>,
}

fn topology() -> anyhow::Result<Topology> {
    let builder = StreamsBuilder::new();
    let balances = builder.table(
        UPDATES_TOPIC,
        Consumed::with(Serdes::string(), Serdes::i64()),
        // Without a cache every update is a change downstream at once.
        Materialized::as_(BALANCES_STORE).with_caching_disabled(),
    );
    balances.to_stream().to(
        CHANGES_TOPIC,
        Produced::with(Serdes::string(), Serdes::i64()),
    );
    let owners = builder.table(
        OWNERS_TOPIC,
        Consumed::with(Serdes::string(), Serdes::string()),
        Materialized::as_("owners").with_caching_disabled(),
    );
    balances
        .join(
            &owners,
            |balance, owner| format!("{owner} has {balance}"),
            Materialized::new(),
        )
        .to_stream()
        .to(
            JOINED_TOPIC,
            Produced::with(Serdes::string(), Serdes::string()),
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
    let result = duality(&cluster, dir.path()).await;
    let closed = cluster.close().await;
    result.and(closed)
}

fn show_balance(balance: Option<i64>) -> String {
    balance.map_or_else(|| "null".to_owned(), |b| b.to_string())
}

fn decode(record: &ConsumerRecord) -> anyhow::Result<(String, Option<i64>)> {
    let key = record
        .key
        .as_deref()
        .context("a change without a key")
        .and_then(|k| String::from_utf8(k.to_vec()).context("a key that is not UTF-8"))?;
    let value = match record.value.as_deref() {
        None => None,
        Some(bytes) => Some(i64::from_be_bytes(
            bytes.try_into().context("a balance that is not 8 bytes")?,
        )),
    };
    Ok((key, value))
}

async fn duality(cluster: &Cluster, dir: &std::path::Path) -> anyhow::Result<()> {
    // One partition: the changes come out in the order of the updates.
    cluster.ensure_topic(UPDATES_TOPIC, 1).await?;
    cluster.ensure_topic(CHANGES_TOPIC, 1).await?;
    cluster.ensure_topic(OWNERS_TOPIC, 1).await?;
    cluster.ensure_topic(JOINED_TOPIC, 1).await?;
    // The owners are there before any update (and older): each update
    // finds its owner.
    let owners: Vec<ProducerRecord> = OWNERS
        .iter()
        .map(|(account, owner)| {
            ProducerRecord::new(OWNERS_TOPIC, owner.as_bytes().to_vec())
                .key(account.as_bytes().to_vec())
                .timestamp(1_699_999_999_000)
        })
        .collect();
    cluster
        .load_input(OWNERS_TOPIC, owners.len(), |i| owners[i].clone())
        .await
        .context("cannot load the owners")?;
    let config = StreamsConfig::new(APPLICATION_ID)
        .with_commit_interval_ms(100)
        .with_state_dir(dir.join("state"));
    let mut app = cluster.app(topology().context("cannot build the topology")?, config)?;
    app.start()
        .await
        .context("cannot start the streams application")?;
    let result = steps(&app, cluster).await;
    let closed = app
        .close()
        .await
        .context("the streams application did not close cleanly");
    result.and(closed)
}

async fn steps(app: &StreamsApp, cluster: &Cluster) -> anyhow::Result<()> {
    // Wait for the app to own its task before the first update.
    cluster
        .wait_until_idle(
            app,
            APPLICATION_ID,
            &[UPDATES_TOPIC.to_owned(), OWNERS_TOPIC.to_owned()],
            Some(STEP_DEADLINE),
            |_| {},
        )
        .await?;
    let mut changes = cluster
        .reader_from_end(CHANGES_TOPIC)
        .await
        .context("cannot read the changes topic")?;
    let mut joined = cluster
        .reader_from_end(JOINED_TOPIC)
        .await
        .context("cannot read the joined topic")?;
    let store = app
        .store::<String, ValueAndTimestamp<i64>>(BALANCES_STORE)
        .context("cannot query the balances store")?;

    outln!(
        "{:<22} | {:<36} | {:<20} | joined with the owners",
        "input update",
        "table state",
        "change emitted"
    )?;
    outln!("{:-<22}-+-{:-<36}-+-{:-<20}-+-{:-<24}", "", "", "", "")?;
    for (step, (account, balance)) in UPDATES.iter().enumerate() {
        let record = ProducerRecord::new(
            UPDATES_TOPIC,
            balance
                .map(|b| b.to_be_bytes().to_vec())
                .unwrap_or_default(),
        )
        .key(account.as_bytes().to_vec())
        .timestamp(1_700_000_000_000 + step as i64);
        let record = if balance.is_none() {
            record.tombstone()
        } else {
            record
        };
        cluster
            .produce(vec![record])
            .await
            .context("cannot send an update")?;

        let deadline = Instant::now() + STEP_DEADLINE;
        let change = loop {
            if app.state() == AppState::Error {
                bail!(
                    "the streams application failed: {}",
                    app.error().unwrap_or_default()
                );
            }
            if Instant::now() > deadline {
                bail!("no change came out for update {account} → {balance:?} within {STEP_DEADLINE:?}");
            }
            let mut polled = changes
                .poll(Duration::from_millis(100))
                .await
                .context("cannot read the changes topic")?;
            if polled.len() > 1 {
                bail!("one update came out as {} changes", polled.len());
            }
            if let Some(record) = polled.pop() {
                break decode(&record)?;
            }
        };
        let joined_change = next_change(app, &mut joined, account).await?;
        let table: BTreeMap<String, i64> = store
            .all()
            .context("cannot read the balances store")?
            .into_iter()
            .map(|(k, v)| (k, v.value))
            .collect();
        let state = table
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join(", ");
        let update = format!("{account} → {}", show_balance(*balance));
        let state = format!("{{{state}}}");
        let emitted = format!("{} → {}", change.0, show_balance(change.1));
        outln!(
            "{update:<22} | {state:<36} | {emitted:<20} | {} → {}",
            joined_change.0,
            joined_change.1.as_deref().unwrap_or("null")
        )?;
    }
    Ok(())
}

/// The next record of the joined table's topic, which `account`'s update
/// causes.
async fn next_change(
    app: &StreamsApp,
    reader: &mut examples::cluster::TopicReader,
    account: &str,
) -> anyhow::Result<(String, Option<String>)> {
    let deadline = Instant::now() + STEP_DEADLINE;
    loop {
        if app.state() == AppState::Error {
            bail!(
                "the streams application failed: {}",
                app.error().unwrap_or_default()
            );
        }
        if Instant::now() > deadline {
            bail!("no joined change came out for an update of {account} within {STEP_DEADLINE:?}");
        }
        let polled = reader
            .poll(Duration::from_millis(100))
            .await
            .context("cannot read the joined topic")?;
        if let Some(record) = polled.into_iter().next() {
            let text = |b: Option<&[u8]>| b.map(|b| String::from_utf8_lossy(b).into_owned());
            let key = text(record.key.as_deref()).context("a joined change without a key")?;
            return Ok((key, text(record.value.as_deref())));
        }
    }
}
