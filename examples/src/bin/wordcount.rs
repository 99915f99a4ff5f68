//! Word count, end to end on the embedded broker or on a Kafka cluster:
//! lines go into `text-lines`, the DSL topology of
//! [`examples::word_count_topology`] counts the words, and each new count
//! goes to `word-counts`.
//!
//! ```text
//! cargo run --release -p examples --bin wordcount
//! cargo run --release -p examples --bin wordcount -- --input book.txt --threads 2 --exit-when-idle
//! cargo run --release -p examples --bin wordcount -- --bootstrap-server localhost:9092
//! cargo run --release -p examples --bin wordcount -- --http 127.0.0.1:8080
//! ```
//!
//! With no `--data-dir` the broker and the state stores live in a temporary
//! dir removed at exit, and the program exits once every line is processed
//! and committed. With `--data-dir` it runs until Ctrl-C (or SIGTERM)
//! unless `--exit-when-idle` is given. Without `--input` it produces a
//! bundled text of 100,000 lines first. The lines are loaded with
//! [`examples::cluster::Cluster::load_input`]: line `i` goes to partition
//! `i` modulo the partition count, and a run finds what `text-lines`
//! already holds and produces only the rest, so a run killed at any moment,
//! while loading or later, and started again loads each line exactly once.
//! A topic holds one input: a different file is refused. It ends by
//! printing the ten most frequent words of its stores and the throughput.
//!
//! With `--bootstrap-server HOST:PORT` it runs on that Kafka cluster
//! (Apache Kafka, or `streams serve`) instead: the topics are created there,
//! the input loaded there, and the application runs there through
//! [`streams_core::StreamsApp::connect`]; only the state stores live under
//! the data dir. Several processes, each with its own `--data-dir`, form
//! one group (the application id) and share the work: one loads the input,
//! the others take `--no-load`.
//!
//! With `--http HOST:PORT` it serves interactive queries over HTTP there
//! ([`streams_http::HttpServer`], the app's `application.server`): `curl
//! http://127.0.0.1:8080/stores/word-counts/keys/the`. Several processes,
//! each with its own `--http`, answer every key through any of them.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use broker_embedded::ProducerRecord;
use clap::{Parser, ValueEnum};
use examples::cluster::Cluster;
use examples::kafka_cluster::parse_bootstrap_servers;
use examples::outln;
use examples::{
    peak_memory_kib, physical_source_topics, word_count_topology, words, GroupProgress, InputLoad,
    TEXT_LINES_TOPIC, WORD_COUNTS_STORE, WORD_COUNTS_TOPIC,
};
use indicatif::{ProgressBar, ProgressStyle};
use streams_core::{AppState, StoreBackend, StreamsApp, StreamsConfig, StreamsError};
use streams_dsl::ValueAndTimestamp;
use streams_http::HttpServer;

/// The application id, hence the consumer group and the prefix of the
/// internal topics (unless `--config application.id=...` says otherwise).
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

/// Counts the words of a text with a streams application, on the embedded
/// broker or on a Kafka cluster.
#[derive(Debug, Parser)]
#[command(name = "wordcount", version, max_term_width = 100)]
struct Args {
    /// The state dir (`<DIR>/state`) and, without --bootstrap-server, the
    /// embedded broker's data dir (`<DIR>/broker`); default: a temporary dir
    /// removed at exit. Each process of a group needs its own.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// A Kafka cluster to run on instead of the embedded broker: HOST:PORT
    /// of one of its brokers, or several separated by commas (as Kafka's
    /// tools and `streams --bootstrap-server` take it). The topics are
    /// created there if missing, the input is loaded there, and the
    /// application runs there (`bootstrap.servers`); only the state stores
    /// live under --data-dir.
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_bootstrap_servers)]
    bootstrap_server: Option<String>,
    /// Load the lines of FILE into `text-lines` first (default: a bundled
    /// text of 100,000 lines); a run over a topic that holds some or all
    /// of them produces only the rest.
    #[arg(long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// Load no input: count what `text-lines` holds and gets. For the
    /// processes of a group that share a Kafka cluster with the one that
    /// loads the input (only one process may load it at a time).
    #[arg(long, conflicts_with = "input")]
    no_load: bool,
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
    /// Exit once every input record is processed and committed by the group
    /// (always so without `--data-dir`); otherwise run until Ctrl-C or
    /// SIGTERM, then close cleanly.
    #[arg(long)]
    exit_when_idle: bool,
    /// A streams setting by its Kafka Streams name, e.g.
    /// `consumer.session.timeout.ms=6000` or
    /// `producer.transaction.timeout.ms=5000`; repeatable, applied after the
    /// flags above. Not `bootstrap.servers` nor `state.dir`: those are
    /// --bootstrap-server and --data-dir.
    #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_config)]
    configs: Vec<(String, String)>,
    /// Serve interactive queries over HTTP on HOST:PORT (the app's
    /// `application.server`), e.g. `127.0.0.1:8080`: `GET /stores`,
    /// `GET /stores/word-counts/keys/the`, ... (see docs/operations.md).
    /// Without --data-dir the run then stays up after the input is counted,
    /// until Ctrl-C, unless --exit-when-idle is given.
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_http_address)]
    http: Option<String>,
}

/// Checks an `--http HOST:PORT`.
fn parse_http_address(s: &str) -> Result<String, String> {
    streams_core::query::HostInfo::parse(s)
        .map(|_| s.to_owned())
        .map_err(|e| e.to_string())
}

/// Parses a `--config KEY=VALUE`.
fn parse_config(s: &str) -> Result<(String, String), String> {
    let (key, value) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not KEY=VALUE"))?;
    let key = key.trim();
    if key.is_empty() {
        return Err(format!("{s:?} has no key"));
    }
    if matches!(key, "bootstrap.servers" | "state.dir") {
        let flag = if key == "state.dir" {
            "--data-dir"
        } else {
            "--bootstrap-server"
        };
        return Err(format!("{key} is set with {flag}"));
    }
    Ok((key.to_owned(), value.trim().to_owned()))
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
    // From the start: a signal while the input loads or the app starts ends the run
    // cleanly once the app is up, instead of killing the process.
    let mut interrupts = Interrupts::listen()?;
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
    // A temporary run stops once the input is counted, unless it serves
    // queries.
    let exit_when_idle = args.exit_when_idle || (temp.is_some() && args.http.is_none());

    let lines = match (&args.input, args.no_load) {
        (_, true) => None,
        (Some(path), false) => Some(read_lines(path)?),
        (None, false) => Some(examples::bundled_text()),
    };

    let cluster = Cluster::open(&data_dir, args.bootstrap_server.as_deref()).await?;
    let result = count(
        &args,
        &cluster,
        &data_dir,
        lines,
        exit_when_idle,
        &mut interrupts,
    )
    .await;
    let closed = cluster.close().await;
    result.and(closed)
}

/// Loads `lines` into `text-lines`, which has `partitions` partitions, and
/// says what it did.
async fn load(cluster: &Cluster, lines: &[String], partitions: u32) -> anyhow::Result<InputLoad> {
    let word_total: u64 = lines.iter().map(|l| words(l).len() as u64).sum();
    let started = Instant::now();
    let load = cluster
        .load_input(TEXT_LINES_TOPIC, lines.len(), |i| {
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
    Ok(load)
}

async fn count(
    args: &Args,
    cluster: &Cluster,
    data_dir: &Path,
    lines: Option<Vec<String>>,
    exit_when_idle: bool,
    interrupts: &mut Interrupts,
) -> anyhow::Result<()> {
    let partitions = cluster.ensure_topic(TEXT_LINES_TOPIC, 3).await?;
    cluster.ensure_topic(WORD_COUNTS_TOPIC, partitions).await?;
    if let Cluster::Kafka(kafka) = cluster {
        outln!("running on the Kafka cluster at {}", kafka.servers())?;
    }
    // The input is dropped once loaded: the run holds none of it.
    let (loaded, input_words) = match lines {
        Some(lines) => {
            let load = load(cluster, &lines, partitions).await?;
            let words: u64 = lines.iter().map(|l| words(l).len() as u64).sum();
            (Some(load), Some(words))
        }
        None => {
            outln!(
                "loading no input (--no-load): counting what {TEXT_LINES_TOPIC} holds and gets"
            )?;
            (None, None)
        }
    };

    let topology =
        word_count_topology(args.store.map(Store::backend)).context("cannot build the topology")?;
    let state_dir = data_dir.join("state");
    let threads = args.threads.to_string();
    let commit_interval = args.commit_interval_ms.to_string();
    let state_dir_text = state_dir.to_string_lossy();
    let flags = [
        ("application.id", APPLICATION_ID),
        ("num.stream.threads", threads.as_str()),
        ("processing.guarantee", args.guarantee.as_config()),
        ("commit.interval.ms", commit_interval.as_str()),
        ("state.dir", &*state_dir_text),
    ];
    let http = args
        .http
        .as_deref()
        .map(|address| ("application.server", address));
    let config = StreamsConfig::from_pairs(
        flags
            .into_iter()
            .chain(http)
            .chain(args.configs.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
    )
    .context("invalid configuration")?;
    let application_id = config.application_id().to_owned();
    let sources = physical_source_topics(&topology, &application_id);
    let text_lines = [TEXT_LINES_TOPIC.to_owned()];

    let mut app = cluster.app(topology, config)?;
    let start_progress = cluster.group_progress(&application_id, &text_lines).await?;
    let already = start_progress.committed;
    let started = Instant::now();
    match app.start().await {
        Ok(()) => {}
        Err(StreamsError::Unsupported { feature }) => bail!(
            "{feature} is not supported by the streams runtime yet; use --guarantee at_least_once"
        ),
        Err(e) => return Err(e).context("cannot start the streams application"),
    }
    let http = match &args.http {
        Some(_) => {
            let server = HttpServer::start(&app)
                .await
                .context("cannot serve interactive queries over HTTP")?;
            eprintln!(
                "serving interactive queries on http://{}/stores (e.g. /stores/{WORD_COUNTS_STORE}/keys/the)",
                server.local_addr()
            );
            Some(server)
        }
        None => None,
    };

    let total_in_topic = already
        + cluster
            .group_progress(&application_id, &text_lines)
            .await?
            .remaining;
    let mut progress = Progress::new(total_in_topic);
    let lines_done = |p: &GroupProgress| {
        p.committed_per_topic
            .get(TEXT_LINES_TOPIC)
            .copied()
            .unwrap_or(0)
    };
    let mut done = already;
    let on_progress = |p: &GroupProgress| {
        done = lines_done(p);
        progress.update(done, p.remaining);
    };
    let outcome = if exit_when_idle {
        tokio::select! {
            waited = cluster.wait_until_idle(&app, &application_id, &sources, None, on_progress) => waited,
            signal = interrupts.recv() => signal.map(|()| eprintln!("interrupted: stopping before the input is processed")),
        }
    } else {
        eprintln!("running until Ctrl-C or SIGTERM");
        tokio::select! {
            failed = watch(&app, cluster, &application_id, &sources, on_progress) => Err(failed),
            signal = interrupts.recv() => signal,
        }
    };
    let elapsed = started.elapsed();
    progress.finish();
    if let Some(http) = http {
        http.shutdown().await;
    }
    if let Err(e) = outcome {
        // `close` reports the same failure; the first cause is the clearer.
        drop(app.close().await);
        return Err(e);
    }
    let processed = match cluster.group_progress(&application_id, &text_lines).await {
        Ok(progress) => lines_done(&progress),
        // The last answer will do.
        Err(_) => done,
    }
    .saturating_sub(already);

    let store = app
        .store::<String, ValueAndTimestamp<i64>>(WORD_COUNTS_STORE)
        .context("cannot query the word-counts store")?;
    // The top ten, kept as the store is read: a count of millions of
    // distinct words is never held whole here.
    let mut distinct = 0u64;
    let mut top: Vec<(String, i64)> = Vec::with_capacity(11);
    store
        .for_each(|word, count| {
            distinct += 1;
            let entry = (word, count.value);
            let rank = top.partition_point(|t| by_count(t, &entry).is_lt());
            if rank < 10 {
                top.insert(rank, entry);
                top.truncate(10);
            }
        })
        .context("cannot read the word-counts store")?;
    app.close()
        .await
        .context("the streams application did not close cleanly")?;

    let seconds = elapsed.as_secs_f64().max(1e-9);
    let by = match cluster {
        Cluster::Embedded(_) => String::new(),
        // Other processes of the group may have taken part.
        Cluster::Kafka(_) => format!(" (the group {application_id})"),
    };
    let words_per_second = match (input_words, loaded) {
        // When this run loaded the whole input and the group had processed
        // none of it before: the words of that input. Otherwise lines/s is
        // the only figure.
        (Some(input_words), Some(load)) if load.held == 0 && already == 0 => {
            format!(", {:.0} words/s", input_words as f64 / seconds)
        }
        _ => String::new(),
    };
    outln!(
        "processed {processed} lines{by} in {seconds:.2} s with {} stream thread(s): {:.0} lines/s{words_per_second}",
        args.threads,
        processed as f64 / seconds,
    )?;
    outln!("{distinct} distinct words; top 10:")?;
    for (rank, (word, count)) in top.iter().enumerate() {
        outln!("{:>3}. {word:<16} {count:>9}", rank + 1)?;
    }
    if let Some(kib) = peak_memory_kib() {
        outln!("peak resident memory: {:.1} MiB", kib as f64 / 1024.0)?;
    }
    Ok(())
}

/// The top ten's order: higher counts first, then words in order.
fn by_count(a: &(String, i64), b: &(String, i64)) -> std::cmp::Ordering {
    b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0))
}

/// Reports the group's progress while the application runs; returns the
/// application's failure, if it fails.
async fn watch(
    app: &StreamsApp,
    cluster: &Cluster,
    application_id: &str,
    sources: &[String],
    mut on_progress: impl FnMut(&GroupProgress),
) -> anyhow::Error {
    loop {
        if app.state() == AppState::Error {
            return anyhow::anyhow!(
                "the streams application failed: {}",
                app.error()
                    .unwrap_or_else(|| "no cause recorded".to_owned())
            );
        }
        // Progress is for the eye: a failed question (a busy group coordinator) is only
        // logged, the counting goes on.
        match cluster.group_progress(application_id, sources).await {
            Ok(progress) => on_progress(&progress),
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "cannot read the group's progress"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Ctrl-C (SIGINT) and SIGTERM, listened for from the start of the run:
/// they end it cleanly (the application closes, committing what it has
/// processed) rather than kill the process.
struct Interrupts {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Interrupts {
    fn listen() -> anyhow::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Self {
                interrupt: signal(SignalKind::interrupt()).context("cannot listen for Ctrl-C")?,
                terminate: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// Returns at the first signal (at once for one that came before).
    async fn recv(&mut self) -> anyhow::Result<()> {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
        #[cfg(not(unix))]
        tokio::signal::ctrl_c()
            .await
            .context("cannot listen for Ctrl-C")?;
        Ok(())
    }
}
