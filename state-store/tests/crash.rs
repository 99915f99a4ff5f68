//! Crash consistency: the test re-executes itself as a child process that
//! writes rounds of keys and flushes after each (every other one without an
//! fsync, `flush_unsynced`), kills it with SIGKILL at a random moment, reopens the store and checks that every round the child
//! reported as flushed is there. Repeated on the same store.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use state_store::{open_store, KeyValueStore, StoreBackend};

const CHILD_ENV: &str = "STATE_STORE_CRASH_CHILD_DIR";
const KEYS_PER_ROUND: u32 = 300;
const KILLS: usize = 6;

fn key(round: u32, i: u32) -> Bytes {
    Bytes::from(format!("r{round:08}-k{i:05}"))
}

fn value(round: u32, i: u32) -> Bytes {
    Bytes::from(format!("{round}:{i}:{}", "x".repeat(64)))
}

fn last_round(store: &dyn KeyValueStore) -> Option<u32> {
    let v = store.get(b"last").unwrap()?;
    Some(std::str::from_utf8(&v).unwrap().parse().unwrap())
}

/// The child: writes rounds until killed, reporting each flushed round.
fn child(backend: StoreBackend, dir: &Path) {
    let mut store = open_store(backend, dir, "crash").unwrap();
    let mut round = last_round(&*store).map_or(0, |r| r + 1);
    loop {
        for i in 0..KEYS_PER_ROUND {
            store.put(key(round, i), value(round, i)).unwrap();
        }
        store
            .put(Bytes::from_static(b"last"), Bytes::from(round.to_string()))
            .unwrap();
        // Every other round is committed without an fsync (what a task's
        // commit does between checkpoints); the next flush makes it durable
        // with its own round.
        if round.is_multiple_of(2) {
            store.flush_unsynced().unwrap();
        } else {
            store.flush().unwrap();
            println!("flushed {round}");
        }
        round += 1;
    }
}

fn crash_test(backend: StoreBackend, test_name: &str) {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        child(backend, Path::new(&dir));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let mut flushed: Option<u32> = None;
    for kill in 0..KILLS {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(r) = line.strip_prefix("flushed ") {
                    if tx.send(r.parse::<u32>().unwrap()).is_err() {
                        break;
                    }
                }
            }
        });
        // Wait for at least one flushed round, then kill at a random moment.
        let deadline = Instant::now() + Duration::from_secs(60);
        let first = rx
            .recv_timeout(deadline - Instant::now())
            .expect("the child never flushed");
        flushed = Some(flushed.map_or(first, |f| f.max(first)));
        let kill_at = Instant::now() + Duration::from_millis(rng.random_range(0..150));
        while Instant::now() < kill_at {
            if let Ok(r) = rx.recv_timeout(kill_at - Instant::now()) {
                flushed = Some(flushed.map_or(r, |f| f.max(r)));
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        reader.join().unwrap();
        // Rounds reported just before the kill.
        while let Ok(r) = rx.try_recv() {
            flushed = Some(flushed.map_or(r, |f| f.max(r)));
        }

        let store = open_store(backend, dir.path(), "crash")
            .unwrap_or_else(|e| panic!("{backend}: reopen after kill {kill} failed: {e}"));
        let last = last_round(&*store).expect("no round survived");
        let reported = flushed.unwrap();
        assert!(
            last >= reported,
            "{backend}: kill {kill}: round {reported} was flushed but the store ends at {last}"
        );
        for round in 0..=last {
            for i in 0..KEYS_PER_ROUND {
                assert_eq!(
                    store.get(&key(round, i)).unwrap(),
                    Some(value(round, i)),
                    "{backend}: kill {kill}: key {i} of flushed round {round} lost"
                );
            }
        }
        drop(store);
    }
}

#[test]
fn crash_recovery_sled() {
    crash_test(StoreBackend::Sled, "crash_recovery_sled");
}

#[test]
fn crash_recovery_redb() {
    crash_test(StoreBackend::Redb, "crash_recovery_redb");
}
