//! The first start of the `wordcount` binary on a fresh data dir wipes
//! nothing and says so.
//!
//! With two stream threads the first rebalance hands every task to the
//! thread that joined first and takes some away when the second joins,
//! before they were restored. Their stores, created empty a moment before,
//! must be closed with a checkpoint, so that the next owner neither wipes
//! them nor warns that it did: a warning about a wiped store on a first
//! start would send an operator looking for a crash that never happened.

use std::process::Command;

/// Runs the binary on a fresh data dir with `RUST_LOG=warn`; returns its
/// stderr.
fn first_start(guarantee: &str, store: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("lines.txt");
    let lines = examples::corpus(3_000, 11);
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_wordcount"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--input")
        .arg(&input)
        .args([
            "--guarantee",
            guarantee,
            "--store",
            store,
            "--threads",
            "2",
            "--exit-when-idle",
        ])
        .env("RUST_LOG", "warn")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "{guarantee}, {store}: the run failed: {stderr}"
    );
    stderr
}

/// The warnings of `stderr` about wiped or unverifiable stores.
fn store_warnings(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|line| line.contains("WARN"))
        .filter(|line| {
            let line = line.to_lowercase();
            [
                "wipe",
                "wiping",
                "not closed cleanly",
                "discarding the checkpoint",
            ]
            .iter()
            .any(|word| line.contains(word))
        })
        .collect()
}

#[test]
fn a_first_start_warns_about_no_store() {
    for (guarantee, store) in [
        ("exactly_once_v2", "sled"),
        ("exactly_once_v2", "redb"),
        ("at_least_once", "redb"),
    ] {
        let stderr = first_start(guarantee, store);
        let warnings = store_warnings(&stderr);
        assert!(
            warnings.is_empty(),
            "{guarantee}, {store}: a first start warned about its stores:\n{}",
            warnings.join("\n")
        );
    }
}
