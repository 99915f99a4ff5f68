//! A fenced transactional producer as each request version tells it. Kafka added
//! `PRODUCER_FENCED` (90) in AddPartitionsToTxn, AddOffsetsToTxn and EndTxn v2 and
//! TxnOffsetCommit v3 (KIP-588) and answers older versions `INVALID_PRODUCER_EPOCH` (47),
//! which their clients handle as fencing. kafkajs, which speaks EndTxn v1, used to get 90 and
//! fail with "Unknown error code 90".

mod common;

use broker_embedded::{BrokerConfig, NewTopic};
use broker_wire::WireConfig;
use common::{request, start};
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse, ApiKey, EndTxnRequest, EndTxnResponse, GroupId,
    InitProducerIdRequest, InitProducerIdResponse, ProducerId, TopicName, TransactionalId,
    TxnOffsetCommitRequest, TxnOffsetCommitResponse,
};
use kafka_protocol::protocol::StrBytes;
use tokio::net::TcpStream;

const INVALID_PRODUCER_EPOCH: i16 = 47;
const PRODUCER_FENCED: i16 = 90;

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_owned())
}

async fn init(stream: &mut TcpStream, version: i16) -> (i16, i64, i16) {
    let r: InitProducerIdResponse = request(
        stream,
        ApiKey::InitProducerId,
        version,
        &InitProducerIdRequest::default()
            .with_transactional_id(Some(TransactionalId(s("tx"))))
            .with_transaction_timeout_ms(60_000)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    )
    .await;
    (r.error_code, r.producer_id.0, r.producer_epoch)
}

async fn add_partition(stream: &mut TcpStream, version: i16, pid: i64, epoch: i16) -> i16 {
    let r: AddPartitionsToTxnResponse = request(
        stream,
        ApiKey::AddPartitionsToTxn,
        version,
        &AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(TransactionalId(s("tx")))
            .with_v3_and_below_producer_id(ProducerId(pid))
            .with_v3_and_below_producer_epoch(epoch)
            .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
                .with_name(TopicName(s("out")))
                .with_partitions(vec![0])]),
    )
    .await;
    r.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code
}

async fn add_offsets(stream: &mut TcpStream, version: i16, pid: i64, epoch: i16) -> i16 {
    let r: AddOffsetsToTxnResponse = request(
        stream,
        ApiKey::AddOffsetsToTxn,
        version,
        &AddOffsetsToTxnRequest::default()
            .with_transactional_id(TransactionalId(s("tx")))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)
            .with_group_id(GroupId(s("g"))),
    )
    .await;
    r.error_code
}

async fn txn_offset_commit(stream: &mut TcpStream, version: i16, pid: i64, epoch: i16) -> i16 {
    let r: TxnOffsetCommitResponse = request(
        stream,
        ApiKey::TxnOffsetCommit,
        version,
        &TxnOffsetCommitRequest::default()
            .with_transactional_id(TransactionalId(s("tx")))
            .with_group_id(GroupId(s("g")))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)
            .with_generation_id(-1)
            .with_topics(vec![TxnOffsetCommitRequestTopic::default()
                .with_name(TopicName(s("out")))
                .with_partitions(vec![TxnOffsetCommitRequestPartition::default()
                    .with_partition_index(0)
                    .with_committed_offset(1)])]),
    )
    .await;
    r.topics[0].partitions[0].error_code
}

async fn end(stream: &mut TcpStream, version: i16, pid: i64, epoch: i16) -> i16 {
    let r: EndTxnResponse = request(
        stream,
        ApiKey::EndTxn,
        version,
        &EndTxnRequest::default()
            .with_transactional_id(TransactionalId(s("tx")))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)
            .with_committed(true),
    )
    .await;
    r.error_code
}

#[tokio::test]
async fn a_fenced_producer_is_told_in_the_code_its_request_version_knows() {
    let (broker, addr) = start(BrokerConfig::default(), WireConfig::default()).await;
    broker.create_topic(NewTopic::new("out", 1)).await.unwrap();
    let mut c = TcpStream::connect(addr).await.unwrap();
    let (code, pid, old) = init(&mut c, 1).await;
    assert_eq!(code, 0);
    // A new producer with the same transactional id bumps the epoch: `old` is fenced.
    let (code, same_pid, new) = init(&mut c, 1).await;
    assert_eq!((code, same_pid), (0, pid));
    assert!(new > old);

    for version in [0, 1] {
        assert_eq!(
            add_partition(&mut c, version, pid, old).await,
            INVALID_PRODUCER_EPOCH,
            "AddPartitionsToTxn v{version}"
        );
        assert_eq!(
            add_offsets(&mut c, version, pid, old).await,
            INVALID_PRODUCER_EPOCH,
            "AddOffsetsToTxn v{version}"
        );
        assert_eq!(
            end(&mut c, version, pid, old).await,
            INVALID_PRODUCER_EPOCH,
            "EndTxn v{version}"
        );
    }
    for version in [2, 3] {
        assert_eq!(
            add_partition(&mut c, version, pid, old).await,
            PRODUCER_FENCED,
            "AddPartitionsToTxn v{version}"
        );
        assert_eq!(
            add_offsets(&mut c, version, pid, old).await,
            PRODUCER_FENCED,
            "AddOffsetsToTxn v{version}"
        );
        assert_eq!(
            end(&mut c, version, pid, old).await,
            PRODUCER_FENCED,
            "EndTxn v{version}"
        );
    }
    // TxnOffsetCommit: the new producer's transaction holds the group's offsets partition,
    // and the old one is told it is fenced.
    assert_eq!(add_offsets(&mut c, 3, pid, new).await, 0);
    for version in [0, 2] {
        assert_eq!(
            txn_offset_commit(&mut c, version, pid, old).await,
            INVALID_PRODUCER_EPOCH,
            "TxnOffsetCommit v{version}"
        );
    }
    assert_eq!(
        txn_offset_commit(&mut c, 3, pid, old).await,
        PRODUCER_FENCED,
        "TxnOffsetCommit v3"
    );
    // The current producer is not affected.
    assert_eq!(txn_offset_commit(&mut c, 1, pid, new).await, 0);
    assert_eq!(end(&mut c, 1, pid, new).await, 0);
    broker.close().await.unwrap();
}
