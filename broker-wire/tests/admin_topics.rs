//! The topic admin APIs over a real connection: CreateTopics, DeleteTopics,
//! CreatePartitions and DeleteRecords at low and high versions, their error codes and
//! `validate_only`, and topic ids in Metadata.

mod common;

use broker_embedded::{BrokerConfig, NewRecord, NewTopic, ProducerFields};
use broker_wire::WireConfig;
use common::{request, start};
use kafka_protocol::messages::create_partitions_request::{
    CreatePartitionsAssignment, CreatePartitionsTopic,
};
use kafka_protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
};
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, BrokerId, CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest,
    CreateTopicsResponse, DeleteRecordsRequest, DeleteRecordsResponse, DeleteTopicsRequest,
    DeleteTopicsResponse, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use tokio::net::TcpStream;
use uuid::Uuid;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_owned()))
}

fn topic(n: &str, partitions: i32, rf: i16) -> CreatableTopic {
    CreatableTopic::default()
        .with_name(name(n))
        .with_num_partitions(partitions)
        .with_replication_factor(rf)
}

fn config(key: &str, value: &str) -> CreatableTopicConfig {
    CreatableTopicConfig::default()
        .with_name(StrBytes::from_string(key.to_owned()))
        .with_value(Some(StrBytes::from_string(value.to_owned())))
}

async fn create(
    stream: &mut TcpStream,
    version: i16,
    topics: Vec<CreatableTopic>,
    validate_only: bool,
) -> CreateTopicsResponse {
    let req = CreateTopicsRequest::default()
        .with_topics(topics)
        .with_validate_only(validate_only);
    request(stream, ApiKey::CreateTopics, version, &req).await
}

fn codes(response: &CreateTopicsResponse) -> Vec<(String, i16)> {
    response
        .topics
        .iter()
        .map(|t| (t.name.0.to_string(), t.error_code))
        .collect()
}

#[tokio::test]
async fn create_topics_at_every_version_with_kafkas_checks() {
    let config_ = BrokerConfig {
        num_partitions: 3,
        ..BrokerConfig::default()
    };
    let (broker, addr) = start(config_, WireConfig::default()).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();

    // v2: a plain create; -1 partitions is the broker's num.partitions.
    let r = create(&mut stream, 2, vec![topic("a", -1, -1)], false).await;
    assert_eq!(codes(&r), vec![("a".to_owned(), 0)]);
    assert_eq!(broker.partition_count("a").await.unwrap(), 3);

    // v7: partition count, replication factor, configs and topic id come back.
    let r = create(
        &mut stream,
        7,
        vec![topic("b", 2, 1).with_configs(vec![
            config("cleanup.policy", "compact"),
            config("min.insync.replicas", "1"),
        ])],
        false,
    )
    .await;
    let b = &r.topics[0];
    assert_eq!(
        (b.error_code, b.num_partitions, b.replication_factor),
        (0, 2, 1)
    );
    assert_eq!(b.topic_id, broker.topic_id("b").unwrap());
    let configs = b.configs.as_ref().unwrap();
    let policy = configs
        .iter()
        .find(|c| c.name.as_str() == "cleanup.policy")
        .unwrap();
    assert_eq!(policy.value.as_deref(), Some("compact"));
    assert_eq!(policy.config_source, 1, "TOPIC_CONFIG");
    let retention = configs
        .iter()
        .find(|c| c.name.as_str() == "retention.ms")
        .unwrap();
    assert_eq!(retention.config_source, 5, "DEFAULT_CONFIG");

    // Errors, one per topic, in Kafka's codes.
    let assigned = |ids: Vec<i32>| {
        topic("m", -1, -1).with_assignments(vec![CreatableReplicaAssignment::default()
            .with_partition_index(0)
            .with_broker_ids(ids.into_iter().map(BrokerId).collect())])
    };
    let r = create(
        &mut stream,
        5,
        vec![
            topic("a", 1, 1),
            topic("bad name", 1, 1),
            topic("rf3", 1, 3),
            topic("zero", 0, 1),
            topic("cfg", 1, 1).with_configs(vec![config("retention.ms", "soon")]),
            topic("unknown-cfg", 1, 1).with_configs(vec![config("no.such.config", "1")]),
            topic("dup", 1, 1),
            topic("dup", 1, 1),
            assigned(vec![1]),
        ],
        false,
    )
    .await;
    assert_eq!(
        codes(&r),
        vec![
            ("a".to_owned(), 36),
            ("bad name".to_owned(), 17),
            ("rf3".to_owned(), 38),
            ("zero".to_owned(), 37),
            ("cfg".to_owned(), 40),
            ("unknown-cfg".to_owned(), 40),
            ("dup".to_owned(), 42),
            ("dup".to_owned(), 42),
            ("m".to_owned(), 39),
        ]
    );
    let message = |i: usize| {
        r.topics[i]
            .error_message
            .as_deref()
            .unwrap_or("")
            .to_owned()
    };
    assert_eq!(message(0), "Topic 'a' already exists.");
    assert_eq!(
        message(2),
        "Unable to replicate the partition 3 time(s): The target replication factor of 3 \
         cannot be reached because only 1 broker(s) are registered."
    );
    assert_eq!(
        message(4),
        "Invalid value soon for configuration retention.ms: not an integer"
    );
    assert_eq!(message(5), "Unknown topic config name: no.such.config");
    assert_eq!(r.topics[2].num_partitions, -1, "no details for a failure");
    assert_eq!(broker.list_topics().await.unwrap(), vec!["a", "b"]);

    // A manual assignment of node 0 works.
    let r = create(&mut stream, 4, vec![assigned(vec![0])], false).await;
    assert_eq!(codes(&r), vec![("m".to_owned(), 0)]);
    assert_eq!(broker.partition_count("m").await.unwrap(), 1);

    // validate_only checks and creates nothing; v7 still answers with the details.
    let r = create(
        &mut stream,
        7,
        vec![topic("v", 4, -1), topic("a", 1, 1)],
        true,
    )
    .await;
    assert_eq!(codes(&r), vec![("v".to_owned(), 0), ("a".to_owned(), 36)]);
    assert_eq!(r.topics[0].num_partitions, 4);
    assert!(broker.partition_count("v").await.is_err());
}

#[tokio::test]
async fn delete_topics_by_name_and_by_id() {
    let (broker, addr) = start(BrokerConfig::default(), WireConfig::default()).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    for t in ["a", "b", "c"] {
        broker.create_topic(NewTopic::new(t, 1)).await.unwrap();
    }
    // v1: by name.
    let req = DeleteTopicsRequest::default().with_topic_names(vec![name("a"), name("nope")]);
    let r: DeleteTopicsResponse = request(&mut stream, ApiKey::DeleteTopics, 1, &req).await;
    let got: Vec<(String, i16)> = r
        .responses
        .iter()
        .map(|t| (t.name.as_ref().unwrap().0.to_string(), t.error_code))
        .collect();
    assert_eq!(got, vec![("a".to_owned(), 0), ("nope".to_owned(), 3)]);
    // v6: by id, by name, an unknown id, an internal topic.
    let b = broker.topic_id("b").unwrap();
    let req = DeleteTopicsRequest::default().with_topics(vec![
        DeleteTopicState::default().with_name(None).with_topic_id(b),
        DeleteTopicState::default().with_name(Some(name("c"))),
        DeleteTopicState::default()
            .with_name(None)
            .with_topic_id(Uuid::from_u128(42)),
        DeleteTopicState::default().with_name(Some(name("__consumer_offsets"))),
    ]);
    let r: DeleteTopicsResponse = request(&mut stream, ApiKey::DeleteTopics, 6, &req).await;
    assert_eq!(r.responses[0].error_code, 0);
    assert_eq!(r.responses[0].name.as_ref().unwrap().0.as_str(), "b");
    assert_eq!(r.responses[0].topic_id, b);
    assert_eq!(r.responses[1].error_code, 0);
    assert_eq!(r.responses[2].error_code, 100, "UNKNOWN_TOPIC_ID");
    assert_eq!(r.responses[3].error_code, 42);
    assert!(broker.list_topics().await.unwrap().is_empty());
    assert!(broker.partition_count("__consumer_offsets").await.is_ok());
}

#[tokio::test]
async fn create_partitions_grows_and_refuses_what_kafka_refuses() {
    let (broker, addr) = start(BrokerConfig::default(), WireConfig::default()).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    broker.create_topic(NewTopic::new("t", 2)).await.unwrap();
    let grow = |n: &str, count: i32| {
        CreatePartitionsTopic::default()
            .with_name(name(n))
            .with_count(count)
            .with_assignments(None)
    };
    let assign = |ids: Vec<Vec<i32>>| {
        Some(
            ids.into_iter()
                .map(|b| {
                    CreatePartitionsAssignment::default()
                        .with_broker_ids(b.into_iter().map(BrokerId).collect())
                })
                .collect(),
        )
    };
    for version in [0i16, 3] {
        let req = CreatePartitionsRequest::default()
            .with_topics(vec![grow("t", 1), grow("nope", 3), grow("t", 2)])
            .with_validate_only(false);
        let r: CreatePartitionsResponse =
            request(&mut stream, ApiKey::CreatePartitions, version, &req).await;
        // "t" twice in one request: both refused.
        let got: Vec<i16> = r.results.iter().map(|t| t.error_code).collect();
        assert_eq!(got, vec![42, 3, 42], "v{version}");
    }
    let req = CreatePartitionsRequest::default().with_topics(vec![grow("t", 1)]);
    let r: CreatePartitionsResponse = request(&mut stream, ApiKey::CreatePartitions, 1, &req).await;
    assert_eq!(r.results[0].error_code, 37);
    assert_eq!(
        r.results[0].error_message.as_deref(),
        Some("Topic currently has 2 partitions, which is higher than the requested 1.")
    );
    // A bad assignment, then validate_only, then the real thing.
    let req = CreatePartitionsRequest::default().with_topics(vec![
        grow("t", 4).with_assignments(assign(vec![vec![0], vec![2]]))
    ]);
    let r: CreatePartitionsResponse = request(&mut stream, ApiKey::CreatePartitions, 2, &req).await;
    assert_eq!(r.results[0].error_code, 39);
    let req = CreatePartitionsRequest::default()
        .with_topics(vec![
            grow("t", 4).with_assignments(assign(vec![vec![0], vec![0]]))
        ])
        .with_validate_only(true);
    let r: CreatePartitionsResponse = request(&mut stream, ApiKey::CreatePartitions, 3, &req).await;
    assert_eq!(r.results[0].error_code, 0);
    assert_eq!(broker.partition_count("t").await.unwrap(), 2);
    let req = CreatePartitionsRequest::default().with_topics(vec![grow("t", 4)]);
    let r: CreatePartitionsResponse = request(&mut stream, ApiKey::CreatePartitions, 3, &req).await;
    assert_eq!(r.results[0].error_code, 0);
    assert_eq!(broker.partition_count("t").await.unwrap(), 4);
    // Metadata sees the new partitions.
    let req = MetadataRequest::default().with_topics(Some(vec![
        MetadataRequestTopic::default().with_name(Some(name("t")))
    ]));
    let m: MetadataResponse = request(&mut stream, ApiKey::Metadata, 12, &req).await;
    assert_eq!(m.topics[0].partitions.len(), 4);
}

#[tokio::test]
async fn delete_records_moves_the_low_watermark() {
    let (broker, addr) = start(BrokerConfig::default(), WireConfig::default()).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    broker.create_topic(NewTopic::new("t", 2)).await.unwrap();
    let records: Vec<NewRecord> = (0..10)
        .map(|i| NewRecord {
            timestamp: 1_000 + i,
            key: None,
            value: Some(format!("v{i}").into_bytes().into()),
            headers: Vec::new(),
        })
        .collect();
    broker
        .append("t", 0, &records, ProducerFields::NONE)
        .await
        .unwrap();
    broker
        .append("t", 1, &records[..4], ProducerFields::NONE)
        .await
        .unwrap();
    let partition = |p: i32, offset: i64| {
        DeleteRecordsPartition::default()
            .with_partition_index(p)
            .with_offset(offset)
    };
    for (version, offset) in [(0i16, 3i64), (2, 6)] {
        let req = DeleteRecordsRequest::default().with_topics(vec![
            DeleteRecordsTopic::default()
                .with_name(name("t"))
                .with_partitions(vec![
                    partition(0, offset),
                    partition(1, 11),
                    partition(7, 1),
                ]),
            DeleteRecordsTopic::default()
                .with_name(name("nope"))
                .with_partitions(vec![partition(0, 1)]),
        ]);
        let r: DeleteRecordsResponse =
            request(&mut stream, ApiKey::DeleteRecords, version, &req).await;
        let got: Vec<(i32, i64, i16)> = r.topics[0]
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.low_watermark, p.error_code))
            .collect();
        assert_eq!(got, vec![(0, offset, 0), (1, -1, 1), (7, -1, 3)]);
        assert_eq!(r.topics[1].partitions[0].error_code, 3);
    }
    assert_eq!(broker.offsets("t", 0).await.unwrap(), (6, 10));
    // -1: the high watermark.
    let req = DeleteRecordsRequest::default().with_topics(vec![DeleteRecordsTopic::default()
        .with_name(name("t"))
        .with_partitions(vec![partition(1, -1), partition(0, 2)])]);
    let r: DeleteRecordsResponse = request(&mut stream, ApiKey::DeleteRecords, 1, &req).await;
    assert_eq!(r.topics[0].partitions[0].low_watermark, 4);
    assert_eq!(
        r.topics[0].partitions[1].low_watermark, 6,
        "below the start: unchanged"
    );
    assert_eq!(broker.offsets("t", 1).await.unwrap(), (4, 4));
}

fn all() -> MetadataRequest {
    MetadataRequest::default().with_topics(None)
}

#[tokio::test]
async fn metadata_returns_topic_ids_and_answers_by_id() {
    let (broker, addr) = start(BrokerConfig::default(), WireConfig::default()).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    broker.create_topic(NewTopic::new("t", 1)).await.unwrap();
    let id = broker.topic_id("t").unwrap();
    for version in [10i16, 12, 13] {
        let r: MetadataResponse = request(&mut stream, ApiKey::Metadata, version, &all()).await;
        let t = r.topics.iter().find(|t| t.name == Some(name("t"))).unwrap();
        assert_eq!(t.topic_id, id, "v{version}");
        assert!(
            r.topics.iter().all(|t| !t.topic_id.is_nil()),
            "internal topics have ids too"
        );
        assert_eq!(r.error_code, 0);
        let req = MetadataRequest::default().with_topics(Some(vec![
            MetadataRequestTopic::default()
                .with_name(None)
                .with_topic_id(id),
            MetadataRequestTopic::default()
                .with_name(None)
                .with_topic_id(Uuid::from_u128(99)),
        ]));
        let r: MetadataResponse = request(&mut stream, ApiKey::Metadata, version, &req).await;
        assert_eq!(r.topics[0].error_code, 0);
        assert_eq!(r.topics[0].name, Some(name("t")));
        assert_eq!(r.topics[0].partitions.len(), 1);
        assert_eq!(r.topics[1].error_code, 100, "UNKNOWN_TOPIC_ID");
        assert_eq!(r.topics[1].topic_id, Uuid::from_u128(99));
    }
    // Authorized operations, when asked (v8+): everything, as Kafka without an authorizer.
    let req = all()
        .with_include_cluster_authorized_operations(true)
        .with_include_topic_authorized_operations(true);
    let r: MetadataResponse = request(&mut stream, ApiKey::Metadata, 8, &req).await;
    assert!(r.cluster_authorized_operations > 0);
    assert!(r.topics.iter().all(|t| t.topic_authorized_operations > 0));
    let r: MetadataResponse = request(&mut stream, ApiKey::Metadata, 8, &all()).await;
    assert_eq!(r.cluster_authorized_operations, i32::MIN);
    // Before v10 there are no ids on the wire.
    let r: MetadataResponse = request(&mut stream, ApiKey::Metadata, 9, &all()).await;
    assert!(r.topics.iter().all(|t| t.topic_id.is_nil()));
}
