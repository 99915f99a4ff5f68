//! Word count, end to end on the embedded broker: lines go into
//! `text-lines`, the DSL topology of [`examples::word_count_topology`]
//! counts the words, and each new count goes to `word-counts`.
//!
//! ```text
//! cargo run --release -p examples --bin wordcount
//! cargo run --release -p examples --bin wordcount -- --input book.txt --threads 2 --exit-when-idle
//! ```
//!
//! With no `--data-dir` the broker and the state stores live in a temporary
//! dir removed at exit, and the program exits once every line is processed
//! and committed. With `--data-dir` it runs until Ctrl-C unless
//! `--exit-when-idle` is given. Without `--input` it produces a bundled
//! text of 100,000 lines first. The lines are loaded with
//! [`examples::load_input`]: line `i` goes to partition `i` modulo the
//! partition count, and a run finds what `text-lines` already holds and
//! produces only the rest, so a run killed at any moment, while loading or
//! later, and started again over the same data dir loads each line exactly
//! once. A data dir holds one input: a different file is refused. It ends
//! by printing the ten most frequent words and the throughput.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use broker_embedded::{Broker, BrokerConfig, ProducerRecord};
use clap::{Parser, ValueEnum};
use examples::outln;
use examples::{
    ensure_topic, load_input, physical_source_topics, wait_until_idle, word_count_topology, words,
    GroupProgress, TEXT_LINES_TOPIC, WORD_COUNTS_STORE, WORD_COUNTS_TOPIC,
};
use indicatif::{ProgressBar, ProgressStyle};
use streams_core::{AppState, StoreBackend, StreamsApp, StreamsConfig, StreamsError};
use streams_dsl::ValueAndTimestamp;

/// The application id, hence the consumer group and the prefix of the
/// internal topics.
const APPLICATION_ID: &str = "wordcount";
/// Line `i` of the input has timestamp `FIRST_TIMESTAMP + i + 1`.
const FIRST_TIMESTAMP: i64 = 1_700_000_000_000;

/// `processing.guarantee`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
enum Guarantee {
    /// `at_least_once`.
    AtLeastOnce,
    /// `exactly_once_v2`.
    ExactlyOnceV2,
}

impl Guarantee {
    fn as_config(self) -> &'static str {
        match self {
            Self::AtLeastOnce => "at_least_once",
            Self::ExactlyOnceV2 => "exactly_once_v2",
        }
    }
}

/// The engine of the `word-counts` store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
enum Store {
    /// In memory, restored from the changelog at each start.
    InMemory,
    /// `sled`, on disk under the state dir.
    Sled,
    /// `redb`, on disk under the state dir.
    Redb,
}

impl Store {
    fn backend(self) -> StoreBackend {
        match self {
            Self::InMemory => StoreBackend::InMemory,
            Self::Sled => StoreBackend::Sled,
            Self::Redb => StoreBackend::Redb,
        }
    }
}

/// Counts the words of a text with a streams application on the embedded
/// broker.
#[derive(Debug, Parser)]
#[command(name = "wordcount", version)]
struct Args {
    /// The broker's data dir (`<DIR>/broker`) and the state dir
    /// (`<DIR>/state`); default: a temporary dir removed at exit.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Load the lines of FILE into `text-lines` first (default: a bundled
    /// text of 100,000 lines); a run over a data dir that holds some or all
    /// of them produces only the rest.
    #[arg(long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// `num.stream.threads`.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    threads: u32,
    /// `processing.guarantee`.
    #[arg(long, value_enum, default_value_t = Guarantee::AtLeastOnce)]
    guarantee: Guarantee,
    /// `commit.interval.ms`: how often offsets are committed (and counts
    /// sent downstream, the store's cache flushed).
    #[arg(long, value_name = "MS", default_value_t = 200)]
    commit_interval_ms: u64,
    /// The engine of the `word-counts` store (default: the runtime's
    /// default, redb).
    #[arg(long, value_enum, value_name = "ENGINE")]
    store: Option<Store>,
    /// Exit once every input record is processed and committed (always so
    /// without `--data-dir`).
    #[arg(long)]
    exit_when_idle: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    examples::init_tracing();
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) if !e.use_stderr() => {
            // --help, --version.
            print!("{e}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // One line: clap's message and its hints, without the blank lines.
            let rendered = e.to_string();
            let message = rendered
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with("For more information"))
                .collect::<Vec<_>>()
                .join(" ");
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
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

/// Reads the lines of `path`.
fn read_lines(path: &Path) -> anyhow::Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(text.lines().map(str::to_owned).collect())
}

/// Shows the number of lines processed: a progress bar on a terminal,
/// a plain line every second otherwise.
enum Progress {
    Bar(ProgressBar),
    Plain { total: u64, last: Instant },
}

impl Progress {
    fn new(total: u64) -> Self {
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(total);
            let style = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} lines, {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            Self::Bar(bar)
        } else {
            Self::Plain {
                total,
                last: Instant::now(),
            }
        }
    }

    fn update(&mut self, processed: u64, pending: u64) {
        match self {
            Self::Bar(bar) => {
                bar.set_position(processed);
                bar.set_message(format!("{pending} records pending"));
            }
            Self::Plain { total, last } => {
                if last.elapsed() >= Duration::from_secs(1) {
                    eprintln!("processed {processed}/{total} lines, {pending} records pending");
                    *last = Instant::now();
                }
            }
        }
    }

    fn finish(&self) {
        if let Self::Bar(bar) = self {
            bar.finish();
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
    let exit_when_idle = args.exit_when_idle || temp.is_some();

    let lines = match &args.input {
        Some(path) => read_lines(path)?,
        None => examples::bundled_text(),
    };
    let word_total: u64 = lines.iter().map(|l| words(l).len() as u64).sum();

    let broker_dir = data_dir.join("broker");
    let broker = Broker::open(&broker_dir, BrokerConfig::default())
        .await
        .with_context(|| format!("cannot open the broker in {}", broker_dir.display()))?;
    let result = count(
        &args,
        &broker,
        &data_dir,
        &lines,
        word_total,
        exit_when_idle,
    )
    .await;
    let closed = broker.close().await.context("cannot close the broker");
    result.and(closed)
}

async fn count(
    args: &Args,
    broker: &Broker,
    data_dir: &Path,
    lines: &[String],
    word_total: u64,
    exit_when_idle: bool,
) -> anyhow::Result<()> {
    let partitions = ensure_topic(broker, TEXT_LINES_TOPIC, 3).await?;
    ensure_topic(broker, WORD_COUNTS_TOPIC, partitions).await?;

    let started = Instant::now();
    let load = load_input(broker, TEXT_LINES_TOPIC, lines.len(), |i| {
        ProducerRecord::new(TEXT_LINES_TOPIC, lines[i].clone().into_bytes())
            .timestamp(FIRST_TIMESTAMP + i as i64 + 1)
    })
    .await?;
    let seconds = started.elapsed().as_secs_f64();
    if load.produced == 0 {
        outln!(
            "{TEXT_LINES_TOPIC} already holds the {} lines of the input: nothing produced",
            lines.len()
        )?;
    } else if load.held == 0 {
        outln!(
            "produced {} lines ({word_total} words) to {TEXT_LINES_TOPIC} ({partitions} partitions) in {seconds:.2} s",
            lines.len(),
        )?;
    } else {
        outln!(
            "produced the last {} of {} lines to {TEXT_LINES_TOPIC} ({partitions} partitions) in {seconds:.2} s; an interrupted load had produced {}",
            load.produced,
            lines.len(),
            load.held
        )?;
    }

    let topology =
        word_count_topology(args.store.map(Store::backend)).context("cannot build the topology")?;
    let sources = physical_source_topics(&topology, APPLICATION_ID);
    let state_dir = data_dir.join("state");
    let threads = args.threads.to_string();
    let commit_interval = args.commit_interval_ms.to_string();
    let state_dir_text = state_dir.to_string_lossy();
    let config = StreamsConfig::from_pairs([
        ("application.id", APPLICATION_ID),
        ("num.stream.threads", threads.as_str()),
        ("processing.guarantee", args.guarantee.as_config()),
        ("commit.interval.ms", commit_interval.as_str()),
        ("state.dir", &*state_dir_text),
    ])
    .context("invalid configuration")?;

    let mut app = StreamsApp::new(topology, config, broker.clone());
    let start_progress =
        examples::group_progress(broker, APPLICATION_ID, &[TEXT_LINES_TOPIC.to_owned()]).await?;
    let already = start_progress.committed;
    let started = Instant::now();
    match app.start().await {
        Ok(()) => {}
        Err(StreamsError::Unsupported { feature }) => bail!(
            "{feature} is not supported by the streams runtime yet; use --guarantee at_least_once"
        ),
        Err(e) => return Err(e).context("cannot start the streams application"),
    }

    let total_in_topic = already
        + examples::group_progress(broker, APPLICATION_ID, &[TEXT_LINES_TOPIC.to_owned()])
            .await?
            .remaining;
    let mut progress = Progress::new(total_in_topic);
    let lines_done = |p: &GroupProgress| {
        p.committed_per_topic
            .get(TEXT_LINES_TOPIC)
            .copied()
            .unwrap_or(0)
    };
    let outcome = if exit_when_idle {
        wait_until_idle(&app, broker, APPLICATION_ID, &sources, None, |p| {
            progress.update(lines_done(p), p.remaining);
        })
        .await
    } else {
        eprintln!("running until Ctrl-C");
        run_until_interrupted(&app, broker, &sources, |p| {
            progress.update(lines_done(p), p.remaining);
        })
        .await
    };
    let elapsed = started.elapsed();
    progress.finish();
    if let Err(e) = outcome {
        // `close` reports the same failure; the first cause is the clearer.
        drop(app.close().await);
        return Err(e);
    }
    let processed = lines_done(
        &examples::group_progress(broker, APPLICATION_ID, &[TEXT_LINES_TOPIC.to_owned()]).await?,
    )
    .saturating_sub(already);

    let store = app
        .store::<String, ValueAndTimestamp<i64>>(WORD_COUNTS_STORE)
        .context("cannot query the word-counts store")?;
    let mut counts: Vec<(String, i64)> = store
        .all()
        .context("cannot read the word-counts store")?
        .into_iter()
        .map(|(word, count)| (word, count.value))
        .collect();
    app.close()
        .await
        .context("the streams application did not close cleanly")?;

    let seconds = elapsed.as_secs_f64().max(1e-9);
    outln!(
        "processed {processed} lines in {seconds:.2} s with {} stream thread(s): {:.0} lines/s, {:.0} words/s",
        args.threads,
        processed as f64 / seconds,
        // The words of this run's input; with an earlier backlog in the
        // data dir, lines/s is the exact figure.
        word_total as f64 / seconds,
    )?;
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    outln!("{} distinct words; top 10:", counts.len())?;
    for (rank, (word, count)) in counts.iter().take(10).enumerate() {
        outln!("{:>3}. {word:<16} {count:>9}", rank + 1)?;
    }
    Ok(())
}

/// Reports progress until Ctrl-C; fails if the application fails.
async fn run_until_interrupted(
    app: &StreamsApp,
    broker: &Broker,
    sources: &[String],
    mut on_progress: impl FnMut(&GroupProgress),
) -> anyhow::Result<()> {
    let mut interrupt = std::pin::pin!(tokio::signal::ctrl_c());
    loop {
        if app.state() == AppState::Error {
            bail!(
                "the streams application failed: {}",
                app.error()
                    .unwrap_or_else(|| "no cause recorded".to_owned())
            );
        }
        on_progress(&examples::group_progress(broker, APPLICATION_ID, sources).await?);
        tokio::select! {
            signal = &mut interrupt => {
                signal.context("cannot listen for Ctrl-C")?;
                return Ok(());
            }
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
}
