//! The `pageviews` binary: its printed final counts and late views match
//! a brute-force replay of the generated events; and, under
//! `exactly_once_v2`, killed with SIGKILL again and again over one data dir
//! and restarted, then left to finish, it emits every window's final count
//! exactly once (read with `read_committed`), equal to the brute-force
//! count, and every late view once to `pageviews-late`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use broker_embedded::{Broker, BrokerConfig};
use examples::read_committed;
use examples::windowed::{
    expected_final_counts, pageview_events, PageView, LATE_TOPIC, MINUTE_MS, PER_MINUTE_TOPIC,
};
use streams_core::{Serde as _, Serdes};

/// Parses `key=value` fields of a line.
fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))
}

#[test]
fn pageviews_prints_the_final_counts_and_late_views_of_a_brute_force_replay() {
    let output = Command::new(env!("CARGO_BIN_EXE_pageviews"))
        .args(["--events", "400", "--users", "5", "--seed", "7"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let events = pageview_events(400, 5, 500, 7);
    let (expected, late) = expected_final_counts(&events);

    let mut finals = BTreeMap::new();
    let mut late_seen = Vec::new();
    for line in stdout.lines() {
        if line.starts_with("final ") {
            let user = field(line, "user").unwrap().to_owned();
            let start: i64 = field(line, "window_start").unwrap().parse().unwrap();
            let count: i64 = field(line, "count").unwrap().parse().unwrap();
            assert!(finals.insert((user, start), count).is_none(), "{line}");
        } else if line.starts_with("late ") {
            let user = field(line, "user").unwrap().to_owned();
            let ts: i64 = field(line, "timestamp").unwrap().parse().unwrap();
            let late_by: i64 = field(line, "late_by_ms").unwrap().parse().unwrap();
            assert!(late_by > 0, "{line}");
            late_seen.push((user, ts));
        }
    }
    assert_eq!(finals, expected);
    let late_expected: Vec<(String, i64)> = late
        .iter()
        .map(|&i| (events[i].user.clone(), events[i].timestamp))
        .collect();
    assert_eq!(late_seen, late_expected);
    let summary = stdout.lines().last().unwrap();
    assert_eq!(
        field(summary, "final_windows"),
        Some(expected.len().to_string().as_str())
    );
    // The hopping count drops late views too, so the app's total is more
    // than the per-minute count's.
    let dropped: usize = field(summary, "dropped_records").unwrap().parse().unwrap();
    assert!(dropped > late.len(), "{summary}");
}

const KILL_EVENTS: usize = 200_000;
const KILL_USERS: usize = 200;
const KILL_STEP_MS: i64 = 100;
const KILL_SEED: u64 = 0x5eed_f00d;
const KILLS: usize = 6;
const START_TIMEOUT: Duration = Duration::from_secs(60);
const FINISH_TIMEOUT: Duration = Duration::from_secs(240);

fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed | 1;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

/// One run of the binary, its stdout read line by line on a thread.
struct Run {
    child: Child,
    lines: mpsc::Receiver<String>,
    log: PathBuf,
}

impl Run {
    fn spawn(dir: &Path, index: usize) -> Self {
        let log = dir.join(format!("run-{index}.log"));
        let events = KILL_EVENTS.to_string();
        let users = KILL_USERS.to_string();
        let step = KILL_STEP_MS.to_string();
        let seed = KILL_SEED.to_string();
        let mut child = Command::new(env!("CARGO_BIN_EXE_pageviews"))
            .arg("--data-dir")
            .arg(dir.join("data"))
            .args([
                "--events",
                &events,
                "--users",
                &users,
                "--step-ms",
                &step,
                "--seed",
                &seed,
                "--guarantee",
                "exactly_once_v2",
                "--commit-interval-ms",
                "100",
                "--no-hopping",
                "--summary-only",
            ])
            .stdout(Stdio::piped())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines, log }
    }

    /// Waits until the run has produced its input or found it there;
    /// `false` if it exited first.
    fn wait_for_input(&mut self) -> bool {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            match self.lines.recv_timeout(Duration::from_millis(50)) {
                Ok(line) if line.contains("produced") => return true,
                Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return false,
            }
        }
        panic!("{}", self.failure("did not start within the timeout"));
    }

    fn failure(&self, what: &str) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        format!(
            "the pageviews run {what}; the end of its stderr ({}):\n{}",
            self.log.display(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
    }
}

/// A window of a user: (user, window start).
type UserWindow = (String, i64);

/// What the output topics committed: every final count, as ((user, window
/// start), count) in offset order, and every late view as (user,
/// timestamp).
struct Committed {
    finals: Vec<(UserWindow, i64)>,
    late: Vec<(String, i64)>,
}

fn committed(dir: &Path) -> Committed {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let broker = Broker::open(dir.join("data").join("broker"), BrokerConfig::default())
            .await
            .unwrap();
        let windowed = Serdes::time_windowed(Serdes::string(), MINUTE_MS);
        let finals = read_committed(&broker, PER_MINUTE_TOPIC, Duration::from_secs(60))
            .await
            .unwrap()
            .into_iter()
            .map(|r| {
                let key = windowed
                    .deserialize(PER_MINUTE_TOPIC, r.key.as_ref().unwrap())
                    .unwrap();
                let count = Serdes::i64()
                    .deserialize(PER_MINUTE_TOPIC, r.value.as_ref().unwrap())
                    .unwrap();
                ((key.key, key.window.start), count)
            })
            .collect();
        let late = read_committed(&broker, LATE_TOPIC, Duration::from_secs(60))
            .await
            .unwrap()
            .into_iter()
            .map(|r| {
                let user = String::from_utf8(r.key.unwrap().to_vec()).unwrap();
                (user, r.timestamp)
            })
            .collect();
        broker.close().await.unwrap();
        Committed { finals, late }
    })
}

#[test]
fn exactly_once_v2_final_window_counts_survive_sigkills() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let events: Vec<PageView> = pageview_events(KILL_EVENTS, KILL_USERS, KILL_STEP_MS, KILL_SEED);
    let (expected, late) = expected_final_counts(&events);

    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    println!("kill seed {seed}");
    let mut next = xorshift(seed);
    let mut killed = 0;
    for kill in 0..KILLS {
        let mut run = Run::spawn(dir.path(), kill);
        if run.wait_for_input() {
            std::thread::sleep(Duration::from_millis(300 + next() % 1_500));
        }
        if let Some(status) = run.child.try_wait().unwrap() {
            assert!(status.success(), "{}", run.failure("failed"));
            println!("run {kill} finished before its kill");
            continue;
        }
        // Child::kill sends SIGKILL.
        run.child.kill().unwrap();
        run.child.wait().unwrap();
        killed += 1;
    }

    let mut run = Run::spawn(dir.path(), KILLS);
    let deadline = Instant::now() + FINISH_TIMEOUT;
    let status = loop {
        if let Some(status) = run.child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            run.child.kill().unwrap();
            run.child.wait().unwrap();
            panic!("{}", run.failure("did not finish within the timeout"));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{}", run.failure("failed"));

    let Committed {
        finals,
        late: late_seen,
    } = committed(dir.path());
    let mut seen: BTreeMap<UserWindow, i64> = BTreeMap::new();
    let mut duplicated = Vec::new();
    for (window, count) in finals {
        if let Some(first) = seen.insert(window.clone(), count) {
            duplicated.push((window, first, count));
        }
    }
    assert!(
        duplicated.is_empty(),
        "{} windows emitted more than once (window, first, again): {:?}",
        duplicated.len(),
        &duplicated[..duplicated.len().min(5)]
    );
    let wrong: Vec<_> = expected
        .iter()
        .filter(|(w, c)| seen.get(*w) != Some(c))
        .map(|(w, c)| (w.clone(), *c, seen.get(w).copied()))
        .take(5)
        .collect();
    assert!(
        wrong.is_empty(),
        "wrong final counts (window, expected, committed): {wrong:?}"
    );
    assert_eq!(
        seen.len(),
        expected.len(),
        "windows emitted that should not be"
    );
    let late_expected: Vec<(String, i64)> = late
        .iter()
        .map(|&i| (events[i].user.clone(), events[i].timestamp))
        .collect();
    assert_eq!(late_seen, late_expected);
    println!(
        "{killed} of {KILLS} runs killed; {} final windows and {} late views exactly once; {:.1} s",
        expected.len(),
        late_expected.len(),
        started.elapsed().as_secs_f64()
    );
}
