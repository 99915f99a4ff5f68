//! Every topic config Apache Kafka 4.x lists for a topic, with its type, Kafka's default,
//! the broker config it falls back to, and whether this broker acts on it.
//!
//! The configs this broker enforces are fields of [`TopicConfig`](crate::TopicConfig). The
//! others (replication, tiered storage, flushing by count, ...) have no meaning on one
//! embedded node: they are accepted when their value is valid by Kafka's rules, kept in the
//! topic's metadata file, and reported back, but change nothing. Setting one back to Kafka's
//! default removes it.

/// A config's type, as Kafka's DescribeConfigs reports it (`config_type`, v3+).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    /// `true` or `false`.
    Boolean,
    /// Free text or one of a set of names.
    String,
    /// A 32-bit integer.
    Int,
    /// A 16-bit integer.
    Short,
    /// A 64-bit integer.
    Long,
    /// A floating-point number.
    Double,
    /// A comma-separated list.
    List,
}

impl ConfigType {
    /// Kafka's code for the type in DescribeConfigs responses (`ConfigType` of
    /// `DescribeConfigsResponse`: BOOLEAN 1, STRING 2, INT 3, SHORT 4, LONG 5, DOUBLE 6,
    /// LIST 7).
    pub fn kafka_code(self) -> i8 {
        match self {
            ConfigType::Boolean => 1,
            ConfigType::String => 2,
            ConfigType::Int => 3,
            ConfigType::Short => 4,
            ConfigType::Long => 5,
            ConfigType::Double => 6,
            ConfigType::List => 7,
        }
    }
}

/// One topic config Kafka knows.
#[derive(Debug, Clone, Copy)]
pub struct TopicConfigKey {
    /// The topic-level name, e.g. `retention.ms`.
    pub name: &'static str,
    /// Its type.
    pub config_type: ConfigType,
    /// Kafka 4.x's default value, as Kafka prints it.
    pub kafka_default: &'static str,
    /// The broker config that gives its default (`log.retention.ms` for `retention.ms`).
    pub broker_synonym: &'static str,
    /// What a value must be when the key is kept but not enforced (the enforced ones are
    /// checked by [`TopicConfig::set`](crate::TopicConfig::set)).
    rule: Rule,
}

/// Kafka's validity rule of a config that is kept but not enforced.
#[derive(Debug, Clone, Copy)]
enum Rule {
    /// Checked elsewhere.
    Enforced,
    /// An integer in `[min, max]`.
    Range(i64, i64),
    /// An integer in `[min, max]`, or exactly `or`.
    RangeOr(i64, i64, i64),
    /// `true` or `false`.
    Boolean,
    /// Only `false`: the feature does not exist here.
    FalseOnly(&'static str),
    /// One of these names.
    OneOf(&'static [&'static str]),
    /// A list of throttled replicas: empty, `*`, or `partition:broker` pairs.
    ThrottledReplicas,
}

const LONG_MAX: &str = "9223372036854775807";

macro_rules! key {
    ($name:expr, $ty:ident, $default:expr, $synonym:expr, enforced) => {
        TopicConfigKey {
            name: $name,
            config_type: ConfigType::$ty,
            kafka_default: $default,
            broker_synonym: $synonym,
            rule: Rule::Enforced,
        }
    };
    ($name:expr, $ty:ident, $default:expr, $synonym:expr, $rule:expr) => {
        TopicConfigKey {
            name: $name,
            config_type: ConfigType::$ty,
            kafka_default: $default,
            broker_synonym: $synonym,
            rule: $rule,
        }
    };
}

/// Kafka 4.x's topic configs, sorted by name: what `kafka-configs.sh --describe --all`
/// lists for a topic.
pub const KAFKA_TOPIC_CONFIGS: &[TopicConfigKey] = &[
    key!(
        "cleanup.policy",
        List,
        "delete",
        "log.cleanup.policy",
        enforced
    ),
    key!(
        "compression.gzip.level",
        Int,
        "-1",
        "compression.gzip.level",
        Rule::RangeOr(1, 9, -1)
    ),
    key!(
        "compression.lz4.level",
        Int,
        "9",
        "compression.lz4.level",
        Rule::Range(1, 17)
    ),
    key!(
        "compression.type",
        String,
        "producer",
        "compression.type",
        Rule::OneOf(&["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"])
    ),
    key!(
        "compression.zstd.level",
        Int,
        "3",
        "compression.zstd.level",
        Rule::Range(-131_072, 22)
    ),
    key!(
        "delete.retention.ms",
        Long,
        "86400000",
        "log.cleaner.delete.retention.ms",
        enforced
    ),
    key!(
        "file.delete.delay.ms",
        Long,
        "60000",
        "log.segment.delete.delay.ms",
        Rule::Range(0, i64::MAX)
    ),
    key!(
        "flush.messages",
        Long,
        LONG_MAX,
        "log.flush.interval.messages",
        Rule::Range(1, i64::MAX)
    ),
    key!(
        "flush.ms",
        Long,
        LONG_MAX,
        "log.flush.interval.ms",
        Rule::Range(0, i64::MAX)
    ),
    key!(
        "follower.replication.throttled.replicas",
        List,
        "",
        "follower.replication.throttled.replicas",
        Rule::ThrottledReplicas
    ),
    key!(
        "index.interval.bytes",
        Int,
        "4096",
        "log.index.interval.bytes",
        enforced
    ),
    key!(
        "leader.replication.throttled.replicas",
        List,
        "",
        "leader.replication.throttled.replicas",
        Rule::ThrottledReplicas
    ),
    key!(
        "local.retention.bytes",
        Long,
        "-2",
        "log.local.retention.bytes",
        Rule::Range(-2, i64::MAX)
    ),
    key!(
        "local.retention.ms",
        Long,
        "-2",
        "log.local.retention.ms",
        Rule::Range(-2, i64::MAX)
    ),
    key!(
        "max.compaction.lag.ms",
        Long,
        LONG_MAX,
        "log.cleaner.max.compaction.lag.ms",
        Rule::Range(1, i64::MAX)
    ),
    key!(
        "max.message.bytes",
        Int,
        "1048588",
        "message.max.bytes",
        enforced
    ),
    key!(
        "message.timestamp.after.max.ms",
        Long,
        "3600000",
        "log.message.timestamp.after.max.ms",
        Rule::Range(0, i64::MAX)
    ),
    key!(
        "message.timestamp.before.max.ms",
        Long,
        LONG_MAX,
        "log.message.timestamp.before.max.ms",
        Rule::Range(0, i64::MAX)
    ),
    key!(
        "message.timestamp.type",
        String,
        "CreateTime",
        "log.message.timestamp.type",
        enforced
    ),
    key!(
        "min.cleanable.dirty.ratio",
        Double,
        "0.5",
        "log.cleaner.min.cleanable.ratio",
        enforced
    ),
    key!(
        "min.compaction.lag.ms",
        Long,
        "0",
        "log.cleaner.min.compaction.lag.ms",
        enforced
    ),
    key!(
        "min.insync.replicas",
        Int,
        "1",
        "min.insync.replicas",
        Rule::Range(1, i32::MAX as i64)
    ),
    key!(
        "preallocate",
        Boolean,
        "false",
        "log.preallocate",
        Rule::Boolean
    ),
    key!(
        "remote.log.copy.disable",
        Boolean,
        "false",
        "remote.log.copy.disable",
        Rule::Boolean
    ),
    key!(
        "remote.log.delete.on.disable",
        Boolean,
        "false",
        "remote.log.delete.on.disable",
        Rule::Boolean
    ),
    key!(
        "remote.storage.enable",
        Boolean,
        "false",
        "remote.log.storage.system.enable",
        Rule::FalseOnly("Tiered Storage functionality is disabled in the broker.")
    ),
    key!(
        "retention.bytes",
        Long,
        "-1",
        "log.retention.bytes",
        enforced
    ),
    key!(
        "retention.ms",
        Long,
        "604800000",
        "log.retention.ms",
        enforced
    ),
    key!(
        "segment.bytes",
        Int,
        "1073741824",
        "log.segment.bytes",
        enforced
    ),
    key!(
        "segment.index.bytes",
        Int,
        "10485760",
        "log.index.size.max.bytes",
        Rule::Range(4, i32::MAX as i64)
    ),
    key!(
        "segment.jitter.ms",
        Long,
        "0",
        "log.roll.jitter.ms",
        Rule::Range(0, i64::MAX)
    ),
    key!("segment.ms", Long, "604800000", "log.roll.ms", enforced),
    key!(
        "unclean.leader.election.enable",
        Boolean,
        "false",
        "unclean.leader.election.enable",
        Rule::Boolean
    ),
];

/// The entry of a Kafka topic config; `None` for a name Kafka does not know.
pub fn topic_config_key(name: &str) -> Option<&'static TopicConfigKey> {
    KAFKA_TOPIC_CONFIGS.iter().find(|k| k.name == name)
}

impl TopicConfigKey {
    /// Whether this broker acts on the config: it is a field of
    /// [`TopicConfig`](crate::TopicConfig). The others are accepted, kept and reported only.
    pub fn enforced(&self) -> bool {
        crate::TopicConfig::default()
            .to_pairs()
            .contains_key(self.name)
    }

    /// Checks a value of a config that is kept but not enforced against Kafka's rule;
    /// `Err` is the reason, in Kafka's words. Values of enforced configs pass here.
    pub(crate) fn check(&self, value: &str) -> std::result::Result<(), String> {
        let type_name = match self.config_type {
            ConfigType::Int => "INT",
            _ => "LONG",
        };
        let number = || {
            value
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|n| self.config_type != ConfigType::Int || i32::try_from(*n).is_ok())
                .ok_or_else(|| format!("Not a number of type {type_name}"))
        };
        match self.rule {
            Rule::Enforced => Ok(()),
            Rule::Range(min, max) => {
                let n = number()?;
                if n < min {
                    Err(format!("Value must be at least {min}"))
                } else if n > max {
                    Err(format!("Value must be no more than {max}"))
                } else {
                    Ok(())
                }
            }
            Rule::RangeOr(min, max, or) => {
                let n = number()?;
                if n == or || (min..=max).contains(&n) {
                    Ok(())
                } else {
                    Err(format!("Value must be between {min} and {max} or {or}"))
                }
            }
            Rule::Boolean => match value.trim().to_ascii_lowercase().as_str() {
                "true" | "false" => Ok(()),
                _ => Err("Expected value to be either true or false".to_owned()),
            },
            Rule::FalseOnly(reason) => match value.trim().to_ascii_lowercase().as_str() {
                "false" => Ok(()),
                "true" => Err(reason.to_owned()),
                _ => Err("Expected value to be either true or false".to_owned()),
            },
            Rule::OneOf(names) => {
                if names.contains(&value.trim()) {
                    Ok(())
                } else {
                    Err(format!("String must be one of: {}", names.join(", ")))
                }
            }
            Rule::ThrottledReplicas => {
                let value = value.trim();
                let pair = |p: &str| {
                    p.trim().split_once(':').is_some_and(|(a, b)| {
                        a.trim().parse::<u32>().is_ok() && b.trim().parse::<u32>().is_ok()
                    })
                };
                if value.is_empty() || value == "*" || value.split(',').all(pair) {
                    Ok(())
                } else {
                    Err(
                        "must be the literal '*' or a list of replicas in the following \
                         format: [partitionId]:[brokerId],[partitionId]:[brokerId],..."
                            .to_owned(),
                    )
                }
            }
        }
    }

    /// The value as it is kept: booleans in lower case, the rest trimmed.
    pub(crate) fn normalize(&self, value: &str) -> String {
        match self.config_type {
            ConfigType::Boolean => value.trim().to_ascii_lowercase(),
            _ => value.trim().to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TopicConfig;

    #[test]
    fn the_catalog_is_sorted_and_covers_every_enforced_config() {
        let names: Vec<&str> = KAFKA_TOPIC_CONFIGS.iter().map(|k| k.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted);
        let defaults = TopicConfig::default().to_pairs();
        for (name, value) in &defaults {
            let key = topic_config_key(name).unwrap_or_else(|| panic!("{name}"));
            assert!(key.enforced(), "{name}");
            assert_eq!(key.kafka_default, value, "{name}");
        }
        for key in KAFKA_TOPIC_CONFIGS.iter().filter(|k| !k.enforced()) {
            assert!(key.check(key.kafka_default).is_ok(), "{}", key.name);
        }
    }

    #[test]
    fn values_are_checked_by_kafka_rules() {
        let check = |name: &str, value: &str| topic_config_key(name).unwrap().check(value);
        assert!(check("min.insync.replicas", "2").is_ok());
        assert_eq!(
            check("min.insync.replicas", "0"),
            Err("Value must be at least 1".to_owned())
        );
        assert_eq!(
            check("min.insync.replicas", "x"),
            Err("Not a number of type INT".to_owned())
        );
        assert!(check("compression.gzip.level", "-1").is_ok());
        assert!(check("compression.gzip.level", "0").is_err());
        assert!(check("preallocate", "TRUE").is_ok());
        assert!(check("remote.storage.enable", "true").is_err());
        assert!(check("compression.type", "zstd").is_ok());
        assert!(check("compression.type", "brotli").is_err());
        assert!(check("leader.replication.throttled.replicas", "0:0,1:0").is_ok());
        assert!(check("leader.replication.throttled.replicas", "*").is_ok());
        assert!(check("leader.replication.throttled.replicas", "0-0").is_err());
    }
}
