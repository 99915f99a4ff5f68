//! Helpers shared by the cross-crate and end-to-end tests: re-running the current test binary
//! as a child process (for crash tests), and deterministic corpora.

use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The environment variable that tells a re-executed test binary to run as the child.
pub const CHILD_ENV: &str = "STREAMS_TEST_CHILD";

/// If this process was started by [`spawn_child`], the argument given to it.
pub fn child_arg() -> Option<String> {
    std::env::var(CHILD_ENV).ok()
}

/// Re-runs the current test binary as a child process that runs only `test_name`, with
/// `arg` in [`CHILD_ENV`]. The child's stdout and stderr are discarded unless
/// `STREAMS_TEST_CHILD_OUTPUT` is set.
pub fn spawn_child(test_name: &str, arg: &str) -> std::io::Result<Child> {
    let exe = std::env::current_exe()?;
    let output = || {
        if std::env::var_os("STREAMS_TEST_CHILD_OUTPUT").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        }
    };
    Command::new(exe)
        .args(["--exact", test_name, "--nocapture", "--test-threads", "1"])
        .env(CHILD_ENV, arg)
        .stdin(Stdio::null())
        .stdout(output())
        .stderr(output())
        .spawn()
}

/// Sends SIGKILL to a child and reaps it.
pub fn kill_9(child: &mut Child) -> std::io::Result<()> {
    let status = Command::new("kill")
        .args(["-9", &child.id().to_string()])
        .status()?;
    if !status.success() {
        // The child may have exited on its own already; reaping below tells.
        eprintln!("kill -9 {} returned {status}", child.id());
    }
    child.wait()?;
    Ok(())
}

/// Waits until `path` exists and holds at least `min_lines` lines, or `deadline` passes.
pub fn wait_for_lines(path: &Path, min_lines: usize, deadline: std::time::Duration) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < deadline {
        if let Ok(text) = std::fs::read_to_string(path) {
            if text.lines().count() >= min_lines {
                return true;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    false
}
