//! The `agents_wordcount` binary killed with SIGKILL again and again over
//! one data dir and restarted each time, then left to finish. Under
//! `exactly_once_v2`, read `read_committed`, every word's counts on
//! `word-counts` are exactly 1, 2, ..., n with n its count in the input: no
//! count lost, none repeated. Under `at_least_once` nothing is lost: every
//! count up to the input's is there, and the final counts are at least
//! the input's.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use broker_embedded::{Broker, BrokerConfig};

/// Enough lines for kills to land mid-work in a debug build (a whole run
/// of them takes several seconds there).
const LINES: usize = 20_000;
const KILLS: usize = 5;
const FINISH_TIMEOUT: Duration = Duration::from_secs(300);

fn spawn(dir: &Path, index: usize, guarantee: &str) -> Child {
    let log = File::create(dir.join(format!("run-{index}.log"))).unwrap();
    Command::new(env!("CARGO_BIN_EXE_agents_wordcount"))
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args([
            "--lines",
            &LINES.to_string(),
            "--guarantee",
            guarantee,
            "--commit-interval-ms",
            "100",
            "--exit-when-idle",
        ])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

fn log_tail(dir: &Path, index: usize) -> String {
    let log = std::fs::read_to_string(dir.join(format!("run-{index}.log"))).unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(20).collect();
    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
}

/// Kills the binary `KILLS` times at seeded delays, then lets it finish;
/// returns the committed counts per word, in order.
fn run_with_kills(guarantee: &str) -> BTreeMap<String, Vec<i64>> {
    let dir = tempfile::tempdir().unwrap();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(7, |d| d.subsec_nanos() as u64);
    println!("kill seed {seed}");
    let mut killed_mid_work = 0;
    for kill in 0..KILLS {
        let mut child = spawn(dir.path(), kill, guarantee);
        // From 0.3 s (mid-load) to 2.3 s (mid-processing).
        let delay = 300
            + (seed
                .wrapping_mul(kill as u64 + 1)
                .wrapping_mul(2_654_435_761)
                % 2_000);
        std::thread::sleep(Duration::from_millis(delay));
        if let Some(status) = child.try_wait().unwrap() {
            assert!(
                status.success(),
                "run {kill} failed:\n{}",
                log_tail(dir.path(), kill)
            );
            println!("run {kill} finished before its kill");
            continue;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        killed_mid_work += 1;
        println!("killed run {kill} after {delay} ms");
    }
    let mut child = spawn(dir.path(), KILLS, guarantee);
    let deadline = Instant::now() + FINISH_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!(
                "the last run did not finish:\n{}",
                log_tail(dir.path(), KILLS)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        status.success(),
        "the last run failed:\n{}",
        log_tail(dir.path(), KILLS)
    );
    assert!(
        killed_mid_work > 0,
        "no kill landed while the binary was working"
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let broker = Broker::open(
            dir.path().join("data").join("broker"),
            BrokerConfig::default(),
        )
        .await
        .unwrap();
        let records = examples::read_committed(&broker, "word-counts", Duration::from_secs(60))
            .await
            .unwrap();
        broker.close().await.unwrap();
        let mut counts: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        for r in records {
            let word = String::from_utf8(r.key.unwrap().to_vec()).unwrap();
            let value = r.value.unwrap();
            let count = i64::from_be_bytes(value[..8].try_into().unwrap());
            counts.entry(word).or_default().push(count);
        }
        counts
    })
}

/// The count of each word of the input.
fn expected() -> BTreeMap<String, i64> {
    let mut expected = BTreeMap::new();
    for line in examples::bundled_text().iter().take(LINES) {
        for word in examples::words(line) {
            *expected.entry(word).or_insert(0) += 1;
        }
    }
    expected
}

#[test]
fn exactly_once_counts_every_word_once_after_sigkills() {
    let counts = run_with_kills("exactly_once_v2");
    let expected = expected();
    assert_eq!(
        counts.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (word, n) in expected {
        assert_eq!(
            counts[&word],
            (1..=n).collect::<Vec<_>>(),
            "the counts of {word:?}: a count lost or repeated"
        );
    }
}

#[test]
fn at_least_once_loses_nothing_after_sigkills() {
    let counts = run_with_kills("at_least_once");
    for (word, n) in expected() {
        let seen = &counts[&word];
        for k in 1..=n {
            assert!(seen.contains(&k), "count {k} of {word:?} was lost");
        }
        assert!(seen.iter().max() >= Some(&n), "{word:?}: {seen:?}");
    }
}
