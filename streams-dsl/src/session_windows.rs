//! Session windows: [`SessionWindows`].

use std::time::Duration;

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Session windows (Kafka's `SessionWindows`): a session of a key is a
/// period of activity, `[start, end]` with both bounds inclusive, that
/// ends once no record of the key arrives for the inactivity gap.
///
/// A record at `t` merges every session of its key that ends at or after
/// `t - gap` and starts at or before `t + gap`. A session is closed, and a
/// record that would extend or create it is dropped, once
/// `end < stream_time - gap - grace`.
///
/// ```
/// use std::time::Duration;
/// use streams_dsl::SessionWindows;
///
/// let sessions = SessionWindows::with_inactivity_gap_and_grace(
///     Duration::from_secs(300),
///     Duration::from_secs(30),
/// );
/// assert_eq!(sessions.inactivity_gap_ms(), 300_000);
/// assert_eq!(sessions.grace_ms(), 30_000);
/// assert!(sessions.validate().is_ok());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionWindows {
    gap_ms: i64,
    grace_ms: i64,
}

impl SessionWindows {
    /// Sessions that close after an inactivity `gap`, accepting
    /// out-of-order records for `grace` longer.
    pub fn with_inactivity_gap_and_grace(gap: Duration, grace: Duration) -> Self {
        Self {
            gap_ms: millis(gap),
            grace_ms: millis(grace),
        }
    }

    /// Sessions that close as soon as stream time passes their end plus
    /// the inactivity `gap`.
    pub fn of_inactivity_gap_with_no_grace(gap: Duration) -> Self {
        Self::with_inactivity_gap_and_grace(gap, Duration::ZERO)
    }

    /// The inactivity gap, milliseconds.
    pub fn inactivity_gap_ms(&self) -> i64 {
        self.gap_ms
    }

    /// The grace period, milliseconds.
    pub fn grace_ms(&self) -> i64 {
        self.grace_ms
    }

    /// Checks that the gap is more than zero.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.gap_ms <= 0 {
            return Err(format!(
                "session inactivity gap must be more than zero, got {} ms",
                self.gap_ms
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gap_must_be_positive() {
        assert!(
            SessionWindows::of_inactivity_gap_with_no_grace(Duration::ZERO)
                .validate()
                .is_err()
        );
        let windows = SessionWindows::of_inactivity_gap_with_no_grace(Duration::from_millis(1));
        assert!(windows.validate().is_ok());
        assert_eq!(windows.grace_ms(), 0);
    }
}
