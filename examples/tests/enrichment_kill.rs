//! The `enrichment` binary under `exactly_once_v2`, killed with SIGKILL
//! again and again over one data dir and restarted each time, then left to
//! finish: read `read_committed` from the broker's data dir, every join
//! result is there exactly once and none is lost (the stream–table and
//! stream–global-table results, the windowed stream–stream results, and the
//! foreign-key join's final table), as the model of the input says.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use broker_embedded::{Broker, BrokerConfig};
use examples::enrichment::{Dataset, BY_CUSTOMER_TOPIC, ENRICHED_TOPIC, PAID_TOPIC};

/// Enough orders for kills to land mid-work in a debug build (a run of
/// them takes about nine seconds).
const ORDERS: usize = 20_000;
const KILLS: usize = 6;
const FINISH_TIMEOUT: Duration = Duration::from_secs(300);

fn spawn(dir: &Path, index: usize) -> Child {
    let log = File::create(dir.join(format!("run-{index}.log"))).unwrap();
    Command::new(env!("CARGO_BIN_EXE_enrichment"))
        .arg("--data-dir")
        .arg(dir.join("data"))
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
        .unwrap()
}

fn log_tail(dir: &Path, index: usize) -> String {
    let log = std::fs::read_to_string(dir.join(format!("run-{index}.log"))).unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(20).collect();
    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
}

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
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(7, |d| d.subsec_nanos() as u64);
    println!("kill seed {seed}");
    let mut killed_mid_work = 0;
    for kill in 0..KILLS {
        let mut child = spawn(dir.path(), kill);
        // From half a second (mid-load) to three seconds (mid-processing).
        let delay = 500
            + (seed
                .wrapping_mul(kill as u64 + 1)
                .wrapping_mul(2_654_435_761)
                % 2_500);
        std::thread::sleep(Duration::from_millis(delay));
        if let Some(status) = child.try_wait().unwrap() {
            assert!(
                status.success(),
                "run {kill} failed:\n{}",
                log_tail(dir.path(), kill)
            );
            println!("run {kill} finished before its kill");
            continue;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        killed_mid_work += 1;
        println!("killed run {kill} after {delay} ms");
    }
    let mut child = spawn(dir.path(), KILLS);
    let deadline = Instant::now() + FINISH_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!(
                "the last run did not finish:\n{}",
                log_tail(dir.path(), KILLS)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        status.success(),
        "the last run failed:\n{}",
        log_tail(dir.path(), KILLS)
    );
    assert!(
        killed_mid_work > 0,
        "no kill landed while the binary was working"
    );

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
