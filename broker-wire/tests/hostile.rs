//! Clients that try to make the server hold more than it should: frames claiming huge
//! sizes and trickling bytes, requests whose arrays claim billions of elements, more
//! connections than `max.connections`, connections that go quiet, and a client that
//! pipelines ten thousand requests without reading a response. Memory is read from
//! `/proc/self/status`: the server runs in this test's process.

mod common;

use std::time::{Duration, Instant};

use broker_embedded::{BrokerConfig, NewTopic};
use broker_wire::WireConfig;
use bytes::{Bytes, BytesMut};
use common::{call, encode_request, read_response, request, send_raw, start};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, FetchRequest, FetchResponse, ProduceRequest,
    ProduceResponse, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The tests that measure the process's memory run one at a time (`cargo test` runs a
/// file's tests on threads of one process).
static MEMORY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const MIB: u64 = 1024 * 1024;

/// A `/proc/self/status` field in bytes (`VmRSS`, `VmSize`).
fn proc_status(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"));
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{line:?}"));
    kib * 1024
}

/// Whether the server answers an ApiVersions request on a new connection.
async fn serves(addr: std::net::SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        return false;
    };
    let frame = encode_request(ApiKey::ApiVersions, 3, 1, &ApiVersionsRequest::default());
    send_raw(&mut stream, &frame).await;
    let Ok(Some(mut body)) =
        tokio::time::timeout(Duration::from_secs(10), read_response(&mut stream)).await
    else {
        return false;
    };
    ResponseHeader::decode(&mut body, 0).is_ok()
        && ApiVersionsResponse::decode(&mut body, 3).is_ok_and(|r| r.error_code == 0)
}

/// Whether the server closes `stream` (reading it gives EOF or a reset) within `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(within, stream.read(&mut byte)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test]
async fn arrays_claiming_more_elements_than_the_frame_has_bytes_are_refused_before_allocating() {
    let _one_at_a_time = MEMORY.lock().await;
    let (_broker, addr) = start(BrokerConfig::default(), WireConfig::default()).await;
    // Header v1: API key, version, correlation id, null client id. Header v2 (flexible
    // versions) adds an empty tagged-field section.
    let header = |key: ApiKey, version: i16, flexible: bool| {
        let mut h = Vec::new();
        h.extend_from_slice(&(key as i16).to_be_bytes());
        h.extend_from_slice(&version.to_be_bytes());
        h.extend_from_slice(&1i32.to_be_bytes());
        h.extend_from_slice(&(-1i16).to_be_bytes());
        if flexible {
            h.push(0);
        }
        h
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            // About 150 GB for the vector of topics, unpatched: the process aborted.
            "Metadata v0 with 2^31-1 topics",
            [
                &header(ApiKey::Metadata, 0, false)[..],
                &i32::MAX.to_be_bytes(),
                &[0, 1, b'a'],
            ]
            .concat(),
        ),
        (
            "Metadata v9 with a compact array of 2^32-2 topics",
            [
                &header(ApiKey::Metadata, 9, true)[..],
                &[0xff, 0xff, 0xff, 0xff, 0x0f],
                &[0, 0, 0],
            ]
            .concat(),
        ),
        (
            "Produce v3 with one topic of 2^31-1 partitions",
            [
                &header(ApiKey::Produce, 3, false)[..],
                &(-1i16).to_be_bytes(), // transactional id
                &1i16.to_be_bytes(),    // acks
                &5000i32.to_be_bytes(), // timeout
                &1i32.to_be_bytes(),    // one topic
                &[0, 1, b't'],
                &i32::MAX.to_be_bytes(), // its partitions
            ]
            .concat(),
        ),
        (
            "DeleteTopics v1 with 2^31-1 names",
            [
                &header(ApiKey::DeleteTopics, 1, false)[..],
                &i32::MAX.to_be_bytes(),
            ]
            .concat(),
        ),
    ];
    let before = proc_status("VmRSS");
    for (what, frame) in cases {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        send_raw(&mut stream, &frame).await;
        assert!(
            closed_within(&mut stream, Duration::from_secs(10)).await,
            "{what}: the connection was not closed"
        );
        assert!(serves(addr).await, "{what}: the server stopped serving");
    }
    let grown = proc_status("VmRSS").saturating_sub(before);
    assert!(grown < 64 * MIB, "resident memory grew by {grown} bytes");
}

/// 50 clients each send a header claiming 100 MiB (under the default
/// `socket.request.max.bytes`) and then 16 KiB, a byte at a time. Allocated by the size
/// claimed, that is 5 GB of address space the moment the headers arrive.
#[tokio::test]
async fn slow_frames_claiming_100_mib_hold_what_they_sent_not_what_they_claimed() {
    let _one_at_a_time = MEMORY.lock().await;
    let (_broker, addr) = start(BrokerConfig::default(), WireConfig::default()).await;
    assert!(serves(addr).await);
    let claimed = 100 * MIB as i32 - 1;
    let (rss, size) = (proc_status("VmRSS"), proc_status("VmSize"));
    let mut clients = Vec::new();
    for _ in 0..50 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(&claimed.to_be_bytes()).await.unwrap();
        // A header that looks like a Produce request, then the rest trickles.
        stream.write_all(&[0, 0, 0, 9, 0, 0, 0, 1]).await.unwrap();
        clients.push(stream);
    }
    for round in 0..16 {
        for stream in &mut clients {
            stream.write_all(&[round as u8; 1024]).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(serves(addr).await, "the server serves others meanwhile");
    // The frames are not whole, so the server holds them; for half a second, memory is
    // what was sent, not what was claimed.
    let until = Instant::now() + Duration::from_millis(500);
    while Instant::now() < until {
        let rss_grown = proc_status("VmRSS").saturating_sub(rss);
        let size_grown = proc_status("VmSize").saturating_sub(size);
        assert!(
            rss_grown < 64 * MIB,
            "resident memory grew by {rss_grown} bytes for 50 slow frames"
        );
        assert!(
            size_grown < 1024 * MIB,
            "address space grew by {size_grown} bytes for 50 slow frames (5 GB claimed)"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The clients give up mid-frame: their connections end and the server keeps serving.
    drop(clients);
    assert!(serves(addr).await);
}

#[tokio::test]
async fn above_max_connections_a_new_connection_is_closed_at_once_until_one_ends() {
    let wire = WireConfig {
        max_connections: 3,
        ..WireConfig::default()
    };
    let (_broker, addr) = start(BrokerConfig::default(), wire).await;
    let mut open = Vec::new();
    for i in 0..3 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let mut body = call(
            &mut stream,
            ApiKey::ApiVersions,
            3,
            i,
            &ApiVersionsRequest::default(),
        )
        .await;
        assert_eq!(
            ApiVersionsResponse::decode(&mut body, 3)
                .unwrap()
                .error_code,
            0
        );
        open.push(stream);
    }
    for _ in 0..5 {
        let mut refused = TcpStream::connect(addr).await.unwrap();
        assert!(
            closed_within(&mut refused, Duration::from_secs(10)).await,
            "a fourth connection is closed at once"
        );
    }
    // The three still work.
    for (i, stream) in open.iter_mut().enumerate() {
        let _: ApiVersionsResponse = request(
            stream,
            ApiKey::ApiVersions,
            3,
            &ApiVersionsRequest::default(),
        )
        .await;
        assert!(i < 3);
    }
    // One ends: its slot is free once the server sees it go (wait for that, bounded).
    drop(open.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !serves(addr).await {
        assert!(Instant::now() < deadline, "the freed slot was not reused");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn record(value: Bytes) -> Record {
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: 0,
        timestamp: 1_700_000_000_000,
        key: None,
        value: Some(value),
        headers: IndexMap::new(),
    }
}

async fn produce_value(stream: &mut TcpStream, topic: &str, value: Bytes) {
    let mut batch = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut batch,
        &[record(value)],
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    let produce = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch.freeze()))])]);
    let response: ProduceResponse = request(stream, ApiKey::Produce, 7, &produce).await;
    assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
}

fn fetch(topic: &str, max_wait_ms: i32) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id((-1).into())
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(topic.to_owned())))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20)])])
}

#[tokio::test]
async fn a_quiet_connection_is_closed_after_connections_max_idle_ms_but_a_waiting_request_is_not_idle(
) {
    let wire = WireConfig {
        connections_max_idle_ms: 300,
        ..WireConfig::default()
    };
    let (broker, addr) = start(BrokerConfig::default(), wire).await;
    broker
        .create_topic(NewTopic::new("quiet", 1))
        .await
        .unwrap();
    let opened = Instant::now();
    // Sends nothing.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    // Sends half a frame header, then nothing.
    let mut stalled = TcpStream::connect(addr).await.unwrap();
    stalled.write_all(&[0, 0]).await.unwrap();
    // Asks for records that never come, waiting 1.5 s: five times the idle limit.
    let mut polling = TcpStream::connect(addr).await.unwrap();
    let sent = Instant::now();
    let frame = encode_request(ApiKey::Fetch, 12, 5, &fetch("quiet", 1500));
    send_raw(&mut polling, &frame).await;

    for (what, stream) in [("silent", &mut silent), ("stalled", &mut stalled)] {
        assert!(
            closed_within(stream, Duration::from_secs(10)).await,
            "the {what} connection was not closed"
        );
        assert!(
            opened.elapsed() >= Duration::from_millis(250),
            "the {what} connection was closed before the idle limit"
        );
    }
    let mut body = tokio::time::timeout(Duration::from_secs(10), read_response(&mut polling))
        .await
        .expect("the long poll ends")
        .expect("the long poll is answered, not closed");
    assert!(sent.elapsed() >= Duration::from_millis(1400));
    assert_eq!(
        ResponseHeader::decode(&mut body, 1).unwrap().correlation_id,
        5
    );
    let response = FetchResponse::decode(&mut body, 12).unwrap();
    assert_eq!(response.responses[0].partitions[0].error_code, 0);
    // An answered connection is in use again at once.
    let _: ApiVersionsResponse = request(
        &mut polling,
        ApiKey::ApiVersions,
        3,
        &ApiVersionsRequest::default(),
    )
    .await;
}

/// A client writes 10,000 Fetch requests, each answered with a 64 KiB record, and reads
/// nothing: answered all at once that would be 640 MiB of responses. The server answers
/// one request at a time and stops reading when TCP's buffers are full.
#[tokio::test]
async fn a_client_pipelining_ten_thousand_requests_without_reading_is_held_back_by_tcp() {
    let _one_at_a_time = MEMORY.lock().await;
    const REQUESTS: i32 = 10_000;
    let (broker, addr) = start(BrokerConfig::default(), WireConfig::default()).await;
    broker.create_topic(NewTopic::new("big", 1)).await.unwrap();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    produce_value(&mut stream, "big", Bytes::from(vec![42u8; 64 * 1024])).await;
    let rss = proc_status("VmRSS");

    let mut requests = Vec::new();
    for correlation_id in 0..REQUESTS {
        let frame = encode_request(ApiKey::Fetch, 12, correlation_id, &fetch("big", 0));
        requests.extend_from_slice(&(frame.len() as i32).to_be_bytes());
        requests.extend_from_slice(&frame);
    }
    let (mut reader, mut writer) = stream.into_split();
    let pipelined = tokio::spawn(async move {
        writer.write_all(&requests).await.unwrap();
        writer
    });
    // For two seconds the server does what it can until TCP stops it; memory stays put
    // throughout.
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        let grown = proc_status("VmRSS").saturating_sub(rss);
        assert!(
            grown < 64 * MIB,
            "resident memory grew by {grown} bytes with responses unread"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The responses come in order.
    for expected in 0..200 {
        let mut size = [0u8; 4];
        reader.read_exact(&mut size).await.unwrap();
        let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
        reader.read_exact(&mut body).await.unwrap();
        let mut body = Bytes::from(body);
        let header = ResponseHeader::decode(&mut body, 1).unwrap();
        assert_eq!(header.correlation_id, expected);
        let response = FetchResponse::decode(&mut body, 12).unwrap();
        let records = response.responses[0].partitions[0].records.as_ref();
        assert!(records.is_some_and(|r| r.len() > 64 * 1024));
    }
    // The client leaves; the server is not stuck on it.
    pipelined.abort();
    drop(reader);
    assert!(serves(addr).await);
}
