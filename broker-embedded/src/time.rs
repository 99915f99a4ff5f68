//! Wall-clock time, injectable so that retention, compaction and timeouts can be tested
//! without sleeping.

use std::fmt::Debug;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// A source of wall-clock time in epoch milliseconds (Kafka's `Time`).
pub trait Time: Send + Sync + Debug {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemTime;

impl Time for SystemTime {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}

/// A manual clock for tests: it only moves when told to.
#[derive(Debug, Default)]
pub struct MockTime {
    now: AtomicI64,
}

impl MockTime {
    /// A clock standing at `now_ms`.
    pub fn new(now_ms: i64) -> Arc<Self> {
        Arc::new(MockTime {
            now: AtomicI64::new(now_ms),
        })
    }

    /// Moves the clock forward by `ms`.
    pub fn advance(&self, ms: i64) {
        self.now.fetch_add(ms, Ordering::SeqCst);
    }

    /// Sets the clock to `now_ms`.
    pub fn set(&self, now_ms: i64) {
        self.now.store(now_ms, Ordering::SeqCst);
    }
}

impl Time for MockTime {
    fn now_ms(&self) -> i64 {
        self.now.load(Ordering::SeqCst)
    }
}
