//! What the HTTP end-to-end tests share: a topology with a store of each
//! kind, its input, the counts it must hold, apps on an embedded broker,
//! and a small HTTP client.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use broker_embedded::{Broker, NewTopic, Producer, ProducerRecord};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper::{Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use streams_core::{Serdes, StreamsApp, StreamsConfig, Topology};
use streams_dsl::{Consumed, Grouped, Materialized, SessionWindows, StreamsBuilder, TimeWindows};

/// The input topic: records keyed by word.
pub(crate) const WORDS: &str = "words";
/// Partitions of the input.
pub(crate) const PARTITIONS: u32 = 3;
/// Window size of `windowed-counts`.
pub(crate) const WINDOW_MS: i64 = 60_000;
/// Inactivity gap of `session-counts`.
pub(crate) const GAP_MS: i64 = 10_000;
/// The first record's timestamp.
pub(crate) const BASE_TS: i64 = 1_700_000_000_000;
/// How long a test waits for a condition.
pub(crate) const DEADLINE: Duration = Duration::from_secs(60);

/// Counts per word (`word-counts`, key-value), per word and minute
/// (`windowed-counts`, window), per word and session
/// (`session-counts`, session), and per word length (`length-counts`,
/// key-value with `i64` keys, behind a repartition topic).
pub(crate) fn topology() -> Topology {
    let builder = StreamsBuilder::new();
    let words =
        builder.stream::<String, String>(WORDS, Consumed::with(Serdes::string(), Serdes::string()));
    let grouped = words.group_by_key(Grouped::with(Serdes::string(), Serdes::string()));
    grouped.count(Materialized::as_("word-counts"));
    grouped
        .windowed_by(TimeWindows::of_size_and_grace(
            Duration::from_millis(WINDOW_MS as u64),
            Duration::from_secs(24 * 3600),
        ))
        .count(Materialized::as_("windowed-counts"));
    grouped
        .windowed_by_session(SessionWindows::with_inactivity_gap_and_grace(
            Duration::from_millis(GAP_MS as u64),
            Duration::from_secs(24 * 3600),
        ))
        .count(Materialized::as_("session-counts"));
    words
        .group_by(
            |_key, word| word.len() as i64,
            Grouped::with(Serdes::i64(), Serdes::string()).with_name("by-length"),
        )
        .count(Materialized::as_("length-counts"));
    builder.build().expect("the test topology builds")
}

/// The input: `n` words from a small vocabulary, one every 700 ms of
/// event time, as (word, timestamp).
pub(crate) fn input(n: usize) -> Vec<(String, i64)> {
    const VOCABULARY: [&str; 23] = [
        "the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "a", "stream", "of",
        "words", "counted", "by", "window", "and", "session", "zebra", "yak", "x", "echo", "delta",
        "kilo",
    ];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // Skewed: low indexes are frequent.
            let pick = (state % 23).min(state / 23 % 23) as usize;
            let ts = BASE_TS + i as i64 * 700;
            (VOCABULARY[pick].to_owned(), ts)
        })
        .collect()
}

/// Count per word.
pub(crate) fn word_counts(input: &[(String, i64)]) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for (word, _) in input {
        *out.entry(word.clone()).or_insert(0) += 1;
    }
    out
}

/// Count per word length.
pub(crate) fn length_counts(input: &[(String, i64)]) -> BTreeMap<i64, i64> {
    let mut out = BTreeMap::new();
    for (word, _) in input {
        *out.entry(word.len() as i64).or_insert(0) += 1;
    }
    out
}

/// Count per window start of `word`.
pub(crate) fn window_counts(input: &[(String, i64)], word: &str) -> BTreeMap<i64, i64> {
    let mut out = BTreeMap::new();
    for (w, ts) in input.iter().filter(|(w, _)| w == word) {
        let _ = w;
        *out.entry(ts - ts.rem_euclid(WINDOW_MS)).or_insert(0) += 1;
    }
    out
}

/// The sessions of `word`: (start, end, count).
pub(crate) fn sessions(input: &[(String, i64)], word: &str) -> Vec<(i64, i64, i64)> {
    let mut times: Vec<i64> = input
        .iter()
        .filter(|(w, _)| w == word)
        .map(|(_, ts)| *ts)
        .collect();
    times.sort_unstable();
    let mut out: Vec<(i64, i64, i64)> = Vec::new();
    for ts in times {
        match out.last_mut() {
            Some((_, end, count)) if ts - *end <= GAP_MS => {
                *end = ts;
                *count += 1;
            }
            _ => out.push((ts, ts, 1)),
        }
    }
    out
}

/// An in-memory broker with the input topic.
pub(crate) async fn broker() -> Broker {
    let broker = Broker::in_memory().await.expect("broker");
    broker
        .ensure_topic(NewTopic::new(WORDS, PARTITIONS))
        .await
        .expect("input topic");
    broker
}

/// Produces `input` keyed by word (Kafka's default partitioner).
pub(crate) async fn produce(broker: &Broker, input: &[(String, i64)]) {
    let producer = Producer::new(broker);
    for (word, ts) in input {
        producer
            .send(
                ProducerRecord::new(WORDS, word.clone())
                    .key(word.clone())
                    .timestamp(*ts),
            )
            .await
            .expect("produce");
    }
}

/// The configuration of an app instance serving on `server`.
pub(crate) fn config(app: &str, state_dir: &Path, server: &str) -> StreamsConfig {
    let mut config = StreamsConfig::new(app)
        .with_state_dir(state_dir)
        .with_commit_interval_ms(100)
        .with_application_server(server);
    config
        .set("consumer.session.timeout.ms", "3000")
        .expect("session timeout");
    config
}

/// A free port on loopback, as `127.0.0.1:port`.
pub(crate) fn free_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    format!("127.0.0.1:{port}")
}

/// Starts an app on `broker`.
pub(crate) async fn start_app(broker: &Broker, config: StreamsConfig) -> StreamsApp {
    let mut app = StreamsApp::new(topology(), config, broker.clone());
    app.start().await.expect("app starts");
    app
}

/// Waits until `check` holds, polling, for at most [`DEADLINE`].
pub(crate) async fn wait_for<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + DEADLINE;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A GET of `path` on `addr`, with a bearer `token` if given: the status
/// and the body as JSON (`Value::Null` if it is not JSON).
pub(crate) async fn get_with(
    addr: SocketAddr,
    path: &str,
    token: Option<&str>,
) -> (StatusCode, Value) {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut request = Request::get(format!("http://{addr}{path}"));
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = tokio::time::timeout(
        Duration::from_secs(30),
        client.request(request.body(Empty::new()).expect("request")),
    )
    .await
    .expect("the server answered in time")
    .expect("the request went through");
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// A GET without a token.
pub(crate) async fn get(addr: SocketAddr, path: &str) -> (StatusCode, Value) {
    get_with(addr, path, None).await
}

/// Walks every page of `store` (`limit` per page, `extra` query
/// parameters) and returns its entries in order and the number of pages.
pub(crate) async fn all_pages(
    addr: SocketAddr,
    store: &str,
    limit: usize,
    extra: &str,
) -> (Vec<Value>, usize) {
    let mut entries = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = format!("/stores/{store}?limit={limit}{extra}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, body) = get(addr, &path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        let page = body["entries"].as_array().expect("entries").clone();
        assert!(page.len() <= limit, "a page holds at most its limit");
        pages += 1;
        entries.extend(page);
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(pages < 10_000, "paging does not end");
    }
    (entries, pages)
}

/// `word`'s count as `addr` answers it, if it answers 200.
pub(crate) async fn count_of(addr: SocketAddr, word: &str) -> Option<i64> {
    let (status, body) = get(addr, &format!("/stores/word-counts/keys/{word}")).await;
    (status == StatusCode::OK)
        .then(|| body["value"].as_i64())
        .flatten()
}

/// Whether `addr` answers every count of `expected`.
pub(crate) async fn has_counts(addr: SocketAddr, expected: &BTreeMap<String, i64>) -> bool {
    for (word, count) in expected {
        if count_of(addr, word).await != Some(*count) {
            return false;
        }
    }
    true
}

/// The counts as a map from the entries of a scan.
pub(crate) fn entries_to_map(entries: &[Value]) -> HashMap<String, i64> {
    entries
        .iter()
        .map(|e| {
            (
                e["key"].as_str().expect("string key").to_owned(),
                e["value"].as_i64().expect("count"),
            )
        })
        .collect()
}
