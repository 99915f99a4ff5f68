//! Runnable examples and benchmarks.
//!
//! The binaries in `src/bin/` (`wordcount`, `vendor_rides`, `pageviews`,
//! `table_stream_duality`), the word-count benchmark and the end-to-end
//! word-count test share what is here: the word-count topology written with
//! the DSL ([`word_count_topology`]), its plain `HashMap` twin
//! ([`count_words`]), a deterministic text generator ([`corpus`]), and the
//! helpers that run an application until every input record is processed
//! and committed ([`wait_until_idle`]) and that load an input so that a run
//! killed at any moment and started again loads each record exactly once
//! ([`load_input`]). [`cluster::Cluster`] offers these on the embedded
//! broker and on a Kafka cluster alike (the binaries' `--bootstrap-server`).
//! [`windowed`] holds the page-view topology of the `pageviews` binary and
//! its model.
//!
//! For runs on Apache Kafka itself: [`apache_kafka`] starts a single-node
//! Apache Kafka broker, [`kafka_streams`] runs Kafka Streams' own word count
//! (Java) against it, [`kafka_progress`] tells whether a consumer group has
//! processed all its input, and [`process`] reads what a child process costs
//! (CPU time, peak memory).

// `StreamsError` is streams-core's error; its size is that crate's choice.
#![allow(clippy::result_large_err)]

pub mod agents;
pub mod apache_kafka;
pub mod bench;
pub mod cluster;
mod embedded;
pub mod enrichment;
pub mod kafka_cluster;
mod kafka_context;
pub mod kafka_progress;
pub mod kafka_streams;
pub mod kill_loop;
mod load;
pub mod process;
mod progress;
pub mod windowed;

pub use embedded::{
    ensure_topic, group_progress, load_input, produce_values, read_committed, wait_until_idle,
};
pub use load::InputLoad;
pub use progress::GroupProgress;

use std::collections::HashMap;
use std::time::Duration;

use streams_core::{Serdes, StoreBackend, Topology};
use streams_dsl::{Consumed, Grouped, Materialized, Named, Produced, StreamsBuilder};

/// The word count's input topic: one line of text per record.
pub const TEXT_LINES_TOPIC: &str = "text-lines";
/// The word count's output topic: word → count (`i64`, big-endian).
pub const WORD_COUNTS_TOPIC: &str = "word-counts";
/// The word count's state store (and, with `-repartition`, the name of its
/// repartition topic).
pub const WORD_COUNTS_STORE: &str = "word-counts";

/// The words of `line` under the word count's rule: lowercase the line, then
/// split it on Unicode whitespace.
pub fn words(line: &str) -> Vec<String> {
    line.to_lowercase()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// The word count of `docs/dsl.md`: lines of `text-lines` are lowercased and
/// split on whitespace, regrouped by word (through the repartition topic
/// `word-counts-repartition`), counted in the store `word-counts`, and each
/// new count goes to the topic `word-counts` (key: the word as UTF-8, value:
/// the count as a big-endian `i64`).
///
/// `backend` chooses the store's engine; `None` takes the default
/// ([`StoreBackend::default`]).
///
/// ```
/// let topology = examples::word_count_topology(None)?;
/// let text = topology.describe().to_string();
/// assert!(text.contains("(topic: word-counts-repartition)"));
/// assert!(text.contains("(stores: [word-counts])"));
/// # Ok::<(), streams_core::StreamsError>(())
/// ```
pub fn word_count_topology(backend: Option<StoreBackend>) -> streams_core::Result<Topology> {
    let builder = StreamsBuilder::new();
    let mut store = Materialized::as_(WORD_COUNTS_STORE);
    if let Some(backend) = backend {
        store = store.with_backend(backend);
    }
    builder
        .stream::<String, String>(
            TEXT_LINES_TOPIC,
            Consumed::with(Serdes::string(), Serdes::string()),
        )
        .flat_map_values(|line| words(line))
        .group_by(
            |_key, word| word.clone(),
            Grouped::with(Serdes::string(), Serdes::string()),
        )
        .count_named(Named::as_("count-words"), store)
        .to_stream()
        .to(
            WORD_COUNTS_TOPIC,
            Produced::with(Serdes::string(), Serdes::i64()),
        );
    builder.build()
}

/// A plain single-threaded count of `lines` with the same rule as
/// [`word_count_topology`] (see [`words`]).
pub fn count_words<'a>(lines: impl IntoIterator<Item = &'a String>) -> HashMap<String, u64> {
    let mut counts: HashMap<String, u64> = HashMap::new();
    for line in lines {
        let lower = line.to_lowercase();
        for word in lower.split_whitespace() {
            match counts.get_mut(word) {
                Some(count) => *count += 1,
                None => {
                    counts.insert(word.to_owned(), 1);
                }
            }
        }
    }
    counts
}

/// The vocabulary of [`corpus`], most frequent first.
const VOCABULARY: &[&str] = &[
    "the",
    "of",
    "and",
    "to",
    "a",
    "in",
    "that",
    "it",
    "was",
    "he",
    "I",
    "his",
    "with",
    "as",
    "had",
    "for",
    "you",
    "her",
    "she",
    "not",
    "at",
    "be",
    "on",
    "is",
    "but",
    "him",
    "my",
    "all",
    "said",
    "have",
    "they",
    "from",
    "which",
    "so",
    "by",
    "this",
    "were",
    "one",
    "me",
    "no",
    "what",
    "an",
    "there",
    "would",
    "then",
    "if",
    "them",
    "we",
    "been",
    "could",
    "into",
    "when",
    "their",
    "upon",
    "more",
    "out",
    "up",
    "old",
    "man",
    "sea",
    "whale",
    "ship",
    "boat",
    "captain",
    "water",
    "deck",
    "harpoon",
    "crew",
    "voyage",
    "ocean",
    "wind",
    "sail",
    "mast",
    "night",
    "day",
    "long",
    "great",
    "white",
    "little",
    "time",
    "now",
    "like",
    "some",
    "see",
    "over",
    "only",
    "down",
    "again",
    "never",
    "still",
    "first",
    "last",
    "ever",
    "here",
    "thought",
    "heart",
    "eyes",
    "head",
    "hand",
    "face",
    "world",
    "life",
    "death",
    "land",
    "shore",
    "harbour",
    "island",
    "storm",
    "wave",
    "waves",
    "tide",
    "morning",
    "evening",
    "light",
    "dark",
    "deep",
    "wild",
    "strange",
    "silent",
    "whole",
    "cold",
    "warm",
    "blue",
    "green",
    "grey",
    "black",
    "red",
    "golden",
    "ancient",
    "young",
    "poor",
    "rich",
    "brave",
    "weary",
    "lonely",
    "quiet",
    "stood",
    "looked",
    "turned",
    "came",
    "went",
    "saw",
    "heard",
    "knew",
    "found",
    "told",
    "asked",
    "cried",
    "laughed",
    "watched",
    "waited",
    "followed",
    "sailed",
    "rowed",
    "struck",
    "pulled",
    "rose",
    "fell",
    "Ahab",
    "Ishmael",
    "Queequeg",
    "Starbuck",
    "Stubb",
    "Flask",
    "Pequod",
    "Nantucket",
    "Leviathan",
    "Jonah",
    "oil",
    "rope",
    "line",
    "timber",
    "plank",
    "anchor",
    "compass",
    "lantern",
    "chart",
    "bell",
    "cabin",
    "forecastle",
    "hold",
    "barrel",
    "spout",
    "fin",
    "flukes",
    "jaw",
    "bone",
    "ivory",
    "leg",
    "chase",
    "hunt",
    "fortune",
    "fate",
    "madness",
    "vengeance",
    "prayer",
    "sermon",
    "chapel",
    "inn",
    "bed",
    "fire",
    "smoke",
    "pipe",
    "coffin",
    "mystery",
    "wonder",
    "silence",
    "thunder",
    "lightning",
    "fog",
    "ice",
    "gale",
    "calm",
    "Monday",
    "October",
    "Massachusetts",
];

/// A deterministic English-like text of `lines` lines, 3 to 14 words each,
/// words drawn from a fixed vocabulary with Zipf-like frequencies, mixed
/// case (the first word of a line is capitalised) so that lowercasing
/// matters. The same `(lines, seed)` always gives the same text.
pub fn corpus(lines: usize, seed: u64) -> Vec<String> {
    corpus_with_line_words(lines, seed, 3, 14)
}

/// [`corpus`] with lines of `min_words` to `max_words` words (both at least
/// 1).
pub fn corpus_with_line_words(
    lines: usize,
    seed: u64,
    min_words: u64,
    max_words: u64,
) -> Vec<String> {
    let min_words = min_words.max(1);
    let spread = max_words.max(min_words) - min_words + 1;
    let mut state = seed | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    // Cumulative weights 1 / (rank + 1), scaled to integers.
    let mut cumulative = Vec::with_capacity(VOCABULARY.len());
    let mut total = 0u64;
    for rank in 0..VOCABULARY.len() as u64 {
        total += 1_000_000 / (rank + 1);
        cumulative.push(total);
    }
    (0..lines)
        .map(|_| {
            let count = min_words + next() % spread;
            let mut line = String::new();
            for i in 0..count {
                let pick = next() % total;
                let index = cumulative.partition_point(|&c| c <= pick);
                let word = VOCABULARY[index.min(VOCABULARY.len() - 1)];
                if i > 0 {
                    line.push(' ');
                }
                if i == 0 {
                    let mut chars = word.chars();
                    if let Some(first) = chars.next() {
                        line.extend(first.to_uppercase());
                        line.push_str(chars.as_str());
                    }
                } else {
                    line.push_str(word);
                }
            }
            line
        })
        .collect()
}

/// Lines `first..first + count` of a text in which every word is distinct:
/// line `n` holds the words `n * words_per_line ..`, each the 8 lowercase
/// hex digits of a bijective scramble of its index (so that words are
/// distinct for up to 2^32 of them and do not arrive in key order). For
/// measuring what a store costs per key.
pub fn distinct_word_lines(first: u64, count: u64, words_per_line: u64) -> Vec<String> {
    (first..first + count)
        .map(|line| {
            let mut text = String::with_capacity((words_per_line * 9) as usize);
            for i in 0..words_per_line {
                if i > 0 {
                    text.push(' ');
                }
                let index = line * words_per_line + i;
                // Truncation to 32 bits is the point: the scramble is a
                // bijection of u32.
                let word = scramble(index as u32);
                text.push_str(&format!("{word:08x}"));
            }
            text
        })
        .collect()
}

/// A bijection of `u32` (odd multiplications and xor-shifts are each
/// invertible) that spreads consecutive indexes over the whole range.
fn scramble(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^= x >> 16;
    x
}

/// The text the `wordcount` binary runs on when no `--input` is given:
/// [`corpus`] of 100,000 lines (about 5 MB).
pub fn bundled_text() -> Vec<String> {
    corpus(100_000, 0x005e_ed0f_1851)
}

/// The topics the application `application_id` reads on the broker: the
/// topology's source topics, with internal topics (repartition topics, a
/// foreign-key join's subscription and response topics) under their
/// physical name `<application.id>-<name>` ([`Topology::physical_source_topics`]).
pub fn physical_source_topics(topology: &Topology, application_id: &str) -> Vec<String> {
    topology.physical_source_topics(application_id)
}

/// The CPU time each thread of the process has run so far, by thread id
/// (`/proc/self/task/*/schedstat`), where the platform has it; empty
/// elsewhere. Two snapshots give the CPU time of a stretch of a run per
/// thread, a steadier figure than the wall time on a busy machine.
pub fn thread_cpu_times() -> HashMap<u64, Duration> {
    let mut times = HashMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return times;
    };
    for task in tasks.flatten() {
        let Some(tid) = task.file_name().to_str().and_then(|t| t.parse().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        if let Some(ns) = stat.split_whitespace().next().and_then(|n| n.parse().ok()) {
            times.insert(tid, Duration::from_nanos(ns));
        }
    }
    times
}

/// The CPU time run between two [`thread_cpu_times`] snapshots: by all
/// threads together, and by the busiest one.
pub fn cpu_between(
    before: &HashMap<u64, Duration>,
    after: &HashMap<u64, Duration>,
) -> (Duration, Duration) {
    let mut total = Duration::ZERO;
    let mut busiest = Duration::ZERO;
    for (tid, &time) in after {
        let ran = time.saturating_sub(before.get(tid).copied().unwrap_or_default());
        total += ran;
        busiest = busiest.max(ran);
    }
    (total, busiest)
}

/// The process's peak resident set size in KiB (`VmHWM` of
/// `/proc/self/status`), where the platform has it.
pub fn peak_memory_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// `println!` that returns the write's `std::io::Result` instead of
/// panicking when stdout is closed (`wordcount | head`).
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        ::std::writeln!(::std::io::stdout().lock(), $($arg)*)
    }};
}

/// Whether `error` comes from writing to a closed pipe: the reader (`head`,
/// say) has what it wanted, which is not a failure.
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Sends `tracing` output to stderr, filtered by `RUST_LOG` (default:
/// warnings).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // A second initialisation (a test calling this twice) keeps the first.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corpus_is_deterministic_and_mixed_case() {
        let a = corpus(1_000, 3);
        assert_eq!(a, corpus(1_000, 3));
        assert_ne!(a, corpus(1_000, 4));
        assert!(a.iter().any(|l| l.chars().any(char::is_uppercase)));
        let counts = count_words(&a);
        assert!(counts.keys().all(|w| *w == w.to_lowercase()));
        let total: u64 = counts.values().sum();
        let expected: usize = a.iter().map(|l| words(l).len()).sum();
        assert_eq!(total, expected as u64);
    }

    #[test]
    fn the_topology_has_two_sub_topologies() -> streams_core::Result<()> {
        let topology = word_count_topology(Some(StoreBackend::InMemory))?;
        assert_eq!(topology.describe().subtopologies.len(), 2);
        assert_eq!(
            physical_source_topics(&topology, "wc"),
            ["text-lines", "wc-word-counts-repartition"]
        );
        Ok(())
    }

    #[test]
    fn peak_memory_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(peak_memory_kib().is_some_and(|kib| kib > 0));
        }
    }
}
