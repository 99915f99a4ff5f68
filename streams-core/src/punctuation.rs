//! Punctuation: callbacks scheduled on stream time or wall-clock time, with
//! Kafka Streams' rules.
//!
//! - A stream-time schedule is anchored at 0: its first slot is 0, so it
//!   fires as soon as the task has seen data (stream time is unknown
//!   before the first record).
//! - A wall-clock schedule is anchored at `now + interval`.
//! - A schedule fires when its slot is `<=` the current time; the callback
//!   receives the current time, not the slot.
//! - After firing, the next slot is `slot + interval`; if the current time
//!   has already passed it (a jump), the next slot is
//!   `slot + (missed + 1) × interval` with `missed = (now − slot) / interval`:
//!   one call after a jump, never a burst of catch-up calls.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Which clock drives a punctuator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PunctuationType {
    /// Stream time: the largest record timestamp the task has seen. It
    /// advances only with data.
    StreamTime,
    /// The wall clock of the process (the test driver's mock clock in
    /// tests).
    WallClockTime,
}

/// Cancels a scheduled punctuator, as Kafka's `Cancellable`. Cloning shares
/// the schedule; cancelling from inside the callback stops it after that
/// call.
#[derive(Debug, Clone, Default)]
pub struct Cancellable {
    cancelled: Arc<AtomicBool>,
}

impl Cancellable {
    /// Cancels the schedule: it never fires again.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
    }

    /// Whether [`Cancellable::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }
}

/// The slot after `slot` once a punctuator has fired at `now`.
pub(crate) fn next_slot(slot: i64, interval: i64, now: i64) -> i64 {
    let next = slot.saturating_add(interval);
    if now >= next {
        let missed = now.saturating_sub(slot) / interval;
        slot.saturating_add(missed.saturating_add(1).saturating_mul(interval))
    } else {
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn next_slot_follows_kafka() {
        // On time: the next interval.
        assert_eq!(next_slot(0, 10, 5), 10);
        assert_eq!(next_slot(10, 10, 10), 20);
        // A jump from slot 10 to time 47: missed = 3, next = 10 + 4 × 10.
        assert_eq!(next_slot(10, 10, 47), 50);
        // Landing exactly on a slot skips past it.
        assert_eq!(next_slot(0, 10, 30), 40);
        // No overflow at the end of time.
        assert_eq!(next_slot(i64::MAX - 5, 10, i64::MAX), i64::MAX);
    }

    proptest! {
        #[test]
        fn next_slot_is_the_first_aligned_slot_after_now(
            slot in 0i64..1_000_000, interval in 1i64..10_000, ahead in 0i64..1_000_000,
        ) {
            let now = slot + ahead;
            let next = next_slot(slot, interval, now);
            prop_assert!(next > now);
            prop_assert_eq!((next - slot) % interval, 0);
            prop_assert!(next - interval <= now);
        }
    }
}
