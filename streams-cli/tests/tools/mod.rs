//! Running a Kafka client program that a test installed (kafkajs, franz-go) against
//! `streams serve`, and reading the JSON it prints.

#![allow(dead_code, reason = "each test file uses some of these")]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Fails under `CI=true` (where the test command installs every tool), otherwise skips the
/// test with a message.
pub(crate) fn unavailable<T>(client: &str, why: String) -> Option<T> {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "{why} (CI=true: the {client} test must run; scripts/test.sh installs what it needs)"
        );
    }
    eprintln!("skipping the {client} test: {why}");
    None
}

/// Whether `program ARG` (`--version`, `version`) runs.
pub(crate) fn runs(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .output()
        .is_ok_and(|out| out.status.success())
}

/// A cache dir under the target dir, shared by runs of the tests.
pub(crate) fn cache_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(name)
}

/// The source dir of a client program, `tests/clients/NAME`.
pub(crate) fn client_source(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(name)
}

/// Runs a client to its end (killed after `limit`) and returns the JSON object on the last
/// line of its stdout, or why not (with its output).
pub(crate) fn run_client(mut cmd: Command, limit: Duration) -> Result<serde_json::Value, String> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = out_reader.join().unwrap();
    let err = err_reader.join().unwrap();
    if !status.is_some_and(|s| s.success()) {
        return Err(format!(
            "{cmd:?} failed ({status:?}; None: killed after {limit:?})\nstdout:\n{out}\nstderr:\n{err}"
        ));
    }
    let last = out.lines().last().unwrap_or_default();
    serde_json::from_str(last)
        .map_err(|e| format!("{cmd:?} printed no JSON ({e}):\n{out}\nstderr:\n{err}"))
}

/// Installs into `dir` by running `install` in a fresh staging dir that `prepare` filled,
/// then moving it into place (a concurrent run that got there first wins).
pub(crate) fn install_dir(
    dir: &Path,
    prepare: impl FnOnce(&Path),
    mut install: Command,
) -> Result<(), String> {
    let staging = dir.with_extension(format!("staging-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(|e| format!("{}: {e}", staging.display()))?;
    prepare(&staging);
    let out = install
        .current_dir(&staging)
        .output()
        .map_err(|e| format!("{install:?} cannot be run: {e}"))?;
    if !out.status.success() {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(format!("{install:?} failed: {out:?}"));
    }
    let _ = std::fs::remove_dir_all(dir);
    if std::fs::rename(&staging, dir).is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    Ok(())
}

/// `streams groups describe`'s rows of `topic`: partition -> committed offset, checking that
/// each has no lag.
pub(crate) fn group_offsets(described: &str, topic: &str) -> std::collections::BTreeMap<i64, i64> {
    described
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|cols| cols.len() == 7 && cols[1] == topic)
        .map(|cols| {
            assert_eq!(cols[5], "0", "no lag: {cols:?}");
            (cols[2].parse().unwrap(), cols[3].parse().unwrap())
        })
        .collect()
}

// The JSON a client program prints, read by the tests.

pub(crate) fn str_of(v: &serde_json::Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

pub(crate) fn int(v: &serde_json::Value) -> i64 {
    v.as_i64().unwrap_or_else(|| panic!("not an integer: {v}"))
}

pub(crate) fn array(v: &serde_json::Value) -> &Vec<serde_json::Value> {
    v.as_array().unwrap_or_else(|| panic!("not an array: {v}"))
}

pub(crate) fn strings(v: &serde_json::Value) -> Vec<String> {
    array(v).iter().map(|s| str_of(s).to_owned()).collect()
}

pub(crate) fn partitions_of(v: &serde_json::Value) -> Vec<i64> {
    array(v).iter().map(int).collect()
}
