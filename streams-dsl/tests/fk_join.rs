//! Foreign-key table–table joins, with scenarios of Kafka Streams'
//! `KTableKTableForeignKeyJoinIntegrationTest` (the foreign key changes, is
//! removed, or points to a row that does not exist; either side deleted).
//! Random inputs are compared with Kafka Streams itself in
//! `tests/oracle.rs`.

// The tests return streams-core's error, whose size is that crate's choice.
#![allow(clippy::result_large_err)]

use streams_core::{Result, Serdes, TestInputTopic, TestRecord, TopologyTestDriver};
use streams_dsl::{
    Consumed, Materialized, Produced, StreamsBuilder, TableJoined, ValueAndTimestamp,
};

/// Left values are `"<value>|<foreign key>"`.
fn foreign_key(value: &str) -> Option<String> {
    value.split_once('|').map(|(_, fk)| fk.to_owned())
}

struct Fixture {
    driver: TopologyTestDriver,
    left: TestInputTopic<String, String>,
    right: TestInputTopic<String, String>,
}

impl Fixture {
    fn new(left_join: bool, materialized: bool) -> Result<Self> {
        let builder = StreamsBuilder::new();
        let strings = || Consumed::with(Serdes::string(), Serdes::string());
        let left = builder.table("left_table", strings(), Materialized::new());
        let right = builder.table("right_table", strings(), Materialized::new());
        let store = if materialized {
            Materialized::as_("joined")
                .with_value_serde(Serdes::string())
                .with_caching_disabled()
        } else {
            Materialized::new()
        };
        let joined = if left_join {
            left.left_join_foreign_key(
                &right,
                |v: &String| foreign_key(v),
                |l, r| format!("({l},{})", r.map_or("null", String::as_str)),
                TableJoined::new(),
                store,
            )
        } else {
            left.join_foreign_key(
                &right,
                |v: &String| foreign_key(v),
                |l, r| format!("({l},{r})"),
                TableJoined::new(),
                store,
            )
        };
        joined
            .to_stream()
            .to("output", Produced::with(Serdes::string(), Serdes::string()));
        let driver = TopologyTestDriver::new(builder.build()?)?;
        let left = driver.create_input_topic("left_table", Serdes::string(), Serdes::string());
        let right = driver.create_input_topic("right_table", Serdes::string(), Serdes::string());
        Ok(Self {
            driver,
            left,
            right,
        })
    }

    fn output(&self) -> Result<Vec<(String, Option<String>)>> {
        Ok(self
            .driver
            .create_output_topic("output", Serdes::string(), Serdes::string())
            .read_key_values_to_list()?
            .into_iter()
            .map(|(k, v)| (k.unwrap_or_default(), v))
            .collect())
    }
}

fn some(k: &str, v: &str) -> (String, Option<String>) {
    (k.to_owned(), Some(v.to_owned()))
}

fn none(k: &str) -> (String, Option<String>) {
    (k.to_owned(), None)
}

fn delete(topic: &TestInputTopic<String, String>, key: &str) -> Result<()> {
    topic.pipe_record(TestRecord::from_parts(Some(key.to_owned()), None, 0))
}

#[test]
fn joins_from_the_left_then_deletes_the_left_row() -> Result<()> {
    for left_join in [false, true] {
        let f = Fixture::new(left_join, false)?;
        f.right.pipe_input("rhs1".into(), "rhsValue1".into())?;
        f.right.pipe_input("rhs2".into(), "rhsValue2".into())?;
        assert_eq!(f.output()?, []);
        f.left.pipe_input("lhs1".into(), "lhsValue1|rhs1".into())?;
        f.left.pipe_input("lhs2".into(), "lhsValue2|rhs2".into())?;
        assert_eq!(
            f.output()?,
            [
                some("lhs1", "(lhsValue1|rhs1,rhsValue1)"),
                some("lhs2", "(lhsValue2|rhs2,rhsValue2)")
            ]
        );
        // A second left row subscribes to the same right row.
        f.left.pipe_input("lhs3".into(), "lhsValue3|rhs1".into())?;
        assert_eq!(f.output()?, [some("lhs3", "(lhsValue3|rhs1,rhsValue1)")]);
        delete(&f.left, "lhs1")?;
        assert_eq!(f.output()?, [none("lhs1")]);
        // The deleted row no longer hears of its right row.
        f.right.pipe_input("rhs1".into(), "rhsValue1b".into())?;
        assert_eq!(f.output()?, [some("lhs3", "(lhsValue3|rhs1,rhsValue1b)")]);
    }
    Ok(())
}

#[test]
fn joins_from_the_right_then_deletes_the_right_row() -> Result<()> {
    for left_join in [false, true] {
        let f = Fixture::new(left_join, false)?;
        f.left.pipe_input("lhs1".into(), "lhsValue1|rhs1".into())?;
        f.left.pipe_input("lhs2".into(), "lhsValue2|rhs2".into())?;
        f.left.pipe_input("lhs3".into(), "lhsValue3|rhs1".into())?;
        let padded = [
            some("lhs1", "(lhsValue1|rhs1,null)"),
            some("lhs2", "(lhsValue2|rhs2,null)"),
            some("lhs3", "(lhsValue3|rhs1,null)"),
        ];
        assert_eq!(
            f.output()?,
            if left_join { padded.to_vec() } else { vec![] }
        );
        f.right.pipe_input("rhs1".into(), "rhsValue1".into())?;
        assert_eq!(
            f.output()?,
            [
                some("lhs1", "(lhsValue1|rhs1,rhsValue1)"),
                some("lhs3", "(lhsValue3|rhs1,rhsValue1)")
            ]
        );
        f.right.pipe_input("rhs2".into(), "rhsValue2".into())?;
        assert_eq!(f.output()?, [some("lhs2", "(lhsValue2|rhs2,rhsValue2)")]);
        delete(&f.right, "rhs1")?;
        let expected = if left_join {
            vec![
                some("lhs1", "(lhsValue1|rhs1,null)"),
                some("lhs3", "(lhsValue3|rhs1,null)"),
            ]
        } else {
            vec![none("lhs1"), none("lhs3")]
        };
        assert_eq!(f.output()?, expected);
    }
    Ok(())
}

#[test]
fn a_changed_foreign_key_unsubscribes_the_old_one() -> Result<()> {
    for left_join in [false, true] {
        let f = Fixture::new(left_join, false)?;
        f.right.pipe_input("rhs1".into(), "rhsValue1".into())?;
        f.right.pipe_input("rhs2".into(), "rhsValue2".into())?;
        f.left.pipe_input("lhs1".into(), "lhsValue1|rhs1".into())?;
        assert_eq!(f.output()?, [some("lhs1", "(lhsValue1|rhs1,rhsValue1)")]);
        f.left.pipe_input("lhs1".into(), "lhsValue1|rhs2".into())?;
        assert_eq!(f.output()?, [some("lhs1", "(lhsValue1|rhs2,rhsValue2)")]);
        // The old right row's change reaches nobody.
        f.right.pipe_input("rhs1".into(), "rhsValue1b".into())?;
        assert_eq!(f.output()?, []);
    }
    Ok(())
}

#[test]
fn a_foreign_key_without_a_row_joins_with_nothing() -> Result<()> {
    for left_join in [false, true] {
        let f = Fixture::new(left_join, false)?;
        f.left.pipe_input("lhs1".into(), "lhsValue1|rhs1".into())?;
        let padded = |fk: &str| some("lhs1", &format!("(lhsValue1|{fk},null)"));
        assert_eq!(
            f.output()?,
            if left_join {
                vec![padded("rhs1")]
            } else {
                vec![]
            }
        );
        // Moving to another missing row: Kafka's inner join emits a
        // tombstone (the row may have joined before).
        f.left.pipe_input("lhs1".into(), "lhsValue1|rhs2".into())?;
        assert_eq!(
            f.output()?,
            [if left_join {
                padded("rhs2")
            } else {
                none("lhs1")
            }]
        );
        f.right.pipe_input("rhs2".into(), "rhsValue2".into())?;
        assert_eq!(f.output()?, [some("lhs1", "(lhsValue1|rhs2,rhsValue2)")]);
    }
    Ok(())
}

#[test]
fn a_removed_foreign_key_deletes_the_result() -> Result<()> {
    for left_join in [false, true] {
        let f = Fixture::new(left_join, false)?;
        f.right.pipe_input("rhs1".into(), "rhsValue1".into())?;
        f.left.pipe_input("lhs1".into(), "lhsValue1|rhs1".into())?;
        assert_eq!(f.output()?, [some("lhs1", "(lhsValue1|rhs1,rhsValue1)")]);
        // No `|`: no foreign key.
        f.left.pipe_input("lhs1".into(), "lhsValue1".into())?;
        let expected = if left_join {
            some("lhs1", "(lhsValue1,null)")
        } else {
            none("lhs1")
        };
        assert_eq!(f.output()?, [expected]);
        assert_eq!(f.driver.dropped_records(), 0);
        // A new row without a foreign key: the inner join skips it.
        f.left.pipe_input("lhs2".into(), "lhsValue2".into())?;
        let expected = if left_join {
            vec![some("lhs2", "(lhsValue2,null)")]
        } else {
            vec![]
        };
        assert_eq!(f.output()?, expected);
        assert_eq!(f.driver.dropped_records(), u64::from(!left_join));
    }
    Ok(())
}

#[test]
fn a_materialized_result_is_queryable() -> Result<()> {
    let f = Fixture::new(false, true)?;
    f.right.pipe_input("rhs1".into(), "rhsValue1".into())?;
    f.left.pipe_input("lhs1".into(), "lhsValue1|rhs1".into())?;
    f.left.pipe_input("lhs2".into(), "lhsValue2|rhs1".into())?;
    delete(&f.left, "lhs2")?;
    let store = f
        .driver
        .get_key_value_store::<String, ValueAndTimestamp<String>>("joined")?;
    assert_eq!(
        store
            .all()?
            .into_iter()
            .map(|(k, v)| (k, v.value))
            .collect::<Vec<_>>(),
        [("lhs1".to_owned(), "(lhsValue1|rhs1,rhsValue1)".to_owned())]
    );
    Ok(())
}

#[test]
fn the_join_reads_and_writes_its_internal_topics() -> Result<()> {
    let builder = StreamsBuilder::new();
    let strings = || Consumed::with(Serdes::string(), Serdes::string());
    let left = builder.table("left_table", strings(), Materialized::new());
    let right = builder.table("right_table", strings(), Materialized::new());
    left.join_foreign_key(
        &right,
        |v: &String| foreign_key(v),
        |l, r| format!("({l},{r})"),
        TableJoined::new(),
        Materialized::new(),
    )
    .to_stream()
    .to("output", Produced::with(Serdes::string(), Serdes::string()));
    let topology = builder.build()?;
    let text = topology.describe().to_string();
    for expected in [
        "(topic: KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-0000000006-topic)",
        "(topics: [KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-0000000006-topic])",
        "KTABLE-FK-JOIN-SUBSCRIPTION-STATE-STORE-0000000009",
        "-topic)",
    ] {
        assert!(text.contains(expected), "{expected} in\n{text}");
    }
    // Two sub-topologies: the left table with the responses, the right
    // table with the subscriptions.
    assert_eq!(text.matches("Sub-topology:").count(), 2, "{text}");
    Ok(())
}
