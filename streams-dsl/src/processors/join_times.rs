//! [`JoinTimes`]: the times the processors of one stream–stream join share
//! within a task (Kafka's `TimeTracker`, plus the observed stream time of
//! each window store).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use streams_core::{ProcessorContext, Result};

/// The side of a stream–stream join a record comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// The stream `join` was called on.
    Left,
    /// The stream passed to `join`.
    Right,
}

impl Side {
    fn index(self) -> usize {
        match self {
            Self::Left => 0,
            Self::Right => 1,
        }
    }

    /// The other side.
    pub(crate) fn other(self) -> Self {
        match self {
            Self::Left => Self::Right,
            Self::Right => Self::Left,
        }
    }
}

/// The times of one join in one task.
#[derive(Debug, Default)]
pub(crate) struct JoinTimes {
    /// The largest timestamp either join processor has seen, records with
    /// a null key or value included (Kafka's shared `streamTime`).
    pub(crate) stream_time: Option<i64>,
    /// A lower bound of the timestamps held in the outer-join store, as
    /// Kafka's `minTime` keeps it: lowered by every record held, set by
    /// every flush to the timestamp of the last held record it looked at.
    /// `None`: no bound known (Kafka's `Long.MAX_VALUE`, or a task that
    /// just opened): the next flush looks.
    pub(crate) min_time: Option<i64>,
    /// Per side, the largest timestamp put in that side's window store
    /// (the store's observed stream time).
    store_time: [Option<i64>; 2],
}

impl JoinTimes {
    /// Moves stream time to `timestamp` if that is later.
    pub(crate) fn advance_stream_time(&mut self, timestamp: i64) {
        self.stream_time = Some(self.stream_time.map_or(timestamp, |t| t.max(timestamp)));
    }

    /// Lowers the bound of held timestamps to `timestamp`.
    pub(crate) fn held(&mut self, timestamp: i64) {
        self.min_time = Some(self.min_time.map_or(timestamp, |t| t.min(timestamp)));
    }

    /// The largest timestamp in `side`'s window store.
    pub(crate) fn store_time(&self, side: Side) -> Option<i64> {
        self.store_time[side.index()]
    }

    /// Records that `side`'s window store holds a record at `timestamp`.
    pub(crate) fn stored(&mut self, side: Side, timestamp: i64) {
        let slot = &mut self.store_time[side.index()];
        *slot = Some(slot.map_or(timestamp, |t| t.max(timestamp)));
    }
}

/// Whether a window store whose largest timestamp is `store_time` keeps
/// (and shows) a record at `timestamp`: while `timestamp > store_time −
/// retention`, as Kafka's window stores do.
pub(crate) fn live_in_store(timestamp: i64, store_time: Option<i64>, retention: i64) -> bool {
    store_time.is_none_or(|t| timestamp > t.saturating_sub(retention))
}

/// The times shared under `name` by the processors of the task running
/// `ctx`.
pub(crate) fn shared_times<KO, VO>(
    ctx: &mut ProcessorContext<'_, KO, VO>,
    name: &str,
) -> Result<Arc<Mutex<JoinTimes>>> {
    ctx.task_shared(name, || Mutex::new(JoinTimes::default()))
}

/// Locks `times`. A panic while they were locked (the task then fails and
/// is closed) leaves them usable.
pub(crate) fn lock(times: &Mutex<JoinTimes>) -> MutexGuard<'_, JoinTimes> {
    times.lock().unwrap_or_else(PoisonError::into_inner)
}
