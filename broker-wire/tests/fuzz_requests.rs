//! A fuzz target for the request decoder and the dispatch, run by the test suite for a
//! fixed number of cases over real connections, on stable Rust.
//!
//! Each case is a frame sent to a running server: random bytes, a valid request header
//! followed by random bytes, or a valid request of a served API and version (every one of
//! them is in the corpus) with a few random mutations: bit flips, truncation, inserted and
//! deleted bytes, small numbers (lengths and counts, most likely) blown up to huge or
//! negative ones, size prefixes that lie; and Produce requests whose record batch (plain
//! or compressed) is mutated past its checksum, with the checksum made right again, so that
//! the broker's batch decoder is reached. After each case a marker request follows on the
//! same connection, which tells "no response" (a Produce with `acks=0`) from an answer.
//!
//! What must hold: nothing in the server panics (a panic hook counts panics in this
//! process, the server's tasks included); every answer is a well-formed response frame of
//! the request's API and version with its correlation id, decoded whole by
//! `kafka-protocol`'s client side, followed by the marker's answer in order; otherwise the
//! connection is closed, or (rarely: a mutated long poll) the request is still waiting
//! after half a second; and a fresh connection is served throughout. Before the cases,
//! every served API at every served version, unchanged, must be answered whole.
//!
//! The cases come from a seed: `BROKER_WIRE_FUZZ_SEED=<u64>` picks another one,
//! `BROKER_WIRE_FUZZ_CASES=<n>` runs more or fewer. A failure prints the seed, the case
//! number and the frame in hex.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use broker_embedded::{BrokerConfig, NewTopic};
use broker_wire::{WireConfig, SUPPORTED_APIS};
use bytes::{Buf, Bytes, BytesMut};
use common::start;
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const DEFAULT_SEED: u64 = 0x5eed_f0e5_2026_0001;
const DEFAULT_CASES: usize = 30_000;
/// The marker request's correlation id.
const MARKER: i32 = 0x7ead_beef;
/// How long a case's answer may take; longer is a request that waits (a mutated long
/// poll, a join waiting for a member): its connection is dropped and the server goes on
/// with it, as for a client gone.
const CASE_ANSWER_WITHIN: Duration = Duration::from_millis(500);
/// How long an unchanged request's answer may take.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// splitmix64: small, fast and the same everywhere, so a seed names the same cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn percent(&mut self, p: usize) -> bool {
        self.below(100) < p
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn env_number<T: std::str::FromStr>(name: &str) -> Option<T> {
    let value = std::env::var(name).ok()?;
    let value = value.trim();
    if let Some(hex) = value.strip_prefix("0x") {
        let n = u64::from_str_radix(hex, 16).ok()?;
        return n.to_string().parse().ok();
    }
    value.parse().ok()
}

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_owned()))
}

fn group(s: &str) -> GroupId {
    GroupId(StrBytes::from_string(s.to_owned()))
}

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// A v2 record batch of `n` small records.
fn batch(n: usize) -> Bytes {
    batch_with(n, Compression::None)
}

/// A v2 record batch of `n` small records, compressed with `compression`.
fn batch_with(n: usize, compression: Compression) -> Bytes {
    let records: Vec<Record> = (0..n)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: i as i32,
            timestamp: 1_700_000_000_000 + i as i64,
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(format!("value {i}"))),
            headers: IndexMap::new(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .unwrap();
    buf.freeze()
}

/// A record batch with a random change past its checksum, and the checksum (and, mostly,
/// the batch length) made right again: what reaches the broker's batch decoder, not only
/// its checksum test.
fn mutated_batch(rng: &mut Rng) -> Bytes {
    /// Base offset, batch length, leader epoch, magic, then the CRC32C of the rest.
    const CRC_AT: usize = 17;
    const CHECKED_FROM: usize = 21;
    let codecs = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];
    let mut bytes = batch_with(1 + rng.below(5), codecs[rng.below(codecs.len())]).to_vec();
    let mut body = bytes.split_off(CHECKED_FROM);
    for _ in 0..1 + rng.below(3) {
        mutate(rng, &mut body);
    }
    bytes.extend_from_slice(&body);
    let crc = crc32c::crc32c(&bytes[CHECKED_FROM..]);
    bytes[CRC_AT..CHECKED_FROM].copy_from_slice(&crc.to_be_bytes());
    if rng.percent(90) {
        let length = (bytes.len() - 12) as i32;
        bytes[8..12].copy_from_slice(&length.to_be_bytes());
    }
    Bytes::from(bytes)
}

/// A Produce request frame of `version` carrying `records` for partition 0 of `fuzz`.
fn produce_frame(version: i16, records: Bytes) -> Option<Vec<u8>> {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(1000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(name("fuzz"))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records))])]);
    let mut frame = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(ApiKey::Produce as i16)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .with_client_id(Some(text("fuzz")))
        .encode(&mut frame, ApiKey::Produce.request_header_version(version))
        .ok()?;
    request.encode(&mut frame, version).ok()?;
    Some(frame.to_vec())
}

/// A request of `key` with every field at its default (encodable at every version): for
/// an API served without a sample below.
fn default_request(key: ApiKey) -> RequestKind {
    macro_rules! defaults {
        ($($api:ident: $request:ident),* $(,)?) => {
            match key {
                $(ApiKey::$api => RequestKind::$api($request::default()),)*
            }
        };
    }
    defaults!(
        Produce: ProduceRequest, Fetch: FetchRequest, ListOffsets: ListOffsetsRequest,
        Metadata: MetadataRequest, OffsetCommit: OffsetCommitRequest, OffsetFetch:
        OffsetFetchRequest, FindCoordinator: FindCoordinatorRequest, JoinGroup:
        JoinGroupRequest, Heartbeat: HeartbeatRequest, LeaveGroup: LeaveGroupRequest,
        SyncGroup: SyncGroupRequest, DescribeGroups: DescribeGroupsRequest, ListGroups:
        ListGroupsRequest, SaslHandshake: SaslHandshakeRequest, ApiVersions:
        ApiVersionsRequest, CreateTopics: CreateTopicsRequest, DeleteTopics:
        DeleteTopicsRequest, DeleteRecords: DeleteRecordsRequest, InitProducerId:
        InitProducerIdRequest, OffsetForLeaderEpoch: OffsetForLeaderEpochRequest,
        AddPartitionsToTxn: AddPartitionsToTxnRequest, AddOffsetsToTxn:
        AddOffsetsToTxnRequest, EndTxn: EndTxnRequest, WriteTxnMarkers:
        WriteTxnMarkersRequest, TxnOffsetCommit: TxnOffsetCommitRequest, DescribeAcls:
        DescribeAclsRequest, CreateAcls: CreateAclsRequest, DeleteAcls:
        DeleteAclsRequest, DescribeConfigs: DescribeConfigsRequest, AlterConfigs:
        AlterConfigsRequest, AlterReplicaLogDirs: AlterReplicaLogDirsRequest,
        DescribeLogDirs: DescribeLogDirsRequest, SaslAuthenticate:
        SaslAuthenticateRequest, CreatePartitions: CreatePartitionsRequest,
        CreateDelegationToken: CreateDelegationTokenRequest, RenewDelegationToken:
        RenewDelegationTokenRequest, ExpireDelegationToken:
        ExpireDelegationTokenRequest, DescribeDelegationToken:
        DescribeDelegationTokenRequest, DeleteGroups: DeleteGroupsRequest, ElectLeaders:
        ElectLeadersRequest, IncrementalAlterConfigs: IncrementalAlterConfigsRequest,
        AlterPartitionReassignments: AlterPartitionReassignmentsRequest,
        ListPartitionReassignments: ListPartitionReassignmentsRequest, OffsetDelete:
        OffsetDeleteRequest, DescribeClientQuotas: DescribeClientQuotasRequest,
        AlterClientQuotas: AlterClientQuotasRequest, DescribeUserScramCredentials:
        DescribeUserScramCredentialsRequest, AlterUserScramCredentials:
        AlterUserScramCredentialsRequest, Vote: VoteRequest, BeginQuorumEpoch:
        BeginQuorumEpochRequest, EndQuorumEpoch: EndQuorumEpochRequest, DescribeQuorum:
        DescribeQuorumRequest, AlterPartition: AlterPartitionRequest, UpdateFeatures:
        UpdateFeaturesRequest, Envelope: EnvelopeRequest, FetchSnapshot:
        FetchSnapshotRequest, DescribeCluster: DescribeClusterRequest,
        DescribeProducers: DescribeProducersRequest, BrokerRegistration:
        BrokerRegistrationRequest, BrokerHeartbeat: BrokerHeartbeatRequest,
        UnregisterBroker: UnregisterBrokerRequest, DescribeTransactions:
        DescribeTransactionsRequest, ListTransactions: ListTransactionsRequest,
        AllocateProducerIds: AllocateProducerIdsRequest, ConsumerGroupHeartbeat:
        ConsumerGroupHeartbeatRequest, ConsumerGroupDescribe:
        ConsumerGroupDescribeRequest, ControllerRegistration:
        ControllerRegistrationRequest, GetTelemetrySubscriptions:
        GetTelemetrySubscriptionsRequest, PushTelemetry: PushTelemetryRequest,
        AssignReplicasToDirs: AssignReplicasToDirsRequest, ListConfigResources:
        ListConfigResourcesRequest, DescribeTopicPartitions:
        DescribeTopicPartitionsRequest, ShareGroupHeartbeat: ShareGroupHeartbeatRequest,
        ShareGroupDescribe: ShareGroupDescribeRequest, ShareFetch: ShareFetchRequest,
        ShareAcknowledge: ShareAcknowledgeRequest, AddRaftVoter: AddRaftVoterRequest,
        RemoveRaftVoter: RemoveRaftVoterRequest, UpdateRaftVoter:
        UpdateRaftVoterRequest, InitializeShareGroupState:
        InitializeShareGroupStateRequest, ReadShareGroupState:
        ReadShareGroupStateRequest, WriteShareGroupState: WriteShareGroupStateRequest,
        DeleteShareGroupState: DeleteShareGroupStateRequest, ReadShareGroupStateSummary:
        ReadShareGroupStateSummaryRequest, DescribeShareGroupOffsets:
        DescribeShareGroupOffsetsRequest, AlterShareGroupOffsets:
        AlterShareGroupOffsetsRequest, DeleteShareGroupOffsets:
        DeleteShareGroupOffsetsRequest
    )
}

/// Valid requests of `key` that reach past the decoder into the handlers: they name the
/// topic `fuzz` (3 partitions, some records), the group `g` and the group `fuzz-offsets`
/// (offsets committed without membership). Fields that only
/// some versions have are left at their defaults, except where a version range names a
/// thing another way (a topic by name or by id): then there is a request of each kind, and
/// each version keeps those it can encode.
fn samples(key: ApiKey, g: &str) -> Vec<RequestKind> {
    use kafka_protocol::messages::{
        alter_configs_request as alter, create_partitions_request as partitions,
        create_topics_request as create, delete_records_request as delete_records,
        delete_topics_request as delete_topics, describe_configs_request as describe_configs,
        fetch_request as fetch, incremental_alter_configs_request as incremental,
        join_group_request as join, leave_group_request as leave,
        list_offsets_request as list_offsets, metadata_request as metadata,
        offset_commit_request as commit, offset_delete_request as offset_delete,
        offset_fetch_request as offset_fetch, offset_for_leader_epoch_request as epoch,
        produce_request as produce, sync_group_request as sync,
    };
    let id = uuid::Uuid::from_u128(0x1234_5678_9abc_def0_1234_5678_9abc_def0);
    match key {
        ApiKey::ApiVersions => vec![
            RequestKind::ApiVersions(ApiVersionsRequest::default()),
            RequestKind::ApiVersions(
                ApiVersionsRequest::default()
                    .with_client_software_name(text("fuzz"))
                    .with_client_software_version(text("1.0")),
            ),
        ],
        ApiKey::Produce => {
            let data = |topic: produce::TopicProduceData| {
                topic.with_partition_data(vec![
                    produce::PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(batch(3))),
                    produce::PartitionProduceData::default()
                        .with_index(2)
                        .with_records(Some(batch(1))),
                ])
            };
            let request = |acks: i16, topic: produce::TopicProduceData| {
                RequestKind::Produce(
                    ProduceRequest::default()
                        .with_acks(acks)
                        .with_timeout_ms(1000)
                        .with_topic_data(vec![data(topic)]),
                )
            };
            vec![
                request(
                    -1,
                    produce::TopicProduceData::default().with_name(name("fuzz")),
                ),
                request(
                    1,
                    produce::TopicProduceData::default().with_name(name("fuzz")),
                ),
                request(
                    0,
                    produce::TopicProduceData::default().with_name(name("fuzz")),
                ),
                request(-1, produce::TopicProduceData::default().with_topic_id(id)),
            ]
        }
        ApiKey::Fetch => {
            let partitions = vec![
                fetch::FetchPartition::default()
                    .with_partition(0)
                    .with_fetch_offset(0)
                    .with_partition_max_bytes(1 << 16),
                fetch::FetchPartition::default()
                    .with_partition(1)
                    .with_fetch_offset(5)
                    .with_partition_max_bytes(1 << 16),
            ];
            let request = |topic: fetch::FetchTopic| {
                RequestKind::Fetch(
                    FetchRequest::default()
                        .with_max_wait_ms(0)
                        .with_min_bytes(1)
                        .with_max_bytes(1 << 20)
                        .with_topics(vec![topic.with_partitions(partitions.clone())]),
                )
            };
            vec![
                request(fetch::FetchTopic::default().with_topic(name("fuzz"))),
                request(fetch::FetchTopic::default().with_topic_id(id)),
            ]
        }
        ApiKey::ListOffsets => vec![RequestKind::ListOffsets(
            ListOffsetsRequest::default()
                .with_replica_id((-1).into())
                .with_topics(vec![list_offsets::ListOffsetsTopic::default()
                    .with_name(name("fuzz"))
                    .with_partitions(vec![
                        list_offsets::ListOffsetsPartition::default()
                            .with_partition_index(0)
                            .with_timestamp(-1),
                        list_offsets::ListOffsetsPartition::default()
                            .with_partition_index(1)
                            .with_timestamp(-2),
                    ])]),
        )],
        ApiKey::OffsetForLeaderEpoch => vec![RequestKind::OffsetForLeaderEpoch(
            OffsetForLeaderEpochRequest::default().with_topics(vec![
                epoch::OffsetForLeaderTopic::default()
                    .with_topic(name("fuzz"))
                    .with_partitions(vec![epoch::OffsetForLeaderPartition::default()
                        .with_partition(0)
                        .with_leader_epoch(0)]),
            ]),
        )],
        ApiKey::Metadata => vec![
            RequestKind::Metadata(MetadataRequest::default().with_topics(Some(vec![
                metadata::MetadataRequestTopic::default().with_name(Some(name("fuzz"))),
            ]))),
            RequestKind::Metadata(MetadataRequest::default().with_topics(None)),
            RequestKind::Metadata(MetadataRequest::default().with_topics(Some(vec![
                metadata::MetadataRequestTopic::default().with_name(Some(name("fuzz-auto"))),
            ]))),
            RequestKind::Metadata(MetadataRequest::default().with_topics(Some(vec![
                metadata::MetadataRequestTopic::default().with_topic_id(id),
            ]))),
        ],
        ApiKey::CreateTopics => vec![RequestKind::CreateTopics(
            CreateTopicsRequest::default()
                .with_timeout_ms(1000)
                .with_topics(vec![create::CreatableTopic::default()
                    .with_name(name("fuzz-created"))
                    .with_num_partitions(2)
                    .with_replication_factor(1)
                    .with_configs(vec![create::CreatableTopicConfig::default()
                        .with_name(text("cleanup.policy"))
                        .with_value(Some(text("compact")))])]),
        )],
        ApiKey::DeleteTopics => vec![
            RequestKind::DeleteTopics(
                DeleteTopicsRequest::default()
                    .with_timeout_ms(1000)
                    .with_topic_names(vec![name("fuzz-created")]),
            ),
            RequestKind::DeleteTopics(
                DeleteTopicsRequest::default()
                    .with_timeout_ms(1000)
                    .with_topics(vec![delete_topics::DeleteTopicState::default()
                        .with_name(Some(name("fuzz-created")))]),
            ),
        ],
        ApiKey::CreatePartitions => vec![RequestKind::CreatePartitions(
            CreatePartitionsRequest::default()
                .with_timeout_ms(1000)
                .with_topics(vec![partitions::CreatePartitionsTopic::default()
                    .with_name(name("fuzz-created"))
                    .with_count(4)]),
        )],
        ApiKey::DeleteRecords => vec![RequestKind::DeleteRecords(
            DeleteRecordsRequest::default()
                .with_timeout_ms(1000)
                .with_topics(vec![delete_records::DeleteRecordsTopic::default()
                    .with_name(name("fuzz"))
                    .with_partitions(vec![
                        delete_records::DeleteRecordsPartition::default()
                            .with_partition_index(1)
                            .with_offset(1),
                    ])]),
        )],
        ApiKey::DescribeConfigs => vec![RequestKind::DescribeConfigs(
            DescribeConfigsRequest::default().with_resources(vec![
                describe_configs::DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(text("fuzz"))
                    .with_configuration_keys(None),
                describe_configs::DescribeConfigsResource::default()
                    .with_resource_type(4)
                    .with_resource_name(text("0"))
                    .with_configuration_keys(Some(vec![text("num.partitions")])),
            ]),
        )],
        ApiKey::AlterConfigs => vec![RequestKind::AlterConfigs(
            AlterConfigsRequest::default().with_resources(vec![
                alter::AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(text("fuzz"))
                    .with_configs(vec![alter::AlterableConfig::default()
                        .with_name(text("retention.ms"))
                        .with_value(Some(text("86400000")))]),
            ]),
        )],
        ApiKey::IncrementalAlterConfigs => vec![RequestKind::IncrementalAlterConfigs(
            IncrementalAlterConfigsRequest::default().with_resources(vec![
                incremental::AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(text("fuzz"))
                    .with_configs(vec![incremental::AlterableConfig::default()
                        .with_name(text("segment.ms"))
                        .with_config_operation(0)
                        .with_value(Some(text("3600000")))]),
            ]),
        )],
        ApiKey::FindCoordinator => vec![
            RequestKind::FindCoordinator(FindCoordinatorRequest::default().with_key(text(g))),
            RequestKind::FindCoordinator(
                FindCoordinatorRequest::default().with_coordinator_keys(vec![text(g)]),
            ),
        ],
        ApiKey::JoinGroup => {
            let request = JoinGroupRequest::default()
                .with_group_id(group(g))
                .with_session_timeout_ms(100)
                .with_protocol_type(text("consumer"))
                .with_protocols(vec![join::JoinGroupRequestProtocol::default()
                    .with_name(text("range"))
                    .with_metadata(Bytes::from_static(&[
                        0, 1, 0, 0, 0, 1, 0, 4, b'f', b'u', b'z', b'z', 0, 0, 0, 0,
                    ]))]);
            vec![
                RequestKind::JoinGroup(request.clone()),
                RequestKind::JoinGroup(request.with_rebalance_timeout_ms(100)),
            ]
        }
        ApiKey::SyncGroup => vec![RequestKind::SyncGroup(
            SyncGroupRequest::default()
                .with_group_id(group(g))
                .with_generation_id(1)
                .with_member_id(text("member-1"))
                .with_assignments(vec![sync::SyncGroupRequestAssignment::default()
                    .with_member_id(text("member-1"))
                    .with_assignment(Bytes::from_static(&[0, 1, 0, 0, 0, 0]))]),
        )],
        ApiKey::Heartbeat => vec![RequestKind::Heartbeat(
            HeartbeatRequest::default()
                .with_group_id(group(g))
                .with_generation_id(1)
                .with_member_id(text("member-1")),
        )],
        ApiKey::LeaveGroup => vec![
            RequestKind::LeaveGroup(
                LeaveGroupRequest::default()
                    .with_group_id(group(g))
                    .with_member_id(text("member-1")),
            ),
            RequestKind::LeaveGroup(
                LeaveGroupRequest::default()
                    .with_group_id(group(g))
                    .with_members(vec![
                        leave::MemberIdentity::default().with_member_id(text("member-1"))
                    ]),
            ),
        ],
        ApiKey::OffsetCommit => {
            let partitions = vec![commit::OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(2)
                .with_committed_metadata(Some(text("")))];
            let request = |topic: commit::OffsetCommitRequestTopic| {
                RequestKind::OffsetCommit(
                    OffsetCommitRequest::default()
                        .with_group_id(group("fuzz-offsets"))
                        .with_generation_id_or_member_epoch(-1)
                        .with_topics(vec![topic.with_partitions(partitions.clone())]),
                )
            };
            vec![
                request(commit::OffsetCommitRequestTopic::default().with_name(name("fuzz"))),
                request(commit::OffsetCommitRequestTopic::default().with_topic_id(id)),
            ]
        }
        ApiKey::OffsetFetch => vec![
            RequestKind::OffsetFetch(
                OffsetFetchRequest::default()
                    .with_group_id(group("fuzz-offsets"))
                    .with_topics(Some(vec![offset_fetch::OffsetFetchRequestTopic::default()
                        .with_name(name("fuzz"))
                        .with_partition_indexes(vec![0, 1])])),
            ),
            RequestKind::OffsetFetch(OffsetFetchRequest::default().with_groups(vec![
                offset_fetch::OffsetFetchRequestGroup::default()
                    .with_group_id(group("fuzz-offsets"))
                    .with_topics(Some(vec![offset_fetch::OffsetFetchRequestTopics::default()
                        .with_name(name("fuzz"))
                        .with_partition_indexes(vec![0, 1])])),
            ])),
            RequestKind::OffsetFetch(OffsetFetchRequest::default().with_groups(vec![
                offset_fetch::OffsetFetchRequestGroup::default()
                    .with_group_id(group("fuzz-offsets"))
                    .with_topics(Some(vec![offset_fetch::OffsetFetchRequestTopics::default()
                        .with_topic_id(id)
                        .with_partition_indexes(vec![0])])),
            ])),
        ],
        ApiKey::OffsetDelete => vec![RequestKind::OffsetDelete(
            OffsetDeleteRequest::default()
                .with_group_id(group("fuzz-offsets"))
                .with_topics(vec![offset_delete::OffsetDeleteRequestTopic::default()
                    .with_name(name("fuzz"))
                    .with_partitions(vec![
                        offset_delete::OffsetDeleteRequestPartition::default()
                            .with_partition_index(0),
                    ])]),
        )],
        ApiKey::DescribeGroups => vec![RequestKind::DescribeGroups(
            DescribeGroupsRequest::default().with_groups(vec![group(g), group("fuzz-offsets")]),
        )],
        ApiKey::DeleteGroups => vec![RequestKind::DeleteGroups(
            DeleteGroupsRequest::default().with_groups_names(vec![group(g)]),
        )],
        _ => Vec::new(),
    }
}

/// A valid request of a served API and version: the `sample`th of [`samples`], or the
/// default request when `sample` is past them.
#[derive(Debug, Clone, Copy)]
struct Seed {
    key: ApiKey,
    version: i16,
    sample: usize,
}

impl Seed {
    /// The request frame (header and body, no size prefix), naming the group `g`.
    fn frame(&self, g: &str) -> Option<Vec<u8>> {
        let mut requests = samples(self.key, g);
        requests.push(default_request(self.key));
        let request = requests.get(self.sample)?;
        let mut frame = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(self.key as i16)
            .with_request_api_version(self.version)
            .with_correlation_id(1)
            .with_client_id(Some(text("fuzz")))
            .encode(&mut frame, self.key.request_header_version(self.version))
            .ok()?;
        request.encode(&mut frame, self.version).ok()?;
        Some(frame.to_vec())
    }
}

/// Every served API at every served version, with each sample that encodes at that
/// version (the default request when none does).
fn corpus() -> Vec<Seed> {
    let mut corpus = Vec::new();
    for &(key, min, max) in SUPPORTED_APIS {
        for version in min..=max {
            let before = corpus.len();
            for sample in 0..=samples(key, "g").len() {
                let seed = Seed {
                    key,
                    version,
                    sample,
                };
                if seed.frame("g").is_some() {
                    corpus.push(seed);
                }
            }
            assert!(
                corpus.len() > before,
                "{key:?} v{version}: no request encodes at this version"
            );
        }
    }
    corpus
}

/// Changes `frame` in one random way.
fn mutate(rng: &mut Rng, frame: &mut Vec<u8>) {
    // Mostly past the header's key and version, so that the body decoders are reached.
    let pos = |rng: &mut Rng, len: usize| {
        if len > 8 && rng.percent(80) {
            4 + rng.below(len - 4)
        } else {
            rng.below(len.max(1))
        }
    };
    let len = frame.len();
    match rng.below(11) {
        0 if len > 0 => {
            let at = pos(rng, len);
            frame[at] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let at = pos(rng, len);
            frame[at] = rng.next() as u8;
        }
        2 => frame.truncate(rng.below(len + 1)),
        3 => {
            let at = rng.below(len + 1);
            let n = 1 + rng.below(8);
            let bytes = rng.bytes(n);
            frame.splice(at..at, bytes);
        }
        4 if len > 0 => {
            let at = rng.below(len);
            let end = (at + 1 + rng.below(16)).min(len);
            frame.drain(at..end);
        }
        // A small i32 (a count or a length, likely) made huge, negative or one more.
        5 | 6 if len >= 4 => {
            for _ in 0..16 {
                let at = pos(rng, len - 3);
                let v =
                    i32::from_be_bytes([frame[at], frame[at + 1], frame[at + 2], frame[at + 3]]);
                if (0..=1024).contains(&v) {
                    let new =
                        [i32::MAX, -1, -2, i32::MIN, v + 1, v + 1000, 0x00ff_ffff][rng.below(7)];
                    frame[at..at + 4].copy_from_slice(&new.to_be_bytes());
                    break;
                }
            }
        }
        // A small i16 (a string length, likely).
        7 if len >= 2 => {
            for _ in 0..16 {
                let at = pos(rng, len - 1);
                let v = i16::from_be_bytes([frame[at], frame[at + 1]]);
                if (0..=255).contains(&v) {
                    let new = [i16::MAX, -1, -2, v + 1, v + 100][rng.below(5)];
                    frame[at..at + 2].copy_from_slice(&new.to_be_bytes());
                    break;
                }
            }
        }
        // A small unsigned varint (a compact length or count, likely) made 2^32 - 1.
        8 if len > 0 => {
            for _ in 0..16 {
                let at = pos(rng, len);
                if (1..0x80).contains(&frame[at]) {
                    frame.splice(at..at + 1, [0xff, 0xff, 0xff, 0xff, 0x0f]);
                    break;
                }
            }
        }
        9 if len > 1 => {
            let from = rng.below(len);
            let end = (from + 1 + rng.below(32)).min(len);
            let copy = frame[from..end].to_vec();
            let at = rng.below(len);
            frame.splice(at..at, copy);
        }
        _ => {
            let n = 1 + rng.below(32);
            let bytes = rng.bytes(n);
            frame.extend_from_slice(&bytes);
        }
    }
}

/// A case: the frame, and the size prefix when it lies about the frame's length.
fn case(rng: &mut Rng, corpus: &[Seed], g: &str) -> (Vec<u8>, Option<i32>) {
    let frame = match rng.below(100) {
        0..=4 => {
            let n = rng.below(64);
            rng.bytes(n)
        }
        5..=14 => {
            let &(key, min, max) = &SUPPORTED_APIS[rng.below(SUPPORTED_APIS.len())];
            let version = min - 1 + rng.below((max - min + 3) as usize) as i16;
            let mut frame = Vec::new();
            frame.extend_from_slice(&(key as i16).to_be_bytes());
            frame.extend_from_slice(&version.to_be_bytes());
            frame.extend_from_slice(&1i32.to_be_bytes());
            let n = rng.below(128);
            frame.extend_from_slice(&rng.bytes(n));
            frame
        }
        roll => {
            let seed = corpus[rng.below(corpus.len())];
            if seed.key == ApiKey::Produce && rng.percent(50) {
                let records = mutated_batch(rng);
                if let Some(frame) = produce_frame(seed.version, records) {
                    return (frame, None);
                }
            }
            let mut frame = seed.frame(g).unwrap_or_default();
            // A few seeds go unchanged: valid requests keep the broker's state moving.
            if roll >= 25 {
                for _ in 0..1 + rng.below(3) {
                    mutate(rng, &mut frame);
                }
            }
            frame
        }
    };
    let lie = rng.percent(3).then(|| match rng.below(3) {
        0 => frame.len() as i32 + 1 + rng.below(100) as i32,
        1 => frame.len() as i32 - 1 - rng.below(frame.len().max(1)) as i32,
        _ => rng.next() as i32,
    });
    (frame, lie)
}

/// Checks that `response` answers `sent` (a request frame without its size): its API and
/// version, its correlation id, every byte decoded.
fn check_response(sent: &[u8], mut response: Bytes) -> Result<(), String> {
    if sent.len() < 8 {
        return Err(format!("a frame of {} bytes was answered", sent.len()));
    }
    let api = i16::from_be_bytes([sent[0], sent[1]]);
    let mut version = i16::from_be_bytes([sent[2], sent[3]]);
    let correlation_id = i32::from_be_bytes([sent[4], sent[5], sent[6], sent[7]]);
    let key = ApiKey::try_from(api).map_err(|()| format!("unknown API key {api} was answered"))?;
    let Some(&(_, min, max)) = SUPPORTED_APIS.iter().find(|(k, _, _)| *k == key) else {
        return Err(format!("{key:?}, not served, was answered"));
    };
    if version < min || version > max {
        if key != ApiKey::ApiVersions {
            return Err(format!("{key:?} v{version}, not served, was answered"));
        }
        // Kafka's rule: an ApiVersions request of a version not served is answered at v0.
        version = 0;
    }
    let header = ResponseHeader::decode(&mut response, key.response_header_version(version))
        .map_err(|e| format!("{key:?} v{version}: response header: {e}"))?;
    if header.correlation_id != correlation_id {
        return Err(format!(
            "{key:?} v{version}: correlation id {} answers {correlation_id}",
            header.correlation_id
        ));
    }
    ResponseKind::decode(key, &mut response, version)
        .map_err(|e| format!("{key:?} v{version}: response body: {e}"))?;
    if response.has_remaining() {
        return Err(format!(
            "{key:?} v{version}: {} bytes after the response",
            response.remaining()
        ));
    }
    Ok(())
}

/// The marker: an ApiVersions v3 request with correlation id [`MARKER`].
fn marker() -> Vec<u8> {
    let frame = common::encode_request(
        ApiKey::ApiVersions,
        3,
        MARKER,
        &ApiVersionsRequest::default(),
    );
    let mut out = (frame.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(&frame);
    out
}

/// Reads one frame: `Ok(None)` when the connection ends, `Err` when nothing comes in time.
async fn read_frame(stream: &mut TcpStream, within: Duration) -> Result<Option<Bytes>, ()> {
    let read = async {
        let mut size = [0u8; 4];
        if stream.read_exact(&mut size).await.is_err() {
            return None;
        }
        let size = i32::from_be_bytes(size);
        // A response frame is never near this; a bogus size would be a broken frame.
        assert!(
            (0..=64 << 20).contains(&size),
            "a response frame of size {size}"
        );
        let mut body = vec![0u8; size as usize];
        stream.read_exact(&mut body).await.ok()?;
        Some(Bytes::from(body))
    };
    tokio::time::timeout(within, read).await.map_err(|_| ())
}

/// How a case ended.
#[derive(Debug, Default)]
struct Outcomes {
    answered: usize,
    no_response: usize,
    closed: usize,
    waiting: usize,
}

/// Panics anywhere in this process (the server's tasks run here).
static PANICS: AtomicUsize = AtomicUsize::new(0);
static PANIC_MESSAGES: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn count_panics() {
    static HOOK: OnceLock<()> = OnceLock::new();
    HOOK.get_or_init(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            if let Ok(mut messages) = PANIC_MESSAGES.lock() {
                messages.push(info.to_string());
            }
            default(info);
        }));
    });
}

/// Whether a fresh connection is served: ApiVersions and Metadata answered whole.
async fn fresh_connection_is_served(addr: std::net::SocketAddr) -> Result<(), String> {
    let mut stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    for (frame, what) in [
        (
            common::encode_request(ApiKey::ApiVersions, 3, 11, &ApiVersionsRequest::default()),
            "ApiVersions",
        ),
        (
            common::encode_request(
                ApiKey::Metadata,
                9,
                12,
                &MetadataRequest::default().with_topics(None),
            ),
            "Metadata",
        ),
    ] {
        common::send_raw(&mut stream, &frame).await;
        let response = read_frame(&mut stream, ANSWER_WITHIN)
            .await
            .map_err(|()| format!("{what}: no answer in time"))?
            .ok_or_else(|| format!("{what}: connection closed"))?;
        check_response(&frame, response)?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_and_mutated_requests_get_an_answer_or_a_close_and_never_a_panic() {
    count_panics();
    let seed = env_number("BROKER_WIRE_FUZZ_SEED").unwrap_or(DEFAULT_SEED);
    let cases = env_number("BROKER_WIRE_FUZZ_CASES").unwrap_or(DEFAULT_CASES);
    eprintln!("request fuzz: seed {seed:#x}, {cases} cases (BROKER_WIRE_FUZZ_SEED, BROKER_WIRE_FUZZ_CASES)");
    let config = BrokerConfig {
        // Mutated counts stay small on disk.
        max_partitions_per_topic: 16,
        group_initial_rebalance_delay_ms: 0,
        group_min_session_timeout_ms: 10,
        ..BrokerConfig::default()
    };
    let (broker, addr) = start(config, WireConfig::default()).await;
    broker.create_topic(NewTopic::new("fuzz", 3)).await.unwrap();
    broker
        .create_topic(NewTopic::new("fuzz-created", 1))
        .await
        .unwrap();

    let corpus = corpus();
    let fail = |case: usize, frame: &[u8], why: String| -> ! {
        let hex: String = frame.iter().map(|b| format!("{b:02x}")).collect();
        let panics = PANIC_MESSAGES
            .lock()
            .map(|m| m.join("\n"))
            .unwrap_or_default();
        panic!(
            "request fuzz failed: seed {seed:#x}, case {case} (BROKER_WIRE_FUZZ_SEED={seed:#x} \
             BROKER_WIRE_FUZZ_CASES={}): {why}\nframe: {hex}\npanics: {panics}",
            case + 1
        )
    };

    // Every served API and version, unchanged, is answered whole.
    for (n, seed_request) in corpus.iter().enumerate() {
        let frame = seed_request
            .frame(&format!("fuzz-corpus-{n}"))
            .unwrap_or_default();
        let mut stream = TcpStream::connect(addr).await.unwrap();
        common::send_raw(&mut stream, &frame).await;
        stream.write_all(&marker()).await.unwrap();
        let first = read_frame(&mut stream, ANSWER_WITHIN).await;
        let what = format!("{:?} v{}", seed_request.key, seed_request.version);
        match first {
            Ok(Some(response))
                if seed_request.key == ApiKey::Produce && marker_answer(&response) => {}
            Ok(Some(response)) => {
                if let Err(e) = check_response(&frame, response) {
                    fail(0, &frame, format!("{what}, unchanged: {e}"));
                }
            }
            Ok(None) => fail(0, &frame, format!("{what}, unchanged: connection closed")),
            Err(()) => fail(0, &frame, format!("{what}, unchanged: no answer")),
        }
    }

    let mut rng = Rng(seed);
    let mut outcomes = Outcomes::default();
    let mut stream: Option<TcpStream> = None;
    let started = Instant::now();
    for case_number in 0..cases {
        // Groups are the case's own, or the one before's: a group that a mutated join
        // left waiting for a member (Kafka's rebalance) holds up one case at most.
        let g = format!(
            "fuzz-g{}",
            case_number - usize::from(case_number > 0 && rng.percent(30))
        );
        let (frame, lie) = case(&mut rng, &corpus, &g);
        let mut conn = match stream.take() {
            Some(conn) => conn,
            None => TcpStream::connect(addr).await.unwrap(),
        };
        let size = lie.unwrap_or(frame.len() as i32);
        let mut bytes = size.to_be_bytes().to_vec();
        bytes.extend_from_slice(&frame);
        if lie.is_some() {
            // The size lies: whatever the server makes of it, the connection ends once
            // the client has nothing more to say. Answers are frames; then the end.
            let _ = conn.write_all(&bytes).await;
            let _ = conn.shutdown().await;
            loop {
                match read_frame(&mut conn, CASE_ANSWER_WITHIN).await {
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        outcomes.closed += 1;
                        break;
                    }
                    // A request in it waits; the server sees the end after that.
                    Err(()) => {
                        outcomes.waiting += 1;
                        break;
                    }
                }
            }
        } else {
            bytes.extend_from_slice(&marker());
            // A write can fail when the server has closed the connection already.
            let _ = conn.write_all(&bytes).await;
            match read_frame(&mut conn, CASE_ANSWER_WITHIN).await {
                Ok(None) => outcomes.closed += 1,
                Err(()) => outcomes.waiting += 1,
                Ok(Some(response)) if marker_answer(&response) => {
                    if frame.get(..2) != Some(&(ApiKey::Produce as i16).to_be_bytes()[..]) {
                        fail(
                            case_number,
                            &frame,
                            "no response to a request other than Produce".into(),
                        );
                    }
                    outcomes.no_response += 1;
                    stream = Some(conn);
                }
                Ok(Some(response)) => {
                    if let Err(e) = check_response(&frame, response) {
                        fail(case_number, &frame, e);
                    }
                    match read_frame(&mut conn, CASE_ANSWER_WITHIN).await {
                        Ok(Some(next)) if marker_answer(&next) => {}
                        Ok(Some(_)) => fail(
                            case_number,
                            &frame,
                            "the marker's answer is not next".into(),
                        ),
                        Ok(None) => fail(
                            case_number,
                            &frame,
                            "closed after an answer, before the marker's".into(),
                        ),
                        Err(()) => fail(case_number, &frame, "no answer to the marker".into()),
                    }
                    outcomes.answered += 1;
                    stream = Some(conn);
                }
            }
        }
        if PANICS.load(Ordering::SeqCst) > 0 {
            fail(case_number, &frame, "the server panicked".into());
        }
        if case_number % 1000 == 999 {
            if let Err(e) = fresh_connection_is_served(addr).await {
                fail(
                    case_number,
                    &frame,
                    format!("a fresh connection is not served: {e}"),
                );
            }
        }
    }
    eprintln!(
        "request fuzz: {cases} cases in {:.1} s: {outcomes:?}",
        started.elapsed().as_secs_f64()
    );
    if let Err(e) = fresh_connection_is_served(addr).await {
        panic!("seed {seed:#x}: after the cases a fresh connection is not served: {e}");
    }
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "seed {seed:#x}: a panic");
    // Requests left waiting are rare: many would be a server that hangs.
    assert!(
        outcomes.waiting * 100 <= cases,
        "seed {seed:#x}: {} of {cases} cases got no answer in time: {outcomes:?}",
        outcomes.waiting
    );
    // The cases reached the handlers, not only the decoder's refusals.
    assert!(
        outcomes.answered * 5 >= cases,
        "seed {seed:#x}: only {} of {cases} cases were answered: {outcomes:?}",
        outcomes.answered
    );
}

/// Whether `response` is the marker's answer.
fn marker_answer(response: &Bytes) -> bool {
    response.len() >= 4 && response[..4] == MARKER.to_be_bytes()
}
