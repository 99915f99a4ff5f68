//! A negative committed offset, as kafkajs commits one: after an `OFFSET_OUT_OF_RANGE` fetch
//! its consumer commits -2 (earliest) or -1 (latest) to have the partition reset by its own
//! policy, and its admin's `resetOffsets` does the same. Kafka accepts any offset, and its
//! clients read a negative committed offset as none; this broker accepts it and removes the
//! committed offset, so OffsetFetch answers -1. It used to answer `INVALID_COMMIT_OFFSET_SIZE`,
//! which crashed the kafkajs consumer.

mod common;

use broker_embedded::{BrokerConfig, NewTopic};
use broker_wire::WireConfig;
use common::{request, start};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{
    ApiKey, GroupId, OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest,
    OffsetFetchResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use tokio::net::TcpStream;

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_owned())
}

/// Commits `offsets` (partition 0, 1, ...) of `orders` for `group` as a consumer outside
/// group management; the error code of each.
async fn commit(stream: &mut TcpStream, version: i16, group: &str, offsets: &[i64]) -> Vec<i16> {
    let commit = OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(s("orders")))
            .with_partitions(
                offsets
                    .iter()
                    .zip(0..)
                    .map(|(&offset, p)| {
                        OffsetCommitRequestPartition::default()
                            .with_partition_index(p)
                            .with_committed_offset(offset)
                    })
                    .collect(),
            )]);
    let response: OffsetCommitResponse =
        request(stream, ApiKey::OffsetCommit, version, &commit).await;
    response.topics[0]
        .partitions
        .iter()
        .map(|p| p.error_code)
        .collect()
}

/// The committed offsets of partitions 0 and 1 of `orders` (-1 for none).
async fn fetch(stream: &mut TcpStream, group: &str) -> Vec<i64> {
    let fetch = OffsetFetchRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(TopicName(s("orders")))
            .with_partition_indexes(vec![0, 1])]));
    let response: OffsetFetchResponse = request(stream, ApiKey::OffsetFetch, 5, &fetch).await;
    assert_eq!(response.error_code, 0);
    response.topics[0]
        .partitions
        .iter()
        .map(|p| {
            assert_eq!(p.error_code, 0);
            p.committed_offset
        })
        .collect()
}

#[tokio::test]
async fn a_negative_committed_offset_is_accepted_and_read_back_as_none() {
    let (broker, addr) = start(BrokerConfig::default(), WireConfig::default()).await;
    broker
        .create_topic(NewTopic::new("orders", 2))
        .await
        .unwrap();
    let mut c = TcpStream::connect(addr).await.unwrap();
    for (version, group) in [(2, "old"), (5, "kafkajs"), (9, "recent")] {
        assert_eq!(commit(&mut c, version, group, &[5, 6]).await, [0, 0]);
        assert_eq!(fetch(&mut c, group).await, [5, 6]);
        // Earliest and latest, as kafkajs commits them.
        assert_eq!(commit(&mut c, version, group, &[-2, -1]).await, [0, 0]);
        assert_eq!(fetch(&mut c, group).await, [-1, -1], "v{version}");
        // Any other negative offset too, and the partitions beside it are committed.
        assert_eq!(commit(&mut c, version, group, &[-7, 9]).await, [0, 0]);
        assert_eq!(fetch(&mut c, group).await, [-1, 9], "v{version}");
    }
    // The embedded broker's view agrees: the partition has no committed offset.
    let described = broker.describe_group("recent").await.unwrap();
    let committed: Vec<Option<u64>> = described
        .partitions
        .iter()
        .map(|p| p.committed_offset)
        .collect();
    assert_eq!(committed, [Some(9)]);
    broker.close().await.unwrap();
}
