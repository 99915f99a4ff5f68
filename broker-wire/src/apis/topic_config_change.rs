//! Changing a topic's configs, as AlterConfigs and IncrementalAlterConfigs do: the changes
//! are checked together on a copy of the topic's configs and applied at once (or, with
//! `validate_only`, not at all). The broker's own configs cannot be changed at runtime.

use std::collections::HashSet;

use broker_embedded::config_catalog::topic_config_key;
use broker_embedded::TopicConfig;

use super::config_entries::{RESOURCE_BROKER, RESOURCE_TOPIC};
use super::describe_configs::check_broker_name;
use super::errors::{config_message, from_broker, ItemError, INVALID_CONFIG, INVALID_REQUEST};
use crate::context::Context;

/// The value a config goes back to when it is deleted or left out of a full AlterConfigs:
/// the broker's default for new topics.
pub(super) fn default_value(defaults: &TopicConfig, key: &str) -> Option<String> {
    defaults
        .to_pairs()
        .get(key)
        .cloned()
        .or_else(|| topic_config_key(key).map(|k| k.kafka_default.to_owned()))
}

/// The topic's present configs.
pub(super) async fn current(context: &Context, topic: &str) -> Result<TopicConfig, ItemError> {
    broker_embedded::validate_topic_name(topic).map_err(|e| from_broker(&e))?;
    context
        .broker
        .describe_topic(topic)
        .await
        .map(|d| d.config)
        .map_err(|e| from_broker(&e))
}

/// Kafka's refusal of a resource naming a key twice.
pub(super) fn check_duplicates<'a>(
    names: impl IntoIterator<Item = &'a str>,
) -> Result<(), ItemError> {
    let mut seen = HashSet::new();
    for name in names {
        if !seen.insert(name) {
            return Err((
                INVALID_REQUEST,
                format!("Error due to duplicate config keys: {name}"),
            ));
        }
    }
    Ok(())
}

/// Applies `changes` (`(key, value)`, in order) to the topic: checked on a copy first, so
/// that a bad one changes nothing; with `validate_only`, only checked.
pub(super) async fn apply(
    context: &Context,
    topic: &str,
    mut config: TopicConfig,
    changes: &[(String, String)],
    validate_only: bool,
) -> Result<(), ItemError> {
    for (key, value) in changes {
        config.set(key, value).map_err(|e| match e {
            broker_embedded::BrokerError::InvalidConfig { key, value, reason } => {
                (INVALID_CONFIG, config_message(&key, &value, &reason))
            }
            e => from_broker(&e),
        })?;
    }
    if validate_only {
        return Ok(());
    }
    let refs: Vec<(&str, &str)> = changes
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    context
        .broker
        .alter_topic_config(topic, &refs)
        .await
        .map_err(|e| from_broker(&e))?;
    tracing::info!(topic, changes = ?changes, "topic configs changed");
    Ok(())
}

/// What a resource of an alter request is.
pub(super) enum Target {
    /// A topic, by name.
    Topic(String),
}

/// Sorts out an alter request's resource: a topic, or a refusal (the broker, any other
/// type).
pub(super) fn target<'a>(
    resource_type: i8,
    name: &str,
    keys: impl IntoIterator<Item = &'a str>,
) -> Result<Target, ItemError> {
    match resource_type {
        RESOURCE_TOPIC => Ok(Target::Topic(name.to_owned())),
        RESOURCE_BROKER => {
            check_broker_name(name)?;
            let keys: Vec<&str> = keys.into_iter().collect();
            Err((
                INVALID_REQUEST,
                format!(
                    "Cannot update these configs dynamically: Set({}) (the embedded broker's \
                     configs are set when `streams serve` starts)",
                    keys.join(", ")
                ),
            ))
        }
        other => Err((
            INVALID_REQUEST,
            format!("Unsupported resource type {other} for altering configs"),
        )),
    }
}
