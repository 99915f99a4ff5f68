//! Memory set by configuration, not by the data: the `wordcount` binary
//! counts 1,000,000 distinct words into a redb store with a small budget
//! (1 MiB of record cache, 4 MiB of redb cache, 200 buffered records per
//! partition, 4 MiB of output), and its peak resident memory, which it
//! prints, stays under a bound that per-key memory would break: a
//! `HashMap<String, u64>` of these words alone takes about 136 bytes a
//! word, about 195 MiB.
//!
//! The input is loaded into the run's data dir by this test, so that the
//! measured process holds none of it.

use std::path::Path;
use std::process::Command;

use broker_embedded::{Broker, BrokerConfig};
use examples::{distinct_word_lines, ensure_topic, produce_values, TEXT_LINES_TOPIC};

const WORDS: u64 = 1_000_000;
const WORDS_PER_LINE: u64 = 10;
/// The bound on the run's peak RSS: the budget's parts (about 20 MiB with
/// the three tasks' redb caches), the program and its threads (a debug
/// build), and a margin for the allocator; measured at about 67 MiB.
const BOUND_MIB: f64 = 100.0;

async fn load(data_dir: &Path) {
    let broker = Broker::open(data_dir.join("broker"), BrokerConfig::default())
        .await
        .unwrap();
    ensure_topic(&broker, TEXT_LINES_TOPIC, 3).await.unwrap();
    let lines = WORDS / WORDS_PER_LINE;
    let mut first = 0;
    while first < lines {
        let count = 10_000.min(lines - first);
        let chunk = distinct_word_lines(first, count, WORDS_PER_LINE);
        produce_values(&broker, TEXT_LINES_TOPIC, &chunk, 1_700_000_000_000)
            .await
            .unwrap();
        first += count;
    }
    broker.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_word_count_of_many_distinct_words_stays_within_its_memory_budget() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    load(&data_dir).await;
    let output = Command::new(env!("CARGO_BIN_EXE_wordcount"))
        .args(["--data-dir", &data_dir.to_string_lossy()])
        .args(["--no-load", "--exit-when-idle", "--store", "redb"])
        .args(["--config", "cache.max.bytes.buffering=1048576"])
        .args(["--config", "statestore.redb.cache.max.bytes=4194304"])
        .args(["--config", "buffered.records.per.partition=200"])
        .args(["--config", "producer.buffer.memory=4194304"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "wordcount failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(&format!("{WORDS} distinct words")),
        "not every word was counted:\n{stdout}"
    );
    let peak_mib: f64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("peak resident memory: "))
        .and_then(|rest| rest.trim_end_matches(" MiB").parse().ok())
        .unwrap_or_else(|| panic!("no peak memory printed:\n{stdout}"));
    eprintln!("peak RSS {peak_mib:.1} MiB for {WORDS} distinct words");
    assert!(
        peak_mib < BOUND_MIB,
        "peak RSS {peak_mib:.1} MiB for {WORDS} distinct words, over the {BOUND_MIB} MiB bound:\n{stdout}"
    );
}
