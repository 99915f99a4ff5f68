//! The `wordcount` binary as several processes of one group on one Kafka-protocol broker
//! (`--bootstrap-server`), each with its own state dir: the runtime's Kafka backend
//! (`StreamsApp::connect`) end to end.
//!
//! The broker is the embedded one served by `broker-wire` in the test process on
//! `127.0.0.1:0` (what `streams serve` runs), or Apache Kafka
//! ([`exactly_once_v2_scale_out_survives_sigkills_on_apache_kafka`]: skipped with a message
//! without Java or Maven, a failure under `CI=true`).
//!
//! - Scale-out under SIGKILL: three processes share the work; one of them, chosen at
//!   random, is killed with SIGKILL every 2 to 7 s and started again over its data dir,
//!   ten times, each kill shortly after more input was appended. Once the group has caught up, `word-counts`
//!   read `read_committed` holds, under `exactly_once_v2`, for each word counts that
//!   strictly increase in offset order and end at the exact count; under `at_least_once`
//!   no count falls short.
//! - A task's state moves: with two processes, one stops cleanly; the other takes its
//!   tasks, restores their stores from the changelogs, and goes on counting exactly.
//!
//! The processes' logs (`RUST_LOG=info` unless set) are in a temporary dir; a failure
//! prints the end of each, and `RILL_SCALE_OUT_KEEP=1` keeps the dir.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use broker_embedded::{Broker, BrokerConfig, ProducerRecord};
use broker_wire::{Server, WireConfig};
use examples::apache_kafka::{self, ApacheKafka, KafkaOptions};
use examples::cluster::Cluster;
use examples::{
    corpus, count_words, physical_source_topics, word_count_topology, TEXT_LINES_TOPIC,
    WORD_COUNTS_TOPIC,
};

/// The binary's application id (its consumer group).
const APPLICATION_ID: &str = "wordcount";
/// The binary's timestamp of line 0, less one (as it loads lines).
const FIRST_TIMESTAMP: i64 = 1_700_000_000_000;
/// How long the group may take to catch up at the end of a test.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a process may take to stop after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// The settings that make the group react quickly to a dead member and the commits
/// frequent: Kafka's smallest default session timeout (`group.min.session.timeout.ms`).
const SETTINGS: [&str; 3] = [
    "consumer.session.timeout.ms=6000",
    "consumer.heartbeat.interval.ms=1000",
    "producer.transaction.timeout.ms=10000",
];

/// The test's scratch dir: removed at the end unless `RILL_SCALE_OUT_KEEP=1`.
fn scratch_dir() -> tempfile::TempDir {
    let mut dir = tempfile::tempdir().unwrap();
    if std::env::var("RILL_SCALE_OUT_KEEP").is_ok_and(|v| v == "1") {
        dir.disable_cleanup(true);
    }
    dir
}

fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed | 1;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

/// The broker of a test and a runtime for the test's own clients (and, in process, for
/// the broker's server).
struct Served {
    runtime: tokio::runtime::Runtime,
    bootstrap: String,
    /// The Apache Kafka node, stopped when dropped.
    _kafka: Option<ApacheKafka>,
}

impl Served {
    /// The embedded broker (in memory) served in the Kafka protocol on `127.0.0.1:0`.
    fn in_process() -> Self {
        let runtime = runtime();
        let bootstrap = runtime.block_on(async {
            let broker = Broker::in_memory_with(BrokerConfig {
                group_initial_rebalance_delay_ms: 0,
                ..BrokerConfig::default()
            })
            .await
            .unwrap();
            let server = Server::bind(
                broker,
                WireConfig {
                    listen: "127.0.0.1:0".parse().unwrap(),
                    ..WireConfig::default()
                },
            )
            .await
            .unwrap();
            let addr = server.local_addr().unwrap().to_string();
            tokio::spawn(server.run(std::future::pending()));
            addr
        });
        Self {
            runtime,
            bootstrap,
            _kafka: None,
        }
    }

    /// A single-node Apache Kafka, its jars and data under the target dir.
    fn apache_kafka(classpath: String) -> Self {
        let kafka = ApacheKafka::start_with(KafkaOptions {
            classpath: Some(classpath),
            parent_dir: Some(Path::new(env!("CARGO_TARGET_TMPDIR")).to_owned()),
            ..KafkaOptions::default()
        })
        .unwrap();
        Self {
            runtime: runtime(),
            bootstrap: kafka.bootstrap(),
            _kafka: Some(kafka),
        }
    }

    fn cluster(&self) -> Cluster {
        self.runtime
            .block_on(Cluster::connect(&self.bootstrap))
            .unwrap()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// One `wordcount` process of the group, over its own data dir; started again after
/// each kill, each run with its own log.
struct Instance {
    name: String,
    data_dir: PathBuf,
    logs: PathBuf,
    runs: usize,
    child: Option<Child>,
}

impl Instance {
    fn new(scratch: &Path, name: &str) -> Self {
        Self {
            name: name.to_owned(),
            data_dir: scratch.join(name),
            logs: scratch.join("logs"),
            runs: 0,
            child: None,
        }
    }

    fn log(&self, run: usize) -> PathBuf {
        self.logs.join(format!("{}-{run}.log", self.name))
    }

    /// Starts a run that processes until it is killed or stopped: `--no-load`, or with
    /// `input` loading it first.
    fn start(&mut self, bootstrap: &str, guarantee: &str, input: Option<&Path>) {
        assert!(self.child.is_none(), "{} runs already", self.name);
        std::fs::create_dir_all(&self.logs).unwrap();
        self.runs += 1;
        let log = File::create(self.log(self.runs)).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_wordcount"));
        command
            .arg("--bootstrap-server")
            .arg(bootstrap)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--guarantee", guarantee, "--commit-interval-ms", "100"]);
        match input {
            Some(input) => command.arg("--input").arg(input),
            None => command.arg("--no-load"),
        };
        for setting in SETTINGS {
            command.args(["--config", setting]);
        }
        if std::env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "info");
        }
        let child = command
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    /// Fails, with the logs, if the run exited on its own.
    fn check_alive(&mut self, everyone: &str) {
        if let Some(child) = &mut self.child {
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "{} (run {}) exited on its own ({status});\n{everyone}",
                    self.name, self.runs
                );
            }
        }
    }

    /// SIGKILL, and reaps the process.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Child::kill sends SIGKILL.
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// SIGTERM (the binary closes cleanly), and waits for the exit; SIGKILL after
    /// [`STOP_TIMEOUT`]. Returns the exit status, `None` if it had to be killed.
    fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "cannot send SIGTERM to {}", self.name);
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() > deadline {
                child.kill().unwrap();
                child.wait().unwrap();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The tasks of sub-topology 1 (the counts) whose state is in the data dir.
    fn count_tasks(&self) -> Vec<String> {
        let dir = self.data_dir.join("state").join(APPLICATION_ID);
        let mut tasks: Vec<String> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with("1_"))
            .collect();
        tasks.sort();
        tasks
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The end of each instance's last log, to explain a failure.
fn tails(instances: &[Instance]) -> String {
    let mut out = String::new();
    for instance in instances {
        let log = std::fs::read_to_string(instance.log(instance.runs)).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        out.push_str(&format!(
            "--- {} run {} ({}):\n{}\n",
            instance.name,
            instance.runs,
            instance.log(instance.runs).display(),
            lines[lines.len().saturating_sub(25)..].join("\n")
        ));
    }
    out
}

/// Waits until the log of `instances[0]`'s run `run` holds `text`; the instances must
/// stay up meanwhile.
fn wait_for_log(instances: &mut [Instance], run: usize, text: &str) {
    let deadline = Instant::now() + CATCH_UP_TIMEOUT;
    while !std::fs::read_to_string(instances[0].log(run))
        .unwrap_or_default()
        .contains(text)
    {
        let everyone = tails(instances);
        for instance in instances.iter_mut() {
            instance.check_alive(&everyone);
        }
        assert!(
            Instant::now() < deadline,
            "{} did not log {text:?} within {CATCH_UP_TIMEOUT:?};\n{everyone}",
            instances[0].name
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Appends lines up to `lines.len()` to `text-lines` as the binary loads them (line `i`
/// to partition `i` modulo 3): what the topic holds already is not produced again.
fn load(served: &Served, cluster: &Cluster, lines: &[String]) {
    let load = served
        .runtime
        .block_on(cluster.load_input(TEXT_LINES_TOPIC, lines.len(), |i| {
            ProducerRecord::new(TEXT_LINES_TOPIC, lines[i].clone().into_bytes())
                .timestamp(FIRST_TIMESTAMP + i as i64 + 1)
        }))
        .unwrap();
    assert_eq!(load.held + load.produced, lines.len() as u64);
}

/// Waits until the group has committed every record of its source and repartition
/// topics; the instances must stay up meanwhile.
fn wait_caught_up(served: &Served, cluster: &Cluster, instances: &mut [Instance], what: &str) {
    let sources = physical_source_topics(&word_count_topology(None).unwrap(), APPLICATION_ID);
    let deadline = Instant::now() + CATCH_UP_TIMEOUT;
    let mut remaining = u64::MAX;
    loop {
        if Instant::now() > deadline {
            panic!(
                "{what}: the group did not catch up within {CATCH_UP_TIMEOUT:?} \
                 ({remaining} records left);\n{}",
                tails(instances)
            );
        }
        let everyone = tails(instances);
        for instance in instances.iter_mut() {
            instance.check_alive(&everyone);
        }
        let progress = match served
            .runtime
            .block_on(cluster.group_progress(APPLICATION_ID, &sources))
        {
            Ok(progress) => progress,
            Err(e) => {
                // The group's coordinator may be moving or loading; asked again.
                println!("{what}: cannot read the group's progress: {e:#}");
                std::thread::sleep(Duration::from_millis(250));
                continue;
            }
        };
        remaining = progress.remaining;
        // The repartition topic exists once an instance has started its app.
        if remaining == 0 && progress.committed_per_topic.len() == sources.len() {
            let lines = progress.committed_per_topic[TEXT_LINES_TOPIC];
            if lines > 0 {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Every count of `word-counts` committed so far, per word in offset order.
fn committed_counts(served: &Served, cluster: &Cluster) -> HashMap<String, Vec<i64>> {
    let records = served
        .runtime
        .block_on(cluster.read_committed(WORD_COUNTS_TOPIC, Duration::from_secs(60)))
        .unwrap();
    let mut history: HashMap<String, Vec<i64>> = HashMap::new();
    for record in records {
        let word = String::from_utf8(record.key.unwrap().to_vec()).unwrap();
        let value = record.value.unwrap();
        let count = i64::from_be_bytes(value.as_ref().try_into().unwrap());
        history.entry(word).or_default().push(count);
    }
    history
}

/// The last committed count of each word.
fn latest(history: &HashMap<String, Vec<i64>>) -> HashMap<String, i64> {
    history
        .iter()
        .filter_map(|(word, counts)| counts.last().map(|last| (word.clone(), *last)))
        .collect()
}

/// The exact count of each word of `lines`.
fn exact(lines: &[String]) -> HashMap<String, i64> {
    count_words(lines)
        .into_iter()
        .map(|(word, count)| (word, count as i64))
        .collect()
}

/// Under exactly-once: each word's committed counts strictly increase (a count is
/// emitted only when it changed, and never twice: the store's cache sends the latest per
/// commit, and a killed run's uncommitted transaction is aborted) and the last one is
/// the exact count.
fn assert_exactly_once(history: &HashMap<String, Vec<i64>>, lines: &[String]) {
    let not_increasing: Vec<(&String, &Vec<i64>)> = history
        .iter()
        .filter(|(_, counts)| counts.windows(2).any(|w| w[1] <= w[0]))
        .collect();
    assert!(
        not_increasing.is_empty(),
        "{} words have a repeated or regressed committed count, e.g. {:?}",
        not_increasing.len(),
        not_increasing.first()
    );
    let expected = exact(lines);
    let latest = latest(history);
    let mut wrong: Vec<(&String, i64, Option<i64>)> = expected
        .iter()
        .filter(|(word, count)| latest.get(*word) != Some(count))
        .map(|(word, count)| (word, *count, latest.get(word).copied()))
        .collect();
    wrong.sort();
    assert!(
        wrong.is_empty() && latest.len() == expected.len(),
        "{} of {} words end with a wrong count (word, exact, committed): {:?}; {} words \
         counted",
        wrong.len(),
        expected.len(),
        &wrong[..wrong.len().min(8)],
        latest.len()
    );
}

/// Under at-least-once: every word is there and no final count falls short.
fn assert_nothing_lost(history: &HashMap<String, Vec<i64>>, lines: &[String]) -> (i64, usize) {
    let latest = latest(history);
    let mut overshoot = 0;
    for (word, count) in exact(lines) {
        let got = latest.get(&word).copied();
        assert!(
            got.is_some_and(|got| got >= count),
            "{word}: committed {got:?}, exact {count}"
        );
        overshoot += got.unwrap_or(0) - count;
    }
    let repeated = history
        .values()
        .filter(|counts| counts.windows(2).any(|w| w[1] <= w[0]))
        .count();
    (overshoot, repeated)
}

/// Three processes, one SIGKILLed and started again every 2 to 7 s, ten times, each
/// kill 0 to 300 ms after 600 more lines were appended; then the group catches up. Returns the input
/// and what `word-counts` committed.
fn scale_out_under_kills(
    test: &str,
    served: &Served,
    guarantee: &str,
) -> (Vec<String>, HashMap<String, Vec<i64>>) {
    const INSTANCES: usize = 3;
    const KILLS: usize = 10;
    const FIRST_LINES: usize = 3_000;
    const LINES_PER_KILL: usize = 600;
    let started = Instant::now();
    let scratch = scratch_dir();
    let all_lines = corpus(FIRST_LINES + KILLS * LINES_PER_KILL, 0x5ca1_e007);
    let cluster = served.cluster();
    let input = scratch.path().join("first-lines.txt");
    std::fs::write(&input, all_lines[..FIRST_LINES].join("\n") + "\n").unwrap();

    let mut instances: Vec<Instance> = (0..INSTANCES)
        .map(|i| Instance::new(scratch.path(), &format!("wordcount-{i}")))
        .collect();
    // The first process creates the topics and loads the first lines, as the binary does
    // on its own; the others only count.
    instances[0].start(&served.bootstrap, guarantee, Some(&input));
    wait_for_log(&mut instances[..1], 1, "produced 3000 lines");
    for instance in &mut instances[1..] {
        instance.start(&served.bootstrap, guarantee, None);
    }
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    println!("{test}: seed {seed}, logs in {}", scratch.path().display());
    let mut next = xorshift(seed);
    let sources = physical_source_topics(&word_count_topology(None).unwrap(), APPLICATION_ID);
    let mut loaded = FIRST_LINES;
    let mut mid_stream = 0;
    for kill in 0..KILLS {
        let delay = 2_000 + next() % 5_000;
        std::thread::sleep(Duration::from_millis(delay));
        let everyone = tails(&instances);
        for instance in &mut instances {
            instance.check_alive(&everyone);
        }
        // More lines, and the kill soon after, while they are being counted.
        loaded += LINES_PER_KILL;
        load(served, &cluster, &all_lines[..loaded]);
        std::thread::sleep(Duration::from_millis(next() % 300));
        let victim = (next() % INSTANCES as u64) as usize;
        instances[victim].kill();
        // For the report only: how much work the kill interrupted.
        let pending = match served
            .runtime
            .block_on(cluster.group_progress(APPLICATION_ID, &sources))
        {
            Ok(progress) => progress.remaining.to_string(),
            Err(e) => format!("? ({e:#})"),
        };
        if pending != "0" {
            mid_stream += 1;
        }
        instances[victim].start(&served.bootstrap, guarantee, None);
        println!(
            "{test}: kill {kill}: {loaded} lines loaded, {} killed {delay} ms after the last \
             kill with {pending} records pending, and started again",
            instances[victim].name
        );
    }
    assert_eq!(loaded, all_lines.len());
    println!("{test}: {mid_stream} of {KILLS} kills left records pending");
    wait_caught_up(served, &cluster, &mut instances, test);
    let caught_up = started.elapsed();
    let history = committed_counts(served, &cluster);
    for instance in &instances {
        println!(
            "{test}: {} holds the state of tasks {:?}",
            instance.name,
            instance.count_tasks()
        );
    }
    let everyone = tails(&instances);
    for instance in &mut instances {
        let status = instance.stop();
        assert!(
            status.is_some_and(|s| s.success()),
            "{} did not stop cleanly after SIGTERM ({status:?});\n{everyone}",
            instance.name
        );
    }
    println!(
        "{test}: caught up {:.1} s after the start; {:.1} s in all",
        caught_up.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    (all_lines, history)
}

#[test]
fn exactly_once_v2_scale_out_survives_sigkills() {
    const TEST: &str = "exactly_once_v2_scale_out_survives_sigkills";
    let served = Served::in_process();
    let (lines, history) = scale_out_under_kills(TEST, &served, "exactly_once_v2");
    assert_exactly_once(&history, &lines);
}

#[test]
fn at_least_once_scale_out_loses_nothing_after_sigkills() {
    const TEST: &str = "at_least_once_scale_out_loses_nothing_after_sigkills";
    let served = Served::in_process();
    let (lines, history) = scale_out_under_kills(TEST, &served, "at_least_once");
    let (overshoot, repeated) = assert_nothing_lost(&history, &lines);
    println!(
        "{TEST}: the final counts overshoot by {overshoot} words in all; {repeated} of {} \
         words saw a repeated or regressed count",
        history.len()
    );
}

/// Whether the test runs under CI (`CI=true`), where a missing tool is a failure.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

#[test]
fn exactly_once_v2_scale_out_survives_sigkills_on_apache_kafka() {
    const TEST: &str = "exactly_once_v2_scale_out_survives_sigkills_on_apache_kafka";
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let classpath = match apache_kafka::broker_classpath(Some(&tmp.join("kafka-broker"))) {
        Ok(classpath) => classpath,
        Err(e) if in_ci() => {
            panic!("{e:#} (CI=true: Java, Maven and Maven Central are required)")
        }
        Err(e) => {
            eprintln!("skipping {TEST}: {e:#}");
            return;
        }
    };
    let served = Served::apache_kafka(classpath);
    let (lines, history) = scale_out_under_kills(TEST, &served, "exactly_once_v2");
    assert_exactly_once(&history, &lines);
}

/// Two processes share the tasks; one (the leaver) stops cleanly (SIGTERM). The other
/// (the survivor) takes its tasks, restores their stores from the changelogs that the
/// leaver wrote, and goes on counting: after more input the last counts are exact.
#[test]
fn a_rebalance_moves_a_task_and_its_state() {
    const TEST: &str = "a_rebalance_moves_a_task_and_its_state";
    let started = Instant::now();
    let served = Served::in_process();
    let scratch = scratch_dir();
    let lines = corpus(4_000, 0x0b5e_55ed);
    let cluster = served.cluster();
    let input = scratch.path().join("first-half.txt");
    std::fs::write(&input, lines[..2_000].join("\n") + "\n").unwrap();
    println!("{TEST}: logs in {}", scratch.path().display());

    let mut instances = vec![
        Instance::new(scratch.path(), "survivor"),
        Instance::new(scratch.path(), "leaver"),
    ];
    // The survivor creates the topics and loads the first half itself, as the binary
    // does; the leaver only counts.
    instances[0].start(&served.bootstrap, "at_least_once", Some(&input));
    wait_for_log(&mut instances[..1], 1, "produced 2000 lines");
    instances[1].start(&served.bootstrap, "at_least_once", None);
    // Both own count tasks, and the first half is counted.
    let deadline = Instant::now() + CATCH_UP_TIMEOUT;
    while instances[1].count_tasks().is_empty() || instances[0].count_tasks().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the two processes did not both get count tasks;\n{}",
            tails(&instances)
        );
        let everyone = tails(&instances);
        for instance in &mut instances {
            instance.check_alive(&everyone);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_caught_up(&served, &cluster, &mut instances, TEST);
    // More input while both count: the leaver's tasks get changelog records that only it
    // wrote.
    load(&served, &cluster, &lines[..3_000]);
    wait_caught_up(&served, &cluster, &mut instances, TEST);
    println!(
        "{TEST}: the leaver holds the state of tasks {:?}, the survivor of {:?}",
        instances[1].count_tasks(),
        instances[0].count_tasks()
    );

    let before_stop = std::fs::read_to_string(instances[0].log(1)).unwrap().len();
    let everyone = tails(&instances);
    let status = instances[1].stop();
    assert!(
        status.is_some_and(|s| s.success()),
        "the leaver did not stop cleanly after SIGTERM ({status:?});\n{everyone}"
    );
    load(&served, &cluster, &lines);
    wait_caught_up(&served, &cluster, &mut instances[..1], TEST);
    let history = committed_counts(&served, &cluster);
    assert_exactly_once(&history, &lines);

    // After the leaver left, the survivor restored stores from their changelogs.
    let log = std::fs::read_to_string(instances[0].log(1)).unwrap();
    let restored: Vec<&str> = log[before_stop..]
        .lines()
        .filter(|l| l.contains("restored state store") && !l.contains("records=0 "))
        .collect();
    assert!(
        !restored.is_empty(),
        "the survivor restored no store after the leaver left;\n{}",
        tails(&instances)
    );
    println!(
        "{TEST}: after the leaver left, the survivor restored: {}; {:.1} s in all",
        restored
            .iter()
            .map(|l| l.split("restored state store").nth(1).unwrap_or(l).trim())
            .collect::<Vec<_>>()
            .join("; "),
        started.elapsed().as_secs_f64()
    );
    let status = instances[0].stop();
    assert!(
        status.is_some_and(|s| s.success()),
        "the survivor did not stop cleanly ({status:?});\n{}",
        tails(&instances)
    );
}
