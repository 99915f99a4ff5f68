//! Kafka's own Java clients and command-line tools against `streams serve`.
//!
//! `scripts/kafka-java.sh` copies kafka-clients and kafka-tools (the version in
//! `tests/java/pom.xml`) from Maven Central into the target dir the first time and compiles
//! `tests/java/RillKafkaClients.java`, one program that runs many checks in one JVM:
//! AdminClient, KafkaProducer (acks=all, idempotent, every codec, transactions) and
//! KafkaConsumer (a group of two, committed offsets, read_committed). The console tools a
//! Kafka user types (kafka-topics, kafka-console-producer, kafka-console-consumer,
//! kafka-consumer-groups) run through their main classes, one JVM each.
//!
//! The test command fetches the jars before the tests. Without Java or Maven a test is
//! skipped with a message, except under `CI=true`, where that is a failure.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{in_ci, streams_ok, Served};

/// Longest one JVM may run before the test fails.
const JAVA_LIMIT: Duration = Duration::from_secs(240);

/// Fails under CI, skips elsewhere.
fn unavailable(why: String) -> Option<String> {
    if in_ci() {
        panic!("{why} (CI=true: Java and Maven are required)");
    }
    eprintln!("skipping the Kafka Java clients test: {why}");
    None
}

/// The classpath of Kafka's jars and the compiled test program, made on the first run.
fn classpath() -> Option<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kafka-java");
    let out = std::process::Command::new("bash")
        .arg(root.join("scripts/kafka-java.sh"))
        .arg(&cache)
        .output();
    match out {
        Ok(out) if out.status.success() => {
            let stdout = String::from_utf8_lossy(&out.stdout);
            match stdout.lines().last() {
                Some(line) if !line.is_empty() => Some(line.to_owned()),
                _ => unavailable(format!(
                    "scripts/kafka-java.sh printed no classpath: {out:?}"
                )),
            }
        }
        Ok(out) => unavailable(format!(
            "scripts/kafka-java.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )),
        Err(e) => unavailable(format!("bash cannot be run: {e}")),
    }
}

/// What one JVM printed.
#[derive(Debug)]
struct Ran {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs the Java class `main` with `args`, feeding `stdin`, within [`JAVA_LIMIT`].
fn java(classpath: &str, main: &str, args: &[&str], stdin: &str) -> Ran {
    let out = assert_cmd::Command::new("java")
        .args([
            // Short runs: start fast, log warnings only.
            "-XX:TieredStopAtLevel=1",
            "-XX:+UseSerialGC",
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
            "-cp",
            classpath,
            main,
        ])
        .args(args)
        .write_stdin(stdin.as_bytes().to_vec())
        .timeout(JAVA_LIMIT)
        .output()
        .unwrap_or_else(|e| panic!("java {main}: {e}"));
    Ran {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// [`java`], failing the test (with the server's log) unless the JVM exits with 0.
fn java_ok(served: &Served, classpath: &str, main: &str, args: &[&str], stdin: &str) -> String {
    let ran = java(classpath, main, args, stdin);
    assert!(
        ran.ok,
        "{main} {args:?} failed\nstdout:\n{}\nstderr:\n{}\nserver log:\n{}",
        ran.stdout,
        ran.stderr,
        served.log()
    );
    ran.stdout
}

/// The bytes of a partition's folder in the data dir.
fn partition_bytes(dir: &Path, topic: &str, partition: u32) -> u64 {
    let folder: PathBuf = dir.join(format!("{topic}-{partition}"));
    std::fs::read_dir(&folder)
        .unwrap_or_else(|e| panic!("{}: {e}", folder.display()))
        .map(|entry| entry.unwrap().metadata().unwrap().len())
        .sum()
}

/// `streams groups describe`: partition → (committed offset, log end offset, lag).
fn group_offsets(dir: &Path, group: &str) -> BTreeMap<(String, u32), (i64, i64, i64)> {
    let text = streams_ok(dir, &["groups", "describe", "--group", group]);
    text.lines()
        .filter(|line| line.starts_with(&format!("{group} ")))
        .map(|line| {
            let cells: Vec<&str> = line.split_whitespace().collect();
            let number = |i: usize| cells[i].parse::<i64>().unwrap_or(-1);
            (
                (cells[1].to_owned(), cells[2].parse().unwrap()),
                (number(3), number(4), number(5)),
            )
        })
        .collect()
}

#[test]
fn kafka_java_clients_administer_produce_and_consume_in_groups_and_transactions() {
    let Some(classpath) = classpath() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    // The groups' members all join within a second of each other: no need for the default
    // 3 s wait for more members.
    let served = Served::start(&dir, &["--config", "group.initial.rebalance.delay.ms=1000"]);
    let checks = [
        "admin",
        "produce",
        "compression",
        "idempotent",
        "groups",
        "cooperative",
        "static",
        "read_committed",
        "transactions",
    ];
    let mut args = vec![served.addr.as_str()];
    args.extend(checks);
    let stdout = java_ok(&served, &classpath, "RillKafkaClients", &args, "");
    let found: BTreeSet<&str> = stdout
        .lines()
        .filter_map(|line| line.strip_prefix("ok "))
        .map(|rest| rest.split(' ').next().unwrap_or(rest))
        .collect();
    assert_eq!(found, checks.into_iter().collect(), "{stdout}");
    assert_eq!(stdout.lines().last(), Some("ok"), "{stdout}");
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        assert!(
            stdout.contains(&format!("ok compression {codec} 200")),
            "{stdout}"
        );
    }
    assert!(
        stdout.contains("ok transactions committed=101 aborted=10"),
        "{stdout}"
    );

    // kafka-transactions list / describe: the transaction coordinator's state.
    const TRANSACTIONS: &str = "org.apache.kafka.tools.TransactionsCommand";
    let bootstrap = ["--bootstrap-server", served.addr.as_str()];
    let listed = java_ok(
        &served,
        &classpath,
        TRANSACTIONS,
        &[&bootstrap[..], &["list"]].concat(),
        "",
    );
    let row: Vec<&str> = listed
        .lines()
        .find(|l| l.starts_with("j-txn "))
        .unwrap_or_else(|| panic!("{listed}"))
        .split_whitespace()
        .collect();
    // TransactionalId, Coordinator, ProducerId, TransactionState
    assert_eq!((row[1], row[3]), ("0", "CompleteCommit"), "{listed}");
    let described = java_ok(
        &served,
        &classpath,
        TRANSACTIONS,
        &[&bootstrap[..], &["describe", "--transactional-id", "j-txn"]].concat(),
        "",
    );
    let row: Vec<&str> = described
        .lines()
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    // CoordinatorId, TransactionalId, ProducerId, ProducerEpoch, TransactionState, timeout
    assert_eq!(
        (row[1], row[3], row[4], row[5]),
        ("j-txn", "1", "CompleteCommit", "60000"),
        "the successor's epoch is one above the fenced producer's:\n{described}"
    );
    served.terminate();

    // What the clients did is in the data dir, as the broker's own tools see it.
    let topics = streams_ok(&dir, &["topics", "list"]);
    let topics: Vec<&str> = topics.lines().collect();
    for topic in ["j-admin", "j-plain", "j-group", "j-txn-out", "j-codec-zstd"] {
        assert!(topics.contains(&topic), "{topics:?}");
    }
    assert!(!topics.contains(&"j-gone"), "{topics:?}");
    // The producers' batches were stored compressed, as they were sent.
    let plain = partition_bytes(&dir, "j-codec-none", 0);
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        let compressed = partition_bytes(&dir, &format!("j-codec-{codec}"), 0);
        assert!(
            compressed * 4 < plain,
            "{codec}: {compressed} bytes against {plain} uncompressed"
        );
    }
    // The group's commits: every one of the 240 records, no lag.
    let group = group_offsets(&dir, "j-group");
    assert_eq!(group.len(), 4, "{group:?}");
    assert_eq!(group.values().map(|(c, _, _)| c).sum::<i64>(), 240);
    assert!(group.values().all(|(c, end, lag)| c == end && *lag == 0));
    // The offsets sent to the transactions were committed with them.
    let txn = group_offsets(&dir, "j-txn-group");
    assert_eq!(txn.values().map(|(c, _, _)| c).sum::<i64>(), 100, "{txn:?}");
    let committed = streams_ok(
        &dir,
        &[
            "consume",
            "--topic",
            "j-txn-out",
            "--from-beginning",
            "--isolation-level",
            "read_committed",
            "--timeout-ms",
            "1000",
        ],
    );
    let values: Vec<&str> = committed.lines().collect();
    assert_eq!(values.len(), 101, "{committed}");
    assert!(values
        .iter()
        .all(|v| v.starts_with("VALUE-") || *v == "AFTER"));
}

/// Sums a column of kafka-consumer-groups' `--describe` table over the rows of `group`.
fn column_sum(table: &str, group: &str, column: &str) -> i64 {
    let mut lines = table.lines().skip_while(|l| !l.starts_with("GROUP "));
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let at = header
        .iter()
        .position(|h| *h == column)
        .unwrap_or_else(|| panic!("no column {column} in:\n{table}"));
    lines
        .filter(|l| l.starts_with(&format!("{group} ")))
        .map(|l| {
            l.split_whitespace()
                .nth(at)
                .and_then(|cell| cell.parse::<i64>().ok())
                .unwrap_or_else(|| panic!("{column} in {l:?}"))
        })
        .sum()
}

#[test]
fn kafka_console_tools_create_produce_consume_and_reset_a_groups_offsets() {
    let Some(classpath) = classpath() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    // The console consumer is a group's only member: no need to wait for others.
    let served = Served::start(&dir, &["--config", "group.initial.rebalance.delay.ms=0"]);
    let addr = served.addr.clone();
    let run = |main: &str, args: &[&str], stdin: &str| -> String {
        let mut all = vec!["--bootstrap-server", addr.as_str()];
        all.extend(args);
        java_ok(&served, &classpath, main, &all, stdin)
    };
    const TOPICS: &str = "org.apache.kafka.tools.TopicCommand";
    const PRODUCER: &str = "org.apache.kafka.tools.ConsoleProducer";
    const CONSUMER: &str = "org.apache.kafka.tools.consumer.ConsoleConsumer";
    const GROUPS: &str = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand";

    // kafka-topics --create / --list / --describe
    let created = run(
        TOPICS,
        &[
            "--create",
            "--topic",
            "words",
            "--partitions",
            "3",
            "--config",
            "retention.ms=86400000",
        ],
        "",
    );
    assert_eq!(created.trim(), "Created topic words.");
    let listed = run(TOPICS, &["--list", "--exclude-internal"], "");
    assert_eq!(listed.trim(), "words");
    let described = run(TOPICS, &["--describe", "--topic", "words"], "");
    let first = described.lines().next().unwrap_or_default();
    for part in [
        "Topic: words",
        "PartitionCount: 3",
        "ReplicationFactor: 1",
        "retention.ms=86400000",
    ] {
        assert!(first.contains(part), "{described}");
    }
    for p in 0..3 {
        assert!(
            described.contains(&format!(
                "Topic: words\tPartition: {p}\tLeader: 0\tReplicas: 0\tIsr: 0"
            )),
            "{described}"
        );
    }

    // kafka-console-producer (idempotent, acks=all: its defaults) with keys.
    let produce = |from: usize, to: usize| {
        let lines: String = (from..to).map(|i| format!("key-{i}:value-{i}\n")).collect();
        run(
            PRODUCER,
            &[
                "--topic",
                "words",
                "--property",
                "parse.key=true",
                "--property",
                "key.separator=:",
            ],
            &lines,
        );
    };
    produce(0, 30);

    // kafka-console-consumer --from-beginning --group
    let consumed = run(
        CONSUMER,
        &[
            "--topic",
            "words",
            "--from-beginning",
            "--group",
            "console",
            "--max-messages",
            "30",
            "--isolation-level",
            "read_committed",
            "--property",
            "print.key=true",
            "--property",
            "key.separator=:",
            "--timeout-ms",
            "60000",
        ],
        "",
    );
    let mut records: Vec<&str> = consumed.lines().collect();
    records.sort();
    records.dedup();
    assert_eq!(records.len(), 30, "{consumed}");
    for record in &records {
        let (key, value) = record.split_once(':').unwrap();
        assert_eq!(key.replace("key", "value"), value, "{consumed}");
    }

    // kafka-consumer-groups --describe: all consumed, no lag; then 10 more records, lag 10.
    let table = run(GROUPS, &["--describe", "--group", "console"], "");
    assert_eq!(
        column_sum(&table, "console", "CURRENT-OFFSET"),
        30,
        "{table}"
    );
    assert_eq!(column_sum(&table, "console", "LAG"), 0, "{table}");
    produce(30, 40);
    let table = run(GROUPS, &["--describe", "--group", "console"], "");
    assert_eq!(
        column_sum(&table, "console", "LOG-END-OFFSET"),
        40,
        "{table}"
    );
    assert_eq!(column_sum(&table, "console", "LAG"), 10, "{table}");
    let groups = run(GROUPS, &["--list"], "");
    assert_eq!(groups.trim(), "console");

    // kafka-consumer-groups --reset-offsets --to-earliest --execute
    let reset = run(
        GROUPS,
        &[
            "--reset-offsets",
            "--group",
            "console",
            "--topic",
            "words",
            "--to-earliest",
            "--execute",
        ],
        "",
    );
    assert_eq!(column_sum(&reset, "console", "NEW-OFFSET"), 0, "{reset}");
    let table = run(GROUPS, &["--describe", "--group", "console"], "");
    assert_eq!(column_sum(&table, "console", "LAG"), 40, "{table}");
    served.terminate();

    // The broker's own tool sees the reset offsets.
    let group = group_offsets(&dir, "console");
    assert_eq!(group.len(), 3, "{group:?}");
    assert!(group.values().all(|(committed, _, _)| *committed == 0));
    assert_eq!(group.values().map(|(_, _, lag)| lag).sum::<i64>(), 40);
}
