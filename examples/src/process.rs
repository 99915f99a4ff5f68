//! Child processes of the benchmarks (an Apache Kafka broker, a Kafka Streams application):
//! what they cost while they run, read from `/proc` (CPU time, peak resident memory), and
//! how they are stopped. Linux only: elsewhere the figures are errors.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::Context as _;

/// The CPU time a live process has used so far, user and system, in seconds (`utime` and
/// `stime` of `/proc/<pid>/stat`: all its threads, those that have ended included).
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    let (utime, stime) = parse_stat_times(&stat).with_context(|| format!("{path}: {stat:?}"))?;
    Ok((utime + stime) as f64 / clock_ticks_per_second() as f64)
}

/// `utime` and `stime` (fields 14 and 15, in clock ticks) of a `/proc/<pid>/stat` line.
fn parse_stat_times(stat: &str) -> anyhow::Result<(u64, u64)> {
    // The command name (field 2) is in parentheses and may hold spaces or parentheses:
    // the fields after it start at the last ')'.
    let rest = stat
        .rfind(')')
        .map(|at| &stat[at + 1..])
        .context("no ')' after the command name")?;
    // `rest` starts with field 3 (the state): fields 14 and 15 are its 12th and 13th.
    let mut fields = rest.split_whitespace().skip(11);
    let mut next = |name: &str| -> anyhow::Result<u64> {
        fields
            .next()
            .with_context(|| format!("no {name} field"))?
            .parse()
            .with_context(|| format!("{name} is not a number"))
    };
    Ok((next("utime")?, next("stime")?))
}

/// The clock ticks per second of `/proc`'s CPU times (`getconf CLK_TCK`; 100, Linux's
/// `USER_HZ` nearly everywhere, if it cannot be asked).
fn clock_ticks_per_second() -> u64 {
    static TICKS: OnceLock<u64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|out| out.status.success())
            .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
            .filter(|&ticks| ticks > 0)
            .unwrap_or(100)
    })
}

/// The peak resident set size of a live process in KiB (`VmHWM` of `/proc/<pid>/status`).
pub fn peak_rss_kib(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("{path} has no VmHWM"))
}

/// Asks `child` to stop with SIGTERM and waits for it to exit; kills it (SIGKILL) if it has
/// not within `timeout`. Returns its exit status, and whether it had to be killed. A child
/// that has exited already is only reaped.
pub(crate) fn terminate(
    child: &mut Child,
    timeout: Duration,
) -> anyhow::Result<(ExitStatus, bool)> {
    if let Some(status) = child.try_wait()? {
        return Ok((status, false));
    }
    // No `unsafe` here (no libc::kill): kill(1) sends the signal.
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("cannot run kill")?;
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok((status, false));
        }
        // kill(1) fails if the process exited in between; then the next wait reaps it.
        if !sent.success() || Instant::now() >= deadline {
            if let Some(status) = child.try_wait()? {
                return Ok((status, false));
            }
            child.kill()?;
            return Ok((child.wait()?, true));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs one of the scripts that print a classpath on their last line of stdout
/// (`scripts/kafka-broker.sh`, `scripts/kafka-streams.sh`), with `cache` as its cache dir
/// (`None`: the script's default, under the target dir); its error names the reason the
/// script gave (no Java, no Maven, no network).
pub(crate) fn classpath_from_script(script: &str, cache: Option<&Path>) -> anyhow::Result<String> {
    let path = workspace_dir().join(script);
    let mut command = Command::new("bash");
    command.arg(&path);
    if let Some(cache) = cache {
        command.arg(cache);
    }
    let out = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run bash {}", path.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let classpath = stdout.lines().last().unwrap_or_default().trim();
    if out.status.success() && !classpath.is_empty() {
        return Ok(classpath.to_owned());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let reason = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no output");
    anyhow::bail!("{script} failed ({}): {reason}", out.status)
}

/// The workspace's root (the folder of `scripts/`), as it was when this crate was built.
pub(crate) fn workspace_dir() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_owned()
}

/// The last `lines` lines of a file, to explain a failure (empty if it cannot be read).
pub(crate) fn tail(path: &Path, lines: usize) -> String {
    let mut text = String::new();
    if let Ok(mut file) = std::fs::File::open(path) {
        let _ = file.read_to_string(&mut text);
    }
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_times_are_read_after_the_command_name() {
        let stat = "4242 (java (main) x) S 1 2 3 4 5 6 7 8 9 10 1234 567 0 0 20 0 40";
        assert_eq!(parse_stat_times(stat).unwrap(), (1234, 567));
        assert!(parse_stat_times("4242 (java) S 1 2").is_err());
        assert!(parse_stat_times("no parenthesis").is_err());
    }

    #[test]
    fn this_process_has_cpu_time_and_a_peak_rss() {
        if !cfg!(target_os = "linux") {
            return;
        }
        let pid = std::process::id();
        // Burn a little CPU so the figure is above zero.
        let mut x = 0u64;
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(50) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        assert!(cpu_seconds(pid).unwrap() > 0.0);
        assert!(peak_rss_kib(pid).unwrap() > 0);
        assert!(cpu_seconds(u32::MAX).is_err());
    }

    #[test]
    fn terminate_stops_a_child_with_sigterm() {
        if !cfg!(target_os = "linux") {
            return;
        }
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let (status, killed) = terminate(&mut child, Duration::from_secs(10)).unwrap();
        assert!(!killed);
        assert!(!status.success());
        // A second call only reports the status.
        let (again, killed) = terminate(&mut child, Duration::from_secs(10)).unwrap();
        assert_eq!(again, status);
        assert!(!killed);
    }

    #[test]
    fn terminate_kills_a_child_that_ignores_sigterm() {
        if !cfg!(target_os = "linux") {
            return;
        }
        let mut child = Command::new("bash")
            .args(["-c", "trap '' TERM; while true; do sleep 0.1; done"])
            .spawn()
            .unwrap();
        // Let bash set its trap first.
        std::thread::sleep(Duration::from_millis(300));
        let (_, killed) = terminate(&mut child, Duration::from_millis(500)).unwrap();
        assert!(killed);
    }
}
