//! The stream time of one windowed aggregation processor (Kafka's
//! `observedStreamTime`).

/// The largest timestamp among the records a windowed aggregation has
/// processed, the current one included: what decides whether a window is
/// closed. As in Kafka Streams each processor keeps its own, so a record
/// the aggregation skips (a null key) does not move it, nor do records of
/// other operations of the same task; a new processor (a task started or
/// moved) starts without one, as Kafka's does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ObservedStreamTime(Option<i64>);

impl ObservedStreamTime {
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
}
