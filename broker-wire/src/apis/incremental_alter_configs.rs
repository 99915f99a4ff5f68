//! IncrementalAlterConfigs (v0 and v1): SET, DELETE (back to the default), APPEND and
//! SUBTRACT (list configs only, such as `cleanup.policy`) on a topic's configs, checked
//! together and applied at once. Broker configs cannot be changed at runtime
//! (`INVALID_REQUEST`).

use broker_embedded::config_catalog::{topic_config_key, ConfigType};
use kafka_protocol::messages::incremental_alter_configs_request::AlterConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use super::errors::{ItemError, INVALID_CONFIG, INVALID_REQUEST};
use super::topic_config_change::{apply, check_duplicates, current, default_value, target, Target};
use crate::context::Context;

const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

pub(super) async fn respond(
    context: &Context,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        let outcome = alter(context, &resource, request.validate_only).await;
        let mut response = AlterConfigsResourceResponse::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name.clone());
        if let Err((code, message)) = outcome {
            response.error_code = code;
            response.error_message = Some(StrBytes::from_string(message));
        }
        responses.push(response);
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

async fn alter(
    context: &Context,
    resource: &AlterConfigsResource,
    validate_only: bool,
) -> Result<(), ItemError> {
    let keys = resource.configs.iter().map(|c| c.name.as_str());
    let Target::Topic(topic) = target(resource.resource_type, &resource.resource_name, keys)?;
    check_duplicates(resource.configs.iter().map(|c| c.name.as_str()))?;
    let config = current(context, &topic).await?;
    let defaults = &context.broker.config().default_topic_config;
    let present = config.to_pairs();
    let mut changes: Vec<(String, String)> = Vec::new();
    for c in &resource.configs {
        let name = c.name.to_string();
        let value = c.value.as_ref().map(|v| v.to_string());
        match c.config_operation {
            SET => {
                let Some(value) = value else {
                    return Err((
                        INVALID_CONFIG,
                        format!("Null value not supported for : {name}"),
                    ));
                };
                changes.push((name, value));
            }
            DELETE => {
                // A key Kafka does not know has nothing to delete.
                if let Some(value) = default_value(defaults, &name) {
                    changes.push((name, value));
                }
            }
            op @ (APPEND | SUBTRACT) => {
                let verb = if op == APPEND { "append" } else { "subtract" };
                let is_list =
                    topic_config_key(&name).is_some_and(|k| k.config_type == ConfigType::List);
                if !is_list {
                    return Err((
                        INVALID_REQUEST,
                        format!("Config value {verb} is not allowed for config key: {name}"),
                    ));
                }
                let old = present
                    .get(name.as_str())
                    .cloned()
                    .or_else(|| default_value(defaults, &name))
                    .unwrap_or_default();
                let mut items: Vec<String> = old
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect();
                let given: Vec<String> = value
                    .unwrap_or_default()
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect();
                if op == APPEND {
                    for item in given {
                        if !items.contains(&item) {
                            items.push(item);
                        }
                    }
                } else {
                    items.retain(|item| !given.contains(item));
                }
                changes.push((name, items.join(",")));
            }
            other => {
                return Err((
                    INVALID_REQUEST,
                    format!("Unknown alter config operation type {other} for {name}"),
                ))
            }
        }
    }
    apply(context, &topic, config, &changes, validate_only).await
}
