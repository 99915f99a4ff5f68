//! The config entries of a topic and of the broker, as DescribeConfigs and CreateTopics
//! (v5+) report them: every config Kafka 4.x lists, its value, where the value comes from
//! (`config_source`), its type, and its synonyms.
//!
//! A topic's configs are kept whole in its metadata file, so "set on the topic" is decided
//! by value: a value other than the broker's default for new topics is `TOPIC_CONFIG`; one
//! equal to it is `DEFAULT_CONFIG` (or `STATIC_BROKER_CONFIG` when the broker's default is
//! not Kafka's).

use broker_embedded::config_catalog::{ConfigType, TopicConfigKey, KAFKA_TOPIC_CONFIGS};
use broker_embedded::group::OFFSETS_TOPIC_PARTITIONS;
use broker_embedded::{TopicConfig, TRANSACTION_STATE_PARTITIONS};

use crate::context::Context;

/// Kafka's `ConfigSource` codes.
pub(super) const TOPIC_CONFIG: i8 = 1;
pub(super) const STATIC_BROKER_CONFIG: i8 = 4;
pub(super) const DEFAULT_CONFIG: i8 = 5;

/// Kafka's `ConfigResource.Type` codes.
pub(super) const RESOURCE_TOPIC: i8 = 2;
pub(super) const RESOURCE_BROKER: i8 = 4;

/// The broker's resource name: its node id.
pub(super) const BROKER_RESOURCE_NAME: &str = "0";

/// One config as reported.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Entry {
    pub(super) name: String,
    pub(super) value: String,
    pub(super) source: i8,
    pub(super) config_type: ConfigType,
    /// `(name, value, source)`, most specific first.
    pub(super) synonyms: Vec<(String, String, i8)>,
}

fn value_of(config: &TopicConfig, key: &TopicConfigKey) -> String {
    config
        .to_pairs()
        .get(key.name)
        .cloned()
        .unwrap_or_else(|| key.kafka_default.to_owned())
}

/// Every topic config of a topic whose configs are `config`, on a broker whose default
/// topic configs are `defaults`, sorted by name.
pub(super) fn topic_entries(defaults: &TopicConfig, config: &TopicConfig) -> Vec<Entry> {
    let (values, default_values) = (config.to_pairs(), defaults.to_pairs());
    KAFKA_TOPIC_CONFIGS
        .iter()
        .map(|key| {
            let get = |pairs: &std::collections::BTreeMap<&str, String>| {
                pairs
                    .get(key.name)
                    .cloned()
                    .unwrap_or_else(|| key.kafka_default.to_owned())
            };
            let (value, broker_default) = (get(&values), get(&default_values));
            let mut synonyms = Vec::new();
            let source = if value != broker_default {
                synonyms.push((key.name.to_owned(), value.clone(), TOPIC_CONFIG));
                TOPIC_CONFIG
            } else if broker_default != key.kafka_default {
                STATIC_BROKER_CONFIG
            } else {
                DEFAULT_CONFIG
            };
            if broker_default != key.kafka_default {
                synonyms.push((
                    key.broker_synonym.to_owned(),
                    broker_default.clone(),
                    STATIC_BROKER_CONFIG,
                ));
            }
            synonyms.push((
                key.broker_synonym.to_owned(),
                key.kafka_default.to_owned(),
                DEFAULT_CONFIG,
            ));
            Entry {
                name: key.name.to_owned(),
                value,
                source,
                config_type: key.config_type,
                synonyms,
            }
        })
        .collect()
}

/// The broker's configs (resource `0`): the broker-level synonym of every topic config with
/// the broker's default, and the broker settings clients ask about, sorted by name.
pub(super) fn broker_entries(context: &Context) -> Vec<Entry> {
    let config = context.broker.config();
    let defaults = &config.default_topic_config;
    let mut entries: Vec<Entry> = Vec::new();
    let mut add = |name: &str, value: String, kafka_default: Option<&str>, ty: ConfigType| {
        let source = match kafka_default {
            Some(d) if d == value => DEFAULT_CONFIG,
            _ => STATIC_BROKER_CONFIG,
        };
        let mut synonyms = vec![(name.to_owned(), value.clone(), source)];
        if let Some(d) = kafka_default.filter(|d| *d != value) {
            synonyms.push((name.to_owned(), d.to_owned(), DEFAULT_CONFIG));
        }
        entries.push(Entry {
            name: name.to_owned(),
            value,
            source,
            config_type: ty,
            synonyms,
        });
    };
    for key in KAFKA_TOPIC_CONFIGS {
        if key.broker_synonym == "remote.log.storage.system.enable" {
            add(
                key.broker_synonym,
                "false".to_owned(),
                Some("false"),
                ConfigType::Boolean,
            );
            continue;
        }
        add(
            key.broker_synonym,
            value_of(defaults, key),
            Some(key.kafka_default),
            key.config_type,
        );
    }
    let (host, port) = &context.advertised;
    let listen = context.config.listen;
    let bool_str = |b: bool| b.to_string();
    add(
        "advertised.listeners",
        format!("PLAINTEXT://{host}:{port}"),
        None,
        ConfigType::List,
    );
    add(
        "auto.create.topics.enable",
        bool_str(context.config.auto_create_topics_enable),
        Some("true"),
        ConfigType::Boolean,
    );
    add("broker.id", "0".to_owned(), None, ConfigType::Int);
    add(
        "default.replication.factor",
        "1".to_owned(),
        Some("1"),
        ConfigType::Int,
    );
    add(
        "delete.topic.enable",
        "true".to_owned(),
        Some("true"),
        ConfigType::Boolean,
    );
    add(
        "listeners",
        format!("PLAINTEXT://{listen}"),
        None,
        ConfigType::List,
    );
    add(
        "log.cleaner.backoff.ms",
        config.cleaner_backoff_ms.to_string(),
        Some("15000"),
        ConfigType::Long,
    );
    add(
        "log.dirs",
        context.broker.dir().display().to_string(),
        None,
        ConfigType::List,
    );
    if let Some(ms) = config.retention_check_interval_ms {
        add(
            "log.retention.check.interval.ms",
            ms.to_string(),
            Some("300000"),
            ConfigType::Long,
        );
    }
    add("node.id", "0".to_owned(), None, ConfigType::Int);
    add(
        "num.partitions",
        config.num_partitions.to_string(),
        Some("1"),
        ConfigType::Int,
    );
    add(
        "offsets.topic.num.partitions",
        OFFSETS_TOPIC_PARTITIONS.to_string(),
        Some("50"),
        ConfigType::Int,
    );
    add(
        "offsets.topic.replication.factor",
        "1".to_owned(),
        Some("3"),
        ConfigType::Short,
    );
    add(
        "process.roles",
        "broker,controller".to_owned(),
        None,
        ConfigType::List,
    );
    add(
        "socket.request.max.bytes",
        context.config.socket_request_max_bytes.to_string(),
        Some("104857600"),
        ConfigType::Int,
    );
    add(
        "transaction.state.log.min.isr",
        "1".to_owned(),
        Some("2"),
        ConfigType::Int,
    );
    add(
        "transaction.state.log.num.partitions",
        TRANSACTION_STATE_PARTITIONS.to_string(),
        Some("50"),
        ConfigType::Int,
    );
    add(
        "transaction.state.log.replication.factor",
        "1".to_owned(),
        Some("3"),
        ConfigType::Short,
    );
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    entries.dedup_by(|a, b| a.name == b.name);
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_topic_without_settings_reports_kafka_defaults_as_defaults() {
        let entries = topic_entries(&TopicConfig::default(), &TopicConfig::default());
        assert_eq!(entries.len(), KAFKA_TOPIC_CONFIGS.len());
        assert!(entries.iter().all(|e| e.source == DEFAULT_CONFIG));
        let retention = entries.iter().find(|e| e.name == "retention.ms").unwrap();
        assert_eq!(retention.value, "604800000");
        assert_eq!(
            retention.synonyms,
            vec![(
                "log.retention.ms".to_owned(),
                "604800000".to_owned(),
                DEFAULT_CONFIG
            )]
        );
    }

    #[test]
    fn a_value_set_on_the_topic_or_the_broker_says_so() {
        let broker = TopicConfig::from_pairs([("segment.bytes", "4096")]).unwrap();
        let topic =
            TopicConfig::from_pairs([("segment.bytes", "4096"), ("min.insync.replicas", "2")])
                .unwrap();
        let entries = topic_entries(&broker, &topic);
        let get = |name: &str| entries.iter().find(|e| e.name == name).unwrap();
        assert_eq!(get("segment.bytes").source, STATIC_BROKER_CONFIG);
        assert_eq!(get("segment.bytes").synonyms.len(), 2);
        assert_eq!(get("min.insync.replicas").source, TOPIC_CONFIG);
        assert_eq!(get("min.insync.replicas").value, "2");
        assert_eq!(get("min.insync.replicas").synonyms[0].2, TOPIC_CONFIG);
    }
}
