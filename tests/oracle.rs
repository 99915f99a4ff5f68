//! Kafka Streams itself as the oracle of the DSL: random inputs go through a topology built
//! with Kafka Streams' DSL and run by its own `TopologyTestDriver` (the Java program of
//! `tests/oracle/kafka-streams-oracle`), and through the same topology built with ours and run
//! by `streams_core::TopologyTestDriver`; the records written to `output` must be the same
//! (key, value, timestamp and order). A difference shrinks to a minimal case, printed as the
//! JSON line that the Java program reads. See docs/oracle.md.
//!
//! `scripts/kafka-streams-oracle.sh` fetches Kafka Streams from Maven Central and builds the
//! Java program the first time, under the target dir. Without Java, Maven or the network the
//! tests are skipped with a message, except under `CI=true`, where that is a failure.
//!
//! `PROPTEST_CASES` replaces the number of cases of every operation.

use std::cell::Cell;
use std::sync::Mutex;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};

#[path = "support/oracle.rs"]
mod oracle;
#[path = "support/oracle_dsl.rs"]
mod oracle_dsl;

use oracle::{Case, Input, JoinKind, Op, Oracle, Output, WindowType, Windows, LEFT, RIGHT};
use oracle_dsl::DslRun;

/// Cases per operation unless `PROPTEST_CASES` says otherwise.
const CASES: u32 = 64;
/// A bound on shrinking, so that a difference is reported in seconds.
const MAX_SHRINK_ITERS: u32 = 2_000;

/// Whether the test runs under CI (`CI=true`), where a missing tool is a failure.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The shared oracle; `None` (and the reason printed) when it cannot run outside CI.
fn oracle() -> Option<&'static Mutex<Oracle>> {
    match oracle::shared() {
        Ok(oracle) => Some(oracle),
        Err(why) if in_ci() => {
            panic!("the Kafka Streams oracle cannot run: {why} (CI=true: Java, Maven and Maven Central are required)")
        }
        Err(why) => {
            eprintln!("skipping a comparison with Kafka Streams: {why}");
            None
        }
    }
}

/// Why a case could not be compared.
enum NotCompared {
    /// Our DSL has no such operation yet.
    Unsupported(&'static str),
    /// One side failed.
    Failed(String),
}

/// The records written by Kafka Streams and by our DSL for `case`.
fn both(oracle: &Mutex<Oracle>, case: &Case) -> Result<(Vec<Output>, Vec<Output>), NotCompared> {
    let ours = match oracle_dsl::run(case) {
        Ok(DslRun::Outputs(ours)) => ours,
        Ok(DslRun::Unsupported(op)) => return Err(NotCompared::Unsupported(op)),
        Err(e) => return Err(NotCompared::Failed(format!("our DSL failed: {e:#}"))),
    };
    let kafka =
        oracle::run_shared(oracle, case).map_err(|e| NotCompared::Failed(format!("{e:#}")))?;
    Ok((kafka, ours))
}

/// One output per line, as `key -> value @ timestamp`.
fn show(outputs: &[Output]) -> String {
    let text = |s: &Option<String>| s.as_deref().map_or("null".to_owned(), |s| format!("{s:?}"));
    outputs
        .iter()
        .map(|o| {
            format!(
                "  {} -> {} @ {}\n",
                text(&o.key),
                text(&o.value),
                o.timestamp
            )
        })
        .collect()
}

/// Runs `strategy`'s cases through both sides and requires the same outputs; a difference
/// panics with the shrunk case and both outputs.
fn differential(cases: u32, strategy: impl Strategy<Value = Case>) {
    let Some(oracle) = oracle() else {
        return;
    };
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(cases);
    let mut runner = TestRunner::new(Config {
        cases,
        max_shrink_iters: MAX_SHRINK_ITERS,
        failure_persistence: None,
        ..Config::default()
    });
    let unsupported = Cell::new(None);
    let result = runner.run(&strategy, |case| {
        let (kafka, ours) = match both(oracle, &case) {
            Ok(outputs) => outputs,
            Err(NotCompared::Unsupported(op)) => {
                unsupported.set(Some(op));
                return Err(TestCaseError::fail(format!(
                    "our DSL cannot build {op} yet"
                )));
            }
            Err(NotCompared::Failed(why)) => return Err(TestCaseError::fail(why)),
        };
        if kafka != ours {
            return Err(TestCaseError::fail(format!(
                "Kafka Streams wrote:\n{}our DSL wrote:\n{}",
                show(&kafka),
                show(&ours)
            )));
        }
        Ok(())
    });
    if let Some(op) = unsupported.get() {
        panic!("our DSL cannot build {op} yet: add it to oracle_dsl::build");
    }
    match result {
        Ok(()) => {}
        Err(TestError::Fail(reason, case)) => {
            let json = serde_json::to_string(&case).unwrap_or_else(|e| e.to_string());
            panic!("the comparison with Kafka Streams failed\nminimal case: {json}\n{reason}");
        }
        Err(TestError::Abort(reason)) => panic!("the comparison stopped: {reason}"),
    }
}

// ---- generators ----

/// Keys `a` to `d`.
fn key() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["a", "b", "c", "d"]).prop_map(str::to_owned)
}

/// Short values of length 0 to 4 (so that the even-length filter goes both ways), some with
/// a foreign key before a `:`.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-d]{0,4}",
        1 => prop::sample::select(vec!["x:1", "y:", "x:22", "z:3", ":4"]).prop_map(str::to_owned),
    ]
}

/// Timestamps in a small range, in any order.
fn timestamp() -> impl Strategy<Value = i64> {
    0..60i64
}

/// A table record: a key, and a null value (a delete) about 15% of the time.
fn table_record(topic: &'static str) -> impl Strategy<Value = Input> {
    (key(), prop::option::weighted(0.85, value()), timestamp()).prop_map(
        move |(key, value, timestamp)| Input {
            topic: topic.to_owned(),
            key: Some(key),
            value,
            timestamp,
        },
    )
}

/// A stream record: a null key about 10% of the time, a null value about 5%.
fn stream_record(topic: &'static str) -> impl Strategy<Value = Input> {
    stream_record_with(
        topic,
        prop::option::weighted(0.9, key()),
        prop::option::weighted(0.95, value()),
    )
}

/// A stream record of the given keys and values.
fn stream_record_with(
    topic: &'static str,
    keys: impl Strategy<Value = Option<String>>,
    values: impl Strategy<Value = Option<String>>,
) -> impl Strategy<Value = Input> {
    (keys, values, timestamp()).prop_map(move |(key, value, timestamp)| Input {
        topic: topic.to_owned(),
        key,
        value,
        timestamp,
    })
}

/// `inputs` less the deletes of rows that are not there (per topic), which a table then
/// never sees.
fn without_deletes_of_absent_rows(inputs: Vec<Input>) -> Vec<Input> {
    let mut present = std::collections::HashSet::new();
    inputs
        .into_iter()
        .filter(|input| {
            let row = (input.topic.clone(), input.key.clone());
            match input.value {
                Some(_) => {
                    present.insert(row);
                    true
                }
                None => present.remove(&row),
            }
        })
        .collect()
}

/// 1 to 30 records.
fn records(record: impl Strategy<Value = Input>) -> impl Strategy<Value = Vec<Input>> {
    prop::collection::vec(record, 1..30)
}

/// 1 to 30 records of `left` and `right`, mixed.
fn two_sides(
    left: impl Strategy<Value = Input>,
    right: impl Strategy<Value = Input>,
) -> impl Strategy<Value = Vec<Input>> {
    records(prop_oneof![left, right])
}

/// Cases of `op` on the table `left`.
fn table_cases(op: Op) -> impl Strategy<Value = Case> {
    records(table_record(LEFT)).prop_map(move |inputs| Case {
        topology: op.clone(),
        inputs,
    })
}

/// Cases of `op` on the table `left` that never delete a row it does not hold.
fn table_cases_deleting_present_rows(op: Op) -> impl Strategy<Value = Case> {
    records(table_record(LEFT))
        .prop_map(without_deletes_of_absent_rows)
        .prop_filter("at least one record", |inputs| !inputs.is_empty())
        .prop_map(move |inputs| Case {
            topology: op.clone(),
            inputs,
        })
}

/// Tumbling, hopping, sliding and session windows, small enough for the timestamps.
fn windows() -> impl Strategy<Value = Windows> {
    prop_oneof![time_windows(), sliding_windows(), session_windows()]
}

/// Tumbling and hopping windows of size 1 to 19 and grace 0 to 14.
fn time_windows() -> impl Strategy<Value = Windows> {
    (1..20i64, 0..15i64, any::<bool>())
        .prop_flat_map(|(size, grace, hopping)| {
            let advance = if hopping && size > 1 {
                1..size
            } else {
                size..size + 1
            };
            (Just(size), advance, Just(grace))
        })
        .prop_map(|(size, advance, grace)| Windows {
            kind: if advance == size {
                WindowType::Tumbling
            } else {
                WindowType::Hopping
            },
            size_ms: Some(size),
            advance_ms: Some(advance),
            grace_ms: grace,
            gap_ms: None,
        })
}

/// Sliding windows of difference 1 to 19 and grace 0 to 14.
fn sliding_windows() -> impl Strategy<Value = Windows> {
    (1..20i64, 0..15i64).prop_map(|(size, grace)| Windows {
        kind: WindowType::Sliding,
        size_ms: Some(size),
        advance_ms: None,
        grace_ms: grace,
        gap_ms: None,
    })
}

/// Session windows of gap 1 to 14 and grace 0 to 14.
fn session_windows() -> impl Strategy<Value = Windows> {
    (1..15i64, 0..15i64).prop_map(|(gap, grace)| Windows {
        kind: WindowType::Session,
        size_ms: None,
        advance_ms: None,
        grace_ms: grace,
        gap_ms: Some(gap),
    })
}

fn join_kind(outer: bool) -> impl Strategy<Value = JoinKind> {
    let mut kinds = vec![JoinKind::Inner, JoinKind::Left];
    if outer {
        kinds.push(JoinKind::Outer);
    }
    prop::sample::select(kinds)
}

// ---- the operations our DSL has ----

#[test]
fn table_filter_matches_kafka_streams() {
    differential(CASES, table_cases(Op::TableFilter));
}

/// `table_filter` without the deletes of absent rows: the filter's own difference.
#[test]
fn table_filter_deleting_present_rows_matches_kafka_streams() {
    differential(CASES, table_cases_deleting_present_rows(Op::TableFilter));
}

#[test]
fn table_filter_then_count_matches_kafka_streams() {
    differential(CASES, table_cases(Op::TableFilterThenCount));
}

#[test]
fn table_map_values_matches_kafka_streams() {
    differential(CASES, table_cases(Op::TableMapValues));
}

/// `table_map_values` with the difference above left out.
#[test]
fn table_map_values_deleting_present_rows_matches_kafka_streams() {
    differential(CASES, table_cases_deleting_present_rows(Op::TableMapValues));
}

#[test]
fn table_group_by_count_matches_kafka_streams() {
    differential(CASES, table_cases(Op::TableGroupByCount));
}

#[test]
fn table_group_by_aggregate_matches_kafka_streams() {
    differential(CASES, table_cases(Op::TableGroupByAggregate));
}

#[test]
fn stream_count_matches_kafka_streams() {
    differential(
        CASES,
        records(stream_record(LEFT)).prop_map(|inputs| Case {
            topology: Op::StreamCount,
            inputs,
        }),
    );
}

#[test]
fn windowed_count_matches_kafka_streams() {
    differential(
        2 * CASES,
        (windows(), records(stream_record(LEFT))).prop_map(|(windows, inputs)| Case {
            topology: Op::WindowedCount { windows },
            inputs,
        }),
    );
}

/// Windowed counts of records with a key and a value.
fn keyed_windowed_counts(windows: impl Strategy<Value = Windows>) -> impl Strategy<Value = Case> {
    let record = stream_record_with(LEFT, key().prop_map(Some), value().prop_map(Some));
    (windows, records(record)).prop_map(|(windows, inputs)| Case {
        topology: Op::WindowedCount { windows },
        inputs,
    })
}

#[test]
fn windowed_count_in_time_windows_matches_kafka_streams() {
    differential(CASES, keyed_windowed_counts(time_windows()));
}

#[test]
fn windowed_count_in_sliding_windows_matches_kafka_streams() {
    differential(CASES, keyed_windowed_counts(sliding_windows()));
}

#[test]
fn windowed_count_in_session_windows_matches_kafka_streams() {
    differential(CASES, keyed_windowed_counts(session_windows()));
}

// ---- operations being added to our DSL: the interpreter answers "unsupported" ----

#[test]
fn stream_stream_join_matches_kafka_streams() {
    let op = (
        join_kind(true),
        0..15i64,
        0..15i64,
        prop::option::of(0..10i64),
    )
        .prop_map(
            |(join, before_ms, after_ms, grace_ms)| Op::StreamStreamJoin {
                join,
                before_ms,
                after_ms,
                grace_ms,
            },
        );
    differential(
        CASES,
        (op, two_sides(stream_record(LEFT), stream_record(RIGHT)))
            .prop_map(|(topology, inputs)| Case { topology, inputs }),
    );
}

#[test]
fn stream_table_join_matches_kafka_streams() {
    differential(
        CASES,
        (
            join_kind(false),
            two_sides(stream_record(LEFT), table_record(RIGHT)),
        )
            .prop_map(|(join, inputs)| Case {
                topology: Op::StreamTableJoin { join },
                inputs,
            }),
    );
}

#[test]
fn table_table_join_matches_kafka_streams() {
    differential(
        CASES,
        (
            join_kind(true),
            two_sides(table_record(LEFT), table_record(RIGHT)),
        )
            .prop_map(|(join, inputs)| Case {
                topology: Op::TableTableJoin { join },
                inputs,
            }),
    );
}

#[test]
fn stream_global_join_matches_kafka_streams() {
    // The global table's keys are the foreign keys of the values (`x`, `y`, ...).
    let global = (
        prop::sample::select(vec!["x", "y", "z", "a"]),
        prop::option::weighted(0.85, value()),
        timestamp(),
    )
        .prop_map(|(key, value, timestamp)| Input {
            topic: RIGHT.to_owned(),
            key: Some(key.to_owned()),
            value,
            timestamp,
        });
    differential(
        CASES,
        (join_kind(false), two_sides(stream_record(LEFT), global)).prop_map(|(join, inputs)| {
            Case {
                topology: Op::StreamGlobalJoin { join },
                inputs,
            }
        }),
    );
}

#[test]
fn fk_join_matches_kafka_streams() {
    // Right values are never empty: Kafka's subscription response cannot
    // tell a value serialized to no bytes from no value (docs/joins.md).
    let right = (
        prop::sample::select(vec!["x", "y", "z", "a"]),
        prop::option::weighted(0.85, value().prop_filter("non-empty", |v| !v.is_empty())),
        timestamp(),
    )
        .prop_map(|(key, value, timestamp)| Input {
            topic: RIGHT.to_owned(),
            key: Some(key.to_owned()),
            value,
            timestamp,
        });
    differential(
        CASES,
        (join_kind(false), two_sides(table_record(LEFT), right)).prop_map(|(join, inputs)| Case {
            topology: Op::FkJoin { join },
            inputs,
        }),
    );
}

/// Cogroups of `left` and `right`: unwindowed on any stream records, windowed on records
/// whose values are never null (the difference below left out).
#[test]
fn cogroup_matches_kafka_streams() {
    let unwindowed = two_sides(stream_record(LEFT), stream_record(RIGHT)).prop_map(|inputs| Case {
        topology: Op::Cogroup { windows: None },
        inputs,
    });
    let valued = |topic| {
        stream_record_with(
            topic,
            prop::option::weighted(0.9, key()),
            value().prop_map(Some),
        )
    };
    let windowed =
        (windows(), two_sides(valued(LEFT), valued(RIGHT))).prop_map(|(windows, inputs)| Case {
            topology: Op::Cogroup {
                windows: Some(windows),
            },
            inputs,
        });
    differential(2 * CASES, prop_oneof![unwindowed, windowed]);
}

#[test]
#[ignore = "differs from Kafka Streams: in time and session windows Kafka hands a record with a null value to the cogroup's aggregators; ours never see a null value and skip the record (docs/windowing.md)"]
fn cogroup_with_null_values_in_windows_matches_kafka_streams() {
    differential(
        CASES,
        (
            windows(),
            two_sides(stream_record(LEFT), stream_record(RIGHT)),
        )
            .prop_map(|(windows, inputs)| Case {
                topology: Op::Cogroup {
                    windows: Some(windows),
                },
                inputs,
            }),
    );
}

// ---- versioned tables ----

/// A history retention: none, shorter than the timestamps' spread, or longer.
fn history_ms() -> impl Strategy<Value = i64> {
    prop::sample::select(vec![0i64, 3, 10, 25, 100])
}

/// Cases of a versioned table operation on `left`.
fn versioned_table_cases(op: fn(i64) -> Op) -> impl Strategy<Value = Case> {
    (history_ms(), records(table_record(LEFT))).prop_map(move |(history, inputs)| Case {
        topology: op(history),
        inputs,
    })
}

#[test]
fn versioned_table_to_stream_matches_kafka_streams() {
    differential(
        CASES,
        versioned_table_cases(|history_ms| Op::VersionedTableToStream { history_ms }),
    );
}

#[test]
fn versioned_table_filter_matches_kafka_streams() {
    differential(
        CASES,
        versioned_table_cases(|history_ms| Op::VersionedTableFilter { history_ms }),
    );
}

#[test]
fn versioned_table_filter_then_count_matches_kafka_streams() {
    differential(
        CASES,
        versioned_table_cases(|history_ms| Op::VersionedTableFilterThenCount { history_ms }),
    );
}

#[test]
fn versioned_table_group_by_count_matches_kafka_streams() {
    differential(
        CASES,
        versioned_table_cases(|history_ms| Op::VersionedTableGroupByCount { history_ms }),
    );
}

#[test]
fn versioned_table_table_join_matches_kafka_streams() {
    let versioned = prop::sample::select(vec!["left", "right", "both"]).prop_map(str::to_owned);
    differential(
        CASES,
        (
            join_kind(true),
            history_ms(),
            versioned,
            two_sides(table_record(LEFT), table_record(RIGHT)),
        )
            .prop_map(|(join, history_ms, versioned, inputs)| Case {
                topology: Op::VersionedTableTableJoin {
                    join,
                    history_ms,
                    versioned,
                },
                inputs,
            }),
    );
}

/// A history retention and a grace period no longer than it (or none).
fn history_and_grace() -> impl Strategy<Value = (i64, Option<i64>)> {
    history_ms().prop_flat_map(|history| {
        (
            Just(history),
            prop::option::weighted(0.75, 0..=history.min(30)),
        )
    })
}

#[test]
fn versioned_stream_table_join_matches_kafka_streams() {
    // Kafka's buffer fails on a null key (a left join keeps such records):
    // the streams of cases with a grace period have none.
    let keys = || prop::option::weighted(0.9, key());
    differential(
        CASES,
        (join_kind(false), history_and_grace())
            .prop_flat_map(move |(join, (history_ms, grace_ms))| {
                let keys = if grace_ms.is_some() {
                    key().prop_map(Some).boxed()
                } else {
                    keys().boxed()
                };
                let stream = stream_record_with(LEFT, keys, prop::option::weighted(0.95, value()));
                (
                    Just(Op::VersionedStreamTableJoin {
                        join,
                        history_ms,
                        grace_ms,
                    }),
                    two_sides(stream, table_record(RIGHT)),
                )
            })
            .prop_map(|(topology, inputs)| Case { topology, inputs }),
    );
}

// ---- the oracle itself ----

fn input(topic: &str, key: &str, value: Option<&str>, timestamp: i64) -> Input {
    Input {
        topic: topic.to_owned(),
        key: Some(key.to_owned()),
        value: value.map(str::to_owned),
        timestamp,
    }
}

fn output(key: &str, value: Option<&str>, timestamp: i64) -> Output {
    Output {
        key: Some(key.to_owned()),
        value: value.map(str::to_owned),
        timestamp,
    }
}

/// The Java side on cases whose Kafka Streams outputs are known, one per kind of output
/// (a tombstone forwarded by a filter, a decimal count, a windowed key with a session merge,
/// a null-padded join, an error for an unknown operation): a check of the harness itself.
#[test]
fn the_oracle_answers_as_kafka_streams_does() {
    let Some(oracle) = oracle() else {
        return;
    };
    let run = |topology: Op, inputs: Vec<Input>| {
        oracle::run_shared(oracle, &Case { topology, inputs }).expect("the oracle answers")
    };
    // A rejected row is forwarded as a tombstone when nothing downstream needs old values.
    assert_eq!(
        run(
            Op::TableFilter,
            vec![
                input(LEFT, "a", Some("xx"), 5),
                input(LEFT, "a", Some("x"), 3),
                input(LEFT, "b", None, 1),
            ]
        ),
        [
            output("a", Some("xx"), 5),
            output("a", None, 3),
            output("b", None, 1)
        ]
    );
    // An update that stays in its group: one result, no transient row.
    assert_eq!(
        run(
            Op::TableGroupByCount,
            vec![
                input(LEFT, "a", Some("x"), 5),
                input(LEFT, "a", Some("x"), 7)
            ]
        ),
        [output("x", Some("1"), 5), output("x", Some("1"), 7)]
    );
    // Two sessions merged by a record between them: two tombstones, then the merged session.
    let session = Windows {
        kind: WindowType::Session,
        size_ms: None,
        advance_ms: None,
        grace_ms: 10,
        gap_ms: Some(5),
    };
    assert_eq!(
        run(
            Op::WindowedCount { windows: session },
            vec![
                input(LEFT, "a", Some("v"), 5),
                input(LEFT, "a", Some("v"), 12),
                input(LEFT, "a", Some("v"), 8),
            ]
        ),
        [
            output("a@5/5", Some("1"), 5),
            output("a@12/12", Some("1"), 12),
            output("a@5/5", None, 5),
            output("a@12/12", None, 12),
            output("a@5/12", Some("3"), 12),
        ]
    );
    // An outer table-table join: a deleted left row with a right row is `null+right`.
    assert_eq!(
        run(
            Op::TableTableJoin {
                join: JoinKind::Outer
            },
            vec![
                input(LEFT, "a", Some("1"), 5),
                input(RIGHT, "a", Some("2"), 12),
                input(LEFT, "a", None, 8),
            ]
        ),
        [
            output("a", Some("1+null"), 5),
            output("a", Some("1+2"), 12),
            output("a", Some("null+2"), 12)
        ]
    );
    let unknown = serde_json::json!({"topology": {"op": "no_such_op"}, "inputs": []});
    let error = oracle
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .run_json(&unknown.to_string())
        .expect_err("an unknown operation is an error");
    assert!(
        format!("{error:#}").contains("unknown op"),
        "unexpected error: {error:#}"
    );
    // The process goes on after an error.
    assert_eq!(
        run(Op::StreamCount, vec![input(LEFT, "a", Some("v"), 1)]),
        [output("a", Some("1"), 1)]
    );
}

/// Every operation of the case format builds and runs on the Java side, so that the
/// generators of the operations our DSL has not got yet are ready.
#[test]
fn the_oracle_runs_every_operation() {
    let Some(oracle) = oracle() else {
        return;
    };
    let time = Windows {
        kind: WindowType::Hopping,
        size_ms: Some(10),
        advance_ms: Some(5),
        grace_ms: 5,
        gap_ms: None,
    };
    let ops = [
        Op::StreamStreamJoin {
            join: JoinKind::Outer,
            before_ms: 5,
            after_ms: 3,
            grace_ms: Some(2),
        },
        Op::StreamStreamJoin {
            join: JoinKind::Left,
            before_ms: 0,
            after_ms: 7,
            grace_ms: None,
        },
        Op::StreamTableJoin {
            join: JoinKind::Left,
        },
        Op::TableTableJoin {
            join: JoinKind::Inner,
        },
        Op::StreamGlobalJoin {
            join: JoinKind::Inner,
        },
        Op::FkJoin {
            join: JoinKind::Left,
        },
        Op::Cogroup { windows: None },
        Op::Cogroup {
            windows: Some(time),
        },
        Op::VersionedTableTableJoin {
            join: JoinKind::Outer,
            history_ms: 10,
            versioned: "both".to_owned(),
        },
        Op::VersionedStreamTableJoin {
            join: JoinKind::Left,
            history_ms: 50,
            grace_ms: Some(5),
        },
    ];
    let inputs = vec![
        input(RIGHT, "x", Some("X"), 1),
        input(LEFT, "a", Some("x:1"), 2),
        input(RIGHT, "a", Some("R"), 3),
        input(LEFT, "a", Some("y:"), 40),
    ];
    for op in ops {
        let case = Case {
            topology: op.clone(),
            inputs: inputs.clone(),
        };
        let outputs =
            oracle::run_shared(oracle, &case).unwrap_or_else(|e| panic!("{}: {e:#}", op.name()));
        assert!(!outputs.is_empty(), "{}: no output", op.name());
    }
}
