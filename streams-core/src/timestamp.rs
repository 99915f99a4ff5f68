//! Event time: [`TimestampExtractor`] gives each consumed record the
//! timestamp that windows, stream time and stream-time punctuation use, as
//! Kafka's `org.apache.kafka.streams.processor.TimestampExtractor`.
//!
//! An extractor runs on every consumed record before it is deserialized
//! and processed. What it returns becomes the record's timestamp
//! ([`crate::Record::timestamp`], [`crate::RecordMetadata::timestamp`]) and
//! moves the task's stream time (the largest extracted timestamp so far).
//!
//! - `Ok(ts)` with `ts >= 0`: the record is processed with timestamp `ts`.
//! - `Ok(ts)` with `ts < 0`: the record is skipped, logged at warn and
//!   counted in the task's `dropped-records` (Kafka's rule for a negative
//!   extracted timestamp).
//! - `Err(e)`: the task stops with `e`, and the application with it.
//!
//! The built-ins are [`RecordTimestampExtractor`] (the default, configured
//! as `record-timestamp`), [`FailOnInvalidTimestamp`],
//! [`LogAndSkipOnInvalidTimestamp`], [`UsePreviousOnInvalidTimestamp`] and
//! [`WallClockTimestampExtractor`]. A closure
//! `Fn(&ConsumedRecord<'_>, Option<i64>) -> Result<i64>` is an extractor
//! too.
//!
//! ```
//! use streams_core::{ConsumedRecord, StreamsConfig, TimestampExtractor};
//!
//! // Event time from the first 8 bytes of the value (big-endian millis),
//! // else the record's own timestamp.
//! let from_value = |record: &ConsumedRecord<'_>, _previous: Option<i64>| {
//!     Ok(record
//!         .value
//!         .and_then(|v| v.get(..8))
//!         .and_then(|b| <[u8; 8]>::try_from(b).ok())
//!         .map_or(record.timestamp, i64::from_be_bytes))
//! };
//! let config = StreamsConfig::new("app").with_default_timestamp_extractor(from_value);
//! assert!(config.default_timestamp_extractor().name().contains("closure"));
//! ```

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use bytes::Bytes;

use crate::error::{Result, StreamsError};
use crate::record::Headers;

/// A consumed record as a [`TimestampExtractor`] sees it: where it comes
/// from, its own timestamp, and its key and value as bytes (deserialize
/// them with a [`crate::Serde`] if the event time is inside).
#[derive(Debug, Clone, Copy)]
pub struct ConsumedRecord<'a> {
    /// The topic, as the topology names it.
    pub topic: &'a str,
    /// The partition.
    pub partition: u32,
    /// The offset.
    pub offset: u64,
    /// The record's own timestamp (`CreateTime` or `LogAppendTime`).
    pub timestamp: i64,
    /// The key bytes; `None` is a null key.
    pub key: Option<&'a Bytes>,
    /// The value bytes; `None` is a null value.
    pub value: Option<&'a Bytes>,
    /// The headers.
    pub headers: &'a Headers,
    /// The wall-clock time of the task, epoch milliseconds (the test
    /// driver's mock clock under [`crate::TopologyTestDriver`]).
    pub wall_clock: i64,
}

/// Gives a consumed record its event time (Kafka's `TimestampExtractor`).
///
/// `previous` is the partition time: the largest timestamp extracted so
/// far from the record's partition by this task, `None` before the first.
/// See the [module documentation](self) for what a negative result and an
/// error do.
pub trait TimestampExtractor: Send + Sync + 'static {
    /// The timestamp of `record`, epoch milliseconds.
    fn extract(&self, record: &ConsumedRecord<'_>, previous: Option<i64>) -> Result<i64>;

    /// A name for logs and `Debug` output.
    fn name(&self) -> &str {
        std::any::type_name::<Self>()
    }

    /// Whether [`TimestampExtractor::extract`] returns a record's own
    /// timestamp whenever it is valid (zero or more), as the built-in
    /// record-time extractors do: the runtime then takes such a record's
    /// timestamp without calling `extract`. `false` unless overridden.
    fn keeps_valid_record_timestamps(&self) -> bool {
        false
    }
}

impl<F> TimestampExtractor for F
where
    F: Fn(&ConsumedRecord<'_>, Option<i64>) -> Result<i64> + Send + Sync + 'static,
{
    fn extract(&self, record: &ConsumedRecord<'_>, previous: Option<i64>) -> Result<i64> {
        self(record, previous)
    }
}

/// A shared extractor, as the configuration and the topology hold it.
pub type SharedTimestampExtractor = Arc<dyn TimestampExtractor>;

impl fmt::Debug for dyn TimestampExtractor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TimestampExtractor({})", self.name())
    }
}

fn invalid(record: &ConsumedRecord<'_>) -> StreamsError {
    StreamsError::InvalidTimestamp {
        topic: record.topic.to_owned(),
        partition: record.partition,
        offset: record.offset,
        timestamp: record.timestamp,
    }
}

/// The record's own timestamp; a negative one stops the application with
/// [`StreamsError::InvalidTimestamp`]. The default
/// (`default.timestamp.extractor = record-timestamp`), as Kafka's default
/// `FailOnInvalidTimestamp`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordTimestampExtractor;

impl TimestampExtractor for RecordTimestampExtractor {
    fn extract(&self, record: &ConsumedRecord<'_>, _previous: Option<i64>) -> Result<i64> {
        if record.timestamp < 0 {
            return Err(invalid(record));
        }
        Ok(record.timestamp)
    }

    fn name(&self) -> &str {
        "record-timestamp"
    }

    fn keeps_valid_record_timestamps(&self) -> bool {
        true
    }
}

/// The record's own timestamp; a negative one stops the application with
/// [`StreamsError::InvalidTimestamp`] (`fail-on-invalid`, Kafka's
/// `FailOnInvalidTimestamp`). The same as [`RecordTimestampExtractor`],
/// under the name that says what it does with invalid timestamps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FailOnInvalidTimestamp;

impl TimestampExtractor for FailOnInvalidTimestamp {
    fn extract(&self, record: &ConsumedRecord<'_>, previous: Option<i64>) -> Result<i64> {
        RecordTimestampExtractor.extract(record, previous)
    }

    fn name(&self) -> &str {
        "fail-on-invalid"
    }

    fn keeps_valid_record_timestamps(&self) -> bool {
        true
    }
}

/// The record's own timestamp; a record with a negative one is skipped,
/// logged at warn and counted in `dropped-records`
/// (`log-and-skip-on-invalid`, Kafka's `LogAndSkipOnInvalidTimestamp`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogAndSkipOnInvalidTimestamp;

impl TimestampExtractor for LogAndSkipOnInvalidTimestamp {
    fn extract(&self, record: &ConsumedRecord<'_>, _previous: Option<i64>) -> Result<i64> {
        // A negative result makes the task skip and count the record.
        Ok(record.timestamp)
    }

    fn name(&self) -> &str {
        "log-and-skip-on-invalid"
    }

    fn keeps_valid_record_timestamps(&self) -> bool {
        true
    }
}

/// The record's own timestamp; a negative one is replaced by the partition
/// time, the largest timestamp extracted so far from the partition
/// (`use-previous-on-invalid`, Kafka's
/// `UsePartitionTimeOnInvalidTimestamp`). If the partition has no time
/// yet (its first record is invalid), the application stops with
/// [`StreamsError::InvalidTimestamp`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsePreviousOnInvalidTimestamp;

impl TimestampExtractor for UsePreviousOnInvalidTimestamp {
    fn extract(&self, record: &ConsumedRecord<'_>, previous: Option<i64>) -> Result<i64> {
        if record.timestamp >= 0 {
            return Ok(record.timestamp);
        }
        match previous {
            Some(previous) => {
                tracing::debug!(
                    topic = record.topic,
                    partition = record.partition,
                    offset = record.offset,
                    timestamp = record.timestamp,
                    partition_time = previous,
                    "record has an invalid timestamp; using the partition time"
                );
                Ok(previous)
            }
            None => Err(invalid(record)),
        }
    }

    fn name(&self) -> &str {
        "use-previous-on-invalid"
    }

    fn keeps_valid_record_timestamps(&self) -> bool {
        true
    }
}

/// The wall-clock time when the record is processed, whatever its own
/// timestamp (`wall-clock`, Kafka's `WallclockTimestampExtractor`):
/// processing-time semantics. In the test driver it is the driver's mock
/// wall clock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WallClockTimestampExtractor;

impl TimestampExtractor for WallClockTimestampExtractor {
    fn extract(&self, record: &ConsumedRecord<'_>, _previous: Option<i64>) -> Result<i64> {
        Ok(record.wall_clock)
    }

    fn name(&self) -> &str {
        "wall-clock"
    }
}

/// The built-in extractors by their `default.timestamp.extractor` value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BuiltinTimestampExtractor {
    /// `record-timestamp` (the default): [`RecordTimestampExtractor`].
    #[default]
    RecordTimestamp,
    /// `fail-on-invalid`: [`FailOnInvalidTimestamp`].
    FailOnInvalid,
    /// `log-and-skip-on-invalid`: [`LogAndSkipOnInvalidTimestamp`].
    LogAndSkipOnInvalid,
    /// `use-previous-on-invalid`: [`UsePreviousOnInvalidTimestamp`].
    UsePreviousOnInvalid,
    /// `wall-clock`: [`WallClockTimestampExtractor`].
    WallClock,
}

impl BuiltinTimestampExtractor {
    /// The configuration value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RecordTimestamp => "record-timestamp",
            Self::FailOnInvalid => "fail-on-invalid",
            Self::LogAndSkipOnInvalid => "log-and-skip-on-invalid",
            Self::UsePreviousOnInvalid => "use-previous-on-invalid",
            Self::WallClock => "wall-clock",
        }
    }

    /// The extractor.
    pub fn extractor(self) -> SharedTimestampExtractor {
        match self {
            Self::RecordTimestamp => Arc::new(RecordTimestampExtractor),
            Self::FailOnInvalid => Arc::new(FailOnInvalidTimestamp),
            Self::LogAndSkipOnInvalid => Arc::new(LogAndSkipOnInvalidTimestamp),
            Self::UsePreviousOnInvalid => Arc::new(UsePreviousOnInvalidTimestamp),
            Self::WallClock => Arc::new(WallClockTimestampExtractor),
        }
    }
}

impl fmt::Display for BuiltinTimestampExtractor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BuiltinTimestampExtractor {
    type Err = StreamsError;

    /// Parses a configuration value; Kafka's class names are accepted too.
    fn from_str(s: &str) -> Result<Self> {
        const PREFIX: &str = "org.apache.kafka.streams.processor.";
        match s.strip_prefix(PREFIX).unwrap_or(s) {
            "record-timestamp" | "ExtractRecordMetadataTimestamp" => Ok(Self::RecordTimestamp),
            "fail-on-invalid" | "FailOnInvalidTimestamp" => Ok(Self::FailOnInvalid),
            "log-and-skip-on-invalid" | "LogAndSkipOnInvalidTimestamp" => {
                Ok(Self::LogAndSkipOnInvalid)
            }
            "use-previous-on-invalid"
            | "UsePartitionTimeOnInvalidTimestamp"
            | "UsePreviousTimeOnInvalidTimestamp" => Ok(Self::UsePreviousOnInvalid),
            "wall-clock" | "WallclockTimestampExtractor" => Ok(Self::WallClock),
            _ => Err(StreamsError::invalid_config(
                crate::StreamsConfig::DEFAULT_TIMESTAMP_EXTRACTOR,
                s,
                "expected record-timestamp, fail-on-invalid, log-and-skip-on-invalid, \
                 use-previous-on-invalid or wall-clock",
            )),
        }
    }
}

/// The outcome of extracting a record's timestamp in a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Extracted {
    /// Process the record with this timestamp.
    Timestamp(i64),
    /// Skip the record: the extractor returned this negative timestamp.
    Skip(i64),
}

/// Runs `extractor` on `record`.
pub(crate) fn extract(
    extractor: &dyn TimestampExtractor,
    record: &ConsumedRecord<'_>,
    previous: Option<i64>,
) -> Result<Extracted> {
    let ts = extractor.extract(record, previous)?;
    Ok(if ts < 0 {
        Extracted::Skip(ts)
    } else {
        Extracted::Timestamp(ts)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every built-in extractor.
    const ALL: [BuiltinTimestampExtractor; 5] = [
        BuiltinTimestampExtractor::RecordTimestamp,
        BuiltinTimestampExtractor::FailOnInvalid,
        BuiltinTimestampExtractor::LogAndSkipOnInvalid,
        BuiltinTimestampExtractor::UsePreviousOnInvalid,
        BuiltinTimestampExtractor::WallClock,
    ];

    fn record(headers: &Headers, timestamp: i64) -> ConsumedRecord<'_> {
        ConsumedRecord {
            wall_clock: 99,
            topic: "in",
            partition: 0,
            offset: 7,
            timestamp,
            key: None,
            value: None,
            headers,
        }
    }

    #[test]
    fn builtins_follow_their_policy() {
        let h = Headers::new();
        let ok = record(&h, 5);
        let bad = record(&h, -3);
        for e in [
            BuiltinTimestampExtractor::RecordTimestamp,
            BuiltinTimestampExtractor::FailOnInvalid,
        ] {
            let x = e.extractor();
            assert_eq!(extract(&*x, &ok, None).unwrap(), Extracted::Timestamp(5));
            let err = extract(&*x, &bad, Some(4)).unwrap_err();
            assert!(matches!(
                err,
                StreamsError::InvalidTimestamp {
                    timestamp: -3,
                    offset: 7,
                    ..
                }
            ));
            assert!(
                err.to_string().contains("default.timestamp.extractor"),
                "{err}"
            );
        }
        let skip = BuiltinTimestampExtractor::LogAndSkipOnInvalid.extractor();
        assert_eq!(extract(&*skip, &bad, Some(4)).unwrap(), Extracted::Skip(-3));
        let previous = BuiltinTimestampExtractor::UsePreviousOnInvalid.extractor();
        assert_eq!(
            extract(&*previous, &bad, Some(4)).unwrap(),
            Extracted::Timestamp(4)
        );
        assert_eq!(
            extract(&*previous, &ok, Some(4)).unwrap(),
            Extracted::Timestamp(5)
        );
        assert!(extract(&*previous, &bad, None).is_err());
        let wall = BuiltinTimestampExtractor::WallClock.extractor();
        assert_eq!(
            extract(&*wall, &bad, None).unwrap(),
            Extracted::Timestamp(99)
        );
    }

    proptest::proptest! {
        /// An extractor that says it keeps valid record timestamps returns
        /// each one unchanged, whatever the partition time: the runtime
        /// skips the call on that promise.
        #[test]
        fn extractors_that_keep_valid_record_timestamps_do(
            timestamp in 0i64..=i64::MAX,
            previous in proptest::option::of(proptest::num::i64::ANY),
        ) {
            let h = Headers::new();
            let r = record(&h, timestamp);
            for e in ALL {
                let x = e.extractor();
                if x.keeps_valid_record_timestamps() {
                    proptest::prop_assert_eq!(x.extract(&r, previous).ok(), Some(timestamp));
                }
            }
        }
    }

    #[test]
    fn which_extractors_keep_valid_record_timestamps() {
        let keeps = |e: BuiltinTimestampExtractor| e.extractor().keeps_valid_record_timestamps();
        assert!(keeps(BuiltinTimestampExtractor::RecordTimestamp));
        assert!(keeps(BuiltinTimestampExtractor::FailOnInvalid));
        assert!(keeps(BuiltinTimestampExtractor::LogAndSkipOnInvalid));
        assert!(keeps(BuiltinTimestampExtractor::UsePreviousOnInvalid));
        assert!(!keeps(BuiltinTimestampExtractor::WallClock));
        let custom = |r: &ConsumedRecord<'_>, _: Option<i64>| Ok(r.timestamp + 1);
        assert!(!custom.keeps_valid_record_timestamps());
    }

    #[test]
    fn config_values_parse() {
        for e in ALL {
            assert_eq!(e.as_str().parse::<BuiltinTimestampExtractor>().unwrap(), e);
            assert_eq!(e.extractor().name(), e.as_str());
        }
        assert_eq!(
            "org.apache.kafka.streams.processor.UsePartitionTimeOnInvalidTimestamp"
                .parse::<BuiltinTimestampExtractor>()
                .unwrap(),
            BuiltinTimestampExtractor::UsePreviousOnInvalid
        );
        assert!("nope".parse::<BuiltinTimestampExtractor>().is_err());
    }
}
