//! The error answers of the endpoint: a status and a JSON body
//! `{"error": "...", "status": N}` (with the restoration progress for
//! 503s of restoring stores).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use streams_core::query::RestoreProgress;
use streams_core::StreamsError;

/// An error answer.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
    /// More fields of the body.
    pub(crate) extra: Option<(&'static str, Value)>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            extra: None,
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub(crate) fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }

    /// A 503 for a store whose tasks are restoring.
    pub(crate) fn restoring(store: &str, progress: &[RestoreProgress]) -> Self {
        let tasks: Vec<Value> = progress
            .iter()
            .map(|p| {
                json!({
                    "task": p.task.to_string(),
                    "store": p.store,
                    "restored": p.restored,
                    "total": p.total,
                })
            })
            .collect();
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: format!("state store '{store}' is restoring from its changelog"),
            extra: Some(("restoring", Value::Array(tasks))),
        }
    }
}

impl From<StreamsError> for ApiError {
    fn from(e: StreamsError) -> Self {
        match &e {
            StreamsError::NoSuchStore { .. } => Self::not_found(e.to_string()),
            StreamsError::Serde(_) | StreamsError::UnsupportedQuery { .. } => {
                Self::bad_request(e.to_string())
            }
            StreamsError::IllegalState { .. } => Self::unavailable(e.to_string()),
            _ => {
                tracing::warn!(error = %e, "interactive query failed");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({
            "error": self.message,
            "status": self.status.as_u16(),
        });
        if let (Some((key, value)), Some(map)) = (self.extra, body.as_object_mut()) {
            map.insert(key.to_owned(), value);
        }
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
