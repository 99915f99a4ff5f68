//! For the tests that run clients no one here wrote (kafka-python, confluent-kafka): a
//! virtualenv of PyPI packages under the target dir, and the batches a partition holds.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use broker_embedded::{Broker, Compression, RecordBatch};

/// Fails under `CI=true`, skips (with a message) elsewhere.
fn unavailable(why: String) -> Option<PathBuf> {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{why} (CI=true: Python and pip are required)");
    }
    eprintln!("skipping: {why}");
    None
}

/// The Python of the virtualenv `name` under the target dir with `requirements`
/// pip-installed, made on the first run; `import` is a statement that succeeds once they
/// are. Each test uses its own `name`: tests run in parallel processes.
pub(crate) fn python_venv(name: &str, requirements: &[&str], import: &str) -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let python = venv.join("bin").join("python");
    if !python.exists() {
        let made = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .output();
        match made {
            Ok(out) if out.status.success() => {}
            Ok(out) => return unavailable(format!("python3 -m venv failed: {out:?}")),
            Err(e) => return unavailable(format!("python3 cannot be run: {e}")),
        }
    }
    let ready = |python: &Path| {
        Command::new(python)
            .args(["-c", import])
            .output()
            .is_ok_and(|out| out.status.success())
    };
    if !ready(&python) {
        let installed = Command::new(&python)
            .args(["-m", "pip", "install", "--quiet"])
            .args(requirements)
            .output();
        match installed {
            Ok(out) if out.status.success() => {}
            Ok(out) => return unavailable(format!("pip install {requirements:?} failed: {out:?}")),
            Err(e) => return unavailable(format!("pip cannot be run: {e}")),
        }
        if !ready(&python) {
            return unavailable(format!(
                "{import:?} fails after pip install {requirements:?}"
            ));
        }
    }
    Some(python)
}

/// Runs `script` with `args` under `python`, for at most five minutes.
pub(crate) fn run_script(python: &Path, script: &Path, args: &[String]) -> Output {
    Command::new("timeout")
        .arg("300")
        .arg(python)
        .arg(script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", script.display()))
}

/// Every batch of a partition, from its log start to its end, as stored.
pub(crate) async fn all_batches(broker: &Broker, topic: &str, partition: u32) -> Vec<RecordBatch> {
    let (mut offset, end) = broker.offsets(topic, partition).await.unwrap();
    let mut out = Vec::new();
    while offset < end {
        let batches = broker
            .fetch(topic, partition, offset, 1 << 20, None)
            .await
            .unwrap();
        let Some(last) = batches.last() else {
            break;
        };
        offset = last.info.last_offset + 1;
        out.extend(batches);
    }
    out
}

/// Checks that every record of `topic` (of `partitions` partitions) sits in the partition
/// Kafka's default partitioner (murmur2 of the key) picks; returns how many there are.
pub(crate) async fn assert_keyed_partitions(
    broker: &Broker,
    topic: &str,
    partitions: u32,
) -> usize {
    let mut count = 0;
    for p in 0..partitions {
        for batch in all_batches(broker, topic, p).await {
            for record in &batch.records {
                let key = record.key.as_deref().expect("a keyed record");
                assert_eq!(
                    broker_embedded::partitioner::partition_for_key(key, partitions),
                    p,
                    "{topic}-{p}: key {:?}",
                    String::from_utf8_lossy(key)
                );
                count += 1;
            }
        }
    }
    count
}

/// Checks that every batch of `topic`-0 is stored with `codec`, as the client sent it, and
/// that it holds `records` records.
pub(crate) async fn assert_codec(broker: &Broker, topic: &str, codec: Compression, records: usize) {
    let batches = all_batches(broker, topic, 0).await;
    assert!(!batches.is_empty(), "{topic}: no batch");
    for batch in &batches {
        assert_eq!(batch.info.compression, codec, "{topic}: {:?}", batch.info);
    }
    let count: usize = batches.iter().map(|b| b.records.len()).sum();
    assert_eq!(count, records, "{topic}");
}

/// The sum of a group's committed offsets, checking that it has no lag.
pub(crate) async fn committed_without_lag(broker: &Broker, group: &str) -> u64 {
    let described = broker.describe_group(group).await.unwrap();
    let mut total = 0;
    for p in &described.partitions {
        assert_eq!(p.lag, Some(0), "{group}: {p:?}");
        total += p.committed_offset.unwrap_or(0);
    }
    total
}

/// Counts the batches of `topic`'s `partitions` partitions: `(data batches, data batches
/// with a producer id (idempotent or transactional producers), control batches (commit and
/// abort markers))`.
pub(crate) async fn producer_batches(
    broker: &Broker,
    topic: &str,
    partitions: u32,
) -> (usize, usize, usize) {
    let (mut data, mut with_id, mut control) = (0, 0, 0);
    for p in 0..partitions {
        for batch in all_batches(broker, topic, p).await {
            if batch.info.control {
                control += 1;
            } else {
                data += 1;
                if batch.info.producer_id >= 0 {
                    with_id += 1;
                }
            }
        }
    }
    (data, with_id, control)
}

/// Runs the client script `tests/{script}` with the server's address and `checks` as
/// arguments, and asserts that it printed `ok CHECK` for each check and `ok` last. Returns
/// what it printed.
pub(crate) async fn run_checks(
    python: PathBuf,
    script: &str,
    addr: std::net::SocketAddr,
    checks: &[&str],
) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(script);
    let mut args = vec![addr.to_string()];
    args.extend(checks.iter().map(|c| c.to_string()));
    let out = tokio::task::spawn_blocking(move || run_script(&python, &path, &args))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && stdout.trim_end().ends_with("\nok"),
        "{script} failed:\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for check in checks {
        assert!(stdout.contains(&format!("ok {check}")), "{stdout}");
    }
    stdout
}
