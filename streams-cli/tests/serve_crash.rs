//! `streams serve` killed with SIGKILL while three idempotent producers send with
//! `acks=all`: after a restart every acknowledged record is there exactly once, and a
//! producer's retry of the batch it never got an answer for is written once, whether or not
//! it reached the log before the kill.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use common::{serve, streams, terminate};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, FetchRequest, FetchResponse, InitProducerIdRequest, InitProducerIdResponse,
    ProduceRequest, ProduceResponse, ProducerId, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

const RECORDS_PER_BATCH: i32 = 10;
const PRODUCERS: i32 = 3;

/// A blocking Kafka client of one connection: each call sends a request and reads its
/// answer; `None` when the connection is gone.
struct Client {
    stream: TcpStream,
    correlation: i32,
}

impl Client {
    fn connect(addr: &str) -> Client {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        Client {
            stream,
            correlation: 0,
        }
    }

    fn call<Req: Encodable, Resp: Decodable>(
        &mut self,
        key: ApiKey,
        version: i16,
        request: &Req,
    ) -> Option<Resp> {
        self.correlation += 1;
        let mut buf = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(StrBytes::from_static_str("crash-test")))
            .encode(&mut buf, key.request_header_version(version))
            .unwrap();
        request.encode(&mut buf, version).unwrap();
        self.stream
            .write_all(&(buf.len() as i32).to_be_bytes())
            .ok()?;
        self.stream.write_all(&buf).ok()?;
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).ok()?;
        let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
        self.stream.read_exact(&mut body).ok()?;
        let mut body = Bytes::from(body);
        let header =
            ResponseHeader::decode(&mut body, key.response_header_version(version)).unwrap();
        assert_eq!(header.correlation_id, self.correlation);
        Some(Resp::decode(&mut body, version).unwrap())
    }
}

/// Batch `n` of producer `p`: records "p{p}-b{n}-r{j}" with sequences from `n * 10`.
fn batch(pid: i64, p: i32, n: i32) -> Bytes {
    let records: Vec<Record> = (0..RECORDS_PER_BATCH)
        .map(|j| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: pid,
            producer_epoch: 0,
            timestamp_type: TimestampType::Creation,
            offset: i64::from(j),
            sequence: n * RECORDS_PER_BATCH + j,
            timestamp: 1_700_000_000_000,
            key: None,
            value: Some(Bytes::from(format!("p{p}-b{n}-r{j}"))),
            headers: IndexMap::new(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    buf.freeze()
}

/// Sends batch `n` of producer `p` to partition `p` with acks=all: `Some(error code)`, or
/// `None` when the connection died first.
fn send(client: &mut Client, pid: i64, p: i32, n: i32) -> Option<i16> {
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str("acked")))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(p)
                .with_records(Some(batch(pid, p, n)))])]);
    let response: ProduceResponse = client.call(ApiKey::Produce, 9, &request)?;
    Some(response.responses[0].partition_responses[0].error_code)
}

fn init_producer(client: &mut Client) -> i64 {
    let response: InitProducerIdResponse = client
        .call(
            ApiKey::InitProducerId,
            4,
            &InitProducerIdRequest::default()
                .with_transaction_timeout_ms(60_000)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        )
        .unwrap();
    assert_eq!(response.error_code, 0);
    response.producer_id.0
}

/// Every value in partition `p`, in offset order, read over the wire.
fn read_all(addr: &str, p: i32) -> Vec<String> {
    let mut client = Client::connect(addr);
    let mut values = Vec::new();
    let mut offset = 0i64;
    loop {
        let request = FetchRequest::default()
            .with_replica_id((-1).into())
            .with_max_bytes(1 << 20)
            .with_session_epoch(-1)
            .with_topics(vec![FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_static_str("acked")))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(p)
                    .with_fetch_offset(offset)
                    .with_partition_max_bytes(1 << 20)])]);
        let response: FetchResponse = client.call(ApiKey::Fetch, 11, &request).unwrap();
        let data = &response.responses[0].partitions[0];
        assert_eq!(data.error_code, 0);
        let mut records = data.records.clone().unwrap_or_default();
        if records.is_empty() {
            assert_eq!(offset, data.high_watermark, "read to the end");
            return values;
        }
        for set in RecordBatchDecoder::decode_all(&mut records).unwrap() {
            for r in set.records {
                if r.offset >= offset {
                    assert_eq!(r.offset, offset, "offsets run on without gaps");
                    values.push(String::from_utf8(r.value.unwrap().to_vec()).unwrap());
                    offset += 1;
                }
            }
        }
    }
}

#[test]
fn every_acknowledged_record_survives_sigkill_once_and_retries_are_not_duplicated() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let created = streams(dir)
        .args(["topics", "create", "--topic", "acked", "--partitions", "3"])
        .output()
        .unwrap();
    assert!(created.status.success(), "{created:?}");
    let (mut child, addr) = serve(dir);
    let acked_total = Arc::new(AtomicUsize::new(0));
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let addr = addr.clone();
            let acked_total = acked_total.clone();
            std::thread::spawn(move || {
                let mut client = Client::connect(&addr);
                let pid = init_producer(&mut client);
                let mut n = 0;
                // Send until the server dies; `n` is then the batch without an answer.
                while let Some(code) = send(&mut client, pid, p, n) {
                    assert_eq!(code, 0, "producer {p} batch {n}");
                    acked_total.fetch_add(1, Ordering::SeqCst);
                    n += 1;
                }
                (pid, n)
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    while acked_total.load(Ordering::SeqCst) < 300 {
        assert!(Instant::now() < deadline, "the producers made no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let unanswered: Vec<(i64, i32)> = producers.into_iter().map(|t| t.join().unwrap()).collect();

    let (child, addr) = serve(dir);
    for (p, &(pid, n)) in unanswered.iter().enumerate() {
        let mut client = Client::connect(&addr);
        // The retry of the unanswered batch: written now, or recognised as written before
        // the kill; either way acknowledged. Then one batch more.
        assert_eq!(
            send(&mut client, pid, p as i32, n),
            Some(0),
            "retry of producer {p}"
        );
        assert_eq!(send(&mut client, pid, p as i32, n + 1), Some(0));
        // A batch that skips a sequence is refused.
        assert_eq!(send(&mut client, pid, p as i32, n + 3), Some(45));
    }
    for (p, &(_, n)) in unanswered.iter().enumerate() {
        let values = read_all(&addr, p as i32);
        let mut count: BTreeMap<&str, usize> = BTreeMap::new();
        for v in &values {
            *count.entry(v.as_str()).or_default() += 1;
        }
        for b in 0..n + 2 {
            for j in 0..RECORDS_PER_BATCH {
                let value = format!("p{p}-b{b}-r{j}");
                assert_eq!(
                    count.get(value.as_str()),
                    Some(&1),
                    "{value}: acknowledged records are there exactly once"
                );
            }
        }
        assert_eq!(
            values.len(),
            ((n + 2) * RECORDS_PER_BATCH) as usize,
            "nothing else is there"
        );
    }
    terminate(child);
}
