//! The other side of the oracle: each operation of the case format built with our DSL and run
//! through `streams_core::TopologyTestDriver`, with the same serdes (String keys and values,
//! counts as decimal strings, windowed keys as `"<key>@<start>/<end>"`) and the same user
//! functions as the Java side (`Functions.java`).
//!
//! To add an operation: build it in [`build`] in place of its `unsupported` arm.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::anyhow;
use bytes::Bytes;
use streams_core::{
    Serde, SerdeError, Serdes, StreamsConfig, TestDriverConfig, TestInputTopic, TestRecord,
    TopologyTestDriver, Window, Windowed,
};
use streams_dsl::{
    Consumed, Grouped, JoinWindows, Joined, KGroupedStream, KStream, KTable, Materialized,
    Produced, SessionWindows, SlidingWindows, StreamJoined, StreamsBuilder, TableJoined,
    TimeWindows,
};

use super::oracle::{Case, JoinKind, Op, Output, WindowType, Windows, LEFT, OUTPUT, RIGHT};

/// What our side made of a case.
#[derive(Debug)]
pub(crate) enum DslRun {
    /// Every record written to `output`, in order.
    Outputs(Vec<Output>),
    /// Our DSL has no such operation yet.
    Unsupported(&'static str),
}

/// Runs `case` through our DSL.
pub(crate) fn run(case: &Case) -> anyhow::Result<DslRun> {
    let builder = StreamsBuilder::new();
    if let Some(op) = build(&builder, &case.topology)? {
        return Ok(DslRun::Unsupported(op));
    }
    let config = StreamsConfig::from_pairs([
        ("application.id", "oracle"),
        // As the Java side: no record cache, so that every update is forwarded.
        ("statestore.cache.max.bytes", "0"),
    ])?;
    let driver = TopologyTestDriver::with_config(
        builder.build()?,
        TestDriverConfig::new().with_streams_config(config),
    )?;
    let mut inputs: HashMap<&str, TestInputTopic<String, String>> = HashMap::new();
    for input in &case.inputs {
        let topic = inputs.entry(&input.topic).or_insert_with(|| {
            driver.create_input_topic(&input.topic, Serdes::string(), Serdes::string())
        });
        topic.pipe_record(TestRecord::from_parts(
            input.key.clone(),
            input.value.clone(),
            input.timestamp,
        ))?;
    }
    let output = driver.create_output_topic(OUTPUT, Serdes::string(), Serdes::string());
    let outputs = output
        .read_records_to_list()?
        .into_iter()
        .map(|r| Output {
            key: r.key,
            value: r.value,
            timestamp: r.timestamp,
        })
        .collect();
    Ok(DslRun::Outputs(outputs))
}

/// Adds `op`'s topology to `builder`; `Some(name)` if our DSL cannot build it yet.
fn build(builder: &StreamsBuilder, op: &Op) -> anyhow::Result<Option<&'static str>> {
    match op {
        Op::TableFilter => table(builder, LEFT)
            .filter(|_, v| even_length(v))
            .to_stream()
            .to(OUTPUT, strings()),
        Op::TableFilterThenCount => decimal_output(
            table(builder, LEFT)
                .filter(|_, v| even_length(v))
                .group_by(|_, v| (v.clone(), v.clone()), grouped())
                .count(Materialized::new()),
        ),
        Op::TableMapValues => table(builder, LEFT)
            .map_values(|v| format!("{v}!"))
            .to_stream()
            .to(OUTPUT, strings()),
        Op::TableGroupByCount => decimal_output(
            table(builder, LEFT)
                .group_by(|k, v| (v.clone(), k.clone()), grouped())
                .count(Materialized::new()),
        ),
        Op::TableGroupByAggregate => decimal_output(
            table(builder, LEFT)
                .group_by(|k, v| (v.clone(), k.clone()), grouped())
                .aggregate(
                    || 0i64,
                    |key, _, agg| agg + java_length(key),
                    |key, _, agg| agg - java_length(key),
                    Materialized::new().with_value_serde(Serdes::i64()),
                ),
        ),
        Op::StreamCount => decimal_output(grouped_stream(builder, LEFT).count(Materialized::new())),
        Op::WindowedCount { windows } => {
            let grouped = grouped_stream(builder, LEFT);
            let counts = windowed_count(&grouped, windows)?;
            counts
                .to_stream()
                .map_values(|count| count.to_string())
                .to(OUTPUT, Produced::with(WindowedText, Serdes::string()));
        }
        Op::StreamTableJoin { join } => {
            let left = stream(builder, LEFT);
            let right = table(builder, RIGHT);
            let joined = match join {
                JoinKind::Inner => {
                    left.join_table(&right, |l, r| joiner(Some(l), Some(r)), Joined::new())
                }
                _ => left.left_join_table(&right, |l, r| joiner(Some(l), r), Joined::new()),
            };
            joined.to(OUTPUT, strings());
        }
        Op::TableTableJoin { join } => {
            let left = table(builder, LEFT);
            let right = table(builder, RIGHT);
            let joined = match join {
                JoinKind::Inner => {
                    left.join(&right, |l, r| joiner(Some(l), Some(r)), Materialized::new())
                }
                JoinKind::Left => {
                    left.left_join(&right, |l, r| joiner(Some(l), r), Materialized::new())
                }
                JoinKind::Outer => left.outer_join(&right, joiner, Materialized::new()),
            };
            joined.to_stream().to(OUTPUT, strings());
        }
        Op::StreamGlobalJoin { join } => {
            let left = stream(builder, LEFT);
            let right = builder.global_table(
                RIGHT,
                Consumed::with(Serdes::string(), Serdes::string()),
                Materialized::new(),
            );
            let mapper = |_: Option<&String>, v: &String| foreign_key(v);
            let joined = match join {
                JoinKind::Inner => {
                    left.join_global(&right, mapper, |l, r| joiner(Some(l), Some(r)))
                }
                _ => left.left_join_global(&right, mapper, |l, r| joiner(Some(l), r)),
            };
            joined.to(OUTPUT, strings());
        }
        Op::FkJoin { join } => {
            let left = table(builder, LEFT);
            let right = table(builder, RIGHT);
            let extractor = |v: &String| foreign_key(v);
            let joined = match join {
                JoinKind::Inner => left.join_foreign_key(
                    &right,
                    extractor,
                    |l, r| joiner(Some(l), Some(r)),
                    TableJoined::new(),
                    Materialized::new(),
                ),
                _ => left.left_join_foreign_key(
                    &right,
                    extractor,
                    |l, r| joiner(Some(l), r),
                    TableJoined::new(),
                    Materialized::new(),
                ),
            };
            joined.to_stream().to(OUTPUT, strings());
        }
        Op::StreamStreamJoin {
            join,
            before_ms,
            after_ms,
            grace_ms,
        } => {
            let ms = |name: &str, v: i64| {
                u64::try_from(v)
                    .map(Duration::from_millis)
                    .map_err(|_| anyhow!("stream_stream_join: {name} is negative"))
            };
            let (before, after) = (ms("before_ms", *before_ms)?, ms("after_ms", *after_ms)?);
            let difference = before.max(after);
            let windows = match grace_ms {
                Some(grace) => {
                    JoinWindows::of_time_difference_and_grace(difference, ms("grace_ms", *grace)?)
                }
                None => JoinWindows::of_time_difference_without_grace(difference),
            }
            .before(before)
            .after(after);
            let left = stream(builder, LEFT);
            let right = stream(builder, RIGHT);
            let joined =
                || StreamJoined::with(Serdes::string(), Serdes::string(), Serdes::string());
            let out = match join {
                JoinKind::Inner => {
                    left.join(&right, |l, r| joiner(Some(l), Some(r)), windows, joined())
                }
                JoinKind::Left => {
                    left.left_join(&right, |l, r| joiner(Some(l), r), windows, joined())
                }
                JoinKind::Outer => left.outer_join(&right, joiner, windows, joined()),
            };
            out.to(OUTPUT, strings());
        }
        Op::Cogroup { windows } => {
            let left = grouped_stream(builder, LEFT);
            let right = grouped_stream(builder, RIGHT);
            let cogrouped = left
                .cogroup(|_, v, agg: String| format!("{agg}L{v}"))
                .cogroup(&right, |_, v, agg| format!("{agg}R{v}"));
            let materialized = || Materialized::new().with_value_serde(Serdes::string());
            match windows {
                None => cogrouped
                    .aggregate(String::new, materialized())
                    .to_stream()
                    .to(OUTPUT, strings()),
                Some(windows) => {
                    let aggregates = match window_spec(windows)? {
                        WindowSpec::Time(w) => cogrouped
                            .windowed_by(w)
                            .aggregate(String::new, materialized()),
                        WindowSpec::Sliding(w) => cogrouped
                            .windowed_by_sliding(w)
                            .aggregate(String::new, materialized()),
                        // Merged sessions are concatenated, the earlier first.
                        WindowSpec::Session(w) => cogrouped.windowed_by_session(w).aggregate(
                            String::new,
                            |_, left, right| format!("{left}{right}"),
                            materialized(),
                        ),
                    };
                    aggregates
                        .to_stream()
                        .to(OUTPUT, Produced::with(WindowedText, Serdes::string()));
                }
            }
        }
        Op::VersionedTableToStream { history_ms } => versioned_table(builder, LEFT, *history_ms)?
            .to_stream()
            .to(OUTPUT, strings()),
        Op::VersionedTableFilter { history_ms } => versioned_table(builder, LEFT, *history_ms)?
            .filter(|_, v| even_length(v))
            .to_stream()
            .to(OUTPUT, strings()),
        Op::VersionedTableFilterThenCount { history_ms } => decimal_output(
            versioned_table(builder, LEFT, *history_ms)?
                .filter(|_, v| even_length(v))
                .group_by(|_, v| (v.clone(), v.clone()), grouped())
                .count(Materialized::new()),
        ),
        Op::VersionedTableGroupByCount { history_ms } => decimal_output(
            versioned_table(builder, LEFT, *history_ms)?
                .group_by(|k, v| (v.clone(), k.clone()), grouped())
                .count(Materialized::new()),
        ),
        Op::VersionedTableTableJoin {
            join,
            history_ms,
            versioned,
        } => {
            let side = |topic: &str| {
                if versioned == "both" || versioned == topic {
                    versioned_table(builder, topic, *history_ms)
                } else {
                    Ok(table(builder, topic))
                }
            };
            let (left, right) = (side(LEFT)?, side(RIGHT)?);
            let joined = match join {
                JoinKind::Inner => {
                    left.join(&right, |l, r| joiner(Some(l), Some(r)), Materialized::new())
                }
                JoinKind::Left => {
                    left.left_join(&right, |l, r| joiner(Some(l), r), Materialized::new())
                }
                JoinKind::Outer => left.outer_join(&right, joiner, Materialized::new()),
            };
            joined.to_stream().to(OUTPUT, strings());
        }
        Op::VersionedStreamTableJoin {
            join,
            history_ms,
            grace_ms,
        } => {
            let left = stream(builder, LEFT);
            let right = versioned_table(builder, RIGHT, *history_ms)?;
            let mut joined = Joined::with(Serdes::string(), Serdes::string(), Serdes::string());
            if let Some(grace) = grace_ms {
                let grace = u64::try_from(*grace)
                    .map_err(|_| anyhow!("versioned_stream_table_join: grace_ms is negative"))?;
                joined = joined.with_grace_period(Duration::from_millis(grace));
            }
            let out = match join {
                JoinKind::Inner => left.join_table(&right, |l, r| joiner(Some(l), Some(r)), joined),
                _ => left.left_join_table(&right, |l, r| joiner(Some(l), r), joined),
            };
            out.to(OUTPUT, strings());
        }
    }
    Ok(None)
}

/// The windows a case's `"windows"` describes.
enum WindowSpec {
    Time(TimeWindows),
    Sliding(SlidingWindows),
    Session(SessionWindows),
}

/// `windows` as our DSL's windows, as the Java side makes them.
fn window_spec(windows: &Windows) -> anyhow::Result<WindowSpec> {
    let ms = |name: &str, v: Option<i64>| {
        v.and_then(|v| u64::try_from(v).ok())
            .map(Duration::from_millis)
            .ok_or_else(|| anyhow!("windows: {name} missing or negative"))
    };
    let grace = ms("grace_ms", Some(windows.grace_ms))?;
    Ok(match windows.kind {
        WindowType::Tumbling | WindowType::Hopping => {
            let size = ms("size_ms", windows.size_ms)?;
            let advance = ms("advance_ms", windows.advance_ms.or(windows.size_ms))?;
            WindowSpec::Time(TimeWindows::of_size_and_grace(size, grace).advance_by(advance))
        }
        WindowType::Sliding => {
            let difference = ms("size_ms", windows.size_ms)?;
            WindowSpec::Sliding(SlidingWindows::of_time_difference_and_grace(
                difference, grace,
            ))
        }
        WindowType::Session => {
            let gap = ms("gap_ms", windows.gap_ms)?;
            WindowSpec::Session(SessionWindows::with_inactivity_gap_and_grace(gap, grace))
        }
    })
}

/// The windowed count of `grouped` in `windows`.
fn windowed_count(
    grouped: &KGroupedStream<String, String>,
    windows: &Windows,
) -> anyhow::Result<KTable<Windowed<String>, i64>> {
    Ok(match window_spec(windows)? {
        WindowSpec::Time(w) => grouped.windowed_by(w).count(Materialized::new()),
        WindowSpec::Sliding(w) => grouped.windowed_by_sliding(w).count(Materialized::new()),
        WindowSpec::Session(w) => grouped.windowed_by_session(w).count(Materialized::new()),
    })
}

/// Every join's joiner: `left + "+" + right`, a missing side printed as
/// `null` (Java's string concatenation).
fn joiner(left: Option<&String>, right: Option<&String>) -> String {
    format!(
        "{}+{}",
        left.map_or("null", String::as_str),
        right.map_or("null", String::as_str)
    )
}

/// The foreign key of a value `"<fk>:<payload>"`: the text before its
/// first `:`; `None` for a value without one.
fn foreign_key(value: &str) -> Option<String> {
    value.split_once(':').map(|(fk, _)| fk.to_owned())
}

/// A stream of `topic`, String keys and values.
fn stream(builder: &StreamsBuilder, topic: &str) -> KStream<String, String> {
    builder.stream(topic, Consumed::with(Serdes::string(), Serdes::string()))
}

/// A table of `topic`, String keys and values.
fn table(builder: &StreamsBuilder, topic: &str) -> KTable<String, String> {
    builder.table(
        topic,
        Consumed::with(Serdes::string(), Serdes::string()),
        Materialized::new(),
    )
}

/// A table of `topic` kept in the versioned store `<topic>-versioned` with `history_ms` of
/// history, String keys and values.
fn versioned_table(
    builder: &StreamsBuilder,
    topic: &str,
    history_ms: i64,
) -> anyhow::Result<KTable<String, String>> {
    let history =
        u64::try_from(history_ms).map_err(|_| anyhow!("{topic}: history_ms is negative"))?;
    Ok(builder.table(
        topic,
        Consumed::with(Serdes::string(), Serdes::string()),
        Materialized::as_versioned(format!("{topic}-versioned"), Duration::from_millis(history)),
    ))
}

/// A stream of `topic` grouped by key, String keys and values.
fn grouped_stream(builder: &StreamsBuilder, topic: &str) -> KGroupedStream<String, String> {
    let stream: KStream<String, String> =
        builder.stream(topic, Consumed::with(Serdes::string(), Serdes::string()));
    stream.group_by_key(grouped())
}

fn grouped() -> Grouped<String, String> {
    Grouped::with(Serdes::string(), Serdes::string())
}

fn strings() -> Produced<String, String> {
    Produced::with(Serdes::string(), Serdes::string())
}

/// A table of counts or sums to `output`, the values as decimal strings.
fn decimal_output(table: KTable<String, i64>) {
    table
        .to_stream()
        .map_values(|n| n.to_string())
        .to(OUTPUT, strings());
}

/// Java's `String.length()`: UTF-16 code units.
fn java_length(s: &str) -> i64 {
    i64::try_from(s.encode_utf16().count()).unwrap_or(i64::MAX)
}

/// The table filters' predicate: an even length (in Java's sense).
fn even_length(v: &str) -> bool {
    java_length(v) % 2 == 0
}

/// A windowed String key as the text `"<key>@<start>/<end>"`.
#[derive(Debug, Clone, Copy)]
struct WindowedText;

impl Serde<Windowed<String>> for WindowedText {
    fn serialize(&self, _topic: &str, value: &Windowed<String>) -> Result<Bytes, SerdeError> {
        Ok(Bytes::from(format!(
            "{}@{}/{}",
            value.key, value.window.start, value.window.end
        )))
    }

    fn deserialize(&self, topic: &str, bytes: &Bytes) -> Result<Windowed<String>, SerdeError> {
        let error =
            || SerdeError::deserialize::<Windowed<String>>(topic, "not <key>@<start>/<end>");
        let text = std::str::from_utf8(bytes).map_err(|_| error())?;
        let (key, window) = text.rsplit_once('@').ok_or_else(error)?;
        let (start, end) = window.split_once('/').ok_or_else(error)?;
        let start = start.parse().map_err(|_| error())?;
        let end = end.parse().map_err(|_| error())?;
        Ok(Windowed::new(key.to_owned(), Window::new(start, end)))
    }
}
