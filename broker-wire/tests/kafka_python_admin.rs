//! A client no one here wrote: kafka-python's `KafkaAdminClient` creates, describes, alters,
//! grows and deletes topics on the served broker (the script is `kafka_python_admin.py`).
//!
//! kafka-python is installed from PyPI into a virtualenv under the target dir the first
//! time. Without Python or pip the test is skipped with a message, except under `CI=true`,
//! where that is a failure.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use broker_embedded::BrokerConfig;
use broker_wire::WireConfig;
use common::start;

/// Fails under CI, skips elsewhere.
fn unavailable(why: String) -> Option<PathBuf> {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{why} (CI=true: Python and pip are required)");
    }
    eprintln!("skipping the kafka-python test: {why}");
    None
}

/// The virtualenv's Python with kafka-python installed, made on the first run.
fn python_with_kafka() -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kafka-python-venv");
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
    let has_kafka = Command::new(&python)
        .args(["-c", "import kafka.admin"])
        .output()
        .is_ok_and(|out| out.status.success());
    if !has_kafka {
        let installed = Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "kafka-python>=2.1,<3"])
            .output();
        match installed {
            Ok(out) if out.status.success() => {}
            Ok(out) => return unavailable(format!("pip install kafka-python failed: {out:?}")),
            Err(e) => return unavailable(format!("pip cannot be run: {e}")),
        }
    }
    Some(python)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_python_admin_client_manages_topics_and_configs() {
    let Some(python) = tokio::task::spawn_blocking(python_with_kafka)
        .await
        .unwrap()
    else {
        return;
    };
    let (broker, addr) = start(BrokerConfig::default(), WireConfig::default()).await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kafka_python_admin.py");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .arg(addr.to_string())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim_end().ends_with("ok"),
        "kafka-python admin script failed:\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // What the script did is in the broker.
    assert_eq!(broker.list_topics().await.unwrap(), vec!["py-keep"]);
    assert_eq!(broker.partition_count("py-keep").await.unwrap(), 3);
    let config = broker.describe_topic("py-keep").await.unwrap().config;
    // AlterConfigs replaced the whole config: retention.ms went back to its default.
    assert_eq!(config.segment_ms, 60_000);
    assert_eq!(config.retention_ms, Some(604_800_000));
}
