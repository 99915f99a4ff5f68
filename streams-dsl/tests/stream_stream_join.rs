//! Stream–stream joins through the test driver: the inputs, timestamps and
//! expected outputs of Kafka Streams' `KStreamKStreamJoinTest`,
//! `KStreamKStreamLeftJoinTest`, `KStreamKStreamOuterJoinTest` and
//! `KStreamKStreamSelfJoinTest` (window bounds at both ends, asymmetric
//! windows, grace, out-of-order and late records, the flush order of
//! unmatched records, duplicates, null keys and values, names, stores,
//! repartitioning), and a model check against a brute-force join.

// The tests return streams-core's error, whose size is that crate's choice.
#![allow(clippy::result_large_err)]

use std::fmt::Display;

use proptest::prelude::*;
use std::time::Duration;

use streams_core::{
    Headers, Result, Serde, Serdes, StoreBackend, StreamsError, TestDriverConfig, TestInputTopic,
    TestOutputTopic, TestRecord, Topology, TopologyTestDriver,
};
use streams_dsl::{Consumed, DslMetrics, JoinWindows, Produced, StreamJoined, StreamsBuilder};

const LEFT: &str = "topic1";
const RIGHT: &str = "topic2";
const OUT: &str = "out";
const KEYS: [i32; 4] = [0, 1, 2, 3];

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Kafka's `MockValueJoiner.TOSTRING_JOINER`: `left+right`, a missing side
/// written `null`.
fn show(v: Option<&impl Display>) -> String {
    v.map_or_else(|| "null".to_owned(), ToString::to_string)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Inner,
    Left,
    Outer,
}

/// A join of `topic1` (i32 keys, String values) with `topic2` (i32 keys,
/// `VO` values), written to `out` as `left+right`.
struct Join<VO> {
    driver: TopologyTestDriver,
    left: TestInputTopic<i32, String>,
    right: TestInputTopic<i32, VO>,
    out: TestOutputTopic<i32, String>,
    metrics: DslMetrics,
}

/// `(key, value, timestamp)` of an output record.
type Kvt = (Option<i32>, String, i64);

fn kvt(key: i32, value: &str, timestamp: i64) -> Kvt {
    (Some(key), value.to_owned(), timestamp)
}

/// The join topology of `kind` over `topic1` and `topic2`.
fn topology<VO>(
    kind: Kind,
    windows: JoinWindows,
    joined: StreamJoined<i32, String, VO>,
    right_serde: impl Serde<VO>,
) -> (Topology, DslMetrics)
where
    VO: Display + Clone + Send + 'static,
{
    let builder = StreamsBuilder::new();
    let left = builder.stream::<i32, String>(LEFT, Consumed::with(Serdes::i32(), Serdes::string()));
    let right = builder.stream::<i32, VO>(RIGHT, Consumed::with(Serdes::i32(), right_serde));
    let joined = match kind {
        Kind::Inner => left.join(&right, |l, r| format!("{l}+{r}"), windows, joined),
        Kind::Left => left.left_join(&right, |l, r| format!("{l}+{}", show(r)), windows, joined),
        Kind::Outer => left.outer_join(
            &right,
            |l, r| format!("{}+{}", show(l), show(r)),
            windows,
            joined,
        ),
    };
    joined.to(OUT, Produced::with(Serdes::i32(), Serdes::string()));
    let metrics = builder.metrics();
    (builder.build().expect("a valid join topology"), metrics)
}

impl<VO: Display + Clone + Send + 'static> Join<VO> {
    fn with_config(
        kind: Kind,
        windows: JoinWindows,
        joined: StreamJoined<i32, String, VO>,
        right_serde: impl Serde<VO> + Clone,
        config: TestDriverConfig,
    ) -> Result<Self> {
        let (topology, metrics) = topology(kind, windows, joined, right_serde.clone());
        let driver = TopologyTestDriver::with_config(topology, config)?;
        Ok(Self {
            left: driver.create_input_topic(LEFT, Serdes::i32(), Serdes::string()),
            right: driver.create_input_topic(RIGHT, Serdes::i32(), right_serde),
            out: driver.create_output_topic(OUT, Serdes::i32(), Serdes::string()),
            driver,
            metrics,
        })
    }

    fn l(&self, key: i32, value: &str, timestamp: i64) -> Result<()> {
        self.left
            .pipe_input_with_timestamp(key, value.to_owned(), timestamp)
    }

    fn r(&self, key: i32, value: VO, timestamp: i64) -> Result<()> {
        self.right.pipe_input_with_timestamp(key, value, timestamp)
    }

    /// Every record written to `out` since the last call.
    fn take(&self) -> Result<Vec<Kvt>> {
        Ok(self
            .out
            .read_records_to_list()?
            .into_iter()
            .map(|r| (r.key, r.value.unwrap_or_default(), r.timestamp))
            .collect())
    }
}

impl Join<String> {
    /// A join of two String streams with the given windows.
    fn new(kind: Kind, windows: JoinWindows) -> Result<Self> {
        Self::with_config(
            kind,
            windows,
            StreamJoined::with(Serdes::i32(), Serdes::string(), Serdes::string()),
            Serdes::string(),
            TestDriverConfig::new(),
        )
    }
}

impl Join<i64> {
    /// A join of a String stream with an i64 stream, as Kafka's outer-join
    /// tests have it.
    fn long(kind: Kind, windows: JoinWindows) -> Result<Self> {
        Self::with_config(
            kind,
            windows,
            StreamJoined::with(Serdes::i32(), Serdes::string(), Serdes::i64()),
            Serdes::i64(),
            TestDriverConfig::new(),
        )
    }
}

/// Stores of a topology, by name.
fn store_names(topology: &Topology) -> Vec<String> {
    let mut names: Vec<String> = topology
        .state_stores()
        .map(|s| s.name().to_owned())
        .collect();
    names.sort();
    names
}

// ---------------------------------------------------------------------
// KStreamKStreamJoinTest
// ---------------------------------------------------------------------

#[test]
fn inner_join_drops_and_counts_a_null_value() -> Result<()> {
    let j = Join::new(
        Kind::Inner,
        JoinWindows::of_time_difference_without_grace(ms(100)),
    )?;
    j.left
        .pipe_record(TestRecord::from_parts(Some(0), None, 0))?;
    j.right
        .pipe_record(TestRecord::from_parts(None, Some("x".to_owned()), 0))?;
    assert!(j.take()?.is_empty());
    assert_eq!(j.metrics.dropped_records(), 2);
    assert_eq!(j.driver.dropped_records(), 2);
    Ok(())
}

#[test]
fn inner_join_matches_within_the_window_in_both_directions() -> Result<()> {
    // testJoin: every record at time 0.
    let j = Join::new(
        Kind::Inner,
        JoinWindows::of_time_difference_without_grace(ms(100)),
    )?;
    for k in &KEYS[..2] {
        j.l(*k, &format!("A{k}"), 0)?;
    }
    assert!(j.take()?.is_empty());
    for k in &KEYS[..2] {
        j.r(*k, format!("a{k}"), 0)?;
    }
    assert_eq!(j.take()?, [kvt(0, "A0+a0", 0), kvt(1, "A1+a1", 0)]);
    for k in KEYS {
        j.l(k, &format!("B{k}"), 0)?;
    }
    assert_eq!(j.take()?, [kvt(0, "B0+a0", 0), kvt(1, "B1+a1", 0)]);
    for k in KEYS {
        j.r(k, format!("b{k}"), 0)?;
    }
    assert_eq!(
        j.take()?,
        [
            kvt(0, "A0+b0", 0),
            kvt(0, "B0+b0", 0),
            kvt(1, "A1+b1", 0),
            kvt(1, "B1+b1", 0),
            kvt(2, "B2+b2", 0),
            kvt(3, "B3+b3", 0),
        ]
    );
    for k in KEYS {
        j.l(k, &format!("C{k}"), 0)?;
    }
    assert_eq!(
        j.take()?,
        [
            kvt(0, "C0+a0", 0),
            kvt(0, "C0+b0", 0),
            kvt(1, "C1+a1", 0),
            kvt(1, "C1+b1", 0),
            kvt(2, "C2+b2", 0),
            kvt(3, "C3+b3", 0),
        ]
    );
    for k in &KEYS[..2] {
        j.r(*k, format!("c{k}"), 0)?;
    }
    assert_eq!(
        j.take()?,
        [
            kvt(0, "A0+c0", 0),
            kvt(0, "B0+c0", 0),
            kvt(0, "C0+c0", 0),
            kvt(1, "A1+c1", 0),
            kvt(1, "B1+c1", 0),
            kvt(1, "C1+c1", 0),
        ]
    );
    Ok(())
}

#[test]
fn outer_join_with_a_long_grace_emits_only_matches_while_windows_are_open() -> Result<()> {
    // testOuterJoin: a day of grace, every record at time 0.
    let j = Join::new(
        Kind::Outer,
        JoinWindows::of_time_difference_and_grace(ms(100), Duration::from_secs(24 * 3600)),
    )?;
    for k in &KEYS[..2] {
        j.l(*k, &format!("A{k}"), 0)?;
    }
    assert!(j.take()?.is_empty());
    for k in &KEYS[..2] {
        j.r(*k, format!("a{k}"), 0)?;
    }
    assert_eq!(j.take()?, [kvt(0, "A0+a0", 0), kvt(1, "A1+a1", 0)]);
    for k in KEYS {
        j.l(k, &format!("B{k}"), 0)?;
    }
    assert_eq!(j.take()?, [kvt(0, "B0+a0", 0), kvt(1, "B1+a1", 0)]);
    for k in KEYS {
        j.r(k, format!("b{k}"), 0)?;
    }
    assert_eq!(
        j.take()?,
        [
            kvt(0, "A0+b0", 0),
            kvt(0, "B0+b0", 0),
            kvt(1, "A1+b1", 0),
            kvt(1, "B1+b1", 0),
            kvt(2, "B2+b2", 0),
            kvt(3, "B3+b3", 0),
        ]
    );
    for k in KEYS {
        j.l(k, &format!("C{k}"), 0)?;
    }
    assert_eq!(
        j.take()?,
        [
            kvt(0, "C0+a0", 0),
            kvt(0, "C0+b0", 0),
            kvt(1, "C1+a1", 0),
            kvt(1, "C1+b1", 0),
            kvt(2, "C2+b2", 0),
            kvt(3, "C3+b3", 0),
        ]
    );
    for k in &KEYS[..2] {
        j.r(*k, format!("c{k}"), 0)?;
    }
    assert_eq!(
        j.take()?,
        [
            kvt(0, "A0+c0", 0),
            kvt(0, "B0+c0", 0),
            kvt(0, "C0+c0", 0),
            kvt(1, "A1+c1", 0),
            kvt(1, "B1+c1", 0),
            kvt(1, "C1+c1", 0),
        ]
    );
    Ok(())
}

/// Pipes `prefix<k>` for every key, all at `timestamp`, to one side.
fn all_keys(j: &Join<String>, left: bool, prefix: &str, timestamp: i64) -> Result<()> {
    for k in KEYS {
        let value = format!("{prefix}{k}");
        if left {
            j.l(k, &value, timestamp)?;
        } else {
            j.r(k, value, timestamp)?;
        }
    }
    Ok(())
}

#[test]
fn inner_join_window_bounds_are_inclusive_at_both_ends() -> Result<()> {
    // testWindowing.
    let j = Join::new(
        Kind::Inner,
        JoinWindows::of_time_difference_without_grace(ms(100)),
    )?;
    for k in &KEYS[..2] {
        j.l(*k, &format!("A{k}"), 0)?;
    }
    for k in &KEYS[..2] {
        j.r(*k, format!("a{k}"), 0)?;
    }
    assert_eq!(j.take()?, [kvt(0, "A0+a0", 0), kvt(1, "A1+a1", 0)]);

    // Left records at 1000..1003; right records after them.
    for (i, k) in KEYS.iter().enumerate() {
        j.l(*k, &format!("B{k}"), 1000 + i as i64)?;
    }
    assert!(j.take()?.is_empty());
    all_keys(&j, false, "b", 1100)?;
    assert_eq!(
        j.take()?,
        [
            kvt(0, "B0+b0", 1100),
            kvt(1, "B1+b1", 1100),
            kvt(2, "B2+b2", 1100),
            kvt(3, "B3+b3", 1100),
        ]
    );
    all_keys(&j, false, "c", 1101)?;
    assert_eq!(
        j.take()?,
        [
            kvt(1, "B1+c1", 1101),
            kvt(2, "B2+c2", 1101),
            kvt(3, "B3+c3", 1101),
        ]
    );
    all_keys(&j, false, "d", 1102)?;
    assert_eq!(j.take()?, [kvt(2, "B2+d2", 1102), kvt(3, "B3+d3", 1102)]);
    all_keys(&j, false, "e", 1103)?;
    assert_eq!(j.take()?, [kvt(3, "B3+e3", 1103)]);
    all_keys(&j, false, "f", 1104)?;
    assert!(j.take()?.is_empty());
    // Right records before them (late for the right store, still joined).
    all_keys(&j, false, "g", 899)?;
    assert!(j.take()?.is_empty());
    all_keys(&j, false, "h", 900)?;
    assert_eq!(j.take()?, [kvt(0, "B0+h0", 1000)]);
    all_keys(&j, false, "i", 901)?;
    assert_eq!(j.take()?, [kvt(0, "B0+i0", 1000), kvt(1, "B1+i1", 1001)]);
    all_keys(&j, false, "j", 902)?;
    assert_eq!(
        j.take()?,
        [
            kvt(0, "B0+j0", 1000),
            kvt(1, "B1+j1", 1001),
            kvt(2, "B2+j2", 1002),
        ]
    );
    all_keys(&j, false, "k", 903)?;
    assert_eq!(
        j.take()?,
        [
            kvt(0, "B0+k0", 1000),
            kvt(1, "B1+k1", 1001),
            kvt(2, "B2+k2", 1002),
            kvt(3, "B3+k3", 1003),
        ]
    );

    // Right records at 2000..2003; left records after, then before them.
    for (i, k) in KEYS.iter().enumerate() {
        j.r(*k, format!("l{k}"), 2000 + i as i64)?;
    }
    assert!(j.take()?.is_empty());
    all_keys(&j, true, "C", 2100)?;
    assert_eq!(
        j.take()?,
        [
            kvt(0, "C0+l0", 2100),
            kvt(1, "C1+l1", 2100),
            kvt(2, "C2+l2", 2100),
            kvt(3, "C3+l3", 2100),
        ]
    );
    all_keys(&j, true, "D", 2101)?;
    assert_eq!(
        j.take()?,
        [
            kvt(1, "D1+l1", 2101),
            kvt(2, "D2+l2", 2101),
            kvt(3, "D3+l3", 2101),
        ]
    );
    all_keys(&j, true, "E", 2102)?;
    assert_eq!(j.take()?, [kvt(2, "E2+l2", 2102), kvt(3, "E3+l3", 2102)]);
    all_keys(&j, true, "F", 2103)?;
    assert_eq!(j.take()?, [kvt(3, "F3+l3", 2103)]);
    all_keys(&j, true, "G", 2104)?;
    assert!(j.take()?.is_empty());
    all_keys(&j, true, "H", 1899)?;
    assert!(j.take()?.is_empty());
    all_keys(&j, true, "I", 1900)?;
    assert_eq!(j.take()?, [kvt(0, "I0+l0", 2000)]);
    all_keys(&j, true, "J", 1901)?;
    assert_eq!(j.take()?, [kvt(0, "J0+l0", 2000), kvt(1, "J1+l1", 2001)]);
    all_keys(&j, true, "K", 1902)?;
    assert_eq!(
        j.take()?,
        [
            kvt(0, "K0+l0", 2000),
            kvt(1, "K1+l1", 2001),
            kvt(2, "K2+l2", 2002),
        ]
    );
    all_keys(&j, true, "L", 1903)?;
    assert_eq!(
        j.take()?,
        [
            kvt(0, "L0+l0", 2000),
            kvt(1, "L1+l1", 2001),
            kvt(2, "L2+l2", 2002),
            kvt(3, "L3+l3", 2003),
        ]
    );
    // Records too late for their own store (g, H and the first I..L are
    // more than 200 ms behind their store) were dropped from it, counted,
    // and still joined.
    assert!(j.metrics.dropped_records() > 0);
    assert_eq!(j.metrics.dropped_records(), j.driver.dropped_records());
    Ok(())
}

#[test]
fn inner_join_with_an_after_only_window() -> Result<()> {
    // testAsymmetricWindowingAfter: before 0, after 100.
    let j = Join::new(
        Kind::Inner,
        JoinWindows::of_time_difference_without_grace(ms(0)).after(ms(100)),
    )?;
    for (i, k) in KEYS.iter().enumerate() {
        j.l(*k, &format!("A{k}"), 1000 + i as i64)?;
    }
    assert!(j.take()?.is_empty());
    all_keys(&j, false, "a", 999)?;
    assert!(j.take()?.is_empty());
    all_keys(&j, false, "b", 1000)?;
    assert_eq!(j.take()?, [kvt(0, "A0+b0", 1000)]);
    all_keys(&j, false, "c", 1001)?;
    assert_eq!(j.take()?, [kvt(0, "A0+c0", 1001), kvt(1, "A1+c1", 1001)]);
    all_keys(&j, false, "d", 1002)?;
    assert_eq!(
        j.take()?,
        [
            kvt(0, "A0+d0", 1002),
            kvt(1, "A1+d1", 1002),
            kvt(2, "A2+d2", 1002),
        ]
    );
    all_keys(&j, false, "e", 1003)?;
    assert_eq!(
        j.take()?,
        [
            kvt(0, "A0+e0", 1003),
            kvt(1, "A1+e1", 1003),
            kvt(2, "A2+e2", 1003),
            kvt(3, "A3+e3", 1003),
        ]
    );
    all_keys(&j, false, "f", 1100)?;
    assert_eq!(
        j.take()?,
        [
            kvt(0, "A0+f0", 1100),
            kvt(1, "A1+f1", 1100),
            kvt(2, "A2+f2", 1100),
            kvt(3, "A3+f3", 1100),
        ]
    );
    all_keys(&j, false, "g", 1101)?;
    assert_eq!(
        j.take()?,
        [
            kvt(1, "A1+g1", 1101),
            kvt(2, "A2+g2", 1101),
            kvt(3, "A3+g3", 1101),
        ]
    );
    all_keys(&j, false, "h", 1102)?;
    assert_eq!(j.take()?, [kvt(2, "A2+h2", 1102), kvt(3, "A3+h3", 1102)]);
    all_keys(&j, false, "i", 1103)?;
    assert_eq!(j.take()?, [kvt(3, "A3+i3", 1103)]);
    all_keys(&j, false, "j", 1104)?;
    assert!(j.take()?.is_empty());
    Ok(())
}

#[test]
fn inner_join_with_a_before_only_window() -> Result<()> {
    // testAsymmetricWindowingBefore: before 100, after 0.
    let j = Join::new(
        Kind::Inner,
        JoinWindows::of_time_difference_without_grace(ms(0)).before(ms(100)),
    )?;
    for (i, k) in KEYS.iter().enumerate() {
        j.l(*k, &format!("A{k}"), 1000 + i as i64)?;
    }
    assert!(j.take()?.is_empty());
    all_keys(&j, false, "a", 899)?;
    assert!(j.take()?.is_empty());
    all_keys(&j, false, "b", 900)?;
    assert_eq!(j.take()?, [kvt(0, "A0+b0", 1000)]);
    all_keys(&j, false, "c", 901)?;
    assert_eq!(j.take()?, [kvt(0, "A0+c0", 1000), kvt(1, "A1+c1", 1001)]);
    all_keys(&j, false, "d", 902)?;
    assert_eq!(
        j.take()?,
        [
            kvt(0, "A0+d0", 1000),
            kvt(1, "A1+d1", 1001),
            kvt(2, "A2+d2", 1002),
        ]
    );
    all_keys(&j, false, "e", 903)?;
    assert_eq!(
        j.take()?,
        [
            kvt(0, "A0+e0", 1000),
            kvt(1, "A1+e1", 1001),
            kvt(2, "A2+e2", 1002),
            kvt(3, "A3+e3", 1003),
        ]
    );
    all_keys(&j, false, "f", 1000)?;
    assert_eq!(
        j.take()?,
        [
            kvt(0, "A0+f0", 1000),
            kvt(1, "A1+f1", 1001),
            kvt(2, "A2+f2", 1002),
            kvt(3, "A3+f3", 1003),
        ]
    );
    all_keys(&j, false, "g", 1001)?;
    assert_eq!(
        j.take()?,
        [
            kvt(1, "A1+g1", 1001),
            kvt(2, "A2+g2", 1002),
            kvt(3, "A3+g3", 1003),
        ]
    );
    all_keys(&j, false, "h", 1002)?;
    assert_eq!(j.take()?, [kvt(2, "A2+h2", 1002), kvt(3, "A3+h3", 1003)]);
    all_keys(&j, false, "i", 1003)?;
    assert_eq!(j.take()?, [kvt(3, "A3+i3", 1003)]);
    all_keys(&j, false, "j", 1004)?;
    assert!(j.take()?.is_empty());
    Ok(())
}

/// Kafka's `runJoin`: `A:1@1, B:1@2` left, `A:1@1, B:2@2` right, summed.
fn run_sum_join(joined: StreamJoined<String, i32, i32>, config: TestDriverConfig) -> Result<()> {
    let builder = StreamsBuilder::new();
    let left =
        builder.stream::<String, i32>("left", Consumed::with(Serdes::string(), Serdes::i32()));
    let right =
        builder.stream::<String, i32>("right", Consumed::with(Serdes::string(), Serdes::i32()));
    left.join(
        &right,
        |a, b| a + b,
        JoinWindows::of_time_difference_without_grace(ms(100)),
        joined,
    )
    .to("sums", Produced::with(Serdes::string(), Serdes::i32()));
    let driver = TopologyTestDriver::with_config(builder.build()?, config)?;
    let left = driver.create_input_topic("left", Serdes::string(), Serdes::i32());
    let right = driver.create_input_topic("right", Serdes::string(), Serdes::i32());
    left.pipe_input_with_timestamp("A".to_owned(), 1, 1)?;
    left.pipe_input_with_timestamp("B".to_owned(), 1, 2)?;
    right.pipe_input_with_timestamp("A".to_owned(), 1, 1)?;
    right.pipe_input_with_timestamp("B".to_owned(), 2, 2)?;
    let out = driver.create_output_topic("sums", Serdes::string(), Serdes::i32());
    let got: Vec<_> = out
        .read_records_to_list()?
        .into_iter()
        .map(|r| (r.key, r.value, r.timestamp))
        .collect();
    assert_eq!(
        got,
        [
            (Some("A".to_owned()), Some(2), 1),
            (Some("B".to_owned()), Some(3), 2),
        ]
    );
    driver.close()
}

#[test]
fn joins_on_every_store_backend() -> Result<()> {
    // shouldJoinWithCustomStoreSuppliers and its kin: the stores' backend
    // is chosen in StreamJoined; the driver runs each on it.
    for backend in [
        StoreBackend::InMemory,
        StoreBackend::Sled,
        StoreBackend::Redb,
    ] {
        let dir =
            std::env::temp_dir().join(format!("ss-join-backends-{}-{backend}", std::process::id()));
        let config = TestDriverConfig::new()
            .with_streams_config(
                streams_core::StreamsConfig::new("join-backends").with_state_dir(&dir),
            )
            .with_declared_store_backends();
        run_sum_join(
            StreamJoined::with(Serdes::string(), Serdes::i32(), Serdes::i32())
                .with_backend(backend),
            config,
        )?;
        let _ = std::fs::remove_dir_all(&dir);
    }
    run_sum_join(StreamJoined::new(), TestDriverConfig::new())
}

#[test]
fn logging_can_be_disabled_or_configured_on_stream_joined() -> Result<()> {
    // shouldDisableLoggingOnStreamJoined and
    // shouldEnableLoggingWithCustomConfigOnStreamJoined.
    let windows = JoinWindows::of_time_difference_and_grace(ms(100), ms(50));
    let (disabled, _) = topology(
        Kind::Inner,
        windows,
        StreamJoined::with(Serdes::i32(), Serdes::string(), Serdes::string())
            .with_store_name("store")
            .with_logging_disabled(),
        Serdes::string(),
    );
    assert_eq!(
        store_names(&disabled),
        ["store-other-join-store", "store-this-join-store"]
    );
    assert!(disabled.state_stores().all(|s| !s.logging_enabled()));

    let (enabled, _) = topology(
        Kind::Inner,
        windows,
        StreamJoined::with(Serdes::i32(), Serdes::string(), Serdes::string())
            .with_store_name("store")
            .with_logging_enabled([("test", "property")]),
        Serdes::string(),
    );
    for store in enabled.state_stores() {
        assert!(store.logging_enabled());
        assert_eq!(store.log_config()["test"], "property");
        // The window stores keep size + grace = 250 ms, as Kafka's.
        assert_eq!(store.retention_ms(), Some(250));
        assert_eq!(store.window_size_ms(), Some(200));
        assert!(!store.caching_enabled());
    }
    Ok(())
}

/// Kafka's expected description, but for the order of a merge's two
/// predecessors: equally deep nodes are listed by name here, where Kafka's
/// order depends on the order its builder met them.
const REUSED_REPARTITION: &str = "\
Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [topic])
      --> KSTREAM-MAP-0000000003
    Processor: KSTREAM-MAP-0000000003 (stores: [])
      --> KSTREAM-FILTER-0000000005
      <-- KSTREAM-SOURCE-0000000000
    Processor: KSTREAM-FILTER-0000000005 (stores: [])
      --> KSTREAM-SINK-0000000004
      <-- KSTREAM-MAP-0000000003
    Sink: KSTREAM-SINK-0000000004 (topic: KSTREAM-MAP-0000000003-repartition)
      <-- KSTREAM-FILTER-0000000005

  Sub-topology: 1
    Source: KSTREAM-SOURCE-0000000006 (topics: [KSTREAM-MAP-0000000003-repartition])
      --> KSTREAM-WINDOWED-0000000007, KSTREAM-WINDOWED-0000000016
    Source: KSTREAM-SOURCE-0000000001 (topics: [topic2])
      --> KSTREAM-WINDOWED-0000000008
    Source: KSTREAM-SOURCE-0000000002 (topics: [topic3])
      --> KSTREAM-WINDOWED-0000000017
    Processor: KSTREAM-WINDOWED-0000000007 (stores: [KSTREAM-JOINTHIS-0000000009-store])
      --> KSTREAM-JOINTHIS-0000000009
      <-- KSTREAM-SOURCE-0000000006
    Processor: KSTREAM-WINDOWED-0000000008 (stores: [KSTREAM-JOINOTHER-0000000010-store])
      --> KSTREAM-JOINOTHER-0000000010
      <-- KSTREAM-SOURCE-0000000001
    Processor: KSTREAM-WINDOWED-0000000016 (stores: [KSTREAM-JOINTHIS-0000000018-store])
      --> KSTREAM-JOINTHIS-0000000018
      <-- KSTREAM-SOURCE-0000000006
    Processor: KSTREAM-WINDOWED-0000000017 (stores: [KSTREAM-JOINOTHER-0000000019-store])
      --> KSTREAM-JOINOTHER-0000000019
      <-- KSTREAM-SOURCE-0000000002
    Processor: KSTREAM-JOINOTHER-0000000010 (stores: [KSTREAM-JOINTHIS-0000000009-store])
      --> KSTREAM-MERGE-0000000011
      <-- KSTREAM-WINDOWED-0000000008
    Processor: KSTREAM-JOINOTHER-0000000019 (stores: [KSTREAM-JOINTHIS-0000000018-store])
      --> KSTREAM-MERGE-0000000020
      <-- KSTREAM-WINDOWED-0000000017
    Processor: KSTREAM-JOINTHIS-0000000009 (stores: [KSTREAM-JOINOTHER-0000000010-store])
      --> KSTREAM-MERGE-0000000011
      <-- KSTREAM-WINDOWED-0000000007
    Processor: KSTREAM-JOINTHIS-0000000018 (stores: [KSTREAM-JOINOTHER-0000000019-store])
      --> KSTREAM-MERGE-0000000020
      <-- KSTREAM-WINDOWED-0000000016
    Processor: KSTREAM-MERGE-0000000011 (stores: [])
      --> KSTREAM-SINK-0000000012
      <-- KSTREAM-JOINOTHER-0000000010, KSTREAM-JOINTHIS-0000000009
    Processor: KSTREAM-MERGE-0000000020 (stores: [])
      --> KSTREAM-SINK-0000000021
      <-- KSTREAM-JOINOTHER-0000000019, KSTREAM-JOINTHIS-0000000018
    Sink: KSTREAM-SINK-0000000012 (topic: out-one)
      <-- KSTREAM-MERGE-0000000011
    Sink: KSTREAM-SINK-0000000021 (topic: out-to)
      <-- KSTREAM-MERGE-0000000020

";

/// Kafka's expected description, with the map's successors and the merges'
/// predecessors by name.
const NAMED_REPARTITIONS: &str = "\
Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [topic])
      --> KSTREAM-MAP-0000000003
    Processor: KSTREAM-MAP-0000000003 (stores: [])
      --> first-join-left-repartition-filter, second-join-left-repartition-filter
      <-- KSTREAM-SOURCE-0000000000
    Processor: first-join-left-repartition-filter (stores: [])
      --> first-join-left-repartition-sink
      <-- KSTREAM-MAP-0000000003
    Processor: second-join-left-repartition-filter (stores: [])
      --> second-join-left-repartition-sink
      <-- KSTREAM-MAP-0000000003
    Sink: first-join-left-repartition-sink (topic: first-join-left-repartition)
      <-- first-join-left-repartition-filter
    Sink: second-join-left-repartition-sink (topic: second-join-left-repartition)
      <-- second-join-left-repartition-filter

  Sub-topology: 1
    Source: KSTREAM-SOURCE-0000000001 (topics: [topic2])
      --> first-join-other-windowed
    Source: first-join-left-repartition-source (topics: [first-join-left-repartition])
      --> first-join-this-windowed
    Processor: first-join-other-windowed (stores: [KSTREAM-JOINOTHER-0000000010-store])
      --> first-join-other-join
      <-- KSTREAM-SOURCE-0000000001
    Processor: first-join-this-windowed (stores: [KSTREAM-JOINTHIS-0000000009-store])
      --> first-join-this-join
      <-- first-join-left-repartition-source
    Processor: first-join-other-join (stores: [KSTREAM-JOINTHIS-0000000009-store])
      --> first-join-merge
      <-- first-join-other-windowed
    Processor: first-join-this-join (stores: [KSTREAM-JOINOTHER-0000000010-store])
      --> first-join-merge
      <-- first-join-this-windowed
    Processor: first-join-merge (stores: [])
      --> KSTREAM-SINK-0000000012
      <-- first-join-other-join, first-join-this-join
    Sink: KSTREAM-SINK-0000000012 (topic: out-one)
      <-- first-join-merge

  Sub-topology: 2
    Source: KSTREAM-SOURCE-0000000002 (topics: [topic3])
      --> second-join-other-windowed
    Source: second-join-left-repartition-source (topics: [second-join-left-repartition])
      --> second-join-this-windowed
    Processor: second-join-other-windowed (stores: [KSTREAM-JOINOTHER-0000000019-store])
      --> second-join-other-join
      <-- KSTREAM-SOURCE-0000000002
    Processor: second-join-this-windowed (stores: [KSTREAM-JOINTHIS-0000000018-store])
      --> second-join-this-join
      <-- second-join-left-repartition-source
    Processor: second-join-other-join (stores: [KSTREAM-JOINTHIS-0000000018-store])
      --> second-join-merge
      <-- second-join-other-windowed
    Processor: second-join-this-join (stores: [KSTREAM-JOINOTHER-0000000019-store])
      --> second-join-merge
      <-- second-join-this-windowed
    Processor: second-join-merge (stores: [])
      --> KSTREAM-SINK-0000000021
      <-- second-join-other-join, second-join-this-join
    Sink: KSTREAM-SINK-0000000021 (topic: out-two)
      <-- second-join-merge

";

/// Kafka's `shouldReuseRepartitionTopicWithGeneratedName` and
/// `shouldCreateRepartitionTopicsWithUserProvidedName`: a mapped stream
/// joined twice.
fn mapped_stream_joined_twice(names: Option<(&str, &str)>) -> Result<Topology> {
    let builder = StreamsBuilder::new();
    let consumed = || Consumed::with(Serdes::string(), Serdes::string());
    let stream1 = builder.stream::<String, String>("topic", consumed());
    let stream2 = builder.stream::<String, String>("topic2", consumed());
    let stream3 = builder.stream::<String, String>("topic3", consumed());
    let mapped = stream1.map(|k, v| (v.clone(), k.cloned().unwrap_or_default()));
    let joined = |name: Option<&str>| {
        let joined = StreamJoined::with(Serdes::string(), Serdes::string(), Serdes::string());
        match name {
            Some(name) => joined.with_name(name),
            None => joined,
        }
    };
    let windows = JoinWindows::of_time_difference_without_grace(ms(100));
    mapped
        .join(
            &stream2,
            |a, b| format!("{a}{b}"),
            windows,
            joined(names.map(|n| n.0)),
        )
        .to(
            "out-one",
            Produced::with(Serdes::string(), Serdes::string()),
        );
    mapped
        .join(
            &stream3,
            |a, b| format!("{a}{b}"),
            windows,
            joined(names.map(|n| n.1)),
        )
        .to(
            if names.is_some() { "out-two" } else { "out-to" },
            Produced::with(Serdes::string(), Serdes::string()),
        );
    builder.build()
}

#[test]
fn a_key_changed_stream_is_repartitioned_once_for_two_joins_with_generated_names() -> Result<()> {
    let topology = mapped_stream_joined_twice(None)?;
    assert_eq!(topology.describe().to_string(), REUSED_REPARTITION);
    // The reused repartition works: both joins see the mapped records.
    let driver = TopologyTestDriver::new(topology)?;
    let topic = driver.create_input_topic("topic", Serdes::string(), Serdes::string());
    let topic2 = driver.create_input_topic("topic2", Serdes::string(), Serdes::string());
    let topic3 = driver.create_input_topic("topic3", Serdes::string(), Serdes::string());
    topic2.pipe_input_with_timestamp("v".to_owned(), "2".to_owned(), 5)?;
    topic3.pipe_input_with_timestamp("v".to_owned(), "3".to_owned(), 5)?;
    topic.pipe_input_with_timestamp("k".to_owned(), "v".to_owned(), 7)?;
    let one = driver.create_output_topic("out-one", Serdes::string(), Serdes::string());
    let two = driver.create_output_topic("out-to", Serdes::string(), Serdes::string());
    assert_eq!(
        one.read_key_value()?,
        (Some("v".to_owned()), Some("k2".to_owned()))
    );
    assert_eq!(
        two.read_key_value()?,
        (Some("v".to_owned()), Some("k3".to_owned()))
    );
    Ok(())
}

#[test]
fn named_joins_repartition_through_left_repartition_topics() -> Result<()> {
    let topology = mapped_stream_joined_twice(Some(("first-join", "second-join")))?;
    assert_eq!(topology.describe().to_string(), NAMED_REPARTITIONS);
    Ok(())
}

#[test]
fn a_repartition_needs_serdes_and_says_so() {
    // Values of a type without a built-in serde: one must be given.
    let builder = StreamsBuilder::new();
    let left = builder
        .stream::<String, String>("a", Consumed::with(Serdes::string(), Serdes::string()))
        .map(|_, v| (v.clone(), (v.clone(), v.len())));
    let right =
        builder.stream::<String, String>("b", Consumed::with(Serdes::string(), Serdes::string()));
    left.join(
        &right,
        |a, b| format!("{a:?}{b}"),
        JoinWindows::of_time_difference_without_grace(ms(10)),
        StreamJoined::new(),
    );
    let err = builder.build().err();
    assert!(
        matches!(&err, Some(StreamsError::InvalidTopology { reason }) if reason.contains("KSTREAM-MAP-0000000001-repartition") && reason.contains("StreamJoined::with")),
        "{err:?}"
    );
}

#[test]
fn a_missing_store_serde_names_the_join() {
    let builder = StreamsBuilder::new();
    let left = builder
        .stream::<String, String>("a", Consumed::with(Serdes::string(), Serdes::string()))
        .map_values(|v| v.len());
    let right =
        builder.stream::<String, String>("b", Consumed::with(Serdes::string(), Serdes::string()));
    left.join(
        &right,
        |a, b| format!("{a}{b}"),
        JoinWindows::of_time_difference_without_grace(ms(10)),
        StreamJoined::new(),
    );
    let err = builder.build().err();
    assert!(
        matches!(&err, Some(StreamsError::InvalidTopology { reason })
            if reason.contains("KSTREAM-JOINTHIS-0000000005-store") && reason.contains("value serde")),
        "{err:?}"
    );
}

#[test]
fn invalid_windows_fail_the_build() {
    for windows in [
        JoinWindows::of_time_difference_without_grace(ms(10)).with_before_ms(-11),
        JoinWindows::of_time_difference_without_grace(ms(10)).with_after_ms(i64::MAX),
    ] {
        let builder = StreamsBuilder::new();
        let left = builder
            .stream::<String, String>("a", Consumed::with(Serdes::string(), Serdes::string()));
        let right = builder
            .stream::<String, String>("b", Consumed::with(Serdes::string(), Serdes::string()));
        left.join(
            &right,
            |a, b| format!("{a}{b}"),
            windows,
            StreamJoined::new(),
        );
        let err = builder.build().err();
        assert!(
            matches!(&err, Some(StreamsError::InvalidTopology { reason }) if reason.contains("JoinWindows")),
            "{err:?}"
        );
    }
}

#[test]
fn generated_names_of_each_join_kind() -> Result<()> {
    let windows = JoinWindows::of_time_difference_without_grace(ms(10));
    let joined = || StreamJoined::with(Serdes::i32(), Serdes::string(), Serdes::string());
    let (inner, _) = topology(Kind::Inner, windows, joined(), Serdes::string());
    assert_eq!(
        store_names(&inner),
        [
            "KSTREAM-JOINOTHER-0000000005-store",
            "KSTREAM-JOINTHIS-0000000004-store"
        ]
    );
    let (left, _) = topology(Kind::Left, windows, joined(), Serdes::string());
    assert_eq!(
        store_names(&left),
        [
            "KSTREAM-JOINTHIS-0000000004-store",
            "KSTREAM-OUTEROTHER-0000000005-store",
            "KSTREAM-OUTERSHARED-0000000004-store",
        ]
    );
    let (outer, _) = topology(Kind::Outer, windows, joined(), Serdes::string());
    assert_eq!(
        store_names(&outer),
        [
            "KSTREAM-OUTEROTHER-0000000005-store",
            "KSTREAM-OUTERSHARED-0000000004-store",
            "KSTREAM-OUTERTHIS-0000000004-store",
        ]
    );
    let nodes = outer.node_names();
    for name in [
        "KSTREAM-WINDOWED-0000000002",
        "KSTREAM-WINDOWED-0000000003",
        "KSTREAM-OUTERTHIS-0000000004",
        "KSTREAM-OUTEROTHER-0000000005",
        "KSTREAM-MERGE-0000000006",
    ] {
        assert!(nodes.contains(&name), "{name} in {nodes:?}");
    }

    let named = || joined().with_name("j").with_store_name("s");
    let (left, _) = topology(Kind::Left, windows, named(), Serdes::string());
    assert_eq!(
        store_names(&left),
        [
            "s-left-shared-join-store",
            "s-outer-other-join-store",
            "s-this-join-store"
        ]
    );
    let nodes = left.node_names();
    for name in [
        "j-this-windowed",
        "j-other-windowed",
        "j-this-join",
        "j-outer-other-join",
        "j-merge",
    ] {
        assert!(nodes.contains(&name), "{name} in {nodes:?}");
    }
    let (outer, _) = topology(Kind::Outer, windows, named(), Serdes::string());
    assert_eq!(
        store_names(&outer),
        [
            "s-outer-other-join-store",
            "s-outer-shared-join-store",
            "s-outer-this-join-store"
        ]
    );
    Ok(())
}

#[test]
fn join_stores_are_changelogged_under_the_application_id() -> Result<()> {
    let j = Join::new(
        Kind::Left,
        JoinWindows::of_time_difference_without_grace(ms(10)),
    )?;
    j.l(0, "A", 5)?;
    j.r(0, "a".to_owned(), 6)?;
    j.l(1, "B", 7)?;
    assert_eq!(
        j.driver.produced_topic_names(),
        [
            "out",
            "test-driver-KSTREAM-JOINTHIS-0000000004-store-changelog",
            "test-driver-KSTREAM-OUTEROTHER-0000000005-store-changelog",
            "test-driver-KSTREAM-OUTERSHARED-0000000004-store-changelog",
        ]
    );
    Ok(())
}

// ---------------------------------------------------------------------
// KStreamKStreamLeftJoinTest
// ---------------------------------------------------------------------

#[test]
#[allow(deprecated)]
fn eager_left_join_emits_unmatched_records_at_once() -> Result<()> {
    // testLeftJoinWithSpuriousResultFixDisabledOldApi.
    let j = Join::new(Kind::Left, JoinWindows::of(ms(100)))?;
    assert_eq!(
        store_names(
            &topology(
                Kind::Left,
                JoinWindows::of(ms(100)),
                StreamJoined::with(Serdes::i32(), Serdes::string(), Serdes::string()),
                Serdes::string()
            )
            .0
        )
        .len(),
        2
    );
    for k in &KEYS[..2] {
        j.l(*k, &format!("A{k}"), 0)?;
    }
    assert_eq!(j.take()?, [kvt(0, "A0+null", 0), kvt(1, "A1+null", 0)]);
    for k in &KEYS[..2] {
        j.r(*k, format!("a{k}"), 0)?;
    }
    assert_eq!(j.take()?, [kvt(0, "A0+a0", 0), kvt(1, "A1+a1", 0)]);
    Ok(())
}

#[test]
#[allow(deprecated)]
fn eager_left_join_emits_duplicates_unmatched_then_joined() -> Result<()> {
    // testLeftJoinDuplicatesWithSpuriousResultFixDisabledOldApi.
    let j = Join::new(Kind::Left, JoinWindows::of(ms(100)).grace(ms(10)))?;
    j.l(0, "A0", 0)?;
    j.l(0, "A0-0", 0)?;
    j.r(0, "a0".to_owned(), 0)?;
    assert_eq!(
        j.take()?,
        [
            kvt(0, "A0+null", 0),
            kvt(0, "A0-0+null", 0),
            kvt(0, "A0+a0", 0),
            kvt(0, "A0-0+a0", 0),
        ]
    );
    Ok(())
}

#[test]
fn left_join_keeps_duplicates_at_one_timestamp() -> Result<()> {
    // testLeftJoinDuplicates.
    let j = Join::new(
        Kind::Left,
        JoinWindows::of_time_difference_and_grace(ms(100), ms(10)),
    )?;
    j.l(0, "A0", 0)?;
    j.l(0, "A0-0", 0)?;
    j.r(1, "a0".to_owned(), 111)?;
    j.r(2, "dummy".to_owned(), 500)?;
    assert_eq!(j.take()?, [kvt(0, "A0+null", 0), kvt(0, "A0-0+null", 0)]);
    j.l(2, "A2", 1000)?;
    j.l(2, "A2-0", 1000)?;
    j.r(2, "a2".to_owned(), 1001)?;
    assert_eq!(j.take()?, [kvt(2, "A2+a2", 1001), kvt(2, "A2-0+a2", 1001)]);
    // Would close A2 and A2-0, but they joined: nothing.
    j.r(3, "a3".to_owned(), 315)?;
    assert!(j.take()?.is_empty());
    Ok(())
}

#[test]
fn left_records_are_emitted_unmatched_by_a_later_left_record() -> Result<()> {
    // testLeftExpiredNonJoinedRecordsAreEmittedByTheLeftProcessor.
    let j = Join::new(
        Kind::Left,
        JoinWindows::of_time_difference_and_grace(ms(100), ms(0)),
    )?;
    j.l(0, "A0", 1)?;
    j.l(1, "A1", 2)?;
    j.l(0, "A0-0", 3)?;
    assert!(j.take()?.is_empty());
    j.r(1, "a1".to_owned(), 3)?;
    assert_eq!(j.take()?, [kvt(1, "A1+a1", 3)]);
    j.l(2, "dummy", 401)?;
    assert_eq!(j.take()?, [kvt(0, "A0+null", 1), kvt(0, "A0-0+null", 3)]);
    j.r(2, "dummy".to_owned(), 401)?;
    assert_eq!(j.take()?, [kvt(2, "dummy+dummy", 401)]);
    Ok(())
}

#[test]
fn left_records_are_emitted_unmatched_by_a_later_right_record() -> Result<()> {
    // testLeftExpiredNonJoinedRecordsAreEmittedByTheRightProcessor.
    let j = Join::new(
        Kind::Left,
        JoinWindows::of_time_difference_and_grace(ms(100), ms(0)),
    )?;
    j.l(0, "A0", 1)?;
    j.l(1, "A1", 2)?;
    j.l(0, "A0-0", 3)?;
    assert!(j.take()?.is_empty());
    j.r(1, "a1".to_owned(), 3)?;
    assert_eq!(j.take()?, [kvt(1, "A1+a1", 3)]);
    j.r(2, "dummy".to_owned(), 401)?;
    assert_eq!(j.take()?, [kvt(0, "A0+null", 1), kvt(0, "A0-0+null", 3)]);
    j.l(2, "dummy", 402)?;
    assert_eq!(j.take()?, [kvt(2, "dummy+dummy", 402)]);
    Ok(())
}

#[test]
fn right_records_are_never_emitted_unmatched_by_a_left_join() -> Result<()> {
    // testRightNonJoinedRecordsAreNeverEmittedByTheLeftProcessor and
    // ...ByTheRightProcessor.
    for (windows, bump_left) in [
        (
            JoinWindows::of_time_difference_and_grace(ms(100), ms(0)),
            true,
        ),
        (
            JoinWindows::of_time_difference_without_grace(ms(100)),
            false,
        ),
    ] {
        let j = Join::new(Kind::Left, windows)?;
        j.r(0, "A0".to_owned(), 1)?;
        j.r(1, "A1".to_owned(), 2)?;
        j.r(0, "A0-0".to_owned(), 3)?;
        assert!(j.take()?.is_empty());
        j.l(1, "a1", 3)?;
        assert_eq!(j.take()?, [kvt(1, "a1+A1", 3)]);
        if bump_left {
            j.l(2, "dummy", 401)?;
            assert!(j.take()?.is_empty());
            j.r(2, "dummy".to_owned(), 402)?;
        } else {
            j.r(2, "dummy".to_owned(), 401)?;
            assert!(j.take()?.is_empty());
            j.l(2, "dummy", 402)?;
        }
        assert_eq!(j.take()?, [kvt(2, "dummy+dummy", 402)]);
    }
    Ok(())
}

#[test]
fn left_join_with_zero_after_emits_as_soon_as_stream_time_passes() -> Result<()> {
    // testLeftJoinedRecordsWithZeroAfterAreEmitted: before 100, after 0.
    let j = Join::new(
        Kind::Left,
        JoinWindows::of_time_difference_without_grace(ms(100)).after(ms(0)),
    )?;
    for (i, k) in KEYS.iter().enumerate() {
        j.l(*k, &format!("A{k}"), 1000 + i as i64)?;
    }
    assert_eq!(
        j.take()?,
        [
            kvt(0, "A0+null", 1000),
            kvt(1, "A1+null", 1001),
            kvt(2, "A2+null", 1002),
        ]
    );
    all_keys(&j, false, "a", 999)?;
    assert_eq!(
        j.take()?,
        [
            kvt(0, "A0+a0", 1000),
            kvt(1, "A1+a1", 1001),
            kvt(2, "A2+a2", 1002),
            kvt(3, "A3+a3", 1003),
        ]
    );
    all_keys(&j, false, "b", 1000)?;
    assert_eq!(
        j.take()?,
        [
            kvt(0, "A0+b0", 1000),
            kvt(1, "A1+b1", 1001),
            kvt(2, "A2+b2", 1002),
            kvt(3, "A3+b3", 1003),
        ]
    );
    all_keys(&j, false, "c", 1001)?;
    assert_eq!(
        j.take()?,
        [
            kvt(1, "A1+c1", 1001),
            kvt(2, "A2+c2", 1002),
            kvt(3, "A3+c3", 1003),
        ]
    );
    all_keys(&j, false, "d", 1002)?;
    assert_eq!(j.take()?, [kvt(2, "A2+d2", 1002), kvt(3, "A3+d3", 1003)]);
    all_keys(&j, false, "e", 1003)?;
    assert_eq!(j.take()?, [kvt(3, "A3+e3", 1003)]);
    all_keys(&j, false, "f", 1100)?;
    assert!(j.take()?.is_empty());
    Ok(())
}

/// Kafka's `runLeftJoin` and `runOuterJoin`: every record at time 0, then a
/// record at `bump` that closes nothing (the grace is long enough).
#[test]
fn left_and_outer_joins_keep_three_stores_and_emit_only_matches_in_the_window() -> Result<()> {
    for kind in [Kind::Left, Kind::Outer] {
        for backend in [None, Some(StoreBackend::InMemory)] {
            let windows = JoinWindows::of_time_difference_without_grace(ms(100));
            let mut joined = StreamJoined::with(Serdes::i32(), Serdes::string(), Serdes::string());
            if let Some(backend) = backend {
                joined = joined.with_backend(backend);
            }
            let three = topology(
                kind,
                windows,
                StreamJoined::with(Serdes::i32(), Serdes::string(), Serdes::string()),
                Serdes::string(),
            );
            assert_eq!(store_names(&three.0).len(), 3);
            let j = Join::with_config(
                kind,
                windows,
                joined,
                Serdes::string(),
                TestDriverConfig::new(),
            )?;
            for k in &KEYS[..2] {
                j.l(*k, &format!("A{k}"), 0)?;
            }
            assert!(j.take()?.is_empty());
            for k in &KEYS[..2] {
                j.r(*k, format!("a{k}"), 0)?;
            }
            assert_eq!(j.take()?, [kvt(0, "A0+a0", 0), kvt(1, "A1+a1", 0)]);
            for k in &KEYS[..3] {
                j.l(*k, &format!("B{k}"), 0)?;
            }
            assert_eq!(j.take()?, [kvt(0, "B0+a0", 0), kvt(1, "B1+a1", 0)]);
            all_keys(&j, false, "b", 0)?;
            assert_eq!(
                j.take()?,
                [
                    kvt(0, "A0+b0", 0),
                    kvt(0, "B0+b0", 0),
                    kvt(1, "A1+b1", 0),
                    kvt(1, "B1+b1", 0),
                    kvt(2, "B2+b2", 0),
                ]
            );
            all_keys(&j, true, "C", 0)?;
            assert_eq!(
                j.take()?,
                [
                    kvt(0, "C0+a0", 0),
                    kvt(0, "C0+b0", 0),
                    kvt(1, "C1+a1", 0),
                    kvt(1, "C1+b1", 0),
                    kvt(2, "C2+b2", 0),
                    kvt(3, "C3+b3", 0),
                ]
            );
            // Kafka bumps with 1000 (left) and 400 (outer): everything
            // joined, nothing left to emit.
            j.l(0, "dummy", if kind == Kind::Left { 1000 } else { 400 })?;
            assert!(j.take()?.is_empty());
        }
    }
    Ok(())
}

#[test]
fn unmatched_records_come_out_before_the_result_of_the_record_that_closed_them() -> Result<()> {
    // testOrdering (left and outer).
    for kind in [Kind::Left, Kind::Outer] {
        let j = Join::new(kind, JoinWindows::of_time_difference_without_grace(ms(100)))?;
        j.l(0, "A0", 0)?;
        j.l(1, "A1", 100)?;
        assert!(j.take()?.is_empty());
        j.r(1, "a1".to_owned(), 110)?;
        assert_eq!(j.take()?, [kvt(0, "A0+null", 0), kvt(1, "A1+a1", 110)]);
    }
    Ok(())
}

#[test]
fn left_join_waits_for_the_grace_period() -> Result<()> {
    // testGracePeriod.
    let j = Join::new(
        Kind::Left,
        JoinWindows::of_time_difference_and_grace(ms(100), ms(10)),
    )?;
    for k in &KEYS[..2] {
        j.l(*k, &format!("A{k}"), 0)?;
    }
    assert!(j.take()?.is_empty());
    all_keys(&j, false, "a", 101)?;
    assert!(j.take()?.is_empty());
    j.r(0, "dummy".to_owned(), 1201)?;
    assert_eq!(j.take()?, [kvt(0, "A0+null", 0), kvt(1, "A1+null", 0)]);
    Ok(())
}

/// The upper window bound of Kafka's left and outer `testWindowing`:
/// right records at 1000..1003 (`b` or `20+k`), left records after them.
fn upper_window_bound<VO: Display + Clone + Send + 'static>(
    j: &Join<VO>,
    right: impl Fn(i32) -> VO,
    shown: impl Fn(i32) -> String,
    unmatched_so_far: &[Kvt],
) -> Result<()> {
    for (i, k) in KEYS.iter().enumerate() {
        j.r(*k, right(*k), 1000 + i as i64)?;
    }
    assert_eq!(j.take()?, unmatched_so_far);
    let expect = |prefix: &str, ts: i64, keys: &[i32]| -> Vec<Kvt> {
        keys.iter()
            .map(|k| kvt(*k, &format!("{prefix}{k}+{}", shown(*k)), ts))
            .collect()
    };
    let lefts = |prefix: &str, ts: i64| -> Result<()> {
        for k in KEYS {
            j.l(k, &format!("{prefix}{k}"), ts)?;
        }
        Ok(())
    };
    lefts("B", 1100)?;
    assert_eq!(j.take()?, expect("B", 1100, &[0, 1, 2, 3]));
    lefts("C", 1101)?;
    assert_eq!(j.take()?, expect("C", 1101, &[1, 2, 3]));
    lefts("D", 1102)?;
    assert_eq!(j.take()?, expect("D", 1102, &[2, 3]));
    lefts("E", 1103)?;
    assert_eq!(j.take()?, expect("E", 1103, &[3]));
    lefts("F", 1104)?;
    assert!(j.take()?.is_empty());
    // Closes every unmatched left record: by timestamp, then key.
    j.l(0, "dummy", 1405)?;
    assert_eq!(
        j.take()?,
        [
            kvt(0, "C0+null", 1101),
            kvt(0, "D0+null", 1102),
            kvt(1, "D1+null", 1102),
            kvt(0, "E0+null", 1103),
            kvt(1, "E1+null", 1103),
            kvt(2, "E2+null", 1103),
            kvt(0, "F0+null", 1104),
            kvt(1, "F1+null", 1104),
            kvt(2, "F2+null", 1104),
            kvt(3, "F3+null", 1104),
        ]
    );
    Ok(())
}

/// The lower window bound: left records before the right records at
/// 1000..1003, arriving when their window has already ended in stream
/// time, so emitted at once when unmatched.
fn lower_window_bound<VO: Display + Clone + Send + 'static>(
    j: &Join<VO>,
    shown: impl Fn(i32) -> String,
    bump: i64,
) -> Result<()> {
    let row = |prefix: &str, ts: i64, k: i32, matched: bool| {
        if matched {
            kvt(k, &format!("{prefix}{k}+{}", shown(k)), 1000 + i64::from(k))
        } else {
            kvt(k, &format!("{prefix}{k}+null"), ts)
        }
    };
    for (i, prefix) in ["G", "H", "I", "J", "K"].iter().enumerate() {
        let ts = 899 + i as i64;
        for k in KEYS {
            j.l(k, &format!("{prefix}{k}"), ts)?;
        }
        let matched = i as i32; // keys below this one find their partner
        let expected: Vec<Kvt> = KEYS
            .iter()
            .map(|k| row(prefix, ts, *k, *k < matched))
            .collect();
        assert_eq!(j.take()?, expected, "left records {prefix} at {ts}");
    }
    j.l(0, "dummy", bump)?;
    assert_eq!(j.take()?, [kvt(0, "dummy+null", bump)]);
    Ok(())
}

#[test]
fn left_join_window_bounds_and_late_unmatched_records() -> Result<()> {
    // testWindowing with testUpperWindowBound and testLowerWindowBound.
    let j = Join::new(
        Kind::Left,
        JoinWindows::of_time_difference_without_grace(ms(100)),
    )?;
    for k in &KEYS[..2] {
        j.l(*k, &format!("A{k}"), 0)?;
    }
    assert!(j.take()?.is_empty());
    all_keys(&j, false, "a", 0)?;
    assert_eq!(j.take()?, [kvt(0, "A0+a0", 0), kvt(1, "A1+a1", 0)]);
    upper_window_bound(&j, |k| format!("b{k}"), |k| format!("b{k}"), &[])?;
    lower_window_bound(&j, |k| format!("b{k}"), 1203)
}

#[test]
fn left_join_does_not_emit_a_record_its_before_only_window_joined() -> Result<()> {
    // shouldNotEmitLeftJoinResultForAsymmetricWindow: before 0, after 100.
    let j = Join::new(
        Kind::Left,
        JoinWindows::of_time_difference_without_grace(ms(100)).before(ms(0)),
    )?;
    j.l(0, "A0", 0)?;
    j.l(1, "A1", 1)?;
    assert!(j.take()?.is_empty());
    j.r(0, "a0".to_owned(), 100)?;
    assert_eq!(j.take()?, [kvt(0, "A0+a0", 100)]);
    j.r(1, "a1".to_owned(), 102)?;
    assert_eq!(j.take()?, [kvt(1, "A1+null", 1)]);
    Ok(())
}

// ---------------------------------------------------------------------
// KStreamKStreamOuterJoinTest
// ---------------------------------------------------------------------

#[test]
#[allow(deprecated)]
fn eager_outer_join_emits_both_sides_unmatched_at_once() -> Result<()> {
    // testOuterJoinDuplicatesWithFixDisabledOldApi.
    let j = Join::long(Kind::Outer, JoinWindows::of(ms(100)).grace(ms(10)))?;
    j.l(0, "A0", 0)?;
    j.l(0, "A0-0", 0)?;
    j.r(0, 10, 0)?;
    j.r(1, 21, 0)?;
    assert_eq!(
        j.take()?,
        [
            kvt(0, "A0+null", 0),
            kvt(0, "A0-0+null", 0),
            kvt(0, "A0+10", 0),
            kvt(0, "A0-0+10", 0),
            kvt(1, "null+21", 0),
        ]
    );
    Ok(())
}

#[test]
fn outer_join_keeps_duplicates_and_emits_right_before_left_at_one_timestamp() -> Result<()> {
    // testOuterJoinDuplicates.
    let j = Join::long(
        Kind::Outer,
        JoinWindows::of_time_difference_and_grace(ms(100), ms(10)),
    )?;
    j.l(0, "A0", 0)?;
    j.l(0, "A0-0", 0)?;
    j.r(1, 11, 0)?;
    j.r(1, 12, 0)?;
    j.r(1, 10, 111)?;
    j.r(3, 100, 211)?;
    assert_eq!(
        j.take()?,
        [
            kvt(1, "null+11", 0),
            kvt(1, "null+12", 0),
            kvt(0, "A0+null", 0),
            kvt(0, "A0-0+null", 0),
        ]
    );
    j.l(2, "A2", 200)?;
    j.l(2, "A2-0", 200)?;
    j.r(2, 13, 201)?;
    j.r(2, 14, 201)?;
    assert_eq!(
        j.take()?,
        [
            kvt(2, "A2+13", 201),
            kvt(2, "A2-0+13", 201),
            kvt(2, "A2+14", 201),
            kvt(2, "A2-0+14", 201),
        ]
    );
    j.r(3, 100, 1500)?;
    assert_eq!(j.take()?, [kvt(1, "null+10", 111), kvt(3, "null+100", 211)]);
    Ok(())
}

#[test]
fn outer_join_emits_expired_left_records_from_either_side() -> Result<()> {
    // testLeftExpiredNonJoinedRecordsAreEmittedByTheLeftProcessor and
    // ...ByTheRightProcessor.
    for bump_left in [true, false] {
        let windows = if bump_left {
            JoinWindows::of_time_difference_without_grace(ms(100))
        } else {
            JoinWindows::of_time_difference_and_grace(ms(100), ms(0))
        };
        let j = Join::long(Kind::Outer, windows)?;
        j.l(0, "A0", 1)?;
        j.l(1, "A1", 2)?;
        j.l(0, "A0-0", 3)?;
        assert!(j.take()?.is_empty());
        j.r(1, 11, 3)?;
        assert_eq!(j.take()?, [kvt(1, "A1+11", 3)]);
        if bump_left {
            j.l(2, "dummy", 401)?;
        } else {
            j.r(2, 100, 401)?;
        }
        assert_eq!(j.take()?, [kvt(0, "A0+null", 1), kvt(0, "A0-0+null", 3)]);
        if bump_left {
            j.r(2, 100, 401)?;
            assert_eq!(j.take()?, [kvt(2, "dummy+100", 401)]);
        } else {
            j.l(2, "dummy", 402)?;
            assert_eq!(j.take()?, [kvt(2, "dummy+100", 402)]);
        }
    }
    Ok(())
}

#[test]
fn outer_join_emits_expired_right_records_from_either_side() -> Result<()> {
    // testRightExpiredNonJoinedRecordsAreEmittedByTheLeftProcessor and
    // ...ByTheRightProcessor.
    for bump_left in [true, false] {
        let windows = if bump_left {
            JoinWindows::of_time_difference_without_grace(ms(100))
        } else {
            JoinWindows::of_time_difference_and_grace(ms(100), ms(0))
        };
        let j = Join::long(Kind::Outer, windows)?;
        j.r(0, 10, 1)?;
        j.r(1, 11, 2)?;
        j.r(0, 12, 3)?;
        assert!(j.take()?.is_empty());
        j.l(1, "A1", 3)?;
        assert_eq!(j.take()?, [kvt(1, "A1+11", 3)]);
        if bump_left {
            j.l(2, "dummy", 401)?;
        } else {
            j.r(2, 100, 401)?;
        }
        assert_eq!(j.take()?, [kvt(0, "null+10", 1), kvt(0, "null+12", 3)]);
        if bump_left {
            j.r(2, 100, 402)?;
        } else {
            j.l(2, "dummy", 402)?;
        }
        assert_eq!(j.take()?, [kvt(2, "dummy+100", 402)]);
    }
    Ok(())
}

#[test]
fn outer_join_waits_for_the_grace_period() -> Result<()> {
    // testGracePeriod.
    let j = Join::long(
        Kind::Outer,
        JoinWindows::of_time_difference_and_grace(ms(100), ms(10)),
    )?;
    j.l(0, "A0", 0)?;
    j.r(1, 11, 0)?;
    assert!(j.take()?.is_empty());
    j.l(1, "A1", 101)?;
    j.r(0, 10, 101)?;
    assert!(j.take()?.is_empty());
    j.r(0, 100, 112)?;
    assert_eq!(j.take()?, [kvt(1, "null+11", 0), kvt(0, "A0+null", 0)]);
    Ok(())
}

#[test]
fn outer_join_closes_each_side_by_its_own_end_of_an_asymmetric_window() -> Result<()> {
    // testEmitAllNonJoinedResultsForAsymmetricWindow: before 5, after 20.
    let j = Join::long(
        Kind::Outer,
        JoinWindows::of_time_difference_without_grace(ms(5)).after(ms(20)),
    )?;
    j.l(0, "A0", 29)?;
    assert!(j.take()?.is_empty());
    j.l(1, "A1", 30)?;
    assert!(j.take()?.is_empty());
    j.r(2, 12, 31)?;
    assert!(j.take()?.is_empty());
    j.r(3, 13, 36)?;
    assert!(j.take()?.is_empty());
    j.r(4, 14, 37)?;
    assert_eq!(j.take()?, [kvt(2, "null+12", 31)]);
    j.r(5, 15, 50)?;
    assert_eq!(
        j.take()?,
        [
            kvt(0, "A0+null", 29),
            kvt(3, "null+13", 36),
            kvt(4, "null+14", 37),
        ]
    );
    Ok(())
}

#[test]
fn outer_join_window_bounds_and_late_unmatched_records() -> Result<()> {
    // testWindowing with its upper and lower bounds.
    let j = Join::long(
        Kind::Outer,
        JoinWindows::of_time_difference_without_grace(ms(100)),
    )?;
    for k in &KEYS[..2] {
        j.l(*k, &format!("A{k}"), 0)?;
    }
    assert!(j.take()?.is_empty());
    for k in KEYS {
        j.r(k, i64::from(k) + 10, 0)?;
    }
    assert_eq!(j.take()?, [kvt(0, "A0+10", 0), kvt(1, "A1+11", 0)]);
    // The right records 12 and 13 at 0 close when stream time reaches 1002.
    upper_window_bound(
        &j,
        |k| i64::from(k) + 20,
        |k| (k + 20).to_string(),
        &[kvt(2, "null+12", 0), kvt(3, "null+13", 0)],
    )?;
    lower_window_bound(&j, |k| (k + 20).to_string(), 1103)
}

#[test]
fn outer_join_does_not_emit_records_an_asymmetric_window_joined() -> Result<()> {
    // testShouldNotEmitLeftJoinResultForAsymmetricBeforeWindow.
    let j = Join::long(
        Kind::Outer,
        JoinWindows::of_time_difference_without_grace(ms(100)).before(ms(0)),
    )?;
    j.l(0, "A0", 0)?;
    j.l(1, "A1", 1)?;
    assert!(j.take()?.is_empty());
    j.r(0, 10, 100)?;
    assert_eq!(j.take()?, [kvt(0, "A0+10", 100)]);
    j.r(1, 11, 102)?;
    assert_eq!(j.take()?, [kvt(1, "A1+null", 1)]);
    j.r(2, 12, 103)?;
    assert_eq!(j.take()?, [kvt(1, "null+11", 102)]);
    j.l(2, "A2", 103)?;
    assert_eq!(j.take()?, [kvt(2, "A2+12", 103)]);

    // testShouldNotEmitLeftJoinResultForAsymmetricAfterWindow.
    let j = Join::long(
        Kind::Outer,
        JoinWindows::of_time_difference_without_grace(ms(100)).after(ms(0)),
    )?;
    j.l(0, "A0", 0)?;
    j.l(1, "A1", 1)?;
    assert_eq!(j.take()?, [kvt(0, "A0+null", 0)]);
    j.r(1, 11, 1)?;
    assert_eq!(j.take()?, [kvt(1, "A1+11", 1)]);
    j.r(2, 12, 101)?;
    assert!(j.take()?.is_empty());
    j.r(3, 13, 101)?;
    assert!(j.take()?.is_empty());
    j.l(2, "A2", 201)?;
    assert_eq!(j.take()?, [kvt(2, "A2+12", 201)]);
    Ok(())
}

fn header(value: u8) -> Headers {
    let mut headers = Headers::new();
    headers.add("h", Some(bytes::Bytes::from(vec![value])));
    headers
}

#[test]
fn results_carry_the_headers_of_the_record_being_processed() -> Result<()> {
    // testShouldForwardCurrentHeaders.
    let j = Join::long(
        Kind::Outer,
        JoinWindows::of_time_difference_and_grace(ms(100), ms(10)),
    )?;
    j.left
        .pipe_record(TestRecord::new(0, "A0".to_owned(), 0).with_headers(header(1)))?;
    j.right
        .pipe_record(TestRecord::new(1, 10, 0).with_headers(header(2)))?;
    j.right
        .pipe_record(TestRecord::new(3, 100, 211).with_headers(header(3)))?;
    let got: Vec<_> = j
        .out
        .read_records_to_list()?
        .into_iter()
        .map(|r| (r.key, r.value, r.timestamp, r.headers))
        .collect();
    assert_eq!(
        got,
        [
            (Some(1), Some("null+10".to_owned()), 0, header(3)),
            (Some(0), Some("A0+null".to_owned()), 0, header(3)),
        ]
    );
    j.left
        .pipe_record(TestRecord::new(2, "A2".to_owned(), 200).with_headers(header(4)))?;
    j.right
        .pipe_record(TestRecord::new(2, 12, 200).with_headers(header(5)))?;
    let got: Vec<_> = j
        .out
        .read_records_to_list()?
        .into_iter()
        .map(|r| (r.key, r.value, r.timestamp, r.headers))
        .collect();
    assert_eq!(got, [(Some(2), Some("A2+12".to_owned()), 200, header(5))]);
    Ok(())
}

// ---------------------------------------------------------------------
// Null keys (KIP-962), self-joins
// ---------------------------------------------------------------------

#[test]
fn null_keys_are_padded_at_once_on_outer_sides_and_dropped_elsewhere() -> Result<()> {
    let null_left = |j: &Join<String>, v: &str, ts| {
        j.left
            .pipe_record(TestRecord::from_parts(None, Some(v.to_owned()), ts))
    };
    let null_right = |j: &Join<String>, v: &str, ts| {
        j.right
            .pipe_record(TestRecord::from_parts(None, Some(v.to_owned()), ts))
    };
    let windows = JoinWindows::of_time_difference_and_grace(ms(100), ms(10));

    let j = Join::new(Kind::Inner, windows)?;
    null_left(&j, "A", 5)?;
    null_right(&j, "a", 6)?;
    assert!(j.take()?.is_empty());
    assert_eq!(j.metrics.dropped_records(), 2);

    let j = Join::new(Kind::Left, windows)?;
    null_left(&j, "A", 5)?;
    assert_eq!(j.take()?, [(None, "A+null".to_owned(), 5)]);
    null_right(&j, "a", 6)?;
    assert!(j.take()?.is_empty());
    assert_eq!(j.metrics.dropped_records(), 1);
    // A null value is dropped on an outer side too.
    j.left.pipe_record(TestRecord::from_parts(None, None, 7))?;
    j.left
        .pipe_record(TestRecord::from_parts(Some(1), None, 7))?;
    assert!(j.take()?.is_empty());
    assert_eq!(j.metrics.dropped_records(), 3);

    let j = Join::new(Kind::Outer, windows)?;
    null_left(&j, "A", 5)?;
    null_right(&j, "a", 6)?;
    assert_eq!(
        j.take()?,
        [
            (None, "A+null".to_owned(), 5),
            (None, "null+a".to_owned(), 6)
        ]
    );
    assert_eq!(j.metrics.dropped_records(), 0);
    Ok(())
}

#[test]
fn a_null_key_record_moves_stream_time_and_closes_nothing_itself() -> Result<()> {
    let j = Join::new(
        Kind::Left,
        JoinWindows::of_time_difference_without_grace(ms(10)),
    )?;
    j.l(0, "A", 0)?;
    // Stream time moves to 100, but the null-key record emits no held one.
    j.left
        .pipe_record(TestRecord::from_parts(None, Some("N".to_owned()), 100))?;
    assert_eq!(j.take()?, [(None, "N+null".to_owned(), 100)]);
    // A record at 50 is behind stream time: A is emitted only by a record
    // at stream time; the record at 50 itself is padded at once (its window
    // ends at 60, before stream time).
    j.l(1, "B", 50)?;
    assert_eq!(j.take()?, [kvt(1, "B+null", 50)]);
    j.l(2, "C", 100)?;
    assert_eq!(j.take()?, [kvt(0, "A+null", 0)]);
    Ok(())
}

/// `(key, value, timestamp)` of a record of String keys and values.
type StringKvt = (Option<String>, Option<String>, i64);

/// Pipes `(key, value, ts)` records of Kafka's self-join tests into a
/// self-join of one topic, and into a join of two topics fed the same
/// records (left first, then right); the outputs must be equal.
fn self_join_matches_a_join_of_two_copies(
    windows: JoinWindows,
    records: &[(&str, &str, i64)],
) -> Result<()> {
    let strings = || Consumed::with(Serdes::string(), Serdes::string());
    let joined = || StreamJoined::with(Serdes::string(), Serdes::string(), Serdes::string());
    let out = || Produced::with(Serdes::string(), Serdes::string());

    let builder = StreamsBuilder::new();
    let stream = builder.stream::<String, String>("in", strings());
    stream
        .join(&stream, |a, b| format!("{a}{b}"), windows, joined())
        .to("out", out());
    let self_join = TopologyTestDriver::new(builder.build()?)?;
    let input = self_join.create_input_topic("in", Serdes::string(), Serdes::string());

    let builder = StreamsBuilder::new();
    let left = builder.stream::<String, String>("l", strings());
    let right = builder.stream::<String, String>("r", strings());
    left.join(&right, |a, b| format!("{a}{b}"), windows, joined())
        .to("out", out());
    let two = TopologyTestDriver::new(builder.build()?)?;
    let (l, r) = (
        two.create_input_topic("l", Serdes::string(), Serdes::string()),
        two.create_input_topic("r", Serdes::string(), Serdes::string()),
    );

    for (k, v, ts) in records {
        input.pipe_input_with_timestamp((*k).to_owned(), (*v).to_owned(), *ts)?;
        l.pipe_input_with_timestamp((*k).to_owned(), (*v).to_owned(), *ts)?;
        r.pipe_input_with_timestamp((*k).to_owned(), (*v).to_owned(), *ts)?;
    }
    let read = |driver: &TopologyTestDriver| -> Result<Vec<StringKvt>> {
        Ok(driver
            .create_output_topic("out", Serdes::string(), Serdes::string())
            .read_records_to_list()?
            .into_iter()
            .map(|r| (r.key, r.value, r.timestamp))
            .collect())
    };
    let expected = read(&two)?;
    assert!(!expected.is_empty());
    assert_eq!(read(&self_join)?, expected);
    Ok(())
}

#[test]
fn self_joins_match_a_join_of_two_copies_of_the_stream() -> Result<()> {
    // KStreamKStreamSelfJoinTest.
    let in_order = [
        ("A", "1", 1),
        ("B", "1", 2),
        ("A", "2", 3),
        ("B", "2", 4),
        ("B", "3", 5),
    ];
    self_join_matches_a_join_of_two_copies(
        JoinWindows::of_time_difference_without_grace(ms(100)),
        &in_order,
    )?;
    self_join_matches_a_join_of_two_copies(
        JoinWindows::of_time_difference_and_grace(Duration::from_secs(11), Duration::from_secs(10)),
        &[
            ("A", "1", 0),
            ("A", "2", 11_000),
            ("B", "1", 12_000),
            ("A", "3", 13_000),
            ("A", "4", 15_000),
            ("C", "1", 16_000),
            ("D", "1", 17_000),
            ("A", "5", 30_000),
        ],
    )?;
    self_join_matches_a_join_of_two_copies(
        JoinWindows::of_time_difference_without_grace(Duration::from_secs(10)),
        &[
            ("A", "1", 0),
            ("A", "2", 9_999),
            ("B", "1", 11_000),
            ("A", "3", 13_000),
            ("A", "4", 15_000),
            ("C", "1", 16_000),
            ("D", "1", 17_000),
            ("A", "5", 30_000),
            ("A", "5", 6_000),
        ],
    )
}

#[test]
fn a_self_join_joins_each_record_with_itself_and_its_neighbours() -> Result<()> {
    let builder = StreamsBuilder::new();
    let stream =
        builder.stream::<String, String>("in", Consumed::with(Serdes::string(), Serdes::string()));
    stream
        .join(
            &stream,
            |a, b| format!("{a}{b}"),
            JoinWindows::of_time_difference_without_grace(ms(100)),
            StreamJoined::new(),
        )
        .to("out", Produced::with(Serdes::string(), Serdes::string()));
    let driver = TopologyTestDriver::new(builder.build()?)?;
    let input = driver.create_input_topic("in", Serdes::string(), Serdes::string());
    input.pipe_input_with_timestamp("A".to_owned(), "1".to_owned(), 1)?;
    input.pipe_input_with_timestamp("A".to_owned(), "2".to_owned(), 3)?;
    let out = driver.create_output_topic("out", Serdes::string(), Serdes::string());
    // 1 joins itself; 2 joins 1 from the left side, then 1 and itself from
    // the right side.
    assert_eq!(
        out.read_values_to_list()?,
        [
            Some("11".to_owned()),
            Some("21".to_owned()),
            Some("12".to_owned()),
            Some("22".to_owned()),
        ]
    );
    Ok(())
}

#[test]
fn late_records_are_dropped_from_their_store_but_still_join() -> Result<()> {
    let j = Join::new(
        Kind::Inner,
        JoinWindows::of_time_difference_without_grace(ms(10)),
    )?;
    j.r(0, "old".to_owned(), 95)?;
    j.l(0, "new", 100)?;
    assert_eq!(j.take()?, [kvt(0, "new+old", 100)]);
    // The left store keeps records less than 20 ms (size + grace) behind
    // its latest (100), as Kafka's: a left record at 80 is late for it.
    j.l(0, "kept", 81)?;
    assert_eq!(j.metrics.dropped_records(), 0);
    assert!(j.take()?.is_empty());
    j.l(0, "late", 80)?;
    assert_eq!(j.metrics.dropped_records(), 1);
    assert_eq!(j.driver.dropped_records(), 1);
    // It was still looked up (the right record at 95 is outside 80 ± 10).
    assert!(j.take()?.is_empty());
    // It was not kept: a right record at 85 finds only the one at 81.
    j.r(0, "r85".to_owned(), 85)?;
    assert_eq!(j.take()?, [kvt(0, "kept+r85", 85)]);
    Ok(())
}

#[test]
fn zero_sized_windows_without_grace_keep_nothing_as_in_kafka() -> Result<()> {
    // Kafka's stores (retention before + after + grace = 0) keep nothing,
    // so such a join never matches; a left join emits each record alone.
    let j = Join::new(
        Kind::Left,
        JoinWindows::of_time_difference_without_grace(ms(0)),
    )?;
    j.l(0, "A", 10)?;
    j.r(0, "a".to_owned(), 10)?;
    j.r(0, "b".to_owned(), 11)?;
    j.l(0, "B", 11)?;
    j.l(1, "C", 12)?;
    assert_eq!(j.take()?, [kvt(0, "A+null", 10), kvt(0, "B+null", 11)]);
    Ok(())
}

// ---------------------------------------------------------------------
// Model check
// ---------------------------------------------------------------------

/// One input record of the model check.
#[derive(Debug, Clone)]
struct Event {
    left: bool,
    key: Option<i32>,
    value: Option<String>,
    timestamp: i64,
}

/// A record held by the model as unmatched.
#[derive(Debug, Clone)]
struct ModelHeld {
    timestamp: i64,
    left: bool,
    key: i32,
    value: String,
    arrival: usize,
}

/// Kafka's stream–stream join rules, restated on plain vectors: every
/// record kept in a list per side, filtered at lookup time; the held
/// unmatched records in a list sorted at each flush.
#[derive(Debug)]
struct Model {
    kind: Kind,
    before: i64,
    after: i64,
    grace: i64,
    /// The deprecated eager windows: no outer-join store.
    eager: bool,
    /// Per side (0 left, 1 right): `(key, timestamp, value)` in arrival
    /// order.
    stores: [Vec<(i32, i64, String)>; 2],
    store_time: [Option<i64>; 2],
    stream_time: Option<i64>,
    min_time: Option<i64>,
    held: Vec<ModelHeld>,
    arrivals: usize,
    out: Vec<Kvt>,
    dropped: u64,
}

impl Model {
    fn new(kind: Kind, before: i64, after: i64, grace: i64, eager: bool) -> Self {
        Self {
            kind,
            before,
            after,
            grace,
            eager,
            stores: [Vec::new(), Vec::new()],
            store_time: [None, None],
            stream_time: None,
            min_time: None,
            held: Vec::new(),
            arrivals: 0,
            out: Vec::new(),
            dropped: 0,
        }
    }

    /// A record stays in its side's store while `ts > store_time − (before
    /// + after + grace)`, as in Kafka.
    fn kept(&self, timestamp: i64, store_time: i64) -> bool {
        timestamp > store_time - (self.before + self.after + self.grace)
    }

    fn outer(&self, left: bool) -> bool {
        match self.kind {
            Kind::Inner => false,
            Kind::Left => left,
            Kind::Outer => true,
        }
    }

    fn buffered(&self) -> bool {
        self.kind != Kind::Inner && !self.eager
    }

    fn show(left: bool, this: &str, other: Option<&str>) -> String {
        let other = other.unwrap_or("null");
        if left {
            format!("{this}+{other}")
        } else {
            format!("{other}+{this}")
        }
    }

    /// The record on its side: kept in the side's store, then joined. As
    /// in Kafka's window store, every keyed record moves the store's time,
    /// one with a null value too (it is then not kept).
    fn step(&mut self, e: &Event) {
        let side = usize::from(!e.left);
        if let Some(key) = e.key {
            let store_time = self.store_time[side].map_or(e.timestamp, |t| t.max(e.timestamp));
            if !self.kept(e.timestamp, store_time) {
                self.dropped += 1;
            } else if let Some(value) = &e.value {
                self.stores[side].push((key, e.timestamp, value.clone()));
            }
            self.store_time[side] = Some(store_time);
        }
        self.join(e);
    }

    fn join(&mut self, e: &Event) {
        let ts = e.timestamp;
        let stream_time = self.stream_time.map_or(ts, |t| t.max(ts));
        self.stream_time = Some(stream_time);
        let outer = self.outer(e.left);
        let (key, value) = match (e.key, &e.value) {
            (None, Some(value)) if outer => {
                self.out.push((None, Self::show(e.left, value, None), ts));
                return;
            }
            (Some(key), Some(value)) => (key, value.clone()),
            _ => {
                self.dropped += 1;
                return;
            }
        };
        if ts == stream_time && self.buffered() {
            self.flush(e.left);
        }
        let (before, after) = if e.left {
            (self.before, self.after)
        } else {
            (self.after, self.before)
        };
        let (from, to) = ((ts - before).max(0), (ts + after).max(0));
        let other = usize::from(e.left);
        let other_time = self.store_time[other];
        let mut partners: Vec<(i64, String)> = self.stores[other]
            .iter()
            .filter(|(k, t, _)| {
                *k == key && (from..=to).contains(t) && other_time.is_none_or(|o| self.kept(*t, o))
            })
            .map(|(_, t, v)| (*t, v.clone()))
            .collect();
        partners.sort_by_key(|(t, _)| *t);
        if partners.is_empty() {
            if !outer {
                return;
            }
            if !self.buffered() || to < stream_time {
                self.out
                    .push((Some(key), Self::show(e.left, &value, None), ts));
            } else {
                self.min_time = Some(self.min_time.map_or(ts, |m| m.min(ts)));
                self.arrivals += 1;
                self.held.push(ModelHeld {
                    timestamp: ts,
                    left: e.left,
                    key,
                    value,
                    arrival: self.arrivals,
                });
            }
            return;
        }
        for (t, other_value) in partners {
            // A partner held as unmatched has matched now.
            self.held
                .retain(|h| !(h.timestamp == t && h.left != e.left && h.key == key));
            self.out.push((
                Some(key),
                Self::show(e.left, &value, Some(&other_value)),
                ts.max(t),
            ));
        }
    }

    /// Emits the held records whose window has closed, as Kafka's
    /// `emitNonJoinedOuterRecords`.
    fn flush(&mut self, left: bool) {
        let Some(stream_time) = self.stream_time else {
            return;
        };
        let this_after = if left { self.after } else { self.before };
        if let Some(min) = self.min_time {
            if min + this_after + self.grace >= stream_time {
                return;
            }
        }
        self.min_time = None;
        // The store's order: timestamp, right before left, key, arrival.
        self.held
            .sort_by_key(|h| (h.timestamp, h.left, h.key, h.arrival));
        let (mut left_open, mut right_open) = (false, false);
        let mut emitted = Vec::new();
        for h in &self.held {
            self.min_time = Some(h.timestamp);
            if left_open && right_open {
                break;
            }
            let lookback = if h.left { self.after } else { self.before };
            if h.timestamp + lookback + self.grace >= stream_time {
                if h.left {
                    left_open = true;
                } else {
                    right_open = true;
                }
                continue;
            }
            self.out
                .push((Some(h.key), Self::show(h.left, &h.value, None), h.timestamp));
            emitted.push((h.timestamp, h.left, h.key));
        }
        self.held
            .retain(|h| !emitted.contains(&(h.timestamp, h.left, h.key)));
    }
}

/// Random windows: `(before, after, grace, eager)`, `before + after ≥ 0`.
fn windows() -> impl Strategy<Value = (i64, i64, i64, bool)> {
    (
        -5i64..25,
        -5i64..25,
        0i64..15,
        proptest::bool::weighted(0.15),
    )
        .prop_filter("before + after must not be negative", |(b, a, _, _)| {
            b + a >= 0
        })
}

/// Random records: up to 4 keys (sometimes null), values sometimes null,
/// timestamps drifting upwards with out-of-order ones.
fn events() -> impl Strategy<Value = Vec<Event>> {
    proptest::collection::vec(
        (
            any::<bool>(),
            proptest::option::weighted(0.93, 0i32..4),
            proptest::bool::weighted(0.95),
            0i64..12,
            -40i64..6,
        ),
        1..60,
    )
    .prop_map(|steps| {
        let mut base = 0i64;
        steps
            .into_iter()
            .enumerate()
            .map(|(i, (left, key, has_value, advance, jitter))| {
                base += advance;
                Event {
                    left,
                    key,
                    value: has_value.then(|| format!("{}{i}", if left { 'L' } else { 'R' })),
                    timestamp: (base + jitter).max(0),
                }
            })
            .collect()
    })
}

fn model_windows(before: i64, after: i64, grace: i64, eager: bool) -> JoinWindows {
    #[allow(deprecated)]
    let windows = if eager {
        JoinWindows::of(ms(0)).grace(ms(grace as u64))
    } else {
        JoinWindows::of_time_difference_and_grace(ms(0), ms(grace as u64))
    };
    windows.with_before_ms(before).with_after_ms(after)
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![Just(Kind::Inner), Just(Kind::Left), Just(Kind::Outer)]
}

/// Runs `events` through the join of two topics and through the model.
fn check_two_streams(
    kind: Kind,
    (before, after, grace, eager): (i64, i64, i64, bool),
    events: &[Event],
) -> std::result::Result<(), TestCaseError> {
    let windows = model_windows(before, after, grace, eager);
    let j = Join::new(kind, windows).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let mut model = Model::new(kind, before, after, grace, eager);
    for e in events {
        let record = TestRecord::from_parts(e.key, e.value.clone(), e.timestamp);
        if e.left {
            j.left.pipe_record(record)
        } else {
            j.right.pipe_record(record)
        }
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
        model.step(e);
    }
    prop_assert_eq!(
        j.take().map_err(|e| TestCaseError::fail(e.to_string()))?,
        model.out
    );
    prop_assert_eq!(j.metrics.dropped_records(), model.dropped);
    Ok(())
}

/// Runs `events` (their side ignored) through a self-join and through the
/// model, each record reaching the left side then the right.
fn check_self_join(
    kind: Kind,
    (before, after, grace, eager): (i64, i64, i64, bool),
    events: &[Event],
) -> std::result::Result<(), TestCaseError> {
    let fail = |e: StreamsError| TestCaseError::fail(e.to_string());
    let builder = StreamsBuilder::new();
    let stream =
        builder.stream::<i32, String>(LEFT, Consumed::with(Serdes::i32(), Serdes::string()));
    let windows = model_windows(before, after, grace, eager);
    let joined = || StreamJoined::new();
    let out = match kind {
        Kind::Inner => stream.join(&stream, |l, r| format!("{l}+{r}"), windows, joined()),
        Kind::Left => stream.left_join(
            &stream,
            |l, r| format!("{l}+{}", show(r)),
            windows,
            joined(),
        ),
        Kind::Outer => stream.outer_join(
            &stream,
            |l, r| format!("{}+{}", show(l), show(r)),
            windows,
            joined(),
        ),
    };
    out.to(OUT, Produced::with(Serdes::i32(), Serdes::string()));
    let driver = TopologyTestDriver::new(builder.build().map_err(fail)?).map_err(fail)?;
    let input = driver.create_input_topic(LEFT, Serdes::i32(), Serdes::string());
    let mut model = Model::new(kind, before, after, grace, eager);
    for e in events {
        input
            .pipe_record(TestRecord::from_parts(e.key, e.value.clone(), e.timestamp))
            .map_err(fail)?;
        for left in [true, false] {
            model.step(&Event { left, ..e.clone() });
        }
    }
    let got: Vec<Kvt> = driver
        .create_output_topic(OUT, Serdes::i32(), Serdes::string())
        .read_records_to_list()
        .map_err(fail)?
        .into_iter()
        .map(|r| (r.key, r.value.unwrap_or_default(), r.timestamp))
        .collect();
    prop_assert_eq!(got, model.out);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn joins_match_the_model_of_kafkas_rules(kind in kind(), windows in windows(), events in events()) {
        check_two_streams(kind, windows, &events)?;
    }

    #[test]
    fn self_joins_match_the_model_of_kafkas_rules(kind in kind(), windows in windows(), events in events()) {
        check_self_join(kind, windows, &events)?;
    }
}
