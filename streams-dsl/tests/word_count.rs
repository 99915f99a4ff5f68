//! The word count of DESIGN.md: counts, description, names.

// The tests return streams-core's error, whose size is that crate's choice.
#![allow(clippy::result_large_err)]

use streams_core::{Serdes, TopologyTestDriver};
use streams_dsl::{Consumed, Grouped, Materialized, Produced, StreamsBuilder, ValueAndTimestamp};

fn word_count(builder: &StreamsBuilder) {
    builder
        .stream::<String, String>(
            "text-lines",
            Consumed::with(Serdes::string(), Serdes::string()),
        )
        .flat_map_values(|line| {
            line.to_lowercase()
                .split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .group_by(
            |_key, word| word.clone(),
            Grouped::with(Serdes::string(), Serdes::string()),
        )
        .count(Materialized::as_("word-counts"))
        .to_stream()
        .to(
            "word-counts-output",
            Produced::with(Serdes::string(), Serdes::i64()),
        );
}

#[test]
fn counts_words() -> streams_core::Result<()> {
    let builder = StreamsBuilder::new();
    word_count(&builder);
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let lines = driver.create_input_topic("text-lines", Serdes::string(), Serdes::string());
    let counts = driver.create_output_topic("word-counts-output", Serdes::string(), Serdes::i64());
    lines.pipe_value("Hello Kafka Streams".to_owned())?;
    lines.pipe_value("All streams lead to Kafka".to_owned())?;
    lines.pipe_value("Join Kafka Summit".to_owned())?;
    let got = counts.read_key_values_to_list()?;
    let expected: Vec<(Option<String>, Option<i64>)> = [
        ("hello", 1),
        ("kafka", 1),
        ("streams", 1),
        ("all", 1),
        ("streams", 2),
        ("lead", 1),
        ("to", 1),
        ("kafka", 2),
        ("join", 1),
        ("kafka", 3),
        ("summit", 1),
    ]
    .into_iter()
    .map(|(w, c)| (Some(w.to_owned()), Some(c)))
    .collect();
    assert_eq!(got, expected);

    let store = driver.get_key_value_store::<String, ValueAndTimestamp<i64>>("word-counts")?;
    assert_eq!(store.get(&"kafka".to_owned())?.map(|v| v.value), Some(3));
    // The repartition topic was written and read back.
    assert!(driver
        .produced_topic_names()
        .contains(&"word-counts-repartition".to_owned()));
    Ok(())
}

#[test]
fn aggregate_timestamp_is_the_largest() -> streams_core::Result<()> {
    let builder = StreamsBuilder::new();
    word_count(&builder);
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let lines = driver.create_input_topic("text-lines", Serdes::string(), Serdes::string());
    let counts = driver.create_output_topic("word-counts-output", Serdes::string(), Serdes::i64());
    lines.pipe_record(streams_core::TestRecord::from_parts(
        None,
        Some("a".to_owned()),
        50,
    ))?;
    lines.pipe_record(streams_core::TestRecord::from_parts(
        None,
        Some("a".to_owned()),
        20,
    ))?;
    let records = counts.read_records_to_list()?;
    assert_eq!(
        records
            .iter()
            .map(|r| (r.value, r.timestamp))
            .collect::<Vec<_>>(),
        [(Some(1), 50), (Some(2), 50)]
    );
    let store = driver.get_key_value_store::<String, ValueAndTimestamp<i64>>("word-counts")?;
    assert_eq!(
        store.get(&"a".to_owned())?,
        Some(ValueAndTimestamp::make(2, 50))
    );
    Ok(())
}

const DESCRIPTION: &str = "\
Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [text-lines])
      --> KSTREAM-FLATMAPVALUES-0000000001
    Processor: KSTREAM-FLATMAPVALUES-0000000001 (stores: [])
      --> KSTREAM-KEY-SELECT-0000000002
      <-- KSTREAM-SOURCE-0000000000
    Processor: KSTREAM-KEY-SELECT-0000000002 (stores: [])
      --> word-counts-repartition-filter
      <-- KSTREAM-FLATMAPVALUES-0000000001
    Processor: word-counts-repartition-filter (stores: [])
      --> word-counts-repartition-sink
      <-- KSTREAM-KEY-SELECT-0000000002
    Sink: word-counts-repartition-sink (topic: word-counts-repartition)
      <-- word-counts-repartition-filter

  Sub-topology: 1
    Source: word-counts-repartition-source (topics: [word-counts-repartition])
      --> KSTREAM-AGGREGATE-0000000003
    Processor: KSTREAM-AGGREGATE-0000000003 (stores: [word-counts])
      --> KTABLE-TOSTREAM-0000000007
      <-- word-counts-repartition-source
    Processor: KTABLE-TOSTREAM-0000000007 (stores: [])
      --> KSTREAM-SINK-0000000008
      <-- KSTREAM-AGGREGATE-0000000003
    Sink: KSTREAM-SINK-0000000008 (topic: word-counts-output)
      <-- KTABLE-TOSTREAM-0000000007

";

#[test]
fn describes_two_sub_topologies() -> streams_core::Result<()> {
    let builder = StreamsBuilder::new();
    word_count(&builder);
    let text = builder.build()?.describe().to_string();
    println!("{text}");
    assert_eq!(text, DESCRIPTION);
    Ok(())
}

#[test]
fn application_id_prefixes_the_repartition_topic() -> streams_core::Result<()> {
    let builder = StreamsBuilder::with_application_id("wordcount-app");
    word_count(&builder);
    let topology = builder.build()?;
    assert_eq!(
        topology.describe().to_string(),
        DESCRIPTION
            .replace(
                "topic: word-counts-repartition",
                "topic: wordcount-app-word-counts-repartition"
            )
            .replace(
                "topics: [word-counts-repartition]",
                "topics: [wordcount-app-word-counts-repartition]"
            )
    );
    let driver = TopologyTestDriver::new(topology)?;
    let lines = driver.create_input_topic("text-lines", Serdes::string(), Serdes::string());
    let counts = driver.create_output_topic("word-counts-output", Serdes::string(), Serdes::i64());
    lines.pipe_value("a b a".to_owned())?;
    let latest = counts.read_key_values_to_map()?;
    assert_eq!(latest.get("a"), Some(&Some(2)));
    assert_eq!(latest.get("b"), Some(&Some(1)));
    Ok(())
}
