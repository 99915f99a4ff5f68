//! The word count written with Faust-style agents (Faust's own word count
//! example, in Rust): the agent `split` reads lines from `text-lines` and
//! sends each word to `words`, keyed by the word; the agent `count` counts
//! them in the table `word_counts` (default 0) and sends each new count to
//! `word-counts`. It loads a text (the bundled one by default), runs until
//! every line is counted, and prints the most frequent words next to a
//! direct count.
//!
//! ```text
//! cargo run -p examples --bin agents_wordcount
//! cargo run -p examples --bin agents_wordcount -- --data-dir /tmp/wc --guarantee exactly_once_v2
//! cargo run -p examples --bin agents_wordcount -- agents
//! ```
//!
//! After the flags, Faust's commands: `worker` (run the agents on what the
//! topics hold, until Ctrl-C), `agents`, `tables`, `send TOPIC VALUE`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use broker_embedded::ProducerRecord;
use clap::{Parser, ValueEnum};
use examples::agents::word_count_app;
use examples::cluster::Cluster;
use examples::{outln, words};
use streams_core::{ProcessingGuarantee, StreamsConfig};

const APPLICATION_ID: &str = "agents-wordcount";
const TEXT_LINES_TOPIC: &str = examples::TEXT_LINES_TOPIC;
const PARTITIONS: u32 = 3;

/// `processing.guarantee`.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Guarantee {
    /// `at_least_once`.
    #[value(name = "at_least_once")]
    AtLeastOnce,
    /// `exactly_once_v2`.
    #[value(name = "exactly_once_v2")]
    ExactlyOnceV2,
}

/// Counts the words of a text with Faust-style agents on the embedded
/// broker.
#[derive(Debug, Parser)]
#[command(name = "agents_wordcount")]
struct Args {
    /// The state dir (`<DIR>/state`) and the embedded broker's data dir
    /// (`<DIR>/broker`); default: a temporary dir removed at exit.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Load the lines of FILE into `text-lines` first (default: the
    /// bundled text); a run over a topic that holds some or all of them
    /// produces only the rest.
    #[arg(long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// Only the first N lines of the input.
    #[arg(long, value_name = "N")]
    lines: Option<usize>,
    /// `processing.guarantee`.
    #[arg(long, value_enum, default_value_t = Guarantee::AtLeastOnce)]
    guarantee: Guarantee,
    /// `commit.interval.ms`.
    #[arg(long, value_name = "MS", default_value_t = 200)]
    commit_interval_ms: u64,
    /// Exit once every line is counted and committed (always so without
    /// `--data-dir`); otherwise run until Ctrl-C.
    #[arg(long)]
    exit_when_idle: bool,
    /// Faust's commands: `worker`, `agents`, `tables`, `send TOPIC VALUE`.
    #[arg(trailing_var_arg = true, value_name = "COMMAND")]
    command: Vec<String>,
}

fn config(args: &Args, data_dir: &Path) -> StreamsConfig {
    let guarantee = match args.guarantee {
        Guarantee::AtLeastOnce => ProcessingGuarantee::AtLeastOnce,
        Guarantee::ExactlyOnceV2 => ProcessingGuarantee::ExactlyOnceV2,
    };
    StreamsConfig::new(APPLICATION_ID)
        .with_state_dir(data_dir.join("state"))
        .with_processing_guarantee(guarantee)
        .with_commit_interval_ms(args.commit_interval_ms)
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
    let (app, counts) = word_count_app(config(&args, &data_dir), broker.clone(), PARTITIONS, None)?;
    if !args.command.is_empty() {
        let command = std::iter::once("agents_wordcount".to_owned()).chain(args.command.clone());
        let result = app.run_command(command).await;
        cluster.close().await?;
        return Ok(result?);
    }

    let mut lines = match &args.input {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .lines()
            .map(str::to_owned)
            .collect(),
        None => examples::bundled_text(),
    };
    if let Some(n) = args.lines {
        lines.truncate(n);
    }
    cluster.ensure_topic(TEXT_LINES_TOPIC, PARTITIONS).await?;
    let load = cluster
        .load_input(TEXT_LINES_TOPIC, lines.len(), |i| {
            ProducerRecord::new(TEXT_LINES_TOPIC, lines[i].clone().into_bytes())
        })
        .await?;
    outln!(
        "{} lines in {TEXT_LINES_TOPIC} ({} produced now)",
        lines.len(),
        load.produced
    )?;

    let started = Instant::now();
    let running = app.start().await?;
    let topics = running.input_topics().to_vec();
    let exit_when_idle = args.exit_when_idle || temp.is_some();
    let mut last = Instant::now();
    let finished = if exit_when_idle {
        let idle =
            cluster.wait_until_idle(running.streams_app(), APPLICATION_ID, &topics, None, |p| {
                if last.elapsed() >= Duration::from_secs(1) {
                    eprintln!("{} records processed, {} pending", p.committed, p.remaining);
                    last = Instant::now();
                }
            });
        tokio::select! {
            idle = idle => idle,
            stopped = running.wait() => stopped.map_err(anyhow::Error::from),
        }
    } else {
        outln!("running; Ctrl-C to stop")?;
        tokio::select! {
            stopped = running.wait() => stopped.map_err(anyhow::Error::from),
            _ = tokio::signal::ctrl_c() => Ok(()),
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    let table: BTreeMap<String, i64> = running.table_entries(&counts)?.into_iter().collect();
    let stopped = running.stop().await;
    finished?;
    stopped?;

    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    for line in &lines {
        for word in words(line) {
            *expected.entry(word).or_default() += 1;
        }
    }
    let total: i64 = table.values().sum();
    outln!(
        "counted {total} words ({} distinct) in {seconds:.2} s",
        table.len()
    )?;
    let mut top: Vec<(&String, &i64)> = table.iter().collect();
    top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (word, count) in top.into_iter().take(10) {
        outln!("{count:>8}  {word}")?;
    }
    if exit_when_idle {
        let at_least = expected
            .iter()
            .all(|(word, n)| table.get(word).is_some_and(|c| c >= n))
            && table.len() == expected.len();
        if table == expected {
            outln!("the table matches a direct count of the input")?;
        } else if at_least && matches!(args.guarantee, Guarantee::AtLeastOnce) {
            outln!(
                "the table holds at least a direct count of the input (at_least_once counts \
                 again what a crash left uncommitted)"
            )?;
        } else {
            bail!("the table does not match a direct count of the input");
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
