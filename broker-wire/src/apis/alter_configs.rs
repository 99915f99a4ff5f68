//! AlterConfigs (v0 to v2), the legacy whole-resource form: the configs given become the
//! topic's configs, and every config not given goes back to its default. Broker configs
//! cannot be changed at runtime (`INVALID_REQUEST`).

use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use super::errors::{ItemError, INVALID_CONFIG};
use super::topic_config_change::{apply, check_duplicates, current, default_value, target, Target};
use crate::context::Context;

pub(super) async fn respond(
    context: &Context,
    request: AlterConfigsRequest,
) -> AlterConfigsResponse {
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
    AlterConfigsResponse::default().with_responses(responses)
}

async fn alter(
    context: &Context,
    resource: &kafka_protocol::messages::alter_configs_request::AlterConfigsResource,
    validate_only: bool,
) -> Result<(), ItemError> {
    let keys = resource.configs.iter().map(|c| c.name.as_str());
    let Target::Topic(topic) = target(resource.resource_type, &resource.resource_name, keys)?;
    check_duplicates(resource.configs.iter().map(|c| c.name.as_str()))?;
    let config = current(context, &topic).await?;
    let defaults = &context.broker.config().default_topic_config;
    let mut changes: Vec<(String, String)> = Vec::new();
    // Every config present now and not given goes back to its default.
    for key in config.to_pairs().keys() {
        if !resource.configs.iter().any(|c| c.name.as_str() == *key) {
            if let Some(value) = default_value(defaults, key) {
                changes.push(((*key).to_owned(), value));
            }
        }
    }
    for c in &resource.configs {
        let Some(value) = &c.value else {
            return Err((
                INVALID_CONFIG,
                format!("Null value not supported for : {}", c.name),
            ));
        };
        changes.push((c.name.to_string(), value.to_string()));
    }
    apply(context, &topic, config, &changes, validate_only).await
}
