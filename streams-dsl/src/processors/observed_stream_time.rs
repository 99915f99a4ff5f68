//! The stream time of one windowed aggregation processor (Kafka's
//! `observedStreamTime`).

/// The largest timestamp among the records a windowed aggregation has
/// processed, the current one included: what decides whether a window is
/// closed. As in Kafka Streams each processor keeps its own, so a record
/// the aggregation skips (a null key) does not move it, nor do records of
/// other operations of the same task. A new processor starts without one,
/// unless its task resumed from committed offsets: then it starts from the
/// stream time committed with them, so that windows it had closed before a
/// restart stay closed (their final results are not emitted again).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ObservedStreamTime(Option<i64>);

impl ObservedStreamTime {
    /// Takes `timestamp` into account, and `resumed` (the task's stream
    /// time when it resumed from its committed offsets: a restarted
    /// processor does not go back before it); returns the stream time.
    pub(crate) fn advance_from(&mut self, resumed: Option<i64>, timestamp: i64) -> i64 {
        if let Some(resumed) = resumed {
            self.0 = Some(self.0.map_or(resumed, |t| t.max(resumed)));
        }
        self.advance(timestamp)
    }

    /// Takes `timestamp` into account; returns the stream time.
    pub(crate) fn advance(&mut self, timestamp: i64) -> i64 {
        let time = self.0.map_or(timestamp, |t| t.max(timestamp));
        self.0 = Some(time);
        time
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_time_is_the_largest_timestamp_seen() {
        let mut time = ObservedStreamTime::default();
        assert_eq!(time.advance(7), 7);
        assert_eq!(time.advance(3), 7);
        assert_eq!(time.advance(9), 9);
        assert_eq!(time, ObservedStreamTime(Some(9)));
    }

    #[test]
    fn a_resumed_task_starts_from_its_committed_stream_time() {
        let mut time = ObservedStreamTime::default();
        assert_eq!(time.advance_from(Some(50), 7), 50);
        assert_eq!(time.advance_from(Some(50), 60), 60);
        assert_eq!(time.advance_from(None, 3), 60);
    }
}
