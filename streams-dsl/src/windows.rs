//! Time windows: [`TimeWindows`] (tumbling and hopping), and what a
//! windowed aggregation does with late records ([`LateRecords`]).

use std::time::Duration;

use streams_core::Window;

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Fixed-size time windows aligned to the epoch (Kafka's `TimeWindows`):
/// tumbling when the advance equals the size, hopping when it is smaller.
///
/// Windows are half-open, `[start, start + size)`. A record at `ts` belongs
/// to every window whose start is a non-negative multiple of the advance
/// with `start <= ts < start + size`. A window accepts records until stream
/// time reaches its end plus the grace period.
///
/// ```
/// use std::time::Duration;
/// use streams_core::Window;
/// use streams_dsl::TimeWindows;
///
/// let hopping = TimeWindows::of_size_with_no_grace(Duration::from_millis(10))
///     .advance_by(Duration::from_millis(5));
/// assert!(hopping.validate().is_ok());
/// assert_eq!(
///     hopping.windows_for(12),
///     [Window::new(5, 15), Window::new(10, 20)]
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindows {
    size_ms: i64,
    advance_ms: i64,
    grace_ms: i64,
}

impl TimeWindows {
    /// Tumbling windows of `size`, closing as soon as stream time reaches
    /// their end.
    pub fn of_size_with_no_grace(size: Duration) -> Self {
        Self::of_size_and_grace(size, Duration::ZERO)
    }

    /// Tumbling windows of `size` that accept out-of-order records until
    /// stream time reaches their end plus `grace`.
    pub fn of_size_and_grace(size: Duration, grace: Duration) -> Self {
        let size_ms = millis(size);
        Self {
            size_ms,
            advance_ms: size_ms,
            grace_ms: millis(grace),
        }
    }

    /// Hopping windows: a new window starts every `advance`, which must be
    /// more than zero and at most the size (checked by
    /// [`TimeWindows::validate`], and when the topology is built).
    pub fn advance_by(mut self, advance: Duration) -> Self {
        self.advance_ms = millis(advance);
        self
    }

    /// The window size, milliseconds.
    pub fn size_ms(&self) -> i64 {
        self.size_ms
    }

    /// The advance, milliseconds.
    pub fn advance_ms(&self) -> i64 {
        self.advance_ms
    }

    /// The grace period, milliseconds.
    pub fn grace_ms(&self) -> i64 {
        self.grace_ms
    }

    /// Checks that the size is more than zero and that
    /// `0 < advance <= size`.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.size_ms <= 0 {
            return Err(format!(
                "window size must be more than zero, got {} ms",
                self.size_ms
            ));
        }
        if self.advance_ms <= 0 || self.advance_ms > self.size_ms {
            return Err(format!(
                "window advance must be more than zero and at most the size ({} ms), got {} ms",
                self.size_ms, self.advance_ms
            ));
        }
        Ok(())
    }

    /// The windows a record at `timestamp` belongs to, by ascending start:
    /// every `[s, s + size)` with `s` a multiple of the advance, `s >= 0`
    /// and `s <= timestamp < s + size`. Empty for a negative timestamp or
    /// invalid windows.
    pub fn windows_for(&self, timestamp: i64) -> Vec<Window> {
        let mut out = Vec::new();
        if timestamp < 0 || self.validate().is_err() {
            return out;
        }
        // The lowest start with start + size > timestamp, rounded up to a
        // multiple of the advance.
        let lowest = (timestamp - self.size_ms + 1).max(0);
        let rem = lowest % self.advance_ms;
        let mut start = if rem == 0 {
            Some(lowest)
        } else {
            (lowest - rem).checked_add(self.advance_ms)
        };
        while let Some(s) = start.filter(|s| *s <= timestamp) {
            out.push(Window::new(s, s.saturating_add(self.size_ms)));
            start = s.checked_add(self.advance_ms);
        }
        out
    }
}

/// What a windowed aggregation does with the records it drops as late:
/// only count and log them ([`LateRecords::drop`], the default), or also
/// send each to a dead-letter topic ([`LateRecords::to_topic`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LateRecords {
    topic: Option<String>,
}

impl LateRecords {
    /// The header holding how late a routed record was: stream time minus
    /// its timestamp, in milliseconds, as decimal ASCII.
    pub const LATE_BY_MS_HEADER: &'static str = "late.by.ms";
    /// The header holding the start of the window the record was dropped
    /// for, as decimal ASCII.
    pub const WINDOW_START_HEADER: &'static str = "late.window.start";
    /// The header holding the end of the window the record was dropped
    /// for, as decimal ASCII.
    pub const WINDOW_END_HEADER: &'static str = "late.window.end";

    /// Late records are counted and logged, nothing more (the default).
    pub fn drop() -> Self {
        Self { topic: None }
    }

    /// Each late record also goes to `topic`, once per window it is
    /// dropped for: its key and value bytes as the aggregation's task read
    /// them (from the source topic, or from the repartition topic after a
    /// key change), its timestamp and headers, plus the headers
    /// [`LateRecords::LATE_BY_MS_HEADER`],
    /// [`LateRecords::WINDOW_START_HEADER`] and
    /// [`LateRecords::WINDOW_END_HEADER`]. The runtime creates the topic
    /// (one partition) if it does not exist; under exactly-once the routed
    /// records are part of the task's transaction.
    pub fn to_topic(topic: impl Into<String>) -> Self {
        Self {
            topic: Some(topic.into()),
        }
    }

    /// The dead-letter topic, if any.
    pub fn topic(&self) -> Option<&str> {
        self.topic.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Every window start from 0 to `ts`, checked one by one.
    fn brute_force(size: i64, advance: i64, ts: i64) -> Vec<Window> {
        (0..=ts)
            .filter(|s| s % advance == 0 && *s <= ts && ts < s + size)
            .map(|s| Window::new(s, s + size))
            .collect()
    }

    proptest! {
        #[test]
        fn windows_for_matches_brute_force(
            size in 1u64..50,
            advance_frac in 0.0f64..1.0,
            ts in 0i64..500,
        ) {
            // 1 <= advance <= size.
            let advance = 1 + ((size - 1) as f64 * advance_frac) as u64;
            let windows = TimeWindows::of_size_with_no_grace(ms(size)).advance_by(ms(advance));
            prop_assert!(windows.validate().is_ok());
            prop_assert_eq!(
                windows.windows_for(ts),
                brute_force(size as i64, advance as i64, ts)
            );
        }
    }

    #[test]
    fn tumbling_window_end_belongs_to_the_next_window() {
        let windows = TimeWindows::of_size_with_no_grace(ms(10));
        assert_eq!(windows.windows_for(9), [Window::new(0, 10)]);
        assert_eq!(windows.windows_for(10), [Window::new(10, 20)]);
        assert!(windows.windows_for(-1).is_empty());
    }

    #[test]
    fn advance_is_validated() {
        let size = TimeWindows::of_size_with_no_grace(ms(10));
        assert!(size.advance_by(ms(0)).validate().is_err());
        assert!(size.advance_by(ms(11)).validate().is_err());
        assert!(size.advance_by(ms(10)).validate().is_ok());
        assert!(TimeWindows::of_size_with_no_grace(ms(0))
            .validate()
            .is_err());
        assert!(size.advance_by(ms(11)).windows_for(5).is_empty());
    }

    #[test]
    fn large_timestamps_do_not_overflow() {
        let windows = TimeWindows::of_size_with_no_grace(ms(10)).advance_by(ms(3));
        let got = windows.windows_for(i64::MAX);
        assert!(!got.is_empty());
        assert!(got
            .iter()
            .all(|w| w.start > i64::MAX - 10 && w.end == i64::MAX));
    }
}
