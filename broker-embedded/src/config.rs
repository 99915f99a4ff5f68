//! Broker and topic configuration, with Kafka's names and defaults.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::compression::Compression;
use crate::config_catalog::topic_config_key;
use crate::error::{BrokerError, Result};
use crate::time::{SystemTime, Time};

/// `cleanup.policy`: what happens to old data of a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CleanupPolicy {
    /// `delete`: whole old segments are removed by `retention.ms` / `retention.bytes`.
    pub delete: bool,
    /// `compact`: the cleaner keeps the latest record per key.
    pub compact: bool,
}

impl CleanupPolicy {
    /// `delete` (Kafka's default).
    pub const DELETE: CleanupPolicy = CleanupPolicy {
        delete: true,
        compact: false,
    };
    /// `compact`.
    pub const COMPACT: CleanupPolicy = CleanupPolicy {
        delete: false,
        compact: true,
    };
    /// `compact,delete`.
    pub const COMPACT_DELETE: CleanupPolicy = CleanupPolicy {
        delete: true,
        compact: true,
    };

    fn parse(value: &str) -> Option<Self> {
        let mut policy = CleanupPolicy {
            delete: false,
            compact: false,
        };
        for part in value.split(',') {
            match part.trim() {
                "delete" => policy.delete = true,
                "compact" => policy.compact = true,
                _ => return None,
            }
        }
        if policy.delete || policy.compact {
            Some(policy)
        } else {
            None
        }
    }
}

impl std::fmt::Display for CleanupPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.compact, self.delete) {
            (true, true) => f.write_str("compact,delete"),
            (true, false) => f.write_str("compact"),
            _ => f.write_str("delete"),
        }
    }
}

/// `message.timestamp.type`: whose timestamp a record keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimestampType {
    /// The producer's timestamp (Kafka's default).
    #[default]
    CreateTime,
    /// The broker's wall clock when it appended the batch.
    LogAppendTime,
}

impl std::fmt::Display for TimestampType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TimestampType::CreateTime => f.write_str("CreateTime"),
            TimestampType::LogAppendTime => f.write_str("LogAppendTime"),
        }
    }
}

/// A topic's `compression.type`: the codec its batches are stored with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TopicCompression {
    /// `producer` (Kafka's default): a batch is stored with the codec its producer chose.
    #[default]
    Producer,
    /// `uncompressed` (also accepted as `none`), `gzip`, `snappy`, `lz4` or `zstd`: every
    /// batch is stored with this codec, recompressed if it came with another one.
    Codec(Compression),
}

impl TopicCompression {
    /// The codec a batch sent with `sent` is stored with.
    pub fn target(self, sent: Compression) -> Compression {
        match self {
            TopicCompression::Producer => sent,
            TopicCompression::Codec(codec) => codec,
        }
    }

    /// Parses Kafka's topic values: `producer`, `uncompressed`, `gzip`, `snappy`, `lz4`,
    /// `zstd`, and `none` as a synonym of `uncompressed`.
    fn parse(value: &str) -> Option<Self> {
        match value.trim() {
            "producer" => Some(TopicCompression::Producer),
            "uncompressed" => Some(TopicCompression::Codec(Compression::None)),
            other => other.parse().ok().map(TopicCompression::Codec),
        }
    }
}

impl std::fmt::Display for TopicCompression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TopicCompression::Producer => f.write_str("producer"),
            TopicCompression::Codec(Compression::None) => f.write_str("uncompressed"),
            TopicCompression::Codec(codec) => write!(f, "{codec}"),
        }
    }
}

/// Per-topic configuration. Field names are Kafka's keys with `_` for `.`.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicConfig {
    /// `cleanup.policy`, default `delete`.
    pub cleanup_policy: CleanupPolicy,
    /// `retention.ms`, default 7 days; `None` (`-1`) keeps data forever.
    pub retention_ms: Option<i64>,
    /// `retention.bytes` per partition, default `None` (`-1`, unlimited).
    pub retention_bytes: Option<u64>,
    /// `segment.bytes`, default 1 GiB: the active segment rolls when a batch would pass it.
    pub segment_bytes: u64,
    /// `segment.ms`, default 7 days: the active segment rolls when it is older than this.
    pub segment_ms: i64,
    /// `segment.index.bytes`-style spacing of index entries: `index.interval.bytes`, default 4096.
    pub index_interval_bytes: u64,
    /// `min.compaction.lag.ms`, default 0: records younger than this are not compacted.
    pub min_compaction_lag_ms: i64,
    /// `min.cleanable.dirty.ratio`, default 0.5.
    pub min_cleanable_dirty_ratio: f64,
    /// `delete.retention.ms`, default 1 day: how long tombstones survive compaction.
    pub delete_retention_ms: i64,
    /// `message.timestamp.type`, default `CreateTime`.
    pub message_timestamp_type: TimestampType,
    /// `max.message.bytes`, default 1048588: the largest batch the topic accepts.
    pub max_message_bytes: u64,
    /// `compression.type`, default `producer`: the codec batches are stored with.
    pub compression_type: TopicCompression,
    /// Kafka topic configs this broker accepts and keeps but does not act on
    /// (`min.insync.replicas`, `flush.messages`, ...; see
    /// [`KAFKA_TOPIC_CONFIGS`](crate::config_catalog::KAFKA_TOPIC_CONFIGS)), by name, when
    /// set to something other than Kafka's default.
    pub unenforced: BTreeMap<&'static str, String>,
}

impl Default for TopicConfig {
    fn default() -> Self {
        TopicConfig {
            cleanup_policy: CleanupPolicy::DELETE,
            retention_ms: Some(7 * 24 * 3600 * 1000),
            retention_bytes: None,
            segment_bytes: 1024 * 1024 * 1024,
            segment_ms: 7 * 24 * 3600 * 1000,
            index_interval_bytes: 4096,
            min_compaction_lag_ms: 0,
            min_cleanable_dirty_ratio: 0.5,
            delete_retention_ms: 24 * 3600 * 1000,
            message_timestamp_type: TimestampType::CreateTime,
            max_message_bytes: 1_048_588,
            compression_type: TopicCompression::Producer,
            unenforced: BTreeMap::new(),
        }
    }
}

/// The topic config keys this broker understands.
pub const TOPIC_CONFIG_KEYS: &[&str] = &[
    "cleanup.policy",
    "retention.ms",
    "retention.bytes",
    "segment.bytes",
    "segment.ms",
    "index.interval.bytes",
    "min.compaction.lag.ms",
    "min.cleanable.dirty.ratio",
    "delete.retention.ms",
    "message.timestamp.type",
    "max.message.bytes",
    "compression.type",
];

fn invalid(key: &str, value: &str, reason: impl Into<String>) -> BrokerError {
    BrokerError::InvalidConfig {
        key: key.to_owned(),
        value: value.to_owned(),
        reason: reason.into(),
    }
}

fn parse_i64(key: &str, value: &str) -> Result<i64> {
    value
        .trim()
        .parse::<i64>()
        .map_err(|_| invalid(key, value, "not an integer"))
}

fn parse_positive(key: &str, value: &str, min: i64) -> Result<i64> {
    let n = parse_i64(key, value)?;
    if n < min {
        return Err(invalid(key, value, format!("must be at least {min}")));
    }
    Ok(n)
}

/// `-1` means unlimited; any other value must be non-negative.
fn parse_optional(key: &str, value: &str) -> Result<Option<i64>> {
    match parse_i64(key, value)? {
        -1 => Ok(None),
        n if n >= 0 => Ok(Some(n)),
        _ => Err(invalid(
            key,
            value,
            "must be -1 (unlimited) or non-negative",
        )),
    }
}

impl TopicConfig {
    /// Sets one config by its Kafka name; an unknown key or a bad value is an error naming both.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        match key {
            "cleanup.policy" => {
                self.cleanup_policy = CleanupPolicy::parse(value).ok_or_else(|| {
                    invalid(key, value, "expected delete, compact or compact,delete")
                })?
            }
            "retention.ms" => self.retention_ms = parse_optional(key, value)?,
            "retention.bytes" => {
                self.retention_bytes = parse_optional(key, value)?.map(|n| n as u64)
            }
            "segment.bytes" => self.segment_bytes = parse_positive(key, value, 14)? as u64,
            "segment.ms" => self.segment_ms = parse_positive(key, value, 1)?,
            "index.interval.bytes" => {
                self.index_interval_bytes = parse_positive(key, value, 0)? as u64
            }
            "min.compaction.lag.ms" => self.min_compaction_lag_ms = parse_positive(key, value, 0)?,
            "min.cleanable.dirty.ratio" => {
                let ratio: f64 = value
                    .trim()
                    .parse()
                    .map_err(|_| invalid(key, value, "not a number"))?;
                if !(0.0..=1.0).contains(&ratio) {
                    return Err(invalid(key, value, "must be between 0 and 1"));
                }
                self.min_cleanable_dirty_ratio = ratio;
            }
            "delete.retention.ms" => self.delete_retention_ms = parse_positive(key, value, 0)?,
            "message.timestamp.type" => {
                self.message_timestamp_type = match value.trim() {
                    "CreateTime" => TimestampType::CreateTime,
                    "LogAppendTime" => TimestampType::LogAppendTime,
                    _ => return Err(invalid(key, value, "expected CreateTime or LogAppendTime")),
                }
            }
            "max.message.bytes" => self.max_message_bytes = parse_positive(key, value, 0)? as u64,
            "compression.type" => {
                self.compression_type = TopicCompression::parse(value).ok_or_else(|| {
                    invalid(
                        key,
                        value,
                        "expected producer, uncompressed, none, gzip, snappy, lz4 or zstd",
                    )
                })?
            }
            // Every config with an arm above is enforced; the rest of Kafka's are kept.
            _ if topic_config_key(key).is_some() => {
                let Some(entry) = topic_config_key(key) else {
                    return Ok(());
                };
                entry
                    .check(value)
                    .map_err(|reason| invalid(key, value, reason))?;
                let value = entry.normalize(value);
                if value == entry.kafka_default {
                    self.unenforced.remove(entry.name);
                } else {
                    self.unenforced.insert(entry.name, value);
                }
            }
            _ => {
                return Err(invalid(
                    key,
                    value,
                    format!(
                        "unknown topic config; known: {}",
                        TOPIC_CONFIG_KEYS.join(", ")
                    ),
                ))
            }
        }
        Ok(())
    }

    /// Builds a config from `key=value` pairs over the defaults.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self> {
        let mut config = TopicConfig::default();
        for (key, value) in pairs {
            config.set(key, value)?;
        }
        Ok(config)
    }

    /// Every config as `(key, value)` with Kafka's names, in a stable order.
    pub fn to_pairs(&self) -> BTreeMap<&'static str, String> {
        let opt = |v: Option<i64>| v.map_or_else(|| "-1".to_owned(), |n| n.to_string());
        let mut m = BTreeMap::new();
        m.insert("cleanup.policy", self.cleanup_policy.to_string());
        m.insert("retention.ms", opt(self.retention_ms));
        m.insert(
            "retention.bytes",
            opt(self.retention_bytes.map(|n| n as i64)),
        );
        m.insert("segment.bytes", self.segment_bytes.to_string());
        m.insert("segment.ms", self.segment_ms.to_string());
        m.insert(
            "index.interval.bytes",
            self.index_interval_bytes.to_string(),
        );
        m.insert(
            "min.compaction.lag.ms",
            self.min_compaction_lag_ms.to_string(),
        );
        m.insert(
            "min.cleanable.dirty.ratio",
            self.min_cleanable_dirty_ratio.to_string(),
        );
        m.insert("delete.retention.ms", self.delete_retention_ms.to_string());
        m.insert(
            "message.timestamp.type",
            self.message_timestamp_type.to_string(),
        );
        m.insert("max.message.bytes", self.max_message_bytes.to_string());
        m.insert("compression.type", self.compression_type.to_string());
        for (key, value) in &self.unenforced {
            m.insert(key, value.clone());
        }
        m
    }
}

/// `log.flush.policy`: when appended data is fsynced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FlushPolicy {
    /// Fsync after every append, before it is acknowledged (strictest, slowest).
    EveryAppend,
    /// Fsync at commit points: a producer `flush`, a transaction or offset commit, a segment
    /// roll, and close. A process crash loses nothing acknowledged (the page cache survives);
    /// a power loss may lose what was appended since the last commit point. The default.
    #[default]
    CommitPoints,
    /// Fsync only on segment roll and close; commit points do not fsync (loosest, fastest).
    OnClose,
}

impl FlushPolicy {
    /// Parses `always`, `commit` or `close`.
    pub fn parse(value: &str) -> Result<Self> {
        match value {
            "always" => Ok(FlushPolicy::EveryAppend),
            "commit" => Ok(FlushPolicy::CommitPoints),
            "close" => Ok(FlushPolicy::OnClose),
            _ => Err(invalid(
                "log.flush.policy",
                value,
                "expected always, commit or close",
            )),
        }
    }
}

/// The default `max.partitions.per.topic`: far above what one process serves well, far
/// below what would exhaust memory or file handles by accident.
pub const DEFAULT_MAX_PARTITIONS_PER_TOPIC: u32 = 10_000;

/// Half the process's soft limit on open files (`Max open files` in `/proc/self/limits`),
/// between 16 and 1024; 1024 where the limit cannot be read or is unlimited.
fn default_max_open_files() -> usize {
    let soft = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            limits
                .lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|soft| soft.parse::<usize>().ok())
        });
    soft.map_or(1024, |soft| (soft / 2).clamp(16, 1024))
}

/// Broker-wide configuration.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// `log.flush.policy`, default [`FlushPolicy::CommitPoints`].
    pub flush_policy: FlushPolicy,
    /// `log.retention.check.interval.ms`, default 5 minutes: how often the background thread
    /// applies retention. `None` disables the background thread (retention and compaction then
    /// run only when asked).
    pub retention_check_interval_ms: Option<u64>,
    /// `log.cleaner.backoff.ms`, default 15 s: how often the background cleaner looks for
    /// compactable partitions.
    pub cleaner_backoff_ms: u64,
    /// `num.partitions`, default 1: partitions of a topic created without a count.
    pub num_partitions: u32,
    /// `max.partitions.per.topic`, default [`DEFAULT_MAX_PARTITIONS_PER_TOPIC`]: a topic
    /// with more partitions is refused at create, and topic metadata naming more is
    /// reported as corrupt, never allocated.
    pub max_partitions_per_topic: u32,
    /// How many segment files the broker keeps open at once: files are opened when used and
    /// the least recently used closed, so the number of partitions is not bounded by the
    /// process's file descriptor limit. Default: half the process's soft limit on open
    /// files, at most 1024 (at least 16).
    pub max_open_files: usize,
    /// Open the data dir read-only: nothing in it is created, truncated, removed or written
    /// (no lock file, no recovery truncation, no index rewrites, no internal topics, no
    /// retention or compaction); appends and admin changes are refused with
    /// `BrokerError::ReadOnly`. For inspecting a data dir on a read-only or full file
    /// system. A dir without a broker is `BrokerError::NoBroker`.
    pub read_only: bool,
    /// Defaults applied to every new topic before its own configs.
    pub default_topic_config: TopicConfig,
    /// `group.initial.rebalance.delay.ms`, default 3000: how long the coordinator waits for
    /// more members to join a new (empty) group of Kafka's classic protocol before its first
    /// rebalance completes; each member that joins meanwhile extends the wait by this much,
    /// up to the rebalance timeout.
    pub group_initial_rebalance_delay_ms: i64,
    /// `group.min.session.timeout.ms`, default 6000: a classic-protocol JoinGroup asking for
    /// a shorter `session.timeout.ms` is refused with `INVALID_SESSION_TIMEOUT`.
    pub group_min_session_timeout_ms: i64,
    /// `group.max.session.timeout.ms`, default 1800000 (30 minutes): a classic-protocol
    /// JoinGroup asking for a longer `session.timeout.ms` is refused with
    /// `INVALID_SESSION_TIMEOUT`.
    pub group_max_session_timeout_ms: i64,
    /// The clock.
    pub time: Arc<dyn Time>,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            flush_policy: FlushPolicy::CommitPoints,
            retention_check_interval_ms: Some(300_000),
            cleaner_backoff_ms: 15_000,
            num_partitions: 1,
            max_partitions_per_topic: DEFAULT_MAX_PARTITIONS_PER_TOPIC,
            max_open_files: default_max_open_files(),
            read_only: false,
            default_topic_config: TopicConfig::default(),
            group_initial_rebalance_delay_ms: 3000,
            group_min_session_timeout_ms: 6000,
            group_max_session_timeout_ms: 1_800_000,
            time: Arc::new(SystemTime),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kafka_names_and_round_trips() {
        let c = TopicConfig::from_pairs([
            ("cleanup.policy", "compact,delete"),
            ("retention.ms", "-1"),
            ("segment.bytes", "1024"),
            ("message.timestamp.type", "LogAppendTime"),
        ])
        .unwrap();
        assert_eq!(c.cleanup_policy, CleanupPolicy::COMPACT_DELETE);
        assert_eq!(c.retention_ms, None);
        assert_eq!(c.segment_bytes, 1024);
        let pairs = c.to_pairs();
        let again = TopicConfig::from_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str()))).unwrap();
        assert_eq!(again, c);
    }

    #[test]
    fn compression_type_takes_kafkas_topic_values() {
        assert_eq!(
            TopicConfig::default().compression_type,
            TopicCompression::Producer
        );
        for (value, want, shown) in [
            ("producer", TopicCompression::Producer, "producer"),
            (
                "uncompressed",
                TopicCompression::Codec(Compression::None),
                "uncompressed",
            ),
            (
                "none",
                TopicCompression::Codec(Compression::None),
                "uncompressed",
            ),
            ("gzip", TopicCompression::Codec(Compression::Gzip), "gzip"),
            (
                "snappy",
                TopicCompression::Codec(Compression::Snappy),
                "snappy",
            ),
            ("lz4", TopicCompression::Codec(Compression::Lz4), "lz4"),
            ("zstd", TopicCompression::Codec(Compression::Zstd), "zstd"),
        ] {
            let c = TopicConfig::from_pairs([("compression.type", value)]).unwrap();
            assert_eq!(c.compression_type, want, "{value}");
            assert_eq!(c.to_pairs()["compression.type"], shown);
        }
        assert_eq!(
            TopicCompression::Producer.target(Compression::Lz4),
            Compression::Lz4
        );
        assert_eq!(
            TopicCompression::Codec(Compression::None).target(Compression::Lz4),
            Compression::None
        );
        assert_eq!(
            TopicCompression::Codec(Compression::Zstd).target(Compression::None),
            Compression::Zstd
        );
    }

    #[test]
    fn rejects_bad_values_with_the_key() {
        let err = TopicConfig::from_pairs([("retention.ms", "soon")]).unwrap_err();
        assert!(err.to_string().contains("retention.ms"), "{err}");
        let err = TopicConfig::from_pairs([("cleanup.policy", "keep")]).unwrap_err();
        assert!(err.to_string().contains("cleanup.policy"), "{err}");
        let err = TopicConfig::from_pairs([("compression.type", "brotli")]).unwrap_err();
        assert!(err.to_string().contains("compression.type"), "{err}");
        assert!(err.to_string().contains("producer, uncompressed"), "{err}");
        let err = TopicConfig::from_pairs([("no.such.key", "1")]).unwrap_err();
        assert!(err.to_string().contains("unknown topic config"), "{err}");
    }

    #[test]
    fn kafka_configs_not_acted_on_are_checked_kept_and_dropped_at_their_default() {
        let mut c =
            TopicConfig::from_pairs([("min.insync.replicas", "2"), ("preallocate", "TRUE")])
                .unwrap();
        assert_eq!(
            c.to_pairs().get("min.insync.replicas").map(String::as_str),
            Some("2")
        );
        assert_eq!(
            c.to_pairs().get("preallocate").map(String::as_str),
            Some("true")
        );
        let again =
            TopicConfig::from_pairs(c.to_pairs().iter().map(|(k, v)| (*k, v.as_str()))).unwrap();
        assert_eq!(again, c);
        c.set("min.insync.replicas", "1").unwrap();
        assert!(!c.to_pairs().contains_key("min.insync.replicas"));
        let err = c.set("min.insync.replicas", "0").unwrap_err();
        assert!(err.to_string().contains("at least 1"), "{err}");
        assert!(c.set("remote.storage.enable", "true").is_err());
    }
}
