//! `streams serve` with franz-go (github.com/twmb/franz-go), a Kafka client written in Go by
//! people who never saw this broker: kadm creates, grows, configures, trims and deletes
//! topics; idempotent producers send with gzip, snappy, lz4 and zstd; a group of two members
//! (cooperative-sticky) shares the partitions and commits, and one takes over when the other
//! leaves; a transactional producer commits and aborts, read back with read_committed; and a
//! GroupTransactSession copies a topic exactly once (one round aborted). The program is
//! `tests/clients/franz/main.go`; it prints JSON that this test checks.
//!
//! The program is built with `go build` (modules pinned by go.mod and go.sum, fetched through
//! the Go module proxy) into a cache dir under the target dir, again only when its sources
//! change. Without Go the test is skipped with a message, except under `CI=true`, where that
//! is a failure.

mod common;
mod tools;

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use broker_embedded::partitioner::partition_for_key;
use serde_json::Value;

use common::{serve_with, streams, terminate};
use tools::{
    array, cache_dir, client_source, group_offsets, int, partitions_of, run_client, runs, str_of,
    strings, unavailable,
};

const PARTITIONS: u32 = 4;
const CODECS: [(&str, i64); 4] = [("gzip", 1), ("snappy", 2), ("lz4", 3), ("zstd", 4)];
const PER_CODEC: usize = 50;
const LATE_RECORDS: usize = 20;

/// The franz-go program, built once per content of its sources (the cache is shared by every
/// checkout that uses the target dir).
fn franz_binary() -> Option<PathBuf> {
    let source = client_source("franz");
    let mut hasher = DefaultHasher::new();
    for file in ["main.go", "go.mod", "go.sum"] {
        std::fs::read(source.join(file)).unwrap().hash(&mut hasher);
    }
    let dir = cache_dir("franz-go-client");
    let name = format!("franzcheck-{:016x}", hasher.finish());
    let binary = dir.join(&name);
    if binary.exists() {
        return Some(binary);
    }
    if !runs("go", "version") {
        return unavailable("franz-go", "go cannot be run".to_owned());
    }
    std::fs::create_dir_all(&dir).unwrap();
    // Built beside the binary, then renamed to it: a concurrent run never sees half a file.
    let staging = dir.join(format!("staging-{}", std::process::id()));
    let out = Command::new("go")
        .args(["build", "-buildvcs=false", "-mod=readonly", "-o"])
        .arg(&staging)
        .arg(".")
        .current_dir(&source)
        .output();
    match out {
        Ok(out) if out.status.success() => {
            std::fs::rename(&staging, &binary).unwrap();
            // Builds of older sources are not needed again.
            for old in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let old_name = old.file_name();
                let old_name = old_name.to_string_lossy();
                if old_name.starts_with("franzcheck-") && old_name != name.as_str() {
                    let _ = std::fs::remove_file(old.path());
                }
            }
            Some(binary)
        }
        Ok(out) => unavailable("franz-go", format!("go build failed: {out:?}")),
        Err(e) => unavailable("franz-go", format!("go cannot be run: {e}")),
    }
}

/// A JSON object of partition -> offset (Go writes map keys as strings).
fn offsets(v: &Value) -> BTreeMap<i64, i64> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .iter()
        .map(|(p, o)| (p.parse().unwrap(), int(o)))
        .collect()
}

/// A record a group member consumed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Consumed {
    partition: i64,
    offset: i64,
    key: String,
    codec: i64,
}

fn consumed(v: &Value) -> Vec<Consumed> {
    if v.is_null() {
        return Vec::new();
    }
    array(v)
        .iter()
        .map(|r| Consumed {
            partition: int(&r["partition"]),
            offset: int(&r["offset"]),
            key: str_of(&r["key"]).to_owned(),
            codec: int(&r["codec"]),
        })
        .collect()
}

/// The codec a key was produced with: its prefix, or zstd for the late records.
fn codec_of(key: &str) -> i64 {
    CODECS
        .iter()
        .find(|(name, _)| key.starts_with(&format!("{name}-")))
        .map_or(4, |(_, codec)| *codec)
}

#[test]
fn franz_go_admin_codecs_group_of_two_transactions_and_group_transact_session() {
    let Some(binary) = franz_binary() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (child, addr) = serve_with(dir, &["--config", "group.initial.rebalance.delay.ms=0"]);
    let mut franz = Command::new(binary);
    franz.arg(&addr);
    let result = run_client(franz, Duration::from_secs(90));
    terminate(child);
    let r = result.unwrap_or_else(|why| panic!("{why}"));

    // kadm: created with topic ids (a second create is TOPIC_ALREADY_EXISTS), node 0 leads
    // and controls; grown to 3 partitions; a config set and described back as the topic's;
    // records deleted below offset 2; the topic deleted.
    let admin = &r["admin"];
    for topic in ["go-orders", "go-txn", "go-eos-out", "go-grown"] {
        assert_eq!(admin["created"][topic], "", "{admin}");
    }
    assert_eq!(admin["topic_id_set"], true);
    assert!(
        str_of(&admin["created_again"]).starts_with("TOPIC_ALREADY_EXISTS"),
        "{admin}"
    );
    assert_eq!(partitions_of(&admin["partitions"]), [0, 1, 2, 3]);
    assert_eq!(partitions_of(&admin["leaders"]), [0, 0, 0, 0]);
    assert_eq!(admin["cluster_controller_id"], 0);
    assert_eq!(admin["grown_partitions"], 3);
    assert_eq!(admin["retention_ms"], "3600000");
    assert_eq!(admin["retention_ms_source"], "DYNAMIC_TOPIC_CONFIG");
    assert_eq!(admin["delete_records_low"], 2);
    assert_eq!(admin["deleted"], "");
    assert_eq!(
        strings(&admin["topics_after_delete"]),
        ["go-eos-out", "go-orders", "go-txn"]
    );

    // One idempotent producer per codec and one for the late records (each its own producer
    // id, epoch 0); keyed records
    // land where Kafka's murmur2 puts them.
    let group = &r["group"];
    let produced = array(&group["produced"]);
    assert_eq!(produced.len(), CODECS.len() * PER_CODEC + LATE_RECORDS);
    let mut where_produced: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    let mut producer_ids: BTreeMap<&str, BTreeSet<i64>> = BTreeMap::new();
    for p in produced {
        let key = str_of(&p["key"]).to_owned();
        let partition = int(&p["partition"]);
        assert_eq!(
            partition,
            i64::from(partition_for_key(key.as_bytes(), PARTITIONS)),
            "franz-go's partitioner and Kafka's murmur2 agree on {key}"
        );
        assert_eq!(p["producer_epoch"], 0);
        // The late records have a producer of their own.
        let producer = if key.starts_with("late-") {
            "late"
        } else {
            str_of(&p["codec"])
        };
        producer_ids
            .entry(producer)
            .or_default()
            .insert(int(&p["producer_id"]));
        assert!(where_produced
            .insert(key, (partition, int(&p["offset"])))
            .is_none());
    }
    let ids: BTreeSet<i64> = producer_ids
        .values()
        .map(|ids| {
            assert_eq!(ids.len(), 1, "{producer_ids:?}");
            ids.first().copied().unwrap()
        })
        .collect();
    assert_eq!(ids.len(), CODECS.len() + 1, "{producer_ids:?}");
    let offsets_taken: BTreeSet<(i64, i64)> = where_produced.values().copied().collect();
    assert_eq!(offsets_taken.len(), where_produced.len(), "no offset twice");

    // Two members, cooperative-sticky: each holds partitions, none twice; every record
    // consumed once, by the member holding its partition, at the offset it was acknowledged
    // at, in its producer's codec.
    assert_eq!(group["state_running"], "Stable");
    assert_eq!(group["protocol_running"], "cooperative-sticky");
    assert_eq!(group["members_running"], 2);
    let members = array(&group["members"]);
    assert_eq!(members.len(), 2);
    let mut all_partitions = Vec::new();
    let mut all_records = Vec::new();
    for member in members {
        assert!(member["errors"].is_null(), "{}", member["errors"]);
        let assignment = partitions_of(&member["assignment"]);
        assert!(!assignment.is_empty());
        let records = consumed(&member["records"]);
        assert!(records.iter().all(|c| assignment.contains(&c.partition)));
        all_partitions.extend(assignment);
        all_records.extend(records);
    }
    all_partitions.sort_unstable();
    assert_eq!(all_partitions, [0, 1, 2, 3]);
    let check = |records: &[Consumed]| {
        for c in records {
            assert_eq!(
                where_produced.get(&c.key),
                Some(&(c.partition, c.offset)),
                "{c:?}"
            );
            assert_eq!(c.codec, codec_of(&c.key), "{c:?}");
        }
        let keys: BTreeSet<&String> = records.iter().map(|c| &c.key).collect();
        assert_eq!(keys.len(), records.len(), "each record consumed once");
        keys.into_iter().cloned().collect::<BTreeSet<String>>()
    };
    let first_keys = check(&all_records);
    let expected_first: BTreeSet<String> = CODECS
        .iter()
        .flat_map(|(name, _)| (0..PER_CODEC).map(move |i| format!("{name}-{i}")))
        .collect();
    assert_eq!(first_keys, expected_first);

    // The second member committed and left: the first took every partition and read only the
    // late records.
    let after = &group["after_leave"];
    assert!(after["errors"].is_null(), "{}", after["errors"]);
    assert_eq!(partitions_of(&after["assignment"]), [0, 1, 2, 3]);
    let late_keys = check(&consumed(&after["records"]));
    let expected_late: BTreeSet<String> = (0..LATE_RECORDS).map(|i| format!("late-{i}")).collect();
    assert_eq!(late_keys, expected_late);

    // Committed (kadm FetchOffsets) = end offsets (kadm ListEndOffsets); the group is empty.
    let end_offsets = offsets(&group["end_offsets"]);
    assert_eq!(
        end_offsets.values().sum::<i64>(),
        (CODECS.len() * PER_CODEC + LATE_RECORDS) as i64
    );
    assert_eq!(offsets(&group["committed"]), end_offsets);
    assert_eq!(group["state_after"], "Empty");
    assert_eq!(group["members_after"], 0);

    // A client fenced by a second one with its transactional id (PRODUCER_FENCED at EndTxn
    // v4); a transactional producer's transactions: committed, aborted, committed.
    // read_committed sees the committed records only; kadm describes and lists the
    // transaction and the partition's producers.
    let txn = &r["transactions"];
    assert_eq!(txn["fenced_is_producer_fenced"], true, "{txn}");
    assert_eq!(
        strings(&txn["read_committed"]),
        ["successor", "committed-1", "committed-2", "committed-3"]
    );
    assert_eq!(
        strings(&txn["read_uncommitted"]),
        [
            "zombie",
            "successor",
            "committed-1",
            "committed-2",
            "aborted-1",
            "aborted-2",
            "committed-3"
        ]
    );
    assert_eq!(txn["described_state"], "CompleteCommit");
    assert_eq!(txn["listed_state"], "CompleteCommit");
    assert_eq!(txn["described_producer_id"], txn["producer_id"]);
    let producers = partitions_of(&txn["described_producers"]);
    assert_eq!(
        producers.len(),
        2,
        "the fenced id's and this one: {producers:?}"
    );
    assert!(producers.contains(&int(&txn["producer_id"])));

    // GroupTransactSession: the first round aborted (its copies are in the log, not visible
    // to read_committed), the input read again and copied exactly once, offsets committed
    // with the transactions.
    let session = &r["session"];
    let committed_keys = strings(&session["committed_keys"]);
    let all_keys: BTreeSet<String> = expected_first.union(&expected_late).cloned().collect();
    assert_eq!(committed_keys.len(), all_keys.len());
    assert_eq!(
        committed_keys.iter().cloned().collect::<BTreeSet<_>>(),
        all_keys
    );
    assert_eq!(strings(&session["out_committed"]), committed_keys);
    let aborted = int(&session["aborted_round"]);
    assert!(aborted > 0);
    assert_eq!(
        int(&session["out_uncommitted"]),
        all_keys.len() as i64 + aborted
    );
    assert_eq!(offsets(&session["committed"]), end_offsets);

    // What franz-go did is in the data dir after a clean stop.
    for group_id in ["go-group", "go-eos"] {
        let described = streams(dir)
            .args(["groups", "describe", "--group", group_id])
            .output()
            .unwrap();
        assert!(described.status.success(), "{described:?}");
        let described = String::from_utf8_lossy(&described.stdout);
        assert_eq!(
            group_offsets(&described, "go-orders"),
            end_offsets,
            "{described}"
        );
    }
    let read = streams(dir)
        .args([
            "consume",
            "--topic",
            "go-eos-out",
            "--from-beginning",
            "--isolation-level",
            "read_committed",
            "--timeout-ms",
            "500",
        ])
        .output()
        .unwrap();
    assert!(read.status.success(), "{read:?}");
    let copied: Vec<String> = String::from_utf8_lossy(&read.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(copied, committed_keys);
}
