//! Sliding windows: [`SlidingWindows`].

use std::time::Duration;

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Sliding windows (Kafka's `SlidingWindows`): windows of a fixed length,
/// `[start, start + time_difference]` with **both** bounds inclusive, that
/// are defined by the records rather than aligned to the epoch.
///
/// A record at `t` creates its *left* window `[t - d, t]` (clamped to
/// `[0, d]` for `t < d`), and, once a later record of the key lies within
/// `d` of it, its *right* window `[t + 1, t + 1 + d]`; it updates every
/// existing window that contains it. Two records fall in a common window
/// iff their timestamps differ by at most `d`. A window accepts records
/// while `window_end >= stream_time - grace`; a record is dropped whole
/// when even its right window is closed, `t + 1 + d <= stream_time -
/// grace`.
///
/// ```
/// use std::time::Duration;
/// use streams_dsl::SlidingWindows;
///
/// let windows = SlidingWindows::of_time_difference_and_grace(
///     Duration::from_millis(10),
///     Duration::from_millis(5),
/// );
/// assert_eq!(windows.time_difference_ms(), 10);
/// assert_eq!(windows.grace_ms(), 5);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlidingWindows {
    difference_ms: i64,
    grace_ms: i64,
}

impl SlidingWindows {
    /// Windows of length `time_difference` that accept out-of-order
    /// records until stream time passes their end plus `grace`.
    pub fn of_time_difference_and_grace(time_difference: Duration, grace: Duration) -> Self {
        Self {
            difference_ms: millis(time_difference),
            grace_ms: millis(grace),
        }
    }

    /// Windows of length `time_difference` that close as soon as stream
    /// time passes their end.
    pub fn of_time_difference_with_no_grace(time_difference: Duration) -> Self {
        Self::of_time_difference_and_grace(time_difference, Duration::ZERO)
    }

    /// The time difference (the window length), milliseconds.
    pub fn time_difference_ms(&self) -> i64 {
        self.difference_ms
    }

    /// The grace period, milliseconds.
    pub fn grace_ms(&self) -> i64 {
        self.grace_ms
    }
}
