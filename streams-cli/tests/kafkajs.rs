//! `streams serve` with kafkajs (npm), a Kafka client written in JavaScript by people who
//! never saw this broker: its admin creates topics, an idempotent producer sends a gzip batch
//! with acks=-1, two consumers of one group share the partitions (and one takes over when
//! the other leaves), a transactional producer commits, aborts, sends offsets and is fenced,
//! and a consumer recovers from a committed offset below the log start. The script is
//! `tests/clients/kafkajs/check.js`; it prints JSON that this test checks.
//!
//! kafkajs is installed with `npm ci` (its version pinned by `package-lock.json`) into a cache
//! dir under the target dir the first time. Without node or npm the test is skipped with a
//! message, except under `CI=true`, where that is a failure.

mod common;
mod tools;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use broker_embedded::partitioner::partition_for_key;
use serde_json::Value;

use common::{serve_with, streams, terminate};
use tools::{
    array, cache_dir, client_source, group_offsets, install_dir, int, partitions_of, run_client,
    runs, str_of, strings, unavailable,
};

const PARTITIONS: u32 = 4;
const RECORDS: usize = 200;
const LATE_RECORDS: usize = 20;

/// The `node_modules` dir holding the pinned kafkajs, installed on the first run.
fn kafkajs_modules() -> Option<PathBuf> {
    if !runs("node", "--version") {
        return unavailable("kafkajs", "node cannot be run".to_owned());
    }
    let source = client_source("kafkajs");
    let lock = std::fs::read(source.join("package-lock.json")).unwrap();
    let dir = cache_dir("kafkajs-client");
    let modules = dir.join("node_modules");
    let installed = modules.join("kafkajs/package.json").exists()
        && std::fs::read(dir.join("package-lock.json")).is_ok_and(|l| l == lock);
    if installed {
        return Some(modules);
    }
    if !runs("npm", "--version") {
        return unavailable("kafkajs", "npm cannot be run".to_owned());
    }
    let mut npm = Command::new("npm");
    npm.args([
        "ci",
        "--no-audit",
        "--no-fund",
        "--ignore-scripts",
        "--loglevel=error",
    ]);
    let copied = |staging: &Path| {
        for file in ["package.json", "package-lock.json"] {
            std::fs::copy(source.join(file), staging.join(file)).unwrap();
        }
    };
    match install_dir(&dir, copied, npm) {
        Ok(()) => Some(modules),
        Err(why) => unavailable("kafkajs", why),
    }
}

/// The (partition, offset, key) of each record a consumer reported.
fn records(v: &Value) -> Vec<(i64, i64, String)> {
    array(v)
        .iter()
        .map(|r| {
            (
                int(&r["partition"]),
                int(&r["offset"]),
                str_of(&r["key"]).to_owned(),
            )
        })
        .collect()
}

/// Checks one phase of consumption: every key once, in the partition Kafka's default
/// partitioner picks for it, and per partition the offsets from `start` on with no gap.
/// Returns the next offset of each partition.
fn check_consumed(
    consumed: &[(i64, i64, String)],
    keys: &BTreeSet<String>,
    start: &BTreeMap<i64, i64>,
) -> BTreeMap<i64, i64> {
    let seen: BTreeSet<&String> = consumed.iter().map(|(_, _, k)| k).collect();
    assert_eq!(consumed.len(), keys.len(), "each record consumed once");
    assert_eq!(seen, keys.iter().collect(), "every record consumed");
    let mut next = start.clone();
    let mut by_partition: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for (partition, offset, key) in consumed {
        assert_eq!(
            *partition,
            i64::from(partition_for_key(key.as_bytes(), PARTITIONS)),
            "kafkajs's default partitioner and Kafka's murmur2 agree on {key}"
        );
        by_partition.entry(*partition).or_default().push(*offset);
    }
    for (partition, mut offsets) in by_partition {
        offsets.sort_unstable();
        let from = start.get(&partition).copied().unwrap_or(0);
        let expected: Vec<i64> = (from..from + offsets.len() as i64).collect();
        assert_eq!(offsets, expected, "partition {partition}'s offsets");
        next.insert(partition, from + expected.len() as i64);
    }
    next
}

#[test]
fn kafkajs_admin_idempotent_gzip_producer_group_of_two_and_transactions() {
    let Some(modules) = kafkajs_modules() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (child, addr) = serve_with(dir, &["--config", "group.initial.rebalance.delay.ms=0"]);
    let mut node = Command::new("node");
    node.arg(client_source("kafkajs").join("check.js"))
        .arg(&addr)
        .env("NODE_PATH", &modules)
        .env("KAFKAJS_NO_PARTITIONER_WARNING", "1");
    let result = run_client(node, Duration::from_secs(90));
    terminate(child);
    let r = result.unwrap_or_else(|why| panic!("{why}"));

    // Admin: the topics were created (a second create is refused), node 0 leads.
    let admin = &r["admin"];
    assert_eq!(admin["created"], true, "{admin}");
    assert_eq!(admin["created_again"], false, "{admin}");
    assert_eq!(strings(&admin["topics"]), ["js-orders", "js-txn"]);
    let leaders: Vec<(i64, i64)> = array(&admin["partitions"])
        .iter()
        .map(|p| (int(&p["partition"]), int(&p["leader"])))
        .collect();
    assert_eq!(leaders, [(0, 0), (1, 0), (2, 0), (3, 0)]);

    // The idempotent producer's batch went to every partition, acknowledged at offset 0.
    let group = &r["group"];
    let sent: BTreeSet<(i64, i64, i64)> = array(&group["sent"])
        .iter()
        .map(|s| {
            (
                int(&s["partition"]),
                int(&s["error"]),
                int(&s["base_offset"]),
            )
        })
        .collect();
    assert_eq!(sent, (0..4).map(|p| (p, 0, 0)).collect());

    // Two consumers, one generation: each holds partitions, none twice, and consumed only
    // its own partitions, every record once.
    assert_eq!(group["group_while_running"]["state"], "Stable");
    assert_eq!(group["group_while_running"]["members"], 2);
    assert_eq!(
        group["group_while_running"]["protocol"],
        "RoundRobinAssigner"
    );
    let consumers = array(&group["consumers"]);
    assert_eq!(consumers.len(), 2);
    let mut all_partitions = Vec::new();
    let mut all_records = Vec::new();
    for consumer in consumers {
        let assignment = partitions_of(&consumer["assignment"]);
        assert!(!assignment.is_empty(), "{consumer}");
        let consumed = records(&consumer["records"]);
        assert!(
            consumed.iter().all(|(p, _, _)| assignment.contains(p)),
            "a consumer read only its partitions: {assignment:?}"
        );
        all_partitions.extend(assignment);
        all_records.extend(consumed);
    }
    all_partitions.sort_unstable();
    assert_eq!(all_partitions, [0, 1, 2, 3]);
    let keys: BTreeSet<String> = (0..RECORDS).map(|i| format!("k{i}")).collect();
    let high = check_consumed(&all_records, &keys, &BTreeMap::new());
    assert_eq!(high.values().sum::<i64>(), RECORDS as i64);

    // The second consumer left: the first took its partitions and read only the late records,
    // from the offsets the group had committed.
    let after_leave = &group["after_leave"];
    assert_eq!(partitions_of(&after_leave["assignment"]), [0, 1, 2, 3]);
    let late_keys: BTreeSet<String> = (0..LATE_RECORDS).map(|i| format!("late{i}")).collect();
    let end = check_consumed(&records(&after_leave["records"]), &late_keys, &high);

    // Committed offsets (kafkajs's admin fetchOffsets) are the high watermarks.
    let committed: BTreeMap<i64, i64> = array(&group["committed"])
        .iter()
        .map(|c| (int(&c["partition"]), int(&c["offset"])))
        .collect();
    let watermarks: BTreeMap<i64, i64> = array(&group["high_watermarks"])
        .iter()
        .map(|c| (int(&c["partition"]), int(&c["high"])))
        .collect();
    let mut expected = high.clone();
    expected.extend(end);
    assert_eq!(committed, expected);
    assert_eq!(watermarks, expected);
    assert_eq!(group["group_after"]["state"], "Empty");
    assert_eq!(group["group_after"]["members"], 0);

    // Transactions: read_committed sees the committed ones only, read_uncommitted all;
    // offsets sent in the committed transaction count, those of the aborted one do not.
    // A second producer with the same transactional id fenced the first, whose commit kafkajs
    // (at EndTxn v1) reports as INVALID_PRODUCER_EPOCH, and whose record stays invisible.
    let txn = &r["transactions"];
    assert_eq!(txn["fenced"], "INVALID_PRODUCER_EPOCH");
    assert_eq!(
        strings(&txn["read_committed"]),
        ["committed-1", "committed-2", "successor", "committed-3"]
    );
    assert_eq!(
        strings(&txn["read_uncommitted"]),
        [
            "committed-1",
            "committed-2",
            "aborted-1",
            "aborted-2",
            "zombie",
            "successor",
            "committed-3"
        ]
    );
    let eos: Vec<(i64, i64)> = array(&txn["eos_offsets"])
        .iter()
        .map(|c| (int(&c["partition"]), int(&c["offset"])))
        .collect();
    assert_eq!(eos, [(0, 5), (1, -1), (2, -1), (3, -1)]);

    // A committed offset below the log start: the consumer's fetch is OFFSET_OUT_OF_RANGE,
    // it commits -2 (earliest) and reads from the log start; admin resetOffsets (earliest,
    // also a -2) makes the group read it again.
    let out_of_range = &r["out_of_range"];
    for run in ["recovered", "again"] {
        assert_eq!(out_of_range[run]["crashed"], Value::Null, "{out_of_range}");
        assert_eq!(partitions_of(&out_of_range[run]["offsets"]), [3, 4]);
    }
    assert_eq!(out_of_range["committed_after"], 5);

    // What kafkajs did is in the data dir after a clean stop.
    let described = streams(dir)
        .args(["groups", "describe", "--group", "js-group"])
        .output()
        .unwrap();
    assert!(described.status.success(), "{described:?}");
    let described = String::from_utf8_lossy(&described.stdout);
    assert_eq!(
        group_offsets(&described, "js-orders"),
        expected,
        "{described}"
    );
    let read = streams(dir)
        .args([
            "consume",
            "--topic",
            "js-txn",
            "--from-beginning",
            "--isolation-level",
            "read_committed",
            "--timeout-ms",
            "500",
        ])
        .output()
        .unwrap();
    assert!(read.status.success(), "{read:?}");
    assert_eq!(
        String::from_utf8_lossy(&read.stdout),
        "committed-1\ncommitted-2\nsuccessor\ncommitted-3\n"
    );
}
