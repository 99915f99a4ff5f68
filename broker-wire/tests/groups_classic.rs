//! Consumer groups over a real TCP connection, as Kafka's clients drive them: members find
//! the coordinator, join, get the leader's assignment, heartbeat, commit and fetch offsets
//! and leave, at old, middle and recent versions of each API; a parked JoinGroup holds only
//! its own connection; silent members expire; committed offsets survive a restart.

mod common;

use std::time::{Duration, Instant};

use broker_embedded::group::consumer_protocol::{assignment_partitions, subscription_topics};
use broker_embedded::{
    Broker, BrokerConfig, BrokerError, Consumer, ConsumerConfig, GroupState, NewTopic,
    NoOpConsumerRebalanceListener, TopicPartition,
};
use broker_wire::{Server, WireConfig};
use bytes::{BufMut, Bytes, BytesMut};
use common::{request, serve, start};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedPartitions;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, ConsumerProtocolAssignment,
    ConsumerProtocolSubscription, DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest,
    DescribeGroupsResponse, FindCoordinatorRequest, FindCoordinatorResponse, GroupId,
    HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse, ListGroupsRequest, ListGroupsResponse, OffsetCommitRequest,
    OffsetCommitResponse, OffsetDeleteRequest, OffsetDeleteResponse, OffsetFetchRequest,
    OffsetFetchResponse, SyncGroupRequest, SyncGroupResponse, TopicName,
};
use kafka_protocol::protocol::{Encodable, StrBytes};
use tokio::net::TcpStream;

// Kafka's error codes the tests expect.
const ILLEGAL_GENERATION: i16 = 22;
const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
const UNKNOWN_MEMBER_ID: i16 = 25;
const REBALANCE_IN_PROGRESS: i16 = 27;
const NON_EMPTY_GROUP: i16 = 68;
const GROUP_ID_NOT_FOUND: i16 = 69;
const MEMBER_ID_REQUIRED: i16 = 79;
const GROUP_SUBSCRIBED_TO_TOPIC: i16 = 86;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_owned())
}

/// The API versions one client speaks.
#[derive(Debug, Clone, Copy)]
struct Versions {
    find_coordinator: i16,
    join: i16,
    sync: i16,
    heartbeat: i16,
    leave: i16,
    commit: i16,
    fetch: i16,
}

const OLD: Versions = Versions {
    find_coordinator: 0,
    join: 1,
    sync: 0,
    heartbeat: 0,
    leave: 0,
    commit: 2,
    fetch: 1,
};
const MIDDLE: Versions = Versions {
    find_coordinator: 3,
    join: 5,
    sync: 3,
    heartbeat: 3,
    leave: 3,
    commit: 7,
    fetch: 6,
};
const RECENT: Versions = Versions {
    find_coordinator: 6,
    join: 9,
    sync: 5,
    heartbeat: 4,
    leave: 5,
    commit: 9,
    fetch: 9,
};

/// `value` as Kafka's consumer protocol encodes it: an `i16` version, then the fields.
fn consumer_protocol(value: &impl Encodable, version: i16) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(version);
    value.encode(&mut buf, version).unwrap();
    buf.freeze()
}

fn subscription(topics: &[&str]) -> Bytes {
    consumer_protocol(
        &ConsumerProtocolSubscription::default().with_topics(topics.iter().map(|t| s(t)).collect()),
        1,
    )
}

fn assignment(topic: &str, partitions: &[i32]) -> Bytes {
    consumer_protocol(
        &ConsumerProtocolAssignment::default().with_assigned_partitions(vec![
            AssignedPartitions::default()
                .with_topic(TopicName(s(topic)))
                .with_partitions(partitions.to_vec()),
        ]),
        1,
    )
}

/// A test config: a short initial rebalance delay and short sessions allowed.
fn config() -> BrokerConfig {
    BrokerConfig {
        group_initial_rebalance_delay_ms: 200,
        group_min_session_timeout_ms: 100,
        ..BrokerConfig::default()
    }
}

async fn join(
    stream: &mut TcpStream,
    version: i16,
    group: &str,
    member_id: &str,
    session_timeout_ms: i32,
) -> JoinGroupResponse {
    let mut join = JoinGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_session_timeout_ms(session_timeout_ms)
        .with_member_id(s(member_id))
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(s("range"))
            .with_metadata(subscription(&["orders"]))]);
    if version >= 1 {
        join = join.with_rebalance_timeout_ms(10_000);
    }
    request(stream, ApiKey::JoinGroup, version, &join).await
}

/// Joins as a new member: from version 4 the first answer is MEMBER_ID_REQUIRED with the
/// member id to join again with.
async fn join_new(
    stream: &mut TcpStream,
    version: i16,
    group: &str,
    session_timeout_ms: i32,
) -> JoinGroupResponse {
    let first = join(stream, version, group, "", session_timeout_ms).await;
    if version < 4 {
        return first;
    }
    assert_eq!(first.error_code, MEMBER_ID_REQUIRED, "{first:?}");
    assert!(!first.member_id.is_empty());
    join(
        stream,
        version,
        group,
        first.member_id.as_str(),
        session_timeout_ms,
    )
    .await
}

async fn sync(
    stream: &mut TcpStream,
    version: i16,
    group: &str,
    member: &str,
    generation: i32,
    assignments: Vec<(String, Bytes)>,
) -> SyncGroupResponse {
    let mut sync = SyncGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_member_id(s(member))
        .with_generation_id(generation)
        .with_assignments(
            assignments
                .into_iter()
                .map(|(m, a)| {
                    SyncGroupRequestAssignment::default()
                        .with_member_id(s(&m))
                        .with_assignment(a)
                })
                .collect(),
        );
    if version >= 5 {
        sync = sync
            .with_protocol_type(Some(s("consumer")))
            .with_protocol_name(Some(s("range")));
    }
    request(stream, ApiKey::SyncGroup, version, &sync).await
}

async fn heartbeat(
    stream: &mut TcpStream,
    version: i16,
    group: &str,
    member: &str,
    generation: i32,
) -> i16 {
    let heartbeat = HeartbeatRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_member_id(s(member))
        .with_generation_id(generation);
    request::<_, HeartbeatResponse>(stream, ApiKey::Heartbeat, version, &heartbeat)
        .await
        .error_code
}

/// Commits `offset` for partitions 0 and 1 of `orders`; the error codes of each.
async fn commit(
    stream: &mut TcpStream,
    version: i16,
    group: &str,
    member: &str,
    generation: i32,
    offset: i64,
) -> Vec<i16> {
    let commit = OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(s(member))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(s("orders")))
            .with_partitions(
                (0..2)
                    .map(|p| {
                        OffsetCommitRequestPartition::default()
                            .with_partition_index(p)
                            .with_committed_offset(offset + i64::from(p))
                            .with_committed_metadata(Some(s("meta")))
                    })
                    .collect(),
            )]);
    let response: OffsetCommitResponse =
        request(stream, ApiKey::OffsetCommit, version, &commit).await;
    response
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
        .collect()
}

/// The committed offsets of partitions 0 and 1 of `orders` (-1 for none).
async fn fetch(stream: &mut TcpStream, version: i16, group: &str) -> Vec<i64> {
    let partitions = vec![0, 1];
    if version >= 8 {
        let fetch =
            OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
                .with_group_id(GroupId(s(group)))
                .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                    .with_name(TopicName(s("orders")))
                    .with_partition_indexes(partitions)]))]);
        let response: OffsetFetchResponse =
            request(stream, ApiKey::OffsetFetch, version, &fetch).await;
        assert_eq!(response.groups.len(), 1);
        assert_eq!(response.groups[0].error_code, 0);
        return response.groups[0].topics[0]
            .partitions
            .iter()
            .map(|p| p.committed_offset)
            .collect();
    }
    let fetch = OffsetFetchRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(TopicName(s("orders")))
            .with_partition_indexes(partitions)]));
    let response: OffsetFetchResponse = request(stream, ApiKey::OffsetFetch, version, &fetch).await;
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

async fn leave(stream: &mut TcpStream, version: i16, group: &str, member: &str) -> i16 {
    let leave = if version < 3 {
        LeaveGroupRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_member_id(s(member))
    } else {
        LeaveGroupRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_members(vec![MemberIdentity::default().with_member_id(s(member))])
    };
    let response: LeaveGroupResponse = request(stream, ApiKey::LeaveGroup, version, &leave).await;
    if version >= 3 {
        assert_eq!(response.members.len(), 1);
        return response.members[0].error_code;
    }
    response.error_code
}

async fn describe(stream: &mut TcpStream, version: i16, group: &str) -> DescribeGroupsResponse {
    let describe = DescribeGroupsRequest::default().with_groups(vec![GroupId(s(group))]);
    request(stream, ApiKey::DescribeGroups, version, &describe).await
}

/// Two members through a whole generation and a rebalance, at one set of versions.
async fn two_members(versions: Versions, group: &'static str) {
    let (broker, addr) = start(config(), WireConfig::default()).await;
    broker
        .create_topic(NewTopic::new("orders", 4))
        .await
        .unwrap();
    let v = versions;

    // Both find the coordinator: node 0, this server.
    let mut a = TcpStream::connect(addr).await.unwrap();
    let find = if v.find_coordinator >= 4 {
        FindCoordinatorRequest::default().with_coordinator_keys(vec![s(group)])
    } else {
        FindCoordinatorRequest::default().with_key(s(group))
    };
    let found: FindCoordinatorResponse =
        request(&mut a, ApiKey::FindCoordinator, v.find_coordinator, &find).await;
    let (node, port) = match found.coordinators.first() {
        Some(c) => (c.node_id.0, c.port),
        None => (found.node_id.0, found.port),
    };
    assert_eq!((node, port), (0, i32::from(addr.port())), "{found:?}");

    // Both join; the join completes after the initial rebalance delay.
    let mut b = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    let joining_a = tokio::spawn(async move {
        let r = join_new(&mut a, v.join, group, 10_000).await;
        (a, r)
    });
    let joining_b = tokio::spawn(async move {
        let r = join_new(&mut b, v.join, group, 10_000).await;
        (b, r)
    });
    let (a, ja) = joining_a.await.unwrap();
    let (b, jb) = joining_b.await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(190));
    assert_eq!((ja.error_code, jb.error_code), (0, 0), "{ja:?} {jb:?}");
    assert_eq!((ja.generation_id, jb.generation_id), (1, 1));
    assert_eq!(ja.leader, jb.leader);
    assert_eq!(ja.protocol_name.as_ref().map(|n| n.as_str()), Some("range"));
    // Whichever joined first leads; the leader alone gets the members' metadata.
    let (mut leader, lj, mut follower, fj) = if ja.leader == ja.member_id {
        (a, ja, b, jb)
    } else {
        (b, jb, a, ja)
    };
    assert_eq!(lj.members.len(), 2);
    assert!(fj.members.is_empty());
    for m in &lj.members {
        assert_eq!(
            subscription_topics(&m.metadata),
            Some(vec!["orders".to_owned()])
        );
    }
    let (leader_id, follower_id) = (lj.member_id.to_string(), fj.member_id.to_string());

    // The follower's SyncGroup waits for the leader's assignment.
    let following = tokio::spawn({
        let follower_id = follower_id.clone();
        async move {
            let r = sync(&mut follower, v.sync, group, &follower_id, 1, Vec::new()).await;
            (follower, r)
        }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !following.is_finished(),
        "the follower waits for the leader"
    );
    let ls = sync(
        &mut leader,
        v.sync,
        group,
        &leader_id,
        1,
        vec![
            (leader_id.clone(), assignment("orders", &[0, 1])),
            (follower_id.clone(), assignment("orders", &[2, 3])),
        ],
    )
    .await;
    let (mut follower, fs) = following.await.unwrap();
    assert_eq!((ls.error_code, fs.error_code), (0, 0));
    assert_eq!(
        assignment_partitions(&fs.assignment),
        Some(vec![
            TopicPartition::new("orders", 2),
            TopicPartition::new("orders", 3)
        ])
    );
    if v.sync >= 5 {
        assert_eq!(fs.protocol_name.as_ref().map(|n| n.as_str()), Some("range"));
    }

    // Heartbeats, commits and fetches of the generation.
    assert_eq!(
        heartbeat(&mut leader, v.heartbeat, group, &leader_id, 1).await,
        0
    );
    assert_eq!(
        heartbeat(&mut follower, v.heartbeat, group, &follower_id, 1).await,
        0
    );
    assert_eq!(
        heartbeat(&mut follower, v.heartbeat, group, &follower_id, 7).await,
        ILLEGAL_GENERATION
    );
    assert_eq!(
        commit(&mut leader, v.commit, group, &leader_id, 1, 10).await,
        vec![0, 0]
    );
    assert_eq!(
        commit(&mut leader, v.commit, group, &leader_id, 0, 99).await,
        vec![ILLEGAL_GENERATION, ILLEGAL_GENERATION]
    );
    assert_eq!(
        commit(&mut leader, v.commit, group, "stranger", 1, 99).await,
        vec![UNKNOWN_MEMBER_ID, UNKNOWN_MEMBER_ID]
    );
    assert_eq!(fetch(&mut follower, v.fetch, group).await, vec![10, 11]);
    let shown = broker.describe_group(group).await.unwrap();
    assert_eq!(shown.state, GroupState::Stable);
    assert_eq!(shown.partitions[0].committed_offset, Some(10));
    assert_eq!(
        shown.partitions[3].member_id.as_deref(),
        Some(follower_id.as_str())
    );

    // The follower leaves: the leader hears of the rebalance and rejoins alone.
    assert_eq!(leave(&mut follower, v.leave, group, &follower_id).await, 0);
    assert_eq!(
        heartbeat(&mut leader, v.heartbeat, group, &leader_id, 1).await,
        REBALANCE_IN_PROGRESS
    );
    let rejoined = join(&mut leader, v.join, group, &leader_id, 10_000).await;
    assert_eq!((rejoined.error_code, rejoined.generation_id), (0, 2));
    assert_eq!(rejoined.members.len(), 1);
    let described = describe(&mut leader, 5, group).await;
    assert_eq!(
        described.groups[0].group_state.as_str(),
        "CompletingRebalance"
    );
    let resync = sync(
        &mut leader,
        v.sync,
        group,
        &leader_id,
        2,
        vec![(leader_id.clone(), assignment("orders", &[0, 1, 2, 3]))],
    )
    .await;
    assert_eq!(resync.error_code, 0);
    assert_eq!(leave(&mut leader, v.leave, group, &leader_id).await, 0);
    assert_eq!(
        broker.describe_group(group).await.unwrap().state,
        GroupState::Empty
    );
    // The offsets stay after the members are gone.
    assert_eq!(fetch(&mut leader, v.fetch, group).await, vec![10, 11]);
    broker.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_members_at_old_versions() {
    two_members(OLD, "old").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_members_at_middle_versions() {
    two_members(MIDDLE, "middle").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_members_at_recent_versions() {
    two_members(RECENT, "recent").await;
}

/// A parked JoinGroup holds its own connection only: other connections are answered at
/// once. Closing the broker answers it with COORDINATOR_NOT_AVAILABLE.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_parked_join_holds_only_its_connection() {
    let config = BrokerConfig {
        group_initial_rebalance_delay_ms: 60_000,
        ..config()
    };
    let (broker, addr) = start(config, WireConfig::default()).await;
    let mut parked = TcpStream::connect(addr).await.unwrap();
    let joining = tokio::spawn(async move { join(&mut parked, 3, "slow", "", 10_000).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !joining.is_finished(),
        "the join waits for the initial delay"
    );
    let mut other = TcpStream::connect(addr).await.unwrap();
    let answered = tokio::time::timeout(
        Duration::from_secs(5),
        request::<_, ApiVersionsResponse>(
            &mut other,
            ApiKey::ApiVersions,
            3,
            &ApiVersionsRequest::default(),
        ),
    )
    .await
    .expect("another connection is answered while a join is parked");
    assert_eq!(answered.error_code, 0);
    let listed: ListGroupsResponse = request(
        &mut other,
        ApiKey::ListGroups,
        4,
        &ListGroupsRequest::default(),
    )
    .await;
    assert_eq!(listed.groups.len(), 1);
    assert_eq!(listed.groups[0].group_state.as_str(), "PreparingRebalance");
    broker.close().await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(10), joining)
        .await
        .expect("closing the broker ends the parked join")
        .unwrap();
    assert_eq!(ended.error_code, COORDINATOR_NOT_AVAILABLE);
}

/// A member that stops heartbeating is removed after its session timeout; the one that
/// keeps heartbeating is told to rejoin.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_silent_member_expires() {
    let (broker, addr) = start(config(), WireConfig::default()).await;
    broker
        .create_topic(NewTopic::new("orders", 2))
        .await
        .unwrap();
    let mut a = TcpStream::connect(addr).await.unwrap();
    let mut b = TcpStream::connect(addr).await.unwrap();
    let joining = tokio::spawn(async move {
        let r = join_new(&mut a, 9, "expiry", 500).await;
        (a, r)
    });
    let jb = join_new(&mut b, 9, "expiry", 500).await;
    let (mut a, ja) = joining.await.unwrap();
    let (leader, leader_stream) = if ja.leader == ja.member_id {
        (ja.member_id.to_string(), &mut a)
    } else {
        (jb.member_id.to_string(), &mut b)
    };
    let s = sync(leader_stream, 5, "expiry", &leader, 1, Vec::new()).await;
    assert_eq!(s.error_code, 0);
    // b heartbeats every 100 ms; a says nothing. Within a second or so b is told to
    // rejoin, and a is gone.
    let b_id = jb.member_id.to_string();
    let a_id = ja.member_id.to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let code = heartbeat(&mut b, 4, "expiry", &b_id, 1).await;
        if code == REBALANCE_IN_PROGRESS {
            break;
        }
        assert_eq!(code, 0);
        assert!(Instant::now() < deadline, "a never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        heartbeat(&mut a, 4, "expiry", &a_id, 1).await,
        UNKNOWN_MEMBER_ID
    );
    let description = broker.describe_group("expiry").await.unwrap();
    assert_eq!(description.members.len(), 1);
    assert_eq!(description.members[0].member_id, b_id);
}

/// The admin APIs: ListGroups with filters, DescribeGroups of known and unknown groups,
/// OffsetDelete, DeleteGroups; and a group id the embedded consumer uses is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn listing_describing_and_deleting_groups() {
    let (broker, addr) = start(config(), WireConfig::default()).await;
    broker
        .create_topic(NewTopic::new("orders", 2))
        .await
        .unwrap();
    broker
        .create_topic(NewTopic::new("other", 1))
        .await
        .unwrap();
    let mut c = TcpStream::connect(addr).await.unwrap();
    let joined = join_new(&mut c, 9, "admin", 10_000).await;
    let member = joined.member_id.to_string();
    let synced = sync(
        &mut c,
        5,
        "admin",
        &member,
        1,
        vec![(member.clone(), assignment("orders", &[0, 1]))],
    )
    .await;
    assert_eq!(synced.error_code, 0);
    assert_eq!(commit(&mut c, 9, "admin", &member, 1, 5).await, vec![0, 0]);
    // A simple consumer's offsets of another group, and of another topic of this one.
    assert_eq!(commit(&mut c, 9, "simple", "", -1, 3).await, vec![0, 0]);
    let other = OffsetCommitRequest::default()
        .with_group_id(GroupId(s("admin")))
        .with_generation_id_or_member_epoch(1)
        .with_member_id(s(&member))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(s("other")))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(1)])]);
    let r: OffsetCommitResponse = request(&mut c, ApiKey::OffsetCommit, 8, &other).await;
    assert_eq!(r.topics[0].partitions[0].error_code, 0);

    // ListGroups: both; filtered by state (v4) and type (v5).
    let all: ListGroupsResponse =
        request(&mut c, ApiKey::ListGroups, 0, &ListGroupsRequest::default()).await;
    let mut ids: Vec<&str> = all.groups.iter().map(|g| g.group_id.0.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, vec!["admin", "simple"]);
    let stable: ListGroupsResponse = request(
        &mut c,
        ApiKey::ListGroups,
        4,
        &ListGroupsRequest::default().with_states_filter(vec![s("stable")]),
    )
    .await;
    assert_eq!(stable.groups.len(), 1);
    assert_eq!(stable.groups[0].group_id.0.as_str(), "admin");
    assert_eq!(stable.groups[0].protocol_type.as_str(), "consumer");
    let typed: ListGroupsResponse = request(
        &mut c,
        ApiKey::ListGroups,
        5,
        &ListGroupsRequest::default().with_types_filter(vec![s("consumer")]),
    )
    .await;
    assert!(
        typed.groups.is_empty(),
        "every group here is a classic group"
    );

    // DescribeGroups: the member with its metadata and assignment; unknown groups are
    // Dead (v5) or GROUP_ID_NOT_FOUND (v6).
    for version in [0, 3, 5, 6] {
        let described = describe(&mut c, version, "admin").await;
        let g = &described.groups[0];
        assert_eq!(g.error_code, 0);
        assert_eq!(
            (g.group_state.as_str(), g.protocol_type.as_str()),
            ("Stable", "consumer")
        );
        assert_eq!(g.protocol_data.as_str(), "range");
        assert_eq!(g.members.len(), 1);
        assert_eq!(g.members[0].client_host.as_str(), "/127.0.0.1");
        assert_eq!(g.members[0].client_id.as_str(), "wire-test");
        assert_eq!(
            assignment_partitions(&g.members[0].member_assignment).map(|p| p.len()),
            Some(2)
        );
    }
    let dead = describe(&mut c, 5, "nobody").await;
    assert_eq!(
        (
            dead.groups[0].error_code,
            dead.groups[0].group_state.as_str()
        ),
        (0, "Dead")
    );
    let missing = describe(&mut c, 6, "nobody").await;
    assert_eq!(missing.groups[0].error_code, GROUP_ID_NOT_FOUND);

    // OffsetDelete: the group consumes orders, so those stay; other goes.
    let delete = |topic: &str| {
        OffsetDeleteRequest::default()
            .with_group_id(GroupId(s("admin")))
            .with_topics(vec![OffsetDeleteRequestTopic::default()
                .with_name(TopicName(s(topic)))
                .with_partitions(vec![
                    OffsetDeleteRequestPartition::default().with_partition_index(0)
                ])])
    };
    let r: OffsetDeleteResponse = request(&mut c, ApiKey::OffsetDelete, 0, &delete("orders")).await;
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        GROUP_SUBSCRIBED_TO_TOPIC
    );
    let r: OffsetDeleteResponse = request(&mut c, ApiKey::OffsetDelete, 0, &delete("other")).await;
    assert_eq!((r.error_code, r.topics[0].partitions[0].error_code), (0, 0));
    let left = broker.fetch_offsets("admin", None, false).await.unwrap();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.iter().all(|f| f.partition.topic == "orders"));

    // DeleteGroups: not while it has members; an unknown group is not found.
    let delete = |groups: &[&str]| {
        DeleteGroupsRequest::default()
            .with_groups_names(groups.iter().map(|g| GroupId(s(g))).collect())
    };
    let r: DeleteGroupsResponse = request(
        &mut c,
        ApiKey::DeleteGroups,
        2,
        &delete(&["admin", "simple", "nobody"]),
    )
    .await;
    let codes: Vec<i16> = r.results.iter().map(|r| r.error_code).collect();
    assert_eq!(codes, vec![NON_EMPTY_GROUP, 0, GROUP_ID_NOT_FOUND]);
    assert_eq!(fetch(&mut c, 5, "simple").await, vec![-1, -1]);

    // The embedded consumer cannot join a group Kafka clients use, nor the other way.
    let mut consumer = Consumer::new(
        &broker,
        ConsumerConfig {
            group_id: Some("admin".into()),
            ..ConsumerConfig::default()
        },
    );
    consumer
        .subscribe(["orders"], NoOpConsumerRebalanceListener)
        .await
        .unwrap();
    assert!(consumer.poll(Duration::from_millis(10)).await.is_err());
    let mut consumer = Consumer::new(
        &broker,
        ConsumerConfig {
            group_id: Some("embedded".into()),
            ..ConsumerConfig::default()
        },
    );
    consumer
        .subscribe(["orders"], NoOpConsumerRebalanceListener)
        .await
        .unwrap();
    consumer.poll(Duration::from_millis(10)).await.unwrap();
    let refused = join(&mut c, 9, "embedded", "", 10_000).await;
    assert_eq!(refused.error_code, INCONSISTENT_GROUP_PROTOCOL);
    // Its members are described in the consumer protocol's layout.
    let described = describe(&mut c, 5, "embedded").await;
    let g = &described.groups[0];
    assert_eq!(g.members.len(), 1);
    assert_eq!(
        subscription_topics(&g.members[0].member_metadata),
        Some(vec!["orders".to_owned()])
    );
    assert_eq!(
        assignment_partitions(&g.members[0].member_assignment).map(|p| p.len()),
        Some(2)
    );
    consumer.close().await.unwrap();
    broker.close().await.unwrap();
}

/// Offsets committed over the wire are in `__consumer_offsets`: they survive a restart
/// of the broker and show in its describe (what `streams groups describe` prints).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn committed_offsets_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let broker = Broker::open(dir.path(), config()).await.unwrap();
        broker
            .create_topic(NewTopic::new("orders", 2))
            .await
            .unwrap();
        // A server that stops, so that every handle on the broker goes and its data dir
        // can be opened again.
        let server = Server::bind(
            broker.clone(),
            WireConfig {
                listen: "127.0.0.1:0".parse().unwrap(),
                ..WireConfig::default()
            },
        )
        .await
        .unwrap();
        let addr = server.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        let mut c = TcpStream::connect(addr).await.unwrap();
        let joined = join_new(&mut c, 7, "durable", 10_000).await;
        let member = joined.member_id.to_string();
        assert_eq!(
            sync(&mut c, 4, "durable", &member, 1, Vec::new())
                .await
                .error_code,
            0
        );
        assert_eq!(
            commit(&mut c, 8, "durable", &member, 1, 40).await,
            vec![0, 0]
        );
        assert_eq!(commit(&mut c, 3, "manual", "", -1, 7).await, vec![0, 0]);
        drop(c);
        stop.send(()).unwrap();
        running.await.unwrap().unwrap();
        broker.close().await.unwrap();
    }
    // The connection's task lets go of the broker once it sees the connection closed.
    let deadline = Instant::now() + Duration::from_secs(10);
    let broker = loop {
        match Broker::open(dir.path(), config()).await {
            Ok(broker) => break broker,
            Err(BrokerError::DirLocked { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("reopening: {e}"),
        }
    };
    let shown = broker.describe_group("durable").await.unwrap();
    let committed: Vec<Option<u64>> = shown
        .partitions
        .iter()
        .map(|p| p.committed_offset)
        .collect();
    assert_eq!(committed, vec![Some(40), Some(41)]);
    let (broker, addr) = serve(broker, WireConfig::default()).await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    assert_eq!(fetch(&mut c, 8, "durable").await, vec![40, 41]);
    assert_eq!(fetch(&mut c, 2, "manual").await, vec![7, 8]);
    // The members are not kept across a restart: the old member id must rejoin.
    assert_eq!(
        heartbeat(&mut c, 2, "durable", "whoever", 1).await,
        UNKNOWN_MEMBER_ID
    );
    broker.close().await.unwrap();
}

/// FindCoordinator names this broker for groups and transactional ids at every version,
/// one key before version 4 and a batch from version 4; other key types are refused.
#[tokio::test]
async fn find_coordinator_for_groups_and_transactions() {
    const INVALID_REQUEST: i16 = 42;
    let (_broker, addr) = start(config(), WireConfig::default()).await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    let port = i32::from(addr.port());
    for version in 0..=3 {
        for key_type in [0i8, 1] {
            if version == 0 && key_type == 1 {
                continue;
            }
            let mut find = FindCoordinatorRequest::default().with_key(s("k"));
            if version >= 1 {
                find = find.with_key_type(key_type);
            }
            let r: FindCoordinatorResponse =
                request(&mut c, ApiKey::FindCoordinator, version, &find).await;
            assert_eq!(
                (r.error_code, r.node_id.0, r.port),
                (0, 0, port),
                "v{version}"
            );
            assert_eq!(r.host.as_str(), "127.0.0.1");
        }
    }
    let share = FindCoordinatorRequest::default()
        .with_key(s("k"))
        .with_key_type(2);
    let r: FindCoordinatorResponse = request(&mut c, ApiKey::FindCoordinator, 3, &share).await;
    assert_eq!((r.error_code, r.node_id.0), (INVALID_REQUEST, -1));
    for version in 4..=6 {
        let find = FindCoordinatorRequest::default()
            .with_key_type(1)
            .with_coordinator_keys(vec![s("tx-a"), s("tx-b")]);
        let r: FindCoordinatorResponse =
            request(&mut c, ApiKey::FindCoordinator, version, &find).await;
        let keys: Vec<(&str, i32, i32, i16)> = r
            .coordinators
            .iter()
            .map(|c| (c.key.as_str(), c.node_id.0, c.port, c.error_code))
            .collect();
        assert_eq!(keys, vec![("tx-a", 0, port, 0), ("tx-b", 0, port, 0)]);
    }
    let share = FindCoordinatorRequest::default()
        .with_key_type(2)
        .with_coordinator_keys(vec![s("g")]);
    let r: FindCoordinatorResponse = request(&mut c, ApiKey::FindCoordinator, 6, &share).await;
    assert_eq!(r.coordinators[0].error_code, INVALID_REQUEST);
}
