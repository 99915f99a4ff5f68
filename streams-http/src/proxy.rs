//! Forwarding: a request for a key that another instance owns is sent on
//! to that instance (by its `application.server`) and its answer is handed
//! back as it is. A forwarded request carries the header
//! [`FORWARDED_HEADER`]; an instance never forwards such a request again,
//! so two instances that disagree about an owner cannot bounce it.

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Request, StatusCode, Uri};
use axum::response::Response;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use streams_core::query::HostInfo;

use crate::api_error::ApiError;

/// Marks a request forwarded by another instance (its value: that
/// instance's `application.server`).
pub const FORWARDED_HEADER: &str = "x-rill-forwarded-by";

/// The largest answer taken from another instance.
const MAX_FORWARDED_BODY: usize = 16 * 1024 * 1024;

/// The HTTP client that forwards requests.
#[derive(Debug, Clone)]
pub(crate) struct Forwarder {
    client: Client<HttpConnector, Empty<Bytes>>,
}

impl Forwarder {
    pub(crate) fn new() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
        }
    }

    /// Sends `uri`'s path and query to `owner`, with the caller's
    /// `Authorization` header, and returns its answer.
    pub(crate) async fn forward(
        &self,
        owner: &HostInfo,
        uri: &Uri,
        headers: &HeaderMap,
        from: Option<&str>,
        timeout: Duration,
    ) -> Result<Response, ApiError> {
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let target = format!("http://{owner}{path}");
        let mut request = Request::get(&target);
        if let Some(auth) = headers.get(header::AUTHORIZATION) {
            request = request.header(header::AUTHORIZATION, auth.clone());
        }
        let from = HeaderValue::from_str(from.unwrap_or("unknown"))
            .unwrap_or_else(|_| HeaderValue::from_static("unknown"));
        let request = request
            .header(FORWARDED_HEADER, from)
            .body(Empty::<Bytes>::new())
            .map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    format!("cannot forward to {owner}: {e}"),
                )
            })?;
        let unreachable = |reason: String| {
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                format!("the key's owner {owner} did not answer: {reason}"),
            )
        };
        let answer = tokio::time::timeout(timeout, async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_FORWARDED_BODY)
                .collect()
                .await
                .map_err(|e| unreachable(e.to_string()))?
                .to_bytes();
            Ok::<_, ApiError>((parts, body))
        })
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                format!("the key's owner {owner} did not answer within {timeout:?}"),
            )
        })??;
        let (parts, body) = answer;
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = parts.status;
        for name in [header::CONTENT_TYPE, header::RETRY_AFTER] {
            if let Some(value) = parts.headers.get(&name) {
                response.headers_mut().insert(name, value.clone());
            }
        }
        Ok(response)
    }
}
