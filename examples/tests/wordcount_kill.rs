//! The `wordcount` binary killed with SIGKILL again and again over one data
//! dir, restarted each time, then left to finish with `--exit-when-idle`.
//!
//! Under `exactly_once_v2`, read with `read_committed`, `word-counts` holds
//! every count once: per word, the committed counts strictly increase and
//! the last one equals a plain count of the corpus (with the in-memory
//! store and with the persistent sled store). Under `at_least_once` no
//! count falls short (with the in-memory store and with the persistent redb
//! store) and the test reports how far the counts overshoot. Under
//! `exactly_once_v2`, a run killed after committing every count leaves its
//! redb stores synced up to their last 10,000 changelog records or so.
//!
//! The soak ([`exactly_once_v2_survives_sigkills_from_the_first_millisecond`])
//! kills the binary at random moments from the first millisecond of each
//! run, so that kills land while it loads its input too, and checks that
//! `text-lines` ends up holding each line of the file exactly once and the
//! counts are exact. `RILL_KILL_SOAK_KILLS` (default 20),
//! `RILL_KILL_SOAK_LINES`, `RILL_KILL_SOAK_MAX_DELAY_MS` and
//! `RILL_KILL_SOAK_SEED` change it; `scripts/kill-soak.sh` runs it with 100
//! kills.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use broker_embedded::{
    AutoOffsetReset, Broker, BrokerConfig, Consumer, ConsumerConfig, IsolationLevel,
};
use examples::{
    corpus_with_line_words, count_words, group_progress, physical_source_topics,
    word_count_topology, TEXT_LINES_TOPIC, WORD_COUNTS_TOPIC,
};

/// The binary's application id (its consumer group).
const APPLICATION_ID: &str = "wordcount";
/// At least 200,000 lines; one or two words each keeps a debug build's run
/// short (about 300,000 words).
const LINES: usize = 200_000;
const SEED: u64 = 0x0bad_5eed;
const KILLS: usize = 10;
/// How many times each added word of [`kill_loop`] occurs, evenly apart.
const SPREAD: usize = 100;
/// How long a run may take to open the broker and produce (or skip) the
/// input.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the last run may take to finish the work.
const FINISH_TIMEOUT: Duration = Duration::from_secs(240);

fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed | 1;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

/// What a kill loop leaves: every committed count per word, in offset
/// order, and the exact counts.
struct Outcome {
    history: HashMap<String, Vec<i64>>,
    expected: HashMap<String, i64>,
}

impl Outcome {
    fn latest(&self) -> HashMap<String, i64> {
        self.history
            .iter()
            .filter_map(|(k, v)| v.last().map(|last| (k.clone(), *last)))
            .collect()
    }

    /// Words whose committed counts do not strictly increase.
    fn not_increasing(&self) -> Vec<(String, Vec<i64>)> {
        self.history
            .iter()
            .filter(|(_, counts)| counts.windows(2).any(|w| w[1] <= w[0]))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Words whose last count is not the exact one: (word, expected, last).
    fn wrong(&self) -> Vec<(String, i64, Option<i64>)> {
        let latest = self.latest();
        let mut wrong: Vec<_> = self
            .expected
            .iter()
            .filter(|(k, v)| latest.get(*k) != Some(v))
            .map(|(k, v)| (k.clone(), *v, latest.get(k).copied()))
            .collect();
        wrong.extend(
            latest
                .iter()
                .filter(|(k, _)| !self.expected.contains_key(*k))
                .map(|(k, v)| (k.clone(), 0, Some(*v))),
        );
        wrong
    }

    /// How far the last counts exceed the exact ones: (the sum over words,
    /// the largest for one word).
    fn overshoot(&self) -> (i64, i64) {
        let latest = self.latest();
        self.expected
            .iter()
            .map(|(k, v)| latest.get(k).copied().unwrap_or(0) - v)
            .filter(|d| *d > 0)
            .fold((0, 0), |(sum, max), d| (sum + d, max.max(d)))
    }

    /// Under at-least-once: every final count is at least the plain count.
    fn assert_nothing_lost(&self) {
        let latest = self.latest();
        for (word, count) in &self.expected {
            assert!(
                latest.get(word).copied().unwrap_or(0) >= *count,
                "{word}: {:?} < {count}",
                latest.get(word)
            );
        }
    }

    fn assert_exact(&self) {
        let bad = self.not_increasing();
        assert!(
            bad.is_empty(),
            "{} words have a duplicated or regressed committed count, e.g. {:?}",
            bad.len(),
            bad.first()
        );
        let wrong = self.wrong();
        assert!(
            wrong.is_empty(),
            "{} of {} words end with a wrong count (word, expected, committed): {:?}",
            wrong.len(),
            self.expected.len(),
            &wrong[..wrong.len().min(5)]
        );
    }
}

/// One run of the binary, its stdout read line by line on a thread.
struct Run {
    child: Child,
    lines: mpsc::Receiver<String>,
    log: PathBuf,
}

impl Run {
    /// Starts a run that exits once idle.
    fn spawn(dir: &Path, input: &Path, guarantee: &str, store: &str, index: usize) -> Self {
        Self::spawn_with(dir, input, guarantee, store, index, true)
    }

    /// Starts a run; without `exit_when_idle` it runs until killed.
    fn spawn_with(
        dir: &Path,
        input: &Path,
        guarantee: &str,
        store: &str,
        index: usize,
        exit_when_idle: bool,
    ) -> Self {
        let log = dir.join(format!("run-{index}.log"));
        let mut command = Command::new(env!("CARGO_BIN_EXE_wordcount"));
        command
            .arg("--data-dir")
            .arg(dir.join("data"))
            .arg("--input")
            .arg(input)
            .args([
                "--guarantee",
                guarantee,
                "--store",
                store,
                "--threads",
                "1",
                "--commit-interval-ms",
                "100",
            ]);
        if exit_when_idle {
            command.arg("--exit-when-idle");
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines, log }
    }

    /// Waits until the run has produced its input or found it already
    /// there; `false` if it exited first.
    fn wait_for_input(&mut self) -> bool {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            match self.lines.recv_timeout(Duration::from_millis(50)) {
                Ok(line) if line.contains("produced") => return true,
                Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return false,
            }
        }
        panic!("{}", self.failure("did not start within the timeout"));
    }

    fn failure(&self, what: &str) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        format!(
            "the wordcount run {what}; the end of its stderr ({}):\n{}",
            self.log.display(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
    }
}

/// The group's committed input lines and its records still to process,
/// read with the binary dead (the data dir is its while it runs).
fn progress(runtime: &tokio::runtime::Runtime, dir: &Path) -> (u64, u64) {
    runtime.block_on(async {
        let broker = Broker::open(dir.join("data").join("broker"), BrokerConfig::default())
            .await
            .unwrap();
        let sources = physical_source_topics(&word_count_topology(None).unwrap(), APPLICATION_ID);
        let progress = group_progress(&broker, APPLICATION_ID, &sources)
            .await
            .unwrap();
        broker.close().await.unwrap();
        let lines = progress
            .committed_per_topic
            .get(examples::TEXT_LINES_TOPIC)
            .copied()
            .unwrap_or(0);
        (lines, progress.remaining)
    })
}

/// Every committed record of `word-counts`, read with `read_committed`.
fn committed_counts(runtime: &tokio::runtime::Runtime, dir: &Path) -> HashMap<String, Vec<i64>> {
    runtime.block_on(async {
        let broker = Broker::open(dir.join("data").join("broker"), BrokerConfig::default())
            .await
            .unwrap();
        let mut consumer = Consumer::new(
            &broker,
            ConsumerConfig {
                auto_offset_reset: AutoOffsetReset::Earliest,
                enable_auto_commit: false,
                max_poll_records: 10_000,
                isolation_level: IsolationLevel::ReadCommitted,
                ..ConsumerConfig::default()
            },
        );
        consumer.assign_topic(WORD_COUNTS_TOPIC).await.unwrap();
        let mut history: HashMap<String, Vec<i64>> = HashMap::new();
        loop {
            let records = consumer.poll(Duration::from_millis(300)).await.unwrap();
            if records.is_empty() {
                break;
            }
            for record in records {
                let key = String::from_utf8(record.key.unwrap().to_vec()).unwrap();
                let value = record.value.unwrap();
                let count = i64::from_be_bytes(value.as_ref().try_into().unwrap());
                history.entry(key).or_default().push(count);
            }
        }
        drop(consumer);
        broker.close().await.unwrap();
        history
    })
}

/// Generates the corpus into a file, runs the binary `KILLS` times, each
/// killed with SIGKILL after a random delay, then once more to the end;
/// returns what `word-counts` committed.
///
/// `spread_words` words are added to the corpus, each in `SPREAD` lines
/// evenly apart: a store that lost counts (a checkpoint vouching for
/// writes that a kill took away) ends short on those seen again later.
///
/// Each run is killed `delay_ms` (a range) after its input is in place.
fn kill_loop(
    test: &str,
    guarantee: &str,
    store: &str,
    spread_words: usize,
    delay_ms: std::ops::Range<u64>,
) -> Outcome {
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut lines = corpus_with_line_words(LINES, SEED, 1, 2);
    let stride = lines.len() / SPREAD;
    for part in 0..SPREAD {
        for i in 0..spread_words.min(stride) {
            lines[part * stride + i].push_str(&format!(" spread{i}"));
        }
    }
    let input = dir.path().join("corpus.txt");
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let expected = count_words(&lines)
        .into_iter()
        .map(|(k, v)| (k, v as i64))
        .collect();

    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    println!("{test}: kill seed {seed}");
    let mut next = xorshift(seed);
    let mut last_committed = 0;
    // Added to the delay after a run that committed nothing, so that the
    // loop keeps moving on a slow machine.
    let mut extra = 0;
    let mut mid_stream = 0;
    for kill in 0..KILLS {
        let mut run = Run::spawn(dir.path(), &input, guarantee, store, kill);
        if run.wait_for_input() {
            let delay = delay_ms.start + next() % (delay_ms.end - delay_ms.start).max(1);
            std::thread::sleep(Duration::from_millis(delay + extra));
        }
        if let Some(status) = run.child.try_wait().unwrap() {
            // Done before its kill: the work is finished.
            assert!(status.success(), "{}", run.failure("failed"));
            println!("{test}: run {kill} finished before its kill");
            continue;
        }
        // Child::kill sends SIGKILL.
        run.child.kill().unwrap();
        run.child.wait().unwrap();
        let (committed, remaining) = progress(&runtime, dir.path());
        println!(
            "{test}: killed run {kill}: {committed} lines committed, {remaining} records pending"
        );
        if remaining > 0 {
            mid_stream += 1;
        }
        extra = if committed > last_committed {
            0
        } else {
            extra + 500
        };
        last_committed = committed;
    }

    let mut run = Run::spawn(dir.path(), &input, guarantee, store, KILLS);
    let deadline = Instant::now() + FINISH_TIMEOUT;
    let status = loop {
        if let Some(status) = run.child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            run.child.kill().unwrap();
            run.child.wait().unwrap();
            panic!("{}", run.failure("did not finish within the timeout"));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{}", run.failure("failed"));
    let history = committed_counts(&runtime, dir.path());
    println!(
        "{test}: {mid_stream} of {KILLS} kills interrupted unfinished work; {:.1} s in all",
        started.elapsed().as_secs_f64()
    );
    Outcome { history, expected }
}

#[test]
fn exactly_once_v2_in_memory_store_survives_sigkills() {
    kill_loop(
        "exactly_once_v2_in_memory_store_survives_sigkills",
        "exactly_once_v2",
        "in_memory",
        0,
        200..1_500,
    )
    .assert_exact();
}

#[test]
fn exactly_once_v2_sled_store_survives_sigkills() {
    kill_loop(
        "exactly_once_v2_sled_store_survives_sigkills",
        "exactly_once_v2",
        "sled",
        0,
        200..1_500,
    )
    .assert_exact();
}

#[test]
fn at_least_once_reports_its_overshoot_after_sigkills() {
    let outcome = kill_loop(
        "at_least_once_reports_its_overshoot_after_sigkills",
        "at_least_once",
        "in_memory",
        0,
        200..1_500,
    );
    let (sum, max) = outcome.overshoot();
    let total: i64 = outcome.expected.values().sum();
    println!(
        "at_least_once after {KILLS} SIGKILLs: final counts overshoot by {sum} words in all \
         ({:.2}% of {total}), at most {max} for one word; {} of {} words saw a duplicated or \
         regressed count",
        100.0 * sum as f64 / total as f64,
        outcome.not_increasing().len(),
        outcome.expected.len()
    );
    outcome.assert_nothing_lost();
}

/// With the persistent redb store, a commit hands the store's writes over
/// without an fsync and only a checkpoint is preceded by one: a SIGKILL
/// loses the unsynced writes, and the restart replays the changelog from
/// the checkpoint, so no count falls short.
#[test]
fn at_least_once_redb_store_loses_nothing_after_sigkills() {
    kill_loop(
        "at_least_once_redb_store_loses_nothing_after_sigkills",
        "at_least_once",
        "redb",
        2_000,
        2_000..5_000,
    )
    .assert_nothing_lost();
}

/// Under exactly-once no checkpoint is written while the application runs,
/// so the stores are synced every 10,000 changelog records instead: without
/// that, a redb store would make nothing durable between a start and a
/// close (and could never reuse the pages its commits free). Killed once
/// every count of 150,000 distinct words is committed, the run leaves its
/// redb stores holding on disk all but their last unsynced stretch: at most
/// 10,000 changelog records per task since the last sync, plus what the
/// commits since then wrote, not only the first commit's records.
#[test]
fn exactly_once_v2_redb_store_is_synced_while_it_runs() {
    const LINES: usize = 15_000;
    const WORDS_PER_LINE: usize = 10;
    const TASKS: usize = 3;
    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<String> = (0..LINES)
        .map(|line| {
            (0..WORDS_PER_LINE)
                .map(|w| format!("u{}", line * WORDS_PER_LINE + w))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let input = dir.path().join("distinct.txt");
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let mut run = Run::spawn_with(dir.path(), &input, "exactly_once_v2", "redb", 0, false);
    let done = format!("processed {LINES}/{LINES} lines, 0 records pending");
    let deadline = Instant::now() + FINISH_TIMEOUT;
    while !std::fs::read_to_string(&run.log)
        .unwrap_or_default()
        .contains(&done)
    {
        if let Some(status) = run.child.try_wait().unwrap() {
            panic!("{}", run.failure(&format!("exited ({status})")));
        }
        if Instant::now() > deadline {
            run.child.kill().unwrap();
            run.child.wait().unwrap();
            panic!("{}", run.failure("did not commit every count in time"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    run.child.kill().unwrap();
    run.child.wait().unwrap();

    let app_dir = dir.path().join("data").join("state").join(APPLICATION_ID);
    let mut held = Vec::with_capacity(TASKS);
    for partition in 0..TASKS {
        // Sub-topology 1 counts (0 splits the lines).
        let task_dir = app_dir.join(format!("1_{partition}"));
        let store = state_store::RedbStore::open(&task_dir, examples::WORD_COUNTS_STORE)
            .unwrap_or_else(|e| panic!("{}: {e}", task_dir.display()));
        held.push(state_store::KeyValueStore::all(&store).unwrap().count());
    }
    let words = LINES * WORDS_PER_LINE;
    let total: usize = held.iter().sum();
    println!("held on disk per task after the kill: {held:?} of {words} words");
    // Each task may lag by up to 10,000 records since its last sync and
    // by what the commits after it wrote; a store synced only at its first
    // commit would hold a few thousand words at most.
    let lag_bound = TASKS * 20_000;
    assert!(
        total + lag_bound >= words,
        "the stores hold {total} of {words} words on disk ({held:?}): more than {lag_bound} unsynced"
    );
    assert!(total <= words, "{total} > {words}");
}

/// A setting of the soak from the environment variable `name`, or
/// `default`.
fn soak_setting(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(value) => value
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{name}={value:?}: {e}")),
        Err(_) => default,
    }
}

/// The records of each partition of `text-lines`, in offset order, read
/// with the binary dead.
fn text_lines(runtime: &tokio::runtime::Runtime, dir: &Path) -> Vec<Vec<String>> {
    runtime.block_on(async {
        let broker = Broker::open(dir.join("data").join("broker"), BrokerConfig::default())
            .await
            .unwrap();
        let mut partitions = Vec::new();
        // The topic does not exist before a run got as far as creating it.
        let count = broker.partition_count(TEXT_LINES_TOPIC).await.unwrap_or(0);
        for partition in 0..count {
            let (_, end) = broker.offsets(TEXT_LINES_TOPIC, partition).await.unwrap();
            let mut records = Vec::new();
            while (records.len() as u64) < end {
                let batches = broker
                    .fetch(
                        TEXT_LINES_TOPIC,
                        partition,
                        records.len() as u64,
                        1 << 20,
                        None,
                    )
                    .await
                    .unwrap();
                for record in batches.into_iter().flat_map(|b| b.records) {
                    let value = record.value.unwrap();
                    records.push(String::from_utf8(value.to_vec()).unwrap());
                }
            }
            partitions.push(records);
        }
        broker.close().await.unwrap();
        partitions
    })
}

/// The records `text-lines` holds (the sum of its log end offsets), and the
/// records of the job's input and repartition topics still to process,
/// read with the binary dead.
fn inspect(runtime: &tokio::runtime::Runtime, dir: &Path) -> (u64, u64) {
    runtime.block_on(async {
        let broker = Broker::open(dir.join("data").join("broker"), BrokerConfig::default())
            .await
            .unwrap();
        let mut held = 0;
        // The topic does not exist before a run got as far as creating it.
        let count = broker.partition_count(TEXT_LINES_TOPIC).await.unwrap_or(0);
        for partition in 0..count {
            held += broker.offsets(TEXT_LINES_TOPIC, partition).await.unwrap().1;
        }
        let sources = physical_source_topics(&word_count_topology(None).unwrap(), APPLICATION_ID);
        let remaining = group_progress(&broker, APPLICATION_ID, &sources)
            .await
            .unwrap()
            .remaining;
        broker.close().await.unwrap();
        (held, remaining)
    })
}

/// The bytes of `text-lines` on disk: its segment files' sizes.
fn text_lines_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir.join("data").join("broker")) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("{TEXT_LINES_TOPIC}-"))
        })
        .flat_map(|e| std::fs::read_dir(e.path()).into_iter().flatten().flatten())
        .filter(|f| f.path().extension().is_some_and(|x| x == "log"))
        .filter_map(|f| f.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// Where a kill landed, judged from what the data dir holds afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Landed {
    /// No line loaded yet (the process was starting, or opening the broker).
    BeforeLoad,
    /// Some lines loaded, not all: the kill interrupted the input load.
    DuringLoad,
    /// Every line loaded; counts still to commit.
    MidStream,
    /// Every line loaded and every record processed and committed.
    AfterWork,
}

/// The soak's default input, in lines (one or two words each).
const SOAK_LINES: u64 = 150_000;
/// The soak's default longest delay from a run's spawn to its kill.
const SOAK_MAX_DELAY_MS: u64 = 600;
/// The longest delay of a kill aimed at the load after the run has
/// written input.
const LOAD_KILL_MAX_DELAY_MS: u64 = 50;
/// Fresh data dirs the first kill aimed at the load may take to land in it.
const LOAD_KILL_TRIES: usize = 5;

/// The SIGKILL soak of the whole job, under `exactly_once_v2` with the redb
/// store, over a corpus of `RILL_KILL_SOAK_LINES` lines (default
/// [`SOAK_LINES`]):
///
/// 1. Kills aimed at the input load (a quarter as many as the random kills,
///    at least 3): each lands a random 0 to [`LOAD_KILL_MAX_DELAY_MS`] ms
///    after its run has written more of `text-lines` than was on disk at
///    its spawn, so each cuts the load at another point; they stop once one
///    lands after the load. The first must land in the load: it is tried on
///    up to [`LOAD_KILL_TRIES`] fresh data dirs.
/// 2. `RILL_KILL_SOAK_KILLS` kills (default 20), each a random 0 to
///    `RILL_KILL_SOAK_MAX_DELAY_MS` ms (default [`SOAK_MAX_DELAY_MS`])
///    after its run was spawned: from the first millisecond, so some land
///    before the broker is open, during what is left of the load, or while
///    stores are restored.
/// 3. A run to the end (`--exit-when-idle`).
///
/// The killed runs do not exit when idle, so each one is killed, wherever
/// it is. At the end `text-lines` holds exactly the lines of the file (each
/// partition `p` the lines `i` with `i % 3 == p`, in order), and the
/// committed counts are exact and never repeat. `RILL_KILL_SOAK_SEED`
/// replays the random delays of a run.
#[test]
fn exactly_once_v2_survives_sigkills_from_the_first_millisecond() {
    const TEST: &str = "exactly_once_v2_survives_sigkills_from_the_first_millisecond";
    let kills = soak_setting("RILL_KILL_SOAK_KILLS", 20) as usize;
    let load_kills = (kills / 4).max(3);
    let lines_wanted = soak_setting("RILL_KILL_SOAK_LINES", SOAK_LINES) as usize;
    let max_delay = soak_setting("RILL_KILL_SOAK_MAX_DELAY_MS", SOAK_MAX_DELAY_MS).max(1);
    let default_seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    let seed = soak_setting("RILL_KILL_SOAK_SEED", default_seed);
    println!(
        "{TEST}: up to {load_kills} kills aimed at the load, then {kills} at 0..{max_delay} ms; \
         {lines_wanted} lines; seed {seed} (RILL_KILL_SOAK_SEED)"
    );

    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let lines = corpus_with_line_words(lines_wanted, SEED, 1, 2);
    let input = scratch.path().join("corpus.txt");
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let expected = count_words(&lines)
        .into_iter()
        .map(|(k, v)| (k, v as i64))
        .collect();
    let mut next = xorshift(seed);
    let mut runs = 0;
    let mut spawn = |dir: &Path, exit_when_idle: bool| {
        runs += 1;
        Run::spawn_with(dir, &input, "exactly_once_v2", "redb", runs, exit_when_idle)
    };
    let landed = |dir: &Path| -> Landed {
        let (held, remaining) = inspect(&runtime, dir);
        if held == 0 {
            Landed::BeforeLoad
        } else if held < lines.len() as u64 {
            Landed::DuringLoad
        } else if remaining > 0 {
            Landed::MidStream
        } else {
            Landed::AfterWork
        }
    };
    let mut tally: BTreeMap<Landed, usize> = BTreeMap::new();

    // A kill aimed at the load: once the run has written input past what
    // was on disk, after a random delay.
    let mut aim = |dir: &Path, delay: u64| -> Landed {
        let before = text_lines_bytes(dir);
        let mut run = spawn(dir, false);
        let deadline = Instant::now() + START_TIMEOUT;
        while text_lines_bytes(dir) <= before {
            if let Some(status) = run.child.try_wait().unwrap() {
                panic!(
                    "{}",
                    run.failure(&format!("exited before its kill ({status})"))
                );
            }
            assert!(
                Instant::now() < deadline,
                "{}",
                run.failure("wrote no input within the timeout")
            );
            std::thread::sleep(Duration::from_micros(200));
        }
        std::thread::sleep(Duration::from_millis(delay));
        run.child.kill().unwrap();
        run.child.wait().unwrap();
        landed(dir)
    };
    let mut dirs = Vec::new();
    for attempt in 0..LOAD_KILL_TRIES {
        let dir = tempfile::tempdir_in(scratch.path()).unwrap();
        let delay = next() % LOAD_KILL_MAX_DELAY_MS;
        let where_ = aim(dir.path(), delay);
        println!("{TEST}: load kill on data dir {attempt}, {delay} ms after its first input, landed {where_:?}");
        let hit = where_ == Landed::DuringLoad;
        dirs.push(dir);
        if hit {
            *tally.entry(where_).or_default() += 1;
            break;
        }
    }
    let dir = match dirs.last() {
        Some(dir) if landed(dir.path()) == Landed::DuringLoad => dir.path().to_owned(),
        _ => panic!("{LOAD_KILL_TRIES} kills aimed at the input load all missed it"),
    };
    for kill in 1..load_kills {
        let delay = next() % LOAD_KILL_MAX_DELAY_MS;
        let where_ = aim(&dir, delay);
        println!("{TEST}: load kill {kill}, {delay} ms after more input, landed {where_:?}");
        *tally.entry(where_).or_default() += 1;
        if where_ != Landed::DuringLoad {
            break;
        }
    }

    for kill in 0..kills {
        let delay = next() % max_delay;
        let mut run = spawn(&dir, false);
        std::thread::sleep(Duration::from_millis(delay));
        if let Some(status) = run.child.try_wait().unwrap() {
            panic!(
                "{}",
                run.failure(&format!("exited before its kill ({status})"))
            );
        }
        run.child.kill().unwrap();
        run.child.wait().unwrap();
        let where_ = landed(&dir);
        println!("{TEST}: kill {kill} at {delay} ms landed {where_:?}");
        *tally.entry(where_).or_default() += 1;
    }

    let mut run = spawn(&dir, true);
    let deadline = Instant::now() + FINISH_TIMEOUT;
    let status = loop {
        if let Some(status) = run.child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            run.child.kill().unwrap();
            run.child.wait().unwrap();
            panic!("{}", run.failure("did not finish within the timeout"));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{}", run.failure("failed"));
    let total: usize = tally.values().sum();
    println!(
        "{TEST}: {total} kills landed {tally:?}; {:.1} s in all",
        started.elapsed().as_secs_f64()
    );
    assert!(total > kills, "{total} kills, fewer than {kills} + 1");

    let held = text_lines(&runtime, &dir);
    assert_eq!(held.len(), 3, "text-lines partitions");
    for (partition, records) in held.iter().enumerate() {
        let wanted: Vec<&String> = lines
            .iter()
            .enumerate()
            .filter(|(i, _)| i % held.len() == partition)
            .map(|(_, line)| line)
            .collect();
        assert_eq!(
            records.len(),
            wanted.len(),
            "text-lines-{partition} holds {} records, the file has {} lines for it",
            records.len(),
            wanted.len()
        );
        let first_wrong = records.iter().zip(&wanted).position(|(a, b)| a != *b);
        assert_eq!(
            first_wrong, None,
            "text-lines-{partition} differs from the file's lines"
        );
    }
    let history = committed_counts(&runtime, &dir);
    Outcome { history, expected }.assert_exact();
}
