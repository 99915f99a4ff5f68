//! Requests that are too long, not UTF-8, not HTTP or never finished get
//! an error status or a closed connection, and the endpoint keeps
//! answering everyone else.

mod support;

use std::time::{Duration, Instant};

use hyper::StatusCode;
use streams_http::HttpServer;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use support::*;

/// Sends `request` as raw bytes and reads until the server closes the
/// connection or `wait` passes: the status line's code, if any came.
async fn raw(addr: std::net::SocketAddr, request: &[u8], wait: Duration) -> (Option<u16>, bool) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // The server may close before reading everything: a failed write is
    // an answer too.
    let _ = stream.write_all(request).await;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + wait;
    let closed = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
            Err(_) => break false,
        }
    };
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok());
    (status, closed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_errors_and_others_are_still_answered() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker().await;
    let input = input(300);
    let counts = word_counts(&input);
    produce(&broker, &input).await;
    let mut app = start_app(&broker, config("hostile", dir.path(), "127.0.0.1:0")).await;
    let http = HttpServer::builder(&app)
        .header_read_timeout(Duration::from_millis(800))
        .start()
        .await
        .unwrap();
    let addr = http.local_addr();
    wait_for("every count", || has_counts(addr, &counts)).await;

    // A client that sends half a request and stalls: the others are
    // answered meanwhile, and the stalled one is disconnected.
    let mut stalled = TcpStream::connect(addr).await.unwrap();
    stalled
        .write_all(b"GET /stores HTTP/1.1\r\nHost: x\r\nX-Half: ")
        .await
        .unwrap();
    let started = Instant::now();
    assert_eq!(get(addr, "/stores").await.0, StatusCode::OK);
    assert_eq!(count_of(addr, "the").await, Some(counts["the"]));
    let mut buf = [0u8; 1024];
    let mut answer = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), stalled.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
            Err(_) => panic!("the stalled connection was not closed"),
        }
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "a stalled client gets a closed connection: {answer}"
    );

    // A long path: 414 with a JSON error.
    let long = format!("/stores/word-counts/keys/{}", "a".repeat(8_000));
    let (status, body) = get(addr, &long).await;
    assert_eq!(status, StatusCode::URI_TOO_LONG, "{body}");
    assert_eq!(body["status"], 414);
    // A path far beyond the request buffer: an error status or a closed
    // connection, never an answer.
    let huge = format!(
        "GET /stores/word-counts/keys/{} HTTP/1.1\r\nHost: x\r\n\r\n",
        "b".repeat(200_000)
    );
    let (status, closed) = raw(addr, huge.as_bytes(), Duration::from_secs(10)).await;
    assert!(
        status.is_some_and(|s| s >= 400) || (status.is_none() && closed),
        "{status:?}, closed: {closed}"
    );

    // Percent-encoding that is not UTF-8: 400.
    let (status, body) = get(addr, "/stores/word-counts/keys/%FF%FE").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = get(addr, "/stores/%C3%28").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = get(addr, "/stores/word-counts?from=%FF").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Raw bytes that are not UTF-8 in the request line, and no HTTP at
    // all: an error status or a closed connection.
    for request in [
        &b"GET /stores/word-counts/keys/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        &b"\x00\x01\x02 not http at all\r\n\r\n"[..],
        &b"GET /stores HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n"[..],
    ] {
        let (status, closed) = raw(addr, request, Duration::from_secs(10)).await;
        assert!(
            status.is_some_and(|s| s >= 400) || (status.is_none() && closed),
            "{:?}: {status:?}, closed: {closed}",
            String::from_utf8_lossy(request)
        );
    }

    // Still answering.
    assert_eq!(count_of(addr, "the").await, Some(counts["the"]));
    assert_eq!(get(addr, "/stores").await.0, StatusCode::OK);
    http.shutdown().await;
    app.close().await.unwrap();
}
