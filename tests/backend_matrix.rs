//! The runtime's end-to-end scenarios, written once and run on three brokers: the embedded
//! broker (`StreamsApp::new`), the embedded broker served over the Kafka protocol by
//! broker-wire as `streams serve` serves it (`StreamsApp::connect`), and a single-node
//! Apache Kafka in KRaft mode (`StreamsApp::connect`).
//!
//! The scenarios: the word count at-least-once and exactly-once against a hash map count;
//! tumbling windows with grace and `suppress(until_window_closes)` (inputs and outputs of
//! Kafka Streams' own `SuppressScenarioTest`, and page views with late records over three
//! partitions against a brute-force model); a restart on an empty state dir that restores
//! a key-value and a window store from their changelogs; two instances sharing the tasks,
//! one closed and the other taking its tasks over; and an instance killed mid-stream under
//! exactly-once.
//!
//! The embedded and served brokers are fresh for each test. Apache Kafka starts once (its
//! JVM is slow to start) and runs every scenario in sequence, each on topics and app ids of
//! its own; its test reports every scenario that failed. It needs Java and the broker's jars
//! (`scripts/kafka-broker.sh` fetches them with Maven the first time): without them the test
//! is skipped with the reason, except under `CI=true`, where that is a failure.
//!
//! `RUST_LOG` sets the log filter (default: warnings), e.g. `RUST_LOG=info`.

#[path = "support/cluster.rs"]
mod cluster;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _};
use broker_embedded::partitioner::partition_for_key;
use bytes::Bytes;
use examples::windowed::{expected_final_counts, pageview_events, PageView, MINUTE_MS};
use streams_core::{
    AppState, ProcessingGuarantee, Serde as _, Serdes, StreamsApp, Topology, Windowed,
};
use streams_dsl::{
    Consumed, Grouped, LateRecords, Materialized, Named, Produced, StreamsBuilder,
    StrictBufferConfig, Suppressed, TimeWindows, ValueAndTimestamp,
};

use cluster::{now_ms, Cluster, Input, Isolation, Output, Reader};

/// How long output may take to reach what a scenario expects.
const DEADLINE: Duration = Duration::from_secs(60);
/// How long an app may take to reach a state or an assignment.
const STATE_DEADLINE: Duration = Duration::from_secs(60);
/// How long output must stay quiet to be read to its end.
const QUIET: Duration = Duration::from_millis(750);
/// The word count's store (its changelog: `<application.id>-counts-changelog`).
const COUNTS_STORE: &str = "counts";

// ---------------------------------------------------------------------------------------
// Topologies

/// The word count of `docs/dsl.md` from `input` to `output`: lines lowercased and split on
/// whitespace, regrouped by word through a repartition topic, counted in [`COUNTS_STORE`].
fn word_count(input: &str, output: &str) -> anyhow::Result<Topology> {
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>(input, Consumed::with(Serdes::string(), Serdes::string()))
        .flat_map_values(|line| examples::words(line))
        .group_by(
            |_key, word| word.clone(),
            Grouped::with(Serdes::string(), Serdes::string()),
        )
        .count_named(Named::as_("count-words"), Materialized::as_(COUNTS_STORE))
        .to_stream()
        .to(output, Produced::with(Serdes::string(), Serdes::i64()));
    Ok(builder.build()?)
}

/// The topology of Kafka Streams' `SuppressScenarioTest.shouldSupportFinalResultsForTime
/// Windows*`: `input` regrouped by key, counted in 2 ms tumbling windows with `grace_ms`
/// of grace in `store` (no cache); every update to `raw`, the final count of each window
/// to `finals`.
fn final_results(
    builder: &StreamsBuilder,
    input: &str,
    store: &str,
    grace_ms: u64,
    raw: &str,
    finals: &str,
) {
    let counts = builder
        .stream::<String, String>(input, Consumed::with(Serdes::string(), Serdes::string()))
        .group_by(
            |key, _value| key.cloned().unwrap_or_default(),
            Grouped::with(Serdes::string(), Serdes::string()),
        )
        .windowed_by(TimeWindows::of_size_and_grace(
            Duration::from_millis(2),
            Duration::from_millis(grace_ms),
        ))
        .count_named(
            Named::as_(format!("count-{store}")),
            Materialized::as_(store).with_caching_disabled(),
        );
    let windowed = || Produced::with(Serdes::time_windowed(Serdes::string(), 2), Serdes::i64());
    counts
        .suppress(
            Suppressed::until_window_closes(StrictBufferConfig::unbounded())
                .with_name(format!("{store}-final")),
        )
        .to_stream()
        .to(finals, windowed());
    counts.to_stream().to(raw, windowed());
}

/// The per-minute page view count of the `pageviews` example (`examples::windowed`):
/// 1-minute tumbling windows with 10 s of grace, final counts only to `finals`, late views
/// to `late`.
fn page_views(builder: &StreamsBuilder, input: &str, store: &str, finals: &str, late: &str) {
    builder
        .stream::<String, String>(input, Consumed::with(Serdes::string(), Serdes::string()))
        .group_by_key(Grouped::with(Serdes::string(), Serdes::string()))
        .windowed_by(TimeWindows::of_size_and_grace(
            Duration::from_millis(MINUTE_MS as u64),
            Duration::from_millis(examples::windowed::GRACE_MS as u64),
        ))
        .with_late_records(LateRecords::to_topic(late))
        .count_named(
            Named::as_("count-views-per-minute"),
            Materialized::as_(store),
        )
        .suppress(
            Suppressed::until_window_closes(StrictBufferConfig::unbounded())
                .with_name("views-final"),
        )
        .to_stream()
        .to(
            finals,
            Produced::with(
                Serdes::time_windowed(Serdes::string(), MINUTE_MS),
                Serdes::i64(),
            ),
        );
}

/// Records of `input` counted per key in 10 ms tumbling windows (no grace) in store
/// `windows`; every update to `output`.
fn window_count(builder: &StreamsBuilder, input: &str, output: &str) {
    builder
        .stream::<String, String>(input, Consumed::with(Serdes::string(), Serdes::string()))
        .group_by_key(Grouped::with(Serdes::string(), Serdes::string()))
        .windowed_by(TimeWindows::of_size_with_no_grace(Duration::from_millis(
            10,
        )))
        .count_named(Named::as_("count-per-window"), Materialized::as_("windows"))
        .to_stream()
        .to(
            output,
            Produced::with(Serdes::time_windowed(Serdes::string(), 10), Serdes::i64()),
        );
}

// ---------------------------------------------------------------------------------------
// Inputs, outputs and waiting

/// `lines` as unkeyed records, one millisecond apart, ending about now.
fn line_records(lines: &[String]) -> Vec<Input> {
    let first = now_ms() - lines.len() as i64;
    lines
        .iter()
        .enumerate()
        .map(|(i, line)| Input::unkeyed(line.clone(), first + i as i64))
        .collect()
}

/// The word count of `lines` as the topology counts (lowercased, split on whitespace).
fn count_words(lines: &[String]) -> HashMap<String, i64> {
    examples::count_words(lines)
        .into_iter()
        .map(|(word, count)| (word, count as i64))
        .collect()
}

/// A record's key as UTF-8.
fn text_key(record: &Output) -> anyhow::Result<String> {
    let key = record.key.clone().context("a record without a key")?;
    Ok(String::from_utf8(key)?)
}

/// A record's value as a big-endian `i64`.
fn count_value(record: &Output) -> anyhow::Result<i64> {
    let value = record
        .value
        .as_deref()
        .context("a record without a value")?;
    Ok(i64::from_be_bytes(value.try_into().with_context(|| {
        format!("a count of {} bytes", value.len())
    })?))
}

/// A record's key as a time-windowed string key of windows of `size_ms`.
fn windowed_key(record: &Output, size_ms: i64) -> anyhow::Result<Windowed<String>> {
    let key = record.key.clone().context("a record without a key")?;
    Ok(Serdes::time_windowed(Serdes::string(), size_ms).deserialize("", &Bytes::from(key))?)
}

/// Follows a word count's output: per word, every count read, in offset order.
struct WordCounts {
    reader: Reader,
    decoded: usize,
    history: HashMap<String, Vec<i64>>,
}

impl WordCounts {
    async fn new(cluster: &Cluster, topic: &str, isolation: Isolation) -> anyhow::Result<Self> {
        Ok(Self {
            reader: cluster.reader(topic, isolation).await?,
            decoded: 0,
            history: HashMap::new(),
        })
    }

    fn decode(&mut self) -> anyhow::Result<()> {
        for record in &self.reader.records()[self.decoded..] {
            self.history
                .entry(text_key(record)?)
                .or_default()
                .push(count_value(record)?);
        }
        self.decoded = self.reader.records().len();
        Ok(())
    }

    /// The last count of each word.
    fn latest(&self) -> HashMap<String, i64> {
        self.history
            .iter()
            .filter_map(|(word, counts)| Some((word.clone(), *counts.last()?)))
            .collect()
    }

    /// Reads until the last count of every word is `expected`.
    async fn wait_for(&mut self, expected: &HashMap<String, i64>) -> anyhow::Result<()> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            self.decode()?;
            let latest = self.latest();
            if &latest == expected {
                return Ok(());
            }
            if Instant::now() > deadline {
                let mut differences: Vec<_> = expected
                    .iter()
                    .filter(|(word, count)| latest.get(*word) != Some(count))
                    .map(|(word, count)| (word.clone(), *count, latest.get(word).copied()))
                    .collect();
                differences.sort();
                let extra = latest.keys().filter(|w| !expected.contains_key(*w)).count();
                bail!(
                    "word counts did not converge in {DEADLINE:?}: {} of {} words right, \
                     {extra} unexpected words; first (word, expected, got): {:?}",
                    expected.len() - differences.len(),
                    expected.len(),
                    &differences[..differences.len().min(5)]
                );
            }
            self.reader.poll(Duration::from_millis(100)).await?;
        }
    }

    /// Reads until nothing more comes.
    async fn drain(&mut self) -> anyhow::Result<()> {
        self.reader.drain(QUIET).await?;
        self.decode()
    }

    /// Fails unless every word's counts strictly increase: under exactly-once each count
    /// is committed once.
    fn ensure_no_duplicates(&self) -> anyhow::Result<()> {
        let mut bad: Vec<_> = self
            .history
            .iter()
            .filter(|(_, counts)| !counts.windows(2).all(|w| w[0] < w[1]))
            .collect();
        bad.sort();
        ensure!(
            bad.is_empty(),
            "{} words have repeated or regressing counts, e.g. {:?}",
            bad.len(),
            bad.first()
        );
        Ok(())
    }
}

/// Waits until `condition` holds, for up to [`STATE_DEADLINE`].
async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + STATE_DEADLINE;
    while !condition() {
        if Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Closes `app` and fails if it stopped in error.
async fn close(app: &mut StreamsApp) -> anyhow::Result<()> {
    app.close().await?;
    ensure!(
        app.state() == AppState::NotRunning,
        "closed in {:?}",
        app.state()
    );
    ensure!(app.error().is_none(), "app error: {:?}", app.error());
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Scenarios

/// The word count at-least-once, two stream threads: the last count of each word is the
/// hash map count; the tasks and internal topics are those of the topology, and
/// interactive queries see every count.
async fn word_count_at_least_once(cluster: &Cluster) -> anyhow::Result<()> {
    let name = cluster.unique("wc-alos");
    let (input, output) = (format!("{name}-lines"), format!("{name}-counts"));
    cluster.create_topic(&input, 3).await?;
    cluster.create_topic(&output, 3).await?;
    let lines = examples::corpus(3_000, 7);
    let expected = count_words(&lines);

    let dir = cluster.state_dir()?;
    let config = cluster
        .config(&name, dir.path())?
        .with_num_stream_threads(2);
    let mut app = cluster.app(word_count(&input, &output)?, config)?;
    app.start().await?;
    cluster.produce(&input, &line_records(&lines)).await?;
    let mut counts = WordCounts::new(cluster, &output, Isolation::ReadUncommitted).await?;
    counts.wait_for(&expected).await?;
    wait_until("the app to run", || app.state() == AppState::Running).await?;
    // Two sub-topologies over three partitions.
    ensure!(
        app.local_tasks().len() == 6,
        "tasks: {:?}",
        app.local_tasks()
    );
    let store: HashMap<String, i64> = app
        .store::<String, ValueAndTimestamp<i64>>(COUNTS_STORE)?
        .all()?
        .into_iter()
        .map(|(word, count)| (word, count.value))
        .collect();
    ensure!(store == expected, "the store holds {} words", store.len());
    close(&mut app).await
}

/// The word count under exactly_once_v2, two stream threads, read `read_committed`: the
/// last count of each word is the hash map count and each word's counts strictly increase.
async fn word_count_exactly_once(cluster: &Cluster) -> anyhow::Result<()> {
    let name = cluster.unique("wc-eos");
    let (input, output) = (format!("{name}-lines"), format!("{name}-counts"));
    cluster.create_topic(&input, 3).await?;
    cluster.create_topic(&output, 3).await?;
    let lines = examples::corpus(3_000, 11);
    let expected = count_words(&lines);

    let dir = cluster.state_dir()?;
    let config = cluster
        .config(&name, dir.path())?
        .with_num_stream_threads(2)
        .with_processing_guarantee(ProcessingGuarantee::ExactlyOnceV2);
    let mut app = cluster.app(word_count(&input, &output)?, config)?;
    app.start().await?;
    cluster.produce(&input, &line_records(&lines)).await?;
    let mut counts = WordCounts::new(cluster, &output, Isolation::ReadCommitted).await?;
    counts.wait_for(&expected).await?;
    close(&mut app).await?;
    counts.drain().await?;
    ensure!(
        counts.latest() == expected,
        "counts changed after the close"
    );
    counts.ensure_no_duplicates()
}

/// An update or a final count of a window: (window start, end, count, timestamp), times
/// relative to the scenario's first window.
type Update = (i64, i64, i64, i64);

/// One of Kafka Streams' `SuppressScenarioTest` cases: its grace, its input timestamps
/// (key `k1`), and what it expects of every update and of the final counts.
struct SuppressCase {
    grace_ms: u64,
    timestamps: Vec<i64>,
    raw: Vec<Update>,
    finals: Vec<Update>,
}

/// Kafka Streams' `SuppressScenarioTest` final results for time windows (its two tests,
/// with their inputs and expected outputs, timestamps moved to an hour ago), and the
/// per-minute page views of three partitions with late views routed to a topic, against a
/// brute-force replay of Kafka's rules per partition. Every update of the uncached
/// windowed counts is Kafka's, in Kafka's order; each closed window's final count is
/// emitted once; late records change nothing and each late view is routed once.
async fn windows(cluster: &Cluster) -> anyhow::Result<()> {
    let name = cluster.unique("windows");
    let topic = |suffix: &str| format!("{name}-{suffix}");
    // Whole seconds, an hour ago: windows of 2 ms and of a minute start where Kafka's do.
    let base = (now_ms() - 3_600_000) / MINUTE_MS * MINUTE_MS;

    let suppress_cases = [
        // shouldSupportFinalResultsForTimeWindows: the last record is out of the grace
        // period and dropped.
        SuppressCase {
            grace_ms: 1,
            timestamps: vec![0, 1, 2, 1, 0, 5, 0],
            raw: vec![
                (0, 2, 1, 0),
                (0, 2, 2, 1),
                (2, 4, 1, 2),
                (0, 2, 3, 1),
                (0, 2, 4, 1),
                (4, 6, 1, 5),
            ],
            finals: vec![(0, 2, 4, 1), (2, 4, 1, 2)],
        },
        // shouldSupportFinalResultsForTimeWindowsWithLargeJump: the record at 0 after the
        // one at 4 is dropped, the one at 30 closes every earlier window.
        SuppressCase {
            grace_ms: 2,
            timestamps: vec![0, 1, 2, 0, 3, 0, 4, 0, 30],
            raw: vec![
                (0, 2, 1, 0),
                (0, 2, 2, 1),
                (2, 4, 1, 2),
                (0, 2, 3, 1),
                (2, 4, 2, 3),
                (0, 2, 4, 1),
                (4, 6, 1, 4),
                (30, 32, 1, 30),
            ],
            finals: vec![(0, 2, 4, 1), (2, 4, 2, 3), (4, 6, 1, 4)],
        },
    ];

    // Page views of 8 users over 5 minutes, each user's views in the partition of its key;
    // each partition ends with a view 10 minutes later that closes its other windows.
    const PARTITIONS: u32 = 3;
    let mut generated = pageview_events(600, 8, 500, 0x5eed);
    let flush = generated.pop().context("the generator's last view")?;
    let shift = base - examples::windowed::FIRST_EVENT_MS;
    let mut per_partition: Vec<Vec<PageView>> = vec![Vec::new(); PARTITIONS as usize];
    for mut view in generated {
        view.timestamp += shift;
        per_partition[partition_for_key(view.user.as_bytes(), PARTITIONS) as usize].push(view);
    }
    let mut expected_finals = BTreeMap::new();
    let mut expected_late = Vec::new();
    for views in &mut per_partition {
        views.push(PageView {
            timestamp: flush.timestamp + shift,
            ..flush.clone()
        });
        let (finals, late) = expected_final_counts(views);
        expected_finals.extend(finals);
        expected_late.extend(
            late.iter()
                .map(|&i| (views[i].user.clone(), views[i].timestamp)),
        );
    }
    expected_late.sort();
    ensure!(
        !expected_late.is_empty() && expected_finals.len() > 10,
        "the generated views have no late view or few windows"
    );

    let builder = StreamsBuilder::new();
    for (i, case) in suppress_cases.iter().enumerate() {
        cluster.create_topic(&topic(&format!("in-{i}")), 1).await?;
        cluster.create_topic(&topic(&format!("raw-{i}")), 1).await?;
        cluster
            .create_topic(&topic(&format!("final-{i}")), 1)
            .await?;
        final_results(
            &builder,
            &topic(&format!("in-{i}")),
            &format!("counts-{i}"),
            case.grace_ms,
            &topic(&format!("raw-{i}")),
            &topic(&format!("final-{i}")),
        );
    }
    cluster.create_topic(&topic("views"), PARTITIONS).await?;
    cluster
        .create_topic(&topic("views-final"), PARTITIONS)
        .await?;
    page_views(
        &builder,
        &topic("views"),
        "views-per-minute",
        &topic("views-final"),
        &topic("views-late"),
    );

    let dir = cluster.state_dir()?;
    let config = cluster
        .config(&name, dir.path())?
        .with_num_stream_threads(2);
    let mut app = cluster.app(builder.build()?, config)?;
    app.start().await?;
    for (i, case) in suppress_cases.iter().enumerate() {
        let records: Vec<Input> = case
            .timestamps
            .iter()
            .map(|ts| Input::keyed("k1", "v1", base + ts))
            .collect();
        cluster
            .produce(&topic(&format!("in-{i}")), &records)
            .await?;
    }
    let views: Vec<Input> = per_partition
        .iter()
        .enumerate()
        .flat_map(|(p, views)| {
            views.iter().map(move |v| {
                Input::keyed(v.user.clone(), v.page.clone(), v.timestamp).in_partition(p as u32)
            })
        })
        .collect();
    cluster.produce(&topic("views"), &views).await?;

    // Kafka's outputs, record by record.
    let updates = |records: &[Output]| -> anyhow::Result<Vec<Update>> {
        records
            .iter()
            .map(|r| {
                let key = windowed_key(r, 2)?;
                ensure!(key.key == "k1", "key {:?}", key.key);
                Ok((
                    key.window.start - base,
                    key.window.end - base,
                    count_value(r)?,
                    r.timestamp - base,
                ))
            })
            .collect()
    };
    for (i, case) in suppress_cases.iter().enumerate() {
        for (suffix, expected) in [("raw", &case.raw), ("final", &case.finals)] {
            let mut reader = cluster
                .reader(&topic(&format!("{suffix}-{i}")), Isolation::ReadUncommitted)
                .await?;
            reader
                .until(
                    &format!("{} records", expected.len()),
                    DEADLINE,
                    |records| records.len() >= expected.len(),
                    |records| format!("{:?}", updates(records)),
                )
                .await?;
            reader.drain(QUIET).await?;
            let got = updates(reader.records())?;
            ensure!(
                &got == expected,
                "{suffix} output of SuppressScenarioTest case {i}: got {got:?}, Kafka's {expected:?}"
            );
        }
    }

    // Page views: every final count once, every late view once.
    let mut finals = cluster
        .reader(&topic("views-final"), Isolation::ReadUncommitted)
        .await?;
    let mut late = cluster
        .reader(&topic("views-late"), Isolation::ReadUncommitted)
        .await?;
    finals
        .until(
            &format!("{} final counts", expected_finals.len()),
            DEADLINE,
            |records| records.len() >= expected_finals.len(),
            |records| format!("{} read", records.len()),
        )
        .await?;
    late.until(
        &format!("{} late views", expected_late.len()),
        DEADLINE,
        |records| records.len() >= expected_late.len(),
        |records| format!("{} read", records.len()),
    )
    .await?;
    close(&mut app).await?;
    finals.drain(QUIET).await?;
    late.drain(QUIET).await?;
    let mut got = BTreeMap::new();
    for record in finals.records() {
        let key = windowed_key(record, MINUTE_MS)?;
        let count = count_value(record)?;
        if let Some(before) = got.insert((key.key.clone(), key.window.start), count) {
            bail!(
                "the window of {} at {} was emitted twice ({before}, then {count})",
                key.key,
                key.window.start
            );
        }
    }
    ensure!(
        got == expected_finals,
        "final page view counts: {} windows, expected {}; first differences: {:?}",
        got.len(),
        expected_finals.len(),
        expected_finals
            .iter()
            .filter(|(k, v)| got.get(*k) != Some(v))
            .take(5)
            .collect::<Vec<_>>()
    );
    let mut got_late = late
        .records()
        .iter()
        .map(|r| Ok((text_key(r)?, r.timestamp)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    got_late.sort();
    ensure!(
        got_late == expected_late,
        "late views: got {got_late:?}, expected {expected_late:?}"
    );
    Ok(())
}

/// A restart on an empty state dir: the word count's key-value store and a windowed
/// count's window store come back from their changelogs, and the counts go on from the
/// restored values.
async fn restore(cluster: &Cluster) -> anyhow::Result<()> {
    let name = cluster.unique("restore");
    let (input, output) = (format!("{name}-lines"), format!("{name}-counts"));
    let (clicks, per_window) = (format!("{name}-clicks"), format!("{name}-per-window"));
    cluster.create_topic(&input, 3).await?;
    cluster.create_topic(&output, 3).await?;
    cluster.create_topic(&clicks, 1).await?;
    cluster.create_topic(&per_window, 1).await?;
    let topology = || -> anyhow::Result<Topology> {
        let builder = StreamsBuilder::new();
        builder
            .stream::<String, String>(&input, Consumed::with(Serdes::string(), Serdes::string()))
            .flat_map_values(|line| examples::words(line))
            .group_by(
                |_key, word| word.clone(),
                Grouped::with(Serdes::string(), Serdes::string()),
            )
            .count_named(Named::as_("count-words"), Materialized::as_(COUNTS_STORE))
            .to_stream()
            .to(&output, Produced::with(Serdes::string(), Serdes::i64()));
        window_count(&builder, &clicks, &per_window);
        Ok(builder.build()?)
    };
    let lines = examples::corpus(3_000, 23);
    let (first, second) = lines.split_at(1_500);
    // Clicks of three keys, 1 ms apart over five 10 ms windows; the restart falls inside
    // window [20, 30).
    let base = (now_ms() - 60_000) / 10 * 10;
    let click_records: Vec<Input> = (0..50)
        .map(|i| Input::keyed(format!("k{}", i % 3), "x", base + i))
        .collect();
    let expected_windows = |n: usize| {
        let mut counts = HashMap::new();
        for i in 0..n as i64 {
            *counts
                .entry((format!("k{}", i % 3), i / 10 * 10))
                .or_insert(0) += 1;
        }
        counts
    };
    let mut counts = WordCounts::new(cluster, &output, Isolation::ReadUncommitted).await?;
    let mut windows = cluster
        .reader(&per_window, Isolation::ReadUncommitted)
        .await?;
    let latest_windows = |records: &[Output]| -> anyhow::Result<HashMap<(String, i64), i64>> {
        let mut latest = HashMap::new();
        for r in records {
            let key = windowed_key(r, 10)?;
            latest.insert((key.key, key.window.start - base), count_value(r)?);
        }
        Ok(latest)
    };

    let first_dir = cluster.state_dir()?;
    let mut app = cluster.app(topology()?, cluster.config(&name, first_dir.path())?)?;
    app.start().await?;
    cluster.produce(&input, &line_records(first)).await?;
    cluster.produce(&clicks, &click_records[..25]).await?;
    counts.wait_for(&count_words(first)).await?;
    let want = expected_windows(25);
    windows
        .until(
            "the first windowed counts",
            DEADLINE,
            |r| latest_windows(r).is_ok_and(|l| l == want),
            |r| format!("{:?}", latest_windows(r)),
        )
        .await?;
    close(&mut app).await?;
    ensure!(
        app.restored_records() == 0,
        "the first run restored {} records",
        app.restored_records()
    );

    let second_dir = cluster.state_dir()?;
    let mut app = cluster.app(topology()?, cluster.config(&name, second_dir.path())?)?;
    app.start().await?;
    cluster.produce(&input, &line_records(second)).await?;
    cluster.produce(&clicks, &click_records[25..]).await?;
    counts.wait_for(&count_words(&lines)).await?;
    let want = expected_windows(50);
    windows
        .until(
            "every windowed count",
            DEADLINE,
            |r| latest_windows(r).is_ok_and(|l| l == want),
            |r| format!("{:?}", latest_windows(r)),
        )
        .await?;
    ensure!(
        app.restored_records() > 0,
        "the second run restored nothing"
    );
    close(&mut app).await
}

/// Two instances share the tasks; one closes in the middle of the input, and the other
/// takes over its tasks, restores their stores from the changelogs and goes on from the
/// committed offsets: the counts are exact.
async fn rebalance(cluster: &Cluster) -> anyhow::Result<()> {
    let name = cluster.unique("rebalance");
    let (input, output) = (format!("{name}-lines"), format!("{name}-counts"));
    cluster.create_topic(&input, 4).await?;
    cluster.create_topic(&output, 4).await?;
    let lines = examples::corpus(4_000, 31);
    let (first, second) = lines.split_at(2_000);

    let dirs = (cluster.state_dir()?, cluster.state_dir()?);
    let mut a = cluster.app(
        word_count(&input, &output)?,
        cluster.config(&name, dirs.0.path())?,
    )?;
    let mut b = cluster.app(
        word_count(&input, &output)?,
        cluster.config(&name, dirs.1.path())?,
    )?;
    a.start().await?;
    b.start().await?;
    wait_until("the tasks to be split", || {
        !a.local_tasks().is_empty() && !b.local_tasks().is_empty()
    })
    .await?;
    cluster.produce(&input, &line_records(first)).await?;
    let mut counts = WordCounts::new(cluster, &output, Isolation::ReadUncommitted).await?;
    counts.wait_for(&count_words(first)).await?;
    let (tasks_a, tasks_b) = (a.local_tasks().len(), b.local_tasks().len());
    ensure!(
        tasks_a > 0 && tasks_b > 0 && tasks_a + tasks_b == 8,
        "tasks: {tasks_a} and {tasks_b}"
    );

    // A closes while the second half is being processed: what it has not committed, B
    // processes.
    cluster.produce(&input, &line_records(second)).await?;
    close(&mut a).await?;
    counts.wait_for(&count_words(&lines)).await?;
    wait_until("B to own every task", || b.local_tasks().len() == 8).await?;
    // A may have processed and committed all of its input before it closed: then the
    // counts are complete before B has restored the stores it took over.
    wait_until(
        "the remaining instance to restore the stores it took over",
        || b.restored_records() > 0,
    )
    .await?;
    close(&mut b).await
}

/// Exactly-once, two instances: once some output is committed, one instance dies (no
/// commit, no checkpoint, no leave-group, its transaction left open). The other takes
/// over its tasks once the group drops it and the broker aborts its transaction: read
/// `read_committed`, each word's counts strictly increase and end at the exact count.
async fn exactly_once_instance_killed(cluster: &Cluster) -> anyhow::Result<()> {
    let name = cluster.unique("eos-kill");
    let (input, output) = (format!("{name}-lines"), format!("{name}-counts"));
    cluster.create_topic(&input, 3).await?;
    cluster.create_topic(&output, 3).await?;
    let lines = examples::corpus(5_000, 13);
    let expected = count_words(&lines);
    let config = |dir: &Path| -> anyhow::Result<_> {
        let mut config = cluster
            .config(&name, dir)?
            .with_processing_guarantee(ProcessingGuarantee::ExactlyOnceV2);
        config.set("producer.transaction.timeout.ms", "5000")?;
        Ok(config)
    };

    let dirs = (cluster.state_dir()?, cluster.state_dir()?);
    let mut a = cluster.app(word_count(&input, &output)?, config(dirs.0.path())?)?;
    let mut b = cluster.app(word_count(&input, &output)?, config(dirs.1.path())?)?;
    a.start().await?;
    b.start().await?;
    wait_until("the tasks to be split", || {
        !a.local_tasks().is_empty() && !b.local_tasks().is_empty()
    })
    .await?;
    cluster.produce(&input, &line_records(&lines)).await?;
    let mut counts = WordCounts::new(cluster, &output, Isolation::ReadCommitted).await?;
    counts
        .reader
        .until(
            "some committed output",
            DEADLINE,
            |records| !records.is_empty(),
            |_| String::new(),
        )
        .await?;
    a.kill_for_tests().await;

    counts.wait_for(&expected).await?;
    // A may have committed everything before it was killed (the embedded
    // broker is quick): B takes its tasks over only once A's session has
    // timed out.
    wait_until("B to take over every task", || b.local_tasks().len() == 6).await?;
    close(&mut b).await?;
    counts.drain().await?;
    ensure!(
        counts.latest() == expected,
        "counts changed after the close"
    );
    counts.ensure_no_duplicates()
}

// ---------------------------------------------------------------------------------------
// The matrix

/// A scenario whose panic is caught and becomes its error, so that the scenarios after it
/// still run.
struct CatchPanic<F>(Pin<Box<F>>);

impl<F: Future<Output = anyhow::Result<()>>> Future for CatchPanic<F> {
    type Output = anyhow::Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let scenario = self.0.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| scenario.poll(cx))) {
            Ok(poll) => poll,
            Err(panic) => {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "a panic".to_owned());
                Poll::Ready(Err(anyhow::anyhow!("panicked: {message}")))
            }
        }
    }
}

/// Runs `scenario`, a panic included in its failure.
async fn run(scenario: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    CatchPanic(Box::pin(scenario)).await
}

/// Whether the test runs under CI (`CI=true`), where a missing tool is a failure.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Apache Kafka with its jars under the target dir; `None` (and the reason printed) when
/// Java, Maven or the network is missing outside CI.
async fn start_apache_kafka() -> Option<examples::apache_kafka::ApacheKafka> {
    use examples::apache_kafka::{broker_classpath, ApacheKafka, KafkaOptions};
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR")).to_owned();
    let classpath = match tokio::task::spawn_blocking({
        let tmp = tmp.clone();
        move || broker_classpath(Some(&tmp.join("kafka-broker")))
    })
    .await
    {
        Ok(Ok(classpath)) => classpath,
        Ok(Err(e)) if !in_ci() => {
            eprintln!("skipping the scenarios on Apache Kafka: {e:#}");
            return None;
        }
        Ok(Err(e)) => panic!("{e:#} (CI=true: Java, Maven and Maven Central are required)"),
        Err(e) => panic!("{e}"),
    };
    let kafka = tokio::task::spawn_blocking(move || {
        ApacheKafka::start_with(KafkaOptions {
            classpath: Some(classpath),
            parent_dir: Some(tmp),
            ..KafkaOptions::default()
        })
    })
    .await
    .expect("the start of Apache Kafka panicked")
    .expect("Apache Kafka did not start");
    Some(kafka)
}

/// One test per scenario on the embedded and on the served broker, and one test that runs
/// every scenario in turn on one Apache Kafka node.
macro_rules! matrix {
    ($($scenario:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    examples::init_tracing();
                    let cluster = super::Cluster::embedded().await.unwrap();
                    if let Err(e) = super::$scenario(&cluster).await {
                        panic!("{} on the {} broker: {e:#}", stringify!($scenario), cluster.backend());
                    }
                }
            )*
        }

        mod served {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    examples::init_tracing();
                    let cluster = super::Cluster::served().await.unwrap();
                    if let Err(e) = super::$scenario(&cluster).await {
                        panic!("{} on the {} broker: {e:#}", stringify!($scenario), cluster.backend());
                    }
                }
            )*
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn apache_kafka_runs_every_scenario() {
            examples::init_tracing();
            let Some(kafka) = start_apache_kafka().await else {
                return;
            };
            let cluster = Cluster::apache_kafka(kafka).unwrap();
            let mut failures = Vec::new();
            $(
                let started = Instant::now();
                let result = run($scenario(&cluster)).await;
                eprintln!(
                    "{} on Apache Kafka: {} in {:.1} s",
                    stringify!($scenario),
                    if result.is_ok() { "passed" } else { "FAILED" },
                    started.elapsed().as_secs_f64()
                );
                if let Err(e) = result {
                    failures.push(format!("{}: {e:#}", stringify!($scenario)));
                }
            )*
            cluster.shutdown().await.unwrap();
            assert!(
                failures.is_empty(),
                "scenarios failed on Apache Kafka:\n{}",
                failures.join("\n")
            );
        }
    };
}

matrix!(
    word_count_at_least_once,
    word_count_exactly_once,
    windows,
    restore,
    rebalance,
    exactly_once_instance_killed,
);
