//! Generated and user-given names.

// The tests return streams-core's error, whose size is that crate's choice.
#![allow(clippy::result_large_err)]

use streams_core::{Result, Serdes, Topology};
use streams_dsl::{
    Branched, Consumed, Grouped, Materialized, Named, Produced, Repartitioned, StreamsBuilder,
};

/// A topology touching most operations.
fn build() -> Result<Topology> {
    let builder = StreamsBuilder::new();
    let stream =
        builder.stream::<String, String>("in", Consumed::with(Serdes::string(), Serdes::string()));
    let branches = stream
        .filter(|_, v| !v.is_empty())
        .map_values(|v| v.to_lowercase())
        .split()
        .branch(|_, v| v.starts_with('a'), Branched::new())
        .default_branch();
    let mut names: Vec<_> = branches.keys().cloned().collect();
    names.sort();
    let merged = branches[&names[0]].merge(&branches[&names[1]]);
    merged
        .select_key(|_, v| v.clone())
        .repartition(Repartitioned::with(Serdes::string(), Serdes::string()))
        .group_by_key(Grouped::default())
        .count(Materialized::new())
        .to_stream()
        .to("counts", Produced::with(Serdes::string(), Serdes::i64()));
    builder
        .table(
            "table",
            Consumed::with(Serdes::string(), Serdes::string()),
            Materialized::new(),
        )
        .group_by(
            |k, v| (v.clone(), k.clone()),
            Grouped::with(Serdes::string(), Serdes::string()),
        )
        .count(Materialized::new())
        .to_stream()
        .to(
            "table-counts",
            Produced::with(Serdes::string(), Serdes::i64()),
        );
    builder.build()
}

#[test]
fn generated_names_are_deterministic_across_builds() -> Result<()> {
    let (one, two) = (build()?, build()?);
    assert_eq!(one.node_names(), two.node_names());
    assert_eq!(one.describe().to_string(), two.describe().to_string());
    let stores = |t: &Topology| {
        t.state_stores()
            .map(|s| s.name().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(stores(&one), stores(&two));
    assert_eq!(
        one.node_names(),
        [
            "KSTREAM-SOURCE-0000000000",
            "KSTREAM-FILTER-0000000001",
            "KSTREAM-MAPVALUES-0000000002",
            "KSTREAM-BRANCH-0000000003",
            "KSTREAM-BRANCH-00000000031",
            "KSTREAM-BRANCH-00000000030",
            "KSTREAM-MERGE-0000000006",
            "KSTREAM-KEY-SELECT-0000000007",
            "KSTREAM-SINK-0000000009",
            "KSTREAM-SOURCE-0000000011",
            "KSTREAM-AGGREGATE-0000000013",
            "KTABLE-TOSTREAM-0000000014",
            "KSTREAM-SINK-0000000015",
            "KSTREAM-SOURCE-0000000017",
            "KTABLE-SOURCE-0000000018",
            "KTABLE-SELECT-0000000019",
            "KSTREAM-SINK-0000000021",
            "KSTREAM-SOURCE-0000000022",
            "KTABLE-AGGREGATE-0000000023",
            "KTABLE-TOSTREAM-0000000024",
            "KSTREAM-SINK-0000000025",
        ]
    );
    assert_eq!(
        stores(&one),
        [
            "KSTREAM-AGGREGATE-STATE-STORE-0000000012",
            "table-STATE-STORE-0000000016",
            "KTABLE-AGGREGATE-STATE-STORE-0000000020",
        ]
    );
    assert_eq!(
        one.sink_topics(),
        [
            "KSTREAM-REPARTITION-0000000008-repartition",
            "counts",
            "KTABLE-AGGREGATE-STATE-STORE-0000000020-repartition",
            "table-counts",
        ]
    );
    Ok(())
}

#[test]
fn named_replaces_generated_names() -> Result<()> {
    let builder = StreamsBuilder::new();
    builder
        .stream::<String, String>(
            "in",
            Consumed::with(Serdes::string(), Serdes::string()).with_name("read-in"),
        )
        .filter_named(|_, _| true, Named::as_("keep"))
        .filter_not_named(|_, _| false, Named::as_("keep-too"))
        .map_values_named(|v| v.clone(), Named::as_("copy"))
        .flat_map_values_named(|v| [v.clone()], Named::as_("one"))
        .peek_named(|_, _| {}, Named::as_("look"))
        .select_key_named(|_, v| v.clone(), Named::as_("rekey"))
        .map_named(
            |k, v| (k.cloned().unwrap_or_default(), v.clone()),
            Named::as_("remap"),
        )
        .flat_map_named(
            |k, v| [(k.cloned().unwrap_or_default(), v.clone())],
            Named::as_("reflat"),
        )
        .to(
            "out",
            Produced::with(Serdes::string(), Serdes::string()).with_name("write-out"),
        );
    assert_eq!(
        builder.build()?.node_names(),
        [
            "read-in",
            "keep",
            "keep-too",
            "copy",
            "one",
            "look",
            "rekey",
            "remap",
            "reflat",
            "write-out"
        ]
    );
    Ok(())
}

#[test]
fn duplicate_names_fail_the_build() {
    let builder = StreamsBuilder::new();
    let stream =
        builder.stream::<String, String>("in", Consumed::with(Serdes::string(), Serdes::string()));
    stream.filter_named(|_, _| true, Named::as_("same"));
    stream.filter_named(|_, _| true, Named::as_("same"));
    let error = builder.build().err().map(|e| e.to_string());
    assert!(
        error.as_deref().is_some_and(|e| e.contains("'same'")),
        "{error:?}"
    );
}
