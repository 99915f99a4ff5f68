//! The state of an app that its stream threads share with it: the
//! lifecycle ([`AppState`]) and its listener, shutdown and kill flags, the
//! test pause points, the first error, and the threads' cores for
//! interactive queries and metrics.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use crate::error::StreamsError;
use crate::exec::TaskId;

use super::directory::{Instances, QueryPlan};
use super::task_manager::Core;

/// The lifecycle of a [`crate::StreamsApp`], as Kafka's `KafkaStreams.State`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AppState {
    /// Built, not started.
    Created,
    /// Some stream thread is joining the group or restoring state.
    Rebalancing,
    /// Every stream thread processes its tasks.
    Running,
    /// `close` was called; the threads are committing and stopping.
    PendingShutdown,
    /// Closed cleanly.
    NotRunning,
    /// A stream thread failed; see [`crate::StreamsApp::error`].
    Error,
}

impl fmt::Display for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Created => "CREATED",
            Self::Rebalancing => "REBALANCING",
            Self::Running => "RUNNING",
            Self::PendingShutdown => "PENDING_SHUTDOWN",
            Self::NotRunning => "NOT_RUNNING",
            Self::Error => "ERROR",
        })
    }
}

/// Where [`StreamsApp::pause_for_tests`] stops the stream threads.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PausePoint {
    /// Before a commit starts (under exactly-once, with the transaction
    /// open and outputs sent).
    BeforeCommit,
    /// Under exactly-once, inside a commit: after the offsets were sent
    /// into the transaction, before it commits.
    InsideCommit,
}

/// Called with `(new, old)` on every state change, as Kafka's
/// `KafkaStreams.StateListener`. It runs on the thread that made the
/// change: keep it short.
pub type StateListener = Arc<dyn Fn(AppState, AppState) + Send + Sync>;

pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the app and its stream threads share.
pub(crate) struct Shared {
    pub(super) state: Mutex<AppState>,
    pub(super) listener: Mutex<Option<StateListener>>,
    pub(super) shutdown: AtomicBool,
    /// Set by [`StreamsApp::kill_for_tests`]: threads stop with no commit.
    pub(super) killed: AtomicBool,
    /// Set by [`StreamsApp::pause_for_tests`]: where threads block until
    /// it is cleared.
    pub(super) paused: Mutex<Option<PausePoint>>,
    pub(super) resumed: Condvar,
    pub(super) error: Mutex<Option<String>>,
    pub(super) restored: AtomicU64,
    /// How many times a stream thread closed its tasks dirty after a
    /// failed or lost transaction.
    pub(super) dirty_closes: Arc<AtomicU64>,
    pub(super) rebalancing: Mutex<Vec<bool>>,
    pub(super) cores: Mutex<Vec<Arc<Mutex<Core>>>>,
    /// Interactive queries: the restoration progress of each store of each
    /// task restoring now, `(restored, total)` records.
    pub(super) restore_progress: Mutex<HashMap<(TaskId, String), (u64, u64)>>,
    /// Set by [`crate::StreamsApp::hold_restoration_for_tests`]: restoring
    /// tasks read their changelogs' ends, then wait.
    pub(super) hold_restoration: AtomicBool,
    /// What interactive queries need, set at start.
    pub(super) query_plan: Mutex<Option<Arc<QueryPlan>>>,
    /// The other instances' tasks, from the instances topic.
    pub(super) instances: Mutex<Instances>,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("state", &*lock(&self.state))
            .field("error", &*lock(&self.error))
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub(super) fn new() -> Self {
        Self {
            state: Mutex::new(AppState::Created),
            listener: Mutex::new(None),
            shutdown: AtomicBool::new(false),
            killed: AtomicBool::new(false),
            paused: Mutex::new(None),
            resumed: Condvar::new(),
            error: Mutex::new(None),
            restored: AtomicU64::new(0),
            dirty_closes: Arc::new(AtomicU64::new(0)),
            rebalancing: Mutex::new(Vec::new()),
            cores: Mutex::new(Vec::new()),
            restore_progress: Mutex::new(HashMap::new()),
            hold_restoration: AtomicBool::new(false),
            query_plan: Mutex::new(None),
            instances: Mutex::new(Instances::new()),
        }
    }

    pub(super) fn state(&self) -> AppState {
        *lock(&self.state)
    }

    /// Moves to `new` unless `allowed(old)` says no; calls the listener
    /// after the change, outside the lock.
    pub(super) fn transition(&self, new: AppState, allowed: impl FnOnce(AppState) -> bool) -> bool {
        let old = {
            let mut state = lock(&self.state);
            let old = *state;
            if old == new || !allowed(old) {
                return false;
            }
            *state = new;
            old
        };
        tracing::info!(from = %old, to = %new, "streams application state changed");
        let listener = lock(&self.listener).clone();
        if let Some(listener) = listener {
            listener(new, old);
        }
        true
    }

    pub(crate) fn shutting_down(&self) -> bool {
        self.shutdown.load(Ordering::Acquire)
    }

    pub(crate) fn killed(&self) -> bool {
        self.killed.load(Ordering::Acquire)
    }

    /// Blocks the calling stream thread, at `point`, while the app is
    /// paused there.
    pub(crate) fn wait_while_paused(&self, point: PausePoint) {
        let mut paused = lock(&self.paused);
        while *paused == Some(point) && !self.killed() {
            paused = self
                .resumed
                .wait(paused)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Whether restoration is held (for tests of queries while restoring).
    pub(crate) fn restoration_held(&self) -> bool {
        self.hold_restoration.load(Ordering::Acquire)
    }

    /// Notes the changelog partitions about to be restored: per target
    /// (task, store index, end offset) and its start offset.
    pub(crate) fn note_restore_targets(
        &self,
        core: &Mutex<Core>,
        targets: &HashMap<crate::client::TopicPartition, (TaskId, usize, u64)>,
        starts: &[(crate::client::TopicPartition, u64)],
    ) {
        let mut core = lock(core);
        let mut progress = lock(&self.restore_progress);
        for (tp, start) in starts {
            let Some((id, store, end)) = targets.get(tp) else {
                continue;
            };
            let Some(name) = core
                .tasks
                .get_mut(id)
                .and_then(|e| e.task.stores_mut().get(*store).map(|s| s.name.clone()))
            else {
                continue;
            };
            // Each call either restores everything or nothing (held, or
            // waiting for a transaction): the count starts again.
            progress.insert((*id, name), (0, end.saturating_sub(*start)));
        }
    }

    /// `records` more changelog records of `store` of `task` restored.
    pub(crate) fn note_restored(&self, task: TaskId, store: &str, records: u64) {
        if let Some((done, _)) = lock(&self.restore_progress).get_mut(&(task, store.to_owned())) {
            *done = done.saturating_add(records);
        }
    }

    /// `task` finished restoring.
    pub(crate) fn forget_restore_progress(&self, task: TaskId) {
        lock(&self.restore_progress).retain(|(id, _), _| *id != task);
    }

    pub(crate) fn add_restored(&self, records: u64) {
        self.restored.fetch_add(records, Ordering::Relaxed);
    }

    /// Records whether stream thread `index` is in a rebalance, and moves
    /// the app between `Rebalancing` and `Running`.
    pub(crate) fn set_thread_rebalancing(&self, index: usize, rebalancing: bool) {
        let any = {
            let mut threads = lock(&self.rebalancing);
            match threads.get_mut(index) {
                Some(slot) if *slot == rebalancing => return,
                Some(slot) => *slot = rebalancing,
                None => return,
            }
            threads.iter().any(|r| *r)
        };
        let new = if any {
            AppState::Rebalancing
        } else {
            AppState::Running
        };
        self.transition(new, |old| {
            matches!(old, AppState::Rebalancing | AppState::Running)
        });
    }

    /// A stream thread failed: the app goes to `Error` and every thread
    /// stops.
    pub(crate) fn fail(&self, error: StreamsError) {
        {
            let mut slot = lock(&self.error);
            if slot.is_none() {
                *slot = Some(error.to_string());
            }
        }
        self.shutdown.store(true, Ordering::Release);
        self.transition(AppState::Error, |_| true);
    }
}
