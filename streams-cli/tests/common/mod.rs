//! Running `streams` and `streams serve` from the tests.

#![allow(dead_code, reason = "each test file uses some of these")]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// `streams --data-dir DIR`, with the environment cleared of what would change it.
pub(crate) fn streams(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_streams"));
    cmd.env_remove("STREAMS_DATA_DIR")
        .env_remove("RUST_LOG")
        .arg("--data-dir")
        .arg(dir);
    cmd
}

/// Starts `streams serve` on a free loopback port; returns the child and its address.
pub(crate) fn serve(dir: &Path) -> (Child, String) {
    serve_with(dir, &[])
}

/// [`serve`] with more arguments.
pub(crate) fn serve_with(dir: &Path, args: &[&str]) -> (Child, String) {
    let mut child = streams(dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        // Its log goes where the test's goes; a pipe nobody reads could fill and stall it.
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    // "serving DIR in the Kafka protocol on ADDR; Ctrl-C to stop"
    let addr = line
        .split(" on ")
        .last()
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    (child, addr)
}

pub(crate) fn terminate(mut child: Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "streams serve exited with {status}");
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "streams serve ignored SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running `streams serve`.
#[derive(Debug)]
pub(crate) struct Served {
    child: Child,
    /// The address it listens on, `127.0.0.1:PORT`.
    pub(crate) addr: String,
    /// Where its stderr (its log) goes.
    pub(crate) log: std::path::PathBuf,
}

impl Served {
    /// Starts `streams serve` on `dir` on a free loopback port, with more arguments; its log
    /// goes to the file `DIR.serve.log` beside the data dir, never to a pipe no one reads.
    pub(crate) fn start(dir: &Path, args: &[&str]) -> Self {
        let log = dir.with_extension("serve.log");
        let mut child = streams(dir)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        // "serving DIR in the Kafka protocol on ADDR; Ctrl-C to stop"
        let addr = line
            .split(" on ")
            .last()
            .and_then(|rest| rest.split(';').next())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Served { child, addr, log }
    }

    /// The server's log so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops the server with SIGTERM and checks it exits cleanly within 30 s.
    pub(crate) fn terminate(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "streams serve exited with {status}; log:\n{}",
                    self.log()
                );
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "streams serve ignored SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        // A failed test must not leave the server running.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `streams ARGS` on `dir` and returns its stdout; fails the test on a failure.
pub(crate) fn streams_ok(dir: &Path, args: &[&str]) -> String {
    let out = streams(dir).args(args).output().unwrap();
    assert!(out.status.success(), "streams {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// Whether tests must fail rather than skip when a tool is missing.
pub(crate) fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}
