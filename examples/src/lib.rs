//! Runnable examples and benchmarks.
//!
//! The binaries in `src/bin/` (`wordcount`, `vendor_rides`, `pageviews`,
//! `table_stream_duality`), the word-count benchmark and the end-to-end
//! word-count test share what is here: the word-count topology written with
//! the DSL ([`word_count_topology`]), its plain `HashMap` twin
//! ([`count_words`]), a deterministic text generator ([`corpus`]), and the
//! helpers that run an application on the embedded broker until every input
//! record is processed and committed ([`wait_until_idle`]) and that load an
//! input so that a run killed at any moment and started again loads each
//! record exactly once ([`load_input`]). [`windowed`]
//! holds the page-view topology of the `pageviews` binary and its model.
//!
//! For runs on Apache Kafka itself: [`apache_kafka`] starts a single-node
//! Apache Kafka broker, [`kafka_streams`] runs Kafka Streams' own word count
//! (Java) against it, [`kafka_progress`] tells whether a consumer group has
//! processed all its input, and [`process`] reads what a child process costs
//! (CPU time, peak memory).

// `StreamsError` is streams-core's error; its size is that crate's choice.
#![allow(clippy::result_large_err)]

pub mod apache_kafka;
pub mod bench;
pub mod kafka_progress;
pub mod kafka_streams;
pub mod process;
pub mod windowed;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use broker_embedded::{Broker, BrokerError, NewTopic, Producer, ProducerRecord};
use streams_core::{AppState, NodeKindDescription, Serdes, StoreBackend, StreamsApp, Topology};
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

/// The text the `wordcount` binary runs on when no `--input` is given:
/// [`corpus`] of 100,000 lines (about 5 MB).
pub fn bundled_text() -> Vec<String> {
    corpus(100_000, 0x005e_ed0f_1851)
}

/// Creates `topic` with `partitions` partitions unless it exists; returns
/// its partition count.
pub async fn ensure_topic(broker: &Broker, topic: &str, partitions: u32) -> anyhow::Result<u32> {
    broker
        .ensure_topic(NewTopic::new(topic, partitions))
        .await
        .with_context(|| format!("cannot create topic {topic}"))?;
    broker
        .partition_count(topic)
        .await
        .with_context(|| format!("cannot describe topic {topic}"))
}

/// Produces `values` (no key) to `topic` in batches of 5,000, with
/// increasing timestamps from `first_timestamp`.
///
/// For a topic that starts empty and is never loaded again (a benchmark, a
/// temporary data dir): a load killed half way and run again would write
/// the values twice. An input that must survive restarts is loaded with
/// [`load_input`].
pub async fn produce_values<V: AsRef<[u8]>>(
    broker: &Broker,
    topic: &str,
    values: &[V],
    first_timestamp: i64,
) -> anyhow::Result<()> {
    let mut timestamp = first_timestamp;
    let batches = values.chunks(5_000).map(|chunk| {
        chunk
            .iter()
            .map(|v| {
                timestamp += 1;
                ProducerRecord::new(topic, v.as_ref().to_vec()).timestamp(timestamp)
            })
            .collect()
    });
    send_and_flush(broker, topic, batches).await
}

/// Sends each batch in turn with one producer, then flushes `topic` (a commit point).
async fn send_and_flush(
    broker: &Broker,
    topic: &str,
    batches: impl Iterator<Item = Vec<ProducerRecord>>,
) -> anyhow::Result<()> {
    let producer = Producer::new(broker);
    for batch in batches {
        producer
            .send_batch(batch)
            .await
            .with_context(|| format!("cannot produce to {topic}"))?;
    }
    producer
        .flush(&[topic])
        .await
        .with_context(|| format!("cannot flush {topic}"))?;
    Ok(())
}

/// What [`load_input`] found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputLoad {
    /// Records of the input that the topic held already (from an earlier
    /// run, complete or interrupted).
    pub held: u64,
    /// Records this call appended.
    pub produced: u64,
}

/// How many input records go into one `send_batch` call of [`load_input`].
const LOAD_CHUNK: usize = 5_000;

/// Loads the `len` records `record(0)`, `record(1)`, ... into `topic`, so
/// that a load killed at any moment (SIGKILL included, in the middle of a
/// batch) and run again with the same input completes it, each record
/// written exactly once.
///
/// Each record goes to a fixed partition: its own if it names one, else
/// murmur2 of its key (the producer's default for a keyed record), else its
/// index modulo the partition count. A partition's records are appended in
/// index order by one idempotent producer. The broker writes every batch to
/// its segment file before acknowledging it, and when it opens it truncates
/// a batch that a kill tore; so after a kill (the page cache survives a
/// process crash) each partition holds a prefix of its records, complete
/// batches only. The load counts what each partition holds (its log end
/// offset: the topic must be written by this loader only, without
/// transactions) and appends the rest. Nothing depends on what the killed
/// run acknowledged or on which producer wrote what, and producing an input
/// again whole, or in one transaction, is not needed: a restart resumes
/// where the log ends.
///
/// Before appending, the last record held in each partition is compared
/// with the input record that belongs there: a topic that holds another
/// input (a data dir loaded from another file, or by an older version that
/// spread records differently), or more records than the input has, is an
/// error rather than a silent mix. The load ends with a commit point of the
/// topic (an fsync under the default `log.flush.policy`), so a completed
/// load survives a power loss as well.
pub async fn load_input(
    broker: &Broker,
    topic: &str,
    len: usize,
    record: impl Fn(usize) -> ProducerRecord,
) -> anyhow::Result<InputLoad> {
    let partitions = broker
        .partition_count(topic)
        .await
        .with_context(|| format!("cannot describe topic {topic}"))?;
    if partitions == 0 {
        bail!("topic {topic} has no partitions");
    }
    // The index of each input record, by partition, in index order.
    let mut of_partition: Vec<Vec<usize>> = vec![Vec::new(); partitions as usize];
    let mut records: Vec<Option<ProducerRecord>> = Vec::with_capacity(len);
    for i in 0..len {
        let mut r = record(i);
        let partition = match (r.partition, &r.key) {
            (Some(p), _) => p,
            (None, Some(key)) => broker_embedded::partitioner::partition_for_key(key, partitions),
            (None, None) => (i % partitions as usize) as u32,
        };
        let Some(list) = of_partition.get_mut(partition as usize) else {
            bail!(
                "input record {i} names partition {partition} of {topic}, which has {partitions}"
            );
        };
        list.push(i);
        r.partition = Some(partition);
        records.push(Some(r));
    }

    let mut held_total = 0u64;
    let mut missing: Vec<usize> = Vec::new();
    for (partition, indexes) in (0u32..).zip(&of_partition) {
        let (log_start, held) = broker
            .offsets(topic, partition)
            .await
            .with_context(|| format!("cannot read the offsets of {topic}-{partition}"))?;
        let expected = indexes.len() as u64;
        if held > expected {
            bail!(
                "{topic}-{partition} holds {held} records, more than the {expected} of this \
                 input that belong there: the data dir holds another input; use a fresh one"
            );
        }
        let held_len = held as usize;
        if held > log_start {
            let last = held - 1;
            let index = indexes[held_len - 1];
            let found = record_at(broker, topic, partition, last).await?;
            let wanted = records[index].as_ref();
            let same = match (&found, wanted) {
                (Some(f), Some(w)) => f.key == w.key && f.value == w.value,
                _ => true,
            };
            if !same {
                bail!(
                    "{topic}-{partition} does not hold the start of this input: its record at \
                     offset {last} is not input record {index} (a data dir loaded with another \
                     input, or by an older version that spread records differently); use a \
                     fresh data dir"
                );
            }
        }
        held_total += held;
        missing.extend_from_slice(&indexes[held_len..]);
    }
    missing.sort_unstable();

    let batches = missing
        .chunks(LOAD_CHUNK)
        .map(|chunk| chunk.iter().filter_map(|&i| records[i].take()).collect());
    send_and_flush(broker, topic, batches).await?;
    if held_total > 0 && !missing.is_empty() {
        tracing::info!(
            topic,
            held = held_total,
            produced = missing.len(),
            "resumed an interrupted input load"
        );
    }
    Ok(InputLoad {
        held: held_total,
        produced: missing.len() as u64,
    })
}

/// The record at `offset` of `topic`-`partition`, if the log still has it.
async fn record_at(
    broker: &Broker,
    topic: &str,
    partition: u32,
    offset: u64,
) -> anyhow::Result<Option<broker_embedded::Record>> {
    let batches = broker
        .fetch(topic, partition, offset, 1 << 20, None)
        .await
        .with_context(|| format!("cannot read {topic}-{partition} at offset {offset}"))?;
    Ok(batches
        .into_iter()
        .flat_map(|batch| batch.records)
        .find(|r| r.offset == offset))
}

/// The topics the application `application_id` reads on the broker: the
/// topology's source topics, with repartition topics under their physical
/// name `<application.id>-<name>-repartition`.
pub fn physical_source_topics(topology: &Topology, application_id: &str) -> Vec<String> {
    let sinks: Vec<String> = topology
        .sink_topics()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let mut topics: Vec<String> = topology
        .describe()
        .subtopologies
        .iter()
        .flat_map(|sub| sub.nodes.iter())
        .filter_map(|node| match &node.kind {
            NodeKindDescription::Source { topics } => Some(topics.clone()),
            _ => None,
        })
        .flatten()
        .map(|topic| {
            let internal = topic.ends_with("-repartition") && sinks.contains(&topic);
            if internal && !topic.starts_with(&format!("{application_id}-")) {
                format!("{application_id}-{topic}")
            } else {
                topic
            }
        })
        .collect();
    topics.sort();
    topics.dedup();
    topics
}

/// How far consumer group `group` is through `topics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupProgress {
    /// Sum over the partitions of `topics` of the committed offsets (0 for
    /// a partition with no commit).
    pub committed: u64,
    /// Records of `topics` not yet committed: the log end offset minus the
    /// committed offset, summed.
    pub remaining: u64,
    /// The sum of the committed offsets of each topic.
    pub committed_per_topic: HashMap<String, u64>,
}

/// The committed position and lag of `group` over every partition of
/// `topics`. A group the broker does not know yet has committed nothing.
pub async fn group_progress(
    broker: &Broker,
    group: &str,
    topics: &[String],
) -> anyhow::Result<GroupProgress> {
    let committed: HashMap<(String, u32), u64> = match broker.describe_group(group).await {
        Ok(description) => description
            .partitions
            .into_iter()
            .filter_map(|p| Some(((p.topic, p.partition), p.committed_offset?)))
            .collect(),
        Err(BrokerError::GroupIdNotFound { .. }) => HashMap::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot describe group {group}")),
    };
    let mut progress = GroupProgress::default();
    for topic in topics {
        let partitions = match broker.partition_count(topic).await {
            Ok(n) => n,
            // Internal topics appear when the application starts.
            Err(BrokerError::UnknownTopic { .. }) => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot describe topic {topic}")),
        };
        for partition in 0..partitions {
            let (_, end) = broker
                .offsets(topic, partition)
                .await
                .with_context(|| format!("cannot read the offsets of {topic}-{partition}"))?;
            let done = committed
                .get(&(topic.clone(), partition))
                .copied()
                .unwrap_or(0);
            progress.committed += done;
            *progress
                .committed_per_topic
                .entry(topic.clone())
                .or_insert(0) += done;
            progress.remaining += pending_records(broker, topic, partition, done, end).await?;
        }
    }
    Ok(progress)
}

/// The records of `topic`-`partition` in `[from, end)` that a consumer
/// still has to process. Under exactly-once a transaction's commit marker
/// takes an offset after its last record, so a group that has processed
/// everything can sit one offset short of the log end: a short gap is read
/// (`read_committed`) and only data records are counted.
async fn pending_records(
    broker: &Broker,
    topic: &str,
    partition: u32,
    from: u64,
    end: u64,
) -> anyhow::Result<u64> {
    const INSPECT_BELOW: u64 = 64;
    let gap = end.saturating_sub(from);
    if gap == 0 || gap > INSPECT_BELOW {
        return Ok(gap);
    }
    let batches = broker
        .fetch_with_isolation(
            topic,
            partition,
            from,
            1 << 20,
            broker_embedded::IsolationLevel::ReadCommitted,
        )
        .await
        .with_context(|| format!("cannot read {topic}-{partition}"))?;
    let mut pending = 0;
    let mut covered = from;
    for batch in &batches {
        covered = covered.max(batch.info.last_offset + 1);
        if batch.info.control {
            continue;
        }
        pending += batch
            .records
            .iter()
            .filter(|r| r.offset >= from && r.offset < end)
            .count() as u64;
    }
    // What the read did not reach (an open transaction) is pending too.
    Ok(pending + end.saturating_sub(covered))
}

/// Waits until `app` is [`AppState::Running`] and its consumer group (the
/// application id) has committed every record of `topics` (its source and
/// repartition topics: see [`physical_source_topics`]). Since a stream
/// thread commits only after its outputs are sent and made durable, every
/// output of those records is then on the broker.
///
/// `on_progress` gets the group's progress after each check (every 50 ms).
/// Fails if the app stops with an error, or at `deadline` if one is given.
pub async fn wait_until_idle(
    app: &StreamsApp,
    broker: &Broker,
    group: &str,
    topics: &[String],
    deadline: Option<Duration>,
    mut on_progress: impl FnMut(&GroupProgress),
) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        match app.state() {
            AppState::Error => bail!(
                "the streams application failed: {}",
                app.error()
                    .unwrap_or_else(|| "no cause recorded".to_owned())
            ),
            AppState::NotRunning | AppState::PendingShutdown => {
                bail!("the streams application stopped before processing its input")
            }
            _ => {}
        }
        let progress = group_progress(broker, group, topics).await?;
        on_progress(&progress);
        if progress.remaining == 0 && app.state() == AppState::Running {
            return Ok(());
        }
        if let Some(limit) = deadline {
            if started.elapsed() > limit {
                bail!(
                    "the application did not catch up within {limit:?}: {} records not yet committed",
                    progress.remaining
                );
            }
        }
        // Often enough that the wait adds little to a measured run.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
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

    /// Every record of `topic`-`partition`, as (key, value).
    async fn partition_records(
        broker: &Broker,
        topic: &str,
        partition: u32,
    ) -> Vec<(Option<bytes::Bytes>, Option<bytes::Bytes>)> {
        let (_, end) = broker.offsets(topic, partition).await.unwrap();
        let mut out = Vec::new();
        while (out.len() as u64) < end {
            let batches = broker
                .fetch(topic, partition, out.len() as u64, 1 << 20, None)
                .await
                .unwrap();
            for record in batches.into_iter().flat_map(|b| b.records) {
                out.push((record.key, record.value));
            }
        }
        out
    }

    fn line(i: usize) -> ProducerRecord {
        ProducerRecord::new("in", format!("line {i}").into_bytes())
    }

    /// Each partition holds exactly its records, in order: `i % 3` for
    /// null keys.
    async fn assert_loaded(broker: &Broker, len: usize) {
        for partition in 0..3u32 {
            let held = partition_records(broker, "in", partition).await;
            let wanted: Vec<_> = (0..len)
                .filter(|i| i % 3 == partition as usize)
                .map(|i| (None, Some(bytes::Bytes::from(format!("line {i}")))))
                .collect();
            assert_eq!(held, wanted, "partition {partition}");
        }
    }

    #[tokio::test]
    async fn a_load_writes_each_record_once_and_a_second_load_nothing() {
        let broker = Broker::in_memory().await.unwrap();
        ensure_topic(&broker, "in", 3).await.unwrap();
        let load = load_input(&broker, "in", 12_001, line).await.unwrap();
        assert_eq!(
            load,
            InputLoad {
                held: 0,
                produced: 12_001
            }
        );
        assert_loaded(&broker, 12_001).await;
        let again = load_input(&broker, "in", 12_001, line).await.unwrap();
        assert_eq!(
            again,
            InputLoad {
                held: 12_001,
                produced: 0
            }
        );
        assert_loaded(&broker, 12_001).await;
    }

    /// A kill leaves each partition holding a prefix of its records, each
    /// partition its own length: the next load completes every one.
    #[tokio::test]
    async fn a_load_completes_the_prefixes_an_interrupted_one_left() {
        for held in [
            [0, 0, 1],
            [7, 3, 0],
            [4, 4, 4],
            [1_000, 2, 999],
            [3_334, 3_333, 3_333],
        ] {
            let broker = Broker::in_memory().await.unwrap();
            ensure_topic(&broker, "in", 3).await.unwrap();
            let producer = Producer::new(&broker);
            for (partition, n) in (0u32..).zip(held) {
                let batch: Vec<_> = (0..10_000)
                    .filter(|i| i % 3 == partition as usize)
                    .take(n)
                    .map(|i| line(i).partition(partition))
                    .collect();
                if !batch.is_empty() {
                    producer.send_batch(batch).await.unwrap();
                }
            }
            let load = load_input(&broker, "in", 10_000, line).await.unwrap();
            let total: u64 = held.iter().map(|&n| n as u64).sum();
            assert_eq!(load.held, total, "{held:?}");
            assert_eq!(load.produced, 10_000 - total, "{held:?}");
            assert_loaded(&broker, 10_000).await;
        }
    }

    #[tokio::test]
    async fn a_topic_holding_another_input_is_refused() {
        let broker = Broker::in_memory().await.unwrap();
        ensure_topic(&broker, "in", 3).await.unwrap();
        load_input(&broker, "in", 100, line).await.unwrap();
        let other = |i: usize| ProducerRecord::new("in", format!("other {i}").into_bytes());
        let err = load_input(&broker, "in", 200, other).await.unwrap_err();
        assert!(
            err.to_string()
                .contains("does not hold the start of this input"),
            "{err}"
        );
        let err = load_input(&broker, "in", 50, line).await.unwrap_err();
        assert!(err.to_string().contains("more than the"), "{err}");
        // Refused loads append nothing.
        assert_loaded(&broker, 100).await;
    }

    #[tokio::test]
    async fn keyed_records_go_to_their_key_partition() {
        let broker = Broker::in_memory().await.unwrap();
        ensure_topic(&broker, "in", 3).await.unwrap();
        let keyed = |i: usize| line(i).key(format!("user{}", i % 7).into_bytes());
        load_input(&broker, "in", 300, keyed).await.unwrap();
        for partition in 0..3u32 {
            for (key, _) in partition_records(&broker, "in", partition).await {
                let key = key.unwrap();
                assert_eq!(
                    broker_embedded::partitioner::partition_for_key(&key, 3),
                    partition
                );
            }
        }
        assert_eq!(
            load_input(&broker, "in", 300, keyed)
                .await
                .unwrap()
                .produced,
            0
        );
    }

    #[test]
    fn peak_memory_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(peak_memory_kib().is_some_and(|kib| kib > 0));
        }
    }
}
