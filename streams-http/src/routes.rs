//! The endpoint's router, built in one place: every route, and the layers
//! in front of them all (the size of the request target, the bearer token,
//! the request timeout). A new route (metrics, a live page) is one more
//! `.route(..)` here, with its handler in a file of its own reading the
//! shared [`HttpState`].

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tower_http::timeout::TimeoutLayer;

use crate::api_error::ApiError;
use crate::state::HttpState;
use crate::stores;

/// The longest request target (path and query) answered; longer ones get
/// 414.
pub(crate) const MAX_URI_BYTES: usize = 4096;

/// The router of the endpoint.
pub(crate) fn router(state: Arc<HttpState>, request_timeout: Duration) -> Router {
    Router::new()
        .route("/stores", get(stores::list))
        .route("/stores/{store}", get(stores::scan))
        .route("/stores/{store}/instances", get(stores::store_instances))
        .route("/stores/{store}/keys/{key}", get(stores::get_key))
        .route("/stores/{store}/keys/{key}/windows", get(stores::windows))
        .route(
            "/stores/{store}/keys/{key}/metadata",
            get(stores::key_metadata),
        )
        .route("/instances", get(stores::instances))
        .fallback(not_found)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            request_timeout,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

async fn not_found(request: Request) -> ApiError {
    ApiError::not_found(format!(
        "no route for {} {}",
        request.method(),
        request.uri().path()
    ))
}

/// Whether `given` equals `expected`, in time that does not depend on
/// where they differ.
fn same_token(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

/// Whether `target` is UTF-8 once its `%XX` escapes are decoded (a `%`
/// not followed by two hex digits is taken as it is, as the router does).
fn decodes_to_utf8(target: &str) -> bool {
    let bytes = target.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                decoded.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                decoded.push(b);
                i += 1;
            }
        }
    }
    std::str::from_utf8(&decoded).is_ok()
}

/// Refuses request targets that are too long (414) or not UTF-8 (400)
/// and, with a token, requests without it (401), before any route runs.
async fn guard(State(state): State<Arc<HttpState>>, request: Request, next: Next) -> Response {
    let target = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    if target > MAX_URI_BYTES {
        return ApiError::new(
            StatusCode::URI_TOO_LONG,
            format!("the request target is {target} bytes; at most {MAX_URI_BYTES} are answered"),
        )
        .into_response();
    }
    if !decodes_to_utf8(request.uri().path_and_query().map_or("", |p| p.as_str())) {
        return ApiError::bad_request("the request target is not UTF-8 once percent-decoded")
            .into_response();
    }
    if let Some(token) = &state.token {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "));
        if !given.is_some_and(|g| same_token(g, token.as_bytes())) {
            let mut response = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "a bearer token is required (Authorization: Bearer <http.auth.token>)",
            )
            .into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"rill\""),
            );
            return response;
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_must_decode_to_utf8() {
        assert!(decodes_to_utf8("/stores/w/keys/caf%C3%A9?from=a%20b"));
        assert!(decodes_to_utf8("/stores/100%"));
        assert!(!decodes_to_utf8("/stores/w/keys/%FF%FE"));
        assert!(!decodes_to_utf8("/stores/w?from=%C3%28"));
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same_token(b"abc", b"abc"));
        assert!(!same_token(b"abd", b"abc"));
        assert!(!same_token(b"ab", b"abc"));
        assert!(!same_token(b"", b"abc"));
    }
}
