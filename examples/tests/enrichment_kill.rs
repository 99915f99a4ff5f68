//! The `enrichment` binary under `exactly_once_v2`, killed with SIGKILL
//! again and again over one data dir and restarted each time, then left to
//! finish: read `read_committed` from the broker's data dir, every join
//! result is there exactly once and none is lost (the stream–table and
//! stream–global-table results, the windowed stream–stream results, and the
//! foreign-key join's final table), as the model of the input says.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use broker_embedded::{Broker, BrokerConfig};
use examples::enrichment::{Dataset, BY_CUSTOMER_TOPIC, ENRICHED_TOPIC, PAID_TOPIC};

/// Enough orders for kills to land mid-work in a debug build (a run of
/// them takes about nine seconds).
const ORDERS: usize = 20_000;
const KILLS: usize = 6;
const FINISH_TIMEOUT: Duration = Duration::from_secs(300);

/// Every committed record of `topic`, as (key, value) text.
fn committed(
    runtime: &tokio::runtime::Runtime,
    dir: &Path,
    topic: &str,
) -> Vec<(String, Option<String>)> {
    runtime.block_on(async {
        let broker = Broker::open(&dir.join("data").join("broker"), BrokerConfig::default())
            .await
            .unwrap();
        let records = examples::read_committed(&broker, topic, Duration::from_secs(60))
            .await
            .unwrap();
        broker.close().await.unwrap();
        records
            .into_iter()
            .map(|r| {
                let text = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
                (
                    text(r.key.as_deref().unwrap()),
                    r.value.as_deref().map(text),
                )
            })
            .collect()
    })
}

#[test]
fn every_join_result_exactly_once_after_sigkills() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    examples::kill_loop::kill_then_finish(dir.path(), KILLS, (500, 2_500), FINISH_TIMEOUT, |log| {
        Command::new(env!("CARGO_BIN_EXE_enrichment"))
            .arg("--data-dir")
            .arg(&data)
            .args([
                "--orders",
                &ORDERS.to_string(),
                "--guarantee",
                "exactly_once_v2",
                "--commit-interval-ms",
                "100",
                "--quiet",
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
    })
    .unwrap();

    let expected = Dataset::new(ORDERS).expected();
    let sorted = |mut rows: Vec<(String, Option<String>)>| {
        rows.sort();
        rows.into_iter()
            .map(|(k, v)| (k, v.expect("a stream join result is never a tombstone")))
            .collect::<Vec<_>>()
    };
    let enriched = sorted(committed(&runtime, dir.path(), ENRICHED_TOPIC));
    assert_eq!(
        enriched.len(),
        expected.enriched.len(),
        "a stream-table result was lost or repeated"
    );
    assert_eq!(enriched, expected.enriched);
    let paid = sorted(committed(&runtime, dir.path(), PAID_TOPIC));
    assert_eq!(
        paid.len(),
        expected.paid.len(),
        "a stream-stream result was lost or repeated"
    );
    assert_eq!(paid, expected.paid);
    let mut table = BTreeMap::new();
    for (key, value) in committed(&runtime, dir.path(), BY_CUSTOMER_TOPIC) {
        match value {
            Some(v) => table.insert(key, v),
            None => table.remove(&key),
        };
    }
    assert_eq!(table, expected.by_customer);
}
