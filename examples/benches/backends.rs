//! The word count on each backend, and Kafka Streams itself, in one run.
//! Run with `cargo bench -p examples --bench backends`.
//!
//! The word count is [`examples::word_count_topology`] (the store engine is
//! the runtime's default, redb) over the corpus of the `wordcount`
//! benchmark (200,000 generated lines, 3 partitions, line `i` in partition
//! `i mod 3`), with one stream thread and `commit.interval.ms = 100`, under
//! `at_least_once` and under `exactly_once_v2`:
//!
//! - (a) `embedded`: the app on the embedded broker, in one process (as the
//!   `wordcount` benchmark runs it);
//! - (b) `served`: the app on the Kafka backend (librdkafka) against our
//!   broker served over the Kafka protocol (what `streams serve` runs), the
//!   broker in this process, the app in a child process;
//! - (c) `kafka`: the app on the Kafka backend against Apache Kafka (a
//!   single KRaft node on loopback, `examples::apache_kafka`);
//! - (d) `kafka-streams`: Kafka Streams' own word count (Java,
//!   `examples::kafka_streams`) against the same Apache Kafka, with the same
//!   settings (one stream thread, the same commit interval, Kafka Streams'
//!   defaults otherwise: a 10 MB record cache, RocksDB).
//!
//! Every run reads the same input topic with a fresh `application.id`, so
//! it starts from offset 0. Its clock starts when the app is started (our
//! child prints `STARTED` just before `start()`, which creates the internal
//! topics; Kafka Streams prints its first state change, `REBALANCING`, from
//! `start()`) and stops when the group has committed the end of the input
//! and of the repartition topic (polled every 20 ms with
//! `examples::kafka_progress::GroupWatch`; for (a), in process with
//! `wait_until_idle`). Words per second is the corpus's word count over
//! that time. CPU seconds and peak resident memory are the app process's
//! (the JVM's for Kafka Streams) over the same stretch; the broker's CPU
//! seconds are Apache Kafka's JVM for (c) and (d), and this process (the
//! served broker and the progress poller) for (b).
//!
//! A plain `HashMap` count of the same lines, measured in the same run
//! between the runs, is the baseline printed next to each figure. Each
//! case runs [`ROUNDS`] times; its median run is printed at the end, then
//! the two goals: (c) over (d), and (b) over (a), per guarantee. Last, the
//! scale-out: three app processes sharing the work against one, at least
//! once, on both Kafka-protocol brokers.
//!
//! `BACKENDS_BENCH_LINES` and `BACKENDS_BENCH_ROUNDS` shrink a run (to try
//! it); `BACKENDS_BENCH_SKIP_KAFKA=1` leaves out (c) and (d);
//! `BACKENDS_BENCH_CASES=served,kafka` runs only the cases named (no
//! scale-out); `BACKENDS_BENCH_CONFIG=key=value,...` adds settings to our
//! app on the Kafka backend (to try client settings).

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use broker_embedded::{Broker, BrokerConfig};
use examples::apache_kafka::{ApacheKafka, KafkaOptions};
use examples::bench::run_until_idle;
use examples::kafka_progress::{repartition_topics, GroupWatch};
use examples::kafka_streams::{Guarantee, KafkaStreamsApp, KafkaStreamsOptions};
use examples::process::{cpu_seconds, peak_rss_kib};
use examples::{
    corpus, count_words, ensure_topic, physical_source_topics, produce_values, word_count_topology,
    words, TEXT_LINES_TOPIC, WORD_COUNTS_TOPIC,
};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer as _};
use rdkafka::ClientConfig;
use streams_core::{StreamsApp, StreamsConfig};

const LINES: usize = 200_000;
const SEED: u64 = 0x00c0_ffee;
const PARTITIONS: u32 = 3;
const COMMIT_INTERVAL_MS: &str = "100";
const BASELINE_ROUNDS: usize = 5;
/// Runs per case.
const ROUNDS: usize = 3;
const DEADLINE: Duration = Duration::from_secs(600);
const POLL_EVERY: Duration = Duration::from_millis(20);
/// The child's environment variable naming what it runs.
const CHILD_ENV: &str = "BACKENDS_BENCH_CHILD";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn guarantees() -> [Guarantee; 2] {
    [Guarantee::AtLeastOnce, Guarantee::ExactlyOnceV2]
}

fn main() -> anyhow::Result<()> {
    match std::env::var(CHILD_ENV).as_deref() {
        Ok("embedded") => {
            examples::init_tracing();
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()?;
            runtime.block_on(embedded_child())
        }
        Ok("kafka") => {
            examples::init_tracing();
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()?;
            runtime.block_on(kafka_child())
        }
        Ok(other) => bail!("unknown child {other}"),
        Err(_) => parent(),
    }
}

fn child_var(name: &str) -> anyhow::Result<String> {
    std::env::var(name).with_context(|| format!("the child needs {name}"))
}

/// (a): broker, load and app in this process; prints one result line.
async fn embedded_child() -> anyhow::Result<()> {
    let guarantee = child_var("BENCH_GUARANTEE")?;
    let lines = corpus(env_usize("BACKENDS_BENCH_LINES", LINES), SEED);
    let word_total: u64 = lines.iter().map(|l| words(l).len() as u64).sum();
    let base = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(&base)?;
    let dir = tempfile::tempdir_in(&base)?;
    let broker = Broker::open(dir.path().join("broker"), BrokerConfig::default()).await?;
    ensure_topic(&broker, TEXT_LINES_TOPIC, PARTITIONS).await?;
    ensure_topic(&broker, WORD_COUNTS_TOPIC, PARTITIONS).await?;
    produce_values(
        &broker,
        TEXT_LINES_TOPIC,
        &lines,
        first_timestamp(lines.len()),
    )
    .await?;
    drop(lines);
    let application_id = format!("backends-bench-embedded-{guarantee}");
    let topology = word_count_topology(None)?;
    let sources = physical_source_topics(&topology, &application_id);
    let state_dir = dir.path().join("state");
    let config = StreamsConfig::from_pairs([
        ("application.id", application_id.as_str()),
        ("processing.guarantee", guarantee.as_str()),
        ("commit.interval.ms", COMMIT_INTERVAL_MS),
        ("state.dir", &*state_dir.to_string_lossy()),
    ])?;
    let mut app = StreamsApp::new(topology, config, broker.clone());
    let me = std::process::id();
    let cpu_before = cpu_seconds(me)?;
    let seconds = run_until_idle(&mut app, &broker, &application_id, &sources, DEADLINE)
        .await?
        .as_secs_f64();
    let cpu = cpu_seconds(me)? - cpu_before;
    let rss = peak_rss_kib(me)?;
    app.close().await?;
    broker.close().await?;
    println!(
        "RESULT words_per_sec={:.0} seconds={seconds:.3} app_cpu_seconds={cpu:.3} \
         app_peak_rss_mib={:.1}",
        word_total as f64 / seconds,
        rss as f64 / 1024.0
    );
    Ok(())
}

/// (b), (c): the app on the Kafka backend; prints `STARTED`, runs until its
/// stdin closes, then closes the app.
async fn kafka_child() -> anyhow::Result<()> {
    let bootstrap = child_var("BENCH_BOOTSTRAP")?;
    let guarantee = child_var("BENCH_GUARANTEE")?;
    let application_id = child_var("BENCH_APP_ID")?;
    let state_dir = child_var("BENCH_STATE_DIR")?;
    let extra = std::env::var("BACKENDS_BENCH_CONFIG").unwrap_or_default();
    let mut pairs: Vec<(&str, &str)> = vec![
        ("application.id", application_id.as_str()),
        ("bootstrap.servers", bootstrap.as_str()),
        ("processing.guarantee", guarantee.as_str()),
        ("commit.interval.ms", COMMIT_INTERVAL_MS),
        ("state.dir", state_dir.as_str()),
        // A member that leaves at the end of a run leaves at once.
        ("consumer.session.timeout.ms", "10000"),
    ];
    for pair in extra.split(',').filter(|p| !p.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .with_context(|| format!("BACKENDS_BENCH_CONFIG: {pair} is not KEY=VALUE"))?;
        pairs.push((key, value));
    }
    let config = StreamsConfig::from_pairs(pairs)?;
    let mut app = StreamsApp::connect(word_count_topology(None)?, config)?;
    println!("STARTED");
    std::io::stdout().flush()?;
    app.start().await?;
    tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        std::io::stdin().read_to_end(&mut sink)
    })
    .await??;
    app.close().await?;
    Ok(())
}

/// What one run measured.
#[derive(Debug, Clone)]
struct Measure {
    seconds: f64,
    app_cpu_seconds: f64,
    app_peak_rss_mib: f64,
    broker_cpu_seconds: Option<f64>,
}

/// A broker the Kafka-backend runs use: our served broker or Apache Kafka.
struct Target {
    name: &'static str,
    bootstrap: String,
    /// The broker's process (this one for the served broker).
    pid: u32,
}

fn parent() -> anyhow::Result<()> {
    let line_count = env_usize("BACKENDS_BENCH_LINES", LINES);
    let rounds = env_usize("BACKENDS_BENCH_ROUNDS", ROUNDS).max(1);
    let skip_kafka = std::env::var("BACKENDS_BENCH_SKIP_KAFKA").is_ok_and(|v| v == "1");
    let only: Option<Vec<String>> = std::env::var("BACKENDS_BENCH_CASES")
        .ok()
        .map(|v| v.split(',').map(str::to_owned).collect());
    let lines = corpus(line_count, SEED);
    let word_total: u64 = lines.iter().map(|l| words(l).len() as u64).sum();
    println!(
        "corpus lines={line_count} words={word_total} distinct={} partitions={PARTITIONS} \
         threads=1 commit_interval_ms={COMMIT_INTERVAL_MS} rounds={rounds} machine_cpus={}",
        count_words(&lines).len(),
        std::thread::available_parallelism().map_or(0, usize::from),
    );
    let base = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(&base)?;
    let work = tempfile::tempdir_in(&base)?;

    // (b)'s broker, served from this process.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    // As the Apache Kafka fixture: a first member is not held back waiting
    // for others to join.
    let served_broker = runtime.block_on(Broker::open(
        work.path().join("served-broker"),
        BrokerConfig {
            group_initial_rebalance_delay_ms: 0,
            ..BrokerConfig::default()
        },
    ))?;
    let server = runtime.block_on(broker_wire::Server::bind(
        served_broker.clone(),
        broker_wire::WireConfig {
            listen: "127.0.0.1:0".parse()?,
            ..broker_wire::WireConfig::default()
        },
    ))?;
    let served_addr = server.local_addr()?;
    let (stop_server, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = runtime.spawn(server.run(async {
        let _ = server_stopped.await;
    }));
    let mut targets = vec![Target {
        name: "served",
        bootstrap: served_addr.to_string(),
        pid: std::process::id(),
    }];
    runtime.block_on(async {
        ensure_topic(&served_broker, TEXT_LINES_TOPIC, PARTITIONS).await?;
        ensure_topic(&served_broker, WORD_COUNTS_TOPIC, PARTITIONS).await
    })?;
    let kafka = if skip_kafka {
        None
    } else {
        let kafka = ApacheKafka::start_with(KafkaOptions {
            parent_dir: Some(work.path().to_path_buf()),
            ..KafkaOptions::default()
        })?;
        kafka.create_topic(TEXT_LINES_TOPIC, PARTITIONS as i32)?;
        kafka.create_topic(WORD_COUNTS_TOPIC, PARTITIONS as i32)?;
        Some(kafka)
    };
    if let Some(kafka) = &kafka {
        targets.push(Target {
            name: "kafka",
            bootstrap: kafka.bootstrap(),
            pid: kafka.pid(),
        });
    }
    for target in &targets {
        let start = Instant::now();
        load(&target.bootstrap, &lines)?;
        println!(
            "loaded broker={} seconds={:.3}",
            target.name,
            start.elapsed().as_secs_f64()
        );
    }

    let mut before = baseline_seconds(&lines);
    println!(
        "baseline HashMap count: words_per_sec={:.0}",
        word_total as f64 / before
    );
    // (case, guarantee) -> runs with their baseline words per second.
    let mut results: HashMap<(&str, Guarantee), Vec<(Measure, f64)>> = HashMap::new();
    let mut run_id = 0;
    for round in 1..=rounds {
        for guarantee in guarantees() {
            let mut cases: Vec<&str> = vec!["embedded", "served"];
            if kafka.is_some() {
                cases.extend(["kafka", "kafka-streams"]);
            }
            if let Some(only) = &only {
                cases.retain(|c| only.iter().any(|o| o == c));
            }
            for case in cases {
                run_id += 1;
                let measure = match case {
                    "embedded" => run_embedded(guarantee)?,
                    "served" => run_ours(&targets[0], guarantee, 1, run_id, work.path())?,
                    "kafka" => run_ours(&targets[1], guarantee, 1, run_id, work.path())?,
                    _ => run_kafka_streams(&targets[1], guarantee, run_id, work.path())?,
                };
                let after = baseline_seconds(&lines);
                let baseline = word_total as f64 / ((before + after) / 2.0);
                before = after;
                print_run(
                    &format!("round={round}"),
                    case,
                    guarantee,
                    &measure,
                    word_total,
                    baseline,
                );
                results
                    .entry((case, guarantee))
                    .or_default()
                    .push((measure, baseline));
            }
        }
    }

    // Medians, by ratio to the baseline.
    let mut medians: HashMap<(&str, Guarantee), (Measure, f64)> = HashMap::new();
    for ((case, guarantee), mut runs) in results {
        runs.sort_by(|a, b| {
            let ra = word_total as f64 / a.0.seconds / a.1;
            let rb = word_total as f64 / b.0.seconds / b.1;
            ra.total_cmp(&rb)
        });
        let median = runs.swap_remove(runs.len() / 2);
        medians.insert((case, guarantee), median);
    }
    for guarantee in guarantees() {
        for case in ["embedded", "served", "kafka", "kafka-streams"] {
            if let Some((measure, baseline)) = medians.get(&(case, guarantee)) {
                print_run("median", case, guarantee, measure, word_total, *baseline);
            }
        }
    }
    let words_per_sec = |case: &str, guarantee: Guarantee| {
        medians
            .get(&(case, guarantee))
            .map(|(m, _)| word_total as f64 / m.seconds)
    };
    for guarantee in guarantees() {
        if let (Some(b), Some(a)) = (
            words_per_sec("served", guarantee),
            words_per_sec("embedded", guarantee),
        ) {
            println!(
                "goal served/embedded guarantee={guarantee} ratio={:.3} (goal >= 0.5)",
                b / a
            );
        }
        if let (Some(c), Some(d)) = (
            words_per_sec("kafka", guarantee),
            words_per_sec("kafka-streams", guarantee),
        ) {
            println!(
                "goal kafka/kafka-streams guarantee={guarantee} ratio={:.3} (goal >= 1.0)",
                c / d
            );
        }
    }

    // Scale-out: three processes against the single one measured above.
    for target in targets.iter().filter(|_| only.is_none()) {
        run_id += 1;
        let three = run_ours(target, Guarantee::AtLeastOnce, 3, run_id, work.path())?;
        let one = medians
            .get(&(target.name, Guarantee::AtLeastOnce))
            .map(|(m, _)| m.seconds);
        println!(
            "scale-out broker={} processes=3 guarantee=at_least_once words_per_sec={:.0} \
             seconds={:.3} app_cpu_seconds={:.3} app_peak_rss_mib={:.1} speedup_over_one={}",
            target.name,
            word_total as f64 / three.seconds,
            three.seconds,
            three.app_cpu_seconds,
            three.app_peak_rss_mib,
            one.map_or("?".to_owned(), |one| format!("{:.2}", one / three.seconds)),
        );
    }

    if let Some(kafka) = kafka {
        println!(
            "apache_kafka peak_rss_mib={:.1}",
            peak_rss_kib(kafka.pid())? as f64 / 1024.0
        );
        kafka.stop()?;
    }
    let _ = stop_server.send(());
    runtime.block_on(serving)??;
    runtime.block_on(served_broker.close())?;
    Ok(())
}

fn print_run(
    prefix: &str,
    case: &str,
    guarantee: Guarantee,
    m: &Measure,
    word_total: u64,
    baseline: f64,
) {
    let words_per_sec = word_total as f64 / m.seconds;
    println!(
        "{prefix} case={case} guarantee={guarantee} words_per_sec={words_per_sec:.0} \
         seconds={:.3} app_cpu_seconds={:.3} app_peak_rss_mib={:.1} broker_cpu_seconds={} \
         baseline_words_per_sec={baseline:.0} ratio={:.4}",
        m.seconds,
        m.app_cpu_seconds,
        m.app_peak_rss_mib,
        m.broker_cpu_seconds
            .map_or("-".to_owned(), |c| format!("{c:.3}")),
        words_per_sec / baseline
    );
}

/// The median time, in seconds, of plain `HashMap` counts of `lines`.
fn baseline_seconds(lines: &[String]) -> f64 {
    let mut times: Vec<f64> = (0..BASELINE_ROUNDS)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(count_words(lines));
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// The timestamp of the first line: recent, so that no broker's time
/// retention (7 days by default) deletes the input during the benchmark.
fn first_timestamp(lines: usize) -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    now - i64::try_from(lines).unwrap_or(0) - 1
}

/// Produces `lines` into `text-lines` at `bootstrap`: line `i` to partition
/// `i mod 3` with timestamp [`first_timestamp`]` + i + 1`, as the embedded
/// load.
fn load(bootstrap: &str, lines: &[String]) -> anyhow::Result<()> {
    let first = first_timestamp(lines.len());
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("batch.size", "1000000")
        .create()?;
    for (i, line) in lines.iter().enumerate() {
        let partition = (i % PARTITIONS as usize) as i32;
        let timestamp = first + i as i64 + 1;
        let mut record: BaseRecord<'_, (), String> = BaseRecord::to(TEXT_LINES_TOPIC)
            .payload(line)
            .partition(partition)
            .timestamp(timestamp);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((e, back)) => {
                    if e.rdkafka_error_code() != Some(rdkafka::types::RDKafkaErrorCode::QueueFull) {
                        bail!("cannot produce line {i}: {e}");
                    }
                    producer.poll(Duration::from_millis(10));
                    record = back;
                }
            }
        }
    }
    producer
        .flush(Duration::from_secs(120))
        .context("cannot flush the input")?;
    Ok(())
}

/// (a): one child process.
fn run_embedded(guarantee: Guarantee) -> anyhow::Result<Measure> {
    let out = Command::new(std::env::current_exe()?)
        .env(CHILD_ENV, "embedded")
        .env("BENCH_GUARANTEE", guarantee.as_str())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("the embedded run failed ({}): {stdout}", out.status);
    }
    let Some(line) = stdout.lines().find(|l| l.starts_with("RESULT ")) else {
        bail!("the embedded run printed no result: {stdout}");
    };
    let field = |name: &str| -> anyhow::Result<f64> {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("no {name} in {line}"))
    };
    Ok(Measure {
        seconds: field("seconds")?,
        app_cpu_seconds: field("app_cpu_seconds")?,
        app_peak_rss_mib: field("app_peak_rss_mib")?,
        broker_cpu_seconds: None,
    })
}

/// A running child of ours on the Kafka backend.
struct OurChild {
    child: Child,
    started: mpsc::Receiver<()>,
}

impl OurChild {
    fn spawn(
        target: &Target,
        guarantee: Guarantee,
        app_id: &str,
        state: &std::path::Path,
    ) -> anyhow::Result<Self> {
        let mut child = Command::new(std::env::current_exe()?)
            .env(CHILD_ENV, "kafka")
            .env("BENCH_BOOTSTRAP", &target.bootstrap)
            .env("BENCH_GUARANTEE", guarantee.as_str())
            .env("BENCH_APP_ID", app_id)
            .env("BENCH_STATE_DIR", state)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (tx, started) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line == "STARTED" {
                    let _ = tx.send(());
                }
            }
        });
        Ok(Self { child, started })
    }

    /// Closes its stdin (it closes its app) and waits for it to exit.
    fn stop(&mut self) -> anyhow::Result<()> {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    bail!("an app process exited with {status}");
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                self.child.kill()?;
                bail!("an app process did not stop within 120 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for OurChild {
    fn drop(&mut self) {
        // A run that failed leaves no process behind.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Polls `app_id`'s group at `target` until it has committed the end of
/// `text-lines` and of the repartition topic `repartition`.
fn wait_caught_up(
    target: &Target,
    app_id: &str,
    repartition: &str,
    since: Instant,
) -> anyhow::Result<()> {
    let watch = GroupWatch::new(&target.bootstrap, app_id)?;
    let topics = [TEXT_LINES_TOPIC, repartition];
    let trace = std::env::var("BACKENDS_BENCH_TRACE").is_ok();
    let mut last_trace = Instant::now();
    loop {
        if trace && last_trace.elapsed() > Duration::from_millis(500) {
            last_trace = Instant::now();
            eprintln!(
                "trace t={:.1} {}",
                since.elapsed().as_secs_f64(),
                progress_line(&target.bootstrap, app_id, &topics)
            );
        }
        // Until the app has created its repartition topic, asking fails.
        if watch.caught_up(&topics).unwrap_or(false) {
            return Ok(());
        }
        if since.elapsed() > DEADLINE {
            bail!("{app_id} did not catch up within {DEADLINE:?}");
        }
        std::thread::sleep(POLL_EVERY);
    }
}

/// (b), (c) and the scale-out: `processes` app processes sharing one group.
fn run_ours(
    target: &Target,
    guarantee: Guarantee,
    processes: usize,
    run_id: usize,
    work: &std::path::Path,
) -> anyhow::Result<Measure> {
    let app_id = format!("backends-bench-{}-{run_id}", target.name);
    let repartition = physical_source_topics(&word_count_topology(None)?, &app_id)
        .into_iter()
        .find(|t| t != TEXT_LINES_TOPIC)
        .context("the word count has a repartition topic")?;
    let mut children = Vec::new();
    for i in 0..processes {
        let state = work.join(format!("state-{run_id}-{i}"));
        children.push(OurChild::spawn(target, guarantee, &app_id, &state)?);
    }
    for child in &children {
        child
            .started
            .recv_timeout(Duration::from_secs(60))
            .context("an app process did not start")?;
    }
    let start = Instant::now();
    let cpu_before: Vec<f64> = children
        .iter()
        .map(|c| cpu_seconds(c.child.id()))
        .collect::<anyhow::Result<_>>()?;
    let broker_before = cpu_seconds(target.pid)?;
    wait_caught_up(target, &app_id, &repartition, start)?;
    let seconds = start.elapsed().as_secs_f64();
    let mut app_cpu = 0.0;
    let mut rss = 0.0;
    for (child, before) in children.iter().zip(&cpu_before) {
        app_cpu += cpu_seconds(child.child.id())? - before;
        rss += peak_rss_kib(child.child.id())? as f64 / 1024.0;
    }
    let broker_cpu = cpu_seconds(target.pid)? - broker_before;
    for child in &mut children {
        child.stop()?;
    }
    Ok(Measure {
        seconds,
        app_cpu_seconds: app_cpu,
        app_peak_rss_mib: rss,
        broker_cpu_seconds: Some(broker_cpu),
    })
}

/// (d): Kafka Streams' word count against Apache Kafka.
fn run_kafka_streams(
    target: &Target,
    guarantee: Guarantee,
    run_id: usize,
    work: &std::path::Path,
) -> anyhow::Result<Measure> {
    let app_id = format!("backends-bench-kstreams-{run_id}");
    let options = KafkaStreamsOptions::new(
        &target.bootstrap,
        &app_id,
        guarantee,
        1,
        COMMIT_INTERVAL_MS.parse()?,
        &work.join(format!("kstreams-{run_id}")),
    );
    let mut app = KafkaStreamsApp::start_with(options)?;
    let wait_start = Instant::now();
    while app.states().is_empty() {
        app.ensure_running()?;
        if wait_start.elapsed() > Duration::from_secs(120) {
            bail!("Kafka Streams did not start: {}", app.stderr_tail());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let start = Instant::now();
    let cpu_before = cpu_seconds(app.pid())?;
    let broker_before = cpu_seconds(target.pid)?;
    let repartition = loop {
        app.ensure_running()?;
        if let Some(topic) = repartition_topics(&target.bootstrap, &app_id)?
            .into_iter()
            .next()
        {
            break topic;
        }
        if start.elapsed() > DEADLINE {
            bail!("Kafka Streams created no repartition topic");
        }
        std::thread::sleep(POLL_EVERY);
    };
    wait_caught_up(target, &app_id, &repartition, start)?;
    let seconds = start.elapsed().as_secs_f64();
    let app_cpu = cpu_seconds(app.pid())? - cpu_before;
    let rss = peak_rss_kib(app.pid())? as f64 / 1024.0;
    let broker_cpu = cpu_seconds(target.pid)? - broker_before;
    app.stop()?;
    Ok(Measure {
        seconds,
        app_cpu_seconds: app_cpu,
        app_peak_rss_mib: rss,
        broker_cpu_seconds: Some(broker_cpu),
    })
}

/// The committed and end offsets of `topics` for `group`, summed per topic
/// (for `BACKENDS_BENCH_TRACE`).
fn progress_line(bootstrap: &str, group: &str, topics: &[&str]) -> String {
    use rdkafka::consumer::{BaseConsumer, Consumer as _};
    let consumer: BaseConsumer = match ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .create()
    {
        Ok(c) => c,
        Err(e) => return e.to_string(),
    };
    let mut out = String::new();
    for topic in topics {
        let mut list = rdkafka::TopicPartitionList::new();
        for p in 0..PARTITIONS as i32 {
            list.add_partition(topic, p);
        }
        let committed: i64 = consumer
            .committed_offsets(list, Duration::from_secs(5))
            .map(|l| {
                l.elements()
                    .iter()
                    .map(|e| e.offset().to_raw().unwrap_or(0).max(0))
                    .sum()
            })
            .unwrap_or(-1);
        let end: i64 = (0..PARTITIONS as i32)
            .map(|p| {
                consumer
                    .fetch_watermarks(topic, p, Duration::from_secs(5))
                    .map_or(0, |(_, h)| h)
            })
            .sum();
        out.push_str(&format!("{topic}: {committed}/{end} "));
    }
    out
}
