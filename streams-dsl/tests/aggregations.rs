//! KGroupedStream: count, reduce, aggregate, null rules, repartitioning
//! and store options.

// The tests return streams-core's error, whose size is that crate's choice.
#![allow(clippy::result_large_err)]

use bytes::Bytes;
use streams_core::{
    processor_fn, ProcessorContext, Record, Result, Serde, SerdeError, Serdes, StoreBackend,
    TestRecord, TopologyTestDriver,
};
use streams_dsl::{Consumed, Grouped, Materialized, Produced, StreamsBuilder, ValueAndTimestamp};

fn strings() -> Consumed<String, String> {
    Consumed::with(Serdes::string(), Serdes::string())
}

fn s(v: &str) -> String {
    v.to_owned()
}

fn rec(k: Option<&str>, v: Option<&str>, ts: i64) -> TestRecord<String, String> {
    TestRecord::from_parts(k.map(s), v.map(s), ts)
}

#[test]
fn group_by_key_without_key_change_does_not_repartition() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("in", strings())
        .map_values(|v| v.clone())
        .group_by_key(Grouped::with(Serdes::string(), Serdes::string()))
        .count(Materialized::as_("counts"))
        .to_stream()
        .to("out", Produced::with(Serdes::string(), Serdes::i64()));
    let topology = builder.build()?;
    let text = topology.describe().to_string();
    assert!(!text.contains("Sub-topology: 1"), "{text}");
    assert!(!text.contains("repartition"), "{text}");
    let driver = TopologyTestDriver::new(topology)?;
    let input = driver.create_input_topic("in", Serdes::string(), Serdes::string());
    input.pipe_input(s("a"), s("x"))?;
    input.pipe_input(s("a"), s("y"))?;
    input.pipe_input(s("b"), s("z"))?;
    let output = driver.create_output_topic("out", Serdes::string(), Serdes::i64());
    assert_eq!(
        output.read_key_values_to_list()?,
        [
            (Some(s("a")), Some(1)),
            (Some(s("a")), Some(2)),
            (Some(s("b")), Some(1))
        ]
    );
    Ok(())
}

#[test]
fn group_by_key_after_select_key_repartitions_with_generated_names() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("in", strings())
        .select_key(|_, v| v.clone())
        .group_by_key(Grouped::with(Serdes::string(), Serdes::string()))
        .count(Materialized::new())
        .to_stream()
        .to("out", Produced::with(Serdes::string(), Serdes::i64()));
    let topology = builder.build()?;
    let text = topology.describe().to_string();
    // source 0, key-select 1, store 2, aggregate 3, sink 4, filter 5,
    // source 6: a generated prefix keeps generated node names.
    for line in [
        "Sink: KSTREAM-SINK-0000000004 (topic: KSTREAM-AGGREGATE-STATE-STORE-0000000002-repartition)",
        "Processor: KSTREAM-FILTER-0000000005 (stores: [])",
        "Source: KSTREAM-SOURCE-0000000006 (topics: [KSTREAM-AGGREGATE-STATE-STORE-0000000002-repartition])",
        "Processor: KSTREAM-AGGREGATE-0000000003 (stores: [KSTREAM-AGGREGATE-STATE-STORE-0000000002])",
        "Sub-topology: 1",
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }
    let driver = TopologyTestDriver::new(topology)?;
    let input = driver.create_input_topic("in", Serdes::string(), Serdes::string());
    input.pipe_input(s("k1"), s("v"))?;
    input.pipe_input(s("k2"), s("v"))?;
    let output = driver.create_output_topic("out", Serdes::string(), Serdes::i64());
    assert_eq!(
        output.read_key_values_to_list()?,
        [(Some(s("v")), Some(1)), (Some(s("v")), Some(2))]
    );
    Ok(())
}

#[test]
fn grouped_name_names_the_repartition_topic() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("in", strings())
        .group_by(
            |_, v| v.clone(),
            Grouped::with(Serdes::string(), Serdes::string()).with_name("by-value"),
        )
        .count(Materialized::as_("counts"));
    let text = builder.build()?.describe().to_string();
    for line in [
        "Processor: by-value (stores: [])",
        "Sink: by-value-repartition-sink (topic: by-value-repartition)",
        "Source: by-value-repartition-source (topics: [by-value-repartition])",
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }
    Ok(())
}

#[test]
fn grouping_drops_null_keys_and_aggregations_ignore_null_values() -> Result<()> {
    let builder = StreamsBuilder::new();
    let metrics = builder.metrics();
    let grouped = builder
        .stream::<String, String>("in", strings())
        .group_by_key(Grouped::with(Serdes::string(), Serdes::string()));
    grouped
        .count(Materialized::as_("count"))
        .to_stream()
        .to("count-out", Produced::with(Serdes::string(), Serdes::i64()));
    grouped
        .reduce(|a, v| format!("{a}+{v}"), Materialized::as_("reduce"))
        .to_stream()
        .to(
            "reduce-out",
            Produced::with(Serdes::string(), Serdes::string()),
        );
    grouped
        .aggregate(
            || 0i64,
            |_, v, agg| agg + v.len() as i64,
            Materialized::as_("aggregate").with_value_serde(Serdes::i64()),
        )
        .to_stream()
        .to(
            "aggregate-out",
            Produced::with(Serdes::string(), Serdes::i64()),
        );
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let input = driver.create_input_topic("in", Serdes::string(), Serdes::string());
    input.pipe_record(rec(Some("k"), Some("ab"), 1))?;
    input.pipe_record(rec(None, Some("lost"), 2))?;
    input.pipe_record(rec(Some("k"), None, 3))?;
    input.pipe_record(rec(Some("k"), Some("c"), 4))?;
    let count = driver.create_output_topic("count-out", Serdes::string(), Serdes::i64());
    assert_eq!(count.read_values_to_list()?, [Some(1), Some(2)]);
    let reduce = driver.create_output_topic("reduce-out", Serdes::string(), Serdes::string());
    assert_eq!(
        reduce.read_values_to_list()?,
        [Some(s("ab")), Some(s("ab+c"))]
    );
    let aggregate = driver.create_output_topic("aggregate-out", Serdes::string(), Serdes::i64());
    let records = aggregate.read_records_to_list()?;
    assert_eq!(
        records
            .iter()
            .map(|r| (r.value, r.timestamp))
            .collect::<Vec<_>>(),
        [(Some(2), 1), (Some(3), 4)]
    );
    // Two records skipped by each of the three aggregations.
    assert_eq!(metrics.dropped_records(), 6);
    Ok(())
}

#[test]
fn group_by_drops_null_values_before_the_repartition() -> Result<()> {
    let builder = StreamsBuilder::new();
    let metrics = builder.metrics();
    builder
        .stream::<String, String>("in", strings())
        .group_by(
            |_, v| v.clone(),
            Grouped::with(Serdes::string(), Serdes::string()),
        )
        .count(Materialized::as_("counts"));
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let input = driver.create_input_topic("in", Serdes::string(), Serdes::string());
    input.pipe_record(rec(Some("k"), None, 0))?;
    input.pipe_record(rec(None, Some("v"), 0))?;
    assert_eq!(metrics.dropped_records(), 1);
    let repartition =
        driver.create_output_topic("counts-repartition", Serdes::string(), Serdes::string());
    assert_eq!(
        repartition.read_key_values_to_list()?,
        [(Some(s("v")), Some(s("v")))]
    );
    let store = driver.get_key_value_store::<String, ValueAndTimestamp<i64>>("counts")?;
    assert_eq!(store.all()?, [(s("v"), ValueAndTimestamp::make(1, 0))]);
    Ok(())
}

/// Writes values as `Serdes::bytes` does, and cannot read them back.
struct WriteOnly;

impl Serde<Bytes> for WriteOnly {
    fn serialize(&self, _topic: &str, value: &Bytes) -> std::result::Result<Bytes, SerdeError> {
        Ok(value.clone())
    }

    fn deserialize(&self, topic: &str, _bytes: &Bytes) -> std::result::Result<Bytes, SerdeError> {
        Err(SerdeError::deserialize::<Bytes>(topic, "write-only serde"))
    }
}

#[test]
fn a_count_through_a_repartition_reads_only_whether_values_are_null() -> Result<()> {
    // The grouped serde cannot read values back: the count never asks it
    // to. Null values are skipped, and stay in the topic as written.
    let builder = StreamsBuilder::new();
    let metrics = builder.metrics();
    builder
        .stream::<String, Bytes>("in", Consumed::with(Serdes::string(), Serdes::bytes()))
        .process(
            || {
                processor_fn(
                    |ctx: &mut ProcessorContext<'_, String, Bytes>, r: Record<String, Bytes>| {
                        let key = r.key.clone().map(|k| format!("{k}!"));
                        let nulled = r.value.as_deref() == Some(&b"null"[..]);
                        ctx.forward(Record {
                            key,
                            value: if nulled { None } else { r.value },
                            ..r
                        })
                    },
                )
            },
            &[],
        )
        .group_by_key(Grouped::with(Serdes::string(), WriteOnly))
        .count(Materialized::as_("counts"))
        .to_stream()
        .to("out", Produced::with(Serdes::string(), Serdes::i64()));
    let topology = builder.build()?;
    assert!(
        topology
            .describe()
            .to_string()
            .contains("counts-repartition"),
        "{}",
        topology.describe()
    );
    let driver = TopologyTestDriver::new(topology)?;
    let input = driver.create_input_topic("in", Serdes::string(), Serdes::bytes());
    for value in ["a", "null", "b"] {
        input.pipe_input(s("k"), Bytes::from(value))?;
    }
    let repartition =
        driver.create_output_topic("counts-repartition", Serdes::string(), Serdes::bytes());
    assert_eq!(
        repartition.read_key_values_to_list()?,
        [
            (Some(s("k!")), Some(Bytes::from("a"))),
            (Some(s("k!")), None),
            (Some(s("k!")), Some(Bytes::from("b"))),
        ]
    );
    let out = driver.create_output_topic("out", Serdes::string(), Serdes::i64());
    assert_eq!(
        out.read_key_values_to_list()?,
        [(Some(s("k!")), Some(1)), (Some(s("k!")), Some(2))]
    );
    assert_eq!(metrics.dropped_records(), 1);
    Ok(())
}

#[test]
fn a_count_through_a_repartition_is_exact_with_or_without_a_cache_and_a_store_key_serde() {
    // Three stores over one repartitioned stream: uncached (each update
    // goes downstream at once, its key read from the topic's bytes), cached
    // (updates leave with the cache's flushes), and with a key serde of the
    // store's own (the count then reads keys as values of the key type).
    let builder = StreamsBuilder::new();
    let grouped = builder.stream::<String, String>("in", strings()).group_by(
        |_, v| v.to_uppercase(),
        Grouped::with(Serdes::string(), Serdes::string()),
    );
    for (store, out) in [
        (
            Materialized::as_("uncached").with_caching_disabled(),
            "uncached-out",
        ),
        (Materialized::as_("cached"), "cached-out"),
        (
            Materialized::as_("own-serde").with_key_serde(Serdes::string()),
            "own-serde-out",
        ),
    ] {
        grouped
            .count(store)
            .to_stream()
            .to(out, Produced::with(Serdes::string(), Serdes::i64()));
    }
    let driver = TopologyTestDriver::new(builder.build().unwrap()).unwrap();
    let input = driver.create_input_topic("in", Serdes::string(), Serdes::string());
    for (k, v) in [("1", "a"), ("2", "b"), ("3", "a"), ("4", "é")] {
        input.pipe_input(s(k), s(v)).unwrap();
    }
    let expected = [
        (Some(s("A")), Some(1)),
        (Some(s("B")), Some(1)),
        (Some(s("A")), Some(2)),
        (Some(s("É")), Some(1)),
    ];
    for out in ["uncached-out", "cached-out", "own-serde-out"] {
        let output = driver.create_output_topic(out, Serdes::string(), Serdes::i64());
        assert_eq!(output.read_key_values_to_list().unwrap(), expected, "{out}");
    }
    for store in ["uncached", "cached", "own-serde"] {
        let counts = driver
            .get_key_value_store::<String, ValueAndTimestamp<i64>>(store)
            .unwrap();
        assert_eq!(
            counts.get(&s("A")).unwrap().map(|v| v.value),
            Some(2),
            "{store}"
        );
    }
}

#[test]
fn store_options_reach_the_store() -> Result<()> {
    let builder = StreamsBuilder::new();
    let grouped = builder
        .stream::<String, String>("in", strings())
        .group_by_key(Grouped::with(Serdes::string(), Serdes::string()));
    grouped.count(
        Materialized::as_("logged")
            .with_backend(StoreBackend::InMemory)
            .with_caching_disabled(),
    );
    grouped.count(Materialized::as_("unlogged").with_logging_disabled());
    let topology = builder.build()?;
    let stores: Vec<_> = topology
        .state_stores()
        .map(|s| {
            (
                s.name().to_owned(),
                s.caching_enabled(),
                s.logging_enabled(),
                s.backend(),
            )
        })
        .collect();
    assert_eq!(
        stores[0],
        (s("logged"), false, true, StoreBackend::InMemory)
    );
    assert_eq!((stores[1].1, stores[1].2), (true, false));
    let driver = TopologyTestDriver::new(topology)?;
    let input = driver.create_input_topic("in", Serdes::string(), Serdes::string());
    input.pipe_input(s("k"), s("v"))?;
    let produced = driver.produced_topic_names();
    assert!(
        produced.contains(&s("test-driver-logged-changelog")),
        "{produced:?}"
    );
    assert!(
        !produced.contains(&s("test-driver-unlogged-changelog")),
        "{produced:?}"
    );
    Ok(())
}

#[test]
fn caching_deduplicates_between_commits() -> Result<()> {
    use std::time::Duration;
    use streams_core::TestDriverConfig;

    let build = |materialized: Materialized<String, i64>| -> Result<TopologyTestDriver> {
        let builder = StreamsBuilder::new();
        builder
            .stream::<String, String>("in", strings())
            .group_by_key(Grouped::with(Serdes::string(), Serdes::string()))
            .count(materialized)
            .to_stream()
            .to("out", Produced::with(Serdes::string(), Serdes::i64()));
        TopologyTestDriver::with_config(
            builder.build()?,
            TestDriverConfig::new().with_production_caching(),
        )
    };
    for (materialized, expected) in [
        (Materialized::as_("c"), vec![Some(3)]),
        (
            Materialized::as_("c").with_caching_disabled(),
            vec![Some(1), Some(2), Some(3)],
        ),
    ] {
        let driver = build(materialized)?;
        let input = driver.create_input_topic("in", Serdes::string(), Serdes::string());
        for _ in 0..3 {
            input.pipe_input(s("k"), s("v"))?;
        }
        driver.advance_wall_clock_time(Duration::from_secs(60))?;
        let output = driver.create_output_topic("out", Serdes::string(), Serdes::i64());
        assert_eq!(output.read_values_to_list()?, expected);
    }
    Ok(())
}

/// `in` regrouped by value (through a repartition topic), counted with
/// `materialized`, the counts to `out`.
fn repartitioned_count(
    materialized: Materialized<String, i64>,
    config: streams_core::TestDriverConfig,
) -> Result<TopologyTestDriver> {
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("in", strings())
        .group_by(
            |_, word| word.clone(),
            Grouped::with(Serdes::string(), Serdes::string()),
        )
        .count(materialized)
        .to_stream()
        .to("out", Produced::with(Serdes::string(), Serdes::i64()));
    TopologyTestDriver::with_config(builder.build()?, config)
}

/// A count after a repartition, with a record cache, rewrites a count
/// cached since the last commit in place; with a value serde given in
/// `Materialized` it decodes and encodes each time. Both emit the same
/// records (counts and timestamps, the latest of each key's records) at
/// each commit, and the store ends the same.
#[test]
fn a_cached_count_rewritten_in_place_emits_what_a_decoded_one_does() -> Result<()> {
    use std::time::Duration;
    use streams_core::{TestDriverConfig, TestRecord};

    let run = |materialized: Materialized<String, i64>| -> Result<_> {
        let driver = repartitioned_count(
            materialized,
            TestDriverConfig::new().with_production_caching(),
        )?;
        let input = driver.create_input_topic("in", Serdes::string(), Serdes::string());
        let output = driver.create_output_topic("out", Serdes::string(), Serdes::i64());
        let mut emitted = Vec::new();
        // Three commits; timestamps go back and forth within each.
        for round in 0..3i64 {
            for (i, word) in ["a", "b", "a", "c", "a", "b"].iter().enumerate() {
                let timestamp = 1_000 * round + [40, 10, 30, 20, 5, 50][i];
                input.pipe_input_with_timestamp(s("line"), s(word), timestamp)?;
            }
            driver.advance_wall_clock_time(Duration::from_secs(60))?;
            let mut records: Vec<TestRecord<String, i64>> = output.read_records_to_list()?;
            records.sort_by(|x, y| x.key.cmp(&y.key));
            emitted.push(
                records
                    .into_iter()
                    .map(|r| (r.key, r.value, r.timestamp))
                    .collect::<Vec<_>>(),
            );
        }
        let store = driver.get_key_value_store::<String, ValueAndTimestamp<i64>>("counts")?;
        let counts: Vec<_> = ["a", "b", "c"]
            .iter()
            .map(|w| store.get(&s(w)))
            .collect::<Result<_>>()?;
        Ok((emitted, counts))
    };
    let (in_place, in_place_store) = run(Materialized::as_("counts"))?;
    let (decoded, decoded_store) =
        run(Materialized::as_("counts").with_value_serde(Serdes::i64()))?;
    assert_eq!(in_place, decoded);
    assert_eq!(in_place_store, decoded_store);
    assert_eq!(
        in_place[2],
        vec![
            (Some(s("a")), Some(9), 2_040),
            (Some(s("b")), Some(6), 2_050),
            (Some(s("c")), Some(3), 2_020),
        ]
    );
    assert_eq!(
        in_place_store,
        vec![
            Some(ValueAndTimestamp::make(9, 2_040)),
            Some(ValueAndTimestamp::make(6, 2_050)),
            Some(ValueAndTimestamp::make(3, 2_020)),
        ]
    );
    Ok(())
}

/// A count after a repartition runs inside its source's call; a cache
/// small enough to evict while records are processed still hands every
/// eviction and every commit's flush to it, so that each key's updates
/// come out in order and its last one is the full count, as without a
/// cache.
#[test]
fn a_count_run_inside_its_source_gets_its_evictions_and_flushes() -> Result<()> {
    use std::collections::HashMap;
    use std::time::Duration;
    use streams_core::{StreamsConfig, TestDriverConfig};

    let run = |cache_bytes: u64, materialized: Materialized<String, i64>| -> Result<_> {
        let driver = repartitioned_count(
            materialized,
            TestDriverConfig::new()
                .with_streams_config(
                    StreamsConfig::new("evicting")
                        .with_commit_interval_ms(1000)
                        .with_cache_max_bytes_buffering(cache_bytes),
                )
                .with_production_caching(),
        )?;
        let input = driver.create_input_topic("in", Serdes::string(), Serdes::string());
        let output = driver.create_output_topic("out", Serdes::string(), Serdes::i64());
        let mut emitted: Vec<(String, i64)> = Vec::new();
        for round in 0..4u64 {
            for i in 0..60u64 {
                // Three hot words, and cold ones that push each other
                // out of the cache.
                let word = if i % 4 == 3 {
                    format!("cold{}", (i * 7 + round) % 5)
                } else {
                    format!("hot{}", i % 3)
                };
                input.pipe_input_with_timestamp(s("line"), word, (round * 100 + i) as i64)?;
            }
            driver.advance_wall_clock_time(Duration::from_secs(2))?;
            for (k, v) in output.read_key_values_to_list()? {
                if let (Some(k), Some(v)) = (k, v) {
                    emitted.push((k, v));
                }
            }
        }
        Ok(emitted)
    };
    let last = |emitted: &[(String, i64)]| {
        let mut last = HashMap::new();
        for (k, v) in emitted {
            let previous = last.insert(k.clone(), *v);
            assert!(
                previous.is_none_or(|p| p < *v),
                "{k}: {previous:?} then {v}"
            );
        }
        last
    };
    // Room for about three of the eight words (an entry counts its key,
    // its value and 200 bytes of overhead): words are evicted while the
    // records are processed, and come back.
    let evicting = run(700, Materialized::as_("counts"))?;
    let uncached = run(0, Materialized::as_("counts").with_caching_disabled())?;
    let cached = run(10 * 1024 * 1024, Materialized::as_("counts"))?;
    assert_eq!(uncached.len(), 240, "every update without a cache");
    assert!(
        evicting.len() > cached.len() && evicting.len() < uncached.len(),
        "{} evicted or flushed, {} flushed, {} uncached",
        evicting.len(),
        cached.len(),
        uncached.len()
    );
    assert_eq!(last(&evicting), last(&uncached));
    assert_eq!(last(&cached), last(&uncached));
    Ok(())
}

#[test]
fn aggregate_without_a_value_serde_is_an_error() {
    // A type with no built-in serde: one must be given.
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("in", strings())
        .group_by_key(Grouped::with(Serdes::string(), Serdes::string()))
        .aggregate(Vec::<i32>::new, |_, _, agg| agg, Materialized::as_("agg"));
    let error = builder.build().err().map(|e| e.to_string());
    assert!(error.is_some_and(|e| e.contains("store 'agg'")));
}

#[test]
fn aggregations_can_be_named() -> Result<()> {
    use streams_dsl::Named;
    let builder = StreamsBuilder::new();
    let grouped = builder
        .stream::<String, String>("in", strings())
        .group_by_key(Grouped::with(Serdes::string(), Serdes::string()));
    grouped
        .count_named(Named::as_("count-words"), Materialized::as_("counts"))
        .to_stream()
        .to(
            "counts-out",
            Produced::with(Serdes::string(), Serdes::i64()),
        );
    grouped
        .reduce_named(
            |a, b| format!("{a}{b}"),
            Named::as_("concat-words"),
            Materialized::as_("concat"),
        )
        .to_stream()
        .to(
            "concat-out",
            Produced::with(Serdes::string(), Serdes::string()),
        );
    grouped
        .aggregate_named(
            || 0_i64,
            |_, v, n| n + v.len() as i64,
            Named::as_("sum-lengths"),
            Materialized::as_("lengths").with_value_serde(Serdes::i64()),
        )
        .to_stream()
        .to(
            "lengths-out",
            Produced::with(Serdes::string(), Serdes::i64()),
        );
    builder
        .table::<String, String>("users", strings(), Materialized::as_("users-table"))
        .group_by(
            |_, v| (v.clone(), v.clone()),
            Grouped::with(Serdes::string(), Serdes::string()),
        )
        .count_named(Named::as_("count-regions"), Materialized::as_("regions"))
        .to_stream()
        .to(
            "regions-out",
            Produced::with(Serdes::string(), Serdes::i64()),
        );
    let topology = builder.build()?;
    let text = topology.describe().to_string();
    for name in [
        "count-words",
        "concat-words",
        "sum-lengths",
        "count-regions",
    ] {
        assert!(
            text.contains(&format!("Processor: {name} ")),
            "{name} in:\n{text}"
        );
    }
    assert!(!text.contains("KSTREAM-AGGREGATE"), "{text}");
    assert!(!text.contains("KSTREAM-REDUCE"), "{text}");
    assert!(!text.contains("KTABLE-AGGREGATE"), "{text}");

    let driver = TopologyTestDriver::new(topology)?;
    let input = driver.create_input_topic("in", Serdes::string(), Serdes::string());
    input.pipe_input(s("k"), s("ab"))?;
    input.pipe_input(s("k"), s("c"))?;
    let counts = driver.create_output_topic("counts-out", Serdes::string(), Serdes::i64());
    assert_eq!(counts.read_values_to_list()?, vec![Some(1), Some(2)]);
    let concat = driver.create_output_topic("concat-out", Serdes::string(), Serdes::string());
    assert_eq!(
        concat.read_values_to_list()?,
        vec![Some(s("ab")), Some(s("abc"))]
    );
    let lengths = driver.create_output_topic("lengths-out", Serdes::string(), Serdes::i64());
    assert_eq!(lengths.read_values_to_list()?, vec![Some(2), Some(3)]);
    Ok(())
}

/// Where types have a built-in serde, giving serdes is optional, as Kafka's
/// default serdes make them: a word count with no serde but the source's.
#[test]
fn built_in_types_need_no_serdes() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("in", strings())
        .flat_map_values(|line| line.split(' ').map(str::to_owned).collect::<Vec<_>>())
        .group_by(|_, word| word.clone(), Grouped::new())
        .count(Materialized::new())
        .to_stream()
        .to("out", Produced::new());
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let input = driver.create_input_topic("in", Serdes::string(), Serdes::string());
    input.pipe_value("a b a".to_owned())?;
    let out = driver.create_output_topic("out", Serdes::string(), Serdes::i64());
    assert_eq!(out.read_key_values_to_map()?.get("a"), Some(&Some(2)));
    Ok(())
}
