//! Topics on a cluster: create, delete and describe them with librdkafka's admin client.

use std::collections::BTreeMap;

use anyhow::{anyhow, Context as _, Result};
use broker_embedded::{BrokerError, NewTopic, TopicConfig};
use rdkafka::admin::{
    ConfigSource, NewTopic as KafkaNewTopic, ResourceSpecifier, TopicReplication,
};
use rdkafka::error::RDKafkaErrorCode;

use super::{code_text, partition_from, unknown_topic, Cluster};
use crate::backend::{core_config_keys, ConfigView, PartitionView, TopicView};

impl Cluster {
    /// Creates a topic with the cluster's replication factor, and its partition count unless
    /// `topic` gives one. An existing topic is [`BrokerError::TopicExists`]; a config the
    /// cluster refuses is explained as a data dir's broker would, when it refuses it too.
    pub(crate) async fn create_topic(&self, topic: &NewTopic) -> Result<()> {
        let partitions = match topic.partitions {
            // -1: the cluster's num.partitions.
            None => -1,
            Some(n) => i32::try_from(n).with_context(|| format!("{n} partitions"))?,
        };
        let mut new = KafkaNewTopic::new(&topic.name, partitions, TopicReplication::Fixed(-1));
        for (key, value) in &topic.configs {
            new = new.set(key, value);
        }
        let results = self
            .admin
            .create_topics([&new], &Self::admin_options())
            .await
            .with_context(|| format!("creating topic {}", topic.name))?;
        match results.into_iter().next() {
            Some(Ok(_)) => Ok(()),
            Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) => Err(BrokerError::TopicExists {
                topic: topic.name.clone(),
            }
            .into()),
            Some(Err((_, RDKafkaErrorCode::InvalidConfig))) => {
                // The answer's message does not reach librdkafka's result; the data dir's
                // checks name the key and the reason, where they refuse the config too.
                let mut config = TopicConfig::default();
                for (key, value) in &topic.configs {
                    config.set(key, value)?;
                }
                Err(anyhow!(
                    "creating topic {}: {}",
                    topic.name,
                    code_text(RDKafkaErrorCode::InvalidConfig)
                ))
            }
            Some(Err((_, code))) => Err(anyhow!(
                "creating topic {}: {}",
                topic.name,
                code_text(code)
            )),
            None => Err(anyhow!("creating topic {}: no answer", topic.name)),
        }
    }

    /// Deletes a topic; an unknown one is [`BrokerError::UnknownTopic`].
    pub(crate) async fn delete_topic(&self, topic: &str) -> Result<()> {
        let results = self
            .admin
            .delete_topics(&[topic], &Self::admin_options())
            .await
            .with_context(|| format!("deleting topic {topic}"))?;
        match results.into_iter().next() {
            Some(Ok(_)) => Ok(()),
            Some(Err((_, RDKafkaErrorCode::UnknownTopicOrPartition))) => Err(unknown_topic(topic)),
            Some(Err((_, code))) => Err(anyhow!("deleting topic {topic}: {}", code_text(code))),
            None => Err(anyhow!("deleting topic {topic}: no answer")),
        }
    }

    /// A topic's partitions (offsets from the watermarks; sizes and segments are not in the
    /// protocol) and configs: the keys a data dir's broker enforces, and every other key the
    /// topic sets.
    pub(crate) async fn describe_topic(&self, topic: &str) -> Result<TopicView> {
        let metadata = self.metadata(Some(topic))?;
        let found = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .ok_or_else(|| unknown_topic(topic))?;
        if found.partitions().is_empty() {
            return match found.error() {
                Some(e)
                    if RDKafkaErrorCode::from(e) != RDKafkaErrorCode::UnknownTopicOrPartition =>
                {
                    Err(anyhow!(
                        "reading the metadata of topic {topic}: {}",
                        code_text(RDKafkaErrorCode::from(e))
                    ))
                }
                _ => Err(unknown_topic(topic)),
            };
        }
        let mut partitions = Vec::with_capacity(found.partitions().len());
        for p in found.partitions() {
            let partition = partition_from(p.id())?;
            let leader_error = p
                .error()
                .map(RDKafkaErrorCode::from)
                .filter(|code| *code != RDKafkaErrorCode::NoError);
            let (offsets, offline) = match leader_error {
                Some(code) => (None, Some(format!("no leader: {}", code_text(code)))),
                None if p.leader() < 0 => (None, Some("no leader".to_owned())),
                None => match self.offsets(topic, partition) {
                    Ok(offsets) => (Some(offsets), None),
                    Err(e) => (None, Some(format!("{e:#}"))),
                },
            };
            partitions.push(PartitionView {
                partition,
                log_start_offset: offsets.map(|o| o.0),
                log_end_offset: offsets.map(|o| o.1),
                size_bytes: None,
                segment_count: None,
                offline,
            });
        }
        partitions.sort_by_key(|p| p.partition);
        Ok(TopicView {
            name: topic.to_owned(),
            partitions,
            configs: self.topic_configs(topic).await?,
        })
    }

    /// The configs `topics describe` shows, sorted by key.
    async fn topic_configs(&self, topic: &str) -> Result<Vec<ConfigView>> {
        let results = self
            .admin
            .describe_configs([&ResourceSpecifier::Topic(topic)], &Self::admin_options())
            .await
            .with_context(|| format!("reading the configs of topic {topic}"))?;
        let resource = match results.into_iter().next() {
            Some(Ok(resource)) => resource,
            Some(Err(RDKafkaErrorCode::UnknownTopicOrPartition)) => {
                return Err(unknown_topic(topic))
            }
            Some(Err(code)) => {
                return Err(anyhow!(
                    "reading the configs of topic {topic}: {}",
                    code_text(code)
                ))
            }
            None => return Err(anyhow!("reading the configs of topic {topic}: no answer")),
        };
        let core = core_config_keys();
        let mut configs = BTreeMap::new();
        for entry in &resource.entries {
            let set_on_topic = entry.source == ConfigSource::DynamicTopic;
            if !set_on_topic && !core.contains(&entry.name.as_str()) {
                continue;
            }
            configs.insert(
                entry.name.clone(),
                ConfigView {
                    key: entry.name.clone(),
                    value: entry.value.clone().unwrap_or_else(|| "null".to_owned()),
                    is_default: !set_on_topic,
                },
            );
        }
        Ok(configs.into_values().collect())
    }
}
