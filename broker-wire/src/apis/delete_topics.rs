//! DeleteTopics (v1 to v6): by name, or from v6 on by name or topic id. The internal topics
//! cannot be deleted.

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use tracing::info;
use uuid::Uuid;

use super::errors::{from_broker, ItemError, INVALID_REQUEST, UNKNOWN_TOPIC_ID};
use crate::context::Context;

pub(super) async fn respond(
    context: &Context,
    request: DeleteTopicsRequest,
    version: i16,
) -> DeleteTopicsResponse {
    // Up to v5 the names come in `topic_names`; from v6 in `topics`, each by name or id.
    let wanted: Vec<(Option<String>, Uuid)> = if version >= 6 {
        request
            .topics
            .into_iter()
            .map(|t| (t.name.map(|n| n.0.to_string()), t.topic_id))
            .collect()
    } else {
        request
            .topic_names
            .into_iter()
            .map(|n| (Some(n.0.to_string()), Uuid::nil()))
            .collect()
    };
    let mut responses = Vec::with_capacity(wanted.len());
    for (name, id) in wanted {
        let outcome = delete(context, name.clone(), id).await;
        let (name, id) = match &outcome {
            Ok((name, id)) => (Some(name.clone()), *id),
            Err(_) => (name, id),
        };
        let mut result = DeletableTopicResult::default()
            .with_name(name.map(|n| TopicName(StrBytes::from_string(n))));
        if version >= 6 {
            result.topic_id = id;
        }
        if let Err((code, message)) = outcome {
            result.error_code = code;
            if version >= 5 {
                result.error_message = Some(StrBytes::from_string(message));
            }
        }
        responses.push(result);
    }
    DeleteTopicsResponse::default().with_responses(responses)
}

/// Deletes one topic; returns its name and id.
async fn delete(
    context: &Context,
    name: Option<String>,
    id: Uuid,
) -> Result<(String, Uuid), ItemError> {
    let broker = &context.broker;
    let name = match name {
        Some(name) => name,
        None if id.is_nil() => {
            return Err((
                INVALID_REQUEST,
                "Neither topic name nor id were specified.".to_owned(),
            ))
        }
        None => broker.topic_name_by_id(id).ok_or_else(|| {
            (
                UNKNOWN_TOPIC_ID,
                format!("This server does not host this topic ID: {id}"),
            )
        })?,
    };
    if matches!(name.as_str(), "__consumer_offsets" | "__transaction_state") {
        return Err((
            INVALID_REQUEST,
            format!(
                "Topic {name} is a kafka internal topic and is not allowed to be marked for \
                 deletion."
            ),
        ));
    }
    let id = broker.topic_id(&name).map_err(|e| from_broker(&e))?;
    broker
        .delete_topic(&name)
        .await
        .map_err(|e| from_broker(&e))?;
    info!(topic = %name, "topic deleted by a DeleteTopics request");
    Ok((name, id))
}
