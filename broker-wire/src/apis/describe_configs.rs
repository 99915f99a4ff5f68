//! DescribeConfigs (v1 to v4): a topic's configs (every one Kafka 4.x lists, with its
//! source) and the broker's (node `0`). Synonyms when asked; the config type from v3 on
//! (documentation is null). A key list limits the answer to those keys.

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use super::config_entries::{
    broker_entries, topic_entries, Entry, BROKER_RESOURCE_NAME, RESOURCE_BROKER, RESOURCE_TOPIC,
};
use super::errors::{from_broker, ItemError, INVALID_REQUEST};
use crate::context::Context;

pub(super) async fn respond(
    context: &Context,
    request: DescribeConfigsRequest,
    version: i16,
) -> DescribeConfigsResponse {
    let synonyms = request.include_synonyms;
    let mut results = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        let result = DescribeConfigsResult::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name.clone());
        let name = resource.resource_name.to_string();
        let entries = match resource.resource_type {
            RESOURCE_TOPIC => topic(context, &name).await.map(|e| (e, false)),
            RESOURCE_BROKER => broker(context, &name).map(|e| (e, true)),
            other => Err((
                INVALID_REQUEST,
                format!("Unsupported resource type {other} for DescribeConfigs"),
            )),
        };
        results.push(match entries {
            Ok((entries, read_only)) => {
                let keys = resource.configuration_keys.as_ref();
                let configs = entries
                    .into_iter()
                    .filter(|e| keys.is_none_or(|keys| keys.iter().any(|k| **k == *e.name)))
                    .map(|e| entry(e, read_only, synonyms, version))
                    .collect();
                result.with_configs(configs)
            }
            Err((code, message)) => result
                .with_error_code(code)
                .with_error_message(Some(StrBytes::from_string(message))),
        });
    }
    DescribeConfigsResponse::default().with_results(results)
}

async fn topic(context: &Context, name: &str) -> Result<Vec<Entry>, ItemError> {
    broker_embedded::validate_topic_name(name).map_err(|e| from_broker(&e))?;
    let broker = &context.broker;
    let description = broker
        .describe_topic(name)
        .await
        .map_err(|e| from_broker(&e))?;
    Ok(topic_entries(
        &broker.config().default_topic_config,
        &description.config,
    ))
}

/// The broker's resource: `0` (this node), or the empty name of the cluster-wide dynamic
/// defaults, of which there are none.
pub(super) fn broker(context: &Context, name: &str) -> Result<Vec<Entry>, ItemError> {
    check_broker_name(name)?;
    if name.is_empty() {
        return Ok(Vec::new());
    }
    Ok(broker_entries(context))
}

/// Kafka's check of a broker resource name: this broker's id or empty.
pub(super) fn check_broker_name(name: &str) -> Result<(), ItemError> {
    if name.is_empty() || name == BROKER_RESOURCE_NAME {
        return Ok(());
    }
    if name.parse::<i32>().is_err() {
        return Err((
            INVALID_REQUEST,
            format!("Broker id must be an integer, but it is: {name}"),
        ));
    }
    Err((
        INVALID_REQUEST,
        format!(
            "Unexpected broker id, expected {BROKER_RESOURCE_NAME} or empty string, but received \
             {name}"
        ),
    ))
}

fn entry(e: Entry, read_only: bool, synonyms: bool, version: i16) -> DescribeConfigsResourceResult {
    let mut out = DescribeConfigsResourceResult::default()
        .with_name(StrBytes::from_string(e.name))
        .with_value(Some(StrBytes::from_string(e.value)))
        .with_read_only(read_only)
        .with_config_source(e.source)
        .with_is_sensitive(false);
    if synonyms {
        out.synonyms = e
            .synonyms
            .into_iter()
            .map(|(name, value, source)| {
                DescribeConfigsSynonym::default()
                    .with_name(StrBytes::from_string(name))
                    .with_value(Some(StrBytes::from_string(value)))
                    .with_source(source)
            })
            .collect();
    }
    if version >= 3 {
        out.config_type = e.config_type.kafka_code();
        out.documentation = None;
    }
    out
}
