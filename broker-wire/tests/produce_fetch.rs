//! Produce, Fetch, ListOffsets and OffsetForLeaderEpoch over a real connection, with batches
//! encoded by `kafka-protocol`'s own record encoder (not the broker's), at the versions
//! clients use.

mod common;

use std::time::Duration;

use broker_embedded::{BrokerConfig, NewTopic, Producer, ProducerConfig, ProducerRecord};
use broker_wire::WireConfig;
use bytes::{Bytes, BytesMut};
use common::{encode_request, read_response, request, send_raw, start};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, FetchRequest, FetchResponse, ListOffsetsRequest,
    ListOffsetsResponse, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, ProduceRequest,
    ProduceResponse, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use tokio::net::TcpStream;

const T0: i64 = 1_700_000_000_000;

fn record(i: usize, timestamp: i64) -> Record {
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: i as i64,
        // The encoder starts a new batch wherever `offset - sequence` changes.
        sequence: i as i32,
        timestamp,
        key: Some(Bytes::from(format!("key-{i}"))),
        value: Some(Bytes::from(format!("value-{i}"))),
        headers: IndexMap::new(),
    }
}

/// One v2 batch of `records`, as a producer encodes it (offsets from 0, leader epoch -1).
fn batch(records: &[Record]) -> Bytes {
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    buf.freeze()
}

fn produce(topic: &str, partition: i32, records: Option<Bytes>, acks: i16) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(5_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(records)])])
}

fn fetch(topic: &str, partition: i32, offset: i64, max_wait_ms: i32) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id((-1).into())
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(topic.to_owned())))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(partition)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1 << 20)])])
}

fn decode_records(bytes: &Bytes) -> Vec<Record> {
    let mut buf = bytes.clone();
    RecordBatchDecoder::decode_all(&mut buf)
        .unwrap()
        .into_iter()
        .flat_map(|set| set.records)
        .collect()
}

async fn produce_one(
    stream: &mut TcpStream,
    version: i16,
    topic: &str,
    partition: i32,
    records: Option<Bytes>,
) -> (i16, i64, Option<String>) {
    let response: ProduceResponse = request(
        stream,
        ApiKey::Produce,
        version,
        &produce(topic, partition, records, -1),
    )
    .await;
    let p = &response.responses[0].partition_responses[0];
    (
        p.error_code,
        p.base_offset,
        p.error_message.as_ref().map(|m| m.to_string()),
    )
}

/// [`produce`] naming the topic by id, as Produce v13 does.
fn produce_by_id(id: uuid::Uuid, records: Bytes) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_topic_id(id)
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(1)
                .with_records(Some(records))])])
}

/// [`fetch`] naming the topic by id, as Fetch v13 and later do.
fn fetch_by_id(id: uuid::Uuid, partition: i32, offset: i64) -> FetchRequest {
    let mut request = fetch("", partition, offset, 0);
    request.topics[0].topic = TopicName::default();
    request.topics[0].topic_id = id;
    request
}

#[tokio::test]
async fn topics_are_named_by_id_from_produce_v13_and_fetch_v13() {
    let (broker, addr) = start(BrokerConfig::default(), WireConfig::default()).await;
    broker.create_topic(NewTopic::new("ids", 2)).await.unwrap();
    let id = broker.topic_id("ids").unwrap();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let response: ProduceResponse = request(
        &mut stream,
        ApiKey::Produce,
        13,
        &produce_by_id(id, batch(&[record(0, T0), record(1, T0)])),
    )
    .await;
    assert_eq!(response.responses[0].topic_id, id);
    let p = &response.responses[0].partition_responses[0];
    assert_eq!((p.error_code, p.base_offset), (0, 0));
    for version in 13..=18 {
        let response: FetchResponse =
            request(&mut stream, ApiKey::Fetch, version, &fetch_by_id(id, 1, 0)).await;
        assert_eq!(response.responses[0].topic_id, id, "v{version}");
        let p = &response.responses[0].partitions[0];
        assert_eq!(p.error_code, 0, "v{version}");
        assert_eq!(decode_records(p.records.as_ref().unwrap()).len(), 2);
    }
    // An id no topic has: UNKNOWN_TOPIC_ID (100), on both.
    let unknown = uuid::Uuid::from_u128(42);
    let response: ProduceResponse = request(
        &mut stream,
        ApiKey::Produce,
        13,
        &produce_by_id(unknown, batch(&[record(0, T0)])),
    )
    .await;
    assert_eq!(response.responses[0].partition_responses[0].error_code, 100);
    let response: FetchResponse =
        request(&mut stream, ApiKey::Fetch, 16, &fetch_by_id(unknown, 0, 0)).await;
    assert_eq!(response.responses[0].partitions[0].error_code, 100);
    assert_eq!(broker.offsets("ids", 1).await.unwrap(), (0, 2));
}

#[tokio::test]
async fn produced_batches_are_fetched_back_as_sent_at_every_version() {
    let (broker, addr) = start(BrokerConfig::default(), WireConfig::default()).await;
    broker
        .create_topic(NewTopic::new("events", 2))
        .await
        .unwrap();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut expected = Vec::new();
    let mut next = 0;
    for (i, version) in (3..=12).enumerate() {
        let records: Vec<Record> = (0..3)
            .map(|j| record(i * 3 + j, T0 + (i * 3 + j) as i64))
            .collect();
        let sent = batch(&records);
        let (code, base, message) =
            produce_one(&mut stream, version, "events", 1, Some(sent.clone())).await;
        assert_eq!(code, 0, "v{version}: {message:?}");
        assert_eq!(base, next, "v{version}");
        next += 3;
        expected.extend(records);
    }
    for version in 4..=12 {
        let response: FetchResponse = request(
            &mut stream,
            ApiKey::Fetch,
            version,
            &fetch("events", 1, 0, 0),
        )
        .await;
        assert_eq!(response.error_code, 0);
        let p = &response.responses[0].partitions[0];
        assert_eq!(p.error_code, 0, "v{version}");
        assert_eq!(p.high_watermark, 30);
        assert_eq!(p.last_stable_offset, 30);
        // The field exists from version 5.
        assert_eq!(p.log_start_offset, if version >= 5 { 0 } else { -1 });
        let got = decode_records(p.records.as_ref().unwrap());
        assert_eq!(got.len(), 30, "v{version}");
        for (offset, (g, e)) in got.iter().zip(&expected).enumerate() {
            assert_eq!(g.offset, offset as i64);
            assert_eq!(
                (&g.key, &g.value, g.timestamp),
                (&e.key, &e.value, e.timestamp)
            );
        }
    }
    // The same records through the embedded consumer's path.
    let stored = broker.fetch("events", 1, 0, 1 << 20, None).await.unwrap();
    let count: usize = stored.iter().map(|b| b.records.len()).sum();
    assert_eq!(count, 30);
    // A fetch from the middle of a batch starts with that batch; past the end is
    // OFFSET_OUT_OF_RANGE (1) with the offsets a client resets from.
    let response: FetchResponse =
        request(&mut stream, ApiKey::Fetch, 11, &fetch("events", 1, 4, 0)).await;
    let got = decode_records(
        response.responses[0].partitions[0]
            .records
            .as_ref()
            .unwrap(),
    );
    assert_eq!(got.first().map(|r| r.offset), Some(3));
    let response: FetchResponse =
        request(&mut stream, ApiKey::Fetch, 11, &fetch("events", 1, 31, 0)).await;
    let p = &response.responses[0].partitions[0];
    assert_eq!(
        (p.error_code, p.high_watermark, p.log_start_offset),
        (1, 30, 0)
    );
    let response: FetchResponse =
        request(&mut stream, ApiKey::Fetch, 11, &fetch("absent", 0, 0, 0)).await;
    assert_eq!(response.responses[0].partitions[0].error_code, 3);
}

#[tokio::test]
async fn bad_batches_get_kafkas_error_codes_and_nothing_is_written() {
    let config = BrokerConfig::default();
    let (broker, addr) = start(config, WireConfig::default()).await;
    broker
        .create_topic(NewTopic::new("small", 1).config("max.message.bytes", "300"))
        .await
        .unwrap();
    broker
        .create_topic(NewTopic::new("compacted", 1).config("cleanup.policy", "compact"))
        .await
        .unwrap();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let good = batch(&[record(0, T0)]);

    // A flipped byte in a record: CORRUPT_MESSAGE (2).
    let mut flipped = BytesMut::from(&good[..]);
    let last = flipped.len() - 2;
    flipped[last] ^= 0xff;
    let (code, _, message) = produce_one(&mut stream, 9, "small", 0, Some(flipped.freeze())).await;
    assert_eq!(code, 2, "{message:?}");
    assert!(message.unwrap().contains("CRC"));
    // Two batches in one partition's records: INVALID_RECORD (87).
    let two = Bytes::from([&good[..], &good[..]].concat());
    let (code, _, _) = produce_one(&mut stream, 9, "small", 0, Some(two)).await;
    assert_eq!(code, 87);
    // No records at all, or a truncated batch.
    let (code, _, _) = produce_one(&mut stream, 9, "small", 0, None).await;
    assert_eq!(code, 87);
    let (code, _, _) = produce_one(&mut stream, 9, "small", 0, Some(good.slice(..30))).await;
    assert_eq!(code, 2);
    // Larger than max.message.bytes: MESSAGE_TOO_LARGE (10).
    let big: Vec<Record> = (0..20).map(|i| record(i, T0)).collect();
    let (code, _, message) = produce_one(&mut stream, 9, "small", 0, Some(batch(&big))).await;
    assert_eq!(code, 10, "{message:?}");
    // A record without a key in a compacted topic: INVALID_RECORD.
    let mut keyless = record(0, T0);
    keyless.key = None;
    let (code, _, _) = produce_one(&mut stream, 9, "compacted", 0, Some(batch(&[keyless]))).await;
    assert_eq!(code, 87);
    // A control batch from a client: INVALID_RECORD.
    let mut control = record(0, T0);
    control.control = true;
    control.producer_id = 7;
    control.producer_epoch = 0;
    let (code, _, _) = produce_one(&mut stream, 9, "small", 0, Some(batch(&[control]))).await;
    assert_eq!(code, 87);
    // Unknown topic or partition: UNKNOWN_TOPIC_OR_PARTITION (3).
    let (code, _, _) = produce_one(&mut stream, 9, "absent", 0, Some(good.clone())).await;
    assert_eq!(code, 3);
    let (code, _, _) = produce_one(&mut stream, 9, "small", 5, Some(good.clone())).await;
    assert_eq!(code, 3);
    let (code, _, _) = produce_one(&mut stream, 9, "small", -1, Some(good.clone())).await;
    assert_eq!(code, 3);
    // acks=2: INVALID_REQUIRED_ACKS (21).
    let response: ProduceResponse = request(
        &mut stream,
        ApiKey::Produce,
        9,
        &produce("small", 0, Some(good.clone()), 2),
    )
    .await;
    assert_eq!(response.responses[0].partition_responses[0].error_code, 21);
    assert_eq!(broker.offsets("small", 0).await.unwrap(), (0, 0));
    assert_eq!(broker.offsets("compacted", 0).await.unwrap(), (0, 0));
    // And a good batch still goes in.
    let (code, base, _) = produce_one(&mut stream, 9, "small", 0, Some(good)).await;
    assert_eq!((code, base), (0, 0));
}

#[tokio::test]
async fn acks_zero_gets_no_response_and_the_next_request_is_answered_in_order() {
    let (broker, addr) = start(BrokerConfig::default(), WireConfig::default()).await;
    broker.create_topic(NewTopic::new("fire", 1)).await.unwrap();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    for i in 0..5 {
        let body = encode_request(
            ApiKey::Produce,
            9,
            100 + i,
            &produce("fire", 0, Some(batch(&[record(i as usize, T0)])), 0),
        );
        send_raw(&mut stream, &body).await;
    }
    // The first response on the connection answers the ApiVersions sent after them.
    let body = encode_request(ApiKey::ApiVersions, 3, 7, &ApiVersionsRequest::default());
    send_raw(&mut stream, &body).await;
    let mut response = read_response(&mut stream).await.unwrap();
    let header = ResponseHeader::decode(&mut response, 0).unwrap();
    assert_eq!(header.correlation_id, 7);
    assert_eq!(broker.offsets("fire", 0).await.unwrap(), (0, 5));
}

#[tokio::test]
async fn idempotent_batches_sent_twice_are_written_once() {
    let (broker, addr) = start(BrokerConfig::default(), WireConfig::default()).await;
    broker.create_topic(NewTopic::new("once", 1)).await.unwrap();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let with_producer = |first: usize, count: usize| {
        let records: Vec<Record> = (first..first + count)
            .map(|i| Record {
                producer_id: 4000,
                producer_epoch: 0,
                sequence: i as i32,
                ..record(i, T0)
            })
            .collect();
        batch(&records)
    };
    let (code, base, _) = produce_one(&mut stream, 9, "once", 0, Some(with_producer(0, 3))).await;
    assert_eq!((code, base), (0, 0));
    // A retry of the same batch: acknowledged with the first offsets, not written again.
    let (code, base, _) = produce_one(&mut stream, 9, "once", 0, Some(with_producer(0, 3))).await;
    assert_eq!((code, base), (0, 0));
    let (code, base, _) = produce_one(&mut stream, 9, "once", 0, Some(with_producer(3, 2))).await;
    assert_eq!((code, base), (0, 3));
    // A gap in the sequence: OUT_OF_ORDER_SEQUENCE_NUMBER (45).
    let (code, _, _) = produce_one(&mut stream, 9, "once", 0, Some(with_producer(9, 1))).await;
    assert_eq!(code, 45);
    assert_eq!(broker.offsets("once", 0).await.unwrap(), (0, 5));
}

#[tokio::test]
async fn a_long_poll_waits_for_data_without_holding_up_other_connections() {
    let (broker, addr) = start(BrokerConfig::default(), WireConfig::default()).await;
    broker.create_topic(NewTopic::new("poll", 1)).await.unwrap();
    let mut waiting = TcpStream::connect(addr).await.unwrap();
    let body = encode_request(ApiKey::Fetch, 12, 1, &fetch("poll", 0, 0, 30_000));
    send_raw(&mut waiting, &body).await;
    // Another connection is served meanwhile, and its append ends the wait.
    let mut other = TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (code, _, _) = produce_one(&mut other, 9, "poll", 0, Some(batch(&[record(0, T0)]))).await;
    assert_eq!(code, 0);
    let mut response = tokio::time::timeout(Duration::from_secs(20), read_response(&mut waiting))
        .await
        .expect("the append ends the long poll")
        .unwrap();
    ResponseHeader::decode(&mut response, 1).unwrap();
    let response = FetchResponse::decode(&mut response, 12).unwrap();
    let got = decode_records(
        response.responses[0].partitions[0]
            .records
            .as_ref()
            .unwrap(),
    );
    assert_eq!(got.len(), 1);
    // With nothing to wait for, a fetch at the end comes back empty after max_wait_ms.
    let response: FetchResponse =
        request(&mut other, ApiKey::Fetch, 12, &fetch("poll", 0, 1, 50)).await;
    let p = &response.responses[0].partitions[0];
    assert_eq!((p.error_code, p.high_watermark), (0, 1));
    assert!(p.records.as_ref().unwrap().is_empty());
    // An incremental fetch naming a session: FETCH_SESSION_ID_NOT_FOUND (70).
    let response: FetchResponse = request(
        &mut other,
        ApiKey::Fetch,
        12,
        &fetch("poll", 0, 0, 0)
            .with_session_id(5)
            .with_session_epoch(1),
    )
    .await;
    assert_eq!(response.error_code, 70);
    // A new session is not created: session id 0 tells the client to send full fetches.
    let response: FetchResponse = request(
        &mut other,
        ApiKey::Fetch,
        12,
        &fetch("poll", 0, 0, 0).with_session_epoch(0),
    )
    .await;
    assert_eq!((response.error_code, response.session_id), (0, 0));
}

#[tokio::test]
async fn read_committed_fetches_stop_at_the_lso_and_list_aborted_transactions() {
    let (broker, addr) = start(BrokerConfig::default(), WireConfig::default()).await;
    broker.create_topic(NewTopic::new("txn", 1)).await.unwrap();
    let producer = Producer::with_config(
        &broker,
        ProducerConfig {
            transactional_id: Some("t1".into()),
            ..ProducerConfig::default()
        },
    );
    producer.init_transactions().await.unwrap();
    let send = |v: &'static str| {
        ProducerRecord::new("txn", v)
            .key("k")
            .partition(0)
            .timestamp(T0)
    };
    producer.begin_transaction().unwrap();
    producer.send(send("aborted")).await.unwrap();
    producer.flush(&["txn"]).await.unwrap();
    producer.abort_transaction().await.unwrap();
    producer.begin_transaction().unwrap();
    producer.send(send("committed")).await.unwrap();
    producer.flush(&["txn"]).await.unwrap();
    producer.commit_transaction().await.unwrap();
    producer.begin_transaction().unwrap();
    producer.send(send("open")).await.unwrap();
    producer.flush(&["txn"]).await.unwrap();
    // Offsets: 0 aborted, 1 abort marker, 2 committed, 3 commit marker, 4 open.
    let (_, end) = broker.offsets("txn", 0).await.unwrap();
    assert_eq!(end, 5);
    let (pid, _) = producer.producer_id_and_epoch();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let response: FetchResponse = request(
        &mut stream,
        ApiKey::Fetch,
        11,
        &fetch("txn", 0, 0, 0).with_isolation_level(1),
    )
    .await;
    let p = &response.responses[0].partitions[0];
    assert_eq!((p.high_watermark, p.last_stable_offset), (5, 4));
    let aborted = p.aborted_transactions.clone().unwrap_or_default();
    assert_eq!(aborted.len(), 1);
    assert_eq!(
        (aborted[0].producer_id.0, aborted[0].first_offset),
        (pid, 0)
    );
    let got = decode_records(p.records.as_ref().unwrap());
    assert!(got.iter().all(|r| r.offset < 4), "read stops at the LSO");
    // read_uncommitted reads on to the end and lists nothing.
    let response: FetchResponse =
        request(&mut stream, ApiKey::Fetch, 11, &fetch("txn", 0, 0, 0)).await;
    let p = &response.responses[0].partitions[0];
    assert!(p.aborted_transactions.as_ref().is_none_or(|a| a.is_empty()));
    assert_eq!(
        decode_records(p.records.as_ref().unwrap())
            .last()
            .map(|r| r.offset),
        Some(4)
    );
    // ListOffsets latest: the LSO under read_committed, the end otherwise.
    let latest = |isolation: i8| {
        ListOffsetsRequest::default()
            .with_replica_id((-1).into())
            .with_isolation_level(isolation)
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("txn")))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(-1)])])
    };
    let response: ListOffsetsResponse =
        request(&mut stream, ApiKey::ListOffsets, 7, &latest(1)).await;
    assert_eq!(response.topics[0].partitions[0].offset, 4);
    let response: ListOffsetsResponse =
        request(&mut stream, ApiKey::ListOffsets, 7, &latest(0)).await;
    assert_eq!(response.topics[0].partitions[0].offset, 5);
}

#[tokio::test]
async fn list_offsets_finds_earliest_latest_timestamps_and_the_max_timestamp() {
    let (broker, addr) = start(BrokerConfig::default(), WireConfig::default()).await;
    broker
        .create_topic(NewTopic::new("times", 1))
        .await
        .unwrap();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // Timestamps 10, 30, 20, 50, 40 (ms after T0) at offsets 0..5.
    for (i, dt) in [10, 30, 20, 50, 40].into_iter().enumerate() {
        let (code, _, _) = produce_one(
            &mut stream,
            9,
            "times",
            0,
            Some(batch(&[record(i, T0 + dt)])),
        )
        .await;
        assert_eq!(code, 0);
    }
    let ask = |timestamp: i64| {
        ListOffsetsRequest::default()
            .with_replica_id((-1).into())
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("times")))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(timestamp)])])
    };
    let cases = [
        (-2, 0, -1),
        (-1, 5, -1),
        (-3, 3, T0 + 50),
        (T0 + 25, 1, T0 + 30),
        (T0 + 10, 0, T0 + 10),
        (T0 + 45, 3, T0 + 50),
        (T0 + 51, -1, -1),
    ];
    for version in [1, 4, 7, 10] {
        for (timestamp, offset, found) in cases {
            if timestamp == -3 && version < 7 {
                continue;
            }
            let response: ListOffsetsResponse =
                request(&mut stream, ApiKey::ListOffsets, version, &ask(timestamp)).await;
            let p = &response.topics[0].partitions[0];
            assert_eq!(p.error_code, 0, "v{version} {timestamp}");
            assert_eq!(
                (p.offset, p.timestamp),
                (offset, found),
                "v{version} {timestamp}"
            );
        }
    }
    // OffsetForLeaderEpoch: epoch 0 ends at the log end; a newer epoch is unknown.
    let epoch_request = |epoch: i32| {
        OffsetForLeaderEpochRequest::default()
            .with_replica_id((-1).into())
            .with_topics(vec![OffsetForLeaderTopic::default()
                .with_topic(TopicName(StrBytes::from_static_str("times")))
                .with_partitions(vec![OffsetForLeaderPartition::default()
                    .with_partition(0)
                    .with_current_leader_epoch(0)
                    .with_leader_epoch(epoch)])])
    };
    let response: OffsetForLeaderEpochResponse = request(
        &mut stream,
        ApiKey::OffsetForLeaderEpoch,
        4,
        &epoch_request(0),
    )
    .await;
    let p = &response.topics[0].partitions[0];
    assert_eq!((p.error_code, p.leader_epoch, p.end_offset), (0, 0, 5));
    let response: OffsetForLeaderEpochResponse = request(
        &mut stream,
        ApiKey::OffsetForLeaderEpoch,
        4,
        &epoch_request(3),
    )
    .await;
    let p = &response.topics[0].partitions[0];
    assert_eq!((p.leader_epoch, p.end_offset), (-1, -1));
}

fn compressed(records: &[Record], compression: Compression) -> Bytes {
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .unwrap();
    buf.freeze()
}

#[tokio::test]
async fn compressed_batches_are_stored_as_sent_unless_the_topic_names_a_codec() {
    let (broker, addr) = start(BrokerConfig::default(), WireConfig::default()).await;
    broker
        .create_topic(NewTopic::new("packed", 1))
        .await
        .unwrap();
    broker
        .create_topic(NewTopic::new("gzipped", 1).config("compression.type", "gzip"))
        .await
        .unwrap();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let codecs = [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];
    for (i, codec) in codecs.into_iter().enumerate() {
        let records: Vec<Record> = (0..50).map(|j| record(i * 50 + j, T0)).collect();
        let sent = compressed(&records, codec);
        let (code, base, message) =
            produce_one(&mut stream, 9, "packed", 0, Some(sent.clone())).await;
        assert_eq!((code, base), (0, i as i64 * 50), "{codec:?}: {message:?}");
        let (code, _, message) = produce_one(&mut stream, 9, "gzipped", 0, Some(sent)).await;
        assert_eq!(code, 0, "{codec:?}: {message:?}");
    }
    for (topic, expect) in [("packed", None), ("gzipped", Some(Compression::Gzip))] {
        let response: FetchResponse =
            request(&mut stream, ApiKey::Fetch, 12, &fetch(topic, 0, 0, 0)).await;
        let mut records = response.responses[0].partitions[0].records.clone().unwrap();
        let sets = RecordBatchDecoder::decode_all(&mut records).unwrap();
        assert_eq!(sets.len(), 4, "{topic}");
        for (set, codec) in sets.iter().zip(codecs) {
            assert_eq!(set.compression, expect.unwrap_or(codec), "{topic}");
            assert_eq!(set.records.len(), 50);
        }
        let values: Vec<_> = sets
            .iter()
            .flat_map(|s| s.records.iter().map(|r| r.value.clone().unwrap()))
            .collect();
        let wanted: Vec<_> = (0..200)
            .map(|i| Bytes::from(format!("value-{i}")))
            .collect();
        assert_eq!(values, wanted, "{topic}");
        // The embedded consumer's path decompresses the same records.
        let batches = broker.fetch(topic, 0, 0, 1 << 20, None).await.unwrap();
        assert_eq!(batches.iter().map(|b| b.records.len()).sum::<usize>(), 200);
    }
}
