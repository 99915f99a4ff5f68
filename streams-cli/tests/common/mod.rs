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
