//! Kafka Streams as the oracle of the DSL: the case format that both sides read, and the Java
//! program (`tests/oracle/kafka-streams-oracle`, built by `scripts/kafka-streams-oracle.sh`)
//! that runs a case through Kafka Streams' own `TopologyTestDriver`.
//!
//! The program is started once per test process and kept for every case: it reads one JSON
//! case per line on stdin and answers each with one JSON line on stdout. See docs/oracle.md.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use serde::{Deserialize, Serialize};

/// The input topic of every operation, and the left side of the joins.
pub(crate) const LEFT: &str = "left";
/// The right side of the joins and of `cogroup`.
pub(crate) const RIGHT: &str = "right";
/// The topic every operation writes its results to.
pub(crate) const OUTPUT: &str = "output";

/// The oracle's main class.
const MAIN_CLASS: &str = "dev.rill.oracle.Oracle";
/// How long one case may take to be answered (the first one starts the JVM).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(120);

/// One case: a topology and the records piped into it, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Case {
    /// What the topology does.
    pub(crate) topology: Op,
    /// The input records, piped in this order.
    pub(crate) inputs: Vec<Input>,
}

/// A record piped into `left` or `right`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Input {
    /// [`LEFT`] or [`RIGHT`].
    pub(crate) topic: String,
    /// `None`: a null key.
    pub(crate) key: Option<String>,
    /// `None`: a null value (on a table, a delete).
    pub(crate) value: Option<String>,
    /// Epoch milliseconds.
    pub(crate) timestamp: i64,
}

/// A record written to [`OUTPUT`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Output {
    /// The key (a windowed key as `"<key>@<start>/<end>"`).
    pub(crate) key: Option<String>,
    /// The value (a count or sum as a decimal string); `None` is a tombstone.
    pub(crate) value: Option<String>,
    /// Epoch milliseconds.
    pub(crate) timestamp: i64,
}

/// An operation and its parameters, `{"op": "<name>", ...}` in JSON. The Java side builds
/// each with Kafka Streams' DSL (`Topologies.java`), the interpreter of the test with ours.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(crate) enum Op {
    /// `table(left).filter(even length).toStream()`.
    TableFilter,
    /// `table(left).filter(even length).groupBy((k, v) -> (v, v)).count()`.
    TableFilterThenCount,
    /// `table(left).mapValues(v -> v + "!")`.
    TableMapValues,
    /// `table(left).groupBy((k, v) -> (v, k)).count()`.
    TableGroupByCount,
    /// `table(left).groupBy((k, v) -> (v, k)).aggregate(0, + key length, - key length)`.
    TableGroupByAggregate,
    /// `stream(left).groupByKey().count()`.
    StreamCount,
    /// `stream(left).groupByKey().windowedBy(windows).count()`.
    WindowedCount {
        /// The windows.
        windows: Windows,
    },
    /// `stream(left)` joined with `stream(right)` within `[-before, +after]`.
    StreamStreamJoin {
        /// inner, left or outer.
        join: JoinKind,
        /// How far back the other side may be.
        before_ms: i64,
        /// How far ahead the other side may be.
        after_ms: i64,
        /// `None`: `JoinWindows.ofTimeDifferenceWithNoGrace`.
        grace_ms: Option<i64>,
    },
    /// `stream(left)` joined with `table(right)`.
    StreamTableJoin {
        /// inner or left.
        join: JoinKind,
    },
    /// `table(left)` joined with `table(right)`.
    TableTableJoin {
        /// inner, left or outer.
        join: JoinKind,
    },
    /// `stream(left)` joined with `globalTable(right)` on the value's foreign key.
    StreamGlobalJoin {
        /// inner or left.
        join: JoinKind,
    },
    /// `table(left)` joined with `table(right)` on the value's foreign key.
    FkJoin {
        /// inner or left.
        join: JoinKind,
    },
    /// `table(left)` kept in a versioned store, `.toStream()`.
    VersionedTableToStream {
        /// The store's history retention.
        history_ms: i64,
    },
    /// `table(left)` kept in a versioned store, `.filter(even length).toStream()`.
    VersionedTableFilter {
        /// The store's history retention.
        history_ms: i64,
    },
    /// `table(left)` kept in a versioned store, filtered by even length, `.groupBy((k, v) ->
    /// (v, v)).count()`.
    VersionedTableFilterThenCount {
        /// The store's history retention.
        history_ms: i64,
    },
    /// `table(left)` kept in a versioned store, `.groupBy((k, v) -> (v, k)).count()`.
    VersionedTableGroupByCount {
        /// The store's history retention.
        history_ms: i64,
    },
    /// `table(left)` joined with `table(right)`, one or both kept in versioned stores.
    VersionedTableTableJoin {
        /// inner, left or outer.
        join: JoinKind,
        /// The versioned stores' history retention.
        history_ms: i64,
        /// Which tables are versioned: `left`, `right` or `both`.
        versioned: String,
    },
    /// `stream(left)` joined with `table(right)` kept in a versioned store, with a grace
    /// period or not.
    VersionedStreamTableJoin {
        /// inner or left.
        join: JoinKind,
        /// The store's history retention.
        history_ms: i64,
        /// `None`: no grace period (no buffer).
        grace_ms: Option<i64>,
    },
    /// `stream(left)` and `stream(right)` grouped by key and cogrouped, maybe windowed.
    Cogroup {
        /// `None`: not windowed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        windows: Option<Windows>,
    },
}

impl Op {
    /// The operation's name in the case format.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Op::TableFilter => "table_filter",
            Op::TableFilterThenCount => "table_filter_then_count",
            Op::TableMapValues => "table_map_values",
            Op::TableGroupByCount => "table_group_by_count",
            Op::TableGroupByAggregate => "table_group_by_aggregate",
            Op::StreamCount => "stream_count",
            Op::WindowedCount { .. } => "windowed_count",
            Op::StreamStreamJoin { .. } => "stream_stream_join",
            Op::StreamTableJoin { .. } => "stream_table_join",
            Op::TableTableJoin { .. } => "table_table_join",
            Op::StreamGlobalJoin { .. } => "stream_global_join",
            Op::FkJoin { .. } => "fk_join",
            Op::VersionedTableToStream { .. } => "versioned_table_to_stream",
            Op::VersionedTableFilter { .. } => "versioned_table_filter",
            Op::VersionedTableFilterThenCount { .. } => "versioned_table_filter_then_count",
            Op::VersionedTableGroupByCount { .. } => "versioned_table_group_by_count",
            Op::VersionedTableTableJoin { .. } => "versioned_table_table_join",
            Op::VersionedStreamTableJoin { .. } => "versioned_stream_table_join",
            Op::Cogroup { .. } => "cogroup",
        }
    }
}

/// A join's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum JoinKind {
    /// Only matches.
    Inner,
    /// Every left record, null-padded when it has no match.
    Left,
    /// Every record of both sides.
    Outer,
}

/// A window kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum WindowType {
    /// `TimeWindows` advancing by their size.
    Tumbling,
    /// `TimeWindows` advancing by `advance_ms`.
    Hopping,
    /// `SlidingWindows` of difference `size_ms`.
    Sliding,
    /// `SessionWindows` of inactivity gap `gap_ms`.
    Session,
}

/// A `"windows"` description.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Windows {
    /// The kind.
    #[serde(rename = "type")]
    pub(crate) kind: WindowType,
    /// Time windows' size, sliding windows' time difference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) size_ms: Option<i64>,
    /// Hopping windows' advance (default: the size).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) advance_ms: Option<i64>,
    /// The grace period.
    pub(crate) grace_ms: i64,
    /// Session windows' inactivity gap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) gap_ms: Option<i64>,
}

/// The oracle's answer to one case.
#[derive(Debug, Deserialize)]
struct Answer {
    #[serde(default)]
    outputs: Option<Vec<Output>>,
    #[serde(default)]
    error: Option<String>,
}

/// The running Java program.
#[derive(Debug)]
pub(crate) struct Oracle {
    child: Child,
    stdin: ChildStdin,
    /// Lines of its stdout, read by a thread of their own so that a hung JVM is noticed.
    lines: Receiver<std::io::Result<String>>,
    /// Where its stderr goes, to explain a failure.
    stderr: PathBuf,
}

impl Oracle {
    /// Builds the program if needed (`scripts/kafka-streams-oracle.sh`) and starts it. The
    /// error says why it cannot run (no Java, no Maven, no network on the first build).
    pub(crate) fn start() -> anyhow::Result<Oracle> {
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let classpath = classpath(&tmp.join("kafka-streams-oracle"))?;
        std::fs::create_dir_all(tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        let stderr = tmp.join(format!(
            "kafka-streams-oracle-{}.stderr",
            std::process::id()
        ));
        let stderr_file = std::fs::File::create(&stderr)
            .with_context(|| format!("cannot create {}", stderr.display()))?;
        let mut child = Command::new("java")
            .args(["-XX:+UseSerialGC", "-cp"])
            .arg(&classpath)
            .arg(MAIN_CLASS)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr_file))
            .spawn()
            .context("cannot start java")?;
        let stdin = child.stdin.take().context("the oracle has no stdin")?;
        let stdout = child.stdout.take().context("the oracle has no stdout")?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Oracle {
            child,
            stdin,
            lines,
            stderr,
        })
    }

    /// Runs `case` through Kafka Streams: every record written to [`OUTPUT`], in order.
    pub(crate) fn run(&mut self, case: &Case) -> anyhow::Result<Vec<Output>> {
        self.run_json(&serde_json::to_string(case)?)
    }

    /// Runs a case given as one line of JSON (no newline in it).
    pub(crate) fn run_json(&mut self, case: &str) -> anyhow::Result<Vec<Output>> {
        let mut line = case.to_owned();
        line.push('\n');
        self.stdin
            .write_all(line.as_bytes())
            .and_then(|()| self.stdin.flush())
            .map_err(|e| self.failure(&format!("cannot write to the oracle: {e}")))?;
        let answer = match self.lines.recv_timeout(ANSWER_TIMEOUT) {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => return Err(self.failure(&format!("cannot read the oracle: {e}"))),
            Err(RecvTimeoutError::Timeout) => {
                return Err(self.failure(&format!("no answer in {ANSWER_TIMEOUT:?}")))
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(self.failure("the oracle closed its output"))
            }
        };
        let answer: Answer = serde_json::from_str(&answer)
            .with_context(|| format!("the oracle's answer is not a result: {answer}"))?;
        match answer {
            Answer {
                error: Some(error), ..
            } => bail!("Kafka Streams could not run the case: {error}"),
            Answer {
                outputs: Some(outputs),
                ..
            } => Ok(outputs),
            _ => bail!("the oracle's answer has neither outputs nor error"),
        }
    }

    /// An error naming `what` and the end of the program's stderr.
    fn failure(&mut self, what: &str) -> anyhow::Error {
        let status = match self.child.try_wait() {
            Ok(Some(status)) => format!(" (the JVM exited: {status})"),
            _ => String::new(),
        };
        let text = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        anyhow!("{what}{status}; its stderr ends with:\n{tail}")
    }
}

impl Drop for Oracle {
    fn drop(&mut self) {
        // The program ends at the end of its input; a kill is for one that does not.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The program's classpath from `scripts/kafka-streams-oracle.sh`, built into `cache` the
/// first time; the error is the script's reason (no Java, no JDK or Maven, no network).
fn classpath(cache: &Path) -> anyhow::Result<String> {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = manifest_dir
        .parent()
        .unwrap_or(manifest_dir)
        .join("scripts/kafka-streams-oracle.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg(cache)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run bash {}", script.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let classpath = stdout.lines().last().unwrap_or_default().trim();
    if out.status.success() && !classpath.is_empty() {
        return Ok(classpath.to_owned());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let reason = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no output");
    bail!(
        "scripts/kafka-streams-oracle.sh failed ({}): {reason}",
        out.status
    )
}

/// The oracle of this test process, started on first use and shared by every test in it;
/// `Err` (the reason) when it cannot run.
pub(crate) fn shared() -> &'static Result<Mutex<Oracle>, String> {
    static ORACLE: OnceLock<Result<Mutex<Oracle>, String>> = OnceLock::new();
    ORACLE.get_or_init(|| {
        Oracle::start()
            .map(Mutex::new)
            .map_err(|e| format!("{e:#}"))
    })
}

/// Runs `case` on the shared oracle.
pub(crate) fn run_shared(oracle: &Mutex<Oracle>, case: &Case) -> anyhow::Result<Vec<Output>> {
    oracle
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .run(case)
}
