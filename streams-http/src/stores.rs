//! The interactive-query routes: the stores, a key, a range or all of a
//! store (paged), the windows of a key, and which instance hosts what.

use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use streams_core::query::{
    KeyQueryMetadata, Queried, RangeQuery, RawEntry, StoreSchema, StreamsMetadata,
};
use streams_core::InteractiveQueries;

use crate::api_error::ApiError;
use crate::proxy::FORWARDED_HEADER;
use crate::render::{format_name, parse_key, to_json};
use crate::state::HttpState;

type Shared = State<Arc<HttpState>>;

/// Runs a query of the app's stores on a blocking thread: a query waits
/// for a stream thread's lock.
async fn blocking<T: Send + 'static>(
    state: &HttpState,
    f: impl FnOnce(&InteractiveQueries) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let queries = state.queries.clone();
    tokio::task::spawn_blocking(move || f(&queries))
        .await
        .map_err(|e| {
            ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                format!("the query failed: {e}"),
            )
        })?
}

fn path_error(rejection: PathRejection) -> ApiError {
    ApiError::bad_request(format!("bad path: {}", rejection.body_text()))
}

fn query_error(rejection: QueryRejection) -> ApiError {
    ApiError::bad_request(format!("bad query string: {}", rejection.body_text()))
}

/// `GET /stores`: every store with its kind, formats, local tasks and
/// approximate entries.
pub(crate) async fn list(State(state): Shared) -> Result<Json<Value>, ApiError> {
    let stores = blocking(&state, |q| Ok(q.stores()?)).await?;
    let stores: Vec<Value> = stores
        .iter()
        .map(|info| {
            let tasks: Vec<Value> = info
                .tasks
                .iter()
                .map(|t| match &t.restoring {
                    Some(p) => json!({
                        "task": t.task.to_string(),
                        "state": "restoring",
                        "restored": p.restored,
                        "total": p.total,
                    }),
                    None => json!({
                        "task": t.task.to_string(),
                        "state": "running",
                        "approximate_entries": t.approximate_entries,
                    }),
                })
                .collect();
            json!({
                "name": info.name,
                "kind": info.kind.as_str(),
                "key_format": format_name(&info.key_format),
                "value_format": format_name(&info.value_format),
                "window_size_ms": info.window_size_ms,
                "partitions": info.partitions,
                "approximate_entries": info.approximate_entries(),
                "tasks": tasks,
            })
        })
        .collect();
    Ok(Json(json!({
        "served_by": state.advertised,
        "stores": stores,
    })))
}

/// The stored bytes of `text`, a key of `store` typed in a URL: read in
/// the key serde's format, then checked (and normalised) by the serde.
fn key_bytes(q: &InteractiveQueries, schema: &StoreSchema, text: &str) -> Result<Bytes, ApiError> {
    let raw = parse_key(&schema.key_format, text).map_err(|reason| {
        ApiError::bad_request(format!(
            "key {text:?} does not read as a key of store '{}' ({}): {reason}",
            schema.name,
            format_name(&schema.key_format)
        ))
    })?;
    q.canonical_key(&schema.name, &raw).map_err(|e| {
        ApiError::bad_request(format!(
            "key {text:?} does not read as a key of store '{}': {e}",
            schema.name
        ))
    })
}

/// One entry as JSON: its key, value, and the window and timestamp it
/// has.
fn entry_json(schema: &StoreSchema, entry: &RawEntry) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("key".to_owned(), to_json(&schema.key_format, &entry.key).0);
    let (value, stamped) = to_json(&schema.value_format, &entry.value);
    out.insert("value".to_owned(), value);
    if let Some(window) = entry.window {
        out.insert(
            "window".to_owned(),
            json!({"start": window.start, "end": window.end}),
        );
    }
    if let Some(ts) = entry.timestamp.or(stamped) {
        out.insert("timestamp".to_owned(), Value::from(ts));
    }
    out
}

fn metadata_json(metadata: &KeyQueryMetadata) -> Value {
    json!({
        "partition": metadata.partition,
        "active_host": metadata.active_host.as_ref().map(ToString::to_string),
        "standby_hosts": metadata.standby_hosts.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "local": metadata.local,
    })
}

/// What to do with a key this instance does not hold: forward the request
/// to its owner, or say that none is known.
async fn elsewhere(
    state: &HttpState,
    schema: &StoreSchema,
    key: &str,
    metadata: &KeyQueryMetadata,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let forwarded = headers.contains_key(FORWARDED_HEADER);
    match &metadata.active_host {
        Some(owner) if !forwarded => {
            tracing::debug!(store = %schema.name, key, %owner, "forwarding a query to the key's owner");
            state
                .forwarder
                .forward(owner, uri, headers, state.advertised.as_deref(), state.forward_timeout)
                .await
        }
        _ => Err(ApiError {
            extra: Some(("metadata", metadata_json(metadata))),
            ..ApiError::unavailable(format!(
                "key {key:?} of store '{}' is in partition {}, which no instance is known to host right now (a rebalance, or an instance without application.server)",
                schema.name, metadata.partition
            ))
        }),
    }
}

/// `GET /stores/{store}/keys/{key}`: the value of a key (the latest
/// version, in a versioned store).
pub(crate) async fn get_key(
    State(state): Shared,
    path: Result<Path<(String, String)>, PathRejection>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Path((store, key)) = path.map_err(path_error)?;
    let lookup_key = key.clone();
    let (schema, answer) = blocking(&state, move |q| {
        let schema = q.store_schema(&store)?;
        let bytes = key_bytes(q, &schema, &lookup_key)?;
        let answer = q.get(&store, &bytes)?;
        Ok((schema, answer))
    })
    .await?;
    match answer {
        Queried::Ready(Some(entry)) => {
            let mut body = entry_json(&schema, &entry);
            body.insert("store".to_owned(), Value::from(schema.name.clone()));
            body.insert("served_by".to_owned(), json!(state.advertised));
            Ok(Json(Value::Object(body)).into_response())
        }
        Queried::Ready(None) => Err(ApiError::not_found(format!(
            "no key {key:?} in store '{}'",
            schema.name
        ))),
        Queried::Restoring(progress) => Err(ApiError::restoring(&schema.name, &progress)),
        Queried::Elsewhere(metadata) => {
            elsewhere(&state, &schema, &key, &metadata, &uri, &headers).await
        }
    }
}

/// The parameters of a windows query.
#[derive(Debug, Deserialize)]
pub(crate) struct WindowParams {
    from: Option<String>,
    to: Option<String>,
}

fn time_param(name: &str, value: Option<&str>, default: i64) -> Result<i64, ApiError> {
    match value {
        None | Some("") => Ok(default),
        Some(text) => text.parse().map_err(|_| {
            ApiError::bad_request(format!(
                "{name}={text:?} is not a time in epoch milliseconds"
            ))
        }),
    }
}

/// `GET /stores/{store}/keys/{key}/windows?from=&to=`: the windows (window
/// stores: starting in `[from, to]`) or sessions (session stores: ending
/// at or after `from`, starting at or before `to`) of a key.
pub(crate) async fn windows(
    State(state): Shared,
    path: Result<Path<(String, String)>, PathRejection>,
    params: Result<Query<WindowParams>, QueryRejection>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Path((store, key)) = path.map_err(path_error)?;
    let Query(params) = params.map_err(query_error)?;
    let from = time_param("from", params.from.as_deref(), 0)?;
    let to = time_param("to", params.to.as_deref(), i64::MAX)?;
    let lookup_key = key.clone();
    let (schema, answer) = blocking(&state, move |q| {
        let schema = q.store_schema(&store)?;
        let bytes = key_bytes(q, &schema, &lookup_key)?;
        let answer = q.windows(&store, &bytes, from, to)?;
        Ok((schema, answer))
    })
    .await?;
    match answer {
        Queried::Ready(entries) => {
            let windows: Vec<Value> = entries
                .iter()
                .map(|e| {
                    let mut m = entry_json(&schema, e);
                    m.remove("key");
                    Value::Object(m)
                })
                .collect();
            let key_json = entries
                .first()
                .map(|e| to_json(&schema.key_format, &e.key).0)
                .unwrap_or_else(|| Value::from(key.clone()));
            Ok(Json(json!({
                "store": schema.name,
                "kind": schema.kind.as_str(),
                "key": key_json,
                "from": from,
                "to": to,
                "windows": windows,
                "served_by": state.advertised,
            }))
            .into_response())
        }
        Queried::Restoring(progress) => Err(ApiError::restoring(&schema.name, &progress)),
        Queried::Elsewhere(metadata) => {
            elsewhere(&state, &schema, &key, &metadata, &uri, &headers).await
        }
    }
}

/// `GET /stores/{store}/keys/{key}/metadata`: which instance owns a key
/// (Kafka's `queryMetadataForKey`).
pub(crate) async fn key_metadata(
    State(state): Shared,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path((store, key)) = path.map_err(path_error)?;
    let metadata = blocking(&state, move |q| {
        let schema = q.store_schema(&store)?;
        let bytes = key_bytes(q, &schema, &key)?;
        Ok(q.query_metadata_for_key_bytes(&store, &bytes)?)
    })
    .await?;
    Ok(Json(metadata_json(&metadata)))
}

/// The parameters of a scan.
#[derive(Debug, Deserialize)]
pub(crate) struct ScanParams {
    from: Option<String>,
    to: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// `GET /stores/{store}?from=&to=&limit=&cursor=`: a page of the entries
/// of this instance's tasks, in the order of their stored bytes; `from` and
/// `to` (keys, inclusive) bound it, `cursor` continues a page.
pub(crate) async fn scan(
    State(state): Shared,
    path: Result<Path<String>, PathRejection>,
    params: Result<Query<ScanParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Path(store) = path.map_err(path_error)?;
    let Query(params) = params.map_err(query_error)?;
    let limit = match params.limit.as_deref() {
        None | Some("") => state.default_limit,
        Some(text) => match text.parse::<usize>() {
            Ok(0) | Err(_) => {
                return Err(ApiError::bad_request(format!(
                    "limit={text:?} is not a number from 1 to {}",
                    state.max_limit
                )))
            }
            Ok(n) => n.min(state.max_limit),
        },
    };
    let after = params
        .cursor
        .as_deref()
        .filter(|c| !c.is_empty())
        .map(crate::cursor::decode)
        .transpose()
        .map_err(ApiError::bad_request)?;
    let (schema, answer) = blocking(&state, move |q| {
        let schema = q.store_schema(&store)?;
        let bound = |text: Option<&str>| -> Result<Option<Bytes>, ApiError> {
            text.filter(|t| !t.is_empty())
                .map(|t| key_bytes(q, &schema, t))
                .transpose()
        };
        let query = RangeQuery {
            from: bound(params.from.as_deref())?,
            to: bound(params.to.as_deref())?,
            after,
            limit,
        };
        let answer = q.range(&store, &query)?;
        Ok((schema, answer))
    })
    .await?;
    match answer {
        Queried::Ready(page) => {
            let entries: Vec<Value> = page
                .entries
                .iter()
                .map(|e| Value::Object(entry_json(&schema, e)))
                .collect();
            Ok(Json(json!({
                "store": schema.name,
                "kind": schema.kind.as_str(),
                "limit": limit,
                "entries": entries,
                "next_cursor": page.next.as_ref().map(crate::cursor::encode),
                "served_by": state.advertised,
            }))
            .into_response())
        }
        Queried::Restoring(progress) => Err(ApiError::restoring(&schema.name, &progress)),
        Queried::Elsewhere(metadata) => Err(ApiError::unavailable(format!(
            "store '{}' is not hosted here (partition {})",
            schema.name, metadata.partition
        ))),
    }
}

fn instance_json(m: &StreamsMetadata) -> Value {
    json!({
        "host": m.host_info.as_ref().map(ToString::to_string),
        "local": m.local,
        "stores": m.state_store_names,
        "tasks": m.tasks.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "partitions": m
            .topic_partitions
            .iter()
            .map(|(topic, partition)| json!({"topic": topic, "partition": partition}))
            .collect::<Vec<_>>(),
    })
}

/// `GET /instances`: every known instance of the app and what it hosts
/// (Kafka's `metadataForAllStreamsClients`).
pub(crate) async fn instances(State(state): Shared) -> Result<Json<Value>, ApiError> {
    let all = blocking(&state, |q| Ok(q.all_metadata()?)).await?;
    Ok(Json(json!({
        "served_by": state.advertised,
        "instances": all.iter().map(instance_json).collect::<Vec<_>>(),
    })))
}

/// `GET /stores/{store}/instances`: the instances that host a store
/// (Kafka's `streamsMetadataForStore`).
pub(crate) async fn store_instances(
    State(state): Shared,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(store) = path.map_err(path_error)?;
    let all = blocking(&state, move |q| Ok(q.all_metadata_for_store(&store)?)).await?;
    Ok(Json(json!({
        "instances": all.iter().map(instance_json).collect::<Vec<_>>(),
    })))
}
