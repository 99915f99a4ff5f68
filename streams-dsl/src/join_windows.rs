//! [`JoinWindows`]: how far apart in time two records of a stream–stream
//! join may be.

use std::time::Duration;

/// Milliseconds of one day: the grace of the deprecated [`JoinWindows::of`]
/// is a day minus twice the time difference.
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The windows of a stream–stream join (Kafka's `JoinWindows`): a record
/// of the left stream at `ts` joins every right record of the same key
/// whose timestamp lies in `[ts − before, ts + after]`, both ends
/// included; seen from the right stream the window is the mirror,
/// `[ts − after, ts + before]`.
///
/// The grace period is how long after a window's end out-of-order records
/// are still joined, and how long a left or outer join waits before it
/// emits a record that found no partner. Windows built with
/// [`JoinWindows::of_time_difference_and_grace`] or
/// [`JoinWindows::of_time_difference_without_grace`] emit such a record,
/// null-padded, only once its window has closed; the deprecated
/// [`JoinWindows::of`] emits it at once, possibly before its partner
/// arrives (Kafka's behaviour before 3.1).
///
/// `before` and `after` may be negative (with [`JoinWindows::with_before_ms`]
/// and [`JoinWindows::with_after_ms`]), but not their sum. Invalid windows
/// are reported by [`JoinWindows::validate`], and by
/// [`crate::StreamsBuilder::build`] for a join that uses them.
///
/// ```
/// use std::time::Duration;
/// use streams_dsl::JoinWindows;
///
/// let windows = JoinWindows::of_time_difference_and_grace(
///     Duration::from_millis(100),
///     Duration::from_millis(10),
/// )
/// .after(Duration::from_millis(50));
/// assert_eq!((windows.before_ms(), windows.after_ms()), (100, 50));
/// assert_eq!((windows.size_ms(), windows.grace_ms()), (150, 10));
/// assert!(windows.validate().is_ok());
/// assert!(JoinWindows::of_time_difference_without_grace(Duration::from_millis(10))
///     .with_after_ms(-20)
///     .validate()
///     .is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinWindows {
    before_ms: i64,
    after_ms: i64,
    grace_ms: i64,
    /// Whether unmatched records of a left or outer join wait for their
    /// window to close (Kafka's `enableSpuriousResultFix`).
    wait_for_close: bool,
    /// Set by [`JoinWindows::grace`] on windows that have their grace
    /// already: Kafka throws; here the join reports it when built.
    grace_set_twice: bool,
}

impl JoinWindows {
    /// Records join when their timestamps are at most `time_difference`
    /// apart, in either direction, and out-of-order records are joined
    /// until stream time passes a window's end by `grace`. Unmatched
    /// records of a left or outer join are emitted once their window has
    /// closed.
    pub fn of_time_difference_and_grace(time_difference: Duration, grace: Duration) -> Self {
        let difference = millis(time_difference);
        Self {
            before_ms: difference,
            after_ms: difference,
            grace_ms: millis(grace),
            wait_for_close: true,
            grace_set_twice: false,
        }
    }

    /// [`JoinWindows::of_time_difference_and_grace`] with no grace: a
    /// record arriving after its window's end is not joined any more.
    pub fn of_time_difference_without_grace(time_difference: Duration) -> Self {
        Self::of_time_difference_and_grace(time_difference, Duration::ZERO)
    }

    /// Records join when their timestamps are at most `time_difference`
    /// apart, with a grace of one day minus twice the difference (at least
    /// zero), and a left or outer join emits an unmatched record at once,
    /// null-padded, even if a partner arrives later (Kafka's
    /// `JoinWindows.of`, deprecated since Kafka 3.0).
    #[deprecated(
        note = "unmatched records are emitted at once, before a later partner; use of_time_difference_and_grace or of_time_difference_without_grace"
    )]
    pub fn of(time_difference: Duration) -> Self {
        let difference = millis(time_difference);
        Self {
            before_ms: difference,
            after_ms: difference,
            grace_ms: DAY_MS.saturating_sub(difference.saturating_mul(2)).max(0),
            wait_for_close: false,
            grace_set_twice: false,
        }
    }

    /// Sets the grace of windows made by the deprecated [`JoinWindows::of`]
    /// (Kafka's deprecated `JoinWindows.grace`). Windows made by
    /// [`JoinWindows::of_time_difference_and_grace`] or
    /// [`JoinWindows::of_time_difference_without_grace`] have their grace
    /// already: calling it on them makes the windows invalid.
    #[deprecated(note = "use of_time_difference_and_grace")]
    pub fn grace(mut self, grace: Duration) -> Self {
        if self.wait_for_close {
            self.grace_set_twice = true;
        } else {
            self.grace_ms = millis(grace);
        }
        self
    }

    /// How much earlier than a left record a right record may be.
    pub fn before(self, time_difference: Duration) -> Self {
        self.with_before_ms(millis(time_difference))
    }

    /// How much later than a left record a right record may be.
    pub fn after(self, time_difference: Duration) -> Self {
        self.with_after_ms(millis(time_difference))
    }

    /// [`JoinWindows::before`] in milliseconds, which may be negative (a
    /// right record must then be at least that much *later*) as long as
    /// `before + after` is not.
    pub fn with_before_ms(mut self, before_ms: i64) -> Self {
        self.before_ms = before_ms;
        self
    }

    /// [`JoinWindows::after`] in milliseconds, which may be negative (a
    /// right record must then be at least that much *earlier*) as long as
    /// `before + after` is not.
    pub fn with_after_ms(mut self, after_ms: i64) -> Self {
        self.after_ms = after_ms;
        self
    }

    /// How much earlier than a left record a right record may be,
    /// milliseconds.
    pub fn before_ms(&self) -> i64 {
        self.before_ms
    }

    /// How much later than a left record a right record may be,
    /// milliseconds.
    pub fn after_ms(&self) -> i64 {
        self.after_ms
    }

    /// The grace period, milliseconds.
    pub fn grace_ms(&self) -> i64 {
        self.grace_ms
    }

    /// `before + after`, milliseconds (Kafka's `size()`), saturating.
    pub fn size_ms(&self) -> i64 {
        self.before_ms.saturating_add(self.after_ms)
    }

    /// Whether a left or outer join waits for a window to close before it
    /// emits an unmatched record (`false` only for the deprecated
    /// [`JoinWindows::of`]).
    pub fn waits_for_window_close(&self) -> bool {
        self.wait_for_close
    }

    /// The retention of the join's window stores, milliseconds, as Kafka's:
    /// `before + after + grace`. A store keeps (and shows) a record while
    /// its timestamp is more than `store_time − retention`, `store_time`
    /// being the largest timestamp in the store. (So zero-sized windows
    /// without grace keep nothing, as in Kafka.)
    pub(crate) fn retention_ms(&self) -> i64 {
        self.size_ms().saturating_add(self.grace_ms)
    }

    /// Checks that `before + after` is not negative, that the grace is not
    /// negative, that `before + after + grace` fits in an `i64`, and that
    /// [`JoinWindows::grace`] was not called on windows that have their
    /// grace already.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.grace_set_twice {
            return Err(
                "grace() cannot be called on windows made by of_time_difference_and_grace or of_time_difference_without_grace"
                    .to_owned(),
            );
        }
        let Some(size) = self.before_ms.checked_add(self.after_ms) else {
            return Err(format!(
                "the window interval (before + after = {} + {} ms) does not fit in 64 bits",
                self.before_ms, self.after_ms
            ));
        };
        if size < 0 {
            return Err(format!(
                "the window interval (before + after = {} + {} ms) must not be negative",
                self.before_ms, self.after_ms
            ));
        }
        if self.grace_ms < 0 {
            return Err(format!(
                "the grace period must not be negative, got {} ms",
                self.grace_ms
            ));
        }
        if size.checked_add(self.grace_ms).is_none() {
            return Err(format!(
                "the window interval plus grace ({size} + {} ms) does not fit in 64 bits",
                self.grace_ms
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn before_and_after_change_one_end_each() {
        let windows = JoinWindows::of_time_difference_without_grace(ms(100));
        assert_eq!((windows.before_ms(), windows.after_ms()), (100, 100));
        let windows = windows.before(ms(10));
        assert_eq!((windows.before_ms(), windows.after_ms()), (10, 100));
        let windows = windows.after(ms(0));
        assert_eq!((windows.before_ms(), windows.after_ms()), (10, 0));
        assert_eq!(windows.size_ms(), 10);
        assert!(windows.waits_for_window_close());
    }

    #[test]
    fn negative_ends_are_valid_while_the_interval_is_not_negative() {
        let windows = JoinWindows::of_time_difference_without_grace(ms(100));
        assert!(windows.with_before_ms(-100).validate().is_ok());
        assert!(windows.with_before_ms(-101).validate().is_err());
        assert!(windows.with_after_ms(-50).validate().is_ok());
        assert!(windows
            .with_before_ms(i64::MAX)
            .with_after_ms(1)
            .validate()
            .is_err());
        let huge = JoinWindows::of_time_difference_and_grace(
            Duration::from_secs(u64::MAX),
            Duration::from_secs(u64::MAX),
        );
        assert!(huge.validate().is_err());
    }

    #[test]
    #[allow(deprecated)]
    fn the_deprecated_of_emits_eagerly_with_a_day_of_grace() {
        let windows = JoinWindows::of(ms(100));
        assert!(!windows.waits_for_window_close());
        assert_eq!(windows.grace_ms(), DAY_MS - 200);
        assert_eq!(JoinWindows::of(Duration::from_secs(86_400)).grace_ms(), 0);
        let windows = windows.grace(ms(10));
        assert_eq!(windows.grace_ms(), 10);
        assert!(windows.validate().is_ok());
        let twice = JoinWindows::of_time_difference_without_grace(ms(100)).grace(ms(10));
        assert!(twice.validate().is_err());
    }

    #[test]
    fn retention_is_the_interval_plus_grace_as_in_kafka() {
        let windows = JoinWindows::of_time_difference_and_grace(ms(50), ms(20)).after(ms(30));
        assert_eq!(windows.retention_ms(), 50 + 30 + 20);
        assert_eq!(
            JoinWindows::of_time_difference_without_grace(ms(0)).retention_ms(),
            0
        );
    }
}
