//! The `agents_wordcount` binary killed with SIGKILL again and again over
//! one data dir and restarted each time, then left to finish. Under
//! `exactly_once_v2`, read `read_committed`, every word's counts on
//! `word-counts` are exactly 1, 2, ..., n with n its count in the input: no
//! count lost, none repeated. Under `at_least_once` nothing is lost: every
//! count up to the input's is there, and the final counts are at least
//! the input's.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use broker_embedded::{Broker, BrokerConfig};

/// Enough lines for kills to land mid-work in a debug build (a whole run
/// of them takes several seconds there).
const LINES: usize = 20_000;
const KILLS: usize = 5;
const FINISH_TIMEOUT: Duration = Duration::from_secs(300);

/// Kills the binary `KILLS` times at seeded delays, then lets it finish;
/// returns the committed counts per word, in order.
fn run_with_kills(guarantee: &str) -> BTreeMap<String, Vec<i64>> {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Kills from 0.3 s (mid-load) to 2.3 s (mid-processing).
    examples::kill_loop::kill_then_finish(dir.path(), KILLS, (300, 2_000), FINISH_TIMEOUT, |log| {
        Command::new(env!("CARGO_BIN_EXE_agents_wordcount"))
            .arg("--data-dir")
            .arg(&data)
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
    })
    .unwrap();

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
