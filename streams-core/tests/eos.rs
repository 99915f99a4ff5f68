//! Exactly-once (`processing.guarantee = exactly_once_v2`) under failure: a
//! word count with a repartition topic, killed with SIGKILL again and
//! again; an instance dropped mid-stream; a zombie paused past its session
//! timeout. Read with `read_committed`, the output holds every count once:
//! per key, committed counts strictly increase and end at the exact count.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use broker_embedded::{
    AutoOffsetReset, Broker, BrokerConfig, Consumer, ConsumerConfig, IsolationLevel, NewTopic,
    Producer, ProducerRecord, TopicPartition,
};
use streams_core::{PausePoint, ProcessingGuarantee, StreamsApp, StreamsConfig};
use tokio::time::Instant;

mod common;

use common::{word_count, INPUT, OUTPUT};

const PARTITIONS: u32 = 3;

/// A deterministic corpus: `lines` lines of 1 to 8 words out of 300.
fn corpus(lines: usize, seed: u64) -> Vec<String> {
    let mut next = xorshift(seed);
    (0..lines)
        .map(|_| {
            let words = 1 + next() % 8;
            (0..words)
                .map(|_| format!("w{}", next() % 300))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
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

fn count_words<'a>(lines: impl IntoIterator<Item = &'a String>) -> HashMap<String, i64> {
    let mut counts = HashMap::new();
    for line in lines {
        for word in line.split_whitespace() {
            *counts.entry(word.to_owned()).or_insert(0) += 1;
        }
    }
    counts
}

async fn create_topics(broker: &Broker) {
    for topic in [INPUT, OUTPUT] {
        broker
            .ensure_topic(NewTopic::new(topic, PARTITIONS))
            .await
            .unwrap();
    }
}

async fn produce(broker: &Broker, lines: &[String]) {
    let producer = Producer::new(broker);
    for (i, chunk) in lines.chunks(5_000).enumerate() {
        let records = chunk
            .iter()
            .map(|l| ProducerRecord::new(INPUT, l.clone().into_bytes()).timestamp(1_000 + i as i64))
            .collect();
        producer.send_batch(records).await.unwrap();
    }
}

/// Every committed count of `word-counts`, per key, in offset order.
#[derive(Debug, Default)]
struct Committed {
    consumer: Option<Consumer>,
    history: HashMap<String, Vec<i64>>,
}

impl Committed {
    async fn new(broker: &Broker) -> Self {
        let mut consumer = Consumer::new(
            broker,
            ConsumerConfig {
                auto_offset_reset: AutoOffsetReset::Earliest,
                enable_auto_commit: false,
                max_poll_records: 10_000,
                isolation_level: IsolationLevel::ReadCommitted,
                ..ConsumerConfig::default()
            },
        );
        consumer.assign_topic(OUTPUT).await.unwrap();
        Self {
            consumer: Some(consumer),
            history: HashMap::new(),
        }
    }

    /// Reads what is there; returns the number of records read.
    async fn read(&mut self, wait: Duration) -> usize {
        let Some(consumer) = self.consumer.as_mut() else {
            return 0;
        };
        let records = consumer.poll(wait).await.unwrap();
        let n = records.len();
        for record in records {
            let key = String::from_utf8(record.key.unwrap().to_vec()).unwrap();
            let value = record.value.unwrap();
            let count = i64::from_be_bytes(value.as_ref().try_into().unwrap());
            self.history.entry(key).or_default().push(count);
        }
        n
    }

    fn latest(&self) -> HashMap<String, i64> {
        self.history
            .iter()
            .filter_map(|(k, v)| v.last().map(|last| (k.clone(), *last)))
            .collect()
    }

    /// Reads until the latest values equal `expected`; panics at the
    /// deadline.
    async fn wait_for(&mut self, expected: &HashMap<String, i64>, deadline: Duration) {
        let deadline = Instant::now() + deadline;
        loop {
            let latest = self.latest();
            if &latest == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "word counts did not converge: {} of {} keys, first differences: {:?}",
                latest.len(),
                expected.len(),
                expected
                    .iter()
                    .filter(|(k, v)| latest.get(*k) != Some(v))
                    .take(5)
                    .map(|(k, v)| (k.clone(), *v, latest.get(k).copied()))
                    .collect::<Vec<_>>()
            );
            self.read(Duration::from_millis(200)).await;
        }
    }

    /// Keys whose committed counts do not strictly increase, with their
    /// sequences.
    fn not_increasing(&self) -> Vec<(String, Vec<i64>)> {
        self.history
            .iter()
            .filter(|(_, counts)| counts.windows(2).any(|w| w[1] <= w[0]))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// How far the last counts exceed `expected`: (the sum over keys, the
    /// largest for one key).
    fn overshoot(&self, expected: &HashMap<String, i64>) -> (i64, i64) {
        let latest = self.latest();
        let excess = expected
            .iter()
            .map(|(k, v)| latest.get(k).copied().unwrap_or(0) - v)
            .filter(|d| *d > 0);
        excess.fold((0, 0), |(sum, max), d| (sum + d, max.max(d)))
    }
}

// ---------------------------------------------------------------------------
// 1 and 2: SIGKILL loops.

/// Set in a child process: the directory holding `broker/` and `state/`.
const CHILD_DIR: &str = "EOS_KILL_CHILD_DIR";
/// Set in a child process: `exactly_once_v2` or `at_least_once`.
const CHILD_GUARANTEE: &str = "EOS_KILL_CHILD_GUARANTEE";
/// Set in the last child: run until the group has no lag, then close.
const CHILD_FINAL: &str = "EOS_KILL_CHILD_FINAL";

const KILL_LINES: usize = 50_000;
const KILL_SEED: u64 = 97;
const KILLS: usize = 10;

fn kill_config(dir: &Path, guarantee: ProcessingGuarantee) -> StreamsConfig {
    StreamsConfig::new("eos-kill")
        .with_num_stream_threads(2)
        .with_processing_guarantee(guarantee)
        // The same interval under both guarantees, so that the overshoot of
        // at-least-once compares like with like.
        .with_commit_interval_ms(100)
        .with_state_dir(dir.join("state"))
}

/// Whether every record of the source topics up to their end is consumed
/// and committed by the group (read as `read_committed`: the markers that
/// follow committed data are no lag).
async fn group_has_no_lag(broker: &Broker) -> bool {
    let mut partitions = Vec::new();
    for topic in [INPUT, "eos-kill-words-repartition"] {
        for p in 0..PARTITIONS {
            partitions.push(TopicPartition::new(topic, p));
        }
    }
    let group = Consumer::new(
        broker,
        ConsumerConfig {
            group_id: Some("eos-kill".to_owned()),
            enable_auto_commit: false,
            ..ConsumerConfig::default()
        },
    );
    let committed = group.committed(&partitions).await.unwrap();
    let mut reader = Consumer::new(
        broker,
        ConsumerConfig {
            enable_auto_commit: false,
            isolation_level: IsolationLevel::ReadCommitted,
            ..ConsumerConfig::default()
        },
    );
    reader.assign(partitions.clone()).await.unwrap();
    for tp in &partitions {
        reader
            .seek(tp, committed.get(tp).map_or(0, |o| o.offset))
            .unwrap();
    }
    reader
        .poll(Duration::from_millis(100))
        .await
        .unwrap()
        .is_empty()
}

/// The child: runs the word count over the broker in `dir` until killed
/// (or, as the last child, until the group has no lag).
async fn child(dir: &Path, guarantee: ProcessingGuarantee, last: bool) {
    let broker = Broker::open(dir.join("broker"), BrokerConfig::default())
        .await
        .unwrap();
    let mut app = StreamsApp::new(word_count(), kill_config(dir, guarantee), broker.clone());
    app.start().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(Instant::now() < deadline, "the child never finished");
        assert!(app.error().is_none(), "the app failed: {:?}", app.error());
        if last && group_has_no_lag(&broker).await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.close().await.unwrap();
    broker.close().await.unwrap();
}

fn spawn_child(test: &str, dir: &Path, guarantee: ProcessingGuarantee, last: bool) -> Child {
    let exe = std::env::current_exe().unwrap();
    let mut command = Command::new(exe);
    command
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, dir)
        .env(CHILD_GUARANTEE, guarantee.as_str());
    if last {
        command.env(CHILD_FINAL, "1");
    }
    // The child's test harness output would mix with the parent's; its
    // panics and logs go to stderr.
    command.stdout(std::process::Stdio::null());
    command.spawn().unwrap()
}

/// Runs the kill loop (or, in a child process, the child); returns the
/// committed output of the whole run and the expected counts.
fn kill_loop(
    test: &str,
    guarantee: ProcessingGuarantee,
) -> Option<(Committed, HashMap<String, i64>)> {
    init_logs();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if let Some(dir) = std::env::var_os(CHILD_DIR) {
        let guarantee = match std::env::var(CHILD_GUARANTEE).as_deref() {
            Ok("exactly_once_v2") => ProcessingGuarantee::ExactlyOnceV2,
            _ => ProcessingGuarantee::AtLeastOnce,
        };
        let last = std::env::var_os(CHILD_FINAL).is_some();
        runtime.block_on(child(Path::new(&dir), guarantee, last));
        return None;
    }

    let dir = tempfile::tempdir().unwrap();
    let lines = corpus(KILL_LINES, KILL_SEED);
    runtime.block_on(async {
        let broker = Broker::open(dir.path().join("broker"), BrokerConfig::default())
            .await
            .unwrap();
        create_topics(&broker).await;
        produce(&broker, &lines).await;
        broker.close().await.unwrap();
    });

    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    println!("{test}: kill seed {seed}");
    let mut next = xorshift(seed);
    for kill in 0..KILLS {
        let mut child = spawn_child(test, dir.path(), guarantee, false);
        let wait = Duration::from_millis(400 + next() % 1_200);
        std::thread::sleep(wait);
        if let Ok(Some(status)) = child.try_wait() {
            panic!("child {kill} exited before it was killed: {status}");
        }
        // Child::kill sends SIGKILL.
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let status = spawn_child(test, dir.path(), guarantee, true)
        .wait()
        .unwrap();
    assert!(status.success(), "the last child failed: {status}");

    let committed = runtime.block_on(async {
        let broker = Broker::open(dir.path().join("broker"), BrokerConfig::default())
            .await
            .unwrap();
        let mut committed = Committed::new(&broker).await;
        // Read up to the last stable offset of every output partition: an
        // empty poll alone does not prove the end was reached.
        let mut ends = Vec::new();
        for p in 0..PARTITIONS {
            ends.push((
                TopicPartition::new(OUTPUT, p),
                broker.last_stable_offset(OUTPUT, p).await.unwrap(),
            ));
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let consumer = committed.consumer.as_ref().unwrap();
            if ends
                .iter()
                .all(|(tp, end)| consumer.position(tp).is_some_and(|p| p >= *end))
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the output was not read to its end"
            );
            committed.read(Duration::from_millis(300)).await;
        }
        committed.consumer = None;
        broker.close().await.unwrap();
        committed
    });
    Some((committed, count_words(&lines)))
}

#[test]
fn sigkill_loop_exactly_once_gives_exact_counts() {
    let Some((committed, expected)) = kill_loop(
        "sigkill_loop_exactly_once_gives_exact_counts",
        ProcessingGuarantee::ExactlyOnceV2,
    ) else {
        return;
    };
    let bad = committed.not_increasing();
    assert!(
        bad.is_empty(),
        "{} keys have a duplicated or regressed count, e.g. {:?}",
        bad.len(),
        bad.first()
    );
    let latest = committed.latest();
    let wrong: Vec<_> = expected
        .iter()
        .filter(|(k, v)| latest.get(*k) != Some(v))
        .map(|(k, v)| (k.clone(), *v, latest.get(k).copied()))
        .collect();
    assert!(
        wrong.is_empty() && latest.len() == expected.len(),
        "{} of {} keys end with a wrong count (word, expected, committed): {:?}",
        wrong.len(),
        expected.len(),
        &wrong[..wrong.len().min(5)]
    );
}

#[test]
fn sigkill_loop_at_least_once_reports_its_overshoot() {
    let Some((committed, expected)) = kill_loop(
        "sigkill_loop_at_least_once_reports_its_overshoot",
        ProcessingGuarantee::AtLeastOnce,
    ) else {
        return;
    };
    let (sum, max) = committed.overshoot(&expected);
    let total: i64 = expected.values().sum();
    println!(
        "at_least_once after {KILLS} SIGKILLs: final counts overshoot by {sum} words in all \
         ({:.2}% of {total}), at most {max} for one word; {} of {} keys saw a duplicated or \
         regressed count",
        100.0 * sum as f64 / total as f64,
        committed.not_increasing().len(),
        expected.len()
    );
    // Nothing is lost under at-least-once.
    let latest = committed.latest();
    let short: Vec<(&String, i64, i64)> = expected
        .iter()
        .map(|(w, c)| (w, *c, latest.get(w).copied().unwrap_or(0)))
        .filter(|(_, c, got)| got < c)
        .collect();
    assert!(
        short.is_empty(),
        "{} of {} words end below their exact count (word, exact, last committed): {:?}",
        short.len(),
        expected.len(),
        &short[..short.len().min(10)]
    );
}

// ---------------------------------------------------------------------------
// 3 and 4: two instances sharing one broker.

fn shared_config(app: &str, dir: &Path) -> StreamsConfig {
    shared_config_with(app, dir, 4_000)
}

fn shared_config_with(app: &str, dir: &Path, transaction_timeout_ms: u64) -> StreamsConfig {
    let mut config = StreamsConfig::new(app)
        .with_num_stream_threads(1)
        .with_processing_guarantee(ProcessingGuarantee::ExactlyOnceV2)
        .with_state_dir(dir);
    config
        .set("consumer.session.timeout.ms", "2000")
        .unwrap()
        .set("consumer.heartbeat.interval.ms", "300")
        .unwrap()
        .set(
            "producer.transaction.timeout.ms",
            &transaction_timeout_ms.to_string(),
        )
        .unwrap();
    config
}

/// Logs to stderr when `RUST_LOG` is set.
fn init_logs() {
    if std::env::var_os("RUST_LOG").is_some() {
        drop(
            tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                .with_writer(std::io::stderr)
                .try_init(),
        );
    }
}

/// Waits until `condition` holds; panics at the deadline.
async fn wait_until(what: &str, deadline: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + deadline;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Two instances of one application over a fresh in-memory broker, with
/// the tasks split between them and a corpus being processed.
struct Pair {
    a: StreamsApp,
    b: StreamsApp,
    /// The committed output, read up to the first record.
    committed: Committed,
    expected: HashMap<String, i64>,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

/// Starts two instances of `app` (with `transaction_timeout_ms`), waits
/// until each owns tasks, produces the corpus of `seed`, and returns once
/// some output is committed.
async fn start_pair(app: &str, transaction_timeout_ms: u64, seed: u64) -> Pair {
    init_logs();
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let broker = Broker::in_memory().await.unwrap();
    create_topics(&broker).await;
    let lines = corpus(30_000, seed);
    let expected = count_words(&lines);
    let config = |dir: &Path| shared_config_with(app, dir, transaction_timeout_ms);
    let mut a = StreamsApp::new(word_count(), config(dirs.0.path()), broker.clone());
    let mut b = StreamsApp::new(word_count(), config(dirs.1.path()), broker.clone());
    a.start().await.unwrap();
    b.start().await.unwrap();
    wait_until("the tasks to be split", Duration::from_secs(15), || {
        !a.local_tasks().is_empty() && !b.local_tasks().is_empty()
    })
    .await;
    produce(&broker, &lines).await;
    let mut committed = Committed::new(&broker).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while committed.history.is_empty() {
        assert!(Instant::now() < deadline, "no output was committed");
        committed.read(Duration::from_millis(50)).await;
    }
    Pair {
        a,
        b,
        committed,
        expected,
        _dirs: dirs,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_dropped_mid_stream_leaves_exact_counts() {
    // Some output is committed, then A dies: no commit, no leave-group.
    let Pair {
        mut a,
        mut b,
        mut committed,
        expected,
        _dirs,
    } = start_pair("drop", 4_000, 13).await;
    a.kill_for_tests().await;

    committed.wait_for(&expected, Duration::from_secs(30)).await;
    assert_eq!(b.local_tasks().len(), 2 * PARTITIONS as usize);
    let bad = committed.not_increasing();
    assert!(
        bad.is_empty(),
        "duplicated or regressed counts: {:?}",
        bad.first()
    );
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zombie_resumed_after_its_tasks_moved_is_fenced() {
    let Pair {
        mut a,
        mut b,
        mut committed,
        expected,
        _dirs,
    } = start_pair("zombie", 4_000, 29).await;
    // A stops between processing and committing, with its transaction open,
    // past its session timeout: B takes every task, and finishes the work
    // once the broker has aborted A's transaction (transaction timeout).
    a.pause_for_tests(PausePoint::BeforeCommit);
    wait_until("B to own every task", Duration::from_secs(20), || {
        b.local_tasks().len() == 2 * PARTITIONS as usize
    })
    .await;
    committed.wait_for(&expected, Duration::from_secs(30)).await;

    // The zombie wakes up: its commit is refused (its producer was fenced
    // when its transaction timed out, and its generation is stale), so it
    // closes its tasks dirty and rejoins.
    let before = a.dirty_closes_for_tests();
    a.resume_for_tests();
    wait_until("the zombie to be fenced", Duration::from_secs(15), || {
        a.dirty_closes_for_tests() > before
    })
    .await;
    wait_until(
        "the zombie to rejoin and get tasks",
        Duration::from_secs(20),
        || !a.local_tasks().is_empty(),
    )
    .await;
    a.close().await.unwrap();
    b.close().await.unwrap();

    // Nothing the zombie did after it woke up was committed twice.
    while committed.read(Duration::from_millis(300)).await > 0 {}
    assert_eq!(committed.latest(), expected);
    let bad = committed.not_increasing();
    assert!(
        bad.is_empty(),
        "duplicated or regressed counts: {:?}",
        bad.first()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_clean_close_leaves_a_checkpoint() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::in_memory().await.unwrap();
    create_topics(&broker).await;
    let lines = corpus(20_000, 31);
    let (first, second) = lines.split_at(10_000);
    let checkpoints = |dir: &Path| {
        (0..PARTITIONS)
            .filter(|p| dir.join(format!("restart/1_{p}/.checkpoint")).exists())
            .count()
    };
    let mut committed = Committed::new(&broker).await;

    // A clean close writes a checkpoint per counting task, after the last
    // transaction committed; the next start restores from it.
    let mut app = StreamsApp::new(
        word_count(),
        shared_config("restart", dir.path()),
        broker.clone(),
    );
    app.start().await.unwrap();
    produce(&broker, first).await;
    committed
        .wait_for(&count_words(first), Duration::from_secs(20))
        .await;
    app.close().await.unwrap();
    assert_eq!(checkpoints(dir.path()), PARTITIONS as usize);

    let mut app = StreamsApp::new(
        word_count(),
        shared_config("restart", dir.path()),
        broker.clone(),
    );
    app.start().await.unwrap();
    wait_until("the tasks to run", Duration::from_secs(20), || {
        app.local_tasks().len() == 2 * PARTITIONS as usize
            && app.state() == streams_core::AppState::Running
    })
    .await;
    assert_eq!(app.restored_records(), 0, "the checkpoints were not used");
    // While tasks run, no checkpoint vouches for their stores.
    assert_eq!(checkpoints(dir.path()), 0);

    // A kill leaves no checkpoint: the next start wipes the stores and
    // restores them from the changelogs; its producers fence the killed
    // ones (same transactional ids) and abort their open transactions.
    produce(&broker, second).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while committed.latest() == count_words(first) {
        assert!(Instant::now() < deadline, "no new output was committed");
        committed.read(Duration::from_millis(50)).await;
    }
    app.kill_for_tests().await;
    assert_eq!(checkpoints(dir.path()), 0);
    let mut app = StreamsApp::new(
        word_count(),
        shared_config("restart", dir.path()),
        broker.clone(),
    );
    app.start().await.unwrap();
    committed
        .wait_for(&count_words(&lines), Duration::from_secs(30))
        .await;
    assert!(app.restored_records() > 0);
    let bad = committed.not_increasing();
    assert!(
        bad.is_empty(),
        "duplicated or regressed counts: {:?}",
        bad.first()
    );
    app.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zombie_paused_inside_its_commit_commits_before_the_new_owner_starts() {
    // A transaction timeout well past the pause: the zombie's transaction
    // is still open, with its offsets in it, when it wakes up.
    let Pair {
        mut a,
        mut b,
        mut committed,
        expected,
        _dirs,
    } = start_pair("unstable", 30_000, 37).await;
    // A stops after sending its offsets into its transaction, before
    // committing it, past its session timeout. B takes every task, but must
    // not start from the committed offsets while A's are pending: A's
    // transaction still commits when A wakes up (its producer is not
    // fenced), and B would then redo what A committed.
    a.pause_for_tests(PausePoint::InsideCommit);
    wait_until("B to own every task", Duration::from_secs(20), || {
        b.local_tasks().len() == 2 * PARTITIONS as usize
    })
    .await;
    let before = a.dirty_closes_for_tests();
    a.resume_for_tests();
    wait_until(
        "the zombie to learn it lost its tasks",
        Duration::from_secs(15),
        || a.dirty_closes_for_tests() > before,
    )
    .await;

    committed.wait_for(&expected, Duration::from_secs(30)).await;
    a.close().await.unwrap();
    b.close().await.unwrap();
    while committed.read(Duration::from_millis(300)).await > 0 {}
    assert_eq!(committed.latest(), expected);
    let bad = committed.not_increasing();
    assert!(
        bad.is_empty(),
        "duplicated or regressed counts: {:?}",
        bad.first()
    );
}
