//! The `wordcount` binary after the files of a store were deleted under
//! its checkpoint.
//!
//! A run over a fresh data dir counts the first part of a corpus and exits
//! cleanly, leaving a `.checkpoint` in each task directory of
//! `<data dir>/state/wordcount/`. The test deletes the `word-counts` store
//! of task `1_0` and keeps the checkpoint, then runs the binary again on the
//! whole corpus (the first part is already in `text-lines`; the loader adds
//! the rest). The counts that come out, and the latest value of every word
//! in the store's changelog, must be those of the whole corpus: the store
//! without its files is restored from the beginning of its changelog, with
//! a warning, not from the checkpoint's offset.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use broker_embedded::{
    AutoOffsetReset, Broker, BrokerConfig, Consumer, ConsumerConfig, IsolationLevel,
};
use examples::{corpus_with_line_words, count_words, WORD_COUNTS_STORE, WORD_COUNTS_TOPIC};

const CHANGELOG: &str = "wordcount-word-counts-changelog";

/// Runs the binary to the end with `RUST_LOG=warn`; returns its stderr.
fn run(data_dir: &Path, input: &Path, guarantee: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_wordcount"))
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--input")
        .arg(input)
        .args([
            "--guarantee",
            guarantee,
            "--store",
            "redb",
            "--commit-interval-ms",
            "100",
            "--exit-when-idle",
        ])
        .env("RUST_LOG", "warn")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "{guarantee}: the run failed: {stderr}"
    );
    stderr
}

/// The latest value of each key of `topic` (read with `read_committed`),
/// decoded by `count` from the value bytes.
fn latest(data_dir: &Path, topic: &str, count: fn(&[u8]) -> i64) -> HashMap<String, i64> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let broker = Broker::open(data_dir.join("broker"), BrokerConfig::default())
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
        consumer.assign_topic(topic).await.unwrap();
        let mut latest = HashMap::new();
        loop {
            let records = consumer.poll(Duration::from_millis(300)).await.unwrap();
            if records.is_empty() {
                break;
            }
            for record in records {
                let key = String::from_utf8(record.key.unwrap().to_vec()).unwrap();
                latest.insert(key, count(&record.value.unwrap()));
            }
        }
        drop(consumer);
        broker.close().await.unwrap();
        latest
    })
}

/// A count as the output topic holds it: a big-endian `i64`.
fn output_count(bytes: &[u8]) -> i64 {
    i64::from_be_bytes(bytes.try_into().unwrap())
}

/// A count as the changelog holds it: the timestamp, then the count, both
/// big-endian `i64`s.
fn changelog_count(bytes: &[u8]) -> i64 {
    i64::from_be_bytes(bytes[8..].try_into().unwrap())
}

fn store_files_deleted_under_a_checkpoint(guarantee: &str) {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let lines = corpus_with_line_words(30_000, 0x5107_e10a, 1, 3);
    let first = dir.path().join("first.txt");
    std::fs::write(&first, lines[..20_000].join("\n") + "\n").unwrap();
    let all = dir.path().join("all.txt");
    std::fs::write(&all, lines.join("\n") + "\n").unwrap();
    let expected: HashMap<String, i64> = count_words(&lines)
        .into_iter()
        .map(|(word, n)| (word, n as i64))
        .collect();

    run(&data_dir, &first, guarantee);
    // Sub-topology 1 counts; its task 1_0 loses its store.
    let task_dir = data_dir.join("state").join("wordcount").join("1_0");
    let checkpoint = state_store::Checkpoint::read(&task_dir.join(".checkpoint"))
        .unwrap()
        .expect("a clean exit leaves a checkpoint");
    assert!(
        checkpoint
            .get(CHANGELOG, 0)
            .is_some_and(|offset| offset > 0),
        "the checkpoint names no offset of {CHANGELOG}-0"
    );
    std::fs::remove_dir_all(task_dir.join(WORD_COUNTS_STORE)).unwrap();

    let stderr = run(&data_dir, &all, guarantee);
    let output = latest(&data_dir, WORD_COUNTS_TOPIC, output_count);
    let wrong: Vec<_> = expected
        .iter()
        .filter(|(word, n)| output.get(*word) != Some(n))
        .take(5)
        .collect();
    assert!(
        wrong.is_empty() && output.len() == expected.len(),
        "{guarantee}: wrong counts in {WORD_COUNTS_TOPIC}, e.g. (word, expected) {wrong:?}"
    );
    let logged = latest(&data_dir, CHANGELOG, changelog_count);
    assert_eq!(
        logged, expected,
        "{guarantee}: the changelog's latest counts"
    );
    assert!(
        stderr.contains("discarding the checkpoint: the store's files are missing"),
        "{guarantee}: no warning about the discarded checkpoint: {stderr}"
    );
}

#[test]
fn at_least_once_restores_a_store_whose_files_were_deleted() {
    store_files_deleted_under_a_checkpoint("at_least_once");
}

#[test]
fn exactly_once_v2_restores_a_store_whose_files_were_deleted() {
    store_files_deleted_under_a_checkpoint("exactly_once_v2");
}
