//! The transaction APIs over a real connection, as Kafka's transactional producer uses them:
//! InitProducerId, AddPartitionsToTxn, transactional Produce, AddOffsetsToTxn,
//! TxnOffsetCommit, EndTxn, and what `read_committed` fetches and the admin views see.

mod common;

use broker_embedded::{BrokerConfig, NewTopic};
use broker_wire::WireConfig;
use bytes::{Bytes, BytesMut};
use common::{request, start};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse, ApiKey, DescribeProducersRequest, DescribeProducersResponse,
    DescribeTransactionsRequest, DescribeTransactionsResponse, EndTxnRequest, EndTxnResponse,
    FetchRequest, FetchResponse, GroupId, InitProducerIdRequest, InitProducerIdResponse,
    ListTransactionsRequest, ListTransactionsResponse, OffsetFetchRequest, OffsetFetchResponse,
    ProduceRequest, ProduceResponse, ProducerId, TopicName, TransactionalId,
    TxnOffsetCommitRequest, TxnOffsetCommitResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use tokio::net::TcpStream;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_owned()))
}

fn txn_id(s: &str) -> TransactionalId {
    TransactionalId(StrBytes::from_string(s.to_owned()))
}

/// A transactional batch of `values` from `(pid, epoch)` with sequences from `seq`.
fn txn_batch(pid: i64, epoch: i16, seq: i32, values: &[&str]) -> Bytes {
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            transactional: true,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: pid,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: seq + i as i32,
            timestamp: 1_700_000_000_000,
            key: Some(Bytes::from_static(b"k")),
            value: Some(Bytes::from(v.to_string())),
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

async fn init(stream: &mut TcpStream, id: Option<&str>, timeout_ms: i32) -> (i16, i64, i16) {
    let r: InitProducerIdResponse = request(
        stream,
        ApiKey::InitProducerId,
        4,
        &InitProducerIdRequest::default()
            .with_transactional_id(id.map(txn_id))
            .with_transaction_timeout_ms(timeout_ms)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    )
    .await;
    (r.error_code, r.producer_id.0, r.producer_epoch)
}

async fn add_partition(stream: &mut TcpStream, id: &str, pid: i64, epoch: i16, topic: &str) -> i16 {
    let r: AddPartitionsToTxnResponse = request(
        stream,
        ApiKey::AddPartitionsToTxn,
        3,
        &AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(txn_id(id))
            .with_v3_and_below_producer_id(ProducerId(pid))
            .with_v3_and_below_producer_epoch(epoch)
            .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
                .with_name(name(topic))
                .with_partitions(vec![0])]),
    )
    .await;
    r.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code
}

async fn produce(stream: &mut TcpStream, id: &str, topic: &str, batch: Bytes) -> i16 {
    let r: ProduceResponse = request(
        stream,
        ApiKey::Produce,
        9,
        &ProduceRequest::default()
            .with_transactional_id(Some(txn_id(id)))
            .with_acks(-1)
            .with_timeout_ms(5000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(name(topic))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(batch))])]),
    )
    .await;
    r.responses[0].partition_responses[0].error_code
}

async fn end(stream: &mut TcpStream, id: &str, pid: i64, epoch: i16, commit: bool) -> i16 {
    let r: EndTxnResponse = request(
        stream,
        ApiKey::EndTxn,
        3,
        &EndTxnRequest::default()
            .with_transactional_id(txn_id(id))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)
            .with_committed(commit),
    )
    .await;
    r.error_code
}

/// `(last stable offset, committed values visible to read_committed)`.
async fn read_committed(stream: &mut TcpStream, topic: &str) -> (i64, Vec<String>) {
    let r: FetchResponse = request(
        stream,
        ApiKey::Fetch,
        11,
        &FetchRequest::default()
            .with_replica_id((-1).into())
            .with_max_bytes(1 << 20)
            .with_isolation_level(1)
            .with_session_epoch(-1)
            .with_topics(vec![FetchTopic::default()
                .with_topic(name(topic))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(0)
                    .with_fetch_offset(0)
                    .with_partition_max_bytes(1 << 20)])]),
    )
    .await;
    let p = &r.responses[0].partitions[0];
    let aborted: Vec<(i64, i64)> = p
        .aborted_transactions
        .clone()
        .unwrap_or_default()
        .iter()
        .map(|a| (a.producer_id.0, a.first_offset))
        .collect();
    let mut bytes = p.records.clone().unwrap_or_default();
    let mut values = Vec::new();
    // What a client does: from an aborted transaction's first offset, drop its producer's
    // records up to the producer's next control record (the abort marker).
    let mut pending = aborted;
    let mut aborting = std::collections::HashSet::new();
    for set in RecordBatchDecoder::decode_all(&mut bytes).unwrap() {
        for r in set.records {
            pending.retain(|&(pid, first)| {
                let started = first <= r.offset;
                if started {
                    aborting.insert(pid);
                }
                !started
            });
            if r.control {
                aborting.remove(&r.producer_id);
            } else if !aborting.contains(&r.producer_id) {
                values.push(String::from_utf8(r.value.unwrap().to_vec()).unwrap());
            }
        }
    }
    (p.last_stable_offset, values)
}

#[tokio::test]
async fn a_transactional_producer_commits_aborts_and_is_fenced() {
    let (broker, addr) = start(BrokerConfig::default(), WireConfig::default()).await;
    broker.create_topic(NewTopic::new("out", 1)).await.unwrap();
    let mut s = TcpStream::connect(addr).await.unwrap();

    // Idempotent producers get fresh ids; a timeout above 15 minutes is refused (50).
    let (code, a, epoch) = init(&mut s, None, 60_000).await;
    let (_, b, _) = init(&mut s, None, 60_000).await;
    assert_eq!((code, epoch), (0, 0));
    assert_ne!(a, b);
    assert_eq!(init(&mut s, Some("tx"), 900_001).await.0, 50);

    let (code, pid, epoch) = init(&mut s, Some("tx"), 60_000).await;
    assert_eq!(code, 0);
    // Producing before AddPartitionsToTxn: INVALID_TXN_STATE (48), nothing written.
    assert_eq!(
        produce(&mut s, "tx", "out", txn_batch(pid, epoch, 0, &["early"])).await,
        48
    );
    assert_eq!(broker.offsets("out", 0).await.unwrap(), (0, 0));

    // An aborted transaction, then a committed one.
    assert_eq!(add_partition(&mut s, "tx", pid, epoch, "out").await, 0);
    assert_eq!(
        produce(&mut s, "tx", "out", txn_batch(pid, epoch, 0, &["a1", "a2"])).await,
        0
    );
    assert_eq!(read_committed(&mut s, "out").await, (0, vec![]));
    assert_eq!(end(&mut s, "tx", pid, epoch, false).await, 0);
    assert_eq!(add_partition(&mut s, "tx", pid, epoch, "out").await, 0);
    assert_eq!(
        produce(&mut s, "tx", "out", txn_batch(pid, epoch, 2, &["c1", "c2"])).await,
        0
    );
    let (lso, _) = read_committed(&mut s, "out").await;
    assert_eq!(lso, 3, "the open transaction starts at offset 3");
    assert_eq!(end(&mut s, "tx", pid, epoch, true).await, 0);
    let (lso, values) = read_committed(&mut s, "out").await;
    assert_eq!(lso, 6);
    assert_eq!(values, vec!["c1", "c2"]);

    // The admin views.
    let r: ListTransactionsResponse = request(
        &mut s,
        ApiKey::ListTransactions,
        1,
        &ListTransactionsRequest::default().with_duration_filter(-1),
    )
    .await;
    let listed: Vec<(String, i64, String)> = r
        .transaction_states
        .iter()
        .map(|t| {
            (
                t.transactional_id.0.to_string(),
                t.producer_id.0,
                t.transaction_state.to_string(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        vec![("tx".to_owned(), pid, "CompleteCommit".to_owned())]
    );
    let r: DescribeProducersResponse = request(
        &mut s,
        ApiKey::DescribeProducers,
        0,
        &DescribeProducersRequest::default().with_topics(vec![TopicRequest::default()
            .with_name(name("out"))
            .with_partition_indexes(vec![0])]),
    )
    .await;
    let producers = &r.topics[0].partitions[0].active_producers;
    assert_eq!(producers.len(), 1);
    assert_eq!(
        (producers[0].producer_id.0, producers[0].last_sequence),
        (pid, 3)
    );
    assert_eq!(producers[0].current_txn_start_offset, -1);

    // A second producer with the same id fences the first: PRODUCER_FENCED (90) or
    // INVALID_PRODUCER_EPOCH (47) for the old one, an open transaction aborted.
    assert_eq!(add_partition(&mut s, "tx", pid, epoch, "out").await, 0);
    assert_eq!(
        produce(&mut s, "tx", "out", txn_batch(pid, epoch, 4, &["zombie"])).await,
        0
    );
    let (code, pid2, epoch2) = init(&mut s, Some("tx"), 60_000).await;
    assert_eq!((code, pid2), (0, pid));
    assert!(epoch2 > epoch);
    let fenced = end(&mut s, "tx", pid, epoch, true).await;
    assert!(fenced == 90 || fenced == 47, "{fenced}");
    let (lso, values) = read_committed(&mut s, "out").await;
    assert_eq!(
        values,
        vec!["c1", "c2"],
        "the fenced producer's records stay invisible"
    );
    assert_eq!(lso, broker.offsets("out", 0).await.unwrap().1 as i64);
    let r: DescribeTransactionsResponse = request(
        &mut s,
        ApiKey::DescribeTransactions,
        0,
        &DescribeTransactionsRequest::default()
            .with_transactional_ids(vec![txn_id("tx"), txn_id("nope")]),
    )
    .await;
    assert_eq!(r.transaction_states[0].producer_epoch, epoch2);
    assert_eq!(
        r.transaction_states[1].error_code, 105,
        "TRANSACTIONAL_ID_NOT_FOUND"
    );
}

async fn committed(s: &mut TcpStream, group: &str, topic: &str) -> i64 {
    let req = OffsetFetchRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_owned())))
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(name(topic))
            .with_partition_indexes(vec![0])]));
    let r: OffsetFetchResponse = request(s, ApiKey::OffsetFetch, 5, &req).await;
    r.topics[0].partitions[0].committed_offset
}

#[tokio::test]
async fn offsets_sent_to_a_transaction_count_only_when_it_commits() {
    let (broker, addr) = start(BrokerConfig::default(), WireConfig::default()).await;
    broker.create_topic(NewTopic::new("in", 1)).await.unwrap();
    broker.create_topic(NewTopic::new("out", 1)).await.unwrap();
    let mut s = TcpStream::connect(addr).await.unwrap();
    let (_, pid, epoch) = init(&mut s, Some("etl"), 60_000).await;
    let send_offsets = |offset: i64| {
        TxnOffsetCommitRequest::default()
            .with_transactional_id(txn_id("etl"))
            .with_group_id(GroupId(StrBytes::from_static_str("readers")))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)
            .with_generation_id(-1)
            .with_topics(vec![TxnOffsetCommitRequestTopic::default()
                .with_name(name("in"))
                .with_partitions(vec![TxnOffsetCommitRequestPartition::default()
                    .with_partition_index(0)
                    .with_committed_offset(offset)])])
    };
    let add_offsets = AddOffsetsToTxnRequest::default()
        .with_transactional_id(txn_id("etl"))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_group_id(GroupId(StrBytes::from_static_str("readers")));
    for (commit, offset) in [(false, 5), (true, 7)] {
        assert_eq!(add_partition(&mut s, "etl", pid, epoch, "out").await, 0);
        let r: AddOffsetsToTxnResponse =
            request(&mut s, ApiKey::AddOffsetsToTxn, 3, &add_offsets).await;
        assert_eq!(r.error_code, 0);
        let r: TxnOffsetCommitResponse =
            request(&mut s, ApiKey::TxnOffsetCommit, 3, &send_offsets(offset)).await;
        assert_eq!(r.topics[0].partitions[0].error_code, 0);
        assert_eq!(
            committed(&mut s, "readers", "in").await,
            -1,
            "not before the transaction ends"
        );
        assert_eq!(end(&mut s, "etl", pid, epoch, commit).await, 0);
    }
    assert_eq!(
        committed(&mut s, "readers", "in").await,
        7,
        "the committed transaction's offset, not the aborted one's"
    );
    // Without AddOffsetsToTxn first: INVALID_TXN_STATE.
    let r: TxnOffsetCommitResponse =
        request(&mut s, ApiKey::TxnOffsetCommit, 3, &send_offsets(9)).await;
    assert_eq!(r.topics[0].partitions[0].error_code, 48);
}

#[tokio::test]
async fn a_producer_that_dies_mid_transaction_is_aborted_after_its_timeout() {
    let (broker, addr) = start(BrokerConfig::default(), WireConfig::default()).await;
    broker.create_topic(NewTopic::new("left", 1)).await.unwrap();
    let mut s = TcpStream::connect(addr).await.unwrap();
    let (_, pid, epoch) = init(&mut s, Some("dies"), 300).await;
    assert_eq!(add_partition(&mut s, "dies", pid, epoch, "left").await, 0);
    assert_eq!(
        produce(&mut s, "dies", "left", txn_batch(pid, epoch, 0, &["lost"])).await,
        0
    );
    assert_eq!(broker.last_stable_offset("left", 0).await.unwrap(), 0);
    drop(s); // the client is killed: nobody ends the transaction
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while broker.last_stable_offset("left", 0).await.unwrap() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the transaction was never aborted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let mut s = TcpStream::connect(addr).await.unwrap();
    let (lso, values) = read_committed(&mut s, "left").await;
    assert_eq!(lso, 2, "the record and the abort marker");
    assert!(values.is_empty(), "{values:?}");
    // The dead producer's epoch was bumped: it is fenced if it comes back.
    let code = end(&mut s, "dies", pid, epoch, true).await;
    assert!(code == 90 || code == 47, "{code}");
}
