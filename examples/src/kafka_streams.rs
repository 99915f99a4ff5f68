//! Kafka Streams' own word count, the Java reference for ours, run as a child process.
//!
//! The application is `examples/benches/kafka-streams` (Kafka Streams of the broker's
//! version): the topology of [`crate::word_count_topology`] written with Kafka Streams'
//! DSL, reading [`crate::TEXT_LINES_TOPIC`] and writing [`crate::WORD_COUNTS_TOPIC`]
//! (String keys, Long values: 8 bytes big-endian), through the repartition topic
//! `<app_id>-word-counts-repartition` and the store `word-counts`. Both topics must exist
//! before it starts (Kafka Streams creates only its internal topics).
//! `scripts/kafka-streams.sh` builds it with Maven once, under the target dir; this needs
//! Java 17 or later, and a JDK, Maven and the network on the first run.
//!
//! ```no_run
//! use std::time::Duration;
//! use examples::apache_kafka::ApacheKafka;
//! use examples::kafka_streams::{Guarantee, KafkaStreamsApp};
//!
//! let kafka = ApacheKafka::start()?;
//! kafka.create_topic("text-lines", 3)?;
//! kafka.create_topic("word-counts", 3)?;
//! // ... produce lines to text-lines ...
//! let state = tempfile::tempdir()?;
//! let mut app = KafkaStreamsApp::start(
//!     &kafka.bootstrap(), "wordcount", Guarantee::ExactlyOnceV2, 1, 100, state.path(),
//! )?;
//! app.wait_until_caught_up(&["text-lines"], Duration::from_secs(60))?;
//! println!("cpu {:.1} s, peak rss {} KiB", app.cpu_seconds()?, app.peak_rss_kib()?);
//! app.stop()?;
//! # Ok::<(), anyhow::Error>(())
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::io::{BufRead as _, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::kafka_progress::{group_caught_up, repartition_topics};
use crate::process::{classpath_from_script, terminate};

/// The main class of Kafka Streams' word count.
pub const WORD_COUNT_MAIN_CLASS: &str = "dev.rill.benches.KafkaStreamsWordCount";
/// How long a SIGTERM'd application may take to close before it is killed (it closes
/// Kafka Streams within 60 s itself).
const STOP_TIMEOUT: Duration = Duration::from_secs(90);
/// How many of the last lines of the application's stderr are kept, to explain a failure.
const STDERR_LINES: usize = 40;
/// How often the waits look at the application and the broker.
const POLL_EVERY: Duration = Duration::from_millis(50);

/// The classpath of Kafka Streams' word count (its jar and dependencies), from
/// `scripts/kafka-streams.sh`, which builds it into `cache` the first time (`None`: its
/// default, `$CARGO_TARGET_DIR/tmp/kafka-streams` or `target/tmp/kafka-streams`). The error
/// says why there is none (no Java, no JDK or Maven, no network).
pub fn word_count_classpath(cache: Option<&Path>) -> anyhow::Result<String> {
    classpath_from_script("scripts/kafka-streams.sh", cache)
}

/// Kafka Streams' `processing.guarantee`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Guarantee {
    /// `at_least_once`: offsets committed after the outputs are flushed.
    AtLeastOnce,
    /// `exactly_once_v2`: outputs, state changes and offsets in one transaction.
    ExactlyOnceV2,
}

impl Guarantee {
    /// The name Kafka Streams' configuration takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Guarantee::AtLeastOnce => "at_least_once",
            Guarantee::ExactlyOnceV2 => "exactly_once_v2",
        }
    }
}

impl fmt::Display for Guarantee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How [`KafkaStreamsApp::start_with`] runs Kafka Streams' word count.
#[derive(Debug, Clone)]
pub struct KafkaStreamsOptions {
    /// The broker's `host:port` (`bootstrap.servers`).
    pub bootstrap: String,
    /// `application.id`: the consumer group, and the prefix of the internal topics.
    pub app_id: String,
    /// `processing.guarantee`.
    pub guarantee: Guarantee,
    /// `num.stream.threads`.
    pub threads: u32,
    /// `commit.interval.ms`.
    pub commit_ms: u64,
    /// `state.dir`: where the RocksDB stores live.
    pub state_dir: PathBuf,
    /// More Kafka Streams settings (names and values, for instance
    /// `("statestore.cache.max.bytes", "0")`), applied after the ones above.
    pub properties: Vec<(String, String)>,
    /// The JVM's options (heap, garbage collector); none by default (the JVM's defaults).
    pub jvm_options: Vec<String>,
    /// The application's classpath; `None`: [`word_count_classpath`]`(None)`.
    pub classpath: Option<String>,
}

impl KafkaStreamsOptions {
    /// The options of [`KafkaStreamsApp::start`]: no more settings, the JVM's defaults, the
    /// classpath of [`word_count_classpath`]`(None)`.
    pub fn new(
        bootstrap: &str,
        app_id: &str,
        guarantee: Guarantee,
        threads: u32,
        commit_ms: u64,
        state_dir: &Path,
    ) -> Self {
        KafkaStreamsOptions {
            bootstrap: bootstrap.to_owned(),
            app_id: app_id.to_owned(),
            guarantee,
            threads,
            commit_ms,
            state_dir: state_dir.to_owned(),
            properties: Vec::new(),
            jvm_options: Vec::new(),
            classpath: None,
        }
    }
}

/// What the application printed, read by two threads while it runs.
#[derive(Debug, Default)]
struct Output {
    /// Each `STATE <state>` line of stdout, in order.
    states: Vec<String>,
    /// The `CLOSED <true|false>` line its shutdown hook prints.
    closed: Option<bool>,
    /// The last lines of stderr.
    stderr: VecDeque<String>,
}

/// Kafka Streams' word count running in a JVM of its own. Dropping it stops it as
/// [`KafkaStreamsApp::stop`] does, ignoring the outcome.
#[derive(Debug)]
pub struct KafkaStreamsApp {
    child: Child,
    bootstrap: String,
    app_id: String,
    output: Arc<Mutex<Output>>,
    readers: Vec<JoinHandle<()>>,
}

impl KafkaStreamsApp {
    /// Starts Kafka Streams' word count against the broker at `bootstrap` with these
    /// settings (see [`KafkaStreamsOptions`]); it returns once the JVM runs, before Kafka
    /// Streams is `RUNNING` (see [`KafkaStreamsApp::wait_for_state`]).
    pub fn start(
        bootstrap: &str,
        app_id: &str,
        guarantee: Guarantee,
        threads: u32,
        commit_ms: u64,
        state_dir: &Path,
    ) -> anyhow::Result<Self> {
        Self::start_with(KafkaStreamsOptions::new(
            bootstrap, app_id, guarantee, threads, commit_ms, state_dir,
        ))
    }

    /// Starts Kafka Streams' word count as `options` say, building it first unless
    /// `options` names a classpath.
    pub fn start_with(options: KafkaStreamsOptions) -> anyhow::Result<Self> {
        let classpath = match &options.classpath {
            Some(classpath) => classpath.clone(),
            None => word_count_classpath(None)?,
        };
        std::fs::create_dir_all(&options.state_dir)
            .with_context(|| format!("cannot create {}", options.state_dir.display()))?;
        let mut child = Command::new("java")
            .args(&options.jvm_options)
            .args(["-cp", &classpath, WORD_COUNT_MAIN_CLASS])
            .arg(&options.bootstrap)
            .arg(&options.app_id)
            .arg(options.guarantee.as_str())
            .arg(options.threads.to_string())
            .arg(options.commit_ms.to_string())
            .arg(&options.state_dir)
            .args(
                options
                    .properties
                    .iter()
                    .map(|(name, value)| format!("{name}={value}")),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot run java")?;
        let output = Arc::new(Mutex::new(Output::default()));
        let mut readers = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            readers.push(spawn_reader("stdout", stdout, output.clone(), read_stdout)?);
        }
        if let Some(stderr) = child.stderr.take() {
            readers.push(spawn_reader("stderr", stderr, output.clone(), read_stderr)?);
        }
        Ok(KafkaStreamsApp {
            child,
            bootstrap: options.bootstrap,
            app_id: options.app_id,
            output,
            readers,
        })
    }

    /// The JVM's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its `application.id` (its consumer group).
    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// The last state Kafka Streams reported (`CREATED`, `REBALANCING`, `RUNNING`,
    /// `PENDING_SHUTDOWN`, `NOT_RUNNING`, `PENDING_ERROR`, `ERROR`), if any yet.
    pub fn state(&self) -> Option<String> {
        self.lock().states.last().cloned()
    }

    /// Every state Kafka Streams has reported, in order.
    pub fn states(&self) -> Vec<String> {
        self.lock().states.clone()
    }

    /// The CPU time the JVM has used so far, user and system, in seconds (see
    /// [`crate::process::cpu_seconds`]). An error once it has exited.
    pub fn cpu_seconds(&self) -> anyhow::Result<f64> {
        crate::process::cpu_seconds(self.pid())
    }

    /// The JVM's peak resident set size so far, in KiB (see
    /// [`crate::process::peak_rss_kib`]). An error once it has exited.
    pub fn peak_rss_kib(&self) -> anyhow::Result<u64> {
        crate::process::peak_rss_kib(self.pid())
    }

    /// Fails, with the end of its stderr, if the JVM has exited or Kafka Streams has
    /// reported an error.
    pub fn ensure_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            // Let the readers take the last lines.
            self.join_readers();
            anyhow::bail!(
                "Kafka Streams' word count exited ({status}); states {:?}; stderr:\n{}",
                self.states(),
                self.stderr_tail()
            );
        }
        let state = self.state();
        if matches!(state.as_deref(), Some("PENDING_ERROR" | "ERROR")) {
            anyhow::bail!(
                "Kafka Streams' word count failed (state {}); stderr:\n{}",
                state.unwrap_or_default(),
                self.stderr_tail()
            );
        }
        Ok(())
    }

    /// Waits until Kafka Streams reports `state` (`"RUNNING"`, say) as its current state;
    /// fails if the application stops or fails first, or after `timeout`.
    pub fn wait_for_state(&mut self, state: &str, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.state().as_deref() == Some(state) {
                return Ok(());
            }
            self.ensure_running()?;
            anyhow::ensure!(
                Instant::now() < deadline,
                "Kafka Streams did not reach {state} within {timeout:?} (states {:?})",
                self.states()
            );
            std::thread::sleep(POLL_EVERY);
        }
    }

    /// Waits until the application is `RUNNING` and its group has committed the end of
    /// `input_topics` and of its repartition topics (see
    /// [`crate::kafka_progress::group_caught_up`]): it has processed all its input and
    /// written all its output. Fails if it stops or fails first, or after `timeout`.
    /// Returns how long the wait took.
    pub fn wait_until_caught_up(
        &mut self,
        input_topics: &[&str],
        timeout: Duration,
    ) -> anyhow::Result<Duration> {
        let started = Instant::now();
        loop {
            self.ensure_running()?;
            if self.state().as_deref() == Some("RUNNING") {
                // The word count has one; Kafka Streams creates it before RUNNING.
                let repartition = repartition_topics(&self.bootstrap, &self.app_id)?;
                if !repartition.is_empty() {
                    let mut topics: Vec<String> =
                        input_topics.iter().map(|t| (*t).to_owned()).collect();
                    topics.extend(repartition);
                    if group_caught_up(&self.bootstrap, &self.app_id, &topics)? {
                        return Ok(started.elapsed());
                    }
                }
            }
            anyhow::ensure!(
                started.elapsed() < timeout,
                "Kafka Streams' word count did not catch up within {timeout:?} (states {:?})",
                self.states()
            );
            std::thread::sleep(POLL_EVERY);
        }
    }

    /// Stops the application as a service manager would (SIGTERM: its shutdown hook
    /// closes Kafka Streams) and waits for the JVM to exit. Fails if it had exited before,
    /// did not report a clean close, or had to be killed (after 90 s).
    pub fn stop(mut self) -> anyhow::Result<()> {
        let exited_before = self.child.try_wait()?;
        let (status, killed) = terminate(&mut self.child, STOP_TIMEOUT)?;
        self.join_readers();
        if let Some(status) = exited_before {
            anyhow::bail!(
                "Kafka Streams' word count had exited before it was stopped ({status}); \
                 stderr:\n{}",
                self.stderr_tail()
            );
        }
        anyhow::ensure!(
            !killed,
            "Kafka Streams' word count did not exit within {STOP_TIMEOUT:?} of SIGTERM: killed"
        );
        let closed = self.lock().closed;
        anyhow::ensure!(
            closed == Some(true),
            "Kafka Streams' word count did not close cleanly ({status}, closed: {closed:?}); \
             stderr:\n{}",
            self.stderr_tail()
        );
        Ok(())
    }

    /// The last lines of the application's stderr.
    pub fn stderr_tail(&self) -> String {
        let output = self.lock();
        output.stderr.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Output> {
        self.output.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for the readers to reach the end of the exited JVM's output.
    fn join_readers(&mut self) {
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }
}

impl Drop for KafkaStreamsApp {
    fn drop(&mut self) {
        // After `stop` the child has been reaped and this does nothing.
        if let Err(e) = terminate(&mut self.child, STOP_TIMEOUT) {
            tracing::warn!(
                "cannot stop Kafka Streams' word count (pid {}): {e:#}",
                self.child.id()
            );
        }
        self.join_readers();
    }
}

/// Reads `stream` line by line on a thread of its own, handing each line to `take`.
fn spawn_reader<R: Read + Send + 'static>(
    name: &str,
    stream: R,
    output: Arc<Mutex<Output>>,
    take: fn(&mut Output, String),
) -> anyhow::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("kafka-streams-{name}"))
        .spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                take(
                    &mut output.lock().unwrap_or_else(PoisonError::into_inner),
                    line,
                );
            }
        })
        .context("cannot start a thread")
}

/// A line of the application's stdout: `STATE <state>` or `CLOSED <true|false>`.
fn read_stdout(output: &mut Output, line: String) {
    if let Some(state) = line.strip_prefix("STATE ") {
        output.states.push(state.trim().to_owned());
    } else if let Some(closed) = line.strip_prefix("CLOSED ") {
        output.closed = Some(closed.trim() == "true");
    }
}

/// A line of the application's stderr, kept among the last [`STDERR_LINES`].
fn read_stderr(output: &mut Output, line: String) {
    if output.stderr.len() == STDERR_LINES {
        output.stderr.pop_front();
    }
    output.stderr.push_back(line);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdout_lines_give_states_and_the_close() {
        let mut output = Output::default();
        for line in [
            "STATE REBALANCING",
            "something else",
            "STATE RUNNING",
            "CLOSED true",
        ] {
            read_stdout(&mut output, line.to_owned());
        }
        assert_eq!(output.states, ["REBALANCING", "RUNNING"]);
        assert_eq!(output.closed, Some(true));
    }

    #[test]
    fn stderr_keeps_its_last_lines() {
        let mut output = Output::default();
        for i in 0..STDERR_LINES + 5 {
            read_stderr(&mut output, i.to_string());
        }
        assert_eq!(output.stderr.len(), STDERR_LINES);
        assert_eq!(output.stderr.front().map(String::as_str), Some("5"));
    }

    #[test]
    fn kafka_streams_is_the_brokers_version() {
        assert_eq!(
            crate::apache_kafka::pom_kafka_version("examples/benches/kafka-streams/pom.xml"),
            crate::apache_kafka::kafka_version()
        );
    }

    #[test]
    fn guarantees_are_named_as_kafka_streams_names_them() {
        assert_eq!(Guarantee::AtLeastOnce.to_string(), "at_least_once");
        assert_eq!(Guarantee::ExactlyOnceV2.as_str(), "exactly_once_v2");
    }
}
