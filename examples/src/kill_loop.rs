//! The SIGKILL loop of the examples' crash tests: a binary killed again
//! and again over one data dir, restarted each time, then left to finish.

use std::fs::File;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

/// The last 20 lines of run `index`'s log in `dir`.
fn log_tail(dir: &Path, index: usize) -> String {
    let log = std::fs::read_to_string(dir.join(format!("run-{index}.log"))).unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(20).collect();
    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
}

/// Starts run `index` with `spawn`, which gets the file its stderr goes to
/// (`<dir>/run-<index>.log`); `kills` runs are killed with SIGKILL after a
/// delay of `delays.0` to `delays.0 + delays.1` ms drawn from a seed of
/// the clock (a run that finishes before its kill must succeed), then one
/// more run must finish, successfully, within `finish`. An error carries
/// the failed run's log tail; it is also an error if no kill landed while
/// the binary was working.
///
/// # Errors
///
/// As above, and I/O errors creating the logs or waiting on a child.
pub fn kill_then_finish(
    dir: &Path,
    kills: usize,
    delays: (u64, u64),
    finish: Duration,
    mut spawn: impl FnMut(File) -> std::io::Result<Child>,
) -> anyhow::Result<()> {
    let mut start = |index: usize| -> anyhow::Result<Child> {
        let path = dir.join(format!("run-{index}.log"));
        let log =
            File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        spawn(log).context("cannot start the binary")
    };
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(7, |d| u64::from(d.subsec_nanos()));
    println!("kill seed {seed}");
    let mut killed_mid_work = 0;
    for kill in 0..kills {
        let mut child = start(kill)?;
        let delay = delays.0
            + seed
                .wrapping_mul(kill as u64 + 1)
                .wrapping_mul(2_654_435_761)
                % delays.1.max(1);
        std::thread::sleep(Duration::from_millis(delay));
        if let Some(status) = child.try_wait()? {
            if !status.success() {
                bail!("run {kill} failed:\n{}", log_tail(dir, kill));
            }
            println!("run {kill} finished before its kill");
            continue;
        }
        child.kill()?;
        child.wait()?;
        killed_mid_work += 1;
        println!("killed run {kill} after {delay} ms");
    }
    let mut child = start(kills)?;
    let deadline = Instant::now() + finish;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            child.kill()?;
            child.wait()?;
            bail!("the last run did not finish:\n{}", log_tail(dir, kills));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    if !status.success() {
        bail!("the last run failed:\n{}", log_tail(dir, kills));
    }
    if killed_mid_work == 0 {
        bail!("no kill landed while the binary was working");
    }
    Ok(())
}
